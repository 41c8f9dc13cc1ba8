//! Hostile captures (issue 11): traffic shaped to make a passive sniffer hold memory, each with
//! real exchanges mixed in that must still come out.
//!
//! Every pattern writes one classic pcap (same frames, clock and addresses as the workloads:
//! [`flow_for`], [`frame::build`], [`PcapWriter`]). Hostile connections go to `10.0.0.1:80`;
//! the *real* exchanges go to `10.0.0.2:80`, each on its own complete connection (handshake,
//! `GET /real/<n>` with `X-Real: <n>`, `200 OK` with `X-Real: <n>` and a 12–16-byte JSON body,
//! FIN both ways). `real` of them are spread evenly through the hostile traffic (exchange `i` of
//! `real` after `(i + 1) / (real + 1)` of it) and one more, number `real`, comes after the last
//! hostile packet and a pause ([`Pattern::final_pause_us`]): `real + 1` exchanges in all.
//!
//! | pattern | hostile connections (all to 10.0.0.1:80; none ever closes unless said) |
//! |---|---|
//! | `heads-60k`, `heads-15k` | `conns` × a request head of `size` bytes (`GET /slow/<i>`, then `X-Pad-<k>:` lines of ≈1000 bytes) that never ends: no empty line. Sent in waves: every connection's next MSS segment in turn; the server ACKs every second segment |
//! | `pipelining` | `conns` × `size` pipelined `GET /p/<i>/<j>` (≈45 bytes each) in MSS segments, never answered (the server only ACKs) |
//! | `half-open` | `conns` × SYN + SYN-ACK, never the client's ACK; the last real exchange comes 1 s (capture time) after the last SYN-ACK |
//! | `tiny` | `conns` short complete connections, 64 open at once, 9 packets each: handshake, `GET /t/<i>`, `200` with `ok`, ACK, FIN/ACK both ways, ACK |
//! | `ooo-storm` | `conns` × a `POST /ooo/<i>` of `size` bytes (head and body) cut into 1000-byte segments; segment 0 and every 8th are never sent (holes that never fill), the rest arrive shuffled, in waves; the server repeats its ACK of the handshake every 4th segment |
//! | `body-flood` | `conns` × `POST /upload/<i>` with `Content-Length: 1073741824`, of which `size` bytes are sent in 1000-byte segments, in waves (every connection uploads slowly through the whole file); never finished |
//!
//! Deterministic: the same pattern, parameters and seed give the same bytes. Memory is small:
//! one small state per open hostile connection, no copy of the streams.

use super::{flow_for, http, START_US};
use crate::frame::{self, Flow, Segment, ACK, FIN, MSS, PSH, SYN};
use crate::pcap::PcapWriter;
use crate::rng::Rng;
use std::fmt::Write as _;
use std::io::{self, Write};

/// The header a real exchange carries on both messages (lower-case, as the sniffer emits it).
pub const REAL_HEADER: &str = "x-real";
/// The URL prefix of real requests: `/real/<n>`.
pub const REAL_PREFIX: &str = "/real/";
/// Segment size of the `ooo-storm` and `body-flood` patterns.
pub const SMALL_SEG: usize = 1000;
/// Connections open at once in `tiny`.
pub const TINY_OPEN: usize = 64;
/// The declared (never reached) upload size of `body-flood`.
pub const FLOOD_CONTENT_LENGTH: u64 = 1 << 30;

/// One hostile pattern (see the module doc).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, clap::ValueEnum, serde::Serialize)]
pub enum Pattern {
    /// Request heads of 60 000 bytes that never end.
    #[value(name = "heads-60k")]
    #[serde(rename = "heads-60k")]
    Heads60k,
    /// Request heads of 15 000 bytes that never end.
    #[value(name = "heads-15k")]
    #[serde(rename = "heads-15k")]
    Heads15k,
    /// Pipelined GETs never answered.
    #[value(name = "pipelining")]
    #[serde(rename = "pipelining")]
    Pipelining,
    /// SYN + SYN-ACK only.
    #[value(name = "half-open")]
    #[serde(rename = "half-open")]
    HalfOpen,
    /// Many short complete connections.
    #[value(name = "tiny")]
    #[serde(rename = "tiny")]
    Tiny,
    /// Out-of-order segments behind holes that never fill.
    #[value(name = "ooo-storm")]
    #[serde(rename = "ooo-storm")]
    OooStorm,
    /// Large uploads sent slowly, never finished.
    #[value(name = "body-flood")]
    #[serde(rename = "body-flood")]
    BodyFlood,
}

/// The size of one pattern's capture.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Params {
    /// Hostile connections.
    pub conns: u64,
    /// Per hostile connection: head bytes (heads), GETs (pipelining), stream bytes (ooo-storm),
    /// body bytes sent (body-flood); unused by half-open and tiny.
    pub size: u64,
    /// Real exchanges spread through the hostile traffic (one more comes at the end).
    pub real: u64,
    /// Random seed.
    pub seed: u64,
}

impl Pattern {
    /// Every pattern, in report order.
    pub const ALL: [Pattern; 7] = [
        Pattern::Heads60k,
        Pattern::Heads15k,
        Pattern::Pipelining,
        Pattern::HalfOpen,
        Pattern::Tiny,
        Pattern::OooStorm,
        Pattern::BodyFlood,
    ];

    /// The pattern's name on the command line and in reports.
    pub fn name(self) -> &'static str {
        match self {
            Pattern::Heads60k => "heads-60k",
            Pattern::Heads15k => "heads-15k",
            Pattern::Pipelining => "pipelining",
            Pattern::HalfOpen => "half-open",
            Pattern::Tiny => "tiny",
            Pattern::OooStorm => "ooo-storm",
            Pattern::BodyFlood => "body-flood",
        }
    }

    /// Full size (`make bench`): the numbers where it gives them.
    pub fn full(self) -> Params {
        let (conns, size) = match self {
            Pattern::Heads60k => (10_000, 60_000),
            Pattern::Heads15k => (10_000, 15_000),
            Pattern::Pipelining => (5_000, 1_000),
            Pattern::HalfOpen => (60_000, 0),
            Pattern::Tiny => (100_000, 0),
            Pattern::OooStorm => (10_000, 24_000),
            Pattern::BodyFlood => (10_000, 40_000),
        };
        Params {
            conns,
            size,
            real: 20,
            seed: 1,
        }
    }

    /// Quick size (`make test`): a tenth or less of the connections, except `half-open`, which
    /// needs more connections than the default connection cap (10 000) to mean anything and is
    /// small anyway (≈ 11 MB).
    pub fn quick(self) -> Params {
        let full = self.full();
        let conns = match self {
            Pattern::HalfOpen => full.conns,
            Pattern::Tiny => 10_000,
            Pattern::Pipelining => 250,
            _ => 1_000,
        };
        Params {
            conns,
            real: 5,
            ..full
        }
    }

    /// Capture time between the last hostile packet and the last real exchange.
    pub fn final_pause_us(self) -> u64 {
        match self {
            Pattern::HalfOpen => 1_000_000,
            _ => 10_000,
        }
    }

    /// One line saying what the capture holds.
    pub fn describe(self, p: &Params) -> String {
        let n = p.conns;
        match self {
            Pattern::Heads60k | Pattern::Heads15k => {
                format!("{n} connections × a {} B request head that never ends", p.size)
            }
            Pattern::Pipelining => format!("{n} connections × {} pipelined GETs, never answered", p.size),
            Pattern::HalfOpen => format!("{n} connections SYN + SYN-ACK only; the last real exchange 1 s later"),
            Pattern::Tiny => format!("{n} short complete connections (GET → 200), {TINY_OPEN} open at once"),
            Pattern::OooStorm => format!(
                "{n} connections × {} B POST in {SMALL_SEG} B segments, 1 in 8 never sent (holes), the rest shuffled",
                p.size
            ),
            Pattern::BodyFlood => format!(
                "{n} connections × POST of {FLOOD_CONTENT_LENGTH} B declared, {} B sent slowly ({SMALL_SEG} B segments), never finished",
                p.size
            ),
        }
    }
}

/// What one hostile capture holds.
#[derive(Debug, Clone, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HostileStats {
    /// Packets written.
    pub packets: u64,
    /// Bytes of the pcap file.
    pub bytes: u64,
    /// Hostile connections.
    pub hostile_connections: u64,
    /// Real exchanges (`real` spread through the file, plus the last one).
    pub real_exchanges: u64,
    /// Complete request/response pairs among the hostile connections that a sniffer should
    /// emit (only `tiny` has any).
    pub hostile_exchanges_complete: u64,
    /// Capture time of the last packet minus the first, seconds.
    pub capture_seconds: f64,
}

/// The capture time, the frame buffer and the pcap writer every pattern writes through.
struct Out<W: Write> {
    pcap: PcapWriter<W>,
    clock: u64,
    rng: Rng,
    frame: Vec<u8>,
}

impl<W: Write> Out<W> {
    fn emit(&mut self, flow: &Flow, seg: &Segment<'_>) -> io::Result<()> {
        frame::build(&mut self.frame, flow, seg);
        // Time advances by the frame's serialisation time at ~1 Gbit/s plus jitter, as in gen.
        self.clock += 1 + self.frame.len() as u64 / 125 + self.rng.below(3);
        self.pcap.write_packet(self.clock, &self.frame)
    }
}

/// One simulated TCP connection: sequence numbers and IP ids, nothing buffered.
struct Tcp {
    flow: Flow,
    isn_c: u32,
    isn_s: u32,
    c_next: u32,
    s_next: u32,
    id_c: u16,
    id_s: u16,
}

impl Tcp {
    fn new(flow: Flow, rng: &mut Rng) -> Tcp {
        let isn_c = rng.next_u64() as u32;
        let isn_s = rng.next_u64() as u32;
        Tcp {
            flow,
            isn_c,
            isn_s,
            c_next: isn_c.wrapping_add(1),
            s_next: isn_s.wrapping_add(1),
            id_c: rng.next_u64() as u16,
            id_s: rng.next_u64() as u16,
        }
    }

    fn pkt<W: Write>(
        &mut self,
        out: &mut Out<W>,
        from_client: bool,
        flags: u8,
        seq: u32,
        ack: u32,
        payload: &[u8],
    ) -> io::Result<()> {
        let id = if from_client {
            &mut self.id_c
        } else {
            &mut self.id_s
        };
        *id = id.wrapping_add(1);
        let seg = Segment {
            from_client,
            flags,
            seq,
            ack,
            ip_id: *id,
            payload,
        };
        out.emit(&self.flow, &seg)
    }

    fn syn<W: Write>(&mut self, out: &mut Out<W>) -> io::Result<()> {
        self.pkt(out, true, SYN, self.isn_c, 0, &[])
    }

    fn syn_ack<W: Write>(&mut self, out: &mut Out<W>) -> io::Result<()> {
        self.pkt(out, false, SYN | ACK, self.isn_s, self.c_next, &[])
    }

    fn handshake<W: Write>(&mut self, out: &mut Out<W>) -> io::Result<()> {
        self.syn(out)?;
        self.syn_ack(out)?;
        self.ack(out, true)
    }

    /// The next bytes of one side, in one segment.
    fn data<W: Write>(
        &mut self,
        out: &mut Out<W>,
        from_client: bool,
        payload: &[u8],
        push: bool,
    ) -> io::Result<()> {
        let flags = if push { ACK | PSH } else { ACK };
        let (seq, ack) = if from_client {
            (self.c_next, self.s_next)
        } else {
            (self.s_next, self.c_next)
        };
        self.pkt(out, from_client, flags, seq, ack, payload)?;
        let n = payload.len() as u32;
        if from_client {
            self.c_next = self.c_next.wrapping_add(n);
        } else {
            self.s_next = self.s_next.wrapping_add(n);
        }
        Ok(())
    }

    /// Client bytes at stream offset `off` (0 = first byte after the SYN), out of order:
    /// `c_next` does not move.
    fn client_data_at<W: Write>(
        &mut self,
        out: &mut Out<W>,
        off: usize,
        payload: &[u8],
    ) -> io::Result<()> {
        let seq = self.isn_c.wrapping_add(1).wrapping_add(off as u32);
        self.pkt(out, true, ACK, seq, self.s_next, payload)
    }

    /// A pure ACK from one side of everything the other side sent so far.
    fn ack<W: Write>(&mut self, out: &mut Out<W>, from_client: bool) -> io::Result<()> {
        let (seq, ack) = if from_client {
            (self.c_next, self.s_next)
        } else {
            (self.s_next, self.c_next)
        };
        self.pkt(out, from_client, ACK, seq, ack, &[])
    }

    /// Step `k` (0–2) of the client-first close: FIN/ACK, FIN/ACK, ACK.
    fn close_step<W: Write>(&mut self, out: &mut Out<W>, k: u8) -> io::Result<()> {
        let (c, s) = (self.c_next, self.s_next);
        match k {
            0 => self.pkt(out, true, FIN | ACK, c, s, &[]),
            1 => self.pkt(out, false, FIN | ACK, s, c.wrapping_add(1), &[]),
            _ => self.pkt(out, true, ACK, c.wrapping_add(1), s.wrapping_add(1), &[]),
        }
    }
}

/// Real exchange number `n`, whole, on its own connection to 10.0.0.2:80.
fn real_exchange<W: Write>(out: &mut Out<W>, n: u64) -> io::Result<()> {
    let mut rng = out.rng.fork();
    let mut t = Tcp::new(flow_for(n, false, 1, false, None), &mut rng);
    t.handshake(out)?;
    let req = format!(
        "GET {REAL_PREFIX}{n} HTTP/1.1\r\nHost: real.example\r\nUser-Agent: hostile-suite\r\nAccept: */*\r\nX-Real: {n}\r\n\r\n"
    );
    t.data(out, true, req.as_bytes(), true)?;
    let body = format!("{{\"real\":{n}}}");
    let resp = format!(
        "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nX-Real: {n}\r\n\r\n{body}",
        body.len()
    );
    t.data(out, false, resp.as_bytes(), true)?;
    t.ack(out, true)?;
    for k in 0..3 {
        t.close_step(out, k)?;
    }
    Ok(())
}

/// Spreads the real exchanges evenly over `total` ticks of hostile traffic.
struct Mix {
    total: u64,
    done: u64,
    next: u64,
    real: u64,
}

impl Mix {
    fn new(total: u64, real: u64) -> Mix {
        Mix {
            total: total.max(1),
            done: 0,
            next: 0,
            real,
        }
    }

    /// One unit of hostile traffic was written; writes the real exchanges now due.
    fn tick<W: Write>(&mut self, out: &mut Out<W>) -> io::Result<()> {
        self.done += 1;
        while self.next < self.real && self.done * (self.real + 1) >= (self.next + 1) * self.total {
            real_exchange(out, self.next)?;
            self.next += 1;
        }
        Ok(())
    }

    /// Any real exchange not yet written, the pause, then the last one.
    fn finish<W: Write>(&mut self, out: &mut Out<W>, pause_us: u64) -> io::Result<()> {
        while self.next < self.real {
            real_exchange(out, self.next)?;
            self.next += 1;
        }
        out.clock += pause_us;
        real_exchange(out, self.real)
    }
}

/// Copies `len` bytes at offset `off` of the stream `prefix ++ tail ++ tail ++ …` into `buf`.
fn stream_slice(buf: &mut Vec<u8>, prefix: &[u8], tail: &[u8], off: usize, len: usize) {
    buf.clear();
    let mut p = off;
    let end = off + len;
    while p < end {
        if p < prefix.len() {
            let e = end.min(prefix.len());
            buf.extend_from_slice(&prefix[p..e]);
            p = e;
        } else {
            let t = (p - prefix.len()) % tail.len();
            let n = (end - p).min(tail.len() - t);
            buf.extend_from_slice(&tail[t..t + n]);
            p += n;
        }
    }
}

fn hostile_flow(i: u64) -> Flow {
    flow_for(i, false, 0, false, None)
}

fn new_conns(n: u64, rng: &mut Rng) -> Vec<Tcp> {
    (0..n).map(|i| Tcp::new(hostile_flow(i), rng)).collect()
}

/// `X-Pad-<k>: <≈1000 letters>\r\n` lines, at least `len` bytes: never an empty line.
fn pad_lines(len: usize) -> Vec<u8> {
    let mut v = Vec::with_capacity(len + 1100);
    let mut k = 0;
    while v.len() < len {
        let _ = write!(v, "X-Pad-{k}: ");
        for j in 0..990 {
            v.push(b'a' + ((j + k) % 26) as u8);
        }
        v.extend_from_slice(b"\r\n");
        k += 1;
    }
    v
}

fn heads<W: Write>(out: &mut Out<W>, p: &Params, rng: &mut Rng) -> io::Result<Mix> {
    let size = p.size.max(64) as usize;
    let pad = pad_lines(size);
    let nseg = size.div_ceil(MSS);
    let mut mix = Mix::new(p.conns * (1 + nseg as u64), p.real);
    let mut conns = new_conns(p.conns, rng);
    for t in &mut conns {
        t.handshake(out)?;
        mix.tick(out)?;
    }
    let mut buf = Vec::with_capacity(MSS);
    let mut prefix = String::new();
    for w in 0..nseg {
        for (i, t) in conns.iter_mut().enumerate() {
            prefix.clear();
            let _ = write!(
                prefix,
                "GET /slow/{i} HTTP/1.1\r\nHost: victim.example\r\nUser-Agent: slowloris/1.0\r\n"
            );
            let off = w * MSS;
            stream_slice(&mut buf, prefix.as_bytes(), &pad, off, MSS.min(size - off));
            t.data(out, true, &buf, true)?;
            if w % 2 == 1 {
                t.ack(out, false)?;
            }
            mix.tick(out)?;
        }
    }
    Ok(mix)
}

fn pipelining<W: Write>(out: &mut Out<W>, p: &Params, rng: &mut Rng) -> io::Result<Mix> {
    let per_conn: usize = (0..p.size)
        .map(|j| format!("GET /p/0/{j} HTTP/1.1\r\nHost: victim.example\r\n\r\n").len())
        .sum();
    let nseg = per_conn.div_ceil(MSS) as u64 + 1;
    let mut mix = Mix::new(p.conns * (1 + nseg), p.real);
    let mut conns = new_conns(p.conns, rng);
    for t in &mut conns {
        t.handshake(out)?;
        mix.tick(out)?;
    }
    let mut next_req = vec![0u64; conns.len()];
    let mut pending: Vec<Vec<u8>> = vec![Vec::new(); conns.len()];
    let mut sent = vec![0u32; conns.len()];
    loop {
        let mut any = false;
        for (i, t) in conns.iter_mut().enumerate() {
            let buf = &mut pending[i];
            while buf.len() < MSS && next_req[i] < p.size {
                let _ = write!(
                    buf,
                    "GET /p/{i}/{} HTTP/1.1\r\nHost: victim.example\r\n\r\n",
                    next_req[i]
                );
                next_req[i] += 1;
            }
            if buf.is_empty() {
                continue;
            }
            any = true;
            let n = buf.len().min(MSS);
            t.data(out, true, &buf[..n], true)?;
            buf.drain(..n);
            sent[i] += 1;
            if sent[i].is_multiple_of(2) {
                t.ack(out, false)?;
            }
            mix.tick(out)?;
        }
        if !any {
            return Ok(mix);
        }
    }
}

fn half_open<W: Write>(out: &mut Out<W>, p: &Params, rng: &mut Rng) -> io::Result<Mix> {
    let mut mix = Mix::new(p.conns, p.real);
    for i in 0..p.conns {
        let mut t = Tcp::new(hostile_flow(i), rng);
        t.syn(out)?;
        t.syn_ack(out)?;
        mix.tick(out)?;
    }
    Ok(mix)
}

fn tiny<W: Write>(out: &mut Out<W>, p: &Params, rng: &mut Rng) -> io::Result<Mix> {
    let mut mix = Mix::new(p.conns, p.real);
    let mut first = 0u64;
    while first < p.conns {
        let last = (first + TINY_OPEN as u64).min(p.conns);
        let mut batch: Vec<Tcp> = (first..last)
            .map(|i| Tcp::new(hostile_flow(i), rng))
            .collect();
        for step in 0..9u8 {
            for (k, t) in batch.iter_mut().enumerate() {
                let i = first + k as u64;
                match step {
                    0 => t.syn(out)?,
                    1 => t.syn_ack(out)?,
                    2 | 5 => t.ack(out, true)?,
                    3 => {
                        let req = format!("GET /t/{i} HTTP/1.1\r\nHost: victim.example\r\n\r\n");
                        t.data(out, true, req.as_bytes(), true)?
                    }
                    4 => t.data(
                        out,
                        false,
                        b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok",
                        true,
                    )?,
                    s => t.close_step(out, s - 6)?,
                }
                if step == 8 {
                    mix.tick(out)?;
                }
            }
        }
        first = last;
    }
    Ok(mix)
}

/// Fisher–Yates.
fn shuffle<T>(v: &mut [T], rng: &mut Rng) {
    for i in (1..v.len()).rev() {
        let j = rng.below(i as u64 + 1) as usize;
        v.swap(i, j);
    }
}

fn ooo_storm<W: Write>(
    out: &mut Out<W>,
    p: &Params,
    rng: &mut Rng,
    fill: &[u8],
) -> io::Result<Mix> {
    let mut conns = new_conns(p.conns, rng);
    let mut prefixes = Vec::with_capacity(conns.len());
    let mut orders = Vec::with_capacity(conns.len());
    let mut sent = 0u64;
    for i in 0..p.conns {
        let head = |cl: u64| {
            format!("POST /ooo/{i} HTTP/1.1\r\nHost: victim.example\r\nContent-Type: text/plain\r\nContent-Length: {cl}\r\n\r\n")
        };
        // The Content-Length makes head + body `size` bytes (at least 4 segments).
        let size = p.size.max(4 * SMALL_SEG as u64);
        let mut cl = size - head(0).len() as u64;
        for _ in 0..3 {
            cl = size - head(cl).len() as u64;
        }
        let prefix = head(cl);
        let total = prefix.len() + cl as usize;
        let nseg = total.div_ceil(SMALL_SEG);
        let mut order: Vec<u32> = (0..nseg as u32).filter(|k| k % 8 != 0).collect();
        shuffle(&mut order, rng);
        sent += order.len() as u64;
        prefixes.push((prefix, total));
        orders.push(order);
    }
    let mut mix = Mix::new(p.conns + sent, p.real);
    for t in &mut conns {
        t.handshake(out)?;
        mix.tick(out)?;
    }
    let waves = orders.iter().map(|o| o.len()).max().unwrap_or(0);
    let mut buf = Vec::with_capacity(SMALL_SEG);
    for w in 0..waves {
        for (i, t) in conns.iter_mut().enumerate() {
            let Some(&k) = orders[i].get(w) else {
                continue;
            };
            let (prefix, total) = &prefixes[i];
            let off = k as usize * SMALL_SEG;
            stream_slice(
                &mut buf,
                prefix.as_bytes(),
                fill,
                off,
                SMALL_SEG.min(total - off),
            );
            t.client_data_at(out, off, &buf)?;
            if w % 4 == 3 {
                // Nothing arrived in order: the server can only repeat its first ACK.
                t.ack(out, false)?;
            }
            mix.tick(out)?;
        }
    }
    Ok(mix)
}

fn body_flood<W: Write>(
    out: &mut Out<W>,
    p: &Params,
    rng: &mut Rng,
    fill: &[u8],
) -> io::Result<Mix> {
    let mut conns = new_conns(p.conns, rng);
    let head_len = |i: u64| flood_head(i).len();
    let nseg = (head_len(0) + p.size as usize).div_ceil(SMALL_SEG) as u64;
    let mut mix = Mix::new(p.conns * (1 + nseg), p.real);
    for t in &mut conns {
        t.handshake(out)?;
        mix.tick(out)?;
    }
    let mut buf = Vec::with_capacity(SMALL_SEG);
    let mut w = 0usize;
    loop {
        let mut any = false;
        for (i, t) in conns.iter_mut().enumerate() {
            let head = flood_head(i as u64);
            let total = head.len() + p.size as usize;
            let off = w * SMALL_SEG;
            if off >= total {
                continue;
            }
            any = true;
            stream_slice(
                &mut buf,
                head.as_bytes(),
                fill,
                off,
                SMALL_SEG.min(total - off),
            );
            t.data(out, true, &buf, true)?;
            if w % 2 == 1 {
                t.ack(out, false)?;
            }
            mix.tick(out)?;
        }
        if !any {
            return Ok(mix);
        }
        w += 1;
    }
}

fn flood_head(i: u64) -> String {
    format!("POST /upload/{i} HTTP/1.1\r\nHost: victim.example\r\nContent-Type: application/octet-stream\r\nContent-Length: {FLOOD_CONTENT_LENGTH}\r\n\r\n")
}

/// Writes `pattern` with `params` as a pcap into `out`. Deterministic.
pub fn generate<W: Write>(pattern: Pattern, p: &Params, out: W) -> io::Result<(HostileStats, W)> {
    let mut rng = Rng::new(p.seed ^ (pattern as u64 + 1).wrapping_mul(0x9E37_79B9));
    let fill = http::filler(&mut rng);
    let mut o = Out {
        pcap: PcapWriter::new(out)?,
        clock: START_US,
        rng: rng.fork(),
        frame: Vec::with_capacity(2048),
    };
    let mut mix = match pattern {
        Pattern::Heads60k | Pattern::Heads15k => heads(&mut o, p, &mut rng)?,
        Pattern::Pipelining => pipelining(&mut o, p, &mut rng)?,
        Pattern::HalfOpen => half_open(&mut o, p, &mut rng)?,
        Pattern::Tiny => tiny(&mut o, p, &mut rng)?,
        Pattern::OooStorm => ooo_storm(&mut o, p, &mut rng, &fill)?,
        Pattern::BodyFlood => body_flood(&mut o, p, &mut rng, &fill)?,
    };
    mix.finish(&mut o, pattern.final_pause_us())?;
    let stats = HostileStats {
        packets: o.pcap.packets(),
        bytes: o.pcap.bytes(),
        hostile_connections: p.conns,
        real_exchanges: p.real + 1,
        hostile_exchanges_complete: if pattern == Pattern::Tiny { p.conns } else { 0 },
        capture_seconds: (o.clock - START_US) as f64 / 1e6,
    };
    Ok((stats, o.pcap.finish()?))
}

/// The base file name of a capture: every parameter is in it, so a cached file is the same.
pub fn file_stem(pattern: Pattern, p: &Params) -> String {
    format!(
        "hostile-{}-n{}-s{}-r{}-seed{}",
        pattern.name(),
        p.conns,
        p.size,
        p.real,
        p.seed
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stream_slice_wraps_the_tail() {
        let mut b = Vec::new();
        stream_slice(&mut b, b"abc", b"xyz", 1, 7);
        assert_eq!(b, b"bcxyzxy");
        stream_slice(&mut b, b"abc", b"xyz", 5, 2);
        assert_eq!(b, b"zx");
    }

    #[test]
    fn pad_lines_never_end_a_head() {
        let p = pad_lines(5000);
        assert!(p.len() >= 5000);
        assert!(!p.windows(4).any(|w| w == b"\r\n\r\n"));
    }

    #[test]
    fn mix_spreads_real_exchanges() {
        let mut o = Out {
            pcap: PcapWriter::new(Vec::new()).unwrap(),
            clock: START_US,
            rng: Rng::new(1),
            frame: Vec::new(),
        };
        let mut m = Mix::new(100, 4);
        let mut due = Vec::new();
        for _ in 0..100 {
            m.tick(&mut o).unwrap();
            due.push(m.next);
        }
        assert_eq!((due[18], due[19], due[78], due[79]), (0, 1, 3, 4));
        let before = o.pcap.packets();
        m.finish(&mut o, 1_000_000).unwrap();
        assert_eq!(o.pcap.packets() - before, 9);
    }
}
