//! Connection-level HTTP/2 tests, through the HTTP/1 stage's hand-over (so the
//! hook is tested too): pairing by stream, interleaving, trailers, gRPC,
//! resets, h2c, gaps, unknown HPACK state, budgets, and every split point.

use super::frame::tests::frame;
use super::frame::{flag, kind, PREFACE};
use crate::budget::{Pool, WorkerBudget};
use crate::http::{HttpConfig, HttpConnection, HttpStats};
use crate::message::{ConnMeta, Direction, Endpoint, HeaderValue, HttpMessage, MessageKind, Side};
use crate::time::Timestamp;
use std::net::{IpAddr, Ipv4Addr};

fn meta(mid_stream: bool) -> ConnMeta {
    ConnMeta {
        id: 9,
        client: Endpoint {
            ip: IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1)),
            port: 40000,
        },
        server: Endpoint {
            ip: IpAddr::V4(Ipv4Addr::new(10, 0, 0, 2)),
            port: 50051,
        },
        direction: Direction::Inbound,
        mid_stream,
    }
}

/// HPACK integer with an `n`-bit prefix and the given first-byte flags.
fn int(flags: u8, n: u32, v: usize, out: &mut Vec<u8>) {
    let max = (1usize << n) - 1;
    if v < max {
        out.push(flags | v as u8);
        return;
    }
    out.push(flags | max as u8);
    let mut v = v - max;
    while v >= 128 {
        out.push((v % 128 + 128) as u8);
        v /= 128;
    }
    out.push(v as u8);
}

fn string(s: &[u8], out: &mut Vec<u8>) {
    int(0, 7, s.len(), out);
    out.extend_from_slice(s);
}

/// A header block of literals without indexing (new names).
pub(crate) fn block(fields: &[(&str, &str)]) -> Vec<u8> {
    let mut out = Vec::new();
    for (n, v) in fields {
        out.push(0);
        string(n.as_bytes(), &mut out);
        string(v.as_bytes(), &mut out);
    }
    out
}

/// A header block of literals *with* incremental indexing.
fn block_indexed(fields: &[(&str, &str)]) -> Vec<u8> {
    let mut out = Vec::new();
    for (n, v) in fields {
        out.push(0x40);
        string(n.as_bytes(), &mut out);
        string(v.as_bytes(), &mut out);
    }
    out
}

fn headers(stream: u32, end_stream: bool, fields: &[(&str, &str)]) -> Vec<u8> {
    let f = flag::END_HEADERS | if end_stream { flag::END_STREAM } else { 0 };
    frame(kind::HEADERS, f, stream, &block(fields))
}

fn data(stream: u32, end_stream: bool, payload: &[u8]) -> Vec<u8> {
    frame(
        kind::DATA,
        if end_stream { flag::END_STREAM } else { 0 },
        stream,
        payload,
    )
}

fn settings() -> Vec<u8> {
    frame(
        kind::SETTINGS,
        0,
        0,
        &[0, 3, 0, 0, 0, 100, 0, 4, 0, 1, 0, 0],
    )
}

fn client_start() -> Vec<u8> {
    [PREFACE, &settings()[..]].concat()
}

fn get(stream: u32, path: &str) -> Vec<u8> {
    headers(
        stream,
        true,
        &[
            (":method", "GET"),
            (":scheme", "http"),
            (":path", path),
            (":authority", "example.test:8080"),
            ("user-agent", "t/1"),
        ],
    )
}

fn ok(stream: u32, end: bool) -> Vec<u8> {
    headers(
        stream,
        end,
        &[(":status", "200"), ("content-type", "text/plain")],
    )
}

#[derive(Clone, Copy, Debug)]
enum Ev<'a> {
    C(&'a [u8]),
    S(&'a [u8]),
    GapC(u64),
    GapS(u64),
    FinC,
    FinS,
}

struct Run {
    conn: HttpConnection,
    cfg: HttpConfig,
    stats: HttpStats,
    out: Vec<HttpMessage>,
}

impl Run {
    fn new() -> Self {
        Self::with(false, WorkerBudget::unlimited(), HttpConfig::default())
    }
    fn with(mid_stream: bool, budget: WorkerBudget, cfg: HttpConfig) -> Self {
        Run {
            conn: HttpConnection::new(&meta(mid_stream)).with_budget(budget.clone()),
            cfg,
            stats: HttpStats::default(),
            out: Vec::new(),
        }
    }
    fn ev(&mut self, k: usize, e: Ev<'_>) {
        let ts = Timestamp(k as u64 * 1000);
        let (cfg, st, out) = (&self.cfg, &mut self.stats, &mut self.out);
        match e {
            Ev::C(b) => self.conn.data(Side::Client, b, ts, cfg, st, out),
            Ev::S(b) => self.conn.data(Side::Server, b, ts, cfg, st, out),
            Ev::GapC(n) => self.conn.gap(Side::Client, n, ts, cfg, st, out),
            Ev::GapS(n) => self.conn.gap(Side::Server, n, ts, cfg, st, out),
            Ev::FinC => self.conn.fin(Side::Client, ts, cfg, st, out),
            Ev::FinS => self.conn.fin(Side::Server, ts, cfg, st, out),
        }
    }
    fn run(&mut self, evs: &[Ev<'_>]) {
        for (k, e) in evs.iter().enumerate() {
            self.ev(k + 1, *e);
        }
    }
    fn close(&mut self) {
        self.conn.close(
            Timestamp(999_000),
            &self.cfg,
            &mut self.stats,
            &mut self.out,
        );
    }
}

fn header<'a>(m: &'a HttpMessage, name: &str) -> Option<&'a str> {
    m.headers
        .iter()
        .find(|(n, _)| n == name)
        .and_then(|(_, v)| match v {
            HeaderValue::Single(s) => Some(s.as_str()),
            HeaderValue::List(_) => None,
        })
}

fn trailer<'a>(m: &'a HttpMessage, name: &str) -> Option<&'a str> {
    m.trailers
        .iter()
        .find(|(n, _)| n == name)
        .and_then(|(_, v)| match v {
            HeaderValue::Single(s) => Some(s.as_str()),
            HeaderValue::List(_) => None,
        })
}

/// `(type, seq, stream, method-or-status, url, body, incomplete)` of each message.
fn summary(out: &[HttpMessage]) -> Vec<(String, u64, u32, String, String, usize, bool)> {
    out.iter()
        .map(|m| {
            let (t, a, b) = match &m.kind {
                MessageKind::Request { method, url } => ("req", method.clone(), url.clone()),
                MessageKind::Response { status_code, .. } => {
                    ("resp", status_code.to_string(), String::new())
                }
            };
            (
                t.to_string(),
                m.sequence,
                m.stream_id.unwrap_or(0),
                a,
                b,
                m.body_size as usize,
                m.incomplete,
            )
        })
        .collect()
}

fn s(
    t: &str,
    seq: u64,
    id: u32,
    a: &str,
    b: &str,
    size: usize,
    inc: bool,
) -> (String, u64, u32, String, String, usize, bool) {
    (t.into(), seq, id, a.into(), b.into(), size, inc)
}

#[test]
fn prior_knowledge_exchange_with_split_body_and_trailers() {
    let mut r = Run::new();
    let post = headers(
        1,
        false,
        &[
            (":method", "POST"),
            (":scheme", "http"),
            (":path", "/upload?token=abc&x=1"),
            (":authority", "h.test"),
            ("content-type", "application/json"),
            ("authorization", "Bearer s3cret"),
            ("cookie", "a=1"),
            ("cookie", "b=2"),
        ],
    );
    let client = [
        client_start(),
        post,
        data(1, false, b"{\"k\":"),
        data(1, true, b"\"v\"}"),
    ]
    .concat();
    let resp = [
        settings(),
        frame(kind::SETTINGS, flag::ACK, 0, &[]),
        ok(1, false),
        data(1, false, b"hello "),
        data(1, false, b"world"),
        headers(1, true, &[("x-checksum", "42")]),
    ]
    .concat();
    r.run(&[Ev::C(&client), Ev::S(&resp)]);
    assert_eq!(
        summary(&r.out),
        vec![
            s(
                "req",
                0,
                1,
                "POST",
                "/upload?token=[REDACTED]&x=1",
                9,
                false
            ),
            s("resp", 0, 1, "200", "", 11, false),
        ]
    );
    let (req, resp) = (&r.out[0], &r.out[1]);
    assert_eq!(req.http_version, "2");
    assert_eq!(header(req, "host"), Some("h.test"));
    assert_eq!(header(req, "authorization"), Some("[REDACTED]"));
    assert_eq!(header(req, "cookie"), Some("[REDACTED]"));
    assert_eq!(req.body, b"{\"k\":\"v\"}");
    assert!(req.headers.iter().all(|(n, _)| !n.starts_with(':')));
    assert_eq!(resp.body, b"hello world");
    assert_eq!(trailer(resp, "x-checksum"), Some("42"));
    assert_eq!(header(resp, "x-checksum"), None);
    match resp.kind {
        MessageKind::Response { latency_ms, .. } => assert_eq!(latency_ms, Some(1.0)),
        _ => unreachable!(),
    }
    let j = resp.to_json(None);
    assert!(
        j.contains(r#""httpVersion":"2","streamId":1,"headers":{"#),
        "{j}"
    );
    assert!(j.contains(r#""trailers":{"x-checksum":"42"}"#), "{j}");
    assert_eq!(r.stats.h2_connections, 1);
    assert_eq!(r.stats.h2_streams, 1);
    assert_eq!(r.stats.h2_frames, 10);
    assert_eq!(r.stats.requests, 1);
    assert_eq!(r.stats.responses, 1);
    assert!(r.conn.wants_data());
    r.close();
    assert_eq!(r.out.len(), 2);
}

/// Streams 1, 3, 5 open together; frames interleave; responses come in
/// reverse order. Sequences follow stream order, pairing follows stream ids.
fn interleaved() -> (Vec<u8>, Vec<u8>) {
    let c = [
        client_start(),
        get(1, "/a"),
        headers(
            3,
            false,
            &[(":method", "PUT"), (":path", "/b"), (":scheme", "http")],
        ),
        get(5, "/c"),
        data(3, false, &[b'x'; 100]),
        frame(kind::WINDOW_UPDATE, 0, 0, &[0, 0, 1, 0]),
        data(3, true, &[b'y'; 50]),
    ]
    .concat();
    let sv = [
        settings(),
        ok(5, false),
        ok(1, false),
        data(5, false, b"five"),
        frame(kind::PING, 0, 0, &[1; 8]),
        data(1, true, b"one"),
        headers(3, true, &[(":status", "201")]),
        data(5, true, b"!"),
    ]
    .concat();
    (c, sv)
}

#[test]
fn interleaved_streams_pair_by_stream_id() {
    let (c, sv) = interleaved();
    let mut r = Run::new();
    r.run(&[Ev::C(&c), Ev::S(&sv)]);
    assert_eq!(
        summary(&r.out),
        vec![
            s("req", 0, 1, "GET", "/a", 0, false),
            s("req", 2, 5, "GET", "/c", 0, false),
            s("req", 1, 3, "PUT", "/b", 150, false),
            s("resp", 0, 1, "200", "", 3, false),
            s("resp", 1, 3, "201", "", 0, false),
            s("resp", 2, 5, "200", "", 5, false),
        ]
    );
    assert_eq!(r.stats.h2_streams, 3);
    assert_eq!(r.stats.incomplete_messages, 0);
}

#[test]
fn every_split_point_gives_the_same_messages() {
    let (c, sv) = interleaved();
    let mut whole = Run::new();
    whole.run(&[Ev::C(&c), Ev::S(&sv)]);
    // Responses never precede the requests they answer: split one direction
    // at every offset while the other is whole.
    for cut in 0..=c.len() {
        let mut r = Run::new();
        r.run(&[Ev::C(&c[..cut]), Ev::C(&c[cut..]), Ev::S(&sv)]);
        assert_eq!(summary(&r.out), summary(&whole.out), "client cut {cut}");
    }
    for cut in 0..=sv.len() {
        let mut r = Run::new();
        r.run(&[Ev::C(&c), Ev::S(&sv[..cut]), Ev::S(&sv[cut..])]);
        assert_eq!(summary(&r.out), summary(&whole.out), "server cut {cut}");
    }
    // Byte by byte.
    let mut r = Run::new();
    for (k, b) in c.iter().enumerate() {
        r.ev(k, Ev::C(std::slice::from_ref(b)));
    }
    for (k, b) in sv.iter().enumerate() {
        r.ev(k, Ev::S(std::slice::from_ref(b)));
    }
    let mut a = summary(&r.out);
    let mut b = summary(&whole.out);
    a.sort();
    b.sort();
    assert_eq!(a, b);
}

#[test]
fn reset_mid_body_is_incomplete() {
    let mut r = Run::new();
    let c = [client_start(), get(1, "/big"), get(3, "/never")].concat();
    let sv = [
        settings(),
        ok(1, false),
        data(1, false, &[0u8; 1000]),
        frame(kind::RST_STREAM, 0, 1, &[0, 0, 0, 8]),
        frame(kind::RST_STREAM, 0, 3, &[0, 0, 0, 7]),
        frame(kind::GOAWAY, 0, 0, &[0, 0, 0, 3, 0, 0, 0, 0]),
    ]
    .concat();
    r.run(&[Ev::C(&c), Ev::S(&sv)]);
    assert_eq!(
        summary(&r.out),
        vec![
            s("req", 0, 1, "GET", "/big", 0, false),
            s("req", 1, 3, "GET", "/never", 0, false),
            s("resp", 0, 1, "200", "", 1000, true),
        ]
    );
    assert_eq!(r.stats.h2_resets, 2);
    assert_eq!(r.stats.h2_goaways, 1);
    assert_eq!(r.stats.requests_without_response, 1);
    // Data for the reset stream is counted, not attached anywhere.
    r.run(&[Ev::S(&data(1, true, b"late"))]);
    assert_eq!(r.out.len(), 3);
    assert_eq!(r.stats.h2_data_without_stream, 1);
}

/// A gRPC unary call, a trailers-only error, and a server-streaming call.
#[test]
fn grpc_status_in_trailers_and_trailers_only() {
    let mut r = Run::new();
    let call = |id: u32, method: &str| {
        headers(
            id,
            false,
            &[
                (":method", "POST"),
                (":scheme", "http"),
                (":path", method),
                (":authority", "localhost:50051"),
                ("content-type", "application/grpc"),
                ("te", "trailers"),
            ],
        )
    };
    // Length-prefixed message: flag 0, length 5, field 1 = bytes ff fe 00 (binary).
    let msg = [0u8, 0, 0, 0, 5, 0x0a, 0x03, 0xff, 0xfe, 0x00];
    let c = [
        client_start(),
        call(1, "/helloworld.Greeter/SayHello"),
        data(1, true, &msg),
        call(3, "/helloworld.Greeter/Missing"),
        data(3, true, &msg),
    ]
    .concat();
    let grpc_ok = headers(
        1,
        false,
        &[(":status", "200"), ("content-type", "application/grpc")],
    );
    let sv = [
        settings(),
        grpc_ok,
        data(1, false, &msg),
        headers(1, true, &[("grpc-status", "0"), ("grpc-message", "")]),
        headers(
            3,
            true,
            &[
                (":status", "200"),
                ("content-type", "application/grpc"),
                ("grpc-status", "12"),
                ("grpc-message", "unknown method Missing"),
            ],
        ),
    ]
    .concat();
    r.run(&[Ev::C(&c), Ev::S(&sv)]);
    assert_eq!(r.out.len(), 4);
    let ok = &r.out[2];
    assert_eq!(ok.stream_id, Some(1));
    assert_eq!(ok.body, msg);
    assert_eq!(trailer(ok, "grpc-status"), Some("0"));
    let j = ok.to_json(None);
    assert!(j.contains(r#""bodyEncoding":"base64""#), "{j}");
    let only = &r.out[3];
    assert_eq!(only.stream_id, Some(3));
    assert_eq!(trailer(only, "grpc-status"), Some("12"));
    assert_eq!(
        trailer(only, "grpc-message"),
        Some("unknown method Missing")
    );
    assert_eq!(header(only, "grpc-status"), None);
    assert_eq!(header(only, "content-type"), Some("application/grpc"));
    assert_eq!(r.out[1].body, msg);
    assert_eq!(r.out[1].body_size, 10);
}

#[test]
fn h2c_upgrade_request_is_stream_one() {
    let mut r = Run::new();
    let req = b"GET /up HTTP/1.1\r\nHost: h\r\nConnection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\nHTTP2-Settings: AAMAAABkAAQAoAAAAAIAAAAA\r\n\r\n";
    let switch = b"HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: h2c\r\n\r\n";
    let after_101 = [
        settings(),
        ok(1, false),
        data(1, true, b"upgraded"),
        ok(3, true),
    ]
    .concat();
    let server = [&switch[..], &after_101].concat();
    let client = [client_start(), get(3, "/second")].concat();
    r.run(&[Ev::C(req), Ev::C(&client), Ev::S(&server)]);
    assert_eq!(
        summary(&r.out),
        vec![
            s("req", 0, 0, "GET", "/up", 0, false),
            s("resp", 0, 0, "101", "", 0, false),
            s("req", 1, 3, "GET", "/second", 0, false),
            s("resp", 0, 1, "200", "", 8, false),
            s("resp", 1, 3, "200", "", 0, false),
        ]
    );
    assert_eq!(r.out[0].http_version, "1.1");
    assert_eq!(r.out[3].http_version, "2");
    assert!(matches!(
        r.out[3].kind,
        MessageKind::Response {
            latency_ms: Some(_),
            ..
        }
    ));
    assert_eq!(r.stats.h2_upgrades, 1);
    assert_eq!(r.stats.upgraded_connections, 1);
    assert_eq!(r.stats.skipped_bytes, 0);
}

#[test]
fn padding_priority_continuation_and_push() {
    let mut r = Run::new();
    // HEADERS padded (3) with priority, its block split over two CONTINUATIONs.
    let b = block(&[
        (":method", "GET"),
        (":path", "/p"),
        (":scheme", "http"),
        (":authority", "a"),
        ("x-long", &"v".repeat(300)),
    ]);
    let mut hp = vec![3u8, 0, 0, 0, 0, 200];
    hp.extend_from_slice(&b[..10]);
    hp.extend_from_slice(&[0, 0, 0]);
    let c = [
        client_start(),
        frame(kind::PRIORITY, 0, 1, &[0, 0, 0, 0, 16]),
        frame(
            kind::HEADERS,
            flag::PADDED | flag::PRIORITY | flag::END_STREAM,
            1,
            &hp,
        ),
        frame(kind::CONTINUATION, 0, 1, &b[10..100]),
        frame(kind::CONTINUATION, flag::END_HEADERS, 1, &b[100..]),
    ]
    .concat();
    // Padded DATA (5 bytes of padding), and a push of /style.css on stream 2.
    let mut dp = vec![5u8];
    dp.extend_from_slice(b"body");
    dp.extend_from_slice(&[0; 5]);
    let mut pp = vec![0, 0, 0, 2];
    pp.extend_from_slice(&block(&[
        (":method", "GET"),
        (":path", "/style.css"),
        (":scheme", "http"),
        (":authority", "a"),
    ]));
    let sv = [
        settings(),
        frame(kind::PUSH_PROMISE, flag::END_HEADERS, 1, &pp),
        ok(1, false),
        frame(kind::DATA, flag::PADDED | flag::END_STREAM, 1, &dp),
        ok(2, false),
        data(2, true, b"css"),
    ]
    .concat();
    r.run(&[Ev::C(&c), Ev::S(&sv)]);
    assert_eq!(
        summary(&r.out),
        vec![
            s("req", 0, 1, "GET", "/p", 0, false),
            s("req", 1, 2, "GET", "/style.css", 0, false),
            s("resp", 0, 1, "200", "", 4, false),
            s("resp", 1, 2, "200", "", 3, false),
        ]
    );
    assert_eq!(header(&r.out[0], "x-long").map(str::len), Some(300));
    assert_eq!(r.out[2].body, b"body");
    assert_eq!(r.stats.h2_push_promises, 1);
    assert_eq!(r.stats.h2_frame_errors, 0);
}

#[test]
fn server_speaking_first_and_interim_responses() {
    let mut r = Run::new();
    let c = [
        client_start(),
        headers(
            1,
            false,
            &[
                (":method", "POST"),
                (":path", "/x"),
                (":scheme", "http"),
                ("expect", "100-continue"),
            ],
        ),
    ]
    .concat();
    r.run(&[
        Ev::S(&settings()),
        Ev::C(&c),
        Ev::S(&headers(1, false, &[(":status", "100")])),
        Ev::C(&data(1, true, b"abc")),
        Ev::S(&[ok(1, false), data(1, true, b"done")].concat()),
    ]);
    assert_eq!(
        summary(&r.out),
        vec![
            s("resp", 0, 1, "100", "", 0, false),
            s("req", 0, 1, "POST", "/x", 3, false),
            s("resp", 0, 1, "200", "", 4, false),
        ]
    );
    assert_eq!(r.stats.interim_responses, 1);
}

#[test]
fn dynamic_table_is_mirrored_and_a_gap_makes_it_unknown() {
    let mut r = Run::new();
    let first = frame(
        kind::HEADERS,
        flag::END_HEADERS | flag::END_STREAM,
        1,
        &block_indexed(&[(":method", "GET"), (":path", "/one"), ("x-tenant", "blue")]),
    );
    // Stream 3 refers to the table: 0xbe = 62 = x-tenant: blue, 0xbf = :path /one,
    // 0xc0 = :method GET.
    let second = frame(
        kind::HEADERS,
        flag::END_HEADERS | flag::END_STREAM,
        3,
        &[0xc0, 0xbf, 0xbe],
    );
    r.run(&[
        Ev::C(&[client_start(), first, second.clone()].concat()),
        Ev::S(&[settings(), ok(1, true), ok(3, true)].concat()),
    ]);
    assert_eq!(r.out.len(), 4);
    assert_eq!(summary(&r.out)[1], s("req", 1, 3, "GET", "/one", 0, false));
    assert_eq!(header(&r.out[1], "x-tenant"), Some("blue"));
    // A gap on the client side across frame boundaries: the table is unknown.
    // Stream 5 refers to the same entries: its fields are left out, not guessed.
    let third = frame(
        kind::HEADERS,
        flag::END_HEADERS | flag::END_STREAM,
        5,
        &[0x82, 0x84, 0xbe],
    );
    let ping = frame(kind::PING, 0, 0, &[0; 8]);
    r.run(&[
        Ev::GapC(50),
        Ev::C(&[ping.clone(), ping.clone(), third, ping].concat()),
        Ev::S(&ok(5, true)),
    ]);
    assert_eq!(summary(&r.out)[4], s("req", 2, 5, "GET", "/", 0, true));
    assert_eq!(header(&r.out[4], "x-tenant"), None);
    assert_eq!(r.stats.h2_hpack_unknown_fields, 1);
    assert_eq!(r.stats.h2_resyncs, 1);
    assert_eq!(summary(&r.out)[5], s("resp", 2, 5, "200", "", 0, false));
}

#[test]
fn gap_inside_data_keeps_the_frame_boundaries() {
    let mut r = Run::new();
    let body = data(1, true, &[b'z'; 1000]);
    r.run(&[
        Ev::C(&[client_start(), get(1, "/")].concat()),
        Ev::S(&[settings(), ok(1, false)].concat()),
        Ev::S(&body[..100]),
        Ev::GapS(500),
        Ev::S(&body[600..]),
        Ev::C(&get(3, "/next")),
        Ev::S(&ok(3, true)),
    ]);
    assert_eq!(
        summary(&r.out),
        vec![
            s("req", 0, 1, "GET", "/", 0, false),
            s("resp", 0, 1, "200", "", 1000, true),
            s("req", 1, 3, "GET", "/next", 0, false),
            s("resp", 1, 3, "200", "", 0, false),
        ]
    );
    assert_eq!(r.out[1].body.len(), 91);
    assert!(r.out[1].truncated);
    assert_eq!(r.stats.h2_resyncs, 0);
}

#[test]
fn mid_connection_capture_decodes_what_it_can() {
    let mut r = Run::with(true, WorkerBudget::unlimited(), HttpConfig::default());
    // The tail of a DATA frame, then frames; 0xbe refers to an entry never seen.
    let tail = [b'q'; 37];
    let req = frame(
        kind::HEADERS,
        flag::END_HEADERS | flag::END_STREAM,
        7,
        &[0x82, 0x04, 0x02, b'/', b'm', 0xbe],
    );
    let ping = frame(kind::PING, 0, 0, &[0; 8]);
    r.run(&[
        Ev::C(&[&tail[..], &ping, &req, &ping].concat()),
        Ev::S(&[&tail[..], &ok(7, false), &data(7, true, b"x")].concat()),
    ]);
    assert_eq!(
        summary(&r.out),
        vec![
            s("req", 0, 7, "GET", "/m", 0, true),
            s("resp", 0, 7, "200", "", 1, false),
        ]
    );
    assert_eq!(r.stats.h2_mid_stream, 1);
    assert_eq!(r.stats.h2_hpack_unknown_fields, 1);
    // A response whose request was never seen closes its stream when it ends.
    r.run(&[Ev::S(&[ok(9, false), data(9, true, b"yz")].concat())]);
    assert_eq!(summary(&r.out)[2], s("resp", 1, 9, "200", "", 2, true));
    assert_eq!(r.stats.responses_without_request, 1);
    r.close();
    assert_eq!(r.out.len(), 3);
    assert_eq!(r.stats.requests_without_response, 0);
}

#[test]
fn fin_and_close_emit_unfinished_streams() {
    let mut r = Run::new();
    r.run(&[
        Ev::C(
            &[
                client_start(),
                headers(1, false, &[(":method", "POST"), (":path", "/s")]),
                data(1, false, b"part"),
            ]
            .concat(),
        ),
        Ev::S(&[settings(), ok(3, false)].concat()),
        Ev::FinC,
    ]);
    assert_eq!(summary(&r.out)[0], s("req", 0, 1, "POST", "/s", 4, true));
    assert_eq!(r.out.len(), 1);
    r.run(&[Ev::FinS]);
    assert_eq!(summary(&r.out)[1], s("resp", 1, 3, "200", "", 0, true));
    r.close();
    assert_eq!(r.out.len(), 2);
    assert_eq!(r.stats.responses_without_request, 1);
}

#[test]
fn budgets_are_charged_and_given_back() {
    let budget = WorkerBudget::unlimited();
    let mut r = Run::with(false, budget.clone(), HttpConfig::default());
    let (c, sv) = interleaved();
    r.run(&[Ev::C(&c[..c.len() - 20]), Ev::S(&sv[..40])]);
    assert!(budget.pending.held() > 0);
    assert!(budget.heads.held() > 0);
    r.close();
    drop(r);
    assert_eq!(budget.heads.held(), 0);
    assert_eq!(budget.pending.held(), 0);
    assert_eq!(budget.bodies.held(), 0);

    // A pending pool for two streams: opening a third sheds the oldest.
    let tight = WorkerBudget {
        reassembly_max: 1 << 20,
        heads: Pool::unlimited(),
        pending: Pool::new(2 * super::STREAM_COST),
        bodies: Pool::new(10),
    };
    let mut r = Run::with(false, tight.clone(), HttpConfig::default());
    let open = |id| headers(id, false, &[(":method", "POST"), (":path", "/")]);
    r.run(&[Ev::C(
        &[
            client_start(),
            open(1),
            open(3),
            open(5),
            data(5, true, &[1; 64]),
        ]
        .concat(),
    )]);
    assert_eq!(r.stats.h2_streams_shed, 1);
    assert_eq!(summary(&r.out)[0], s("req", 0, 1, "POST", "/", 0, true));
    let last = r.out.last().unwrap();
    assert_eq!(
        (last.body.len(), last.body_size, last.truncated),
        (10, 64, true)
    );
    assert_eq!(r.stats.bodies_cut_by_budget, 1);
    r.close();
    drop(r);
    assert_eq!(tight.pending.held(), 0);
    assert_eq!(tight.bodies.held(), 0);
}

#[test]
fn hostile_input_never_panics_and_is_bounded() {
    // Frames with every type and flag combination, bad lengths, a huge
    // declared frame, broken HPACK: nothing panics; memory stays bounded.
    let mut seed = 0x1234_5678u32;
    let mut rnd = move || {
        seed ^= seed << 13;
        seed ^= seed >> 17;
        seed ^= seed << 5;
        seed
    };
    let budget = WorkerBudget::for_workers(1);
    for _ in 0..200 {
        let mut r = Run::with(false, budget.clone(), HttpConfig::default());
        let mut c = client_start();
        for _ in 0..20 {
            let len = (rnd() % 40) as usize;
            let payload: Vec<u8> = (0..len).map(|_| rnd() as u8).collect();
            c.extend(frame((rnd() % 11) as u8, rnd() as u8, rnd() % 6, &payload));
        }
        c.extend(frame(kind::DATA, 0, 1, &[]));
        c.extend_from_slice(&[0xff, 0xff, 0xff, 0, 0, 0, 0, 0, 1]);
        r.run(&[Ev::C(&c), Ev::S(&c[24..]), Ev::GapS(10), Ev::S(&c)]);
        assert!(r.conn.buffered_bytes() < 200_000);
        r.close();
    }
    assert_eq!(budget.heads.held(), 0);
    assert_eq!(budget.pending.held(), 0);
}

#[test]
fn frame_boundaries_are_found_by_content() {
    use super::{find_frames, looks_like_frames};
    let ping = frame(kind::PING, 0, 0, &[0; 8]);
    let two = [&b"xyz"[..], &ping, &ok(1, true)].concat();
    // After a gap two frames ending exactly at the end are enough; to call a
    // mid-stream connection HTTP/2 it takes a chain of three.
    assert_eq!(find_frames(&two, 16_384, true), Some(3));
    assert_eq!(looks_like_frames(&two), None);
    let three = [&two[..], &ping].concat();
    assert_eq!(looks_like_frames(&three), Some(3));
    // HTTP/1 text and random bytes are not frames.
    assert_eq!(
        looks_like_frames(b"GET / HTTP/1.1\r\nHost: a\r\n\r\nHTTP/1.1 200 OK\r\n\r\n"),
        None
    );
    let noise: Vec<u8> = (0..4096u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    assert_eq!(looks_like_frames(&noise), None);
}

// ---- content decoding (decodeBodies) -------------------------------------

use crate::http::decode::tests::{gzip, BR_TEXT20, TEXT};

/// A response head with `content-encoding: coding` (and `content-type`).
fn ok_coded(stream: u32, coding: &str, content_type: &str) -> Vec<u8> {
    headers(
        stream,
        false,
        &[
            (":status", "200"),
            ("content-type", content_type),
            ("content-encoding", coding),
        ],
    )
}

/// `wire` as DATA frames of at most `n` bytes on `stream`, the last one ending it.
fn data_frames(stream: u32, wire: &[u8], n: usize) -> Vec<u8> {
    let chunks: Vec<&[u8]> = wire.chunks(n).collect();
    let last = chunks.len() - 1;
    chunks
        .iter()
        .enumerate()
        .flat_map(|(i, c)| data(stream, i == last, c))
        .collect()
}

/// Streams 1 (gzip) and 3 (br) with their DATA frames interleaved: each body
/// is decoded on its own, across frames, at every split of the server's bytes.
#[test]
fn gzip_and_br_bodies_decode_across_data_frames() {
    let plain = TEXT.repeat(20);
    let gz = gzip(&plain);
    let g = data_frames(1, &gz, 7);
    let b = data_frames(3, BR_TEXT20, 5);
    // Frames are 9 + up to 7 (gzip) and 9 + up to 5 (br) bytes: interleave them.
    let (gf, bf): (Vec<&[u8]>, Vec<&[u8]>) = (g.chunks(16).collect(), b.chunks(14).collect());
    let mut sv = [
        settings(),
        ok_coded(1, "gzip", "text/plain"),
        ok_coded(3, "br", "text/plain"),
    ]
    .concat();
    for k in 0..gf.len().max(bf.len()) {
        for f in [gf.get(k), bf.get(k)].into_iter().flatten() {
            sv.extend_from_slice(f);
        }
    }
    let c = [client_start(), get(1, "/g"), get(3, "/b")].concat();
    let check = |r: &Run| {
        assert_eq!(r.out.len(), 4);
        let g = r
            .out
            .iter()
            .find(|m| m.stream_id == Some(1) && matches!(m.kind, MessageKind::Response { .. }));
        let b = r
            .out
            .iter()
            .find(|m| m.stream_id == Some(3) && matches!(m.kind, MessageKind::Response { .. }));
        for (m, wire_len) in [(g.unwrap(), gz.len()), (b.unwrap(), BR_TEXT20.len())] {
            assert_eq!(m.body, plain);
            assert_eq!(m.body_size, wire_len as u64);
            assert_eq!(m.decoded_body_size, Some(plain.len() as u64));
            assert!(!m.truncated && !m.incomplete);
        }
        assert_eq!(r.stats.bodies_decoded, 2);
        assert_eq!(r.stats.body_decode_errors, 0);
    };
    let mut r = Run::new();
    r.run(&[Ev::C(&c), Ev::S(&sv)]);
    check(&r);
    for cut in 0..=sv.len() {
        let mut r = Run::new();
        r.run(&[Ev::C(&c), Ev::S(&sv[..cut]), Ev::S(&sv[cut..])]);
        check(&r);
    }
    // A request body is decoded as well.
    let post = headers(
        5,
        false,
        &[
            (":method", "POST"),
            (":scheme", "http"),
            (":path", "/up"),
            ("content-encoding", "gzip"),
        ],
    );
    let mut r = Run::new();
    r.run(&[Ev::C(
        &[client_start(), post, data_frames(5, &gz, 100)].concat(),
    )]);
    assert_eq!(r.out[0].body, plain);
    assert_eq!(r.out[0].decoded_body_size, Some(plain.len() as u64));
    assert_eq!(r.out[0].body_size, gz.len() as u64);
}

/// RST_STREAM, a FIN or a gap in the middle of a coded body: decoded up to the
/// cut, `incomplete`, `decodedBodySize` what came out (as HTTP/1 does).
#[test]
fn a_cut_coded_body_decodes_up_to_the_cut() {
    let plain: Vec<u8> = (0..3000u64)
        .flat_map(|i| format!("{{\"n\":{}}}\n", i * 7919 % 10007).into_bytes())
        .collect();
    let gz = gzip(&plain);
    let head = [settings(), ok_coded(1, "gzip", "application/json")].concat();
    let first = data(1, false, &gz[..gz.len() / 2]);
    let c = [client_start(), get(1, "/z")].concat();
    let reset = frame(kind::RST_STREAM, 0, 1, &[0, 0, 0, 8]);
    let rest = data(1, true, &gz[gz.len() / 2..]);
    let runs: Vec<Vec<Ev<'_>>> = vec![
        vec![Ev::C(&c), Ev::S(&head), Ev::S(&first), Ev::S(&reset)],
        vec![Ev::C(&c), Ev::S(&head), Ev::S(&first), Ev::FinS],
        vec![
            Ev::C(&c),
            Ev::S(&head),
            Ev::S(&first),
            Ev::S(&rest[..20]),
            Ev::GapS(100),
            Ev::S(&rest[120..]),
        ],
    ];
    for (k, evs) in runs.iter().enumerate() {
        let mut r = Run::new();
        r.run(evs);
        r.close();
        let m = r
            .out
            .iter()
            .find(|m| matches!(m.kind, MessageKind::Response { .. }))
            .unwrap();
        assert!(m.incomplete, "run {k}");
        assert!(!m.body.is_empty() && m.body.len() < plain.len(), "run {k}");
        assert!(plain.starts_with(&m.body), "run {k}");
        assert_eq!(m.decoded_body_size, Some(m.body.len() as u64), "run {k}");
        assert_eq!(r.stats.bodies_decoded, 1, "run {k}");
        assert_eq!(r.stats.body_decode_errors, 0, "run {k}");
    }
    // Past maxBodySize: `body` is cut, `decodedBodySize` still counts it all.
    let cfg = HttpConfig {
        max_body_size: 100,
        ..HttpConfig::default()
    };
    let mut r = Run::with(false, WorkerBudget::unlimited(), cfg);
    r.run(&[Ev::C(&c), Ev::S(&head), Ev::S(&data_frames(1, &gz, 1000))]);
    assert_eq!(r.out[1].body, plain[..100].to_vec());
    assert_eq!(r.out[1].decoded_body_size, Some(plain.len() as u64));
    assert!(r.out[1].truncated && !r.out[1].incomplete);
}

/// Decoding stops at 64× the compressed input (SPEC's bomb limit), counted.
#[test]
fn a_decompression_bomb_stops_at_the_ratio_limit() {
    let gz = gzip(&vec![0u8; 4 << 20]);
    let cfg = HttpConfig {
        max_body_size: 1 << 30,
        ..HttpConfig::default()
    };
    let mut r = Run::with(false, WorkerBudget::unlimited(), cfg);
    r.run(&[
        Ev::C(&[client_start(), get(1, "/bomb")].concat()),
        Ev::S(
            &[
                settings(),
                ok_coded(1, "gzip", "text/plain"),
                data_frames(1, &gz, 1024),
            ]
            .concat(),
        ),
    ]);
    let m = &r.out[1];
    let size = m.decoded_body_size.unwrap();
    assert!(
        size <= gz.len() as u64 * crate::http::decode::MAX_RATIO,
        "{size}"
    );
    assert!(size < 4 << 20 && size > 0);
    assert!(m.truncated);
    assert_eq!(m.body.len() as u64, size);
    assert_eq!(r.stats.bodies_decode_bomb_limited, 1);
    assert_eq!(r.stats.bodies_decoded, 1);
}

/// Off, not valid for its coding, or gRPC: the body as on the wire.
#[test]
fn bodies_not_decoded_stay_as_on_the_wire() {
    let plain = TEXT.repeat(20);
    let gz = gzip(&plain);
    let c = [client_start(), get(1, "/z")].concat();
    let sv = [
        settings(),
        ok_coded(1, "gzip", "text/plain"),
        data(1, true, &gz),
    ]
    .concat();
    // decodeBodies off.
    let cfg = HttpConfig {
        decode_bodies: false,
        ..HttpConfig::default()
    };
    let mut r = Run::with(false, WorkerBudget::unlimited(), cfg);
    r.run(&[Ev::C(&c), Ev::S(&sv)]);
    assert_eq!(r.out[1].body, gz);
    assert_eq!(r.out[1].decoded_body_size, None);
    assert_eq!(r.stats.bodies_decoded, 0);
    // Not gzip at all: counted, emitted as sent.
    let bad = [
        settings(),
        ok_coded(1, "gzip", "text/plain"),
        data(1, true, b"not z"),
    ]
    .concat();
    let mut r = Run::new();
    r.run(&[Ev::C(&c), Ev::S(&bad)]);
    assert_eq!(r.out[1].body, b"not z");
    assert_eq!(r.out[1].decoded_body_size, None);
    assert_eq!(r.stats.body_decode_errors, 1);
    // gRPC: a (misplaced) content-encoding is not applied to the length-prefixed
    // messages; per-message compression (grpc-encoding, flag byte) is left as is.
    for ct in [
        "application/grpc",
        "application/grpc+proto",
        "Application/GRPC;x=1",
    ] {
        let mut msg = vec![1u8];
        msg.extend_from_slice(&(gz.len() as u32).to_be_bytes());
        msg.extend_from_slice(&gz);
        let sv = [
            settings(),
            headers(
                1,
                false,
                &[
                    (":status", "200"),
                    ("content-type", ct),
                    ("content-encoding", "gzip"),
                    ("grpc-encoding", "gzip"),
                ],
            ),
            data(1, false, &msg),
            headers(1, true, &[("grpc-status", "0")]),
        ]
        .concat();
        let mut r = Run::new();
        r.run(&[Ev::C(&c), Ev::S(&sv)]);
        assert_eq!(r.out[1].body, msg, "{ct}");
        assert_eq!(r.out[1].decoded_body_size, None, "{ct}");
        assert_eq!(
            r.stats.bodies_decoded + r.stats.body_decode_errors,
            0,
            "{ct}"
        );
    }
    // gRPC-Web is plain HTTP to its proxy: a content-encoding there is real.
    let sv = [
        settings(),
        ok_coded(1, "gzip", "application/grpc-web+proto"),
        data(1, true, &gz),
    ]
    .concat();
    let mut r = Run::new();
    r.run(&[Ev::C(&c), Ev::S(&sv)]);
    assert_eq!(r.out[1].body, plain);
}
