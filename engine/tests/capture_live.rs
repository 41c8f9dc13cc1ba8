//! Live capture against real TCP traffic, inside network namespaces the tests create.
//!
//! Each test runs its body on a thread that first calls `unshare(CLONE_NEWNET)`: the thread
//! (and every thread or process it starts) lives in a fresh, empty network namespace that the
//! kernel destroys when the last of them exits — nothing to clean up, even after a panic, and
//! no name that could collide with another run. `ip` commands spawned from that thread run in
//! the same namespace. The veth tests create a second namespace the same way and move the
//! peer end into it by thread id.
//!
//! The VLAN case runs on every kernel: over real 802.1Q sub-interfaces where the kernel has
//! them, else as 802.1Q-tagged frames injected into the veth pair from the peer's end (see
//! [`veth_pair`]). Either way the tag reaches packet taps on `va` out of band, in the packet's
//! metadata (`tp_vlan_tci`), not inline; libpcap re-inserts it into the frame.
//!
//! Traffic goes only to addresses inside these namespaces (127.0.0.1, 10.77.x.x on the veth).
//!
//! Needs root (CAP_SYS_ADMIN for the namespace, CAP_NET_RAW for capture). Without it each test
//! prints a loud SKIPPED note and passes — except when `CI` is set, where it fails.

use std::collections::{HashMap, HashSet};
use std::io::{Read, Write};
use std::net::{IpAddr, SocketAddr, TcpListener, TcpStream};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use tcp_sniffer::capture::afpacket::{open_fanout, AfPacketConfig, AfPacketRing};
use tcp_sniffer::capture::pcap_live::{PcapLive, PcapLiveConfig};
use tcp_sniffer::capture::{CaptureError, LinkType, Packet};
use tcp_sniffer::wire::decode_tcp;

mod common;
#[path = "common/frame.rs"]
mod frame;

use common::netns::{enter_new_netns, gettid, ip};
use common::{wait_until, DEADLINE};
use frame::{Flow, Injector, Segment, ACK, PSH, SYN};

const PORT: u16 = 8080;
const OTHER_PORT: u16 = 9090;

// ---------------------------------------------------------------- namespaces and privilege

fn skip_capture(reason: &str) {
    common::netns::skip("live capture", reason);
}

/// Runs `body` on a thread in a fresh network namespace, with `lo` up if `lo_up`.
/// `None` means the test was skipped (no privilege).
fn in_netns<T, F>(lo_up: bool, body: F) -> Option<T>
where
    T: Send + 'static,
    F: FnOnce() -> T + Send + 'static,
{
    let handle = thread::spawn(move || {
        enter_new_netns()?;
        if lo_up {
            ip("link set lo up")?;
        }
        Ok::<T, String>(body())
    });
    match handle.join() {
        Ok(Ok(v)) => Some(v),
        Ok(Err(reason)) => {
            skip_capture(&reason);
            None
        }
        Err(panic) => std::panic::resume_unwind(panic),
    }
}

/// Unwraps an open result; a missing capability is a skip (or a CI failure).
fn opened<T>(r: Result<T, CaptureError>) -> Option<T> {
    match r {
        Ok(v) => Some(v),
        Err(e @ CaptureError::MissingCapability { .. }) => {
            skip_capture(&e.to_string());
            None
        }
        Err(e) => panic!("cannot open capture: {e}"),
    }
}

// ---------------------------------------------------------------- traffic

const REQUEST: &[u8] = b"GET /hello HTTP/1.1\r\nHost: test\r\nUser-Agent: capture-live\r\n\r\n";
const RESPONSE: &[u8] = b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nConnection: close\r\n\r\nhello";

/// An HTTP-looking server answering `connections` connections, one request each.
fn serve(listener: TcpListener, connections: usize) -> thread::JoinHandle<()> {
    thread::spawn(move || {
        for _ in 0..connections {
            let (mut s, _) = listener.accept().expect("accept");
            let mut buf = [0u8; 1024];
            let mut got = Vec::new();
            while !got.windows(4).any(|w| w == b"\r\n\r\n") {
                let n = s.read(&mut buf).expect("server read");
                if n == 0 {
                    break;
                }
                got.extend_from_slice(&buf[..n]);
            }
            s.write_all(RESPONSE).expect("server write");
        }
    })
}

/// One request/response over a new connection; returns the client's local port.
fn exchange(to: SocketAddr) -> u16 {
    let mut s = TcpStream::connect_timeout(&to, Duration::from_secs(5)).expect("connect");
    let port = s.local_addr().unwrap().port();
    s.write_all(REQUEST).unwrap();
    let mut resp = Vec::new();
    s.read_to_end(&mut resp).unwrap();
    assert_eq!(resp, RESPONSE);
    port
}

/// Starts a server on `addr` and makes `n` exchanges with it; returns the client ports.
fn http_traffic(addr: SocketAddr, n: usize) -> Vec<u16> {
    let server = serve(TcpListener::bind(addr).expect("bind"), n);
    let ports = (0..n).map(|_| exchange(addr)).collect();
    server.join().unwrap();
    ports
}

// ---------------------------------------------------------------- what a capture saw

/// One decoded packet, copied out of the capture buffer.
#[derive(Debug, Clone)]
struct Seen {
    src: IpAddr,
    dst: IpAddr,
    src_port: u16,
    dst_port: u16,
    syn: bool,
    seq: u32,
    payload: Vec<u8>,
    /// Captured bytes and length on the wire.
    len: usize,
    orig_len: u32,
    /// Payload bytes the capture cut off.
    missing: u32,
    /// VLAN id of an 802.1Q tag inline in front of the IP header: Ethernet frames as libpcap
    /// gives them, stripped tags re-inserted. AF_PACKET rings deliver from the IP header on.
    vlan: Option<u16>,
    at: Instant,
}

/// Upload bytes (towards `PORT`) covered by what was captured plus what was reported cut off,
/// counting retransmitted bytes once.
fn upload_coverage(seen: &[Seen]) -> (usize, usize) {
    let upload: Vec<&Seen> = seen.iter().filter(|s| s.dst_port == PORT).collect();
    let Some(isn) = upload.iter().find(|s| s.syn).map(|s| s.seq.wrapping_add(1)) else {
        return (0, 0);
    };
    let mut captured: Vec<(u64, u64)> = Vec::new();
    let mut cut = 0;
    for s in &upload {
        let start = u64::from(s.seq.wrapping_sub(isn));
        captured.push((start, start + s.payload.len() as u64));
        cut += s.cut();
    }
    captured.sort_unstable();
    let (mut covered, mut end) = (0u64, 0u64);
    for (a, b) in captured {
        let a = a.max(end);
        if b > a {
            covered += b - a;
            end = b;
        }
    }
    (covered as usize, cut)
}

impl Seen {
    /// Payload bytes the capture cut off: what the IP length says is missing or, for BIG TCP
    /// packets (IP length 0, so the decoder cannot know), what the wire length says.
    fn cut(&self) -> usize {
        (self.missing as usize).max(self.orig_len as usize - self.len)
    }
}

fn record(p: Packet<'_>, out: &mut Vec<Seen>, undecoded: &mut usize) {
    assert!(p.data.len() <= p.orig_len as usize);
    let vlan = match (p.link, p.data.get(12..16)) {
        (LinkType::Ethernet, Some([0x81, 0x00, hi, lo])) => {
            Some(u16::from_be_bytes([*hi, *lo]) & 0x0fff)
        }
        _ => None,
    };
    match decode_tcp(p.link, p.data) {
        Ok(s) => out.push(Seen {
            src: s.src,
            dst: s.dst,
            src_port: s.src_port,
            dst_port: s.dst_port,
            syn: s.flags.syn(),
            seq: s.seq,
            payload: s.payload.to_vec(),
            len: p.data.len(),
            orig_len: p.orig_len,
            missing: s.missing,
            vlan,
            at: Instant::now(),
        }),
        Err(_) => *undecoded += 1,
    }
}

/// Something to read packets from, for up to `wait`.
trait Source {
    fn read(&mut self, wait: Duration, out: &mut Vec<Seen>, undecoded: &mut usize);
}

impl Source for AfPacketRing {
    fn read(&mut self, wait: Duration, out: &mut Vec<Seen>, undecoded: &mut usize) {
        self.poll(wait, |p| record(p, out, undecoded))
            .expect("poll");
    }
}

impl Source for PcapLive {
    fn read(&mut self, wait: Duration, out: &mut Vec<Seen>, undecoded: &mut usize) {
        let end = Instant::now() + wait;
        while Instant::now() < end {
            match self.next_packet().expect("next_packet") {
                Some(p) => record(p, out, undecoded),
                None => break,
            }
        }
    }
}

/// The libpcap backend read in batches ([`PcapLive::poll`]) instead of one by one.
struct Batched(PcapLive);

impl Source for Batched {
    fn read(&mut self, _wait: Duration, out: &mut Vec<Seen>, undecoded: &mut usize) {
        self.0.poll(|p| record(p, out, undecoded)).expect("poll");
    }
}

/// Reads until `done` holds for what was seen, or `within` passes.
fn read_until<S: Source>(
    src: &mut S,
    within: Duration,
    done: impl Fn(&[Seen]) -> bool,
) -> Vec<Seen> {
    let end = Instant::now() + within;
    let mut seen = Vec::new();
    let mut undecoded = 0;
    while Instant::now() < end && !done(&seen) {
        src.read(Duration::from_millis(50), &mut seen, &mut undecoded);
    }
    assert_eq!(
        undecoded, 0,
        "the port filter let through frames that are not TCP"
    );
    seen
}

fn has_payload(seen: &[Seen], needle: &[u8]) -> bool {
    seen.iter()
        .any(|s| s.payload.windows(needle.len()).any(|w| w == needle))
}

/// The request and the response of the connection from `client_port` were both seen.
fn saw_exchange(seen: &[Seen], client_port: u16) -> bool {
    let req = seen.iter().any(|s| {
        s.src_port == client_port && s.dst_port == PORT && s.payload.starts_with(b"GET /hello")
    });
    let resp = seen.iter().any(|s| {
        s.src_port == PORT && s.dst_port == client_port && s.payload.starts_with(b"HTTP/1.1 200")
    });
    req && resp
}

fn assert_only_port(seen: &[Seen], port: u16) {
    for s in seen {
        assert!(
            s.src_port == port || s.dst_port == port,
            "filter for port {port} let through {s:?}"
        );
    }
}

// ---------------------------------------------------------------- AF_PACKET

/// A veth pair `va` — `vb`, both up, in this thread's namespace (no addresses), and the ring
/// settings for `va` (as [`lo_config`]). `None` when the pair cannot be made: the test is
/// skipped, loudly.
fn veth_va_config() -> Option<AfPacketConfig> {
    for cmd in [
        "link add va type veth peer name vb",
        "link set va up",
        "link set vb up",
    ] {
        if let Err(e) = ip(cmd) {
            skip_capture(&e);
            return None;
        }
    }
    let mut config = lo_config(&[PORT]);
    config.interface = "va".into();
    Some(config)
}

fn lo_config(ports: &[u16]) -> AfPacketConfig {
    let mut c = AfPacketConfig::new("lo", ports);
    c.ring_size = 8 << 20; // small rings: many tests run at once
    c
}

#[test]
fn afpacket_sees_http_on_loopback_and_filters_other_ports() {
    in_netns(true, || {
        let Some(mut ring) = opened(AfPacketRing::open(&lo_config(&[PORT]))) else {
            return;
        };
        assert_eq!(ring.link(), LinkType::Raw);
        // Traffic on another port first: the filter must keep it out.
        http_traffic(SocketAddr::from(([127, 0, 0, 1], OTHER_PORT)), 2);
        let clients = http_traffic(SocketAddr::from(([127, 0, 0, 1], PORT)), 3);
        let seen = read_until(&mut ring, DEADLINE, |seen| {
            clients.iter().all(|c| saw_exchange(seen, *c))
        });
        for c in &clients {
            assert!(
                saw_exchange(&seen, *c),
                "exchange from port {c} not captured: {seen:#?}"
            );
            assert!(
                seen.iter()
                    .any(|s| s.syn && s.src_port == *c && s.dst_port == PORT),
                "SYN from {c} not captured"
            );
        }
        assert_only_port(&seen, PORT);
        assert!(seen
            .iter()
            .all(|s| s.src.is_loopback() && s.dst.is_loopback()));
        assert!(has_payload(&seen, b"hello"));
        let stats = ring.stats().unwrap();
        assert!(
            stats.packets >= seen.len() as u64,
            "{stats:?} vs {} seen",
            seen.len()
        );
        assert_eq!(stats.drops, 0);
        // Reading resets the kernel counters; the totals keep growing.
        let client = http_traffic(SocketAddr::from(([127, 0, 0, 1], PORT)), 1)[0];
        let more = read_until(&mut ring, DEADLINE, |seen| saw_exchange(seen, client));
        assert!(
            saw_exchange(&more, client),
            "exchange from port {client} not captured"
        );
        let later = ring.stats().unwrap();
        assert!(later.packets > stats.packets, "{later:?} after {stats:?}");
        eprintln!(
            "af_packet lo: {} packets seen for 4 exchanges, stats {later:?}",
            seen.len()
        );
    });
}

#[test]
fn afpacket_any_interface_and_ipv6() {
    in_netns(true, || {
        let mut config = lo_config(&[PORT]);
        config.interface = "any".into();
        let Some(mut ring) = opened(AfPacketRing::open(&config)) else {
            return;
        };
        let v4 = http_traffic(SocketAddr::from(([127, 0, 0, 1], PORT)), 1)[0];
        let v6 = http_traffic("[::1]:8080".parse().unwrap(), 1)[0];
        let seen = read_until(&mut ring, DEADLINE, |seen| {
            saw_exchange(seen, v4) && saw_exchange(seen, v6)
        });
        assert!(saw_exchange(&seen, v4), "IPv4 exchange not seen on any");
        assert!(saw_exchange(&seen, v6), "IPv6 exchange not seen on any");
        assert!(seen.iter().any(|s| s.src.is_ipv6()));
        assert_only_port(&seen, PORT);
    });
}

#[test]
fn afpacket_fanout_keeps_both_directions_on_one_ring() {
    const CONNECTIONS: usize = 24;
    in_netns(true, || {
        let Some(rings) = opened(open_fanout(&lo_config(&[PORT]), 2)) else {
            return;
        };
        assert_eq!(rings.len(), 2);
        assert_eq!(rings[0].fanout_group(), rings[1].fanout_group());
        // One reader thread per ring, as the workers will have. Each publishes what it has
        // read so far, so the test stops them once every exchange was seen (not after a sleep).
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let published: Vec<std::sync::Arc<std::sync::Mutex<Vec<Seen>>>> =
            (0..rings.len()).map(|_| Default::default()).collect();
        let readers: Vec<_> = rings
            .into_iter()
            .zip(&published)
            .map(|(mut ring, shared)| {
                let stop = stop.clone();
                let shared = shared.clone();
                thread::spawn(move || {
                    let mut undecoded = 0;
                    while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                        let mut seen = Vec::new();
                        ring.read(Duration::from_millis(20), &mut seen, &mut undecoded);
                        shared.lock().unwrap().extend(seen);
                    }
                    assert_eq!(undecoded, 0);
                    ring.stats().unwrap()
                })
            })
            .collect();
        let clients = http_traffic(SocketAddr::from(([127, 0, 0, 1], PORT)), CONNECTIONS);
        // Both directions of every connection, on whichever ring.
        wait_until("every exchange on one of the rings", DEADLINE, || {
            let all: Vec<Seen> = published
                .iter()
                .flat_map(|p| p.lock().unwrap().clone())
                .collect();
            clients.iter().all(|c| saw_exchange(&all, *c))
        });
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        let results: Vec<(Vec<Seen>, _)> = readers
            .into_iter()
            .zip(&published)
            .map(|(r, p)| {
                let stats = r.join().unwrap();
                (std::mem::take(&mut *p.lock().unwrap()), stats)
            })
            .collect();

        let mut ring_of: HashMap<u16, HashSet<usize>> = HashMap::new();
        for (i, (seen, stats)) in results.iter().enumerate() {
            assert_only_port(seen, PORT);
            eprintln!("ring {i}: {} packets, {stats:?}", seen.len());
            for s in seen {
                let client = if s.dst_port == PORT {
                    s.src_port
                } else {
                    s.dst_port
                };
                ring_of.entry(client).or_default().insert(i);
            }
        }
        for c in &clients {
            let rings = ring_of
                .get(c)
                .unwrap_or_else(|| panic!("connection {c} not seen"));
            assert_eq!(
                rings.len(),
                1,
                "connection {c} split across rings {rings:?}"
            );
            let i = *rings.iter().next().unwrap();
            assert!(
                saw_exchange(&results[i].0, *c),
                "ring {i} lacks a direction of connection {c}"
            );
        }
        let per_ring: Vec<usize> = (0..2)
            .map(|i| ring_of.values().filter(|r| r.contains(&i)).count())
            .collect();
        assert!(
            per_ring.iter().all(|n| *n > 0),
            "{CONNECTIONS} connections all hashed to one ring: {per_ring:?}"
        );
    });
}

/// The kernel hands over a non-full block when its retire timer fires; a single packet must
/// therefore show up on its own, not only once 1 MiB of traffic has filled the block (which a
/// lone SYN never does: without the timer it would never be delivered). The latency is
/// reported, not asserted (`perf/` measures; the machine is shared).
#[test]
fn afpacket_delivers_a_lone_packet_without_a_full_block() {
    in_netns(true, || {
        let Some(mut ring) = opened(AfPacketRing::open(&lo_config(&[PORT]))) else {
            return;
        };
        let listener = TcpListener::bind(("127.0.0.1", PORT)).unwrap();
        let latencies: Vec<Duration> = (0..5)
            .map(|_| {
                // Quiet ring first.
                read_until(&mut ring, Duration::from_millis(100), |_| false);
                let sent = Instant::now();
                let s = TcpStream::connect(("127.0.0.1", PORT)).unwrap();
                let port = s.local_addr().unwrap().port();
                let seen = read_until(&mut ring, DEADLINE, |seen| {
                    seen.iter().any(|p| p.syn && p.src_port == port)
                });
                let syn = seen
                    .iter()
                    .find(|p| p.syn && p.src_port == port)
                    .unwrap_or_else(|| panic!("a lone SYN was not delivered within {DEADLINE:?}"));
                let (conn, _) = listener.accept().unwrap();
                drop((s, conn));
                syn.at - sent
            })
            .collect();
        eprintln!(
            "af_packet lone-packet delivery latencies (reported, not asserted): {latencies:?}"
        );
    });
}

/// Both directions of a connection tunnelled in VXLAN reach one ring of a fanout group. A VTEP
/// picks the outer UDP source port from its (one-way) hash of the inner flow, so a request and
/// its response usually cross with different outer ports: a fanout that hashed them would split
/// the connection between two workers, each seeing half of it.
#[test]
fn afpacket_fanout_keeps_both_directions_of_a_tunnelled_connection_on_one_ring() {
    const CONNECTIONS: u16 = 32;
    in_netns(true, || {
        let Some(config) = veth_va_config() else {
            return;
        };
        let Some(mut rings) = opened(open_fanout(&config, 2)) else {
            return;
        };
        let mut frames = Vec::new();
        for i in 0..CONNECTIONS {
            let flow = Flow {
                client_ip: IpAddr::from([10, 1, 0, 1]),
                client_port: 20_000 + i,
                server_ip: IpAddr::from([10, 1, 0, 2]),
                server_port: PORT,
                client_mac: VA_MAC,
                server_mac: VB_MAC,
                vlan: None,
            };
            let segment = |from_client, payload| Segment {
                from_client,
                flags: PSH | ACK,
                seq: 1,
                ack: 1,
                ip_id: 1,
                payload,
            };
            let request = frame::segment(&flow, &segment(true, b"GET /tunnelled HTTP/1.1\r\n\r\n"));
            let response =
                frame::segment(&flow, &segment(false, b"HTTP/1.1 204 No Content\r\n\r\n"));
            frames.push(frame::vxlan(
                &request,
                [10, 77, 0, 1],
                [10, 77, 0, 2],
                40_000 + 7 * i,
            ));
            frames.push(frame::vxlan(
                &response,
                [10, 77, 0, 2],
                [10, 77, 0, 1],
                50_000 + 13 * i,
            ));
        }
        inject("va", &frames);
        let mut seen: Vec<Vec<Seen>> = vec![Vec::new(); rings.len()];
        let mut undecoded = 0;
        let end = Instant::now() + DEADLINE;
        while Instant::now() < end && seen.iter().map(Vec::len).sum::<usize>() < frames.len() {
            for (ring, seen) in rings.iter_mut().zip(&mut seen) {
                ring.read(Duration::from_millis(10), seen, &mut undecoded);
            }
        }
        assert_eq!(undecoded, 0, "a tunnelled frame did not decode");
        assert_eq!(seen.iter().map(Vec::len).sum::<usize>(), frames.len());
        let ring_of = |port: u16, from_client: bool| {
            let side = |s: &Seen| if from_client { s.src_port } else { s.dst_port };
            seen.iter()
                .position(|ring| ring.iter().any(|s| side(s) == port))
                .unwrap()
        };
        for i in 0..CONNECTIONS {
            let port = 20_000 + i;
            assert_eq!(
                ring_of(port, true),
                ring_of(port, false),
                "the request and the response of tunnelled connection {port} reached different rings"
            );
        }
    });
}

/// IPv4 fragments reach a ring reassembled: the ring is in a fanout group with
/// `PACKET_FANOUT_FLAG_DEFRAG` even when it is the only one (the decoder does not reassemble
/// fragments; a lone ring in no group would see the first one only, undecodable). One TCP
/// segment of 4 000 bytes leaves `va` as three fragments.
#[test]
fn afpacket_reassembles_ipv4_fragments_on_a_lone_ring() {
    in_netns(true, || {
        let Some(config) = veth_va_config() else {
            return;
        };
        let Some(mut ring) = opened(AfPacketRing::open(&config)) else {
            return;
        };
        let payload: Vec<u8> = b"POST /fragmented HTTP/1.1\r\n"
            .iter()
            .copied()
            .chain((0..).map(|i: u32| b'a' + (i % 26) as u8))
            .take(3_980)
            .collect();
        let fragments = frame::ipv4_fragments(&tcp_frame(None, 1236, PORT, &payload), 1_480);
        assert_eq!(fragments.len(), 3);
        inject("va", &fragments);
        let seen = read_until(&mut ring, DEADLINE, |seen| {
            has_payload(seen, b"/fragmented")
        });
        let whole = seen
            .iter()
            .find(|s| s.dst_port == PORT && s.payload.starts_with(b"POST /fragmented"))
            .unwrap_or_else(|| panic!("the fragmented segment was not captured: {seen:?}"));
        assert_eq!(
            whole.payload, payload,
            "the segment reached the ring in pieces, not reassembled"
        );
    });
}

#[test]
fn afpacket_errors_say_what_is_wrong() {
    in_netns(false, || {
        let err = AfPacketRing::open(&lo_config(&[PORT])).unwrap_err();
        if let CaptureError::MissingCapability { .. } = err {
            return skip_capture(&err.to_string());
        }
        assert!(
            matches!(err, CaptureError::InterfaceDown { ref name } if name == "lo"),
            "{err:?}"
        );
        assert!(err.to_string().contains("ip link set lo up"), "{err}");

        let mut config = lo_config(&[PORT]);
        config.interface = "eth-missing".into();
        let err = AfPacketRing::open(&config).unwrap_err();
        let text = err.to_string();
        assert!(
            matches!(err, CaptureError::NoSuchInterface { .. }),
            "{err:?}"
        );
        assert!(text.contains("\"eth-missing\""), "{text}");
        assert!(
            text.contains("available: lo"),
            "the only interface here is lo: {text}"
        );

        ip("link set lo up").unwrap();
        let mut config = lo_config(&[PORT]);
        config.fanout_group = Some(4242);
        let Some(first) = opened(AfPacketRing::open(&config)) else {
            return;
        };
        assert_eq!(first.fanout_group(), 4242);
        config.ring_size = 1 << 40; // 1 TiB: more than any kernel will give
        config.fanout_group = None;
        match AfPacketRing::open(&config) {
            Err(e @ CaptureError::RingTooLarge { .. }) => {
                assert!(e.to_string().contains("out of memory"), "{e}")
            }
            Err(e) => panic!("a 1 TiB ring failed with {e:?}, not RingTooLarge"),
            Ok(_) => panic!("a 1 TiB ring was allocated"),
        }
    });
}

// ---------------------------------------------------------------- veth pair (and VLAN)

/// MAC addresses of the veth ends, fixed so that injected frames are addressed like real ones.
const VA_MAC: [u8; 6] = [0x02, 0x77, 0, 0, 0, 1];
const VB_MAC: [u8; 6] = [0x02, 0x77, 0, 0, 0, 2];

/// How VLAN 100 crosses the veth pair (10.77.100.1 on `va`'s side, 10.77.100.2 on `vb`'s).
enum Vlan {
    /// Not asked for.
    None,
    /// The kernel has 802.1Q: sub-interfaces `va.100` and `vb.100`, real connections over them.
    Device,
    /// The kernel has no 802.1Q ("Unknown device type"): 802.1Q-tagged frames are sent into the
    /// veth from `vb`'s end by a raw packet socket opened in the peer namespace. `va` receives
    /// them like any tagged frame (the kernel moves the tag into the packet's metadata before
    /// packet taps run), and, having no VLAN device, then drops them: only captures see them.
    Injected(Injector),
}

/// Two namespaces joined by a veth pair `va` (10.77.0.1, fd00:77::1, [`VA_MAC`]; here) — `vb`
/// (10.77.0.2, fd00:77::2, [`VB_MAC`]; peer), plus VLAN 100 when `want_vlan` (see [`Vlan`]).
/// `va` allows GSO packets up to 192 KiB (BIG TCP over IPv6). The peer namespace listens on
/// port 8080 (IPv4 and IPv6) and runs `server(listener, vlan_device)`, where `vlan_device`
/// says whether 10.77.100.2 exists there too. Returns the VLAN and the peer.
fn veth_pair<F>(want_vlan: bool, server: F) -> Result<(Vlan, Peer), String>
where
    F: FnOnce(TcpListener, bool) + Send + 'static,
{
    #[derive(Clone, Copy, PartialEq)]
    enum Plan {
        None,
        Device,
        Inject,
    }
    let (done_tx, done_rx) = mpsc::channel::<()>();
    let (tid_tx, tid_rx) = mpsc::channel();
    let (go_tx, go_rx) = mpsc::channel::<Plan>();
    let (ready_tx, ready_rx) = mpsc::channel::<Result<Option<Injector>, String>>();
    let peer = thread::spawn(move || {
        if let Err(e) = enter_new_netns() {
            tid_tx.send(Err(e)).unwrap();
            return;
        }
        tid_tx.send(Ok(gettid())).unwrap();
        let Ok(plan) = go_rx.recv() else { return };
        let mut setup = vec![
            "link set lo up",
            "addr add 10.77.0.2/24 dev vb",
            "addr add fd00:77::2/64 dev vb nodad",
            "link set vb up",
        ];
        if plan == Plan::Device {
            setup.extend([
                "link add link vb name vb.100 type vlan id 100",
                "addr add 10.77.100.2/24 dev vb.100",
                "link set vb.100 up",
            ]);
        }
        for cmd in setup {
            ip(cmd).unwrap();
        }
        // Opened here, so that it sends out of this namespace's `vb`, whichever thread uses it.
        let injector = match plan {
            Plan::Inject => match Injector::open("vb") {
                Ok(i) => Some(i),
                Err(e) => return ready_tx.send(Err(e)).unwrap(),
            },
            _ => None,
        };
        let listener = TcpListener::bind(("::", PORT)).unwrap();
        ready_tx.send(Ok(injector)).unwrap();
        server(listener, plan == Plan::Device);
        // Keep the namespace, and with it the veth pair, until the test is done reading.
        let _ = done_rx.recv();
    });
    let tid = tid_rx.recv().unwrap()?;
    ip("link add va address 02:77:00:00:00:01 type veth peer name vb address 02:77:00:00:00:02")?;
    ip(&format!("link set vb netns {tid}"))?;
    ip("addr add 10.77.0.1/24 dev va")?;
    ip("addr add fd00:77::1/64 dev va nodad")?;
    if let Err(e) = ip("link set va gso_max_size 196608") {
        eprintln!("!!! NOTE: {e}; GSO super-packets stay at 64 KiB");
    }
    ip("link set va up")?;
    let plan = if !want_vlan {
        Plan::None
    } else {
        match ip("link add link va name va.100 type vlan id 100") {
            Ok(()) => {
                ip("addr add 10.77.100.1/24 dev va.100")?;
                ip("link set va.100 up")?;
                Plan::Device
            }
            Err(e) => {
                eprintln!(
                    "!!! NOTE: no VLAN sub-interface ({e}); VLAN 100 is tested with \
                     802.1Q-tagged frames injected from vb instead"
                );
                Plan::Inject
            }
        }
    };
    go_tx.send(plan).unwrap();
    let injector = ready_rx
        .recv_timeout(DEADLINE)
        .map_err(|_| "peer namespace did not come up".to_string())??;
    let vlan = match (plan, injector) {
        (Plan::None, _) => Vlan::None,
        (Plan::Device, _) => Vlan::Device,
        (Plan::Inject, Some(i)) => Vlan::Injected(i),
        (Plan::Inject, None) => unreachable!("the peer opens the injector when asked"),
    };
    Ok((
        vlan,
        Peer {
            done: done_tx,
            thread: peer,
        },
    ))
}

/// The peer namespace's thread. The namespace (and so the veth pair) lives until
/// [`Peer::finish`] or until this is dropped.
struct Peer {
    done: mpsc::Sender<()>,
    thread: thread::JoinHandle<()>,
}

impl Peer {
    /// Lets the peer thread end (its namespace and the veth pair go away) and waits for it.
    fn finish(self) {
        drop(self.done);
        self.thread.join().unwrap();
    }
}

/// The peer's server for the veth tests: one HTTP exchange per address.
fn one_exchange_per_address(listener: TcpListener, vlan_device: bool) {
    serve(listener, if vlan_device { 2 } else { 1 })
        .join()
        .unwrap();
}

/// The client port of the injected VLAN connection: below the ephemeral port range, so no real
/// connection in these tests has it.
const INJECTED_CLIENT_PORT: u16 = 20100;

/// A connection the veth tests make and expect to find in the capture.
#[derive(Debug)]
struct Expected {
    server: SocketAddr,
    client_port: u16,
    /// Injected: how many frames were sent, each to be captured exactly once.
    injected: Option<usize>,
}

impl Expected {
    /// The VLAN connection (10.77.100.x).
    fn in_vlan(&self) -> bool {
        self.server.ip() == IpAddr::from([10, 77, 100, 2])
    }

    /// The packets of this connection among `seen`.
    fn packets(&self, seen: &[Seen]) -> Vec<Seen> {
        let (ip, port) = (self.server.ip(), self.server.port());
        seen.iter()
            .filter(|s| {
                (s.dst == ip && s.dst_port == port && s.src_port == self.client_port)
                    || (s.src == ip && s.src_port == port && s.dst_port == self.client_port)
            })
            .cloned()
            .collect()
    }

    /// Whether it is all there: request and response, and for an injected connection as
    /// many frames as were injected. (Stopping at the exchange alone raced the last
    /// injected frames under load: the ring was read before they arrived, and the exact
    /// count below failed with one frame missing.)
    fn seen_in(&self, seen: &[Seen]) -> bool {
        let packets = self.packets(seen);
        saw_exchange(&packets, self.client_port)
            && self.injected.is_none_or(|frames| packets.len() >= frames)
    }

    /// Fails unless it was captured: request and response, and every injected frame once.
    fn assert_captured(&self, seen: &[Seen], on: &str) {
        let packets = self.packets(seen);
        assert!(
            saw_exchange(&packets, self.client_port),
            "exchange with {} not captured on {on}: {seen:#?}",
            self.server
        );
        if let Some(frames) = self.injected {
            assert_eq!(
                packets.len(),
                frames,
                "on {on}, each of the {frames} injected frames once: {packets:#?}"
            );
            assert!(packets
                .iter()
                .any(|s| s.syn && s.src_port == self.client_port));
        }
    }
}

/// The traffic of the veth VLAN tests: an exchange with 10.77.0.2 (untagged) and, in VLAN 100,
/// one with 10.77.100.2 — over the VLAN devices, or injected. Before the injected connection,
/// a tagged SYN to another port, which the capture's filter must keep out.
fn veth_vlan_traffic(vlan: &Vlan) -> Vec<Expected> {
    let real = |server: SocketAddr| Expected {
        server,
        client_port: exchange(server),
        injected: None,
    };
    let mut traffic = vec![real(SocketAddr::from(([10, 77, 0, 2], PORT)))];
    match vlan {
        Vlan::None => {}
        Vlan::Device => traffic.push(real(SocketAddr::from(([10, 77, 100, 2], PORT)))),
        Vlan::Injected(injector) => {
            let flow = |server_port| Flow {
                client_ip: IpAddr::from([10, 77, 100, 1]),
                client_port: INJECTED_CLIENT_PORT,
                server_ip: IpAddr::from([10, 77, 100, 2]),
                server_port,
                client_mac: VA_MAC,
                server_mac: VB_MAC,
                vlan: Some(100),
            };
            let other_port = frame::segment(
                &flow(OTHER_PORT),
                &Segment {
                    from_client: true,
                    flags: SYN,
                    seq: 1,
                    ack: 0,
                    ip_id: 1,
                    payload: b"",
                },
            );
            injector.send(&[other_port]);
            let frames = frame::tcp_exchange(&flow(PORT), REQUEST, RESPONSE);
            injector.send(&frames);
            traffic.push(Expected {
                server: SocketAddr::from(([10, 77, 100, 2], PORT)),
                client_port: INJECTED_CLIENT_PORT,
                injected: Some(frames.len()),
            });
        }
    }
    traffic
}

#[test]
fn afpacket_on_a_veth_pair_with_vlan() {
    in_netns(true, || {
        let (vlan, peer) = match veth_pair(true, one_exchange_per_address) {
            Ok(v) => v,
            Err(e) => return skip_capture(&e),
        };
        assert!(!matches!(vlan, Vlan::None));
        // On the veth itself (VLAN 100 crosses it tagged) and on "any".
        let mut rings = Vec::new();
        for iface in ["va", "any"] {
            let mut c = lo_config(&[PORT]);
            c.interface = iface.into();
            let Some(r) = opened(AfPacketRing::open(&c)) else {
                return;
            };
            rings.push(r);
        }
        let traffic = veth_vlan_traffic(&vlan);
        for ring in &mut rings {
            let seen = read_until(ring, DEADLINE, |seen| {
                traffic.iter().all(|e| e.seen_in(seen))
            });
            for e in &traffic {
                e.assert_captured(&seen, ring.interface());
            }
            assert_only_port(&seen, PORT);
        }
        peer.finish();
    });
}

// ---------------------------------------------------------------- libpcap

fn pcap_config(iface: &str, ports: &[u16]) -> PcapLiveConfig {
    let mut c = PcapLiveConfig::new(iface, ports);
    c.buffer_size = 4 << 20;
    c
}

#[test]
fn pcap_sees_http_on_loopback_and_filters_other_ports() {
    in_netns(true, || {
        let Some(mut cap) = opened(PcapLive::open(&pcap_config("lo", &[PORT]))) else {
            return;
        };
        assert_eq!(cap.link(), LinkType::Ethernet);
        assert!(cap.filter().contains("vlan"), "{}", cap.filter());
        http_traffic(SocketAddr::from(([127, 0, 0, 1], OTHER_PORT)), 2);
        let clients = http_traffic(SocketAddr::from(([127, 0, 0, 1], PORT)), 3);
        let seen = read_until(&mut cap, DEADLINE, |seen| {
            clients.iter().all(|c| saw_exchange(seen, *c))
        });
        for c in &clients {
            assert!(
                saw_exchange(&seen, *c),
                "exchange from port {c} not captured"
            );
        }
        assert_only_port(&seen, PORT);
        let stats = cap.stats().unwrap();
        assert!(stats.packets >= seen.len() as u64, "{stats:?}");
        assert_eq!(stats.drops, 0);
    });
}

#[test]
fn pcap_any_interface_uses_cooked_headers() {
    in_netns(true, || {
        let Some(cap) = opened(PcapLive::open(&pcap_config("any", &[PORT]))) else {
            return;
        };
        assert!(matches!(
            cap.link(),
            LinkType::LinuxSll | LinkType::LinuxSll2
        ));
        assert!(!cap.filter().contains("vlan"), "{}", cap.filter());
        let client = http_traffic(SocketAddr::from(([127, 0, 0, 1], PORT)), 1)[0];
        let mut cap = Batched(cap);
        let seen = read_until(&mut cap, DEADLINE, |seen| saw_exchange(seen, client));
        assert!(saw_exchange(&seen, client));
        assert_only_port(&seen, PORT);
    });
}

/// As [`afpacket_delivers_a_lone_packet_without_a_full_block`], for libpcap's buffer timeout.
#[test]
fn pcap_delivers_a_lone_packet_without_a_full_buffer() {
    in_netns(true, || {
        let Some(mut cap) = opened(PcapLive::open(&pcap_config("lo", &[PORT]))) else {
            return;
        };
        let listener = TcpListener::bind(("127.0.0.1", PORT)).unwrap();
        let mut latencies = Vec::new();
        for _ in 0..5 {
            read_until(&mut cap, Duration::from_millis(100), |_| false);
            let sent = Instant::now();
            let s = TcpStream::connect(("127.0.0.1", PORT)).unwrap();
            let port = s.local_addr().unwrap().port();
            let seen = read_until(&mut cap, DEADLINE, |seen| {
                seen.iter().any(|p| p.syn && p.src_port == port)
            });
            let syn = seen
                .iter()
                .find(|p| p.syn && p.src_port == port)
                .unwrap_or_else(|| panic!("a lone SYN was not delivered within {DEADLINE:?}"));
            latencies.push(syn.at - sent);
            let (conn, _) = listener.accept().unwrap();
            drop((s, conn));
        }
        eprintln!("pcap lone-packet delivery latencies (reported, not asserted): {latencies:?}");
    });
}

#[test]
fn pcap_errors_say_what_is_wrong() {
    in_netns(false, || {
        let err = PcapLive::open(&pcap_config("eth-missing", &[PORT])).unwrap_err();
        let text = err.to_string();
        assert!(
            matches!(err, CaptureError::NoSuchInterface { .. }),
            "{err:?}"
        );
        assert!(
            text.contains("\"eth-missing\"") && text.contains("available: lo"),
            "{text}"
        );
        let err = PcapLive::open(&pcap_config("lo", &[PORT])).unwrap_err();
        assert!(matches!(err, CaptureError::InterfaceDown { .. }), "{err:?}");
    });
}

#[test]
fn pcap_on_a_veth_pair_with_vlan() {
    in_netns(true, || {
        let (vlan, peer) = match veth_pair(true, one_exchange_per_address) {
            Ok(v) => v,
            Err(e) => return skip_capture(&e),
        };
        assert!(!matches!(vlan, Vlan::None));
        let Some(mut cap) = opened(PcapLive::open(&pcap_config("va", &[PORT]))) else {
            return;
        };
        assert_eq!(cap.link(), LinkType::Ethernet);
        let traffic = veth_vlan_traffic(&vlan);
        let seen = read_until(&mut cap, DEADLINE, |seen| {
            traffic.iter().all(|e| e.seen_in(seen))
        });
        for e in &traffic {
            e.assert_captured(&seen, "va");
            // libpcap puts the tag the kernel stripped back in front of the IP header.
            let tag = e.in_vlan().then_some(100);
            for s in e.packets(&seen) {
                assert_eq!(s.vlan, tag, "VLAN tag of {s:?}");
            }
        }
        assert_only_port(&seen, PORT);
        peer.finish();
    });
}

// ---------------------------------------------------------------- inline VLAN tags

/// An Ethernet frame, optionally 802.1Q-tagged, carrying IPv4/TCP 10.77.0.1:`sport` →
/// 10.77.0.2:`dport` with `payload`.
fn tcp_frame(vlan: Option<u16>, sport: u16, dport: u16, payload: &[u8]) -> Vec<u8> {
    let flow = Flow {
        client_ip: IpAddr::from([10, 77, 0, 1]),
        client_port: sport,
        server_ip: IpAddr::from([10, 77, 0, 2]),
        server_port: dport,
        client_mac: VA_MAC,
        server_mac: VB_MAC,
        vlan,
    };
    let seg = Segment {
        from_client: true,
        flags: PSH | ACK,
        seq: 1,
        ack: 1,
        ip_id: 1,
        payload,
    };
    frame::segment(&flow, &seg)
}

/// Sends raw frames out of `iface` through a `SOCK_RAW` packet socket: the frames leave with
/// their VLAN tag inline, as on a device without VLAN transmit offload.
fn inject(iface: &str, frames: &[Vec<u8>]) {
    Injector::open(iface).unwrap().send(frames);
}

#[test]
fn inline_vlan_tags_pass_the_filter_on_both_backends() {
    in_netns(true, || {
        let Some(config) = veth_va_config() else {
            return;
        };
        let Some(mut ring) = opened(AfPacketRing::open(&config)) else {
            return;
        };
        let Some(mut cap) = opened(PcapLive::open(&pcap_config("va", &[PORT]))) else {
            return;
        };
        inject(
            "va",
            &[
                tcp_frame(Some(100), 1234, PORT, b"GET /tagged HTTP/1.1\r\n\r\n"),
                tcp_frame(Some(100), 1234, OTHER_PORT, b"GET /other HTTP/1.1\r\n\r\n"),
                tcp_frame(None, 1235, PORT, b"GET /plain HTTP/1.1\r\n\r\n"),
            ],
        );
        let done = |seen: &[Seen]| has_payload(seen, b"/tagged") && has_payload(seen, b"/plain");
        let by_ring = read_until(&mut ring, DEADLINE, done);
        let by_pcap = read_until(&mut cap, DEADLINE, done);
        for (name, seen) in [("af_packet", &by_ring), ("pcap", &by_pcap)] {
            assert!(
                has_payload(seen, b"/tagged"),
                "{name}: tagged frame not captured: {seen:?}"
            );
            assert!(
                has_payload(seen, b"/plain"),
                "{name}: untagged frame not captured"
            );
            assert_only_port(seen, PORT);
        }
    });
}

/// Polls `ring` until it reports an error (the kernel's notice may take a moment to arrive).
fn poll_until_error(ring: &mut AfPacketRing, what: &str) -> CaptureError {
    common::wait_for(what, DEADLINE, || {
        ring.poll(Duration::from_millis(50), |_| {}).err()
    })
}

#[test]
fn afpacket_reports_interface_down_and_removal() {
    in_netns(true, || {
        let Some(config) = veth_va_config() else {
            return;
        };
        let Some(mut ring) = opened(AfPacketRing::open(&config)) else {
            return;
        };
        assert_eq!(ring.poll(Duration::from_millis(10), |_| {}).unwrap(), 0);

        ip("link set va down").unwrap();
        let err = poll_until_error(&mut ring, "the ring to report va down");
        assert!(
            matches!(err, CaptureError::InterfaceDown { ref name } if name == "va"),
            "{err:?}"
        );
        // Reported once; the ring carries on and captures again once the device is back up.
        assert_eq!(ring.poll(Duration::from_millis(10), |_| {}).unwrap(), 0);
        ip("link set va up").unwrap();
        inject(
            "va",
            &[tcp_frame(None, 1236, PORT, b"GET /back HTTP/1.1\r\n\r\n")],
        );
        let seen = read_until(&mut ring, DEADLINE, |s| has_payload(s, b"/back"));
        assert!(
            has_payload(&seen, b"/back"),
            "no capture after the interface came back up"
        );

        ip("link del va").unwrap();
        let err = poll_until_error(&mut ring, "the ring to report va gone");
        assert!(
            matches!(err, CaptureError::InterfaceGone { ref name } if name == "va"),
            "{err:?}"
        );
        assert!(err.to_string().contains("went away"), "{err}");
    });
}

/// Linux hands packet taps TSO/GSO super-packets, larger than any MTU (here up to 192 KiB with
/// BIG TCP over IPv6): the AF_PACKET rings keep them whole; libpcap keeps them whole up to
/// 64 KiB and reports the rest as cut off.
#[test]
fn gso_super_packets_are_captured_whole() {
    const UPLOAD: usize = 4 << 20;
    in_netns(true, || {
        let sink = |listener: TcpListener, _vlan: bool| {
            let (mut s, _) = listener.accept().unwrap();
            let mut buf = vec![0u8; 1 << 16];
            let mut total = 0;
            loop {
                let n = s.read(&mut buf).unwrap();
                if n == 0 {
                    break;
                }
                total += n;
            }
            s.write_all(format!("got {total}").as_bytes()).unwrap();
        };
        let (_, peer) = match veth_pair(false, sink) {
            Ok(v) => v,
            Err(e) => return skip_capture(&e),
        };
        // The default 32 MiB ring: the reader may fall behind on a busy machine.
        let Some(mut ring) = opened(AfPacketRing::open(&AfPacketConfig::new("va", &[PORT]))) else {
            return;
        };
        // libpcap is read only after the ring: its buffer must hold the whole upload.
        let Some(mut cap) = opened(PcapLive::open(&PcapLiveConfig::new("va", &[PORT]))) else {
            return;
        };
        let to: SocketAddr = "[fd00:77::2]:8080".parse().unwrap();
        // Payload bytes of the upload, captured or reported as cut off.
        let accounted = |seen: &[Seen]| -> usize {
            let (covered, cut) = upload_coverage(seen);
            covered + cut
        };
        let readers = thread::spawn(move || {
            let by_ring = read_until(&mut ring, DEADLINE, |s| accounted(s) >= UPLOAD);
            let by_pcap = read_until(&mut cap, DEADLINE, |s| accounted(s) >= UPLOAD);
            (by_ring, by_pcap)
        });
        let mut s = TcpStream::connect_timeout(&to, Duration::from_secs(5)).unwrap();
        s.write_all(&vec![b'x'; UPLOAD]).unwrap();
        s.shutdown(std::net::Shutdown::Write).unwrap();
        let mut answer = String::new();
        s.read_to_string(&mut answer).unwrap();
        assert_eq!(answer, format!("got {UPLOAD}"));
        let (by_ring, by_pcap) = readers.join().unwrap();
        let report = |name: &str, seen: &[Seen]| {
            let (captured, missing) = upload_coverage(seen);
            let largest = seen.iter().map(|s| s.orig_len).max().unwrap_or(0);
            eprintln!(
                "{name}: {} packets, {captured} upload bytes captured, {missing} cut off, \
                 largest packet {largest} B",
                seen.len()
            );
            (captured, missing, largest)
        };
        // AF_PACKET: every super-packet whole (a 1 MiB block holds 192 KiB).
        let (captured, _, largest) = report("af_packet", &by_ring);
        assert_eq!(captured, UPLOAD, "af_packet lost upload bytes");
        assert!(by_ring.iter().all(|s| s.len == s.orig_len as usize));
        assert!(
            largest > 65_535,
            "no BIG TCP super-packet seen (largest {largest} B)"
        );
        // libpcap sizes its frames for 64 KiB packets: GSO packets up to that stay whole, BIG
        // TCP ones are cut at about 64 KiB -- and the cut is reported, never hidden.
        let (captured, missing, _) = report("pcap", &by_pcap);
        assert_eq!(captured + missing, UPLOAD, "pcap lost upload packets");
        for s in &by_pcap {
            if s.orig_len <= 65_535 {
                assert_eq!(s.len, s.orig_len as usize, "pcap cut a packet under 64 KiB");
            }
        }
        peer.finish();
    });
}
