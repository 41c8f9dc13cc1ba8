//! Overlay encapsulations of Kubernetes networks, unwrapped to the inner packet
//! so a node's interfaces show the pods' TCP flows: IP-in-IP (IPv4 protocol 4,
//! and 6in4, protocol 41; Calico's IPIP mode), GRE (protocol 47, RFC 2784/2890:
//! IPv4, IPv6 or transparent Ethernet inside), VXLAN (UDP port 4789, RFC 7348;
//! Flannel, Calico's VXLAN mode, Cilium) and Geneve (UDP port 6081, RFC 8926;
//! OVN, Cilium).
//!
//! Only an IPv4 outer packet is unwrapped (the overlays above run over IPv4 on
//! almost every cluster) and at most [`MAX_DEPTH`] layers deep. The outer
//! packet's own addresses are dropped: the flow is the inner one. Decoding
//! inner headers uses the same checked views, so the panic contract holds.
//! Live capture's kernel filter matches TCP ports only: encapsulated traffic
//! reaches this decoder from files, or from a filter widened to match it.

use super::{be16, ethernet, ipv4::Ipv4Packet, protocol, DecodeError, Layer, Network};

/// Most encapsulation layers unwrapped in one frame.
pub const MAX_DEPTH: usize = 2;
/// VXLAN's IANA UDP port.
pub const VXLAN_PORT: u16 = 4789;
/// Geneve's IANA UDP port.
pub const GENEVE_PORT: u16 = 6081;
/// IP-in-IP (IPv4 inside).
pub const IPIP: u8 = 4;
/// IPv6 inside IPv4 (6in4).
pub const IPV6_IN_IP: u8 = 41;
/// Generic Routing Encapsulation.
pub const GRE: u8 = 47;
/// Ethertype of Ethernet inside GRE or Geneve (transparent Ethernet bridging).
const TEB: u16 = 0x6558;

fn truncated() -> DecodeError {
    DecodeError::Truncated(Layer::Tunnel)
}

/// The packet inside an IPv4 packet `outer` whose protocol is `proto`: `None`
/// when it is not an encapsulation this module unwraps (or is a fragment).
pub(crate) fn inner(proto: u8, outer: &[u8]) -> Option<Result<(Network, &[u8]), DecodeError>> {
    let ip = Ipv4Packet::new_checked(outer).ok()?;
    if ip.is_fragment() {
        return None;
    }
    let p = ip.payload();
    match proto {
        IPIP => Some(Ok((Network::Ipv4, p))),
        IPV6_IN_IP => Some(Ok((Network::Ipv6, p))),
        GRE => gre(p),
        protocol::UDP => udp(p),
        _ => None,
    }
}

/// GRE header: flags and version (2), protocol type (2), then 4 bytes each for
/// checksum (C), key (K) and sequence number (S) when their flag is set.
fn gre(p: &[u8]) -> Option<Result<(Network, &[u8]), DecodeError>> {
    if p.len() < 4 {
        return Some(Err(truncated()));
    }
    let flags = be16(&p[0..2]);
    // Version 0 only (1 is PPTP's enhanced GRE); no source routing (R, RFC 1701).
    if flags & 0x0007 != 0 || flags & 0x4000 != 0 {
        return None;
    }
    let len = 4 + [0x8000u16, 0x2000, 0x1000]
        .iter()
        .filter(|&&bit| flags & bit != 0)
        .count()
        * 4;
    let Some(rest) = p.get(len..) else {
        return Some(Err(truncated()));
    };
    by_ethertype(be16(&p[2..4]), rest)
}

fn by_ethertype(ethertype: u16, rest: &[u8]) -> Option<Result<(Network, &[u8]), DecodeError>> {
    match ethertype {
        ethernet::ethertype::IPV4 => Some(Ok((Network::Ipv4, rest))),
        ethernet::ethertype::IPV6 => Some(Ok((Network::Ipv6, rest))),
        TEB => Some(ethernet::decode(rest)),
        _ => None,
    }
}

/// UDP to the VXLAN or Geneve port.
fn udp(p: &[u8]) -> Option<Result<(Network, &[u8]), DecodeError>> {
    if p.len() < 8 {
        // The ports are unknown: it may have been a tunnel.
        return Some(Err(truncated()));
    }
    let body = &p[8..];
    match be16(&p[2..4]) {
        // VXLAN: flags (1, I bit 0x08 set), reserved (3), VNI (3), reserved (1), Ethernet.
        VXLAN_PORT => {
            if body.len() < 8 {
                return Some(Err(truncated()));
            }
            if body[0] & 0x08 == 0 {
                return None;
            }
            Some(ethernet::decode(&body[8..]))
        }
        // Geneve: version (2 bits, 0) and option length (6 bits, in 4-byte words), flags,
        // protocol type (2), VNI (3), reserved (1), options.
        GENEVE_PORT => {
            if body.len() < 8 {
                return Some(Err(truncated()));
            }
            if body[0] >> 6 != 0 {
                return None;
            }
            let len = 8 + usize::from(body[0] & 0x3f) * 4;
            let Some(rest) = body.get(len..) else {
                return Some(Err(truncated()));
            };
            by_ethertype(be16(&body[2..4]), rest)
        }
        _ => None,
    }
}
