//! The per-connection state machine: each direction's states (detect,
//! resync, idle, head, body, await-answer), the byte loop that drives them,
//! the memory the connection holds, gaps and ends. Pairing of requests with
//! responses and emitting messages live in `pairing.rs`; the module docs of
//! `http` describe both.

use std::collections::VecDeque;

use crate::budget::{Charge, WorkerBudget};
use crate::message::{ConnMeta, Direction, Endpoint, HttpMessage, Side};
use crate::time::Timestamp;

use super::body::{BodyBuf, BodyError, Decoder, GapOutcome};
use super::detect::{self, Detected, Resync};
use super::head::{self, HeadError};
use super::pairing::{Pending, ShedRun, FREE_PENDING_SLOTS, PENDING_COST};
use super::{HttpConfig, HttpStats};

/// An emptied direction buffer larger than this is freed rather than kept.
pub(super) const KEEP_BUF_CAPACITY: usize = 4096;

/// Whether the connection is still parsed as HTTP.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Mode {
    Http,
    /// After `101` or a successful `CONNECT`.
    Tunnel,
    /// Detected as not HTTP/1.x.
    NonHttp,
    /// [`HttpConnection::close`] was called.
    Closed,
    /// Handed over to the HTTP/2 parser (`h2`).
    Http2,
}

/// State of one direction.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum State {
    /// First bytes of a connection seen from its start.
    Detect,
    /// Searching for a message start; offset 0 of the next bytes is a line
    /// start when `at_line_start`.
    Resync { at_line_start: bool },
    /// Between messages.
    Idle,
    /// Collecting a head. `scanned`: end-of-head search resumes here;
    /// `validated`: bytes checked by the last partial parse.
    Head {
        start_ts: Timestamp,
        scanned: usize,
        validated: usize,
        /// The first line's end was seen (and, on the client side, checked for HTTP/0.9).
        line1: bool,
    },
    /// Inside a body (the message is in [`Half::current`]).
    Body,
    /// Client only: after an `Upgrade`/`CONNECT` request with sequence `seq`;
    /// bytes are held until the answer. `resync`: a gap hit the held bytes.
    AwaitAnswer { seq: u64, resync: bool },
}

/// A message whose head was parsed and whose body is in progress.
#[derive(Debug)]
pub(super) struct InProgress {
    pub(super) msg: HttpMessage,
    pub(super) decoder: Decoder,
    pub(super) body: BodyBuf,
    /// Client only: wait for the answer after this request.
    pub(super) await_answer: bool,
    /// The parsed head's share of the heads pool, given back with the message.
    pub(super) _head_charge: Charge,
}

/// One direction of the connection.
#[derive(Debug)]
pub(super) struct Half {
    pub(super) state: State,
    /// Bytes kept across calls: a partial head, a partial resync candidate,
    /// the first bytes under detection, or bytes held in `AwaitAnswer`.
    pub(super) buf: Vec<u8>,
    /// The last step over `buf` needs more bytes.
    pub(super) need_more: bool,
    /// Capture time of the call that put the first byte into `buf`.
    pub(super) buf_ts: Timestamp,
    pub(super) current: Option<InProgress>,
    pub(super) fin: bool,
    /// The last head parsed on this side said `Connection: close`: bytes after its
    /// message that are not a message are data its peer ignores (`data_after_close`),
    /// not a parse error.
    pub(super) after_close: bool,
    /// Bytes of the heads pool charged for `buf` (≥ its capacity after it grew;
    /// brought down to it by [`HttpConnection::settle`]).
    pub(super) charged: usize,
}

impl Half {
    pub(super) fn new(state: State) -> Self {
        Half {
            state,
            buf: Vec::new(),
            need_more: false,
            buf_ts: Timestamp::default(),
            current: None,
            fin: false,
            after_close: false,
            charged: 0,
        }
    }
}

/// Everything a step needs besides the connection.
pub(super) struct Ctx<'a> {
    pub(super) ts: Timestamp,
    pub(super) cfg: &'a HttpConfig,
    pub(super) stats: &'a mut HttpStats,
    pub(super) out: &'a mut Vec<HttpMessage>,
}

/// Result of one step of a direction's state machine.
#[derive(Clone, Copy, Debug)]
pub(super) struct Step {
    pub(super) consumed: usize,
    pub(super) need_more: bool,
}

impl Step {
    pub(super) fn consumed(n: usize) -> Step {
        Step {
            consumed: n,
            need_more: false,
        }
    }
    pub(super) fn need_more(n: usize) -> Step {
        Step {
            consumed: n,
            need_more: true,
        }
    }
}

/// `max_head_size`, but never below 256 bytes (a smaller limit could not hold a request line).
pub(super) fn head_limit(cfg: &HttpConfig) -> usize {
    cfg.max_head_size.max(256)
}

pub(super) fn idx(side: Side) -> usize {
    match side {
        Side::Client => 0,
        Side::Server => 1,
    }
}

/// HTTP/1 parser state of one TCP connection: both directions and the FIFO
/// of requests waiting for their responses.
#[derive(Debug)]
pub struct HttpConnection {
    pub(super) id: u64,
    pub(super) client: Endpoint,
    pub(super) server: Endpoint,
    pub(super) direction: Direction,
    pub(super) halves: [Half; 2],
    pub(super) pending: VecDeque<Pending>,
    /// Requests shed from `pending`, older than all of it.
    pub(super) shed: VecDeque<ShedRun>,
    pub(super) next_seq: u64,
    pub(super) mode: Mode,
    /// A `CONNECT` succeeded: everything parsed since is inside its tunnel.
    pub(super) tunnel: bool,
    /// The worker's pools, shared with its other connections.
    pub(super) budget: WorkerBudget,
    /// Bytes of the pending pool charged for `pending` (see [`PENDING_COST`]).
    pub(super) pending_charged: usize,
    /// The HTTP/2 parser, once the connection is found to speak HTTP/2.
    pub(super) h2: Option<Box<crate::http2::H2Connection>>,
    /// Seen from the middle and no HTTP/1 message start found yet: bytes are
    /// also searched for HTTP/2 frames.
    pub(super) probe_h2: bool,
    /// `ports: any`: which side is the client is not known yet (see
    /// [`HttpConnection::orient_by_content`]); `None` once it is, or with listed ports.
    pub(super) orient: Option<Orient>,
    /// The roles were swapped: the side the flow table calls `Client` sends responses.
    pub(super) swapped: bool,
    /// `ports: any`: detection asks for a whole request or status line
    /// ([`detect::classify_strict`]).
    pub(super) strict_detect: bool,
}

/// Orientation by content (`ports: any`), until the first bytes decide it.
#[derive(Clone, Copy, Debug)]
pub(super) struct Orient {
    /// `direction` if the roles were swapped.
    pub(super) swapped_direction: Direction,
    /// Bytes seen without a message start (connections seen mid-way); past
    /// [`ORIENT_WINDOW`] the connection is declared not HTTP.
    pub(super) unproven: usize,
}

/// `ports: any`: bytes of a connection seen mid-way searched for a message start (in
/// both directions together) before it is declared not HTTP and let go. A connection seen
/// from its start is decided on its first bytes (see `detect`).
pub const ORIENT_WINDOW: usize = 64 * 1024;

impl Drop for HttpConnection {
    fn drop(&mut self) {
        for h in &self.halves {
            self.budget.heads.give(h.charged);
        }
        self.budget.pending.give(self.pending_charged);
    }
}

impl HttpConnection {
    /// Parser state for a new connection. With `meta.mid_stream`, both
    /// directions start by searching for a message start.
    pub fn new(meta: &ConnMeta) -> Self {
        let initial = if meta.mid_stream {
            State::Resync {
                at_line_start: true,
            }
        } else {
            State::Detect
        };
        HttpConnection {
            id: meta.id,
            client: meta.client,
            server: meta.server,
            direction: meta.direction,
            halves: [Half::new(initial), Half::new(initial)],
            pending: VecDeque::new(),
            shed: VecDeque::new(),
            next_seq: 0,
            mode: Mode::Http,
            tunnel: false,
            budget: WorkerBudget::unlimited(),
            pending_charged: 0,
            h2: None,
            probe_h2: meta.mid_stream,
            orient: None,
            swapped: false,
            strict_detect: false,
        }
    }

    /// `ports: any`: the flow table's client and server are only a guess (the SYN's
    /// sender, or the higher port); the first bytes decide. The side whose first bytes
    /// are a request line (or the HTTP/2 preface, or a TLS ClientHello) is the client;
    /// a status line (or an HTTP/2 server's SETTINGS, or a TLS ServerHello) marks the
    /// server. A connection seen mid-way is decided by the first request or status line
    /// found in either direction, and declared not HTTP after [`ORIENT_WINDOW`] bytes
    /// without one. `swapped_direction` is the `direction` with client and server swapped.
    pub fn orient_by_content(mut self, swapped_direction: Direction) -> Self {
        self.orient = Some(Orient {
            swapped_direction,
            unproven: 0,
        });
        self.strict_detect = true;
        self
    }

    /// Detected as not HTTP (TLS, another protocol, or nothing found within the
    /// detection window): nothing more will be parsed.
    pub fn is_not_http(&self) -> bool {
        self.mode == Mode::NonHttp
    }

    /// The client's endpoint as decided so far.
    pub fn client(&self) -> Endpoint {
        self.client
    }

    /// The server's endpoint as decided so far.
    pub fn server(&self) -> Endpoint {
        self.server
    }

    /// The role of the flow table's `side` (they differ once the roles were swapped).
    fn role(&self, side: Side) -> Side {
        if self.swapped {
            side.peer()
        } else {
            side
        }
    }

    /// `ports: any`: decides the roles from `bytes`, the next bytes sent by the flow
    /// table's `side`, while they are undecided; swaps them when the guess was wrong.
    /// Gives up (not HTTP) after [`ORIENT_WINDOW`] bytes of a mid-way connection.
    fn orient(&mut self, side: Side, bytes: &[u8], cx: &mut Ctx<'_>) {
        let Some(o) = self.orient.as_mut() else {
            return;
        };
        if self.mode != Mode::Http || self.h2.is_some() {
            self.orient = None;
            return;
        }
        let role = if self.swapped { side.peer() } else { side };
        let h = &self.halves[idx(role)];
        let verdict = match h.state {
            State::Detect => {
                // Bytes this side sent so far (bounded: detection holds at most DETECT_LIMIT).
                let joined;
                let s = if h.buf.is_empty() {
                    bytes
                } else {
                    let more = bytes.len().min(detect::DETECT_LIMIT);
                    joined = [&h.buf[..], &bytes[..more]].concat();
                    &joined[..]
                };
                detect::first_bytes_role(s)
            }
            State::Resync { at_line_start } => {
                let max = head_limit(cx.cfg);
                let found = |r| match detect::resync(r, bytes, at_line_start, max) {
                    Resync::Found(p) => Some(p),
                    _ => None,
                };
                match (found(Side::Client), found(Side::Server)) {
                    (Some(c), Some(s)) => Some(if c <= s { Side::Client } else { Side::Server }),
                    (Some(_), None) => Some(Side::Client),
                    (None, Some(_)) => Some(Side::Server),
                    (None, None) => {
                        o.unproven = o.unproven.saturating_add(bytes.len());
                        if o.unproven > ORIENT_WINDOW {
                            self.orient = None;
                            cx.stats.non_http_other += 1;
                            cx.stats.skipped_bytes += bytes.len() as u64;
                            self.enter_passthrough(Mode::NonHttp, cx);
                        }
                        None
                    }
                }
            }
            _ => None,
        };
        if let Some(found) = verdict {
            let o = self.orient.take().expect("checked above");
            if found != role {
                self.swapped = !self.swapped;
                std::mem::swap(&mut self.client, &mut self.server);
                self.halves.swap(0, 1);
                self.direction = o.swapped_direction;
            }
        }
    }

    /// Draws what this connection holds from `budget`, shared with other connections.
    pub fn with_budget(mut self, budget: WorkerBudget) -> Self {
        self.budget = budget;
        self
    }

    /// Whether the connection was handed over to the HTTP/2 parser.
    pub fn is_http2(&self) -> bool {
        self.h2.is_some()
    }

    /// False once the connection is no longer parsed as HTTP (after `101`, a
    /// successful `CONNECT`, detected non-HTTP, or [`close`](Self::close)).
    pub fn wants_data(&self) -> bool {
        self.mode == Mode::Http || self.mode == Mode::Http2
    }

    /// Bytes held by this connection (partial heads, held bytes, kept bodies).
    pub fn buffered_bytes(&self) -> usize {
        self.halves
            .iter()
            .map(|h| h.buf.capacity() + h.current.as_ref().map_or(0, |c| c.body.data().len()))
            .sum::<usize>()
            + self.h2.as_ref().map_or(0, |h2| h2.buffered_bytes())
    }

    /// In-order bytes sent by `side`, captured at `ts`.
    pub fn data(
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
        if self.orient.is_some() {
            self.orient(side, bytes, &mut cx);
            if self.mode == Mode::NonHttp {
                return;
            }
        }
        let side = self.role(side);
        if let Some(h2) = self.h2.as_mut() {
            return h2.data(side, bytes, ts, cfg, cx.stats, cx.out);
        }
        self.feed(side, bytes, &mut cx);
        self.settle();
    }

    /// `len` bytes sent by `side` were never captured.
    pub fn gap(
        &mut self,
        side: Side,
        len: u64,
        ts: Timestamp,
        cfg: &HttpConfig,
        stats: &mut HttpStats,
        out: &mut Vec<HttpMessage>,
    ) {
        let side = self.role(side);
        if let Some(h2) = self.h2.as_mut() {
            return h2.gap(side, len, ts, cfg, stats, out);
        }
        if self.mode != Mode::Http || len == 0 {
            return;
        }
        let mut cx = Ctx {
            ts,
            cfg,
            stats,
            out,
        };
        cx.stats.gaps += 1;
        self.on_gap(side, len, &mut cx);
        self.settle();
    }

    /// `side` finished sending (FIN). Ends a close-delimited response.
    pub fn fin(
        &mut self,
        side: Side,
        ts: Timestamp,
        cfg: &HttpConfig,
        stats: &mut HttpStats,
        out: &mut Vec<HttpMessage>,
    ) {
        let side = self.role(side);
        if let Some(h2) = self.h2.as_mut() {
            return h2.fin(side, ts, cfg, stats, out);
        }
        let mut cx = Ctx {
            ts,
            cfg,
            stats,
            out,
        };
        if self.mode != Mode::Http {
            return;
        }
        self.halves[idx(side)].fin = true;
        self.end_side(side, true, &mut cx);
        self.settle();
    }

    /// Connection is gone (RST, idle eviction, end of capture): emit what is
    /// unfinished as incomplete. A close-delimited response ends here too; it
    /// is complete only if the server's FIN was seen.
    pub fn close(
        &mut self,
        ts: Timestamp,
        cfg: &HttpConfig,
        stats: &mut HttpStats,
        out: &mut Vec<HttpMessage>,
    ) {
        if let Some(h2) = self.h2.as_mut() {
            h2.close(ts, cfg, stats, out);
            self.mode = Mode::Closed;
            return;
        }
        let mut cx = Ctx {
            ts,
            cfg,
            stats,
            out,
        };
        if self.mode == Mode::Http {
            self.end_side(Side::Client, false, &mut cx);
            self.end_side(Side::Server, false, &mut cx);
        }
        for h in &mut self.halves {
            cx.stats.skipped_bytes += h.buf.len() as u64;
            h.buf = Vec::new();
            h.need_more = false;
        }
        cx.stats.requests_without_response += self.pending.iter().filter(|p| p.seen).count() as u64;
        cx.stats.requests_without_response += self
            .shed
            .iter()
            .filter(|r| r.seen)
            .map(|r| r.count)
            .sum::<u64>();
        self.pending = VecDeque::new();
        self.shed = VecDeque::new();
        self.mode = Mode::Closed;
        self.settle();
    }

    // ---- memory --------------------------------------------------------

    /// Brings the pools' charges down to what is held now (buffers that shrank or
    /// were freed, a pending queue that emptied). Never charges more.
    pub(super) fn settle(&mut self) {
        for h in &mut self.halves {
            let cap = h.buf.capacity();
            if h.charged > cap {
                self.budget.heads.give(h.charged - cap);
                h.charged = cap;
            }
        }
        // A queue that drained keeps its allocation: give back a large one.
        if self.pending.len() * 4 <= self.pending.capacity()
            && self.pending.capacity() > FREE_PENDING_SLOTS
        {
            self.pending
                .shrink_to((self.pending.len() * 2).max(FREE_PENDING_SLOTS));
        }
        let want = Self::pending_charge(self.pending.capacity());
        if self.pending_charged > want {
            self.budget.pending.give(self.pending_charged - want);
            self.pending_charged = want;
        }
    }

    pub(super) fn pending_charge(capacity: usize) -> usize {
        capacity.saturating_sub(FREE_PENDING_SLOTS) * PENDING_COST
    }

    /// Makes room for `extra` more bytes in half `i`'s buffer, charged to the heads
    /// pool first; false when the pool cannot give them.
    pub(super) fn reserve_buf(&mut self, i: usize, extra: usize) -> bool {
        let h = &mut self.halves[i];
        let need = h.buf.len().saturating_add(extra);
        if need <= h.buf.capacity() {
            return true;
        }
        let add = need.saturating_sub(h.charged);
        if !self.budget.heads.try_take(add) {
            return false;
        }
        h.charged += add;
        h.buf.reserve_exact(extra);
        // The allocator may round the capacity up: account for what it gave.
        let cap = h.buf.capacity();
        if cap > h.charged {
            self.budget.heads.force_take(cap - h.charged);
            h.charged = cap;
        }
        true
    }

    /// The heads pool refused to keep `side`'s buffered bytes: drop them (and
    /// `also_skipped` bytes of input not kept either) as if the capture had lost
    /// them, so pairing stays in step and the direction resynchronises.
    pub(super) fn shed_held(&mut self, side: Side, also_skipped: usize, cx: &mut Ctx<'_>) {
        let i = idx(side);
        cx.stats.heads_shed_by_budget += 1;
        cx.stats.skipped_bytes += also_skipped as u64;
        if self.halves[i].state == State::Body {
            let h = &mut self.halves[i];
            cx.stats.skipped_bytes += h.buf.len() as u64;
            h.buf = Vec::new();
            h.need_more = false;
            self.finish(side, cx.ts, true, cx);
            if self.halves[i].state == State::Idle {
                self.resync_from_here(side, false, cx);
            }
        } else {
            self.on_gap(side, 0, cx);
        }
        let h = &mut self.halves[i];
        h.buf = Vec::new();
        h.need_more = false;
        if let State::Resync { .. } = h.state {
            // The shed bytes began a message: don't find it again in what follows.
            h.state = State::Resync {
                at_line_start: false,
            };
        }
    }

    // ---- the byte loop -------------------------------------------------

    pub(super) fn feed(&mut self, side: Side, mut input: &[u8], cx: &mut Ctx<'_>) {
        let i = idx(side);
        // Defence in depth against a step that makes no progress.
        let mut idle_steps = 0u32;
        loop {
            if self.mode != Mode::Http {
                if let Some(h2) = self.h2.as_mut() {
                    h2.data(side, input, cx.ts, cx.cfg, cx.stats, cx.out);
                } else {
                    cx.stats.skipped_bytes += input.len() as u64;
                }
                return;
            }
            let step;
            let before = (self.halves[i].state, input.len(), self.halves[i].buf.len());
            if self.halves[i].buf.is_empty() {
                if input.is_empty() {
                    return;
                }
                step = self.step(side, input, cx.ts, cx);
                input = &input[step.consumed..];
                if step.need_more && self.mode == Mode::Http {
                    if !input.is_empty() {
                        if !self.reserve_buf(i, input.len()) {
                            self.shed_held(side, input.len(), cx);
                            return;
                        }
                        let h = &mut self.halves[i];
                        h.buf.extend_from_slice(input);
                        h.buf_ts = cx.ts;
                        h.need_more = true;
                    }
                    return;
                }
            } else {
                if self.halves[i].need_more {
                    if input.is_empty() {
                        return;
                    }
                    // Grow geometrically: a head split over many segments is
                    // copied O(n) times in total.
                    let take = input.len().min(self.halves[i].buf.len().max(4096));
                    if !self.reserve_buf(i, take) {
                        self.shed_held(side, input.len(), cx);
                        return;
                    }
                    let h = &mut self.halves[i];
                    h.buf.extend_from_slice(&input[..take]);
                    input = &input[take..];
                    h.need_more = false;
                }
                let h = &mut self.halves[i];
                let buf = std::mem::take(&mut h.buf);
                let first_ts = h.buf_ts;
                step = self.step(side, &buf, first_ts, cx);
                let h = &mut self.halves[i];
                if h.buf.is_empty() {
                    let mut buf = buf;
                    buf.drain(..step.consumed.min(buf.len()));
                    // Don't keep a large allocation around once it is empty.
                    if !buf.is_empty() || buf.capacity() <= KEEP_BUF_CAPACITY {
                        h.buf = buf;
                    }
                }
                h.need_more = step.need_more && !h.buf.is_empty();
                if h.need_more && input.is_empty() {
                    return;
                }
            }
            let after = (self.halves[i].state, input.len(), self.halves[i].buf.len());
            if step.consumed == 0 && !step.need_more && before == after {
                idle_steps += 1;
                if idle_steps > 4 {
                    // Unreachable by design; never spin.
                    debug_assert!(false, "http step made no progress in {:?}", after.0);
                    let h = &mut self.halves[i];
                    cx.stats.skipped_bytes += (input.len() + h.buf.len()) as u64;
                    h.buf.clear();
                    h.need_more = false;
                    h.state = State::Resync {
                        at_line_start: false,
                    };
                    return;
                }
            } else {
                idle_steps = 0;
            }
        }
    }

    /// One step of `side`'s state machine over `s` (whose first byte was
    /// captured at `first_ts`).
    pub(super) fn step(
        &mut self,
        side: Side,
        s: &[u8],
        first_ts: Timestamp,
        cx: &mut Ctx<'_>,
    ) -> Step {
        let i = idx(side);
        match self.halves[i].state {
            State::Detect => self.step_detect(side, s, cx),
            State::Resync { at_line_start } => {
                if self.probe_h2 && crate::http2::looks_like_frames(s).is_some() {
                    return self.start_h2_mid_stream(side, s, cx);
                }
                match detect::resync(side, s, at_line_start, head_limit(cx.cfg)) {
                    Resync::Found(p) => {
                        self.probe_h2 = false;
                        cx.stats.skipped_bytes += p as u64;
                        self.halves[i].state = State::Idle;
                        Step::consumed(p)
                    }
                    Resync::Maybe(p) => {
                        cx.stats.skipped_bytes += p as u64;
                        self.halves[i].state = State::Resync {
                            at_line_start: true,
                        };
                        Step::need_more(p)
                    }
                    Resync::NotFound => {
                        cx.stats.skipped_bytes += s.len() as u64;
                        self.halves[i].state = State::Resync {
                            at_line_start: s.last() == Some(&b'\n'),
                        };
                        Step::consumed(s.len())
                    }
                }
            }
            State::Idle => {
                if side == Side::Server && self.front_pending().is_some_and(|p| p.http09) {
                    // HTTP/0.9: the reply has no head; every byte up to the close is body.
                    self.on_http09_reply(first_ts, cx);
                    return Step::consumed(0);
                }
                let n = detect::leading_newlines(s);
                if n < s.len() {
                    self.halves[i].state = State::Head {
                        start_ts: first_ts,
                        scanned: 0,
                        validated: 0,
                        line1: false,
                    };
                }
                Step::consumed(n)
            }
            State::Head { .. } => self.step_head(side, s, cx),
            State::Body => self.step_body(side, s, cx),
            State::AwaitAnswer { .. } => {
                if s.len() >= head_limit(cx.cfg) {
                    // The answer is taking too long: parse what the client sent as HTTP.
                    self.halves[i].state = State::Idle;
                    Step::consumed(0)
                } else {
                    Step::need_more(0)
                }
            }
        }
    }

    pub(super) fn step_detect(&mut self, side: Side, s: &[u8], cx: &mut Ctx<'_>) -> Step {
        let detected = if self.strict_detect {
            detect::classify_strict(side, s)
        } else {
            detect::classify(side, s)
        };
        match detected {
            Detected::NeedMore if s.len() < detect::DETECT_LIMIT => Step::need_more(0),
            Detected::Http | Detected::NeedMore => {
                self.detected_http();
                Step::consumed(0)
            }
            // Not a message start: maybe one follows a few bytes of garbage.
            Detected::Other => match detect::find_start(side, s) {
                Resync::Found(p) => {
                    cx.stats.detect_resyncs += 1;
                    cx.stats.skipped_bytes += p as u64;
                    self.detected_http();
                    Step::consumed(p)
                }
                Resync::Maybe(_) if s.len() < detect::DETECT_LIMIT => Step::need_more(0),
                _ => self.not_http(Detected::Other, s, cx),
            },
            Detected::Http2 => self.start_http2(side, s, cx),
            kind => self.not_http(kind, s, cx),
        }
    }

    // ---- HTTP/2 hand-over --------------------------------------------------

    fn h2_peers(&self) -> crate::http2::Peers {
        crate::http2::Peers {
            id: self.id,
            client: self.client,
            server: self.server,
            direction: self.direction,
        }
    }

    /// The connection speaks HTTP/2 from its start (`side` sent the preface,
    /// or the server's first frame is SETTINGS): hand it to the HTTP/2
    /// parser with the bytes `s` and whatever the other side sent meanwhile.
    fn start_http2(&mut self, side: Side, s: &[u8], cx: &mut Ctx<'_>) -> Step {
        cx.stats.non_http_http2 += 1;
        cx.stats.h2_connections += 1;
        let h2 = crate::http2::H2Connection::new(
            self.h2_peers(),
            true,
            self.next_seq,
            self.budget.clone(),
        );
        self.hand_over(h2, side.peer(), cx);
        if let Some(h2) = self.h2.as_mut() {
            h2.data(side, s, cx.ts, cx.cfg, cx.stats, cx.out);
        }
        Step::consumed(s.len())
    }

    /// A connection seen from its middle whose bytes are HTTP/2 frames: frame
    /// boundaries are found by content and the HPACK tables start unknown.
    fn start_h2_mid_stream(&mut self, side: Side, s: &[u8], cx: &mut Ctx<'_>) -> Step {
        cx.stats.h2_connections += 1;
        cx.stats.h2_mid_stream += 1;
        cx.cfg
            .notices
            .note(super::config::PortNotice::Http2MidStream, self.server.port);
        let h2 = crate::http2::H2Connection::new(
            self.h2_peers(),
            false,
            self.next_seq,
            self.budget.clone(),
        );
        self.hand_over(h2, side.peer(), cx);
        if let Some(h2) = self.h2.as_mut() {
            h2.data(side, s, cx.ts, cx.cfg, cx.stats, cx.out);
        }
        Step::consumed(s.len())
    }

    /// A `101` to `h2c` answered the request `seq` (last byte at `req_end`):
    /// it is stream 1's request, and the bytes that follow are HTTP/2.
    pub(super) fn start_h2c(&mut self, seq: u64, req_end: Timestamp, cx: &mut Ctx<'_>) {
        cx.stats.h2_connections += 1;
        cx.stats.h2_upgrades += 1;
        let h2 = crate::http2::H2Connection::upgraded(
            self.h2_peers(),
            seq,
            req_end,
            self.next_seq,
            self.budget.clone(),
        );
        self.hand_over(h2, Side::Client, cx);
    }

    /// Switches to HTTP/2; bytes `held` by that side (the client's bytes held
    /// while an upgrade awaited its answer, or the other side's bytes under
    /// detection) are given to the HTTP/2 parser first.
    fn hand_over(&mut self, h2: crate::http2::H2Connection, held: Side, cx: &mut Ctx<'_>) {
        let mut h2 = Box::new(h2);
        self.mode = Mode::Http2;
        let h = &mut self.halves[idx(held)];
        let bytes = std::mem::take(&mut h.buf);
        h.need_more = false;
        if !bytes.is_empty() {
            h2.data(held, &bytes, h.buf_ts, cx.cfg, cx.stats, cx.out);
        }
        // Pending requests other than the upgrade's cannot be answered in HTTP/1 now.
        cx.stats.requests_without_response += self.pending.iter().filter(|p| p.seen).count() as u64;
        self.pending.clear();
        self.h2 = Some(h2);
    }

    /// Detection found HTTP/1.x: every direction still detecting starts parsing.
    pub(super) fn detected_http(&mut self) {
        for h in &mut self.halves {
            if h.state == State::Detect {
                h.state = State::Idle;
            }
        }
    }

    /// Detection found another protocol: stop parsing the connection.
    pub(super) fn not_http(&mut self, kind: Detected, s: &[u8], cx: &mut Ctx<'_>) -> Step {
        match kind {
            Detected::Tls if self.tunnel => cx.stats.tunnel_tls += 1,
            Detected::Tls => {
                cx.stats.non_http_tls += 1;
                cx.cfg
                    .notices
                    .note(super::config::PortNotice::Tls, self.server.port);
            }
            Detected::Http2 => cx.stats.non_http_http2 += 1,
            _ => cx.stats.non_http_other += 1,
        }
        self.enter_passthrough(Mode::NonHttp, cx);
        cx.stats.skipped_bytes += s.len() as u64;
        Step::consumed(s.len())
    }

    pub(super) fn step_head(&mut self, side: Side, s: &[u8], cx: &mut Ctx<'_>) -> Step {
        let i = idx(side);
        let State::Head {
            start_ts,
            scanned,
            validated,
            mut line1,
        } = self.halves[i].state
        else {
            return Step::consumed(0);
        };
        let found = detect::find_head_end(s, scanned.min(s.len()));
        if !line1 {
            // No LF before `scanned` (it would have set `line1`): the first LF from
            // there on ends the start line. A delimited head's shape knows where;
            // otherwise search the new bytes only.
            let from = scanned.min(s.len());
            let first_lf = match &found {
                Ok((_, shape)) => shape.first_lf,
                Err(_) => memchr::memchr(b'\n', &s[from..]).map(|off| from + off),
            };
            if let Some(lf) = first_lf {
                line1 = true;
                // An HTTP/0.9 request is one line: its head ends there.
                let http09 = match side {
                    Side::Client => head::http09_request_line(&s[..lf]),
                    Side::Server => None,
                };
                if let Some(start) = http09 {
                    cx.stats.http09_requests += 1;
                    self.halves[i].after_close = false;
                    return self.on_parsed_head(
                        side,
                        &mut head::http09_head(start),
                        start_ts,
                        s,
                        lf + 1,
                        cx,
                    );
                }
            }
        }
        match found {
            Ok((end, shape)) => {
                let mut parsed = match side {
                    Side::Client => head::parse_request_shaped(&s[..end], &shape, cx.cfg),
                    Side::Server => head::parse_response_shaped(&s[..end], &shape, cx.cfg),
                };
                // A delimited head that breaks the grammar: emit what is there
                // (with `parseError`) so the peer's answer still pairs with it.
                // (Replaced in place: the usual `Ok` head is not moved.)
                if let Err(e) = parsed {
                    if e != HeadError::TooManyHeaders {
                        if let Some(h) = head::parse_broken(side == Side::Client, &s[..end], cx.cfg)
                        {
                            self.count_head_error(e, cx);
                            cx.stats.heads_with_parse_error += 1;
                            parsed = Ok(h);
                        }
                    }
                }
                match &mut parsed {
                    Ok(h) => {
                        if shape.bare_lf {
                            cx.stats.bare_lf_heads += 1;
                        }
                        if h.obs_fold {
                            cx.stats.obs_fold_heads += 1;
                        }
                        if h.lenient_request_line {
                            cx.stats.lenient_request_lines += 1;
                        }
                        if h.lenient_header_values {
                            cx.stats.lenient_header_values += 1;
                        }
                        if h.higher_minor {
                            cx.stats.higher_minor_versions += 1;
                        }
                        if self.halves[i].after_close {
                            cx.stats.messages_after_close += 1;
                        }
                        self.halves[i].after_close = h.conn_close;
                        cx.stats.ignored_header_lines += h.ignored_header_lines;
                        if matches!(&h.start, head::StartLine::Response { reason, .. } if reason.is_empty())
                        {
                            cx.stats.missing_reason_phrases += 1;
                        }
                        self.on_parsed_head(side, h, start_ts, s, end, cx)
                    }
                    Err(e) => self.head_error(side, *e, cx),
                }
            }
            Err(resume) => {
                if s.len() >= head_limit(cx.cfg) {
                    return self.head_error(side, HeadError::TooLarge, cx);
                }
                let mut validated = validated;
                if s.len() >= validated.saturating_mul(2) {
                    if let Err(e) = head::validate_partial(side == Side::Client, s, cx.cfg) {
                        // Text may still end as a delimited head that is emitted with
                        // `parseError`; wait for its end (bounded by `max_head_size`).
                        if e == HeadError::TooManyHeaders
                            || !head::broken_head_plausible(side == Side::Client, s)
                        {
                            return self.head_error(side, e, cx);
                        }
                    }
                    validated = s.len().max(16);
                }
                self.halves[i].state = State::Head {
                    start_ts,
                    scanned: resume,
                    validated,
                    line1,
                };
                Step::need_more(0)
            }
        }
    }

    /// A head `s[..end]` was parsed: start its message; the bytes after it are
    /// skipped when the connection stopped being HTTP. The head is taken by
    /// reference: passed by value, the large struct was copied at each call.
    fn on_parsed_head(
        &mut self,
        side: Side,
        h: &mut head::Head,
        start_ts: Timestamp,
        s: &[u8],
        end: usize,
        cx: &mut Ctx<'_>,
    ) -> Step {
        self.on_head(side, h, start_ts, cx);
        if let Some(h2) = self.h2.as_mut() {
            // A 101 to h2c: the server's HTTP/2 starts right after it.
            h2.data(side, &s[end..], cx.ts, cx.cfg, cx.stats, cx.out);
            return Step::consumed(s.len());
        }
        if self.mode != Mode::Http {
            cx.stats.skipped_bytes += (s.len() - end) as u64;
            return Step::consumed(s.len());
        }
        Step::consumed(end)
    }

    fn count_head_error(&mut self, e: HeadError, cx: &mut Ctx<'_>) {
        match e {
            HeadError::TooManyHeaders => cx.stats.parse_error_too_many_headers += 1,
            HeadError::Version => cx.stats.parse_error_invalid_version += 1,
            HeadError::Syntax => cx.stats.parse_error_invalid_head += 1,
            HeadError::TooLarge => cx.stats.parse_error_head_too_large += 1,
        }
    }

    /// A head could not be parsed: count it, skip its first byte and resynchronise.
    ///
    /// After a message with `Connection: close` on this side the bytes are data
    /// the peer ignores (as llhttp's lenient data-after-close mode does): counted
    /// in `data_after_close`, neither a parse error nor a lost message. A well-formed
    /// message there is still parsed.
    pub(super) fn head_error(&mut self, side: Side, e: HeadError, cx: &mut Ctx<'_>) -> Step {
        if self.halves[idx(side)].after_close && e != HeadError::TooManyHeaders {
            cx.stats.data_after_close += 1;
        } else {
            self.count_head_error(e, cx);
            self.lost_message(side, cx);
        }
        cx.stats.skipped_bytes += 1;
        cx.stats.resyncs += 1;
        self.halves[idx(side)].state = State::Resync {
            at_line_start: false,
        };
        Step::consumed(1)
    }

    pub(super) fn step_body(&mut self, side: Side, s: &[u8], cx: &mut Ctx<'_>) -> Step {
        let i = idx(side);
        let Some(ip) = self.halves[i].current.as_mut() else {
            self.halves[i].state = State::Idle;
            return Step::consumed(0);
        };
        match ip.decoder.decode(s, &mut ip.body, head_limit(cx.cfg)) {
            Ok(d) => {
                if d.done {
                    if ip.decoder.bare_lf() {
                        cx.stats.bare_lf_chunked_bodies += 1;
                    }
                    if ip.decoder.size_whitespace() {
                        cx.stats.chunk_size_whitespace_bodies += 1;
                    }
                    self.finish(side, cx.ts, false, cx);
                }
                Step::consumed(d.consumed)
            }
            Err((e, consumed)) => {
                match e {
                    BodyError::InvalidChunk => cx.stats.parse_error_invalid_chunk += 1,
                    BodyError::ChunkSizeOverflow => cx.stats.parse_error_chunk_size_overflow += 1,
                    BodyError::ChunkExtensionTooLarge => {
                        cx.stats.parse_error_chunk_extension_too_large += 1
                    }
                    BodyError::TrailersTooLarge => cx.stats.parse_error_trailers_too_large += 1,
                }
                self.finish(side, cx.ts, true, cx);
                self.resync_from_here(side, false, cx);
                cx.stats.skipped_bytes += 1;
                Step::consumed(consumed)
            }
        }
    }

    pub(super) fn resync_from_here(&mut self, side: Side, at_line_start: bool, cx: &mut Ctx<'_>) {
        cx.stats.resyncs += 1;
        self.halves[idx(side)].state = State::Resync { at_line_start };
    }

    /// The connection stops being HTTP: everything held is counted as skipped.
    pub(super) fn enter_passthrough(&mut self, mode: Mode, cx: &mut Ctx<'_>) {
        self.mode = mode;
        let ts = cx.ts;
        for side in [Side::Client, Side::Server] {
            if self.halves[idx(side)].current.is_some() {
                self.finish(side, ts, true, cx);
            }
            let h = &mut self.halves[idx(side)];
            cx.stats.skipped_bytes += h.buf.len() as u64;
            h.buf = Vec::new();
            h.need_more = false;
        }
    }

    pub(super) fn on_gap(&mut self, side: Side, len: u64, cx: &mut Ctx<'_>) {
        let i = idx(side);
        let h = &mut self.halves[i];
        let state = h.state;
        match state {
            State::Detect | State::Resync { .. } => {
                cx.stats.skipped_bytes += h.buf.len() as u64;
                h.buf.clear();
                h.need_more = false;
                if state == State::Detect {
                    cx.stats.resyncs += 1;
                }
                h.state = State::Resync {
                    at_line_start: true,
                };
            }
            State::Idle | State::Head { .. } => {
                cx.stats.skipped_bytes += h.buf.len() as u64;
                h.buf.clear();
                h.need_more = false;
                self.lost_message(side, cx);
                self.resync_from_here(side, true, cx);
            }
            State::AwaitAnswer { seq, .. } => {
                cx.stats.skipped_bytes += h.buf.len() as u64;
                h.buf.clear();
                h.need_more = false;
                h.state = State::AwaitAnswer { seq, resync: true };
            }
            State::Body => {
                let Some(ip) = h.current.as_mut() else {
                    h.state = State::Resync {
                        at_line_start: true,
                    };
                    return;
                };
                match ip.decoder.gap(len, &mut ip.body) {
                    GapOutcome::Skipped { done } => {
                        cx.stats.gap_body_bytes = cx.stats.gap_body_bytes.saturating_add(len);
                        if done {
                            self.finish(side, cx.ts, true, cx);
                        }
                    }
                    GapOutcome::Beyond { excess } => {
                        cx.stats.gap_body_bytes =
                            cx.stats.gap_body_bytes.saturating_add(len - excess);
                        self.finish(side, cx.ts, true, cx);
                        // The rest of the gap began the next message.
                        if self.halves[i].state == State::Idle {
                            self.lost_message(side, cx);
                            self.resync_from_here(side, true, cx);
                        } else if let State::AwaitAnswer { seq, .. } = self.halves[i].state {
                            self.halves[i].state = State::AwaitAnswer { seq, resync: true };
                        }
                    }
                    GapOutcome::Lost => {
                        self.finish(side, cx.ts, true, cx);
                        if let State::AwaitAnswer { seq, .. } = self.halves[i].state {
                            self.halves[i].state = State::AwaitAnswer { seq, resync: true };
                        } else {
                            self.resync_from_here(side, true, cx);
                        }
                    }
                }
            }
        }
    }

    /// `side` will send nothing more: `fin` (a FIN was seen) or not (connection gone).
    pub(super) fn end_side(&mut self, side: Side, fin: bool, cx: &mut Ctx<'_>) {
        let i = idx(side);
        let h = &mut self.halves[i];
        match h.state {
            State::Body => {
                let clean =
                    h.current.as_ref().is_some_and(|c| c.decoder.is_eof()) && (fin || h.fin);
                self.finish(side, cx.ts, !clean, cx);
                if self.halves[i].state == State::Idle {
                    self.halves[i].state = State::Resync {
                        at_line_start: false,
                    };
                }
            }
            State::Head { .. } | State::Detect | State::Resync { .. } => {
                cx.stats.skipped_bytes += h.buf.len() as u64;
                h.buf.clear();
                h.need_more = false;
            }
            State::Idle | State::AwaitAnswer { .. } => {}
        }
    }
}
