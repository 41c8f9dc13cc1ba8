//! TCP (RFC 9293) headers. Options are skipped; checksums are not verified.

use std::fmt;

use super::{be16, be32, DecodeError, IpPayload, Layer, MalformedReason, TcpSegment};

mod field {
    use core::ops::Range;

    pub const SRC_PORT: Range<usize> = 0..2;
    pub const DST_PORT: Range<usize> = 2..4;
    pub const SEQ_NUM: Range<usize> = 4..8;
    pub const ACK_NUM: Range<usize> = 8..12;
    pub const DATA_OFFSET: usize = 12;
    pub const FLAGS: usize = 13;
    pub const WIN_SIZE: Range<usize> = 14..16;
    pub const CHECKSUM: Range<usize> = 16..18;
    pub const URGENT: Range<usize> = 18..20;
}

/// Length of a TCP header without options.
pub const HEADER_LEN: usize = field::URGENT.end;

/// The eight TCP flag bits (byte 13 of the header).
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct TcpFlags(u8);

impl TcpFlags {
    /// FIN: no more data from the sender.
    pub const FIN: u8 = 0x01;
    /// SYN: synchronise sequence numbers.
    pub const SYN: u8 = 0x02;
    /// RST: reset the connection.
    pub const RST: u8 = 0x04;
    /// PSH: push.
    pub const PSH: u8 = 0x08;
    /// ACK: the acknowledgement number is significant.
    pub const ACK: u8 = 0x10;
    /// URG: the urgent pointer is significant.
    pub const URG: u8 = 0x20;
    /// ECE: ECN echo.
    pub const ECE: u8 = 0x40;
    /// CWR: congestion window reduced.
    pub const CWR: u8 = 0x80;

    /// Flags from the raw flag byte.
    #[inline]
    pub const fn from_bits(bits: u8) -> TcpFlags {
        TcpFlags(bits)
    }

    /// The raw flag byte.
    #[inline]
    pub const fn bits(self) -> u8 {
        self.0
    }

    /// FIN set.
    #[inline]
    pub const fn fin(self) -> bool {
        self.0 & Self::FIN != 0
    }

    /// SYN set.
    #[inline]
    pub const fn syn(self) -> bool {
        self.0 & Self::SYN != 0
    }

    /// RST set.
    #[inline]
    pub const fn rst(self) -> bool {
        self.0 & Self::RST != 0
    }

    /// PSH set.
    #[inline]
    pub const fn psh(self) -> bool {
        self.0 & Self::PSH != 0
    }

    /// ACK set.
    #[inline]
    pub const fn ack(self) -> bool {
        self.0 & Self::ACK != 0
    }

    /// URG set.
    #[inline]
    pub const fn urg(self) -> bool {
        self.0 & Self::URG != 0
    }

    /// ECE set.
    #[inline]
    pub const fn ece(self) -> bool {
        self.0 & Self::ECE != 0
    }

    /// CWR set.
    #[inline]
    pub const fn cwr(self) -> bool {
        self.0 & Self::CWR != 0
    }
}

impl fmt::Debug for TcpFlags {
    /// `TcpFlags(SYN|ACK)`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        const NAMES: [&str; 8] = ["FIN", "SYN", "RST", "PSH", "ACK", "URG", "ECE", "CWR"];
        f.write_str("TcpFlags(")?;
        let mut first = true;
        for (bit, name) in NAMES.iter().enumerate() {
            if self.0 & (1 << bit) != 0 {
                if !first {
                    f.write_str("|")?;
                }
                f.write_str(name)?;
                first = false;
            }
        }
        f.write_str(")")
    }
}

/// A zero-copy view of a TCP segment.
#[derive(Debug, Clone, Copy)]
pub struct TcpPacket<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> TcpPacket<T> {
    /// Wraps `buffer` without checking it; accessors may panic unless
    /// [`check_len`](Self::check_len) succeeds.
    #[inline]
    pub const fn new_unchecked(buffer: T) -> Self {
        TcpPacket { buffer }
    }

    /// Wraps `buffer` after [`check_len`](Self::check_len); no accessor of the result panics.
    #[inline]
    pub fn new_checked(buffer: T) -> Result<Self, DecodeError> {
        let packet = Self::new_unchecked(buffer);
        packet.check_len()?;
        Ok(packet)
    }

    /// Checks that data offset ≥ 5 and that the buffer holds the whole header, options
    /// included.
    #[inline]
    pub fn check_len(&self) -> Result<(), DecodeError> {
        let len = self.buffer.as_ref().len();
        if len < HEADER_LEN {
            return Err(DecodeError::Truncated(Layer::Tcp));
        }
        let header_len = usize::from(self.header_len());
        if header_len < HEADER_LEN {
            return Err(DecodeError::Malformed {
                layer: Layer::Tcp,
                reason: MalformedReason::HeaderLength,
            });
        }
        if len < header_len {
            return Err(DecodeError::Truncated(Layer::Tcp));
        }
        Ok(())
    }

    /// Returns the underlying buffer.
    #[inline]
    pub fn into_inner(self) -> T {
        self.buffer
    }

    /// Source port.
    #[inline]
    pub fn src_port(&self) -> u16 {
        be16(&self.buffer.as_ref()[field::SRC_PORT])
    }

    /// Destination port.
    #[inline]
    pub fn dst_port(&self) -> u16 {
        be16(&self.buffer.as_ref()[field::DST_PORT])
    }

    /// Sequence number.
    #[inline]
    pub fn seq_number(&self) -> u32 {
        be32(&self.buffer.as_ref()[field::SEQ_NUM])
    }

    /// Acknowledgement number.
    #[inline]
    pub fn ack_number(&self) -> u32 {
        be32(&self.buffer.as_ref()[field::ACK_NUM])
    }

    /// Header length in bytes (data offset × 4), options included.
    #[inline]
    pub fn header_len(&self) -> u8 {
        (self.buffer.as_ref()[field::DATA_OFFSET] >> 4) * 4
    }

    /// Flags.
    #[inline]
    pub fn flags(&self) -> TcpFlags {
        TcpFlags(self.buffer.as_ref()[field::FLAGS])
    }

    /// Window size (unscaled).
    #[inline]
    pub fn window_len(&self) -> u16 {
        be16(&self.buffer.as_ref()[field::WIN_SIZE])
    }

    /// Checksum (not verified).
    #[inline]
    pub fn checksum(&self) -> u16 {
        be16(&self.buffer.as_ref()[field::CHECKSUM])
    }

    /// Urgent pointer.
    #[inline]
    pub fn urgent_at(&self) -> u16 {
        be16(&self.buffer.as_ref()[field::URGENT])
    }

    /// Options, raw.
    #[inline]
    pub fn options(&self) -> &[u8] {
        &self.buffer.as_ref()[HEADER_LEN..usize::from(self.header_len())]
    }
}

impl<'a, T: AsRef<[u8]> + ?Sized> TcpPacket<&'a T> {
    /// Everything after the header.
    #[inline]
    pub fn payload(&self) -> &'a [u8] {
        &T::as_ref(self.buffer)[usize::from(self.header_len())..]
    }
}

/// The TCP bytes an IP packet carries → a segment.
#[inline]
pub(crate) fn decode(ip: IpPayload<'_>) -> Result<TcpSegment<'_>, DecodeError> {
    let tcp = TcpPacket::new_checked(ip.data).map_err(|e| ip.refine(e))?;
    Ok(TcpSegment {
        src: ip.src,
        dst: ip.dst,
        src_port: tcp.src_port(),
        dst_port: tcp.dst_port(),
        seq: tcp.seq_number(),
        ack: tcp.ack_number(),
        flags: tcp.flags(),
        payload: tcp.payload(),
        missing: ip.missing,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    // 8080 → 54321, seq 1, ack 2, PSH|ACK, window 512, with MSS and NOP NOP SACK-permitted
    // options (8 bytes), then "HTTP".
    const SEGMENT: [u8; 32] = [
        0x1f, 0x90, 0xd4, 0x31, // ports
        0x00, 0x00, 0x00, 0x01, // seq
        0x00, 0x00, 0x00, 0x02, // ack
        0x70, 0x18, 0x02, 0x00, // data offset 7, PSH|ACK, window
        0x12, 0x34, 0x00, 0x00, // checksum, urgent
        0x02, 0x04, 0x05, 0xb4, 0x01, 0x01, 0x04, 0x02, // options
        b'H', b'T', b'T', b'P',
    ];

    #[test]
    fn accessors() {
        let tcp = TcpPacket::new_checked(&SEGMENT[..]).unwrap();
        assert_eq!(tcp.src_port(), 8080);
        assert_eq!(tcp.dst_port(), 54321);
        assert_eq!(tcp.seq_number(), 1);
        assert_eq!(tcp.ack_number(), 2);
        assert_eq!(tcp.header_len(), 28);
        assert_eq!(tcp.flags().bits(), TcpFlags::PSH | TcpFlags::ACK);
        assert_eq!(tcp.window_len(), 512);
        assert_eq!(tcp.checksum(), 0x1234);
        assert_eq!(tcp.urgent_at(), 0);
        assert_eq!(tcp.options(), &SEGMENT[20..28]);
        assert_eq!(tcp.payload(), b"HTTP");
    }

    #[test]
    fn flags() {
        let flags = TcpFlags::from_bits(0xff);
        assert!(flags.fin() && flags.syn() && flags.rst() && flags.psh());
        assert!(flags.ack() && flags.urg() && flags.ece() && flags.cwr());
        let none = TcpFlags::default();
        assert!(!(none.fin() || none.syn() || none.rst() || none.psh() || none.ack()));
        assert_eq!(
            format!("{:?}", TcpFlags::from_bits(TcpFlags::SYN | TcpFlags::ACK)),
            "TcpFlags(SYN|ACK)"
        );
        assert_eq!(format!("{none:?}"), "TcpFlags()");
    }

    #[test]
    fn short_and_bad() {
        for len in 0..28 {
            assert_eq!(
                TcpPacket::new_checked(&SEGMENT[..len]).unwrap_err(),
                DecodeError::Truncated(Layer::Tcp),
                "{len}"
            );
        }
        let mut bad = SEGMENT;
        bad[12] = 0x40;
        assert_eq!(
            TcpPacket::new_checked(&bad[..]).unwrap_err(),
            DecodeError::Malformed {
                layer: Layer::Tcp,
                reason: MalformedReason::HeaderLength
            }
        );
    }
}
