//! The HTTP message of schema v1: one per request and one per response.
//!
//! [`HttpMessage`] is what the `http` stage produces and every output consumes.
//! It is serialised exactly once, by [`HttpMessage::write_json`], so stdout,
//! the output URL and the Node addon see byte-identical JSON.

use std::net::{IpAddr, SocketAddr};

use crate::time::Timestamp;

/// One end of a TCP connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Endpoint {
    /// IPv4 or IPv6 address.
    pub ip: IpAddr,
    /// TCP port.
    pub port: u16,
}

impl From<SocketAddr> for Endpoint {
    fn from(a: SocketAddr) -> Self {
        Endpoint {
            ip: a.ip(),
            port: a.port(),
        }
    }
}

/// Which side of a connection sent some bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Side {
    /// The side that sends requests.
    Client,
    /// The side that sends responses (listens on a monitored port).
    Server,
}

impl Side {
    /// The other side.
    pub fn peer(self) -> Side {
        match self {
            Side::Client => Side::Server,
            Side::Server => Side::Client,
        }
    }
}

/// Relative to the captured host (see the schema's `direction`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Direction {
    /// The server side is one of the host's own addresses.
    Inbound,
    /// The client side is one of the host's own addresses.
    Outbound,
    /// Cannot be told (e.g. reading a file).
    #[default]
    Unknown,
}

impl Direction {
    /// The schema's text for this direction.
    pub fn as_str(self) -> &'static str {
        match self {
            Direction::Inbound => "inbound",
            Direction::Outbound => "outbound",
            Direction::Unknown => "unknown",
        }
    }
}

/// What the flow table knows about a connection; copied into each of its messages.
#[derive(Clone, Debug)]
pub struct ConnMeta {
    /// Unique within the sniffer's run (see [`ConnMeta::format_id`]).
    pub id: u64,
    /// The side that sends requests.
    pub client: Endpoint,
    /// The side that sends responses.
    pub server: Endpoint,
    /// Relative to the captured host.
    pub direction: Direction,
    /// True when the capture did not see the connection's SYN: the first bytes
    /// may be the middle of a message and HTTP parsing must resynchronise.
    pub mid_stream: bool,
}

impl ConnMeta {
    /// The `connectionId` text: 16 lower-case hex digits.
    pub fn format_id(id: u64) -> String {
        format!("{id:016x}")
    }
}

/// A lower-cased header name. Common names are borrowed from a static table instead of
/// allocated per message (see `http::head::header_name`).
pub type HeaderName = std::borrow::Cow<'static, str>;

/// A header value as Node's `IncomingMessage.headers` would hold it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum HeaderValue {
    /// Any header but `set-cookie`: repeated values already joined.
    Single(String),
    /// `set-cookie`: every value, in order.
    List(Vec<String>),
}

/// Request- or response-specific fields.
#[derive(Clone, Debug, PartialEq)]
pub enum MessageKind {
    /// `type: "request"`.
    Request {
        /// Method exactly as on the wire.
        method: String,
        /// Request-target exactly as on the wire.
        url: String,
    },
    /// `type: "response"`.
    Response {
        /// Status code.
        status_code: u16,
        /// Reason phrase, possibly empty.
        status_message: String,
        /// From the request's last byte to this response's first byte; `None`
        /// when the request was not seen.
        latency_ms: Option<f64>,
    },
}

/// One HTTP request or response (schema v1). See the crate docs for the schema.
#[derive(Clone, Debug, PartialEq)]
pub struct HttpMessage {
    /// Request or response, with the fields only that half has.
    pub kind: MessageKind,
    /// [`ConnMeta::id`] of the connection.
    pub connection_id: u64,
    /// 0-based exchange index on the connection; a response shares its request's.
    pub sequence: u64,
    /// Capture time of the first byte.
    pub timestamp: Timestamp,
    /// Capture time of the last byte.
    pub end_timestamp: Timestamp,
    /// Sender of this message.
    pub source: Endpoint,
    /// Receiver of this message.
    pub destination: Endpoint,
    /// Relative to the captured host.
    pub direction: Direction,
    /// `"0.9"`, `"1.0"`, `"1.1"` or `"2"`.
    pub http_version: &'static str,
    /// Lower-cased names, first-seen order, Node's joining rules, redaction applied.
    pub headers: Vec<(HeaderName, HeaderValue)>,
    /// Body bytes after de-chunking, at most `maxBodySize` of them.
    pub body: Vec<u8>,
    /// Full body length seen, even when `body` was cut.
    pub body_size: u64,
    /// `body` holds less than `body_size` because of `maxBodySize`.
    pub truncated: bool,
    /// Part of the message was never seen (gap, mid-stream start, early end).
    pub incomplete: bool,
    /// `parseError`: the head broke the grammar but was delimited; the start line
    /// and headers hold what was there (e.g. `invalid-version`). `None`: omitted.
    pub parse_error: Option<&'static str>,
    /// `decodedBodySize`: `body` was decompressed from its `Content-Encoding`; the decoded
    /// length (counted past `maxBodySize` up to the bomb limit). `None`: omitted.
    pub decoded_body_size: Option<u64>,
    /// `tunnel: true`: carried inside a `CONNECT` tunnel on the same connection (omitted when false).
    pub tunnel: bool,
    /// HTTP/2 only: the stream's id (`streamId`).
    pub stream_id: Option<u32>,
    /// Trailer fields (HTTP/2 trailing HEADERS, e.g. gRPC's `grpc-status`); same
    /// rules as `headers`. Written as `trailers` only when not empty.
    pub trailers: Vec<(HeaderName, HeaderValue)>,
}

/// Where the sniffer runs, from the downward API (`POD_NAME`, `POD_NAMESPACE`, `NODE_NAME`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Placement {
    /// Pod name.
    pub name: Option<String>,
    /// Pod namespace.
    pub namespace: Option<String>,
    /// Node name.
    pub node: Option<String>,
}

impl Placement {
    /// Reads `POD_NAME`, `POD_NAMESPACE` and `NODE_NAME`; `None` when none is set.
    pub fn from_env() -> Option<Placement> {
        let get = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
        let p = Placement {
            name: get("POD_NAME"),
            namespace: get("POD_NAMESPACE"),
            node: get("NODE_NAME"),
        };
        (p != Placement::default()).then_some(p)
    }
}

impl HttpMessage {
    /// Appends this message as one JSON object (no trailing newline) to `out`, and returns
    /// where the `body` string's contents are in `out` (between its quotes), so an output
    /// that must not carry bodies (stdout without `stdoutBodies`) can leave them out.
    ///
    /// Hand-written rather than derived: this runs once per message on the hot output
    /// path, and the schema has rules serde would need custom code for anyway
    /// (utf8-or-base64 bodies, `set-cookie` arrays, optional request/response fields).
    pub fn write_json(
        &self,
        placement: Option<&Placement>,
        out: &mut Vec<u8>,
    ) -> std::ops::Range<usize> {
        // Room for everything unless strings need escaping (write_str reserves for that):
        // one reservation instead of many regrowths.
        let strings: usize = self
            .headers
            .iter()
            .chain(self.trailers.iter())
            .map(|(n, v)| {
                n.len()
                    + 6
                    + match v {
                        HeaderValue::Single(v) => v.len(),
                        HeaderValue::List(l) => l.iter().map(|v| v.len() + 3).sum(),
                    }
            })
            .sum();
        let start_line = match &self.kind {
            MessageKind::Request { method, url } => method.len() + url.len(),
            MessageKind::Response { status_message, .. } => status_message.len(),
        };
        out.reserve(512 + strings + start_line + self.body.len() * 4 / 3);
        out.push(b'{');
        match &self.kind {
            MessageKind::Request { .. } => out.extend_from_slice(br#""type":"request""#),
            MessageKind::Response { .. } => out.extend_from_slice(br#""type":"response""#),
        }
        out.extend_from_slice(br#","connectionId":""#);
        write_hex16(self.connection_id, out);
        out.extend_from_slice(br#"","sequence":"#);
        write_u64(self.sequence, out);
        out.extend_from_slice(br#","timestamp":""#);
        let first = self.timestamp.rfc3339();
        out.extend_from_slice(&first);
        out.extend_from_slice(br#"","endTimestamp":""#);
        // A message in one packet (most) ends when it starts: no second formatting.
        if self.end_timestamp == self.timestamp {
            out.extend_from_slice(&first);
        } else {
            self.end_timestamp.write_rfc3339(out);
        }
        out.extend_from_slice(br#"","source":"#);
        write_endpoint(&self.source, out);
        out.extend_from_slice(br#","destination":"#);
        write_endpoint(&self.destination, out);
        out.extend_from_slice(br#","direction":""#);
        out.extend_from_slice(self.direction.as_str().as_bytes());
        out.push(b'"');
        match &self.kind {
            MessageKind::Request { method, url } => {
                out.extend_from_slice(br#","method":"#);
                write_str(method, out);
                out.extend_from_slice(br#","url":"#);
                write_str(url, out);
            }
            MessageKind::Response {
                status_code,
                status_message,
                ..
            } => {
                out.extend_from_slice(br#","statusCode":"#);
                write_u64(u64::from(*status_code), out);
                out.extend_from_slice(br#","statusMessage":"#);
                write_str(status_message, out);
            }
        }
        out.extend_from_slice(br#","httpVersion":""#);
        out.extend_from_slice(self.http_version.as_bytes());
        out.push(b'"');
        if let Some(id) = self.stream_id {
            out.extend_from_slice(br#","streamId":"#);
            write_u64(u64::from(id), out);
        }
        out.extend_from_slice(br#","headers":"#);
        write_fields(&self.headers, out);
        if !self.trailers.is_empty() {
            out.extend_from_slice(br#","trailers":"#);
            write_fields(&self.trailers, out);
        }
        out.extend_from_slice(br#","body":"#);
        let (body, encoding) = write_body(&self.body, self.truncated, out);
        out.extend_from_slice(br#","bodyEncoding":""#);
        out.extend_from_slice(encoding.as_bytes());
        out.extend_from_slice(br#"","bodySize":"#);
        write_u64(self.body_size, out);
        if let Some(n) = self.decoded_body_size {
            out.extend_from_slice(br#","decodedBodySize":"#);
            write_u64(n, out);
        }
        if self.tunnel {
            out.extend_from_slice(br#","tunnel":true"#);
        }
        out.extend_from_slice(br#","truncated":"#);
        out.extend_from_slice(if self.truncated { b"true" } else { b"false" });
        out.extend_from_slice(br#","incomplete":"#);
        out.extend_from_slice(if self.incomplete { b"true" } else { b"false" });
        if let Some(e) = self.parse_error {
            out.extend_from_slice(br#","parseError":"#);
            write_str(e, out);
        }
        if let MessageKind::Response {
            latency_ms: Some(ms),
            ..
        } = &self.kind
        {
            out.extend_from_slice(br#","latencyMs":"#);
            write_millis(*ms, out);
        }
        if let Some(p) = placement {
            out.extend_from_slice(br#","pod":"#);
            write_placement(p, out);
        }
        out.push(b'}');
        body
    }

    /// This message as a JSON string (convenience for tests and the addon).
    pub fn to_json(&self, placement: Option<&Placement>) -> String {
        let mut out = Vec::with_capacity(512 + self.body.len());
        self.write_json(placement, &mut out);
        // write_json only ever writes valid UTF-8.
        String::from_utf8(out).unwrap_or_default()
    }
}

/// The body as text when it is UTF-8, else `None` (base64). A body cut by
/// `maxBodySize` in the middle of a multi-byte character is still text: the
/// partial character at the end is left out (the body is a prefix either way).
fn body_text(body: &[u8], truncated: bool) -> (Option<&str>, &'static str) {
    match std::str::from_utf8(body) {
        Ok(t) => (Some(t), "utf8"),
        Err(e) if truncated && e.error_len().is_none() => {
            // Only an incomplete sequence at the very end: valid_up_to is a char boundary.
            (std::str::from_utf8(&body[..e.valid_up_to()]).ok(), "utf8")
        }
        Err(_) => (None, "base64"),
    }
}

/// Writes `body` as a JSON string (UTF-8 text, else base64: see [`body_text`]); returns
/// where its contents are in `out` (between the quotes) and its `bodyEncoding`.
pub(crate) fn write_body(
    body: &[u8],
    truncated: bool,
    out: &mut Vec<u8>,
) -> (std::ops::Range<usize>, &'static str) {
    let (text, encoding) = body_text(body, truncated);
    let body_start = out.len() + 1;
    match text {
        Some(t) => write_str(t, out),
        None => {
            out.push(b'"');
            let start = out.len();
            let encoded_len = base64::encoded_len(body.len(), true).unwrap_or(0);
            out.resize(start + encoded_len, 0);
            let written = base64::Engine::encode_slice(
                &base64::engine::general_purpose::STANDARD,
                body,
                &mut out[start..],
            )
            .unwrap_or(0);
            out.truncate(start + written);
            out.push(b'"');
        }
    }
    (body_start..out.len() - 1, encoding)
}

/// The `pod` object: the placement's names that are known.
pub(crate) fn write_placement(p: &Placement, out: &mut Vec<u8>) {
    out.push(b'{');
    let mut first = true;
    for (k, v) in [
        ("name", &p.name),
        ("namespace", &p.namespace),
        ("node", &p.node),
    ] {
        if let Some(v) = v {
            if !first {
                out.push(b',');
            }
            first = false;
            write_str(k, out);
            out.push(b':');
            write_str(v, out);
        }
    }
    out.push(b'}');
}

/// Header or trailer fields as a JSON object (`set-cookie` lists as arrays).
pub(crate) fn write_fields(fields: &[(HeaderName, HeaderValue)], out: &mut Vec<u8>) {
    out.push(b'{');
    for (i, (name, value)) in fields.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        write_str(name, out);
        out.push(b':');
        match value {
            HeaderValue::Single(v) => write_str(v, out),
            HeaderValue::List(vs) => {
                out.push(b'[');
                for (j, v) in vs.iter().enumerate() {
                    if j > 0 {
                        out.push(b',');
                    }
                    write_str(v, out);
                }
                out.push(b']');
            }
        }
    }
    out.push(b'}');
}

pub(crate) fn write_display(v: &impl std::fmt::Display, out: &mut Vec<u8>) {
    use std::io::Write;
    let _ = write!(out, "{v}");
}

pub(crate) fn write_u64(n: u64, out: &mut Vec<u8>) {
    out.extend_from_slice(itoa::Buffer::new().format(n).as_bytes());
}

/// `n` as 16 lower-case hex digits: each nibble spread into its own byte, then all 16
/// turned into ASCII at once (`'0' + d`, plus `'a' - '0' - 10` where `d > 9`).
pub(crate) fn write_hex16(n: u64, out: &mut Vec<u8>) {
    /// The 8 nibbles of `x` as one byte each, most significant first in memory.
    fn spread(x: u32) -> [u8; 8] {
        let mut v = u64::from(x);
        v = (v | v << 16) & 0x0000_ffff_0000_ffff;
        v = (v | v << 8) & 0x00ff_00ff_00ff_00ff;
        v = (v | v << 4) & 0x0f0f_0f0f_0f0f_0f0f;
        // Bytes holding 10..=15 get bit 4 from `+ 6`; that bit, times 0x27, adds the gap.
        let letters = ((v + 0x0606_0606_0606_0606) >> 4) & 0x0101_0101_0101_0101;
        (v + 0x3030_3030_3030_3030 + letters * 0x27).to_be_bytes()
    }
    let mut buf = [0u8; 16];
    buf[..8].copy_from_slice(&spread((n >> 32) as u32));
    buf[8..].copy_from_slice(&spread(n as u32));
    out.extend_from_slice(&buf);
}

/// `OCTETS[o]`: the decimal digits of `o` followed by a `.`, zero-padded to 4 bytes; the
/// digits and the dot are [`OCTET_LENS`]`[o]` bytes. A dotted quad is four fixed-size
/// copies, each advancing by its length (the last one's dot is then overwritten by what
/// follows): no divisions and no variable-length copies.
static OCTETS: [[u8; 4]; 256] = {
    let mut t = [[0u8; 4]; 256];
    let mut i = 0;
    while i < 256 {
        let (h, d, o) = ((i / 100) as u8, (i / 10 % 10) as u8, (i % 10) as u8);
        t[i] = if i >= 100 {
            [b'0' + h, b'0' + d, b'0' + o, b'.']
        } else if i >= 10 {
            [b'0' + d, b'0' + o, b'.', 0]
        } else {
            [b'0' + o, b'.', 0, 0]
        };
        i += 1;
    }
    t
};

/// `OCTET_LENS[o]`: how many bytes of `OCTETS[o]` are digits and the dot.
static OCTET_LENS: [u8; 256] = {
    let mut t = [0u8; 256];
    let mut i = 0;
    while i < 256 {
        t[i] = if i >= 100 {
            4
        } else if i >= 10 {
            3
        } else {
            2
        };
        i += 1;
    }
    t
};

/// Writes `v` in decimal at `buf[at..]` (at most 5 digits) and returns how many it wrote.
fn put_u16(buf: &mut [u8], at: usize, v: u16) -> usize {
    use crate::time::DIGIT_PAIRS;
    let len = match v {
        0..=9 => 1,
        10..=99 => 2,
        100..=999 => 3,
        1000..=9999 => 4,
        _ => 5,
    };
    let mut end = at + len;
    let mut v = usize::from(v);
    while v >= 100 {
        buf[end - 2..end].copy_from_slice(&DIGIT_PAIRS[v % 100]);
        end -= 2;
        v /= 100;
    }
    if v >= 10 {
        buf[end - 2..end].copy_from_slice(&DIGIT_PAIRS[v]);
    } else {
        buf[end - 1] = b'0' + v as u8;
    }
    len
}

fn write_endpoint(e: &Endpoint, out: &mut Vec<u8>) {
    let IpAddr::V4(v4) = e.ip else {
        out.extend_from_slice(br#"{"ip":""#);
        write_display(&e.ip, out);
        out.extend_from_slice(br#"","port":"#);
        write_u64(u64::from(e.port), out);
        out.push(b'}');
        return;
    };
    // The whole object in a stack buffer, copied once: `{"ip":"` (7) + a dotted quad (at
    // most 15, plus the last octet's dot written before being overwritten) + `","port":`
    // (9) + at most 5 digits + `}`.
    let mut buf = [0u8; 40];
    buf[..7].copy_from_slice(br#"{"ip":""#);
    let mut n = 7;
    for o in v4.octets() {
        buf[n..n + 4].copy_from_slice(&OCTETS[usize::from(o)]);
        n += usize::from(OCTET_LENS[usize::from(o)]);
    }
    // Over the last octet's dot.
    n -= 1;
    buf[n..n + 9].copy_from_slice(br#"","port":"#);
    n += 9;
    n += put_u16(&mut buf, n, e.port);
    buf[n] = b'}';
    out.extend_from_slice(&buf[..n + 1]);
}

/// Latency in milliseconds with microsecond precision, shortest form (`45.449`, `2`, `0.001`).
pub(crate) fn write_millis(ms: f64, out: &mut Vec<u8>) {
    if !ms.is_finite() || ms < 0.0 {
        out.push(b'0');
        return;
    }
    let micros = (ms * 1000.0).round() as u64;
    write_u64(micros / 1000, out);
    let frac = micros % 1000;
    if frac != 0 {
        out.push(b'.');
        let digits = [
            (frac / 100) as u8,
            (frac / 10 % 10) as u8,
            (frac % 10) as u8,
        ];
        let keep = if digits[2] != 0 {
            3
        } else if digits[1] != 0 {
            2
        } else {
            1
        };
        out.extend(digits[..keep].iter().map(|d| b'0' + d));
    }
}

/// For each byte: 0 = copy as is, b'u' = `\u00XX`, anything else = `\` + that byte.
static ESCAPE: [u8; 256] = {
    let mut t = [0u8; 256];
    let mut i = 0;
    while i < 0x20 {
        t[i] = b'u';
        i += 1;
    }
    t[0x7f] = b'u';
    t[b'"' as usize] = b'"';
    t[b'\\' as usize] = b'\\';
    t[b'\n' as usize] = b'n';
    t[b'\r' as usize] = b'r';
    t[b'\t' as usize] = b't';
    t
};

/// The index of the first byte of `bytes` that [`ESCAPE`] escapes (a control character,
/// `"`, `\\` or DEL), or `bytes.len()` when there is none: 16 bytes per step with SSE2
/// (part of every x86_64 CPU). A string of 16 bytes or more ends with one overlapping
/// 16-byte step instead of a byte-by-byte tail.
#[cfg(target_arch = "x86_64")]
#[inline]
fn find_escape(bytes: &[u8]) -> usize {
    use std::arch::x86_64::{
        __m128i, _mm_cmpeq_epi8, _mm_loadu_si128, _mm_min_epu8, _mm_movemask_epi8, _mm_or_si128,
        _mm_set1_epi8,
    };
    /// Bit i set when byte i of the 16 at `p` is escaped.
    ///
    /// SAFETY (caller): `p..p + 16` is in bounds. SSE2 is in the x86_64 baseline.
    #[inline(always)]
    unsafe fn mask(p: *const u8) -> u32 {
        let v = _mm_loadu_si128(p.cast::<__m128i>());
        // Unsigned min(v, 0x1f) == v exactly when v <= 0x1f.
        let control = _mm_cmpeq_epi8(_mm_min_epu8(v, _mm_set1_epi8(0x1f)), v);
        let special = _mm_or_si128(
            _mm_or_si128(
                _mm_cmpeq_epi8(v, _mm_set1_epi8(b'"' as i8)),
                _mm_cmpeq_epi8(v, _mm_set1_epi8(b'\\' as i8)),
            ),
            _mm_cmpeq_epi8(v, _mm_set1_epi8(0x7f)),
        );
        _mm_movemask_epi8(_mm_or_si128(control, special)) as u32
    }
    let len = bytes.len();
    if len < 16 {
        // Most header names and many values: one or two overlapping 8-byte words say
        // "nothing to escape" without a byte loop; only a hit looks for the position.
        let clean = match len {
            8..=15 => {
                !word_needs_escape(u64::from_le_bytes(bytes[..8].try_into().unwrap_or([0; 8])))
                    && !word_needs_escape(u64::from_le_bytes(
                        bytes[len - 8..].try_into().unwrap_or([0; 8]),
                    ))
            }
            4..=7 => {
                let lo = u32::from_le_bytes(bytes[..4].try_into().unwrap_or([0; 4]));
                let hi = u32::from_le_bytes(bytes[len - 4..].try_into().unwrap_or([0; 4]));
                !word_needs_escape(u64::from(lo) | u64::from(hi) << 32)
            }
            _ => false,
        };
        if clean {
            return len;
        }
        return bytes
            .iter()
            .position(|&b| ESCAPE[b as usize] != 0)
            .unwrap_or(len);
    }
    let p = bytes.as_ptr();
    let mut i = 0;
    while i + 16 <= len {
        // SAFETY: i + 16 <= len.
        let m = unsafe { mask(p.add(i)) };
        if m != 0 {
            return i + m.trailing_zeros() as usize;
        }
        i += 16;
    }
    if i < len {
        // The last 16 bytes (len >= 16), minus the ones already scanned.
        // SAFETY: len - 16 + 16 == len.
        let m = unsafe { mask(p.add(len - 16)) } >> (i - (len - 16));
        if m != 0 {
            return i + m.trailing_zeros() as usize;
        }
    }
    len
}

/// Whether any of the 8 bytes of `w` is one [`ESCAPE`] escapes (below 0x20, `"`, `\\`,
/// DEL). Exact, no false positives: each test is the classic "has a byte below n" /
/// "has a zero byte" word trick, exact for the question "is there any".
#[inline(always)]
fn word_needs_escape(w: u64) -> bool {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    let has_zero = |x: u64| x.wrapping_sub(ONES) & !x & HIGH;
    let below_space = w.wrapping_sub(ONES * 0x20) & !w & HIGH;
    (below_space
        | has_zero(w ^ (ONES * u64::from(b'"')))
        | has_zero(w ^ (ONES * u64::from(b'\\')))
        | has_zero(w ^ (ONES * 0x7f)))
        != 0
}

/// The index of the first byte [`ESCAPE`] escapes, or `bytes.len()` (portable version).
#[cfg(not(target_arch = "x86_64"))]
#[inline]
fn find_escape(bytes: &[u8]) -> usize {
    bytes
        .iter()
        .position(|&b| ESCAPE[b as usize] != 0)
        .unwrap_or(bytes.len())
}

/// Whether any byte of `bytes` is one [`ESCAPE`] escapes.
#[cfg(test)]
fn needs_escape(bytes: &[u8]) -> bool {
    find_escape(bytes) < bytes.len()
}

/// Writes `s` as a JSON string literal (RFC 8259 escaping).
///
/// Most strings (header names and values, methods, status texts) are short and need no
/// escaping: those under 16 bytes are checked and copied in one go, inline, by
/// `push_short`. Longer ones are scanned 16 bytes at a time (`find_escape`) and copied
/// whole; runs between escaped bytes too (JSON bodies, a quote every few bytes, are the
/// common case that needs escaping at all).
#[inline(always)]
pub fn write_str(s: &str, out: &mut Vec<u8>) {
    let bytes = s.as_bytes();
    if bytes.len() < 16 {
        if !push_short(bytes, out) {
            write_escaped(bytes, 0, out);
        }
    } else {
        write_long(bytes, out);
    }
}

/// Appends `"bytes"` when `bytes` (under 16 bytes) needs no escaping, and says whether it
/// did. The one or two words the escape test reads are the ones written: for 8–15 bytes two
/// overlapping 8-byte words (first and last 8), for 4–7 two 4-byte words, for 1–3 the first,
/// middle and last byte. No byte loop, no call to `memcpy`.
#[inline(always)]
fn push_short(bytes: &[u8], out: &mut Vec<u8>) -> bool {
    let n = bytes.len();
    debug_assert!(n < 16);
    /// A byte no word test flags, filling the unused bytes of a short word.
    const FILL: u64 = 0x4141_4141_4141_4141;
    let word = |at: usize| u64::from_le_bytes(bytes[at..at + 8].try_into().unwrap_or([0; 8]));
    let half = |at: usize| u32::from_le_bytes(bytes[at..at + 4].try_into().unwrap_or([0; 4]));
    // (first, last): the words to test and write; for n < 8 the halves in the low 32 bits.
    let (first, last) = match n {
        8..=15 => (word(0), word(n - 8)),
        4..=7 => (u64::from(half(0)), u64::from(half(n - 4))),
        1..=3 => {
            let w =
                u64::from(bytes[0]) | u64::from(bytes[n / 2]) << 8 | u64::from(bytes[n - 1]) << 16;
            (w, w)
        }
        _ => (FILL, FILL),
    };
    let clean = if n >= 8 {
        !word_needs_escape(first) && !word_needs_escape(last)
    } else if n >= 4 {
        !word_needs_escape(first | last << 32)
    } else {
        !word_needs_escape(first | FILL << 24)
    };
    if !clean {
        return false;
    }
    out.reserve(n + 2);
    let len = out.len();
    // SAFETY: `reserve` made room for n + 2 bytes after `len`. Every write below stays
    // inside `len..len + n + 2` (offsets: the quote at 0, the string's bytes at 1..=n, the
    // quote at n + 1; the overlapping words cover 1..=n exactly), and together they write
    // every one of those bytes before `set_len` covers them.
    unsafe {
        let dst = out.as_mut_ptr().add(len);
        dst.write(b'"');
        match n {
            8..=15 => {
                dst.add(1)
                    .cast::<[u8; 8]>()
                    .write_unaligned(first.to_le_bytes());
                dst.add(n - 7)
                    .cast::<[u8; 8]>()
                    .write_unaligned(last.to_le_bytes());
            }
            4..=7 => {
                dst.add(1)
                    .cast::<[u8; 4]>()
                    .write_unaligned((first as u32).to_le_bytes());
                dst.add(n - 3)
                    .cast::<[u8; 4]>()
                    .write_unaligned((last as u32).to_le_bytes());
            }
            1..=3 => {
                dst.add(1).write(bytes[0]);
                dst.add(1 + n / 2).write(bytes[n / 2]);
                dst.add(n).write(bytes[n - 1]);
            }
            _ => {}
        }
        dst.add(n + 1).write(b'"');
        out.set_len(len + n + 2);
    }
    true
}

/// [`write_str`] for strings of 16 bytes or more: one pass that copies 16 bytes per step
/// and writes each escape without leaving the loop (see [`escape_into`]). JSON bodies
/// (a quoted key every few bytes, each quote escaped) are the strings this is tuned for;
/// clean header values take the same loop, which costs less than a scan plus a `memcpy`
/// call at these lengths.
#[cfg(target_arch = "x86_64")]
#[inline(never)]
fn write_long(bytes: &[u8], out: &mut Vec<u8>) {
    debug_assert!(bytes.len() >= 16);
    out.push(b'"');
    let mut from = 0;
    while from < bytes.len() {
        let to = (from + ESCAPE_CHUNK).min(bytes.len());
        // Room for the worst case of this chunk (every byte as `\u00XX`), the slack the
        // 16-byte stores and 8-byte escape stores run past the last byte written, and the
        // closing quote: the loop itself checks no capacity.
        out.reserve((to - from) * 6 + ESCAPE_SLACK + 1);
        let len = out.len();
        // SAFETY: `bytes.len() >= 16` (escape_into's tail load), `from < to <= len`, and
        // `reserve` made room for `escape_into`'s worst case plus its slack after `len`;
        // it returns how many of those bytes it wrote, all initialised.
        unsafe {
            let written = escape_into(bytes, from, to, out.as_mut_ptr().add(len));
            out.set_len(len + written);
        }
        from = to;
    }
    // SAFETY: the last reserve kept one byte past the slack for this quote.
    unsafe {
        let len = out.len();
        out.as_mut_ptr().add(len).write(b'"');
        out.set_len(len + 1);
    }
}

/// Input bytes [`write_long`] escapes per capacity reservation: the reservation is six
/// times this, so a body of megabytes does not reserve six times its size at once.
#[cfg(target_arch = "x86_64")]
const ESCAPE_CHUNK: usize = 4096;

/// How far past its last written byte [`escape_into`] may store (a 16-byte block store
/// of which only the first byte counts).
#[cfg(target_arch = "x86_64")]
const ESCAPE_SLACK: usize = 16;

/// `ESCAPED[b]`: the escape of byte `b` in its first bytes (`\"`, `\n`, `\u001f`, ...),
/// and in byte 7 how many of them there are (0 for bytes written as they are). One 8-byte
/// store writes any escape.
#[cfg(target_arch = "x86_64")]
static ESCAPED: [[u8; 8]; 256] = {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut t = [[0u8; 8]; 256];
    let mut i = 0;
    while i < 256 {
        let e = ESCAPE[i];
        if e == b'u' {
            t[i] = [b'\\', b'u', b'0', b'0', HEX[i >> 4], HEX[i & 0xf], 0, 6];
        } else if e != 0 {
            t[i] = [b'\\', e, 0, 0, 0, 0, 0, 2];
        }
        i += 1;
    }
    t
};

/// Writes `bytes[from..to]` JSON-escaped (no quotes) at `dst` and returns how many bytes it
/// wrote.
///
/// Each step loads 16 input bytes, stores all 16 at `dst` whatever they are, and asks which
/// of them need escaping: when none, it moves on by 16; else by the clean bytes before the
/// first escaped one, whose escape it then stores (8 bytes, of which `ESCAPED[b][7]` count)
/// over the rest of the block. Fewer than 16 bytes left: the 16 bytes ending at `to`
/// shifted down, so the wanted bytes come first, and the mask cut to them.
///
/// # Safety
/// `from < to <= bytes.len()`, `bytes.len() >= 16` (the tail load reads `bytes[to - 16..to]`;
/// `to >= 16` because every chunk but the first starts at 4096 or later and the first ends
/// at `min(4096, len)`), and `dst` is valid for writes of `(to - from) * 6 + ESCAPE_SLACK`
/// bytes.
#[cfg(target_arch = "x86_64")]
#[inline(always)]
unsafe fn escape_into(bytes: &[u8], from: usize, to: usize, dst: *mut u8) -> usize {
    use std::arch::x86_64::{
        __m128i, _mm_cmpeq_epi8, _mm_loadu_si128, _mm_min_epu8, _mm_movemask_epi8, _mm_or_si128,
        _mm_set1_epi8, _mm_storeu_si128,
    };
    debug_assert!(from < to && to <= bytes.len() && to >= 16);
    let src = bytes.as_ptr();
    let mut pos = from;
    let mut d = dst;
    while pos < to {
        let left = to - pos;
        let (v, step, keep) = if left >= 16 {
            (
                _mm_loadu_si128(src.add(pos).cast::<__m128i>()),
                16,
                u32::MAX,
            )
        } else {
            // SAFETY (caller): to >= 16. Bytes pos..to end up at 0..left; zeros above,
            // which the mask then leaves out.
            let last = u128::from_le_bytes(src.add(to - 16).cast::<[u8; 16]>().read_unaligned());
            let shifted = last >> (8 * (16 - left));
            (
                _mm_loadu_si128(shifted.to_le_bytes().as_ptr().cast::<__m128i>()),
                left,
                (1u32 << left) - 1,
            )
        };
        _mm_storeu_si128(d.cast::<__m128i>(), v);
        // The same test as `find_escape`: below 0x20, `"`, `\\` or DEL.
        let control = _mm_cmpeq_epi8(_mm_min_epu8(v, _mm_set1_epi8(0x1f)), v);
        let special = _mm_or_si128(
            _mm_or_si128(
                _mm_cmpeq_epi8(v, _mm_set1_epi8(b'"' as i8)),
                _mm_cmpeq_epi8(v, _mm_set1_epi8(b'\\' as i8)),
            ),
            _mm_cmpeq_epi8(v, _mm_set1_epi8(0x7f)),
        );
        let m = _mm_movemask_epi8(_mm_or_si128(control, special)) as u32 & keep;
        if m == 0 {
            pos += step;
            d = d.add(step);
            continue;
        }
        let k = m.trailing_zeros() as usize;
        pos += k;
        d = d.add(k);
        let e = ESCAPED[usize::from(*src.add(pos))];
        d.cast::<[u8; 8]>().write_unaligned(e);
        d = d.add(usize::from(e[7]));
        pos += 1;
    }
    d.offset_from(dst) as usize
}

/// [`write_str`] for strings of 16 bytes or more (portable version).
#[cfg(not(target_arch = "x86_64"))]
#[inline(never)]
fn write_long(bytes: &[u8], out: &mut Vec<u8>) {
    let first = find_escape(bytes);
    if first < bytes.len() {
        write_escaped(bytes, first, out);
        return;
    }
    // Nothing to escape: the quotes and the bytes in one copy, with one capacity check
    // instead of three.
    out.reserve(bytes.len() + 2);
    let len = out.len();
    // SAFETY: `reserve` made room for bytes.len() + 2 more bytes after `len`; all of
    // them are written (quote, bytes, quote) before `set_len` covers them.
    unsafe {
        let dst = out.as_mut_ptr().add(len);
        dst.write(b'"');
        std::ptr::copy_nonoverlapping(bytes.as_ptr(), dst.add(1), bytes.len());
        dst.add(1 + bytes.len()).write(b'"');
        out.set_len(len + bytes.len() + 2);
    }
}

/// [`write_str`] for strings that need escaping; `first` is at or before the first byte
/// to escape (0 when not known).
#[inline(never)]
fn write_escaped(bytes: &[u8], first: usize, out: &mut Vec<u8>) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    out.reserve(bytes.len() + 2);
    out.push(b'"');
    out.extend_from_slice(&bytes[..first]);
    let mut start = first;
    loop {
        let at = start + find_escape(&bytes[start..]);
        out.extend_from_slice(&bytes[start..at]);
        let Some(&b) = bytes.get(at) else {
            break;
        };
        let esc = ESCAPE[b as usize];
        if esc == b'u' {
            out.extend_from_slice(&[
                b'\\',
                b'u',
                b'0',
                b'0',
                HEX[(b >> 4) as usize],
                HEX[(b & 0xf) as usize],
            ]);
        } else {
            out.extend_from_slice(&[b'\\', esc]);
        }
        start = at + 1;
    }
    out.push(b'"');
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escape_scan_finds_every_escaped_byte_anywhere() {
        // Every byte value at every position of a string longer than two words: the word
        // tests and the tail must agree with the table (the slow path's own rule).
        for b in 0..=255u8 {
            for at in 0..19 {
                let mut s = [b'a'; 19];
                s[at] = b;
                assert_eq!(
                    needs_escape(&s),
                    ESCAPE[b as usize] != 0,
                    "byte {b:#04x} at {at}"
                );
            }
        }
        // Neighbours that could borrow into each other in the subtraction.
        assert!(!needs_escape("\u{e9}\u{e9}\u{e9}\u{e9}abc".as_bytes()));
        assert!(needs_escape(b"\x80\x1f\x80\x80\x80\x80\x80\x80"));
    }

    /// The escaping rule spelled out byte by byte: what `write_str` must produce.
    fn reference_str(s: &str) -> Vec<u8> {
        let mut out = vec![b'"'];
        for &b in s.as_bytes() {
            match ESCAPE[b as usize] {
                0 => out.push(b),
                b'u' => out.extend_from_slice(format!("\\u{b:04x}").as_bytes()),
                e => out.extend_from_slice(&[b'\\', e]),
            }
        }
        out.push(b'"');
        out
    }

    #[test]
    fn find_escape_agrees_with_the_table_for_every_byte_at_short_lengths() {
        // The word tests of strings under 16 bytes: every byte value at every position,
        // next to neighbours (0xff, 0x80, 0x21) that could borrow into it.
        for len in 1..20 {
            for at in 0..len {
                for fill in [b'a', 0xff, 0x80, 0x21, 0x20] {
                    for b in 0..=255u8 {
                        let mut s = vec![fill; len];
                        s[at] = b;
                        let want = if ESCAPE[b as usize] != 0 {
                            at
                        } else if ESCAPE[fill as usize] != 0 {
                            0
                        } else {
                            len
                        };
                        assert_eq!(
                            find_escape(&s),
                            want,
                            "len {len} fill {fill:#x} {b:#04x} at {at}"
                        );
                    }
                }
            }
        }
    }

    #[test]
    fn find_escape_gives_the_first_escaped_byte_at_every_length_and_position() {
        // Lengths around the 16-byte steps and the overlapping last step; one or two
        // escaped bytes anywhere (the first one must win), every kind of escaped byte.
        for len in 0..50 {
            assert_eq!(find_escape(&vec![b'a'; len]), len, "len {len}");
            for at in 0..len {
                for b in [b'"', b'\\', 0x00, 0x1f, 0x7f, b'\n'] {
                    let mut s = vec![0xc3u8; len];
                    s[at] = b;
                    assert_eq!(find_escape(&s), at, "len {len}, {b:#04x} at {at}");
                    if at + 3 < len {
                        s[at + 3] = b'"';
                        assert_eq!(find_escape(&s), at, "len {len}, two from {at}");
                    }
                }
            }
        }
    }

    #[test]
    fn write_str_matches_the_byte_by_byte_rule() {
        let cases = [
            "",
            "plain",
            "{\"id\":4201,\"name\":\"item-4201\",\"tags\":[\"a\",\"b\"]}",
            "\"\"\"\"\"\"\"\"\"\"\"\"\"\"\"\"\"\"",
            "tab\there, line\nbreak\r\u{1}\u{7f} é ü \u{2028} end with quote\"",
            "0123456789abcdef\\",
            "0123456789abcde\\f",
        ];
        for s in cases {
            let mut out = Vec::new();
            write_str(s, &mut out);
            assert_eq!(out, reference_str(s), "{s:?}");
        }
        // Every byte value at every position of strings around the 16-byte boundaries.
        for len in (1usize..=20).chain([31, 33]) {
            for at in 0..len {
                for b in 0..0x80u8 {
                    let mut s = vec![b'x'; len];
                    s[at] = b;
                    let s = String::from_utf8(s).unwrap();
                    let mut out = Vec::new();
                    write_str(&s, &mut out);
                    assert_eq!(out, reference_str(&s), "len {len}, {b:#04x} at {at}");
                }
            }
        }
    }

    #[test]
    fn long_strings_escape_like_the_byte_by_byte_rule_at_every_offset() {
        // write_long's 16-byte steps, its shifted tail (fewer than 16 bytes left) and its
        // 8-byte escape stores: one or two escaped bytes of every kind at every position
        // (adjacent, a block apart, in the tail) of every length from 16 to 70, between
        // clean ASCII and multi-byte UTF-8.
        let kinds = ["\"", "\\", "\n", "\r", "\t", "\u{0}", "\u{1f}", "\u{7f}"];
        for len in 16..=70 {
            for fill in ["a", "\u{e9}"] {
                let base: Vec<&str> = std::iter::repeat_n(fill, len).collect();
                let mut out = Vec::new();
                write_str(&base.concat(), &mut out);
                assert_eq!(out, reference_str(&base.concat()), "len {len} clean");
                for at in 0..len {
                    for k in kinds {
                        for second in [None, Some(at + 1), Some(at + 15), Some(len - 1)] {
                            let mut parts = base.clone();
                            parts[at] = k;
                            if let Some(j) = second.filter(|&j| j < len && j != at) {
                                parts[j] = "\"";
                            }
                            let s = parts.concat();
                            // Appended after existing bytes, as in a batch.
                            let mut out = b"x".to_vec();
                            write_str(&s, &mut out);
                            assert_eq!(out[1..], reference_str(&s), "len {len} {k:?} at {at}");
                        }
                    }
                }
            }
        }
        // Across the reservation chunks: escapes before, at and after each chunk boundary,
        // a chunk tail shorter than 16 bytes, and every byte escaped (the worst case).
        for len in [4096, 4097, 4100, 4111, 4112, 8192, 8199, 12_300] {
            for at in [0, 4094, 4095, 4096, 4097, len - 1] {
                let mut s = vec![b'q'; len];
                if at < len {
                    s[at] = b'"';
                    s[at.saturating_sub(9)] = 0x01;
                }
                let s = String::from_utf8(s).unwrap();
                let mut out = Vec::new();
                write_str(&s, &mut out);
                assert_eq!(out, reference_str(&s), "len {len} at {at}");
            }
            let s = "\u{1}".repeat(len);
            let mut out = Vec::new();
            write_str(&s, &mut out);
            assert_eq!(out, reference_str(&s), "len {len} all escaped");
        }
    }

    #[test]
    fn endpoints_are_written_as_display_would() {
        for ip in [
            "0.0.0.0",
            "10.1.0.159",
            "255.255.255.255",
            "9.99.100.1",
            "::1",
            "fd00:c::12",
        ] {
            for port in [0u16, 7, 80, 443, 8080, 32768, 65535] {
                let e = Endpoint {
                    ip: ip.parse().unwrap(),
                    port,
                };
                let mut out = Vec::new();
                write_endpoint(&e, &mut out);
                assert_eq!(
                    String::from_utf8(out).unwrap(),
                    format!(r#"{{"ip":"{ip}","port":{port}}}"#)
                );
            }
        }
        // Every octet value in every position, and ports at each digit-count boundary.
        for o in 0..=255u8 {
            for (i, port) in [0u16, 9, 10, 99, 100, 999, 1000, 9999, 10000, 65535]
                .into_iter()
                .enumerate()
            {
                let mut octets = [1, 22, 133, 4];
                octets[i % 4] = o;
                let e = Endpoint {
                    ip: IpAddr::from(octets),
                    port,
                };
                let mut out = Vec::new();
                write_endpoint(&e, &mut out);
                assert_eq!(
                    String::from_utf8(out).unwrap(),
                    format!(r#"{{"ip":"{}","port":{port}}}"#, e.ip)
                );
            }
        }
        let mut out = Vec::new();
        write_hex16(0x0123_4567_89ab_cdef, &mut out);
        write_hex16(1, &mut out);
        assert_eq!(out, b"0123456789abcdef0000000000000001");
        for n in [
            0,
            u64::MAX,
            0xfedc_ba98_7654_3210,
            0xa0a0_9f9f_0a0a_f9f9,
            1 << 63,
        ] {
            let mut out = Vec::new();
            write_hex16(n, &mut out);
            assert_eq!(String::from_utf8(out).unwrap(), format!("{n:016x}"));
        }
    }

    fn sample() -> HttpMessage {
        HttpMessage {
            kind: crate::testing::response(200, "OK", Some(1.5)),
            connection_id: 0xab,
            sequence: 3,
            timestamp: Timestamp(1_000_000),
            end_timestamp: Timestamp(1_000_001),
            source: crate::testing::endpoint("[::1]:80"),
            destination: crate::testing::endpoint("10.0.0.1:5555"),
            direction: Direction::Unknown,
            http_version: "1.1",
            headers: vec![
                (
                    "content-type".into(),
                    HeaderValue::Single("text/plain; q=\"x\"".into()),
                ),
                (
                    "set-cookie".into(),
                    HeaderValue::List(vec!["a=1".into(), "b=2".into()]),
                ),
            ],
            body: b"hi\n\x01".to_vec(),
            body_size: 4,
            ..crate::testing::sample_message()
        }
    }

    #[test]
    fn serialises_schema_v1() {
        let json = sample().to_json(Some(&Placement {
            name: Some("web-0".into()),
            namespace: Some("prod".into()),
            node: None,
        }));
        let v: serde_json::Value = serde_json::from_str(&json).expect("valid JSON");
        assert_eq!(v["type"], "response");
        assert_eq!(v["connectionId"], "00000000000000ab");
        assert_eq!(v["sequence"], 3);
        assert_eq!(v["timestamp"], "1970-01-01T00:00:01.000000Z");
        assert_eq!(v["source"]["ip"], "::1");
        assert_eq!(v["destination"]["port"], 5555);
        assert_eq!(v["statusCode"], 200);
        assert_eq!(v["headers"]["content-type"], "text/plain; q=\"x\"");
        assert_eq!(v["headers"]["set-cookie"][1], "b=2");
        assert_eq!(v["body"], "hi\n\u{1}");
        assert_eq!(v["bodyEncoding"], "utf8");
        assert_eq!(v["latencyMs"], 1.5);
        for (ms, text) in [
            (45.449, "45.449"),
            (2.0, "2"),
            (0.001, "0.001"),
            (0.1, "0.1"),
            (12.34, "12.34"),
        ] {
            let mut out = Vec::new();
            write_millis(ms, &mut out);
            assert_eq!(String::from_utf8(out).unwrap(), text);
        }
        let mut out = Vec::new();
        write_str("a\"b\\c\n\u{1}\u{7f}é", &mut out);
        assert_eq!(
            String::from_utf8(out).unwrap(),
            r#""a\"b\\c\n\u0001\u007fé""#
        );
        assert_eq!(v["pod"]["namespace"], "prod");
        assert!(v.get("method").is_none());
    }

    #[test]
    fn binary_bodies_are_base64_and_cut_utf8_stays_text() {
        let mut m = sample();
        m.body = vec![0xff, 0x00, 0x10];
        let v: serde_json::Value = serde_json::from_str(&m.to_json(None)).unwrap();
        assert_eq!(v["body"], "/wAQ");
        assert_eq!(v["bodyEncoding"], "base64");
        assert!(v.get("pod").is_none());
        // "é" is 0xc3 0xa9; cut after the first byte by maxBodySize.
        m.body = vec![b'a', 0xc3];
        m.truncated = true;
        let v: serde_json::Value = serde_json::from_str(&m.to_json(None)).unwrap();
        assert_eq!(v["body"], "a");
        assert_eq!(v["bodyEncoding"], "utf8");
    }
}
