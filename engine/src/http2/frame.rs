//! HTTP/2 frames (RFC 9113 §4, §6): the 9-byte header and the payload layouts
//! an observer needs.
//!
//! Zero-copy: every function takes the payload slice it is given and returns
//! sub-slices of it. No function here panics on any input: lengths are checked
//! before every slice (the "no accessor panics after the check" contract).

/// Length of a frame header.
pub(crate) const HEADER_LEN: usize = 9;
/// The client connection preface (RFC 9113 §3.4).
pub(crate) const PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
/// The default and smallest `SETTINGS_MAX_FRAME_SIZE` (RFC 9113 §6.5.2).
pub(crate) const DEFAULT_MAX_FRAME: u32 = 16_384;

/// Frame types (RFC 9113 §6).
pub(crate) mod kind {
    pub(crate) const DATA: u8 = 0x0;
    pub(crate) const HEADERS: u8 = 0x1;
    pub(crate) const PRIORITY: u8 = 0x2;
    pub(crate) const RST_STREAM: u8 = 0x3;
    pub(crate) const SETTINGS: u8 = 0x4;
    pub(crate) const PUSH_PROMISE: u8 = 0x5;
    pub(crate) const PING: u8 = 0x6;
    pub(crate) const GOAWAY: u8 = 0x7;
    pub(crate) const WINDOW_UPDATE: u8 = 0x8;
    pub(crate) const CONTINUATION: u8 = 0x9;
}

/// Frame flags (RFC 9113 §6).
pub(crate) mod flag {
    pub(crate) const END_STREAM: u8 = 0x1;
    pub(crate) const ACK: u8 = 0x1;
    pub(crate) const END_HEADERS: u8 = 0x4;
    pub(crate) const PADDED: u8 = 0x8;
    pub(crate) const PRIORITY: u8 = 0x20;
}

/// A frame's 9-byte header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct FrameHeader {
    /// Payload length (24 bits).
    pub(crate) len: u32,
    /// Frame type.
    pub(crate) kind: u8,
    /// Flags.
    pub(crate) flags: u8,
    /// Stream identifier (31 bits; the reserved bit is dropped).
    pub(crate) stream: u32,
}

impl FrameHeader {
    /// Reads a header from the first [`HEADER_LEN`] bytes; `None` when shorter.
    pub(crate) fn parse(b: &[u8]) -> Option<FrameHeader> {
        let b: &[u8; HEADER_LEN] = b.get(..HEADER_LEN)?.try_into().ok()?;
        Some(FrameHeader {
            len: u32::from_be_bytes([0, b[0], b[1], b[2]]),
            kind: b[3],
            flags: b[4],
            stream: u32::from_be_bytes([b[5], b[6], b[7], b[8]]) & 0x7fff_ffff,
        })
    }

    /// Whether `flags` has `f`.
    pub(crate) fn has(&self, f: u8) -> bool {
        self.flags & f != 0
    }

    /// Whether this header is what a conforming peer could send (known type
    /// with the right stream kind and a length the type allows, within
    /// `max_len`). Used to find frame boundaries after a gap.
    pub(crate) fn plausible(&self, max_len: u32) -> bool {
        if self.len > max_len {
            return false;
        }
        let on_stream = self.stream != 0;
        match self.kind {
            kind::DATA | kind::HEADERS | kind::CONTINUATION | kind::PUSH_PROMISE => on_stream,
            kind::PRIORITY => on_stream && self.len == 5,
            kind::RST_STREAM => on_stream && self.len == 4,
            kind::SETTINGS => {
                !on_stream && self.len.is_multiple_of(6) && self.flags & !flag::ACK == 0
            }
            kind::PING => !on_stream && self.len == 8 && self.flags & !flag::ACK == 0,
            kind::GOAWAY => !on_stream && self.len >= 8,
            kind::WINDOW_UPDATE => self.len == 4,
            _ => false,
        }
    }
}

/// A payload that breaks its frame type's layout (a FRAME_SIZE_ERROR or
/// PROTOCOL_ERROR for an endpoint).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct FrameError;

/// The payload without its padding (`PADDED` flag: one length byte first,
/// that many bytes of padding last). `(pad_len_field, data, padding)` sizes.
pub(crate) fn unpad(h: &FrameHeader, p: &[u8]) -> Result<(usize, usize, usize), FrameError> {
    if !h.has(flag::PADDED) {
        return Ok((0, p.len(), 0));
    }
    let pad = usize::from(*p.first().ok_or(FrameError)?);
    let data = p.len().checked_sub(1 + pad).ok_or(FrameError)?;
    Ok((1, data, pad))
}

/// The header block fragment of a HEADERS frame (padding and priority removed).
pub(crate) fn headers_fragment<'a>(h: &FrameHeader, p: &'a [u8]) -> Result<&'a [u8], FrameError> {
    let (skip, len, _) = unpad(h, p)?;
    let p = &p[skip..skip + len];
    if h.has(flag::PRIORITY) {
        p.get(5..).ok_or(FrameError)
    } else {
        Ok(p)
    }
}

/// The promised stream id and header block fragment of a PUSH_PROMISE frame.
pub(crate) fn push_promise<'a>(
    h: &FrameHeader,
    p: &'a [u8],
) -> Result<(u32, &'a [u8]), FrameError> {
    let (skip, len, _) = unpad(h, p)?;
    let p = &p[skip..skip + len];
    let id = p.get(..4).ok_or(FrameError)?;
    let id = u32::from_be_bytes([id[0], id[1], id[2], id[3]]) & 0x7fff_ffff;
    Ok((id, &p[4..]))
}

/// The error code of a RST_STREAM frame.
pub(crate) fn rst_stream(p: &[u8]) -> Result<u32, FrameError> {
    let b: [u8; 4] = p.try_into().map_err(|_| FrameError)?;
    Ok(u32::from_be_bytes(b))
}

/// Last stream id and error code of a GOAWAY frame.
pub(crate) fn goaway(p: &[u8]) -> Result<(u32, u32), FrameError> {
    if p.len() < 8 {
        return Err(FrameError);
    }
    let last = u32::from_be_bytes([p[0], p[1], p[2], p[3]]) & 0x7fff_ffff;
    let code = u32::from_be_bytes([p[4], p[5], p[6], p[7]]);
    Ok((last, code))
}

/// The `(identifier, value)` pairs of a SETTINGS frame.
pub(crate) fn settings(p: &[u8]) -> Result<impl Iterator<Item = (u16, u32)> + '_, FrameError> {
    if !p.len().is_multiple_of(6) {
        return Err(FrameError);
    }
    Ok(p.chunks_exact(6).map(|c| {
        (
            u16::from_be_bytes([c[0], c[1]]),
            u32::from_be_bytes([c[2], c[3], c[4], c[5]]),
        )
    }))
}

/// SETTINGS identifiers this observer reads.
pub(crate) mod setting {
    pub(crate) const MAX_FRAME_SIZE: u16 = 0x5;
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A frame's bytes (test fixtures elsewhere in the module use it too).
    pub(crate) fn frame(kind: u8, flags: u8, stream: u32, payload: &[u8]) -> Vec<u8> {
        let len = payload.len() as u32;
        let mut v = vec![(len >> 16) as u8, (len >> 8) as u8, len as u8, kind, flags];
        v.extend_from_slice(&stream.to_be_bytes());
        v.extend_from_slice(payload);
        v
    }

    #[test]
    fn golden_headers() {
        // SETTINGS from nghttp2 (curl): MAX_CONCURRENT_STREAMS=100, INITIAL_WINDOW_SIZE=33554432,
        // ENABLE_PUSH=0.
        let b = b"\x00\x00\x12\x04\x00\x00\x00\x00\x00\x00\x03\x00\x00\x00\x64\x00\x04\x02\x00\x00\x00\x00\x02\x00\x00\x00\x00";
        let h = FrameHeader::parse(b).unwrap();
        assert_eq!(
            h,
            FrameHeader {
                len: 18,
                kind: kind::SETTINGS,
                flags: 0,
                stream: 0
            }
        );
        assert!(h.plausible(DEFAULT_MAX_FRAME));
        let s: Vec<_> = settings(&b[9..]).unwrap().collect();
        assert_eq!(s, vec![(3, 100), (4, 33_554_432), (2, 0)]);
        // Reserved bit dropped; HEADERS on stream 1 with END_STREAM|END_HEADERS.
        let h = FrameHeader::parse(b"\x00\x00\x05\x01\x05\x80\x00\x00\x01").unwrap();
        assert_eq!((h.len, h.kind, h.flags, h.stream), (5, 1, 5, 1));
        assert!(h.has(flag::END_STREAM) && h.has(flag::END_HEADERS));
        assert_eq!(FrameHeader::parse(b"\x00\x00\x05\x01"), None);
        // Implausible: SETTINGS on a stream, PING of 7 bytes, unknown type, DATA on stream 0.
        for bad in [
            frame(kind::SETTINGS, 0, 1, &[]),
            frame(kind::PING, 0, 0, &[0; 7]),
            frame(0x42, 0, 1, &[]),
            frame(kind::DATA, 0, 0, &[]),
        ] {
            assert!(!FrameHeader::parse(&bad)
                .unwrap()
                .plausible(DEFAULT_MAX_FRAME));
        }
    }

    #[test]
    fn golden_payloads() {
        // HEADERS with padding (2) and priority (5 bytes): fragment "ab".
        let p = [2u8, 0, 0, 0, 3, 16, b'a', b'b', 0, 0];
        let h = FrameHeader {
            len: p.len() as u32,
            kind: kind::HEADERS,
            flags: flag::PADDED | flag::PRIORITY,
            stream: 1,
        };
        assert_eq!(headers_fragment(&h, &p), Ok(&b"ab"[..]));
        // Padding longer than the payload.
        assert_eq!(headers_fragment(&h, &[9, 1, 2]), Err(FrameError));
        // Priority flag without its 5 bytes.
        let h2 = FrameHeader {
            flags: flag::PRIORITY,
            ..h
        };
        assert_eq!(headers_fragment(&h2, &[1, 2]), Err(FrameError));
        // DATA padding sizes.
        let d = FrameHeader {
            len: 6,
            kind: kind::DATA,
            flags: flag::PADDED,
            stream: 1,
        };
        assert_eq!(unpad(&d, &[2, b'x', b'y', b'z', 0, 0]), Ok((1, 3, 2)));
        assert_eq!(unpad(&d, &[]), Err(FrameError));
        // PUSH_PROMISE: promised stream 2, fragment 0x82.
        let pp = FrameHeader {
            len: 5,
            kind: kind::PUSH_PROMISE,
            flags: flag::END_HEADERS,
            stream: 1,
        };
        assert_eq!(
            push_promise(&pp, &[0x80, 0, 0, 2, 0x82]),
            Ok((2, &[0x82u8][..]))
        );
        assert_eq!(push_promise(&pp, &[0, 0]), Err(FrameError));
        assert_eq!(rst_stream(&[0, 0, 0, 8]), Ok(8));
        assert_eq!(rst_stream(&[0, 0, 8]), Err(FrameError));
        assert_eq!(goaway(&[0, 0, 0, 5, 0, 0, 0, 0, b'x']), Ok((5, 0)));
        assert!(settings(&[0; 5]).is_err());
    }
}
