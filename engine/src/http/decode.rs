//! Content decoding (`decodeBodies`): `gzip` (and `x-gzip`), `deflate` (zlib, or
//! raw deflate as some servers send it), `br` and `zstd`, streamed as the body
//! arrives, so a body cut by `maxBodySize`, by a capture gap or by the end of
//! the connection still decodes up to where it stops. HTTP/1 (`pairing.rs`)
//! and HTTP/2 (`crate::http2`) share it through [`body_buf`] and
//! [`finish_body`], so both decode, count and report bodies the same way.
//!
//! # Invariants
//!
//! * Bomb limits (SPEC): the decoded bytes kept never exceed the body cap
//!   (`maxBodySize`); decoding stops once the output would pass 64× the
//!   compressed input seen so far ([`MAX_RATIO`]), so CPU spent is bounded by
//!   the input. `decodedBodySize` counts decoded bytes up to that stop.
//! * Memory: each decoder's state is charged to the worker's bodies pool
//!   before it is created ([`state_cost`]), a brotli or zstd window once the
//!   stream declares it (brotli: its first byte; zstd: the frame header);
//!   streams asking for a window over [`MAX_BROTLI_WINDOW_LOG`] (brotli) or
//!   [`MAX_ZSTD_WINDOW_LOG`] (zstd) bits are refused up front, and a zstd
//!   decoder refuses any later frame whose window is larger than the one
//!   charged, so no stream can make a decoder allocate more than it was charged.
//!   Refused or failed: the body is emitted as on the wire, counted.
//! * Only one coding is decoded (`Content-Encoding: gzip`); a list of codings
//!   (`gzip, br`) or an unknown one leaves the body as on the wire.

use std::io::Write;

use crate::budget::Pool;
use crate::message::{HeaderName, HeaderValue};

/// Decoding stops when output would exceed this many times the input seen.
pub(crate) const MAX_RATIO: u64 = 64;
/// Largest window (log2 bytes) a zstd stream may ask for: 8 MiB, the most RFC 9659
/// lets a `zstd` content coding use (a streaming `zstd -3` asks for 2 MiB); each
/// decoder is charged the window its frame declares, not this.
pub(crate) const MAX_ZSTD_WINDOW_LOG: u32 = 23;
/// Largest window (log2 bytes) a brotli stream may ask for: 4 MiB, the default
/// of the brotli library and so of Node's `zlib.brotliCompress` (servers behind
/// Express `compression`, Next.js, ...); each decoder is charged the window its
/// stream declares, not this.
pub(crate) const MAX_BROTLI_WINDOW_LOG: u32 = 22;

/// A content coding this module decodes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Coding {
    Gzip,
    Deflate,
    Br,
    Zstd,
}

/// The single coding named by `content-encoding`, if it is one we decode.
pub(crate) fn coding_of(headers: &[(HeaderName, HeaderValue)]) -> Option<Coding> {
    let (_, v) = headers.iter().find(|(n, _)| n == "content-encoding")?;
    let HeaderValue::Single(v) = v else {
        return None;
    };
    match v.trim_matches([' ', '\t']).to_ascii_lowercase().as_str() {
        "gzip" | "x-gzip" => Some(Coding::Gzip),
        "deflate" => Some(Coding::Deflate),
        "br" => Some(Coding::Br),
        "zstd" => Some(Coding::Zstd),
        _ => None,
    }
}

/// Bytes of the bodies pool charged for a decoder's state (an upper estimate).
pub(crate) fn state_cost(c: Coding) -> usize {
    match c {
        // inflate state with its 32 KiB window, plus flate2's 32 KiB buffer
        Coding::Gzip | Coding::Deflate => 96 * 1024,
        // tables and the output buffer; the window (brotli's ring buffer, zstd's
        // history) is charged once the stream declares it
        Coding::Br | Coding::Zstd => 192 * 1024,
    }
}

/// Where a decoder writes: keeps the first `cap` decoded bytes, counts the rest,
/// and fails a write past `limit` (the bomb limit).
#[derive(Debug)]
pub(crate) struct Sink {
    out: Vec<u8>,
    cap: usize,
    decoded: u64,
    limit: u64,
    /// The bomb limit stopped decoding.
    bomb: bool,
    /// Bytes of `pool` charged for `out`'s capacity.
    charged: usize,
    pool: Pool,
    /// The pool could not give room for the kept output.
    cut_by_budget: bool,
}

impl Write for Sink {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        let next = self.decoded.saturating_add(b.len() as u64);
        if next > self.limit {
            self.bomb = true;
            return Err(std::io::Error::other("decoded body over the bomb limit"));
        }
        self.decoded = next;
        let want = self.cap.saturating_sub(self.out.len()).min(b.len());
        if want > 0 && !self.cut_by_budget {
            let free = self.charged - self.out.len();
            if want > free {
                let target = (self.out.len() + want)
                    .max(self.charged.saturating_mul(2))
                    .min(self.cap);
                self.charged += self.pool.take_up_to(target - self.charged);
                self.out.reserve_exact(self.charged - self.out.len());
                if self.out.capacity() > self.charged {
                    self.pool.force_take(self.out.capacity() - self.charged);
                    self.charged = self.out.capacity();
                }
            }
            let n = want.min(self.charged - self.out.len());
            self.cut_by_budget = n < want;
            self.out.extend_from_slice(&b[..n]);
        }
        Ok(b.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

enum Inner {
    /// `deflate` before its first two bytes tell zlib from raw deflate.
    DeflateUndecided(Vec<u8>, Sink),
    Gzip(flate2::write::GzDecoder<Sink>),
    Zlib(flate2::write::ZlibDecoder<Sink>),
    Raw(flate2::write::DeflateDecoder<Sink>),
    Br(Box<brotli_decompressor::DecompressorWriter<Sink>>),
    Zstd(zstd::stream::write::Decoder<'static, Sink>),
    /// Decoding stopped (error or bomb limit); the sink is kept for what came out.
    Stopped(Sink),
    Gone,
}

/// Why decoding stopped early.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Stop {
    /// Not stopped.
    No,
    /// The bomb limit was reached: the decoded size is a lower bound.
    Bomb,
    /// The stream is not valid for its coding (or asked for too large a window).
    Invalid,
    /// The bodies pool could not hold the window the stream declared: not decoded.
    Budget,
}

/// A streaming decoder for one body.
pub(crate) struct ContentDecoder {
    inner: Inner,
    coding: Coding,
    input: u64,
    stop: Stop,
    /// Bytes of the bodies pool charged for the state.
    state_charged: usize,
    pool: Pool,
}

impl std::fmt::Debug for ContentDecoder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ContentDecoder")
            .field("coding", &self.coding)
            .field("input", &self.input)
            .field("stop", &self.stop)
            .finish()
    }
}

impl Drop for ContentDecoder {
    fn drop(&mut self) {
        self.pool.give(self.state_charged);
        if let Some(s) = self.sink_mut() {
            s.pool.give(std::mem::take(&mut s.charged));
        }
    }
}

/// The finished result of decoding.
#[derive(Debug)]
pub(crate) struct Decoded {
    pub(crate) data: Vec<u8>,
    pub(crate) size: u64,
    pub(crate) stop: Stop,
    pub(crate) cut_by_budget: bool,
}

impl ContentDecoder {
    /// A decoder for `coding`, keeping at most `cap` decoded bytes; `None` when
    /// the pool cannot hold its state.
    pub(crate) fn new(coding: Coding, cap: usize, pool: &Pool) -> Option<Self> {
        let cost = state_cost(coding);
        if !pool.try_take(cost) {
            return None;
        }
        let sink = Sink {
            out: Vec::new(),
            cap,
            decoded: 0,
            limit: 0,
            bomb: false,
            charged: 0,
            pool: pool.clone(),
            cut_by_budget: false,
        };
        let inner = match coding {
            Coding::Gzip => Inner::Gzip(flate2::write::GzDecoder::new(sink)),
            Coding::Deflate => Inner::DeflateUndecided(Vec::new(), sink),
            // Created once the window size is known (first bytes).
            Coding::Br | Coding::Zstd => Inner::DeflateUndecided(Vec::new(), sink),
        };
        Some(ContentDecoder {
            inner,
            coding,
            input: 0,
            stop: Stop::No,
            state_charged: cost,
            pool: pool.clone(),
        })
    }

    fn sink_mut(&mut self) -> Option<&mut Sink> {
        Some(match &mut self.inner {
            Inner::DeflateUndecided(_, s) | Inner::Stopped(s) => s,
            Inner::Gzip(d) => d.get_mut(),
            Inner::Zlib(d) => d.get_mut(),
            Inner::Raw(d) => d.get_mut(),
            Inner::Br(d) => d.get_mut(),
            Inner::Zstd(d) => d.get_mut(),
            Inner::Gone => return None,
        })
    }

    /// Feeds compressed body bytes (after de-chunking).
    pub(crate) fn push(&mut self, b: &[u8]) {
        if self.stop != Stop::No || b.is_empty() {
            return;
        }
        self.input = self.input.saturating_add(b.len() as u64);
        let limit = self.input.saturating_mul(MAX_RATIO);
        if let Some(s) = self.sink_mut() {
            s.limit = limit;
        }
        if let Inner::DeflateUndecided(held, _) = &mut self.inner {
            // At most `need - 1` bytes are held across calls.
            held.extend_from_slice(b);
            if held.len() < need(self.coding, held) {
                return;
            }
            let Inner::DeflateUndecided(held, sink) =
                std::mem::replace(&mut self.inner, Inner::Gone)
            else {
                return;
            };
            self.inner = self.start(&held, sink);
            if let Inner::Stopped(_) = self.inner {
                if self.stop == Stop::No {
                    self.stop = Stop::Invalid;
                }
                return;
            }
            self.write(&held);
            return;
        }
        self.write(b);
    }

    fn write(&mut self, b: &[u8]) {
        let r = match &mut self.inner {
            Inner::Gzip(d) => d.write_all(b),
            Inner::Zlib(d) => d.write_all(b),
            Inner::Raw(d) => d.write_all(b),
            Inner::Br(d) => d.write_all(b),
            Inner::Zstd(d) => d.write_all(b),
            _ => Ok(()),
        };
        if r.is_err() {
            self.stopped();
        }
    }

    /// The decoder for a stream whose first bytes are `held` (at least [`need`]).
    fn start(&mut self, held: &[u8], sink: Sink) -> Inner {
        match self.coding {
            Coding::Deflate => {
                // RFC 1950: CMF/FLG with CM = 8, CINFO <= 7 and the pair a multiple of 31.
                let zlib = held[0] & 0x0f == 8
                    && held[0] >> 4 <= 7
                    && (u16::from(held[0]) << 8 | u16::from(held[1])) % 31 == 0;
                if zlib {
                    Inner::Zlib(flate2::write::ZlibDecoder::new(sink))
                } else {
                    Inner::Raw(flate2::write::DeflateDecoder::new(sink))
                }
            }
            Coding::Br => match brotli_window_log(held) {
                Some(w) if w <= MAX_BROTLI_WINDOW_LOG => {
                    if self.pool.try_take(1 << w) {
                        self.state_charged += 1 << w;
                        Inner::Br(Box::new(brotli_decompressor::DecompressorWriter::new(
                            sink, 4096,
                        )))
                    } else {
                        self.stop = Stop::Budget;
                        Inner::Stopped(sink)
                    }
                }
                _ => Inner::Stopped(sink),
            },
            Coding::Zstd => match zstd_window(held) {
                Some(window) if window <= 1 << MAX_ZSTD_WINDOW_LOG => {
                    // The decoder's limit is a power of two: charge that, so a later
                    // frame can never make it hold more than was charged.
                    let log = window.max(1 << 10).next_power_of_two().trailing_zeros();
                    if !self.pool.try_take(1 << log) {
                        self.stop = Stop::Budget;
                        return Inner::Stopped(sink);
                    }
                    self.state_charged += 1 << log;
                    match zstd::stream::write::Decoder::new(sink) {
                        Ok(mut d) => {
                            if d.window_log_max(log).is_ok() {
                                Inner::Zstd(d)
                            } else {
                                Inner::Stopped(d.into_inner())
                            }
                        }
                        // Context allocation failed: nothing to decode with.
                        Err(_) => Inner::Gone,
                    }
                }
                _ => Inner::Stopped(sink),
            },
            Coding::Gzip => Inner::Stopped(sink),
        }
    }

    fn stopped(&mut self) {
        let bomb = self.sink_mut().is_some_and(|s| s.bomb);
        self.stop = if bomb { Stop::Bomb } else { Stop::Invalid };
    }

    /// Ends decoding: `complete` when the whole body was seen (a stream that
    /// does not end properly is then invalid); otherwise what came out so far.
    pub(crate) fn finish(mut self, complete: bool) -> Decoded {
        if self.stop == Stop::No {
            let r = match &mut self.inner {
                Inner::Gzip(d) => finish_flate(d.flush(), complete.then(|| d.try_finish())),
                Inner::Zlib(d) => finish_flate(d.flush(), complete.then(|| d.try_finish())),
                Inner::Raw(d) => finish_flate(d.flush(), complete.then(|| d.try_finish())),
                Inner::Br(d) => match complete {
                    true => d.close(),
                    false => d.flush(),
                },
                Inner::Zstd(d) => d.flush(),
                // Fewer bytes than the decision needs: nothing decoded.
                Inner::DeflateUndecided(..) => match complete {
                    true => Err(std::io::Error::other("too short")),
                    false => Ok(()),
                },
                _ => Ok(()),
            };
            if r.is_err() {
                self.stopped();
            }
        }
        let stop = self.stop;
        let sink = self.sink_mut();
        let (data, size, cut) = match sink {
            Some(s) => {
                s.pool.give(std::mem::take(&mut s.charged));
                (std::mem::take(&mut s.out), s.decoded, s.cut_by_budget)
            }
            None => (Vec::new(), 0, false),
        };
        Decoded {
            data,
            size,
            stop,
            cut_by_budget: cut,
        }
    }
}

/// The body buffer of a message with `headers`: with a content decoder when
/// `decodeBodies` is on and the body has one coding this engine decodes. Shared
/// by HTTP/1 and HTTP/2 so both decode (and count) bodies the same way.
pub(crate) fn body_buf(
    headers: &[(HeaderName, HeaderValue)],
    cfg: &super::HttpConfig,
    pool: &Pool,
    stats: &mut super::HttpStats,
) -> super::body::BodyBuf {
    let mut b = super::body::BodyBuf::new(cfg.max_body_size, pool.clone());
    if cfg.decode_bodies {
        if let Some(c) = coding_of(headers) {
            b.decoder = boxed_decoder(c, cfg.max_body_size, pool);
            if b.decoder.is_none() {
                stats.bodies_not_decoded_budget += 1;
            }
        }
    }
    b
}

/// `ContentDecoder::new`, boxed, kept out of line. Why: inlined, the inflate state
/// flate2 builds on the stack before boxing it gave `body_buf` a 53 KiB frame,
/// and every message (coded or not) paid for probing those 13 stack pages —
/// about 4 % of a one-worker replay.
#[cold]
#[inline(never)]
fn boxed_decoder(c: Coding, cap: usize, pool: &Pool) -> Option<Box<ContentDecoder>> {
    ContentDecoder::new(c, cap, pool).map(Box::new)
}

/// Moves `body` into `msg`: `bodySize`, `truncated`, and the kept bytes, or,
/// when the body had a decoder that did not fail, the decoded bytes and
/// `decodedBodySize`. `clean`: the whole body was seen (no gap, cut or early
/// end), so a coded stream that does not end properly is invalid. Counts the
/// decoding and budget stats. Leaves `msg.incomplete` to the caller (`body.gapped`
/// stays readable).
pub(crate) fn finish_body(
    msg: &mut crate::message::HttpMessage,
    body: &mut super::body::BodyBuf,
    clean: bool,
    stats: &mut super::HttpStats,
) {
    msg.body_size = body.size;
    msg.truncated = body.size > body.data().len() as u64;
    if let Some(d) = body.decoder.take() {
        let got = d.finish(clean);
        match got.stop {
            Stop::Invalid => stats.body_decode_errors += 1,
            Stop::Budget => stats.bodies_not_decoded_budget += 1,
            stop => {
                stats.bodies_decoded += 1;
                if stop == Stop::Bomb {
                    stats.bodies_decode_bomb_limited += 1;
                }
                if got.cut_by_budget {
                    stats.bodies_cut_by_budget += 1;
                }
                msg.truncated = got.size > got.data.len() as u64 || stop != Stop::No;
                msg.decoded_body_size = Some(got.size);
                // The wire bytes kept are not needed: the decoded ones replace them.
                drop(body.take_data());
                body.cut_by_budget = false;
                msg.body = got.data;
            }
        }
    }
    if body.cut_by_budget {
        stats.bodies_cut_by_budget += 1;
    }
    if msg.decoded_body_size.is_none() {
        msg.body = body.take_data();
    }
}

fn finish_flate(
    flush: std::io::Result<()>,
    finish: Option<std::io::Result<()>>,
) -> std::io::Result<()> {
    flush?;
    finish.unwrap_or(Ok(()))
}

/// The window size (log2) a brotli stream declares in its first bits (RFC 7932
/// §9.1); `None` for the large-window extension.
fn brotli_window_log(b: &[u8]) -> Option<u32> {
    let x = *b.first()? as u32 | (*b.get(1).unwrap_or(&0) as u32) << 8;
    if x & 1 == 0 {
        return Some(16);
    }
    let n = (x >> 1) & 7;
    if n != 0 {
        return Some(17 + n);
    }
    let m = (x >> 4) & 7;
    match m {
        0 => Some(17),
        1 => None,
        m => Some(8 + m),
    }
}

/// First bytes of a `coding` stream needed to choose its decoder, given the first
/// bytes `held` so far.
fn need(coding: Coding, held: &[u8]) -> usize {
    match coding {
        Coding::Deflate => 2,
        Coding::Br => 1,
        Coding::Zstd => zstd_header_len(held),
        Coding::Gzip => 0,
    }
}

/// The zstd frame magic number (RFC 8878 §3.1.1), little-endian 0xFD2FB528.
const ZSTD_MAGIC: [u8; 4] = [0x28, 0xb5, 0x2f, 0xfd];

/// Bytes of a zstd frame header up to the end of its frame content size field
/// (RFC 8878 §3.1.1.1), judged from the first bytes `b`: 5 until the descriptor
/// byte is there (or when `b` is not a zstd frame: [`zstd_window`] refuses it).
fn zstd_header_len(b: &[u8]) -> usize {
    let Some(&fhd) = b.get(4).filter(|_| b[..4] == ZSTD_MAGIC) else {
        return 5;
    };
    let single_segment = fhd & 0x20 != 0;
    let window_descriptor = usize::from(!single_segment);
    let dictionary_id = [0, 1, 2, 4][usize::from(fhd & 3)];
    let content_size = match fhd >> 6 {
        0 => usize::from(single_segment),
        1 => 2,
        2 => 4,
        _ => 8,
    };
    5 + window_descriptor + dictionary_id + content_size
}

/// The window (bytes) the zstd frame header at the start of `b` declares; `None`
/// when `b` is not a zstd frame. `b` holds at least [`zstd_header_len`] bytes. A
/// single-segment frame has no window descriptor: its content size is its window.
fn zstd_window(b: &[u8]) -> Option<u64> {
    if b.len() < 5 || b[..4] != ZSTD_MAGIC || b.len() < zstd_header_len(b) {
        return None;
    }
    let fhd = b[4];
    if fhd & 0x20 == 0 {
        let wd = b[5];
        let base = 1u64 << (u32::from(wd >> 3) + 10);
        return Some(base + base / 8 * u64::from(wd & 7));
    }
    let dictionary_id = [0, 1, 2, 4][usize::from(fhd & 3)];
    let field = &b[5 + dictionary_id..zstd_header_len(b)];
    let mut le = [0u8; 8];
    le[..field.len()].copy_from_slice(field);
    let size = u64::from_le_bytes(le);
    // A 2-byte field stores the size minus 256.
    Some(if field.len() == 2 { size + 256 } else { size })
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    fn pool() -> Pool {
        crate::budget::WorkerBudget::unlimited().bodies
    }

    pub(crate) fn gzip(b: &[u8]) -> Vec<u8> {
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        e.write_all(b).unwrap();
        e.finish().unwrap()
    }

    fn decode_split(c: Coding, wire: &[u8], cap: usize, cut: usize) -> Decoded {
        let mut d = ContentDecoder::new(c, cap, &pool()).unwrap();
        d.push(&wire[..cut]);
        d.push(&wire[cut..]);
        d.finish(true)
    }

    pub(crate) const TEXT: &[u8] =
        b"the quick brown fox jumps over the lazy dog, again and again and again\n";

    /// `TEXT.repeat(20)` compressed by Node's zlib.brotliCompressSync (lgwin 18).
    pub(crate) const BR_TEXT20: &[u8] = &[
        0x13, 0x8b, 0x05, 0xa0, 0x8c, 0x94, 0x6e, 0xe6, 0x22, 0xa8, 0x93, 0xf5, 0x2f, 0xe9, 0xd6,
        0xd5, 0x68, 0x14, 0x8d, 0x80, 0x7c, 0x43, 0x0b, 0x83, 0x0d, 0x38, 0x70, 0x08, 0x70, 0xd8,
        0x27, 0x9c, 0x75, 0x70, 0x1f, 0x3c, 0x64, 0xfd, 0xa1, 0x33, 0x45, 0x32, 0x9a, 0xcf, 0x86,
        0xa8, 0xc4, 0x84, 0x25, 0x82, 0x1b, 0x83, 0x51, 0xfd, 0xe1, 0xd2, 0xd8, 0x18, 0x36, 0xfe,
        0x8f, 0x54, 0x00,
    ];

    #[test]
    fn decodes_every_coding_at_every_split_point() {
        let plain: Vec<u8> = TEXT.repeat(20);
        let zlib = {
            let mut e = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::fast());
            e.write_all(&plain).unwrap();
            e.finish().unwrap()
        };
        let raw = {
            let mut e = flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::fast());
            e.write_all(&plain).unwrap();
            e.finish().unwrap()
        };
        let br = BR_TEXT20.to_vec();
        let zst = zstd::bulk::compress(&plain, 3).unwrap();
        let cases: Vec<(Coding, Vec<u8>, Vec<u8>)> = vec![
            (Coding::Gzip, gzip(&plain), plain.clone()),
            (Coding::Deflate, zlib, plain.clone()),
            (Coding::Deflate, raw, plain.clone()),
            (Coding::Br, br, plain.clone()),
            (Coding::Zstd, zst, plain.clone()),
        ];
        for (c, wire, want) in cases {
            for cut in 0..=wire.len() {
                let d = decode_split(c, &wire, 1 << 20, cut);
                assert_eq!(d.stop, Stop::No, "{c:?} cut {cut}");
                assert_eq!(d.data, want, "{c:?} cut {cut}");
                assert_eq!(d.size, want.len() as u64);
            }
        }
    }

    #[test]
    fn keeps_cap_bytes_and_counts_the_rest() {
        let plain = TEXT.repeat(10);
        let d = decode_split(Coding::Gzip, &gzip(&plain), 16, 5);
        assert_eq!(d.data, &plain[..16]);
        assert_eq!(d.size, plain.len() as u64);
    }

    #[test]
    fn a_bomb_stops_at_64_times_the_input() {
        let zeros = vec![0u8; 4 << 20];
        let wire = gzip(&zeros);
        assert!(wire.len() * 64 < zeros.len());
        let d = decode_split(Coding::Gzip, &wire, 1000, wire.len() / 2);
        assert_eq!(d.stop, Stop::Bomb);
        assert!(d.size <= wire.len() as u64 * MAX_RATIO, "{}", d.size);
        assert_eq!(d.data.len(), 1000);
    }

    #[test]
    fn a_cut_stream_decodes_up_to_the_cut() {
        let plain = TEXT.repeat(50);
        let wire = gzip(&plain);
        let mut d = ContentDecoder::new(Coding::Gzip, 1 << 20, &pool()).unwrap();
        d.push(&wire[..wire.len() / 2]);
        let got = d.finish(false);
        assert_eq!(got.stop, Stop::No);
        assert!(!got.data.is_empty());
        assert_eq!(got.data, &plain[..got.data.len()]);
    }

    #[test]
    fn invalid_streams_and_large_windows_are_refused() {
        let d = decode_split(Coding::Gzip, b"not gzip at all", 100, 3);
        assert_eq!(d.stop, Stop::Invalid);
        // zstd frames asking for a 2^27 window, and for 2^23 + 1/8 (over 8 MiB).
        for wd in [0x88, 0x69] {
            let d = decode_split(
                Coding::Zstd,
                &[0x28, 0xb5, 0x2f, 0xfd, 0x00, wd, 0, 0],
                100,
                0,
            );
            assert_eq!(d.stop, Stop::Invalid, "{wd:#x}");
        }
        // Not a zstd frame at all.
        let d = decode_split(Coding::Zstd, b"plain text, not zstd", 100, 2);
        assert_eq!(d.stop, Stop::Invalid);
        // brotli large-window stream, and one declaring 2^24 (over MAX_BROTLI_WINDOW_LOG).
        let d = decode_split(Coding::Br, &[0x11, 0x00, 0x00], 100, 1);
        assert_eq!(d.stop, Stop::Invalid);
        let d = decode_split(Coding::Br, &[0x0f, 0x00, 0x00], 100, 1);
        assert_eq!(d.stop, Stop::Invalid);
        assert_eq!(brotli_window_log(&[0x0f]), Some(24));
        assert_eq!(brotli_window_log(&[0x0b]), Some(22));
        assert_eq!(brotli_window_log(&[0x00]), Some(16));
    }

    /// A streamed zstd body (no content size in the header: a window descriptor, 2 MiB at
    /// level 3 as `zstd` or a server compressing on the fly writes it) decodes at every
    /// split, charged its window; with no room for the window it is not decoded (Budget);
    /// single-segment frames are charged their content size. Every charge is given back.
    #[test]
    fn zstd_windows_are_charged_as_declared() {
        let plain = TEXT.repeat(20);
        let mut e = zstd::stream::write::Encoder::new(Vec::new(), 3).unwrap();
        e.write_all(&plain).unwrap();
        let streamed = e.finish().unwrap();
        assert_eq!(zstd_window(&streamed), Some(2 << 20));
        for cut in 0..=streamed.len() {
            let d = decode_split(Coding::Zstd, &streamed, 1 << 20, cut);
            assert_eq!((d.stop, &d.data), (Stop::No, &plain), "cut {cut}");
        }
        let p = crate::budget::Pool::new((2 << 20) + 300 * 1024);
        let mut d = ContentDecoder::new(Coding::Zstd, 1 << 20, &p).unwrap();
        d.push(&streamed);
        assert!(
            p.held() >= (2 << 20) + state_cost(Coding::Zstd),
            "{}",
            p.held()
        );
        assert_eq!(d.finish(true).data, plain);
        assert_eq!(p.held(), 0);

        let small = crate::budget::Pool::new(1 << 20);
        let mut d = ContentDecoder::new(Coding::Zstd, 100, &small).unwrap();
        d.push(&streamed);
        let got = d.finish(true);
        assert_eq!((got.stop, got.data.len()), (Stop::Budget, 0));
        assert_eq!(small.held(), 0);

        let single = zstd::bulk::compress(&plain, 3).unwrap();
        assert_eq!(zstd_window(&single), Some(plain.len() as u64));
        let p = crate::budget::Pool::new(1 << 20);
        let mut d = ContentDecoder::new(Coding::Zstd, 1 << 20, &p).unwrap();
        d.push(&single);
        assert_eq!(d.finish(true).data, plain);
        assert_eq!(p.held(), 0);
    }

    /// What Node's `zlib.brotliCompressSync` writes by default (window 2^22): only the
    /// first byte differs from [`BR_TEXT20`] (window 2^18) for this input.
    pub(crate) fn br_text20_window22() -> Vec<u8> {
        let mut b = BR_TEXT20.to_vec();
        b[0] = 0x1b;
        b
    }

    /// A brotli window is charged as declared: 2^22 decodes with room for it, and is
    /// not decoded (Budget, not Invalid) without; the charge is given back either way.
    #[test]
    fn brotli_windows_are_charged_as_declared() {
        let plain = TEXT.repeat(20);
        let wire = br_text20_window22();
        assert_eq!(brotli_window_log(&wire), Some(22));
        for cut in 0..=wire.len() {
            let d = decode_split(Coding::Br, &wire, 1 << 20, cut);
            assert_eq!((d.stop, &d.data), (Stop::No, &plain), "cut {cut}");
        }
        let p = crate::budget::Pool::new((1 << 22) + 100 * 1024);
        let mut d = ContentDecoder::new(Coding::Br, 100, &p).unwrap();
        d.push(&wire);
        let got = d.finish(true);
        assert_eq!(got.stop, Stop::Budget);
        assert_eq!(p.held(), 0);
        let p = crate::budget::Pool::new((1 << 22) + 256 * 1024);
        let mut d = ContentDecoder::new(Coding::Br, 100, &p).unwrap();
        d.push(&wire);
        assert!(p.held() >= 1 << 22);
        assert_eq!(d.finish(true).stop, Stop::No);
        assert_eq!(p.held(), 0);
    }

    #[test]
    fn state_is_charged_and_given_back() {
        let p = crate::budget::Pool::new(200 * 1024);
        let d = ContentDecoder::new(Coding::Gzip, 100, &p).unwrap();
        assert!(ContentDecoder::new(Coding::Zstd, 100, &p).is_none());
        drop(d);
        assert!(ContentDecoder::new(Coding::Gzip, 100, &p).is_some());
    }

    #[test]
    fn codings_from_headers() {
        let h = |v: &str| vec![("content-encoding".into(), HeaderValue::Single(v.into()))];
        assert_eq!(coding_of(&h("gzip")), Some(Coding::Gzip));
        assert_eq!(coding_of(&h(" X-Gzip ")), Some(Coding::Gzip));
        assert_eq!(coding_of(&h("br")), Some(Coding::Br));
        assert_eq!(coding_of(&h("gzip, br")), None);
        assert_eq!(coding_of(&h("identity")), None);
        assert_eq!(coding_of(&[]), None);
    }
}
