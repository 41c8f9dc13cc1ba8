//! Building Ethernet (optionally 802.1Q-tagged) / IPv4 or IPv6 / TCP frames, and a small
//! decoder of exactly those frames for tests and checks.
//!
//! Lengths are always right (IPv4 total length, IPv6 payload length, TCP data offset); the IPv4
//! header checksum is computed because it is cheap; the TCP checksum is left 0 (capture tools
//! don't validate it by default, and NICs with TX offload produce the same on real captures).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// TCP flag FIN.
pub const FIN: u8 = 0x01;
/// TCP flag SYN.
pub const SYN: u8 = 0x02;
/// TCP flag RST.
pub const RST: u8 = 0x04;
/// TCP flag PSH.
pub const PSH: u8 = 0x08;
/// TCP flag ACK.
pub const ACK: u8 = 0x10;

/// Largest TCP payload the generator puts in one segment.
pub const MSS: usize = 1448;

/// Addresses of one TCP connection as seen on the wire.
#[derive(Debug, Clone)]
pub struct Flow {
    /// Client IP (v4 or v6, same family as `server_ip`).
    pub client_ip: IpAddr,
    /// Client (ephemeral) port.
    pub client_port: u16,
    /// Server IP.
    pub server_ip: IpAddr,
    /// Server port (80 or 8080 in the workloads).
    pub server_port: u16,
    /// MAC of the client side.
    pub client_mac: [u8; 6],
    /// MAC of the server side.
    pub server_mac: [u8; 6],
    /// 802.1Q VLAN id when the frames are tagged.
    pub vlan: Option<u16>,
}

/// One TCP segment to put on the wire.
#[derive(Debug, Clone, Copy)]
pub struct Segment<'a> {
    /// Sent by the client (else by the server).
    pub from_client: bool,
    /// TCP flags.
    pub flags: u8,
    /// Sequence number.
    pub seq: u32,
    /// Acknowledgement number (meaningful with ACK).
    pub ack: u32,
    /// IPv4 identification field.
    pub ip_id: u16,
    /// Payload bytes.
    pub payload: &'a [u8],
}

/// Appends the Ethernet frame of `seg` on `flow` to `buf` (which is cleared first).
pub fn build(buf: &mut Vec<u8>, flow: &Flow, seg: &Segment<'_>) {
    buf.clear();
    let (src_mac, dst_mac) = if seg.from_client {
        (flow.client_mac, flow.server_mac)
    } else {
        (flow.server_mac, flow.client_mac)
    };
    buf.extend_from_slice(&dst_mac);
    buf.extend_from_slice(&src_mac);
    if let Some(vid) = flow.vlan {
        buf.extend_from_slice(&0x8100u16.to_be_bytes());
        buf.extend_from_slice(&(vid & 0x0fff).to_be_bytes());
    }
    let syn = seg.flags & SYN != 0;
    // SYN and SYN-ACK carry the MSS option (kind 2, len 4): a 24-byte TCP header.
    let tcp_len = if syn { 24 } else { 20 };
    let (src_ip, dst_ip, sport, dport) = if seg.from_client {
        (
            flow.client_ip,
            flow.server_ip,
            flow.client_port,
            flow.server_port,
        )
    } else {
        (
            flow.server_ip,
            flow.client_ip,
            flow.server_port,
            flow.client_port,
        )
    };
    match (src_ip, dst_ip) {
        (IpAddr::V4(s), IpAddr::V4(d)) => {
            buf.extend_from_slice(&0x0800u16.to_be_bytes());
            let start = buf.len();
            let total = (20 + tcp_len + seg.payload.len()) as u16;
            buf.extend_from_slice(&[0x45, 0]);
            buf.extend_from_slice(&total.to_be_bytes());
            buf.extend_from_slice(&seg.ip_id.to_be_bytes());
            buf.extend_from_slice(&[0x40, 0, 64, 6, 0, 0]); // DF, TTL 64, TCP, checksum
            buf.extend_from_slice(&s.octets());
            buf.extend_from_slice(&d.octets());
            let csum = ipv4_checksum(&buf[start..start + 20]);
            buf[start + 10..start + 12].copy_from_slice(&csum.to_be_bytes());
        }
        (IpAddr::V6(s), IpAddr::V6(d)) => {
            buf.extend_from_slice(&0x86DDu16.to_be_bytes());
            buf.extend_from_slice(&[0x60, 0, 0, 0]);
            buf.extend_from_slice(&((tcp_len + seg.payload.len()) as u16).to_be_bytes());
            buf.extend_from_slice(&[6, 64]);
            buf.extend_from_slice(&s.octets());
            buf.extend_from_slice(&d.octets());
        }
        _ => panic!("flow mixes IPv4 and IPv6"),
    }
    buf.extend_from_slice(&sport.to_be_bytes());
    buf.extend_from_slice(&dport.to_be_bytes());
    buf.extend_from_slice(&seg.seq.to_be_bytes());
    buf.extend_from_slice(&seg.ack.to_be_bytes());
    buf.push(((tcp_len / 4) as u8) << 4);
    buf.push(seg.flags);
    buf.extend_from_slice(&65535u16.to_be_bytes()); // window
    buf.extend_from_slice(&[0, 0, 0, 0]); // checksum (not computed), urgent pointer
    if syn {
        buf.extend_from_slice(&[2, 4]);
        buf.extend_from_slice(&(MSS as u16).to_be_bytes());
    }
    buf.extend_from_slice(seg.payload);
}

fn ipv4_checksum(h: &[u8]) -> u16 {
    let mut sum: u32 = 0;
    for c in h.chunks(2) {
        sum += u16::from_be_bytes([c[0], c[1]]) as u32;
    }
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

/// A decoded TCP frame (see [`decode`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decoded<'a> {
    /// VLAN id if tagged.
    pub vlan: Option<u16>,
    /// Source address.
    pub src: (IpAddr, u16),
    /// Destination address.
    pub dst: (IpAddr, u16),
    /// Sequence number.
    pub seq: u32,
    /// Acknowledgement number.
    pub ack: u32,
    /// Flags.
    pub flags: u8,
    /// TCP payload.
    pub payload: &'a [u8],
}

/// Decodes an Ethernet/(VLAN)/IPv4|IPv6/TCP frame, checking that every length field agrees with
/// the frame's size. Returns an error string naming the first inconsistency.
pub fn decode(frame: &[u8]) -> Result<Decoded<'_>, String> {
    let mut p = 12;
    let get16 = |b: &[u8], at: usize| -> Result<u16, String> {
        b.get(at..at + 2)
            .map(|s| u16::from_be_bytes([s[0], s[1]]))
            .ok_or_else(|| format!("truncated at {at}"))
    };
    let mut ethertype = get16(frame, p)?;
    p += 2;
    let mut vlan = None;
    if ethertype == 0x8100 {
        vlan = Some(get16(frame, p)? & 0x0fff);
        ethertype = get16(frame, p + 2)?;
        p += 4;
    }
    let (src_ip, dst_ip, tcp_start, ip_end) = match ethertype {
        0x0800 => {
            let ip = frame.get(p..p + 20).ok_or("short IPv4 header")?;
            if ip[0] != 0x45 || ip[9] != 6 {
                return Err("not IPv4/TCP without options".into());
            }
            if ipv4_checksum(ip) != 0 {
                return Err("bad IPv4 header checksum".into());
            }
            let total = u16::from_be_bytes([ip[2], ip[3]]) as usize;
            let s = Ipv4Addr::new(ip[12], ip[13], ip[14], ip[15]);
            let d = Ipv4Addr::new(ip[16], ip[17], ip[18], ip[19]);
            (IpAddr::V4(s), IpAddr::V4(d), p + 20, p + total)
        }
        0x86DD => {
            let ip = frame.get(p..p + 40).ok_or("short IPv6 header")?;
            if ip[0] >> 4 != 6 || ip[6] != 6 {
                return Err("not IPv6/TCP".into());
            }
            let plen = u16::from_be_bytes([ip[4], ip[5]]) as usize;
            let s: [u8; 16] = ip[8..24].try_into().unwrap();
            let d: [u8; 16] = ip[24..40].try_into().unwrap();
            (
                IpAddr::V6(Ipv6Addr::from(s)),
                IpAddr::V6(Ipv6Addr::from(d)),
                p + 40,
                p + 40 + plen,
            )
        }
        t => return Err(format!("unexpected ethertype {t:#06x}")),
    };
    if ip_end != frame.len() {
        return Err(format!(
            "IP length says {ip_end}, frame has {}",
            frame.len()
        ));
    }
    let tcp = frame
        .get(tcp_start..tcp_start + 20)
        .ok_or("short TCP header")?;
    let doff = (tcp[12] >> 4) as usize * 4;
    if doff < 20 || tcp_start + doff > ip_end {
        return Err("bad TCP data offset".into());
    }
    Ok(Decoded {
        vlan,
        src: (src_ip, u16::from_be_bytes([tcp[0], tcp[1]])),
        dst: (dst_ip, u16::from_be_bytes([tcp[2], tcp[3]])),
        seq: u32::from_be_bytes(tcp[4..8].try_into().unwrap()),
        ack: u32::from_be_bytes(tcp[8..12].try_into().unwrap()),
        flags: tcp[13],
        payload: &frame[tcp_start + doff..ip_end],
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn flow(v6: bool, vlan: Option<u16>) -> Flow {
        let (c, s) = if v6 {
            (
                IpAddr::V6("fd00::1".parse().unwrap()),
                IpAddr::V6("fd00::2".parse().unwrap()),
            )
        } else {
            (
                IpAddr::V4([10, 0, 0, 1].into()),
                IpAddr::V4([10, 0, 0, 2].into()),
            )
        };
        Flow {
            client_ip: c,
            client_port: 40000,
            server_ip: s,
            server_port: 80,
            client_mac: [2, 0, 0, 0, 0, 1],
            server_mac: [2, 0, 0, 0, 0, 2],
            vlan,
        }
    }

    #[test]
    fn round_trip_all_shapes() {
        let mut buf = Vec::new();
        for (v6, vlan) in [
            (false, None),
            (true, None),
            (false, Some(100)),
            (true, Some(4000)),
        ] {
            let f = flow(v6, vlan);
            for (flags, payload) in [(SYN, &b""[..]), (ACK | PSH, &b"GET / HTTP/1.1\r\n\r\n"[..])] {
                let seg = Segment {
                    from_client: false,
                    flags,
                    seq: 7,
                    ack: 9,
                    ip_id: 3,
                    payload,
                };
                build(&mut buf, &f, &seg);
                let l3 = if v6 { 40 } else { 20 };
                let l4 = if flags & SYN != 0 { 24 } else { 20 };
                let l2 = if vlan.is_some() { 18 } else { 14 };
                assert_eq!(buf.len(), l2 + l3 + l4 + payload.len());
                let d = decode(&buf).unwrap();
                assert_eq!(d.vlan, vlan);
                assert_eq!(d.src, (f.server_ip, 80));
                assert_eq!(d.dst, (f.client_ip, 40000));
                assert_eq!((d.seq, d.ack, d.flags, d.payload), (7, 9, flags, payload));
            }
        }
    }
}
