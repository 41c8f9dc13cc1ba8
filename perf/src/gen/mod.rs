//! The pcap generator: simulated TCP connections, interleaved, streamed into a pcap file, with
//! the expected HTTP messages written beside it.
//!
//! A [`Conn`] is a small state machine (handshake → exchanges → teardown). Each time its queue of
//! planned packets runs dry, the workload's planner ([`workloads`]) writes the next exchange's
//! bytes into the connection's client and server buffers as a list of *turns* (one side sending
//! some bytes), and records the messages in the truth. `Conn::schedule` cuts each turn into
//! segments (≤ [`MSS`]), applies the adversarial twists the planner asked for, and queues the
//! packets with correct sequence and acknowledgement numbers. The main loop keeps up to the
//! workload's concurrency of connections open and emits one packet of a random open connection at
//! a time, so connections interleave packet by packet. Nothing is buffered beyond the open
//! connections' current exchange.

pub mod h2;
pub mod hostile;
pub mod http;
pub mod workloads;

use crate::frame::{self, Flow, Segment, ACK, FIN, MSS, PSH, SYN};
use crate::pcap::PcapWriter;
use crate::rng::Rng;
use crate::truth::{Addr, Kind, TruthMsg};
use std::collections::VecDeque;
use std::io::{self, Write};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

pub use workloads::Workload;

/// Capture time of the first packet: 2024-01-01T00:00:00Z, in microseconds.
pub const START_US: u64 = 1_704_067_200_000_000;

/// How a turn is cut into segments.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SegStyle {
    /// Full-size segments of [`MSS`] bytes.
    Mss,
    /// Random sizes in `1..=max`.
    Random(usize),
    /// The first `n` bytes in pieces of 1–16 bytes (a head split across many segments), then MSS.
    SplitHead(usize),
}

/// Adversarial changes to a turn's segments (A workload).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Twists {
    /// Swap two adjacent segments.
    pub reorder: bool,
    /// Send one segment again later.
    pub retransmit: bool,
    /// Resend the tail of one segment at the start of the next (same bytes).
    pub overlap: bool,
}

/// One side sending a range of its buffer.
#[derive(Debug, Clone)]
pub struct Turn {
    /// Sent by the client.
    pub from_client: bool,
    /// Byte range in that side's buffer.
    pub start: usize,
    /// End of the range (exclusive).
    pub end: usize,
    /// Segmentation.
    pub style: SegStyle,
    /// Twists to apply.
    pub twists: Twists,
    /// A range of the buffer (inside a Content-Length body) of which one whole segment is left
    /// out of the capture.
    pub gap: Option<(usize, usize)>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    New,
    Open,
    Closing,
    Done,
}

#[derive(Debug, Clone, Copy)]
struct Pkt {
    from_client: bool,
    flags: u8,
    seq: u32,
    ack: u32,
    start: u32,
    end: u32,
}

/// A simulated TCP connection (see the module doc).
pub struct Conn {
    /// Index of the connection in the file (0-based, in opening order).
    pub idx: u64,
    /// Its addresses.
    pub flow: Flow,
    /// Client address as written in truth.
    pub client: Addr,
    /// Server address as written in truth.
    pub server: Addr,
    /// Both addresses pre-serialised for truth lines.
    addrs_json: String,
    /// Its own random stream.
    pub rng: Rng,
    /// Exchanges the planner may still start (it may use several at once when pipelining).
    pub exchanges_left: u32,
    /// Sequence number of the next HTTP exchange.
    pub next_sequence: u64,
    /// The server closes the connection (Connection: close, HTTP/1.0); else the client does.
    pub server_closes: bool,
    /// Tags copied into every truth message of this connection.
    pub conn_tags: Vec<&'static str>,
    /// Bytes the client sends in the current exchange.
    pub cbuf: Vec<u8>,
    /// Bytes the server sends in the current exchange.
    pub sbuf: Vec<u8>,
    /// Turns of the current exchange.
    pub turns: Vec<Turn>,
    /// Where the planner's next client turn starts in `cbuf`.
    c_mark: usize,
    s_mark: usize,
    isn_c: u32,
    isn_s: u32,
    c_next: u32,
    s_next: u32,
    ip_id_c: u16,
    ip_id_s: u16,
    state: State,
    queue: VecDeque<Pkt>,
    segs: Vec<(usize, usize)>,
}

impl Conn {
    /// A new connection; the handshake is queued on first use.
    pub fn new(idx: u64, flow: Flow, mut rng: Rng, exchanges: u32, isn_wrap: bool) -> Conn {
        let isn_c = if isn_wrap {
            u32::MAX - rng.below(3000) as u32
        } else {
            rng.next_u64() as u32
        };
        let isn_s = rng.next_u64() as u32;
        let client = Addr {
            ip: flow.client_ip,
            port: flow.client_port,
        };
        let server = Addr {
            ip: flow.server_ip,
            port: flow.server_port,
        };
        let ip_id_c = rng.next_u64() as u16;
        let ip_id_s = rng.next_u64() as u16;
        let addrs_json = crate::truth::addrs_json(&client, &server);
        Conn {
            idx,
            flow,
            client,
            server,
            addrs_json,
            rng,
            exchanges_left: exchanges,
            next_sequence: 0,
            server_closes: false,
            conn_tags: Vec::new(),
            cbuf: Vec::new(),
            sbuf: Vec::new(),
            turns: Vec::new(),
            c_mark: 0,
            s_mark: 0,
            isn_c,
            isn_s,
            c_next: isn_c.wrapping_add(1),
            s_next: isn_s.wrapping_add(1),
            ip_id_c,
            ip_id_s,
            state: State::New,
            queue: VecDeque::new(),
            segs: Vec::new(),
        }
    }

    /// Ends the client's current turn: everything written to `cbuf` since the last client turn.
    pub fn client_turn(&mut self, style: SegStyle, twists: Twists, gap: Option<(usize, usize)>) {
        let (start, end) = (self.c_mark, self.cbuf.len());
        self.c_mark = end;
        self.turns.push(Turn {
            from_client: true,
            start,
            end,
            style,
            twists,
            gap,
        });
    }

    /// Ends the server's current turn.
    pub fn server_turn(&mut self, style: SegStyle, twists: Twists, gap: Option<(usize, usize)>) {
        let (start, end) = (self.s_mark, self.sbuf.len());
        self.s_mark = end;
        self.turns.push(Turn {
            from_client: false,
            start,
            end,
            style,
            twists,
            gap,
        });
    }

    /// A truth record for this connection with the connection's tags.
    pub fn truth(&self, kind: Kind, sequence: u64) -> TruthMsg {
        TruthMsg {
            kind,
            conn: self.idx,
            client: self.client.clone(),
            server: self.server.clone(),
            sequence,
            method: None,
            url: None,
            status_code: None,
            status_message: None,
            http_version: "1.1".into(),
            body_size: 0,
            chunked: false,
            incomplete: false,
            tags: self.conn_tags.iter().map(|&s| s.into()).collect(),
        }
    }

    fn push(&mut self, from_client: bool, flags: u8, seq: u32, start: usize, end: usize) {
        let ack = if from_client {
            self.s_next
        } else {
            self.c_next
        };
        self.queue.push_back(Pkt {
            from_client,
            flags,
            seq,
            ack,
            start: start as u32,
            end: end as u32,
        });
    }

    fn handshake(&mut self) {
        let (c, s) = (self.isn_c, self.isn_s);
        self.queue.push_back(Pkt {
            from_client: true,
            flags: SYN,
            seq: c,
            ack: 0,
            start: 0,
            end: 0,
        });
        self.queue.push_back(Pkt {
            from_client: false,
            flags: SYN | ACK,
            seq: s,
            ack: c.wrapping_add(1),
            start: 0,
            end: 0,
        });
        self.queue.push_back(Pkt {
            from_client: true,
            flags: ACK,
            seq: c.wrapping_add(1),
            ack: s.wrapping_add(1),
            start: 0,
            end: 0,
        });
    }

    fn teardown(&mut self) {
        let first = !self.server_closes; // true: client sends the first FIN
        let (a_next, b_next) = if first {
            (self.c_next, self.s_next)
        } else {
            (self.s_next, self.c_next)
        };
        self.queue.push_back(Pkt {
            from_client: first,
            flags: FIN | ACK,
            seq: a_next,
            ack: b_next,
            start: 0,
            end: 0,
        });
        self.queue.push_back(Pkt {
            from_client: !first,
            flags: FIN | ACK,
            seq: b_next,
            ack: a_next.wrapping_add(1),
            start: 0,
            end: 0,
        });
        self.queue.push_back(Pkt {
            from_client: first,
            flags: ACK,
            seq: a_next.wrapping_add(1),
            ack: b_next.wrapping_add(1),
            start: 0,
            end: 0,
        });
    }

    /// Cuts the planned turns into packets (see the module doc).
    fn schedule(&mut self) {
        let c_base = self.c_next;
        let s_base = self.s_next;
        let turns = std::mem::take(&mut self.turns);
        for (ti, t) in turns.iter().enumerate() {
            if t.start == t.end {
                continue;
            }
            self.cut(t);
            let base = if t.from_client { c_base } else { s_base };
            let segs = std::mem::take(&mut self.segs);
            let mut acked_to = t.start;
            let mut max_end = t.start;
            for (i, &(a, b)) in segs.iter().enumerate() {
                let last = i + 1 == segs.len();
                let flags = if last { ACK | PSH } else { ACK };
                self.push(t.from_client, flags, base.wrapping_add(a as u32), a, b);
                max_end = max_end.max(b);
                // The receiver acknowledges every second segment (delayed ACK), cumulatively:
                // only up to the first byte it is still missing, as TCP does — an ACK never
                // covers a reordered segment the capture has not seen yet. In a gap turn the
                // left-out segment did reach the receiver (only the capture lost it), so there
                // the ACK covers everything sent so far.
                if i % 2 == 1 && !last {
                    acked_to = if t.gap.is_some() {
                        max_end
                    } else {
                        contiguous_end(t.start, &segs[..=i])
                    };
                    let seq = if t.from_client {
                        self.s_next
                    } else {
                        self.c_next
                    };
                    let ack = base.wrapping_add(acked_to as u32);
                    self.queue.push_back(Pkt {
                        from_client: !t.from_client,
                        flags: ACK,
                        seq,
                        ack,
                        start: 0,
                        end: 0,
                    });
                }
            }
            self.segs = segs;
            let end_seq = base.wrapping_add(t.end as u32);
            if t.from_client {
                self.c_next = end_seq;
            } else {
                self.s_next = end_seq;
            }
            // At the end of a turn the receiver acknowledges unless it answers at once.
            let answered = turns
                .get(ti + 1)
                .is_some_and(|n| n.from_client != t.from_client && n.start < n.end);
            if !answered && acked_to < t.end {
                let seq = if t.from_client {
                    self.s_next
                } else {
                    self.c_next
                };
                self.queue.push_back(Pkt {
                    from_client: !t.from_client,
                    flags: ACK,
                    seq,
                    ack: end_seq,
                    start: 0,
                    end: 0,
                });
            }
        }
        self.turns = turns;
        self.turns.clear();
    }

    /// Fills `self.segs` with the segments of `t`, twists applied.
    fn cut(&mut self, t: &Turn) {
        let rng = &mut self.rng;
        let segs = &mut self.segs;
        segs.clear();
        let mut p = t.start;
        while p < t.end {
            let n = match t.style {
                SegStyle::Mss => MSS,
                SegStyle::Random(max) => rng.urange(1, max.clamp(1, MSS)),
                SegStyle::SplitHead(h) if p < t.start + h => rng.urange(1, 16),
                SegStyle::SplitHead(_) => MSS,
            };
            let e = (p + n).min(t.end);
            segs.push((p, e));
            p = e;
        }
        if let Some((ga, gb)) = t.gap {
            // Leave out one segment lying wholly inside [ga, gb), but not its first or last one.
            let inside: Vec<usize> = (0..segs.len())
                .filter(|&i| segs[i].0 > ga && segs[i].1 < gb)
                .collect();
            assert!(
                !inside.is_empty(),
                "gap range too small for its segmentation"
            );
            let i = *rng.pick(&inside);
            segs.remove(i);
        }
        let n = segs.len();
        if t.twists.overlap && n >= 2 {
            // Start a later segment up to 200 bytes early: those bytes travel twice, identical.
            for _ in 0..4 {
                let i = rng.urange(1, n - 1);
                let (a, b) = segs[i];
                let room = MSS - (b - a);
                let back = (a - segs[i - 1].0 - 1).min(room).min(200);
                if back > 0 {
                    segs[i].0 = a - rng.urange(1, back);
                    break;
                }
            }
        }
        if t.twists.reorder && n >= 2 {
            let i = rng.urange(0, n - 2);
            segs.swap(i, i + 1);
        }
        if t.twists.retransmit && n >= 1 {
            let i = rng.urange(0, n - 1);
            let at = (i + 1 + rng.urange(0, 3)).min(segs.len());
            let s = segs[i];
            segs.insert(at, s);
        }
    }

    /// Makes sure packets are queued: the handshake, the next exchange, or the teardown. Returns
    /// `false` when the connection is finished.
    fn refill(&mut self, w: &mut Workload, fill: &[u8], truth: &mut Vec<TruthMsg>) -> bool {
        while self.queue.is_empty() {
            match self.state {
                State::New => {
                    self.handshake();
                    self.state = State::Open;
                }
                State::Open if self.exchanges_left > 0 => {
                    self.cbuf.clear();
                    self.sbuf.clear();
                    self.c_mark = 0;
                    self.s_mark = 0;
                    w.plan(self, fill, truth);
                    self.schedule();
                }
                State::Open => {
                    self.teardown();
                    self.state = State::Closing;
                }
                State::Closing => {
                    self.state = State::Done;
                    return false;
                }
                State::Done => return false,
            }
        }
        true
    }

    fn next_frame(&mut self, buf: &mut Vec<u8>) -> bool {
        let Some(p) = self.queue.pop_front() else {
            return false;
        };
        let ip_id = if p.from_client {
            self.ip_id_c = self.ip_id_c.wrapping_add(1);
            self.ip_id_c
        } else {
            self.ip_id_s = self.ip_id_s.wrapping_add(1);
            self.ip_id_s
        };
        let data = if p.from_client {
            &self.cbuf
        } else {
            &self.sbuf
        };
        let seg = Segment {
            from_client: p.from_client,
            flags: p.flags,
            seq: p.seq,
            ack: p.ack,
            ip_id,
            payload: &data[p.start as usize..p.end as usize],
        };
        frame::build(buf, &self.flow, &seg);
        true
    }
}

/// The end of the contiguous run of bytes from `start` that `segs` cover (in any order).
fn contiguous_end(start: usize, segs: &[(usize, usize)]) -> usize {
    let mut sorted: Vec<(usize, usize)> = segs.to_vec();
    sorted.sort_unstable();
    let mut end = start;
    for (a, b) in sorted {
        if a > end {
            break;
        }
        end = end.max(b);
    }
    end
}

/// Addresses of connection `idx`: unique 4-tuples for the first 28 million connections.
///
/// Clients 10.1.x.y (1021 of them) with ports 32768–60999; servers 10.0.0.1–4. IPv6 clients
/// fd00:c::x:y, servers fd00:5::1–4. Server port 80 or 8080 as `port_8080` says.
pub fn flow_for(idx: u64, v6: bool, server: u8, port_8080: bool, vlan: Option<u16>) -> Flow {
    let host = (idx % 1021) as u16;
    let port = 32768 + ((idx / 1021) % 28232) as u16;
    let (client_ip, server_ip) = if v6 {
        (
            IpAddr::V6(Ipv6Addr::new(
                0xfd00,
                0xc,
                0,
                0,
                0,
                0,
                host / 250,
                host % 250 + 1,
            )),
            IpAddr::V6(Ipv6Addr::new(0xfd00, 5, 0, 0, 0, 0, 0, server as u16 + 1)),
        )
    } else {
        (
            IpAddr::V4(Ipv4Addr::new(
                10,
                1,
                (host / 250) as u8,
                (host % 250) as u8 + 1,
            )),
            IpAddr::V4(Ipv4Addr::new(10, 0, 0, server + 1)),
        )
    };
    let hb = host.to_be_bytes();
    Flow {
        client_ip,
        client_port: port,
        server_ip,
        server_port: if port_8080 { 8080 } else { 80 },
        client_mac: [0x02, 0x00, 0x0a, 0x01, hb[0], hb[1]],
        server_mac: [0x02, 0x00, 0x0a, 0x00, 0x00, server + 1],
        vlan,
    }
}

/// What one generation run produced.
#[derive(Debug, Clone, Default, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct GenStats {
    /// Packets written.
    pub packets: u64,
    /// Bytes of the pcap file.
    pub bytes: u64,
    /// Connections opened (and closed).
    pub connections: u64,
    /// Requests in the truth.
    pub requests: u64,
    /// Responses in the truth (interim 1xx included).
    pub responses: u64,
    /// Messages the sniffer should flag incomplete.
    pub expected_incomplete: u64,
    /// Capture time of the last packet minus the first, seconds.
    pub capture_seconds: f64,
}

/// Generates `workload` until the pcap reaches `target_bytes`, then closes every open
/// connection. Deterministic: the same arguments give the same bytes.
pub fn generate<P: Write, T: Write>(
    workload: Workload,
    target_bytes: u64,
    seed: u64,
    pcap_out: P,
    mut truth_out: T,
) -> io::Result<(GenStats, P, T)> {
    let mut rng = Rng::new(seed);
    let mut w = workload;
    let fill = http::filler(&mut rng);
    let mut pcap = PcapWriter::new(pcap_out)?;
    let mut active: Vec<Conn> = Vec::with_capacity(w.concurrency());
    let mut stats = GenStats::default();
    let mut truth = Vec::new();
    let mut frame_buf = Vec::with_capacity(2048);
    let mut clock = START_US;
    let mut winding_down = false;
    let mut line = Vec::with_capacity(512);
    loop {
        while pcap.bytes() < target_bytes && active.len() < w.concurrency() {
            let conn_rng = rng.fork();
            active.push(w.new_conn(stats.connections, conn_rng));
            stats.connections += 1;
        }
        if active.is_empty() {
            break;
        }
        if !winding_down && pcap.bytes() >= target_bytes {
            // Size reached: every open connection finishes its current exchange and closes.
            winding_down = true;
            for c in &mut active {
                c.exchanges_left = 0;
            }
        }
        let i = rng.below(active.len() as u64) as usize;
        let c = &mut active[i];
        if !c.refill(&mut w, &fill, &mut truth) {
            active.swap_remove(i);
            continue;
        }
        for t in truth.drain(..) {
            if t.kind == Kind::Request {
                stats.requests += 1;
            } else {
                stats.responses += 1;
            }
            stats.expected_incomplete += t.incomplete as u64;
            line.clear();
            t.write_line(&mut line, &c.addrs_json);
            truth_out.write_all(&line)?;
        }
        c.next_frame(&mut frame_buf);
        // Time advances by the frame's serialisation time at ~1 Gbit/s plus jitter.
        clock += 1 + frame_buf.len() as u64 / 125 + rng.below(3);
        pcap.write_packet(clock, &frame_buf)?;
    }
    stats.packets = pcap.packets();
    stats.bytes = pcap.bytes();
    stats.capture_seconds = (clock - START_US) as f64 / 1e6;
    let out = pcap.finish()?;
    truth_out.flush()?;
    Ok((stats, out, truth_out))
}
