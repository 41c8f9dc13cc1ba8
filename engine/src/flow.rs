//! The flow table: one `Connection` per TCP connection on a monitored port.
//!
//! A worker owns one `FlowTable`; nothing here is shared or locked. For each
//! segment the table finds (or creates) the connection, decides which side is the
//! client, feeds the payload to that direction's [`Reassembler`], and lets the
//! reassembler's in-order bytes drive the connection's [`HttpConnection`].
//!
//! Invariants:
//! - at most `max_connections` entries; a connection past the cap is not tracked
//!   and is counted (`connections_over_cap`), it never evicts a live one;
//! - an entry not seen for `idle_timeout` of capture time is flushed and removed
//!   by [`FlowTable::sweep_idle`] (the caller decides how often to sweep);
//! - every removal goes through `FlowTable::remove`, which flushes the
//!   reassemblers (gaps become `incomplete` messages) and closes the HTTP state,
//!   so nothing buffered is dropped without being emitted or counted.

use std::hash::{Hash, Hasher};
use std::net::IpAddr;

use rustc_hash::{FxHashMap, FxHasher};

use crate::http::{BodyBudget, HttpConfig, HttpConnection, HttpStats};
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
        if (x.ip, x.port) <= (y.ip, y.port) {
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
    /// Monitored server ports.
    pub ports: Vec<u16>,
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
    conns: FxHashMap<FlowKey, Connection>,
    budget: Budget,
    /// Shared by every connection's HTTP parser.
    body_budget: BodyBudget,
    /// Connection ids are `id_prefix | counter`: unique across workers in one run.
    id_prefix: u64,
    next_id: u64,
}

/// Bytes of out-of-order data one worker may hold for all its connections.
pub const REASSEMBLY_BUDGET_PER_WORKER: usize = 16 << 20;

/// Body bytes one worker's messages in progress may keep together (each message also
/// keeps at most `maxBodySize`); see [`BodyBudget`].
pub const BODY_BUDGET_PER_WORKER: usize = 32 << 20;

impl FlowTable {
    /// A table for worker number `worker` (ids of different workers never collide).
    pub fn new(cfg: FlowConfig, worker: u16) -> Self {
        FlowTable {
            cfg,
            conns: FxHashMap::default(),
            budget: Budget::new(REASSEMBLY_BUDGET_PER_WORKER),
            body_budget: BodyBudget::new(BODY_BUDGET_PER_WORKER),
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

    /// Processes one decoded TCP segment captured at `ts`; finished messages go to `out`.
    pub fn segment(
        &mut self,
        seg: &TcpSegment<'_>,
        ts: Timestamp,
        c: &mut FlowCounters,
        out: &mut Vec<HttpMessage>,
    ) {
        let src_monitored = self.cfg.ports.contains(&seg.src_port);
        let dst_monitored = self.cfg.ports.contains(&seg.dst_port);
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

        // A fresh SYN on addresses of a connection we still hold: the old one is over.
        if flags.syn() && !flags.ack() {
            if let Some(old) = self.conns.get(&key) {
                if old.meta.client != src || old.client_started {
                    c.flow.connections_reused += 1;
                    self.remove(&key, ts, c, out);
                }
            }
        }

        if !self.conns.contains_key(&key) {
            // Only a SYN or a segment carrying data starts tracking: a lone ACK, FIN
            // or RST of a connection we never saw has nothing to tell.
            if !flags.syn() && seg.payload.is_empty() {
                return;
            }
            if self.conns.len() >= self.cfg.max_connections {
                if flags.syn() && !flags.ack() {
                    c.flow.connections_over_cap += 1;
                }
                c.flow.segments_over_cap += 1;
                return;
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
            let http = HttpConnection::new(&meta).with_body_budget(self.body_budget.clone());
            self.conns.insert(
                key,
                Connection {
                    meta,
                    from_client: Reassembler::new(),
                    from_server: Reassembler::new(),
                    http,
                    last_seen: ts,
                    client_started: false,
                },
            );
        }

        let Some(conn) = self.conns.get_mut(&key) else {
            return;
        };
        conn.last_seen = ts;
        let side = if conn.meta.client == src {
            Side::Client
        } else {
            Side::Server
        };
        if side == Side::Client && (!seg.payload.is_empty() || flags.fin()) {
            conn.client_started = true;
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
        let cfg = &self.cfg;
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
                &mut self.budget,
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
            &mut self.budget,
            &mut c.reassembly,
            &mut sink,
        );
        if flags.rst() {
            c.flow.connections_reset += 1;
            self.remove(&key, ts, c, out);
        } else if conn.from_client.is_closed() && conn.from_server.is_closed() {
            c.flow.connections_closed += 1;
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
            } = &mut conn;
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
        let idle: Vec<FlowKey> = self
            .conns
            .iter()
            .filter(|(_, conn)| now.micros_since(conn.last_seen) >= limit)
            .map(|(k, _)| *k)
            .collect();
        for key in idle {
            c.flow.connections_idle_evicted += 1;
            self.remove(&key, now, c, out);
        }
    }

    /// Flushes every connection (end of capture or stop).
    pub fn close_all(&mut self, now: Timestamp, c: &mut FlowCounters, out: &mut Vec<HttpMessage>) {
        let keys: Vec<FlowKey> = self.conns.keys().copied().collect();
        c.flow.connections_open_at_end += keys.len() as u64;
        for key in keys {
            self.remove(&key, now, c, out);
        }
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
            max_connections: 100,
            idle_timeout_us: 60_000_000,
            sample_rate: 1.0,
            local_addrs: vec![],
            reassembly: Limits::default(),
            http: HttpConfig::default(),
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
        t.segment(
            &seg(CLIENT, SERVER, TcpFlags::SYN, 1, 0, b""),
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
}
