//! Message heads: request and status lines and header fields, parsed with
//! `httparse` from a slice that holds exactly one complete head, then turned
//! into the schema's header map.
//!
//! Header map rules (Node's `http.IncomingMessage.headers`): names are
//! lower-cased and kept in first-seen order; a repeated header from
//! [`DISCARD_DUPLICATES`] keeps its first value; `set-cookie` is a list;
//! repeated `cookie` values are joined with `"; "`, every other header with
//! `", "`. Values are decoded as latin-1 (one byte, one char), as Node does.
//! Obsolete line folding (accepted in responses only, as httparse allows)
//! becomes a single space. Redacted headers get the value `"[REDACTED]"`
//! (each element, for `set-cookie`).
//!
//! The framing facts (`Content-Length`, `Transfer-Encoding`,
//! `Connection: upgrade` with `Upgrade`) are read from every raw header line, not from the
//! de-duplicated map, so conflicting duplicates are seen.

use std::mem::MaybeUninit;

use super::HttpConfig;
use crate::message::HeaderValue;

/// Hard upper bound on `max_headers` (the header array lives on the stack).
pub(crate) const MAX_HEADERS_LIMIT: usize = 512;

/// The replacement text of a redacted header value.
pub const REDACTED: &str = "[REDACTED]";

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
    pub(crate) headers: Vec<(String, HeaderValue)>,
    pub(crate) content_length: ContentLength,
    pub(crate) transfer_coding: TransferCoding,
    /// `Upgrade` header with `Connection: upgrade`.
    pub(crate) upgrade: bool,
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
/// cannot be the start of a valid head.
pub(crate) fn validate_partial(
    side_is_client: bool,
    s: &[u8],
    cfg: &HttpConfig,
) -> Result<(), HeadError> {
    let mut storage = [MaybeUninit::<httparse::Header<'_>>::uninit(); MAX_HEADERS_LIMIT];
    let slots = &mut storage[..header_slots(cfg)];
    let r = if side_is_client {
        let mut req = httparse::Request::new(&mut []);
        parser_config().parse_request_with_uninit_headers(&mut req, s, slots)
    } else {
        let mut res = httparse::Response::new(&mut []);
        parser_config().parse_response_with_uninit_headers(&mut res, s, slots)
    };
    r.map(|_| ()).map_err(map_err)
}

/// Parses a request head; `s` holds exactly the head (up to its empty line).
pub(crate) fn parse_request(s: &[u8], cfg: &HttpConfig) -> Result<Head, HeadError> {
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
    Ok(build(start, minor, req.headers, cfg))
}

/// Parses a response head; `s` holds exactly the head (up to its empty line).
pub(crate) fn parse_response(s: &[u8], cfg: &HttpConfig) -> Result<Head, HeadError> {
    let mut storage = [MaybeUninit::<httparse::Header<'_>>::uninit(); MAX_HEADERS_LIMIT];
    let mut res = httparse::Response::new(&mut []);
    match parser_config().parse_response_with_uninit_headers(
        &mut res,
        s,
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
        reason: raw_reason(s),
    };
    Ok(build(start, minor, res.headers, cfg))
}

/// The reason phrase straight from the status line, latin-1 decoded
/// (httparse drops reasons with obs-text).
fn raw_reason(s: &[u8]) -> String {
    let s = &s[super::detect::leading_newlines(s)..];
    let end = s.iter().position(|&b| b == b'\n').unwrap_or(s.len());
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
        // ASCII is valid UTF-8.
        String::from_utf8_lossy(b).into_owned()
    } else {
        b.iter().map(|&c| c as char).collect()
    }
}

/// A header value: latin-1, obsolete line folds replaced by one space.
fn header_value(v: &[u8]) -> String {
    if !v.contains(&b'\n') {
        return latin1(v);
    }
    let mut out = String::with_capacity(v.len());
    let mut i = 0;
    while i < v.len() {
        let b = v[i];
        if b == b'\r' || b == b'\n' {
            // CR? LF followed by the fold's whitespace: one space.
            while i < v.len() && matches!(v[i], b'\r' | b'\n' | b' ' | b'\t') {
                i += 1;
            }
            out.push(' ');
            continue;
        }
        out.push(b as char);
        i += 1;
    }
    out
}

fn build(start: StartLine, minor: u8, raw: &[httparse::Header<'_>], cfg: &HttpConfig) -> Head {
    let mut headers: Vec<(String, HeaderValue)> = Vec::with_capacity(raw.len());
    let mut content_length = ContentLength::Absent;
    let mut te_seen = false;
    let mut te_last_chunked = false;
    let mut te_chunked_not_last = false;
    let mut conn_upgrade = false;
    let mut has_upgrade = false;

    for h in raw {
        let name = h.name.to_ascii_lowercase();
        let value = header_value(h.value);
        match name.as_str() {
            "content-length" => content_length = merge_content_length(content_length, h.value),
            "transfer-encoding" => {
                te_seen = true;
                for coding in value.split(',').map(|c| c.trim_matches([' ', '\t'])) {
                    if coding.is_empty() {
                        continue;
                    }
                    if te_last_chunked {
                        te_chunked_not_last = true;
                    }
                    te_last_chunked = coding.eq_ignore_ascii_case("chunked");
                }
            }
            "connection" => {
                conn_upgrade |= value
                    .split(',')
                    .any(|t| t.trim_matches([' ', '\t']).eq_ignore_ascii_case("upgrade"))
            }
            "upgrade" => has_upgrade = true,
            _ => {}
        }
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
                if DISCARD_DUPLICATES.contains(&n.as_str()) {
                    continue;
                }
                joined.push_str(if n == "cookie" { "; " } else { ", " });
                joined.push_str(&value);
            }
        }
    }
    redact(&mut headers, &cfg.redact_headers);

    let transfer_coding = if !te_seen {
        TransferCoding::Absent
    } else if te_last_chunked && !te_chunked_not_last {
        TransferCoding::Chunked
    } else {
        TransferCoding::NotChunked
    };
    Head {
        start,
        version: if minor == 0 { "1.0" } else { "1.1" },
        headers,
        content_length,
        transfer_coding,
        upgrade: has_upgrade && conn_upgrade,
    }
}

/// Replaces the values of the headers named in `names` (case-insensitive).
pub(crate) fn redact(headers: &mut [(String, HeaderValue)], names: &[String]) {
    if names.is_empty() {
        return;
    }
    for (name, value) in headers.iter_mut() {
        if !names.iter().any(|r| r.eq_ignore_ascii_case(name)) {
            continue;
        }
        match value {
            HeaderValue::Single(v) => *v = REDACTED.to_owned(),
            HeaderValue::List(list) => list.iter_mut().for_each(|v| *v = REDACTED.to_owned()),
        }
    }
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

    fn single(s: &str) -> HeaderValue {
        HeaderValue::Single(s.to_owned())
    }

    #[test]
    fn node_header_rules() {
        let h = parse_request(
            b"GET /a?b HTTP/1.1\r\nHost: one\r\nHOST: two\r\nAccept: a\r\naccept: b\r\nCookie: x=1\r\n\
              Cookie: y=2\r\nX-Latin: caf\xe9\r\nContent-Type: a\r\ncontent-type: b\r\n\r\n",
            &HttpConfig {
                redact_headers: vec![],
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
        assert_eq!(h.headers, vec![("x".into(), single("a b"))]);
        assert!(parse_request(b"GET / HTTP/1.1\r\nX: a\r\n  b\r\n\r\n", &cfg()).is_err());
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
