#!/usr/bin/env python3
"""Builds the fuzz seed corpora in engine/fuzz/seeds/ from real captures.

    python3 engine/fuzz/make_seeds.py [--zeek DIR] [--out DIR]

For each capture listed in CAPTURES (tests/data/demo.pcap and a few of the
Zeek HTTP test captures in shared/corpus/zeek-http), writes:

  seeds/packets/<name>      the capture's frames in the `packets` format
                            (link byte, then u16 big-endian length + frame each)
  seeds/http_stream/<name>  the capture's TCP payloads in the `http_stream`
                            script format: one data record per segment, in
                            capture order, with gap records where sequence
                            numbers skip and fin records for FINs

Both formats are documented in engine/fuzz/src/drivers.rs. Only classic pcap
(Ethernet, optional VLAN tags, or raw IP) is read; that covers every capture
listed. Seeds are capped (MAX_SEED bytes) so the committed corpus stays small.
"""

import argparse
import os
import struct
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.abspath(os.path.join(HERE, "..", ".."))

# (seed name, path relative to the Zeek corpus dir or absolute[, server port]).
# A server port other than 80/8080 is rewritten to 80 in the seeds (checksums are
# not verified by the engine), so the `packets` driver's `--ports 80,8080` sees it.
CAPTURES = [
    ("demo", os.path.join(REPO, "tests/data/demo.pcap")),
    ("chunked-multi-te", "chunked-rest/variant-10-multi_value_te.pcap"),
    ("chunk-2pow64", "chunk-2pow64-overflow/variant-01-chunk_2pow64_overflow.pcap"),
    ("expect-100-cl0", "cl-0-expect-100/variant-07-expect_100_cl0.pcap"),
    ("te-cl-desync", "te-cl-desync/variant-04-te_cl_desync.pcap"),
    ("obs-fold", "obsolete-line-fold/variant-09-te_obs_fold.pcap"),
    ("cl-negative", "cl-negative/variant-03-cl_negative.pcap"),
    ("http-09", "http-09/http_09.pcap"),
    ("request-then-cruft", "http-11-request-then-cruft/http-11-request-then-cruft.pcap"),
    ("smuggle", "smuggle-http-request/smuggle-http-request.pcap"),
    ("interleaved-entity", "missing-http-entity/interleaved-http-entity.pcap"),
    ("entity-gap", "entity-gap/entity_gap.pcap"),
    ("connect-smtp", "http-connect/connect-with-smtp.pcap", 8240),
    ("upgrade-to-tcp", "upgrade-to-tcp/docker-http-upgrade.pcap", 2375),
    ("no-version", "no-version/no-version.pcap"),
    ("content-length-overflow", "content-length-overflow/content-length-overflow.pcap"),
]

MAX_SEED = 12 * 1024  # bytes per seed file
HTTP_PORTS = {80, 8080}


def read_pcap(path):
    """Yields (linktype, frame) for each record of a classic pcap file."""
    with open(path, "rb") as f:
        data = f.read()
    magic = data[:4]
    if magic in (b"\xd4\xc3\xb2\xa1", b"\x4d\x3c\xb2\xa1"):
        e = "<"
    elif magic in (b"\xa1\xb2\xc3\xd4", b"\xa1\xb2\x3c\x4d"):
        e = ">"
    else:
        raise ValueError(f"{path}: not a classic pcap file")
    linktype = struct.unpack(e + "I", data[20:24])[0] & 0x0FFFFFFF
    off = 24
    while off + 16 <= len(data):
        _, _, incl, _ = struct.unpack(e + "IIII", data[off : off + 16])
        off += 16
        yield linktype, data[off : off + incl]
        off += incl


def ip_of_frame(linktype, frame):
    """The IP packet inside a frame, or None."""
    if linktype == 1:
        if len(frame) < 14:
            return None
        et = struct.unpack(">H", frame[12:14])[0]
        rest = frame[14:]
        while et in (0x8100, 0x88A8) and len(rest) >= 4:
            et = struct.unpack(">H", rest[2:4])[0]
            rest = rest[4:]
        return rest if et in (0x0800, 0x86DD) else None
    if linktype in (12, 14, 101, 228, 229):
        return frame
    return None


def tcp_offset(ip):
    """Offset of the TCP header in an IP packet, or None."""
    if not ip:
        return None
    v = ip[0] >> 4
    if v == 4 and len(ip) >= 20 and ip[9] == 6:
        return (ip[0] & 15) * 4
    if v == 6 and len(ip) >= 40 and ip[6] == 6:
        return 40
    return None


def remap_port(linktype, frame, old):
    """The frame with TCP port `old` (either end) replaced by 80."""
    ip = ip_of_frame(linktype, frame)
    off = tcp_offset(ip)
    if off is None or len(ip) < off + 4:
        return frame
    base = len(frame) - len(ip) + off
    fr = bytearray(frame)
    for at in (base, base + 2):
        if struct.unpack(">H", fr[at : at + 2])[0] == old:
            fr[at : at + 2] = struct.pack(">H", 80)
    return bytes(fr)


def tcp_of_ip(ip):
    """(src, sport, dst, dport, seq, flags, payload) or None."""
    if not ip:
        return None
    v = ip[0] >> 4
    if v == 4:
        ihl = (ip[0] & 15) * 4
        total = struct.unpack(">H", ip[2:4])[0]
        if ip[9] != 6 or len(ip) < ihl + 20:
            return None
        src, dst, tcp = ip[12:16], ip[16:20], ip[ihl:max(total, ihl)]
    elif v == 6:
        plen = struct.unpack(">H", ip[4:6])[0]
        if ip[6] != 6 or len(ip) < 60:
            return None
        src, dst, tcp = ip[8:24], ip[24:40], ip[40 : 40 + plen]
    else:
        return None
    if len(tcp) < 20:
        return None
    sport, dport, seq = struct.unpack(">HHI", tcp[:8])
    doff = (tcp[12] >> 4) * 4
    return src, sport, dst, dport, seq, tcp[13], tcp[doff:]


def packets_seed(linktype, frames):
    out = bytearray([0 if linktype == 1 else 1])
    for fr in frames:
        fr = fr[:0x7FFF]
        if len(out) + 2 + len(fr) > MAX_SEED:
            break
        out += struct.pack(">H", len(fr)) + fr
    return bytes(out)


def data_record(side, chunk):
    if len(chunk) < 0xFF:
        return bytes([side, len(chunk)]) + chunk
    return bytes([side, 0xFF]) + struct.pack("<H", len(chunk)) + chunk


def gap_record(side, n):
    if n < 0x80:
        return bytes([side | (5 << 1), n])
    # nearest power of two at or above n
    return bytes([side | (5 << 1), 0x80 | min(63, (n - 1).bit_length())])


def http_stream_seed(linktype, frames):
    """Script of the first HTTP connection's payloads, in capture order."""
    conn = None  # (client (ip, port), server (ip, port))
    next_seq = {}
    saw_syn = False
    out = bytearray([0])
    for fr in frames:
        t = tcp_of_ip(ip_of_frame(linktype, fr))
        if t is None:
            continue
        src, sport, dst, dport, seq, flags, payload = t
        if conn is None:
            if dport in HTTP_PORTS:
                conn = ((src, sport), (dst, dport))
            elif sport in HTTP_PORTS:
                conn = ((dst, dport), (src, sport))
            else:
                continue
            saw_syn = bool(flags & 0x02)
        a, b = (src, sport), (dst, dport)
        if (a, b) == conn:
            side = 0
        elif (b, a) == conn:
            side = 1
        else:
            continue
        syn, fin = flags & 0x02, flags & 0x01
        if syn:
            next_seq[side] = (seq + 1) & 0xFFFFFFFF
            continue
        exp = next_seq.get(side)
        if exp is None:
            next_seq[side] = seq
            exp = seq
        delta = (seq - exp) & 0xFFFFFFFF
        rec = bytearray()
        if payload:
            if delta >= 0x80000000:  # retransmission / overlap: keep only new bytes
                payload = payload[(exp - seq) & 0xFFFFFFFF :]
                next_seq[side] = (exp + len(payload)) & 0xFFFFFFFF
            else:
                if delta > 0:
                    rec += gap_record(side, delta)
                next_seq[side] = (seq + len(payload)) & 0xFFFFFFFF
            for i in range(0, len(payload), 0xFFFF):
                rec += data_record(side, payload[i : i + 0xFFFF])
        if fin:
            rec += bytes([side | (6 << 1)])
        if len(out) + len(rec) > MAX_SEED:
            break
        out += rec
    if not saw_syn:
        out[0] = 1  # mid-stream
    return bytes(out) if len(out) > 1 else None


def synthetic_http_stream():
    """A few hand-written scripts for paths the captures do not reach."""
    c, srv = 0, 1
    pipelined = b"GET /a HTTP/1.1\r\nHost: x\r\n\r\nPOST /b HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5;ext=1\r\nhello\r\n0\r\nX-Trailer: t\r\n\r\n"
    answers = b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 3\r\nSet-Cookie: a=1\r\nSet-Cookie: b=2\r\n\r\nabcHTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nxyz\r\n0\r\n\r\n"
    yield "synthetic-pipelined", bytes([0]) + data_record(c, pipelined[:20]) + data_record(c, pipelined[20:]) + data_record(srv, answers)
    body_gap = b"HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\n\r\n0123456789"
    yield "synthetic-midstream-gap", bytes([1]) + data_record(c, b"ad\r\n\r\nGET / HTTP/1.0\r\n\r\n") + data_record(srv, body_gap) + gap_record(srv, 100) + data_record(srv, b"tail") + bytes([srv | (6 << 1)])
    upgrade = b"GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n"
    yield "synthetic-upgrade", bytes([0]) + data_record(c, upgrade + b"\x81\x05hello") + data_record(srv, b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\r\n\x81\x02hi")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--zeek", default=os.path.join(REPO, "..", "shared", "corpus", "zeek-http"))
    ap.add_argument("--out", default=os.path.join(HERE, "seeds"))
    args = ap.parse_args()
    os.makedirs(os.path.join(args.out, "packets"), exist_ok=True)
    os.makedirs(os.path.join(args.out, "http_stream"), exist_ok=True)
    total = 0
    for name, rel, *port in CAPTURES:
        path = rel if os.path.isabs(rel) else os.path.join(args.zeek, rel)
        if not os.path.exists(path):
            print(f"skip {name}: {path} not found", file=sys.stderr)
            continue
        recs = list(read_pcap(path))
        linktype = recs[0][0] if recs else 1
        frames = [fr for _, fr in recs]
        if port:
            frames = [remap_port(linktype, fr, port[0]) for fr in frames]
        seeds = {"packets": packets_seed(linktype, frames)}
        hs = http_stream_seed(linktype, frames)
        if hs:
            seeds["http_stream"] = hs
        for target, blob in seeds.items():
            with open(os.path.join(args.out, target, name), "wb") as f:
                f.write(blob)
            total += len(blob)
            print(f"{target}/{name}: {len(blob)} bytes")
    for name, blob in synthetic_http_stream():
        with open(os.path.join(args.out, "http_stream", name), "wb") as f:
            f.write(blob)
        total += len(blob)
        print(f"http_stream/{name}: {len(blob)} bytes")
    print(f"total {total} bytes", file=sys.stderr)


if __name__ == "__main__":
    main()
