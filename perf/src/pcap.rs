//! Classic pcap files (not pcapng): a streaming writer and a tiny reader.
//!
//! Layout (all little-endian here): a 24-byte global header — magic `0xa1b2c3d4`
//! (microsecond timestamps), version 2.4, thiszone 0, sigfigs 0, snaplen, link type — then per
//! packet a 16-byte record header (`ts_sec`, `ts_usec`, `incl_len`, `orig_len`) and the frame.

use std::io::{self, Read, Write};

/// Link type of Ethernet frames (`LINKTYPE_ETHERNET`).
pub const LINKTYPE_ETHERNET: u32 = 1;
/// Magic number of microsecond-resolution classic pcap.
pub const MAGIC_US: u32 = 0xa1b2_c3d4;
/// Snap length written in the global header; every frame is captured whole.
pub const SNAPLEN: u32 = 262_144;
/// Size of the global header.
pub const GLOBAL_HEADER_LEN: usize = 24;
/// Size of each record header.
pub const RECORD_HEADER_LEN: usize = 16;

/// Streams packets into a classic pcap file; counts what it wrote.
pub struct PcapWriter<W: Write> {
    out: W,
    bytes: u64,
    packets: u64,
}

impl<W: Write> PcapWriter<W> {
    /// Writes the global header (Ethernet link type) and returns the writer.
    pub fn new(mut out: W) -> io::Result<Self> {
        let mut h = [0u8; GLOBAL_HEADER_LEN];
        h[0..4].copy_from_slice(&MAGIC_US.to_le_bytes());
        h[4..6].copy_from_slice(&2u16.to_le_bytes());
        h[6..8].copy_from_slice(&4u16.to_le_bytes());
        // thiszone (8..12) and sigfigs (12..16) stay 0.
        h[16..20].copy_from_slice(&SNAPLEN.to_le_bytes());
        h[20..24].copy_from_slice(&LINKTYPE_ETHERNET.to_le_bytes());
        out.write_all(&h)?;
        Ok(PcapWriter {
            out,
            bytes: GLOBAL_HEADER_LEN as u64,
            packets: 0,
        })
    }

    /// Appends one whole frame captured at `ts_us` microseconds since the Unix epoch.
    #[inline]
    pub fn write_packet(&mut self, ts_us: u64, frame: &[u8]) -> io::Result<()> {
        let mut h = [0u8; RECORD_HEADER_LEN];
        h[0..4].copy_from_slice(&((ts_us / 1_000_000) as u32).to_le_bytes());
        h[4..8].copy_from_slice(&((ts_us % 1_000_000) as u32).to_le_bytes());
        let len = frame.len() as u32;
        h[8..12].copy_from_slice(&len.to_le_bytes());
        h[12..16].copy_from_slice(&len.to_le_bytes());
        self.out.write_all(&h)?;
        self.out.write_all(frame)?;
        self.bytes += (RECORD_HEADER_LEN + frame.len()) as u64;
        self.packets += 1;
        Ok(())
    }

    /// Bytes written so far, headers included.
    pub fn bytes(&self) -> u64 {
        self.bytes
    }

    /// Packets written so far.
    pub fn packets(&self) -> u64 {
        self.packets
    }

    /// Flushes and returns the inner writer.
    pub fn finish(mut self) -> io::Result<W> {
        self.out.flush()?;
        Ok(self.out)
    }
}

/// One record read back from a pcap file.
#[derive(Debug, Clone)]
pub struct Record {
    /// Capture time, microseconds since the Unix epoch.
    pub ts_us: u64,
    /// Original length of the frame on the wire.
    pub orig_len: u32,
    /// The captured bytes (`incl_len` of them).
    pub data: Vec<u8>,
}

/// Minimal reader of little-endian microsecond classic pcap (what [`PcapWriter`] writes).
pub struct PcapReader<R: Read> {
    input: R,
    /// Link type from the global header.
    pub linktype: u32,
    /// Snap length from the global header.
    pub snaplen: u32,
}

impl<R: Read> PcapReader<R> {
    /// Reads and checks the global header.
    pub fn new(mut input: R) -> io::Result<Self> {
        let mut h = [0u8; GLOBAL_HEADER_LEN];
        input.read_exact(&mut h)?;
        let le = |r: std::ops::Range<usize>| u32::from_le_bytes(h[r].try_into().unwrap());
        if le(0..4) != MAGIC_US {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "not a LE µs pcap",
            ));
        }
        if u16::from_le_bytes([h[4], h[5]]) != 2 || u16::from_le_bytes([h[6], h[7]]) != 4 {
            return Err(io::Error::new(io::ErrorKind::InvalidData, "not pcap 2.4"));
        }
        Ok(PcapReader {
            input,
            linktype: le(20..24),
            snaplen: le(16..20),
        })
    }

    /// The next record, `None` at a clean end of file.
    pub fn next_record(&mut self) -> io::Result<Option<Record>> {
        let mut h = [0u8; RECORD_HEADER_LEN];
        match self.input.read_exact(&mut h) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(None),
            Err(e) => return Err(e),
        }
        let le = |r: std::ops::Range<usize>| u32::from_le_bytes(h[r].try_into().unwrap());
        let (sec, usec, incl, orig) = (le(0..4), le(4..8), le(8..12), le(12..16));
        if usec >= 1_000_000 || incl > self.snaplen || incl > orig {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "bad record header",
            ));
        }
        let mut data = vec![0u8; incl as usize];
        self.input.read_exact(&mut data)?;
        Ok(Some(Record {
            ts_us: sec as u64 * 1_000_000 + usec as u64,
            orig_len: orig,
            data,
        }))
    }
}

/// Counts the packets of a pcap file without keeping them (for packets/s in reports).
pub fn count_packets(path: &std::path::Path) -> io::Result<u64> {
    let f = std::fs::File::open(path)?;
    let mut r = io::BufReader::with_capacity(1 << 20, f);
    let mut h = [0u8; GLOBAL_HEADER_LEN];
    r.read_exact(&mut h)?;
    let mut n = 0u64;
    let mut rh = [0u8; RECORD_HEADER_LEN];
    let mut skip = vec![0u8; SNAPLEN as usize];
    loop {
        match r.read_exact(&mut rh) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(n),
            Err(e) => return Err(e),
        }
        let incl = u32::from_le_bytes(rh[8..12].try_into().unwrap()) as usize;
        let k = incl.min(skip.len());
        r.read_exact(&mut skip[..k])?;
        n += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn write_then_read_back() {
        let mut w = PcapWriter::new(Vec::new()).unwrap();
        w.write_packet(1_700_000_000_123_456, &[1, 2, 3]).unwrap();
        w.write_packet(1_700_000_001_000_000, &[9; 60]).unwrap();
        assert_eq!(w.packets(), 2);
        assert_eq!(w.bytes(), 24 + 16 + 3 + 16 + 60);
        let buf = w.finish().unwrap();
        assert_eq!(buf.len(), 24 + 16 + 3 + 16 + 60);
        let mut r = PcapReader::new(&buf[..]).unwrap();
        assert_eq!(r.linktype, LINKTYPE_ETHERNET);
        let a = r.next_record().unwrap().unwrap();
        assert_eq!(
            (a.ts_us, a.orig_len, a.data.as_slice()),
            (1_700_000_000_123_456, 3, &[1u8, 2, 3][..])
        );
        let b = r.next_record().unwrap().unwrap();
        assert_eq!(b.data.len(), 60);
        assert!(r.next_record().unwrap().is_none());
    }
}
