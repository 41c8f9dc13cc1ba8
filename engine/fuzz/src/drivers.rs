//! The two fuzz drivers. Each takes arbitrary bytes, interprets them as a small
//! script, runs it through the engine and panics when an invariant breaks.
//!
//! This file is compiled twice: into the `tcp_sniffer_fuzz` library (used by the
//! cargo-fuzz targets in `fuzz_targets/`) and, by `#[path]`, into the engine's
//! `tests/fuzz_regressions.rs`, so a saved crash input replays with `cargo test`.
//! It must only use `tcp_sniffer`, `serde_json` and `std`.
//!
//! # `http_stream` input
//!
//! ```text
//! byte 0      bit 0: the connection is mid-stream (no SYN seen: parsing resyncs)
//! then records, each starting with a header byte h:
//!   side = h & 1 (0 client, 1 server); op = (h >> 1) & 7;
//!   the capture clock advances by 1 + (h >> 4) ms before each record
//!   op 0..=4  data:  length byte n, or 0xff then u16 little-endian; then n bytes
//!                    (cut short at the end of the input)
//!   op 5      gap:   byte k: k < 0x80 → k bytes missing, else 2^min(k & 63, 30)
//!                    bytes (reassembly never reports more than 1 GiB at once:
//!                    MAX_SEQ_JUMP); `http_stream_script(data, 63)` allows any u64
//!   op 6      fin(side)
//!   op 7      close (later records still run against the closed connection)
//! the script always ends with close
//! ```
//!
//! # `http2_stream` input
//!
//! The `http_stream` script, run with the HTTP/2 connection preface sent by the
//! client first (unless bit 1 of byte 0 is set: then the bytes must speak for
//! themselves, e.g. a mid-stream start), so the records exercise the HTTP/2
//! parser (frames, HPACK, streams) behind the HTTP/1 stage's hand-over.
//!
//! # `packets` input
//!
//! ```text
//! byte 0      bit 0: link type, 0 = Ethernet, 1 = Raw (IPv4/IPv6 by version nibble)
//! then frames: u16 big-endian L, then L & 0x7fff bytes (cut short at the end);
//!   bit 15 of L: the clock jumps 61 s before this frame (past the 60 s idle
//!   timeout); otherwise it advances 1 ms per frame
//! then Worker::finish
//! ```

use tcp_sniffer::config::{RawValue, SettingsBuilder, Surface};
use tcp_sniffer::http::{HttpConfig, HttpConnection, HttpStats};
use tcp_sniffer::message::{
    ConnMeta, Direction, Endpoint, HeaderValue, HttpMessage, MessageKind, Side,
};
use tcp_sniffer::pipeline::{flow_config, Worker};
use tcp_sniffer::time::Timestamp;
use tcp_sniffer::wire::LinkType;

/// `max_body_size` of the `http_stream` driver.
pub const FUZZ_MAX_BODY: usize = 64;
/// `max_head_size` of the `http_stream` driver.
pub const FUZZ_MAX_HEAD: usize = 512;

/// log2 of the largest gap the `http_stream` driver reports: the reassembly stage
/// never hands the HTTP stage more than `MAX_SEQ_JUMP` (1 GiB) at once.
pub const MAX_GAP_LOG2: u8 = 30;

/// First capture time used by both drivers (2023-11-14).
const T0: u64 = 1_700_000_000_000_000;

/// The most `HttpConnection::buffered_bytes` may report with the fuzz config.
///
/// The documented invariant is, per direction, at most `max(max_head_size,
/// detect bound)` bytes of held input plus `max_body_size` bytes of body.
/// `buffered_bytes` counts capacity, so allow for: the parser never going
/// below 256 bytes of head limit, a kept buffer of up to 4 KiB (KEEP_BUF_CAPACITY),
/// geometric growth by up to 4 KiB past the limit, and Vec doubling (x2).
/// Anything beyond this grows with the input and is a bug.
pub fn buffered_bound() -> usize {
    let held = FUZZ_MAX_HEAD.max(256).max(4096) + 4096;
    let per_direction = 2 * held + 2 * FUZZ_MAX_BODY;
    2 * per_direction
}

/// The most `HttpConnection::buffered_bytes` may report once a connection speaks
/// HTTP/2 (see `tcp_sniffer::http2`): per direction a frame buffer (at most 64 KiB
/// searched after a gap plus one 64 KiB input piece, doubled by geometric growth), a
/// header block (16 KiB, doubled), an HPACK table (64 KiB, charged at most twice its
/// RFC size); and a body of `max_body_size` per open stream side.
pub fn h2_buffered_bound() -> usize {
    let per_direction = 2 * (128 << 10) + 2 * (16 << 10) + 2 * (64 << 10);
    2 * per_direction + 2 * tcp_sniffer::http2::MAX_STREAMS * FUZZ_MAX_BODY
}

/// A cursor over the fuzz input.
struct Input<'a> {
    rest: &'a [u8],
}

impl<'a> Input<'a> {
    fn byte(&mut self) -> Option<u8> {
        let (&b, rest) = self.rest.split_first()?;
        self.rest = rest;
        Some(b)
    }

    fn take(&mut self, n: usize) -> &'a [u8] {
        let n = n.min(self.rest.len());
        let (a, b) = self.rest.split_at(n);
        self.rest = b;
        a
    }
}

/// Serialises `m` and checks the JSON parses and agrees with the message. `max_body`: the
/// run's `maxBodySize`.
pub fn check_message(m: &HttpMessage, max_body: usize) {
    let mut buf = Vec::new();
    m.write_json(None, &mut buf);
    let v: serde_json::Value = match serde_json::from_slice(&buf) {
        Ok(v) => v,
        Err(e) => panic!(
            "write_json produced invalid JSON ({e}): {}\nmessage: {m:?}",
            String::from_utf8_lossy(&buf)
        ),
    };
    let obj = v.as_object().expect("message JSON is an object");
    let kind = match &m.kind {
        MessageKind::Request { method, url } => {
            assert_eq!(obj["method"], method.as_str(), "method round-trips");
            assert_eq!(obj["url"], url.as_str(), "url round-trips");
            "request"
        }
        MessageKind::Response {
            status_code,
            status_message,
            latency_ms,
        } => {
            assert_eq!(obj["statusCode"], *status_code, "statusCode round-trips");
            assert_eq!(obj["statusMessage"], status_message.as_str());
            if let Some(ms) = latency_ms {
                assert!(ms.is_finite() && *ms >= 0.0, "latencyMs {ms} in {m:?}");
            }
            "response"
        }
    };
    assert_eq!(obj["type"], kind);
    assert_eq!(obj["sequence"], m.sequence);
    assert_eq!(obj["bodySize"], m.body_size);
    match m.parse_error {
        Some(e) => assert_eq!(obj["parseError"], e),
        None => assert!(obj.get("parseError").is_none()),
    }
    assert!(
        matches!(m.http_version, "0.9" | "1.0" | "1.1" | "2"),
        "httpVersion {:?}",
        m.http_version
    );
    assert_eq!(
        m.stream_id.is_some(),
        m.http_version == "2",
        "streamId exactly on HTTP/2 messages: {m:?}"
    );
    if let Some(id) = m.stream_id {
        assert_eq!(obj["streamId"], id);
    }
    if m.trailers.is_empty() {
        assert!(obj.get("trailers").is_none(), "empty trailers written");
    } else {
        let t = obj["trailers"].as_object().expect("trailers is an object");
        assert_eq!(t.len(), m.trailers.len(), "{:?}", m.trailers);
    }
    let headers = obj["headers"].as_object().expect("headers is an object");
    assert_eq!(
        headers.len(),
        m.headers.len(),
        "header names are unique: {:?}",
        m.headers
    );
    for (name, value) in &m.headers {
        assert_eq!(
            name.to_ascii_lowercase(),
            *name,
            "header names are lower-cased"
        );
        match value {
            HeaderValue::Single(s) => assert_eq!(headers[&**name], s.as_str()),
            HeaderValue::List(l) => assert_eq!(headers[&**name], serde_json::json!(l)),
        }
    }
    assert!(
        m.body.len() <= max_body,
        "body longer than maxBodySize: {} > {max_body}",
        m.body.len()
    );
    // Redaction may lengthen a body (a short value becomes "[REDACTED]"); one that grows
    // past maxBodySize is cut back to it and marked truncated.
    let cut_after_redaction = m.truncated && m.body.len() == max_body;
    // A decoded body (`decodeBodies`) holds the decoded bytes: it is bounded by
    // `decodedBodySize`, not by the size on the wire.
    let body_limit = m.decoded_body_size.unwrap_or(m.body_size);
    assert!(
        m.body.len() as u64 <= body_limit
            || cut_after_redaction
            || m.body.windows(10).any(|w| w == b"[REDACTED]"),
        "body longer than {}: {} > {body_limit}",
        if m.decoded_body_size.is_some() {
            "decodedBodySize"
        } else {
            "bodySize"
        },
        m.body.len(),
    );
    // (A decoded body stopped at the bomb limit is whole up to that limit and truncated.)
    if m.decoded_body_size.is_none()
        && m.body.len() as u64 == m.body_size
        && !m.incomplete
        && !cut_after_redaction
    {
        assert!(!m.truncated, "complete whole body marked truncated: {m:?}");
    }
    assert!(
        m.end_timestamp >= m.timestamp,
        "endTimestamp before timestamp: {m:?}"
    );
}

/// Runs one `http_stream` script (see the module docs); returns how many
/// messages it emitted.
pub fn http_stream(data: &[u8]) -> usize {
    http_stream_script(data, MAX_GAP_LOG2)
}

/// [`http_stream`] with gaps of up to 2^`max_gap_log2` bytes (63: anything the
/// `len: u64` of `HttpConnection::gap` allows).
pub fn http_stream_script(data: &[u8], max_gap_log2: u8) -> usize {
    script(data, max_gap_log2, false)
}

/// Runs one `http2_stream` script (see the module docs); returns how many
/// messages it emitted.
pub fn http2_stream(data: &[u8]) -> usize {
    script(data, MAX_GAP_LOG2, true)
}

fn script(data: &[u8], max_gap_log2: u8, h2: bool) -> usize {
    let mut input = Input { rest: data };
    let flags = input.byte().unwrap_or(0);
    let meta = ConnMeta {
        id: 0x0123_4567_89ab_cdef,
        client: Endpoint {
            ip: [192, 0, 2, 1].into(),
            port: 40000,
        },
        server: Endpoint {
            ip: [192, 0, 2, 2].into(),
            port: 80,
        },
        direction: Direction::Unknown,
        mid_stream: flags & 1 == 1,
    };
    let cfg = HttpConfig {
        max_body_size: FUZZ_MAX_BODY,
        max_head_size: FUZZ_MAX_HEAD,
        ..HttpConfig::default()
    };
    let bound = buffered_bound();
    let mut conn = HttpConnection::new(&meta);
    let mut stats = HttpStats::default();
    let mut out = Vec::new();
    let mut ts = T0;
    let mut emitted = 0usize;
    if h2 && flags & 2 == 0 {
        let preface = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
        conn.data(
            Side::Client,
            preface,
            Timestamp(ts),
            &cfg,
            &mut stats,
            &mut out,
        );
    }
    let bound = |conn: &HttpConnection| {
        if conn.is_http2() {
            h2_buffered_bound()
        } else {
            bound
        }
    };
    while let Some(h) = input.byte() {
        let side = if h & 1 == 0 {
            Side::Client
        } else {
            Side::Server
        };
        ts += 1000 * (1 + u64::from(h >> 4));
        let now = Timestamp(ts);
        match (h >> 1) & 7 {
            0..=4 => {
                let n = match input.byte() {
                    Some(0xff) => {
                        let lo = input.byte().unwrap_or(0);
                        let hi = input.byte().unwrap_or(0);
                        usize::from(u16::from_le_bytes([lo, hi]))
                    }
                    Some(n) => usize::from(n),
                    None => 0,
                };
                let bytes = input.take(n);
                conn.data(side, bytes, now, &cfg, &mut stats, &mut out);
            }
            5 => {
                let k = input.byte().unwrap_or(0);
                let len = if k < 0x80 {
                    u64::from(k)
                } else {
                    1u64 << (k & 63).min(max_gap_log2.min(63))
                };
                conn.gap(side, len, now, &cfg, &mut stats, &mut out);
            }
            6 => conn.fin(side, now, &cfg, &mut stats, &mut out),
            _ => conn.close(now, &cfg, &mut stats, &mut out),
        }
        let held = conn.buffered_bytes();
        let bound = bound(&conn);
        assert!(
            held <= bound,
            "buffered_bytes {held} > bound {bound} after {} input bytes",
            data.len() - input.rest.len()
        );
        for m in &out[emitted..] {
            check_message(m, FUZZ_MAX_BODY);
        }
        emitted = out.len();
    }
    conn.close(Timestamp(ts + 1000), &cfg, &mut stats, &mut out);
    for m in &out[emitted..] {
        check_message(m, FUZZ_MAX_BODY);
    }
    assert!(!conn.wants_data(), "closed connection still wants data");
    assert!(
        conn.buffered_bytes() <= bound(&conn),
        "buffered_bytes {} after close",
        conn.buffered_bytes()
    );
    out.len()
}

/// Runs one `packets` script (see the module docs); returns how many messages
/// it emitted.
pub fn packets(data: &[u8]) -> usize {
    let mut b = SettingsBuilder::new(Surface::Cli, false);
    // 80 as in the usual deployment; 8080 so the seeds from tests/data/demo.pcap parse.
    b.set("--ports", RawValue::Text("80,8080".into()))
        .expect("--ports accepted");
    let settings = b.build().expect("settings build");
    let mut w = Worker::new(flow_config(&settings, 1, vec![]), 0);

    let mut input = Input { rest: data };
    let link = if input.byte().unwrap_or(0) & 1 == 0 {
        LinkType::Ethernet
    } else {
        LinkType::Raw
    };
    let mut ts = T0;
    let mut emitted = 0;
    while let (Some(hi), Some(lo)) = (input.byte(), input.byte()) {
        let l = u16::from_be_bytes([hi, lo]);
        ts += if l & 0x8000 != 0 { 61_000_000 } else { 1000 };
        let frame = input.take(usize::from(l & 0x7fff));
        w.packet(link, frame, Timestamp(ts));
        for m in w.messages().drain(..) {
            check_message(&m, settings.max_body_size);
            emitted += 1;
        }
    }
    w.finish();
    for m in w.messages().drain(..) {
        check_message(&m, settings.max_body_size);
        emitted += 1;
    }
    let stats = w.stats();
    assert!(serde_json::to_string(&stats).is_ok(), "stats serialise");
    emitted
}
