//! HTTP/2 in cleartext (RFC 9113): frames, HPACK, streams, and one request and
//! one response [`HttpMessage`] per stream.
//!
//! The HTTP/1 stage hands a connection over to an `H2Connection` when it
//! sees the client's connection preface (prior knowledge), a server that
//! speaks first with a SETTINGS frame, or a `101 Switching Protocols` to
//! `h2c` (the upgrade request is then stream 1's request, already emitted by
//! the HTTP/1 stage; stream 1's response pairs with its sequence number).
//!
//! # How it works
//!
//! Each direction is read frame by frame (`frame.rs`): a frame's 9-byte header
//! is collected, then its payload. DATA payloads are streamed straight into
//! the stream's body (never buffered beyond `maxBodySize`); other frames are
//! collected whole (header block fragments up to a limit, control frames up to
//! [`MAX_CONTROL_FRAME`]) and then handled. A header block (HEADERS or
//! PUSH_PROMISE plus CONTINUATIONs) is decoded once complete with the sender's
//! HPACK `hpack::Decoder`; the two directions have separate tables.
//!
//! Streams follow RFC 9113 §5.1 as seen from outside: a stream opens with the
//! client's HEADERS (or a PUSH_PROMISE, which reserves it), is half-closed by
//! each side's END_STREAM and closed when both sides ended or either reset it.
//! A stream gets the connection's next `sequence` when it opens, so sequences
//! follow stream order. The client's HEADERS start the request; a second
//! HEADERS block from the same side carries trailers. The server's HEADERS
//! start the response; `1xx` ones are emitted at once as interim responses.
//! A message is emitted at its sender's END_STREAM, or incomplete when the
//! stream is reset (RST_STREAM), the sender finishes (FIN) or the connection
//! ends first.
//!
//! Pseudo-headers become fields of the message, as SPEC says: `:method` the
//! method, `:path` the url (`:authority` for CONNECT), `:status` the status
//! code, `:authority` the `host` header (unless a `host` header came too);
//! `:scheme` and `:protocol` are dropped. gRPC's trailers-only responses
//! (a single HEADERS with END_STREAM carrying `grpc-status`) have their
//! `grpc-status`, `grpc-message` and `grpc-status-details-bin` moved to
//! `trailers`, where a normal gRPC response has them.
//!
//! Bodies with a `content-encoding` are decoded as HTTP/1 bodies are
//! (`decodeBodies`; the same streaming decoder, limits, counters and message
//! fields: `crate::http::decode`), fed DATA payload by DATA payload. A body cut
//! by RST_STREAM, a FIN or a gap decodes up to the cut and is `incomplete`.
//! gRPC bodies (`content-type: application/grpc…`) are never decoded: gRPC
//! compresses each message (`grpc-encoding`, the flag in its 5-byte prefix),
//! which is left as sent, and a `content-encoding` on them is not what the
//! peers apply either.
//!
//! # Gaps and mid-connection starts
//!
//! A gap inside a DATA payload keeps the frame boundaries: the bytes are
//! counted into `bodySize` and the message is emitted incomplete. A gap
//! anywhere else loses them: the direction searches its next bytes for a run of
//! plausible frame headers (`find_frames`), the HPACK table of that direction
//! becomes unknown (it may have missed insertions, see `hpack.rs`), and every
//! message that direction had in progress is emitted incomplete when it ends.
//! A connection first seen in the middle is read the same way from its first
//! bytes. Header fields that cannot be resolved are left out (never guessed)
//! and the message is marked incomplete.
//!
//! # Invariants
//!
//! * Never panics on any input; every length from the wire is checked.
//! * Every byte held because of traffic is charged to the worker's pools
//!   ([`crate::budget`]): frame and header-block buffers and HPACK tables to
//!   `heads`, the head of each message in progress to `heads` (as HTTP/1
//!   does), each open stream ([`STREAM_COST`]) to `pending`, bodies to `bodies`. A refusal sheds state and counts it
//!   (`heads_shed_by_budget`, `h2_streams_shed`, `bodies_cut_by_budget`).
//! * Per direction at most one frame payload of [`MAX_CONTROL_FRAME`] or one
//!   header block of `max_head_size` is buffered; at most [`MAX_STREAMS`]
//!   streams are open per connection.
//! * Every byte given to `H2Connection::data` is consumed: turned into a
//!   message, or counted (`skipped_bytes`).

pub(crate) mod frame;
pub(crate) mod hpack;
pub(crate) mod huffman;

#[cfg(test)]
mod tests;

use std::collections::BTreeMap;

use crate::budget::{Charge, WorkerBudget};
use crate::http::body::BodyBuf;
use crate::http::decode;
use crate::http::{merge_header, HttpConfig, HttpStats};
use crate::message::{
    Direction, Endpoint, HeaderName, HeaderValue, HttpMessage, MessageKind, Side,
};
use crate::time::Timestamp;

use frame::{flag, kind, FrameHeader, HEADER_LEN, PREFACE};

/// Most streams open at once on one connection (peers usually allow 100–250).
/// Past it the oldest is shed: its messages are emitted incomplete.
pub const MAX_STREAMS: usize = 1024;
/// What one open stream costs the `pending` pool besides its messages' heads.
pub const STREAM_COST: usize = 256;
/// Largest non-DATA, non-header frame payload collected; larger ones are
/// skipped (counted in `h2_frames_skipped`).
pub const MAX_CONTROL_FRAME: u32 = 16_384;
/// Bytes searched for frame boundaries after a gap before older ones are let go.
const RESYNC_WINDOW: usize = 64 * 1024;
/// Plausible frame headers in a row that mark frame boundaries after a gap.
const RESYNC_CHAIN: usize = 3;
/// An emptied buffer larger than this is freed rather than kept.
const KEEP_BUF_CAPACITY: usize = 4096;

/// The connection's identity, copied into every message.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Peers {
    pub(crate) id: u64,
    pub(crate) client: Endpoint,
    pub(crate) server: Endpoint,
    pub(crate) direction: Direction,
}

/// How a direction is being read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Read {
    /// Client only: the connection preface, `matched` bytes of it seen.
    Preface { matched: usize },
    /// Collecting a frame header into `buf`.
    Header,
    /// Collecting the payload of `h` into `buf`.
    Payload { h: FrameHeader },
    /// DATA: waiting for the pad length byte.
    DataPad { h: FrameHeader },
    /// DATA payload: `left` body bytes, then `pad` bytes of padding.
    Data {
        stream: u32,
        left: u32,
        pad: u32,
        end: bool,
    },
    /// Bytes to skip (an oversized or unknown frame).
    Skip { left: u32 },
    /// Frame boundaries unknown (after a gap, or mid-connection): searching.
    Lost,
}

/// A header block being collected across HEADERS/PUSH_PROMISE and CONTINUATION.
#[derive(Debug)]
struct PendingBlock {
    stream: u32,
    /// END_STREAM of the HEADERS frame that began the block.
    end_stream: bool,
    /// For PUSH_PROMISE: the promised stream.
    promised: Option<u32>,
    fragment: Vec<u8>,
    /// The block grew past the limit: its fragments were dropped.
    overflow: bool,
    /// Capture time of the first frame.
    ts: Timestamp,
}

/// One direction of the connection.
#[derive(Debug)]
struct Half {
    read: Read,
    /// Frame header bytes, a frame payload, or bytes searched after a gap.
    buf: Vec<u8>,
    /// Capture time of the current frame's first byte.
    frame_ts: Timestamp,
    block: Option<PendingBlock>,
    hpack: hpack::Decoder,
    /// Largest frame the peer allows this side to send (peer's SETTINGS).
    max_frame: u32,
    /// Bytes of the heads pool charged for `buf` and `block` (by capacity).
    charged: usize,
    fin: bool,
}

/// A message whose head was decoded and whose end has not come yet.
#[derive(Debug)]
struct InProgress {
    msg: HttpMessage,
    body: BodyBuf,
    /// A second header block (trailers) was seen.
    trailers_seen: bool,
    _head: Charge,
}

/// One stream.
#[derive(Debug)]
struct Stream {
    seq: u64,
    req: Option<InProgress>,
    resp: Option<InProgress>,
    /// The client ended its side (END_STREAM), or the request was emitted.
    client_done: bool,
    /// The server sent a final response head.
    resp_started: bool,
    server_done: bool,
    /// The request was seen (latency can be measured).
    req_seen: bool,
    /// Capture time of the request's last byte so far.
    req_last_ts: Timestamp,
    _charge: Charge,
}

/// What the caller's stage needs besides the connection (mirrors the HTTP/1 stage).
struct Ctx<'a> {
    ts: Timestamp,
    cfg: &'a HttpConfig,
    stats: &'a mut HttpStats,
    out: &'a mut Vec<HttpMessage>,
}

/// HTTP/2 parser state of one TCP connection.
#[derive(Debug)]
pub(crate) struct H2Connection {
    peers: Peers,
    halves: [Half; 2],
    /// Open streams by id (ordered, so the oldest is shed first).
    streams: BTreeMap<u32, Stream>,
    /// Highest stream id opened by the client / promised by the server.
    max_client_stream: u32,
    next_seq: u64,
    budget: WorkerBudget,
    closed: bool,
}

impl Drop for H2Connection {
    fn drop(&mut self) {
        for h in &self.halves {
            self.budget.heads.give(h.charged);
        }
    }
}

/// Which side opens stream `id`: odd ids the client, even ids the server (push).
fn side_of(id: u32) -> Side {
    if id % 2 == 1 {
        Side::Client
    } else {
        Side::Server
    }
}

fn idx(side: Side) -> usize {
    match side {
        Side::Client => 0,
        Side::Server => 1,
    }
}

impl H2Connection {
    /// A connection read as HTTP/2 from its start (`known`: the client's first
    /// bytes are the preface) or from the middle (frame boundaries and HPACK
    /// tables unknown). Sequence numbers continue from `next_seq`.
    pub(crate) fn new(peers: Peers, known: bool, next_seq: u64, budget: WorkerBudget) -> Self {
        let half = |read: Read| Half {
            read,
            buf: Vec::new(),
            frame_ts: Timestamp::default(),
            block: None,
            hpack: hpack::Decoder::new(known, budget.heads.clone()),
            max_frame: frame::DEFAULT_MAX_FRAME,
            charged: 0,
            fin: false,
        };
        let (c, s) = if known {
            (Read::Preface { matched: 0 }, Read::Header)
        } else {
            (Read::Lost, Read::Lost)
        };
        H2Connection {
            peers,
            halves: [half(c), half(s)],
            streams: BTreeMap::new(),
            max_client_stream: 0,
            next_seq,
            budget,
            closed: false,
        }
    }

    /// A connection switched to HTTP/2 by `101` to `Upgrade: h2c`: the HTTP/1
    /// request (sequence `seq`, last byte at `req_end`) is stream 1's request,
    /// already emitted; stream 1's response is awaited.
    pub(crate) fn upgraded(
        peers: Peers,
        seq: u64,
        req_end: Timestamp,
        next_seq: u64,
        budget: WorkerBudget,
    ) -> Self {
        let mut c = Self::new(peers, true, next_seq.max(seq + 1), budget);
        let charge = Charge::force(&c.budget.pending, STREAM_COST);
        c.streams.insert(
            1,
            Stream {
                seq,
                req: None,
                resp: None,
                client_done: true,
                resp_started: false,
                server_done: false,
                req_seen: true,
                req_last_ts: req_end,
                _charge: charge,
            },
        );
        c.max_client_stream = 1;
        c
    }

    /// Bytes held (buffers, header blocks, HPACK tables, kept bodies).
    pub(crate) fn buffered_bytes(&self) -> usize {
        let halves: usize = self
            .halves
            .iter()
            .map(|h| {
                h.buf.capacity()
                    + h.block.as_ref().map_or(0, |b| b.fragment.capacity())
                    + h.hpack.held_bytes()
            })
            .sum();
        let bodies: usize = self
            .streams
            .values()
            .flat_map(|s| [s.req.as_ref(), s.resp.as_ref()])
            .flatten()
            .map(|m| m.body.data().len())
            .sum();
        halves + bodies
    }

    /// In-order bytes sent by `side`, captured at `ts`.
    pub(crate) fn data(
        &mut self,
        side: Side,
        bytes: &[u8],
        ts: Timestamp,
        cfg: &HttpConfig,
        stats: &mut HttpStats,
        out: &mut Vec<HttpMessage>,
    ) {
        let mut cx = Ctx {
            ts,
            cfg,
            stats,
            out,
        };
        if self.closed {
            cx.stats.skipped_bytes += bytes.len() as u64;
            return;
        }
        self.feed(side, bytes, &mut cx);
        self.settle();
    }

    /// `len` bytes sent by `side` were never captured.
    pub(crate) fn gap(
        &mut self,
        side: Side,
        len: u64,
        ts: Timestamp,
        cfg: &HttpConfig,
        stats: &mut HttpStats,
        out: &mut Vec<HttpMessage>,
    ) {
        if self.closed || len == 0 {
            return;
        }
        let mut cx = Ctx {
            ts,
            cfg,
            stats,
            out,
        };
        cx.stats.gaps += 1;
        let i = idx(side);
        if let Read::Data {
            stream,
            left,
            pad,
            end,
        } = self.halves[i].read
        {
            if len <= u64::from(left) + u64::from(pad) {
                // Inside one DATA payload: the frame boundaries hold.
                let in_body = len.min(u64::from(left)) as u32;
                if let Some(m) = self.message_mut(stream, side) {
                    m.body.skip(u64::from(in_body));
                }
                cx.stats.gap_body_bytes = cx.stats.gap_body_bytes.saturating_add(len);
                let left = left - in_body;
                let pad = pad - (len as u32 - in_body);
                self.halves[i].read = Read::Data {
                    stream,
                    left,
                    pad,
                    end,
                };
                if left == 0 && pad == 0 {
                    self.halves[i].read = Read::Header;
                    if end {
                        self.end_of_side(stream, side, &mut cx);
                    }
                }
                return;
            }
        }
        self.lose_sync(side, &mut cx);
        self.settle();
    }

    /// `side` finished sending (FIN): its messages in progress end incomplete.
    pub(crate) fn fin(
        &mut self,
        side: Side,
        ts: Timestamp,
        cfg: &HttpConfig,
        stats: &mut HttpStats,
        out: &mut Vec<HttpMessage>,
    ) {
        if self.closed {
            return;
        }
        let mut cx = Ctx {
            ts,
            cfg,
            stats,
            out,
        };
        self.halves[idx(side)].fin = true;
        let ids: Vec<u32> = self.streams.keys().copied().collect();
        for id in ids {
            let unfinished = self.streams.get(&id).is_some_and(|s| match side {
                Side::Client => s.req.is_some(),
                Side::Server => s.resp.is_some(),
            });
            if unfinished {
                self.finish(id, side, true, &mut cx);
                self.maybe_close(id);
            }
        }
        self.settle();
    }

    /// The connection is gone: what is unfinished is emitted incomplete.
    pub(crate) fn close(
        &mut self,
        ts: Timestamp,
        cfg: &HttpConfig,
        stats: &mut HttpStats,
        out: &mut Vec<HttpMessage>,
    ) {
        if self.closed {
            return;
        }
        let mut cx = Ctx {
            ts,
            cfg,
            stats,
            out,
        };
        let ids: Vec<u32> = self.streams.keys().copied().collect();
        for id in ids {
            self.drop_stream(id, &mut cx);
        }
        for h in &mut self.halves {
            cx.stats.skipped_bytes += h.buf.len() as u64;
            h.buf = Vec::new();
            h.block = None;
            h.hpack.forget();
        }
        self.closed = true;
        self.settle();
    }

    // ---- memory ------------------------------------------------------------

    /// Brings the heads charge of each half down to what its buffers hold.
    fn settle(&mut self) {
        for h in &mut self.halves {
            let held = h.buf.capacity() + h.block.as_ref().map_or(0, |b| b.fragment.capacity());
            if h.charged > held {
                self.budget.heads.give(h.charged - held);
                h.charged = held;
            }
        }
    }

    /// Charges the heads pool for `extra` more bytes in half `i` (buffer or
    /// block); false when it refuses.
    fn reserve(&mut self, i: usize, extra: usize, in_block: bool) -> bool {
        let h = &mut self.halves[i];
        let (len, cap) = match (&h.block, in_block) {
            (Some(b), true) => (b.fragment.len(), b.fragment.capacity()),
            _ => (h.buf.len(), h.buf.capacity()),
        };
        let need = len.saturating_add(extra);
        if need <= cap {
            return true;
        }
        // Grow geometrically so a frame collected in small segments is copied O(n).
        let want = need.max(len.saturating_mul(2)).max(64);
        let add = want - len;
        if !self.budget.heads.try_take(add) {
            return false;
        }
        h.charged += add;
        match (&mut h.block, in_block) {
            (Some(b), true) => b.fragment.reserve_exact(add),
            _ => h.buf.reserve_exact(add),
        }
        // The allocator may round up: account for what it gave.
        let held = h.buf.capacity() + h.block.as_ref().map_or(0, |b| b.fragment.capacity());
        if held > h.charged {
            self.budget.heads.force_take(held - h.charged);
            h.charged = held;
        }
        true
    }

    // ---- the byte loop -------------------------------------------------------

    fn feed(&mut self, side: Side, mut input: &[u8], cx: &mut Ctx<'_>) {
        let i = idx(side);
        while !input.is_empty() {
            if self.closed {
                cx.stats.skipped_bytes += input.len() as u64;
                return;
            }
            let n = match self.halves[i].read {
                Read::Preface { matched } => {
                    let want = &PREFACE[matched..];
                    let n = want.len().min(input.len());
                    if input[..n] != want[..n] {
                        // Not the preface after all: find frames from here.
                        cx.stats.h2_frame_errors += 1;
                        self.lose_sync(side, cx);
                        continue;
                    }
                    self.halves[i].read = if matched + n == PREFACE.len() {
                        Read::Header
                    } else {
                        Read::Preface {
                            matched: matched + n,
                        }
                    };
                    n
                }
                Read::Header => {
                    let h = &mut self.halves[i];
                    if h.buf.is_empty() && input.len() >= HEADER_LEN {
                        let fh = FrameHeader::parse(input).unwrap_or(FrameHeader {
                            len: 0,
                            kind: 0xff,
                            flags: 0,
                            stream: 0,
                        });
                        h.frame_ts = cx.ts;
                        self.on_frame_header(side, fh, cx);
                        HEADER_LEN
                    } else {
                        if h.buf.is_empty() {
                            h.frame_ts = cx.ts;
                        }
                        let n = (HEADER_LEN - h.buf.len()).min(input.len());
                        if !self.reserve(i, n, false) {
                            self.shed_held(side, cx);
                            continue;
                        }
                        let h = &mut self.halves[i];
                        h.buf.extend_from_slice(&input[..n]);
                        if h.buf.len() == HEADER_LEN {
                            let fh = FrameHeader::parse(&h.buf);
                            h.buf.clear();
                            if let Some(fh) = fh {
                                self.on_frame_header(side, fh, cx);
                            }
                        }
                        n
                    }
                }
                Read::Payload { h: fh } => {
                    let len = fh.len as usize;
                    let h = &mut self.halves[i];
                    if h.buf.is_empty() && input.len() >= len {
                        self.halves[i].read = Read::Header;
                        self.on_frame(side, fh, &input[..len], cx);
                        len
                    } else {
                        let n = (len - h.buf.len()).min(input.len());
                        if !self.reserve(i, n, false) {
                            self.shed_held(side, cx);
                            continue;
                        }
                        let h = &mut self.halves[i];
                        h.buf.extend_from_slice(&input[..n]);
                        if h.buf.len() == len {
                            let payload = std::mem::take(&mut h.buf);
                            h.read = Read::Header;
                            self.on_frame(side, fh, &payload, cx);
                            let h = &mut self.halves[i];
                            if h.buf.is_empty() && payload.capacity() <= KEEP_BUF_CAPACITY {
                                let mut p = payload;
                                p.clear();
                                h.buf = p;
                            }
                        }
                        n
                    }
                }
                Read::DataPad { h: fh } => {
                    let pad = u32::from(input[0]);
                    match fh.len.checked_sub(1 + pad) {
                        Some(left) => {
                            self.halves[i].read = Read::Data {
                                stream: fh.stream,
                                left,
                                pad,
                                end: fh.has(flag::END_STREAM),
                            };
                            self.after_data(side, cx);
                        }
                        None => {
                            cx.stats.h2_frame_errors += 1;
                            self.halves[i].read = Read::Skip { left: fh.len - 1 };
                        }
                    }
                    1
                }
                Read::Data {
                    stream,
                    left,
                    pad,
                    end,
                } => {
                    let take = (left as usize).min(input.len());
                    if take > 0 {
                        match self.message_mut(stream, side) {
                            Some(m) => m.body.push(&input[..take]),
                            None => cx.stats.skipped_bytes += take as u64,
                        }
                    }
                    let skip = (pad as usize).min(input.len() - take);
                    cx.stats.skipped_bytes += skip as u64;
                    self.halves[i].read = Read::Data {
                        stream,
                        left: left - take as u32,
                        pad: pad - skip as u32,
                        end,
                    };
                    self.after_data(side, cx);
                    take + skip
                }
                Read::Skip { left } => {
                    let n = (left as usize).min(input.len());
                    cx.stats.skipped_bytes += n as u64;
                    self.halves[i].read = if n as u32 == left {
                        Read::Header
                    } else {
                        Read::Skip {
                            left: left - n as u32,
                        }
                    };
                    n
                }
                Read::Lost => self.step_lost(side, input, cx),
            };
            input = &input[n..];
        }
    }

    /// Searches for frame boundaries in what was buffered plus `input`;
    /// returns how much of `input` was used.
    fn step_lost(&mut self, side: Side, input: &[u8], cx: &mut Ctx<'_>) -> usize {
        let i = idx(side);
        let max_frame = self.halves[i].max_frame.max(frame::DEFAULT_MAX_FRAME);
        if self.halves[i].buf.is_empty() {
            if let Some(p) = find_frames(input, max_frame, true) {
                cx.stats.skipped_bytes += p as u64;
                cx.stats.h2_resyncs += 1;
                self.halves[i].read = Read::Header;
                return p;
            }
        }
        let n = input.len().min(RESYNC_WINDOW);
        if !self.reserve(i, n, false) {
            cx.stats.heads_shed_by_budget += 1;
            cx.stats.skipped_bytes += (self.halves[i].buf.len() + n) as u64;
            self.halves[i].buf.clear();
            return n;
        }
        let h = &mut self.halves[i];
        h.buf.extend_from_slice(&input[..n]);
        match find_frames(&h.buf, max_frame, true) {
            Some(p) => {
                cx.stats.skipped_bytes += p as u64;
                cx.stats.h2_resyncs += 1;
                let rest = h.buf.split_off(p);
                h.buf.clear();
                h.read = Read::Header;
                // Parse what followed the boundary.
                self.feed(side, &rest, cx);
            }
            None => {
                if h.buf.len() > RESYNC_WINDOW {
                    // No chain starts in the older half: let it go.
                    let drop = h.buf.len() - RESYNC_WINDOW / 2;
                    cx.stats.skipped_bytes += drop as u64;
                    h.buf.drain(..drop);
                }
            }
        }
        n
    }

    /// Frame boundaries of `side` are lost (a gap, a bad preface, shed bytes).
    fn lose_sync(&mut self, side: Side, cx: &mut Ctx<'_>) {
        let i = idx(side);
        let h = &mut self.halves[i];
        cx.stats.skipped_bytes += h.buf.len() as u64;
        h.buf.clear();
        if h.block.take().is_some() {
            cx.stats.h2_header_blocks_lost += 1;
        }
        h.read = Read::Lost;
        // Header blocks may have been missed: the table is no longer known.
        h.hpack.forget();
        // Every message this side has in progress missed some of its bytes.
        for s in self.streams.values_mut() {
            let m = match side {
                Side::Client => s.req.as_mut(),
                Side::Server => s.resp.as_mut(),
            };
            if let Some(m) = m {
                m.msg.incomplete = true;
                m.body.skip(0);
            }
        }
    }

    /// The heads pool refused to hold `side`'s bytes: handled like a gap.
    fn shed_held(&mut self, side: Side, cx: &mut Ctx<'_>) {
        cx.stats.heads_shed_by_budget += 1;
        self.lose_sync(side, cx);
    }

    /// After some DATA bytes: if the payload is done, handle END_STREAM.
    fn after_data(&mut self, side: Side, cx: &mut Ctx<'_>) {
        let i = idx(side);
        if let Read::Data {
            stream,
            left: 0,
            pad: 0,
            end,
        } = self.halves[i].read
        {
            self.halves[i].read = Read::Header;
            if end {
                self.end_of_side(stream, side, cx);
            }
        }
    }

    // ---- frames --------------------------------------------------------------

    fn on_frame_header(&mut self, side: Side, fh: FrameHeader, cx: &mut Ctx<'_>) {
        let i = idx(side);
        cx.stats.h2_frames += 1;
        // A header block must be continued by CONTINUATION on its stream (§6.10).
        if let Some(b) = &self.halves[i].block {
            if fh.kind != kind::CONTINUATION || fh.stream != b.stream {
                cx.stats.h2_frame_errors += 1;
                cx.stats.h2_header_blocks_lost += 1;
                self.halves[i].block = None;
                self.halves[i].hpack.forget();
            }
        }
        self.halves[i].read = match fh.kind {
            kind::DATA => {
                if fh.has(flag::PADDED) {
                    if fh.len == 0 {
                        cx.stats.h2_frame_errors += 1;
                        Read::Header
                    } else {
                        Read::DataPad { h: fh }
                    }
                } else {
                    Read::Data {
                        stream: fh.stream,
                        left: fh.len,
                        pad: 0,
                        end: fh.has(flag::END_STREAM),
                    }
                }
            }
            kind::HEADERS | kind::CONTINUATION | kind::PUSH_PROMISE => {
                let limit = block_limit(cx.cfg);
                let so_far = self.halves[i]
                    .block
                    .as_ref()
                    .map_or(0, |b| b.fragment.len());
                if so_far.saturating_add(fh.len as usize) > limit {
                    // Too large to keep: its fields are lost, and so is the table.
                    let promised = (fh.kind == kind::PUSH_PROMISE).then_some(0);
                    self.start_or_continue_block(side, fh, None, promised, cx);
                    Read::Skip { left: fh.len }
                } else {
                    Read::Payload { h: fh }
                }
            }
            kind::PRIORITY
            | kind::RST_STREAM
            | kind::SETTINGS
            | kind::PING
            | kind::GOAWAY
            | kind::WINDOW_UPDATE
                if fh.len <= MAX_CONTROL_FRAME =>
            {
                Read::Payload { h: fh }
            }
            _ => {
                // Unknown types are ignored (§4.1); oversized control frames too.
                cx.stats.h2_frames_skipped += 1;
                Read::Skip { left: fh.len }
            }
        };
        match self.halves[i].read {
            Read::Payload { h } if h.len == 0 => {
                self.halves[i].read = Read::Header;
                self.on_frame(side, fh, &[], cx);
            }
            Read::Data { .. } => self.on_data_start(side, fh, cx),
            Read::DataPad { .. } => self.on_data_start(side, fh, cx),
            Read::Skip { left: 0 } => self.halves[i].read = Read::Header,
            _ => {}
        }
    }

    /// A DATA frame begins.
    fn on_data_start(&mut self, side: Side, fh: FrameHeader, cx: &mut Ctx<'_>) {
        let i = idx(side);
        if self.message_mut(fh.stream, side).is_none() {
            cx.stats.h2_data_without_stream += 1;
        } else if let Some(s) = self.streams.get_mut(&fh.stream) {
            if side == Side::Client {
                s.req_last_ts = cx.ts;
            }
        }
        // An empty DATA frame with END_STREAM ends the message at once.
        self.after_data(side, cx);
        let _ = i;
    }

    /// A complete non-DATA frame payload.
    fn on_frame(&mut self, side: Side, fh: FrameHeader, p: &[u8], cx: &mut Ctx<'_>) {
        match fh.kind {
            kind::HEADERS => match frame::headers_fragment(&fh, p) {
                Ok(frag) => self.start_or_continue_block(side, fh, Some(frag), None, cx),
                Err(_) => {
                    cx.stats.h2_frame_errors += 1;
                    self.start_or_continue_block(side, fh, None, None, cx);
                }
            },
            kind::PUSH_PROMISE => match frame::push_promise(&fh, p) {
                Ok((id, frag)) => self.start_or_continue_block(side, fh, Some(frag), Some(id), cx),
                Err(_) => {
                    cx.stats.h2_frame_errors += 1;
                    // The promised id is lost with the payload: the block still
                    // has to be accounted for (the table is then unknown).
                    self.start_or_continue_block(side, fh, None, Some(0), cx);
                }
            },
            kind::CONTINUATION => self.start_or_continue_block(side, fh, Some(p), None, cx),
            kind::RST_STREAM => match frame::rst_stream(p) {
                Ok(_) => {
                    cx.stats.h2_resets += 1;
                    if fh.stream != 0 {
                        self.drop_stream(fh.stream, cx);
                    }
                }
                Err(_) => cx.stats.h2_frame_errors += 1,
            },
            kind::SETTINGS => {
                if fh.has(flag::ACK) {
                    return;
                }
                match frame::settings(p) {
                    Ok(list) => {
                        for (id, v) in list {
                            if id == frame::setting::MAX_FRAME_SIZE {
                                // This side's limit is for what its peer sends.
                                let peer = &mut self.halves[idx(side.peer())];
                                peer.max_frame = v.clamp(frame::DEFAULT_MAX_FRAME, (1 << 24) - 1);
                            }
                        }
                    }
                    Err(_) => cx.stats.h2_frame_errors += 1,
                }
            }
            kind::GOAWAY => match frame::goaway(p) {
                Ok(_) => cx.stats.h2_goaways += 1,
                Err(_) => cx.stats.h2_frame_errors += 1,
            },
            // PRIORITY, PING, WINDOW_UPDATE: nothing an observer needs.
            _ => {}
        }
    }

    /// Adds a fragment to `side`'s header block (starting it on HEADERS or
    /// PUSH_PROMISE); decodes it at END_HEADERS. `frag` is `None` when the
    /// fragment was lost (oversized or malformed); `promised` is PUSH_PROMISE's
    /// promised stream (0 when lost).
    fn start_or_continue_block(
        &mut self,
        side: Side,
        fh: FrameHeader,
        frag: Option<&[u8]>,
        promised: Option<u32>,
        cx: &mut Ctx<'_>,
    ) {
        let i = idx(side);
        if fh.kind == kind::CONTINUATION {
            if self.halves[i].block.is_none() {
                // A CONTINUATION without its HEADERS (after a gap): nothing to add it to.
                cx.stats.h2_frame_errors += 1;
                return;
            }
        } else {
            self.halves[i].block = Some(PendingBlock {
                stream: fh.stream,
                end_stream: fh.kind == kind::HEADERS && fh.has(flag::END_STREAM),
                promised,
                fragment: Vec::new(),
                overflow: false,
                ts: self.halves[i].frame_ts,
            });
        }
        match frag {
            Some(f) => {
                if !self.reserve(i, f.len(), true) {
                    cx.stats.heads_shed_by_budget += 1;
                    if let Some(b) = self.halves[i].block.as_mut() {
                        b.overflow = true;
                        b.fragment = Vec::new();
                    }
                } else if let Some(b) = self.halves[i].block.as_mut() {
                    if !b.overflow {
                        b.fragment.extend_from_slice(f);
                    }
                }
            }
            None => {
                if let Some(b) = self.halves[i].block.as_mut() {
                    b.overflow = true;
                    b.fragment = Vec::new();
                }
            }
        }
        if fh.has(flag::END_HEADERS) {
            if let Some(b) = self.halves[i].block.take() {
                self.on_block(side, b, cx);
            }
        }
    }

    /// A complete header block.
    fn on_block(&mut self, side: Side, b: PendingBlock, cx: &mut Ctx<'_>) {
        let i = idx(side);
        let decoded = if b.overflow {
            cx.stats.h2_header_blocks_lost += 1;
            self.halves[i].hpack.forget();
            None
        } else {
            match self.halves[i].hpack.decode(&b.fragment, head_limit(cx.cfg)) {
                Ok(block) => {
                    cx.stats.h2_hpack_unknown_fields += u64::from(block.unknown);
                    if block.table_shed {
                        cx.stats.h2_hpack_tables_shed += 1;
                    }
                    Some(block)
                }
                Err(_) => {
                    cx.stats.h2_hpack_errors += 1;
                    None
                }
            }
        };
        let fields = Fields::from_block(decoded, cx.cfg);
        if b.promised.is_some() {
            self.on_push_promise(b, fields, cx);
            return;
        }
        match side {
            Side::Client => self.on_request_headers(b, fields, cx),
            Side::Server => self.on_response_headers(b, fields, cx),
        }
    }

    /// A server push (§8.4): the promised request is emitted at once (it has
    /// no body); its response comes on the promised stream.
    fn on_push_promise(&mut self, b: PendingBlock, f: Fields, cx: &mut Ctx<'_>) {
        cx.stats.h2_push_promises += 1;
        let id = b.promised.unwrap_or(0);
        if id == 0 || side_of(id) != Side::Server || self.streams.contains_key(&id) {
            cx.stats.h2_frame_errors += 1;
            return;
        }
        if !self.open_stream(id, cx) {
            return;
        }
        let method = f.method.clone().unwrap_or_default();
        let url = f.path.clone().unwrap_or_default();
        let incomplete = f.incomplete || f.method.is_none();
        let Some(s) = self.streams.get_mut(&id) else {
            return;
        };
        s.req_seen = true;
        s.client_done = true;
        s.req_last_ts = cx.ts;
        let seq = s.seq;
        let mut msg = self.new_message(
            Side::Client,
            MessageKind::Request { method, url },
            seq,
            id,
            b.ts,
            f.headers,
            incomplete,
        );
        msg.end_timestamp = cx.ts;
        self.emit(msg, cx);
    }

    // ---- streams and messages ---------------------------------------------

    fn on_request_headers(&mut self, b: PendingBlock, f: Fields, cx: &mut Ctx<'_>) {
        let id = b.stream;
        let existing = self.streams.get(&id).map(|s| s.req.is_some());
        match existing {
            Some(true) => {
                // Trailers of the request in progress.
                self.add_trailers(id, Side::Client, f, cx);
                if let Some(s) = self.streams.get_mut(&id) {
                    s.req_last_ts = cx.ts;
                }
                if b.end_stream {
                    self.end_of_side(id, Side::Client, cx);
                }
                return;
            }
            Some(false) => {
                let done = self.streams.get(&id).is_some_and(|s| s.client_done);
                if done {
                    // HEADERS after the request ended (e.g. trailers of an h2c
                    // upgrade request's stream): nothing to attach them to.
                    cx.stats.h2_frame_errors += 1;
                    return;
                }
            }
            None => {
                if !self.open_stream(id, cx) {
                    return;
                }
            }
        }
        let method = f.method.clone().unwrap_or_default();
        let url = if method == "CONNECT" && f.path.is_none() {
            f.authority.clone().unwrap_or_default()
        } else {
            f.path.clone().unwrap_or_default()
        };
        let Some(s) = self.streams.get_mut(&id) else {
            return;
        };
        s.req_seen = true;
        s.req_last_ts = cx.ts;
        let seq = s.seq;
        let incomplete = f.incomplete || f.method.is_none();
        let msg = self.new_message(
            Side::Client,
            MessageKind::Request { method, url },
            seq,
            id,
            b.ts,
            f.headers,
            incomplete,
        );
        let ip = self.in_progress(msg, cx);
        if let Some(s) = self.streams.get_mut(&id) {
            s.req = Some(ip);
        }
        if b.end_stream {
            self.end_of_side(id, Side::Client, cx);
        }
    }

    fn on_response_headers(&mut self, b: PendingBlock, f: Fields, cx: &mut Ctx<'_>) {
        let id = b.stream;
        if !self.streams.contains_key(&id) {
            // A response whose request was not seen (mid-connection, gap).
            if !self.open_stream(id, cx) {
                return;
            }
            cx.stats.responses_without_request += 1;
        }
        let Some(s) = self.streams.get_mut(&id) else {
            return;
        };
        if s.resp.is_some() {
            // Trailers of the response in progress.
            self.add_trailers(id, Side::Server, f, cx);
            if b.end_stream {
                self.end_of_side(id, Side::Server, cx);
            }
            return;
        }
        if s.resp_started {
            cx.stats.h2_frame_errors += 1;
            return;
        }
        let status = f.status.unwrap_or(0);
        let latency = s.req_seen.then(|| b.ts.millis_since(s.req_last_ts));
        let seq = s.seq;
        let orphan = !s.req_seen;
        let incomplete = f.incomplete || f.status.is_none() || orphan;
        let kind = MessageKind::Response {
            status_code: status,
            status_message: String::new(),
            latency_ms: latency,
        };
        let mut f = f;
        if (100..200).contains(&status) && !b.end_stream {
            // Interim: emitted now; the final response follows on this stream.
            let mut msg =
                self.new_message(Side::Server, kind, seq, id, b.ts, f.headers, incomplete);
            msg.end_timestamp = cx.ts;
            cx.stats.interim_responses += 1;
            self.emit(msg, cx);
            return;
        }
        if b.end_stream && f.has_grpc_status() {
            // gRPC trailers-only response: its status belongs in `trailers`.
            f.move_grpc_to_trailers();
        }
        let trailers = std::mem::take(&mut f.trailers);
        let mut msg = self.new_message(Side::Server, kind, seq, id, b.ts, f.headers, incomplete);
        msg.trailers = trailers;
        let ip = self.in_progress(msg, cx);
        if let Some(s) = self.streams.get_mut(&id) {
            s.resp = Some(ip);
            s.resp_started = true;
        }
        if b.end_stream {
            self.end_of_side(id, Side::Server, cx);
        }
    }

    /// A second header block on a side: trailers of its message.
    fn add_trailers(&mut self, id: u32, side: Side, f: Fields, cx: &mut Ctx<'_>) {
        if let Some(m) = self.message_mut(id, side) {
            m.trailers_seen = true;
            m.msg.incomplete |= f.incomplete;
            // Pseudo-headers in trailers are malformed (§8.1); they were dropped. A
            // second trailer block (or a name repeated across blocks) merges like
            // headers do, so each name appears once.
            for (name, value) in f.headers {
                match value {
                    HeaderValue::Single(v) => merge_header(&mut m.msg.trailers, name, v),
                    HeaderValue::List(vs) => {
                        for v in vs {
                            merge_header(&mut m.msg.trailers, name.clone(), v);
                        }
                    }
                }
            }
            cx.stats.h2_trailers += 1;
        }
    }

    /// Opens stream `id` with the next sequence number; false when it cannot
    /// be held (the oldest stream is shed first when the limits are reached).
    fn open_stream(&mut self, id: u32, cx: &mut Ctx<'_>) -> bool {
        if self.streams.len() >= MAX_STREAMS {
            self.shed_oldest(cx);
        }
        let charge = loop {
            if let Some(c) = Charge::try_new(&self.budget.pending, STREAM_COST) {
                break c;
            }
            if self.streams.is_empty() {
                cx.stats.h2_streams_shed += 1;
                return false;
            }
            self.shed_oldest(cx);
        };
        cx.stats.h2_streams += 1;
        if id % 2 == 1 {
            self.max_client_stream = self.max_client_stream.max(id);
        }
        let seq = self.next_seq;
        self.next_seq += 1;
        self.streams.insert(
            id,
            Stream {
                seq,
                req: None,
                resp: None,
                client_done: false,
                resp_started: false,
                server_done: false,
                req_seen: false,
                req_last_ts: cx.ts,
                _charge: charge,
            },
        );
        true
    }

    fn shed_oldest(&mut self, cx: &mut Ctx<'_>) {
        if let Some(&id) = self.streams.keys().next() {
            cx.stats.h2_streams_shed += 1;
            self.drop_stream(id, cx);
        }
    }

    fn message_mut(&mut self, id: u32, side: Side) -> Option<&mut InProgress> {
        let s = self.streams.get_mut(&id)?;
        match side {
            Side::Client => s.req.as_mut(),
            Side::Server => s.resp.as_mut(),
        }
    }

    /// `side` sent END_STREAM on stream `id`.
    fn end_of_side(&mut self, id: u32, side: Side, cx: &mut Ctx<'_>) {
        if let Some(s) = self.streams.get_mut(&id) {
            match side {
                Side::Client => {
                    s.client_done = true;
                    s.req_last_ts = cx.ts;
                }
                Side::Server => s.server_done = true,
            }
        }
        self.finish(id, side, false, cx);
        self.maybe_close(id);
    }

    /// Emits `side`'s message on stream `id`, if one is in progress.
    fn finish(&mut self, id: u32, side: Side, incomplete: bool, cx: &mut Ctx<'_>) {
        let Some(s) = self.streams.get_mut(&id) else {
            return;
        };
        let ip = match side {
            Side::Client => s.req.take(),
            Side::Server => s.resp.take(),
        };
        let Some(ip) = ip else {
            return;
        };
        let mut msg = ip.msg;
        let mut body = ip.body;
        msg.end_timestamp = cx.ts;
        // Unlike HTTP/1, `msg.incomplete` may stand for a head whose fields could
        // not all be resolved, or a response whose request was not seen; neither
        // touches the body, whose own loss shows as a gap or a stream cut here.
        let clean = !incomplete && !body.gapped;
        decode::finish_body(&mut msg, &mut body, clean, cx.stats);
        msg.incomplete |= incomplete || body.gapped;
        let _ = ip.trailers_seen;
        self.emit(msg, cx);
    }

    /// Removes stream `id` once both sides are done (or the server is done
    /// with a stream whose request was never seen: it will not come now).
    fn maybe_close(&mut self, id: u32) {
        let done = self.streams.get(&id).is_some_and(|s| {
            s.req.is_none() && s.resp.is_none() && s.server_done && (s.client_done || !s.req_seen)
        });
        if done {
            self.streams.remove(&id);
        }
    }

    /// Stream `id` ends now (reset, shed, connection gone): what is unfinished
    /// is emitted incomplete.
    fn drop_stream(&mut self, id: u32, cx: &mut Ctx<'_>) {
        self.finish(id, Side::Client, true, cx);
        self.finish(id, Side::Server, true, cx);
        if let Some(s) = self.streams.remove(&id) {
            if s.req_seen && !s.resp_started {
                cx.stats.requests_without_response += 1;
            }
        }
    }

    fn in_progress(&mut self, msg: HttpMessage, cx: &mut Ctx<'_>) -> InProgress {
        let head = Charge::force(&self.budget.heads, crate::http::held_bytes(&msg));
        let body = if is_grpc(&msg.headers) {
            // gRPC compresses per message (`grpc-encoding` and the flag in each
            // 5-byte message prefix), never the body as a whole: a
            // `content-encoding` on it is not what the peers decode, so neither
            // do we. The body stays as on the wire.
            BodyBuf::new(cx.cfg.max_body_size, self.budget.bodies.clone())
        } else {
            decode::body_buf(&msg.headers, cx.cfg, &self.budget.bodies, cx.stats)
        };
        InProgress {
            msg,
            body,
            trailers_seen: false,
            _head: head,
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn new_message(
        &self,
        side: Side,
        kind: MessageKind,
        seq: u64,
        stream: u32,
        ts: Timestamp,
        headers: Vec<(HeaderName, HeaderValue)>,
        incomplete: bool,
    ) -> HttpMessage {
        let (source, destination) = match side {
            Side::Client => (self.peers.client, self.peers.server),
            Side::Server => (self.peers.server, self.peers.client),
        };
        HttpMessage {
            kind,
            connection_id: self.peers.id,
            sequence: seq,
            timestamp: ts,
            end_timestamp: ts,
            source,
            destination,
            direction: self.peers.direction,
            http_version: "2",
            headers,
            body: Vec::new(),
            body_size: 0,
            truncated: false,
            incomplete,
            parse_error: None,
            decoded_body_size: None,
            tunnel: false,
            stream_id: Some(stream),
            trailers: Vec::new(),
        }
    }

    fn emit(&mut self, mut msg: HttpMessage, cx: &mut Ctx<'_>) {
        cx.cfg.redact.message(&mut msg, cx.cfg.max_body_size);
        match msg.kind {
            MessageKind::Request { .. } => cx.stats.requests += 1,
            MessageKind::Response { .. } => cx.stats.responses += 1,
        }
        if msg.truncated {
            cx.stats.truncated_bodies += 1;
        }
        if msg.incomplete {
            cx.stats.incomplete_messages += 1;
        }
        cx.out.push(msg);
    }
}

/// Longest header list kept per message (HPACK list size: name + value + 32 each).
fn head_limit(cfg: &HttpConfig) -> usize {
    cfg.max_head_size.max(256)
}

/// Largest header block (compressed) collected; larger ones are lost.
fn block_limit(cfg: &HttpConfig) -> usize {
    head_limit(cfg).max(frame::DEFAULT_MAX_FRAME as usize)
}

/// Whether a message with `headers` is native gRPC (`content-type:
/// application/grpc`, optionally `+proto`, `+json`, `;...`), whose body is a
/// sequence of length-prefixed messages. gRPC-Web (`application/grpc-web*`) is
/// not: a proxy or browser may apply a real `content-encoding` to it.
fn is_grpc(headers: &[(HeaderName, HeaderValue)]) -> bool {
    headers.iter().any(|(n, v)| {
        let HeaderValue::Single(v) = v else {
            return false;
        };
        if n != "content-type" {
            return false;
        }
        let v = v.trim_start_matches([' ', '\t']).as_bytes();
        const GRPC: &[u8] = b"application/grpc";
        v.len() >= GRPC.len()
            && v[..GRPC.len()].eq_ignore_ascii_case(GRPC)
            && matches!(v.get(GRPC.len()), None | Some(b'+' | b';' | b' ' | b'\t'))
    })
}

/// The fields of a decoded header block, sorted into pseudo-headers and
/// headers (Node's joining rules, redaction applied).
#[derive(Debug, Default)]
struct Fields {
    method: Option<String>,
    path: Option<String>,
    authority: Option<String>,
    status: Option<u16>,
    headers: Vec<(HeaderName, HeaderValue)>,
    trailers: Vec<(HeaderName, HeaderValue)>,
    /// Fields were lost (unknown table entries, a lost or undecodable block,
    /// a list over the limit).
    incomplete: bool,
}

impl Fields {
    fn from_block(block: Option<hpack::Block>, cfg: &HttpConfig) -> Fields {
        let mut f = Fields::default();
        let Some(block) = block else {
            f.incomplete = true;
            return f;
        };
        f.incomplete = block.unknown > 0 || block.dropped > 0;
        let mut host_seen = false;
        for field in block.fields {
            let value = crate::http::latin1(&field.value);
            if field.name.first() == Some(&b':') {
                match &field.name[..] {
                    b":method" => f.method = Some(value),
                    b":path" => f.path = Some(value),
                    b":authority" => {
                        if !host_seen {
                            merge_header(&mut f.headers, "host".into(), value.clone());
                            host_seen = true;
                        }
                        f.authority = Some(value);
                    }
                    b":status" => f.status = value.parse().ok(),
                    _ => {}
                }
                continue;
            }
            let name = crate::http::header_name(&crate::http::latin1(&field.name));
            if name == "host" {
                if host_seen {
                    // :authority came first and wins (RFC 9113 §8.3.1).
                    continue;
                }
                host_seen = true;
            }
            merge_header(&mut f.headers, name, value);
        }
        crate::http::redact_headers(&mut f.headers, cfg.redact_headers.names());
        f
    }

    fn has_grpc_status(&self) -> bool {
        self.headers.iter().any(|(n, _)| n == "grpc-status")
    }

    fn move_grpc_to_trailers(&mut self) {
        let (t, h): (Vec<_>, Vec<_>) =
            std::mem::take(&mut self.headers)
                .into_iter()
                .partition(|(n, _)| {
                    matches!(
                        &**n,
                        "grpc-status" | "grpc-message" | "grpc-status-details-bin"
                    )
                });
        self.headers = h;
        self.trailers = t;
    }
}

/// The first offset in `s` where [`RESYNC_CHAIN`] plausible frame headers
/// follow each other (with `short_ok`, also two that end exactly at the end
/// of `s`), frames no longer than `max_frame`. Linear in practice: each
/// candidate is rejected after looking at one header unless it chains.
pub(crate) fn find_frames(s: &[u8], max_frame: u32, short_ok: bool) -> Option<usize> {
    'outer: for p in 0..s.len().saturating_sub(HEADER_LEN - 1) {
        let mut at = p;
        let mut chained = 0;
        while chained < RESYNC_CHAIN {
            let Some(h) = FrameHeader::parse(&s[at..]) else {
                // Ran out of bytes mid-chain: undecided, need more.
                continue 'outer;
            };
            if !h.plausible(max_frame) {
                continue 'outer;
            }
            chained += 1;
            at += HEADER_LEN + h.len as usize;
            if short_ok && at == s.len() && chained >= 2 {
                return Some(p);
            }
            if at > s.len() {
                continue 'outer;
            }
        }
        return Some(p);
    }
    None
}

/// Whether `s` (bytes from the middle of a connection, either direction)
/// looks like HTTP/2 frames from its start or within its first bytes.
/// Stricter than the search after a gap (a full chain of [`RESYNC_CHAIN`]):
/// a false positive would turn an HTTP/1 connection into HTTP/2 for good.
pub(crate) fn looks_like_frames(s: &[u8]) -> Option<usize> {
    find_frames(
        &s[..s.len().min(RESYNC_WINDOW)],
        frame::DEFAULT_MAX_FRAME,
        false,
    )
}
