//! IPv6 (RFC 8200) and its extension header chain.
//!
//! The chain is walked up to [`MAX_EXT_HEADERS`] headers: hop-by-hop options, routing,
//! destination options, mobility, HIP, shim6 and the experimental numbers 253/254 (all in the
//! common "next header, length in 8-byte units − 1" format), the Authentication Header (length
//! in 4-byte units − 2) and the Fragment header. A Fragment header with offset ≠ 0 or M set is
//! a fragment ([`DecodeError::Ipv6Fragment`]); an atomic fragment (offset 0, M clear) is decoded
//! through. ESP encrypts what follows ([`DecodeError::Esp`]); "no next header" (59) and any
//! other upper layer than TCP are [`DecodeError::NotTcp`].
//!
//! A payload length of 0 means a jumbogram or a BIG TCP super-packet: the payload is then what
//! the frame holds (the Jumbo Payload option is skipped with the hop-by-hop header).

use std::net::{IpAddr, Ipv6Addr};

use super::{be16, be32, protocol, DecodeError, IpPayload, Layer, MalformedReason};

/// Most extension headers we walk before calling the packet malformed.
pub const MAX_EXT_HEADERS: usize = 8;

mod field {
    use core::ops::{Range, RangeFrom};

    pub const VER_TC_FLOW: Range<usize> = 0..4;
    pub const LENGTH: Range<usize> = 4..6;
    pub const NXT_HDR: usize = 6;
    pub const HOP_LIMIT: usize = 7;
    pub const SRC_ADDR: Range<usize> = 8..24;
    pub const DST_ADDR: Range<usize> = 24..40;
    pub const PAYLOAD: RangeFrom<usize> = 40..;
}

/// Length of the IPv6 fixed header.
pub const HEADER_LEN: usize = field::PAYLOAD.start;

/// A zero-copy view of an IPv6 packet, possibly cut short by the capture.
///
/// [`check_len`](Self::check_len) requires the fixed header but not the whole payload:
/// [`payload`](Ipv6Packet::payload) is what is present up to the payload length, and
/// [`payload_missing`](Self::payload_missing) what the capture cut off.
#[derive(Debug, Clone, Copy)]
pub struct Ipv6Packet<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Ipv6Packet<T> {
    /// Wraps `buffer` without checking it; accessors may panic unless
    /// [`check_len`](Self::check_len) succeeds.
    #[inline]
    pub const fn new_unchecked(buffer: T) -> Self {
        Ipv6Packet { buffer }
    }

    /// Wraps `buffer` after [`check_len`](Self::check_len); no accessor of the result panics.
    #[inline]
    pub fn new_checked(buffer: T) -> Result<Self, DecodeError> {
        let packet = Self::new_unchecked(buffer);
        packet.check_len()?;
        Ok(packet)
    }

    /// Checks that the buffer holds the fixed header and that the version is 6.
    #[inline]
    pub fn check_len(&self) -> Result<(), DecodeError> {
        if self.buffer.as_ref().len() < HEADER_LEN {
            return Err(DecodeError::Truncated(Layer::Ipv6));
        }
        if self.version() != 6 {
            return Err(DecodeError::Malformed {
                layer: Layer::Ipv6,
                reason: MalformedReason::Version,
            });
        }
        Ok(())
    }

    /// Returns the underlying buffer.
    #[inline]
    pub fn into_inner(self) -> T {
        self.buffer
    }

    /// Version field (6).
    #[inline]
    pub fn version(&self) -> u8 {
        self.buffer.as_ref()[field::VER_TC_FLOW.start] >> 4
    }

    /// Traffic class.
    #[inline]
    pub fn traffic_class(&self) -> u8 {
        ((be16(&self.buffer.as_ref()[field::VER_TC_FLOW]) >> 4) & 0xff) as u8
    }

    /// Flow label (20 bits).
    #[inline]
    pub fn flow_label(&self) -> u32 {
        be32(&self.buffer.as_ref()[field::VER_TC_FLOW]) & 0x000f_ffff
    }

    /// Payload length: extension headers plus upper layer. 0 for jumbograms and BIG TCP.
    #[inline]
    pub fn payload_len(&self) -> u16 {
        be16(&self.buffer.as_ref()[field::LENGTH])
    }

    /// Next header: the first extension header or the upper-layer protocol.
    #[inline]
    pub fn next_header(&self) -> u8 {
        self.buffer.as_ref()[field::NXT_HDR]
    }

    /// Hop limit.
    #[inline]
    pub fn hop_limit(&self) -> u8 {
        self.buffer.as_ref()[field::HOP_LIMIT]
    }

    /// Source address.
    #[inline]
    pub fn src_addr(&self) -> Ipv6Addr {
        Ipv6Addr::from(addr(&self.buffer.as_ref()[field::SRC_ADDR]))
    }

    /// Destination address.
    #[inline]
    pub fn dst_addr(&self) -> Ipv6Addr {
        Ipv6Addr::from(addr(&self.buffer.as_ref()[field::DST_ADDR]))
    }

    /// Where the payload present in the buffer ends: the payload length, or the end of the
    /// buffer if that comes first or the payload length is 0.
    #[inline]
    fn payload_end(&self) -> usize {
        let len = self.buffer.as_ref().len();
        match usize::from(self.payload_len()) {
            0 => len,
            payload_len => (HEADER_LEN + payload_len).min(len),
        }
    }

    /// Payload bytes the payload length declares but the buffer does not hold.
    #[inline]
    pub fn payload_missing(&self) -> usize {
        match usize::from(self.payload_len()) {
            0 => 0,
            payload_len => (HEADER_LEN + payload_len).saturating_sub(self.buffer.as_ref().len()),
        }
    }
}

impl<'a, T: AsRef<[u8]> + ?Sized> Ipv6Packet<&'a T> {
    /// The payload present in the buffer, bounded by the payload length. With payload length
    /// 0, everything after the fixed header.
    #[inline]
    pub fn payload(&self) -> &'a [u8] {
        let data = T::as_ref(self.buffer);
        &data[HEADER_LEN..self.payload_end()]
    }
}

#[inline]
fn addr(bytes: &[u8]) -> [u8; 16] {
    let mut out = [0; 16];
    out.copy_from_slice(&bytes[..16]);
    out
}

mod ext_field {
    pub const NXT_HDR: usize = 0;
    pub const LENGTH: usize = 1;
    pub const DATA: usize = 2;
}

/// A zero-copy view of an extension header in the common format (next header, length, data)
/// or an Authentication Header, which differs only in how its length is counted.
#[derive(Debug, Clone, Copy)]
pub struct ExtHeader<T: AsRef<[u8]>> {
    buffer: T,
    kind: u8,
}

impl<T: AsRef<[u8]>> ExtHeader<T> {
    /// Wraps `buffer`, an extension header of type `kind` (the previous next-header value),
    /// without checking it; accessors may panic unless [`check_len`](Self::check_len)
    /// succeeds.
    #[inline]
    pub const fn new_unchecked(buffer: T, kind: u8) -> Self {
        ExtHeader { buffer, kind }
    }

    /// Wraps `buffer` after [`check_len`](Self::check_len); no accessor of the result panics.
    #[inline]
    pub fn new_checked(buffer: T, kind: u8) -> Result<Self, DecodeError> {
        let header = Self::new_unchecked(buffer, kind);
        header.check_len()?;
        Ok(header)
    }

    /// Checks that the buffer holds the whole header, as long as its length field says.
    #[inline]
    pub fn check_len(&self) -> Result<(), DecodeError> {
        let len = self.buffer.as_ref().len();
        if len < ext_field::DATA || len < self.header_len() {
            return Err(DecodeError::Truncated(Layer::Ipv6Ext));
        }
        Ok(())
    }

    /// The header's type (the next-header value that announced it).
    #[inline]
    pub fn kind(&self) -> u8 {
        self.kind
    }

    /// Next header.
    #[inline]
    pub fn next_header(&self) -> u8 {
        self.buffer.as_ref()[ext_field::NXT_HDR]
    }

    /// Header length in bytes: (length + 1) × 8, or for AH (length + 2) × 4.
    #[inline]
    pub fn header_len(&self) -> usize {
        let length = usize::from(self.buffer.as_ref()[ext_field::LENGTH]);
        if self.kind == protocol::AH {
            (length + 2) * 4
        } else {
            (length + 1) * 8
        }
    }

    /// Options or other data after the two fixed bytes.
    #[inline]
    pub fn data(&self) -> &[u8] {
        &self.buffer.as_ref()[ext_field::DATA..self.header_len()]
    }
}

impl<'a, T: AsRef<[u8]> + ?Sized> ExtHeader<&'a T> {
    /// Everything after this header.
    #[inline]
    pub fn payload(&self) -> &'a [u8] {
        &T::as_ref(self.buffer)[self.header_len()..]
    }
}

mod frag_field {
    use core::ops::{Range, RangeFrom};

    pub const NXT_HDR: usize = 0;
    pub const OFF_M: Range<usize> = 2..4;
    pub const IDENT: Range<usize> = 4..8;
    pub const PAYLOAD: RangeFrom<usize> = 8..;
}

/// Length of a Fragment header.
pub const FRAGMENT_HEADER_LEN: usize = frag_field::PAYLOAD.start;

/// A zero-copy view of a Fragment header.
#[derive(Debug, Clone, Copy)]
pub struct FragmentHeader<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> FragmentHeader<T> {
    /// Wraps `buffer` without checking it; accessors may panic unless
    /// [`check_len`](Self::check_len) succeeds.
    #[inline]
    pub const fn new_unchecked(buffer: T) -> Self {
        FragmentHeader { buffer }
    }

    /// Wraps `buffer` after [`check_len`](Self::check_len); no accessor of the result panics.
    #[inline]
    pub fn new_checked(buffer: T) -> Result<Self, DecodeError> {
        let header = Self::new_unchecked(buffer);
        header.check_len()?;
        Ok(header)
    }

    /// Checks that the buffer holds the whole header.
    #[inline]
    pub fn check_len(&self) -> Result<(), DecodeError> {
        if self.buffer.as_ref().len() < FRAGMENT_HEADER_LEN {
            return Err(DecodeError::Truncated(Layer::Ipv6Ext));
        }
        Ok(())
    }

    /// Next header (of the fragmentable part).
    #[inline]
    pub fn next_header(&self) -> u8 {
        self.buffer.as_ref()[frag_field::NXT_HDR]
    }

    /// Fragment offset in bytes.
    #[inline]
    pub fn frag_offset(&self) -> u16 {
        be16(&self.buffer.as_ref()[frag_field::OFF_M]) & 0xfff8
    }

    /// M flag: more fragments follow.
    #[inline]
    pub fn more_frags(&self) -> bool {
        be16(&self.buffer.as_ref()[frag_field::OFF_M]) & 1 != 0
    }

    /// Identification.
    #[inline]
    pub fn ident(&self) -> u32 {
        be32(&self.buffer.as_ref()[frag_field::IDENT])
    }
}

impl<'a, T: AsRef<[u8]> + ?Sized> FragmentHeader<&'a T> {
    /// Everything after this header.
    #[inline]
    pub fn payload(&self) -> &'a [u8] {
        &T::as_ref(self.buffer)[frag_field::PAYLOAD]
    }
}

/// Whether `next_header` is an extension header (rather than an upper layer).
#[inline]
pub fn is_extension(next_header: u8) -> bool {
    matches!(
        next_header,
        protocol::HOP_BY_HOP
            | protocol::ROUTING
            | protocol::FRAGMENT
            | protocol::DESTINATION_OPTIONS
            | protocol::AH
            | protocol::MOBILITY
            | protocol::HIP
            | protocol::SHIM6
            | protocol::EXPERIMENT_1
            | protocol::EXPERIMENT_2
    )
}

/// IPv6 → the TCP bytes it carries, after the extension headers (the decoder itself
/// uses [`upper`], which also hands tunnels on).
#[cfg(test)]
pub(crate) fn decode(packet: &[u8]) -> Result<IpPayload<'_>, DecodeError> {
    match upper(packet)? {
        (protocol::TCP, payload) => Ok(payload),
        (other, _) => Err(DecodeError::NotTcp(other)),
    }
}

/// IPv6 → its upper-layer protocol and the bytes it carries, after the extension headers
/// (so a tunnel inside IPv6 can be unwrapped, see `encap`). Fragments are errors as in
/// `decode` (tests only): a non-TCP first fragment is `NotTcp`, never unwrapped.
#[inline]
pub(crate) fn upper(packet: &[u8]) -> Result<(u8, IpPayload<'_>), DecodeError> {
    let ip = Ipv6Packet::new_checked(packet)?;
    let mut payload = IpPayload {
        src: IpAddr::V6(ip.src_addr()),
        dst: IpAddr::V6(ip.dst_addr()),
        data: ip.payload(),
        // At most 65535: a u16 minus a length.
        missing: ip.payload_missing() as u32,
        length_known: ip.payload_len() != 0,
    };
    let mut next = ip.next_header();
    // A first fragment (offset 0, M set) still shows its headers: walk on to learn whether
    // it carries TCP.
    let mut fragmented = false;
    // Up to MAX_EXT_HEADERS extension headers, then the upper layer.
    for _ in 0..=MAX_EXT_HEADERS {
        match next {
            protocol::TCP if fragmented => return Err(DecodeError::Ipv6Fragment),
            protocol::TCP => return Ok((protocol::TCP, payload)),
            protocol::FRAGMENT => {
                let frag =
                    FragmentHeader::new_checked(payload.data).map_err(|e| payload.refine(e))?;
                next = frag.next_header();
                if frag.frag_offset() != 0 {
                    // A later fragment: what follows is data, not headers.
                    return Err(match next {
                        protocol::ESP => DecodeError::Esp,
                        n if n == protocol::TCP || is_extension(n) => DecodeError::Ipv6Fragment,
                        other => DecodeError::NotTcp(other),
                    });
                }
                fragmented |= frag.more_frags();
                payload.data = frag.payload();
            }
            protocol::ESP => return Err(DecodeError::Esp),
            kind if is_extension(kind) => {
                let ext =
                    ExtHeader::new_checked(payload.data, kind).map_err(|e| payload.refine(e))?;
                next = ext.next_header();
                payload.data = ext.payload();
            }
            other if fragmented => return Err(DecodeError::NotTcp(other)),
            other => return Ok((other, payload)),
        }
    }
    Err(DecodeError::Malformed {
        layer: Layer::Ipv6Ext,
        reason: MalformedReason::TooManyExtHeaders,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    // 2001:db8::1 → 2001:db8::2, hop limit 64, traffic class 0xb8, flow 0x12345.
    // Hop-by-hop (8 bytes, PadN) → routing (type 4, 8 bytes) → destination options (16 bytes)
    // → atomic fragment → AH (12 bytes) → TCP (4 bytes of "upper layer" here).
    const PACKET: [u8; 96] = [
        0x6b, 0x81, 0x23, 0x45, // version 6, TC 0xb8, flow label 0x12345
        0x00, 0x38, 0x00, 0x40, // payload length 56, next header hop-by-hop, hop limit 64
        0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, // src
        0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2, // dst
        43, 0, 1, 4, 0, 0, 0, 0, // hop-by-hop: next routing, len 0, PadN(4)
        60, 0, 4, 0, 0, 0, 0, 0, // routing: next dst opts, len 0, type 4, segments left 0
        // destination options: next fragment, len 1 (16 bytes), PadN(12)
        44, 1, 1, 12, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 51, 0, 0x00, 0x00, 0xca, 0xfe, 0xba,
        0xbe, // fragment: next AH, offset 0, M 0
        6, 1, 0, 0, 0, 0, 0, 1, 0, 0, 0, 7, // AH: next TCP, len 1 → 12 bytes, SPI 1, seq 7
        0xde, 0xad, 0xbe, 0xef, // "TCP"
    ];

    fn with(patch: &[(usize, u8)]) -> [u8; 96] {
        let mut packet = PACKET;
        for &(at, byte) in patch {
            packet[at] = byte;
        }
        packet
    }

    #[test]
    fn accessors() {
        let ip = Ipv6Packet::new_checked(&PACKET[..]).unwrap();
        assert_eq!(ip.version(), 6);
        assert_eq!(ip.traffic_class(), 0xb8);
        assert_eq!(ip.flow_label(), 0x12345);
        assert_eq!(ip.payload_len(), 56);
        assert_eq!(ip.next_header(), protocol::HOP_BY_HOP);
        assert_eq!(ip.hop_limit(), 64);
        assert_eq!(ip.src_addr(), "2001:db8::1".parse::<Ipv6Addr>().unwrap());
        assert_eq!(ip.dst_addr(), "2001:db8::2".parse::<Ipv6Addr>().unwrap());
        assert_eq!(ip.payload(), &PACKET[40..]);
        assert_eq!(ip.payload_missing(), 0);

        let hbh = ExtHeader::new_checked(ip.payload(), protocol::HOP_BY_HOP).unwrap();
        assert_eq!(hbh.kind(), protocol::HOP_BY_HOP);
        assert_eq!(hbh.next_header(), protocol::ROUTING);
        assert_eq!(hbh.header_len(), 8);
        assert_eq!(hbh.data(), &[1, 4, 0, 0, 0, 0]);
        let frag = FragmentHeader::new_checked(&PACKET[72..]).unwrap();
        assert_eq!(frag.next_header(), protocol::AH);
        assert_eq!(frag.frag_offset(), 0);
        assert!(!frag.more_frags());
        assert_eq!(frag.ident(), 0xcafe_babe);
        let ah = ExtHeader::new_checked(frag.payload(), protocol::AH).unwrap();
        assert_eq!(ah.header_len(), 12);
        assert_eq!(ah.payload(), &[0xde, 0xad, 0xbe, 0xef]);
    }

    #[test]
    fn walks_the_chain() {
        let payload = decode(&PACKET).unwrap();
        assert_eq!(payload.data, &[0xde, 0xad, 0xbe, 0xef]);
        assert_eq!(payload.missing, 0);
        assert!(payload.length_known);
    }

    #[test]
    fn padding_and_cuts() {
        let mut padded = PACKET.to_vec();
        padded.extend_from_slice(&[0; 8]);
        assert_eq!(decode(&padded).unwrap().data, &[0xde, 0xad, 0xbe, 0xef]);

        let cut = decode(&PACKET[..94]).unwrap();
        assert_eq!((cut.data, cut.missing), (&[0xde, 0xad][..], 2));

        // Every cut inside the headers is a truncation, never a malformation.
        for len in 0..92 {
            assert!(
                matches!(decode(&PACKET[..len]), Err(DecodeError::Truncated(_))),
                "{len}"
            );
        }
    }

    #[test]
    fn header_beyond_payload_length() {
        // Payload length 50: the AH header (ends at 56) runs past it.
        let packet = with(&[(5, 50)]);
        assert_eq!(
            decode(&packet).unwrap_err(),
            DecodeError::Malformed {
                layer: Layer::Ipv6Ext,
                reason: MalformedReason::Length
            }
        );
        // ... but if the capture is cut too, that is all we can tell.
        assert_eq!(
            decode(&PACKET[..80]).unwrap_err(),
            DecodeError::Truncated(Layer::Ipv6Ext)
        );
    }

    #[test]
    fn jumbo_uses_frame() {
        let packet = with(&[(4, 0), (5, 0)]);
        let payload = decode(&packet).unwrap();
        assert_eq!(payload.data, &[0xde, 0xad, 0xbe, 0xef]);
        assert!(!payload.length_known);
        assert_eq!(
            decode(&packet[..80]).unwrap_err(),
            DecodeError::Truncated(Layer::Ipv6Ext)
        );
    }

    #[test]
    fn fragments() {
        // First fragment of TCP: M set, offset 0.
        let first = with(&[(75, 1)]);
        assert_eq!(decode(&first).unwrap_err(), DecodeError::Ipv6Fragment);
        // First fragment of UDP.
        let udp = with(&[(75, 1), (80, protocol::UDP)]);
        assert_eq!(decode(&udp).unwrap_err(), DecodeError::NotTcp(17));
        // Later fragment (offset 1480): next header AH is an extension → fragment.
        let later = with(&[(74, 0x05), (75, 0xc8)]);
        let frag = FragmentHeader::new_checked(&later[72..]).unwrap();
        assert_eq!(frag.frag_offset(), 1480);
        assert_eq!(decode(&later).unwrap_err(), DecodeError::Ipv6Fragment);
        let later_udp = with(&[(74, 0x05), (75, 0xc8), (72, protocol::UDP)]);
        assert_eq!(decode(&later_udp).unwrap_err(), DecodeError::NotTcp(17));
    }

    #[test]
    fn upper_layers() {
        assert_eq!(
            decode(&with(&[(80, protocol::ESP)])).unwrap_err(),
            DecodeError::Esp
        );
        assert_eq!(
            decode(&with(&[(80, protocol::NO_NEXT_HEADER)])).unwrap_err(),
            DecodeError::NotTcp(59)
        );
        assert_eq!(
            decode(&with(&[(6, protocol::ICMPV6)])).unwrap_err(),
            DecodeError::NotTcp(58)
        );
        assert_eq!(
            decode(&with(&[(0, 0x4b)])).unwrap_err(),
            DecodeError::Malformed {
                layer: Layer::Ipv6,
                reason: MalformedReason::Version
            }
        );
    }

    #[test]
    fn chain_bound() {
        // MAX_EXT_HEADERS destination options headers then TCP decode; one more does not.
        let build = |count: usize| {
            let mut packet = PACKET[..40].to_vec();
            packet[6] = protocol::DESTINATION_OPTIONS;
            for i in 0..count {
                let next = if i + 1 == count {
                    protocol::TCP
                } else {
                    protocol::DESTINATION_OPTIONS
                };
                packet.extend_from_slice(&[next, 0, 1, 4, 0, 0, 0, 0]);
            }
            let len = (packet.len() - 40) as u16;
            packet[4..6].copy_from_slice(&len.to_be_bytes());
            packet
        };
        assert!(decode(&build(MAX_EXT_HEADERS)).is_ok());
        assert_eq!(
            decode(&build(MAX_EXT_HEADERS + 1)).unwrap_err(),
            DecodeError::Malformed {
                layer: Layer::Ipv6Ext,
                reason: MalformedReason::TooManyExtHeaders
            }
        );
    }
}
