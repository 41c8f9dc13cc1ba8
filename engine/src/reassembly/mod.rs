//! TCP reassembly of one direction of a connection.
//!
//! A [`Reassembler`] turns the segments one side of a connection sent — as the
//! capture saw them: reordered, duplicated, overlapping, some missing, some cut
//! short by the snap length — into the in-order byte stream that side wrote,
//! passed to a [`StreamSink`] as `data`, `gap` and `fin` events. Two
//! reassemblers make a connection; the flow table owns them.
//!
//! # Data path
//!
//! * **In order (the common case): zero-copy.** A segment that starts at or
//!   before the next expected byte has its new bytes passed straight from the
//!   packet to [`StreamSink::data`]; nothing is copied or allocated.
//! * **Out of order: copied into a bounded store.** A segment ahead of the next
//!   expected byte is copied into a sorted, non-overlapping store and delivered
//!   as soon as the hole before it fills.
//! * **Duplicates: first copy wins.** Bytes already delivered or already stored
//!   are never replaced; a retransmission carrying different bytes for the
//!   same sequence numbers loses to the copy seen first (counted in
//!   [`ReassemblyStats::retransmitted_bytes`] / [`ReassemblyStats::overlap_bytes`]).
//! * **Gaps.** Bytes that will never be seen are reported with
//!   [`StreamSink::gap`], and the stream moves on past them:
//!   - the store would exceed [`Limits`] (bytes or segments) or the worker's
//!     [`Budget`] → the first hole is declared lost, the stored bytes after it
//!     are delivered up to the next hole, repeat until the new segment fits or
//!     has become in order (then it is delivered zero-copy, never stored);
//!   - the peer acknowledged bytes the capture never saw ([`Reassembler::peer_ack`]);
//!   - the capture cut a segment short ([`Segment::missing`]) and that segment
//!     was in order: its payload, then a gap of `missing` bytes;
//!   - the connection ends with holes ([`Reassembler::flush`]).
//!
//! # Invariants (after every public call)
//!
//! * `delivered` — the stream offset of the next expected byte — equals the
//!   number of bytes passed to the sink as data plus as gaps, and
//!   `next_seq == initial sequence + delivered` (mod 2^32).
//! * Every stored entry starts strictly after `delivered` (anything contiguous
//!   is delivered at once); entries are sorted, non-empty and do not overlap.
//! * Stored bytes ≤ `Limits::max_buffered_per_direction`, entries ≤
//!   `Limits::max_segments_per_direction`, and every stored byte is counted in
//!   the [`Budget`] exactly once: bytes are reserved before they are copied in
//!   and released as they leave (delivered, dropped past a FIN, flushed,
//!   discarded).
//! * Once a FIN position is known nothing is stored at or after it; `fin` is
//!   emitted at most once, when `delivered` reaches it, and nothing follows it.
//! * Once closed (FIN delivered, RST, [`Reassembler::flush`] or
//!   [`Reassembler::discard`]) the store is empty and the sink hears nothing more.
//!
//! Internally positions are 64-bit stream offsets (bytes since the first
//! expected byte); sequence numbers are converted with the wrapping
//! [`SeqNumber`] arithmetic against `next_seq`, so wrap-around at 2^32 needs
//! no special case.
//!
//! # Thresholds
//!
//! A segment whose sequence number (or end, counting `missing`) is more than
//! [`MAX_SEQ_JUMP`] (1 GiB) before or after the next expected byte is dropped and counted
//! ([`ReassemblyStats::huge_jump_segments`]); so is an acknowledgement that far
//! ahead ([`ReassemblyStats::huge_jump_acks`]). 1 GiB is the largest receive
//! window TCP can advertise (65 535 << 14), so no honest sender has data in
//! flight further ahead than that: such a segment is garbage or a new
//! connection reusing the port, and buffering it, or reporting a
//! multi-gigabyte gap, would be wrong.
//!
//! # Starting point
//!
//! A SYN sets the initial sequence (data starts at SYN + 1). If the first
//! segment seen has no SYN (the capture began mid-connection), the stream
//! starts at that segment's sequence number; bytes before it are never
//! reported (the HTTP layer resynchronises). A SYN seen later re-bases the
//! stream only while nothing has been delivered or stored yet.
//! Acknowledgements are ignored until a segment of this direction was seen.
//! A SYN arriving after the direction closed is ignored like any other
//! segment: recognising a new connection that reuses the 4-tuple (a fresh
//! SYN) is the flow table's job — it should start new reassemblers.
//!
//! # Known approximations
//!
//! * If the capture lost the FIN itself and the peer acknowledges it, the
//!   FIN's sequence number is reported as a 1-byte gap (an acknowledgement
//!   cannot tell a lost FIN from a lost byte); no `fin` follows, the flow
//!   table's flush ends the direction.
//! * The bytes a snap length cut off from an *out-of-order* segment stay a
//!   hole until an acknowledgement, a limit or the flush declares them lost.
//! * The [`Budget`] counts stored payload bytes, not the bookkeeping around
//!   them (about 40 bytes per stored run, at most
//!   `Limits::max_segments_per_direction` runs per direction).
//!
//! # Example
//!
//! ```
//! use tcp_sniffer::reassembly::{Budget, Limits, ReassemblyStats, Reassembler, Segment, StreamSink};
//! use tcp_sniffer::time::Timestamp;
//!
//! #[derive(Default)]
//! struct Collect(Vec<u8>);
//! impl StreamSink for Collect {
//!     fn data(&mut self, bytes: &[u8], _ts: Timestamp) { self.0.extend_from_slice(bytes) }
//!     fn gap(&mut self, _len: u64, _ts: Timestamp) {}
//!     fn fin(&mut self, _ts: Timestamp) {}
//! }
//!
//! let (limits, mut budget, mut stats) = (Limits::default(), Budget::new(1 << 20), ReassemblyStats::default());
//! let mut r = Reassembler::new();
//! let mut out = Collect::default();
//! let seg = |seq, payload: &'static [u8]| Segment {
//!     seq, syn: false, fin: false, rst: false, payload, missing: 0, ts: Timestamp(0),
//! };
//! r.segment(&seg(100, b"GET / HTTP/1.1\r\n"), &limits, &mut budget, &mut stats, &mut out);
//! r.segment(&seg(122, b"\r\n"), &limits, &mut budget, &mut stats, &mut out); // ahead: stored
//! r.segment(&seg(116, b"Host: "), &limits, &mut budget, &mut stats, &mut out); // fills the hole
//! assert_eq!(out.0, b"GET / HTTP/1.1\r\nHost: \r\n");
//! assert_eq!(budget.used(), 0);
//! ```

mod buffer;
mod seq;
mod stats;

pub use seq::SeqNumber;
pub use stats::ReassemblyStats;

use crate::time::Timestamp;
use buffer::{Entry, OutOfOrderBuffer};

/// Segments and acknowledgements more than this many bytes away from the next
/// expected byte are dropped (see the module doc, "Thresholds").
pub const MAX_SEQ_JUMP: u32 = 1 << 30;

/// Farthest past the last byte seen in a direction that the peer's acknowledgement
/// may declare bytes lost ([`ReassemblyStats::acks_beyond_seen`] counts the others).
pub const MAX_ACK_BEYOND_SEEN: u64 = 1 << 20;

/// One captured TCP segment of the direction being reassembled.
#[derive(Clone, Copy, Debug)]
pub struct Segment<'a> {
    /// Sequence number of the segment (of the SYN if `syn`, else of `payload[0]`).
    pub seq: u32,
    /// SYN flag: `seq` is the initial sequence number; data starts at `seq + 1`.
    pub syn: bool,
    /// FIN flag: the sender closes after the payload (and after `missing`).
    pub fin: bool,
    /// RST flag: the connection is aborted; the payload is ignored.
    pub rst: bool,
    /// The payload bytes the capture holds.
    pub payload: &'a [u8],
    /// Bytes of payload after `payload` that the capture cut off (snap length);
    /// they are treated as lost.
    pub missing: u32,
    /// Capture time.
    pub ts: Timestamp,
}

/// Receives the in-order byte stream of one direction.
pub trait StreamSink {
    /// The next contiguous bytes of the stream; `ts` is the capture time of the
    /// segment that carried them.
    fn data(&mut self, bytes: &[u8], ts: Timestamp);
    /// `len` bytes of the stream were never seen (capture loss); the stream
    /// continues after them.
    fn gap(&mut self, len: u64, ts: Timestamp);
    /// The sender closed its side: every byte before the FIN was delivered (as
    /// data or gap). Called at most once, and nothing follows it.
    fn fin(&mut self, ts: Timestamp);
}

/// Bounds on the out-of-order store of one direction.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Most bytes stored out of order at once.
    pub max_buffered_per_direction: usize,
    /// Most stored runs of bytes (stored segments) at once.
    pub max_segments_per_direction: usize,
}

impl Default for Limits {
    /// 1 MiB and 1024 segments per direction.
    fn default() -> Self {
        Limits {
            max_buffered_per_direction: 1 << 20,
            max_segments_per_direction: 1024,
        }
    }
}

/// A byte budget shared by all the connections of one worker: the bytes
/// stored out of order by all its reassemblers together stay within `max`.
#[derive(Debug)]
pub struct Budget {
    used: usize,
    max: usize,
}

impl Budget {
    /// A budget of `max` bytes, none used.
    pub fn new(max: usize) -> Self {
        Budget { used: 0, max }
    }

    /// Bytes currently reserved.
    pub fn used(&self) -> usize {
        self.used
    }

    /// The budget's size.
    pub fn max(&self) -> usize {
        self.max
    }

    /// Reserves `n` bytes if they fit; returns whether they did.
    pub fn try_reserve(&mut self, n: usize) -> bool {
        match self.used.checked_add(n) {
            Some(u) if u <= self.max => {
                self.used = u;
                true
            }
            _ => false,
        }
    }

    /// Returns `n` previously reserved bytes.
    pub fn release(&mut self, n: usize) {
        debug_assert!(n <= self.used, "budget released more than reserved");
        self.used = self.used.saturating_sub(n);
    }
}

/// Why a gap was declared (selects the per-reason counter).
#[derive(Clone, Copy, Debug)]
enum GapCause {
    /// `Limits` hit (counted as `buffer_overflow_events` by the caller).
    Overflow,
    /// `Budget` exhausted (counted as `budget_exhausted_events` by the caller).
    Budget,
    Ack,
    Snaplen,
    Flush,
}

/// Reassembles one direction of a TCP connection. See the module doc.
///
/// Buffered bytes are reserved in the worker's [`Budget`]: call
/// [`flush`](Reassembler::flush) or [`discard`](Reassembler::discard) before
/// dropping a reassembler, or the budget keeps them.
#[derive(Debug, Default)]
pub struct Reassembler {
    /// A segment (or SYN) has set the starting sequence number.
    started: bool,
    /// Sequence number of the next expected byte (stream offset `delivered`).
    next_seq: SeqNumber,
    /// Stream offset of the next expected byte: data + gap bytes passed to the sink.
    delivered: u64,
    /// Out-of-order bytes, all after `delivered`.
    buffer: OutOfOrderBuffer,
    /// Stream offset of the sender's FIN and the capture time of its segment.
    fin: Option<(u64, Timestamp)>,
    /// FIN delivered, RST seen, flushed or discarded: nothing more is accepted.
    closed: bool,
    /// Latest timestamp handed to the sink. Bytes stored out of order carry their own
    /// (older) capture time, but they become readable only when the hole before them is
    /// filled: the sink sees non-decreasing times, so a message never ends before it starts.
    clock: Timestamp,
}

impl Reassembler {
    /// A reassembler that has seen nothing yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Bytes currently stored out of order.
    pub fn buffered_bytes(&self) -> usize {
        self.buffer.bytes()
    }

    /// Whether the direction is closed: its FIN was delivered, or it was reset,
    /// flushed or discarded. A closed reassembler ignores further input.
    pub fn is_closed(&self) -> bool {
        self.closed
    }

    /// Sequence number of the next expected byte, once known.
    pub fn next_seq(&self) -> Option<SeqNumber> {
        self.started.then_some(self.next_seq)
    }

    /// Takes one captured segment of this direction.
    pub fn segment(
        &mut self,
        seg: &Segment<'_>,
        limits: &Limits,
        budget: &mut Budget,
        stats: &mut ReassemblyStats,
        sink: &mut impl StreamSink,
    ) {
        stats.segments += 1;
        let data_seq = SeqNumber(seg.seq) + usize::from(seg.syn);
        if self.closed {
            self.after_close(seg, data_seq, stats);
            return;
        }
        if seg.rst {
            self.flush(seg.ts, budget, stats, sink);
            return;
        }
        if !self.started {
            self.started = true;
            self.next_seq = data_seq;
        } else if seg.syn && self.delivered == 0 && self.buffer.is_empty() && self.fin.is_none() {
            self.next_seq = data_seq;
        }
        if seg.payload.is_empty() && seg.missing == 0 && !seg.fin {
            return; // pure ACK / window update / SYN: the hot no-op path
        }

        let d = data_seq - self.next_seq;
        let len = seg.payload.len() as u64 + u64::from(seg.missing);
        if d.unsigned_abs() > MAX_SEQ_JUMP || i64::from(d) + len as i64 > i64::from(MAX_SEQ_JUMP) {
            stats.huge_jump_segments += 1;
            return;
        }
        // Stream offsets of the segment; `start` may be "negative" (before the
        // stream's first byte) for old retransmissions.
        let start = self.delivered as i64 + i64::from(d);
        let mut seg_end = start + len as i64;
        if seg.fin {
            self.note_fin(seg_end, seg.ts, budget, stats);
        }
        let mut payload = seg.payload;
        if let Some((f, _)) = self.fin {
            let f = f as i64;
            if start + payload.len() as i64 > f {
                let keep = (f - start).clamp(0, payload.len() as i64) as usize;
                stats.beyond_fin_bytes += (payload.len() - keep) as u64;
                payload = &payload[..keep];
            }
            seg_end = seg_end.min(f);
        }
        let payload_end = start + payload.len() as i64;

        if !payload.is_empty() {
            let delivered = self.delivered as i64;
            if payload_end <= delivered {
                stats.retransmitted_segments += 1;
                stats.retransmitted_bytes += payload.len() as u64;
            } else if start <= delivered {
                let skip = (delivered - start) as usize;
                stats.retransmitted_bytes += skip as u64;
                self.deliver_in_order(&payload[skip..], seg.ts, budget, stats, sink);
            } else {
                stats.out_of_order_segments += 1;
                self.store_or_force(start as u64, payload, seg.ts, limits, budget, stats, sink);
            }
        }
        // Bytes cut off by the snap length, right after a payload that is now delivered.
        if seg.missing > 0
            && payload_end <= self.delivered as i64
            && seg_end > self.delivered as i64
        {
            self.advance_to(
                seg_end as u64,
                GapCause::Snaplen,
                seg.ts,
                budget,
                stats,
                sink,
            );
        }
        self.check_fin(sink);
    }

    /// The peer acknowledged every byte before `ack`: bytes before it that the
    /// capture never saw are reported as gaps, and stored bytes that follow are
    /// delivered. Old and duplicate acknowledgements cost one comparison.
    pub fn peer_ack(
        &mut self,
        ack: u32,
        ts: Timestamp,
        _limits: &Limits,
        budget: &mut Budget,
        stats: &mut ReassemblyStats,
        sink: &mut impl StreamSink,
    ) {
        if !self.started || self.closed {
            return;
        }
        let d = SeqNumber(ack) - self.next_seq;
        if d <= 0 {
            return;
        }
        if d as u32 > MAX_SEQ_JUMP {
            stats.huge_jump_acks += 1;
            return;
        }
        let mut target = self.delivered + d as u64;
        // An acknowledgement may declare lost only what could plausibly have been
        // sent unseen: at most MAX_ACK_BEYOND_SEEN past the last byte this
        // direction showed. Farther is a forged or misread ACK, not capture loss.
        let seen_end = self.buffer.last_end().unwrap_or(0).max(self.delivered);
        if target > seen_end.saturating_add(MAX_ACK_BEYOND_SEEN) {
            stats.acks_beyond_seen += 1;
            return;
        }
        if let Some((f, _)) = self.fin {
            // The FIN takes a sequence number of its own; it is not a stream byte.
            target = target.min(f);
        }
        if target > self.delivered {
            self.advance_to(target, GapCause::Ack, ts, budget, stats, sink);
        }
        self.check_fin(sink);
    }

    /// The connection is over (RST, idle or cap eviction, end of capture):
    /// delivers everything stored, in order, with gaps for the holes (and up to
    /// the FIN, then `fin`, if a FIN was seen); returns the stored bytes to
    /// `budget` and closes the direction. Idempotent.
    pub fn flush(
        &mut self,
        ts: Timestamp,
        budget: &mut Budget,
        stats: &mut ReassemblyStats,
        sink: &mut impl StreamSink,
    ) {
        if !self.closed {
            let target = match self.fin {
                Some((f, _)) => Some(f),
                None => self.buffer.last_end(),
            };
            if let Some(t) = target {
                if t > self.delivered {
                    self.advance_to(t, GapCause::Flush, ts, budget, stats, sink);
                }
            }
            self.check_fin(sink);
            self.closed = true;
        }
        let left = self.buffer.clear();
        debug_assert_eq!(left, 0, "flush left bytes stored");
        budget.release(left);
    }

    /// Drops everything stored without delivering it (e.g. the connection was
    /// found not to be HTTP), returns the bytes to `budget` and closes the
    /// direction. The dropped bytes are counted in
    /// [`ReassemblyStats::discarded_bytes`].
    pub fn discard(&mut self, budget: &mut Budget, stats: &mut ReassemblyStats) {
        let dropped = self.buffer.clear();
        budget.release(dropped);
        stats.discarded_bytes += dropped as u64;
        self.closed = true;
    }

    /// Counts a segment that arrived after the direction was closed.
    fn after_close(&self, seg: &Segment<'_>, data_seq: SeqNumber, stats: &mut ReassemblyStats) {
        if seg.payload.is_empty() {
            return;
        }
        let end = i64::from(data_seq - self.next_seq) + seg.payload.len() as i64;
        if self.started && end <= 0 {
            stats.retransmitted_segments += 1;
            stats.retransmitted_bytes += seg.payload.len() as u64;
        } else {
            stats.segments_after_close += 1;
        }
    }

    /// Records the FIN at stream offset `fin_off` (the first plausible FIN wins)
    /// and drops stored bytes after it.
    fn note_fin(
        &mut self,
        fin_off: i64,
        ts: Timestamp,
        budget: &mut Budget,
        stats: &mut ReassemblyStats,
    ) {
        if self.fin.is_some() || fin_off < self.delivered as i64 {
            return;
        }
        let f = fin_off as u64;
        self.fin = Some((f, ts));
        let dropped = self.buffer.truncate_from(f);
        budget.release(dropped);
        stats.beyond_fin_bytes += dropped as u64;
    }

    /// Delivers `data`, which starts exactly at `delivered`, without copying;
    /// stored bytes it overlaps win over it. Then delivers what became contiguous.
    fn deliver_in_order(
        &mut self,
        mut data: &[u8],
        ts: Timestamp,
        budget: &mut Budget,
        stats: &mut ReassemblyStats,
        sink: &mut impl StreamSink,
    ) {
        while !data.is_empty() {
            match self.buffer.first_off() {
                Some(off) if off <= self.delivered => {
                    let e = self.buffer.pop_first().expect("first entry exists");
                    let covered = e
                        .end()
                        .saturating_sub(self.delivered)
                        .min(data.len() as u64);
                    stats.overlap_bytes += covered;
                    data = &data[covered as usize..];
                    self.deliver_entry(e, budget, stats, sink);
                }
                next => {
                    let n = next.map_or(data.len(), |off| {
                        ((off - self.delivered) as usize).min(data.len())
                    });
                    self.emit_data(&data[..n], ts, stats, sink);
                    data = &data[n..];
                }
            }
        }
        self.drain(budget, stats, sink);
    }

    /// Stores an out-of-order segment starting at `start` (> `delivered`), or,
    /// if that would break `limits` or `budget`, declares holes lost until it
    /// fits or has become in order (then delivers it zero-copy).
    #[allow(clippy::too_many_arguments)]
    fn store_or_force(
        &mut self,
        start: u64,
        data: &[u8],
        ts: Timestamp,
        limits: &Limits,
        budget: &mut Budget,
        stats: &mut ReassemblyStats,
        sink: &mut impl StreamSink,
    ) {
        loop {
            let end = start + data.len() as u64;
            let (bytes, pieces) = self.buffer.plan(start, end);
            if bytes == 0 {
                stats.overlap_bytes += data.len() as u64;
                return;
            }
            let over_limits = self.buffer.bytes() + bytes > limits.max_buffered_per_direction
                || self.buffer.len() + pieces > limits.max_segments_per_direction;
            let cause = if over_limits {
                stats.buffer_overflow_events += 1;
                GapCause::Overflow
            } else if budget.try_reserve(bytes) {
                let copied = self.buffer.insert(start, data, ts);
                debug_assert_eq!(copied, bytes);
                stats.overlap_bytes += (data.len() - copied) as u64;
                return;
            } else {
                stats.budget_exhausted_events += 1;
                GapCause::Budget
            };
            // Declare the first hole lost: up to the first stored run, or up to
            // this segment if it comes first.
            let hole_end = match self.buffer.first_off() {
                Some(off) if off < start => off,
                _ => start,
            };
            self.emit_gap(hole_end - self.delivered, cause, ts, stats, sink);
            self.drain(budget, stats, sink);
            if start <= self.delivered {
                let skip = ((self.delivered - start) as usize).min(data.len());
                stats.overlap_bytes += skip as u64;
                self.deliver_in_order(&data[skip..], ts, budget, stats, sink);
                return;
            }
        }
    }

    /// Moves `delivered` up to `target`: stored runs before it are delivered,
    /// holes between them reported as gaps of the given cause.
    fn advance_to(
        &mut self,
        target: u64,
        cause: GapCause,
        ts: Timestamp,
        budget: &mut Budget,
        stats: &mut ReassemblyStats,
        sink: &mut impl StreamSink,
    ) {
        while self.delivered < target {
            match self.buffer.first_off() {
                Some(off) if off < target => {
                    if off > self.delivered {
                        self.emit_gap(off - self.delivered, cause, ts, stats, sink);
                    }
                    let e = self.buffer.pop_first().expect("first entry exists");
                    self.deliver_entry(e, budget, stats, sink);
                }
                _ => self.emit_gap(target - self.delivered, cause, ts, stats, sink),
            }
        }
        self.drain(budget, stats, sink);
    }

    /// Delivers stored runs that have become contiguous.
    fn drain(
        &mut self,
        budget: &mut Budget,
        stats: &mut ReassemblyStats,
        sink: &mut impl StreamSink,
    ) {
        while matches!(self.buffer.first_off(), Some(off) if off <= self.delivered) {
            let e = self.buffer.pop_first().expect("first entry exists");
            self.deliver_entry(e, budget, stats, sink);
        }
    }

    /// Delivers the part of a stored run after `delivered` and returns its memory.
    fn deliver_entry(
        &mut self,
        e: Entry,
        budget: &mut Budget,
        stats: &mut ReassemblyStats,
        sink: &mut impl StreamSink,
    ) {
        budget.release(e.data.len());
        if e.end() > self.delivered {
            let skip = self.delivered.saturating_sub(e.off) as usize;
            self.emit_data(&e.data[skip..], e.ts, stats, sink);
        }
    }

    fn emit_data(
        &mut self,
        bytes: &[u8],
        ts: Timestamp,
        stats: &mut ReassemblyStats,
        sink: &mut impl StreamSink,
    ) {
        if bytes.is_empty() {
            return;
        }
        let ts = self.tick(ts);
        sink.data(bytes, ts);
        self.delivered += bytes.len() as u64;
        self.next_seq += bytes.len();
        stats.delivered_bytes += bytes.len() as u64;
    }

    fn emit_gap(
        &mut self,
        len: u64,
        cause: GapCause,
        ts: Timestamp,
        stats: &mut ReassemblyStats,
        sink: &mut impl StreamSink,
    ) {
        if len == 0 {
            return;
        }
        let ts = self.tick(ts);
        sink.gap(len, ts);
        self.delivered += len;
        self.next_seq += len as usize;
        stats.gap_events += 1;
        stats.gap_bytes += len;
        match cause {
            GapCause::Overflow | GapCause::Budget => {}
            GapCause::Ack => stats.ack_gap_events += 1,
            GapCause::Snaplen => stats.snaplen_gap_events += 1,
            GapCause::Flush => stats.flush_gap_events += 1,
        }
    }

    /// `ts`, or the latest time already handed to the sink if that is later.
    fn tick(&mut self, ts: Timestamp) -> Timestamp {
        self.clock = self.clock.max(ts);
        self.clock
    }

    /// Emits `fin` once everything before the FIN was delivered.
    fn check_fin(&mut self, sink: &mut impl StreamSink) {
        if let Some((f, ts)) = self.fin {
            if !self.closed && self.delivered == f {
                debug_assert!(self.buffer.is_empty());
                let ts = self.tick(ts);
                sink.fin(ts);
                self.closed = true;
            }
        }
    }
}

#[cfg(test)]
mod tests;
