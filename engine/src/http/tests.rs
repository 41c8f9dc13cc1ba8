//! Connection-level tests: pairing, framing, gaps, detection, limits, and
//! hyper-style split points (every exchange fed split at every byte offset
//! and byte by byte must give the same messages).

use super::*;
use crate::budget::{Pool, WorkerBudget};
use crate::message::HeaderValue;
use crate::message::{ConnMeta, Direction, Endpoint, HttpMessage, MessageKind, Side};
use crate::time::Timestamp;
use std::net::{IpAddr, Ipv4Addr};

fn meta(mid_stream: bool) -> ConnMeta {
    ConnMeta {
        id: 7,
        client: Endpoint {
            ip: IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1)),
            port: 40000,
        },
        server: Endpoint {
            ip: IpAddr::V4(Ipv4Addr::new(10, 0, 0, 2)),
            port: 8080,
        },
        direction: Direction::Inbound,
        mid_stream,
    }
}

/// What happens on the wire, in capture order.
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
    fn new(mid_stream: bool) -> Self {
        Self::with(mid_stream, HttpConfig::default())
    }
    fn with(mid_stream: bool, cfg: HttpConfig) -> Self {
        Run {
            conn: HttpConnection::new(&meta(mid_stream)),
            cfg,
            stats: HttpStats::default(),
            out: Vec::new(),
        }
    }
    fn data(&mut self, side: Side, b: &[u8], t: u64) {
        self.conn.data(
            side,
            b,
            Timestamp(t),
            &self.cfg,
            &mut self.stats,
            &mut self.out,
        );
    }
    /// Event `k` is captured at time `k * 1000` µs.
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
    fn close(&mut self, t: u64) {
        self.conn
            .close(Timestamp(t), &self.cfg, &mut self.stats, &mut self.out);
    }
}

fn run(evs: &[Ev<'_>]) -> Run {
    let mut r = Run::new(false);
    for (k, e) in evs.iter().enumerate() {
        r.ev(k, *e);
    }
    r.close(1_000_000);
    r
}

fn req(m: &HttpMessage) -> (&str, &str) {
    match &m.kind {
        MessageKind::Request { method, url } => (method, url),
        _ => panic!("not a request: {m:?}"),
    }
}

fn status(m: &HttpMessage) -> u16 {
    match &m.kind {
        MessageKind::Response { status_code, .. } => *status_code,
        _ => panic!("not a response: {m:?}"),
    }
}

fn latency(m: &HttpMessage) -> Option<f64> {
    match &m.kind {
        MessageKind::Response { latency_ms, .. } => *latency_ms,
        _ => None,
    }
}

fn header<'a>(m: &'a HttpMessage, name: &str) -> Option<&'a HeaderValue> {
    m.headers.iter().find(|(n, _)| n == name).map(|(_, v)| v)
}

/// (type, sequence, status or url, body, incomplete) per message.
fn summary(out: &[HttpMessage]) -> Vec<(String, u64, String, String, bool)> {
    out.iter()
        .map(|m| {
            let (t, what) = match &m.kind {
                MessageKind::Request { method, url } => ("req", format!("{method} {url}")),
                MessageKind::Response { status_code, .. } => ("res", status_code.to_string()),
            };
            (
                t.to_owned(),
                m.sequence,
                what,
                String::from_utf8_lossy(&m.body).into_owned(),
                m.incomplete,
            )
        })
        .collect()
}

fn s(t: &str, seq: u64, what: &str, body: &str, inc: bool) -> (String, u64, String, String, bool) {
    (t.into(), seq, what.into(), body.into(), inc)
}

#[test]
fn simple_exchange_fields() {
    let r = run(&[
        Ev::C(b"GET /hello?x=1 HTTP/1.1\r\nHost: example\r\nAuthorization: secret\r\n\r\n"),
        Ev::S(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nSet-Cookie: a=1\r\n\r\nhello"),
    ]);
    assert_eq!(r.out.len(), 2);
    let (q, a) = (&r.out[0], &r.out[1]);
    assert_eq!(req(q), ("GET", "/hello?x=1"));
    assert_eq!(q.sequence, 0);
    assert_eq!(q.source, meta(false).client);
    assert_eq!(q.destination, meta(false).server);
    assert_eq!(q.http_version, "1.1");
    assert_eq!(q.connection_id, 7);
    assert_eq!(q.direction, Direction::Inbound);
    assert_eq!(
        header(q, "authorization"),
        Some(&HeaderValue::Single("[REDACTED]".into()))
    );
    assert_eq!(
        header(q, "host"),
        Some(&HeaderValue::Single("example".into()))
    );
    assert_eq!((q.timestamp, q.end_timestamp), (Timestamp(0), Timestamp(0)));
    assert_eq!(status(a), 200);
    assert_eq!(a.sequence, 0);
    assert_eq!(a.source, meta(false).server);
    assert_eq!(a.body, b"hello");
    assert_eq!((a.body_size, a.truncated, a.incomplete), (5, false, false));
    assert_eq!(latency(a), Some(1.0));
    assert_eq!(
        header(a, "set-cookie"),
        Some(&HeaderValue::List(vec!["[REDACTED]".into()]))
    );
    assert_eq!(r.stats.requests, 1);
    assert_eq!(r.stats.responses, 1);
    assert_eq!(r.stats.requests_without_response, 0);
    assert_eq!(r.stats.parse_errors(), 0);
}

#[test]
fn timestamps_span_segments() {
    let mut r = Run::new(false);
    r.data(Side::Client, b"POST / HTTP/1.1\r\nContent-", 10);
    r.data(Side::Client, b"Length: 4\r\n\r\nab", 20);
    r.data(Side::Client, b"cd", 30);
    r.data(Side::Server, b"HTTP/1.1 204 No Content\r\n\r\n", 2030);
    assert_eq!(r.out.len(), 2);
    assert_eq!(
        (r.out[0].timestamp, r.out[0].end_timestamp),
        (Timestamp(10), Timestamp(30))
    );
    assert_eq!(r.out[0].body, b"abcd");
    assert_eq!(latency(&r.out[1]), Some(2.0));
    assert_eq!(r.out[1].body_size, 0);
}

#[test]
fn pipelined_keep_alive() {
    let r = run(&[
        Ev::C(b"GET /a HTTP/1.1\r\n\r\nPOST /b HTTP/1.1\r\nContent-Length: 3\r\n\r\nxyzGET /c HTTP/1.0\r\n\r\n"),
        Ev::S(b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\nAHTTP/1.1 201 Created\r\nContent-Length: 2\r\n\r\nBB"),
        Ev::S(b"HTTP/1.0 200 OK\r\n\r\nclose-delimited"),
        Ev::FinS,
    ]);
    assert_eq!(
        summary(&r.out),
        vec![
            s("req", 0, "GET /a", "", false),
            s("req", 1, "POST /b", "xyz", false),
            s("req", 2, "GET /c", "", false),
            s("res", 0, "200", "A", false),
            s("res", 1, "201", "BB", false),
            s("res", 2, "200", "close-delimited", false),
        ]
    );
    assert_eq!(r.out[2].http_version, "1.0");
    assert_eq!(r.out[5].end_timestamp, Timestamp(3000));
    assert_eq!(r.stats.requests_without_response, 0);
}

#[test]
fn chunked_with_extensions_and_trailers() {
    let r = run(&[
        Ev::C(b"POST /up HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n4;name=val\r\nWiki\r\n5\r\npedia\r\n0\r\nX-Trailer: 1\r\n\r\n"),
        Ev::S(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n"),
    ]);
    assert_eq!(
        summary(&r.out),
        vec![
            s("req", 0, "POST /up", "Wikipedia", false),
            s("res", 0, "200", "abc", false)
        ]
    );
    assert_eq!(r.out[0].body_size, 9);
    assert_eq!(header(&r.out[0], "x-trailer"), None);
    assert_eq!(r.stats.trailers_discarded, 1);
}

#[test]
fn expect_100_continue() {
    let r = run(&[
        Ev::C(b"PUT /f HTTP/1.1\r\nContent-Length: 3\r\nExpect: 100-continue\r\n\r\n"),
        Ev::S(b"HTTP/1.1 100 Continue\r\n\r\n"),
        Ev::C(b"abc"),
        Ev::S(b"HTTP/1.1 201 Created\r\nContent-Length: 0\r\n\r\n"),
    ]);
    assert_eq!(
        summary(&r.out),
        vec![
            s("res", 0, "100", "", false),
            s("req", 0, "PUT /f", "abc", false),
            s("res", 0, "201", "", false),
        ]
    );
    assert_eq!(latency(&r.out[0]), Some(1.0));
    assert_eq!(latency(&r.out[2]), Some(1.0));
    assert_eq!(r.stats.interim_responses, 1);
}

#[test]
fn no_body_responses() {
    let r = run(&[
        Ev::C(b"HEAD /x HTTP/1.1\r\n\r\nGET /y HTTP/1.1\r\n\r\nGET /z HTTP/1.1\r\n\r\n"),
        Ev::S(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n"),
        Ev::S(b"HTTP/1.1 304 Not Modified\r\nContent-Length: 7\r\n\r\nHTTP/1.1 204 No Content\r\nTransfer-Encoding: chunked\r\n\r\n"),
    ]);
    assert_eq!(
        summary(&r.out),
        vec![
            s("req", 0, "HEAD /x", "", false),
            s("req", 1, "GET /y", "", false),
            s("req", 2, "GET /z", "", false),
            s("res", 0, "200", "", false),
            s("res", 1, "304", "", false),
            s("res", 2, "204", "", false),
        ]
    );
}

#[test]
fn close_delimited_without_fin_is_incomplete() {
    let r = run(&[
        Ev::C(b"GET / HTTP/1.1\r\n\r\n"),
        Ev::S(b"HTTP/1.1 200 OK\r\n\r\npartial"),
    ]);
    assert_eq!(
        summary(&r.out),
        vec![
            s("req", 0, "GET /", "", false),
            s("res", 0, "200", "partial", true)
        ]
    );
    assert_eq!(r.out[1].end_timestamp, Timestamp(1_000_000));
}

#[test]
fn body_cap_and_zero() {
    let mut r = Run::with(
        false,
        HttpConfig {
            max_body_size: 4,
            ..HttpConfig::default()
        },
    );
    r.data(
        Side::Client,
        b"POST / HTTP/1.1\r\nContent-Length: 10\r\n\r\n0123456789",
        0,
    );
    assert_eq!(r.out[0].body, b"0123");
    assert_eq!((r.out[0].body_size, r.out[0].truncated), (10, true));
    assert_eq!(r.stats.truncated_bodies, 1);
    let mut r = Run::with(
        false,
        HttpConfig {
            max_body_size: 0,
            ..HttpConfig::default()
        },
    );
    r.data(
        Side::Client,
        b"POST / HTTP/1.1\r\nContent-Length: 10\r\n\r\n0123456789",
        0,
    );
    assert!(r.out[0].body.is_empty());
    assert_eq!((r.out[0].body_size, r.out[0].truncated), (10, true));
    assert!(r.conn.buffered_bytes() < 64);
}

#[test]
fn transfer_encoding_wins_over_content_length() {
    let r = run(&[Ev::C(
        b"POST / HTTP/1.1\r\nContent-Length: 100\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n\r\nGET /next HTTP/1.1\r\n\r\n",
    )]);
    assert_eq!(
        summary(&r.out),
        vec![
            s("req", 0, "POST /", "ok", false),
            s("req", 1, "GET /next", "", false)
        ]
    );
    assert_eq!(r.stats.transfer_encoding_with_content_length, 1);
}

#[test]
fn framing_errors_emit_incomplete_and_resync() {
    let r = run(&[
        Ev::C(b"POST /a HTTP/1.1\r\nTransfer-Encoding: gzip\r\n\r\nsomething\r\nGET /b HTTP/1.1\r\n\r\n"),
        Ev::C(b"POST /c HTTP/1.1\r\nContent-Length: 1, 2\r\n\r\nxx\r\nGET /d HTTP/1.1\r\n\r\n"),
        Ev::C(b"POST /e HTTP/1.1\r\nContent-Length: 99999999999999999999999\r\n\r\n"),
        Ev::C(b"POST /f HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nfffffffffffffffffffff\r\n"),
        Ev::C(b"GET /g HTTP/1.1\r\n\r\n"),
    ]);
    assert_eq!(
        summary(&r.out),
        vec![
            s("req", 0, "POST /a", "", true),
            s("req", 1, "GET /b", "", false),
            s("req", 2, "POST /c", "", true),
            s("req", 3, "GET /d", "", false),
            s("req", 4, "POST /e", "", true),
            s("req", 5, "POST /f", "", true),
            s("req", 6, "GET /g", "", false),
        ]
    );
    assert_eq!(r.stats.parse_error_invalid_transfer_encoding, 1);
    assert_eq!(r.stats.parse_error_invalid_content_length, 2);
    assert_eq!(r.stats.parse_error_chunk_size_overflow, 1);
    assert_eq!(r.stats.requests_without_response, 7);
}

#[test]
fn delimited_bad_heads_are_emitted_with_parse_error_and_pair() {
    let r = run(&[
        Ev::C(b"GET / HTTP/1.1\r\nBad Header\r\n\r\nGET /ok HTTP/1.1\r\n\r\n"),
        Ev::C(b"GET / HTTP/2.0\r\n\r\nGET /ok2 HTTP/1.1\r\n\r\n"),
        Ev::S(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n"),
        Ev::S(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"),
    ]);
    // Each bad head is emitted with what was there; the server's answers pair in order.
    assert_eq!(
        summary(&r.out),
        vec![
            s("req", 0, "GET /", "", false),
            s("req", 1, "GET /ok", "", false),
            s("req", 2, "GET /", "", false),
            s("req", 3, "GET /ok2", "", false),
            s("res", 0, "400", "", false),
            s("res", 1, "200", "", false),
        ]
    );
    let errors: Vec<_> = r.out.iter().map(|m| m.parse_error).collect();
    assert_eq!(
        errors,
        vec![
            Some("invalid-header"),
            None,
            Some("invalid-version"),
            None,
            None,
            None
        ]
    );
    assert_eq!(r.out[2].http_version, "1.1");
    assert_eq!(r.stats.parse_error_invalid_head, 1);
    assert_eq!(r.stats.parse_error_invalid_version, 1);
    assert_eq!(r.stats.heads_with_parse_error, 2);
    assert_eq!(r.stats.ignored_header_lines, 1);
    assert_eq!(r.stats.lost_requests, 0);
    assert_eq!(r.stats.responses_without_request, 0);
}

#[test]
fn undelimited_or_binary_bad_heads_are_counted_and_skipped() {
    let r = run(&[
        Ev::C(b"GET /a HTTP/1.1\r\n\r\n"),
        Ev::C(b"G\x00T / HTTP/1.1\r\n\r\nGET /ok HTTP/1.1\r\n\r\n"),
        Ev::S(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"),
        Ev::S(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n"),
        Ev::S(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"),
    ]);
    assert_eq!(
        summary(&r.out),
        vec![
            s("req", 0, "GET /a", "", false),
            s("req", 2, "GET /ok", "", false),
            s("res", 0, "200", "", false),
            s("res", 1, "400", "", true),
            s("res", 2, "200", "", false),
        ]
    );
    assert!(r.out.iter().all(|m| m.parse_error.is_none()));
    assert_eq!(r.stats.parse_error_invalid_head, 1);
    assert_eq!(r.stats.heads_with_parse_error, 0);
    assert_eq!(r.stats.lost_requests, 1);
}

#[test]
fn http09_request_and_reply() {
    let want = vec![
        s("req", 0, "GET /zeek.html", "", false),
        s("res", 0, "0", "<html>\nhi\n</html>\n", false),
    ];
    let evs = [
        Ev::C(b"GET /zeek.html\r\n"),
        Ev::S(b"<html>\nhi\n</html>\n"),
        Ev::FinS,
    ];
    let r = run(&evs);
    assert_eq!(summary(&r.out), want);
    assert_eq!(r.out[0].http_version, "0.9");
    assert_eq!(r.out[1].http_version, "0.9");
    assert!(r.out[1].headers.is_empty());
    assert_eq!(r.stats.http09_requests, 1);
    assert_eq!(r.stats.http09_responses, 1);
    assert_eq!(r.stats.parse_errors(), 0);
    // The reply starting with empty lines keeps them: they are body.
    let r = run(&[Ev::C(b"POST /x\n"), Ev::S(b"\r\nok"), Ev::FinS]);
    assert_eq!(r.out[1].body, b"\r\nok");
    assert_eq!(
        r.out[0].kind,
        MessageKind::Request {
            method: "POST".into(),
            url: "/x".into()
        }
    );
    // `GET HTTP/1.1` is a request line missing its target, not HTTP/0.9.
    let r = run(&[
        Ev::C(b"GET HTTP/1.1\r\nHost: bro.org\r\n\r\n"),
        Ev::S(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"),
    ]);
    assert_eq!(
        summary(&r.out),
        vec![
            s("req", 0, "GET ", "", false),
            s("res", 0, "200", "ok", false)
        ]
    );
    assert_eq!(r.out[0].parse_error, Some("invalid-request-line"));
    assert_eq!(r.out[0].http_version, "1.1");
}

#[test]
fn compressed_bodies_are_decoded_and_sizes_reported() {
    use std::io::Write as _;
    let plain: Vec<u8> = (0..2000u64)
        .flat_map(|i| format!("{{\"n\":{}}}\n", i * 7919 % 10007).into_bytes())
        .collect();
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    e.write_all(&plain).unwrap();
    let gz = e.finish().unwrap();
    let mut head = format!(
        "HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\nContent-Length: {}\r\n\r\n",
        gz.len()
    )
    .into_bytes();
    head.extend_from_slice(&gz);
    let evs = [Ev::C(b"GET /z HTTP/1.1\r\n\r\n"), Ev::S(&head)];
    let r = run(&evs);
    let m = &r.out[1];
    assert_eq!(m.body, plain);
    assert_eq!(m.body_size, gz.len() as u64);
    assert_eq!(m.decoded_body_size, Some(plain.len() as u64));
    assert!(!m.truncated && !m.incomplete);
    assert_eq!(r.stats.bodies_decoded, 1);
    // Every split point gives the same message.
    let whole = run_split(&evs, Some((usize::MAX, 0)));
    for cut in 0..=head.len() {
        assert_eq!(run_split(&evs, Some((1, cut))), whole, "cut {cut}");
    }
    // Off: the body is as on the wire.
    let mut off = Run::new(false);
    off.cfg.decode_bodies = false;
    off.data(Side::Client, b"GET /z HTTP/1.1\r\n\r\n", 0);
    off.data(Side::Server, &head, 1);
    assert_eq!(off.out[1].body, gz);
    assert_eq!(off.out[1].decoded_body_size, None);
    // A gap in the middle: decoded up to the gap, incomplete.
    let half = head.len() - gz.len() / 2;
    let r = run(&[
        Ev::C(b"GET /z HTTP/1.1\r\n\r\n"),
        Ev::S(&head[..half]),
        Ev::GapS(10),
        Ev::S(&head[half + 10..]),
    ]);
    let m = &r.out[1];
    assert!(m.incomplete);
    assert_eq!(m.body_size, gz.len() as u64);
    assert!(!m.body.is_empty() && plain.starts_with(&m.body));
    assert_eq!(m.decoded_body_size, Some(m.body.len() as u64));
    // Past maxBodySize: the body is cut, decodedBodySize is the full decoded length.
    let mut cut = Run::new(false);
    cut.cfg.max_body_size = 100;
    cut.data(Side::Client, b"GET /z HTTP/1.1\r\n\r\n", 0);
    cut.data(Side::Server, &head, 1);
    assert_eq!(cut.out[1].body, plain[..100].to_vec());
    assert_eq!(cut.out[1].decoded_body_size, Some(plain.len() as u64));
    assert!(cut.out[1].truncated);
    // Not valid gzip: emitted as sent, counted.
    let bad = b"HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\nContent-Length: 5\r\n\r\nnot z";
    let r = run(&[Ev::C(b"GET / HTTP/1.1\r\n\r\n"), Ev::S(bad)]);
    assert_eq!(r.out[1].body, b"not z");
    assert_eq!(r.out[1].decoded_body_size, None);
    assert_eq!(r.stats.body_decode_errors, 1);
}

#[test]
fn leniencies_are_counted() {
    let r = run(&[
        Ev::C(b"GET /a HTTP/1.1\nHost: x\n\n"),
        Ev::S(b"HTTP/1.1 200\r\nX: a\r\n b\r\nContent-Length: 0\r\n\r\n"),
    ]);
    assert_eq!(
        summary(&r.out),
        vec![
            s("req", 0, "GET /a", "", false),
            s("res", 0, "200", "", false)
        ]
    );
    assert_eq!(r.stats.bare_lf_heads, 1);
    assert_eq!(r.stats.missing_reason_phrases, 1);
    assert_eq!(r.stats.obs_fold_heads, 1);
    assert_eq!(r.stats.parse_errors(), 0);
}

#[test]
fn responses_without_requests_continue_the_count() {
    let r = run(&[
        Ev::S(b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"),
        Ev::C(b"GET / HTTP/1.1\r\n\r\n"),
    ]);
    assert_eq!(
        summary(&r.out),
        vec![
            s("res", 0, "100", "", true),
            s("res", 0, "200", "", true),
            s("req", 1, "GET /", "", false)
        ]
    );
    assert_eq!(latency(&r.out[1]), None);
    assert_eq!(r.stats.responses_without_request, 2);
    assert_eq!(r.stats.requests_without_response, 1);
}

#[test]
fn gap_inside_content_length_keeps_framing() {
    let r = run(&[
        Ev::C(b"POST / HTTP/1.1\r\nContent-Length: 10\r\n\r\n01"),
        Ev::GapC(4),
        Ev::C(b"6789GET /next HTTP/1.1\r\n\r\n"),
        Ev::S(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"),
    ]);
    assert_eq!(
        summary(&r.out),
        vec![
            s("req", 0, "POST /", "01", true),
            s("req", 1, "GET /next", "", false),
            s("res", 0, "200", "", false),
            s("res", 1, "200", "", false),
        ]
    );
    assert_eq!(r.out[0].body_size, 10);
    assert!(r.out[0].truncated);
    assert_eq!(r.stats.gap_body_bytes, 4);
}

#[test]
fn gap_in_chunked_body_resyncs() {
    let r = run(&[
        Ev::C(b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n"),
        Ev::GapC(5),
        Ev::C(b"\r\n0\r\n\r\nGET /next HTTP/1.1\r\n\r\n"),
    ]);
    assert_eq!(
        summary(&r.out),
        vec![
            s("req", 0, "POST /", "abc", true),
            s("req", 1, "GET /next", "", false)
        ]
    );
}

#[test]
fn lost_request_keeps_pairing() {
    let r = run(&[
        Ev::C(b"GET /1 HTTP/1.1\r\n\r\n"),
        Ev::S(b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\n1"),
        Ev::GapC(18),
        Ev::C(b"GET /3 HTTP/1.1\r\n\r\n"),
        Ev::S(b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\n2"),
        Ev::S(b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\n3"),
    ]);
    assert_eq!(
        summary(&r.out),
        vec![
            s("req", 0, "GET /1", "", false),
            s("res", 0, "200", "1", false),
            s("req", 2, "GET /3", "", false),
            s("res", 1, "200", "2", true),
            s("res", 2, "200", "3", false),
        ]
    );
    assert_eq!(r.stats.lost_requests, 1);
}

#[test]
fn lost_response_keeps_pairing() {
    let r = run(&[
        Ev::C(b"GET /1 HTTP/1.1\r\n\r\nGET /2 HTTP/1.1\r\n\r\n"),
        Ev::S(b"HTTP/1.1 200 OK\r\nContent-Le"),
        Ev::GapS(50),
        Ev::S(b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\n2"),
    ]);
    assert_eq!(
        summary(&r.out),
        vec![
            s("req", 0, "GET /1", "", false),
            s("req", 1, "GET /2", "", false),
            s("res", 1, "200", "2", false),
        ]
    );
    assert_eq!(r.stats.lost_responses, 1);
    assert_eq!(r.stats.requests_without_response, 1);
}

#[test]
fn mid_stream_start_resyncs() {
    let mut r = Run::new(true);
    r.data(
        Side::Client,
        b"dy of a previous request\r\nGET /a HTTP/1.1\r\n\r\n",
        0,
    );
    r.data(
        Side::Server,
        b"tail of a body HTTP/1.1 200 nope\r\nHTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n",
        1,
    );
    assert_eq!(
        summary(&r.out),
        vec![
            s("req", 0, "GET /a", "", false),
            s("res", 0, "200", "", false)
        ]
    );
    assert_eq!(r.stats.skipped_bytes, 26 + 34);
}

/// HTTP/2 is detected once and handed to the HTTP/2 parser (tests in `http2/`).
#[test]
fn http2_preface_is_handed_over() {
    let p = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
    let mut r = Run::new(false);
    r.data(Side::Client, &p[..3], 0);
    r.data(Side::Client, &p[3..], 0);
    assert!(r.conn.wants_data());
    assert_eq!((r.stats.non_http_http2, r.stats.h2_connections), (1, 1));
    assert_eq!(r.stats.skipped_bytes, 0);
}

#[test]
fn non_http_is_detected_once() {
    for (bytes, field) in [
        (&b"\x16\x03\x01\x00\xa5\x01\x00\x00"[..], "tls"),
        (&b"\x00\x00\x00\x01binary"[..], "other"),
    ] {
        let mut r = Run::new(false);
        r.data(Side::Client, &bytes[..3], 0);
        r.data(Side::Client, &bytes[3..], 0);
        assert!(!r.conn.wants_data(), "{field}");
        r.data(Side::Server, b"more", 0);
        let st = &r.stats;
        let counts = (st.non_http_tls, st.non_http_http2, st.non_http_other);
        let want = match field {
            "tls" => (1, 0, 0),
            _ => (0, 0, 1),
        };
        assert_eq!(counts, want, "{field}");
        assert_eq!(st.skipped_bytes, bytes.len() as u64 + 4);
        assert!(r.out.is_empty());
    }
    let mut r = Run::new(false);
    r.data(Side::Server, b"SSH-2.0-OpenSSH\r\n", 0);
    assert!(!r.conn.wants_data());
    assert_eq!(r.stats.non_http_other, 1);
}

#[test]
fn upgrade_and_connect_become_tunnels() {
    let r = run(&[
        Ev::C(
            b"GET /ws HTTP/1.1\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n\x81\x05hello",
        ),
        Ev::S(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\r\n\x81\x02ok"),
        Ev::C(b"more frames"),
    ]);
    assert_eq!(
        summary(&r.out),
        vec![
            s("req", 0, "GET /ws", "", false),
            s("res", 0, "101", "", false)
        ]
    );
    assert_eq!(r.stats.upgraded_connections, 1);
    assert_eq!(r.stats.skipped_bytes, 7 + 4 + 11);
    assert_eq!(r.stats.parse_errors(), 0);

    let r = run(&[
        Ev::C(b"CONNECT host:443 HTTP/1.1\r\nHost: host:443\r\n\r\n"),
        Ev::S(b"HTTP/1.1 200 Connection established\r\n\r\n"),
        Ev::C(b"\x16\x03\x01tls"),
    ]);
    assert_eq!(r.out.len(), 2);
    assert_eq!(r.stats.connect_tunnels, 1);
    assert_eq!(r.stats.non_http_tls, 0);
    assert_eq!(r.stats.tunnel_tls, 1);
    assert!(!r.conn.wants_data());

    // Refused upgrade: the held bytes are a normal request after all.
    let r = run(&[
        Ev::C(b"GET /ws HTTP/1.1\r\nConnection: upgrade\r\nUpgrade: websocket\r\n\r\nGET /n HTTP/1.1\r\n\r\n"),
        Ev::S(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"),
    ]);
    assert_eq!(
        summary(&r.out),
        vec![
            s("req", 0, "GET /ws", "", false),
            s("req", 1, "GET /n", "", false),
            s("res", 0, "200", "", false),
            s("res", 1, "200", "", false),
        ]
    );
    assert_eq!(r.stats.upgraded_connections, 0);
}

#[test]
fn limits() {
    // Head too large.
    let mut r = Run::with(
        false,
        HttpConfig {
            max_head_size: 1024,
            ..HttpConfig::default()
        },
    );
    r.data(Side::Client, b"GET / HTTP/1.1\r\n", 0);
    for _ in 0..100 {
        r.data(
            Side::Client,
            b"X-Filler: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n",
            0,
        );
        assert!(r.conn.buffered_bytes() <= 8192);
    }
    assert_eq!(r.stats.parse_error_head_too_large, 1);
    // Too many headers.
    let mut r = Run::with(
        false,
        HttpConfig {
            max_headers: 2,
            ..HttpConfig::default()
        },
    );
    r.data(
        Side::Client,
        b"GET / HTTP/1.1\r\na: 1\r\nb: 2\r\nc: 3\r\n\r\n",
        0,
    );
    assert_eq!(r.stats.parse_error_too_many_headers, 1);
    // Pending queue bounded.
    let mut r = Run::new(false);
    for _ in 0..MAX_PENDING + 10 {
        r.data(Side::Client, b"GET / HTTP/1.1\r\n\r\n", 0);
    }
    assert_eq!(r.stats.pending_overflow, 10);
    assert_eq!(r.conn.pending.len(), MAX_PENDING);
}

#[test]
fn hostile_bytes_never_panic() {
    let mut seed = 0x1234_5678_9abc_def0u64;
    let mut next = || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    let pieces: [&[u8]; 10] = [
        b"GET / HTTP/1.1\r\n",
        b"HTTP/1.1 200 OK\r\n",
        b"Transfer-Encoding: chunked\r\n",
        b"Content-Length: 5\r\n",
        b"\r\n",
        b"ffffffffffffffffffff\r\n",
        b"0\r\n\r\n",
        b"\x00\xff",
        b"Connection: upgrade\r\nUpgrade: x\r\n",
        b"HEAD / HTTP/1.0\r\n",
    ];
    for round in 0..300 {
        let mut r = Run::new(round % 3 == 0);
        for k in 0..40 {
            let side = if next() % 2 == 0 {
                Side::Client
            } else {
                Side::Server
            };
            let mut chunk = Vec::new();
            for _ in 0..(next() % 4) {
                chunk.extend_from_slice(pieces[(next() % 10) as usize]);
            }
            match next() % 10 {
                0 => r.conn.gap(
                    side,
                    next() % 50,
                    Timestamp(k),
                    &r.cfg,
                    &mut r.stats,
                    &mut r.out,
                ),
                1 => r
                    .conn
                    .fin(side, Timestamp(k), &r.cfg, &mut r.stats, &mut r.out),
                _ => r.data(side, &chunk, k),
            }
            assert!(r.conn.buffered_bytes() < 200_000);
        }
        r.close(99);
    }
}

/// Zeek's obsolete-line-fold capture: a folded `Transfer-Encoding` frames an
/// empty chunked body, so the GET after it is a second request.
const OBS_FOLD_REQUESTS: &[u8] = b"POST / HTTP/1.1\r\nHost: target\r\nTransfer-Encoding:\r\n chunked\r\n\r\n0\r\n\r\nGET /smuggled-obsfold HTTP/1.1\r\nHost: target\r\n\r\n";
/// Zeek's http-bad-request-with-version capture: 5 bytes before the request line.
const GARBAGE_THEN_GET: &[u8] = b"\xdd\x00\x00\x00 GET /txt HTTP/1.1\r\nConnection: Close\r\nUser-Agent: Microsoft NCSI\r\nHost: www.msftncsi.com\r\n\r\n";
/// Zeek's http-connect capture: a space in the target, a header line without a colon.
const CONNECT_WITH_SPACE: &[u8] = b"CONNECT mailin03.sul.t-online.de:25 / HTTP/1.0\r\nMozilla 4.0 (compatible; MSIE 5.01; Windows NT 5.0)\r\n\r\n";

#[test]
fn obs_fold_request_is_unfolded() {
    let r = run(&[
        Ev::C(OBS_FOLD_REQUESTS),
        Ev::S(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"),
        Ev::S(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"),
    ]);
    assert_eq!(
        summary(&r.out),
        vec![
            s("req", 0, "POST /", "", false),
            s("req", 1, "GET /smuggled-obsfold", "", false),
            s("res", 0, "200", "", false),
            s("res", 1, "200", "", false),
        ]
    );
    assert_eq!(
        header(&r.out[0], "transfer-encoding"),
        Some(&HeaderValue::Single("chunked".into()))
    );
    assert_eq!(r.stats.obs_fold_heads, 1);
    assert_eq!(r.stats.parse_errors(), 0);
    assert_eq!(r.stats.skipped_bytes, 0);
}

#[test]
fn garbage_before_the_first_message_is_skipped() {
    let r = run(&[
        Ev::C(GARBAGE_THEN_GET),
        Ev::S(b"HTTP/1.1 200 OK\r\nContent-Length: 14\r\n\r\nMicrosoft NCSI"),
    ]);
    assert_eq!(
        summary(&r.out),
        vec![
            s("req", 0, "GET /txt", "", false),
            s("res", 0, "200", "Microsoft NCSI", false),
        ]
    );
    assert_eq!(r.stats.detect_resyncs, 1);
    assert_eq!(r.stats.skipped_bytes, 5);
    assert_eq!(r.stats.non_http_other, 0);

    // The same on the server side, when it speaks first.
    let mut r = Run::new(false);
    r.data(Side::Server, b"\r\n\x07HTTP/1.1 204 No Content\r\n\r\n", 0);
    assert_eq!(summary(&r.out), vec![s("res", 0, "204", "", true)]);
    assert_eq!((r.stats.detect_resyncs, r.stats.skipped_bytes), (1, 3));

    // An incomplete candidate is held (bounded), then decided.
    let mut r = Run::new(false);
    r.data(Side::Client, b"\x01\x02GET /a HT", 0);
    assert!(r.conn.wants_data() && r.out.is_empty());
    r.data(Side::Client, b"TP/1.1\r\n\r\n", 0);
    assert_eq!(summary(&r.out), vec![s("req", 0, "GET /a", "", false)]);
    let mut r = Run::new(false);
    r.data(Side::Client, b"\x01\x02GET /a HT", 0);
    r.data(Side::Client, b"TP/2.0\r\n\r\n", 0);
    assert!(!r.conn.wants_data());
    assert_eq!(r.stats.non_http_other, 1);
    let mut r = Run::new(false);
    r.data(Side::Client, b"\x01GET /", 0);
    for _ in 0..100 {
        r.data(Side::Client, &[b'a'; 100], 0);
        assert!(r.conn.buffered_bytes() <= 2 * detect::DETECT_LIMIT);
    }
    assert!(!r.conn.wants_data());
    assert_eq!(r.stats.non_http_other, 1);

    // Split points: the same once the first segment holds the candidate's
    // first byte (detection decides on the bytes at hand: a first segment of
    // garbage alone is other binary).
    let evs = [
        Ev::C(GARBAGE_THEN_GET),
        Ev::S(b"HTTP/1.1 200 OK\r\nContent-Length: 14\r\n\r\nMicrosoft NCSI"),
    ];
    let whole = run_split(&evs, Some((usize::MAX, 0)));
    assert_eq!(whole.len(), 2);
    for cut in 6..=GARBAGE_THEN_GET.len() {
        assert_eq!(run_split(&evs, Some((0, cut))), whole, "cut {cut}");
    }
    let Ev::S(res) = evs[1] else { unreachable!() };
    for cut in 0..=res.len() {
        assert_eq!(run_split(&evs, Some((1, cut))), whole, "server cut {cut}");
    }
    let mut r = Run::new(false);
    r.data(Side::Client, &GARBAGE_THEN_GET[..6], 0);
    for b in GARBAGE_THEN_GET[6..].chunks(1) {
        r.data(Side::Client, b, 0);
    }
    assert_eq!(summary(&r.out), vec![s("req", 0, "GET /txt", "", false)]);
    let mut r = Run::new(false);
    r.data(Side::Client, &GARBAGE_THEN_GET[..5], 0);
    r.data(Side::Client, &GARBAGE_THEN_GET[5..], 0);
    assert!(r.out.is_empty());
    assert_eq!(r.stats.non_http_other, 1);

    // No message start within the first 64 bytes: other binary.
    let mut late = vec![0u8; 64];
    late.extend_from_slice(b"GET / HTTP/1.1\r\n\r\n");
    let mut r = Run::new(false);
    r.data(Side::Client, &late, 0);
    assert!(!r.conn.wants_data());
    assert_eq!((r.stats.non_http_other, r.stats.detect_resyncs), (1, 0));
    // TLS stays exact: a request line inside a TLS record is not looked for.
    let mut r = Run::new(false);
    r.data(
        Side::Client,
        b"\x16\x03\x01\x00\x10GET / HTTP/1.1\r\n\r\n",
        0,
    );
    assert_eq!((r.stats.non_http_tls, r.stats.detect_resyncs), (1, 0));
    assert!(r.out.is_empty());
}

#[test]
fn cleartext_http_inside_a_connect_tunnel_is_parsed() {
    let evs = [
        Ev::C(b"CONNECT example.com:80 HTTP/1.1\r\nHost: example.com:80\r\n\r\n"),
        Ev::S(b"HTTP/1.1 200 Connection established\r\n\r\n"),
        Ev::C(b"GET /inner HTTP/1.1\r\nHost: example.com\r\n\r\n"),
        Ev::S(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nhi"),
        Ev::C(b"GET /second HTTP/1.1\r\n\r\n"),
        Ev::S(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n"),
    ];
    let r = run(&evs);
    assert_eq!(
        summary(&r.out),
        vec![
            s("req", 0, "CONNECT example.com:80", "", false),
            s("res", 0, "200", "", false),
            s("req", 1, "GET /inner", "", false),
            s("res", 1, "200", "hi", false),
            s("req", 2, "GET /second", "", false),
            s("res", 2, "404", "", false),
        ]
    );
    let tunnel: Vec<bool> = r.out.iter().map(|m| m.tunnel).collect();
    assert_eq!(tunnel, [false, false, true, true, true, true]);
    assert_eq!(r.stats.connect_tunnels, 1);
    assert_eq!(r.stats.parse_errors(), 0);
    let json = r.out[2].to_json(None);
    assert!(json.contains(r#""tunnel":true"#), "{json}");
    assert!(!r.out[0].to_json(None).contains("tunnel"));
    // Every split point, and the inner request sent before the answer (held, then parsed).
    let whole = run_split(&evs, Some((usize::MAX, 0)));
    assert_eq!(run_split(&evs, None), whole);
    let early = run(&[
        Ev::C(b"CONNECT example.com:80 HTTP/1.1\r\n\r\nGET /early HTTP/1.1\r\n\r\n"),
        Ev::S(b"HTTP/1.1 200 OK\r\n\r\nHTTP/1.1 204 No Content\r\n\r\n"),
    ]);
    assert_eq!(
        summary(&early.out),
        vec![
            s("req", 0, "CONNECT example.com:80", "", false),
            s("res", 0, "200", "", false),
            s("req", 1, "GET /early", "", false),
            s("res", 1, "204", "", false),
        ]
    );
    assert!(early.out[2].tunnel && early.out[3].tunnel);
    // A refused CONNECT is no tunnel: what follows is HTTP to the proxy.
    let refused = run(&[
        Ev::C(b"CONNECT example.com:80 HTTP/1.1\r\n\r\n"),
        Ev::S(b"HTTP/1.1 407 Proxy Authentication Required\r\nContent-Length: 0\r\n\r\n"),
        Ev::C(b"GET /x HTTP/1.1\r\n\r\n"),
    ]);
    assert!(refused.out.iter().all(|m| !m.tunnel));
    assert_eq!(refused.out.len(), 3);
}

#[test]
fn connect_with_space_in_target_becomes_a_tunnel() {
    let r = run(&[
        Ev::C(CONNECT_WITH_SPACE),
        Ev::S(b"HTTP/1.0 200 Connection established\r\n\r\n220 smtp ready\r\n"),
        Ev::C(b"HELO x\r\n"),
        Ev::S(b"250 Ok.\r\n"),
    ]);
    assert_eq!(
        summary(&r.out),
        vec![
            s("req", 0, "CONNECT mailin03.sul.t-online.de:25 /", "", false),
            s("res", 0, "200", "", false),
        ]
    );
    assert_eq!(r.out[0].http_version, "1.0");
    assert_eq!(r.stats.lenient_request_lines, 1);
    assert_eq!(r.stats.ignored_header_lines, 1);
    assert_eq!(r.stats.connect_tunnels, 1);
    assert_eq!(r.stats.parse_errors(), 0);
    assert_eq!(r.stats.skipped_bytes, 16 + 8 + 9);
}

/// Feeds `evs` with event `which` split at `cut`, or every event byte by byte.
fn run_split(evs: &[Ev<'_>], split: Option<(usize, usize)>) -> Vec<HttpMessage> {
    let mut r = Run::new(false);
    for (k, e) in evs.iter().enumerate() {
        let ts = k as u64 * 1000;
        match (*e, split) {
            (Ev::C(b) | Ev::S(b), Some((which, cut))) if which == k => {
                let side = if matches!(e, Ev::C(_)) {
                    Side::Client
                } else {
                    Side::Server
                };
                r.data(side, &b[..cut], ts);
                r.data(side, &b[cut..], ts);
            }
            (Ev::C(b) | Ev::S(b), None) => {
                let side = if matches!(e, Ev::C(_)) {
                    Side::Client
                } else {
                    Side::Server
                };
                for byte in b.chunks(1) {
                    r.data(side, byte, ts);
                }
            }
            _ => r.ev(k, *e),
        }
    }
    r.close(1_000_000);
    r.out
}

#[test]
fn every_split_point_gives_the_same_messages() {
    let exchanges: Vec<Vec<Ev<'static>>> = vec![
        // keep-alive
        vec![
            Ev::C(b"GET /a HTTP/1.1\r\nHost: x\r\nAccept: a\r\nAccept: b\r\n\r\n"),
            Ev::S(b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\nX: y\r\n\r\nabc"),
            Ev::C(b"POST /b HTTP/1.1\r\nContent-Length: 4\r\n\r\nwxyz"),
            Ev::S(b"HTTP/1.1 201 Created\r\nContent-Length: 0\r\n\r\n"),
        ],
        // pipelined, with leading empty lines between messages
        vec![
            Ev::C(b"GET /1 HTTP/1.1\r\n\r\n\r\nGET /2 HTTP/1.1\r\n\r\nPOST /3 HTTP/1.1\r\nContent-Length: 2\r\n\r\nhi"),
            Ev::S(b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\n1HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\n2HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\n3"),
        ],
        // chunked with extensions and trailers
        vec![
            Ev::C(b"POST /c HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n5;a=b\r\nhello\r\n1a ; q=\"x y\"\r\nabcdefghijklmnopqrstuvwxyz\r\n0\r\nT: v\r\n\r\n"),
            Ev::S(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n\r\n"),
        ],
        // 100-continue
        vec![
            Ev::C(b"PUT /f HTTP/1.1\r\nContent-Length: 3\r\nExpect: 100-continue\r\n\r\n"),
            Ev::S(b"HTTP/1.1 100 Continue\r\n\r\n"),
            Ev::C(b"abc"),
            Ev::S(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"),
        ],
        // HEAD, 204, 304
        vec![
            Ev::C(b"HEAD / HTTP/1.1\r\n\r\nGET /n HTTP/1.1\r\n\r\nGET /m HTTP/1.1\r\n\r\n"),
            Ev::S(b"HTTP/1.1 200 OK\r\nContent-Length: 50\r\n\r\nHTTP/1.1 204 No Content\r\n\r\nHTTP/1.1 304 Not Modified\r\nETag: x\r\n\r\n"),
        ],
        // obs-fold in a request (Transfer-Encoding folded) and a pipelined request
        vec![
            Ev::C(OBS_FOLD_REQUESTS),
            Ev::S(b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\naHTTP/1.1 404 Not Found\r\nX: a\r\n\tb\r\nContent-Length: 0\r\n\r\n"),
        ],
        // CONNECT with a space in its target, then a tunnel
        vec![
            Ev::C(CONNECT_WITH_SPACE),
            Ev::S(b"HTTP/1.0 200 Connection established\r\n\r\n220 smtp ready\r\n"),
            Ev::C(b"HELO x\r\n"),
        ],
        // close-delimited, bare LF line ends, obs-fold in a response
        vec![
            Ev::C(b"GET /old HTTP/1.0\nUser-Agent: t\n\n"),
            Ev::S(b"HTTP/1.0 200 OK\nX-Fold: a\n b\n\nbody until close"),
            Ev::FinS,
            Ev::FinC,
        ],
        // broken heads emitted with parseError, answered in order
        vec![
            Ev::C(b"GET /HTTP/1.1\r\nHost: a\r\n\r\nOPTIONS HTTP/1.1\r\n\r\nGET / HTTP/1.\r\nX\r\n\r\n"),
            Ev::S(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 1\r\n\r\naHTTP/1.1 405 No\r\nContent-Length: 0\r\n\r\nHTTP/1.1 400\r\nContent-Length: 0\r\n\r\n"),
        ],
        // HTTP/0.9 request and reply
        vec![
            Ev::C(b"GET /zeek.html\r\n"),
            Ev::S(b"<html>\r\n\r\nHTTP/1.1 200 OK\r\n</html>"),
            Ev::FinS,
        ],
    ];
    for (n, evs) in exchanges.iter().enumerate() {
        let whole = run_split(evs, Some((usize::MAX, 0)));
        assert!(!whole.is_empty(), "exchange {n}");
        assert!(
            whole.iter().all(|m| !m.incomplete),
            "exchange {n}: {whole:?}"
        );
        for (k, e) in evs.iter().enumerate() {
            let (Ev::C(b) | Ev::S(b)) = e else { continue };
            for cut in 0..=b.len() {
                let got = run_split(evs, Some((k, cut)));
                assert_eq!(got, whole, "exchange {n}, event {k}, cut {cut}");
            }
        }
        assert_eq!(run_split(evs, None), whole, "exchange {n}, byte by byte");
    }
}

#[test]
fn body_budget_is_shared_by_connections_and_given_back() {
    let budget = Pool::new(100);
    let pools = WorkerBudget {
        bodies: budget.clone(),
        ..WorkerBudget::unlimited()
    };
    let mut a = Run::new(false);
    a.conn = HttpConnection::new(&meta(false)).with_budget(pools.clone());
    let mut b = Run::new(false);
    b.conn = HttpConnection::new(&meta(false)).with_budget(pools.clone());

    // A is 80 bytes into a 200-byte upload: it holds 80 of the 100.
    a.data(
        Side::Client,
        b"POST /a HTTP/1.1\r\nContent-Length: 200\r\n\r\n",
        1,
    );
    a.data(Side::Client, &[b'a'; 80], 2);
    assert_eq!(budget.held(), 80);
    // B's 50-byte body gets the 20 left: cut, counted, and its bytes given back at once.
    b.data(
        Side::Client,
        b"POST /b HTTP/1.1\r\nContent-Length: 50\r\n\r\n",
        3,
    );
    b.data(Side::Client, &[b'b'; 50], 4);
    assert_eq!(b.out.len(), 1);
    assert_eq!((b.out[0].body.len(), b.out[0].body_size), (20, 50));
    assert!(b.out[0].truncated);
    assert_eq!(b.stats.bodies_cut_by_budget, 1);
    assert_eq!(b.stats.truncated_bodies, 1);
    assert_eq!(budget.held(), 80);
    // A stays cut once cut, even when room comes back (its body is a prefix, not holes).
    a.data(Side::Client, &[b'a'; 120], 5);
    assert_eq!(a.out.len(), 1);
    assert_eq!((a.out[0].body.len(), a.out[0].body_size), (100, 200));
    assert_eq!(budget.held(), 0);
    // Room again: B's next body is whole.
    b.data(
        Side::Client,
        b"POST /b2 HTTP/1.1\r\nContent-Length: 50\r\n\r\n",
        6,
    );
    b.data(Side::Client, &[b'c'; 50], 7);
    assert_eq!((b.out[1].body.len(), b.out[1].truncated), (50, false));

    // A connection dropped mid-body (evicted, never flushed) gives its bytes back too.
    a.data(
        Side::Client,
        b"POST /gone HTTP/1.1\r\nContent-Length: 90\r\n\r\n",
        8,
    );
    a.data(Side::Client, &[b'd'; 60], 9);
    assert_eq!(budget.held(), 60);
    drop(a);
    assert_eq!(budget.held(), 0);
}

/// Redaction happens on the assembled message, whatever the segmentation: a request with a
/// token in its query and a chunked JSON body with secrets, and a form response, fed split at
/// every offset, byte by byte, and with a gap inside the body.
#[test]
fn redaction_holds_at_every_split_point_and_across_gaps() {
    let request: &[u8] = b"POST /cb?Access_Token=SECRET1&x=1 HTTP/1.1\r\nHost: a\r\nAuthorization: Basic SECRET2\r\nX-Auth-Token: SECRET3\r\nTransfer-Encoding: chunked\r\n\r\n10\r\n{\"password\":\"SEC\r\n17\r\nRET4\",\"n\":{\"cvv\":\"SECR\r\n6\r\nET5\"}}\r\n0\r\n\r\n";
    let response: &[u8] = b"HTTP/1.1 200 OK\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 36\r\n\r\nrefresh_token=SECRET6&scope=read+all";
    let check = |msgs: &[HttpMessage], what: &str| {
        assert_eq!(msgs.len(), 2, "{what}");
        for m in msgs {
            let json = m.to_json(None);
            assert!(!json.contains("SECRET"), "{what}: {json}");
        }
        assert_eq!(req(&msgs[0]).1, "/cb?Access_Token=[REDACTED]&x=1", "{what}");
        assert_eq!(
            msgs[0].body, br#"{"password":"[REDACTED]","n":{"cvv":"[REDACTED]"}}"#,
            "{what}"
        );
        assert_eq!(msgs[0].body_size, 0x10 + 0x17 + 6, "{what}");
        assert_eq!(
            msgs[1].body, b"refresh_token=[REDACTED]&scope=read+all",
            "{what}"
        );
    };
    for cut in 0..=request.len() {
        let (a, b) = request.split_at(cut);
        let r = run(&[Ev::C(a), Ev::C(b), Ev::S(response)]);
        check(&r.out, &format!("request cut at {cut}"));
    }
    for cut in 0..=response.len() {
        let (a, b) = response.split_at(cut);
        let r = run(&[Ev::C(request), Ev::S(a), Ev::S(b)]);
        check(&r.out, &format!("response cut at {cut}"));
    }
    let mut evs: Vec<Ev<'_>> = request.chunks(1).map(Ev::C).collect();
    evs.extend(response.chunks(1).map(Ev::S));
    check(&run(&evs).out, "byte by byte");
    // A gap inside the JSON body: what is left is still redacted.
    let body = br#"{"a":1,"token":"SECRET7","b":[1,2,3],"secret":"SECRET8"}"#;
    let head = format!("PUT /x HTTP/1.1\r\nContent-Length: {}\r\n\r\n", body.len());
    let r = run(&[
        Ev::C(head.as_bytes()),
        Ev::C(&body[..20]),
        Ev::GapC(5),
        Ev::C(&body[25..]),
    ]);
    let json = r.out[0].to_json(None);
    assert!(r.out[0].incomplete && !json.contains("SECRET"), "{json}");
}

/// A worker budget whose heads and pending pools are `heads` and `pending` bytes.
fn small_pools(heads: usize, pending: usize) -> WorkerBudget {
    WorkerBudget {
        heads: Pool::new(heads),
        pending: Pool::new(pending),
        ..WorkerBudget::unlimited()
    }
}

#[test]
fn partial_heads_stay_within_the_heads_pool_and_are_shed_like_gaps() {
    let pools = small_pools(64 * 1024, 1 << 20);
    let mut runs: Vec<Run> = (0..40)
        .map(|_| {
            let mut r = Run::new(false);
            r.conn = HttpConnection::new(&meta(false)).with_budget(pools.clone());
            r
        })
        .collect();
    // Forty clients each start a 16 KiB head that never ends, in 1 KiB steps.
    let line = [b'a'; 1000];
    for (k, r) in runs.iter_mut().enumerate() {
        r.data(Side::Client, b"GET /slow HTTP/1.1\r\nX-Pad: ", k as u64);
        for _ in 0..16 {
            r.data(Side::Client, &line, k as u64);
            assert!(
                pools.heads.held() <= pools.heads.max(),
                "pool passed its limit"
            );
        }
    }
    let shed: u64 = runs.iter().map(|r| r.stats.heads_shed_by_budget).sum();
    assert!(
        shed > 0,
        "40 x 16 KiB cannot fit in 64 KiB without shedding"
    );
    // A shed client's next request is still parsed, and the reply pairs with it.
    let r = runs
        .iter_mut()
        .find(|r| r.stats.heads_shed_by_budget > 0)
        .unwrap();
    r.data(
        Side::Client,
        b"\r\n\r\nGET /next HTTP/1.1\r\nHost: a\r\n\r\n",
        99,
    );
    // The server answers the shed request, then /next.
    r.data(
        Side::Server,
        b"HTTP/1.1 400 Bad\r\nContent-Length: 0\r\n\r\n",
        100,
    );
    r.data(
        Side::Server,
        b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n",
        101,
    );
    let next = r
        .out
        .iter()
        .find(|m| matches!(&m.kind, MessageKind::Request { url, .. } if url == "/next"));
    let next = next.expect("the request after a shed head is parsed");
    let resps: Vec<&HttpMessage> = r
        .out
        .iter()
        .filter(|m| matches!(m.kind, MessageKind::Response { .. }))
        .collect();
    assert_eq!(resps.len(), 2);
    assert!(
        resps[0].incomplete,
        "the shed request's response is marked incomplete"
    );
    assert_eq!(
        resps[1].sequence, next.sequence,
        "the next response pairs with /next"
    );
    // Everything is given back when the connections go.
    drop(runs);
    assert_eq!(pools.heads.held(), 0);
}

#[test]
fn deep_pipelining_stays_within_the_pending_pool() {
    let pools = small_pools(1 << 20, 4096);
    let mut runs: Vec<Run> = (0..8)
        .map(|_| {
            let mut r = Run::new(false);
            r.conn = HttpConnection::new(&meta(false)).with_budget(pools.clone());
            r
        })
        .collect();
    for r in runs.iter_mut() {
        for _ in 0..300 {
            r.data(Side::Client, b"GET / HTTP/1.1\r\nHost: a\r\n\r\n", 1);
            assert!(pools.pending.held() <= pools.pending.max());
        }
    }
    let shed: u64 = runs.iter().map(|r| r.stats.pending_shed_by_budget).sum();
    assert!(shed > 0);
    // Every request still came out as a message.
    assert!(runs.iter().all(|r| r.out.len() == 300));
    // The answers come, in order: each pairs with its own request, shed or not.
    for r in runs.iter_mut() {
        for k in 0..300 {
            let body = format!("{k}");
            let resp = format!(
                "HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n{body}",
                body.len()
            );
            r.data(Side::Server, resp.as_bytes(), 2);
        }
        let responses: Vec<&HttpMessage> = r
            .out
            .iter()
            .filter(|m| matches!(m.kind, MessageKind::Response { .. }))
            .collect();
        assert_eq!(responses.len(), 300);
        for (k, m) in responses.iter().enumerate() {
            assert_eq!(m.sequence, k as u64, "response {k} pairs with request {k}");
            assert_eq!(m.body, format!("{k}").into_bytes());
            assert!(!m.incomplete);
        }
        assert_eq!(r.stats.responses_without_request, 0);
    }
    // New requests after the answers use the pool again.
    for r in runs.iter_mut() {
        r.data(Side::Client, b"GET / HTTP/1.1\r\nHost: a\r\n\r\n", 3);
    }
    for r in runs.iter_mut() {
        r.conn.close(Timestamp(5), &r.cfg, &mut r.stats, &mut r.out);
    }
    assert_eq!(
        pools.pending.held(),
        0,
        "close gives the pending slots back"
    );
    drop(runs);
    assert_eq!(pools.heads.held(), 0);
}

#[test]
fn heads_of_messages_in_progress_are_charged_until_they_finish() {
    let pools = small_pools(1 << 20, 1 << 20);
    let mut r = Run::new(false);
    r.conn = HttpConnection::new(&meta(false)).with_budget(pools.clone());
    r.data(
        Side::Client,
        b"POST /up HTTP/1.1\r\nX-Big: 0123456789012345678901234567890123456789\r\nContent-Length: 4\r\n\r\nab",
        1,
    );
    assert!(
        pools.heads.held() > 40,
        "the parsed head is held while its body is in progress"
    );
    r.data(Side::Client, b"cd", 2);
    assert_eq!(r.out.len(), 1);
    assert_eq!(pools.heads.held(), 0);
}

/// llhttp's lenient header-value modes: a control byte (not HTAB, NUL, CR or LF) in a value
/// is kept as sent and counted; the exchange pairs without a parse error.
#[test]
fn control_bytes_in_header_values_are_accepted_and_counted() {
    let r = run(&[
        Ev::C(b"GET /url HTTP/1.1\r\nHeader1: hello\x0cworld\r\nX-Del: a\x7fb\r\n\r\n"),
        Ev::S(b"HTTP/1.1 200 OK\r\nX-Bell: \x07\r\nContent-Length: 2\r\n\r\nok"),
        Ev::C(b"GET /next HTTP/1.1\r\nHost: a\r\n\r\n"),
        Ev::S(b"HTTP/1.1 204 No Content\r\n\r\n"),
    ]);
    assert_eq!(
        summary(&r.out),
        vec![
            s("req", 0, "GET /url", "", false),
            s("res", 0, "200", "ok", false),
            s("req", 1, "GET /next", "", false),
            s("res", 1, "204", "", false),
        ]
    );
    assert_eq!(
        r.out[0].headers,
        vec![
            (
                "header1".into(),
                HeaderValue::Single("hello\x0cworld".into())
            ),
            ("x-del".into(), HeaderValue::Single("a\x7fb".into())),
        ]
    );
    assert_eq!(r.out[0].parse_error, None);
    assert_eq!(
        r.out[1].headers[0],
        ("x-bell".into(), HeaderValue::Single("\x07".into()))
    );
    assert_eq!(r.stats.lenient_header_values, 2);
    assert_eq!(r.stats.parse_errors(), 0);
    // Split at every byte, the same.
    let evs = [Ev::C(
        b"GET /url HTTP/1.1\r\nA: \x01\x0b\r\nContent-Length: 1\r\n\r\nx",
    )];
    let whole = run_split(&evs, None);
    for cut in 0..45 {
        assert_eq!(
            summary(&run_split(&evs, Some((0, cut)))),
            summary(&whole),
            "cut {cut}"
        );
    }
    // NUL stays an error: it ends a value early for some peers.
    let r = run(&[Ev::C(b"GET /url HTTP/1.1\r\nA: x\x00y\r\n\r\n")]);
    assert_eq!(r.stats.lenient_header_values, 0);
    assert!(r.stats.parse_errors() > 0);
}

/// llhttp's lenient data-after-close mode: bytes after a message with `Connection: close`
/// that are not a message are skipped and counted, not a parse error or a lost message; a
/// well-formed message there is still parsed.
#[test]
fn data_after_connection_close_is_counted_not_an_error() {
    let r = run(&[
        Ev::C(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n"),
        Ev::S(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nConnection: close\r\n\r\n2ad731e3-4dcd-4f70\r\n\r\n"),
    ]);
    assert_eq!(
        summary(&r.out),
        vec![
            s("req", 0, "GET /", "", false),
            s("res", 0, "200", "2ad73", false),
        ]
    );
    assert!(r.stats.data_after_close >= 1);
    assert_eq!(r.stats.parse_errors(), 0);
    assert_eq!(r.stats.lost_responses, 0);
    assert!(r.stats.skipped_bytes >= 17);

    // Client side too; and no placeholder request is queued for the garbage.
    let r = run(&[
        Ev::C(b"POST / HTTP/1.1\r\nContent-Length: 1\r\nConnection: close\r\n\r\nx\x01\x02garbage\r\n\r\n"),
        Ev::S(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"),
    ]);
    assert_eq!(summary(&r.out)[1], s("res", 0, "200", "", false));
    assert_eq!(r.out.len(), 2);
    assert!(r.stats.data_after_close >= 1);
    assert_eq!((r.stats.parse_errors(), r.stats.lost_requests), (0, 0));

    // Without `Connection: close` the same bytes are a parse error.
    let r = run(&[
        Ev::C(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n"),
        Ev::S(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n2ad731e3-4dcd-4f70\r\n\r\n"),
    ]);
    assert_eq!(r.stats.data_after_close, 0);
    assert!(r.stats.parse_errors() > 0);

    // A message after the close is still parsed (llhttp's lenient keep-alive), counted, and
    // resets the state.
    let r = run(&[Ev::C(
        b"GET /a HTTP/1.1\r\nConnection: close\r\n\r\nGET /b HTTP/1.1\r\n\r\n\x01\x02",
    )]);
    assert_eq!(r.stats.requests, 2);
    assert_eq!(r.stats.messages_after_close, 1);
    assert_eq!(r.stats.data_after_close, 0);
    assert!(r.stats.parse_errors() > 0);
}

/// Bare LF in chunk framing (llhttp's lenient mode accepts it, RFC 9112 §2.2 lets a recipient):
/// the body is read and the message counted once in `bare_lf_chunked_bodies`, no parse error.
#[test]
fn bare_lf_in_chunked_framing_is_counted() {
    let r = run(&[
        Ev::C(b"POST / HTTP/1.1\nTransfer-Encoding: chunked\n\n1\nA\n1;abc\nB\n0\nBaz: ghi\n\n"),
        Ev::S(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n\r\n"),
    ]);
    assert_eq!(
        summary(&r.out),
        vec![
            s("req", 0, "POST /", "AB", false),
            s("res", 0, "200", "ok", false)
        ]
    );
    assert_eq!(r.stats.bare_lf_chunked_bodies, 1);
    assert_eq!(r.stats.bare_lf_heads, 1);
    assert_eq!(r.stats.chunk_size_whitespace_bodies, 0);
    assert_eq!(r.stats.parse_errors(), 0);
    assert_eq!(r.stats.messages_after_close, 0);
}

/// Whitespace after a chunk size (llhttp's lenient spaces-after-chunk-size mode, hyper):
/// accepted and counted once per body.
#[test]
fn whitespace_after_chunk_size_is_counted() {
    let r = run(&[Ev::C(
        b"PUT /url HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\na \r\n0123456789\r\n1\t\r\nx\r\n0\r\n\r\n",
    )]);
    assert_eq!(r.out[0].body, b"0123456789x");
    assert_eq!(r.stats.chunk_size_whitespace_bodies, 1);
    assert_eq!(
        (r.stats.bare_lf_chunked_bodies, r.stats.parse_errors()),
        (0, 0)
    );
}

/// RFC 9112 §2.3 / RFC 9110 §6.2: `HTTP/1.2` … `HTTP/1.9` are processed as HTTP/1.1, in
/// request and status lines, whatever the split points; other versions stay errors.
#[test]
fn higher_minor_http1_versions_are_read_as_1_1() {
    let evs = [
        Ev::C(b"GET /a HTTP/1.2\r\nHost: x\r\n\r\n"),
        Ev::S(b"HTTP/1.9 200 OK\r\nContent-Length: 2\r\n\r\nok"),
        Ev::C(b"POST /b HTTP/1.5\r\nContent-Length: 3\r\n\r\nabc"),
        Ev::S(b"HTTP/1.3 201 Created\r\nContent-Length: 0\r\n\r\n"),
        // The lenient request line (spaces in the target) takes a higher minor too.
        Ev::C(b"GET /c d HTTP/1.4\r\n\r\n"),
        Ev::S(b"HTTP/1.1 204 No Content\r\n\r\n"),
    ];
    let r = run(&evs);
    assert_eq!(
        summary(&r.out),
        vec![
            s("req", 0, "GET /a", "", false),
            s("res", 0, "200", "ok", false),
            s("req", 1, "POST /b", "abc", false),
            s("res", 1, "201", "", false),
            s("req", 2, "GET /c d", "", false),
            s("res", 2, "204", "", false),
        ]
    );
    for m in &r.out {
        assert_eq!((m.http_version, m.parse_error), ("1.1", None), "{m:?}");
    }
    assert_eq!(r.stats.higher_minor_versions, 5);
    assert_eq!(r.stats.parse_errors(), 0);
    assert_eq!(r.stats.heads_with_parse_error, 0);
    let full = |out: &[HttpMessage]| {
        let v: Vec<_> = out
            .iter()
            .map(|m| (m.http_version, m.parse_error))
            .collect();
        (summary(out), v)
    };
    let whole = full(&run_split(&evs, None));
    assert_eq!(whole, full(&r.out), "byte by byte");
    for (k, e) in evs.iter().enumerate() {
        let (Ev::C(b) | Ev::S(b)) = *e else { continue };
        for cut in 0..=b.len() {
            assert_eq!(
                full(&run_split(&evs, Some((k, cut)))),
                whole,
                "event {k} cut {cut}"
            );
        }
    }

    // Not a higher 1.x minor: still an invalid version, reported as 1.1.
    for line in [
        &b"GET / HTTP/2.0\r\n\r\n"[..],
        b"GET / HTTP/5.6\r\n\r\n",
        b"GET / HTTP/1.10\r\n\r\n",
    ] {
        let r = run(&[Ev::C(line), Ev::C(b"GET /ok HTTP/1.1\r\n\r\n")]);
        assert_eq!(r.out[0].parse_error, Some("invalid-version"), "{line:?}");
        assert_eq!(r.out[1].parse_error, None, "{line:?}");
        assert_eq!(r.stats.higher_minor_versions, 0, "{line:?}");
    }
    let r = run(&[
        Ev::C(b"GET / HTTP/1.1\r\n\r\n"),
        Ev::S(b"HTTP/2.0 200 OK\r\nContent-Length: 0\r\n\r\n"),
    ]);
    assert_eq!(r.stats.higher_minor_versions, 0);
    assert!(r.stats.parse_errors() > 0, "{:?}", r.out);
}
