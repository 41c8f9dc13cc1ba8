//! Redaction of credentials in messages: headers, query parameters, JSON and form body fields.
//!
//! Privacy by default at the source: this runs once, in the HTTP stage, before any output or
//! log sees a message. The lists are the settings `redactHeaders`, `redactQueryParams` and
//! `redactBodyFields`; what the user lists is added to the defaults below, and `none` as the
//! first entry drops them (see [`effective_list`]).
//!
//! - **Query parameters** ([`redact_url`]): in the request-target's query (after the first
//!   `?`, before a `#`), the value of every parameter whose name matches becomes
//!   `[REDACTED]`. Names are compared case-insensitively after percent-decoding (and `+` as
//!   a space); everything else in the URL is kept byte for byte.
//! - **Form bodies** (`application/x-www-form-urlencoded`): the same rule over the body.
//! - **JSON bodies** ([`redact_json`]): the value of every object key that matches, at any
//!   depth, becomes the JSON string `"[REDACTED]"`. The scan is a streaming tokenizer, not a
//!   parser: it needs no valid document, so a body cut by `maxBodySize` (or by a capture gap)
//!   is still redacted as far as it goes, and a value cut in the middle is replaced up to the
//!   end. A string is a key when the next non-blank byte after it is `:`; keys are compared
//!   case-insensitively after decoding JSON escapes (`"pass\u0077ord"` is `password`). Every
//!   body that is not a form is scanned this way (a JSON body is often sent without its
//!   content type, and the scan only touches `"name": value` pairs).
//!
//! Invariants: never panics on any input; time is linear in the input (each byte is looked
//! at a bounded number of times; no recursion, so no depth limit is needed — nesting is a
//! counter); the output of a valid JSON document is a valid JSON document.

use crate::message::{HeaderValue, HttpMessage, MessageKind};

/// The replacement text of a redacted value.
pub const REDACTED: &str = "[REDACTED]";

// The default lists and how a given list combines with them are part of the settings
// contract, so they live with the settings table.
pub use tcp_sniffer_settings::value::{
    effective_list, DEFAULT_REDACT_BODY_FIELDS, DEFAULT_REDACT_HEADERS, DEFAULT_REDACT_QUERY_PARAMS,
};

/// What the HTTP stage redacts besides headers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Redaction {
    /// Lower-cased query parameter names (`redactQueryParams`, defaults included).
    pub query_params: Vec<String>,
    /// Lower-cased JSON keys and form field names (`redactBodyFields`, defaults included).
    pub body_fields: Vec<String>,
}

impl Default for Redaction {
    fn default() -> Self {
        Redaction {
            query_params: effective_list(DEFAULT_REDACT_QUERY_PARAMS, &[]),
            body_fields: effective_list(DEFAULT_REDACT_BODY_FIELDS, &[]),
        }
    }
}

impl Redaction {
    /// Redacts nothing (tests and tools that want the bytes as captured).
    pub fn none() -> Self {
        Redaction {
            query_params: Vec::new(),
            body_fields: Vec::new(),
        }
    }

    /// Redacts `url`'s query parameters in place.
    pub fn url(&self, url: &mut String) {
        if let Some(r) = redact_url(url, &self.query_params) {
            *url = r;
        }
    }

    /// Redacts a finished message: its URL's query parameters and its body's fields. A body
    /// that grows past `max_body` (a short value replaced by `"[REDACTED]"`) is cut back to
    /// `max_body` bytes and marked `truncated`.
    pub fn message(&self, msg: &mut HttpMessage, max_body: usize) {
        if let MessageKind::Request { url, .. } = &mut msg.kind {
            self.url(url);
        }
        if self.body_fields.is_empty() || msg.body.is_empty() {
            return;
        }
        let form = msg.headers.iter().any(|(n, v)| {
            n == "content-type" && matches!(v, HeaderValue::Single(t) if is_form_content_type(t))
        });
        let redacted = if form {
            redact_form(&msg.body, &self.body_fields)
        } else {
            redact_json(&msg.body, &self.body_fields)
        };
        if let Some(mut body) = redacted {
            if body.len() > max_body {
                body.truncate(max_body);
                msg.truncated = true;
            }
            msg.body = body;
        }
    }
}

fn is_form_content_type(t: &str) -> bool {
    let mime = t.split(';').next().unwrap_or("").trim_matches([' ', '\t']);
    mime.eq_ignore_ascii_case("application/x-www-form-urlencoded")
}

/// `url` with the values of the query parameters named in `names` replaced by
/// `[REDACTED]`, or `None` when nothing matched. Only the query (after the first `?`,
/// before the first `#` after it) is looked at; every other byte is kept.
pub fn redact_url(url: &str, names: &[String]) -> Option<String> {
    if names.is_empty() {
        return None;
    }
    let q = url.find('?')?;
    let end = url[q..].find('#').map_or(url.len(), |h| q + h);
    let query = &url.as_bytes()[q + 1..end];
    let red = redact_pairs(query, names)?;
    let mut out = String::with_capacity(url.len() + 16);
    out.push_str(&url[..=q]);
    // `redact_pairs` only replaces whole values with ASCII, at ASCII boundaries.
    out.push_str(&String::from_utf8_lossy(&red));
    out.push_str(&url[end..]);
    Some(out)
}

/// An `application/x-www-form-urlencoded` body with the named fields' values replaced by
/// `[REDACTED]`, or `None` when nothing matched.
pub fn redact_form(body: &[u8], names: &[String]) -> Option<Vec<u8>> {
    if names.is_empty() {
        return None;
    }
    redact_pairs(body, names)
}

/// `name=value` pairs separated by `&`: the values of matching names become `[REDACTED]`.
fn redact_pairs(s: &[u8], names: &[String]) -> Option<Vec<u8>> {
    let max_name = names.iter().map(String::len).max().unwrap_or(0);
    let mut out: Option<Vec<u8>> = None;
    let mut copied = 0;
    let mut start = 0;
    while start <= s.len() {
        let end = memchr::memchr(b'&', &s[start..]).map_or(s.len(), |e| start + e);
        let pair = &s[start..end];
        if let Some(eq) = memchr::memchr(b'=', pair) {
            let value_start = start + eq + 1;
            if value_start < end && name_matches_form(&pair[..eq], names, max_name) {
                let o = out.get_or_insert_with(|| Vec::with_capacity(s.len() + 16));
                o.extend_from_slice(&s[copied..value_start]);
                o.extend_from_slice(REDACTED.as_bytes());
                copied = end;
            }
        }
        start = end + 1;
    }
    let mut o = out?;
    o.extend_from_slice(&s[copied..]);
    Some(o)
}

/// Whether a percent-encoded (`+` = space) name is one of `names` (lower-case), ignoring case.
fn name_matches_form(raw: &[u8], names: &[String], max_name: usize) -> bool {
    // Each decoded byte takes at least one raw byte and at most three.
    if raw.is_empty() || raw.len() > max_name.saturating_mul(3) {
        return false;
    }
    if memchr::memchr2(b'%', b'+', raw).is_none() {
        return names.iter().any(|n| n.as_bytes().eq_ignore_ascii_case(raw));
    }
    let mut decoded = Vec::with_capacity(raw.len());
    let mut i = 0;
    while i < raw.len() {
        match raw[i] {
            b'%' if i + 2 < raw.len() => match (hex(raw[i + 1]), hex(raw[i + 2])) {
                (Some(h), Some(l)) => {
                    decoded.push(h << 4 | l);
                    i += 3;
                    continue;
                }
                _ => decoded.push(b'%'),
            },
            b'+' => decoded.push(b' '),
            b => decoded.push(b),
        }
        i += 1;
    }
    names
        .iter()
        .any(|n| n.as_bytes().eq_ignore_ascii_case(&decoded))
}

fn hex(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

/// A JSON body (or anything: see the module docs) with the values of the keys named in
/// `names` replaced by `"[REDACTED]"`, or `None` when nothing matched.
pub fn redact_json(body: &[u8], names: &[String]) -> Option<Vec<u8>> {
    if names.is_empty() {
        return None;
    }
    let filter = KeyFilter::new(names);
    let mut out: Option<Vec<u8>> = None;
    let mut copied = 0;
    let mut i = 0;
    let n = body.len();
    while let Some(q) = memchr::memchr(b'"', &body[i..]).map(|q| i + q) {
        // A string from `q`; `None`: it runs to the end of the input (nothing can follow).
        let Some((end, escaped)) = string_end(body, q + 1) else {
            break;
        };
        let raw = &body[q + 1..end - 1];
        // Most strings (values, other keys) are ruled out by length and first byte.
        if !escaped && !filter.may_match(raw) {
            i = end;
            continue;
        }
        let colon = skip_blank(body, end);
        if colon >= n || body[colon] != b':' {
            i = end;
            continue;
        }
        if !key_matches(raw, escaped, names, filter.max_name) {
            i = colon + 1;
            continue;
        }
        let v = skip_blank(body, colon + 1);
        if v >= n {
            // Cut right after the colon: there is no value to hide.
            break;
        }
        let v_end = value_end(body, v);
        let o = out.get_or_insert_with(|| Vec::with_capacity(n + 16));
        o.extend_from_slice(&body[copied..v]);
        o.push(b'"');
        o.extend_from_slice(REDACTED.as_bytes());
        o.push(b'"');
        copied = v_end;
        i = v_end;
        if i >= n {
            break;
        }
    }
    let mut o = out?;
    o.extend_from_slice(&body[copied.min(n)..]);
    Some(o)
}

/// The index just after the closing quote of the string whose contents start at `from`, and
/// whether the string holds an escape; `None` when it is not closed before the end.
fn string_end(b: &[u8], from: usize) -> Option<(usize, bool)> {
    let mut i = from;
    let mut escaped = false;
    loop {
        let rel = memchr::memchr2(b'"', b'\\', b.get(i..)?)?;
        i += rel;
        if b[i] == b'\\' {
            escaped = true;
            i += 2;
        } else {
            return Some((i + 1, escaped));
        }
    }
}

/// Rules out most strings before comparing them with the names: by length and first byte.
struct KeyFilter {
    /// `lens[k]`: some name is `k` bytes long.
    lens: Vec<bool>,
    /// `first[b]`: some name starts with `b` (either ASCII case).
    first: [bool; 256],
    max_name: usize,
}

impl KeyFilter {
    fn new(names: &[String]) -> Self {
        let max_name = names.iter().map(String::len).max().unwrap_or(0);
        let mut lens = vec![false; max_name + 1];
        let mut first = [false; 256];
        for n in names {
            lens[n.len()] = true;
            if let Some(&b) = n.as_bytes().first() {
                first[usize::from(b.to_ascii_lowercase())] = true;
                first[usize::from(b.to_ascii_uppercase())] = true;
            }
        }
        KeyFilter {
            lens,
            first,
            max_name,
        }
    }

    /// Whether `raw` (a string without escapes) may be one of the names.
    fn may_match(&self, raw: &[u8]) -> bool {
        raw.len() <= self.max_name
            && self.lens[raw.len()]
            && raw.first().is_none_or(|&b| self.first[usize::from(b)])
    }
}

fn skip_blank(b: &[u8], mut i: usize) -> usize {
    while i < b.len() && matches!(b[i], b' ' | b'\t' | b'\r' | b'\n') {
        i += 1;
    }
    i
}

/// The end of the value starting at `v` (a non-blank byte): a string, an object or array
/// (nesting counted, strings inside skipped), or a scalar up to the next delimiter. A value
/// cut by the end of the input ends there.
fn value_end(b: &[u8], v: usize) -> usize {
    let n = b.len();
    match b[v] {
        b'"' => string_end(b, v + 1).map_or(n, |(e, _)| e),
        b'{' | b'[' => {
            let mut depth: u64 = 0;
            let mut i = v;
            while i < n {
                match b[i] {
                    b'"' => match string_end(b, i + 1) {
                        Some((e, _)) => {
                            i = e;
                            continue;
                        }
                        None => return n,
                    },
                    b'{' | b'[' => depth += 1,
                    b'}' | b']' => {
                        depth = depth.saturating_sub(1);
                        if depth == 0 {
                            return i + 1;
                        }
                    }
                    _ => {}
                }
                i += 1;
            }
            n
        }
        _ => {
            let mut i = v;
            while i < n && !matches!(b[i], b',' | b'}' | b']' | b' ' | b'\t' | b'\r' | b'\n') {
                i += 1;
            }
            i
        }
    }
}

/// Whether the raw contents of a JSON string (escapes not decoded) are one of `names`,
/// ignoring ASCII case.
fn key_matches(raw: &[u8], escaped: bool, names: &[String], max_name: usize) -> bool {
    if !escaped {
        return raw.len() <= max_name
            && names.iter().any(|n| n.as_bytes().eq_ignore_ascii_case(raw));
    }
    // An escape is at most six bytes for one character.
    if raw.len() > max_name.saturating_mul(6) {
        return false;
    }
    match unescape(raw) {
        Some(k) => names.iter().any(|n| n.as_bytes().eq_ignore_ascii_case(&k)),
        None => false,
    }
}

/// The UTF-8 bytes of a JSON string's raw contents, or `None` when an escape is invalid.
fn unescape(raw: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(raw.len());
    let mut i = 0;
    while i < raw.len() {
        let c = raw[i];
        if c != b'\\' {
            out.push(c);
            i += 1;
            continue;
        }
        let e = *raw.get(i + 1)?;
        i += 2;
        let simple = match e {
            b'"' => b'"',
            b'\\' => b'\\',
            b'/' => b'/',
            b'b' => 8,
            b'f' => 12,
            b'n' => b'\n',
            b'r' => b'\r',
            b't' => b'\t',
            b'u' => {
                let hi = hex4(raw.get(i..i + 4)?)?;
                i += 4;
                let cp = if (0xD800..0xDC00).contains(&hi) {
                    // A surrogate pair: `\uD83D\uDE00`.
                    let lo = match raw.get(i..i + 6) {
                        Some([b'\\', b'u', rest @ ..]) => hex4(rest)?,
                        _ => return None,
                    };
                    if !(0xDC00..0xE000).contains(&lo) {
                        return None;
                    }
                    i += 6;
                    0x10000 + ((hi - 0xD800) << 10) + (lo - 0xDC00)
                } else {
                    hi
                };
                let ch = char::from_u32(cp)?;
                let mut buf = [0u8; 4];
                out.extend_from_slice(ch.encode_utf8(&mut buf).as_bytes());
                continue;
            }
            _ => return None,
        };
        out.push(simple);
    }
    Some(out)
}

fn hex4(b: &[u8]) -> Option<u32> {
    let mut v = 0u32;
    for &c in b.get(..4)? {
        v = v << 4 | u32::from(hex(c)?);
    }
    Some(v)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn list(names: &[&str]) -> Vec<String> {
        names.iter().map(|s| s.to_string()).collect()
    }

    fn json(body: &str) -> String {
        let names = Redaction::default().body_fields;
        match redact_json(body.as_bytes(), &names) {
            Some(b) => String::from_utf8(b).unwrap(),
            None => body.to_string(),
        }
    }

    fn url(u: &str) -> String {
        let names = Redaction::default().query_params;
        redact_url(u, &names).unwrap_or_else(|| u.to_string())
    }

    #[test]
    fn lists_add_to_the_defaults_and_none_drops_them() {
        let l = effective_list(DEFAULT_REDACT_HEADERS, &list(&["X-Custom", "cookie"]));
        assert_eq!(&l[..6], DEFAULT_REDACT_HEADERS);
        assert_eq!(l[6], "x-custom");
        assert_eq!(l.len(), 7, "no duplicates: {l:?}");
        assert_eq!(
            effective_list(DEFAULT_REDACT_HEADERS, &list(&["None", "x-a"])),
            list(&["x-a"])
        );
        assert!(effective_list(DEFAULT_REDACT_HEADERS, &list(&["none"])).is_empty());
        assert_eq!(
            effective_list(DEFAULT_REDACT_QUERY_PARAMS, &[]).len(),
            DEFAULT_REDACT_QUERY_PARAMS.len()
        );
    }

    #[test]
    fn query_values_are_redacted_and_the_rest_is_kept_byte_exact() {
        assert_eq!(
            url("/cb?code=1&access_token=abc.def&state=x"),
            "/cb?code=1&access_token=[REDACTED]&state=x"
        );
        assert_eq!(url("/a?ACCESS_TOKEN=abc"), "/a?ACCESS_TOKEN=[REDACTED]");
        // Percent-encoded names are decoded for the comparison, and kept as sent.
        assert_eq!(url("/a?access%5Ftoken=abc"), "/a?access%5Ftoken=[REDACTED]");
        assert_eq!(url("/a?%61pi_key=k&x=1"), "/a?%61pi_key=[REDACTED]&x=1");
        // The fragment, the path and unmatched parameters are untouched.
        assert_eq!(url("/p/token?q=1#token=2"), "/p/token?q=1#token=2");
        assert_eq!(url("/a?token=s#frag"), "/a?token=[REDACTED]#frag");
        assert_eq!(
            url("http://h.example/x?X-Amz-Signature=deadbeef&X-Amz-Date=1"),
            "http://h.example/x?X-Amz-Signature=[REDACTED]&X-Amz-Date=1"
        );
        // Repeated, empty and valueless parameters.
        assert_eq!(url("/a?sig=1&sig=2"), "/a?sig=[REDACTED]&sig=[REDACTED]");
        assert_eq!(url("/a?token=&token"), "/a?token=&token");
        assert_eq!(url("/a?&&token=x&&"), "/a?&&token=[REDACTED]&&");
        // `=` inside the value: the whole value goes.
        assert_eq!(url("/a?secret=a=b=c&z"), "/a?secret=[REDACTED]&z");
        // Non-ASCII around a redacted value stays as it was.
        assert_eq!(url("/é?password=ü&ß=1"), "/é?password=[REDACTED]&ß=1");
        // Nothing to do.
        assert_eq!(
            redact_url("/a?x=1", &Redaction::default().query_params),
            None
        );
        assert_eq!(redact_url("/a", &Redaction::default().query_params), None);
        assert_eq!(redact_url("/a?token=1", &[]), None);
        // Broken percent escapes never panic.
        for u in ["/a?%", "/a?%4", "/a?%zz=1", "/a?token%=1", "/a?%%%=1&%"] {
            let _ = url(u);
        }
    }

    #[test]
    fn json_keys_are_redacted_at_any_depth() {
        let out = json(r#"{"user":"bob","password":"hunter2","n":{"deep":[{"Token":123}]}}"#);
        assert_eq!(
            out,
            r#"{"user":"bob","password":"[REDACTED]","n":{"deep":[{"Token":"[REDACTED]"}]}}"#
        );
        let v: serde_json::Value = serde_json::from_str(&out).unwrap();
        assert_eq!(v["n"]["deep"][0]["Token"], "[REDACTED]");
        // Objects, arrays, literals and numbers as values; blanks around the colon.
        assert_eq!(
            json(r#"{ "secret" : {"a":[1,{"b":"}"}]} , "cvv": 123 , "ssn":null, "apikey":[1,2]}"#),
            r#"{ "secret" : "[REDACTED]" , "cvv": "[REDACTED]" , "ssn":"[REDACTED]", "apikey":"[REDACTED]"}"#
        );
        // Strings holding quotes, escapes and key-like text are not keys.
        let s = r#"["password", "a\"password\":1", {"note":"\"token\": x"}]"#;
        assert_eq!(json(s), s);
        // Escaped keys are decoded before comparing.
        assert_eq!(
            json(r#"{"pass\u0077ord":"x","\u0070asswd":"y"}"#),
            r#"{"pass\u0077ord":"[REDACTED]","\u0070asswd":"[REDACTED]"}"#
        );
        // NDJSON: every line.
        assert_eq!(
            json("{\"token\":\"a\"}\n{\"token\":\"b\"}\n"),
            "{\"token\":\"[REDACTED]\"}\n{\"token\":\"[REDACTED]\"}\n"
        );
        // A value holding an escaped quote is replaced whole.
        assert_eq!(
            json(r#"{"password":"a\"b\\","x":1}"#),
            r#"{"password":"[REDACTED]","x":1}"#
        );
        assert_eq!(json(r#"{"user":"x"}"#), r#"{"user":"x"}"#);
    }

    #[test]
    fn truncated_and_invalid_json_is_still_redacted() {
        // Cut inside the value, right after the colon, inside the key.
        assert_eq!(
            json(r#"{"a":1,"password":"hunt"#),
            r#"{"a":1,"password":"[REDACTED]""#
        );
        assert_eq!(json(r#"{"password":"x"}"#), r#"{"password":"[REDACTED]"}"#);
        assert_eq!(
            json(r#"{"a":{"token":{"b":[1,2"#),
            r#"{"a":{"token":"[REDACTED]""#
        );
        assert_eq!(json(r#"{"password":12"#), r#"{"password":"[REDACTED]""#);
        assert_eq!(json(r#"{"password":"#), r#"{"password":"#);
        assert_eq!(json(r#"{"password""#), r#"{"password""#);
        assert_eq!(json(r#"{"passw"#), r#"{"passw"#);
        // Invalid documents: still every `"key": value` pair.
        assert_eq!(
            json(r#"garbage "token": "t1" more {{{ "password":"p" ]]]"#),
            r#"garbage "token": "[REDACTED]" more {{{ "password":"[REDACTED]" ]]]"#
        );
        // Unbalanced brackets inside a redacted value run to the end.
        assert_eq!(json(r#"{"secret":[[[[["#), r#"{"secret":"[REDACTED]""#);
        assert_eq!(
            json(r#"{"secret":]]],"x":1}"#),
            r#"{"secret":"[REDACTED]"]]],"x":1}"#
        );
    }

    #[test]
    fn hostile_json_never_panics_and_stays_linear() {
        let names = Redaction::default().body_fields;
        // Deep nesting: no recursion, no stack.
        let deep = format!("{{\"password\":{}", "[".repeat(1_000_000));
        assert_eq!(
            redact_json(deep.as_bytes(), &names).unwrap(),
            br#"{"password":"[REDACTED]""#
        );
        let deep = "{\"a\":".repeat(200_000) + "{\"token\":1" + &"}".repeat(200_000);
        let out = redact_json(deep.as_bytes(), &names).unwrap();
        assert_eq!(out.len(), deep.len() + 11);
        assert!(String::from_utf8(out)
            .unwrap()
            .contains(r#"{"a":{"token":"[REDACTED]"}}"#));
        // Many keys, many quotes, many backslashes, long escaped keys: all bounded work.
        let many = "{\"password\":1,".repeat(100_000);
        let out = redact_json(many.as_bytes(), &names).unwrap();
        assert_eq!(out.len(), many.len() + 100_000 * 11);
        for hostile in [
            "\"".repeat(100_001),
            "\\".repeat(100_001),
            format!("\"{}\":1", "\\u0041".repeat(100_000)),
            format!("\"{}", "\\".repeat(99_999)),
            "\":\":\":\":".repeat(50_000),
            "\"password\"\u{0}:".repeat(1000),
        ] {
            let start = std::time::Instant::now();
            let _ = redact_json(hostile.as_bytes(), &names);
            assert!(start.elapsed() < std::time::Duration::from_secs(2));
        }
        // Every prefix and every split of a document is handled.
        let doc = r#"{"user":"a","password":"p\"w","n":[{"token":{"x":"y"}},"s"],"cvv":7}"#;
        for cut in 0..=doc.len() {
            let out = redact_json(&doc.as_bytes()[..cut], &names);
            if let Some(o) = out {
                let o = String::from_utf8(o).unwrap();
                assert!(!o.contains("p\\\"w") && !o.contains("\"y\""), "{cut}: {o}");
            }
        }
        // Invalid UTF-8 in and around keys.
        let _ = redact_json(b"{\"\xff\xfe\":1,\"token\":\"\xff\"}", &names);
        let _ = redact_json(b"{\"\\uD800\":1,\"\\uD800\\u0041\":2,\"\\u12\":3}", &names);
    }

    #[test]
    fn form_bodies() {
        let names = Redaction::default().body_fields;
        assert_eq!(
            redact_form(b"user=bob&password=hunter2&Client_Secret=s+s&x=", &names).unwrap(),
            b"user=bob&password=[REDACTED]&Client_Secret=[REDACTED]&x="
        );
        assert_eq!(
            redact_form(b"pass%77ord=1", &names).unwrap(),
            b"pass%77ord=[REDACTED]"
        );
        assert_eq!(redact_form(b"user=bob", &names), None);
        // A form cut in the middle of a value.
        assert_eq!(
            redact_form(b"a=1&token=abc", &names).unwrap(),
            b"a=1&token=[REDACTED]"
        );
    }

    fn message(content_type: Option<&str>, body: &[u8]) -> HttpMessage {
        HttpMessage {
            kind: crate::testing::request("POST", "/login?token=t&x=1"),
            headers: content_type
                .map(|t| vec![("content-type".into(), HeaderValue::Single(t.to_string()))])
                .unwrap_or_default(),
            body: body.to_vec(),
            body_size: body.len() as u64,
            ..crate::testing::sample_message()
        }
    }

    #[test]
    fn messages_by_content_type() {
        let r = Redaction::default();
        let mut m = message(Some("application/json"), br#"{"password":"p"}"#);
        r.message(&mut m, 65536);
        assert_eq!(m.body, br#"{"password":"[REDACTED]"}"#);
        assert_eq!(
            m.kind,
            MessageKind::Request {
                method: "POST".into(),
                url: "/login?token=[REDACTED]&x=1".into()
            }
        );
        // JSON without a content type is still scanned.
        let mut m = message(None, br#"{"token":"t"}"#);
        r.message(&mut m, 65536);
        assert_eq!(m.body, br#"{"token":"[REDACTED]"}"#);
        let mut m = message(
            Some("Application/X-WWW-Form-Urlencoded; charset=utf-8"),
            b"password=p&a=1",
        );
        r.message(&mut m, 65536);
        assert_eq!(m.body, b"password=[REDACTED]&a=1");
        // Growing past maxBodySize cuts the body and marks it truncated.
        let mut m = message(Some("application/json"), br#"{"cvv":1}"#);
        r.message(&mut m, 12);
        assert_eq!(m.body, br#"{"cvv":"[RED"#);
        assert!(m.truncated);
        // `none` for both lists: nothing is touched.
        let mut m = message(Some("application/json"), br#"{"password":"p"}"#);
        Redaction::none().message(&mut m, 65536);
        assert_eq!(m.body, br#"{"password":"p"}"#);
    }
}
