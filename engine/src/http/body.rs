//! Message body framing (RFC 9112 §6 and §7) as an explicit state machine.
//!
//! [`request_framing`] and [`response_framing`] apply the message-body-length
//! rules of RFC 9112 §6.3 to a parsed head; a [`Decoder`] then consumes the
//! body from the byte stream one slice at a time, never buffering framing
//! bytes, and hands body bytes to a [`BodyBuf`], which keeps at most
//! `max_body_size` of them — and only while the worker's bodies pool ([`crate::budget`]) has room.
//! All sizes use checked arithmetic: an overflowing chunk size is an error, never
//! a panic or a wrap.

use super::head::{ContentLength, Head, TransferCoding};
use crate::budget::Pool;

/// Longest chunk extension accepted on one chunk-size line (as hyper).
pub(crate) const CHUNK_EXT_LIMIT: usize = 16 * 1024;

/// How a message's body is delimited.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Framing {
    /// No body at all.
    None,
    /// Exactly this many bytes.
    Length(u64),
    /// The chunked transfer coding.
    Chunked,
    /// Everything until the server closes the connection (responses only).
    Close,
}

/// Why a head's framing headers cannot be used.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum FramingError {
    /// Unparsable, overflowing or conflicting `Content-Length`.
    InvalidContentLength,
    /// A request whose `Transfer-Encoding` does not end in `chunked`.
    InvalidTransferEncoding,
}

/// The framing of a request and whether it had both `Transfer-Encoding` and `Content-Length`.
pub(crate) fn request_framing(
    head: &Head,
    is_connect: bool,
) -> Result<(Framing, bool), FramingError> {
    // RFC 9110 §9.3.6: "A CONNECT request message does not have content."
    if is_connect {
        return Ok((Framing::None, false));
    }
    let both = head.transfer_coding != TransferCoding::Absent
        && head.content_length != ContentLength::Absent;
    match head.transfer_coding {
        // RFC 9112 §6.3 (3): "If a message is received with both a Transfer-Encoding
        // and a Content-Length header field, the Transfer-Encoding overrides the
        // Content-Length."
        TransferCoding::Chunked => Ok((Framing::Chunked, both)),
        // RFC 9112 §6.3 (4): "If a Transfer-Encoding header field is present in a
        // request and the chunked transfer coding is not the final encoding, the
        // message body length cannot be determined reliably; the server MUST
        // respond with the 400 (Bad Request) status code and then close the
        // connection."
        TransferCoding::NotChunked => Err(FramingError::InvalidTransferEncoding),
        TransferCoding::Absent => match head.content_length {
            // RFC 9112 §6.3 (5): an invalid Content-Length without Transfer-Encoding
            // makes the framing invalid.
            ContentLength::Invalid => Err(FramingError::InvalidContentLength),
            ContentLength::Valid(0) => Ok((Framing::None, false)),
            ContentLength::Valid(n) => Ok((Framing::Length(n), false)),
            // RFC 9112 §6.3 (7): "If this is a request message and none of the
            // above are true, then the message body length is zero".
            ContentLength::Absent => Ok((Framing::None, false)),
        },
    }
}

/// The framing of a response with status `status` to a request that was a
/// `HEAD` (`to_head`). `101` and `2xx`-to-`CONNECT` are handled by the caller
/// (the connection stops being HTTP).
pub(crate) fn response_framing(
    head: &Head,
    status: u16,
    to_head: bool,
) -> Result<(Framing, bool), FramingError> {
    // RFC 9112 §6.3 (1): "Any response to a HEAD request and any response with a
    // 1xx (Informational), 204 (No Content), or 304 (Not Modified) status code is
    // always terminated by the first empty line after the header fields".
    if to_head || (100..200).contains(&status) || status == 204 || status == 304 {
        return Ok((Framing::None, false));
    }
    let both = head.transfer_coding != TransferCoding::Absent
        && head.content_length != ContentLength::Absent;
    match head.transfer_coding {
        TransferCoding::Chunked => Ok((Framing::Chunked, both)),
        // RFC 9112 §6.3 (4): "If a Transfer-Encoding header field is present in a
        // response and the chunked transfer coding is not the final encoding, the
        // message body length is determined by reading the connection until it is
        // closed by the server."
        TransferCoding::NotChunked => Ok((Framing::Close, both)),
        TransferCoding::Absent => match head.content_length {
            ContentLength::Invalid => Err(FramingError::InvalidContentLength),
            ContentLength::Valid(0) => Ok((Framing::None, false)),
            ContentLength::Valid(n) => Ok((Framing::Length(n), false)),
            // RFC 9112 §6.3 (8): "Otherwise, this is a response message without a
            // declared message body length, so the message body length is
            // determined by the number of octets received prior to the server
            // closing the connection."
            ContentLength::Absent => Ok((Framing::Close, false)),
        },
    }
}

/// The body bytes kept for a message: at most `cap` of them, and the full size.
#[derive(Debug)]
pub(crate) struct BodyBuf {
    /// At most `cap` bytes (fewer after a gap: bytes after a hole are not kept; fewer
    /// when the budget ran out). Its whole capacity is charged to `budget`.
    data: Vec<u8>,
    /// Bytes of `budget` charged for `data`'s capacity.
    charged: usize,
    /// Every body byte seen, plus gap bytes skipped inside a known length.
    pub(crate) size: u64,
    cap: usize,
    /// A gap fell inside the body: `data` stops at the hole.
    pub(crate) gapped: bool,
    /// The worker's budget ran out while this body still had room under `cap`.
    pub(crate) cut_by_budget: bool,
    budget: Pool,
    /// Decodes the body's `Content-Encoding` as it arrives (`decodeBodies`); fed
    /// until the first gap. Boxed: a decoder's state is hundreds of bytes and few
    /// bodies have one, while every `BodyBuf` is moved as part of a message in progress.
    pub(crate) decoder: Option<Box<super::decode::ContentDecoder>>,
}

impl BodyBuf {
    pub(crate) fn new(cap: usize, budget: Pool) -> Self {
        BodyBuf {
            data: Vec::new(),
            charged: 0,
            size: 0,
            cap,
            gapped: false,
            cut_by_budget: false,
            budget,
            decoder: None,
        }
    }

    /// Appends body bytes, keeping at most `cap` of them (and what the budget grants).
    pub(crate) fn push(&mut self, b: &[u8]) {
        self.size = self.size.saturating_add(b.len() as u64);
        if !self.gapped {
            if let Some(d) = self.decoder.as_mut() {
                d.push(b);
            }
        }
        if !self.gapped && !self.cut_by_budget {
            let room = self.cap.saturating_sub(self.data.len());
            let want = room.min(b.len());
            let n = want.min(self.make_room(want));
            self.cut_by_budget = n < want;
            self.data.extend_from_slice(&b[..n]);
        }
    }

    /// Grows `data` (geometrically, never past `cap`) so that `want` more bytes fit,
    /// charging the budget for the capacity first; returns how many fit.
    fn make_room(&mut self, want: usize) -> usize {
        let len = self.data.len();
        let free = self.charged.saturating_sub(len);
        if want <= free {
            return want;
        }
        let target = (len + want)
            .max(self.charged.saturating_mul(2))
            .min(self.cap);
        // When the pool is short of the geometric step, this keeps what it has.
        self.charged += self.budget.take_up_to(target.saturating_sub(self.charged));
        if self.data.capacity() == 0 {
            // The first bytes of a body (most bodies come in one piece): a plain
            // allocation, not the growth path `reserve_exact` takes.
            self.data = Vec::with_capacity(self.charged);
        } else {
            self.data.reserve_exact(self.charged - len);
        }
        let cap = self.data.capacity();
        if cap > self.charged {
            // The allocator rounded up: account for what it gave.
            self.budget.force_take(cap - self.charged);
            self.charged = cap;
        }
        want.min(self.charged - len)
    }

    /// Accounts for `n` body bytes lost in a gap.
    pub(crate) fn skip(&mut self, n: u64) {
        self.size = self.size.saturating_add(n);
        self.gapped = true;
    }

    /// The kept bytes.
    pub(crate) fn data(&self) -> &[u8] {
        &self.data
    }

    /// Takes the kept bytes out (into a finished message), giving their budget back.
    pub(crate) fn take_data(&mut self) -> Vec<u8> {
        self.budget.give(std::mem::take(&mut self.charged));
        std::mem::take(&mut self.data)
    }
}

impl Drop for BodyBuf {
    fn drop(&mut self) {
        self.budget.give(self.charged);
    }
}

/// Why a body could not be decoded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum BodyError {
    /// A malformed chunk-size line, or no CRLF after chunk data.
    InvalidChunk,
    /// A chunk size beyond `u64`.
    ChunkSizeOverflow,
    /// A chunk extension longer than [`CHUNK_EXT_LIMIT`].
    ChunkExtensionTooLarge,
    /// A trailer section longer than the head limit.
    TrailersTooLarge,
}

/// Progress of one [`Decoder::decode`] call.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Decoded {
    /// Bytes of the input that belong to this body (framing included).
    pub(crate) consumed: usize,
    /// The body ended within them.
    pub(crate) done: bool,
}

/// What a gap did to a body.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum GapOutcome {
    /// The gap lay inside the body; framing continues (`done`: it ended exactly there).
    Skipped { done: bool },
    /// The body ended inside the gap; `excess` gap bytes lie after it.
    Beyond { excess: u64 },
    /// The framing cannot be followed across the gap.
    Lost,
}

/// Body decoder: one state per framing, one small function per state.
#[derive(Debug)]
pub(crate) enum Decoder {
    /// `Content-Length`: bytes still expected.
    Length { remaining: u64 },
    /// Chunked transfer coding.
    Chunked(Chunked),
    /// Close-delimited: everything until FIN.
    Eof,
}

/// Chunked decoder state (RFC 9112 §7.1).
#[derive(Debug)]
pub(crate) struct Chunked {
    state: ChunkedState,
    /// Size of the current chunk still to read (or being parsed).
    size: u64,
    /// Bytes of chunk extension on the current size line.
    ext_len: usize,
    /// Bytes of trailer section so far.
    trailer_len: usize,
    /// The message had a non-empty trailer section.
    pub(crate) had_trailers: bool,
    /// A framing line (chunk size, end of chunk data, trailer, final empty line)
    /// ended with a bare LF instead of CRLF: accepted (RFC 9112 §2.2 lets a
    /// recipient do so), and counted by the caller.
    pub(crate) bare_lf: bool,
    /// Whitespace followed a chunk size (`a \r\n`): accepted (as hyper and
    /// llhttp's lenient spaces-after-chunk-size mode), counted by the caller.
    pub(crate) size_whitespace: bool,
    /// The previous framing byte (0 after chunk data), to tell a bare LF.
    prev: u8,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum ChunkedState {
    /// First hex digit of a chunk size.
    SizeStart,
    /// Further hex digits.
    Size,
    /// Whitespace after the size (tolerated, as hyper and browsers do).
    SizeLws,
    /// `;` chunk extensions up to the line end (ignored).
    Extension,
    /// LF after the size line's CR.
    SizeLf,
    /// Chunk data.
    Data,
    /// CR after chunk data.
    DataCr,
    /// LF after chunk data.
    DataLf,
    /// Start of a trailer line or of the final empty line.
    TrailerStart,
    /// Inside a trailer line.
    Trailer,
    /// LF of the final empty line.
    EndLf,
    /// The body is complete.
    Done,
}

impl Decoder {
    /// A decoder for `framing`; `None` for [`Framing::None`].
    pub(crate) fn new(framing: Framing) -> Option<Decoder> {
        match framing {
            Framing::None | Framing::Length(0) => None,
            Framing::Length(n) => Some(Decoder::Length { remaining: n }),
            Framing::Chunked => Some(Decoder::Chunked(Chunked {
                state: ChunkedState::SizeStart,
                size: 0,
                ext_len: 0,
                trailer_len: 0,
                had_trailers: false,
                bare_lf: false,
                size_whitespace: false,
                prev: 0,
            })),
            Framing::Close => Some(Decoder::Eof),
        }
    }

    /// True for a close-delimited body (ends at FIN).
    pub(crate) fn is_eof(&self) -> bool {
        matches!(self, Decoder::Eof)
    }

    /// The message had a trailer section.
    pub(crate) fn had_trailers(&self) -> bool {
        matches!(self, Decoder::Chunked(c) if c.had_trailers)
    }

    /// A chunked body with whitespace after a chunk size (see [`Chunked::size_whitespace`]).
    pub(crate) fn size_whitespace(&self) -> bool {
        matches!(self, Decoder::Chunked(c) if c.size_whitespace)
    }

    /// A chunked body with a framing line ended by a bare LF (see [`Chunked::bare_lf`]).
    pub(crate) fn bare_lf(&self) -> bool {
        matches!(self, Decoder::Chunked(c) if c.bare_lf)
    }

    /// Consumes body bytes from `s` into `body`. On error, also returns how
    /// many bytes were consumed, the offending byte included.
    pub(crate) fn decode(
        &mut self,
        s: &[u8],
        body: &mut BodyBuf,
        trailer_limit: usize,
    ) -> Result<Decoded, (BodyError, usize)> {
        match self {
            Decoder::Length { remaining } => {
                let n = (*remaining).min(s.len() as u64) as usize;
                body.push(&s[..n]);
                *remaining -= n as u64;
                Ok(Decoded {
                    consumed: n,
                    done: *remaining == 0,
                })
            }
            Decoder::Eof => {
                body.push(s);
                Ok(Decoded {
                    consumed: s.len(),
                    done: false,
                })
            }
            Decoder::Chunked(c) => c.decode(s, body, trailer_limit),
        }
    }

    /// Applies a gap of `len` bytes in the stream at the decoder's position.
    pub(crate) fn gap(&mut self, len: u64, body: &mut BodyBuf) -> GapOutcome {
        match self {
            Decoder::Length { remaining } => {
                if len <= *remaining {
                    *remaining -= len;
                    body.skip(len);
                    GapOutcome::Skipped {
                        done: *remaining == 0,
                    }
                } else {
                    let excess = len - *remaining;
                    body.skip(*remaining);
                    *remaining = 0;
                    GapOutcome::Beyond { excess }
                }
            }
            Decoder::Eof => {
                body.skip(len);
                GapOutcome::Skipped { done: false }
            }
            Decoder::Chunked(c) => {
                if c.state == ChunkedState::Data && len <= c.size {
                    c.size -= len;
                    body.skip(len);
                    if c.size == 0 {
                        c.state = ChunkedState::DataCr;
                    }
                    GapOutcome::Skipped { done: false }
                } else {
                    GapOutcome::Lost
                }
            }
        }
    }
}

fn hex(b: u8) -> Option<u64> {
    match b {
        b'0'..=b'9' => Some((b - b'0') as u64),
        b'a'..=b'f' => Some((b - b'a' + 10) as u64),
        b'A'..=b'F' => Some((b - b'A' + 10) as u64),
        _ => None,
    }
}

impl Chunked {
    fn decode(
        &mut self,
        s: &[u8],
        body: &mut BodyBuf,
        trailer_limit: usize,
    ) -> Result<Decoded, (BodyError, usize)> {
        let mut i = 0;
        while i < s.len() && self.state != ChunkedState::Done {
            if self.state == ChunkedState::Data {
                let n = self.size.min((s.len() - i) as u64) as usize;
                body.push(&s[i..i + n]);
                i += n;
                self.size -= n as u64;
                if self.size == 0 {
                    self.state = ChunkedState::DataCr;
                }
                self.prev = 0;
                continue;
            }
            let b = s[i];
            i += 1;
            self.bare_lf |= b == b'\n' && self.prev != b'\r';
            self.prev = b;
            self.state = self.step(b, trailer_limit).map_err(|e| (e, i))?;
        }
        Ok(Decoded {
            consumed: i,
            done: self.state == ChunkedState::Done,
        })
    }

    /// One framing byte.
    fn step(&mut self, b: u8, trailer_limit: usize) -> Result<ChunkedState, BodyError> {
        use ChunkedState::*;
        Ok(match self.state {
            SizeStart => {
                self.size = hex(b).ok_or(BodyError::InvalidChunk)?;
                Size
            }
            Size => match b {
                b' ' | b'\t' => {
                    self.size_whitespace = true;
                    SizeLws
                }
                b';' => Extension,
                b'\r' => SizeLf,
                b'\n' => self.size_line_done(),
                _ => {
                    let d = hex(b).ok_or(BodyError::InvalidChunk)?;
                    self.size = self
                        .size
                        .checked_mul(16)
                        .and_then(|v| v.checked_add(d))
                        .ok_or(BodyError::ChunkSizeOverflow)?;
                    Size
                }
            },
            SizeLws => match b {
                b' ' | b'\t' => SizeLws,
                b';' => Extension,
                b'\r' => SizeLf,
                b'\n' => self.size_line_done(),
                _ => return Err(BodyError::InvalidChunk),
            },
            Extension => match b {
                b'\r' => SizeLf,
                b'\n' => self.size_line_done(),
                b'\t' | 0x20..=0x7e | 0x80..=0xff => {
                    self.ext_len += 1;
                    if self.ext_len > CHUNK_EXT_LIMIT {
                        return Err(BodyError::ChunkExtensionTooLarge);
                    }
                    Extension
                }
                _ => return Err(BodyError::InvalidChunk),
            },
            SizeLf => match b {
                b'\n' => self.size_line_done(),
                _ => return Err(BodyError::InvalidChunk),
            },
            DataCr => match b {
                b'\r' => DataLf,
                b'\n' => SizeStart,
                _ => return Err(BodyError::InvalidChunk),
            },
            DataLf => match b {
                b'\n' => SizeStart,
                _ => return Err(BodyError::InvalidChunk),
            },
            TrailerStart => match b {
                b'\r' => EndLf,
                b'\n' => Done,
                _ => {
                    self.had_trailers = true;
                    self.trailer_byte(trailer_limit)?;
                    Trailer
                }
            },
            Trailer => {
                self.trailer_byte(trailer_limit)?;
                if b == b'\n' {
                    TrailerStart
                } else {
                    Trailer
                }
            }
            EndLf => match b {
                b'\n' => Done,
                _ => return Err(BodyError::InvalidChunk),
            },
            // Data and Done are handled by the caller.
            Data | Done => self.state,
        })
    }

    fn size_line_done(&mut self) -> ChunkedState {
        self.ext_len = 0;
        if self.size == 0 {
            ChunkedState::TrailerStart
        } else {
            ChunkedState::Data
        }
    }

    fn trailer_byte(&mut self, limit: usize) -> Result<(), BodyError> {
        self.trailer_len += 1;
        if self.trailer_len > limit {
            Err(BodyError::TrailersTooLarge)
        } else {
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chunked(input: &[u8], cap: usize) -> (Result<Decoded, (BodyError, usize)>, BodyBuf, bool) {
        let mut d = Decoder::new(Framing::Chunked).unwrap();
        let mut b = BodyBuf::new(cap, Pool::unlimited());
        let r = d.decode(input, &mut b, 1024);
        (r, b, d.had_trailers())
    }

    #[test]
    fn chunked_with_extensions_and_trailers() {
        let input = b"5;a=b;c=\"d e\"\r\nhello\r\n6\r\n world\r\n0;x\r\nT: 1\r\nU: 2\r\n\r\nNEXT";
        let (r, b, trailers) = chunked(input, 100);
        let r = r.unwrap();
        assert!(r.done);
        assert_eq!(&input[r.consumed..], b"NEXT");
        assert_eq!(b.data, b"hello world");
        assert_eq!(b.size, 11);
        assert!(trailers);
    }

    #[test]
    fn chunked_split_everywhere() {
        let input = b"5;ext\r\nhello\r\n1A\r\nabcdefghijklmnopqrstuvwxyz\r\n0\r\nT: x\r\n\r\n";
        for cut in 0..=input.len() {
            let mut d = Decoder::new(Framing::Chunked).unwrap();
            let mut b = BodyBuf::new(8, Pool::unlimited());
            let r1 = d.decode(&input[..cut], &mut b, 1024).unwrap();
            assert_eq!(r1.consumed, cut);
            let r2 = d.decode(&input[cut..], &mut b, 1024).unwrap();
            assert!(r2.done || r1.done);
            assert_eq!(b.size, 31);
            assert_eq!(b.data, b"helloabc");
        }
    }

    #[test]
    fn chunked_errors() {
        let (r, _, _) = chunked(b"zz\r\n", 10);
        assert_eq!(r.unwrap_err().0, BodyError::InvalidChunk);
        let (r, _, _) = chunked(b"ffffffffffffffffff\r\n", 10);
        assert_eq!(r.unwrap_err().0, BodyError::ChunkSizeOverflow);
        let (r, _, _) = chunked(b"ffffffffffffffff\r\n", 10);
        assert!(r.unwrap().consumed == 18);
        let (r, _, _) = chunked(b"2\r\nabX", 10);
        assert_eq!(r.unwrap_err(), (BodyError::InvalidChunk, 6));
        let mut long = b"1;".to_vec();
        long.extend(std::iter::repeat_n(b'a', CHUNK_EXT_LIMIT + 1));
        let (r, _, _) = chunked(&long, 10);
        assert_eq!(r.unwrap_err().0, BodyError::ChunkExtensionTooLarge);
        let mut tr = b"0\r\n".to_vec();
        tr.extend(std::iter::repeat_n(b'a', 2000));
        let (r, _, _) = chunked(&tr, 10);
        assert_eq!(r.unwrap_err().0, BodyError::TrailersTooLarge);
    }

    #[test]
    fn bare_lf_in_chunk_framing_is_accepted_and_flagged() {
        let input = b"1\nA\n1;abc\r\nB\r\n0\r\nT: x\n\r\nNEXT";
        let mut d = Decoder::new(Framing::Chunked).unwrap();
        let mut b = BodyBuf::new(100, Pool::unlimited());
        let r = d.decode(input, &mut b, 1024).unwrap();
        assert!(r.done);
        assert_eq!(&input[r.consumed..], b"NEXT");
        assert_eq!(b.data, b"AB");
        assert!(d.bare_lf());
        assert!(!d.size_whitespace());
        // Whitespace after a size is accepted and flagged.
        let mut d = Decoder::new(Framing::Chunked).unwrap();
        let mut b = BodyBuf::new(100, Pool::unlimited());
        assert!(
            d.decode(b"a \t\r\n0123456789\r\n0\r\n\r\n", &mut b, 1024)
                .unwrap()
                .done
        );
        assert_eq!(b.data, b"0123456789");
        assert!(d.size_whitespace() && !d.bare_lf());
        // Each kind of line alone: size line, after data, trailer, final empty line.
        for input in [
            &b"1\nA\r\n0\r\n\r\n"[..],
            b"1\r\nA\n0\r\n\r\n",
            b"0\r\nT: x\n\r\n",
            b"0\r\n\n",
        ] {
            let mut d = Decoder::new(Framing::Chunked).unwrap();
            let mut b = BodyBuf::new(100, Pool::unlimited());
            assert!(d.decode(input, &mut b, 1024).unwrap().done, "{input:?}");
            assert!(d.bare_lf(), "{input:?}");
        }
        // CRLF throughout, split at every byte (a CR at the end of one call): not flagged.
        let input = b"1;x\r\nA\r\n0\r\nT: x\r\n\r\n";
        for cut in 0..=input.len() {
            let mut d = Decoder::new(Framing::Chunked).unwrap();
            let mut b = BodyBuf::new(100, Pool::unlimited());
            d.decode(&input[..cut], &mut b, 1024).unwrap();
            assert!(d.decode(&input[cut..], &mut b, 1024).unwrap().done || cut == input.len());
            assert!(!d.bare_lf(), "cut {cut}");
        }
    }

    #[test]
    fn length_and_cap() {
        let mut d = Decoder::new(Framing::Length(10)).unwrap();
        let mut b = BodyBuf::new(4, Pool::unlimited());
        let r = d.decode(b"0123456789XYZ", &mut b, 0).unwrap();
        assert_eq!(
            r,
            Decoded {
                consumed: 10,
                done: true
            }
        );
        assert_eq!((b.data.as_slice(), b.size), (&b"0123"[..], 10));
    }

    #[test]
    fn gaps() {
        let mut d = Decoder::new(Framing::Length(10)).unwrap();
        let mut b = BodyBuf::new(100, Pool::unlimited());
        d.decode(b"01", &mut b, 0).unwrap();
        assert_eq!(d.gap(3, &mut b), GapOutcome::Skipped { done: false });
        d.decode(b"56789", &mut b, 0).unwrap();
        assert_eq!(
            (b.data.as_slice(), b.size, b.gapped),
            (&b"01"[..], 10, true)
        );
        let mut d = Decoder::new(Framing::Length(4)).unwrap();
        assert_eq!(d.gap(10, &mut b), GapOutcome::Beyond { excess: 6 });
        let mut d = Decoder::new(Framing::Chunked).unwrap();
        let mut b = BodyBuf::new(100, Pool::unlimited());
        d.decode(b"a\r\n01", &mut b, 100).unwrap();
        assert_eq!(d.gap(8, &mut b), GapOutcome::Skipped { done: false });
        assert!(d.decode(b"\r\n0\r\n\r\n", &mut b, 100).unwrap().done);
        assert_eq!(d.gap(1, &mut b), GapOutcome::Lost);
    }
}
