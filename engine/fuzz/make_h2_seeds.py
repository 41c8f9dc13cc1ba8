#!/usr/bin/env python3
"""Builds the `http2_stream` fuzz seeds in engine/fuzz/seeds/http2_stream/.

    python3 engine/fuzz/make_h2_seeds.py

Each seed is an `http_stream` script (format in engine/fuzz/src/drivers.rs) of
HTTP/2 traffic shaped like what real peers send (curl/nghttp2, Node, grpc-js):
SETTINGS, HEADERS with literal and indexed HPACK fields, DATA split across
frames, trailers, RST_STREAM, PUSH_PROMISE, an h2c upgrade, and bodies with a
content-encoding (decodeBodies) across frames and cut by a reset. The driver sends
the client preface first unless bit 1 of byte 0 is set.
"""
import gzip
import os
import struct

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "seeds", "http2_stream")


def frame(kind, flags, stream, payload=b""):
    return struct.pack(">I", len(payload))[1:] + bytes([kind, flags]) + struct.pack(">I", stream) + payload


def lit(name, value, indexed=False):
    def s(b):
        assert len(b) < 127
        return bytes([len(b)]) + b
    return bytes([0x40 if indexed else 0]) + s(name.encode()) + s(value.encode())


def block(fields, indexed=False):
    return b"".join(lit(n, v, indexed) for n, v in fields)


def headers(stream, fields, end=False, indexed=False):
    return frame(1, 4 | (1 if end else 0), stream, block(fields, indexed))


def data(stream, payload, end=False):
    return frame(0, 1 if end else 0, stream, payload)


SETTINGS = frame(4, 0, 0, bytes.fromhex("000300000064000400a00000"))
ACK = frame(4, 1, 0)


def script(records, flags=0):
    out = bytearray([flags])
    for side, payload in records:
        # Feed each record in pieces of at most 200 bytes (op 0 = data).
        for i in range(0, max(len(payload), 1), 200):
            piece = payload[i:i + 200]
            out.append(side)
            if len(piece) < 0xff:
                out.append(len(piece))
            else:
                out += b"\xff" + struct.pack("<H", len(piece))
            out += piece
    return bytes(out)


C, S = 0, 1
TEXT = b"the quick brown fox jumps over the lazy dog, again and again and again\n" * 20
GZ = gzip.compress(TEXT, mtime=0)
# TEXT compressed by Node's zlib.brotliCompressSync (window 2^22).
BR = bytes.fromhex(
    "1b8b05a08c946ee622a893f52fe9d6d568148d807c430b830d38700870d8279c75701f3c64fda13345329acf86a8c48425821b8351fde1d2d81836fe8f5400")
req = [(":method", "GET"), (":scheme", "http"), (":path", "/a?token=x"), (":authority", "h:8080"), ("user-agent", "curl/7.88.1")]
seeds = {
    "interleaved": script([
        (C, SETTINGS + headers(1, req, True, True) + headers(3, [(":method", "POST"), (":path", "/u")]) + data(3, b"x" * 300)),
        (S, SETTINGS + ACK + headers(3, [(":status", "201")]) + headers(1, [(":status", "200"), ("content-type", "text/plain")])),
        (C, ACK + data(3, b"y" * 50, True) + frame(1, 5, 5, bytes([0x82, 0x86, 0xbf, 0xbe]))),
        (S, data(1, b"hello", False) + data(3, b"ok", True) + frame(8, 0, 0, b"\0\0\1\0") + data(1, b"!", True) + headers(5, [(":status", "304")], True)),
    ]),
    "grpc": script([
        (C, SETTINGS + headers(1, [(":method", "POST"), (":path", "/helloworld.Greeter/SayHello"), ("content-type", "application/grpc"), ("te", "trailers")]) + data(1, b"\0\0\0\0\x07\x0a\x05world", True)),
        (S, SETTINGS + headers(1, [(":status", "200"), ("content-type", "application/grpc")]) + data(1, b"\0\0\0\0\x0d\x0a\x0bhello world") + headers(1, [("grpc-status", "0"), ("grpc-message", "")], True)),
        (C, headers(3, [(":method", "POST"), (":path", "/x.Y/Z")]) + data(3, b"\0\0\0\0\0", True)),
        (S, headers(3, [(":status", "200"), ("grpc-status", "12"), ("grpc-message", "unimplemented")], True)),
    ]),
    "reset-push-padding": script([
        (C, SETTINGS + frame(2, 0, 1, b"\0\0\0\0\x10") + frame(1, 0x28 | 1, 1, b"\x02\0\0\0\0\x10" + block(req)[:20] + b"\0\0") + frame(9, 4, 1, block(req)[20:])),
        (S, SETTINGS + frame(5, 4, 1, b"\0\0\0\x02" + block([(":method", "GET"), (":path", "/s.css")])) + headers(1, [(":status", "200")]) + frame(0, 8, 1, b"\x03abc\0\0\0") + frame(3, 0, 1, b"\0\0\0\x08") + headers(2, [(":status", "200")]) + data(2, b"css", True) + frame(7, 0, 0, b"\0\0\0\x01\0\0\0\0")),
    ]),
    "h2c-upgrade": script([
        (C, b"GET /up HTTP/1.1\r\nHost: h\r\nConnection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\nHTTP2-Settings: AAMAAABkAAQAoAAAAAIAAAAA\r\n\r\n"),
        (C, b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + SETTINGS),
        (S, b"HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: h2c\r\n\r\n" + SETTINGS + headers(1, [(":status", "200")]) + data(1, b"up", True)),
    ], flags=2),
    "coded": script([
        (C, SETTINGS + headers(1, req, True) + headers(3, [(":method", "POST"), (":path", "/up"), ("content-encoding", "gzip")]) + data(3, GZ[:30]) + data(3, GZ[30:], True) + headers(5, req, True)),
        (S, SETTINGS + headers(1, [(":status", "200"), ("content-encoding", "br")]) + headers(5, [(":status", "200"), ("content-encoding", "gzip")]) + data(1, BR[:20]) + data(5, GZ[:40]) + data(1, BR[20:], True) + frame(3, 0, 5, b"\0\0\0\x08") + headers(3, [(":status", "204")], True)),
    ]),
}
os.makedirs(OUT, exist_ok=True)
for name, s in seeds.items():
    with open(os.path.join(OUT, name), "wb") as f:
        f.write(s)
    print(name, len(s))
