//! Ethernet II frames and 802.1Q / 802.1ad VLAN tags (stacked: QinQ).
//!
//! The FCS, when a capture includes it, is not stripped here: the IP length bounds the payload,
//! so trailing bytes are ignored further up.

use super::{be16, DecodeError, Layer, MalformedReason, Network};

/// EtherType values this module knows.
pub mod ethertype {
    /// IPv4.
    pub const IPV4: u16 = 0x0800;
    /// IPv6.
    pub const IPV6: u16 = 0x86dd;
    /// 802.1Q customer VLAN tag (C-tag).
    pub const VLAN: u16 = 0x8100;
    /// 802.1ad service VLAN tag (S-tag, QinQ outer tag).
    pub const QINQ: u16 = 0x88a8;
    /// Pre-standard QinQ outer tag.
    pub const QINQ_LEGACY: u16 = 0x9100;
    /// PPPoE session stage (RFC 2516).
    pub const PPPOE_SESSION: u16 = 0x8864;
}

/// Most stacked VLAN tags we walk through before calling the frame malformed.
pub const MAX_VLAN_TAGS: usize = 8;

mod field {
    use core::ops::{Range, RangeFrom};

    pub const DESTINATION: Range<usize> = 0..6;
    pub const SOURCE: Range<usize> = 6..12;
    pub const ETHERTYPE: Range<usize> = 12..14;
    pub const PAYLOAD: RangeFrom<usize> = 14..;
}

/// Length of an Ethernet II header (no VLAN tag).
pub const HEADER_LEN: usize = field::PAYLOAD.start;

/// A zero-copy view of an Ethernet II frame.
#[derive(Debug, Clone, Copy)]
pub struct EthernetFrame<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> EthernetFrame<T> {
    /// Wraps `buffer` without checking it; accessors may panic unless
    /// [`check_len`](Self::check_len) succeeds.
    #[inline]
    pub const fn new_unchecked(buffer: T) -> Self {
        EthernetFrame { buffer }
    }

    /// Wraps `buffer` after [`check_len`](Self::check_len); no accessor of the result panics.
    #[inline]
    pub fn new_checked(buffer: T) -> Result<Self, DecodeError> {
        let frame = Self::new_unchecked(buffer);
        frame.check_len()?;
        Ok(frame)
    }

    /// Checks that the buffer holds the whole header.
    #[inline]
    pub fn check_len(&self) -> Result<(), DecodeError> {
        if self.buffer.as_ref().len() < HEADER_LEN {
            return Err(DecodeError::Truncated(Layer::Ethernet));
        }
        Ok(())
    }

    /// Returns the underlying buffer.
    #[inline]
    pub fn into_inner(self) -> T {
        self.buffer
    }

    /// Destination MAC address.
    #[inline]
    pub fn destination(&self) -> [u8; 6] {
        mac(&self.buffer.as_ref()[field::DESTINATION])
    }

    /// Source MAC address.
    #[inline]
    pub fn source(&self) -> [u8; 6] {
        mac(&self.buffer.as_ref()[field::SOURCE])
    }

    /// EtherType (or, below 0x0600, an 802.3 length).
    #[inline]
    pub fn ethertype(&self) -> u16 {
        be16(&self.buffer.as_ref()[field::ETHERTYPE])
    }
}

impl<'a, T: AsRef<[u8]> + ?Sized> EthernetFrame<&'a T> {
    /// Everything after the header (VLAN tags included), up to the end of the buffer.
    #[inline]
    pub fn payload(&self) -> &'a [u8] {
        &T::as_ref(self.buffer)[field::PAYLOAD]
    }
}

#[inline]
fn mac(bytes: &[u8]) -> [u8; 6] {
    [bytes[0], bytes[1], bytes[2], bytes[3], bytes[4], bytes[5]]
}

mod vlan_field {
    use core::ops::{Range, RangeFrom};

    pub const TCI: Range<usize> = 0..2;
    pub const ETHERTYPE: Range<usize> = 2..4;
    pub const PAYLOAD: RangeFrom<usize> = 4..;
}

/// Length of one VLAN tag as it follows the tag's EtherType (TCI + inner EtherType).
pub const VLAN_TAG_LEN: usize = vlan_field::PAYLOAD.start;

/// A zero-copy view of an 802.1Q / 802.1ad tag: the 4 bytes after a VLAN EtherType.
#[derive(Debug, Clone, Copy)]
pub struct VlanTag<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> VlanTag<T> {
    /// Wraps `buffer` without checking it; accessors may panic unless
    /// [`check_len`](Self::check_len) succeeds.
    #[inline]
    pub const fn new_unchecked(buffer: T) -> Self {
        VlanTag { buffer }
    }

    /// Wraps `buffer` after [`check_len`](Self::check_len); no accessor of the result panics.
    #[inline]
    pub fn new_checked(buffer: T) -> Result<Self, DecodeError> {
        let tag = Self::new_unchecked(buffer);
        tag.check_len()?;
        Ok(tag)
    }

    /// Checks that the buffer holds the whole tag.
    #[inline]
    pub fn check_len(&self) -> Result<(), DecodeError> {
        if self.buffer.as_ref().len() < VLAN_TAG_LEN {
            return Err(DecodeError::Truncated(Layer::Vlan));
        }
        Ok(())
    }

    /// Tag control information: priority (3 bits), drop eligible (1), VLAN id (12).
    #[inline]
    pub fn tci(&self) -> u16 {
        be16(&self.buffer.as_ref()[vlan_field::TCI])
    }

    /// VLAN identifier (12 bits).
    #[inline]
    pub fn vlan_id(&self) -> u16 {
        self.tci() & 0x0fff
    }

    /// Priority code point (3 bits).
    #[inline]
    pub fn priority(&self) -> u8 {
        (self.tci() >> 13) as u8
    }

    /// EtherType of what follows the tag (possibly another tag).
    #[inline]
    pub fn ethertype(&self) -> u16 {
        be16(&self.buffer.as_ref()[vlan_field::ETHERTYPE])
    }
}

impl<'a, T: AsRef<[u8]> + ?Sized> VlanTag<&'a T> {
    /// Everything after the tag.
    #[inline]
    pub fn payload(&self) -> &'a [u8] {
        &T::as_ref(self.buffer)[vlan_field::PAYLOAD]
    }
}

/// Whether `ethertype` introduces a VLAN tag.
#[inline]
pub fn is_vlan(ethertype: u16) -> bool {
    matches!(
        ethertype,
        ethertype::VLAN | ethertype::QINQ | ethertype::QINQ_LEGACY
    )
}

/// Walks through the VLAN tags `ethertype` may introduce and returns the innermost EtherType
/// and the bytes after the last tag.
#[inline]
pub fn skip_vlan_tags(mut ethertype: u16, mut rest: &[u8]) -> Result<(u16, &[u8]), DecodeError> {
    let mut tags = 0;
    while is_vlan(ethertype) {
        if tags == MAX_VLAN_TAGS {
            return Err(DecodeError::Malformed {
                layer: Layer::Vlan,
                reason: MalformedReason::TooManyVlanTags,
            });
        }
        let tag = VlanTag::new_checked(rest)?;
        ethertype = tag.ethertype();
        rest = tag.payload();
        tags += 1;
    }
    Ok((ethertype, rest))
}

/// Ethernet II (+ VLAN tags) → network protocol and its packet.
#[inline]
pub(crate) fn decode(frame: &[u8]) -> Result<(Network, &[u8]), DecodeError> {
    let eth = EthernetFrame::new_checked(frame)?;
    let (ethertype, packet) = skip_vlan_tags(eth.ethertype(), eth.payload())?;
    if ethertype == ethertype::PPPOE_SESSION {
        return super::pppoe::decode(packet);
    }
    Ok((Network::from_ethertype(ethertype)?, packet))
}

#[cfg(test)]
mod tests {
    use super::*;

    const FRAME: [u8; 22] = [
        0x00, 0x11, 0x22, 0x33, 0x44, 0x55, // destination
        0x66, 0x77, 0x88, 0x99, 0xaa, 0xbb, // source
        0x81, 0x00, // 802.1Q
        0xa0, 0x64, // PCP 5, VID 100
        0x08, 0x00, // IPv4
        0x45, 0x00, 0x00, 0x14, // start of an IPv4 header
    ];

    #[test]
    fn accessors() {
        let eth = EthernetFrame::new_checked(&FRAME[..]).unwrap();
        assert_eq!(eth.destination(), [0x00, 0x11, 0x22, 0x33, 0x44, 0x55]);
        assert_eq!(eth.source(), [0x66, 0x77, 0x88, 0x99, 0xaa, 0xbb]);
        assert_eq!(eth.ethertype(), ethertype::VLAN);
        let tag = VlanTag::new_checked(eth.payload()).unwrap();
        assert_eq!(tag.vlan_id(), 100);
        assert_eq!(tag.priority(), 5);
        assert_eq!(tag.ethertype(), ethertype::IPV4);
        assert_eq!(tag.payload(), &FRAME[18..]);
    }

    #[test]
    fn decode_single_tag() {
        let (network, packet) = decode(&FRAME).unwrap();
        assert_eq!(network, Network::Ipv4);
        assert_eq!(packet, &FRAME[18..]);
    }

    #[test]
    fn short_buffers() {
        for len in 0..HEADER_LEN {
            assert_eq!(
                EthernetFrame::new_checked(&FRAME[..len]).unwrap_err(),
                DecodeError::Truncated(Layer::Ethernet)
            );
        }
        for len in HEADER_LEN..HEADER_LEN + VLAN_TAG_LEN {
            assert_eq!(
                decode(&FRAME[..len]).unwrap_err(),
                DecodeError::Truncated(Layer::Vlan)
            );
        }
    }

    #[test]
    fn tag_bound() {
        // MAX_VLAN_TAGS tags decode; one more does not.
        let mut rest = Vec::new();
        for _ in 0..MAX_VLAN_TAGS - 1 {
            rest.extend_from_slice(&[0x00, 0x01, 0x81, 0x00]);
        }
        rest.extend_from_slice(&[0x00, 0x01, 0x86, 0xdd, 0x60]);
        assert_eq!(
            skip_vlan_tags(ethertype::QINQ, &rest).unwrap(),
            (ethertype::IPV6, &[0x60][..])
        );
        let mut deeper = vec![0x00, 0x01, 0x91, 0x00];
        deeper.extend_from_slice(&rest);
        assert_eq!(
            skip_vlan_tags(ethertype::QINQ, &deeper).unwrap_err(),
            DecodeError::Malformed {
                layer: Layer::Vlan,
                reason: MalformedReason::TooManyVlanTags
            }
        );
    }

    #[test]
    fn not_ip() {
        let mut arp = FRAME;
        arp[12..14].copy_from_slice(&[0x08, 0x06]);
        assert_eq!(decode(&arp).unwrap_err(), DecodeError::NotIp(0x0806));
    }
}
