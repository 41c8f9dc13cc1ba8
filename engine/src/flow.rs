//! The flow table: one `Connection` per TCP connection on a monitored port.
//!
//! A worker owns one `FlowTable`; nothing here is shared or locked. For each
//! segment the table finds (or creates) the connection, decides which side is the
//! client, feeds the payload to that direction's [`Reassembler`], and lets the
//! reassembler's in-order bytes drive the connection's [`HttpConnection`].
//!
//! Invariants:
//! - at most `max_connections` entries. At the cap, a new connection takes the
//!   place of the oldest half-open one (no payload seen yet: a SYN flood's, or a
//!   scanner's) (`connections_half_open_evicted`), else of the oldest one whose
//!   server has not sent a byte yet (a slow head or upload that nobody answered:
//!   the Linux conntrack table's "not assured" rule) (`connections_unanswered_evicted`);
//!   when there is neither it is not tracked and is counted (`connections_over_cap`)
//!   — a connection the server answered is never evicted to make room;
//! - an entry not seen for `idle_timeout` of capture time (half-open ones:
//!   [`HALF_OPEN_TIMEOUT_US`]) is flushed and removed by [`FlowTable::sweep_idle`]
//!   (the caller decides how often to sweep);
//! - what connections hold is drawn from the worker's [`WorkerBudget`]; when the
//!   heads or reassembly pool passes its high watermark after a segment,
//!   the connections idle longest are evicted until every pool is under its low
//!   watermark (`connections_evicted_memory`), see [`crate::budget`];
//! - the map's hasher is seeded per table (an attacker who knows the hash cannot
//!   aim every connection at one bucket); sampling uses [`FlowKey::stable_hash`], which
//!   is the same in every run (sharding has its own such hash, `shard::flow_shard`);
//! - with `ports: any` (an empty `ports` list) every TCP connection is tracked until its
//!   first bytes tell: the HTTP stage decides which side is the client from who sends a
//!   request line (see `HttpConnection::orient_by_content`), and a connection found not
//!   to be HTTP is removed at once (`connections_not_http`) and remembered in a bounded
//!   let-go set (at most `max_connections` keys, forgotten after the idle timeout) so its
//!   later segments cost one lookup (`segments_not_http`) and hold nothing;
//! - every removal goes through `FlowTable::remove`, which flushes the
//!   reassemblers (gaps become `incomplete` messages) and closes the HTTP state,
//!   so nothing buffered is dropped without being emitted or counted.

use std::collections::{HashMap, VecDeque};
use std::hash::{Hash, Hasher};
use std::net::IpAddr;

use rustc_hash::FxHasher;

use crate::budget::{WorkerBudget, HALF_OPEN_TIMEOUT_US, HIGH_WATERMARK, LOW_WATERMARK};
use crate::http::{HttpConfig, HttpConnection, HttpStats};
use crate::message::{ConnMeta, Direction, Endpoint, HttpMessage, Side};
use crate::reassembly::{Budget, Limits, Reassembler, ReassemblyStats, Segment, StreamSink};
use crate::stats::FlowStats;
use crate::time::Timestamp;
use crate::wire::TcpSegment;

/// A connection's key: both endpoints, lower one first, so both directions map to it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct FlowKey {
    a: Endpoint,
    b: Endpoint,
}

impl FlowKey {
    /// The key of the connection between `x` and `y`, in either order.
    pub fn new(x: Endpoint, y: Endpoint) -> Self {
        let x_first = match (x.ip, y.ip) {
            // The common case, on integers: an IPv4 address orders as its octets do, which
            // is the order of its big-endian value.
            (IpAddr::V4(a), IpAddr::V4(b)) => (a.to_bits(), x.port) <= (b.to_bits(), y.port),
            _ => (x.ip, x.port) <= (y.ip, y.port),
        };
        if x_first {
            FlowKey { a: x, b: y }
        } else {
            FlowKey { a: y, b: x }
        }
    }

    /// A hash that is the same for both directions and for every run: used to
    /// pick a worker and to decide sampling, so both must not depend on a random seed.
    pub fn stable_hash(&self) -> u64 {
        let mut h = FxHasher::default();
        self.hash(&mut h);
        // Fx mixes poorly in the low bits; finish with a 64-bit avalanche (splitmix64).
        let mut z = h.finish().wrapping_add(0x9e37_79b9_7f4a_7c15);
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
}

/// What the flow table needs to know, fixed for a run.
#[derive(Clone, Debug)]
pub struct FlowConfig {
    /// Monitored server ports; empty means `ports: any` (every TCP port, HTTP recognised
    /// by content).
    pub ports: Vec<u16>,
    /// With `ports: any`: ports never tracked (the sniffer's own output URL and metrics
    /// ports, so its own traffic is not observed and fed back to it).
    pub exclude_ports: Vec<u16>,
    /// Connections this table may track at once.
    pub max_connections: usize,
    /// Capture-time idleness after which a connection is evicted.
    pub idle_timeout_us: u64,
    /// Fraction of connections observed.
    pub sample_rate: f64,
    /// The captured host's own addresses (for `direction`); empty when unknown.
    pub local_addrs: Vec<IpAddr>,
    /// Reassembly limits per direction.
    pub reassembly: Limits,
    /// HTTP settings.
    pub http: HttpConfig,
    /// Workers sharing the sniffer's memory budget (each table takes its share).
    pub workers: usize,
}

/// Counters the flow table updates.
#[derive(Debug, Default)]
pub struct FlowCounters {
    /// Flow-table counters.
    pub flow: FlowStats,
    /// Reassembly counters.
    pub reassembly: ReassemblyStats,
    /// HTTP counters.
    pub http: HttpStats,
}

/// One tracked TCP connection.
struct Connection {
    meta: ConnMeta,
    /// Bytes sent by the client.
    from_client: Reassembler,
    /// Bytes sent by the server.
    from_server: Reassembler,
    http: HttpConnection,
    last_seen: Timestamp,
    /// The client has sent payload or FIN: a new SYN now means a new connection.
    client_started: bool,
    /// Either side has sent payload: no longer half-open.
    carried_data: bool,
    /// The server has sent payload.
    answered: bool,
}

impl Connection {
    fn is_half_open(&self) -> bool {
        !self.carried_data
    }

    fn is_unanswered(&self) -> bool {
        !self.answered
    }
}

/// The two lists of connections that may make room at the cap, oldest first.
#[derive(Clone, Copy, Debug)]
enum Evictable {
    /// No payload either way.
    HalfOpen,
    /// No payload from the server.
    Unanswered,
}

/// Feeds one direction's in-order bytes into the HTTP layer.
struct ToHttp<'a> {
    http: &'a mut HttpConnection,
    side: Side,
    cfg: &'a HttpConfig,
    stats: &'a mut HttpStats,
    not_parsed: &'a mut u64,
    out: &'a mut Vec<HttpMessage>,
}

impl StreamSink for ToHttp<'_> {
    fn data(&mut self, bytes: &[u8], ts: Timestamp) {
        if self.http.wants_data() {
            self.http
                .data(self.side, bytes, ts, self.cfg, self.stats, self.out);
        } else {
            *self.not_parsed += bytes.len() as u64;
        }
    }

    fn gap(&mut self, len: u64, ts: Timestamp) {
        if self.http.wants_data() {
            self.http
                .gap(self.side, len, ts, self.cfg, self.stats, self.out);
        }
    }

    fn fin(&mut self, ts: Timestamp) {
        self.http.fin(self.side, ts, self.cfg, self.stats, self.out);
    }
}

/// A worker's connections. See the module docs.
pub struct FlowTable {
    cfg: FlowConfig,
    /// Boxed: a connection is about 1.2 KB, and a map of boxes grows (and churns
    /// under a half-open flood) by moving pointers, not whole connections.
    conns: HashMap<FlowKey, Box<Connection>, ahash::RandomState>,
    /// Half-open connections in the order they were opened, as (key, id); an entry
    /// is stale once its connection is gone or carried data (dropped lazily).
    half_open: VecDeque<(FlowKey, u64)>,
    /// Likewise for connections whose server has sent no payload yet.
    unanswered: VecDeque<(FlowKey, u64)>,
    /// `ports: any`: connections let go because they are not HTTP, with when they were
    /// last seen. At most `max_connections` keys (see [`FlowTable::let_go`]).
    let_go: HashMap<FlowKey, Timestamp, ahash::RandomState>,
    /// The reassembly pool (out-of-order bytes).
    budget: Budget,
    /// The other pools, shared by every connection's HTTP parser.
    pools: WorkerBudget,
    /// The pools' watermarks in bytes (see [`FlowTable::under_pressure`]).
    pressure: Pressure,
    /// Connection ids are `id_prefix | counter`: unique across workers in one run.
    id_prefix: u64,
    next_id: u64,
}

impl FlowTable {
    /// A table for worker number `worker` (ids of different workers never collide).
    pub fn new(cfg: FlowConfig, worker: u16) -> Self {
        let pools = WorkerBudget::for_workers(cfg.workers);
        FlowTable {
            cfg,
            conns: HashMap::default(),
            half_open: VecDeque::new(),
            unanswered: VecDeque::new(),
            let_go: HashMap::default(),
            budget: Budget::new(pools.reassembly_max),
            pressure: Pressure::new(pools.reassembly_max, pools.heads.max()),
            pools,
            id_prefix: u64::from(worker) << 48,
            next_id: 0,
        }
    }

    /// Connections tracked now.
    pub fn len(&self) -> usize {
        self.conns.len()
    }

    /// True when no connection is tracked.
    pub fn is_empty(&self) -> bool {
        self.conns.is_empty()
    }

    /// Bytes held in reassembly buffers.
    pub fn buffered_bytes(&self) -> usize {
        self.budget.used()
    }

    /// The pools this table draws from (heads, pending, bodies).
    pub fn pools(&self) -> &WorkerBudget {
        &self.pools
    }

    /// Processes one decoded TCP segment captured at `ts`; finished messages go to `out`.
    pub fn segment(
        &mut self,
        seg: &TcpSegment<'_>,
        ts: Timestamp,
        c: &mut FlowCounters,
        out: &mut Vec<HttpMessage>,
    ) {
        let any = self.cfg.ports.is_empty();
        // A plain loop, not `slice::contains` (clippy's advice): for `u16` that is an
        // out-of-line call of ~25 instructions, twice per packet, for lists of a port or
        // two (S-20mb: 4.1 M instructions of 528 M).
        #[allow(clippy::manual_contains)]
        let listed = |list: &[u16], p: u16| list.iter().any(|&q| q == p);
        let (src_monitored, dst_monitored) = if any {
            let excluded = |p: u16| listed(&self.cfg.exclude_ports, p);
            let watched = !excluded(seg.src_port) && !excluded(seg.dst_port);
            (watched, watched)
        } else {
            (
                listed(&self.cfg.ports, seg.src_port),
                listed(&self.cfg.ports, seg.dst_port),
            )
        };
        if !src_monitored && !dst_monitored {
            c.flow.segments_unmonitored += 1;
            return;
        }
        c.flow.segments += 1;
        let src = Endpoint {
            ip: seg.src,
            port: seg.src_port,
        };
        let dst = Endpoint {
            ip: seg.dst,
            port: seg.dst_port,
        };
        let key = FlowKey::new(src, dst);
        if self.cfg.sample_rate < 1.0 && !sampled_in(&key, self.cfg.sample_rate) {
            c.flow.segments_sampled_out += 1;
            return;
        }
        let flags = seg.flags;
        if any && !self.let_go.is_empty() {
            if let Some(seen) = self.let_go.get_mut(&key) {
                if flags.syn() && !flags.ack() {
                    // A new connection on the same addresses: detect it afresh.
                    self.let_go.remove(&key);
                } else {
                    *seen = ts;
                    c.flow.segments_not_http += 1;
                    return;
                }
            }
        }

        // A fresh SYN on addresses of a connection we still hold: the old one is over.
        if flags.syn() && !flags.ack() {
            if let Some(old) = self.conns.get(&key) {
                if old.meta.client != src || old.client_started {
                    c.flow.connections_reused += 1;
                    self.remove(&key, ts, c, out);
                }
            }
        }

        // One lookup for a connection already tracked (nearly every segment); a new one
        // is opened, then looked up again.
        let after = match self.conns.get_mut(&key) {
            Some(conn) => feed(conn, seg, src, ts, &self.cfg, &mut self.budget, c, out),
            None => {
                if !self.open(seg, key, src, dst, src_monitored, dst_monitored, ts, c, out) {
                    return;
                }
                let Some(conn) = self.conns.get_mut(&key) else {
                    return;
                };
                feed(conn, seg, src, ts, &self.cfg, &mut self.budget, c, out)
            }
        };
        match after {
            After::Open => {}
            After::NotHttp => {
                c.flow.connections_not_http += 1;
                self.remove(&key, ts, c, out);
                self.let_go(key, ts);
            }
            After::Reset => {
                c.flow.connections_reset += 1;
                self.remove(&key, ts, c, out);
            }
            After::Closed => {
                c.flow.connections_closed += 1;
                self.remove(&key, ts, c, out);
            }
        }
        if self.under_pressure(self.pressure.high) {
            self.relieve_pressure(ts, c, out);
        }
    }

    /// Starts tracking the connection `key` that `seg` (from `src` to `dst`) belongs to,
    /// making room at the cap; false when it is not tracked (counted).
    #[allow(clippy::too_many_arguments)]
    #[inline(never)]
    fn open(
        &mut self,
        seg: &TcpSegment<'_>,
        key: FlowKey,
        src: Endpoint,
        dst: Endpoint,
        src_monitored: bool,
        dst_monitored: bool,
        ts: Timestamp,
        c: &mut FlowCounters,
        out: &mut Vec<HttpMessage>,
    ) -> bool {
        let flags = seg.flags;
        let any = self.cfg.ports.is_empty();
        // Only a SYN or a segment carrying data starts tracking: a lone ACK, FIN
        // or RST of a connection we never saw has nothing to tell.
        if !flags.syn() && seg.payload.is_empty() {
            return false;
        }
        if self.conns.len() >= self.cfg.max_connections
            && !self.evict_first(Evictable::HalfOpen, ts, c, out)
            && !self.evict_first(Evictable::Unanswered, ts, c, out)
        {
            if flags.syn() && !flags.ack() {
                c.flow.connections_over_cap += 1;
            }
            c.flow.segments_over_cap += 1;
            return false;
        }
        let client_is_src = if src_monitored != dst_monitored {
            dst_monitored
        } else if flags.syn() {
            // Both ports monitored: the SYN's sender is the client.
            !flags.ack()
        } else {
            // Mid-stream with both ports monitored: guess the lower port serves.
            seg.dst_port <= seg.src_port
        };
        let (client, server) = if client_is_src {
            (src, dst)
        } else {
            (dst, src)
        };
        let meta = ConnMeta {
            id: self.id_prefix | (self.next_id & ((1 << 48) - 1)),
            client,
            server,
            direction: self.direction_of(&client, &server),
            mid_stream: !flags.syn(),
        };
        self.next_id += 1;
        c.flow.connections_opened += 1;
        let mut http = HttpConnection::new(&meta).with_budget(self.pools.clone());
        if any {
            // Which side is the client is only a guess until the first bytes tell.
            let swapped = self.direction_of(&server, &client);
            http = http.orient_by_content(swapped);
        }
        let id = meta.id;
        self.conns.insert(
            key,
            Box::new(Connection {
                meta,
                from_client: Reassembler::new(),
                from_server: Reassembler::new(),
                http,
                last_seen: ts,
                client_started: false,
                carried_data: false,
                answered: false,
            }),
        );
        self.note_new(key, id);
        true
    }

    /// Remembers `key` as not HTTP (`ports: any`). The set holds at most
    /// `max_connections` keys: when full, the keys idle longest (half of the set) are
    /// forgotten — a forgotten connection that sends again is tracked and let go anew.
    fn let_go(&mut self, key: FlowKey, ts: Timestamp) {
        if self.let_go.len() >= self.cfg.max_connections.max(1) {
            let mut seen: Vec<Timestamp> = self.let_go.values().copied().collect();
            let mid = seen.len() / 2;
            let (_, median, _) = seen.select_nth_unstable(mid);
            let median = *median;
            self.let_go.retain(|_, t| *t > median);
        }
        self.let_go.insert(key, ts);
    }

    /// Connections let go as not HTTP and still remembered (`ports: any`).
    pub fn let_go_len(&self) -> usize {
        self.let_go.len()
    }

    // ---- shedding (see crate::budget) -------------------------------------

    /// Remembers a new connection as half-open and unanswered (it is both); keeps
    /// each list within a small multiple of the table so stale entries cannot pile up.
    fn note_new(&mut self, key: FlowKey, id: u64) {
        let bound = 2 * self.conns.len() + 64;
        let conns = &self.conns;
        let still = |k: &FlowKey, id: u64, test: fn(&Connection) -> bool| {
            conns.get(k).is_some_and(|c| c.meta.id == id && test(c))
        };
        self.half_open.push_back((key, id));
        if self.half_open.len() > bound {
            self.half_open
                .retain(|(k, id)| still(k, *id, Connection::is_half_open));
        }
        self.unanswered.push_back((key, id));
        if self.unanswered.len() > bound {
            self.unanswered
                .retain(|(k, id)| still(k, *id, Connection::is_unanswered));
        }
    }

    /// Evicts the oldest connection still on list `which`, if any; true when one went.
    fn evict_first(
        &mut self,
        which: Evictable,
        ts: Timestamp,
        c: &mut FlowCounters,
        out: &mut Vec<HttpMessage>,
    ) -> bool {
        loop {
            let (list, test): (_, fn(&Connection) -> bool) = match which {
                Evictable::HalfOpen => (&mut self.half_open, Connection::is_half_open),
                Evictable::Unanswered => (&mut self.unanswered, Connection::is_unanswered),
            };
            let Some((key, id)) = list.pop_front() else {
                return false;
            };
            let live = self
                .conns
                .get(&key)
                .is_some_and(|conn| conn.meta.id == id && test(conn));
            if live {
                match which {
                    Evictable::HalfOpen => c.flow.connections_half_open_evicted += 1,
                    Evictable::Unanswered => c.flow.connections_unanswered_evicted += 1,
                }
                self.remove(&key, ts, c, out);
                return true;
            }
        }
    }

    /// True when the heads or reassembly pool is above the watermark whose limits are
    /// `limits` ([`Pressure::high`] or [`Pressure::low`]). (The pending pool sheds by
    /// itself without losing pairing, and bodies are cut last: neither is worth evicting a
    /// connection for.) Asked after every segment: two integer comparisons.
    #[inline]
    fn under_pressure(&self, limits: PoolLimits) -> bool {
        self.budget.used() > limits.reassembly || self.pools.heads.held() > limits.heads
    }

    /// Evicts the connections idle longest until every pool is under its low
    /// watermark. Costs a pass over the table, but each call frees an eighth of a
    /// pool, which the traffic must fill again before the next.
    fn relieve_pressure(
        &mut self,
        ts: Timestamp,
        c: &mut FlowCounters,
        out: &mut Vec<HttpMessage>,
    ) {
        let mut by_age: Vec<(Timestamp, FlowKey)> = self
            .conns
            .iter()
            .map(|(k, conn)| (conn.last_seen, *k))
            .collect();
        by_age.sort_unstable_by_key(|(seen, _)| *seen);
        for (_, key) in by_age {
            if !self.under_pressure(self.pressure.low) {
                break;
            }
            c.flow.connections_evicted_memory += 1;
            self.remove(&key, ts, c, out);
        }
    }

    fn direction_of(&self, client: &Endpoint, server: &Endpoint) -> Direction {
        if self.cfg.local_addrs.contains(&server.ip) {
            Direction::Inbound
        } else if self.cfg.local_addrs.contains(&client.ip) {
            Direction::Outbound
        } else {
            Direction::Unknown
        }
    }

    /// Flushes and forgets one connection.
    fn remove(
        &mut self,
        key: &FlowKey,
        ts: Timestamp,
        c: &mut FlowCounters,
        out: &mut Vec<HttpMessage>,
    ) {
        let Some(mut conn) = self.conns.remove(key) else {
            return;
        };
        for side in [Side::Client, Side::Server] {
            let Connection {
                from_client,
                from_server,
                http,
                ..
            } = &mut *conn;
            let stream = match side {
                Side::Client => from_client,
                Side::Server => from_server,
            };
            let mut sink = ToHttp {
                http,
                side,
                cfg: &self.cfg.http,
                stats: &mut c.http,
                not_parsed: &mut c.flow.bytes_not_parsed,
                out,
            };
            stream.flush(ts, &mut self.budget, &mut c.reassembly, &mut sink);
        }
        conn.http.close(ts, &self.cfg.http, &mut c.http, out);
    }

    /// Evicts connections idle since before `now - idle_timeout`.
    pub fn sweep_idle(&mut self, now: Timestamp, c: &mut FlowCounters, out: &mut Vec<HttpMessage>) {
        let limit = self.cfg.idle_timeout_us;
        self.let_go
            .retain(|_, seen| now.micros_since(*seen) < limit);
        let half_open_limit = limit.min(HALF_OPEN_TIMEOUT_US);
        let idle: Vec<(FlowKey, bool)> = self
            .conns
            .iter()
            .filter_map(|(k, conn)| {
                let half_open = conn.is_half_open();
                let limit = if half_open { half_open_limit } else { limit };
                (now.micros_since(conn.last_seen) >= limit).then_some((*k, half_open))
            })
            .collect();
        for (key, half_open) in idle {
            if half_open {
                c.flow.connections_half_open_timed_out += 1;
            } else {
                c.flow.connections_idle_evicted += 1;
            }
            self.remove(&key, now, c, out);
        }
    }

    /// Flushes every connection (end of capture or stop).
    pub fn close_all(&mut self, now: Timestamp, c: &mut FlowCounters, out: &mut Vec<HttpMessage>) {
        while self.close_some(now, usize::MAX, c, out) {}
    }

    /// Flushes up to `max` connections (end of capture or stop, a slice at a time so
    /// the caller can hand their messages over between slices); true while some remain.
    pub fn close_some(
        &mut self,
        now: Timestamp,
        max: usize,
        c: &mut FlowCounters,
        out: &mut Vec<HttpMessage>,
    ) -> bool {
        let keys: Vec<FlowKey> = self.conns.keys().take(max).copied().collect();
        c.flow.connections_open_at_end += keys.len() as u64;
        for key in keys {
            self.remove(&key, now, c, out);
        }
        !self.conns.is_empty()
    }
}

/// The watermarks of the pools that evict connections, in bytes: a pool whose size never
/// changes is above `mark` of it exactly when it holds more than `limit(mark, size)`, so
/// the check after every segment needs neither a division (`Pool::fill`) nor a float.
#[derive(Clone, Copy, Debug)]
struct Pressure {
    /// Above [`HIGH_WATERMARK`]: evict.
    high: PoolLimits,
    /// Under [`LOW_WATERMARK`]: stop evicting.
    low: PoolLimits,
}

/// Bytes each pool may hold at one watermark without being above it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct PoolLimits {
    reassembly: usize,
    heads: usize,
}

impl Pressure {
    fn new(reassembly_max: usize, heads_max: usize) -> Pressure {
        let at = |mark: f64| PoolLimits {
            // An empty reassembly pool counts as one byte, so any stored byte is pressure.
            reassembly: pressure_limit(mark, reassembly_max.max(1)),
            // An unlimited (or empty) heads pool is never under pressure, as `fill` has it.
            heads: if heads_max == usize::MAX || heads_max == 0 {
                usize::MAX
            } else {
                pressure_limit(mark, heads_max)
            },
        };
        Pressure {
            high: at(HIGH_WATERMARK),
            low: at(LOW_WATERMARK),
        }
    }
}

/// The most bytes a pool of `max` bytes holds without its fill being above `mark`:
/// `held > limit` exactly when `held / max > mark`. The watermarks are multiples of 1/8,
/// so for a pool under 2^50 bytes `mark × max` is exact and its floor is the limit.
fn pressure_limit(mark: f64, max: usize) -> usize {
    (mark * max as f64).floor() as usize
}

/// What a segment left its connection as.
enum After {
    /// Still open.
    Open,
    /// Found not to be HTTP (`ports: any`): let go.
    NotHttp,
    /// Reset.
    Reset,
    /// Both directions closed.
    Closed,
}

/// Feeds `seg` (sent by `src`, captured at `ts`) to its connection: the peer's
/// acknowledgement first, then this direction's bytes. Takes the table's parts rather
/// than the table, so the connection can stay borrowed from the map (one lookup).
#[allow(clippy::too_many_arguments)]
#[inline]
fn feed(
    conn: &mut Connection,
    seg: &TcpSegment<'_>,
    src: Endpoint,
    ts: Timestamp,
    cfg: &FlowConfig,
    budget: &mut Budget,
    c: &mut FlowCounters,
    out: &mut Vec<HttpMessage>,
) -> After {
    let flags = seg.flags;
    conn.last_seen = ts;
    let side = if conn.meta.client == src {
        Side::Client
    } else {
        Side::Server
    };
    if side == Side::Client && (!seg.payload.is_empty() || flags.fin()) {
        conn.client_started = true;
    }
    if !seg.payload.is_empty() {
        conn.carried_data = true;
        conn.answered |= side == Side::Server;
    }
    let segment = Segment {
        seq: seg.seq,
        syn: flags.syn(),
        fin: flags.fin(),
        rst: flags.rst(),
        payload: seg.payload,
        missing: seg.missing,
        ts,
    };
    let Connection {
        from_client,
        from_server,
        http,
        ..
    } = conn;
    let (this, other) = match side {
        Side::Client => (from_client, from_server),
        Side::Server => (from_server, from_client),
    };
    if flags.ack() {
        // The acknowledgement is older than the payload it rides with: the sender had
        // received the other direction's bytes up to `ack` before it sent this. So a
        // hole before `ack` is declared lost first — a request the capture missed
        // becomes a placeholder before the response that answers it is parsed, and
        // the response pairs with it instead of being orphaned.
        let mut sink = ToHttp {
            http: &mut *http,
            side: side.peer(),
            cfg: &cfg.http,
            stats: &mut c.http,
            not_parsed: &mut c.flow.bytes_not_parsed,
            out: &mut *out,
        };
        other.peer_ack(
            seg.ack,
            ts,
            &cfg.reassembly,
            budget,
            &mut c.reassembly,
            &mut sink,
        );
    }
    let mut sink = ToHttp {
        http,
        side,
        cfg: &cfg.http,
        stats: &mut c.http,
        not_parsed: &mut c.flow.bytes_not_parsed,
        out: &mut *out,
    };
    this.segment(
        &segment,
        &cfg.reassembly,
        budget,
        &mut c.reassembly,
        &mut sink,
    );
    if cfg.ports.is_empty() && conn.http.is_not_http() {
        After::NotHttp
    } else if flags.rst() {
        After::Reset
    } else if conn.from_client.is_closed() && conn.from_server.is_closed() {
        After::Closed
    } else {
        After::Open
    }
}

/// Deterministic per-connection sampling: the same connection is always in or out.
fn sampled_in(key: &FlowKey, rate: f64) -> bool {
    let h = key.stable_hash() >> 11; // 53 bits, exactly representable
    (h as f64) < rate * (1u64 << 53) as f64
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::message::MessageKind;
    use crate::wire::TcpFlags;

    fn cfg() -> FlowConfig {
        FlowConfig {
            ports: vec![80],
            exclude_ports: vec![],
            max_connections: 100,
            idle_timeout_us: 60_000_000,
            sample_rate: 1.0,
            local_addrs: vec![],
            reassembly: Limits::default(),
            http: HttpConfig::default(),
            workers: 1,
        }
    }

    const CLIENT: ([u8; 4], u16) = ([10, 0, 0, 1], 40000);
    const SERVER: ([u8; 4], u16) = ([10, 0, 0, 2], 80);

    /// A segment from `from` to `to` with the given flags, sequence and payload.
    fn seg<'a>(
        from: ([u8; 4], u16),
        to: ([u8; 4], u16),
        flags: u8,
        seq: u32,
        ack: u32,
        payload: &'a [u8],
    ) -> TcpSegment<'a> {
        TcpSegment {
            src: IpAddr::from(from.0),
            dst: IpAddr::from(to.0),
            src_port: from.1,
            dst_port: to.1,
            seq,
            ack,
            flags: TcpFlags::from_bits(flags),
            payload,
            missing: 0,
        }
    }

    const REQ: &[u8] =
        b"POST /orders HTTP/1.1\r\nHost: shop\r\nContent-Length: 11\r\n\r\nhello world";
    const RESP: &[u8] = b"HTTP/1.1 201 Created\r\nContent-Length: 2\r\n\r\nok";

    /// Handshake, request in `cuts` pieces delivered in `order`, response, FIN both ways.
    fn exchange_segments(cuts: &[usize], order: &[usize], dup: bool) -> Vec<TcpSegment<'static>> {
        let (c_isn, s_isn) = (u32::MAX - 20, 7_000u32); // client sequence wraps mid-request
        let mut v = vec![
            seg(CLIENT, SERVER, TcpFlags::SYN, c_isn, 0, b""),
            seg(
                SERVER,
                CLIENT,
                TcpFlags::SYN | TcpFlags::ACK,
                s_isn,
                c_isn.wrapping_add(1),
                b"",
            ),
        ];
        let mut pieces = Vec::new();
        let mut start = 0;
        for &end in cuts.iter().chain(std::iter::once(&REQ.len())) {
            pieces.push(seg(
                CLIENT,
                SERVER,
                TcpFlags::ACK | TcpFlags::PSH,
                c_isn.wrapping_add(1).wrapping_add(start as u32),
                s_isn + 1,
                &REQ[start..end],
            ));
            start = end;
        }
        for &i in order {
            v.push(pieces[i]);
            if dup {
                v.push(pieces[i]);
            }
        }
        let c_end = c_isn.wrapping_add(1).wrapping_add(REQ.len() as u32);
        v.push(seg(
            SERVER,
            CLIENT,
            TcpFlags::ACK | TcpFlags::PSH,
            s_isn + 1,
            c_end,
            RESP,
        ));
        v.push(seg(
            CLIENT,
            SERVER,
            TcpFlags::ACK | TcpFlags::FIN,
            c_end,
            s_isn + 1 + RESP.len() as u32,
            b"",
        ));
        v.push(seg(
            SERVER,
            CLIENT,
            TcpFlags::ACK | TcpFlags::FIN,
            s_isn + 1 + RESP.len() as u32,
            c_end + 1,
            b"",
        ));
        v
    }

    fn run(
        table: &mut FlowTable,
        segs: &[TcpSegment<'_>],
        c: &mut FlowCounters,
    ) -> Vec<HttpMessage> {
        let mut out = Vec::new();
        for s in segs {
            table.segment(s, Timestamp(1_000_000), c, &mut out);
        }
        out
    }

    #[test]
    fn same_messages_whatever_the_segment_order_or_duplication() {
        let mut c = FlowCounters::default();
        let reference = run(
            &mut FlowTable::new(cfg(), 0),
            &exchange_segments(&[], &[0], false),
            &mut c,
        );
        assert_eq!(reference.len(), 2);
        assert!(
            matches!(&reference[0].kind, MessageKind::Request { method, url } if method == "POST" && url == "/orders")
        );
        assert_eq!(reference[0].body, b"hello world");
        assert!(matches!(
            reference[1].kind,
            MessageKind::Response {
                status_code: 201,
                ..
            }
        ));
        assert!(reference.iter().all(|m| !m.incomplete));
        assert_eq!(c.flow.connections_closed, 1);
        // Every single cut point, in order and reversed, with and without duplicates.
        for cut in 1..REQ.len() {
            for order in [[0, 1], [1, 0]] {
                for dup in [false, true] {
                    let mut c = FlowCounters::default();
                    let got = run(
                        &mut FlowTable::new(cfg(), 0),
                        &exchange_segments(&[cut], &order, dup),
                        &mut c,
                    );
                    assert_eq!(got, reference, "cut {cut} order {order:?} dup {dup}");
                }
            }
        }
        // Three pieces, all six orders.
        for order in [
            [0, 1, 2],
            [0, 2, 1],
            [1, 0, 2],
            [1, 2, 0],
            [2, 0, 1],
            [2, 1, 0],
        ] {
            let mut c = FlowCounters::default();
            let got = run(
                &mut FlowTable::new(cfg(), 0),
                &exchange_segments(&[5, 40], &order, true),
                &mut c,
            );
            assert_eq!(got, reference, "order {order:?}");
        }
    }

    #[test]
    fn a_request_the_capture_missed_leaves_its_response_paired_and_incomplete() {
        let mut segs = exchange_segments(&[], &[0], false);
        // Drop the request: the server's response still acknowledges it.
        segs.remove(2);
        let mut c = FlowCounters::default();
        let out = run(&mut FlowTable::new(cfg(), 0), &segs, &mut c);
        assert_eq!(out.len(), 1, "{out:?}");
        assert!(matches!(
            out[0].kind,
            MessageKind::Response {
                status_code: 201,
                ..
            }
        ));
        assert_eq!(out[0].sequence, 0);
        assert!(out[0].incomplete);
        assert_eq!(c.reassembly.ack_gap_events, 1);
        assert_eq!(c.http.gaps, 1);
    }

    #[test]
    fn client_side_is_the_one_talking_to_the_monitored_port() {
        let mut t = FlowTable::new(cfg(), 3);
        let mut c = FlowCounters::default();
        let mut out = Vec::new();
        // Mid-stream: the first segment seen is the server's response.
        t.segment(
            &seg(SERVER, CLIENT, TcpFlags::ACK, 500, 900, RESP),
            Timestamp(1),
            &mut c,
            &mut out,
        );
        assert_eq!(out.len(), 1);
        let m = &out[0];
        assert_eq!(m.source.port, 80);
        assert_eq!(m.destination.port, 40000);
        assert!(m.incomplete, "a response without its request is incomplete");
        assert_eq!(
            m.connection_id >> 48,
            3,
            "worker number is in the connection id"
        );
    }

    #[test]
    fn connection_cap_refuses_and_counts() {
        let mut t = FlowTable::new(
            FlowConfig {
                max_connections: 1,
                ..cfg()
            },
            0,
        );
        let mut c = FlowCounters::default();
        let mut out = Vec::new();
        // The one tracked connection was answered by its server: it stays.
        t.segment(
            &seg(CLIENT, SERVER, TcpFlags::ACK, 1, 0, b"GET / HTTP/1.1\r\n"),
            Timestamp(1),
            &mut c,
            &mut out,
        );
        t.segment(
            &seg(
                SERVER,
                CLIENT,
                TcpFlags::ACK,
                1,
                17,
                b"HTTP/1.1 100 Continue\r\n",
            ),
            Timestamp(1),
            &mut c,
            &mut out,
        );
        let other = ([10, 0, 0, 9], 41000);
        t.segment(
            &seg(other, SERVER, TcpFlags::SYN, 1, 0, b""),
            Timestamp(2),
            &mut c,
            &mut out,
        );
        t.segment(
            &seg(other, SERVER, TcpFlags::ACK, 2, 1, REQ),
            Timestamp(3),
            &mut c,
            &mut out,
        );
        assert_eq!(t.len(), 1);
        assert_eq!(c.flow.connections_over_cap, 1);
        assert_eq!(c.flow.segments_over_cap, 2);
        assert!(out.is_empty());
    }

    #[test]
    fn idle_connections_are_evicted_in_capture_time_and_flushed() {
        let mut t = FlowTable::new(
            FlowConfig {
                idle_timeout_us: 5_000_000,
                ..cfg()
            },
            0,
        );
        let mut c = FlowCounters::default();
        let mut out = Vec::new();
        t.segment(
            &seg(CLIENT, SERVER, TcpFlags::SYN, 1, 0, b""),
            Timestamp(1_000_000),
            &mut c,
            &mut out,
        );
        // Half a request, then silence.
        t.segment(
            &seg(CLIENT, SERVER, TcpFlags::ACK, 2, 1, &REQ[..60]),
            Timestamp(1_000_000),
            &mut c,
            &mut out,
        );
        t.sweep_idle(Timestamp(5_999_999), &mut c, &mut out);
        assert_eq!(t.len(), 1, "not idle yet");
        t.sweep_idle(Timestamp(6_000_000), &mut c, &mut out);
        assert_eq!(t.len(), 0);
        assert_eq!(c.flow.connections_idle_evicted, 1);
        assert_eq!(out.len(), 1, "the unfinished request is emitted");
        assert!(out[0].incomplete);
    }

    #[test]
    fn a_new_syn_on_a_used_four_tuple_starts_a_new_connection() {
        let mut t = FlowTable::new(cfg(), 0);
        let mut c = FlowCounters::default();
        let mut out = Vec::new();
        let first = exchange_segments(&[], &[0], false);
        // Everything but the closing FINs: the connection stays open.
        for s in &first[..first.len() - 2] {
            t.segment(s, Timestamp(1), &mut c, &mut out);
        }
        for s in &first {
            t.segment(s, Timestamp(2), &mut c, &mut out);
        }
        assert_eq!(c.flow.connections_reused, 1);
        assert_eq!(c.flow.connections_opened, 2);
        let ids: std::collections::BTreeSet<u64> = out.iter().map(|m| m.connection_id).collect();
        assert_eq!(ids.len(), 2);
        assert_eq!(out.iter().filter(|m| m.sequence == 0).count(), 4);
    }

    #[test]
    fn sampling_is_per_connection_and_deterministic() {
        let keys: Vec<FlowKey> = (0..4000u16)
            .map(|p| {
                FlowKey::new(
                    Endpoint {
                        ip: IpAddr::from([10, 0, 0, 1]),
                        port: 1024 + p,
                    },
                    Endpoint {
                        ip: IpAddr::from([10, 0, 0, 2]),
                        port: 80,
                    },
                )
            })
            .collect();
        let kept = keys.iter().filter(|k| sampled_in(k, 0.25)).count();
        assert!(
            (800..1200).contains(&kept),
            "kept {kept} of 4000 at rate 0.25"
        );
        for k in &keys {
            assert_eq!(sampled_in(k, 0.25), sampled_in(k, 0.25));
            // Both directions share a key.
            assert_eq!(FlowKey::new(k.b, k.a), *k);
            // A connection kept at a low rate is kept at every higher rate.
            if sampled_in(k, 0.25) {
                assert!(sampled_in(k, 0.5));
            }
        }
    }

    #[test]
    fn direction_comes_from_local_addresses() {
        let mut t = FlowTable::new(
            FlowConfig {
                local_addrs: vec![IpAddr::from(SERVER.0)],
                ..cfg()
            },
            0,
        );
        let mut c = FlowCounters::default();
        let out = run(&mut t, &exchange_segments(&[], &[0], false), &mut c);
        assert!(out.iter().all(|m| m.direction == Direction::Inbound));
        let mut t = FlowTable::new(
            FlowConfig {
                local_addrs: vec![IpAddr::from(CLIENT.0)],
                ..cfg()
            },
            0,
        );
        let out = run(&mut t, &exchange_segments(&[], &[0], false), &mut c);
        assert!(out.iter().all(|m| m.direction == Direction::Outbound));
    }

    /// A client address and port for connection number `n` of a flood.
    fn flood_client(n: u32) -> ([u8; 4], u16) {
        let [a, b, _, _] = n.to_be_bytes();
        ([10, 1, a, b], 1024 + (n % 60_000) as u16)
    }

    /// One request and its response from `client`, handshake included, at `t` µs.
    fn exchange_from(
        t: &mut FlowTable,
        client: ([u8; 4], u16),
        at: u64,
        c: &mut FlowCounters,
        out: &mut Vec<HttpMessage>,
    ) {
        let ts = Timestamp(at);
        t.segment(&seg(client, SERVER, TcpFlags::SYN, 100, 0, b""), ts, c, out);
        t.segment(
            &seg(SERVER, client, TcpFlags::SYN | TcpFlags::ACK, 500, 101, b""),
            ts,
            c,
            out,
        );
        t.segment(
            &seg(client, SERVER, TcpFlags::ACK | TcpFlags::PSH, 101, 501, REQ),
            ts,
            c,
            out,
        );
        let c_end = 101 + REQ.len() as u32;
        t.segment(
            &seg(
                SERVER,
                client,
                TcpFlags::ACK | TcpFlags::PSH,
                501,
                c_end,
                RESP,
            ),
            ts,
            c,
            out,
        );
    }

    #[test]
    fn a_half_open_flood_does_not_keep_real_connections_out() {
        let mut t = FlowTable::new(
            FlowConfig {
                max_connections: 10_000,
                ..cfg()
            },
            0,
        );
        let mut c = FlowCounters::default();
        let mut out = Vec::new();
        for n in 0..60_000u32 {
            let cl = flood_client(n);
            let ts = Timestamp(u64::from(n));
            t.segment(
                &seg(cl, SERVER, TcpFlags::SYN, 1, 0, b""),
                ts,
                &mut c,
                &mut out,
            );
            t.segment(
                &seg(SERVER, cl, TcpFlags::SYN | TcpFlags::ACK, 9, 2, b""),
                ts,
                &mut c,
                &mut out,
            );
        }
        assert_eq!(t.len(), 10_000);
        assert_eq!(c.flow.connections_half_open_evicted, 50_000);
        assert_eq!(c.flow.connections_over_cap, 0);
        // One real exchange a second later comes out whole.
        exchange_from(&mut t, CLIENT, 1_060_000, &mut c, &mut out);
        assert_eq!(out.len(), 2, "request and response: {out:?}");
        assert!(out.iter().all(|m| !m.incomplete));
        // Half-open connections time out long before the idle timeout.
        t.sweep_idle(
            Timestamp(1_060_000 + HALF_OPEN_TIMEOUT_US),
            &mut c,
            &mut out,
        );
        assert_eq!(c.flow.connections_half_open_timed_out, 9_999);
        assert_eq!(t.len(), 1, "the connection that carried data stays");
    }

    #[test]
    fn unanswered_connections_make_room_at_the_cap_answered_ones_do_not() {
        let mut t = FlowTable::new(
            FlowConfig {
                max_connections: 1_000,
                ..cfg()
            },
            0,
        );
        let mut c = FlowCounters::default();
        let mut out = Vec::new();
        // One real exchange, answered and still open.
        exchange_from(&mut t, ([10, 9, 9, 9], 5555), 1, &mut c, &mut out);
        // 2 000 slow uploads nobody answers fill the table twice over.
        for n in 0..2_000u32 {
            let cl = flood_client(n);
            let ts = Timestamp(10 + u64::from(n));
            t.segment(
                &seg(cl, SERVER, TcpFlags::SYN, 1, 0, b""),
                ts,
                &mut c,
                &mut out,
            );
            let up = b"POST /up HTTP/1.1\r\nContent-Length: 1000000\r\n\r\nxxxx";
            t.segment(
                &seg(cl, SERVER, TcpFlags::ACK, 2, 0, up),
                ts,
                &mut c,
                &mut out,
            );
        }
        assert_eq!(t.len(), 1_000);
        assert_eq!(c.flow.connections_over_cap, 0);
        assert!(c.flow.connections_unanswered_evicted >= 1_000);
        // The answered connection was never the one to go.
        let answered = FlowKey::new(
            Endpoint {
                ip: IpAddr::from([10, 9, 9, 9]),
                port: 5555,
            },
            Endpoint {
                ip: IpAddr::from(SERVER.0),
                port: SERVER.1,
            },
        );
        assert!(t.conns.contains_key(&answered));
        // A real exchange after the flood comes out whole.
        let before = out.len();
        exchange_from(&mut t, CLIENT, 1_000_000, &mut c, &mut out);
        let real: Vec<_> = out[before..].iter().filter(|m| !m.incomplete).collect();
        assert_eq!(real.len(), 2, "{:?}", &out[before..]);
    }

    #[test]
    fn a_flood_of_unfinished_heads_stays_within_the_heads_pool() {
        let mut t = FlowTable::new(
            FlowConfig {
                max_connections: 10_000,
                ..cfg()
            },
            0,
        );
        let heads_max = t.pools().heads.max();
        let mut c = FlowCounters::default();
        let mut out = Vec::new();
        // 2 000 clients each send 15 KB of a head that never ends: 30 MB wanted.
        let pad = vec![b'x'; 1_400];
        for n in 0..2_000u32 {
            let cl = flood_client(n);
            let ts = Timestamp(u64::from(n) * 10);
            t.segment(
                &seg(cl, SERVER, TcpFlags::SYN, 1, 0, b""),
                ts,
                &mut c,
                &mut out,
            );
            let first = b"GET /slow HTTP/1.1\r\nX-Pad: ";
            t.segment(
                &seg(cl, SERVER, TcpFlags::ACK, 2, 0, first),
                ts,
                &mut c,
                &mut out,
            );
            let mut seq = 2 + first.len() as u32;
            for _ in 0..10 {
                t.segment(
                    &seg(cl, SERVER, TcpFlags::ACK, seq, 0, &pad),
                    ts,
                    &mut c,
                    &mut out,
                );
                seq += pad.len() as u32;
                assert!(
                    t.pools().heads.held() <= heads_max,
                    "heads pool passed its size"
                );
            }
        }
        assert!(
            c.http.heads_shed_by_budget + c.flow.connections_evicted_memory > 0,
            "30 MB of heads cannot fit in {heads_max} bytes without shedding"
        );
        // A real exchange afterwards comes out whole.
        exchange_from(&mut t, CLIENT, 1_000_000, &mut c, &mut out);
        let real: Vec<_> = out
            .iter()
            .filter(|m| m.connection_id == out.last().unwrap().connection_id)
            .collect();
        assert_eq!(real.len(), 2, "{real:?}");
        assert!(real.iter().all(|m| !m.incomplete));
        // Nothing leaks: every pool is empty once the table is.
        t.close_all(Timestamp(2_000_000), &mut c, &mut out);
        assert_eq!(t.pools().heads.held(), 0);
        assert_eq!(t.pools().pending.held(), 0);
        assert_eq!(t.pools().bodies.held(), 0);
        assert_eq!(t.buffered_bytes(), 0);
    }

    #[test]
    fn ipv4_keys_order_endpoints_as_the_generic_comparison_does() {
        // FlowKey::new compares IPv4 endpoints as integers; the key (and so the sampling
        // hash) must be what the comparison of `(IpAddr, port)` gives.
        let mut x = 0x9e37_79b9_7f4a_7c15u64;
        let mut next = || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        for _ in 0..20_000 {
            let (r1, r2) = (next(), next());
            // Few distinct addresses and ports, so ties on either are common.
            let ep = |r: u64| Endpoint {
                ip: IpAddr::from([10, 0, (r >> 8) as u8 & 3, r as u8 & 3]),
                port: (r >> 16) as u16 & 3,
            };
            let (a, b) = (ep(r1), ep(r2));
            let generic = if (a.ip, a.port) <= (b.ip, b.port) {
                (a, b)
            } else {
                (b, a)
            };
            let key = FlowKey::new(a, b);
            assert_eq!((key.a, key.b), generic, "{a:?} {b:?}");
        }
    }

    #[test]
    fn watermarks_are_eighths_so_under_pressure_compares_exactly() {
        // `under_pressure` multiplies instead of dividing; that is exact only for marks
        // with few fraction bits (see its docs).
        for mark in [HIGH_WATERMARK, LOW_WATERMARK] {
            assert_eq!((mark * 8.0).fract(), 0.0, "{mark}");
        }
    }

    #[test]
    fn pressure_limits_are_the_fraction_of_the_pool() {
        // `held > limit` must say exactly `held / max > mark`, in integers: held × 8 > eighths × max.
        for mark in [HIGH_WATERMARK, LOW_WATERMARK] {
            let eighths = (mark * 8.0) as u128;
            for max in [
                1usize,
                2,
                3,
                7,
                8,
                9,
                100,
                1001,
                1 << 20,
                (1 << 20) + 3,
                123_456_789,
            ] {
                let limit = pressure_limit(mark, max);
                let around = (max as u128 * eighths / 8) as usize;
                for held in around.saturating_sub(3)..around + 3 {
                    let above = held as u128 * 8 > eighths * max as u128;
                    assert_eq!(held > limit, above, "mark {mark} max {max} held {held}");
                }
            }
        }
        let p = Pressure::new(0, usize::MAX);
        assert_eq!(
            p.high.reassembly, 0,
            "an empty reassembly pool: any byte is pressure"
        );
        assert_eq!(
            p.high.heads,
            usize::MAX,
            "an unlimited heads pool is never above"
        );
        assert_eq!(
            Pressure::new(8, 0).low.heads,
            usize::MAX,
            "nor an empty one"
        );
        assert_eq!(
            Pressure::new(8, 16).low,
            PoolLimits {
                reassembly: 6,
                heads: 12
            }
        );
    }

    #[test]
    fn the_table_hasher_is_seeded_but_shards_are_stable() {
        let key = FlowKey::new(
            Endpoint {
                ip: IpAddr::from(CLIENT.0),
                port: CLIENT.1,
            },
            Endpoint {
                ip: IpAddr::from(SERVER.0),
                port: SERVER.1,
            },
        );
        // The sampling hash is a constant of the key (same in every run and process).
        assert_eq!(key.stable_hash(), key.stable_hash());
        let a = FlowTable::new(cfg(), 0);
        let b = FlowTable::new(cfg(), 0);
        let h = |t: &FlowTable| std::hash::BuildHasher::hash_one(t.conns.hasher(), key);
        assert_ne!(
            h(&a),
            h(&b),
            "two tables hash the same key alike: the hasher is not seeded"
        );
    }

    // ---- ports: any ----------------------------------------------------------

    fn any_cfg() -> FlowConfig {
        FlowConfig {
            ports: vec![],
            ..cfg()
        }
    }

    /// A whole connection from `a` (the SYN's sender) to `b`: `a_says` then `b_says`, FINs.
    fn conn_segments<'a>(
        a: ([u8; 4], u16),
        b: ([u8; 4], u16),
        a_says: &'a [u8],
        b_says: &'a [u8],
        syn: bool,
    ) -> Vec<TcpSegment<'a>> {
        let (ai, bi) = (1_000u32, 9_000u32);
        let mut v = Vec::new();
        if syn {
            v.push(seg(a, b, TcpFlags::SYN, ai - 1, 0, b""));
            v.push(seg(b, a, TcpFlags::SYN | TcpFlags::ACK, bi - 1, ai, b""));
        }
        let a_end = ai + a_says.len() as u32;
        let b_end = bi + b_says.len() as u32;
        if !a_says.is_empty() {
            v.push(seg(a, b, TcpFlags::ACK | TcpFlags::PSH, ai, bi, a_says));
        }
        if !b_says.is_empty() {
            v.push(seg(b, a, TcpFlags::ACK | TcpFlags::PSH, bi, a_end, b_says));
        }
        v.push(seg(a, b, TcpFlags::ACK | TcpFlags::FIN, a_end, b_end, b""));
        v.push(seg(
            b,
            a,
            TcpFlags::ACK | TcpFlags::FIN,
            b_end,
            a_end + 1,
            b"",
        ));
        v
    }

    fn run_any(segs: &[TcpSegment<'_>]) -> (FlowTable, FlowCounters, Vec<HttpMessage>) {
        let mut t = FlowTable::new(any_cfg(), 0);
        let mut c = FlowCounters::default();
        let mut out = Vec::new();
        for (i, s) in segs.iter().enumerate() {
            t.segment(s, Timestamp(1 + i as u64), &mut c, &mut out);
        }
        t.close_all(Timestamp(1_000), &mut c, &mut out);
        (t, c, out)
    }

    #[test]
    fn any_port_recognises_http_on_an_unlisted_port() {
        let client = ([10, 0, 0, 1], 51000);
        let server = ([10, 0, 0, 2], 31337);
        let (_, c, out) = run_any(&conn_segments(client, server, REQ, RESP, true));
        assert_eq!(out.len(), 2, "{out:?}");
        assert!(matches!(out[0].kind, MessageKind::Request { .. }));
        assert_eq!(out[0].source.port, 51000);
        assert_eq!(out[0].destination.port, 31337);
        assert!(matches!(out[1].kind, MessageKind::Response { .. }));
        assert_eq!(out[1].source.port, 31337);
        assert_eq!(c.flow.connections_not_http, 0);
    }

    #[test]
    fn any_port_takes_the_client_from_the_request_line_not_the_port_or_the_syn() {
        // Mid-stream (no SYN), the server on the higher port: the lower-port guess is
        // wrong and the content corrects it.
        let client = ([10, 0, 0, 1], 80);
        let server = ([10, 0, 0, 2], 60000);
        for syn in [false, true] {
            // With a SYN, make the server the SYN's sender (a peer that connects out and
            // then answers requests: reverse connections do this).
            let segs = if syn {
                let mut v = vec![
                    seg(server, client, TcpFlags::SYN, 8_999, 0, b""),
                    seg(
                        client,
                        server,
                        TcpFlags::SYN | TcpFlags::ACK,
                        999,
                        9_000,
                        b"",
                    ),
                ];
                v.extend(conn_segments(client, server, REQ, RESP, false));
                v
            } else {
                conn_segments(client, server, REQ, RESP, false)
            };
            let (_, _, out) = run_any(&segs);
            let req = out
                .iter()
                .find(|m| matches!(m.kind, MessageKind::Request { .. }))
                .unwrap();
            let resp = out
                .iter()
                .find(|m| matches!(m.kind, MessageKind::Response { .. }))
                .unwrap();
            assert_eq!(req.source.port, 80, "syn={syn}");
            assert_eq!(req.destination.port, 60000, "syn={syn}");
            assert_eq!(resp.source.port, 60000, "syn={syn}");
            assert_eq!(resp.sequence, req.sequence, "syn={syn}: {out:?}");
            assert_eq!(out.len(), 2, "syn={syn}: {out:?}");
        }
    }

    #[test]
    fn any_port_lets_go_of_connections_that_are_not_http_and_counts_them() {
        let client = ([10, 0, 0, 1], 51000);
        let server = ([10, 0, 0, 2], 25);
        let mut segs = conn_segments(
            client,
            server,
            b"EHLO client.example\r\n",
            b"220 mail.example ESMTP\r\n",
            true,
        );
        // The server speaks first in SMTP: put its banner before the client's line.
        segs.swap(2, 3);
        let memcached = conn_segments(
            ([10, 0, 0, 1], 51001),
            ([10, 0, 0, 2], 11211),
            b"get key\r\n",
            b"END\r\n",
            true,
        );
        let tls = conn_segments(
            ([10, 0, 0, 1], 51002),
            ([10, 0, 0, 2], 8443),
            &[0x16, 0x03, 0x01, 0x00, 0x05, 0x01, 0, 0, 1, 0],
            &[0x16, 0x03, 0x03, 0x00, 0x05, 0x02, 0, 0, 1, 0],
            true,
        );
        let all: Vec<_> = segs.into_iter().chain(memcached).chain(tls).collect();
        let (t, c, out) = run_any(&all);
        assert!(out.is_empty(), "{out:?}");
        assert_eq!(c.flow.connections_not_http, 3);
        assert_eq!(c.http.non_http_tls, 1);
        assert!(
            c.flow.segments_not_http > 0,
            "later segments are dropped unread"
        );
        assert_eq!(t.len(), 0, "nothing is held for them");
        assert!(t.let_go_len() <= 3);
    }

    #[test]
    fn any_port_gives_up_on_a_mid_stream_connection_without_http_after_the_window() {
        let a = ([10, 0, 0, 1], 40000);
        let b = ([10, 0, 0, 2], 5432);
        let mut t = FlowTable::new(any_cfg(), 0);
        let mut c = FlowCounters::default();
        let mut out = Vec::new();
        let chunk = vec![0x42u8; 1400];
        let mut seq = 1u32;
        let mut n = 0;
        while t.len() <= 1 && n < 1000 {
            let s = seg(a, b, TcpFlags::ACK | TcpFlags::PSH, seq, 1, &chunk);
            t.segment(&s, Timestamp(n), &mut c, &mut out);
            seq += chunk.len() as u32;
            n += 1;
            if c.flow.connections_not_http > 0 {
                break;
            }
        }
        assert_eq!(c.flow.connections_not_http, 1);
        let seen = n as usize * chunk.len();
        assert!(
            seen > crate::http::ORIENT_WINDOW && seen <= crate::http::ORIENT_WINDOW + 1400,
            "gave up after {seen} bytes"
        );
        assert_eq!(t.len(), 0);
        // Later segments cost a lookup and are counted.
        let s = seg(a, b, TcpFlags::ACK | TcpFlags::PSH, seq, 1, &chunk);
        t.segment(&s, Timestamp(n + 1), &mut c, &mut out);
        assert_eq!(c.flow.segments_not_http, 1);
        assert_eq!(t.len(), 0);
        // A new SYN on the same addresses is a new connection, detected afresh.
        let syn = seg(a, b, TcpFlags::SYN, 77, 0, b"");
        t.segment(&syn, Timestamp(n + 2), &mut c, &mut out);
        assert_eq!(t.len(), 1);
        assert!(out.is_empty());
    }

    #[test]
    fn any_port_let_go_set_is_bounded() {
        let mut t = FlowTable::new(
            FlowConfig {
                max_connections: 8,
                ..any_cfg()
            },
            0,
        );
        let mut c = FlowCounters::default();
        let mut out = Vec::new();
        for i in 0..200u16 {
            for s in conn_segments(
                ([10, 0, 0, 1], 20000 + i),
                ([10, 0, 0, 2], 6379),
                b"*1\r\n$4\r\nPING\r\n",
                b"+PONG\r\n",
                true,
            ) {
                t.segment(&s, Timestamp(u64::from(i)), &mut c, &mut out);
            }
            assert!(t.let_go_len() <= 8, "{}", t.let_go_len());
        }
        assert_eq!(c.flow.connections_not_http, 200);
        t.sweep_idle(Timestamp(10_000_000_000), &mut c, &mut out);
        assert_eq!(t.let_go_len(), 0, "forgotten after the idle timeout");
    }

    #[test]
    fn any_port_never_tracks_the_sniffers_own_ports() {
        let mut t = FlowTable::new(
            FlowConfig {
                exclude_ports: vec![4318],
                ..any_cfg()
            },
            0,
        );
        let mut c = FlowCounters::default();
        let mut out = Vec::new();
        for s in conn_segments(
            ([127, 0, 0, 1], 40000),
            ([127, 0, 0, 1], 4318),
            REQ,
            RESP,
            true,
        ) {
            t.segment(&s, Timestamp(1), &mut c, &mut out);
        }
        assert!(out.is_empty());
        assert_eq!(c.flow.segments, 0);
        assert!(c.flow.segments_unmonitored > 0);
    }
}
