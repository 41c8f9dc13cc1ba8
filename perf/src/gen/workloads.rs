//! The five workloads: what each connection looks like and what each exchange carries.
//!
//! | | connections | exchanges per connection | messages |
//! |---|---|---|---|
//! | S | 256 open at once, IPv4 | 20–200, keep-alive, client closes | GET (85 %) / POST, request ≈ 150 B, response ≈ 200 B, one segment each |
//! | L | 16 open at once | 1–8 | GET → 200 with 64 KiB–1 MiB body (half Content-Length, half chunked 8–64 KiB chunks); 25 % PUT upload of 64 KiB–1 MiB → 201 |
//! | F | 64 open at once | exactly 1, `Connection: close`, server closes | GET → 200 with 50–150 B |
//! | A | 64 open at once, 10 % with sequence numbers about to wrap | 5–40 | see [`Workload::plan`]: pipelining, 100-continue, chunk extensions and trailers, chunked requests, split heads, reordering, retransmission, overlap, capture gaps |
//! | M | 128 open at once, 20 % IPv6, 10 % VLAN-tagged, 5 % HTTP/1.0 | 1–30, 10 % end with `Connection: close` | GET/POST/PUT/DELETE/PATCH/HEAD/OPTIONS; 200/201/204/301/304/400/404/500; bodies log-uniform up to 64 KiB, 15 % chunked; HTTP/1.0 responses close-delimited |
//! | H | 64 open at once, HTTP/2 prior knowledge | 20–200 streams, 1–10 at once, DATA interleaved | a third gRPC unary calls (grpc-status trailers), the rest REST GETs with 100 B–64 KiB JSON; see [`super::h2`] |
//!
//! Server port: 8080 for 30 % of connections, else 80.

use super::http::{self, Chunking};
use super::{flow_for, Conn, SegStyle, Twists};
use crate::frame::MSS;
use crate::rng::Rng;
use crate::truth::{Kind, TruthMsg};
use std::borrow::Cow;

/// A workload (see the module doc).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, serde::Serialize)]
pub enum Workload {
    /// Small exchanges on keep-alive connections.
    S,
    /// Large bodies.
    L,
    /// Many short connections.
    F,
    /// Adversarial TCP and HTTP.
    A,
    /// Realistic mix.
    M,
    /// HTTP/2 and gRPC (prior knowledge, interleaved streams)
    H,
}

/// A message body as written on the wire.
#[derive(Debug, Clone, Copy)]
enum Body {
    /// No body and no framing header.
    None,
    /// `Content-Length: n` and `n` bytes.
    Len(usize),
    /// Chunked, carrying `n` payload bytes.
    Chunked(usize, Chunking),
    /// Response body delimited by the connection's close (no framing header).
    Close(usize),
}

impl Body {
    fn size(self) -> u64 {
        match self {
            Body::None => 0,
            Body::Len(n) | Body::Chunked(n, _) | Body::Close(n) => n as u64,
        }
    }
}

/// Writes a body; returns its byte range in `buf`.
fn put_body(buf: &mut Vec<u8>, fill: &[u8], body: Body, rng: &mut Rng) -> (usize, usize) {
    let start = buf.len();
    match body {
        Body::None => {}
        Body::Len(n) | Body::Close(n) => http::body(buf, fill, n, rng),
        Body::Chunked(n, ch) => http::chunked(buf, fill, n, ch, rng),
    }
    (start, buf.len())
}

fn framing(buf: &mut Vec<u8>, body: Body) {
    match body {
        Body::Len(n) => http::header_num(buf, "Content-Length", n),
        Body::Chunked(..) => http::header(buf, "Transfer-Encoding", "chunked"),
        Body::None | Body::Close(_) => {}
    }
}

/// Writes a request into `c.cbuf` and records it; returns the truth (not yet pushed) and the
/// body's range.
#[allow(clippy::too_many_arguments)]
fn request(
    c: &mut Conn,
    fill: &[u8],
    seq: u64,
    method: &'static str,
    url: &str,
    version: &'static str,
    body: Body,
    extra: &[(&str, &str)],
) -> (TruthMsg, (usize, usize)) {
    let buf = &mut c.cbuf;
    http::request_line(buf, method, url, version);
    http::header(
        buf,
        "Host",
        if c.flow.server_port == 80 {
            "api.example.test"
        } else {
            "api.example.test:8080"
        },
    );
    http::header(buf, "User-Agent", "perf-gen/1.0");
    for (n, v) in extra {
        http::header(buf, n, v);
    }
    framing(buf, body);
    http::end_head(buf);
    let range = put_body(&mut c.cbuf, fill, body, &mut c.rng);
    let mut t = c.truth(Kind::Request, seq);
    t.method = Some(Cow::Borrowed(method));
    t.url = Some(url.to_string());
    t.http_version = Cow::Borrowed(version);
    t.body_size = body.size();
    t.chunked = matches!(body, Body::Chunked(..));
    (t, range)
}

/// Writes a response into `c.sbuf`; `head_only` writes the framing header but no body (answer to
/// HEAD). Returns the truth and the body's range.
#[allow(clippy::too_many_arguments)]
fn response(
    c: &mut Conn,
    fill: &[u8],
    seq: u64,
    version: &'static str,
    code: u16,
    body: Body,
    head_only: bool,
    extra: &[(&str, &str)],
) -> (TruthMsg, (usize, usize)) {
    let buf = &mut c.sbuf;
    http::status_line(buf, version, code, http::reason(code));
    http::header(buf, "Date", "Mon, 01 Jan 2024 00:00:00 GMT");
    for (n, v) in extra {
        http::header(buf, n, v);
    }
    framing(buf, body);
    http::end_head(buf);
    let range = if head_only {
        (c.sbuf.len(), c.sbuf.len())
    } else {
        put_body(&mut c.sbuf, fill, body, &mut c.rng)
    };
    let mut t = c.truth(Kind::Response, seq);
    t.status_code = Some(code);
    t.status_message = Some(Cow::Borrowed(http::reason(code)));
    t.http_version = Cow::Borrowed(version);
    t.body_size = if head_only { 0 } else { body.size() };
    t.chunked = matches!(body, Body::Chunked(..)) && !head_only;
    (t, range)
}

pub(super) fn take_seq(c: &mut Conn) -> u64 {
    let s = c.next_sequence;
    c.next_sequence += 1;
    c.exchanges_left = c.exchanges_left.saturating_sub(1);
    s
}

const NO_TWISTS: Twists = Twists {
    reorder: false,
    retransmit: false,
    overlap: false,
};

impl Workload {
    /// Connections open at the same time.
    pub fn concurrency(self) -> usize {
        match self {
            Workload::S => 256,
            Workload::L => 16,
            Workload::F => 64,
            Workload::A => 64,
            Workload::M => 128,
            Workload::H => 64,
        }
    }

    /// Opens connection `idx`.
    pub fn new_conn(self, idx: u64, mut rng: Rng) -> Conn {
        let server = rng.below(4) as u8;
        let p8080 = rng.chance(300);
        let (v6, vlan) = match self {
            Workload::M => (
                rng.chance(200),
                rng.chance(100).then(|| 100 + rng.below(100) as u16),
            ),
            _ => (false, None),
        };
        let flow = flow_for(idx, v6, server, p8080, vlan);
        let exchanges = match self {
            Workload::S => rng.range(20, 200),
            Workload::L => rng.range(1, 8),
            Workload::F => 1,
            Workload::A => rng.range(5, 40),
            Workload::M => rng.range(1, 30),
            Workload::H => rng.range(20, 200),
        } as u32;
        let wrap = self == Workload::A && rng.chance(100);
        let mut c = Conn::new(idx, flow, rng, exchanges, wrap);
        if wrap {
            c.conn_tags.push("isn-wrap");
        }
        if v6 {
            c.conn_tags.push("ipv6");
        }
        if vlan.is_some() {
            c.conn_tags.push("vlan");
        }
        c.server_closes = self == Workload::F;
        c
    }

    /// Plans the next exchange(s) of `c` (at least one), writing bytes, turns and truth.
    pub fn plan(self, c: &mut Conn, fill: &[u8], truth: &mut Vec<TruthMsg>) {
        match self {
            Workload::S => plan_s(c, fill, truth),
            Workload::L => plan_l(c, fill, truth),
            Workload::F => plan_f(c, fill, truth),
            Workload::A => plan_a(c, fill, truth),
            Workload::M => plan_m(c, fill, truth),
            Workload::H => super::h2::plan_h(c, fill, truth),
        }
    }
}

fn plan_s(c: &mut Conn, fill: &[u8], truth: &mut Vec<TruthMsg>) {
    let seq = take_seq(c);
    let id = c.rng.below(1_000_000);
    let rid = http::hex_id(&mut c.rng);
    let (rq, _) = if c.rng.chance(150) {
        let url = format!("/api/v1/items/{id}/hit");
        let n = c.rng.urange(8, 24);
        request(
            c,
            fill,
            seq,
            "POST",
            &url,
            "1.1",
            Body::Len(n),
            &[("X-Request-Id", &rid)],
        )
    } else {
        let url = format!("/api/v1/items/{id}?fields=name");
        request(
            c,
            fill,
            seq,
            "GET",
            &url,
            "1.1",
            Body::None,
            &[("Accept", "*/*"), ("X-Request-Id", &rid)],
        )
    };
    truth.push(rq);
    let code = if c.rng.chance(50) { 404 } else { 200 };
    let n = c.rng.urange(90, 125);
    let (rs, _) = response(
        c,
        fill,
        seq,
        "1.1",
        code,
        Body::Len(n),
        false,
        &[("Content-Type", "application/json")],
    );
    truth.push(rs);
    c.client_turn(SegStyle::Mss, NO_TWISTS, None);
    c.server_turn(SegStyle::Mss, NO_TWISTS, None);
}

fn plan_f(c: &mut Conn, fill: &[u8], truth: &mut Vec<TruthMsg>) {
    let seq = take_seq(c);
    let url = format!("/f/{}", c.rng.below(100_000_000));
    let (rq, _) = request(
        c,
        fill,
        seq,
        "GET",
        &url,
        "1.1",
        Body::None,
        &[("Accept", "*/*"), ("Connection", "close")],
    );
    truth.push(rq);
    let n = c.rng.urange(50, 150);
    let (rs, _) = response(
        c,
        fill,
        seq,
        "1.1",
        200,
        Body::Len(n),
        false,
        &[("Connection", "close")],
    );
    truth.push(rs);
    c.client_turn(SegStyle::Mss, NO_TWISTS, None);
    c.server_turn(SegStyle::Mss, NO_TWISTS, None);
}

fn plan_l(c: &mut Conn, fill: &[u8], truth: &mut Vec<TruthMsg>) {
    let seq = take_seq(c);
    let size = c.rng.range(64 * 1024, 1024 * 1024) as usize;
    if c.rng.chance(250) {
        let url = format!("/upload/{}", c.rng.below(1_000_000));
        let (rq, _) = request(
            c,
            fill,
            seq,
            "PUT",
            &url,
            "1.1",
            Body::Len(size),
            &[("Content-Type", "application/octet-stream")],
        );
        truth.push(rq);
        let (rs, _) = response(c, fill, seq, "1.1", 201, Body::Len(17), false, &[]);
        truth.push(rs);
    } else {
        let url = format!("/files/blob-{}.bin", c.rng.below(1_000_000));
        let (rq, _) = request(c, fill, seq, "GET", &url, "1.1", Body::None, &[]);
        truth.push(rq);
        let body = if c.rng.chance(500) {
            Body::Len(size)
        } else {
            Body::Chunked(size, Chunking::plain(8 * 1024, 64 * 1024))
        };
        let (rs, _) = response(
            c,
            fill,
            seq,
            "1.1",
            200,
            body,
            false,
            &[("Content-Type", "application/octet-stream")],
        );
        truth.push(rs);
    }
    c.client_turn(SegStyle::Mss, NO_TWISTS, None);
    c.server_turn(SegStyle::Mss, NO_TWISTS, None);
}

fn plan_m(c: &mut Conn, fill: &[u8], truth: &mut Vec<TruthMsg>) {
    let seq = take_seq(c);
    let r = &mut c.rng;
    // HTTP/1.0 connections: one GET, a close-delimited response, the server closes.
    if seq == 0 && c.exchanges_left == 0 && r.chance(170) {
        c.server_closes = true;
        c.conn_tags.push("close-delimited");
        let url = format!("/legacy/page{}.html", r.below(1000));
        let (rq, _) = request(c, fill, seq, "GET", &url, "1.0", Body::None, &[]);
        truth.push(rq);
        let n = c.rng.log_range(1, 32 * 1024) as usize;
        let (rs, _) = response(
            c,
            fill,
            seq,
            "1.0",
            200,
            Body::Close(n),
            false,
            &[("Content-Type", "text/html")],
        );
        truth.push(rs);
        c.client_turn(SegStyle::Mss, NO_TWISTS, None);
        c.server_turn(SegStyle::Mss, NO_TWISTS, None);
        return;
    }
    let method = *r.pick(&[
        "GET", "GET", "GET", "GET", "GET", "GET", "GET", "GET", "GET", "GET", "GET", "POST",
        "POST", "POST", "PUT", "DELETE", "PATCH", "HEAD", "HEAD", "OPTIONS",
    ]);
    let id = r.below(100_000);
    let url = match method {
        "GET" if r.chance(300) => format!("/static/app.{:x}.js", r.next_u64() as u32),
        "GET" => format!("/api/orders/{id}?page={}&sort=desc", r.below(50)),
        "OPTIONS" => "*".to_string(),
        _ => format!("/api/orders/{id}"),
    };
    let chunk = |r: &mut Rng, n: usize| {
        if r.chance(150) {
            Body::Chunked(n, Chunking::plain(256, 8192))
        } else {
            Body::Len(n)
        }
    };
    let req_body = match method {
        "POST" | "PUT" | "PATCH" => {
            let n = r.log_range(10, 16 * 1024) as usize;
            if r.chance(50) {
                Body::Chunked(n, Chunking::plain(256, 4096))
            } else {
                Body::Len(n)
            }
        }
        _ => Body::None,
    };
    let conditional = method == "GET" && r.chance(100);
    let code = match method {
        "GET" if conditional => 304,
        "GET" => *r.pick(&[
            200, 200, 200, 200, 200, 200, 200, 200, 200, 200, 200, 200, 200, 200, 200, 404, 404,
            301, 500, 200,
        ]),
        "POST" => *r.pick(&[201, 201, 200, 200, 400]),
        "PUT" => *r.pick(&[200, 204]),
        "DELETE" | "OPTIONS" => 204,
        _ => 200,
    };
    let closing = c.exchanges_left == 0 && seq > 0 && r.chance(100);
    let cookie = format!("session={:x}; theme=dark", r.next_u64());
    let etag = format!("\"{:x}\"", r.next_u64() as u32);
    let mut extra: Vec<(&str, &str)> = vec![
        ("Accept", "application/json, text/plain, */*"),
        ("Accept-Encoding", "gzip, br"),
    ];
    if r.chance(400) {
        extra.push(("Cookie", &cookie));
    }
    if r.chance(200) {
        extra.push(("Authorization", "Bearer eyJhbGciOiJIUzI1NiJ9.e30.x"));
    }
    if conditional {
        extra.push(("If-None-Match", &etag));
    }
    if closing {
        extra.push(("Connection", "close"));
        c.server_closes = true;
    }
    let (rq, _) = request(c, fill, seq, method, &url, "1.1", req_body, &extra);
    truth.push(rq);
    let r = &mut c.rng;
    let resp_body = match code {
        204 | 304 => Body::None,
        301 => Body::Len(0),
        _ => {
            let n = r.log_range(2, 64 * 1024) as usize;
            chunk(r, n)
        }
    };
    let head_only = method == "HEAD";
    let mut extra: Vec<(&str, &str)> = vec![
        ("Content-Type", "application/json; charset=utf-8"),
        ("Cache-Control", "no-store"),
    ];
    if r.chance(150) {
        extra.push(("Set-Cookie", "session=abc; Path=/; HttpOnly"));
        extra.push(("Set-Cookie", "theme=dark; Path=/"));
    }
    if code == 304 || code == 200 {
        extra.push(("ETag", &etag));
    }
    if code == 301 {
        extra.push(("Location", "/api/orders/"));
    }
    if closing {
        extra.push(("Connection", "close"));
    }
    let (mut rs, _) = response(c, fill, seq, "1.1", code, resp_body, head_only, &extra);
    if head_only {
        rs.tags.push("head".into());
    }
    truth.push(rs);
    c.client_turn(SegStyle::Mss, NO_TWISTS, None);
    c.server_turn(SegStyle::Mss, NO_TWISTS, None);
}

/// Exchanges in A: 2 % capture gap (one segment inside a 6–30 KiB Content-Length body never
/// captured — that message is expected `incomplete`), 20 % pipelined 2–4 requests (HEAD among
/// them), 15 % chunked response with extensions, trailers and odd hex, 10 % `Expect:
/// 100-continue` (interim 100 then final response, same sequence), 8 % chunked request, the rest
/// plain. Every turn is cut in one of three ways (head split into 1–16 byte pieces, random
/// 1–1000 byte segments, MSS) and, except in a gap turn, may be reordered (15 %), have one
/// segment retransmitted (10 %) or overlapped by its successor (10 %).
fn plan_a(c: &mut Conn, fill: &[u8], truth: &mut Vec<TruthMsg>) {
    let roll = c.rng.below(1000);
    let mut msgs: Vec<TruthMsg> = Vec::new();
    let mut tags: Vec<&'static str> = Vec::new();
    let style = |r: &mut Rng, tags: &mut Vec<&'static str>| match r.below(3) {
        0 => {
            tags.push("split-head");
            SegStyle::SplitHead(r.urange(20, 120))
        }
        1 => SegStyle::Random(1000),
        _ => SegStyle::Mss,
    };
    let twists = |r: &mut Rng, tags: &mut Vec<&'static str>| {
        let t = Twists {
            reorder: r.chance(150),
            retransmit: r.chance(100),
            overlap: r.chance(100),
        };
        if t.reorder {
            tags.push("reorder");
        }
        if t.retransmit {
            tags.push("retransmit");
        }
        if t.overlap {
            tags.push("overlap");
        }
        t
    };
    if roll < 20 {
        // Capture gap inside a Content-Length body, in the request or in the response.
        let seq = take_seq(c);
        tags.push("gap");
        let n = c.rng.urange(6000, 30000);
        let in_request = c.rng.chance(500);
        let url = format!("/gap/{}", c.rng.below(1000));
        let (mut rq, rb) = if in_request {
            request(c, fill, seq, "POST", &url, "1.1", Body::Len(n), &[])
        } else {
            request(c, fill, seq, "GET", &url, "1.1", Body::None, &[])
        };
        let (mut rs, sb) = response(
            c,
            fill,
            seq,
            "1.1",
            200,
            Body::Len(if in_request { 2 } else { n }),
            false,
            &[],
        );
        rq.incomplete = in_request;
        rs.incomplete = !in_request;
        msgs.push(rq);
        msgs.push(rs);
        let st = if c.rng.chance(500) {
            SegStyle::Mss
        } else {
            SegStyle::Random(1000)
        };
        let tw = Twists {
            reorder: c.rng.chance(300),
            ..NO_TWISTS
        };
        if in_request {
            c.client_turn(st, tw, Some(rb));
            c.server_turn(SegStyle::Mss, NO_TWISTS, None);
        } else {
            c.client_turn(SegStyle::Mss, NO_TWISTS, None);
            c.server_turn(st, tw, Some(sb));
        }
    } else if roll < 220 && c.exchanges_left >= 2 {
        // Pipelining: 2–4 requests back to back, then the responses back to back.
        let k = c.rng.range(2, 4.min(c.exchanges_left as u64)) as usize;
        tags.push("pipelined");
        let mut resps = Vec::new();
        for _ in 0..k {
            let seq = take_seq(c);
            let head = c.rng.chance(200);
            let url = format!("/p/{}", c.rng.below(10_000));
            let (rq, _) = request(
                c,
                fill,
                seq,
                if head { "HEAD" } else { "GET" },
                &url,
                "1.1",
                Body::None,
                &[],
            );
            msgs.push(rq);
            resps.push((seq, head));
        }
        for (seq, head) in resps {
            let n = c.rng.urange(0, 3000);
            let body = if c.rng.chance(300) {
                Body::Chunked(n, Chunking::plain(1, 700))
            } else {
                Body::Len(n)
            };
            let (mut rs, _) = response(c, fill, seq, "1.1", 200, body, head, &[]);
            if head {
                rs.tags.push("head".into());
            }
            msgs.push(rs);
        }
        let (s1, t1) = (style(&mut c.rng, &mut tags), twists(&mut c.rng, &mut tags));
        c.client_turn(s1, t1, None);
        let (s2, t2) = (style(&mut c.rng, &mut tags), twists(&mut c.rng, &mut tags));
        c.server_turn(s2, t2, None);
    } else if roll < 370 {
        let seq = take_seq(c);
        tags.extend(["chunk-ext", "trailers"]);
        let (rq, _) = request(
            c,
            fill,
            seq,
            "GET",
            "/stream?x=1",
            "1.1",
            Body::None,
            &[("TE", "trailers")],
        );
        msgs.push(rq);
        let n = c.rng.urange(1, 20_000);
        let ch = Chunking {
            min: 1,
            max: 4000,
            extensions: true,
            trailers: true,
            odd_hex: true,
        };
        let (rs, _) = response(
            c,
            fill,
            seq,
            "1.1",
            200,
            Body::Chunked(n, ch),
            false,
            &[("Trailer", "X-Checksum, X-Trailer-Note")],
        );
        msgs.push(rs);
        let (s1, t1) = (style(&mut c.rng, &mut tags), twists(&mut c.rng, &mut tags));
        c.client_turn(s1, t1, None);
        let (s2, t2) = (style(&mut c.rng, &mut tags), twists(&mut c.rng, &mut tags));
        c.server_turn(s2, t2, None);
    } else if roll < 470 {
        // Expect: 100-continue: head, interim 100, body, final response.
        let seq = take_seq(c);
        tags.push("expect-100");
        let n = c.rng.urange(500, 5000);
        let url = format!("/upload/{}", c.rng.below(1000));
        let buf = &mut c.cbuf;
        http::request_line(buf, "POST", &url, "1.1");
        http::header(buf, "Host", "api.example.test");
        http::header(buf, "Expect", "100-continue");
        http::header_num(buf, "Content-Length", n);
        http::end_head(buf);
        let (s1, t1) = (style(&mut c.rng, &mut tags), twists(&mut c.rng, &mut tags));
        c.client_turn(s1, t1, None);
        http::status_line(&mut c.sbuf, "1.1", 100, "Continue");
        http::end_head(&mut c.sbuf);
        c.server_turn(SegStyle::Mss, NO_TWISTS, None);
        http::body(&mut c.cbuf, fill, n, &mut c.rng);
        let (s2, t2) = (style(&mut c.rng, &mut tags), twists(&mut c.rng, &mut tags));
        c.client_turn(s2, t2, None);
        let mut rq = c.truth(Kind::Request, seq);
        rq.method = Some("POST".into());
        rq.url = Some(url);
        rq.body_size = n as u64;
        msgs.push(rq);
        let mut interim = c.truth(Kind::Response, seq);
        interim.status_code = Some(100);
        interim.status_message = Some("Continue".into());
        msgs.push(interim);
        let (rs, _) = response(c, fill, seq, "1.1", 201, Body::Len(12), false, &[]);
        msgs.push(rs);
        c.server_turn(SegStyle::Mss, NO_TWISTS, None);
    } else {
        let seq = take_seq(c);
        let chunked_req = roll < 550;
        let (rq, _) = if chunked_req {
            tags.push("chunk-ext");
            let n = c.rng.urange(1, 8000);
            let ch = Chunking {
                min: 1,
                max: 2000,
                extensions: true,
                trailers: c.rng.chance(500),
                odd_hex: false,
            };
            request(
                c,
                fill,
                seq,
                "POST",
                "/ingest",
                "1.1",
                Body::Chunked(n, ch),
                &[],
            )
        } else if c.rng.chance(300) {
            let n = c.rng.urange(0, 8000);
            request(c, fill, seq, "PUT", "/kv/key", "1.1", Body::Len(n), &[])
        } else {
            request(
                c,
                fill,
                seq,
                "GET",
                "/kv/key?consistent",
                "1.1",
                Body::None,
                &[],
            )
        };
        msgs.push(rq);
        let n = c.rng.urange(0, 8000);
        let (rs, _) = response(c, fill, seq, "1.1", 200, Body::Len(n), false, &[]);
        msgs.push(rs);
        let (s1, t1) = (style(&mut c.rng, &mut tags), twists(&mut c.rng, &mut tags));
        c.client_turn(s1, t1, None);
        let (s2, t2) = (style(&mut c.rng, &mut tags), twists(&mut c.rng, &mut tags));
        c.server_turn(s2, t2, None);
    }
    tags.sort_unstable();
    tags.dedup();
    for mut m in msgs {
        m.tags.extend(tags.iter().map(|&s| Cow::Borrowed(s)));
        truth.push(m);
    }
    const { assert!(MSS >= 1000) };
}
