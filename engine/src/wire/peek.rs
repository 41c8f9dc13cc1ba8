//! Cheap looks at the common frame layouts: a frame's flow (its IP addresses and TCP ports)
//! for sharding, and the whole segment for the decoder's fast path, read from fixed offsets.
//!
//! Sharding needs only a frame's addresses and ports, and the reader that sends every frame
//! to its worker ([`shard_of`](crate::shard::shard_of)) would otherwise run the full
//! [`decode_tcp`](super::decode_tcp) on every frame just to learn where it goes. [`peek_flow`] reads the addresses and ports where the common layouts put
//! them — Ethernet without VLAN tags, Linux cooked v1/v2, raw IP; IPv4 without options
//! beyond its IHL, IPv6 with TCP as the first next header — and gives up (`None`) on
//! anything else (tags, tunnels, PPPoE, extension headers, fragments, short frames), where
//! the caller falls back to the full decode.
//!
//! Contract (tested against `decode_tcp` on every fixture and on random and mutated frames):
//! - it never panics and never reads outside `frame`;
//! - **when it returns `Some` and `decode_tcp` returns `Ok`, both name the same source and
//!   destination address and port.** When `decode_tcp` fails on a frame `peek_flow` accepted
//!   (a cut or lying TCP header, say), the peek still names *some* flow; callers must not
//!   read more into it than "where to send this frame". It checks only what it needs to find
//!   the fields, not what makes the segment valid.
//!
//! [`decode_common`] is [`decode_tcp`](super::decode_tcp)'s fast path for the same layouts
//! (nearly every frame of a real capture): the whole segment read at fixed offsets, without
//! the views and the per-layer error bookkeeping. Contract (tested against the full decode on
//! every fixture, every prefix, and random and mutated frames): **when it returns `Some(seg)`,
//! the full decode returns `Ok(seg)`** — the same segment, field for field. It returns `None`
//! for anything it does not handle *and* for anything the full decode would refuse (a cut or
//! lying header, a fragment, another protocol), so errors are always worded and counted by the
//! full decode.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use super::{ethernet::ethertype, protocol, LinkType, TcpFlags, TcpSegment};

/// A frame's addresses and ports as [`peek_flow`] found them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FlowPeek {
    /// Source IP address.
    pub src: IpAddr,
    /// Destination IP address.
    pub dst: IpAddr,
    /// Source TCP port.
    pub src_port: u16,
    /// Destination TCP port.
    pub dst_port: u16,
}

/// Ethernet II header without tags: the EtherType ends it.
const ETHERNET_LEN: usize = 14;
/// Linux cooked v1: the protocol is its last two bytes.
const SLL_LEN: usize = 16;
/// Linux cooked v2: the protocol is its first two bytes.
const SLL2_LEN: usize = 20;
/// The fixed IPv6 header.
const IPV6_LEN: usize = 40;

/// The addresses and ports of the TCP segment in `frame`, for the common layouts only (see
/// the module docs); `None` means "decode it fully to know".
#[inline]
pub fn peek_flow(link: LinkType, frame: &[u8]) -> Option<FlowPeek> {
    match common_ip(link, frame)? {
        (ethertype::IPV4, packet) => peek_ipv4(packet),
        (ethertype::IPV6, packet) => peek_ipv6(packet),
        _ => None,
    }
}

/// The IP packet of a frame whose link layer has a fixed length (Ethernet without tags,
/// Linux cooked v1/v2, raw IP), and the EtherType saying which IP it is: where the full
/// decode finds the packet for these layouts when the EtherType is IPv4 or IPv6.
#[inline]
fn common_ip(link: LinkType, frame: &[u8]) -> Option<(u16, &[u8])> {
    Some(match link {
        LinkType::Ethernet => (be16_at(frame, 12)?, frame.get(ETHERNET_LEN..)?),
        LinkType::LinuxSll => (be16_at(frame, 14)?, frame.get(SLL_LEN..)?),
        LinkType::LinuxSll2 => (be16_at(frame, 0)?, frame.get(SLL2_LEN..)?),
        LinkType::Raw => match frame.first()? >> 4 {
            4 => (ethertype::IPV4, frame),
            6 => (ethertype::IPV6, frame),
            _ => return None,
        },
        LinkType::Ipv4 => (ethertype::IPV4, frame),
        LinkType::Ipv6 => (ethertype::IPV6, frame),
        LinkType::Null | LinkType::Loop | LinkType::CiscoHdlc => return None,
    })
}

/// The TCP segment in `frame` for the common layouts — IPv4 (options allowed, not a
/// fragment) or IPv6 with TCP as the first next header, under the link layers
/// [`peek_flow`] reads — when the full decode would decode it; `None` otherwise (the full
/// decode then decides, and words any error). See the module docs for the contract.
#[inline]
pub fn decode_common(link: LinkType, frame: &[u8]) -> Option<TcpSegment<'_>> {
    match common_ip(link, frame)? {
        (ethertype::IPV4, packet) => decode_ipv4(packet),
        (ethertype::IPV6, packet) => decode_ipv6(packet),
        _ => None,
    }
}

/// `ipv4::decode` then `tcp::decode`, for a packet on which neither fails.
#[inline]
fn decode_ipv4(p: &[u8]) -> Option<TcpSegment<'_>> {
    let head: &[u8; 20] = p.first_chunk()?;
    let ihl = usize::from(head[0] & 0x0f) * 4;
    let total = usize::from(u16::from_be_bytes([head[2], head[3]]));
    let fragment = u16::from_be_bytes([head[6], head[7]]) & 0x3fff != 0;
    // The full decode's refusals: wrong version, IHL below 5, a total length that does not
    // cover the header, a header cut short, not TCP, a fragment.
    if head[0] >> 4 != 4
        || ihl < 20
        || (total != 0 && total < ihl)
        || p.len() < ihl
        || head[9] != protocol::TCP
        || fragment
    {
        return None;
    }
    // The IP length bounds the payload (padding is not payload); 0 means "the frame".
    let end = if total == 0 {
        p.len()
    } else {
        total.min(p.len())
    };
    decode_tcp_header(IpView {
        src: IpAddr::V4(Ipv4Addr::new(head[12], head[13], head[14], head[15])),
        dst: IpAddr::V4(Ipv4Addr::new(head[16], head[17], head[18], head[19])),
        data: p.get(ihl..end)?,
        // At most 65535: a u16 minus a length.
        missing: total.saturating_sub(p.len()) as u32,
    })
}

/// `ipv6::upper` (TCP as the first next header) then `tcp::decode`, for a packet on which
/// neither fails.
#[inline]
fn decode_ipv6(p: &[u8]) -> Option<TcpSegment<'_>> {
    let head: &[u8; IPV6_LEN] = p.first_chunk()?;
    if head[0] >> 4 != 6 || head[6] != protocol::TCP {
        return None;
    }
    // The payload length bounds the payload; 0 means "the frame" (nothing is then missing).
    let (end, missing) = match usize::from(u16::from_be_bytes([head[4], head[5]])) {
        0 => (p.len(), 0),
        n => (
            (IPV6_LEN + n).min(p.len()),
            (IPV6_LEN + n).saturating_sub(p.len()),
        ),
    };
    let addr = |at: usize| {
        let mut bytes = [0u8; 16];
        bytes.copy_from_slice(&head[at..at + 16]);
        IpAddr::V6(Ipv6Addr::from(bytes))
    };
    decode_tcp_header(IpView {
        src: addr(8),
        dst: addr(24),
        data: p.get(IPV6_LEN..end)?,
        // At most 65535: a u16 minus a length.
        missing: missing as u32,
    })
}

/// What the IP layer hands TCP on the fast path.
struct IpView<'a> {
    src: IpAddr,
    dst: IpAddr,
    data: &'a [u8],
    missing: u32,
}

/// `tcp::decode` for TCP bytes on which it does not fail (a data offset below 5, or a
/// header cut short, is the full decode's to word).
#[inline]
fn decode_tcp_header(ip: IpView<'_>) -> Option<TcpSegment<'_>> {
    let th: &[u8; 20] = ip.data.first_chunk()?;
    let offset = usize::from(th[12] >> 4) * 4;
    if offset < 20 {
        return None;
    }
    Some(TcpSegment {
        src: ip.src,
        dst: ip.dst,
        src_port: u16::from_be_bytes([th[0], th[1]]),
        dst_port: u16::from_be_bytes([th[2], th[3]]),
        seq: u32::from_be_bytes([th[4], th[5], th[6], th[7]]),
        ack: u32::from_be_bytes([th[8], th[9], th[10], th[11]]),
        flags: TcpFlags::from_bits(th[13]),
        payload: ip.data.get(offset..)?,
        missing: ip.missing,
    })
}

/// IPv4 carrying TCP directly, not a fragment: the addresses at 12..20, the ports right
/// after the IHL.
#[inline]
fn peek_ipv4(p: &[u8]) -> Option<FlowPeek> {
    let head: &[u8; 20] = p.get(..20)?.try_into().ok()?;
    let (version, ihl) = (head[0] >> 4, usize::from(head[0] & 0x0f) * 4);
    // Flags and fragment offset: MF set or an offset means a fragment (the full decode
    // counts those); DF is ignored.
    let fragment = u16::from_be_bytes([head[6], head[7]]) & 0x3fff != 0;
    if version != 4 || ihl < 20 || head[9] != protocol::TCP || fragment {
        return None;
    }
    let ports = p.get(ihl..ihl + 4)?;
    Some(FlowPeek {
        src: IpAddr::V4(Ipv4Addr::new(head[12], head[13], head[14], head[15])),
        dst: IpAddr::V4(Ipv4Addr::new(head[16], head[17], head[18], head[19])),
        src_port: u16::from_be_bytes([ports[0], ports[1]]),
        dst_port: u16::from_be_bytes([ports[2], ports[3]]),
    })
}

/// IPv6 whose first next header is TCP: the addresses at 8..40, the ports at 40..44.
#[inline]
fn peek_ipv6(p: &[u8]) -> Option<FlowPeek> {
    let head: &[u8; IPV6_LEN + 4] = p.get(..IPV6_LEN + 4)?.try_into().ok()?;
    if head[0] >> 4 != 6 || head[6] != protocol::TCP {
        return None;
    }
    let addr = |at: usize| {
        let mut bytes = [0u8; 16];
        bytes.copy_from_slice(&head[at..at + 16]);
        IpAddr::V6(Ipv6Addr::from(bytes))
    };
    Some(FlowPeek {
        src: addr(8),
        dst: addr(24),
        src_port: u16::from_be_bytes([head[40], head[41]]),
        dst_port: u16::from_be_bytes([head[42], head[43]]),
    })
}

/// The big-endian `u16` at `at`, if the frame has it.
#[inline]
fn be16_at(frame: &[u8], at: usize) -> Option<u16> {
    let b = frame.get(at..at + 2)?;
    Some(u16::from_be_bytes([b[0], b[1]]))
}
