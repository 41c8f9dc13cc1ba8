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
//!
//! Cost: this runs on every message, and most have nothing to redact, so the work is in
//! ruling things out cheaply. Each list is compiled once ([`Redaction::new`]) with a filter
//! of name lengths and first bytes; the JSON scan reads 16 bytes per step (SSE2; 8 in the
//! portable version) and stops only at quotes and backslashes (`next_candidate`); query
//! strings and forms are split at `&` a word or 16 bytes at a time (`find_byte`), and a
//! pair whose first byte starts no name is stepped over without splitting or decoding it.
//! The tests keep the earlier one-`memchr`-per-token scans as an oracle and check the fast
//! paths against them byte for byte on random input.

use crate::message::{HeaderValue, HttpMessage, MessageKind};

/// The replacement text of a redacted value.
pub const REDACTED: &str = "[REDACTED]";

// The default lists and how a given list combines with them are part of the settings
// contract, so they live with the settings table.
pub use tcp_sniffer_settings::value::{
    effective_list, DEFAULT_REDACT_BODY_FIELDS, DEFAULT_REDACT_HEADERS, DEFAULT_REDACT_QUERY_PARAMS,
};

/// What the HTTP stage redacts besides headers.
///
/// Built once per run ([`Redaction::new`]): each list carries a prefilter (name lengths and
/// first bytes) so that the per-message work rules out most strings without comparing them
/// with every name.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Redaction {
    /// Query parameter names (`redactQueryParams`, defaults included).
    query_params: Names,
    /// JSON keys and form field names (`redactBodyFields`, defaults included).
    body_fields: Names,
}

impl Default for Redaction {
    fn default() -> Self {
        Redaction::new(
            effective_list(DEFAULT_REDACT_QUERY_PARAMS, &[]),
            effective_list(DEFAULT_REDACT_BODY_FIELDS, &[]),
        )
    }
}

impl Redaction {
    /// Redacts the query parameters and the body fields named in the lists, which are
    /// lower-cased already (as [`effective_list`] makes them); matching ignores ASCII case.
    pub fn new(query_params: Vec<String>, body_fields: Vec<String>) -> Self {
        Redaction {
            query_params: Names::new(query_params),
            body_fields: Names::new(body_fields),
        }
    }

    /// Redacts nothing (tests and tools that want the bytes as captured).
    pub fn none() -> Self {
        Redaction::new(Vec::new(), Vec::new())
    }

    /// The query parameter names redacted (`redactQueryParams`, defaults included).
    pub fn query_params(&self) -> &[String] {
        &self.query_params.list
    }

    /// The JSON keys and form fields redacted (`redactBodyFields`, defaults included).
    pub fn body_fields(&self) -> &[String] {
        &self.body_fields.list
    }

    /// Redacts `url`'s query parameters in place.
    pub fn url(&self, url: &mut String) {
        if let Some(r) = redact_url_with(url, &self.query_params) {
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
        if self.body_fields.list.is_empty() || msg.body.is_empty() {
            return;
        }
        let form = msg.headers.iter().any(|(n, v)| {
            n == "content-type" && matches!(v, HeaderValue::Single(t) if is_form_content_type(t))
        });
        let redacted = if form {
            redact_pairs(&msg.body, &self.body_fields)
        } else {
            redact_json_with(&msg.body, &self.body_fields)
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

/// Whether a `Content-Type` value's media type (before any `;`, blanks around it ignored)
/// is `application/x-www-form-urlencoded`, in any case.
fn is_form_content_type(t: &str) -> bool {
    const FORM: &[u8] = b"application/x-www-form-urlencoded";
    let t = t.as_bytes();
    // Too short to hold the media type (most content types: `application/json`).
    if t.len() < FORM.len() {
        return false;
    }
    let mime = t.split(|&b| b == b';').next().unwrap_or(&[]);
    let start = mime.iter().position(|&b| b != b' ' && b != b'\t');
    let Some(start) = start else {
        return false;
    };
    // Blanks only at the ends: the media type itself has none.
    let end = mime
        .iter()
        .rposition(|&b| b != b' ' && b != b'\t')
        .map_or(start, |e| e + 1);
    mime[start..end].eq_ignore_ascii_case(FORM)
}

/// A list of lower-cased names and the prefilter that rules out most candidates before
/// they are compared with each name. The filter is a function of the list.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Names {
    list: Vec<String>,
    filter: KeyFilter,
}

impl Names {
    fn new(list: Vec<String>) -> Self {
        let filter = KeyFilter::new(&list);
        Names { list, filter }
    }

    /// Whether `key` (decoded: no escapes left) is one of the names, ignoring ASCII case.
    fn contains(&self, key: &[u8]) -> bool {
        self.filter.may_match(key)
            && self
                .list
                .iter()
                .any(|n| n.as_bytes().eq_ignore_ascii_case(key))
    }
}

/// `url` with the values of the query parameters named in `names` replaced by
/// `[REDACTED]`, or `None` when nothing matched. Only the query (after the first `?`,
/// before the first `#` after it) is looked at; every other byte is kept.
pub fn redact_url(url: &str, names: &[String]) -> Option<String> {
    redact_url_with(url, &Names::new(names.to_vec()))
}

fn redact_url_with(url: &str, names: &Names) -> Option<String> {
    if names.list.is_empty() {
        return None;
    }
    let bytes = url.as_bytes();
    let q = find_byte(bytes, b'?')?;
    let end = find_byte(&bytes[q..], b'#').map_or(url.len(), |h| q + h);
    let query = &bytes[q + 1..end];
    let red = redact_pairs(query, names)?;
    let mut out = String::with_capacity(url.len() + 16);
    out.push_str(&url[..=q]);
    // `redact_pairs` only replaces whole values with ASCII, at ASCII boundaries.
    out.push_str(&String::from_utf8_lossy(&red));
    out.push_str(&url[end..]);
    Some(out)
}

/// The index of the first `needle` in `hay`.
///
/// For a URL's `?` and `#`, on every request: a request-target is a few dozen bytes, where
/// a `memchr` call (its dispatch and set-up) costs more than the scan itself. SSE2, 16
/// bytes a step, the last step overlapping the one before; a byte loop under 16 bytes.
#[cfg(target_arch = "x86_64")]
#[inline]
fn find_byte(hay: &[u8], needle: u8) -> Option<usize> {
    use std::arch::x86_64::{
        __m128i, _mm_cmpeq_epi8, _mm_loadu_si128, _mm_movemask_epi8, _mm_set1_epi8,
    };
    /// Bit j set when byte j of the 16 at `p` is `needle`.
    ///
    /// # Safety
    /// `p..p + 16` is readable. SSE2 is in the x86_64 baseline.
    #[inline(always)]
    unsafe fn hits(p: *const u8, needle: u8) -> u32 {
        let v = _mm_loadu_si128(p.cast::<__m128i>());
        _mm_movemask_epi8(_mm_cmpeq_epi8(v, _mm_set1_epi8(needle as i8))) as u32
    }
    let n = hay.len();
    if n < 16 {
        if n < 8 {
            return hay.iter().position(|&b| b == needle);
        }
        // Two overlapping words (a query of a dozen bytes: `fields=name`): when bytes
        // 0..8 hold no hit, the first hit in the word at n - 8 is the first of all.
        let pattern = ONES * u64::from(needle);
        let word =
            |at: usize| u64::from_le_bytes(hay[at..at + 8].try_into().unwrap_or([0; 8])) ^ pattern;
        let m = zero_bytes(word(0));
        if m != 0 {
            return Some((m.trailing_zeros() / 8) as usize);
        }
        let m = zero_bytes(word(n - 8));
        return (m != 0).then(|| n - 8 + (m.trailing_zeros() / 8) as usize);
    }
    let p = hay.as_ptr();
    let mut i = 0;
    while i + 16 <= n {
        // SAFETY: i + 16 <= n: the 16 bytes are inside `hay`.
        let m = unsafe { hits(p.add(i), needle) };
        if m != 0 {
            return Some(i + m.trailing_zeros() as usize);
        }
        i += 16;
    }
    if i < n {
        // The last 16 bytes: those before `i` were found clean above, so the first hit
        // in this block is the first at or after `i`.
        // SAFETY: n >= 16: the 16 bytes `n - 16..n` are inside `hay`.
        let m = unsafe { hits(p.add(n - 16), needle) };
        if m != 0 {
            return Some(n - 16 + m.trailing_zeros() as usize);
        }
    }
    None
}

/// The index of the first `needle` in `hay` (portable version).
#[cfg(not(target_arch = "x86_64"))]
#[inline]
fn find_byte(hay: &[u8], needle: u8) -> Option<usize> {
    memchr::memchr(needle, hay)
}

/// An `application/x-www-form-urlencoded` body with the named fields' values replaced by
/// `[REDACTED]`, or `None` when nothing matched.
pub fn redact_form(body: &[u8], names: &[String]) -> Option<Vec<u8>> {
    if names.is_empty() {
        return None;
    }
    redact_pairs(body, &Names::new(names.to_vec()))
}

/// `name=value` pairs separated by `&`: the values of matching names become `[REDACTED]`.
///
/// [`find_byte`] rather than `memchr` for each `&`: queries and forms are short, and per
/// call `memchr` costs more than it saves on a pair of a dozen bytes. A pair whose first byte
/// cannot start a name ([`KeyFilter::form_first`]: most queries, `fields=name`) is only
/// stepped over to the next `&`, never split at its `=` nor decoded.
fn redact_pairs(s: &[u8], names: &Names) -> Option<Vec<u8>> {
    let mut out: Option<Vec<u8>> = None;
    let mut copied = 0;
    let n = s.len();
    // Each pair is `s[start..end]`, `end` the next `&` or the end; an empty input is one
    // empty pair, as `split` would have it.
    let mut start = 0;
    while start <= n {
        let rest = &s[start..];
        let len = find_byte(rest, b'&').unwrap_or(rest.len());
        let end = start + len;
        let pair = &rest[..len];
        if pair
            .first()
            .is_some_and(|&b| names.filter.form_first[usize::from(b)])
        {
            if let Some(eq) = pair.iter().position(|&b| b == b'=') {
                let value_start = start + eq + 1;
                if value_start < end && name_matches_form(&pair[..eq], names) {
                    let o = out.get_or_insert_with(|| Vec::with_capacity(n + 16));
                    o.extend_from_slice(&s[copied..value_start]);
                    o.extend_from_slice(REDACTED.as_bytes());
                    copied = end;
                }
            }
        }
        start = end + 1;
    }
    let mut o = out?;
    o.extend_from_slice(&s[copied..]);
    Some(o)
}

/// Whether a percent-encoded (`+` = space) name is one of `names`, ignoring case.
fn name_matches_form(raw: &[u8], names: &Names) -> bool {
    // Each decoded byte takes at least one raw byte and at most three.
    if raw.is_empty() || raw.len() > names.filter.max_name.saturating_mul(3) {
        return false;
    }
    if !raw.iter().any(|&b| b == b'%' || b == b'+') {
        return names.contains(raw);
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
    names.contains(&decoded)
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
    redact_json_with(body, &Names::new(names.to_vec()))
}

fn redact_json_with(body: &[u8], names: &Names) -> Option<Vec<u8>> {
    if names.list.is_empty() {
        return None;
    }
    let mut out: Option<Vec<u8>> = None;
    let mut copied = 0;
    let mut i = 0;
    let n = body.len();
    // Only strings that pass the filter come back; the others (most values, other keys)
    // are stepped over inside `next_candidate`.
    while let Some((q, end, escaped)) = next_candidate(body, i, &names.filter) {
        let raw = &body[q + 1..end - 1];
        let colon = skip_blank(body, end);
        if colon >= n || body[colon] != b':' {
            i = end;
            continue;
        }
        if !key_matches(raw, escaped, names) {
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
    }
    let mut o = out?;
    o.extend_from_slice(&body[copied.min(n)..]);
    Some(o)
}

/// The next JSON string in `b` whose opening quote is at or after `from` (outside any
/// string) and that [`KeyFilter::may_match`] (or that holds an escape, which the filter
/// cannot judge): its opening quote's index, the index just after its closing quote, and
/// whether it holds an escape. `None` when there is none, or the string runs to the end.
///
/// Strings are delimited as [`string_end`] does: a backslash inside a string escapes the
/// byte after it, whatever it is; outside strings only quotes count. The scan reads
/// [`STEP`] bytes per step and stops only at quotes and backslashes ([`specials_at`]),
/// instead of one `memchr` call per quote: bodies have a quote every few bytes, and a call
/// costs more than the bytes it skips.
fn next_candidate(b: &[u8], from: usize, filter: &KeyFilter) -> Option<(usize, usize, bool)> {
    let n = b.len();
    let mut pos = from;
    // The opening quote of the string being read, and whether it holds an escape so far.
    let mut open: Option<usize> = None;
    let mut escaped = false;
    'words: while pos < n {
        let mut mask = specials_at(b, pos);
        while mask != 0 {
            // Only bytes before the end are marked, so k < n.
            let k = pos + lowest_offset(mask);
            mask &= mask - 1;
            match (b[k], open) {
                (b'"', None) => {
                    open = Some(k);
                    escaped = false;
                }
                (b'"', Some(q)) => {
                    if escaped || filter.may_match(&b[q + 1..k]) {
                        return Some((q, k + 1, escaped));
                    }
                    open = None;
                }
                (_, Some(_)) => {
                    // A backslash in a string: the byte after it is part of the escape
                    // (even a quote or a backslash); go on after both.
                    escaped = true;
                    pos = k + 2;
                    continue 'words;
                }
                // A backslash outside strings means nothing.
                (_, None) => {}
            }
        }
        pos += STEP;
    }
    None
}

/// Bytes [`specials_at`] looks at in one step: 16 with SSE2 (in the x86_64 baseline).
#[cfg(target_arch = "x86_64")]
const STEP: usize = 16;

/// The quotes and backslashes among the 16 bytes of `b` from `pos` (`pos < b.len()`; bytes
/// past the end count as neither): bit j is set exactly when byte `pos + j` is one.
///
/// Two compares and a `movemask` per 16 bytes, where the portable word version
/// (`special_bytes`) spends a dozen operations per 8. The last bytes of an input of 16
/// or more are read as the input's last 16 bytes, the mask shifted down to `pos`: no copy.
#[cfg(target_arch = "x86_64")]
#[inline(always)]
fn specials_at(b: &[u8], pos: usize) -> u64 {
    use std::arch::x86_64::{
        __m128i, _mm_cmpeq_epi8, _mm_loadu_si128, _mm_movemask_epi8, _mm_or_si128, _mm_set1_epi8,
    };
    /// Loads the 16 bytes at `p` and marks the special ones.
    ///
    /// # Safety
    /// `p..p + 16` is readable. SSE2 is in the x86_64 baseline.
    #[inline(always)]
    unsafe fn mask(p: *const u8) -> u64 {
        let v = _mm_loadu_si128(p.cast::<__m128i>());
        let q = _mm_cmpeq_epi8(v, _mm_set1_epi8(b'"' as i8));
        let s = _mm_cmpeq_epi8(v, _mm_set1_epi8(b'\\' as i8));
        // movemask sets only the low 16 bits.
        u64::from(_mm_movemask_epi8(_mm_or_si128(q, s)) as u32)
    }
    let n = b.len();
    debug_assert!(pos < n);
    if pos + 16 <= n {
        // SAFETY: pos + 16 <= n: the 16 bytes loaded are inside `b`.
        unsafe { mask(b.as_ptr().add(pos)) }
    } else if n >= 16 {
        // The last 16 bytes, from n - 16 (> pos - 16): byte `pos` is bit 16 - (n - pos)
        // (< 16, as pos < n), and shifting it down drops the bytes before `pos`.
        // SAFETY: n >= 16: the 16 bytes loaded, `n - 16..n`, are inside `b`.
        let m = unsafe { mask(b.as_ptr().add(n - 16)) };
        m >> (16 - (n - pos))
    } else {
        // Shorter than 16 bytes in all: a zero-padded copy (zero is never special).
        let mut w = [0u8; 16];
        let rest = b.get(pos..).unwrap_or(&[]);
        w[..rest.len()].copy_from_slice(rest);
        // SAFETY: `w` is 16 bytes.
        unsafe { mask(w.as_ptr()) }
    }
}

/// The offset from `pos` of the special byte marked by `mask`'s lowest set bit.
#[cfg(target_arch = "x86_64")]
#[inline(always)]
fn lowest_offset(mask: u64) -> usize {
    mask.trailing_zeros() as usize
}

/// Bytes [`specials_at`] looks at in one step (portable version: one word).
#[cfg(not(target_arch = "x86_64"))]
const STEP: usize = 8;

/// The quotes and backslashes among the 8 bytes of `b` from `pos` (`pos < b.len()`; bytes
/// past the end count as neither): bit 7 of byte j is set exactly when byte `pos + j` is
/// one (portable version).
#[cfg(not(target_arch = "x86_64"))]
#[inline(always)]
fn specials_at(b: &[u8], pos: usize) -> u64 {
    special_bytes(word_at(b, pos))
}

/// The offset from `pos` of the special byte marked by `mask`'s lowest set bit.
#[cfg(not(target_arch = "x86_64"))]
#[inline(always)]
fn lowest_offset(mask: u64) -> usize {
    (mask.trailing_zeros() / 8) as usize
}

/// The 8 bytes of `b` from `pos` (`pos < b.len()`) as a little-endian word, zero-padded
/// past the end.
#[cfg(not(target_arch = "x86_64"))]
#[inline(always)]
fn word_at(b: &[u8], pos: usize) -> u64 {
    match b.get(pos..pos + 8) {
        Some(w) => u64::from_le_bytes(w.try_into().unwrap_or([0; 8])),
        None => {
            let rest = b.get(pos..).unwrap_or(&[]);
            let mut w = [0u8; 8];
            w[..rest.len()].copy_from_slice(rest);
            u64::from_le_bytes(w)
        }
    }
}

/// Bit 7 of byte j of the result is set exactly when byte j of `w` is `"` or `\\`
/// (all other bits are clear).
#[cfg(any(test, not(target_arch = "x86_64")))]
#[inline(always)]
fn special_bytes(w: u64) -> u64 {
    zero_bytes(w ^ (ONES * u64::from(b'"'))) | zero_bytes(w ^ (ONES * u64::from(b'\\')))
}

/// A one in every byte of a word.
const ONES: u64 = 0x0101_0101_0101_0101;

/// Bit 7 of byte j of the result is set exactly when byte j of `x` is zero (all other
/// bits are clear).
#[inline(always)]
fn zero_bytes(x: u64) -> u64 {
    const LOW7: u64 = 0x7f7f_7f7f_7f7f_7f7f;
    // Per byte, exact (no borrow or carry crosses bytes, unlike the `x - ONES` trick):
    // `(x & 0x7f) + 0x7f` has bit 7 set when any low bit of x is; OR-ing in x adds x's own
    // bit 7; so bit 7 stays clear only for a zero byte.
    !(((x & LOW7) + LOW7) | x) & !LOW7
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
#[derive(Clone, Debug, PartialEq, Eq)]
struct KeyFilter {
    /// `lens[k]`: some name is `k` bytes long.
    lens: Vec<bool>,
    /// `first[b]`: some name starts with `b` (either ASCII case).
    first: [bool; 256],
    /// `form_first[b]`: a percent-encoded name (`+` = space) starting with `b` may decode
    /// to one of the names: `first[b]`, and `%` (any byte may follow), and `+` when
    /// some name starts with a space.
    form_first: [bool; 256],
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
        let mut form_first = first;
        form_first[usize::from(b'%')] = true;
        form_first[usize::from(b'+')] |= first[usize::from(b' ')];
        KeyFilter {
            lens,
            first,
            form_first,
            max_name,
        }
    }

    /// Whether `raw` (a string without escapes) may be one of the names.
    #[inline]
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
fn key_matches(raw: &[u8], escaped: bool, names: &Names) -> bool {
    if !escaped {
        return names.contains(raw);
    }
    // An escape is at most six bytes for one character.
    if raw.len() > names.filter.max_name.saturating_mul(6) {
        return false;
    }
    match unescape(raw) {
        Some(k) => names.contains(&k),
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
        let names = Redaction::default().body_fields().to_vec();
        match redact_json(body.as_bytes(), &names) {
            Some(b) => String::from_utf8(b).unwrap(),
            None => body.to_string(),
        }
    }

    fn url(u: &str) -> String {
        let names = Redaction::default().query_params().to_vec();
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
            redact_url("/a?x=1", Redaction::default().query_params()),
            None
        );
        assert_eq!(redact_url("/a", Redaction::default().query_params()), None);
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
        let names = Redaction::default().body_fields().to_vec();
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
        let names = Redaction::default().body_fields().to_vec();
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

    /// The scans as they were before the word-at-a-time [`next_candidate`] and the byte
    /// loop in [`redact_pairs`]: one `memchr` per quote, per `&` and per `=`. Kept as the
    /// oracle the fast paths must agree with, byte for byte.
    mod reference {
        use super::super::*;

        pub fn json(body: &[u8], names: &[String]) -> Option<Vec<u8>> {
            if names.is_empty() {
                return None;
            }
            let set = Names::new(names.to_vec());
            let mut out: Option<Vec<u8>> = None;
            let mut copied = 0;
            let mut i = 0;
            let n = body.len();
            while let Some(q) = memchr::memchr(b'"', &body[i..]).map(|q| i + q) {
                let Some((end, escaped)) = string_end(body, q + 1) else {
                    break;
                };
                let raw = &body[q + 1..end - 1];
                if !escaped && !set.filter.may_match(raw) {
                    i = end;
                    continue;
                }
                let colon = skip_blank(body, end);
                if colon >= n || body[colon] != b':' {
                    i = end;
                    continue;
                }
                let key = if escaped {
                    unescape(raw)
                } else {
                    Some(raw.to_vec())
                };
                if !key.is_some_and(|k| names.iter().any(|n| n.as_bytes().eq_ignore_ascii_case(&k)))
                {
                    i = colon + 1;
                    continue;
                }
                let v = skip_blank(body, colon + 1);
                if v >= n {
                    break;
                }
                let v_end = value_end(body, v);
                let o = out.get_or_insert_with(Vec::new);
                o.extend_from_slice(&body[copied..v]);
                o.extend_from_slice(b"\"[REDACTED]\"");
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

        pub fn pairs(s: &[u8], names: &[String]) -> Option<Vec<u8>> {
            let mut out: Option<Vec<u8>> = None;
            let mut copied = 0;
            let mut start = 0;
            while start <= s.len() {
                let end = memchr::memchr(b'&', &s[start..]).map_or(s.len(), |e| start + e);
                let pair = &s[start..end];
                if let Some(eq) = memchr::memchr(b'=', pair) {
                    let value_start = start + eq + 1;
                    let name = &pair[..eq];
                    let mut decoded = Vec::new();
                    let mut i = 0;
                    while i < name.len() {
                        match name[i] {
                            b'%' if i + 2 < name.len() => {
                                match (hex(name[i + 1]), hex(name[i + 2])) {
                                    (Some(h), Some(l)) => {
                                        decoded.push(h << 4 | l);
                                        i += 3;
                                        continue;
                                    }
                                    _ => decoded.push(b'%'),
                                }
                            }
                            b'+' => decoded.push(b' '),
                            b => decoded.push(b),
                        }
                        i += 1;
                    }
                    let hit = !decoded.is_empty()
                        && names
                            .iter()
                            .any(|n| n.as_bytes().eq_ignore_ascii_case(&decoded));
                    if value_start < end && hit {
                        let o = out.get_or_insert_with(Vec::new);
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
    }

    /// A small deterministic generator (xorshift64*): the same cases on every run.
    struct Rng(u64);

    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 >> 12;
            self.0 ^= self.0 << 25;
            self.0 ^= self.0 >> 27;
            self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
        }

        fn below(&mut self, n: usize) -> usize {
            (self.next() % n as u64) as usize
        }
    }

    /// Random documents built from the pieces that steer the scans: quotes, backslashes,
    /// escapes (`\u0070` is `p`), colons, blanks, brackets, `&`, `=`, `%`, `+`, the names
    /// themselves in any case and cut short, and filler; lengths across the 8-byte steps.
    fn random_doc(rng: &mut Rng, names: &[String]) -> Vec<u8> {
        const PIECES: &[&[u8]] = &[
            b"\"",
            b"\"",
            b"\"",
            b"\\",
            b"\\\"",
            b"\\\\",
            b"\\u0070",
            b"\\u0041",
            b"\\uD83D\\uDE00",
            b":",
            b":",
            b" ",
            b"\n",
            b"\t",
            b"{",
            b"}",
            b"[",
            b"]",
            b",",
            b"1",
            b"null",
            b"x",
            b"abc",
            b"&",
            b"=",
            b"%",
            b"%70",
            b"%5F",
            b"+",
            b"\xc3\xa9",
            b"\xff",
            b"\0",
        ];
        let len = rng.below(24);
        let mut doc = Vec::new();
        for _ in 0..len {
            if rng.below(3) == 0 {
                // A name, in any case and sometimes cut short; often as a whole key
                // (`"name":`, `"name" :`) or a query pair's name (`name=`).
                let name = names[rng.below(names.len())].as_bytes();
                let cut = if rng.below(5) == 0 {
                    rng.below(name.len() + 1)
                } else {
                    name.len()
                };
                let shape = rng.below(4);
                if shape == 0 {
                    doc.push(b'"');
                }
                for &b in &name[..cut] {
                    doc.push(if rng.below(3) == 0 {
                        b.to_ascii_uppercase()
                    } else {
                        b
                    });
                }
                match shape {
                    0 => doc.extend_from_slice(if rng.below(2) == 0 { b"\":" } else { b"\" : " }),
                    1 => doc.push(b'='),
                    _ => {}
                }
            } else {
                doc.extend_from_slice(PIECES[rng.below(PIECES.len())]);
            }
        }
        doc
    }

    #[test]
    fn fast_json_scan_agrees_with_the_reference_on_random_documents() {
        let defaults = Redaction::default().body_fields().to_vec();
        let mut custom = defaults.clone();
        custom.extend([
            "".to_string(),
            "é".to_string(),
            "a\"b".to_string(),
            "x".repeat(40),
        ]);
        let mut rng = Rng(0x5eed_1234_abcd_0001);
        let mut redacted = 0;
        for names in [&defaults, &custom] {
            for case in 0..200_000 {
                let doc = random_doc(&mut rng, names);
                let want = reference::json(&doc, names);
                redacted += usize::from(want.is_some());
                assert_eq!(
                    redact_json(&doc, names),
                    want,
                    "case {case}: {:?}",
                    String::from_utf8_lossy(&doc)
                );
            }
        }
        // The generator must reach the redacting paths, not only the skipping ones.
        assert!(redacted > 10_000, "only {redacted} documents redacted");
    }

    #[test]
    fn query_and_form_scan_agree_with_the_reference_on_random_input() {
        let defaults = Redaction::default().query_params().to_vec();
        // Names that start with what the first-byte filter treats apart: a space (`+` may
        // encode it), `%`, a non-ASCII byte, `&` and `=` (which no pair's name holds).
        let mut custom = defaults.clone();
        custom.extend([" p", "%x", "é", "&a", "=b", "p"].map(String::from));
        let mut rng = Rng(0x5eed_1234_abcd_0002);
        let mut redacted = 0;
        for names in [&defaults, &custom] {
            for case in 0..200_000 {
                let doc = random_doc(&mut rng, names);
                let want = reference::pairs(&doc, names);
                redacted += usize::from(want.is_some());
                assert_eq!(
                    redact_form(&doc, names),
                    want,
                    "case {case}: {:?}",
                    String::from_utf8_lossy(&doc)
                );
            }
        }
        assert!(redacted > 20_000, "only {redacted} inputs redacted");
    }

    #[test]
    fn find_byte_finds_the_first_occurrence() {
        let mut rng = Rng(0x5eed_1234_abcd_0004);
        for len in 0..70 {
            for _ in 0..30 {
                // Mostly filler, so a first hit can lie in any block.
                let hay: Vec<u8> = (0..len)
                    .map(|_| {
                        let pick = rng.below(20);
                        [b'?', b'#', 0, 0xbf].get(pick).copied().unwrap_or(b'a')
                    })
                    .collect();
                for needle in [b'?', b'#', 0, 0xbf, b'a'] {
                    assert_eq!(
                        find_byte(&hay, needle),
                        hay.iter().position(|&b| b == needle),
                        "{hay:?} {needle}"
                    );
                }
            }
        }
    }

    #[test]
    fn specials_at_marks_exactly_the_quotes_and_backslashes_before_the_end() {
        // Every length around the step sizes, every start, so both the full loads and the
        // tail (shifted last block or padded copy) are covered.
        let mut rng = Rng(0x5eed_1234_abcd_0003);
        for len in 1..50 {
            for _ in 0..20 {
                let b: Vec<u8> = (0..len)
                    .map(|_| [b'a', b'"', b'\\', 0, 0xff, 0x5c ^ 0x80][rng.below(6)])
                    .collect();
                for pos in 0..len {
                    let mut mask = specials_at(&b, pos);
                    let mut got = Vec::new();
                    while mask != 0 {
                        got.push(pos + lowest_offset(mask));
                        mask &= mask - 1;
                    }
                    let want: Vec<usize> = (pos..len.min(pos + STEP))
                        .filter(|&k| b[k] == b'"' || b[k] == b'\\')
                        .collect();
                    assert_eq!(got, want, "{b:?} from {pos}");
                }
            }
        }
    }

    #[test]
    fn special_bytes_marks_exactly_quotes_and_backslashes() {
        // Every byte value at every position, among neighbours that could carry into it.
        for fill in [0u8, b'"', b'\\', 0x7f, 0x80, 0xff, b'a'] {
            for at in 0..8 {
                for b in 0..=255u8 {
                    let mut w = [fill; 8];
                    w[at] = b;
                    let mask = special_bytes(u64::from_le_bytes(w));
                    for (j, &x) in w.iter().enumerate() {
                        let set = mask >> (8 * j) & 0xff;
                        let want = if x == b'"' || x == b'\\' { 0x80 } else { 0 };
                        assert_eq!(set, want, "fill {fill:#x}, {b:#x} at {at}, byte {j}");
                    }
                }
            }
        }
    }
}
