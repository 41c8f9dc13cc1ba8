//! Overlay encapsulations of Kubernetes networks, unwrapped to the inner packet
//! so a node's interfaces show the pods' TCP flows: IP-in-IP (IPv4 protocol 4,
//! and 6in4, protocol 41; Calico's IPIP mode), GRE (protocol 47, RFC 2784/2890:
//! IPv4, IPv6 or transparent Ethernet inside), VXLAN (UDP port 4789, RFC 7348;
//! Flannel, Calico's VXLAN mode, Cilium) and Geneve (UDP port 6081, RFC 8926;
//! OVN, Cilium).
//!
//! The outer packet may be IPv4 or IPv6 (after its extension headers: VXLAN,
//! Geneve and GRE over IPv6, IP-in-IPv6 (4in6, protocol 4) and IPv6-in-IPv6
//! (protocol 41)); at most [`MAX_DEPTH`] layers are unwrapped. A fragmented
//! outer packet is not unwrapped (counted as not TCP). The outer packet's own
//! addresses are dropped: the flow is the inner one. Decoding inner headers
//! uses the same checked views, so the panic contract holds. Live capture's
//! kernel filter lets these encapsulations through whatever the inner port
//! (`capture::ENCAP_FILTER`); the flow table keeps the monitored ports.

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
    inner_payload(proto, ip.payload())
}

/// The packet inside the payload `p` of an IPv4 or IPv6 packet whose (upper-layer)
/// protocol is `proto`: `None` when it is not an encapsulation this module unwraps.
pub(crate) fn inner_payload(proto: u8, p: &[u8]) -> Option<Result<(Network, &[u8]), DecodeError>> {
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

#[cfg(test)]
#[path = "encap_fixtures.rs"]
mod fixtures;

#[cfg(test)]
pub(crate) mod tests {
    use std::net::IpAddr;

    pub(crate) use super::fixtures::{FIXTURES, INNER_PAYLOAD};
    use crate::wire::{decode_tcp, DecodeError, LinkType};

    #[test]
    fn every_encapsulation_unwraps_to_the_inner_segment() {
        for (name, packet, version) in FIXTURES {
            let seg = decode_tcp(LinkType::Raw, packet).unwrap_or_else(|e| panic!("{name}: {e:?}"));
            let (src, dst): (IpAddr, IpAddr) = if *version == 4 {
                ("10.1.0.1".parse().unwrap(), "10.1.0.2".parse().unwrap())
            } else {
                ("fd00::1".parse().unwrap(), "fd00::2".parse().unwrap())
            };
            assert_eq!((seg.src, seg.dst), (src, dst), "{name}");
            assert_eq!((seg.src_port, seg.dst_port), (40000, 8080), "{name}");
            assert_eq!(seg.seq, 1000, "{name}");
            assert_eq!(seg.payload, INNER_PAYLOAD, "{name}");
            assert_eq!(seg.missing, 0, "{name}");
        }
    }

    #[test]
    fn cut_encapsulated_packets_are_errors_never_panics() {
        for (name, packet, _) in FIXTURES {
            for len in 0..packet.len() {
                // Any prefix either decodes (the IP length says more is missing) or is an error.
                let _ = decode_tcp(LinkType::Raw, &packet[..len]);
            }
            assert!(decode_tcp(LinkType::Raw, packet).is_ok(), "{name}");
        }
    }

    #[test]
    fn ipv6_outer_fragments_and_other_protocols_are_not_unwrapped() {
        let (_, vxlan6, _) = FIXTURES
            .iter()
            .find(|(n, _, _)| *n == "vxlan_ipv6")
            .unwrap();
        // UDP to another port: plain UDP, not a tunnel.
        let mut other = vxlan6.to_vec();
        other[42..44].copy_from_slice(&53u16.to_be_bytes());
        assert!(matches!(
            decode_tcp(LinkType::Raw, &other),
            Err(DecodeError::NotTcp(17))
        ));
        // The VXLAN I flag clear: not VXLAN.
        let mut no_i = vxlan6.to_vec();
        no_i[48] = 0;
        assert!(matches!(
            decode_tcp(LinkType::Raw, &no_i),
            Err(DecodeError::NotTcp(17))
        ));
        // Behind a fragment header (first fragment, more to come): never unwrapped.
        let mut frag = vxlan6[..40].to_vec();
        frag[6] = 44;
        let plen = u16::from_be_bytes([frag[4], frag[5]]) + 8;
        frag[4..6].copy_from_slice(&plen.to_be_bytes());
        frag.extend_from_slice(&[17, 0, 0, 1, 0, 0, 0, 9]);
        frag.extend_from_slice(&vxlan6[40..]);
        assert!(decode_tcp(LinkType::Raw, &frag).is_err());
    }
}
