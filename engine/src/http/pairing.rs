//! Request/response pairing and emitting: the FIFO of requests waiting for
//! their responses (with runs of requests shed for memory), what a parsed
//! request or response head does to it, starting and finishing bodies, and
//! placeholders for messages lost in gaps. The rules are in the `http` module
//! docs ("Pairing", "Gaps").

use crate::budget::Charge;
use crate::message::{HttpMessage, MessageKind, Side};
use crate::time::Timestamp;

use super::body::{self, BodyBuf, Decoder, Framing, FramingError};
use super::conn::{idx, Ctx, HttpConnection, InProgress, Mode, State};
use super::head::{Head, StartLine};

/// Most requests waiting for their response on one connection; beyond it the
/// oldest is shed (counted in `pending_overflow`; its sequence number is kept, so
/// its response still pairs with it).
pub const MAX_PENDING: usize = 1024;

/// A request waiting for its response.
#[derive(Clone, Copy, Debug)]
pub(super) struct Pending {
    pub(super) seq: u64,
    pub(super) is_head: bool,
    pub(super) is_connect: bool,
    /// Capture time of the request's last byte (so far).
    pub(super) last_ts: Timestamp,
    /// False for a placeholder standing for a request lost in a gap or unparsable.
    pub(super) seen: bool,
    /// Rebuilt from a [`ShedRun`]: its capture time was not kept (no latency).
    pub(super) shed: bool,
    /// An HTTP/0.9 request: its reply has no head.
    pub(super) http09: bool,
}

/// Consecutive pending requests shed for memory (oldest first): their slots are
/// gone, but their sequence numbers are kept so the responses that answer them
/// still pair with them and pairing never shifts. A run costs 24 bytes however
/// many requests it stands for.
#[derive(Clone, Copy, Debug)]
pub(super) struct ShedRun {
    pub(super) first: u64,
    pub(super) count: u64,
    pub(super) seen: bool,
    pub(super) is_head: bool,
    pub(super) is_connect: bool,
}

/// Most runs of shed requests kept per connection; past it the oldest run is
/// forgotten and pairing may shift (counted in `requests_without_response`).
pub(super) const MAX_SHED_RUNS: usize = 8;

/// What one pending-request slot costs the pending pool (its size, rounded up).
pub const PENDING_COST: usize = 32;
/// Pending-request slots a connection holds without charging the pool: the
/// usual non-pipelined exchange never touches the pool.
pub(super) const FREE_PENDING_SLOTS: usize = 4;

impl HttpConnection {
    // ---- heads -----------------------------------------------------------

    /// The message a parsed head starts. Always inlined: its callers on the hot
    /// path build it straight into its destination (the output or `Half::current`)
    /// rather than into a local that is then copied, a few hundred bytes a move.
    #[inline(always)]
    pub(super) fn new_message(
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
            parse_error: head.parse_error,
            decoded_body_size: None,
            tunnel: self.tunnel,
            stream_id: None,
            trailers: Vec::new(),
        }
    }

    /// A head was parsed on `side`. Taken by reference: the message takes the head's
    /// strings and headers out of it, so the large struct itself is never moved.
    pub(super) fn on_head(
        &mut self,
        side: Side,
        head: &mut Head,
        start_ts: Timestamp,
        cx: &mut Ctx<'_>,
    ) {
        match side {
            Side::Client => self.on_request_head(head, start_ts, cx),
            Side::Server => self.on_response_head(head, start_ts, cx),
        }
    }

    pub(super) fn push_pending(&mut self, p: Pending, cx: &mut Ctx<'_>) {
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
    pub(super) fn drop_oldest_pending(&mut self, cx: &mut Ctx<'_>) {
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
    pub(super) fn front_pending(&self) -> Option<Pending> {
        match self.shed.front() {
            Some(r) => Some(Pending {
                seq: r.first,
                is_head: r.is_head,
                is_connect: r.is_connect,
                last_ts: Timestamp::default(),
                seen: r.seen,
                shed: true,
                http09: false,
            }),
            None => self.pending.front().copied(),
        }
    }

    /// Removes and returns [`Self::front_pending`].
    pub(super) fn pop_front_pending(&mut self) -> Option<Pending> {
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

    pub(super) fn on_request_head(
        &mut self,
        head: &mut Head,
        start_ts: Timestamp,
        cx: &mut Ctx<'_>,
    ) {
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
                http09: head.version == "0.9",
            },
            cx,
        );
        let await_answer = is_connect || head.upgrade;
        let framing = body::request_framing(head, is_connect);
        let start = Start {
            kind: MessageKind::Request { method, url },
            seq,
            ts: start_ts,
            incomplete: false,
        };
        self.start_body(Side::Client, start, head, framing, await_answer, cx);
    }

    pub(super) fn on_response_head(
        &mut self,
        head: &mut Head,
        start_ts: Timestamp,
        cx: &mut Ctx<'_>,
    ) {
        let StartLine::Response { status, reason } = std::mem::replace(
            &mut head.start,
            StartLine::Response {
                status: 0,
                reason: String::new(),
            },
        ) else {
            return;
        };
        // Called once on each path below: the reason phrase is moved, not copied.
        let kind = move |latency_ms| MessageKind::Response {
            status_code: status,
            status_message: reason,
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
            let mut msg = self.new_message(Side::Server, kind(lat), seq, start_ts, head);
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

        let to_connect = req.is_some_and(|p| p.is_connect);
        if to_connect && (200..300).contains(&status) {
            let mut msg = self.new_message(Side::Server, kind(lat), seq, start_ts, head);
            msg.incomplete = orphan;
            msg.end_timestamp = cx.ts;
            self.emit(msg, cx);
            cx.stats.connect_tunnels += 1;
            self.enter_tunnel(seq, cx);
            return;
        }
        if status == 101 {
            let mut msg = self.new_message(Side::Server, kind(lat), seq, start_ts, head);
            msg.incomplete = orphan;
            msg.end_timestamp = cx.ts;
            let h2c = is_h2c(&msg);
            self.emit(msg, cx);
            cx.stats.upgraded_connections += 1;
            if h2c {
                if let Some(p) = req.filter(|p| p.seen) {
                    self.start_h2c(p.seq, p.last_ts, cx);
                    return;
                }
            }
            self.enter_passthrough(Mode::Tunnel, cx);
            return;
        }
        // Held client bytes were sent before this response: parse them first.
        self.release_client(seq, cx);
        let framing = body::response_framing(head, status, req.is_some_and(|p| p.is_head));
        let start = Start {
            kind: kind(lat),
            seq,
            ts: start_ts,
            incomplete: orphan,
        };
        self.start_body(Side::Server, start, head, framing, false, cx);
    }

    /// The server's first byte after an HTTP/0.9 request: a reply without a head
    /// (`statusCode` 0, `httpVersion` 0.9) whose body runs to the close.
    pub(super) fn on_http09_reply(&mut self, start_ts: Timestamp, cx: &mut Ctx<'_>) {
        let Some(p) = self.pop_front_pending() else {
            return;
        };
        cx.stats.http09_responses += 1;
        let mut head = super::head::http09_head(StartLine::Response {
            status: 0,
            reason: String::new(),
        });
        let latency = (p.seen && !p.shed).then(|| start_ts.millis_since(p.last_ts));
        let kind = MessageKind::Response {
            status_code: 0,
            status_message: String::new(),
            latency_ms: latency,
        };
        self.release_client(p.seq, cx);
        let start = Start {
            kind,
            seq: p.seq,
            ts: start_ts,
            incomplete: false,
        };
        let framing = Ok((Framing::Close, false));
        self.start_body(Side::Server, start, &mut head, framing, false, cx);
    }

    /// A `CONNECT` (request `seq`) succeeded: what follows on both sides is the
    /// tunnelled protocol. Both directions start detection afresh, so cleartext
    /// HTTP inside is parsed (its messages carry `tunnel: true`, sequences go on)
    /// and TLS inside is counted (`tunnel_tls`) and skipped. Bytes the client sent
    /// before the answer were held: they are the tunnel's first bytes.
    fn enter_tunnel(&mut self, seq: u64, cx: &mut Ctx<'_>) {
        self.tunnel = true;
        self.halves[1].state = State::Detect;
        let h = &mut self.halves[0];
        match h.state {
            State::AwaitAnswer { seq: s, .. } if s == seq => {
                h.state = State::Detect;
                h.need_more = false;
                if !h.buf.is_empty() {
                    self.feed(Side::Client, &[], cx);
                }
            }
            State::Idle => h.state = State::Detect,
            _ => {}
        }
    }

    /// Starts (or at once finishes) the body of a message whose head was parsed.
    ///
    /// A message without a body (RFC 9112 §6.3: no framing, or `Content-Length: 0`)
    /// ends with its head: it is emitted from here without passing through
    /// `Half::current`, so it costs neither a body buffer,
    /// a head charge nor the moves of a large struct into and out of that slot. Only when
    /// `decodeBodies` would decode its (empty) `Content-Encoding` does it take the
    /// general path, so its `decodedBodySize` and decoding counters stay as they were.
    ///
    /// The message is built from `start` and `head` only where it goes (never as a
    /// local moved on): straight into the output, or into `Half::current`.
    pub(super) fn start_body(
        &mut self,
        side: Side,
        start: Start,
        head: &mut Head,
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
                let mut msg = self.new_message(side, start.kind, start.seq, start.ts, head);
                msg.incomplete = true;
                msg.end_timestamp = cx.ts;
                self.emit(msg, cx);
                self.resync_from_here(side, true, cx);
                return;
            }
        };
        let decoder = Decoder::new(framing);
        if decoder.is_none()
            && !(cx.cfg.decode_bodies && super::decode::coding_of(&head.headers).is_some())
        {
            // What `finish` would do with an empty body: `bodySize` 0, not truncated,
            // no body bytes (all as `new_message` left them).
            self.halves[i].current = None;
            let seq = start.seq;
            self.end_message(side, seq, cx.ts, await_answer);
            let mut msg = self.new_message(side, start.kind, seq, start.ts, head);
            msg.end_timestamp = cx.ts;
            msg.incomplete = start.incomplete;
            self.emit(msg, cx);
            return;
        }
        let body_buf = self.body_buf(&head.headers, cx);
        let held = held_bytes_of(&start.kind, &head.headers);
        let head_charge = Charge::force(&self.budget.heads, held);
        self.halves[i].current = None;
        let mut msg = self.new_message(side, start.kind, start.seq, start.ts, head);
        msg.incomplete = start.incomplete;
        self.halves[i].current = Some(InProgress {
            msg,
            decoder: decoder.unwrap_or(Decoder::Length { remaining: 0 }),
            body: body_buf,
            await_answer,
            _head_charge: head_charge,
        });
        if decoder_done(framing) {
            self.finish(side, cx.ts, false, cx);
        } else {
            self.halves[i].state = State::Body;
        }
    }

    /// The body buffer of a message with `headers` (see [`super::decode::body_buf`]).
    fn body_buf(
        &self,
        headers: &[(crate::message::HeaderName, crate::message::HeaderValue)],
        cx: &mut Ctx<'_>,
    ) -> BodyBuf {
        super::decode::body_buf(headers, cx.cfg, &self.budget.bodies, cx.stats)
    }

    /// Emits the message in progress on `side` (its last byte captured at `end_ts`).
    ///
    /// The message is completed where it lies in `Half::current`
    /// and moved out only to be emitted.
    pub(super) fn finish(
        &mut self,
        side: Side,
        end_ts: Timestamp,
        incomplete: bool,
        cx: &mut Ctx<'_>,
    ) {
        let i = idx(side);
        let Some(ip) = self.halves[i].current.as_mut() else {
            return;
        };
        let msg = &mut ip.msg;
        msg.end_timestamp = end_ts;
        let clean = !incomplete && !ip.body.gapped && !msg.incomplete;
        super::decode::finish_body(msg, &mut ip.body, clean, cx.stats);
        msg.incomplete |= incomplete || ip.body.gapped;
        if ip.decoder.had_trailers() {
            cx.stats.trailers_discarded += 1;
        }
        let await_answer = ip.await_answer;
        let seq = msg.sequence;
        self.end_message(side, seq, end_ts, await_answer);
        // The message goes straight from the taken slot into the output (no move through
        // `emit`'s argument: one copy of the large struct fewer); dropping the rest, at
        // the end of this call, gives the head charge and the body buffer's budget back.
        let Some(ip) = self.halves[i].current.take() else {
            return;
        };
        cx.out.push(ip.msg);
        Self::emitted(cx);
    }

    /// The message `seq` on `side` is complete (its last byte captured at
    /// `end_ts`): the request's last byte so far is its last byte, and the
    /// direction moves on (to `AwaitAnswer` after an `Upgrade`/`CONNECT` request
    /// still pending). The caller emits the message.
    #[inline]
    fn end_message(&mut self, side: Side, seq: u64, end_ts: Timestamp, await_answer: bool) {
        let mut next = State::Idle;
        if side == Side::Client {
            let queued = self.pending.iter_mut().find(|p| p.seq == seq);
            let queued = queued.map(|p| p.last_ts = end_ts).is_some();
            if await_answer && queued {
                next = State::AwaitAnswer { seq, resync: false };
            }
        }
        self.halves[idx(side)].state = next;
    }

    /// Redacts `msg`, counts it and appends it to the output. It is pushed first and
    /// redacted where it lies, so the large struct is moved once.
    #[inline]
    pub(super) fn emit(&mut self, msg: HttpMessage, cx: &mut Ctx<'_>) {
        cx.out.push(msg);
        Self::emitted(cx);
    }

    /// [`Self::emit`] for the message just pushed to the output.
    #[inline]
    fn emitted(cx: &mut Ctx<'_>) {
        let Some(msg) = cx.out.last_mut() else {
            return;
        };
        cx.cfg.redact.message(msg, cx.cfg.max_body_size);
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
    }

    /// The request `seq` was answered (or dropped): if the client was holding
    /// bytes for it, parse them as HTTP now.
    pub(super) fn release_client(&mut self, seq: u64, cx: &mut Ctx<'_>) {
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

    /// A message start on `side` was lost (gap between messages, in a head,
    /// or an unparsable head): keep the pairing in step.
    pub(super) fn lost_message(&mut self, side: Side, cx: &mut Ctx<'_>) {
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
                        http09: false,
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
}

/// What a message gets from its start line and its pairing, before it is built
/// by [`HttpConnection::start_body`].
pub(super) struct Start {
    pub(super) kind: MessageKind,
    pub(super) seq: u64,
    /// Capture time of the head's first byte.
    pub(super) ts: Timestamp,
    /// Its request is unknown (a response without a request).
    pub(super) incomplete: bool,
}

/// Whether a message with `framing` has no body bytes to wait for.
fn decoder_done(framing: Framing) -> bool {
    framing == Framing::None || framing == Framing::Length(0)
}

/// Whether a `101` response switches to HTTP/2 (`Upgrade: h2c`).
fn is_h2c(msg: &HttpMessage) -> bool {
    msg.headers.iter().any(|(n, v)| {
        n == "upgrade"
            && matches!(v, crate::message::HeaderValue::Single(v) if v.trim().eq_ignore_ascii_case("h2c"))
    })
}

/// Heap bytes a message's head keeps while its body is in progress (an estimate
/// that errs high: each string's bytes plus a fixed cost per header).
pub(crate) fn held_bytes(msg: &HttpMessage) -> usize {
    held_bytes_of(&msg.kind, &msg.headers)
}

/// [`held_bytes`] of a message with `kind` and `headers`, before it is built.
fn held_bytes_of(
    kind: &MessageKind,
    headers: &[(crate::message::HeaderName, crate::message::HeaderValue)],
) -> usize {
    let start = match kind {
        MessageKind::Request { method, url } => method.len() + url.len(),
        MessageKind::Response { status_message, .. } => status_message.len(),
    };
    let headers: usize = headers
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
