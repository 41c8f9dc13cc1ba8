//! PPPoE session stage (RFC 2516 §4, ethertype `0x8864`) and Cisco HDLC
//! (`LINKTYPE_C_HDLC`, 104): the two link layers an access network or a WAN
//! router interface puts in front of IP.
//!
//! PPPoE session header: `ver/type` (1, `0x11`), `code` (1, `0x00` in the
//! session stage), `session id` (2), `length` (2: the PPP payload, protocol
//! field included), then the PPP protocol (2: `0x0021` IPv4, `0x0057` IPv6).
//! The PPPoE length bounds the IP packet, as the IP length does below it
//! (Ethernet padding is never payload).
//!
//! Cisco HDLC header: address (1, `0x0f` unicast or `0x8f` broadcast), control
//! (1, `0x00`), protocol (2, an ethertype).
//!
//! No accessor panics after `check_len` returns `Ok` (see the [`super`] docs).

use super::{be16, DecodeError, Layer, MalformedReason, Network};

/// PPP protocol numbers for IP.
pub mod ppp_protocol {
    /// IPv4.
    pub const IPV4: u16 = 0x0021;
    /// IPv6.
    pub const IPV6: u16 = 0x0057;
}

mod field {
    use core::ops::Range;
    pub const VER_TYPE: usize = 0;
    pub const CODE: usize = 1;
    pub const SESSION: Range<usize> = 2..4;
    pub const LENGTH: Range<usize> = 4..6;
    pub const PROTOCOL: Range<usize> = 6..8;
    pub const PAYLOAD: usize = 8;
}

/// A view over a PPPoE session packet (the Ethernet payload).
#[derive(Debug, Clone, Copy)]
pub struct PppoeSession<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> PppoeSession<T> {
    /// A view without checks; accessors may panic on a short buffer.
    pub fn new_unchecked(buffer: T) -> Self {
        PppoeSession { buffer }
    }

    /// A view whose accessors cannot panic.
    pub fn new_checked(buffer: T) -> Result<Self, DecodeError> {
        let p = Self::new_unchecked(buffer);
        p.check_len()?;
        Ok(p)
    }

    /// Every accessor's bytes lie inside the buffer.
    pub fn check_len(&self) -> Result<(), DecodeError> {
        if self.buffer.as_ref().len() < field::PAYLOAD {
            return Err(DecodeError::Truncated(Layer::Pppoe));
        }
        Ok(())
    }

    /// Version (high nibble) and type (low nibble): `0x11`.
    pub fn ver_type(&self) -> u8 {
        self.buffer.as_ref()[field::VER_TYPE]
    }
    /// Code: `0x00` in the session stage.
    pub fn code(&self) -> u8 {
        self.buffer.as_ref()[field::CODE]
    }
    /// Session id.
    pub fn session_id(&self) -> u16 {
        be16(&self.buffer.as_ref()[field::SESSION])
    }
    /// Length of the PPP payload, protocol field included.
    pub fn length(&self) -> u16 {
        be16(&self.buffer.as_ref()[field::LENGTH])
    }
    /// PPP protocol.
    pub fn protocol(&self) -> u16 {
        be16(&self.buffer.as_ref()[field::PROTOCOL])
    }
    /// The PPP payload, bounded by `length` (or by the buffer, when the capture cut it).
    pub fn payload(&self) -> &[u8] {
        let b = self.buffer.as_ref();
        &b[field::PAYLOAD..payload_end(b.len(), self.length())]
    }
}

/// Where the PPP payload ends: `length` counts from the protocol field on.
fn payload_end(buffer_len: usize, length: u16) -> usize {
    (field::LENGTH.end + usize::from(length)).clamp(field::PAYLOAD, buffer_len.max(field::PAYLOAD))
}

/// Decodes a PPPoE session packet to the IP packet inside.
pub(crate) fn decode(packet: &[u8]) -> Result<(Network, &[u8]), DecodeError> {
    let p = PppoeSession::new_checked(packet)?;
    if p.ver_type() != 0x11 || p.code() != 0 || p.length() < 2 {
        return Err(DecodeError::Malformed {
            layer: Layer::Pppoe,
            reason: MalformedReason::Length,
        });
    }
    let network = match p.protocol() {
        ppp_protocol::IPV4 => Network::Ipv4,
        ppp_protocol::IPV6 => Network::Ipv6,
        other => return Err(DecodeError::NotIp(0x8864_0000 | u32::from(other))),
    };
    Ok((
        network,
        &packet[field::PAYLOAD..payload_end(packet.len(), p.length())],
    ))
}

/// Decodes a Cisco HDLC frame to the IP packet inside.
pub(crate) fn decode_cisco_hdlc(frame: &[u8]) -> Result<(Network, &[u8]), DecodeError> {
    if frame.len() < 4 {
        return Err(DecodeError::Truncated(Layer::CiscoHdlc));
    }
    if !matches!(frame[0], 0x0f | 0x8f) {
        return Err(DecodeError::Malformed {
            layer: Layer::CiscoHdlc,
            reason: MalformedReason::Length,
        });
    }
    Ok((Network::from_ethertype(be16(&frame[2..4]))?, &frame[4..]))
}

#[cfg(test)]
mod tests {
    use super::*;

    const IP: [u8; 4] = [0x45, 0, 0, 20];

    fn pppoe(protocol: u16, ip: &[u8], pad: usize) -> Vec<u8> {
        let mut v = vec![0x11, 0x00, 0x12, 0x34];
        v.extend_from_slice(&((ip.len() + 2) as u16).to_be_bytes());
        v.extend_from_slice(&protocol.to_be_bytes());
        v.extend_from_slice(ip);
        v.extend(std::iter::repeat_n(0xee, pad));
        v
    }

    #[test]
    fn pppoe_session_gives_the_ip_packet_without_padding() {
        let p = pppoe(ppp_protocol::IPV4, &IP, 6);
        assert_eq!(decode(&p).unwrap(), (Network::Ipv4, &IP[..]));
        let v = PppoeSession::new_checked(&p[..]).unwrap();
        assert_eq!(v.session_id(), 0x1234);
        let p6 = pppoe(ppp_protocol::IPV6, &[0x60, 0, 0, 0], 0);
        assert_eq!(decode(&p6).unwrap().0, Network::Ipv6);
        // LCP is not IP.
        assert!(matches!(
            decode(&pppoe(0xc021, &IP, 0)),
            Err(DecodeError::NotIp(_))
        ));
        // Discovery stage (code != 0) and bad versions are malformed.
        let mut d = p.clone();
        d[1] = 0x09;
        assert!(matches!(decode(&d), Err(DecodeError::Malformed { .. })));
        // Every prefix: no panic; a cut header is truncated.
        for n in 0..p.len() {
            let r = decode(&p[..n]);
            if n < 8 {
                assert_eq!(r, Err(DecodeError::Truncated(Layer::Pppoe)));
            }
        }
    }

    #[test]
    fn cisco_hdlc_gives_the_ip_packet() {
        let mut f = vec![0x0f, 0x00, 0x08, 0x00];
        f.extend_from_slice(&IP);
        assert_eq!(decode_cisco_hdlc(&f).unwrap(), (Network::Ipv4, &IP[..]));
        f[2..4].copy_from_slice(&[0x86, 0xdd]);
        assert_eq!(decode_cisco_hdlc(&f).unwrap().0, Network::Ipv6);
        f[2..4].copy_from_slice(&[0x80, 0x35]); // SLARP
        assert!(matches!(
            decode_cisco_hdlc(&f),
            Err(DecodeError::NotIp(0x8035))
        ));
        assert_eq!(
            decode_cisco_hdlc(&f[..3]),
            Err(DecodeError::Truncated(Layer::CiscoHdlc))
        );
        f[0] = 0x42;
        assert!(decode_cisco_hdlc(&f).is_err());
    }
}
