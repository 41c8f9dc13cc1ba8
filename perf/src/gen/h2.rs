//! Workload H: HTTP/2 in cleartext (prior knowledge), as gRPC and REST services between pods
//! send it.
//!
//! Each connection opens with the client preface and SETTINGS both ways, then carries its
//! streams in rounds: 1–10 streams open at once (HEADERS back to back), the server answers
//! them with DATA frames of ≤ 16 KiB interleaved round-robin across the streams. A third of the
//! streams are gRPC unary calls (POST, `content-type: application/grpc`, a length-prefixed
//! message of 20 B–4 KiB each way, `grpc-status` in trailing HEADERS); the rest are REST GETs
//! with JSON responses of 100 B–64 KiB (5 % a 404). Header blocks use HPACK as real encoders
//! do: static-table indices, literals with indexed names, and `user-agent`/`authority` added to
//! the dynamic table on the connection's first request and referred to by index afterwards, so
//! a sniffer must keep the table to get them right.
//!
//! Truth: one request and one response per stream, `httpVersion` `"2"`, empty
//! `statusMessage`, `sequence` in stream order; body sizes are the DATA payload bytes.

use super::workloads::take_seq;
use super::{Conn, SegStyle, Twists};
use crate::truth::{Kind, TruthMsg};
use std::borrow::Cow;

const PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
const MAX_FRAME: usize = 16_384;

const NO_TWISTS: Twists = Twists {
    reorder: false,
    retransmit: false,
    overlap: false,
};

fn frame(buf: &mut Vec<u8>, kind: u8, flags: u8, stream: u32, payload: &[u8]) {
    let len = payload.len() as u32;
    buf.extend_from_slice(&len.to_be_bytes()[1..]);
    buf.push(kind);
    buf.push(flags);
    buf.extend_from_slice(&stream.to_be_bytes());
    buf.extend_from_slice(payload);
}

/// HPACK integer (RFC 7541 §5.1) with an `n`-bit prefix under `flags`.
fn int(out: &mut Vec<u8>, flags: u8, n: u32, v: usize) {
    let max = (1usize << n) - 1;
    if v < max {
        out.push(flags | v as u8);
        return;
    }
    out.push(flags | max as u8);
    let mut v = v - max;
    while v >= 128 {
        out.push((v % 128) as u8 | 0x80);
        v /= 128;
    }
    out.push(v as u8);
}

fn string(out: &mut Vec<u8>, s: &str) {
    int(out, 0, 7, s.len());
    out.extend_from_slice(s.as_bytes());
}

/// Literal without indexing, name from the static table (§6.2.2).
fn lit(out: &mut Vec<u8>, name_index: usize, value: &str) {
    int(out, 0, 4, name_index);
    string(out, value);
}

/// Literal without indexing, new name.
fn lit_new(out: &mut Vec<u8>, name: &str, value: &str) {
    out.push(0);
    string(out, name);
    string(out, value);
}

/// Plans one round of streams on an HTTP/2 connection.
pub fn plan_h(c: &mut Conn, fill: &[u8], truth: &mut Vec<TruthMsg>) {
    let first = c.next_sequence == 0;
    if first {
        c.cbuf.extend_from_slice(PREFACE);
        frame(
            &mut c.cbuf,
            4,
            0,
            0,
            &[0, 3, 0, 0, 0, 100, 0, 4, 0, 0x60, 0, 0],
        );
        frame(&mut c.sbuf, 4, 0, 0, &[0, 3, 0, 0, 0, 128]);
        frame(&mut c.sbuf, 4, 1, 0, &[]);
        frame(&mut c.cbuf, 4, 1, 0, &[]);
    }
    let authority = if c.flow.server_port == 80 {
        "api.example.test"
    } else {
        "api.example.test:8080"
    };
    let k = c.rng.range(1, 10).min(u64::from(c.exchanges_left.max(1))) as usize;
    // (stream, seq, grpc, response body size, status)
    let mut streams = Vec::with_capacity(k);
    for i in 0..k {
        let seq = take_seq(c);
        let stream = 2 * seq as u32 + 1;
        let grpc = c.rng.chance(333);
        let mut hb = Vec::new();
        let (method, url, req_body) = if grpc {
            hb.push(0x83); // :method POST
            let url = format!("/svc.v1.Items/Get{}", c.rng.below(8));
            lit(&mut hb, 4, &url); // :path
            ("POST", url, Some(5 + c.rng.urange(20, 4096)))
        } else {
            hb.push(0x82); // :method GET
            let url = format!("/api/v1/items/{}?fields=name", c.rng.below(1_000_000));
            lit(&mut hb, 4, &url);
            ("GET", url, None)
        };
        hb.push(0x86); // :scheme http
        if first && i == 0 {
            // :authority and user-agent into the dynamic table (62 and 63 after both).
            int(&mut hb, 0x40, 6, 1);
            string(&mut hb, authority);
            int(&mut hb, 0x40, 6, 58);
            string(&mut hb, "perf-gen/1.0 grpc-go/1.60");
        } else {
            // Indexed: 63 = :authority, 62 = user-agent (newest first).
            hb.extend_from_slice(&[0xbf, 0xbe]);
        }
        if grpc {
            lit(&mut hb, 31, "application/grpc");
            lit_new(&mut hb, "te", "trailers");
        } else {
            lit(&mut hb, 19, "application/json");
        }
        lit_new(&mut hb, "x-request-id", &super::http::hex_id(&mut c.rng));
        frame(
            &mut c.cbuf,
            1,
            0x4 | if grpc { 0 } else { 0x1 },
            stream,
            &hb,
        );
        if let Some(n) = req_body {
            let mut msg = vec![0u8];
            msg.extend_from_slice(&((n - 5) as u32).to_be_bytes());
            super::http::body(&mut msg, fill, n - 5, &mut c.rng);
            frame(&mut c.cbuf, 0, 0x1, stream, &msg);
        }
        let mut t = c.truth(Kind::Request, seq);
        t.method = Some(Cow::Borrowed(method));
        t.url = Some(url);
        t.http_version = Cow::Borrowed("2");
        t.body_size = req_body.unwrap_or(0) as u64;
        truth.push(t);
        let (status, size) = if grpc {
            (200, 5 + c.rng.urange(20, 4096))
        } else if c.rng.chance(50) {
            (404, 40)
        } else {
            // Log-uniform 100 B – 64 KiB.
            let exp = c.rng.urange(7, 16);
            (200, c.rng.urange(1 << (exp - 1), 1 << exp).max(100))
        };
        streams.push((stream, seq, grpc, size, status));
    }
    c.client_turn(SegStyle::Mss, NO_TWISTS, None);

    // Response HEADERS for every stream, then DATA round-robin.
    for &(stream, _, grpc, _, status) in &streams {
        let mut hb = Vec::new();
        match status {
            200 => hb.push(0x88),
            404 => hb.push(0x8d),
            s => lit(&mut hb, 8, &s.to_string()),
        }
        lit(
            &mut hb,
            31,
            if grpc {
                "application/grpc"
            } else {
                "application/json"
            },
        );
        lit(&mut hb, 33, "Mon, 01 Jan 2024 00:00:00 GMT");
        frame(&mut c.sbuf, 1, 0x4, stream, &hb);
    }
    let mut left: Vec<usize> = streams.iter().map(|s| s.3).collect();
    let mut sent = vec![0usize; streams.len()];
    while left.iter().any(|&n| n > 0) {
        for (i, &(stream, _, grpc, size, _)) in streams.iter().enumerate() {
            if left[i] == 0 {
                continue;
            }
            let n = left[i].min(MAX_FRAME).min(c.rng.urange(1024, MAX_FRAME));
            let mut payload = Vec::with_capacity(n);
            if grpc && sent[i] == 0 {
                payload.push(0);
                payload.extend_from_slice(&((size - 5) as u32).to_be_bytes());
            }
            let rest = n - payload.len();
            super::http::body(&mut payload, fill, rest, &mut c.rng);
            left[i] -= n;
            sent[i] += n;
            let end = left[i] == 0 && !grpc;
            frame(&mut c.sbuf, 0, if end { 0x1 } else { 0 }, stream, &payload);
            if left[i] == 0 && grpc {
                let mut tb = Vec::new();
                lit_new(&mut tb, "grpc-status", "0");
                lit_new(&mut tb, "grpc-message", "");
                frame(&mut c.sbuf, 1, 0x5, stream, &tb);
            }
        }
    }
    for &(_, seq, _, size, status) in &streams {
        let mut t = c.truth(Kind::Response, seq);
        t.status_code = Some(status);
        t.status_message = Some(Cow::Borrowed(""));
        t.http_version = Cow::Borrowed("2");
        t.body_size = size as u64;
        truth.push(t);
    }
    c.server_turn(SegStyle::Mss, NO_TWISTS, None);
}
