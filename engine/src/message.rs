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
    ///
    /// Everything but the body is written through a `Cursor`: one reservation for the
    /// worst case of all the fields before the body and one for those after it, instead of
    /// a capacity check and a length update for each of the ~40 pieces.
    pub fn write_json(
        &self,
        placement: Option<&Placement>,
        out: &mut Vec<u8>,
    ) -> std::ops::Range<usize> {
        let start_line = match &self.kind {
            MessageKind::Request { method, url } => str_room(method) + str_room(url),
            MessageKind::Response { status_message, .. } => str_room(status_message),
        };
        let head = HEAD_ROOM
            + self.http_version.len()
            + start_line
            + fields_room(&self.headers)
            + fields_room(&self.trailers);
        // SAFETY: `HEAD_ROOM` covers every fixed-size piece written below (the test
        // `worst_case_messages_stay_within_the_reserved_room` writes the largest of each
        // with the cursor's debug bound check on), and the rest is the HTTP version (copied
        // as is) and the strings, each within its `str_room` / `fields_room`.
        let mut c = unsafe { Cursor::new(out, head) };
        // Each constant in its own arm: a fixed-size copy, not a variable-length one.
        match &self.kind {
            MessageKind::Request { .. } => c.put(br#"{"type":"request","connectionId":""#),
            MessageKind::Response { .. } => c.put(br#"{"type":"response","connectionId":""#),
        }
        c.put_hex16(self.connection_id);
        c.put(br#"","sequence":"#);
        c.put_u64(self.sequence);
        c.put(br#","timestamp":""#);
        let first = self.timestamp.rfc3339();
        c.put(&first);
        c.put(br#"","endTimestamp":""#);
        // A message in one packet (most) ends when it starts: no second formatting.
        if self.end_timestamp == self.timestamp {
            c.put(&first);
        } else {
            c.put(&self.end_timestamp.rfc3339());
        }
        c.put(br#"","source":"#);
        c.put_endpoint(&self.source);
        c.put(br#","destination":"#);
        c.put_endpoint(&self.destination);
        match self.direction {
            Direction::Inbound => c.put(br#","direction":"inbound""#),
            Direction::Outbound => c.put(br#","direction":"outbound""#),
            Direction::Unknown => c.put(br#","direction":"unknown""#),
        }
        match &self.kind {
            MessageKind::Request { method, url } => {
                c.put(br#","method":"#);
                c.put_str(method);
                c.put(br#","url":"#);
                c.put_str(url);
            }
            MessageKind::Response {
                status_code,
                status_message,
                ..
            } => {
                c.put(br#","statusCode":"#);
                c.put_u64(u64::from(*status_code));
                c.put(br#","statusMessage":"#);
                c.put_str(status_message);
            }
        }
        c.put(br#","httpVersion":""#);
        c.put_bytes(self.http_version.as_bytes());
        c.byte(b'"');
        if let Some(id) = self.stream_id {
            c.put(br#","streamId":"#);
            c.put_u64(u64::from(id));
        }
        c.put(br#","headers":"#);
        c.put_fields(&self.headers);
        if !self.trailers.is_empty() {
            c.put(br#","trailers":"#);
            c.put_fields(&self.trailers);
        }
        c.put(br#","body":"#);
        c.finish();
        // The body, possibly megabytes, is written in chunks by `write_body`: its worst
        // case (six times its length) is not reserved at once.
        let body_start = out.len() + 1;
        let base64 = write_body(&self.body, self.truncated, out);
        let body = body_start..out.len() - 1;
        let tail = TAIL_ROOM + self.parse_error.map_or(0, str_room) + placement.map_or(0, pod_room);
        // SAFETY: `TAIL_ROOM` covers every fixed-size piece written below (the pod's keys
        // included; see the test named above), and the rest is the parse error and the
        // pod's values, each within its `str_room`.
        let mut c = unsafe { Cursor::new(out, tail) };
        if base64 {
            c.put(br#","bodyEncoding":"base64","bodySize":"#);
        } else {
            c.put(br#","bodyEncoding":"utf8","bodySize":"#);
        }
        c.put_u64(self.body_size);
        if let Some(n) = self.decoded_body_size {
            c.put(br#","decodedBodySize":"#);
            c.put_u64(n);
        }
        if self.tunnel {
            c.put(br#","tunnel":true"#);
        }
        match (self.truncated, self.incomplete) {
            (false, false) => c.put(br#","truncated":false,"incomplete":false"#),
            (false, true) => c.put(br#","truncated":false,"incomplete":true"#),
            (true, false) => c.put(br#","truncated":true,"incomplete":false"#),
            (true, true) => c.put(br#","truncated":true,"incomplete":true"#),
        }
        if let Some(e) = self.parse_error {
            c.put(br#","parseError":"#);
            c.put_str(e);
        }
        if let MessageKind::Response {
            latency_ms: Some(ms),
            ..
        } = &self.kind
        {
            c.put(br#","latencyMs":"#);
            c.put_millis(*ms);
        }
        if let Some(p) = placement {
            c.put(br#","pod":"#);
            c.put_pod(p);
        }
        c.byte(b'}');
        c.finish();
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
fn body_text(body: &[u8], truncated: bool) -> Option<&str> {
    match std::str::from_utf8(body) {
        Ok(t) => Some(t),
        Err(e) if truncated && e.error_len().is_none() => {
            // Only an incomplete sequence at the very end: valid_up_to is a char boundary.
            std::str::from_utf8(&body[..e.valid_up_to()]).ok()
        }
        Err(_) => None,
    }
}

/// Appends the body as a JSON string: its text when it is UTF-8 (see [`body_text`]), else
/// base64. Returns true for base64.
///
/// ASCII is valid UTF-8, and most bodies are ASCII: those are escaped straight away, the
/// escape loop noting on the way whether any byte is 0x80 or more, and need no separate
/// validation pass. A body with such a byte is validated and written from the start, so
/// at most one chunk of `write_long_if_ascii` is written twice.
pub(crate) fn write_body(body: &[u8], truncated: bool, out: &mut Vec<u8>) -> bool {
    if body.len() < 16 {
        if body.is_ascii() {
            write_bytes(body, out);
            return false;
        }
    } else if write_long_if_ascii(body, out) {
        return false;
    }
    match body_text(body, truncated) {
        Some(t) => {
            write_str(t, out);
            false
        }
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
            true
        }
    }
}

/// Room [`HttpMessage::write_json`] reserves for the fixed-size pieces before the body: the
/// constants (about 230 bytes), a 20-digit sequence, two timestamps, two endpoints (61 bytes
/// each at most: a 39-character IPv6 address and a 5-digit port), a 5-digit status code and
/// a 10-digit stream id, with room to spare.
pub(crate) const HEAD_ROOM: usize = 512;

/// Room for the fixed-size pieces after the body: the constants and the pod's keys (about
/// 230 bytes), three 20-digit numbers and the latency.
pub(crate) const TAIL_ROOM: usize = 384;

/// How far past the bytes it counts one [`Cursor`] store may reach: the 16-byte block
/// stores of the escape loop, the 8-byte escape stores and the 4-byte octet stores write
/// more than they keep. [`Cursor::new`] reserves it once, on top of the room asked for.
const SLACK: usize = 16;

/// The most bytes a JSON string literal of `s` can take: every byte as `\u00XX`, and quotes.
#[inline(always)]
pub(crate) fn str_room(s: &str) -> usize {
    6 * s.len() + 2
}

/// The most bytes [`Cursor::put_fields`] can write for `fields`.
#[inline(always)]
pub(crate) fn fields_room(fields: &[(HeaderName, HeaderValue)]) -> usize {
    2 + fields
        .iter()
        .map(|(n, v)| {
            str_room(n)
                + 2
                + match v {
                    HeaderValue::Single(v) => str_room(v),
                    HeaderValue::List(l) => 2 + l.iter().map(|v| str_room(v) + 1).sum::<usize>(),
                }
        })
        .sum::<usize>()
}

/// The most bytes [`Cursor::put_pod`] writes for `p`'s values (its keys and braces are
/// in [`TAIL_ROOM`]).
#[inline(always)]
pub(crate) fn pod_room(p: &Placement) -> usize {
    [&p.name, &p.namespace, &p.node]
        .into_iter()
        .flatten()
        .map(|v| str_room(v))
        .sum()
}

/// Appends to a `Vec<u8>` through a raw pointer into its spare capacity: one reservation
/// for a whole run of writes, then each write is a store and a pointer bump, without the
/// capacity check and length update of `push` / `extend_from_slice` (about half of what
/// serialising a message cost). The length is set once, by [`Cursor::finish`].
///
/// Soundness rests on [`Cursor::new`]'s contract: its caller reserves enough room for
/// everything written through the cursor. Debug builds (the tests) check every store
/// against that room.
pub(crate) struct Cursor<'a> {
    /// The vector written to; borrowed so that nothing else touches it meanwhile.
    out: &'a mut Vec<u8>,
    /// Where the next byte goes.
    at: *mut u8,
    /// Where the room asked for ends (debug builds only).
    #[cfg(debug_assertions)]
    end: *mut u8,
}

impl<'a> Cursor<'a> {
    /// Reserves `room` bytes (and [`SLACK`]) after `out`'s bytes; the cursor starts at the
    /// first of them.
    ///
    /// # Safety
    /// Everything written through the cursor must fit in `room`: the bytes it keeps (which
    /// `finish` adds to `out`) at most `room`, and no store reaching more than [`SLACK`]
    /// bytes past the last byte kept so far.
    #[inline(always)]
    pub(crate) unsafe fn new(out: &'a mut Vec<u8>, room: usize) -> Cursor<'a> {
        out.reserve(room + SLACK);
        let len = out.len();
        // SAFETY: `len <= capacity`: the pointer is inside the allocation or one past it.
        let at = unsafe { out.as_mut_ptr().add(len) };
        Cursor {
            out,
            at,
            #[cfg(debug_assertions)]
            end: at.wrapping_add(room),
        }
    }

    /// Debug builds: panics unless a store of `n` bytes at the cursor stays within the
    /// room and its slack.
    #[inline(always)]
    fn check(&self, n: usize) {
        #[cfg(debug_assertions)]
        assert!(
            (self.at as usize) + n <= (self.end as usize) + SLACK,
            "JSON cursor: a {n}-byte store past the reserved room"
        );
        let _ = n;
    }

    /// Sets `out`'s length to cover every byte kept.
    #[inline(always)]
    pub(crate) fn finish(self) {
        #[cfg(debug_assertions)]
        assert!(self.at <= self.end, "JSON cursor: kept more than the room");
        // SAFETY: `at` was derived from `out`'s buffer, which did not move (the cursor
        // holds `out`), and only moved forward from the old length within the capacity
        // `new` reserved; every byte up to it was written.
        unsafe {
            let len = self.at.offset_from(self.out.as_ptr()) as usize;
            self.out.set_len(len);
        }
    }

    /// Stores the `N` bytes of `v` and keeps the first `keep` of them (the others are
    /// overwritten by the next write, or left out by `finish`).
    #[inline(always)]
    fn store<const N: usize>(&mut self, v: [u8; N], keep: usize) {
        debug_assert!(keep <= N);
        self.check(N);
        // SAFETY: `Cursor::new`'s caller reserved room for this store (checked in debug builds).
        unsafe {
            self.at.cast::<[u8; N]>().write_unaligned(v);
            self.at = self.at.add(keep);
        }
    }

    /// Appends a constant: a fixed-size copy.
    #[inline(always)]
    pub(crate) fn put<const N: usize>(&mut self, bytes: &[u8; N]) {
        self.store(*bytes, N);
    }

    /// Appends one byte.
    #[inline(always)]
    pub(crate) fn byte(&mut self, b: u8) {
        self.store([b], 1);
    }

    /// Takes back the last `n` bytes kept (a separator written once too often).
    #[inline(always)]
    pub(crate) fn back(&mut self, n: usize) {
        self.at = self.at.wrapping_sub(n);
    }

    /// Appends `bytes` as they are.
    #[inline(always)]
    pub(crate) fn put_bytes(&mut self, bytes: &[u8]) {
        self.check(bytes.len());
        // SAFETY: `Cursor::new`'s caller reserved room for these bytes (checked in debug
        // builds); `bytes` is not in `out`'s spare capacity, which nothing else can reach.
        unsafe {
            std::ptr::copy_nonoverlapping(bytes.as_ptr(), self.at, bytes.len());
            self.at = self.at.add(bytes.len());
        }
    }

    /// Appends `s` as a JSON string literal (what [`write_str`] writes); room: [`str_room`].
    #[inline(always)]
    pub(crate) fn put_str(&mut self, s: &str) {
        let bytes = s.as_bytes();
        let n = bytes.len();
        if n >= 16 {
            if !self.put_up_to_32_clean(bytes) {
                self.put_long(bytes);
            }
            return;
        }
        let (first, last, clean) = short_words(bytes);
        if !clean {
            self.put_escaped(bytes);
            return;
        }
        self.check(n + 2);
        // SAFETY: `Cursor::new`'s caller reserved `str_room(s)` for this string (checked
        // in debug builds), more than the n + 2 bytes `store_short` writes.
        unsafe {
            store_short(bytes, first, last, self.at);
            self.at = self.at.add(n + 2);
        }
    }

    /// [`Cursor::put_str`] for 16 to 32 bytes that need no escaping (host names, ids, most
    /// URLs): the first and the last 16 bytes, tested and stored, overlapping. False (and
    /// nothing written) for anything else.
    #[cfg(target_arch = "x86_64")]
    #[inline(always)]
    fn put_up_to_32_clean(&mut self, bytes: &[u8]) -> bool {
        use std::arch::x86_64::{__m128i, _mm_loadu_si128, _mm_storeu_si128};
        let n = bytes.len();
        debug_assert!(n >= 16);
        if n > 32 {
            return false;
        }
        // SAFETY: 16 <= n: both 16-byte loads, at 0 and n - 16, are inside `bytes`.
        let (a, b, m) = unsafe {
            let a = _mm_loadu_si128(bytes.as_ptr().cast::<__m128i>());
            let b = _mm_loadu_si128(bytes.as_ptr().add(n - 16).cast::<__m128i>());
            (a, b, escape_mask(a) | escape_mask(b))
        };
        if m != 0 {
            return false;
        }
        self.check(n + 2);
        // SAFETY: `str_room` (at least n + 2) is reserved for this string (checked in debug
        // builds); the stores cover exactly `at..at + n + 2`: the quote, bytes 1..=16,
        // bytes n - 15..=n, the quote.
        unsafe {
            self.at.write(b'"');
            _mm_storeu_si128(self.at.add(1).cast::<__m128i>(), a);
            _mm_storeu_si128(self.at.add(n - 15).cast::<__m128i>(), b);
            self.at.add(n + 1).write(b'"');
            self.at = self.at.add(n + 2);
        }
        true
    }

    /// [`Cursor::put_up_to_32_clean`] (portable version: none).
    #[cfg(not(target_arch = "x86_64"))]
    #[inline(always)]
    fn put_up_to_32_clean(&mut self, _bytes: &[u8]) -> bool {
        false
    }

    /// [`Cursor::put_str`] for 16 bytes or more: the escape loop straight into the room.
    #[cfg(target_arch = "x86_64")]
    #[inline(never)]
    fn put_long(&mut self, bytes: &[u8]) {
        debug_assert!(bytes.len() >= 16);
        // The quote, then escape_into's worst case and slack.
        self.check(1 + bytes.len() * 6 + ESCAPE_SLACK);
        // SAFETY: `bytes.len() >= 16`, and `str_room` (6 bytes per byte and the quotes) is
        // in the room, with `SLACK` (= ESCAPE_SLACK) after it: escape_into's requirements.
        // It returns how many bytes it wrote, all initialised; the closing quote is the
        // last of the string's room.
        unsafe {
            self.at.write(b'"');
            let (written, _) = escape_into(bytes, 0, bytes.len(), self.at.add(1));
            self.at.add(1 + written).write(b'"');
            self.at = self.at.add(written + 2);
        }
    }

    /// [`Cursor::put_str`] for 16 bytes or more (portable version).
    #[cfg(not(target_arch = "x86_64"))]
    #[inline(never)]
    fn put_long(&mut self, bytes: &[u8]) {
        let first = find_escape(bytes);
        self.byte(b'"');
        self.put_bytes(&bytes[..first]);
        self.put_escaped_run(&bytes[first..]);
        self.byte(b'"');
    }

    /// [`Cursor::put_str`] for a short string that needs escaping.
    #[cold]
    #[inline(never)]
    fn put_escaped(&mut self, bytes: &[u8]) {
        self.byte(b'"');
        self.put_escaped_run(bytes);
        self.byte(b'"');
    }

    /// `bytes` escaped, without quotes, one byte at a time: each escape one 8-byte store.
    fn put_escaped_run(&mut self, bytes: &[u8]) {
        for &b in bytes {
            let e = ESCAPED[usize::from(b)];
            if e[7] == 0 {
                self.byte(b);
            } else {
                self.store(e, usize::from(e[7]));
            }
        }
    }

    /// Header or trailer fields as a JSON object (`set-cookie` lists as arrays); room:
    /// [`fields_room`]. Each field and each list item is followed by a comma, and the
    /// last comma taken back: no "is this the first" test per field.
    #[inline(never)]
    pub(crate) fn put_fields(&mut self, fields: &[(HeaderName, HeaderValue)]) {
        self.byte(b'{');
        for (name, value) in fields {
            self.put_str(name);
            self.byte(b':');
            match value {
                HeaderValue::Single(v) => self.put_str(v),
                HeaderValue::List(vs) => {
                    self.byte(b'[');
                    for v in vs {
                        self.put_str(v);
                        self.byte(b',');
                    }
                    self.back(usize::from(!vs.is_empty()));
                    self.byte(b']');
                }
            }
            self.byte(b',');
        }
        self.back(usize::from(!fields.is_empty()));
        self.byte(b'}');
    }

    /// `n` in decimal. Up to 8 digits from [`DIGIT_PAIRS`](crate::time::DIGIT_PAIRS)
    /// lookups, stored as one word with a leading zero shifted out; beyond, `itoa`.
    #[inline(always)]
    pub(crate) fn put_u64(&mut self, n: u64) {
        if n < 100 {
            self.put_2_digits(n as usize);
        } else if n < 10_000 {
            self.put_4_digits(n as usize);
        } else if n < 100_000_000 {
            let (hi, lo) = ((n / 10_000) as usize, (n % 10_000) as usize);
            self.put_4_digits(hi);
            self.store(four_digits(lo), 4);
        } else {
            self.put_bytes(itoa::Buffer::new().format(n).as_bytes());
        }
    }

    /// `n` (below 100) in 1 or 2 digits.
    #[inline(always)]
    fn put_2_digits(&mut self, n: usize) {
        use crate::time::DIGIT_PAIRS;
        let short = usize::from(n < 10);
        // One digit: the pair's leading zero shifted out, the slack byte overwritten later.
        let w = u16::from_le_bytes(DIGIT_PAIRS[n]) >> (8 * short);
        self.store(w.to_le_bytes(), 2 - short);
    }

    /// `n` (below 10 000) in 1 to 4 digits.
    #[inline(always)]
    fn put_4_digits(&mut self, n: usize) {
        if n < 100 {
            self.put_2_digits(n);
            return;
        }
        let short = usize::from(n < 1000);
        let w = u32::from_le_bytes(four_digits(n)) >> (8 * short);
        self.store(w.to_le_bytes(), 4 - short);
    }

    /// `n` as 16 lower-case hex digits: each nibble spread into its own byte, then all 16
    /// turned into ASCII at once (`'0' + d`, plus `'a' - '0' - 10` where `d > 9`).
    #[inline(always)]
    pub(crate) fn put_hex16(&mut self, n: u64) {
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
        self.store(spread((n >> 32) as u32), 8);
        self.store(spread(n as u32), 8);
    }

    /// `{"ip":"…","port":…}`. An IPv4 address is four fixed-size octet stores, each
    /// advancing by its length (see [`OCTETS`]); the last one's dot is taken back.
    #[inline(always)]
    fn put_endpoint(&mut self, e: &Endpoint) {
        self.put(br#"{"ip":""#);
        self.put_ip(e.ip);
        self.put(br#"","port":"#);
        self.put_u64(u64::from(e.port));
        self.byte(b'}');
    }

    /// An address's text, without quotes (at most 39 bytes). An IPv4 address is four
    /// fixed-size octet stores, each advancing by its length (see [`OCTETS`]); the last
    /// one's dot is taken back.
    #[inline(always)]
    pub(crate) fn put_ip(&mut self, ip: IpAddr) {
        let IpAddr::V4(v4) = ip else {
            self.put_ipv6(ip);
            return;
        };
        for o in v4.octets() {
            self.store(
                OCTETS[usize::from(o)],
                usize::from(OCTET_LENS[usize::from(o)]),
            );
        }
        self.back(1);
    }

    /// [`Cursor::put_ip`] for an IPv6 address: `Display`'s text (39 bytes at most).
    #[inline(never)]
    fn put_ipv6(&mut self, ip: IpAddr) {
        use std::io::Write;
        let mut buf = [0u8; 48];
        let mut w = &mut buf[..];
        let _ = write!(w, "{ip}");
        let len = 48 - w.len();
        self.put_bytes(&buf[..len]);
    }

    /// The `pod` object: the placement's names that are known; room: [`pod_room`] and
    /// 40 bytes of keys and braces.
    pub(crate) fn put_pod(&mut self, p: &Placement) {
        self.byte(b'{');
        for (k, v) in [
            (br#""name":"#.as_slice(), &p.name),
            (br#""namespace":"#.as_slice(), &p.namespace),
            (br#""node":"#.as_slice(), &p.node),
        ] {
            if let Some(v) = v {
                self.put_bytes(k);
                self.put_str(v);
                self.byte(b',');
            }
        }
        // The last comma, or nothing when no name is known.
        let any = p.name.is_some() || p.namespace.is_some() || p.node.is_some();
        self.back(usize::from(any));
        self.byte(b'}');
    }

    /// Latency in milliseconds with microsecond precision, shortest form (`45.449`, `2`,
    /// `0.001`).
    #[inline(always)]
    pub(crate) fn put_millis(&mut self, ms: f64) {
        if !ms.is_finite() || ms < 0.0 {
            self.byte(b'0');
            return;
        }
        let micros = (ms * 1000.0).round() as u64;
        self.put_u64(micros / 1000);
        let frac = micros % 1000;
        if frac != 0 {
            // The dot and three digits, keeping up to the last non-zero one.
            let digits = [
                b'.',
                b'0' + (frac / 100) as u8,
                b'0' + (frac / 10 % 10) as u8,
                b'0' + (frac % 10) as u8,
            ];
            let keep = if digits[3] != b'0' {
                4
            } else if digits[2] != b'0' {
                3
            } else {
                2
            };
            self.store(digits, keep);
        }
    }
}

/// `n` (below 10 000) as four digits, zero-padded.
#[inline(always)]
fn four_digits(n: usize) -> [u8; 4] {
    use crate::time::DIGIT_PAIRS;
    let (hi, lo) = (DIGIT_PAIRS[n / 100], DIGIT_PAIRS[n % 100]);
    [hi[0], hi[1], lo[0], lo[1]]
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
    use std::arch::x86_64::{__m128i, _mm_loadu_si128};
    /// Bit i set when byte i of the 16 at `p` is escaped.
    ///
    /// SAFETY (caller): `p..p + 16` is in bounds. SSE2 is in the x86_64 baseline.
    #[inline(always)]
    unsafe fn mask(p: *const u8) -> u32 {
        escape_mask(_mm_loadu_si128(p.cast::<__m128i>()))
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
    write_bytes(s.as_bytes(), out);
}

/// [`write_str`] for bytes: the escaping does not depend on them being UTF-8 (the caller
/// knows they are, e.g. ASCII).
#[inline(always)]
fn write_bytes(bytes: &[u8], out: &mut Vec<u8>) {
    if bytes.len() < 16 {
        if !push_short(bytes, out) {
            write_escaped(bytes, 0, out);
        }
    } else {
        write_long(bytes, out);
    }
}

/// The words that test and copy a string of under 16 bytes, and whether it needs no
/// escaping: for 8–15 bytes two overlapping 8-byte words (first and last 8), for 4–7 two
/// 4-byte words (in the low halves), for 1–3 the first, middle and last byte. No byte loop.
#[inline(always)]
fn short_words(bytes: &[u8]) -> (u64, u64, bool) {
    let n = bytes.len();
    debug_assert!(n < 16);
    /// A byte no word test flags, filling the unused bytes of a short word.
    const FILL: u64 = 0x4141_4141_4141_4141;
    let word = |at: usize| u64::from_le_bytes(bytes[at..at + 8].try_into().unwrap_or([0; 8]));
    let half = |at: usize| u32::from_le_bytes(bytes[at..at + 4].try_into().unwrap_or([0; 4]));
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
    // The bytes to test as two words, FILL where there are fewer than 16.
    let (lo, hi) = if n >= 8 {
        (first, last)
    } else if n >= 4 {
        (first | last << 32, FILL)
    } else {
        (first | FILL << 24, FILL)
    };
    (first, last, words_clean(lo, hi))
}

/// Whether none of the 16 bytes of `lo` and `hi` is one [`ESCAPE`] escapes: one SSE2 test
/// of both, fewer instructions than two [`word_needs_escape`].
#[cfg(target_arch = "x86_64")]
#[inline(always)]
fn words_clean(lo: u64, hi: u64) -> bool {
    use std::arch::x86_64::_mm_set_epi64x;
    // SAFETY: SSE2 is in the x86_64 baseline; no memory is touched.
    unsafe { escape_mask(_mm_set_epi64x(hi as i64, lo as i64)) == 0 }
}

/// [`words_clean`] (portable version).
#[cfg(not(target_arch = "x86_64"))]
#[inline(always)]
fn words_clean(lo: u64, hi: u64) -> bool {
    !word_needs_escape(lo) && !word_needs_escape(hi)
}

/// Bit i set when byte i of `v` is one [`ESCAPE`] escapes: below 0x20, `"`, `\\` or DEL.
///
/// # Safety
/// None beyond SSE2, which is in the x86_64 baseline (an `unsafe fn` so that the
/// intrinsics need no `unsafe` block on compilers older than target-feature 1.1).
#[cfg(target_arch = "x86_64")]
#[inline(always)]
unsafe fn escape_mask(v: std::arch::x86_64::__m128i) -> u32 {
    use std::arch::x86_64::{
        _mm_cmpeq_epi8, _mm_min_epu8, _mm_movemask_epi8, _mm_or_si128, _mm_set1_epi8,
    };
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

/// Writes `"bytes"` (under 16 bytes, needing no escaping) at `dst` from the words
/// [`short_words`] gave: exactly `bytes.len() + 2` bytes, no call to `memcpy`.
///
/// # Safety
/// `dst` is valid for writes of `bytes.len() + 2` bytes, and `first` and `last` are
/// `short_words(bytes)`'s.
#[inline(always)]
unsafe fn store_short(bytes: &[u8], first: u64, last: u64, dst: *mut u8) {
    let n = bytes.len();
    // SAFETY: `dst` is valid for n + 2 bytes (the caller's contract); every write below stays inside `dst..dst + n + 2` (offsets: the quote
    // at 0, the string's bytes at 1..=n, the quote at n + 1; the overlapping words cover
    // 1..=n exactly), and together they write every one of those bytes.
    unsafe {
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
    }
}

/// Appends `"bytes"` when `bytes` (under 16 bytes) needs no escaping, and says whether it
/// did (see [`short_words`] and [`store_short`]).
#[inline(always)]
fn push_short(bytes: &[u8], out: &mut Vec<u8>) -> bool {
    let (first, last, clean) = short_words(bytes);
    if !clean {
        return false;
    }
    let n = bytes.len();
    out.reserve(n + 2);
    let len = out.len();
    // SAFETY: `reserve` made room for n + 2 bytes after `len`, which `store_short` writes
    // (all of them) before `set_len` covers them.
    unsafe {
        store_short(bytes, first, last, out.as_mut_ptr().add(len));
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
    write_long_checking_ascii(bytes, out, false);
}

/// [`write_long`] for a body, which is only written as text when it is UTF-8: true when
/// every byte is ASCII and the body is written; false (and nothing written) at the first
/// chunk holding a byte of 0x80 or more.
#[cfg(target_arch = "x86_64")]
#[inline(never)]
fn write_long_if_ascii(bytes: &[u8], out: &mut Vec<u8>) -> bool {
    write_long_checking_ascii(bytes, out, true)
}

/// [`write_long`]'s loop; with `ascii_only`, it gives up (see [`write_long_if_ascii`]).
#[cfg(target_arch = "x86_64")]
#[inline(always)]
fn write_long_checking_ascii(bytes: &[u8], out: &mut Vec<u8>, ascii_only: bool) -> bool {
    debug_assert!(bytes.len() >= 16);
    let start = out.len();
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
        let non_ascii = unsafe {
            let (written, non_ascii) = escape_into(bytes, from, to, out.as_mut_ptr().add(len));
            out.set_len(len + written);
            non_ascii
        };
        if ascii_only && non_ascii {
            out.truncate(start);
            return false;
        }
        from = to;
    }
    // SAFETY: the last reserve kept one byte past the slack for this quote.
    unsafe {
        let len = out.len();
        out.as_mut_ptr().add(len).write(b'"');
        out.set_len(len + 1);
    }
    true
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
/// wrote, and whether any of those input bytes is 0x80 or more (not ASCII: one OR per
/// block, for [`write_long_if_ascii`]).
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
unsafe fn escape_into(bytes: &[u8], from: usize, to: usize, dst: *mut u8) -> (usize, bool) {
    use std::arch::x86_64::{
        __m128i, _mm_loadu_si128, _mm_movemask_epi8, _mm_or_si128, _mm_setzero_si128,
        _mm_storeu_si128,
    };
    debug_assert!(from < to && to <= bytes.len() && to >= 16);
    let src = bytes.as_ptr();
    let mut pos = from;
    let mut d = dst;
    // Every block loaded, ORed: only input bytes (a tail block's zeros add nothing).
    let mut high = _mm_setzero_si128();
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
        high = _mm_or_si128(high, v);
        let m = escape_mask(v) & keep;
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
    (d.offset_from(dst) as usize, _mm_movemask_epi8(high) != 0)
}

/// [`write_long_if_ascii`] (portable version).
#[cfg(not(target_arch = "x86_64"))]
fn write_long_if_ascii(bytes: &[u8], out: &mut Vec<u8>) -> bool {
    if !bytes.is_ascii() {
        return false;
    }
    write_long(bytes, out);
    true
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

    /// What `f` writes through a cursor with `room` reserved; the tests build with debug
    /// assertions, so the cursor checks every store against that room.
    fn cursor_bytes(room: usize, f: impl FnOnce(&mut Cursor)) -> Vec<u8> {
        // Something already there, as in a batch.
        let mut out = b"x".to_vec();
        // SAFETY: the cursor's debug checks (on in tests) fail the test before a store
        // leaves the room.
        let mut c = unsafe { Cursor::new(&mut out, room) };
        f(&mut c);
        c.finish();
        out.split_off(1)
    }

    #[test]
    #[cfg(debug_assertions)]
    #[should_panic(expected = "JSON cursor")]
    fn the_cursor_checks_its_room_in_debug_builds() {
        cursor_bytes(4, |c| c.put_str("0123456789abcdef0123"));
    }

    /// The longest endpoint: a 39-character IPv6 address and a 5-digit port.
    const ENDPOINT_MAX: usize = 61;

    #[test]
    fn endpoints_are_written_as_display_would() {
        for ip in [
            "0.0.0.0",
            "10.1.0.159",
            "255.255.255.255",
            "9.99.100.1",
            "::1",
            "fd00:c::12",
            "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff",
            "::ffff:255.255.255.255",
        ] {
            for port in [0u16, 7, 80, 443, 8080, 32768, 65535] {
                let e = Endpoint {
                    ip: ip.parse().unwrap(),
                    port,
                };
                let out = cursor_bytes(ENDPOINT_MAX, |c| c.put_endpoint(&e));
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
                let out = cursor_bytes(ENDPOINT_MAX, |c| c.put_endpoint(&e));
                assert_eq!(
                    String::from_utf8(out).unwrap(),
                    format!(r#"{{"ip":"{}","port":{port}}}"#, e.ip)
                );
            }
        }
        let out = cursor_bytes(32, |c| {
            c.put_hex16(0x0123_4567_89ab_cdef);
            c.put_hex16(1);
        });
        assert_eq!(out, b"0123456789abcdef0000000000000001");
        for n in [
            0,
            u64::MAX,
            0xfedc_ba98_7654_3210,
            0xa0a0_9f9f_0a0a_f9f9,
            1 << 63,
        ] {
            let out = cursor_bytes(16, |c| c.put_hex16(n));
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
            let out = cursor_bytes(24, |c| c.put_millis(ms));
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

    /// The schema spelled out with `format!` and [`reference_str`]: what `write_json` must
    /// produce, byte for byte.
    fn reference_json(m: &HttpMessage, placement: Option<&Placement>) -> String {
        let s = |v: &str| String::from_utf8(reference_str(v)).unwrap();
        let ep = |e: &Endpoint| format!(r#"{{"ip":"{}","port":{}}}"#, e.ip, e.port);
        let fields = |f: &[(HeaderName, HeaderValue)]| {
            let items: Vec<String> = f
                .iter()
                .map(|(n, v)| {
                    let v = match v {
                        HeaderValue::Single(v) => s(v),
                        HeaderValue::List(l) => {
                            format!("[{}]", l.iter().map(|v| s(v)).collect::<Vec<_>>().join(","))
                        }
                    };
                    format!("{}:{v}", s(n))
                })
                .collect();
            format!("{{{}}}", items.join(","))
        };
        let mut j = String::from("{");
        j += match m.kind {
            MessageKind::Request { .. } => r#""type":"request""#,
            MessageKind::Response { .. } => r#""type":"response""#,
        };
        j += &format!(
            r#","connectionId":"{:016x}","sequence":{},"timestamp":"{}","endTimestamp":"{}","source":{},"destination":{},"direction":"{}""#,
            m.connection_id,
            m.sequence,
            // Not `Display`: that one writes years past 9999 (time.rs tests the two agree
            // below that).
            String::from_utf8(m.timestamp.rfc3339().to_vec()).unwrap(),
            String::from_utf8(m.end_timestamp.rfc3339().to_vec()).unwrap(),
            ep(&m.source),
            ep(&m.destination),
            m.direction.as_str()
        );
        match &m.kind {
            MessageKind::Request { method, url } => {
                j += &format!(r#","method":{},"url":{}"#, s(method), s(url))
            }
            MessageKind::Response {
                status_code,
                status_message,
                ..
            } => {
                j += &format!(
                    r#","statusCode":{status_code},"statusMessage":{}"#,
                    s(status_message)
                )
            }
        }
        j += &format!(r#","httpVersion":"{}""#, m.http_version);
        if let Some(id) = m.stream_id {
            j += &format!(r#","streamId":{id}"#);
        }
        j += &format!(r#","headers":{}"#, fields(&m.headers));
        if !m.trailers.is_empty() {
            j += &format!(r#","trailers":{}"#, fields(&m.trailers));
        }
        let (body, encoding) = match body_text(&m.body, m.truncated) {
            Some(t) => (s(t), "utf8"),
            None => (
                format!(
                    "\"{}\"",
                    base64::Engine::encode(&base64::engine::general_purpose::STANDARD, &m.body)
                ),
                "base64",
            ),
        };
        j += &format!(
            r#","body":{body},"bodyEncoding":"{encoding}","bodySize":{}"#,
            m.body_size
        );
        if let Some(n) = m.decoded_body_size {
            j += &format!(r#","decodedBodySize":{n}"#);
        }
        if m.tunnel {
            j += r#","tunnel":true"#;
        }
        j += &format!(
            r#","truncated":{},"incomplete":{}"#,
            m.truncated, m.incomplete
        );
        if let Some(e) = m.parse_error {
            j += &format!(r#","parseError":{}"#, s(e));
        }
        if let MessageKind::Response {
            latency_ms: Some(ms),
            ..
        } = m.kind
        {
            // Microseconds, shortest form.
            let micros = (ms * 1000.0).round() as u64;
            j += &format!(r#","latencyMs":{}"#, micros / 1000);
            let frac = format!("{:03}", micros % 1000);
            let frac = frac.trim_end_matches('0');
            if !frac.is_empty() {
                j += &format!(".{frac}");
            }
        }
        if let Some(p) = placement {
            let items: Vec<String> = [
                ("name", &p.name),
                ("namespace", &p.namespace),
                ("node", &p.node),
            ]
            .into_iter()
            .filter_map(|(k, v)| v.as_ref().map(|v| format!("{}:{}", s(k), s(v))))
            .collect();
            j += &format!(r#","pod":{{{}}}"#, items.join(","));
        }
        j + "}"
    }

    /// `assert_eq!` for long JSON: the first difference, with some context.
    #[track_caller]
    fn assert_same(got: &str, want: &str, what: &str) {
        if got != want {
            let at = got
                .bytes()
                .zip(want.bytes())
                .position(|(a, b)| a != b)
                .unwrap_or(got.len().min(want.len()));
            let from = at.saturating_sub(60);
            panic!(
                "{what}: differs at byte {at}\n got: {:?}\nwant: {:?}",
                &got[from..(at + 60).min(got.len())],
                &want[from..(at + 60).min(want.len())]
            );
        }
    }

    /// A string of `len` bytes where every byte needs the longest escape (`\u00XX`).
    fn worst(len: usize) -> String {
        "\u{1}".repeat(len)
    }

    #[test]
    fn worst_case_messages_stay_within_the_reserved_room() {
        // Every optional field, every number at its longest, IPv6 endpoints at their
        // longest, and every string made only of bytes escaped as `\u00XX`: the cursor's
        // debug checks fail if HEAD_ROOM, TAIL_ROOM or a string's room is short, for the
        // JSON objects and for the Node library's rows alike.
        let long_ip = crate::testing::endpoint("[ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff]:65535");
        let placement = Placement {
            name: Some(worst(40)),
            namespace: Some(worst(3)),
            node: Some(worst(17)),
        };
        for kind in [
            MessageKind::Request {
                method: worst(15),
                url: worst(300),
            },
            MessageKind::Response {
                status_code: u16::MAX,
                status_message: worst(16),
                latency_ms: Some(f64::MAX),
            },
            MessageKind::Response {
                status_code: 0,
                status_message: String::new(),
                latency_ms: Some(18_446_744_073_709_551.615),
            },
        ] {
            for parse_error in [None, Some("\u{1}\u{2}\u{3}\u{4}\u{5}\u{6}\u{7}\u{8}")] {
                let m = HttpMessage {
                    kind: kind.clone(),
                    connection_id: u64::MAX,
                    sequence: u64::MAX,
                    timestamp: Timestamp(u64::MAX),
                    end_timestamp: Timestamp(u64::MAX - 1),
                    source: long_ip,
                    destination: long_ip,
                    direction: Direction::Outbound,
                    http_version: "1.1",
                    headers: vec![
                        (worst(1).into(), HeaderValue::Single(worst(0))),
                        (worst(15).into(), HeaderValue::Single(worst(16))),
                        (
                            worst(16).into(),
                            HeaderValue::List(vec![worst(1), worst(2), worst(33)]),
                        ),
                        ("set-cookie".into(), HeaderValue::List(Vec::new())),
                    ],
                    body: worst(5000).into_bytes(),
                    body_size: u64::MAX,
                    truncated: true,
                    incomplete: true,
                    parse_error,
                    decoded_body_size: Some(u64::MAX),
                    tunnel: true,
                    stream_id: Some(u32::MAX),
                    trailers: vec![(worst(7).into(), HeaderValue::Single(worst(70)))],
                };
                for p in [None, Some(&placement)] {
                    let json = m.to_json(p);
                    assert_same(&json, &reference_json(&m, p), "worst case");
                    serde_json::from_str::<serde_json::Value>(&json).expect("valid JSON");
                    // The Node library's rows (js_rows.rs) use the same rooms.
                    let mut row = Vec::new();
                    m.write_js_row(p, &mut crate::js_rows::RowStrings::default(), &mut row);
                    serde_json::from_slice::<serde_json::Value>(&row).expect("a valid row");
                }
            }
        }
    }

    #[test]
    fn messages_match_the_reference_serialiser() {
        // Typical messages (the cursor's common paths), with the variants of each field.
        let mut msgs = vec![sample(), crate::testing::sample_message()];
        let mut m = sample();
        m.kind = crate::testing::request("POST", "/api/v1/items/474248/hit?x=\"1\"");
        m.direction = Direction::Inbound;
        m.end_timestamp = m.timestamp;
        m.stream_id = Some(7);
        m.tunnel = true;
        m.trailers = vec![("grpc-status".into(), HeaderValue::Single("0".into()))];
        m.decoded_body_size = Some(12_345);
        m.parse_error = Some("invalid-version");
        m.headers
            .push(("x-empty".into(), HeaderValue::Single(String::new())));
        msgs.push(m);
        for (sequence, status) in [(9, 99), (10, 100), (999, 1000), (12_345, 65_535)] {
            let mut m = sample();
            m.sequence = sequence;
            m.kind = crate::testing::response(status, "Not Found", Some(0.0015));
            m.headers.clear();
            m.source = crate::testing::endpoint("0.0.0.0:0");
            m.destination = crate::testing::endpoint("255.255.255.255:65535");
            msgs.push(m);
        }
        let placement = Placement {
            name: Some("web-0".into()),
            namespace: None,
            node: Some("node \"a\"".into()),
        };
        for m in &msgs {
            for p in [None, Some(&placement)] {
                assert_same(&m.to_json(p), &reference_json(m, p), "message");
            }
        }
    }

    #[test]
    fn bodies_are_text_or_base64_whatever_their_length_and_first_non_ascii_byte() {
        // ASCII bodies take write_long_if_ascii (or write_bytes under 16 bytes) without
        // validation; a byte of 0x80 or more anywhere, in the first 4096-byte chunk or a
        // later one, sends the body back through `body_text` and its UTF-8 validation.
        for len in [0, 1, 15, 16, 17, 100, 4095, 4096, 4097, 9000] {
            let ascii: Vec<u8> = (0..len).map(|i| b"ab\"c\\d\ne\x01f"[i % 10]).collect();
            for at in [
                None,
                Some(0),
                Some(len / 2),
                Some(len.saturating_sub(1)),
                Some(len),
            ] {
                for insert in [&b"\xc3\xa9"[..], b"\xff", b"\xc3", b"\xe2\x82"] {
                    let mut body = ascii.clone();
                    if let Some(at) = at {
                        body.splice(at..at, insert.iter().copied());
                    }
                    for truncated in [false, true] {
                        let mut m = crate::testing::sample_message();
                        m.body_size = body.len() as u64;
                        m.body = body.clone();
                        m.truncated = truncated;
                        assert_same(
                            &m.to_json(None),
                            &reference_json(&m, None),
                            &format!("len {len} {insert:?} at {at:?} truncated {truncated}"),
                        );
                    }
                }
            }
        }
    }

    #[test]
    fn cursor_numbers_and_strings_match_the_vec_writers() {
        for n in (0..=100_000u64)
            .chain((1..20).flat_map(|e| {
                let p = 10u64.pow(e);
                [p - 1, p, p + 1]
            }))
            .chain([99_999_999, 100_000_000, u64::MAX, u64::MAX - 1])
        {
            let out = cursor_bytes(20, |c| c.put_u64(n));
            assert_eq!(out, n.to_string().as_bytes());
        }
        let cases = [
            "",
            "a",
            "ab",
            "abc",
            "abcd",
            "host",
            "user-agent",
            "x-request-id",
            "0a0df0c9c8f7b0d2",
            "api.example.test:8080",
            "\"",
            "a\"b",
            "tab\there",
            "\u{7f}\u{1f}\u{0}",
            "é ü \u{2028}",
            "0123456789abcde\\f",
            "{\"id\":4201,\"name\":\"item-4201\",\"tags\":[\"a\",\"b\"]}",
        ];
        for s in cases {
            let out = cursor_bytes(str_room(s), |c| c.put_str(s));
            assert_eq!(out, reference_str(s), "{s:?}");
        }
        for len in 0..40 {
            for at in 0..len {
                for b in [b'"', b'\\', 0x00, 0x1f, 0x7f, b'\n', b'a'] {
                    let mut v = vec![b'x'; len];
                    v[at] = b;
                    let s = String::from_utf8(v).unwrap();
                    let out = cursor_bytes(str_room(&s), |c| c.put_str(&s));
                    assert_eq!(out, reference_str(&s), "len {len}, {b:#04x} at {at}");
                }
            }
        }
        let fields: Vec<(HeaderName, HeaderValue)> = vec![
            ("a".into(), HeaderValue::Single("1".into())),
            ("set-cookie".into(), HeaderValue::List(vec![])),
            ("b".into(), HeaderValue::List(vec!["x".into()])),
            (
                "c".into(),
                HeaderValue::List(vec!["x".into(), "y\"".into()]),
            ),
        ];
        for k in 0..=fields.len() {
            let f = &fields[..k];
            let out = cursor_bytes(fields_room(f), |c| c.put_fields(f));
            let want = [
                "{}",
                r#"{"a":"1"}"#,
                r#"{"a":"1","set-cookie":[]}"#,
                r#"{"a":"1","set-cookie":[],"b":["x"]}"#,
                r#"{"a":"1","set-cookie":[],"b":["x"],"c":["x","y\""]}"#,
            ][k];
            assert_eq!(String::from_utf8(out).unwrap(), want);
        }
    }
}
