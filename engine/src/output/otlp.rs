//! `outputFormat: otlp`: the messages as OpenTelemetry spans, for the output URL's sender
//! pool ([`super::http_post`]), which delivers them exactly as it delivers JSON (bounded
//! queue, batching, retries, bearer token, counters).
//!
//! One span per exchange, built from the request and its response (paired by
//! `connectionId` and `sequence`, in capture order as the outputs receive them):
//! - start at the request's first byte, end at the response's last byte;
//! - kind SERVER for `inbound` and `unknown` direction, CLIENT for `outbound`;
//! - attributes of the OpenTelemetry HTTP semantic conventions: `http.request.method`
//!   (`_OTHER` plus `http.request.method_original` for a non-standard method),
//!   `url.path`, `url.query`, `url.scheme`, `http.response.status_code`,
//!   `server.address`/`server.port` (from `Host`, else the server's address),
//!   `client.address`/`client.port`, `network.protocol.version`, `user_agent.original`;
//! - status ERROR for a `5xx` on a SERVER span and for `4xx`/`5xx` on a CLIENT span;
//! - trace id and span id are random, unless the request carries a valid W3C
//!   `traceparent`: then the span joins that trace, as a child of the caller's span;
//! - resource `k8s.pod.name`, `k8s.namespace.name`, `k8s.node.name` (from the messages'
//!   `pod`), `service.name` (`OTEL_SERVICE_NAME`, else `tcp-sniffer`).
//!
//! Interim `1xx` responses (not `101`) travel with their exchange's span. A request whose
//! response has not come is held (at most [`MAX_HELD_REQUESTS`], at most
//! [`HOLD_FOR`]) and then exported alone, without a status code; so is a response whose
//! request was never seen. Every message is accounted for: a span carries the number of
//! messages it stands for, and the output's counters count messages.
//!
//! Encoding uses the official protobuf definitions (`opentelemetry-proto`'s prost types).
//! An export request is assembled from already-encoded spans by writing the enclosing
//! messages' field headers around them (the protobuf encoding of a repeated field is the
//! concatenation of its elements), so spans are encoded once, on the caller's thread.

use std::collections::{HashMap, VecDeque};
use std::time::{Duration, Instant};

use opentelemetry_proto::tonic::common::v1::{any_value, AnyValue, InstrumentationScope, KeyValue};
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::{span, status, Span, Status};
use prost::encoding::{encode_key, encode_varint, WireType};
use prost::Message as _;
use serde::Deserialize;

/// Requests held while their responses are awaited.
pub const MAX_HELD_REQUESTS: usize = 10_000;
/// A request held this long (wall clock) is exported without its response.
pub const HOLD_FOR: Duration = Duration::from_secs(60);

/// Standard methods kept as they are in `http.request.method`.
const METHODS: [&str; 9] = [
    "GET", "HEAD", "POST", "PUT", "DELETE", "CONNECT", "OPTIONS", "TRACE", "PATCH",
];

#[derive(Deserialize)]
struct Ep {
    ip: String,
    port: u16,
}

#[derive(Deserialize, Default)]
struct Pod {
    name: Option<String>,
    namespace: Option<String>,
    node: Option<String>,
}

/// The fields of a schema-v1 message a span needs.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Msg {
    #[serde(rename = "type")]
    kind: String,
    connection_id: String,
    sequence: u64,
    timestamp: String,
    end_timestamp: String,
    source: Ep,
    destination: Ep,
    direction: String,
    method: Option<String>,
    url: Option<String>,
    status_code: Option<u16>,
    http_version: String,
    #[serde(default)]
    headers: HashMap<String, serde_json::Value>,
    #[serde(default)]
    incomplete: bool,
    pod: Option<Pod>,
}

impl Msg {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.as_str())
    }
}

/// An encoded span and the number of messages it stands for.
pub struct EncodedSpan {
    /// The `Span` message, protobuf-encoded.
    pub bytes: Vec<u8>,
    /// Messages (request, interim and final responses) in it.
    pub messages: usize,
}

struct Held {
    req: Msg,
    /// Messages in the exchange so far (the request and interim responses).
    messages: usize,
    at: Instant,
    id: u64,
}

/// Pairs messages into spans. Owned by the output (the caller's thread).
#[derive(Default)]
pub struct SpanBuilder {
    held: HashMap<(String, u64), Held>,
    order: VecDeque<((String, u64), u64)>,
    next_id: u64,
    /// Resource attributes, from the first message that carried `pod`.
    resource: Option<Vec<u8>>,
    /// Messages that could not be read back (never happens with the engine's own JSON).
    pub unreadable: u64,
}

impl SpanBuilder {
    /// Takes one message's JSON; returns the spans it completes (a response completes its
    /// exchange; holding too many requests exports the oldest alone).
    pub fn push(&mut self, json: &[u8], now: Instant, out: &mut Vec<EncodedSpan>) {
        let Ok(m) = serde_json::from_slice::<Msg>(json) else {
            self.unreadable += 1;
            return;
        };
        if self.resource.is_none() {
            if let Some(pod) = &m.pod {
                self.resource = Some(resource(Some(pod)).encode_to_vec());
            }
        }
        let key = (m.connection_id.clone(), m.sequence);
        if m.kind == "request" {
            if let Some(old) = self.held.remove(&key) {
                out.push(encode(&old.req, None, old.messages));
            }
            while self.held.len() >= MAX_HELD_REQUESTS {
                self.export_oldest(out);
            }
            let id = self.next_id;
            self.next_id += 1;
            self.order.push_back((key.clone(), id));
            self.held.insert(
                key,
                Held {
                    req: m,
                    messages: 1,
                    at: now,
                    id,
                },
            );
            return;
        }
        let status = m.status_code.unwrap_or(0);
        let interim = (100..200).contains(&status) && status != 101;
        match self.held.get_mut(&key) {
            Some(h) if interim => h.messages += 1,
            Some(_) => {
                let h = self.held.remove(&key).expect("present");
                out.push(encode(&h.req, Some(&m), h.messages + 1));
            }
            None => out.push(encode_response_alone(&m)),
        }
    }

    /// Exports requests held longer than [`HOLD_FOR`] (or all, when `all`) without responses.
    pub fn expire(&mut self, now: Instant, all: bool, out: &mut Vec<EncodedSpan>) {
        while let Some((key, id)) = self.order.front() {
            match self.held.get(key) {
                Some(h) if h.id == *id => {
                    if !all && now.duration_since(h.at) < HOLD_FOR {
                        break;
                    }
                    self.export_oldest(out);
                }
                _ => {
                    self.order.pop_front();
                }
            }
        }
    }

    fn export_oldest(&mut self, out: &mut Vec<EncodedSpan>) {
        while let Some((key, id)) = self.order.pop_front() {
            if self.held.get(&key).is_some_and(|h| h.id == id) {
                let h = self.held.remove(&key).expect("present");
                out.push(encode(&h.req, None, h.messages));
                return;
            }
        }
    }

    /// Messages held in unfinished exchanges.
    pub fn held_messages(&self) -> usize {
        self.held.values().map(|h| h.messages).sum()
    }

    /// The encoded `Resource` for export requests.
    pub fn resource(&self) -> Vec<u8> {
        self.resource
            .clone()
            .unwrap_or_else(|| resource(None).encode_to_vec())
    }
}

fn kv(key: &str, v: any_value::Value) -> KeyValue {
    KeyValue {
        key: key.to_string(),
        value: Some(AnyValue { value: Some(v) }),
        ..Default::default()
    }
}

fn s(key: &str, v: impl Into<String>) -> KeyValue {
    kv(key, any_value::Value::StringValue(v.into()))
}

fn i(key: &str, v: i64) -> KeyValue {
    kv(key, any_value::Value::IntValue(v))
}

fn resource(pod: Option<&Pod>) -> Resource {
    let service = std::env::var("OTEL_SERVICE_NAME")
        .ok()
        .filter(|v| !v.is_empty())
        .unwrap_or_else(|| "tcp-sniffer".into());
    let mut attributes = vec![s("service.name", service)];
    if let Some(p) = pod {
        for (k, v) in [
            ("k8s.pod.name", &p.name),
            ("k8s.namespace.name", &p.namespace),
            ("k8s.node.name", &p.node),
        ] {
            if let Some(v) = v {
                attributes.push(s(k, v.clone()));
            }
        }
    }
    Resource {
        attributes,
        ..Default::default()
    }
}

/// `(trace id, parent span id, trace flags)` of a valid W3C `traceparent` (version 00, or
/// a later version read as 00 as the spec asks), else `None`.
pub fn parse_traceparent(v: &str) -> Option<([u8; 16], [u8; 8], u8)> {
    let v = v.trim();
    let mut parts = v.split('-');
    let version = parts.next()?;
    let trace = parts.next()?;
    let parent = parts.next()?;
    let flags = parts.next()?;
    if version.len() != 2 || version.eq_ignore_ascii_case("ff") {
        return None;
    }
    if version == "00" && parts.next().is_some() {
        return None;
    }
    let mut t = [0u8; 16];
    let mut p = [0u8; 8];
    let mut f = [0u8; 1];
    hex(trace, &mut t)?;
    hex(parent, &mut p)?;
    hex(flags, &mut f)?;
    hex(version, &mut [0u8; 1])?;
    if t == [0; 16] || p == [0; 8] {
        return None;
    }
    Some((t, p, f[0]))
}

fn hex(s: &str, out: &mut [u8]) -> Option<()> {
    let b = s.as_bytes();
    if b.len() != out.len() * 2 {
        return None;
    }
    let d = |c: u8| match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        _ => None, // W3C: lower-case hex only
    };
    for (k, o) in out.iter_mut().enumerate() {
        *o = d(b[2 * k])? << 4 | d(b[2 * k + 1])?;
    }
    Some(())
}

/// Unix nanoseconds of the engine's RFC 3339 timestamps (`2024-01-02T03:04:05.123456Z`).
pub fn unix_nanos(ts: &str) -> Option<u64> {
    let b = ts.as_bytes();
    let num = |r: std::ops::Range<usize>| -> Option<u64> {
        let s = ts.get(r)?;
        if !s.bytes().all(|c| c.is_ascii_digit()) {
            return None;
        }
        s.parse().ok()
    };
    if b.len() < 20 || b[4] != b'-' || b[7] != b'-' || b[10] != b'T' {
        return None;
    }
    let (y, mo, d) = (num(0..4)? as i64, num(5..7)?, num(8..10)?);
    let (h, mi, sec) = (num(11..13)?, num(14..16)?, num(17..19)?);
    let mut nanos = 0u64;
    let rest = &ts[19..];
    let rest = if let Some(frac) = rest.strip_prefix('.') {
        let digits: String = frac.chars().take_while(|c| c.is_ascii_digit()).collect();
        let mut scale = 100_000_000u64;
        for c in digits.bytes().take(9) {
            nanos += (c - b'0') as u64 * scale;
            scale /= 10;
        }
        &frac[digits.len()..]
    } else {
        rest
    };
    if rest != "Z" || !(1..=12).contains(&mo) || !(1..=31).contains(&d) {
        return None;
    }
    // Days from civil (Howard Hinnant's algorithm).
    let y = if mo <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (mo as i64 + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d as i64 - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    if days < 0 {
        return None;
    }
    Some((days as u64 * 86_400 + h * 3600 + mi * 60 + sec) * 1_000_000_000 + nanos)
}

/// A random 64-bit value (SplitMix64 over a per-thread seed from the OS-seeded hasher keys).
fn random_u64() -> u64 {
    use std::cell::Cell;
    use std::hash::BuildHasher;
    thread_local! {
        static STATE: Cell<u64> = Cell::new(
            std::collections::hash_map::RandomState::new().hash_one(std::time::SystemTime::now())
        );
    }
    STATE.with(|st| {
        let mut z = st.get().wrapping_add(0x9E37_79B9_7F4A_7C15);
        st.set(z);
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    })
}

/// A random value in `[lo, hi)`, for retry jitter.
pub fn random_between(lo: f64, hi: f64) -> f64 {
    lo + (hi - lo) * ((random_u64() >> 11) as f64 / (1u64 << 53) as f64)
}

fn nonzero_random<const N: usize>() -> [u8; N] {
    loop {
        let mut out = [0u8; N];
        for chunk in out.chunks_mut(8) {
            let r = random_u64().to_le_bytes();
            chunk.copy_from_slice(&r[..chunk.len()]);
        }
        if out != [0; N] {
            return out;
        }
    }
}

fn encode_response_alone(resp: &Msg) -> EncodedSpan {
    encode_span(None, Some(resp), 1)
}

fn encode(req: &Msg, resp: Option<&Msg>, messages: usize) -> EncodedSpan {
    encode_span(Some(req), resp, messages)
}

fn encode_span(req: Option<&Msg>, resp: Option<&Msg>, messages: usize) -> EncodedSpan {
    let first = req.or(resp).expect("a request or a response");
    let client_kind = first.direction == "outbound";
    let kind = if client_kind {
        span::SpanKind::Client
    } else {
        span::SpanKind::Server
    };
    let mut attributes = Vec::with_capacity(14);
    let mut name = "HTTP".to_string();
    let (mut trace_id, mut parent, mut flags) = (None, Vec::new(), 0u32);
    // Client and server as the request saw them (a response's source is the server).
    let (client, server) = match req {
        Some(r) => (&r.source, &r.destination),
        None => (&first.destination, &first.source),
    };
    if let Some(r) = req {
        let method = r.method.as_deref().unwrap_or("");
        if METHODS.contains(&method) {
            attributes.push(s("http.request.method", method));
            name = method.to_string();
        } else {
            attributes.push(s("http.request.method", "_OTHER"));
            attributes.push(s("http.request.method_original", method));
        }
        let url = r.url.as_deref().unwrap_or("");
        // An absolute-form target (a proxy's request) has its path after the authority.
        let target = match url.split_once("://") {
            Some((_, rest)) => rest.find('/').map_or("/", |p| &rest[p..]),
            None => url,
        };
        let (path, query) = match target.split_once('?') {
            Some((p, q)) => (p, Some(q)),
            None => (target, None),
        };
        let path = path.split('#').next().unwrap_or(path);
        attributes.push(s("url.path", path));
        if let Some(q) = query {
            attributes.push(s("url.query", q.split('#').next().unwrap_or(q)));
        }
        attributes.push(s("url.scheme", "http"));
        let (host, port) = match r.header("host").and_then(split_host) {
            Some((h, p)) => (h.to_string(), p.unwrap_or(server.port)),
            None => (server.ip.clone(), server.port),
        };
        attributes.push(s("server.address", host));
        attributes.push(i("server.port", port as i64));
        if let Some(ua) = r.header("user-agent") {
            attributes.push(s("user_agent.original", ua));
        }
        if let Some((t, p, f)) = r.header("traceparent").and_then(parse_traceparent) {
            trace_id = Some(t.to_vec());
            parent = p.to_vec();
            // W3C trace flags, plus "the parent is remote" (SPAN_FLAGS_CONTEXT_*).
            flags = f as u32 | 0x100 | 0x200;
        }
    } else {
        attributes.push(s("server.address", server.ip.clone()));
        attributes.push(i("server.port", server.port as i64));
    }
    attributes.push(s("client.address", client.ip.clone()));
    attributes.push(i("client.port", client.port as i64));
    attributes.push(s("network.protocol.version", first.http_version.clone()));
    attributes.push(s(
        "network.peer.address",
        if client_kind { &server.ip } else { &client.ip }.clone(),
    ));
    let mut status = Status::default();
    if let Some(resp) = resp {
        let code = resp.status_code.unwrap_or(0);
        attributes.push(i("http.response.status_code", code as i64));
        if code >= 500 || (client_kind && code >= 400) {
            status.code = status::StatusCode::Error as i32;
            attributes.push(s("error.type", code.to_string()));
        }
    }
    attributes.push(s("tcp_sniffer.connection_id", first.connection_id.clone()));
    if req.is_some_and(|r| r.incomplete) || resp.is_some_and(|r| r.incomplete) {
        attributes.push(kv(
            "tcp_sniffer.incomplete",
            any_value::Value::BoolValue(true),
        ));
    }
    if resp.is_none() {
        attributes.push(kv(
            "tcp_sniffer.response_missing",
            any_value::Value::BoolValue(true),
        ));
    }
    let start = unix_nanos(&first.timestamp).unwrap_or(0);
    let end = resp
        .or(req)
        .and_then(|m| unix_nanos(&m.end_timestamp))
        .unwrap_or(start)
        .max(start);
    let span = Span {
        trace_id: trace_id.unwrap_or_else(|| nonzero_random::<16>().to_vec()),
        span_id: nonzero_random::<8>().to_vec(),
        parent_span_id: parent,
        flags,
        name,
        kind: kind as i32,
        start_time_unix_nano: start,
        end_time_unix_nano: end,
        attributes,
        status: Some(status),
        ..Default::default()
    };
    EncodedSpan {
        bytes: span.encode_to_vec(),
        messages,
    }
}

/// `host[:port]` of a `Host` header (IPv6 literals in brackets).
fn split_host(h: &str) -> Option<(&str, Option<u16>)> {
    let h = h.trim();
    if h.is_empty() {
        return None;
    }
    if let Some(rest) = h.strip_prefix('[') {
        let (ip, after) = rest.split_once(']')?;
        let port = after.strip_prefix(':').and_then(|p| p.parse().ok());
        return Some((ip, port));
    }
    match h.rsplit_once(':') {
        Some((host, port)) => Some((host, port.parse().ok())),
        None => Some((h, None)),
    }
}

fn length_delimited(field: u32, bytes_len: usize, out: &mut Vec<u8>) {
    encode_key(field, WireType::LengthDelimited, out);
    encode_varint(bytes_len as u64, out);
}

/// An `ExportTraceServiceRequest` holding `spans` (encoded `Span`s) under one resource
/// (encoded `Resource`) and this crate's instrumentation scope.
pub fn export_request<'a>(
    resource: &[u8],
    spans: impl Iterator<Item = &'a [u8]> + Clone,
) -> Vec<u8> {
    let scope = InstrumentationScope {
        name: "tcp-sniffer".into(),
        version: env!("CARGO_PKG_VERSION").into(),
        ..Default::default()
    }
    .encode_to_vec();
    // ScopeSpans { scope = 1; repeated spans = 2; }
    let mut scope_spans = Vec::new();
    length_delimited(1, scope.len(), &mut scope_spans);
    scope_spans.extend_from_slice(&scope);
    for sp in spans {
        length_delimited(2, sp.len(), &mut scope_spans);
        scope_spans.extend_from_slice(sp);
    }
    // ResourceSpans { resource = 1; repeated scope_spans = 2; }
    let mut rs = Vec::with_capacity(scope_spans.len() + resource.len() + 16);
    length_delimited(1, resource.len(), &mut rs);
    rs.extend_from_slice(resource);
    length_delimited(2, scope_spans.len(), &mut rs);
    rs.extend_from_slice(&scope_spans);
    // ExportTraceServiceRequest { repeated resource_spans = 1; }
    let mut req = Vec::with_capacity(rs.len() + 8);
    length_delimited(1, rs.len(), &mut req);
    req.extend_from_slice(&rs);
    req
}

/// What a collector said in a `200` answer's `ExportTraceServiceResponse.partial_success`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PartialSuccess {
    /// Spans of the request the collector accepted but dropped (`rejected_spans`).
    pub rejected_spans: u64,
    /// The collector's `error_message` (why they were dropped, or a warning when
    /// `rejected_spans` is 0).
    pub error_message: String,
}

/// Reads a successful export's answer (OTLP/HTTP: the `ExportTraceServiceResponse`, in the
/// encoding named by the response's `Content-Type`: `application/json` is JSON, anything
/// else protobuf, which is what our `application/x-protobuf` request asks for).
///
/// `Ok(None)`: full success: an empty body, no `partial_success`, or one with neither
/// rejected spans nor a message (the spec says to treat that as full success).
/// `Err(reason)`: the body is not an `ExportTraceServiceResponse` (or says a negative
/// number of spans); the caller still counts the request as delivered.
pub fn partial_success(
    content_type: Option<&str>,
    body: &[u8],
) -> Result<Option<PartialSuccess>, String> {
    use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceResponse;
    if body.iter().all(|b| b.is_ascii_whitespace()) {
        return Ok(None);
    }
    let json = content_type.is_some_and(|ct| {
        let mime = ct.split(';').next().unwrap_or("").trim();
        mime.eq_ignore_ascii_case("application/json")
    });
    let (rejected, error_message) = if json {
        let v: serde_json::Value =
            serde_json::from_slice(body).map_err(|e| format!("invalid JSON: {e}"))?;
        let Some(obj) = v.as_object() else {
            return Err("JSON response is not an object".into());
        };
        // OTLP/JSON uses lowerCamelCase keys; proto3 JSON parsers also accept the proto
        // field names, so a collector may send either.
        let field = |o: &serde_json::Map<String, serde_json::Value>, a: &str, b: &str| {
            o.get(a).or_else(|| o.get(b)).cloned()
        };
        let Some(ps) = field(obj, "partialSuccess", "partial_success") else {
            return Ok(None);
        };
        let ps = match ps {
            serde_json::Value::Null => return Ok(None),
            serde_json::Value::Object(m) => m,
            _ => return Err("partialSuccess is not an object".into()),
        };
        // int64 is a JSON string in proto3's mapping; numbers are accepted too.
        let rejected = match field(&ps, "rejectedSpans", "rejected_spans") {
            None | Some(serde_json::Value::Null) => 0,
            Some(serde_json::Value::Number(n)) => n
                .as_i64()
                .ok_or_else(|| format!("rejectedSpans {n} is not an integer"))?,
            Some(serde_json::Value::String(s)) => s
                .trim()
                .parse::<i64>()
                .map_err(|_| format!("rejectedSpans {s:?} is not an integer"))?,
            Some(other) => return Err(format!("rejectedSpans {other} is not an integer")),
        };
        let message = match field(&ps, "errorMessage", "error_message") {
            None | Some(serde_json::Value::Null) => String::new(),
            Some(serde_json::Value::String(s)) => s,
            Some(_) => return Err("errorMessage is not a string".into()),
        };
        (rejected, message)
    } else {
        let r = ExportTraceServiceResponse::decode(body)
            .map_err(|e| format!("invalid protobuf: {e}"))?;
        let Some(ps) = r.partial_success else {
            return Ok(None);
        };
        (ps.rejected_spans, ps.error_message)
    };
    let rejected_spans =
        u64::try_from(rejected).map_err(|_| format!("negative rejectedSpans {rejected}"))?;
    if rejected_spans == 0 && error_message.is_empty() {
        return Ok(None);
    }
    Ok(Some(PartialSuccess {
        rejected_spans,
        error_message,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;

    fn msg(kind: &str, conn: &str, seq: u64, extra: &str) -> Vec<u8> {
        format!(
            r#"{{"type":"{kind}","connectionId":"{conn}","sequence":{seq},"timestamp":"2024-05-06T07:08:09.000100Z","endTimestamp":"2024-05-06T07:08:09.250000Z","source":{{"ip":"10.0.0.1","port":5555}},"destination":{{"ip":"10.0.0.2","port":8080}},"direction":"inbound","httpVersion":"1.1","body":"","bodyEncoding":"utf8","bodySize":0,"pod":{{"name":"web-1","namespace":"shop","node":"n1"}}{extra}}}"#
        )
        .into_bytes()
    }

    #[test]
    fn timestamps() {
        assert_eq!(unix_nanos("1970-01-01T00:00:00Z"), Some(0));
        assert_eq!(
            unix_nanos("2024-05-06T07:08:09.000100Z"),
            Some(1_714_979_289_000_100_000)
        );
        assert_eq!(
            unix_nanos("2000-03-01T00:00:00.5Z"),
            Some(951_868_800_500_000_000)
        );
        assert_eq!(unix_nanos("garbage"), None);
        assert_eq!(unix_nanos("2024-13-06T07:08:09Z"), None);
    }

    #[test]
    fn traceparent() {
        let (t, p, f) =
            parse_traceparent("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01").unwrap();
        assert_eq!(t[0], 0x4b);
        assert_eq!(p[7], 0xb7);
        assert_eq!(f, 1);
        for bad in [
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
            "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e473-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-x",
            "",
        ] {
            assert!(parse_traceparent(bad).is_none(), "{bad}");
        }
        // A later version may carry more fields.
        assert!(
            parse_traceparent("01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-x")
                .is_some()
        );
    }

    #[test]
    fn pairs_into_spans_that_decode_with_the_official_types() {
        let mut b = SpanBuilder::default();
        let now = Instant::now();
        let mut out = Vec::new();
        b.push(
            &msg(
                "request",
                "c1",
                0,
                r#","method":"GET","url":"/a/b?x=1","headers":{"host":"shop.example:8080","user-agent":"curl/8","traceparent":"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"}"#,
            ),
            now,
            &mut out,
        );
        assert!(out.is_empty());
        b.push(
            &msg(
                "response",
                "c1",
                0,
                r#","statusCode":100,"statusMessage":"Continue","headers":{}"#,
            ),
            now,
            &mut out,
        );
        assert!(out.is_empty());
        b.push(
            &msg(
                "response",
                "c1",
                0,
                r#","statusCode":503,"statusMessage":"x""#,
            ),
            now,
            &mut out,
        );
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].messages, 3);
        b.push(
            &msg("request", "c2", 0, r#","method":"BREW","url":"/pot""#),
            now,
            &mut out,
        );
        b.push(
            &msg(
                "response",
                "c3",
                4,
                r#","statusCode":200,"statusMessage":"OK""#,
            ),
            now,
            &mut out,
        );
        assert_eq!(out.len(), 2);
        assert_eq!(b.held_messages(), 1);
        b.expire(now, true, &mut out);
        assert_eq!(out.len(), 3);
        let body = export_request(&b.resource(), out.iter().map(|e| e.bytes.as_slice()));
        let req = ExportTraceServiceRequest::decode(body.as_slice()).unwrap();
        let rs = &req.resource_spans[0];
        let res: Vec<(String, String)> = rs
            .resource
            .as_ref()
            .unwrap()
            .attributes
            .iter()
            .map(|kv| {
                (
                    kv.key.clone(),
                    format!("{:?}", kv.value.as_ref().unwrap().value.as_ref().unwrap()),
                )
            })
            .collect();
        assert!(
            res.contains(&("k8s.pod.name".into(), "StringValue(\"web-1\")".into())),
            "{res:?}"
        );
        let spans = &rs.scope_spans[0].spans;
        assert_eq!(spans.len(), 3);
        let sp = &spans[0];
        assert_eq!(sp.name, "GET");
        assert_eq!(sp.kind, span::SpanKind::Server as i32);
        assert_eq!(hexs(&sp.trace_id), "4bf92f3577b34da6a3ce929d0e0e4736");
        assert_eq!(hexs(&sp.parent_span_id), "00f067aa0ba902b7");
        assert_eq!(sp.start_time_unix_nano, 1_714_979_289_000_100_000);
        assert_eq!(sp.end_time_unix_nano, 1_714_979_289_250_000_000);
        assert_eq!(
            sp.status.as_ref().unwrap().code,
            status::StatusCode::Error as i32
        );
        let attr = |sp: &Span, k: &str| {
            sp.attributes
                .iter()
                .find(|a| a.key == k)
                .map(|a| format!("{:?}", a.value.as_ref().unwrap().value.as_ref().unwrap()))
        };
        assert_eq!(attr(sp, "url.path").unwrap(), "StringValue(\"/a/b\")");
        assert_eq!(attr(sp, "url.query").unwrap(), "StringValue(\"x=1\")");
        assert_eq!(
            attr(sp, "server.address").unwrap(),
            "StringValue(\"shop.example\")"
        );
        assert_eq!(attr(sp, "server.port").unwrap(), "IntValue(8080)");
        assert_eq!(
            attr(sp, "http.response.status_code").unwrap(),
            "IntValue(503)"
        );
        assert_eq!(
            attr(sp, "user_agent.original").unwrap(),
            "StringValue(\"curl/8\")"
        );
        let alone = &spans[1];
        assert_eq!(
            attr(alone, "http.response.status_code").unwrap(),
            "IntValue(200)"
        );
        assert_eq!(alone.trace_id.len(), 16);
        assert!(alone.parent_span_id.is_empty());
        let brew = &spans[2];
        assert_eq!(brew.name, "HTTP");
        assert_eq!(
            attr(brew, "http.request.method").unwrap(),
            "StringValue(\"_OTHER\")"
        );
        assert_eq!(
            attr(brew, "http.request.method_original").unwrap(),
            "StringValue(\"BREW\")"
        );
        assert!(attr(brew, "http.response.status_code").is_none());
    }

    fn hexs(b: &[u8]) -> String {
        b.iter().map(|x| format!("{x:02x}")).collect()
    }
    #[test]
    fn partial_success_is_read_from_protobuf_and_json_answers() {
        use opentelemetry_proto::tonic::collector::trace::v1::{
            ExportTracePartialSuccess, ExportTraceServiceResponse,
        };
        let pb = |rejected: i64, msg: &str| {
            ExportTraceServiceResponse {
                partial_success: Some(ExportTracePartialSuccess {
                    rejected_spans: rejected,
                    error_message: msg.into(),
                }),
            }
            .encode_to_vec()
        };
        let want = |n: u64, m: &str| {
            Ok(Some(PartialSuccess {
                rejected_spans: n,
                error_message: m.into(),
            }))
        };
        let ct = Some("application/x-protobuf");
        assert_eq!(partial_success(ct, &pb(3, "too old")), want(3, "too old"));
        assert_eq!(partial_success(None, &pb(3, "")), want(3, ""));
        // A warning without rejections is still reported; an empty one is full success.
        assert_eq!(
            partial_success(ct, &pb(0, "slow down")),
            want(0, "slow down")
        );
        assert_eq!(partial_success(ct, &pb(0, "")), Ok(None));
        assert_eq!(partial_success(ct, b""), Ok(None));
        let no_field = ExportTraceServiceResponse::default().encode_to_vec();
        assert_eq!(partial_success(ct, &no_field), Ok(None));
        assert!(partial_success(ct, &pb(-1, "x")).is_err());
        assert!(partial_success(ct, b"\xff\xff\xff garbage").is_err());

        let js = Some("application/json; charset=utf-8");
        let j = |s: &str| partial_success(js, s.as_bytes());
        assert_eq!(
            j(r#"{"partialSuccess":{"rejectedSpans":"2","errorMessage":"bad attr"}}"#),
            want(2, "bad attr")
        );
        assert_eq!(
            j(r#"{"partial_success":{"rejected_spans":5,"error_message":"m"}}"#),
            want(5, "m")
        );
        assert_eq!(j("{}"), Ok(None));
        assert_eq!(j(r#"{"partialSuccess":{}}"#), Ok(None));
        assert_eq!(j(r#"{"partialSuccess":null}"#), Ok(None));
        assert_eq!(j("  \n"), Ok(None));
        assert!(j("not json").is_err());
        assert!(j("[1]").is_err());
        assert!(j(r#"{"partialSuccess":{"rejectedSpans":"-4"}}"#).is_err());
        assert!(j(r#"{"partialSuccess":{"rejectedSpans":1.5}}"#).is_err());
        // The content type decides: JSON text is not read as protobuf.
        assert!(partial_success(ct, br#"{"partialSuccess":{"rejectedSpans":"2"}}"#).is_err());
    }
}
