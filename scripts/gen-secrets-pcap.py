#!/usr/bin/env python3
"""Writes tests/data/secrets.pcap: HTTP/1.1 exchanges full of credentials, for the redaction tests.

One TCP connection (10.0.0.1:40000 -> 10.0.0.2:8080, handshake, keep-alive, FIN), classic
pcap, Ethernet. Every secret value contains "SECRET" so a test can assert that no output
carries one. The exchanges:

1. POST /login?access_token=SECRET-qs-1&page=2 (Authorization, X-Api-Key, Cookie, a custom
   X-Custom-Auth header, JSON body with password and nested token) -> 200 with Set-Cookie and
   a JSON body with access_token.
2. POST /form (form body: user, password, pin) -> 204.
3. POST /long (JSON body: a 200-byte padding field, then "password" -> 200; with
   --max-body-size 220 the body is cut inside the password's value.
4. GET /plain?q=ok -> 200 with a JSON body without any secret (nothing to redact).

Usage: scripts/gen-secrets-pcap.py [OUT]   (default tests/data/secrets.pcap)
"""
import os
import struct
import sys

CLIENT = (bytes([10, 0, 0, 1]), 40000)
SERVER = (bytes([10, 0, 0, 2]), 8080)
MAC_C = bytes.fromhex("020000000001")
MAC_S = bytes.fromhex("020000000002")


def checksum(data: bytes) -> int:
    if len(data) % 2:
        data += b"\0"
    s = sum(struct.unpack("!%dH" % (len(data) // 2), data))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return ~s & 0xFFFF


def frame(src, dst, seq, ack, flags, payload=b""):
    (sip, sport), (dip, dport) = src, dst
    tcp = struct.pack("!HHIIBBHHH", sport, dport, seq, ack, 5 << 4, flags, 65535, 0, 0)
    pseudo = sip + dip + struct.pack("!BBH", 0, 6, len(tcp) + len(payload))
    csum = checksum(pseudo + tcp + payload)
    tcp = tcp[:16] + struct.pack("!H", csum) + tcp[18:]
    total = 20 + len(tcp) + len(payload)
    ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, total, 0, 0x4000, 64, 6, 0, sip, dip)
    ip = ip[:10] + struct.pack("!H", checksum(ip)) + ip[12:]
    macs = (MAC_S + MAC_C) if src == CLIENT else (MAC_C + MAC_S)
    return macs + b"\x08\x00" + ip + tcp + payload


def request(method, target, headers, body=b""):
    head = f"{method} {target} HTTP/1.1\r\nHost: api.example\r\n"
    for k, v in headers:
        head += f"{k}: {v}\r\n"
    if body or method == "POST":
        head += f"Content-Length: {len(body)}\r\n"
    return head.encode() + b"\r\n" + body


def response(status, reason, headers, body=b""):
    head = f"HTTP/1.1 {status} {reason}\r\n"
    for k, v in headers:
        head += f"{k}: {v}\r\n"
    head += f"Content-Length: {len(body)}\r\n"
    return head.encode() + b"\r\n" + body


EXCHANGES = [
    (
        request(
            "POST",
            "/login?access_token=SECRET-qs-1&page=2",
            [
                ("Authorization", "Bearer SECRET-authz"),
                ("X-Api-Key", "SECRET-api-key"),
                ("Cookie", "sid=SECRET-cookie"),
                ("X-Custom-Auth", "SECRET-custom-header"),
                ("Content-Type", "application/json"),
            ],
            b'{"user":"bob","password":"SECRET-pw-1","profile":{"Token":"SECRET-nested"},"pin":"SECRET-pin-json"}',
        ),
        response(
            200,
            "OK",
            [("Set-Cookie", "sid=SECRET-set-cookie; HttpOnly"), ("Content-Type", "application/json")],
            b'{"access_token":"SECRET-resp-token","expires_in":3600}',
        ),
    ),
    (
        request(
            "POST",
            "/form",
            [("Content-Type", "application/x-www-form-urlencoded")],
            b"user=bob&password=SECRET-form-pw&pin=SECRET-pin-form",
        ),
        response(204, "No Content", []),
    ),
    (
        request(
            "POST",
            "/long",
            [("Content-Type", "application/json")],
            b'{"padding":"' + b"p" * 188 + b'","password":"SECRET-cut-pw-0123456789"}',
        ),
        response(200, "OK", [("Content-Type", "text/plain")], b"ok"),
    ),
    (
        request("GET", "/plain?q=ok", [("Accept", "application/json")]),
        response(200, "OK", [("Content-Type", "application/json")], b'{"hello":"world"}'),
    ),
]


def main():
    out = sys.argv[1] if len(sys.argv) > 1 else os.path.join(
        os.path.dirname(__file__), "..", "tests", "data", "secrets.pcap"
    )
    ts = 1_700_000_000_000_000
    packets = []

    def add(src, dst, seq, ack, flags, payload=b""):
        nonlocal ts
        ts += 1000
        packets.append((ts, frame(src, dst, seq, ack, flags, payload)))

    SYN, ACK, PSH, FIN = 0x02, 0x10, 0x08, 0x01
    cseq, sseq = 1000, 5000
    add(CLIENT, SERVER, cseq, 0, SYN)
    add(SERVER, CLIENT, sseq, cseq + 1, SYN | ACK)
    cseq += 1
    sseq += 1
    add(CLIENT, SERVER, cseq, sseq, ACK)
    for req, resp in EXCHANGES:
        add(CLIENT, SERVER, cseq, sseq, PSH | ACK, req)
        cseq += len(req)
        add(SERVER, CLIENT, sseq, cseq, PSH | ACK, resp)
        sseq += len(resp)
        add(CLIENT, SERVER, cseq, sseq, ACK)
    add(CLIENT, SERVER, cseq, sseq, FIN | ACK)
    add(SERVER, CLIENT, sseq, cseq + 1, FIN | ACK)
    add(CLIENT, SERVER, cseq + 1, sseq + 1, ACK)

    with open(out, "wb") as f:
        f.write(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 262144, 1))
        for t, fr in packets:
            f.write(struct.pack("<IIII", t // 1_000_000, t % 1_000_000, len(fr), len(fr)))
            f.write(fr)


if __name__ == "__main__":
    main()
