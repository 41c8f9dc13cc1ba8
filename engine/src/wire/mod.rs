//! Packet decoding: link layer, IPv4/IPv6, TCP — zero-copy.
//!
//! [`decode_tcp`] takes one captured frame and its [`LinkType`] and returns the
//! [`TcpSegment`] inside it; the segment's payload borrows from the frame. Anything that is not
//! a decodable TCP segment (ARP, UDP, a fragment, a cut-off or lying header) is a
//! [`DecodeError`], and [`DecodeStats::record`] counts it by reason. Nothing allocates.
//!
//! ```
//! use tcp_sniffer::wire::{decode_tcp, DecodeStats, LinkType};
//!
//! let link = LinkType::from_pcap(1).unwrap(); // LINKTYPE_ETHERNET
//! let mut stats = DecodeStats::default();
//! let frame = [0u8; 60]; // Ethernet, ethertype 0x0000: not IP
//! match decode_tcp(link, &frame) {
//!     Ok(segment) => println!("{}:{} {} bytes", segment.src, segment.src_port, segment.payload.len()),
//!     Err(err) => stats.record(&err),
//! }
//! assert_eq!(stats.not_ip, 1);
//! ```
//!
//! # Layout
//!
//! One file per protocol, each a zero-copy *view* over a byte buffer in the style of smoltcp's
//! `wire` module: [`ethernet`] (Ethernet II and 802.1Q/802.1ad VLAN tags), [`sll`] (Linux cooked
//! v1 and v2), [`loopback`] (BSD null and OpenBSD loop), [`pppoe`] (PPPoE sessions and Cisco
//! HDLC), [`ipv4`], [`ipv6`] (with extension headers), [`encap`] (IP-in-IP, GRE, VXLAN and
//! Geneve over IPv4, unwrapped to the inner flow) and [`tcp`]; [`peek`] finds just a frame's
//! addresses and ports for the common layouts, for sharding (no view, no checks beyond
//! bounds; its contract with `decode_tcp` is in its module docs). A view such as [`ipv4::Ipv4Packet<T: AsRef<[u8]>>`](ipv4::Ipv4Packet)
//! names its fields as byte ranges in a private `mod field` and reads each with a one-line
//! accessor.
//!
//! # The panic contract
//!
//! Every view has `new_unchecked`, `check_len` and `new_checked`. `check_len` proves that every
//! byte any accessor of the view reads lies inside the buffer, including ranges computed from
//! length fields (IPv4 IHL, TCP data offset, extension header lengths). **No accessor of a view
//! panics once `check_len` has returned `Ok`**, which is what `new_checked` does before handing
//! out the view. A view made with `new_unchecked` over a buffer that would fail `check_len` may
//! panic; it exists for buffers already checked. [`decode_tcp`] builds its views only with
//! `new_checked`, so it never panics on any input: the tests feed it every prefix of valid
//! frames and thousands of random and mutated frames for every link type.
//!
//! # Decisions
//!
//! - **The IP length bounds the payload.** IPv4 total length and IPv6 payload length, not the
//!   frame length, say where TCP payload ends, so Ethernet padding (a 54-byte ACK is padded to 60)
//!   and a trailing FCS never become payload.
//! - **Snaplen truncation is not an error, a cut header is.** If the frame holds fewer bytes than
//!   the IP length declares, the segment carries the bytes that are there and
//!   [`TcpSegment::missing`] says how many are not; reassembly treats those as a gap. If the cut
//!   falls inside any header (link, IP, extension or TCP), the result is
//!   [`DecodeError::Truncated`]. When the frame holds everything the IP length declares and a
//!   header still runs past that length, the length lies: [`MalformedReason::Length`].
//! - **Length zero means "see the frame".** Linux hands packet taps TSO/GSO super-packets; with
//!   BIG TCP (Linux 6.3+) those exceed 64 KiB and carry IPv4 total length 0 or IPv6 payload
//!   length 0. As tcpdump does, a zero IP length is taken to mean "everything the frame holds";
//!   such a segment never reports `missing`. An IPv6 jumbogram (payload length 0 with a Jumbo
//!   Payload option) decodes the same way; its hop-by-hop header is skipped like any other.
//! - **Fragments are counted and skipped, not reassembled.** TCP stacks set DF and use path-MTU
//!   discovery, and HTTP servers' TCP traffic is essentially never fragmented; reassembly would
//!   cost per-flow memory and open a denial-of-service surface (fragment floods, overlap games)
//!   for traffic that does not occur. A fragment is a loss the counters show:
//!   [`DecodeError::Ipv4Fragment`] (MF set or offset ≠ 0) and [`DecodeError::Ipv6Fragment`] (a
//!   Fragment header with offset ≠ 0 or M set; an *atomic* fragment, offset 0 and M clear, is
//!   decoded through). Only fragments of TCP count as fragments; fragments of other protocols
//!   are `NotTcp` when the protocol is visible.
//! - **Bounded loops.** At most [`ethernet::MAX_VLAN_TAGS`] stacked VLAN tags and
//!   [`ipv6::MAX_EXT_HEADERS`] IPv6 extension headers; more is
//!   [`MalformedReason::TooManyVlanTags`] / [`MalformedReason::TooManyExtHeaders`].
//! - **No checksums.** With TX checksum offload, a host captures its own packets before the NIC
//!   fills the checksum in, so checksums are not verified.
//! - **IPsec.** ESP (in IPv4 or IPv6) hides the TCP header: [`DecodeError::Esp`]. IPv6 AH is
//!   skipped like an extension header; IPv4 AH is not unwrapped (`NotTcp(51)`).
//! - **Loopback byte order.** BSD null carries the address family in the capturing host's byte
//!   order, so both orders are accepted; AF_INET is 2, AF_INET6 is 24, 28 or 30 depending on
//!   the BSD. The OpenBSD loop header is big-endian and accepts the same values.

use std::fmt;
use std::net::IpAddr;

pub mod encap;
pub mod ethernet;
pub mod ipv4;
pub mod ipv6;
pub mod loopback;
pub mod peek;
pub mod pppoe;
pub mod sll;
pub mod tcp;

pub use peek::{peek_flow, FlowPeek};
pub use tcp::TcpFlags;

/// The pcap `LINKTYPE_*` values we decode.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum LinkType {
    /// `LINKTYPE_ETHERNET` (1): Ethernet II, with any number (up to a bound) of VLAN tags.
    Ethernet,
    /// `LINKTYPE_NULL` (0): BSD loopback, a 4-byte address family in host byte order.
    Null,
    /// `LINKTYPE_LOOP` (108): OpenBSD loopback, a 4-byte big-endian address family.
    Loop,
    /// `LINKTYPE_RAW` (101, and `DLT_RAW` 12 / 14): raw IPv4 or IPv6, told apart by the
    /// version nibble.
    Raw,
    /// `LINKTYPE_IPV4` (228): raw IPv4.
    Ipv4,
    /// `LINKTYPE_IPV6` (229): raw IPv6.
    Ipv6,
    /// `LINKTYPE_LINUX_SLL` (113): Linux cooked capture v1 (16-byte header).
    LinuxSll,
    /// `LINKTYPE_LINUX_SLL2` (276): Linux cooked capture v2 (20-byte header).
    LinuxSll2,
    /// `LINKTYPE_C_HDLC` (104): Cisco HDLC (4-byte header ending in an ethertype).
    CiscoHdlc,
}

impl LinkType {
    /// Maps a pcap link-layer type (`LINKTYPE_*`, or the `DLT_*` value libpcap reports for a
    /// live capture) to a [`LinkType`]; `None` if we cannot decode it.
    pub fn from_pcap(linktype: i32) -> Option<LinkType> {
        Some(match linktype {
            0 => LinkType::Null,
            1 => LinkType::Ethernet,
            12 | 14 | 101 => LinkType::Raw,
            108 => LinkType::Loop,
            113 => LinkType::LinuxSll,
            228 => LinkType::Ipv4,
            229 => LinkType::Ipv6,
            276 => LinkType::LinuxSll2,
            104 => LinkType::CiscoHdlc,
            _ => return None,
        })
    }
}

/// One decoded TCP segment; `payload` borrows from the captured frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TcpSegment<'a> {
    /// Source IP address.
    pub src: IpAddr,
    /// Destination IP address.
    pub dst: IpAddr,
    /// Source TCP port.
    pub src_port: u16,
    /// Destination TCP port.
    pub dst_port: u16,
    /// Sequence number.
    pub seq: u32,
    /// Acknowledgement number (meaningful when `flags.ack()`).
    pub ack: u32,
    /// TCP flags.
    pub flags: TcpFlags,
    /// The TCP payload bytes present in the frame, bounded by the IP length (never padding).
    pub payload: &'a [u8],
    /// Payload bytes the IP length says exist but the capture cut off (snaplen); 0 normally.
    pub missing: u32,
}

/// The protocol layer a [`DecodeError`] refers to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Layer {
    /// Ethernet II header.
    Ethernet,
    /// 802.1Q / 802.1ad VLAN tag.
    Vlan,
    /// Linux cooked capture v1 header.
    Sll,
    /// Linux cooked capture v2 header.
    Sll2,
    /// PPPoE session header.
    Pppoe,
    /// Cisco HDLC header.
    CiscoHdlc,
    /// An encapsulation header (GRE, VXLAN, Geneve).
    Tunnel,
    /// BSD null loopback header.
    Null,
    /// OpenBSD loop header.
    Loop,
    /// An IP header whose version is not yet known (raw IP link type).
    Ip,
    /// IPv4 header (with options).
    Ipv4,
    /// IPv6 fixed header.
    Ipv6,
    /// IPv6 extension header.
    Ipv6Ext,
    /// TCP header (with options).
    Tcp,
}

impl fmt::Display for Layer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Layer::Ethernet => "Ethernet",
            Layer::Vlan => "VLAN",
            Layer::Sll => "Linux SLL",
            Layer::Sll2 => "Linux SLL2",
            Layer::Pppoe => "PPPoE",
            Layer::CiscoHdlc => "Cisco HDLC",
            Layer::Tunnel => "tunnel",
            Layer::Null => "BSD null",
            Layer::Loop => "OpenBSD loop",
            Layer::Ip => "IP",
            Layer::Ipv4 => "IPv4",
            Layer::Ipv6 => "IPv6",
            Layer::Ipv6Ext => "IPv6 extension",
            Layer::Tcp => "TCP",
        })
    }
}

/// Why a header is malformed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, thiserror::Error)]
#[non_exhaustive]
pub enum MalformedReason {
    /// The IP version nibble does not match the link layer's protocol, or (raw IP) is neither
    /// 4 nor 6.
    #[error("wrong IP version")]
    Version,
    /// A header length field is below its minimum (IPv4 IHL < 5, TCP data offset < 5).
    #[error("header length field below its minimum")]
    HeaderLength,
    /// A header runs past the length the IP header declares (IPv4 total length shorter than
    /// IHL, TCP data offset or an extension header beyond the IP payload).
    #[error("header runs past the declared IP length")]
    Length,
    /// More than [`ethernet::MAX_VLAN_TAGS`] stacked VLAN tags.
    #[error("too many stacked VLAN tags")]
    TooManyVlanTags,
    /// More than [`ipv6::MAX_EXT_HEADERS`] IPv6 extension headers.
    #[error("too many IPv6 extension headers")]
    TooManyExtHeaders,
}

/// Why a frame did not decode to a TCP segment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DecodeError {
    /// The capture ends inside a header of this layer.
    #[error("truncated {0} header")]
    Truncated(Layer),
    /// The link layer carries something other than IPv4/IPv6: the EtherType (Ethernet, VLAN,
    /// SLL, SLL2) or the address family (null, loop).
    #[error("not IP (link-layer protocol {0:#06x})")]
    NotIp(u32),
    /// The IP packet carries another protocol than TCP (the IP protocol / next header number).
    #[error("not TCP (IP protocol {0})")]
    NotTcp(u8),
    /// A fragment of a TCP-carrying IPv4 packet (MF set or fragment offset ≠ 0).
    #[error("IPv4 fragment")]
    Ipv4Fragment,
    /// A fragment of an IPv6 packet (Fragment header with offset ≠ 0 or M set).
    #[error("IPv6 fragment")]
    Ipv6Fragment,
    /// IPsec ESP: whatever it carries is encrypted.
    #[error("IPsec ESP (encrypted)")]
    Esp,
    /// A header field is inconsistent.
    #[error("malformed {layer} header: {reason}")]
    Malformed {
        /// The layer whose header is malformed.
        layer: Layer,
        /// What is wrong with it.
        reason: MalformedReason,
    },
}

/// Counters of frames that did not decode, one per reason.
#[derive(Debug, Default, Clone, PartialEq, Eq, serde::Serialize)]
pub struct DecodeStats {
    /// The capture ended inside a header ([`DecodeError::Truncated`]).
    pub truncated: u64,
    /// Not IPv4/IPv6 at the link layer: ARP, LLDP, … ([`DecodeError::NotIp`]).
    pub not_ip: u64,
    /// IP but not TCP: UDP, ICMP, … ([`DecodeError::NotTcp`]).
    pub not_tcp: u64,
    /// IPv4 fragments of TCP, skipped ([`DecodeError::Ipv4Fragment`]).
    pub ipv4_fragments: u64,
    /// IPv6 fragments, skipped ([`DecodeError::Ipv6Fragment`]).
    pub ipv6_fragments: u64,
    /// IPsec ESP, undecodable ([`DecodeError::Esp`]).
    pub esp: u64,
    /// Inconsistent headers ([`DecodeError::Malformed`]).
    pub malformed: u64,
}

impl DecodeStats {
    /// Counts one frame that failed with `err`.
    #[inline]
    pub fn record(&mut self, err: &DecodeError) {
        let counter = match err {
            DecodeError::Truncated(_) => &mut self.truncated,
            DecodeError::NotIp(_) => &mut self.not_ip,
            DecodeError::NotTcp(_) => &mut self.not_tcp,
            DecodeError::Ipv4Fragment => &mut self.ipv4_fragments,
            DecodeError::Ipv6Fragment => &mut self.ipv6_fragments,
            DecodeError::Esp => &mut self.esp,
            DecodeError::Malformed { .. } => &mut self.malformed,
        };
        *counter += 1;
    }

    /// Adds `other`'s counters to these (e.g. to sum the workers' stats).
    pub fn merge(&mut self, other: &DecodeStats) {
        // Destructured so that a new counter cannot be forgotten here.
        let DecodeStats {
            truncated,
            not_ip,
            not_tcp,
            ipv4_fragments,
            ipv6_fragments,
            esp,
            malformed,
        } = other;
        self.truncated += truncated;
        self.not_ip += not_ip;
        self.not_tcp += not_tcp;
        self.ipv4_fragments += ipv4_fragments;
        self.ipv6_fragments += ipv6_fragments;
        self.esp += esp;
        self.malformed += malformed;
    }

    /// All frames counted, whatever the reason.
    pub fn total(&self) -> u64 {
        let DecodeStats {
            truncated,
            not_ip,
            not_tcp,
            ipv4_fragments,
            ipv6_fragments,
            esp,
            malformed,
        } = self;
        truncated + not_ip + not_tcp + ipv4_fragments + ipv6_fragments + esp + malformed
    }
}

/// Decodes the TCP segment in one captured frame of link type `link`.
///
/// Never panics and never allocates, whatever `frame` holds. See the [module docs](self) for
/// how lengths, truncation and fragments are treated.
#[inline]
pub fn decode_tcp(link: LinkType, frame: &[u8]) -> Result<TcpSegment<'_>, DecodeError> {
    // Nearly every frame has one of the common layouts, read at fixed offsets; the rest, and
    // every frame that does not decode, take the full path (the same answer, see `peek`).
    match peek::decode_common(link, frame) {
        Some(segment) => Ok(segment),
        None => decode_tcp_full(link, frame),
    }
}

/// [`decode_tcp`] without its fast path: every layout, every error.
#[inline(never)]
pub(crate) fn decode_tcp_full(link: LinkType, frame: &[u8]) -> Result<TcpSegment<'_>, DecodeError> {
    let (network, packet) = match link {
        LinkType::Ethernet => ethernet::decode(frame)?,
        LinkType::LinuxSll => sll::decode_sll(frame)?,
        LinkType::LinuxSll2 => sll::decode_sll2(frame)?,
        LinkType::CiscoHdlc => pppoe::decode_cisco_hdlc(frame)?,
        LinkType::Null => loopback::decode_null(frame)?,
        LinkType::Loop => loopback::decode_loop(frame)?,
        LinkType::Raw => (raw_ip_version(frame)?, frame),
        LinkType::Ipv4 => (Network::Ipv4, frame),
        LinkType::Ipv6 => (Network::Ipv6, frame),
    };
    let (mut network, mut packet) = (network, packet);
    // Overlay encapsulations (IPv4 or IPv6 outer): unwrap to the inner flow, a bounded number
    // of times.
    for _ in 0..=encap::MAX_DEPTH {
        let ip = match network {
            Network::Ipv4 => match ipv4::decode(packet) {
                Err(DecodeError::NotTcp(proto)) => match encap::inner(proto, packet) {
                    Some(inner) => {
                        (network, packet) = inner?;
                        continue;
                    }
                    None => return Err(DecodeError::NotTcp(proto)),
                },
                r => r?,
            },
            Network::Ipv6 => match ipv6::upper(packet)? {
                (protocol::TCP, ip) => ip,
                (proto, ip) => match encap::inner_payload(proto, ip.data) {
                    Some(inner) => {
                        (network, packet) = inner?;
                        continue;
                    }
                    None => return Err(DecodeError::NotTcp(proto)),
                },
            },
        };
        return tcp::decode(ip);
    }
    Err(DecodeError::Malformed {
        layer: Layer::Tunnel,
        reason: MalformedReason::TooManyVlanTags,
    })
}

/// IP protocol / IPv6 next-header numbers this module knows.
pub mod protocol {
    /// IPv6 hop-by-hop options.
    pub const HOP_BY_HOP: u8 = 0;
    /// TCP.
    pub const TCP: u8 = 6;
    /// UDP.
    pub const UDP: u8 = 17;
    /// IPv6 routing header.
    pub const ROUTING: u8 = 43;
    /// IPv6 fragment header.
    pub const FRAGMENT: u8 = 44;
    /// IPsec Encapsulating Security Payload.
    pub const ESP: u8 = 50;
    /// IPsec Authentication Header.
    pub const AH: u8 = 51;
    /// ICMPv6.
    pub const ICMPV6: u8 = 58;
    /// IPv6 "no next header".
    pub const NO_NEXT_HEADER: u8 = 59;
    /// IPv6 destination options.
    pub const DESTINATION_OPTIONS: u8 = 60;
    /// Mobility header (RFC 6275).
    pub const MOBILITY: u8 = 135;
    /// Host Identity Protocol (RFC 7401).
    pub const HIP: u8 = 139;
    /// Shim6 (RFC 5533).
    pub const SHIM6: u8 = 140;
    /// Reserved for experimentation (RFC 3692).
    pub const EXPERIMENT_1: u8 = 253;
    /// Reserved for experimentation (RFC 3692).
    pub const EXPERIMENT_2: u8 = 254;
}

/// The network protocol a link layer says follows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Network {
    Ipv4,
    Ipv6,
}

impl Network {
    /// The network protocol an EtherType names.
    #[inline]
    pub(crate) fn from_ethertype(ethertype: u16) -> Result<Network, DecodeError> {
        match ethertype {
            ethernet::ethertype::IPV4 => Ok(Network::Ipv4),
            ethernet::ethertype::IPV6 => Ok(Network::Ipv6),
            other => Err(DecodeError::NotIp(u32::from(other))),
        }
    }
}

/// Raw IP: the version nibble tells IPv4 from IPv6.
#[inline]
fn raw_ip_version(frame: &[u8]) -> Result<Network, DecodeError> {
    match frame.first().map(|b| b >> 4) {
        Some(4) => Ok(Network::Ipv4),
        Some(6) => Ok(Network::Ipv6),
        Some(_) => Err(DecodeError::Malformed {
            layer: Layer::Ip,
            reason: MalformedReason::Version,
        }),
        None => Err(DecodeError::Truncated(Layer::Ip)),
    }
}

/// What an IP layer hands its upper layer.
#[derive(Debug, Clone, Copy)]
pub(crate) struct IpPayload<'a> {
    pub(crate) src: IpAddr,
    pub(crate) dst: IpAddr,
    /// Upper-layer bytes present in the frame, bounded by the IP length.
    pub(crate) data: &'a [u8],
    /// Bytes the IP length declares beyond `data` (cut off by the capture).
    pub(crate) missing: u32,
    /// False when the IP length was 0 (TSO/BIG TCP, jumbogram) and the frame length was used.
    pub(crate) length_known: bool,
}

impl IpPayload<'_> {
    /// A header that runs past `data` is truncated if the capture cut the packet short, but
    /// malformed if `data` is all the IP length declares.
    #[inline]
    pub(crate) fn refine(&self, err: DecodeError) -> DecodeError {
        match err {
            DecodeError::Truncated(layer) if self.length_known && self.missing == 0 => {
                DecodeError::Malformed {
                    layer,
                    reason: MalformedReason::Length,
                }
            }
            other => other,
        }
    }
}

/// Reads a big-endian `u16` from the first two bytes of `bytes`.
#[inline]
pub(crate) fn be16(bytes: &[u8]) -> u16 {
    u16::from_be_bytes([bytes[0], bytes[1]])
}

/// Reads a big-endian `u32` from the first four bytes of `bytes`.
#[inline]
pub(crate) fn be32(bytes: &[u8]) -> u32 {
    u32::from_be_bytes([bytes[0], bytes[1], bytes[2], bytes[3]])
}

#[cfg(test)]
mod tests;
