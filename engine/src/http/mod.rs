//! HTTP/1.0 and HTTP/1.1 assembly and request/response pairing.
//!
//! One [`HttpConnection`] per TCP connection. The reassembly stage feeds it
//! each direction's in-order bytes ([`HttpConnection::data`]), explicit holes
//! ([`HttpConnection::gap`]), half-closes ([`HttpConnection::fin`]) and the
//! connection's end ([`HttpConnection::close`]); it appends finished
//! [`HttpMessage`]s to `out` and counts everything else in [`HttpStats`].
//!
//! # How it works
//!
//! Each direction is a small state machine: `Detect` (first bytes of a
//! connection seen from its SYN: TLS, HTTP/2 or other binary stop parsing;
//! a message start within the first 64 bytes after some garbage is parsed,
//! the garbage skipped, see `detect.rs`),
//! `Resync` (searching for a plausible message start, see `detect.rs`),
//! `Idle` (between messages; empty lines are skipped), `Head` (collecting a
//! head), `Body` (framing per `body.rs`) and, on the client side only,
//! `AwaitAnswer` (after an `Upgrade` or `CONNECT` request: bytes are held
//! until the server says whether the connection switches protocols).
//!
//! Heads are parsed zero-copy from the delivered slice when the whole head is
//! in it; only a partial head (or a partial resync candidate) is copied into
//! the direction's buffer. A head with obsolete line folding or a request line
//! with spaces in its target is parsed from a scratch copy no longer than the
//! head (see `head.rs`). Bodies are never buffered beyond `max_body_size`.
//!
//! # Pairing
//!
//! A request gets the next sequence number when its head is parsed and is
//! queued as pending; it is emitted when its last byte arrives. A response
//! head pairs with the oldest pending request: interim `1xx` (not `101`) are
//! emitted at once with that request's sequence and do not dequeue it; a final
//! response dequeues it. `latencyMs` runs from the request's last byte (or,
//! while the request is still being sent, e.g. `Expect: 100-continue`, its
//! last byte so far) to the response's first byte.
//!
//! A response with no pending request takes the next sequence number (so
//! sequences stay unique on the connection) and is emitted with
//! `incomplete: true`; an interim one with no pending request reuses the next
//! number without taking it, so the final response that follows shares it.
//!
//! # Gaps
//!
//! * Inside a `Content-Length` body (or a chunk's data, or a close-delimited
//!   body) the gap's bytes are skipped and framing continues; the message is
//!   emitted with `incomplete: true` and its `body` stops at the hole
//!   (`bodySize` still counts the missing bytes, so `truncated` is true).
//! * Inside a head or chunk framing: the message is emitted incomplete if its
//!   head was parsed, and the direction resynchronises.
//! * A gap on the client side between requests or inside a head means a
//!   request was lost: a placeholder is queued so the responses that follow
//!   keep their pairing; the response paired with it is emitted incomplete.
//!   Likewise a gap on the server side between responses or inside a head
//!   dequeues the oldest pending request (its response was lost). Several
//!   messages lost in one gap cannot be counted; pairing then shifts.
//!
//! # Invariants
//!
//! * Never panics on any input; all arithmetic on wire values is checked.
//! * Per direction, buffered bytes ≤ `max(max_head_size, detect bound)` plus
//!   at most `max_body_size` bytes of body; pending requests ≤ [`MAX_PENDING`].
//! * Everything held is charged to the worker's pools ([`crate::budget`]): a
//!   direction's buffer (by capacity) to `heads` before it grows — refused, the
//!   buffered bytes are shed like a gap (`heads_shed_by_budget`); the head of a
//!   message whose body is in progress to `heads`; pending requests past the
//!   first to `pending` — refused, the connection's oldest pending request is
//!   shed (`pending_shed_by_budget`); bodies to `bodies`. Dropping the
//!   connection gives everything back.
//! * A growing head is scanned for its end once (the scan position is kept)
//!   and validated with exponentially spaced re-parses, so cost is linear.
//! * `data` consumes all of its input; bytes not parsed are counted in
//!   `skipped_bytes`.

mod body;
mod detect;
mod head;
mod stats;

#[cfg(test)]
mod tests;

use std::collections::VecDeque;

use crate::budget::{Charge, WorkerBudget};
use crate::message::{ConnMeta, Direction, Endpoint, HttpMessage, MessageKind, Side};
use crate::time::Timestamp;

use body::{BodyBuf, BodyError, Decoder, Framing, FramingError, GapOutcome};
use detect::{Detected, Resync};
pub use head::REDACTED;
use head::{Head, HeadError, StartLine};
pub use stats::HttpStats;

/// Most requests waiting for their response on one connection; beyond it the
/// oldest is shed (counted in `pending_overflow`; its sequence number is kept, so
/// its response still pairs with it).
pub const MAX_PENDING: usize = 1024;

/// An emptied direction buffer larger than this is freed rather than kept.
const KEEP_BUF_CAPACITY: usize = 4096;

/// Settings of the HTTP stage.
#[derive(Clone, Debug)]
pub struct HttpConfig {
    /// Body bytes kept per message (`maxBodySize`); 0 keeps no body.
    pub max_body_size: usize,
    /// Header names whose values are replaced by `"[REDACTED]"` (compared case-insensitively).
    pub redact_headers: Vec<String>,
    /// Query parameters and body fields redacted in every message (see [`crate::redact`]).
    pub redact: crate::redact::Redaction,
    /// Longest message head (and trailer section) accepted.
    pub max_head_size: usize,
    /// Most header lines in one head (capped at 512).
    pub max_headers: usize,
}

impl HttpConfig {
    /// The HTTP stage's part of validated settings.
    pub fn from_settings(s: &crate::config::Settings) -> Self {
        HttpConfig {
            max_body_size: s.max_body_size,
            redact_headers: s.redact_headers.clone(),
            redact: crate::redact::Redaction {
                query_params: s.redact_query_params.clone(),
                body_fields: s.redact_body_fields.clone(),
            },
            max_head_size: 64 * 1024,
            max_headers: 128,
        }
    }
}

impl Default for HttpConfig {
    /// The settings' defaults (the table in `tcp-sniffer-settings`).
    fn default() -> Self {
        Self::from_settings(&crate::config::Settings::default())
    }
}

/// Whether the connection is still parsed as HTTP.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Mode {
    Http,
    /// After `101` or a successful `CONNECT`.
    Tunnel,
    /// Detected as not HTTP/1.x.
    NonHttp,
    /// [`HttpConnection::close`] was called.
    Closed,
}

/// State of one direction.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
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
    },
    /// Inside a body (the message is in [`Half::current`]).
    Body,
    /// Client only: after an `Upgrade`/`CONNECT` request with sequence `seq`;
    /// bytes are held until the answer. `resync`: a gap hit the held bytes.
    AwaitAnswer { seq: u64, resync: bool },
}

/// A message whose head was parsed and whose body is in progress.
#[derive(Debug)]
struct InProgress {
    msg: HttpMessage,
    decoder: Decoder,
    body: BodyBuf,
    /// Client only: wait for the answer after this request.
    await_answer: bool,
    /// The parsed head's share of the heads pool, given back with the message.
    _head_charge: Charge,
}

/// One direction of the connection.
#[derive(Debug)]
struct Half {
    state: State,
    /// Bytes kept across calls: a partial head, a partial resync candidate,
    /// the first bytes under detection, or bytes held in `AwaitAnswer`.
    buf: Vec<u8>,
    /// The last step over `buf` needs more bytes.
    need_more: bool,
    /// Capture time of the call that put the first byte into `buf`.
    buf_ts: Timestamp,
    current: Option<InProgress>,
    fin: bool,
    /// Bytes of the heads pool charged for `buf` (≥ its capacity after it grew;
    /// brought down to it by [`HttpConnection::settle`]).
    charged: usize,
}

impl Half {
    fn new(state: State) -> Self {
        Half {
            state,
            buf: Vec::new(),
            need_more: false,
            buf_ts: Timestamp::default(),
            current: None,
            fin: false,
            charged: 0,
        }
    }
}

/// A request waiting for its response.
#[derive(Clone, Copy, Debug)]
struct Pending {
    seq: u64,
    is_head: bool,
    is_connect: bool,
    /// Capture time of the request's last byte (so far).
    last_ts: Timestamp,
    /// False for a placeholder standing for a request lost in a gap or unparsable.
    seen: bool,
    /// Rebuilt from a [`ShedRun`]: its capture time was not kept (no latency).
    shed: bool,
}

/// Consecutive pending requests shed for memory (oldest first): their slots are
/// gone, but their sequence numbers are kept so the responses that answer them
/// still pair with them and pairing never shifts. A run costs 24 bytes however
/// many requests it stands for.
#[derive(Clone, Copy, Debug)]
struct ShedRun {
    first: u64,
    count: u64,
    seen: bool,
    is_head: bool,
    is_connect: bool,
}

/// Most runs of shed requests kept per connection; past it the oldest run is
/// forgotten and pairing may shift (counted in `requests_without_response`).
const MAX_SHED_RUNS: usize = 8;

/// Everything a step needs besides the connection.
struct Ctx<'a> {
    ts: Timestamp,
    cfg: &'a HttpConfig,
    stats: &'a mut HttpStats,
    out: &'a mut Vec<HttpMessage>,
}

/// Result of one step of a direction's state machine.
#[derive(Clone, Copy, Debug)]
struct Step {
    consumed: usize,
    need_more: bool,
}

impl Step {
    fn consumed(n: usize) -> Step {
        Step {
            consumed: n,
            need_more: false,
        }
    }
    fn need_more(n: usize) -> Step {
        Step {
            consumed: n,
            need_more: true,
        }
    }
}

/// `max_head_size`, but never below 256 bytes (a smaller limit could not hold a request line).
fn head_limit(cfg: &HttpConfig) -> usize {
    cfg.max_head_size.max(256)
}

fn idx(side: Side) -> usize {
    match side {
        Side::Client => 0,
        Side::Server => 1,
    }
}

/// HTTP/1 parser state of one TCP connection: both directions and the FIFO
/// of requests waiting for their responses.
#[derive(Debug)]
pub struct HttpConnection {
    id: u64,
    client: Endpoint,
    server: Endpoint,
    direction: Direction,
    halves: [Half; 2],
    pending: VecDeque<Pending>,
    /// Requests shed from `pending`, older than all of it.
    shed: VecDeque<ShedRun>,
    next_seq: u64,
    mode: Mode,
    /// The worker's pools, shared with its other connections.
    budget: WorkerBudget,
    /// Bytes of the pending pool charged for `pending` (see [`PENDING_COST`]).
    pending_charged: usize,
}

/// What one pending-request slot costs the pending pool (its size, rounded up).
pub const PENDING_COST: usize = 32;
/// Pending-request slots a connection holds without charging the pool: the
/// usual non-pipelined exchange never touches the pool.
const FREE_PENDING_SLOTS: usize = 4;

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
            budget: WorkerBudget::unlimited(),
            pending_charged: 0,
        }
    }

    /// Draws what this connection holds from `budget`, shared with other connections.
    pub fn with_budget(mut self, budget: WorkerBudget) -> Self {
        self.budget = budget;
        self
    }

    /// Pending requests (waiting for their response).
    pub fn pending_requests(&self) -> usize {
        self.pending.len()
    }

    /// False once the connection is no longer parsed as HTTP (after `101`, a
    /// successful `CONNECT`, detected non-HTTP, or [`close`](Self::close)).
    pub fn wants_data(&self) -> bool {
        self.mode == Mode::Http
    }

    /// Bytes held by this connection (partial heads, held bytes, kept bodies).
    pub fn buffered_bytes(&self) -> usize {
        self.halves
            .iter()
            .map(|h| h.buf.capacity() + h.current.as_ref().map_or(0, |c| c.body.data().len()))
            .sum()
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
    fn settle(&mut self) {
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

    fn pending_charge(capacity: usize) -> usize {
        capacity.saturating_sub(FREE_PENDING_SLOTS) * PENDING_COST
    }

    /// Makes room for `extra` more bytes in half `i`'s buffer, charged to the heads
    /// pool first; false when the pool cannot give them.
    fn reserve_buf(&mut self, i: usize, extra: usize) -> bool {
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
    fn shed_held(&mut self, side: Side, also_skipped: usize, cx: &mut Ctx<'_>) {
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

    fn feed(&mut self, side: Side, mut input: &[u8], cx: &mut Ctx<'_>) {
        let i = idx(side);
        // Defence in depth against a step that makes no progress.
        let mut idle_steps = 0u32;
        loop {
            if self.mode != Mode::Http {
                cx.stats.skipped_bytes += input.len() as u64;
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
    fn step(&mut self, side: Side, s: &[u8], first_ts: Timestamp, cx: &mut Ctx<'_>) -> Step {
        let i = idx(side);
        match self.halves[i].state {
            State::Detect => self.step_detect(side, s, cx),
            State::Resync { at_line_start } => {
                match detect::resync(side, s, at_line_start, head_limit(cx.cfg)) {
                    Resync::Found(p) => {
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
                let n = detect::leading_newlines(s);
                if n < s.len() {
                    self.halves[i].state = State::Head {
                        start_ts: first_ts,
                        scanned: 0,
                        validated: 0,
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

    fn step_detect(&mut self, side: Side, s: &[u8], cx: &mut Ctx<'_>) -> Step {
        match detect::classify(side, s) {
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
            kind => self.not_http(kind, s, cx),
        }
    }

    /// Detection found HTTP/1.x: every direction still detecting starts parsing.
    fn detected_http(&mut self) {
        for h in &mut self.halves {
            if h.state == State::Detect {
                h.state = State::Idle;
            }
        }
    }

    /// Detection found another protocol: stop parsing the connection.
    fn not_http(&mut self, kind: Detected, s: &[u8], cx: &mut Ctx<'_>) -> Step {
        match kind {
            Detected::Tls => cx.stats.non_http_tls += 1,
            Detected::Http2 => cx.stats.non_http_http2 += 1,
            _ => cx.stats.non_http_other += 1,
        }
        self.enter_passthrough(Mode::NonHttp, cx);
        cx.stats.skipped_bytes += s.len() as u64;
        Step::consumed(s.len())
    }

    fn step_head(&mut self, side: Side, s: &[u8], cx: &mut Ctx<'_>) -> Step {
        let i = idx(side);
        let State::Head {
            start_ts,
            scanned,
            validated,
        } = self.halves[i].state
        else {
            return Step::consumed(0);
        };
        match detect::find_head_end(s, scanned.min(s.len())) {
            Ok(end) => {
                let parsed = match side {
                    Side::Client => head::parse_request(&s[..end], cx.cfg),
                    Side::Server => head::parse_response(&s[..end], cx.cfg),
                };
                match parsed {
                    Ok(h) => {
                        if h.obs_fold {
                            cx.stats.obs_fold_heads += 1;
                        }
                        if h.lenient_request_line {
                            cx.stats.lenient_request_lines += 1;
                        }
                        cx.stats.ignored_header_lines += h.ignored_header_lines;
                        self.on_head(side, h, start_ts, cx);
                        if self.mode != Mode::Http {
                            cx.stats.skipped_bytes += (s.len() - end) as u64;
                            return Step::consumed(s.len());
                        }
                        Step::consumed(end)
                    }
                    Err(e) => self.head_error(side, e, cx),
                }
            }
            Err(resume) => {
                if s.len() >= head_limit(cx.cfg) {
                    return self.head_error(side, HeadError::TooLarge, cx);
                }
                let mut validated = validated;
                if s.len() >= validated.saturating_mul(2) {
                    if let Err(e) = head::validate_partial(side == Side::Client, s, cx.cfg) {
                        return self.head_error(side, e, cx);
                    }
                    validated = s.len().max(16);
                }
                self.halves[i].state = State::Head {
                    start_ts,
                    scanned: resume,
                    validated,
                };
                Step::need_more(0)
            }
        }
    }

    /// A head could not be parsed: count it, skip its first byte and resynchronise.
    fn head_error(&mut self, side: Side, e: HeadError, cx: &mut Ctx<'_>) -> Step {
        match e {
            HeadError::TooManyHeaders => cx.stats.parse_error_too_many_headers += 1,
            HeadError::Version => cx.stats.parse_error_invalid_version += 1,
            HeadError::Syntax => cx.stats.parse_error_invalid_head += 1,
            HeadError::TooLarge => cx.stats.parse_error_head_too_large += 1,
        }
        self.lost_message(side, cx);
        cx.stats.skipped_bytes += 1;
        cx.stats.resyncs += 1;
        self.halves[idx(side)].state = State::Resync {
            at_line_start: false,
        };
        Step::consumed(1)
    }

    fn step_body(&mut self, side: Side, s: &[u8], cx: &mut Ctx<'_>) -> Step {
        let i = idx(side);
        let Some(ip) = self.halves[i].current.as_mut() else {
            self.halves[i].state = State::Idle;
            return Step::consumed(0);
        };
        match ip.decoder.decode(s, &mut ip.body, head_limit(cx.cfg)) {
            Ok(d) => {
                if d.done {
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

    fn resync_from_here(&mut self, side: Side, at_line_start: bool, cx: &mut Ctx<'_>) {
        cx.stats.resyncs += 1;
        self.halves[idx(side)].state = State::Resync { at_line_start };
    }

    // ---- heads -----------------------------------------------------------

    fn new_message(
        &self,
        side: Side,
        kind: MessageKind,
        seq: u64,
        ts: Timestamp,
        head: &mut Head,
    ) -> HttpMessage {
        let (source, destination) = match side {
            Side::Client => (self.client, self.server),
            Side::Server => (self.server, self.client),
        };
        HttpMessage {
            kind,
            connection_id: self.id,
            sequence: seq,
            timestamp: ts,
            end_timestamp: ts,
            source,
            destination,
            direction: self.direction,
            http_version: head.version,
            headers: std::mem::take(&mut head.headers),
            body: Vec::new(),
            body_size: 0,
            truncated: false,
            incomplete: false,
        }
    }

    fn on_head(&mut self, side: Side, head: Head, start_ts: Timestamp, cx: &mut Ctx<'_>) {
        match side {
            Side::Client => self.on_request_head(head, start_ts, cx),
            Side::Server => self.on_response_head(head, start_ts, cx),
        }
    }

    fn push_pending(&mut self, p: Pending, cx: &mut Ctx<'_>) {
        if self.pending.len() >= MAX_PENDING {
            cx.stats.pending_overflow += 1;
            self.drop_oldest_pending(cx);
        } else if self.pending.len() == self.pending.capacity() {
            // The queue must grow: charge the new slots first, or shed the oldest.
            let new_cap = (self.pending.capacity() * 2).clamp(FREE_PENDING_SLOTS, MAX_PENDING);
            let add = Self::pending_charge(new_cap).saturating_sub(self.pending_charged);
            if self.budget.pending.try_take(add) {
                self.pending_charged += add;
                self.pending.reserve_exact(new_cap - self.pending.len());
                let want = Self::pending_charge(self.pending.capacity());
                if want > self.pending_charged {
                    self.budget.pending.force_take(want - self.pending_charged);
                    self.pending_charged = want;
                }
            } else {
                // Not empty: the first FREE_PENDING_SLOTS slots cost nothing.
                cx.stats.pending_shed_by_budget += 1;
                self.drop_oldest_pending(cx);
            }
        }
        self.pending.push_back(p);
    }

    /// Gives up the oldest pending request's slot, keeping its sequence number in
    /// a [`ShedRun`] so its response still pairs with it.
    fn drop_oldest_pending(&mut self, cx: &mut Ctx<'_>) {
        let Some(old) = self.pending.pop_front() else {
            return;
        };
        let extends = self.shed.back().is_some_and(|r| {
            r.first + r.count == old.seq
                && (r.seen, r.is_head, r.is_connect) == (old.seen, old.is_head, old.is_connect)
        });
        match self.shed.back_mut() {
            Some(r) if extends => r.count += 1,
            _ => {
                if self.shed.len() >= MAX_SHED_RUNS {
                    if let Some(gone) = self.shed.pop_front() {
                        if gone.seen {
                            cx.stats.requests_without_response += gone.count;
                        }
                    }
                }
                self.shed.push_back(ShedRun {
                    first: old.seq,
                    count: 1,
                    seen: old.seen,
                    is_head: old.is_head,
                    is_connect: old.is_connect,
                });
            }
        }
        // No bytes are held for an answer that may not come in order any more.
        self.release_client(old.seq, cx);
    }

    /// The oldest request still waiting for its response, shed or not.
    fn front_pending(&self) -> Option<Pending> {
        match self.shed.front() {
            Some(r) => Some(Pending {
                seq: r.first,
                is_head: r.is_head,
                is_connect: r.is_connect,
                last_ts: Timestamp::default(),
                seen: r.seen,
                shed: true,
            }),
            None => self.pending.front().copied(),
        }
    }

    /// Removes and returns [`Self::front_pending`].
    fn pop_front_pending(&mut self) -> Option<Pending> {
        let front = self.front_pending()?;
        if front.shed {
            let r = self.shed.front_mut().expect("front_pending saw a run");
            r.first += 1;
            r.count -= 1;
            if r.count == 0 {
                self.shed.pop_front();
            }
        } else {
            self.pending.pop_front();
        }
        Some(front)
    }

    fn on_request_head(&mut self, mut head: Head, start_ts: Timestamp, cx: &mut Ctx<'_>) {
        let StartLine::Request { method, url } = std::mem::replace(
            &mut head.start,
            StartLine::Response {
                status: 0,
                reason: String::new(),
            },
        ) else {
            return;
        };
        let seq = self.next_seq;
        self.next_seq += 1;
        let is_connect = method == "CONNECT";
        self.push_pending(
            Pending {
                seq,
                is_head: method == "HEAD",
                is_connect,
                last_ts: cx.ts,
                seen: true,
                shed: false,
            },
            cx,
        );
        let await_answer = is_connect || head.upgrade;
        let framing = body::request_framing(&head, is_connect);
        let msg = self.new_message(
            Side::Client,
            MessageKind::Request { method, url },
            seq,
            start_ts,
            &mut head,
        );
        self.start_body(Side::Client, msg, framing, await_answer, cx);
    }

    fn on_response_head(&mut self, mut head: Head, start_ts: Timestamp, cx: &mut Ctx<'_>) {
        let StartLine::Response { status, reason } = std::mem::replace(
            &mut head.start,
            StartLine::Response {
                status: 0,
                reason: String::new(),
            },
        ) else {
            return;
        };
        let kind = |latency_ms| MessageKind::Response {
            status_code: status,
            status_message: reason.clone(),
            latency_ms,
        };
        let latency = |p: &Pending| (p.seen && !p.shed).then(|| start_ts.millis_since(p.last_ts));

        if (100..200).contains(&status) && status != 101 {
            // Interim: same sequence as the request, which stays pending.
            let front = self.front_pending();
            let (seq, lat, orphan) = match front {
                Some(p) => (p.seq, latency(&p), !p.seen),
                None => (self.next_seq, None, true),
            };
            let mut msg = self.new_message(Side::Server, kind(lat), seq, start_ts, &mut head);
            msg.incomplete = orphan;
            if orphan {
                cx.stats.responses_without_request += 1;
            }
            cx.stats.interim_responses += 1;
            msg.end_timestamp = cx.ts;
            self.emit(msg, cx);
            self.halves[1].state = State::Idle;
            return;
        }

        let req = self.pop_front_pending();
        let (seq, lat, orphan) = match req {
            Some(p) => (p.seq, latency(&p), !p.seen),
            None => {
                let s = self.next_seq;
                self.next_seq += 1;
                (s, None, true)
            }
        };
        if orphan {
            cx.stats.responses_without_request += 1;
        }
        let mut msg = self.new_message(Side::Server, kind(lat), seq, start_ts, &mut head);
        msg.incomplete = orphan;

        let to_connect = req.is_some_and(|p| p.is_connect);
        if status == 101 || (to_connect && (200..300).contains(&status)) {
            msg.end_timestamp = cx.ts;
            self.emit(msg, cx);
            if status == 101 {
                cx.stats.upgraded_connections += 1;
            } else {
                cx.stats.connect_tunnels += 1;
            }
            self.enter_passthrough(Mode::Tunnel, cx);
            return;
        }
        // Held client bytes were sent before this response: parse them first.
        self.release_client(seq, cx);
        let framing = body::response_framing(&head, status, req.is_some_and(|p| p.is_head));
        self.start_body(Side::Server, msg, framing, false, cx);
    }

    /// Starts (or at once finishes) the body of a message whose head was parsed.
    fn start_body(
        &mut self,
        side: Side,
        mut msg: HttpMessage,
        framing: Result<(Framing, bool), FramingError>,
        await_answer: bool,
        cx: &mut Ctx<'_>,
    ) {
        let i = idx(side);
        let framing = match framing {
            Ok((f, te_and_cl)) => {
                if te_and_cl {
                    cx.stats.transfer_encoding_with_content_length += 1;
                }
                f
            }
            Err(e) => {
                match e {
                    FramingError::InvalidContentLength => {
                        cx.stats.parse_error_invalid_content_length += 1
                    }
                    FramingError::InvalidTransferEncoding => {
                        cx.stats.parse_error_invalid_transfer_encoding += 1
                    }
                }
                // The head is worth emitting; what follows cannot be framed.
                msg.incomplete = true;
                msg.end_timestamp = cx.ts;
                self.emit(msg, cx);
                self.resync_from_here(side, true, cx);
                return;
            }
        };
        let decoder = Decoder::new(framing);
        let head_charge = Charge::force(&self.budget.heads, held_bytes(&msg));
        self.halves[i].current = Some(InProgress {
            msg,
            decoder: decoder.unwrap_or(Decoder::Length { remaining: 0 }),
            body: BodyBuf::new(cx.cfg.max_body_size, self.budget.bodies.clone()),
            await_answer,
            _head_charge: head_charge,
        });
        if framing == Framing::None || framing == Framing::Length(0) {
            self.finish(side, cx.ts, false, cx);
        } else {
            self.halves[i].state = State::Body;
        }
    }

    /// Emits the message in progress on `side` (its last byte captured at `end_ts`).
    fn finish(&mut self, side: Side, end_ts: Timestamp, incomplete: bool, cx: &mut Ctx<'_>) {
        let i = idx(side);
        let Some(ip) = self.halves[i].current.take() else {
            return;
        };
        let mut msg = ip.msg;
        msg.end_timestamp = end_ts;
        msg.body_size = ip.body.size;
        let mut body = ip.body;
        msg.truncated = body.size > body.data().len() as u64;
        if body.cut_by_budget {
            cx.stats.bodies_cut_by_budget += 1;
        }
        msg.body = body.take_data();
        msg.incomplete |= incomplete || body.gapped;
        if ip.decoder.had_trailers() {
            cx.stats.trailers_discarded += 1;
        }
        let seq = msg.sequence;
        let mut next = State::Idle;
        if side == Side::Client {
            let queued = self.pending.iter_mut().find(|p| p.seq == seq);
            let queued = queued.map(|p| p.last_ts = end_ts).is_some();
            if ip.await_answer && queued {
                next = State::AwaitAnswer { seq, resync: false };
            }
        }
        self.halves[i].state = next;
        self.emit(msg, cx);
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

    /// The request `seq` was answered (or dropped): if the client was holding
    /// bytes for it, parse them as HTTP now.
    fn release_client(&mut self, seq: u64, cx: &mut Ctx<'_>) {
        let h = &mut self.halves[0];
        if let State::AwaitAnswer { seq: s, resync } = h.state {
            if s == seq {
                h.state = if resync {
                    State::Resync {
                        at_line_start: false,
                    }
                } else {
                    State::Idle
                };
                h.need_more = false;
                if !h.buf.is_empty() {
                    self.feed(Side::Client, &[], cx);
                }
            }
        }
    }

    /// The connection stops being HTTP: everything held is counted as skipped.
    fn enter_passthrough(&mut self, mode: Mode, cx: &mut Ctx<'_>) {
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

    // ---- gaps and ends -----------------------------------------------------

    /// A message start on `side` was lost (gap between messages, in a head,
    /// or an unparsable head): keep the pairing in step.
    fn lost_message(&mut self, side: Side, cx: &mut Ctx<'_>) {
        match side {
            Side::Client => {
                cx.stats.lost_requests += 1;
                let seq = self.next_seq;
                self.next_seq += 1;
                self.push_pending(
                    Pending {
                        seq,
                        is_head: false,
                        is_connect: false,
                        last_ts: cx.ts,
                        seen: false,
                        shed: false,
                    },
                    cx,
                );
            }
            Side::Server => {
                if let Some(p) = self.pop_front_pending() {
                    cx.stats.lost_responses += 1;
                    if p.seen {
                        cx.stats.requests_without_response += 1;
                    }
                    self.release_client(p.seq, cx);
                }
            }
        }
    }

    fn on_gap(&mut self, side: Side, len: u64, cx: &mut Ctx<'_>) {
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
    fn end_side(&mut self, side: Side, fin: bool, cx: &mut Ctx<'_>) {
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

/// Heap bytes a message's head keeps while its body is in progress (an estimate
/// that errs high: each string's bytes plus a fixed cost per header).
fn held_bytes(msg: &HttpMessage) -> usize {
    let start = match &msg.kind {
        MessageKind::Request { method, url } => method.len() + url.len(),
        MessageKind::Response { status_message, .. } => status_message.len(),
    };
    let headers: usize = msg
        .headers
        .iter()
        .map(|(name, value)| {
            let value_len = match value {
                crate::message::HeaderValue::Single(v) => v.len(),
                crate::message::HeaderValue::List(vs) => vs.iter().map(|v| v.len() + 24).sum(),
            };
            name.len() + value_len + 64
        })
        .sum();
    start + headers + 128
}
