//! Where messages start: protocol detection on a connection's first bytes,
//! resynchronisation after an error, a gap or a mid-stream start, and the end
//! of a message head.
//!
//! Detection: a connection whose first bytes start with a TLS record header
//! (`0x16 0x03`) or the HTTP/2 preface is not HTTP/1.x, decided at once. Any
//! other first bytes that are not a message start are searched for a plausible
//! one ([`find_start`]) beginning within the first [`DETECT_WINDOW`] bytes (a
//! complete request line `METHOD SP target SP HTTP/1.x`, or a status line
//! `HTTP/1.x NNN`), at most [`DETECT_LIMIT`] bytes in: real clients sometimes
//! send a few bytes of garbage before their first request. Only when there is
//! none is the connection declared other binary. Detection decides on the
//! bytes at hand (it waits only for an incomplete candidate, or for the first
//! bytes of a method, a status line or the HTTP/2 preface), so a short binary
//! first segment is other binary at once, and the garbage and the first byte
//! of the message after it must arrive in the same (first) segment.
//!
//! Every function here looks at a bounded prefix of its input and answers
//! "yes", "no" or "need more bytes"; none of them keeps state, so the caller
//! decides what to buffer (at most the bound given here).

use crate::message::Side;

/// What the first bytes of a connection look like.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Detected {
    /// Not enough bytes to tell (never returned for more than 33 bytes after
    /// leading empty lines).
    NeedMore,
    /// Plausibly HTTP/1.x.
    Http,
    /// A TLS record (`0x16 0x03 ..`).
    Tls,
    /// The HTTP/2 connection preface (`PRI * HTTP/2.0`), or a server's first
    /// SETTINGS frame.
    Http2,
    /// Anything else.
    Other,
}

/// A message start found by [`find_start`] must begin within this many first bytes.
pub(crate) const DETECT_WINDOW: usize = 64;
/// Most bytes held while detecting (and longest request line [`find_start`] accepts).
pub(crate) const DETECT_LIMIT: usize = 4096;

/// Longest method token accepted on a connection's first line.
const MAX_METHOD: usize = 32;
/// The start of the HTTP/2 connection preface (RFC 9113 §3.4).
const H2_PREFACE: &[u8] = b"PRI * HTTP/2.0";

/// `tchar` of RFC 9110 §5.6.2.
pub(crate) const fn is_tchar(b: u8) -> bool {
    matches!(b,
        b'!' | b'#' | b'$' | b'%' | b'&' | b'\'' | b'*' | b'+' | b'-' | b'.' |
        b'^' | b'_' | b'`' | b'|' | b'~' | b'0'..=b'9' | b'A'..=b'Z' | b'a'..=b'z')
}

/// Number of leading CR and LF bytes (empty lines allowed before a message, RFC 9112 §2.2).
pub(crate) fn leading_newlines(s: &[u8]) -> usize {
    s.iter().take_while(|&&b| b == b'\r' || b == b'\n').count()
}

/// Classifies the first bytes a side sent on a connection that was seen from its start.
pub(crate) fn classify(side: Side, s: &[u8]) -> Detected {
    let s = &s[leading_newlines(s)..];
    let Some(&first) = s.first() else {
        return Detected::NeedMore;
    };
    if first == 0x16 {
        return match s.get(1) {
            None => Detected::NeedMore,
            Some(0x03) => Detected::Tls,
            Some(_) => Detected::Other,
        };
    }
    match side {
        Side::Client => {
            let n = s.len().min(H2_PREFACE.len());
            if s[..n] == H2_PREFACE[..n] {
                return if n == H2_PREFACE.len() {
                    Detected::Http2
                } else {
                    Detected::NeedMore
                };
            }
            for (i, &b) in s.iter().enumerate().take(MAX_METHOD + 1) {
                if b == b' ' {
                    return if i > 0 {
                        Detected::Http
                    } else {
                        Detected::Other
                    };
                }
                if !is_tchar(b) {
                    return Detected::Other;
                }
            }
            if s.len() > MAX_METHOD {
                Detected::Other
            } else {
                Detected::NeedMore
            }
        }
        Side::Server => {
            // A server that speaks first with HTTP/2 (prior knowledge): its
            // SETTINGS frame (RFC 9113 §3.4), on stream 0, without ACK.
            if first == 0 && s.len() < 9 {
                return Detected::NeedMore;
            }
            if first == 0 && s[3] == 0x4 && s[4] == 0 && s[5..9] == [0; 4] && s[2].is_multiple_of(6)
            {
                return Detected::Http2;
            }
            const P: &[u8] = b"HTTP/";
            let n = s.len().min(P.len());
            if s[..n] != P[..n] {
                Detected::Other
            } else if n == P.len() {
                Detected::Http
            } else {
                Detected::NeedMore
            }
        }
    }
}

/// `ports: any`: like [`classify`], but the client's first bytes must be a whole
/// request line `METHOD SP target SP HTTP/1.x` (method in upper case) or the HTTP/2
/// preface, and the server's a status line `HTTP/1.x NNN` or a SETTINGS frame. On an
/// unlisted port any protocol may speak, and a token followed by a space (`220 smtp`,
/// memcached's `get key`) is not evidence of HTTP. HTTP/0.9 is therefore not
/// recognised there.
pub(crate) fn classify_strict(side: Side, s: &[u8]) -> Detected {
    let c = classify(side, s);
    if c != Detected::Http {
        return c;
    }
    let t = &s[leading_newlines(s)..];
    let line = match side {
        Side::Client => request_line(t, DETECT_LIMIT),
        Side::Server => status_line(t),
    };
    match line {
        Candidate::Yes => Detected::Http,
        Candidate::Maybe => Detected::NeedMore,
        Candidate::No => Detected::Other,
    }
}

/// `ports: any`: which role the sender of first bytes `s` plays, if they tell: a
/// request line, the HTTP/2 preface or a TLS ClientHello are sent by a client; a
/// status line, an HTTP/2 server's SETTINGS or a TLS ServerHello by a server (also
/// after up to [`DETECT_WINDOW`] bytes of garbage, see [`find_start`]). `None` while
/// they do not tell (yet).
pub(crate) fn first_bytes_role(s: &[u8]) -> Option<Side> {
    let t = &s[leading_newlines(s)..];
    // TLS record header (5 bytes), then the handshake type: 1 ClientHello, 2 ServerHello.
    if t.len() >= 6 && t[0] == 0x16 && t[1] == 0x03 {
        return match t[5] {
            1 => Some(Side::Client),
            2 => Some(Side::Server),
            _ => None,
        };
    }
    for side in [Side::Client, Side::Server] {
        if matches!(classify_strict(side, t), Detected::Http | Detected::Http2) {
            return Some(side);
        }
    }
    for side in [Side::Client, Side::Server] {
        if let Resync::Found(_) = find_start(side, t) {
            return Some(side);
        }
    }
    None
}

/// What one pass over a complete head found besides its end: where its start
/// line ends and whether it has one of the rare shapes the parser must treat
/// specially (see `head.rs`). Lets the common head — CRLF line ends, no folds —
/// go to the parser without any other scan.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct HeadShape {
    /// Index of the first LF: the end of the start line (`None` only for bytes
    /// without any LF, never for a head [`find_head_end`] delimited).
    pub(crate) first_lf: Option<usize>,
    /// Some LF is not preceded by CR (a bare-LF line end, RFC 9112 §2.2).
    pub(crate) bare_lf: bool,
    /// An LF after the start line's is followed by SP or HTAB: an obsolete line
    /// fold (RFC 9112 §5.2).
    pub(crate) obs_fold: bool,
}

impl HeadShape {
    /// The shape of `head` (every LF in it; the last LF's successor, outside
    /// `head`, is not looked at).
    pub(crate) fn of(head: &[u8]) -> HeadShape {
        let mut shape = HeadShape::default();
        for p in LineFeeds::new(head, 0) {
            shape.note(head, p);
        }
        shape
    }

    /// Takes the LF at `s[p]` into account.
    #[inline]
    fn note(&mut self, s: &[u8], p: usize) {
        if p == 0 || s[p - 1] != b'\r' {
            self.bare_lf = true;
        }
        match self.first_lf {
            None => self.first_lf = Some(p),
            Some(_) => {
                if matches!(s.get(p + 1), Some(b' ' | b'\t')) {
                    self.obs_fold = true;
                }
            }
        }
    }
}

/// Finds the end of a message head: the index just after the empty line
/// (`\n\r\n` or `\n\n`), searching from `from`, and the [`HeadShape`] of
/// `s[..end]`. `s` must not start with an empty line. On `Err`, the position to
/// resume searching from once more bytes arrived (so a growing head is scanned
/// once, never quadratically).
///
/// The head's shape comes out of the same pass when the search starts at 0
/// (the usual case: a head that arrived in one piece); a resumed search scans
/// `s[..end]` once more for it.
pub(crate) fn find_head_end(s: &[u8], from: usize) -> Result<(usize, HeadShape), usize> {
    let mut shape = HeadShape::default();
    for p in LineFeeds::new(s, from) {
        let end = match s.get(p + 1) {
            None => return Err(p),
            // The empty line's own LF is a bare one.
            Some(b'\n') => Some(p + 2),
            Some(b'\r') => match s.get(p + 2) {
                None => return Err(p),
                Some(b'\n') => Some(p + 3),
                Some(_) => None,
            },
            Some(_) => None,
        };
        if let Some(end) = end {
            if from == 0 {
                shape.note(s, p);
                shape.bare_lf |= s[end - 1] == b'\n' && s[end - 2] == b'\n';
            } else {
                shape = HeadShape::of(&s[..end]);
            }
            return Ok((end, shape));
        }
        shape.note(s, p);
    }
    Err(s.len())
}

/// The positions of the LF bytes of `s` from `from` on, in order. Tests sixteen
/// bytes at a time ([`lf_bits`], SSE2 on x86_64): a head is a few short lines, and one
/// library search call per line costs more than the line's bytes.
struct LineFeeds<'a> {
    s: &'a [u8],
    /// Start of the next block of 16 bytes to test.
    next: usize,
    /// Start of the block `mask` belongs to.
    base: usize,
    /// Bit `i`: `s[base + i]` is an LF not yet returned.
    mask: u32,
}

impl<'a> LineFeeds<'a> {
    fn new(s: &'a [u8], from: usize) -> Self {
        LineFeeds {
            s,
            next: from,
            base: from,
            mask: 0,
        }
    }
}

impl Iterator for LineFeeds<'_> {
    type Item = usize;

    #[inline]
    fn next(&mut self) -> Option<usize> {
        while self.mask == 0 {
            let rest = self.s.get(self.next..).filter(|r| !r.is_empty())?;
            self.mask = match rest.first_chunk::<16>() {
                Some(block) => lf_bits(block),
                None => match self.s.last_chunk::<16>() {
                    // Fewer than 16 bytes left (1..=15): the last 16 of `s`, with the
                    // bits of the bytes before `next` shifted out.
                    Some(last) => lf_bits(last) >> (16 - rest.len()),
                    None => {
                        // `s` is shorter than 16 bytes: padded with zeros (not LFs).
                        let mut block = [0u8; 16];
                        block[..rest.len()].copy_from_slice(rest);
                        lf_bits(&block)
                    }
                },
            };
            self.base = self.next;
            self.next += 16;
        }
        let p = self.base + self.mask.trailing_zeros() as usize;
        self.mask &= self.mask - 1;
        Some(p)
    }
}

/// Bit `i` set when `block[i]` is an LF: one SSE2 compare (SSE2 is in the x86_64
/// baseline).
#[cfg(target_arch = "x86_64")]
#[inline(always)]
fn lf_bits(block: &[u8; 16]) -> u32 {
    use std::arch::x86_64::{
        __m128i, _mm_cmpeq_epi8, _mm_loadu_si128, _mm_movemask_epi8, _mm_set1_epi8,
    };
    // SAFETY: SSE2 is in the x86_64 baseline; the load reads the 16 bytes of `block`, a
    // reference to exactly 16 bytes.
    unsafe {
        let v = _mm_loadu_si128(block.as_ptr().cast::<__m128i>());
        _mm_movemask_epi8(_mm_cmpeq_epi8(v, _mm_set1_epi8(b'\n' as i8))) as u32
    }
}

/// [`lf_bits`] (portable version).
#[cfg(not(target_arch = "x86_64"))]
#[inline(always)]
fn lf_bits(block: &[u8; 16]) -> u32 {
    block
        .iter()
        .enumerate()
        .fold(0, |m, (i, &b)| m | (u32::from(b == b'\n') << i))
}

/// Whether a line start looks like the start of a message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Candidate {
    Yes,
    No,
    Maybe,
}

/// Result of a resynchronisation scan.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Resync {
    /// A message starts at this offset.
    Found(usize),
    /// A message may start at this offset; more bytes are needed (fewer than
    /// `max_line` bytes follow it).
    Maybe(usize),
    /// No message start in these bytes.
    NotFound,
}

/// Scans for the next plausible message start at a line start: a request line
/// `METHOD SP target SP HTTP/1.x` on the client side (METHOD in upper case),
/// a status line `HTTP/1.x NNN` on the server side. Offset 0 is a line start
/// only if `at_line_start`.
pub(crate) fn resync(side: Side, s: &[u8], at_line_start: bool, max_line: usize) -> Resync {
    let mut pos = if at_line_start {
        Some(0)
    } else {
        next_line_start(s, 0)
    };
    while let Some(p) = pos {
        if p >= s.len() {
            break;
        }
        let c = match side {
            Side::Client => request_line(&s[p..], max_line),
            Side::Server => status_line(&s[p..]),
        };
        match c {
            Candidate::Yes => return Resync::Found(p),
            Candidate::Maybe => return Resync::Maybe(p),
            Candidate::No => {}
        }
        pos = next_line_start(s, p);
    }
    Resync::NotFound
}

/// Searches the first bytes of a connection, which [`classify`] found to be
/// neither a message start nor TLS nor HTTP/2, for a plausible message start
/// beginning at any offset below [`DETECT_WINDOW`] (not only at line starts):
/// a complete request line (method in upper case, starting a word) on the
/// client side, a status line on the server side. `Maybe` while an earlier
/// candidate is still incomplete (its line is shorter than [`DETECT_LIMIT`]).
/// Linear in `s`: each byte is inside at most one candidate's method and
/// request-target.
pub(crate) fn find_start(side: Side, s: &[u8]) -> Resync {
    let word = |b: u8| b.is_ascii_uppercase() || b == b'-' || b == b'_';
    for p in 0..s.len().min(DETECT_WINDOW) {
        let c = match side {
            Side::Client => {
                if !s[p].is_ascii_uppercase() || (p > 0 && word(s[p - 1])) {
                    continue;
                }
                request_line(&s[p..], DETECT_LIMIT)
            }
            Side::Server => {
                if s[p] != b'H' {
                    continue;
                }
                status_line(&s[p..])
            }
        };
        match c {
            Candidate::Yes => return Resync::Found(p),
            Candidate::Maybe => return Resync::Maybe(p),
            Candidate::No => {}
        }
    }
    Resync::NotFound
}

fn next_line_start(s: &[u8], from: usize) -> Option<usize> {
    memchr::memchr(b'\n', s.get(from..)?).map(|i| from + i + 1)
}

/// Longest method accepted when resynchronising.
const RESYNC_MAX_METHOD: usize = 24;

fn request_line(s: &[u8], max_line: usize) -> Candidate {
    let mut i = 0;
    if !s.first().is_some_and(|b| b.is_ascii_uppercase()) {
        return if s.is_empty() {
            Candidate::Maybe
        } else {
            Candidate::No
        };
    }
    while i < s.len()
        && i < RESYNC_MAX_METHOD
        && (s[i].is_ascii_uppercase() || s[i] == b'-' || s[i] == b'_')
    {
        i += 1;
    }
    if i == s.len() {
        return if i < RESYNC_MAX_METHOD {
            Candidate::Maybe
        } else {
            Candidate::No
        };
    }
    if s[i] != b' ' {
        return Candidate::No;
    }
    i += 1;
    let target = i;
    while i < s.len() && s[i] > b' ' && s[i] != 0x7f {
        i += 1;
        if i >= max_line {
            return Candidate::No;
        }
    }
    if i == s.len() {
        return Candidate::Maybe;
    }
    if i == target || s[i] != b' ' {
        return Candidate::No;
    }
    version_then_eol(&s[i + 1..])
}

/// `HTTP/1.0` or `HTTP/1.1`, then `\r\n` or `\n`.
fn version_then_eol(rest: &[u8]) -> Candidate {
    const V: &[u8] = b"HTTP/1.";
    for (k, &want) in V.iter().enumerate() {
        match rest.get(k) {
            None => return Candidate::Maybe,
            Some(&b) if b == want => {}
            Some(_) => return Candidate::No,
        }
    }
    match rest.get(7) {
        None => return Candidate::Maybe,
        Some(b'0' | b'1') => {}
        Some(_) => return Candidate::No,
    }
    match rest.get(8) {
        None => Candidate::Maybe,
        Some(b'\n') => Candidate::Yes,
        Some(b'\r') => match rest.get(9) {
            None => Candidate::Maybe,
            Some(b'\n') => Candidate::Yes,
            Some(_) => Candidate::No,
        },
        Some(_) => Candidate::No,
    }
}

/// `HTTP/1.x NNN` followed by SP, CR or LF.
fn status_line(s: &[u8]) -> Candidate {
    const V: &[u8] = b"HTTP/1.";
    for (k, &want) in V.iter().enumerate() {
        match s.get(k) {
            None => return Candidate::Maybe,
            Some(&b) if b == want => {}
            Some(_) => return Candidate::No,
        }
    }
    let pattern: [fn(u8) -> bool; 6] = [
        |b| b == b'0' || b == b'1',
        |b| b == b' ',
        |b| b.is_ascii_digit(),
        |b| b.is_ascii_digit(),
        |b| b.is_ascii_digit(),
        |b| b == b' ' || b == b'\r' || b == b'\n',
    ];
    for (k, ok) in pattern.iter().enumerate() {
        match s.get(7 + k) {
            None => return Candidate::Maybe,
            Some(&b) if ok(b) => {}
            Some(_) => return Candidate::No,
        }
    }
    Candidate::Yes
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classifies_first_bytes() {
        assert_eq!(
            classify(Side::Client, b"GET / HTTP/1.1\r\n"),
            Detected::Http
        );
        assert_eq!(classify(Side::Client, b"\r\nGE"), Detected::NeedMore);
        assert_eq!(
            classify(Side::Client, b"\x16\x03\x01\x02\x00"),
            Detected::Tls
        );
        assert_eq!(classify(Side::Client, b"PRI * HT"), Detected::NeedMore);
        assert_eq!(
            classify(Side::Client, b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"),
            Detected::Http2
        );
        assert_eq!(classify(Side::Client, b"PRI / HTTP/1.1"), Detected::Http);
        assert_eq!(classify(Side::Client, b"\x00\x01binary"), Detected::Other);
        assert_eq!(classify(Side::Client, &[b'A'; 40]), Detected::Other);
        assert_eq!(classify(Side::Server, b"HTT"), Detected::NeedMore);
        assert_eq!(classify(Side::Server, b"HTTP/1.1 200"), Detected::Http);
        assert_eq!(classify(Side::Server, b"220 smtp"), Detected::Other);
        assert_eq!(classify(Side::Server, b"\x16\x03\x03"), Detected::Tls);
        // A server's SETTINGS first (prior-knowledge HTTP/2).
        assert_eq!(
            classify(
                Side::Server,
                b"\x00\x00\x06\x04\x00\x00\x00\x00\x00\x00\x03"
            ),
            Detected::Http2
        );
        assert_eq!(classify(Side::Server, b"\x00\x00\x06"), Detected::NeedMore);
        assert_eq!(
            classify(Side::Server, b"\x00\x00\x06\x00\x00\x00\x00\x00\x01"),
            Detected::Other
        );
    }

    #[test]
    fn finds_a_start_after_leading_garbage() {
        let s = b"\xdd\x00\x00\x00 GET /txt HTTP/1.1\r\nHost: a\r\n\r\n";
        assert_eq!(classify(Side::Client, s), Detected::Other);
        assert_eq!(find_start(Side::Client, s), Resync::Found(5));
        // Not at a word's middle: "XGET" is the candidate, not "GET".
        assert_eq!(
            find_start(Side::Client, b"\x01XGET / HTTP/1.0\n"),
            Resync::Found(1)
        );
        for cut in 0..=s.len() {
            let want = match cut {
                0..=5 => Resync::NotFound,
                6..=23 => Resync::Maybe(5),
                _ => Resync::Found(5),
            };
            assert_eq!(find_start(Side::Client, &s[..cut]), want, "cut {cut}");
        }
        assert_eq!(
            find_start(Side::Client, b"\x00\x01binary\r\nmore"),
            Resync::NotFound
        );
        assert_eq!(
            find_start(Side::Client, b"\x00GET / HTTP/2.0\r\n"),
            Resync::NotFound
        );
        // Only within the first DETECT_WINDOW bytes.
        let mut late = vec![0u8; DETECT_WINDOW];
        late.extend_from_slice(b"GET / HTTP/1.1\r\n\r\n");
        assert_eq!(find_start(Side::Client, &late), Resync::NotFound);
        let mut edge = vec![0u8; DETECT_WINDOW - 1];
        edge.extend_from_slice(b"GET / HTTP/1.1\r\n\r\n");
        assert_eq!(
            find_start(Side::Client, &edge),
            Resync::Found(DETECT_WINDOW - 1)
        );
        assert_eq!(
            find_start(Side::Server, b"\x00\x00HTTP/1.1 200 OK\r\n"),
            Resync::Found(2)
        );
        assert_eq!(
            find_start(Side::Server, b"SSH-2.0-OpenSSH\r\n"),
            Resync::NotFound
        );
        assert_eq!(find_start(Side::Server, b"\x00HTTP/1."), Resync::Maybe(1));
    }

    #[test]
    fn finds_head_end_incrementally() {
        let end = |s: &[u8], from| find_head_end(s, from).map(|(end, _)| end);
        let h = b"GET / HTTP/1.1\r\nHost: a\r\n\r\nBODY";
        assert_eq!(end(h, 0), Ok(27));
        assert_eq!(end(b"GET / HTTP/1.1\nHost: a\n\nX", 0), Ok(24));
        let part = &h[..16];
        let resume = end(part, 0).unwrap_err();
        assert_eq!(end(h, resume), Ok(27));
        for cut in 0..h.len() {
            if let Err(r) = end(&h[..cut], 0) {
                assert_eq!(
                    find_head_end(h, r),
                    Ok((27, HeadShape::of(&h[..27]))),
                    "cut {cut}"
                );
            }
        }
        // `\n\r` followed by anything but LF does not end a head.
        assert_eq!(end(b"GET / HTTP/1.1\n\rX: a\r\n\r\n", 0), Ok(24));
        assert_eq!(end(b"GET / HTTP/1.1\r\n\r", 0), Err(15));
        assert_eq!(end(b"GET / HTTP/1.1", 0), Err(14));
    }

    /// The shape of every head, against a byte-at-a-time reading of its definition.
    #[test]
    fn head_shapes() {
        fn slow(head: &[u8]) -> HeadShape {
            let lfs: Vec<usize> = (0..head.len()).filter(|&p| head[p] == b'\n').collect();
            HeadShape {
                first_lf: lfs.first().copied(),
                bare_lf: lfs.iter().any(|&p| p == 0 || head[p - 1] != b'\r'),
                obs_fold: lfs
                    .iter()
                    .skip(1)
                    .any(|&p| matches!(head.get(p + 1), Some(b' ' | b'\t'))),
            }
        }
        let heads: [&[u8]; 9] = [
            b"GET / HTTP/1.1\r\nHost: a\r\n\r\n",
            b"GET / HTTP/1.1\nHost: a\r\n\r\n",
            b"GET / HTTP/1.1\r\nHost: a\r\n\n",
            b"GET / HTTP/1.1\r\nX: a\r\n b\r\n\r\n",
            b"GET / HTTP/1.1\r\nX: a\n\tb\r\n\r\n",
            // Whitespace after the start line is not a fold.
            b"HTTP/1.1 200 OK\r\n X: a\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nA-Long-Header-Name: with a long value, 1234567890\r\n\r\n",
            b"GET /\n\n",
            b"G\n\n",
        ];
        for head in heads {
            let want = slow(head);
            assert_eq!(
                HeadShape::of(head),
                want,
                "{:?}",
                String::from_utf8_lossy(head)
            );
            // Found in the same pass, and after resuming at every split point.
            let mut s = head.to_vec();
            s.extend_from_slice(b"BODY \n \r\n");
            assert_eq!(find_head_end(&s, 0), Ok((head.len(), want)));
            for cut in 0..head.len() {
                if let Err(r) = find_head_end(&s[..cut], 0) {
                    assert_eq!(find_head_end(&s, r), Ok((head.len(), want)), "cut {cut}");
                }
            }
        }
        assert_eq!(HeadShape::of(b"no line feed"), HeadShape::default());
        // Every LF at every offset of a long run of words.
        let mut s = vec![b'a'; 40];
        for p in 0..40 {
            s[p] = b'\n';
            assert_eq!(LineFeeds::new(&s, 0).collect::<Vec<_>>(), vec![p]);
            assert_eq!(LineFeeds::new(&s, p).collect::<Vec<_>>(), vec![p]);
            assert!(LineFeeds::new(&s, p + 1).next().is_none());
            s[p] = 0x8a;
        }
        assert!(LineFeeds::new(&s, 0).next().is_none());
        // Buffers of every length around the 16-byte blocks (shorter than one, and with a
        // tail read from the overlapping last block), LFs in many patterns, every start.
        for len in 0..50 {
            for pattern in [0u64, 1, 0b101, 0x8000_0001, u64::MAX, 0x1234_5678_9abc_def1] {
                let s: Vec<u8> = (0..len)
                    .map(|i| {
                        if pattern >> (i % 64) & 1 == 1 {
                            b'\n'
                        } else {
                            0x8a
                        }
                    })
                    .collect();
                for from in 0..=len + 2 {
                    let want: Vec<usize> = (from..len).filter(|&p| s[p] == b'\n').collect();
                    assert_eq!(
                        LineFeeds::new(&s, from).collect::<Vec<_>>(),
                        want,
                        "{len} {pattern:x} {from}"
                    );
                }
            }
        }
    }

    #[test]
    fn resyncs_on_line_starts() {
        let s = b"garbage\r\nmore GET / HTTP/1.1\r\nPOST /x HTTP/1.0\r\n";
        assert_eq!(resync(Side::Client, s, true, 1024), Resync::Found(30));
        assert_eq!(
            resync(Side::Client, b"GET / HTTP/1.1\n", true, 99),
            Resync::Found(0)
        );
        assert_eq!(
            resync(Side::Client, b"GET / HTTP/1.1\n", false, 99),
            Resync::NotFound
        );
        assert_eq!(
            resync(Side::Client, b"xx\nGET /a HT", false, 99),
            Resync::Maybe(3)
        );
        assert_eq!(
            resync(Side::Client, b"xx\nget / HTTP/1.1\n", false, 99),
            Resync::NotFound
        );
        assert_eq!(
            resync(Side::Server, b"abc\nHTTP/1.1 200 OK\r\n", false, 99),
            Resync::Found(4)
        );
        assert_eq!(
            resync(Side::Server, b"abc\nHTTP/1.1 20", false, 99),
            Resync::Maybe(4)
        );
        assert_eq!(
            resync(Side::Server, b"HTTP/2 200\n", true, 99),
            Resync::NotFound
        );
    }

    #[test]
    fn any_port_roles_come_from_the_first_bytes() {
        let c = Some(Side::Client);
        let sv = Some(Side::Server);
        for (bytes, want) in [
            (&b"GET / HTTP/1.1\r\n"[..], c),
            (b"\r\nPOST /x HTTP/1.0\n", c),
            (b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", c),
            (&[0x16, 0x03, 0x01, 0x00, 0x05, 0x01], c),
            (b"HTTP/1.1 200 OK\r\n", sv),
            (&[0, 0, 6, 4, 0, 0, 0, 0, 0], sv),
            (&[0x16, 0x03, 0x03, 0x00, 0x05, 0x02], sv),
            (b"\x00\x01junk then GET / HTTP/1.1\r\n", c),
            // Not evidence of HTTP on an unlisted port.
            (b"220 mail.example ESMTP\r\n", None),
            (b"get key\r\n", None),
            (b"GET /", None),
            (b"SSH-2.0-OpenSSH_9.2\r\n", None),
        ] {
            assert_eq!(
                first_bytes_role(bytes),
                want,
                "{:?}",
                String::from_utf8_lossy(bytes)
            );
        }
        assert_eq!(
            classify_strict(Side::Client, b"get key\r\n"),
            Detected::Other
        );
        assert_eq!(classify(Side::Client, b"get key\r\n"), Detected::Http);
        assert_eq!(
            classify_strict(Side::Client, b"GET / HT"),
            Detected::NeedMore
        );
        assert_eq!(
            classify_strict(Side::Client, b"GET / HTTP/1.1\r\n"),
            Detected::Http
        );
        assert_eq!(
            classify_strict(Side::Server, b"HTTP/1.1 404 "),
            Detected::Http
        );
    }
}
