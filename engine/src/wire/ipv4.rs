//! IPv4 (RFC 791). Options are skipped, checksums are not verified, fragments are not
//! reassembled (see the [module docs](super) for why).

use std::net::{IpAddr, Ipv4Addr};

use super::{be16, protocol, DecodeError, IpPayload, Layer, MalformedReason};

mod field {
    use core::ops::Range;

    pub const VER_IHL: usize = 0;
    pub const DSCP_ECN: usize = 1;
    pub const LENGTH: Range<usize> = 2..4;
    pub const IDENT: Range<usize> = 4..6;
    pub const FLG_OFF: Range<usize> = 6..8;
    pub const TTL: usize = 8;
    pub const PROTOCOL: usize = 9;
    pub const CHECKSUM: Range<usize> = 10..12;
    pub const SRC_ADDR: Range<usize> = 12..16;
    pub const DST_ADDR: Range<usize> = 16..20;
}

/// Length of an IPv4 header without options.
pub const HEADER_LEN: usize = field::DST_ADDR.end;

const FLAG_DF: u16 = 0x4000;
const FLAG_MF: u16 = 0x2000;
const OFFSET_MASK: u16 = 0x1fff;

/// A zero-copy view of an IPv4 packet, possibly cut short by the capture.
///
/// [`check_len`](Self::check_len) requires the whole header (options included) but not the
/// whole payload: [`payload`](Ipv4Packet::payload) is what is present up to the total length,
/// and [`payload_missing`](Self::payload_missing) what the capture cut off.
#[derive(Debug, Clone, Copy)]
pub struct Ipv4Packet<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Ipv4Packet<T> {
    /// Wraps `buffer` without checking it; accessors may panic unless
    /// [`check_len`](Self::check_len) succeeds.
    #[inline]
    pub const fn new_unchecked(buffer: T) -> Self {
        Ipv4Packet { buffer }
    }

    /// Wraps `buffer` after [`check_len`](Self::check_len); no accessor of the result panics.
    #[inline]
    pub fn new_checked(buffer: T) -> Result<Self, DecodeError> {
        let packet = Self::new_unchecked(buffer);
        packet.check_len()?;
        Ok(packet)
    }

    /// Checks the version, that IHL ≥ 5, that a non-zero total length covers the header, and
    /// that the buffer holds the whole header.
    #[inline]
    pub fn check_len(&self) -> Result<(), DecodeError> {
        let len = self.buffer.as_ref().len();
        if len < HEADER_LEN {
            return Err(DecodeError::Truncated(Layer::Ipv4));
        }
        let malformed = |reason| DecodeError::Malformed {
            layer: Layer::Ipv4,
            reason,
        };
        if self.version() != 4 {
            return Err(malformed(MalformedReason::Version));
        }
        let header_len = usize::from(self.header_len());
        if header_len < HEADER_LEN {
            return Err(malformed(MalformedReason::HeaderLength));
        }
        let total_len = usize::from(self.total_len());
        if total_len != 0 && total_len < header_len {
            return Err(malformed(MalformedReason::Length));
        }
        if len < header_len {
            return Err(DecodeError::Truncated(Layer::Ipv4));
        }
        Ok(())
    }

    /// Returns the underlying buffer.
    #[inline]
    pub fn into_inner(self) -> T {
        self.buffer
    }

    /// Version field (4).
    #[inline]
    pub fn version(&self) -> u8 {
        self.buffer.as_ref()[field::VER_IHL] >> 4
    }

    /// Header length in bytes (IHL × 4), options included.
    #[inline]
    pub fn header_len(&self) -> u8 {
        (self.buffer.as_ref()[field::VER_IHL] & 0x0f) * 4
    }

    /// Differentiated services code point.
    #[inline]
    pub fn dscp(&self) -> u8 {
        self.buffer.as_ref()[field::DSCP_ECN] >> 2
    }

    /// Explicit congestion notification bits.
    #[inline]
    pub fn ecn(&self) -> u8 {
        self.buffer.as_ref()[field::DSCP_ECN] & 0x03
    }

    /// Total length: header plus payload. 0 on TSO/BIG TCP super-packets.
    #[inline]
    pub fn total_len(&self) -> u16 {
        be16(&self.buffer.as_ref()[field::LENGTH])
    }

    /// Identification.
    #[inline]
    pub fn ident(&self) -> u16 {
        be16(&self.buffer.as_ref()[field::IDENT])
    }

    /// Don't Fragment flag.
    #[inline]
    pub fn dont_frag(&self) -> bool {
        be16(&self.buffer.as_ref()[field::FLG_OFF]) & FLAG_DF != 0
    }

    /// More Fragments flag.
    #[inline]
    pub fn more_frags(&self) -> bool {
        be16(&self.buffer.as_ref()[field::FLG_OFF]) & FLAG_MF != 0
    }

    /// Fragment offset in bytes.
    #[inline]
    pub fn frag_offset(&self) -> u16 {
        (be16(&self.buffer.as_ref()[field::FLG_OFF]) & OFFSET_MASK) << 3
    }

    /// Whether this is a fragment (MF set or offset ≠ 0), not a whole datagram.
    #[inline]
    pub fn is_fragment(&self) -> bool {
        be16(&self.buffer.as_ref()[field::FLG_OFF]) & (FLAG_MF | OFFSET_MASK) != 0
    }

    /// Time to live.
    #[inline]
    pub fn ttl(&self) -> u8 {
        self.buffer.as_ref()[field::TTL]
    }

    /// Protocol of the payload.
    #[inline]
    pub fn protocol(&self) -> u8 {
        self.buffer.as_ref()[field::PROTOCOL]
    }

    /// Header checksum (not verified).
    #[inline]
    pub fn checksum(&self) -> u16 {
        be16(&self.buffer.as_ref()[field::CHECKSUM])
    }

    /// Source address.
    #[inline]
    pub fn src_addr(&self) -> Ipv4Addr {
        let b = &self.buffer.as_ref()[field::SRC_ADDR];
        Ipv4Addr::new(b[0], b[1], b[2], b[3])
    }

    /// Destination address.
    #[inline]
    pub fn dst_addr(&self) -> Ipv4Addr {
        let b = &self.buffer.as_ref()[field::DST_ADDR];
        Ipv4Addr::new(b[0], b[1], b[2], b[3])
    }

    /// Options, raw.
    #[inline]
    pub fn options(&self) -> &[u8] {
        &self.buffer.as_ref()[HEADER_LEN..usize::from(self.header_len())]
    }

    /// Where the payload present in the buffer ends: the total length, or the end of the
    /// buffer if that comes first or the total length is 0.
    #[inline]
    fn payload_end(&self) -> usize {
        let len = self.buffer.as_ref().len();
        match usize::from(self.total_len()) {
            0 => len,
            total => total.min(len),
        }
    }

    /// Payload bytes the total length declares but the buffer does not hold.
    #[inline]
    pub fn payload_missing(&self) -> usize {
        usize::from(self.total_len()).saturating_sub(self.buffer.as_ref().len())
    }
}

impl<'a, T: AsRef<[u8]> + ?Sized> Ipv4Packet<&'a T> {
    /// The payload present in the buffer, bounded by the total length (so link-layer padding
    /// is excluded). With total length 0, everything after the header.
    #[inline]
    pub fn payload(&self) -> &'a [u8] {
        let data = T::as_ref(self.buffer);
        &data[usize::from(self.header_len())..self.payload_end()]
    }
}

/// IPv4 → the TCP bytes it carries.
#[inline]
pub(crate) fn decode(packet: &[u8]) -> Result<IpPayload<'_>, DecodeError> {
    let ip = Ipv4Packet::new_checked(packet)?;
    match ip.protocol() {
        protocol::TCP => {}
        protocol::ESP => return Err(DecodeError::Esp),
        other => return Err(DecodeError::NotTcp(other)),
    }
    if ip.is_fragment() {
        return Err(DecodeError::Ipv4Fragment);
    }
    Ok(IpPayload {
        src: IpAddr::V4(ip.src_addr()),
        dst: IpAddr::V4(ip.dst_addr()),
        data: ip.payload(),
        // At most 65535: a u16 minus a length.
        missing: ip.payload_missing() as u32,
        length_known: ip.total_len() != 0,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    // 10.0.0.1 → 10.0.0.2, TCP, DF, with a 4-byte option (Router Alert), total length 28:
    // 24 bytes of header and 4 bytes of payload.
    const PACKET: [u8; 28] = [
        0x46, 0x28, 0x00, 0x1c, // version 4, IHL 6, DSCP 10, total length 28
        0x12, 0x34, 0x40, 0x00, // ident, DF
        0x40, 0x06, 0xab, 0xcd, // TTL 64, TCP, checksum
        0x0a, 0x00, 0x00, 0x01, // src
        0x0a, 0x00, 0x00, 0x02, // dst
        0x94, 0x04, 0x00, 0x00, // Router Alert
        0xde, 0xad, 0xbe, 0xef, // payload
    ];

    #[test]
    fn accessors() {
        let ip = Ipv4Packet::new_checked(&PACKET[..]).unwrap();
        assert_eq!(ip.version(), 4);
        assert_eq!(ip.header_len(), 24);
        assert_eq!(ip.dscp(), 10);
        assert_eq!(ip.ecn(), 0);
        assert_eq!(ip.total_len(), 28);
        assert_eq!(ip.ident(), 0x1234);
        assert!(ip.dont_frag());
        assert!(!ip.more_frags());
        assert_eq!(ip.frag_offset(), 0);
        assert!(!ip.is_fragment());
        assert_eq!(ip.ttl(), 64);
        assert_eq!(ip.protocol(), protocol::TCP);
        assert_eq!(ip.checksum(), 0xabcd);
        assert_eq!(ip.src_addr(), Ipv4Addr::new(10, 0, 0, 1));
        assert_eq!(ip.dst_addr(), Ipv4Addr::new(10, 0, 0, 2));
        assert_eq!(ip.options(), &[0x94, 0x04, 0x00, 0x00]);
        assert_eq!(ip.payload(), &[0xde, 0xad, 0xbe, 0xef]);
        assert_eq!(ip.payload_missing(), 0);
    }

    #[test]
    fn padding_is_not_payload() {
        let mut padded = PACKET.to_vec();
        padded.extend_from_slice(&[0; 6]);
        let ip = Ipv4Packet::new_checked(&padded[..]).unwrap();
        assert_eq!(ip.payload(), &[0xde, 0xad, 0xbe, 0xef]);
        assert_eq!(ip.payload_missing(), 0);
    }

    #[test]
    fn cut_payload() {
        let ip = Ipv4Packet::new_checked(&PACKET[..26]).unwrap();
        assert_eq!(ip.payload(), &[0xde, 0xad]);
        assert_eq!(ip.payload_missing(), 2);
    }

    #[test]
    fn total_length_zero_uses_buffer() {
        let mut tso = PACKET;
        tso[2..4].copy_from_slice(&[0, 0]);
        let ip = Ipv4Packet::new_checked(&tso[..]).unwrap();
        assert_eq!(ip.payload(), &[0xde, 0xad, 0xbe, 0xef]);
        assert_eq!(ip.payload_missing(), 0);
        let payload = decode(&tso).unwrap();
        assert!(!payload.length_known);
    }

    #[test]
    fn cut_header() {
        for len in 0..24 {
            assert_eq!(
                Ipv4Packet::new_checked(&PACKET[..len]).unwrap_err(),
                DecodeError::Truncated(Layer::Ipv4),
                "{len}"
            );
        }
    }

    #[test]
    fn bad_fields() {
        let malformed = |reason| DecodeError::Malformed {
            layer: Layer::Ipv4,
            reason,
        };
        let mut v6 = PACKET;
        v6[0] = 0x66;
        assert_eq!(
            Ipv4Packet::new_checked(&v6[..]).unwrap_err(),
            malformed(MalformedReason::Version)
        );
        let mut ihl = PACKET;
        ihl[0] = 0x44;
        assert_eq!(
            Ipv4Packet::new_checked(&ihl[..]).unwrap_err(),
            malformed(MalformedReason::HeaderLength)
        );
        let mut short_total = PACKET;
        short_total[3] = 20;
        assert_eq!(
            Ipv4Packet::new_checked(&short_total[..]).unwrap_err(),
            malformed(MalformedReason::Length)
        );
    }

    #[test]
    fn protocols_and_fragments() {
        let mut udp = PACKET;
        udp[9] = protocol::UDP;
        assert_eq!(decode(&udp).unwrap_err(), DecodeError::NotTcp(17));
        let mut esp = PACKET;
        esp[9] = protocol::ESP;
        assert_eq!(decode(&esp).unwrap_err(), DecodeError::Esp);

        let mut first = PACKET;
        first[6] = 0x20; // MF, offset 0
        assert_eq!(decode(&first).unwrap_err(), DecodeError::Ipv4Fragment);
        let mut last = PACKET;
        last[6..8].copy_from_slice(&[0x00, 0xb9]); // offset 185 × 8
        let ip = Ipv4Packet::new_checked(&last[..]).unwrap();
        assert_eq!(ip.frag_offset(), 1480);
        assert_eq!(decode(&last).unwrap_err(), DecodeError::Ipv4Fragment);
        // A fragment of UDP is just not TCP.
        last[9] = protocol::UDP;
        assert_eq!(decode(&last).unwrap_err(), DecodeError::NotTcp(17));
    }
}
