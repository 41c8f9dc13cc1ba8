//! BSD loopback headers: `LINKTYPE_NULL` (a 4-byte address family in the *capturing host's*
//! byte order) and `LINKTYPE_LOOP` (OpenBSD: the same, always big-endian).
//!
//! A null capture does not say which byte order it was written in, so both are tried; the
//! values cannot be confused (2 read the wrong way round is 0x0200_0000). `AF_INET6` differs
//! between the BSDs, so all of its values are accepted.

use super::{DecodeError, Layer, Network};

/// Address family values found in loopback headers.
pub mod family {
    /// `AF_INET`, on every BSD.
    pub const INET: u32 = 2;
    /// `AF_INET6` on NetBSD, OpenBSD and BSD/OS.
    pub const INET6_BSD: u32 = 24;
    /// `AF_INET6` on FreeBSD and DragonFly BSD.
    pub const INET6_FREEBSD: u32 = 28;
    /// `AF_INET6` on macOS / Darwin.
    pub const INET6_DARWIN: u32 = 30;
}

mod field {
    use core::ops::{Range, RangeFrom};

    pub const FAMILY: Range<usize> = 0..4;
    pub const PAYLOAD: RangeFrom<usize> = 4..;
}

/// Length of a null / loop header.
pub const HEADER_LEN: usize = field::PAYLOAD.start;

/// A zero-copy view of a null or loop header and what follows.
#[derive(Debug, Clone, Copy)]
pub struct LoopbackPacket<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> LoopbackPacket<T> {
    /// Wraps `buffer` without checking it; accessors may panic unless
    /// [`check_len`](Self::check_len) succeeds.
    #[inline]
    pub const fn new_unchecked(buffer: T) -> Self {
        LoopbackPacket { buffer }
    }

    /// Wraps `buffer` after [`check_len`](Self::check_len); no accessor of the result panics.
    #[inline]
    pub fn new_checked(buffer: T) -> Result<Self, DecodeError> {
        let packet = Self::new_unchecked(buffer);
        packet.check_len()?;
        Ok(packet)
    }

    /// Checks that the buffer holds the whole header (reported as [`Layer::Null`]; the loop
    /// decoder reports [`Layer::Loop`]).
    #[inline]
    pub fn check_len(&self) -> Result<(), DecodeError> {
        if self.buffer.as_ref().len() < HEADER_LEN {
            return Err(DecodeError::Truncated(Layer::Null));
        }
        Ok(())
    }

    /// The family field read big-endian (`LINKTYPE_LOOP`, or a big-endian host's null header).
    #[inline]
    pub fn family_be(&self) -> u32 {
        super::be32(&self.buffer.as_ref()[field::FAMILY])
    }

    /// The family field read little-endian (a little-endian host's null header).
    #[inline]
    pub fn family_le(&self) -> u32 {
        self.family_be().swap_bytes()
    }
}

impl<'a, T: AsRef<[u8]> + ?Sized> LoopbackPacket<&'a T> {
    /// Everything after the header.
    #[inline]
    pub fn payload(&self) -> &'a [u8] {
        &T::as_ref(self.buffer)[field::PAYLOAD]
    }
}

/// The network protocol an address family names, if it is IPv4 or IPv6.
#[inline]
fn network(family: u32) -> Option<Network> {
    match family {
        family::INET => Some(Network::Ipv4),
        family::INET6_BSD | family::INET6_FREEBSD | family::INET6_DARWIN => Some(Network::Ipv6),
        _ => None,
    }
}

/// BSD null: family in either byte order → network protocol and its packet.
#[inline]
pub(crate) fn decode_null(frame: &[u8]) -> Result<(Network, &[u8]), DecodeError> {
    let packet = LoopbackPacket::new_checked(frame)?;
    let (le, be) = (packet.family_le(), packet.family_be());
    match network(le).or_else(|| network(be)) {
        Some(network) => Ok((network, packet.payload())),
        // Report the reading that looks like a family (the smaller one).
        None => Err(DecodeError::NotIp(le.min(be))),
    }
}

/// OpenBSD loop: big-endian family → network protocol and its packet.
#[inline]
pub(crate) fn decode_loop(frame: &[u8]) -> Result<(Network, &[u8]), DecodeError> {
    let packet =
        LoopbackPacket::new_checked(frame).map_err(|_| DecodeError::Truncated(Layer::Loop))?;
    let family = packet.family_be();
    match network(family) {
        Some(network) => Ok((network, packet.payload())),
        None => Err(DecodeError::NotIp(family)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn null_both_byte_orders() {
        for family in [2u32, 24, 28, 30] {
            let expected = if family == 2 {
                Network::Ipv4
            } else {
                Network::Ipv6
            };
            for header in [family.to_le_bytes(), family.to_be_bytes()] {
                let mut frame = header.to_vec();
                frame.push(0x45);
                assert_eq!(
                    decode_null(&frame).unwrap(),
                    (expected, &[0x45][..]),
                    "{header:?}"
                );
            }
            let mut frame = family.to_be_bytes().to_vec();
            frame.push(0x60);
            assert_eq!(decode_loop(&frame).unwrap(), (expected, &[0x60][..]));
        }
    }

    #[test]
    fn loop_is_big_endian_only() {
        assert_eq!(
            decode_loop(&[2, 0, 0, 0, 0x45]).unwrap_err(),
            DecodeError::NotIp(0x0200_0000)
        );
    }

    #[test]
    fn other_families() {
        // AF_APPLETALK (16 on macOS), little-endian.
        assert_eq!(
            decode_null(&[16, 0, 0, 0]).unwrap_err(),
            DecodeError::NotIp(16)
        );
        assert_eq!(
            decode_null(&[0, 0, 0, 16]).unwrap_err(),
            DecodeError::NotIp(16)
        );
    }

    #[test]
    fn short_buffers() {
        for len in 0..HEADER_LEN {
            let frame = &[2, 0, 0, 0][..len];
            assert_eq!(
                decode_null(frame).unwrap_err(),
                DecodeError::Truncated(Layer::Null)
            );
            assert_eq!(
                decode_loop(frame).unwrap_err(),
                DecodeError::Truncated(Layer::Loop)
            );
        }
    }
}
