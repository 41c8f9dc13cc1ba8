//! The clean shape: the common head read without httparse (see the parent module's
//! "Cost of the common head"), 16 bytes at a time where SSE2 allows.
//!
//! Invariant: [`parse_clean`] returns a head only when httparse (as the parent configures
//! it) would succeed on it, and then the same [`Head`], field for field
//! (`fast_path_equals_httparse` checks it on mutated heads); every SIMD scan here has a
//! word-at-a-time or byte loop twin the tests compare it with.

use super::*;

/// Reads a head in the common clean shape without httparse; `None` when it is not in that
/// shape, and the general path ([`parse_request_shaped`], [`parse_response_shaped`]) decides.
///
/// The clean shape, on which httparse (as configured here) succeeds and whose [`Head`] this
/// equals field for field (`fast_path_equals_httparse` checks it on mutated heads):
/// * every line ends with CR LF (no bare LF, no obs-fold: the [`HeadShape`] says so), and
///   the head is its lines then the empty line, nothing before or after;
/// * a request line `TOKEN SP target SP HTTP/1.0|1` with a target of visible ASCII
///   (`!`..`~`), or a status line `HTTP/1.0|1 SP DDD`, then optionally `SP` and a reason
///   of HTAB, SP, visible ASCII or obs-text (read as [`raw_reason`] does);
/// * header lines `TOKEN ":" OWS value`, the value free of control bytes but HTAB (CR,
///   LF, NUL, DEL included), at most `max_headers` of them.
///
/// Anything else — a higher minor version, control bytes, a non-ASCII target, a space
/// before the colon, too many lines — goes the general way, which handles (or refuses)
/// it as before. Names are lower-cased while they are checked, and looked up in
/// [`COMMON_NAMES`] from those same bytes.
pub(super) fn parse_clean(
    side_is_client: bool,
    s: &[u8],
    shape: &HeadShape,
    cfg: &HttpConfig,
) -> Option<Head> {
    if shape.bare_lf || shape.obs_fold {
        return None;
    }
    let lf = shape.first_lf?;
    // No bare LF: the start line ends with CR LF (`lf` > 0).
    let line = s.get(..lf.checked_sub(1)?)?;
    let (start, minor) = if side_is_client {
        clean_request_line(line)?
    } else {
        clean_status_line(line)?
    };
    let slots = header_slots(cfg);
    let mut b = HeadBuilder::new(cfg, 8);
    let mut lines = 0;
    let mut p = lf + 1;
    loop {
        // The empty line: the last line of the head.
        if *s.get(p)? == b'\r' {
            return (s.len() == p + 2 && s[p + 1] == b'\n').then(|| b.finish(start, minor));
        }
        // One line more than httparse has slots for is its `TooManyHeaders`.
        if lines == slots {
            return None;
        }
        let (name, common, name_end) = match short_name(s, p) {
            Some(short) => {
                let name = match short.common {
                    Some(i) => HeaderName::Borrowed(COMMON_NAMES[i]),
                    None => HeaderName::Owned(short.to_owned_name()),
                };
                (name, short.common, p + short.len)
            }
            None => clean_name(s, p)?,
        };
        // `clean_name` and `short_name` end the name at its colon.
        p = name_end + 1;
        while matches!(s.get(p), Some(b' ' | b'\t')) {
            p += 1;
        }
        let (cr, ascii) = clean_value_end(s, p)?;
        let value = trim_end(&s[p..cr]);
        p = cr + 2;
        let value = match ascii {
            // SAFETY: `clean_value_end` found every byte from `p` to `cr` ASCII, and
            // `value` is a part of them; ASCII is UTF-8.
            true => WireValue::Ascii(unsafe { std::str::from_utf8_unchecked(value) }),
            false => WireValue::Latin1(value),
        };
        b.add(name, common, value);
        lines += 1;
    }
}

/// The header name at `s[p..]`, read a byte at a time: lower-cased, its index in
/// [`COMMON_NAMES`], and the index of the colon that ends it; `None` when the name is
/// empty or ends with anything but a colon (not the clean shape). Any name [`short_name`]
/// reads, this reads alike (it is the general form, for long names and rare tchars).
fn clean_name(s: &[u8], mut p: usize) -> Option<(HeaderName, Option<usize>, usize)> {
    // The name, lower-cased into `low` (a common name fits: see COMMON_MAX_LEN).
    let name_start = p;
    let mut low = [0u8; 32];
    loop {
        let l = NAME_LOWER[*s.get(p)? as usize];
        if l == 0 {
            break;
        }
        if let Some(slot) = low.get_mut(p - name_start) {
            *slot = l;
        }
        p += 1;
    }
    let len = p - name_start;
    if len == 0 || s[p] != b':' {
        return None;
    }
    let (name, common) = if len < low.len() {
        let word =
            |k: usize| u64::from_le_bytes(*low[8 * k..].first_chunk::<8>().unwrap_or(&[0; 8]));
        let w = [word(0), word(1), word(2), word(3)];
        match common_lowered(&w, len) {
            Some(i) => (HeaderName::Borrowed(COMMON_NAMES[i]), Some(i)),
            // SAFETY: `low[..len]` holds `NAME_LOWER` bytes: tchars, ASCII.
            None => (
                HeaderName::Owned(unsafe { std::str::from_utf8_unchecked(&low[..len]) }.to_owned()),
                None,
            ),
        }
    } else {
        // Longer than every common name. SAFETY: tchars, ASCII.
        let raw = unsafe { std::str::from_utf8_unchecked(&s[name_start..p]) };
        (HeaderName::Owned(raw.to_ascii_lowercase()), None)
    };
    Some((name, common, p))
}

/// A header name of 1 to 15 bytes, each a letter, digit or `-`, as [`short_name`] read it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct ShortName {
    /// Its bytes lower-cased, as two little-endian words, zeros past its end.
    words: [u64; 2],
    /// Its length (1..=15).
    len: usize,
    /// Its index in [`COMMON_NAMES`] ([`common_short`]).
    common: Option<usize>,
}

impl ShortName {
    /// The lower-cased name as a string (for a name not in [`COMMON_NAMES`]).
    fn to_owned_name(self) -> String {
        let mut b = [0u8; 16];
        b[..8].copy_from_slice(&self.words[0].to_le_bytes());
        b[8..].copy_from_slice(&self.words[1].to_le_bytes());
        // Letters, digits and `-` (see `short_name`): ASCII, so the lossy conversion is
        // a check and a copy, and never replaces anything.
        String::from_utf8_lossy(&b[..self.len]).into_owned()
    }
}

/// The common header name, read 16 bytes at a time with SSE2 (part of every x86_64 CPU):
/// `Some` when the 16 bytes at `s[p..]` are in bounds and hold a colon at index `len` in
/// 1..=15 with only letters, digits and `-` before it. Anything else (a longer name,
/// another tchar such as `_`, no colon, fewer than 16 bytes left) is `None`, and
/// [`clean_name`] reads the name a byte at a time; for a name this reads, it finds the same
/// lower-cased bytes and the same colon (letters, digits and `-` are tchars, and
/// `NAME_LOWER` lower-cases letters only), which `short_names_equal_the_byte_loop` checks.
///
/// A name found in [`COMMON_NAMES`] needs no check of its bytes: only `A`..=`Z` are
/// changed by lower-casing (to `a`..=`z`), so each of the `len` bytes before the colon
/// is the table name's byte (a lower-case letter, digit or `-`) or that letter's upper
/// case, all of them allowed. Only a name not in the table pays for the range tests.
#[cfg(target_arch = "x86_64")]
#[inline]
fn short_name(s: &[u8], p: usize) -> Option<ShortName> {
    /// 16 bytes 0xff, then 16 zeros: a mask of the first `n` bytes starts at `16 - n`.
    static KEEP: [u8; 32] = {
        let mut k = [0u8; 32];
        let mut i = 0;
        while i < 16 {
            k[i] = 0xff;
            i += 1;
        }
        k
    };
    use std::arch::x86_64::{
        __m128i, _mm_and_si128, _mm_cmpeq_epi8, _mm_cmpgt_epi8, _mm_cmplt_epi8, _mm_cvtsi128_si64,
        _mm_loadu_si128, _mm_movemask_epi8, _mm_or_si128, _mm_set1_epi8, _mm_unpackhi_epi64,
    };
    let chunk: &[u8; 16] = s.get(p..)?.first_chunk::<16>()?;
    // SAFETY: SSE2 is in the x86_64 baseline; the two loads read the 16 bytes of `chunk`
    // and of `keep`, references to exactly 16 bytes. The rest works on registers only.
    unsafe {
        let v = _mm_loadu_si128(chunk.as_ptr().cast::<__m128i>());
        let splat = |b: u8| _mm_set1_epi8(b as i8);
        // `a <= v <= b` for bytes `a`, `b` below 0x80: the compares are signed, so a byte
        // of 0x80 or more (negative) is never in range.
        let within = |v: __m128i, a: u8, b: u8| {
            _mm_and_si128(
                _mm_cmpgt_epi8(v, splat(a - 1)),
                _mm_cmplt_epi8(v, splat(b + 1)),
            )
        };
        let colons = _mm_movemask_epi8(_mm_cmpeq_epi8(v, splat(b':'))) as u32;
        let len = colons.trailing_zeros() as usize;
        // No colon: `len` is 32.
        if len == 0 || len > 15 {
            return None;
        }
        let upper = within(v, b'A', b'Z');
        let lower = _mm_or_si128(v, _mm_and_si128(upper, splat(0x20)));
        // Zero the bytes from the colon on: the 16 bytes of KEEP from `16 - len` are
        // 0xff exactly at indices below `len`.
        let keep = KEEP.get(16 - len..)?.first_chunk::<16>()?;
        let name = _mm_and_si128(lower, _mm_loadu_si128(keep.as_ptr().cast::<__m128i>()));
        let words = [
            _mm_cvtsi128_si64(name) as u64,
            _mm_cvtsi128_si64(_mm_unpackhi_epi64(name, name)) as u64,
        ];
        let common = common_short(words, len);
        if common.is_none() {
            let ok = _mm_or_si128(
                _mm_or_si128(within(lower, b'a', b'z'), within(v, b'0', b'9')),
                _mm_cmpeq_epi8(v, splat(b'-')),
            );
            let want = (1u32 << len) - 1;
            if _mm_movemask_epi8(ok) as u32 & want != want {
                return None;
            }
        }
        Some(ShortName { words, len, common })
    }
}

/// Portable build: every name goes through [`clean_name`].
#[cfg(not(target_arch = "x86_64"))]
#[inline]
fn short_name(_s: &[u8], _p: usize) -> Option<ShortName> {
    None
}

/// `NAME_LOWER[b]`: `b` lower-cased when it is a `tchar` (a header-name byte), else 0.
const NAME_LOWER: [u8; 256] = {
    let mut t = [0u8; 256];
    let mut b = 0;
    while b < 256 {
        let c = b as u8;
        if crate::http::detect::is_tchar(c) {
            t[b] = c.to_ascii_lowercase();
        }
        b += 1;
    }
    t
};

/// A request line in the clean shape (see [`parse_clean`]; `line` without its CR LF).
fn clean_request_line(line: &[u8]) -> Option<(StartLine, u8)> {
    let m = line.iter().position(|&b| NAME_LOWER[b as usize] == 0)?;
    let rest = line.get(m..)?;
    // " HTTP/1.x" ends the line; the target sits between the two spaces.
    let (target, version) = rest.split_at_checked(rest.len().checked_sub(9)?)?;
    let minor = match version {
        b" HTTP/1.0" => 0,
        b" HTTP/1.1" => 1,
        _ => return None,
    };
    let [b' ', target @ ..] = target else {
        return None;
    };
    if m == 0 || target.is_empty() || !visible_ascii(target) {
        return None;
    }
    // SAFETY: the method is tchars and the target visible ASCII: both ASCII.
    let (method, url) = unsafe {
        (
            std::str::from_utf8_unchecked(&line[..m]),
            std::str::from_utf8_unchecked(target),
        )
    };
    Some((
        StartLine::Request {
            method: method.to_owned(),
            url: url.to_owned(),
        },
        minor,
    ))
}

/// A status line in the clean shape (see [`parse_clean`]; `line` without its CR LF).
fn clean_status_line(line: &[u8]) -> Option<(StartLine, u8)> {
    let minor = match line.get(..9)? {
        b"HTTP/1.0 " => 0,
        b"HTTP/1.1 " => 1,
        _ => return None,
    };
    let [a, b, c] = *line.get(9..12)? else {
        return None;
    };
    if !(a.is_ascii_digit() && b.is_ascii_digit() && c.is_ascii_digit()) {
        return None;
    }
    let reason = match line.get(12..) {
        Some([]) => &[][..],
        Some([b' ', reason @ ..])
            if reason
                .iter()
                .all(|&b| b == b'\t' || (b >= b' ' && b != 0x7f)) =>
        {
            reason
        }
        _ => return None,
    };
    let status = u16::from(a - b'0') * 100 + u16::from(b - b'0') * 10 + u16::from(c - b'0');
    Some((
        StartLine::Response {
            status,
            reason: latin1(reason),
        },
        minor,
    ))
}

const LO7: u64 = 0x7f7f_7f7f_7f7f_7f7f;
const ONES: u64 = 0x0101_0101_0101_0101;
const HIGH: u64 = 0x8080_8080_8080_8080;

/// The eight bytes of `s` from `p` as a little-endian word, zeros past the end.
#[inline]
fn load_word(s: &[u8], p: usize) -> u64 {
    match s.get(p..).and_then(|r| r.first_chunk::<8>()) {
        Some(w) => u64::from_le_bytes(*w),
        None => {
            let rest = s.get(p..).unwrap_or_default();
            let mut w = [0u8; 8];
            w[..rest.len()].copy_from_slice(rest);
            u64::from_le_bytes(w)
        }
    }
}

/// The high bit of each byte of `x` that is a control byte (below `0x20`) or DEL. Exact
/// for every byte (no carry crosses a byte: each sum is at most `0x7f + 0x60`).
#[inline]
fn control_bytes(x: u64) -> u64 {
    let low = x & LO7;
    let at_least_space = low + 0x60 * ONES;
    let del = low + ONES;
    (!(at_least_space | x) | (del & !x)) & HIGH
}

/// Whether every byte of `b` is visible ASCII (`!`..=`~`): 16 bytes at a time with SSE2
/// (part of every x86_64 CPU), the last 16 overlapping the ones before; shorter `b` are
/// read by [`visible_ascii_words`].
#[cfg(target_arch = "x86_64")]
fn visible_ascii(b: &[u8]) -> bool {
    use std::arch::x86_64::{
        __m128i, _mm_and_si128, _mm_cmpgt_epi8, _mm_cmplt_epi8, _mm_loadu_si128, _mm_movemask_epi8,
        _mm_set1_epi8,
    };
    let visible = |block: &[u8; 16]| {
        // SAFETY: SSE2 is in the x86_64 baseline; the load reads the 16 bytes of `block`,
        // a reference to exactly 16 bytes.
        unsafe {
            let v = _mm_loadu_si128(block.as_ptr().cast::<__m128i>());
            // Signed compares: a byte of 0x80 or more is negative, never above SP.
            let ok = _mm_and_si128(
                _mm_cmpgt_epi8(v, _mm_set1_epi8(b' ' as i8)),
                _mm_cmplt_epi8(v, _mm_set1_epi8(0x7f)),
            );
            _mm_movemask_epi8(ok) == 0xffff
        }
    };
    let Some(last) = b.last_chunk::<16>() else {
        return visible_ascii_words(b);
    };
    b.chunks_exact(16)
        .all(|c| c.first_chunk::<16>().is_some_and(visible))
        && visible(last)
}

/// [`visible_ascii`] (portable version).
#[cfg(not(target_arch = "x86_64"))]
fn visible_ascii(b: &[u8]) -> bool {
    visible_ascii_words(b)
}

/// Whether every byte of `b` is visible ASCII (`!`..=`~`), eight at a time.
fn visible_ascii_words(b: &[u8]) -> bool {
    let bad = |x: u64| {
        let low = x & LO7;
        // Below `!`, DEL, or obs-text (high bit).
        (!((low + 0x5f * ONES) | x) | (low + ONES) | x) & HIGH
    };
    let mut chunks = b.chunks_exact(8);
    let mut any = 0;
    for c in &mut chunks {
        any |= bad(u64::from_le_bytes(*c.first_chunk::<8>().unwrap_or(&[0; 8])));
    }
    let rest = chunks.remainder();
    let mut w = [b'!'; 8];
    w[..rest.len()].copy_from_slice(rest);
    any | bad(u64::from_le_bytes(w)) == 0
}

/// The index of the CR that ends the header line whose value starts at `p`, when the
/// value holds no control byte but HTAB and the CR is followed by LF; `None` otherwise.
///
/// Sixteen bytes at a time with SSE2 (part of every x86_64 CPU); fewer than sixteen left
/// (the last line of every head) are read from the last 16 bytes of `s`, the bits of the
/// bytes before `p` shifted out. Like [`clean_value_end_words`], it stops at the first
/// control byte but HTAB from `p` on, and is `None` when there is none before the end.
///
/// With the CR's index comes whether the bytes from `p` to it are all ASCII (from the
/// same loads; `false` also means "not known", for a buffer under 16 bytes).
#[cfg(target_arch = "x86_64")]
#[inline]
fn clean_value_end(s: &[u8], mut p: usize) -> Option<(usize, bool)> {
    use std::arch::x86_64::{
        __m128i, _mm_cmpeq_epi8, _mm_loadu_si128, _mm_min_epu8, _mm_movemask_epi8, _mm_or_si128,
        _mm_set1_epi8,
    };
    /// Bit `i` of the first: `block[i]` is a control byte (below 0x20) or DEL; of the
    /// second: `block[i]` is not ASCII.
    #[inline(always)]
    fn controls(block: &[u8; 16]) -> (u32, u32) {
        // SAFETY: SSE2 is in the x86_64 baseline; the one load reads the 16 bytes of
        // `block`, a reference to exactly 16 bytes. The rest works on registers only.
        unsafe {
            let v = _mm_loadu_si128(block.as_ptr().cast::<__m128i>());
            // Unsigned min(v, 0x1f) == v exactly when v <= 0x1f; and DEL.
            let control = _mm_cmpeq_epi8(_mm_min_epu8(v, _mm_set1_epi8(0x1f)), v);
            let del = _mm_cmpeq_epi8(v, _mm_set1_epi8(0x7f));
            (
                _mm_movemask_epi8(_mm_or_si128(control, del)) as u32,
                _mm_movemask_epi8(v) as u32,
            )
        }
    }
    // Bit per byte from `p` on, so far: not ASCII.
    let mut high = 0;
    loop {
        let rest = s.len().checked_sub(p).filter(|&r| r > 0)?;
        let (mut m, h) = match s[p..].first_chunk::<16>() {
            Some(block) => controls(block),
            None => match s.last_chunk::<16>() {
                // 1..=15 bytes left: byte `p` is at index `16 - rest` of the last block.
                Some(last) => {
                    let (m, h) = controls(last);
                    (m >> (16 - rest), h >> (16 - rest))
                }
                None => return clean_value_end_words(s, p).map(|q| (q, false)),
            },
        };
        while m != 0 {
            let q = p + m.trailing_zeros() as usize;
            match s.get(q) {
                Some(b'\t') => m &= m - 1,
                Some(b'\r') if s.get(q + 1) == Some(&b'\n') => {
                    // `q - p` is below 16: the bytes of this block before the CR.
                    let before = (1u32 << (q - p)) - 1;
                    return Some((q, high | (h & before) == 0));
                }
                _ => return None,
            }
        }
        // No CR in this block: all its bytes come before it.
        high |= h;
        p += 16;
    }
}

/// [`clean_value_end`] (portable version).
#[cfg(not(target_arch = "x86_64"))]
#[inline]
fn clean_value_end(s: &[u8], p: usize) -> Option<(usize, bool)> {
    clean_value_end_words(s, p).map(|q| (q, false))
}

/// [`clean_value_end`] eight bytes at a time (zeros past the end of `s` are control
/// bytes: a value that runs to the end has no CR LF and is `None`).
#[inline]
fn clean_value_end_words(s: &[u8], mut p: usize) -> Option<usize> {
    loop {
        let mut m = control_bytes(load_word(s, p));
        while m != 0 {
            let q = p + (m.trailing_zeros() / 8) as usize;
            match s.get(q) {
                Some(b'\t') => m &= m - 1,
                Some(b'\r') if s.get(q + 1) == Some(&b'\n') => return Some(q),
                _ => return None,
            }
        }
        p += 8;
    }
}

/// `v` without trailing SP and HTAB (httparse's value end).
fn trim_end(mut v: &[u8]) -> &[u8] {
    while let [rest @ .., b' ' | b'\t'] = v {
        v = rest;
    }
    v
}

/// The index of the [`COMMON_NAMES`] entry whose bytes are `w` (a lower-cased name of
/// `len` bytes as little-endian words, zeros past its end).
#[inline]
fn common_lowered(w: &[u64; 4], len: usize) -> Option<usize> {
    let range = COMMON_BY_LEN.get(len..=len + 1)?;
    (range[0]..range[1]).find(|&i| COMMON_WORDS[i].lower == *w)
}

/// The index of the [`COMMON_NAMES`] entry that is `w` (`len` bytes, at most 15, as
/// little-endian words, zeros past its end): one probe of [`COMMON_SHORT`], then one
/// comparison of words and length. (The length too: `w` may hold NUL bytes, which would
/// look like the padding of a shorter name.)
#[inline]
fn common_short(w: [u64; 2], len: usize) -> Option<usize> {
    let i = usize::from(COMMON_SHORT.slots[short_slot(w, COMMON_SHORT.mul)]);
    // An empty slot holds 0xff, past the end of the table.
    let c = COMMON_WORDS.get(i)?;
    (c.lower[0] == w[0] && c.lower[1] == w[1] && c.len == len).then_some(i)
}

/// The [`COMMON_SHORT`] slot of the name `w` for the multiplier `mul`.
#[inline(always)]
const fn short_slot(w: [u64; 2], mul: u64) -> usize {
    ((w[0] ^ w[1].rotate_left(29)).wrapping_mul(mul) >> 56) as usize
}

/// A collision-free hash table of the [`COMMON_NAMES`] of at most 15 bytes.
struct ShortTable {
    /// `slots[short_slot(w, mul)]`: the index of the name whose words are `w`, or 0xff.
    slots: [u8; 256],
    mul: u64,
}

/// Built at compile time: multipliers are tried until no two short names share a slot
/// (with 256 slots for under 40 names, a few dozen tries).
const COMMON_SHORT: ShortTable = {
    assert!(COMMON_NAMES.len() < 0xff, "slots hold indices below 0xff");
    let mut mul: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut tries = 0;
    loop {
        assert!(
            tries < 100_000,
            "no collision-free multiplier for COMMON_SHORT"
        );
        let mut slots = [0xffu8; 256];
        let mut ok = true;
        let mut i = 0;
        while i < COMMON_NAMES.len() {
            if COMMON_NAMES[i].len() <= 15 {
                let l = COMMON_WORDS[i].lower;
                let slot = short_slot([l[0], l[1]], mul);
                if slots[slot] != 0xff {
                    ok = false;
                    break;
                }
                slots[slot] = i as u8;
            }
            i += 1;
        }
        if ok {
            break ShortTable { slots, mul };
        }
        mul = mul
            .wrapping_mul(0x5851_f42d_4c95_7f2d)
            .wrapping_add(0x1405_7b7e_f767_814f)
            | 1;
        tries += 1;
    }
};

#[cfg(test)]
mod tests {
    use super::*;

    /// `short_name` reads a name (or declines) exactly as the byte loop of `clean_name`
    /// does: names of every length around its 15-byte limit and the 32-byte `low` buffer,
    /// every byte value at every position, and heads that end mid-name.
    #[test]
    fn short_names_equal_the_byte_loop() {
        let mut short = 0;
        let mut check = |s: &[u8], p: usize| {
            let Some(n) = short_name(s, p) else {
                return;
            };
            short += 1;
            let (name, common, colon) = clean_name(s, p).expect("the byte loop reads it too");
            assert_eq!(colon, p + n.len, "{s:?}");
            assert_eq!(name, n.to_owned_name(), "{s:?}");
            assert_eq!(common, n.common, "{s:?}");
            assert_eq!(
                common.map(|i| COMMON_NAMES[i]),
                COMMON_NAMES.iter().copied().find(|c| *c == name)
            );
        };
        let mut names: Vec<Vec<u8>> = COMMON_NAMES.iter().map(|n| n.as_bytes().to_vec()).collect();
        names.extend(
            COMMON_NAMES
                .iter()
                .map(|n| n.to_ascii_uppercase().into_bytes()),
        );
        for len in [1, 2, 7, 8, 9, 14, 15, 16, 17, 30, 31, 32, 33, 40] {
            names.push(b"Ab-9".iter().copied().cycle().take(len).collect());
        }
        for name in &names {
            for i in 0..=name.len() {
                for b in 0..=255u8 {
                    let mut n = name.clone();
                    n.insert(i, b);
                    let mut head = b"\r\n".to_vec();
                    head.extend_from_slice(&n);
                    head.extend_from_slice(b": v\r\n\r\n");
                    for cut in (2..=head.len()).rev().take(24) {
                        check(&head[..cut], 2);
                    }
                    n[i] = b;
                    let mut head = n.clone();
                    head.extend_from_slice(b":x\r\n\r\n0123456789abcdef");
                    check(&head, 0);
                }
            }
        }
        assert!(short > 100_000, "{short}");
    }

    /// The SSE2 value scan and the word-at-a-time one agree at every start position, on
    /// values around the 8- and 16-byte steps holding every byte value at every place and
    /// running to the end of the buffer or not.
    #[test]
    fn value_scans_agree() {
        let (mut hits, mut ascii) = (0, 0);
        for len in [0, 1, 7, 8, 9, 15, 16, 17, 23, 31, 32, 33, 40] {
            for at in 0..len.max(1) {
                for b in 0..=255u8 {
                    for base in [&b"a\tz ~\x80"[..], b"a\tz ~b"] {
                        let mut v: Vec<u8> = base.iter().copied().cycle().take(len).collect();
                        if at < len {
                            v[at] = b;
                        }
                        for tail in [&b"\r\nX: y\r\n\r\n"[..], b"\r", b"\rx", b"", b"\n"] {
                            let mut s = v.clone();
                            s.extend_from_slice(tail);
                            for p in 0..=s.len() + 1 {
                                let words = clean_value_end_words(&s, p);
                                let fast = clean_value_end(&s, p);
                                assert_eq!(fast.map(|(q, _)| q), words, "{s:?} from {p}");
                                if let Some((q, is_ascii)) = fast {
                                    hits += 1;
                                    // Never claims ASCII wrongly; exact with SSE2 and 16 bytes.
                                    let want = s[p..q].is_ascii();
                                    assert!(!is_ascii || want, "{s:?} from {p}");
                                    if cfg!(target_arch = "x86_64") && s.len() >= 16 {
                                        assert_eq!(is_ascii, want, "{s:?} from {p}");
                                    }
                                    ascii += usize::from(is_ascii);
                                }
                            }
                        }
                    }
                }
            }
        }
        assert!(hits > 10_000 && ascii > 1_000, "{hits} {ascii}");
    }

    /// The SSE2 and the word-at-a-time visible-ASCII tests agree on every byte value at
    /// every place of targets around the 8- and 16-byte steps, and with a byte filter.
    #[test]
    fn visible_ascii_agrees() {
        for len in [0, 1, 7, 8, 9, 15, 16, 17, 24, 31, 32, 33, 47, 48, 49] {
            for at in 0..len {
                for b in 0..=255u8 {
                    let mut t: Vec<u8> = b"/a?b=~!".iter().copied().cycle().take(len).collect();
                    t[at] = b;
                    let want = t.iter().all(|&c| (b'!'..=b'~').contains(&c));
                    assert_eq!(visible_ascii(&t), want, "{t:?}");
                    assert_eq!(visible_ascii_words(&t), want, "{t:?}");
                }
            }
        }
    }
}
