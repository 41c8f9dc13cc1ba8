//! Message heads: request and status lines and header fields, parsed with
//! `httparse` from a slice that holds exactly one complete head, then turned
//! into the schema's header map.
//!
//! Header map rules (Node's `http.IncomingMessage.headers`): names are
//! lower-cased and kept in first-seen order; a repeated header from
//! [`DISCARD_DUPLICATES`] keeps its first value; `set-cookie` is a list;
//! repeated `cookie` values are joined with `"; "`, every other header with
//! `", "`. Values are decoded as latin-1 (one byte, one char), as Node does.
//! Redacted headers get the value `"[REDACTED]"` (each element, for
//! `set-cookie`).
//!
//! # Tolerated deviations
//!
//! A head that needs one of these is parsed from a scratch copy (never longer
//! than the head itself, so bounded by `max_head_size`); the [`Head`] says
//! which was used so the caller can count it.
//!
//! * Obsolete line folding (RFC 9112 §5.2, `obs-fold`), in requests and
//!   responses: when a header line is followed by a line starting with SP or
//!   HTAB, the fold's line break (`CR? LF`) is removed before parsing and its
//!   whitespace kept, so `a CRLF HTAB b` reads `a HTAB b`: the RFC lets a
//!   recipient replace a fold with whitespace, and this is the value llhttp
//!   (and so a Node server) reports. (httparse rejects folds in requests.) A
//!   line starting with whitespace right after the start line is not a fold
//!   and stays an error.
//! * A higher minor version of HTTP/1 (`HTTP/1.2` … `HTTP/1.9`) in a request
//!   or status line: RFC 9112 §2.3 and RFC 9110 §6.2 say to process it as the
//!   highest 1.x minor the recipient implements, so the head is parsed as
//!   `HTTP/1.1` (from a copy whose version digit is replaced; same length, so
//!   every offset holds) and its message says `httpVersion` `"1.1"`, without
//!   a `parseError`. `HTTP/1.10` and up, and any other major version, stay an
//!   error.
//! * A request line that httparse rejects but that reads
//!   `TOKEN SP target SP HTTP/1.x`, where the target may contain spaces but no
//!   CR, LF or NUL and neither starts nor ends with whitespace (e.g.
//!   `CONNECT host:25 / HTTP/1.0`): method is the first token, version the
//!   last, the url everything in between exactly as on the wire. Real servers
//!   accept such lines. Only for such a request line, header lines that are
//!   not `name: value` (no colon, space in the name) are dropped and counted
//!   rather than failing the head: a client that sends one sends the other.
//!
//! * Control bytes other than HTAB, NUL, CR and LF (e.g. `\f`, `\x7f`) in a
//!   header value, as llhttp's lenient header-value modes and servers such as
//!   nginx accept them: when httparse rejects a head holding such bytes after
//!   its start line, they are masked (replaced one for one by `0x80`, which
//!   httparse accepts in values only: in a name the head stays an error) in a
//!   scratch copy, that copy is parsed, and names and values are read back
//!   from the unmasked bytes at the same offsets. NUL, CR and LF stay errors:
//!   they could end or split a line differently for different peers.
//!
//! # Cost of the common head
//!
//! The engine delimits a head with [`super::detect::find_head_end`], whose one
//! pass over the head's line ends also returns its [`HeadShape`] (start-line end,
//! bare LF, obs-fold). The `*_shaped` parsers use it so that a head with none of
//! the deviations above is read by httparse once, straight from the delivered
//! bytes: no unfold scan, no copies, no second search for the start line. Control
//! bytes in values are not looked for up front: only a head httparse rejects pays
//! for [`mask_value_controls`]. Header names are matched against a static table
//! without a lower-cased copy ([`header_name`]); in the clean shape, a name of at most
//! 15 letters, digits and `-` (nearly all) is checked and lower-cased 16 bytes at a time
//! and found with one probe of a perfect hash table (`clean::short_name`, `clean::common_short`).
//!
//! The framing facts (`Content-Length`, `Transfer-Encoding`,
//! `Connection: upgrade` with `Upgrade`) are read from every raw header line, not from the
//! de-duplicated map, so conflicting duplicates are seen.

use std::mem::MaybeUninit;

mod clean;
use clean::parse_clean;

use super::detect::HeadShape;
use super::HttpConfig;
use crate::message::{HeaderName, HeaderValue};

/// Hard upper bound on `max_headers` (the header array lives on the stack).
pub(crate) const MAX_HEADERS_LIMIT: usize = 512;

/// The replacement text of a redacted header value.
pub use crate::redact::REDACTED;

/// Headers whose duplicates Node discards (the first value wins).
pub(crate) const DISCARD_DUPLICATES: &[&str] = &[
    "age",
    "authorization",
    "content-length",
    "content-type",
    "etag",
    "expires",
    "from",
    "host",
    "if-modified-since",
    "if-unmodified-since",
    "last-modified",
    "location",
    "max-forwards",
    "proxy-authorization",
    "referer",
    "retry-after",
    "server",
    "user-agent",
];

/// Adds one header line to `headers` by the schema's one merge rule (the module docs), shared
/// by HTTP/1 heads and HTTP/2 header and trailer blocks so both fold a repeated name alike:
/// the first value of a [`DISCARD_DUPLICATES`] name wins, `set-cookie` is a list, repeated
/// `cookie` values are joined with `"; "` and every other name with `", "`.
#[inline]
pub(crate) fn merge_header(
    headers: &mut Vec<(HeaderName, HeaderValue)>,
    name: HeaderName,
    value: String,
) {
    match headers.iter_mut().find(|(n, _)| *n == name) {
        None => {
            let v = if name == "set-cookie" {
                HeaderValue::List(vec![value])
            } else {
                HeaderValue::Single(value)
            };
            headers.push((name, v));
        }
        Some((_, HeaderValue::List(list))) => list.push(value),
        Some((n, HeaderValue::Single(joined))) => {
            if DISCARD_DUPLICATES.contains(&&**n) {
                return;
            }
            joined.push_str(if *n == "cookie" { "; " } else { ", " });
            joined.push_str(&value);
        }
    }
}

/// The first line of a head.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum StartLine {
    /// Method and request-target exactly as on the wire.
    Request { method: String, url: String },
    /// Status code and reason phrase (latin-1).
    Response { status: u16, reason: String },
}

/// What the `Content-Length` header lines say.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum ContentLength {
    /// No such header.
    Absent,
    /// One value (repeated identical values are accepted, RFC 9110 §8.6).
    Valid(u64),
    /// Not a number, overflowing, empty or conflicting.
    Invalid,
}

/// What the `Transfer-Encoding` header lines say.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum TransferCoding {
    /// No such header.
    Absent,
    /// `chunked` is the final coding (and appears only there).
    Chunked,
    /// Present, but `chunked` is not (only) the final coding.
    NotChunked,
}

/// A parsed head.
#[derive(Clone, Debug)]
pub(crate) struct Head {
    pub(crate) start: StartLine,
    /// `"1.0"` or `"1.1"`.
    pub(crate) version: &'static str,
    pub(crate) headers: Vec<(HeaderName, HeaderValue)>,
    pub(crate) content_length: ContentLength,
    pub(crate) transfer_coding: TransferCoding,
    /// `Upgrade` header with `Connection: upgrade`.
    pub(crate) upgrade: bool,
    /// `Connection: close`: the sender ends the connection after this message.
    pub(crate) conn_close: bool,
    /// Obsolete line folds were unfolded before parsing (see the module docs).
    pub(crate) obs_fold: bool,
    /// The request line needed the lenient fallback (see the module docs).
    pub(crate) lenient_request_line: bool,
    /// A header value held control bytes (see the module docs).
    pub(crate) lenient_header_values: bool,
    /// The start line said `HTTP/1.2` … `HTTP/1.9`, read as 1.1 (see the module docs).
    pub(crate) higher_minor: bool,
    /// Malformed header lines dropped (only with a lenient request line, or
    /// in a head read by [`parse_broken`]).
    pub(crate) ignored_header_lines: u64,
    /// The head broke the grammar and was read by [`parse_broken`]: the
    /// schema's `parseError` value.
    pub(crate) parse_error: Option<&'static str>,
}

/// Why a head could not be parsed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum HeadError {
    /// More header lines than `max_headers`.
    TooManyHeaders,
    /// Not `HTTP/1.0` or `HTTP/1.1`.
    Version,
    /// Any other syntax error.
    Syntax,
    /// No end of head within `max_head_size` (found by the caller, not by the parser).
    TooLarge,
}

fn parser_config() -> httparse::ParserConfig {
    let mut c = httparse::ParserConfig::default();
    c.allow_obsolete_multiline_headers_in_responses(true);
    c
}

fn map_err(e: httparse::Error) -> HeadError {
    match e {
        httparse::Error::TooManyHeaders => HeadError::TooManyHeaders,
        httparse::Error::Version => HeadError::Version,
        _ => HeadError::Syntax,
    }
}

fn header_slots(cfg: &HttpConfig) -> usize {
    cfg.max_headers.clamp(1, MAX_HEADERS_LIMIT)
}

/// Checks a head that is not complete yet: `Err` as soon as what is there
/// cannot be the start of a valid head (including the tolerated deviations).
pub(crate) fn validate_partial(
    side_is_client: bool,
    s: &[u8],
    cfg: &HttpConfig,
) -> Result<(), HeadError> {
    let unfolded = unfold(s);
    let s = unfolded.as_deref().unwrap_or(s);
    let masked = mask_value_controls(s);
    let s = masked.as_deref().unwrap_or(s);
    let lowered = lower_minor(side_is_client, s, memchr::memchr(b'\n', s));
    let s = lowered.as_deref().unwrap_or(s);
    let mut storage = [MaybeUninit::<httparse::Header<'_>>::uninit(); MAX_HEADERS_LIMIT];
    let slots = &mut storage[..header_slots(cfg)];
    if !side_is_client {
        let mut res = httparse::Response::new(&mut []);
        return parser_config()
            .parse_response_with_uninit_headers(&mut res, s, slots)
            .map(|_| ())
            .map_err(map_err);
    }
    let mut req = httparse::Request::new(&mut []);
    let Err(e) = parser_config().parse_request_with_uninit_headers(&mut req, s, slots) else {
        return Ok(());
    };
    let e = map_err(e);
    let Some(lf) = s.iter().position(|&b| b == b'\n') else {
        // The request line is still incomplete: fine if it can still become a lenient one.
        return if lenient_line_prefix(s) {
            Ok(())
        } else {
            Err(e)
        };
    };
    if strict_request_line_ok(&s[..=lf]) {
        return Err(e);
    }
    let Some(line) = lenient_request_line(&s[..lf]) else {
        return Err(e);
    };
    let scratch = canonical_request(&line, &s[lf + 1..]);
    let mut req = httparse::Request::new(&mut []);
    let mut storage = [MaybeUninit::<httparse::Header<'_>>::uninit(); MAX_HEADERS_LIMIT];
    lenient_config()
        .parse_request_with_uninit_headers(&mut req, &scratch, &mut storage[..header_slots(cfg)])
        .map(|_| ())
        .map_err(map_err)
}

/// Parses a request head; `s` holds exactly the head (up to its empty line).
/// (The engine delimits heads with [`super::detect::find_head_end`], which finds
/// their shape on the way; this form is for tests.)
#[cfg(test)]
pub(crate) fn parse_request(s: &[u8], cfg: &HttpConfig) -> Result<Head, HeadError> {
    parse_request_shaped(s, &HeadShape::of(s), cfg)
}

/// Parses a request head (`s` holds exactly the head, up to its empty line) whose
/// [`HeadShape`] is known (found by
/// [`super::detect::find_head_end`] while delimiting it): the unfolded and
/// lowered-version copies are made only when the shape says they are needed.
pub(crate) fn parse_request_shaped(
    s: &[u8],
    shape: &HeadShape,
    cfg: &HttpConfig,
) -> Result<Head, HeadError> {
    match parse_clean(true, s, shape, cfg) {
        Some(h) => Ok(h),
        None => parse_request_general(s, shape, cfg),
    }
}

/// [`parse_request_shaped`] for a head that is not in [`parse_clean`]'s shape.
fn parse_request_general(s: &[u8], shape: &HeadShape, cfg: &HttpConfig) -> Result<Head, HeadError> {
    let unfolded = shape.obs_fold.then(|| unfold(s)).flatten();
    let src = unfolded.as_deref().unwrap_or(s);
    // Unfolding leaves the start line as it was: its LF is where it was.
    let lowered = lower_minor(true, src, shape.first_lf);
    let src = lowered.as_deref().unwrap_or(src);
    let first = parse_request_from(src, None, cfg);
    // Only a head httparse rejects (or one whose lenient request line made it drop header
    // lines) pays for the scan and the copy; the masked parse wins if it keeps more lines.
    let retry = first.as_ref().map_or(true, |h| h.ignored_header_lines > 0);
    let masked = if retry {
        mask_value_controls(src)
    } else {
        None
    };
    let mut head = match masked.map(|m| parse_request_from(&m, Some(src), cfg)) {
        Some(Ok(mut h))
            if first
                .as_ref()
                .map_or(true, |f| h.ignored_header_lines < f.ignored_header_lines) =>
        {
            h.lenient_header_values = true;
            h
        }
        _ => first?,
    };
    head.obs_fold = unfolded.is_some();
    head.higher_minor = lowered.is_some();
    Ok(head)
}

/// The strict parser, then the lenient request-line fallback. `orig`: the
/// unmasked bytes when `s` is a masked copy (see [`mask_value_controls`]).
fn parse_request_from(s: &[u8], orig: Option<&[u8]>, cfg: &HttpConfig) -> Result<Head, HeadError> {
    match parse_request_strict(s, orig, cfg) {
        Ok(h) => Ok(h),
        Err(e) => match parse_request_lenient(s, orig, cfg) {
            Some(r) => r,
            None => Err(e),
        },
    }
}

fn parse_request_strict(
    s: &[u8],
    orig: Option<&[u8]>,
    cfg: &HttpConfig,
) -> Result<Head, HeadError> {
    let mut storage = [MaybeUninit::<httparse::Header<'_>>::uninit(); MAX_HEADERS_LIMIT];
    let mut req = httparse::Request::new(&mut []);
    match parser_config().parse_request_with_uninit_headers(
        &mut req,
        s,
        &mut storage[..header_slots(cfg)],
    ) {
        Ok(httparse::Status::Complete(_)) => {}
        Ok(httparse::Status::Partial) => return Err(HeadError::Syntax),
        Err(e) => return Err(map_err(e)),
    }
    let (Some(method), Some(url), Some(minor)) = (req.method, req.path, req.version) else {
        return Err(HeadError::Syntax);
    };
    let start = StartLine::Request {
        method: method.to_owned(),
        url: url.to_owned(),
    };
    Ok(match orig {
        Some(o) => build(start, minor, &unmask(req.headers, s, o), cfg),
        None => build(start, minor, req.headers, cfg),
    })
}

/// The lenient request-line fallback: `None` when it does not apply (the
/// request line is fine for httparse, or is not `TOKEN SP target SP HTTP/1.x`).
fn parse_request_lenient(
    s: &[u8],
    orig: Option<&[u8]>,
    cfg: &HttpConfig,
) -> Option<Result<Head, HeadError>> {
    let lf = s.iter().position(|&b| b == b'\n')?;
    if strict_request_line_ok(&s[..=lf]) {
        return None;
    }
    let line = lenient_request_line(&s[..lf])?;
    let rest = &s[lf + 1..];
    // The header lines as sent (masking is one for one: same offsets).
    let orig_rest = orig.map(|o| &o[lf + 1..]);
    let scratch = canonical_request(&line, rest);
    let url = match std::str::from_utf8(line.url) {
        Ok(u) => u.to_owned(),
        Err(_) => latin1(line.url),
    };
    let start = StartLine::Request {
        method: latin1(line.method),
        url,
    };
    let parse = |ignore_invalid, start| {
        parse_canonical(
            &scratch,
            rest,
            orig_rest,
            ignore_invalid,
            start,
            line.minor,
            cfg,
        )
    };
    let r = match parse(false, start.clone()) {
        // Retry dropping the malformed header lines.
        Err(HeadError::Syntax) => parse(true, start),
        r => r,
    };
    Some(r)
}

/// Parses the header lines of a canonical request head (`rest`: the bytes
/// after the original request line) into a head with `start`;
/// `ignore_invalid`: drop malformed header lines (and count them).
fn parse_canonical(
    scratch: &[u8],
    rest: &[u8],
    orig_rest: Option<&[u8]>,
    ignore_invalid: bool,
    start: StartLine,
    minor: u8,
    cfg: &HttpConfig,
) -> Result<Head, HeadError> {
    let mut storage = [MaybeUninit::<httparse::Header<'_>>::uninit(); MAX_HEADERS_LIMIT];
    let mut req = httparse::Request::new(&mut []);
    let config = if ignore_invalid {
        lenient_config()
    } else {
        parser_config()
    };
    match config.parse_request_with_uninit_headers(
        &mut req,
        scratch,
        &mut storage[..header_slots(cfg)],
    ) {
        Ok(httparse::Status::Complete(_)) => {}
        Ok(httparse::Status::Partial) => return Err(HeadError::Syntax),
        Err(e) => return Err(map_err(e)),
    }
    // One header per line (folds are gone); the last line is the empty one.
    let lines = rest
        .iter()
        .filter(|&&b| b == b'\n')
        .count()
        .saturating_sub(1);
    let dropped = lines.saturating_sub(req.headers.len()) as u64;
    let mut h = match orig_rest {
        // The header lines sit at the end of the scratch copy.
        Some(o) => build(
            start,
            minor,
            &unmask(req.headers, &scratch[scratch.len() - rest.len()..], o),
            cfg,
        ),
        None => build(start, minor, req.headers, cfg),
    };
    h.lenient_request_line = true;
    h.ignored_header_lines = dropped;
    Ok(h)
}

/// httparse settings for the header lines after a lenient request line.
fn lenient_config() -> httparse::ParserConfig {
    let mut c = parser_config();
    c.ignore_invalid_headers_in_requests(true);
    c
}

/// Whether httparse accepts `line` (a request line with its LF) as a request line.
fn strict_request_line_ok(line: &[u8]) -> bool {
    let mut req = httparse::Request::new(&mut []);
    // Partial: the line was fine and the parser wants the header lines.
    matches!(
        parser_config().parse_request(&mut req, line),
        Ok(httparse::Status::Partial)
    )
}

/// A request line read by the lenient grammar.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct LenientLine<'a> {
    method: &'a [u8],
    url: &'a [u8],
    minor: u8,
}

/// `TOKEN SP target SP HTTP/1.x` (`line` without its LF; a final CR is
/// dropped). The target is everything between the first and the last SP:
/// not empty, no CR, LF or NUL, no whitespace at either end, and no word of it
/// starts with `HTTP/` (so `GET / HTTP/5.6 x HTTP/1.1` stays an error).
fn lenient_request_line(line: &[u8]) -> Option<LenientLine<'_>> {
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    let first = line.iter().position(|&b| b == b' ')?;
    let last = line.iter().rposition(|&b| b == b' ')?;
    let method = &line[..first];
    if method.is_empty() || !method.iter().all(|&b| super::detect::is_tchar(b)) || last <= first {
        return None;
    }
    let minor = match &line[last + 1..] {
        b"HTTP/1.0" => 0,
        b"HTTP/1.1" => 1,
        _ => return None,
    };
    let url = &line[first + 1..last];
    let ws = |b: &u8| *b == b' ' || *b == b'\t';
    if url.is_empty()
        || url.first().is_some_and(ws)
        || url.last().is_some_and(ws)
        || url.iter().any(|&b| matches!(b, b'\r' | b'\n' | 0))
        || url.split(|&b| b == b' ').any(|w| w.starts_with(b"HTTP/"))
    {
        return None;
    }
    Some(LenientLine { method, url, minor })
}

/// Whether an incomplete first line (no LF yet) may still become a lenient
/// request line: `TOKEN SP`, then no CR (except last), LF or NUL, and every
/// word starting with `HTTP/` is the last one and a prefix of `HTTP/1.0` or
/// `HTTP/1.1`.
fn lenient_line_prefix(s: &[u8]) -> bool {
    let Some(sp) = s.iter().position(|&b| b == b' ') else {
        return s.iter().all(|&b| super::detect::is_tchar(b));
    };
    let rest = &s[sp + 1..];
    let rest = rest.strip_suffix(b"\r").unwrap_or(rest);
    if sp == 0
        || !s[..sp].iter().all(|&b| super::detect::is_tchar(b))
        || rest.iter().any(|&b| matches!(b, b'\r' | b'\n' | 0))
    {
        return false;
    }
    let line_ended = s.ends_with(b"\r");
    let mut words = rest.split(|&b| b == b' ').peekable();
    while let Some(w) = words.next() {
        if !w.starts_with(b"HTTP/") {
            continue;
        }
        let version_ok = if line_ended {
            w == b"HTTP/1.0" || w == b"HTTP/1.1"
        } else {
            b"HTTP/1.0".starts_with(w) || b"HTTP/1.1".starts_with(w)
        };
        if words.peek().is_some() || !version_ok {
            return false;
        }
    }
    true
}

/// The head with its request line replaced by `METHOD / HTTP/1.x`, for
/// httparse to read the header lines (`rest` starts after the request line).
fn canonical_request(line: &LenientLine<'_>, rest: &[u8]) -> Vec<u8> {
    let mut v = Vec::with_capacity(line.method.len() + 12 + rest.len());
    v.extend_from_slice(line.method);
    v.extend_from_slice(b" / HTTP/1.");
    v.push(b'0' + line.minor);
    v.extend_from_slice(b"\r\n");
    v.extend_from_slice(rest);
    v
}

/// An HTTP/0.9 request line, `METHOD SP target` with no version (`line`
/// without its LF; a final CR is dropped): method a token, target one word
/// of visible bytes that does not contain `HTTP/` (so neither `GET HTTP/1.1`,
/// a request line missing its target, nor `GET /HTTP/1.1`, one missing a space,
/// is one: both are broken HTTP/1.x heads whose header lines follow). Such a
/// request has no header section and no body: its head ends with this line.
pub(crate) fn http09_request_line(line: &[u8]) -> Option<StartLine> {
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    let sp = line.iter().position(|&b| b == b' ')?;
    let (method, target) = (&line[..sp], &line[sp + 1..]);
    // Runs on every request line: the usual one ends with its version, so its
    // "target" holds `HTTP/` and it is not HTTP/0.9, told without reading the target.
    if target.len() >= 8 && target[target.len() - 8..].starts_with(b"HTTP/") {
        return None;
    }
    if method.is_empty()
        || !method.iter().all(|&b| super::detect::is_tchar(b))
        || target.is_empty()
        || !target.iter().all(|&b| b > b' ' && b != 0x7f)
        || memchr::memmem::find(target, b"HTTP/").is_some()
    {
        return None;
    }
    Some(StartLine::Request {
        method: latin1(method),
        url: latin1(target),
    })
}

/// The head of an HTTP/0.9 request: its start line, nothing else.
pub(crate) fn http09_head(start: StartLine) -> Head {
    let mut h = build(start, 0, &[], &HttpConfig::default());
    h.version = "0.9";
    h
}

/// Whether bytes that failed validation as the start of a head may still be a
/// delimited head that [`parse_broken`] reads: text only (no control bytes but
/// CR, LF and HTAB), a request line starting with a visible byte, a status
/// line starting with `HTTP/`. Garbage with binary bytes stays an error at once.
pub(crate) fn broken_head_plausible(side_is_client: bool, s: &[u8]) -> bool {
    let text = s
        .iter()
        .all(|&b| b >= b' ' && b != 0x7f || matches!(b, b'\r' | b'\n' | b'\t'));
    let start_ok = if side_is_client {
        s.first().is_some_and(|&b| b > b' ' && b != 0x7f)
    } else {
        let n = s.len().min(5);
        s[..n] == b"HTTP/"[..n]
    };
    text && start_ok
}

/// Reads a complete head (`s` up to its empty line) that the strict and
/// lenient parsers rejected, as Zeek and llhttp's lenient modes do: what is
/// there is kept, so the message can be emitted with `parseError` and the
/// peer's answer still pairs with it. `None` when `s` is not text (see
/// [`broken_head_plausible`]) or a status line does not start with `HTTP/`.
///
/// * Request line: the method is the first word and must be a token (else
///   `None`), the version the last word when it starts with `HTTP`, the url
///   everything between (possibly empty, e.g. `GET HTTP/1.1`).
/// * Status line: `HTTP/x.y`, then the status code when it is three digits
///   (0 otherwise), then the reason phrase.
/// * Header lines: `name: value` with a token name are kept; any other line
///   (or one holding a bare CR) is dropped and counted in `ignored_header_lines`.
///
/// The `parseError` names the first thing that was wrong: `invalid-request-line`, `invalid-version`, `invalid-status-line` or
/// `invalid-header`. An unreadable version is reported as `httpVersion` 1.1
/// (`1.0` when it starts with `HTTP/1.0`).
pub(crate) fn parse_broken(side_is_client: bool, s: &[u8], cfg: &HttpConfig) -> Option<Head> {
    let s = &s[super::detect::leading_newlines(s)..];
    if !broken_head_plausible(side_is_client, s) {
        return None;
    }
    let unfolded = unfold(s);
    let src = unfolded.as_deref().unwrap_or(s);
    let mut lines = src
        .split(|&b| b == b'\n')
        .map(|l| l.strip_suffix(b"\r").unwrap_or(l));
    let first = lines.next()?;
    let mut error: Option<&'static str> = None;
    let version_of = |v: &[u8], error: &mut Option<&'static str>| -> u8 {
        match v {
            b"HTTP/1.1" => 1,
            b"HTTP/1.0" => 0,
            // A higher 1.x minor is read as 1.1 (see the module docs).
            [b'H', b'T', b'T', b'P', b'/', b'1', b'.', b'2'..=b'9'] => 1,
            _ => {
                error.get_or_insert("invalid-version");
                u8::from(!v.starts_with(b"HTTP/1.0"))
            }
        }
    };
    let (start, minor) = if side_is_client {
        let sp = first.iter().position(|&b| b == b' ');
        let method = &first[..sp.unwrap_or(first.len())];
        // Not a token: not a request line at all (e.g. a stray header line).
        if method.is_empty() || !method.iter().all(|&b| super::detect::is_tchar(b)) {
            return None;
        }
        let rest = sp.map_or(&b""[..], |p| &first[p + 1..]);
        // The last word is the version when it starts like one (`HTTP`, `HTTP/1.`).
        let (url, minor) = match rest.iter().rposition(|&b| b == b' ') {
            Some(p) if rest[p + 1..].starts_with(b"HTTP") => {
                let url = &rest[..p];
                if url.is_empty() || url.contains(&b' ') {
                    error.get_or_insert("invalid-request-line");
                }
                (url, version_of(&rest[p + 1..], &mut error))
            }
            _ if rest.starts_with(b"HTTP") => {
                // `GET HTTP/1.1`: no request-target.
                error.get_or_insert("invalid-request-line");
                (&b""[..], version_of(rest, &mut error))
            }
            _ => {
                error.get_or_insert("invalid-version");
                (rest, 1)
            }
        };
        let url = match std::str::from_utf8(url) {
            Ok(u) => u.to_owned(),
            Err(_) => latin1(url),
        };
        (
            StartLine::Request {
                method: latin1(method),
                url,
            },
            minor,
        )
    } else {
        let mut words = first.splitn(3, |&b| b == b' ');
        let v = words.next().unwrap_or_default();
        if !v.starts_with(b"HTTP/") {
            return None;
        }
        let minor = version_of(v, &mut error);
        let code = words.next().unwrap_or_default();
        let status = match code {
            [a, b, c] if [a, b, c].iter().all(|d| d.is_ascii_digit()) => {
                u16::from(a - b'0') * 100 + u16::from(b - b'0') * 10 + u16::from(c - b'0')
            }
            _ => {
                error.get_or_insert("invalid-status-line");
                0
            }
        };
        let reason = latin1(words.next().unwrap_or_default());
        (StartLine::Response { status, reason }, minor)
    };
    let mut raw: Vec<httparse::Header<'_>> = Vec::new();
    let mut ignored = 0u64;
    for line in lines {
        if line.is_empty() {
            break;
        }
        // A bare CR inside a line could hide a second header from us: drop the line.
        let bare_cr = line.contains(&b'\r');
        let header = line
            .iter()
            .position(|&b| b == b':')
            .filter(|_| !bare_cr)
            .and_then(|c| {
                let name = std::str::from_utf8(&line[..c]).ok()?;
                let ok = !name.is_empty() && name.bytes().all(super::detect::is_tchar);
                let value = line[c + 1..].trim_ascii();
                ok.then_some(httparse::Header { name, value })
            });
        match header {
            Some(h) if raw.len() < header_slots(cfg) => raw.push(h),
            _ => {
                error.get_or_insert("invalid-header");
                ignored += 1;
            }
        }
    }
    let mut head = build(start, minor, &raw, cfg);
    head.obs_fold = unfolded.is_some();
    head.ignored_header_lines = ignored;
    head.parse_error = Some(error.unwrap_or("invalid-header"));
    Some(head)
}

/// Parses a response head; `s` holds exactly the head (up to its empty line).
/// (The engine delimits heads with [`super::detect::find_head_end`], which finds
/// their shape on the way; this form is for tests.)
#[cfg(test)]
pub(crate) fn parse_response(s: &[u8], cfg: &HttpConfig) -> Result<Head, HeadError> {
    parse_response_shaped(s, &HeadShape::of(s), cfg)
}

/// Parses a response head (`s` holds exactly the head) whose [`HeadShape`] is known (see
/// [`parse_request_shaped`]).
pub(crate) fn parse_response_shaped(
    s: &[u8],
    shape: &HeadShape,
    cfg: &HttpConfig,
) -> Result<Head, HeadError> {
    match parse_clean(false, s, shape, cfg) {
        Some(h) => Ok(h),
        None => parse_response_general(s, shape, cfg),
    }
}

/// [`parse_response_shaped`] for a head that is not in [`parse_clean`]'s shape.
fn parse_response_general(
    s: &[u8],
    shape: &HeadShape,
    cfg: &HttpConfig,
) -> Result<Head, HeadError> {
    let unfolded = shape.obs_fold.then(|| unfold(s)).flatten();
    let src = unfolded.as_deref().unwrap_or(s);
    let lowered = lower_minor(false, src, shape.first_lf);
    let src = lowered.as_deref().unwrap_or(src);
    let mut head = match parse_response_from(src, None, shape.first_lf, cfg) {
        Ok(h) => h,
        Err(e) => {
            let Some(masked) = mask_value_controls(src) else {
                return Err(e);
            };
            let mut h =
                parse_response_from(&masked, Some(src), shape.first_lf, cfg).map_err(|_| e)?;
            h.lenient_header_values = true;
            h
        }
    };
    head.obs_fold = unfolded.is_some();
    head.higher_minor = lowered.is_some();
    Ok(head)
}

/// Parses an unfolded response head; `orig` as for [`parse_request_from`];
/// `first_lf`: the index of the first LF in `src`.
fn parse_response_from(
    src: &[u8],
    orig: Option<&[u8]>,
    first_lf: Option<usize>,
    cfg: &HttpConfig,
) -> Result<Head, HeadError> {
    let mut storage = [MaybeUninit::<httparse::Header<'_>>::uninit(); MAX_HEADERS_LIMIT];
    let mut res = httparse::Response::new(&mut []);
    match parser_config().parse_response_with_uninit_headers(
        &mut res,
        src,
        &mut storage[..header_slots(cfg)],
    ) {
        Ok(httparse::Status::Complete(_)) => {}
        Ok(httparse::Status::Partial) => return Err(HeadError::Syntax),
        Err(e) => return Err(map_err(e)),
    }
    let (Some(minor), Some(status)) = (res.version, res.code) else {
        return Err(HeadError::Syntax);
    };
    let start = StartLine::Response {
        status,
        reason: raw_reason(orig.unwrap_or(src), first_lf),
    };
    Ok(match orig {
        Some(o) => build(start, minor, &unmask(res.headers, src, o), cfg),
        None => build(start, minor, res.headers, cfg),
    })
}

/// A copy of `s` whose start-line version `HTTP/1.<d>`, `d` in 2..=9, reads `HTTP/1.1`;
/// `None` when the version is anything else (see the module docs). Works on a head that
/// is still incomplete: a request line without its line end yet is judged by what is
/// there (if a digit follows later, the whole head is checked again and fails as before).
/// `first_lf`: the index of the first LF in `s` (`None`: there is none).
fn lower_minor(side_is_client: bool, s: &[u8], first_lf: Option<usize>) -> Option<Vec<u8>> {
    let higher =
        |v: &[u8]| v.len() == 8 && v.starts_with(b"HTTP/1.") && (b'2'..=b'9').contains(&v[7]);
    let at = if side_is_client {
        // The version is the request line's last word.
        let line = &s[..first_lf.unwrap_or(s.len())];
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        let start = line.len().checked_sub(9)?;
        if line[start] != b' ' || !higher(&line[start + 1..]) {
            return None;
        }
        line.len() - 1
    } else {
        // The status line starts with the version, then SP.
        if s.len() < 8 || !higher(&s[..8]) || s.get(8).is_some_and(|&b| b != b' ') {
            return None;
        }
        7
    };
    let mut copy = s.to_vec();
    copy[at] = b'1';
    Some(copy)
}

/// Control bytes a header value may hold leniently: every C0 control and DEL
/// except HTAB (valid), NUL, CR and LF (refused: see the module docs).
fn is_value_control(b: u8) -> bool {
    matches!(b, 0x01..=0x08 | 0x0b | 0x0c | 0x0e..=0x1f | 0x7f)
}

/// A copy of `s` with every [`is_value_control`] byte after the start line
/// replaced by `0x80`; `None` when there is none. Same length as `s`.
fn mask_value_controls(s: &[u8]) -> Option<Vec<u8>> {
    let start = memchr::memchr(b'\n', s)? + 1;
    if !s[start..].iter().any(|&b| is_value_control(b)) {
        return None;
    }
    let mut v = s.to_vec();
    for b in &mut v[start..] {
        if is_value_control(*b) {
            *b = 0x80;
        }
    }
    Some(v)
}

/// `raw` (slices of `scratch`, a masked copy) with names and values read back
/// from `orig` at the same offsets.
fn unmask<'a>(
    raw: &[httparse::Header<'_>],
    scratch: &[u8],
    orig: &'a [u8],
) -> Vec<httparse::Header<'a>> {
    let at = |p: &[u8]| -> &'a [u8] {
        (p.as_ptr() as usize)
            .checked_sub(scratch.as_ptr() as usize)
            .and_then(|off| orig.get(off..off + p.len()))
            .unwrap_or_default()
    };
    raw.iter()
        .map(|h| httparse::Header {
            // Names are tokens, never masked: the same (UTF-8) bytes.
            name: std::str::from_utf8(at(h.name.as_bytes())).unwrap_or_default(),
            value: at(h.value),
        })
        .collect()
}

/// A copy of `s` with the line break (`CR? LF`) of every obsolete line fold
/// (`CR? LF 1*(SP / HTAB)` after a header line) removed, its whitespace kept;
/// `None` when there is none. Never longer than `s`.
fn unfold(s: &[u8]) -> Option<Vec<u8>> {
    // Folds continue a header line, so they come after the start line's LF.
    let start = memchr::memchr(b'\n', s)? + 1;
    let is_fold = |p: usize| s[p] == b'\n' && matches!(s.get(p + 1), Some(b' ' | b'\t'));
    // Runs on every head: hop from line end to line end (a vectorised byte search)
    // instead of testing every position.
    let first = memchr::memchr_iter(b'\n', &s[start..])
        .map(|i| start + i)
        .find(|&nl| matches!(s.get(nl + 1), Some(b' ' | b'\t')))?;
    let mut out = Vec::with_capacity(s.len());
    out.extend_from_slice(&s[..first]);
    let mut i = first;
    while i < s.len() {
        if is_fold(i) {
            if out.last() == Some(&b'\r') {
                out.pop();
            }
            // The whitespace that follows is copied as it is.
            i += 1;
            continue;
        }
        out.push(s[i]);
        i += 1;
    }
    Some(out)
}

/// The reason phrase straight from the status line, latin-1 decoded
/// (httparse drops reasons with obs-text). `first_lf`: the index of the first
/// LF in `s`.
fn raw_reason(s: &[u8], first_lf: Option<usize>) -> String {
    let skip = super::detect::leading_newlines(s);
    let s = &s[skip..];
    let end = match first_lf {
        // The status line's end is known unless empty lines come first.
        Some(lf) if skip == 0 => lf,
        _ => memchr::memchr(b'\n', s).unwrap_or(s.len()),
    };
    let mut line = &s[..end];
    if let [rest @ .., b'\r'] = line {
        line = rest;
    }
    // "HTTP/1.1 200 " is 13 bytes.
    latin1(line.get(13..).unwrap_or(&[]))
}

/// Latin-1 decoding: each byte becomes the char of the same code point.
pub(crate) fn latin1(b: &[u8]) -> String {
    if b.is_ascii() {
        // SAFETY: ASCII is valid UTF-8 (and latin-1 and UTF-8 agree on it). Checked
        // conversion would scan every header value a second time.
        unsafe { String::from_utf8_unchecked(b.to_vec()) }
    } else {
        b.iter().map(|&c| c as char).collect()
    }
}

/// A header value: latin-1.
///
/// A value never holds a line break: every head is unfolded ([`unfold`]) before
/// httparse reads it, and httparse ends a value at any other LF (and refuses a
/// bare CR); [`parse_broken`] splits its lines at every LF and drops lines with
/// a CR.
fn header_value(v: &[u8]) -> String {
    debug_assert!(
        !v.iter().any(|&b| b == b'\r' || b == b'\n'),
        "a header value holds a line break: {v:?}"
    );
    latin1(v)
}

/// A header value as on the wire, for [`HeadBuilder::add`].
#[derive(Clone, Copy, Debug)]
enum WireValue<'a> {
    /// Bytes known to be ASCII (the clean shape's value scan tells), so decoding them is a
    /// copy without another look at every byte.
    Ascii(&'a str),
    /// Any bytes, decoded as latin-1 ([`header_value`]).
    Latin1(&'a [u8]),
}

impl<'a> WireValue<'a> {
    #[inline(always)]
    fn bytes(self) -> &'a [u8] {
        match self {
            WireValue::Ascii(s) => s.as_bytes(),
            WireValue::Latin1(b) => b,
        }
    }

    #[inline(always)]
    fn decode(self) -> String {
        match self {
            // No line break either: the scan stopped at the first control byte but HTAB.
            WireValue::Ascii(s) => s.to_owned(),
            WireValue::Latin1(b) => header_value(b),
        }
    }
}

fn build(start: StartLine, minor: u8, raw: &[httparse::Header<'_>], cfg: &HttpConfig) -> Head {
    let mut b = HeadBuilder::new(cfg, raw.len());
    for h in raw {
        let (name, common) = header_name_indexed(h.name);
        b.add(name, common, WireValue::Latin1(h.value));
    }
    b.finish(start, minor)
}

/// Index in [`COMMON_NAMES`] of `name` (checked at compile time).
const fn common_index(name: &str) -> usize {
    let mut i = 0;
    while i < COMMON_NAMES.len() {
        let (a, b) = (COMMON_NAMES[i].as_bytes(), name.as_bytes());
        if a.len() == b.len() {
            let mut k = 0;
            while k < a.len() && a[k] == b[k] {
                k += 1;
            }
            if k == a.len() {
                return i;
            }
        }
        i += 1;
    }
    panic!("not in COMMON_NAMES");
}

const CONTENT_LENGTH: usize = common_index("content-length");
const TRANSFER_ENCODING: usize = common_index("transfer-encoding");
const CONNECTION: usize = common_index("connection");
const UPGRADE: usize = common_index("upgrade");
const SET_COOKIE: usize = common_index("set-cookie");
const _: () = assert!(
    COMMON_NAMES.len() <= 64,
    "HeadBuilder::common_seen is a u64"
);

/// Turns header lines, in order, into a [`Head`]'s header map and framing facts, by the
/// rules of the module docs ([`merge_header`], then [`redact`]), in one pass.
///
/// What makes it cheaper than merging and redacting each line on its own: a name from
/// [`COMMON_NAMES`] comes with its index, so the framing headers are told by an integer,
/// and whether the name is already in the map is one bit of `common_seen`; a name that is
/// not common is looked up only among earlier names when there is one that is not common
/// either. A redacted name's value is `"[REDACTED]"` from the start (redacting after the
/// merge gives the same map: a joined value becomes one `"[REDACTED]"`, and a list one per
/// line), so its wire value is never copied.
struct HeadBuilder<'c> {
    cfg: &'c HttpConfig,
    headers: Vec<(HeaderName, HeaderValue)>,
    /// Bit `i`: `COMMON_NAMES[i]` is in `headers`.
    common_seen: u64,
    /// Whether `headers` holds a name that is not in [`COMMON_NAMES`].
    any_uncommon: bool,
    content_length: ContentLength,
    te_seen: bool,
    te_last_chunked: bool,
    te_chunked_not_last: bool,
    conn_upgrade: bool,
    conn_close: bool,
    has_upgrade: bool,
}

impl<'c> HeadBuilder<'c> {
    fn new(cfg: &'c HttpConfig, lines: usize) -> Self {
        HeadBuilder {
            cfg,
            headers: Vec::with_capacity(lines),
            common_seen: 0,
            any_uncommon: false,
            content_length: ContentLength::Absent,
            te_seen: false,
            te_last_chunked: false,
            te_chunked_not_last: false,
            conn_upgrade: false,
            conn_close: false,
            has_upgrade: false,
        }
    }

    /// Adds one header line: `name` lower-cased, `common` its index in [`COMMON_NAMES`]
    /// (`None` exactly when it is not one of them), `value` as on the wire.
    #[inline]
    fn add(&mut self, name: HeaderName, common: Option<usize>, wire: WireValue<'_>) {
        let value = wire.bytes();
        match common {
            Some(CONTENT_LENGTH) => {
                self.content_length = merge_content_length(self.content_length, value)
            }
            Some(TRANSFER_ENCODING) => {
                self.te_seen = true;
                for coding in value.split(|&b| b == b',').map(trim) {
                    if coding.is_empty() {
                        continue;
                    }
                    if self.te_last_chunked {
                        self.te_chunked_not_last = true;
                    }
                    self.te_last_chunked = coding.eq_ignore_ascii_case(b"chunked");
                }
            }
            Some(CONNECTION) => {
                for t in value.split(|&b| b == b',').map(trim) {
                    self.conn_upgrade |= t.eq_ignore_ascii_case(b"upgrade");
                    self.conn_close |= t.eq_ignore_ascii_case(b"close");
                }
            }
            Some(UPGRADE) => self.has_upgrade = true,
            _ => {}
        }
        let seen = match common {
            Some(i) => {
                let bit = 1u64 << i;
                let seen = self.common_seen & bit != 0;
                self.common_seen |= bit;
                seen
            }
            None => {
                std::mem::replace(&mut self.any_uncommon, true)
                    && self.headers.iter().any(|(n, _)| same_bytes(n, &name))
            }
        };
        let redacted = self.cfg.redact_headers.contains(&name, common);
        if !seen {
            let v = if redacted {
                REDACTED.to_owned()
            } else {
                wire.decode()
            };
            let v = if common == Some(SET_COOKIE) {
                HeaderValue::List(vec![v])
            } else {
                HeaderValue::Single(v)
            };
            self.headers.push((name, v));
        } else if !redacted {
            merge_header(&mut self.headers, name, wire.decode());
        } else if let Some((_, HeaderValue::List(list))) =
            self.headers.iter_mut().find(|(n, _)| same_bytes(n, &name))
        {
            // A redacted list holds one `"[REDACTED]"` per line; a redacted single
            // value stays one `"[REDACTED]"` however many lines were joined into it.
            list.push(REDACTED.to_owned());
        }
    }

    fn finish(self, start: StartLine, minor: u8) -> Head {
        let transfer_coding = if !self.te_seen {
            TransferCoding::Absent
        } else if self.te_last_chunked && !self.te_chunked_not_last {
            TransferCoding::Chunked
        } else {
            TransferCoding::NotChunked
        };
        Head {
            start,
            version: if minor == 0 { "1.0" } else { "1.1" },
            headers: self.headers,
            content_length: self.content_length,
            transfer_coding,
            upgrade: self.has_upgrade && self.conn_upgrade,
            conn_close: self.conn_close,
            obs_fold: false,
            lenient_request_line: false,
            higher_minor: false,
            lenient_header_values: false,
            ignored_header_lines: 0,
            parse_error: None,
        }
    }
}

/// The header names whose values are redacted (`redactHeaders`), as given, and split for
/// the per-header test: the ones in the parser's table of common names (`COMMON_NAMES`) as
/// a bit set over its indexes, the rest as a list. Every header line asks `contains`; with
/// the six default names, comparing each line's name with each of them was about 2 % of a
/// replay's instructions, and a common name is one bit test.
///
/// Invariant: `common` and `uncommon` are a function of `names` (only [`RedactedHeaders::new`]
/// makes one), so the three always say the same.
#[derive(Clone, Debug, Default)]
pub struct RedactedHeaders {
    names: Vec<String>,
    /// Bit `i`: `COMMON_NAMES[i]` is redacted.
    common: u64,
    /// The redacted names not in [`COMMON_NAMES`].
    uncommon: Vec<String>,
}

// `common` has a bit per common name.
const _: () = assert!(COMMON_NAMES.len() <= 64);

impl RedactedHeaders {
    /// Redacts the headers named in `names` (compared case-insensitively).
    pub fn new(names: Vec<String>) -> Self {
        let mut common = 0u64;
        let mut uncommon = Vec::new();
        for n in &names {
            match common_header_name(n.as_bytes()) {
                Some(i) => common |= 1 << i,
                None => uncommon.push(n.clone()),
            }
        }
        RedactedHeaders {
            names,
            common,
            uncommon,
        }
    }

    /// The names, as given.
    pub fn names(&self) -> &[String] {
        &self.names
    }

    /// Whether `name` is redacted (case-insensitive, as [`redact`]); `common` is its index
    /// in [`COMMON_NAMES`], `None` exactly when it is not one of them.
    #[inline]
    fn contains(&self, name: &str, common: Option<usize>) -> bool {
        match common {
            Some(i) => self.common & (1 << i) != 0,
            None => self.uncommon.iter().any(|r| same_name(r, name)),
        }
    }
}

/// `a == b`, with the cheap tests first: header names of one head mostly differ in
/// length, or else in their first or last byte.
#[inline]
fn same_bytes(a: &str, b: &str) -> bool {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    a.len() == b.len() && a.first() == b.first() && a.last() == b.last() && a == b
}

/// `raw` lower-cased. Names common enough to be worth not allocating come from a static
/// table; anything else is lower-cased into its own string.
pub(crate) fn header_name(raw: &str) -> HeaderName {
    header_name_indexed(raw).0
}

/// [`header_name`], and the name's index in [`COMMON_NAMES`] when it is one.
fn header_name_indexed(raw: &str) -> (HeaderName, Option<usize>) {
    match common_header_name(raw.as_bytes()) {
        Some(i) => (COMMON_NAMES[i].into(), Some(i)),
        None => (raw.to_ascii_lowercase().into(), None),
    }
}

/// Header names common enough to be borrowed rather than allocated, lower-case,
/// sorted by length (then alphabetically): [`COMMON_BY_LEN`] indexes them by length.
const COMMON_NAMES: &[&str] = &[
    "age",
    "via",
    "date",
    "etag",
    "host",
    "vary",
    "accept",
    "cookie",
    "expect",
    "origin",
    "pragma",
    "server",
    "expires",
    "referer",
    "upgrade",
    "location",
    "connection",
    "keep-alive",
    "set-cookie",
    "user-agent",
    "traceparent",
    "content-type",
    "x-request-id",
    "accept-ranges",
    "authorization",
    "cache-control",
    "if-none-match",
    "last-modified",
    "content-length",
    "accept-encoding",
    "accept-language",
    "x-forwarded-for",
    "content-encoding",
    "content-language",
    "if-modified-since",
    "transfer-encoding",
    "x-forwarded-proto",
    "access-control-allow-origin",
];

/// Longest name in [`COMMON_NAMES`].
const COMMON_MAX_LEN: usize = 27;
const _: () = assert!(COMMON_MAX_LEN < 32, "CommonName holds 32 bytes");

/// `COMMON_BY_LEN[n]..COMMON_BY_LEN[n + 1]`: the range of [`COMMON_NAMES`] that are
/// `n` bytes long. Built (and the order checked) at compile time.
const COMMON_BY_LEN: [usize; COMMON_MAX_LEN + 2] = {
    let mut start = [0usize; COMMON_MAX_LEN + 2];
    let mut i = 0;
    let mut len = 0;
    while len <= COMMON_MAX_LEN + 1 {
        while i < COMMON_NAMES.len() && COMMON_NAMES[i].len() < len {
            i += 1;
        }
        start[len] = i;
        len += 1;
    }
    let mut k = 1;
    while k < COMMON_NAMES.len() {
        assert!(
            COMMON_NAMES[k - 1].len() <= COMMON_NAMES[k].len(),
            "COMMON_NAMES must be sorted by length"
        );
        k += 1;
    }
    assert!(COMMON_NAMES[COMMON_NAMES.len() - 1].len() == COMMON_MAX_LEN);
    start
};

/// A [`COMMON_NAMES`] entry as little-endian words (zero past its end), for
/// comparing a name with it eight bytes at a time.
#[derive(Clone, Copy)]
struct CommonName {
    /// The name's bytes.
    lower: [u64; 4],
    /// The name's length.
    len: usize,
    /// `0x20` at each byte that is a letter: a byte `r` of a raw name matches a
    /// byte `c` of `lower` exactly when `r | letter_bit == c` (for a letter, `r` is
    /// `c` or its upper case; for anything else, `r` is `c`).
    letters: [u64; 4],
}

const COMMON_WORDS: [CommonName; COMMON_NAMES.len()] = {
    let mut out = [CommonName {
        lower: [0; 4],
        len: 0,
        letters: [0; 4],
    }; COMMON_NAMES.len()];
    let mut i = 0;
    while i < COMMON_NAMES.len() {
        let name = COMMON_NAMES[i];
        let bytes = name.as_bytes();
        let mut lower = [0u64; 4];
        let mut letters = [0u64; 4];
        let mut k = 0;
        while k < bytes.len() {
            let b = bytes[k];
            assert!(!b.is_ascii_uppercase(), "COMMON_NAMES must be lower case");
            lower[k / 8] |= (b as u64) << (8 * (k % 8));
            if b.is_ascii_lowercase() {
                letters[k / 8] |= 0x20 << (8 * (k % 8));
            }
            k += 1;
        }
        out[i] = CommonName {
            lower,
            len: bytes.len(),
            letters,
        };
        i += 1;
    }
    out
};

/// The static copy of `raw` lower-cased, if it is one of [`COMMON_NAMES`]. Runs for
/// every header line of every head: `raw` is loaded once into four words and
/// compared, case-insensitively, with the few names of its length, a word at a
/// time, without lower-casing a copy.
fn common_header_name(raw: &[u8]) -> Option<usize> {
    let range = COMMON_BY_LEN.get(raw.len()..=raw.len() + 1)?;
    if range[0] == range[1] {
        return None;
    }
    // Names in the table are at most COMMON_MAX_LEN (< 32) bytes: `raw` fits.
    let mut buf = [0u8; 32];
    buf[..raw.len()].copy_from_slice(raw);
    let word = |k: usize| u64::from_le_bytes(*buf[8 * k..].first_chunk::<8>().unwrap_or(&[0; 8]));
    let w = [word(0), word(1), word(2), word(3)];
    (range[0]..range[1]).find(|&i| {
        let c = &COMMON_WORDS[i];
        ((w[0] | c.letters[0]) ^ c.lower[0])
            | ((w[1] | c.letters[1]) ^ c.lower[1])
            | ((w[2] | c.letters[2]) ^ c.lower[2])
            | ((w[3] | c.letters[3]) ^ c.lower[3])
            == 0
    })
}

/// Replaces the values of the headers named in `names` (case-insensitive).
pub(crate) fn redact(headers: &mut [(HeaderName, HeaderValue)], names: &[String]) {
    if names.is_empty() {
        return;
    }
    for (name, value) in headers.iter_mut() {
        if !names.iter().any(|r| same_name(r, name)) {
            continue;
        }
        match value {
            HeaderValue::Single(v) => *v = REDACTED.to_owned(),
            HeaderValue::List(list) => list.iter_mut().for_each(|v| *v = REDACTED.to_owned()),
        }
    }
}

/// `a` and `b` are equal but for ASCII case. Names of the same length often differ
/// in their first or last byte (`user-agent` and `set-cookie`, `x-request-id` and
/// `x-auth-token`): those two are compared before the whole names.
fn same_name(a: &str, b: &str) -> bool {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    a.len() == b.len()
        && a.first().map(u8::to_ascii_lowercase) == b.first().map(u8::to_ascii_lowercase)
        && a.last().map(u8::to_ascii_lowercase) == b.last().map(u8::to_ascii_lowercase)
        && a.eq_ignore_ascii_case(b)
}

/// Folds one `Content-Length` line (possibly a list, `"42, 42"`) into what was seen so far.
fn merge_content_length(seen: ContentLength, raw: &[u8]) -> ContentLength {
    let mut acc = seen;
    let mut any = false;
    for part in raw.split(|&b| b == b',') {
        let part = trim(part);
        any = true;
        let Some(n) = parse_decimal(part) else {
            return ContentLength::Invalid;
        };
        acc = match acc {
            ContentLength::Absent => ContentLength::Valid(n),
            ContentLength::Valid(m) if m == n => acc,
            _ => return ContentLength::Invalid,
        };
    }
    if any {
        acc
    } else {
        ContentLength::Invalid
    }
}

fn trim(mut s: &[u8]) -> &[u8] {
    while let [b' ' | b'\t', rest @ ..] = s {
        s = rest;
    }
    while let [rest @ .., b' ' | b'\t'] = s {
        s = rest;
    }
    s
}

/// 1*DIGIT as a `u64`; `None` if empty, not digits, or overflowing.
pub(crate) fn parse_decimal(s: &[u8]) -> Option<u64> {
    if s.is_empty() {
        return None;
    }
    let mut n: u64 = 0;
    for &b in s {
        if !b.is_ascii_digit() {
            return None;
        }
        n = n.checked_mul(10)?.checked_add((b - b'0') as u64)?;
    }
    Some(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg() -> HttpConfig {
        HttpConfig::default()
    }

    #[test]
    fn header_names_are_lower_cased_and_common_ones_borrowed() {
        use std::borrow::Cow;
        assert!(matches!(
            header_name("Content-Type"),
            Cow::Borrowed("content-type")
        ));
        assert!(matches!(header_name("HOST"), Cow::Borrowed("host")));
        assert!(matches!(header_name("X-Custom-Thing"), Cow::Owned(n) if n == "x-custom-thing"));
        let long = "X-".to_owned() + &"Ab".repeat(40);
        assert_eq!(header_name(&long), long.to_ascii_lowercase());
        // httparse lets obs-text through in names only as tokens; anything else still works.
        assert_eq!(header_name("Ünï"), "Ünï".to_ascii_lowercase());
        // Every common name, in any case, is the static copy; a byte that differs
        // by more than letter case (CR for `-`, `^`/`~`-like pairs) is not.
        for &name in COMMON_NAMES {
            let upper = name.to_ascii_uppercase();
            let mixed: String = name
                .chars()
                .enumerate()
                .map(|(i, c)| {
                    if i % 2 == 0 {
                        c.to_ascii_uppercase()
                    } else {
                        c
                    }
                })
                .collect();
            for variant in [name, &upper, &mixed] {
                assert!(
                    matches!(header_name(variant), Cow::Borrowed(n) if n == name),
                    "{variant}"
                );
            }
            for (i, b) in name.bytes().enumerate() {
                let mut v = name.as_bytes().to_vec();
                v[i] = if b == b'-' { b'\r' } else { b ^ 0x40 };
                let v = String::from_utf8(v).unwrap();
                assert!(matches!(header_name(&v), Cow::Owned(_)), "{v:?}");
                assert_eq!(header_name(&v), v.to_ascii_lowercase());
            }
            assert!(matches!(header_name(&format!("{name}x")), Cow::Owned(_)));
        }
        assert_eq!(header_name(""), "");
    }

    /// The header map and framing facts as [`HeadBuilder`] replaced them: merge each
    /// line with [`merge_header`], then [`redact`] the map.
    fn build_reference(raw: &[(&str, &[u8])], cfg: &HttpConfig) -> Vec<(HeaderName, HeaderValue)> {
        let mut headers = Vec::new();
        for (n, v) in raw {
            merge_header(&mut headers, header_name(n), latin1(v));
        }
        redact(&mut headers, cfg.redact_headers.names());
        headers
    }

    #[test]
    fn builder_equals_merge_then_redact() {
        let names = [
            "Set-Cookie",
            "set-cookie",
            "Cookie",
            "Host",
            "X-A",
            "x-a",
            "X-B",
            "Authorization",
            "X-Secret",
            "Age",
            "Accept",
            "X-Very-Long-Header-Name-Beyond-Thirty-Two",
        ];
        let values: [&[u8]; 4] = [b"v", b"[REDACTED]", b"caf\xe9", b""];
        let redactions: [Vec<String>; 3] = [
            vec![],
            HttpConfig::default().redact_headers.names().to_vec(),
            vec![
                "x-a".into(),
                "SET-COOKIE".into(),
                "x-secret".into(),
                "age".into(),
            ],
        ];
        let mut rng = 0x2545_f491_4f6c_dd1du64;
        let mut next = |n: usize| {
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            (rng % n as u64) as usize
        };
        for redact_headers in redactions {
            let cfg = HttpConfig {
                redact_headers: RedactedHeaders::new(redact_headers),
                ..cfg()
            };
            for _ in 0..3000 {
                let lines: Vec<(&str, &[u8])> = (0..next(7))
                    .map(|_| (names[next(names.len())], values[next(values.len())]))
                    .collect();
                let mut b = HeadBuilder::new(&cfg, 0);
                for (n, v) in &lines {
                    let (name, common) = header_name_indexed(n);
                    b.add(name, common, WireValue::Latin1(v));
                }
                let start = StartLine::Response {
                    status: 200,
                    reason: String::new(),
                };
                assert_eq!(
                    b.finish(start, 1).headers,
                    build_reference(&lines, &cfg),
                    "{lines:?}"
                );
            }
        }
    }

    /// Runs the fast path and the general (httparse) path on `head`, both sides: where
    /// the fast path answers, the general path must give the same head.
    fn check_fast_path(head: &[u8], cfg: &HttpConfig) -> bool {
        let shape = HeadShape::of(head);
        let mut took = false;
        for client in [true, false] {
            let Some(fast) = parse_clean(client, head, &shape, cfg) else {
                continue;
            };
            took = true;
            let general = if client {
                parse_request_general(head, &shape, cfg)
            } else {
                parse_response_general(head, &shape, cfg)
            };
            let general = general.unwrap_or_else(|e| {
                panic!(
                    "fast path read a head httparse refuses ({e:?}): {:?}",
                    String::from_utf8_lossy(head)
                )
            });
            assert_eq!(
                format!("{fast:?}"),
                format!("{general:?}"),
                "{:?}",
                String::from_utf8_lossy(head)
            );
        }
        took
    }

    #[test]
    fn fast_path_equals_httparse() {
        let heads: [&[u8]; 9] = [
            b"GET / HTTP/1.1\r\nContent-Lengt: 1\r\nAccept-Encodings: x\r\nX-Forwarded-Proto: y\r\nX_Y-: z\r\nabcdefghijklmnopqrstuvwxyzABCDE: 1\r\nabcdefghijklmnopqrstuvwxyzABCDEF: 2\r\nabcdefghijklmnopqrstuvwxyzABCDEFG: 3\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nDate: d\r\nVia: v\r\nETAG: e\r\nH: h\r\n\r\n",
            b"GET / HTTP/1.1\r\nHost:h\r\nA~b!c#d$e%f&g'h*i+j.k^l_m`n|o: 2\r\n\r\n",
            b"GET /a?b=1 HTTP/1.1\r\nHost: x:80\r\nUser-Agent: t/1\r\nAccept: */*\r\nX-Request-Id: 0a\r\n\r\n",
            b"POST /p HTTP/1.0\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\nConnection: Upgrade, close\r\nUpgrade: h2c\r\nSet-Cookie: a\r\nset-cookie: b\r\nCookie: c\r\nCOOKIE: d\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 5\r\nX-Long-Header-Name-Over-Thirty-Two-Bytes: v \t \r\nE:\r\nF: \t\r\n\r\n",
            b"HTTP/1.0 404 Not F\xf6und\r\nSet-Cookie: a=1\r\nAuthorization: x\r\nX: caf\xe9\r\n\r\n",
            b"HTTP/1.1 204\r\nA: 1\r\n\r\n",
            b"M-S /x HTTP/1.1\r\nx-a: 1\r\nX-A: 2\r\nA\tB: c\r\n\r\n",
        ];
        let bytes = [
            b'\t', b' ', b':', b'\r', b'\n', 0, 0x01, 0x0c, 0x1f, 0x7f, 0x80, 0xe9, b'A', b',',
            b'"', b'/', b'H', b'1', b'2', b'9',
        ];
        let small = HttpConfig {
            max_headers: 3,
            ..cfg()
        };
        let mut fast = 0;
        for head in heads {
            for cfg in [&cfg(), &small] {
                assert!(
                    check_fast_path(head, cfg) || cfg.max_headers == 3 || head.starts_with(b"M-S")
                );
                // Every byte replaced by each interesting byte, removed, or doubled.
                for i in 0..head.len() {
                    for &b in &bytes {
                        let mut h = head.to_vec();
                        h[i] = b;
                        fast += usize::from(check_fast_path(&h, cfg));
                    }
                    let mut h = head.to_vec();
                    h.remove(i);
                    fast += usize::from(check_fast_path(&h, cfg));
                    let mut h = head.to_vec();
                    h.insert(i, head[i]);
                    fast += usize::from(check_fast_path(&h, cfg));
                }
            }
        }
        // The mutations keep many heads in the clean shape (the test would prove nothing otherwise).
        assert!(fast > 2000, "{fast}");
    }

    fn single(s: &str) -> HeaderValue {
        HeaderValue::Single(s.to_owned())
    }

    #[test]
    fn node_header_rules() {
        let h = parse_request(
            b"GET /a?b HTTP/1.1\r\nHost: one\r\nHOST: two\r\nAccept: a\r\naccept: b\r\nCookie: x=1\r\n\
              Cookie: y=2\r\nX-Latin: caf\xe9\r\nContent-Type: a\r\ncontent-type: b\r\n\r\n",
            &HttpConfig {
                redact_headers: RedactedHeaders::default(),
                ..cfg()
            },
        )
        .unwrap();
        assert_eq!(
            h.start,
            StartLine::Request {
                method: "GET".into(),
                url: "/a?b".into()
            }
        );
        assert_eq!(h.version, "1.1");
        assert_eq!(
            h.headers,
            vec![
                ("host".into(), single("one")),
                ("accept".into(), single("a, b")),
                ("cookie".into(), single("x=1; y=2")),
                ("x-latin".into(), single("café")),
                ("content-type".into(), single("a")),
            ]
        );
    }

    #[test]
    fn set_cookie_list_and_redaction() {
        let h = parse_response(
            b"HTTP/1.0 404 Not F\xf6und\r\nSet-Cookie: a=1\r\nSet-Cookie: b=2\r\nAuthorization: x\r\nX: y\r\n\r\n",
            &cfg(),
        )
        .unwrap();
        assert_eq!(
            h.start,
            StartLine::Response {
                status: 404,
                reason: "Not Föund".into()
            }
        );
        assert_eq!(h.version, "1.0");
        assert_eq!(
            h.headers,
            vec![
                (
                    "set-cookie".into(),
                    HeaderValue::List(vec![REDACTED.into(), REDACTED.into()])
                ),
                ("authorization".into(), single(REDACTED)),
                ("x".into(), single("y")),
            ]
        );
    }

    #[test]
    fn obs_fold_in_responses() {
        let h = parse_response(b"HTTP/1.1 200 OK\r\nX: a\r\n  b\r\n\r\n", &cfg()).unwrap();
        assert_eq!(h.headers, vec![("x".into(), single("a  b"))]);
        assert!(h.obs_fold);
        let h = parse_response(b"HTTP/1.1 200 OK\r\nX: a b\r\n\r\n", &cfg()).unwrap();
        assert!(!h.obs_fold);
    }

    #[test]
    fn obs_fold_in_requests_is_unfolded() {
        // Zeek's obsolete-line-fold capture: the fold is the whole value.
        let head = b"POST / HTTP/1.1\r\nHost: target\r\nTransfer-Encoding:\r\n chunked\r\n\r\n";
        let h = parse_request(head, &cfg()).unwrap();
        assert!(h.obs_fold);
        assert_eq!(h.transfer_coding, TransferCoding::Chunked);
        assert_eq!(
            h.headers,
            vec![
                ("host".into(), single("target")),
                ("transfer-encoding".into(), single("chunked")),
            ]
        );
        // Several folds, tabs, bare LF; each fold's line break goes, its whitespace stays
        // (llhttp's value).
        let h = parse_request(b"GET / HTTP/1.1\nX: a\n\t b\n  c\nY: d\r\n\r\n", &cfg()).unwrap();
        assert_eq!(
            h.headers,
            vec![("x".into(), single("a\t b  c")), ("y".into(), single("d"))]
        );
        // A value that starts on the continuation line, and an empty one.
        let h = parse_request(b"GET / HTTP/1.1\r\nA:\r\n x\r\nB: \r\n \r\n\r\n", &cfg()).unwrap();
        assert_eq!(
            h.headers,
            vec![("a".into(), single("x")), ("b".into(), single(""))]
        );
        // Whitespace before the first header line is not a fold.
        assert!(parse_request(b"GET / HTTP/1.1\r\n X: a\r\n\r\n", &cfg()).is_err());
        // A fold does not repair a header name.
        assert!(parse_request(b"GET / HTTP/1.1\r\nname\r\n : value\r\n\r\n", &cfg()).is_err());
        // Every prefix of a folded head is a valid partial head.
        for cut in 0..head.len() {
            assert!(
                validate_partial(true, &head[..cut], &cfg()).is_ok(),
                "cut {cut}"
            );
        }
        assert_eq!(unfold(b"GET / HTTP/1.1\r\nX: a\r\n\r\n"), None);
        assert_eq!(
            unfold(b"GET / HTTP/1.1\r\nX: a\r\n \t b\r\n\r\n").as_deref(),
            Some(&b"GET / HTTP/1.1\r\nX: a \t b\r\n\r\n"[..])
        );
    }

    #[test]
    fn lenient_request_line_keeps_the_target() {
        // Zeek's http-connect capture: a space in the target, a header line without a colon.
        let head = b"CONNECT mailin03.sul.t-online.de:25 / HTTP/1.0\r\n\
                     Mozilla 4.0 (compatible; MSIE 5.01; Windows NT 5.0)\r\n\r\n";
        let h = parse_request(head, &cfg()).unwrap();
        assert_eq!(
            h.start,
            StartLine::Request {
                method: "CONNECT".into(),
                url: "mailin03.sul.t-online.de:25 /".into()
            }
        );
        assert_eq!(h.version, "1.0");
        assert!(h.lenient_request_line);
        assert_eq!(h.ignored_header_lines, 1);
        assert!(h.headers.is_empty());
        for cut in 0..head.len() {
            assert!(
                validate_partial(true, &head[..cut], &cfg()).is_ok(),
                "cut {cut}"
            );
        }
        // Headers are still read; a valid head needs no dropped lines.
        let h = parse_request(
            b"GET /a b?c d HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\n",
            &cfg(),
        )
        .unwrap();
        assert_eq!(
            h.start,
            StartLine::Request {
                method: "GET".into(),
                url: "/a b?c d".into()
            }
        );
        assert_eq!(h.content_length, ContentLength::Valid(2));
        assert_eq!(h.ignored_header_lines, 0);
        // A strict request line never takes the fallback.
        let h = parse_request(b"GET /x HTTP/1.1\r\nHost: x\r\n\r\n", &cfg()).unwrap();
        assert!(!h.lenient_request_line);
        // ... and a bad header line after it is still an error.
        assert!(parse_request(b"GET /x HTTP/1.1\r\nBad Header\r\n\r\n", &cfg()).is_err());
        // Not the lenient grammar: no target, other versions, whitespace at the
        // target's ends, NUL, a non-token method.
        for bad in [
            &b"GET HTTP/1.1\r\n\r\n"[..],
            b"GET / x HTTP/2.0\r\n\r\n",
            b"GET  / x HTTP/1.1\r\n\r\n",
            b"GET / x  HTTP/1.1\r\n\r\n",
            b"GET /\0 x HTTP/1.1\r\n\r\n",
            b"G(T / x HTTP/1.1\r\n\r\n",
            b"GET / x HTTP/1.1 \r\n\r\n",
            b"GET / x\rHTTP/1.1\r\n\r\n",
        ] {
            assert!(
                parse_request(bad, &cfg()).is_err(),
                "{:?}",
                String::from_utf8_lossy(bad)
            );
        }
        assert!(validate_partial(true, b"GET / x\0", &cfg()).is_err());
        assert!(validate_partial(true, b"GET / HTTP/5.6", &cfg()).is_err());
        assert!(validate_partial(true, b"GET / HTTP/1.1 x", &cfg()).is_err());
        assert!(validate_partial(true, b"GET / HTTP/1.", &cfg()).is_ok());
        assert!(validate_partial(true, b"GET /a b HTTP/1.", &cfg()).is_ok());
        assert!(validate_partial(true, b"GET /a b HTTP/1.1\r", &cfg()).is_ok());
        assert!(validate_partial(true, b"GET /a b HTTP/1.\r", &cfg()).is_err());
        assert!(parse_request(b"GET / HTTP/1.1 x HTTP/1.1\r\n\r\n", &cfg()).is_err());
        assert!(validate_partial(true, b"GET / HTTP/2.0\r\n", &cfg()).is_err());
    }

    #[test]
    fn control_bytes_in_values_are_kept_as_sent() {
        let h = parse_request(b"GET /u HTTP/1.1\r\nA: x\x0cy\r\nB: \x80z\r\n\r\n", &cfg()).unwrap();
        assert!(h.lenient_header_values);
        // 0x80 as sent stays 0x80 (latin-1), the masked byte is restored.
        assert_eq!(
            h.headers,
            vec![
                ("a".into(), single("x\x0cy")),
                ("b".into(), single("\u{80}z"))
            ]
        );
        // With a lenient request line (header lines read from a canonical copy) and a fold.
        let h = parse_request(
            b"GET /a b HTTP/1.1\r\nX: 1\x1f\r\n 2\r\nContent-Length: 3\r\n\r\n",
            &cfg(),
        )
        .unwrap();
        assert!(h.lenient_header_values && h.lenient_request_line && h.obs_fold);
        assert_eq!(h.headers[0], ("x".into(), single("1\x1f 2")));
        assert_eq!(h.content_length, ContentLength::Valid(3));
        let h = parse_response(b"HTTP/1.1 200 O\x01K\r\nA: \x02\r\n\r\n", &cfg());
        // A control byte in the status line is not a value: still an error.
        assert!(h.is_err());
        let h = parse_response(b"HTTP/1.1 200 OK\r\nA: \x02\r\n\r\n", &cfg()).unwrap();
        assert!(h.lenient_header_values);
        assert_eq!(h.headers, vec![("a".into(), single("\x02"))]);
        // Clean heads never take the path.
        assert!(
            !parse_request(b"GET / HTTP/1.1\r\nA: b\r\n\r\n", &cfg())
                .unwrap()
                .lenient_header_values
        );
        // Not in a name, and never NUL, CR or LF.
        for bad in [
            &b"GET / HTTP/1.1\r\nA\x0c: b\r\n\r\n"[..],
            b"GET / HTTP/1.1\r\nA: b\x00\r\n\r\n",
            b"GET / HTTP/1.1\r\nA: b\rc\r\n\r\n",
        ] {
            assert!(parse_request(bad, &cfg()).is_err(), "{bad:?}");
        }
        assert!(validate_partial(true, b"GET / HTTP/1.1\r\nA: \x0c", &cfg()).is_ok());
        assert!(validate_partial(false, b"HTTP/1.1 200 OK\r\nA: \x0c", &cfg()).is_ok());
        // Connection: close is read from the tokens.
        let h = parse_response(
            b"HTTP/1.1 200 OK\r\nConnection: keep-alive, Close\r\n\r\n",
            &cfg(),
        )
        .unwrap();
        assert!(h.conn_close);
    }

    #[test]
    fn framing_facts() {
        let h = parse_request(
            b"POST / HTTP/1.1\r\nContent-Length: 5, 5\r\nTransfer-Encoding: gzip\r\ntransfer-encoding: chunked\r\n\
              Expect: 100-Continue\r\nConnection: keep-alive, Upgrade\r\nUpgrade: websocket\r\n\r\n",
            &cfg(),
        )
        .unwrap();
        assert_eq!(h.content_length, ContentLength::Valid(5));
        assert_eq!(h.transfer_coding, TransferCoding::Chunked);
        assert!(h.upgrade);
        let cl = |v: &[u8]| merge_content_length(ContentLength::Absent, v);
        assert_eq!(cl(b"1, 2"), ContentLength::Invalid);
        assert_eq!(cl(b""), ContentLength::Invalid);
        assert_eq!(cl(b"-1"), ContentLength::Invalid);
        assert_eq!(cl(b"99999999999999999999999"), ContentLength::Invalid);
        assert_eq!(
            merge_content_length(ContentLength::Valid(3), b"4"),
            ContentLength::Invalid
        );
        let h = parse_request(
            b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked, gzip\r\n\r\n",
            &cfg(),
        )
        .unwrap();
        assert_eq!(h.transfer_coding, TransferCoding::NotChunked);
        let h = parse_request(
            b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked, chunked\r\n\r\n",
            &cfg(),
        )
        .unwrap();
        assert_eq!(h.transfer_coding, TransferCoding::NotChunked);
    }

    #[test]
    fn errors() {
        assert_eq!(
            parse_request(b"GET / HTTP/2.0\r\n\r\n", &cfg()).unwrap_err(),
            HeadError::Version
        );
        assert_eq!(
            parse_request(b"GET /\r\n\r\n", &cfg()).unwrap_err(),
            HeadError::Syntax
        );
        let small = HttpConfig {
            max_headers: 2,
            ..cfg()
        };
        assert_eq!(
            parse_request(b"GET / HTTP/1.1\r\na: 1\r\nb: 2\r\nc: 3\r\n\r\n", &small).unwrap_err(),
            HeadError::TooManyHeaders
        );
        assert!(validate_partial(true, b"GET / HTTP/1.1\r\nHos", &cfg()).is_ok());
        assert!(validate_partial(true, b"GET / HTTP/1.1\r\nH\x01", &cfg()).is_err());
        assert!(validate_partial(false, b"HTTX", &cfg()).is_err());
    }
}
