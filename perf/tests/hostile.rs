//! The hostile captures at tiny sizes: every frame decodes, the real exchanges are all there
//! (and tshark finds them when installed), each pattern has the shape it claims, and the same
//! seed gives the same bytes.

use sniffer_perf::frame::{decode, ACK, SYN};
use sniffer_perf::gen::hostile::{generate, HostileStats, Params, Pattern, SMALL_SEG};
use sniffer_perf::pcap::PcapReader;
use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr};
use std::process::Command;

const HOSTILE_SERVER: IpAddr = IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1));
const REAL_SERVER: IpAddr = IpAddr::V4(Ipv4Addr::new(10, 0, 0, 2));

fn params(p: Pattern) -> Params {
    let size = match p {
        Pattern::Heads60k => 6_000,
        Pattern::Heads15k => 3_000,
        Pattern::Pipelining => 40,
        Pattern::OooStorm => 9_000,
        Pattern::BodyFlood => 5_500,
        Pattern::HalfOpen | Pattern::Tiny => 0,
    };
    Params {
        conns: 70,
        size,
        real: 3,
        seed: 7,
    }
}

/// Everything one client sent to the hostile server: (offset from ISN + 1, payload) per packet.
#[derive(Default)]
struct ClientStream {
    isn: Option<u32>,
    segs: Vec<(u32, Vec<u8>)>,
}

impl ClientStream {
    /// The bytes in sequence order (segments sorted, no holes expected).
    fn bytes(&self) -> Vec<u8> {
        let mut s = self.segs.clone();
        s.sort_by_key(|x| x.0);
        s.into_iter().flat_map(|x| x.1).collect()
    }
}

struct Capture {
    stats: HostileStats,
    bytes: Vec<u8>,
    syns: u64,
    syn_acks: u64,
    /// Client streams to the hostile server, by client port and address.
    hostile: HashMap<(IpAddr, u16), ClientStream>,
    real_requests: Vec<u64>,
    real_responses: Vec<u64>,
    /// Capture time of the last hostile packet and of the first packet of the last real exchange.
    last_hostile_us: u64,
    last_real_syn_us: u64,
}

fn read(pattern: Pattern) -> Capture {
    let p = params(pattern);
    let (stats, bytes) = generate(pattern, &p, Vec::new()).unwrap();
    assert_eq!(stats.bytes as usize, bytes.len());
    let mut r = PcapReader::new(&bytes[..]).unwrap();
    let mut c = Capture {
        stats,
        bytes: bytes.clone(),
        syns: 0,
        syn_acks: 0,
        hostile: HashMap::new(),
        real_requests: Vec::new(),
        real_responses: Vec::new(),
        last_hostile_us: 0,
        last_real_syn_us: 0,
    };
    let mut n = 0u64;
    let mut last_ts = 0;
    while let Some(rec) = r.next_record().unwrap() {
        n += 1;
        assert!(rec.ts_us >= last_ts, "time goes backwards at packet {n}");
        last_ts = rec.ts_us;
        let d = decode(&rec.data).unwrap_or_else(|e| panic!("packet {n}: {e}"));
        let syn = d.flags & SYN != 0;
        let ack = d.flags & ACK != 0;
        c.syns += (syn && !ack) as u64;
        c.syn_acks += (syn && ack) as u64;
        if d.dst.0 == HOSTILE_SERVER || d.src.0 == HOSTILE_SERVER {
            c.last_hostile_us = rec.ts_us;
        }
        if d.dst.0 == HOSTILE_SERVER {
            let s = c.hostile.entry(d.src).or_default();
            if syn {
                s.isn = Some(d.seq);
            } else if !d.payload.is_empty() {
                let off = d
                    .seq
                    .wrapping_sub(s.isn.expect("data before SYN").wrapping_add(1));
                s.segs.push((off, d.payload.to_vec()));
            }
        }
        if d.dst.0 == REAL_SERVER && syn {
            c.last_real_syn_us = rec.ts_us;
        }
        let text = String::from_utf8_lossy(d.payload);
        if let Some(rest) = text.strip_prefix("GET /real/") {
            assert_eq!(d.dst.0, REAL_SERVER);
            let num: String = rest.chars().take_while(|c| c.is_ascii_digit()).collect();
            c.real_requests.push(num.parse().unwrap());
        }
        if text.starts_with("HTTP/1.1 200 OK") && d.src.0 == REAL_SERVER {
            let at = text.find("X-Real: ").expect("real response without X-Real");
            let num: String = text[at + 8..]
                .chars()
                .take_while(|c| c.is_ascii_digit())
                .collect();
            c.real_responses.push(num.parse().unwrap());
        }
    }
    assert_eq!(n, c.stats.packets);
    c
}

fn check_common(pattern: Pattern, c: &Capture) {
    let p = params(pattern);
    let want: Vec<u64> = (0..=p.real).collect();
    assert_eq!(c.real_requests, want, "{pattern:?}: real requests");
    assert_eq!(c.real_responses, want, "{pattern:?}: real responses");
    assert_eq!(c.stats.real_exchanges, p.real + 1);
    assert_eq!(c.syns, p.conns + p.real + 1, "{pattern:?}: SYNs");
    assert_eq!(c.syn_acks, p.conns + p.real + 1, "{pattern:?}: SYN-ACKs");
    // The last real exchange comes after every hostile packet, after the pattern's pause.
    assert!(
        c.last_real_syn_us >= c.last_hostile_us + pattern.final_pause_us(),
        "{pattern:?}: last real exchange too early"
    );
    // Deterministic.
    let (_, again) = generate(pattern, &p, Vec::new()).unwrap();
    assert!(again == c.bytes, "{pattern:?}: same seed, different bytes");
}

fn count(hay: &[u8], needle: &[u8]) -> usize {
    hay.windows(needle.len()).filter(|w| *w == needle).count()
}

#[test]
fn every_pattern_is_valid_and_holds_its_real_exchanges() {
    for pattern in Pattern::ALL {
        let p = params(pattern);
        let c = read(pattern);
        check_common(pattern, &c);
        let streams: Vec<Vec<u8>> = c.hostile.values().map(|s| s.bytes()).collect();
        match pattern {
            Pattern::Heads60k | Pattern::Heads15k => {
                assert_eq!(streams.len() as u64, p.conns);
                for s in &streams {
                    assert_eq!(s.len() as u64, p.size);
                    assert!(s.starts_with(b"GET /slow/"));
                    assert_eq!(count(s, b"\r\n\r\n"), 0, "a head ended");
                }
            }
            Pattern::Pipelining => {
                for s in &streams {
                    assert_eq!(count(s, b"GET /p/") as u64, p.size);
                    assert_eq!(count(s, b"\r\n\r\n") as u64, p.size);
                }
                assert_eq!(streams.len() as u64, p.conns);
            }
            Pattern::HalfOpen => {
                // SYN only from the clients: no data, no ACK.
                assert!(c.hostile.values().all(|s| s.segs.is_empty()));
                assert_eq!(c.hostile.len() as u64, p.conns);
            }
            Pattern::Tiny => {
                assert_eq!(c.stats.hostile_exchanges_complete, p.conns);
                for s in &streams {
                    assert!(s.starts_with(b"GET /t/") && s.ends_with(b"\r\n\r\n"));
                }
            }
            Pattern::OooStorm => {
                for s in c.hostile.values() {
                    let mut offs: Vec<u32> = s.segs.iter().map(|x| x.0).collect();
                    let total: usize = s.segs.iter().map(|x| x.1.len()).sum();
                    assert!(offs.iter().all(|o| (*o as usize).is_multiple_of(SMALL_SEG)));
                    // Every 8th segment, from the first, is a hole; the rest arrive shuffled.
                    assert!(offs
                        .iter()
                        .all(|o| !(*o as usize / SMALL_SEG).is_multiple_of(8)));
                    let in_order = offs.windows(2).all(|w| w[0] < w[1]);
                    offs.sort_unstable();
                    offs.dedup();
                    assert_eq!(offs.len(), s.segs.len(), "a segment sent twice");
                    assert!(!in_order, "segments in order");
                    let nseg = (p.size as usize).div_ceil(SMALL_SEG);
                    assert_eq!(offs.len(), nseg - nseg.div_ceil(8));
                    assert!(total < p.size as usize);
                }
            }
            Pattern::BodyFlood => {
                for s in &streams {
                    assert!(s.starts_with(b"POST /upload/"));
                    let head_end = s.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4;
                    assert_eq!((s.len() - head_end) as u64, p.size);
                    assert!(count(s, b"Content-Length: 1073741824") == 1);
                }
            }
        }
    }
}

#[test]
fn tcpdump_and_tshark_read_the_captures() {
    let dir = std::env::temp_dir().join(format!("hostile-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    for pattern in [Pattern::Heads15k, Pattern::HalfOpen, Pattern::OooStorm] {
        let p = params(pattern);
        let path = dir.join(format!("{}.pcap", pattern.name()));
        let (stats, bytes) = generate(pattern, &p, Vec::new()).unwrap();
        std::fs::write(&path, bytes).unwrap();
        if let Ok(out) = Command::new("tcpdump")
            .arg("-n")
            .arg("-r")
            .arg(&path)
            .output()
        {
            assert!(
                out.status.success(),
                "tcpdump: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            let lines = out.stdout.iter().filter(|b| **b == b'\n').count() as u64;
            assert_eq!(lines, stats.packets, "{pattern:?}: tcpdump's packet count");
        } else {
            eprintln!("tcpdump not installed: skipped");
        }
        let Ok(out) = Command::new("tshark")
            .args(["-n", "-r"])
            .arg(&path)
            .args([
                "-Y",
                "http.request.uri contains \"/real/\"",
                "-T",
                "fields",
                "-e",
                "http.request.uri",
            ])
            .output()
        else {
            eprintln!("tshark not installed: skipped");
            continue;
        };
        assert!(
            out.status.success(),
            "tshark: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let uris: Vec<String> = String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(String::from)
            .collect();
        let want: Vec<String> = (0..=p.real).map(|n| format!("/real/{n}")).collect();
        assert_eq!(uris, want, "{pattern:?}: tshark's real requests");
    }
    let _ = std::fs::remove_dir_all(&dir);
}
