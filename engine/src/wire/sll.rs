//! Linux cooked captures: `LINKTYPE_LINUX_SLL` (v1, 16-byte header, protocol at offset 14) and
//! `LINKTYPE_LINUX_SLL2` (v2, 20-byte header, protocol at offset 0).
//!
//! The protocol field is an EtherType for the link types we care about. libpcap re-inserts a
//! VLAN tag the kernel stripped as protocol 0x8100 followed by the 4-byte tag, exactly as in
//! Ethernet, so VLAN tags are walked the same way.

use super::ethernet::skip_vlan_tags;
use super::{be16, be32, DecodeError, Layer, Network};

/// `sll_pkttype` values: which way the packet went.
pub mod packet_type {
    /// To us.
    pub const HOST: u16 = 0;
    /// Broadcast.
    pub const BROADCAST: u16 = 1;
    /// Multicast.
    pub const MULTICAST: u16 = 2;
    /// To someone else (promiscuous).
    pub const OTHERHOST: u16 = 3;
    /// Sent by us. On `any`, loopback traffic shows up once outgoing and once incoming.
    pub const OUTGOING: u16 = 4;
}

mod field {
    use core::ops::{Range, RangeFrom};

    pub const PACKET_TYPE: Range<usize> = 0..2;
    pub const ARPHRD_TYPE: Range<usize> = 2..4;
    pub const ADDRESS_LEN: Range<usize> = 4..6;
    pub const ADDRESS: Range<usize> = 6..14;
    pub const PROTOCOL: Range<usize> = 14..16;
    pub const PAYLOAD: RangeFrom<usize> = 16..;
}

/// Length of a Linux cooked v1 header.
pub const SLL_HEADER_LEN: usize = field::PAYLOAD.start;

/// A zero-copy view of a Linux cooked capture v1 header and what follows.
#[derive(Debug, Clone, Copy)]
pub struct SllPacket<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> SllPacket<T> {
    /// Wraps `buffer` without checking it; accessors may panic unless
    /// [`check_len`](Self::check_len) succeeds.
    #[inline]
    pub const fn new_unchecked(buffer: T) -> Self {
        SllPacket { buffer }
    }

    /// Wraps `buffer` after [`check_len`](Self::check_len); no accessor of the result panics.
    #[inline]
    pub fn new_checked(buffer: T) -> Result<Self, DecodeError> {
        let packet = Self::new_unchecked(buffer);
        packet.check_len()?;
        Ok(packet)
    }

    /// Checks that the buffer holds the whole header.
    #[inline]
    pub fn check_len(&self) -> Result<(), DecodeError> {
        if self.buffer.as_ref().len() < SLL_HEADER_LEN {
            return Err(DecodeError::Truncated(Layer::Sll));
        }
        Ok(())
    }

    /// Packet type (see [`packet_type`]).
    #[inline]
    pub fn packet_type(&self) -> u16 {
        be16(&self.buffer.as_ref()[field::PACKET_TYPE])
    }

    /// `ARPHRD_*` device type.
    #[inline]
    pub fn arphrd_type(&self) -> u16 {
        be16(&self.buffer.as_ref()[field::ARPHRD_TYPE])
    }

    /// Link-layer address length as recorded (the field holds at most 8 bytes).
    #[inline]
    pub fn address_len(&self) -> u16 {
        be16(&self.buffer.as_ref()[field::ADDRESS_LEN])
    }

    /// The 8-byte link-layer address field (only `address_len` bytes are meaningful).
    #[inline]
    pub fn address(&self) -> &[u8] {
        &self.buffer.as_ref()[field::ADDRESS]
    }

    /// Protocol: an EtherType.
    #[inline]
    pub fn protocol(&self) -> u16 {
        be16(&self.buffer.as_ref()[field::PROTOCOL])
    }
}

impl<'a, T: AsRef<[u8]> + ?Sized> SllPacket<&'a T> {
    /// Everything after the header.
    #[inline]
    pub fn payload(&self) -> &'a [u8] {
        &T::as_ref(self.buffer)[field::PAYLOAD]
    }
}

mod field2 {
    use core::ops::{Range, RangeFrom};

    pub const PROTOCOL: Range<usize> = 0..2;
    pub const RESERVED: Range<usize> = 2..4;
    pub const INTERFACE_INDEX: Range<usize> = 4..8;
    pub const ARPHRD_TYPE: Range<usize> = 8..10;
    pub const PACKET_TYPE: usize = 10;
    pub const ADDRESS_LEN: usize = 11;
    pub const ADDRESS: Range<usize> = 12..20;
    pub const PAYLOAD: RangeFrom<usize> = 20..;
}

/// Length of a Linux cooked v2 header.
pub const SLL2_HEADER_LEN: usize = field2::PAYLOAD.start;

/// A zero-copy view of a Linux cooked capture v2 header and what follows.
#[derive(Debug, Clone, Copy)]
pub struct Sll2Packet<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Sll2Packet<T> {
    /// Wraps `buffer` without checking it; accessors may panic unless
    /// [`check_len`](Self::check_len) succeeds.
    #[inline]
    pub const fn new_unchecked(buffer: T) -> Self {
        Sll2Packet { buffer }
    }

    /// Wraps `buffer` after [`check_len`](Self::check_len); no accessor of the result panics.
    #[inline]
    pub fn new_checked(buffer: T) -> Result<Self, DecodeError> {
        let packet = Self::new_unchecked(buffer);
        packet.check_len()?;
        Ok(packet)
    }

    /// Checks that the buffer holds the whole header.
    #[inline]
    pub fn check_len(&self) -> Result<(), DecodeError> {
        if self.buffer.as_ref().len() < SLL2_HEADER_LEN {
            return Err(DecodeError::Truncated(Layer::Sll2));
        }
        Ok(())
    }

    /// Protocol: an EtherType.
    #[inline]
    pub fn protocol(&self) -> u16 {
        be16(&self.buffer.as_ref()[field2::PROTOCOL])
    }

    /// The reserved field (should be zero).
    #[inline]
    pub fn reserved(&self) -> u16 {
        be16(&self.buffer.as_ref()[field2::RESERVED])
    }

    /// Index of the interface the packet was captured on.
    #[inline]
    pub fn interface_index(&self) -> u32 {
        be32(&self.buffer.as_ref()[field2::INTERFACE_INDEX])
    }

    /// `ARPHRD_*` device type.
    #[inline]
    pub fn arphrd_type(&self) -> u16 {
        be16(&self.buffer.as_ref()[field2::ARPHRD_TYPE])
    }

    /// Packet type (see [`packet_type`]).
    #[inline]
    pub fn packet_type(&self) -> u8 {
        self.buffer.as_ref()[field2::PACKET_TYPE]
    }

    /// Link-layer address length as recorded (the field holds at most 8 bytes).
    #[inline]
    pub fn address_len(&self) -> u8 {
        self.buffer.as_ref()[field2::ADDRESS_LEN]
    }

    /// The 8-byte link-layer address field (only `address_len` bytes are meaningful).
    #[inline]
    pub fn address(&self) -> &[u8] {
        &self.buffer.as_ref()[field2::ADDRESS]
    }
}

impl<'a, T: AsRef<[u8]> + ?Sized> Sll2Packet<&'a T> {
    /// Everything after the header.
    #[inline]
    pub fn payload(&self) -> &'a [u8] {
        &T::as_ref(self.buffer)[field2::PAYLOAD]
    }
}

/// Linux cooked v1 (+ VLAN tags) → network protocol and its packet.
#[inline]
pub(crate) fn decode_sll(frame: &[u8]) -> Result<(Network, &[u8]), DecodeError> {
    let sll = SllPacket::new_checked(frame)?;
    let (ethertype, packet) = skip_vlan_tags(sll.protocol(), sll.payload())?;
    Ok((Network::from_ethertype(ethertype)?, packet))
}

/// Linux cooked v2 (+ VLAN tags) → network protocol and its packet.
#[inline]
pub(crate) fn decode_sll2(frame: &[u8]) -> Result<(Network, &[u8]), DecodeError> {
    let sll = Sll2Packet::new_checked(frame)?;
    let (ethertype, packet) = skip_vlan_tags(sll.protocol(), sll.payload())?;
    Ok((Network::from_ethertype(ethertype)?, packet))
}

#[cfg(test)]
mod tests {
    use super::*;

    // As tcpdump -i any writes them: an outgoing packet on lo (ARPHRD_LOOPBACK = 772).
    const SLL: [u8; 17] = [
        0x00, 0x04, // outgoing
        0x03, 0x04, // ARPHRD_LOOPBACK
        0x00, 0x06, // address length
        0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, // address
        0x08, 0x00, // IPv4
        0x45,
    ];

    const SLL2: [u8; 21] = [
        0x86, 0xdd, // IPv6
        0x00, 0x00, // reserved
        0x00, 0x00, 0x00, 0x02, // ifindex 2
        0x00, 0x01, // ARPHRD_ETHER
        0x00, // host
        0x06, // address length
        0x02, 0x42, 0xac, 0x11, 0x00, 0x02, 0x00, 0x00, // address
        0x60,
    ];

    #[test]
    fn sll_accessors() {
        let sll = SllPacket::new_checked(&SLL[..]).unwrap();
        assert_eq!(sll.packet_type(), packet_type::OUTGOING);
        assert_eq!(sll.arphrd_type(), 772);
        assert_eq!(sll.address_len(), 6);
        assert_eq!(sll.address(), &[0; 8]);
        assert_eq!(sll.protocol(), 0x0800);
        assert_eq!(sll.payload(), &[0x45]);
        assert_eq!(decode_sll(&SLL).unwrap(), (Network::Ipv4, &[0x45][..]));
    }

    #[test]
    fn sll2_accessors() {
        let sll = Sll2Packet::new_checked(&SLL2[..]).unwrap();
        assert_eq!(sll.protocol(), 0x86dd);
        assert_eq!(sll.reserved(), 0);
        assert_eq!(sll.interface_index(), 2);
        assert_eq!(sll.arphrd_type(), 1);
        assert_eq!(sll.packet_type(), 0);
        assert_eq!(sll.address_len(), 6);
        assert_eq!(
            sll.address(),
            &[0x02, 0x42, 0xac, 0x11, 0x00, 0x02, 0x00, 0x00]
        );
        assert_eq!(sll.payload(), &[0x60]);
        assert_eq!(decode_sll2(&SLL2).unwrap(), (Network::Ipv6, &[0x60][..]));
    }

    #[test]
    fn vlan_inside_cooked() {
        let mut frame = SLL[..16].to_vec();
        frame[14..16].copy_from_slice(&[0x81, 0x00]);
        frame.extend_from_slice(&[0x00, 0x2a, 0x86, 0xdd, 0x60]);
        assert_eq!(decode_sll(&frame).unwrap(), (Network::Ipv6, &[0x60][..]));

        let mut frame = SLL2[..20].to_vec();
        frame[0..2].copy_from_slice(&[0x81, 0x00]);
        frame.extend_from_slice(&[0x00, 0x2a, 0x08, 0x00, 0x45]);
        assert_eq!(decode_sll2(&frame).unwrap(), (Network::Ipv4, &[0x45][..]));
    }

    #[test]
    fn short_buffers() {
        for len in 0..SLL_HEADER_LEN {
            assert_eq!(
                decode_sll(&SLL[..len]).unwrap_err(),
                DecodeError::Truncated(Layer::Sll)
            );
        }
        for len in 0..SLL2_HEADER_LEN {
            assert_eq!(
                decode_sll2(&SLL2[..len]).unwrap_err(),
                DecodeError::Truncated(Layer::Sll2)
            );
        }
    }

    #[test]
    fn not_ip() {
        let mut arp = SLL;
        arp[14..16].copy_from_slice(&[0x08, 0x06]);
        assert_eq!(decode_sll(&arp).unwrap_err(), DecodeError::NotIp(0x0806));
    }
}
