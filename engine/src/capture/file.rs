//! Reading pcap and pcapng files.
//!
//! libpcap opens every file (so opening errors and the link type are exactly libpcap's)
//! and reads pcapng and anything unusual. Classic pcap records — the common case, and
//! the one replay speed is measured on — are read by `FastPcap`, a buffered reader of
//! our own: libpcap reads each record with two `fread` calls and copies it once more,
//! which was about a tenth of a one-worker replay.
//!
//! Invariant: the fast reader returns exactly the records libpcap would (same bytes,
//! same timestamps after libpcap's nanosecond → microsecond scaling), and only those it
//! is sure of. At the first record it is not sure of (a short or damaged header, a
//! capture length beyond the snapshot length, a file cut short, anything else) it hands
//! over: libpcap skips the records already returned and reads on from there, so damage
//! is found, counted and worded exactly as libpcap words it. The fast reader is chosen
//! only for the standard pcap magic numbers (both byte orders, micro- and nanosecond)
//! with version 2.4 and a plain link-type field; everything else is libpcap's from the
//! start. It reads with `read(2)` into one buffer rather than mapping the file: a mapped
//! file counts towards the resident set as it is read, and a file truncated while mapped
//! kills the process with SIGBUS — a read just comes up short, which is damage as usual.
//!
//! A damaged file is read as far as it can be: the records before the damage are
//! processed, the damage is counted (`capture.file_errors`) and reported, and the
//! run ends normally — what was already captured is never thrown away.

use std::io::Read;

use super::LinkType;
use crate::time::Timestamp;

/// An open capture file.
pub struct CaptureFile {
    /// Always open: it has checked the file header; it reads every record once the
    /// fast reader hands over (or from the start when there is none).
    cap: pcap::Capture<pcap::Offline>,
    /// The fast reader for classic pcap, until it hands over.
    fast: Option<FastPcap>,
    link: LinkType,
    path: String,
}

/// What reading the next record gave.
pub enum Record<'a> {
    /// A packet: capture time and the captured bytes (possibly cut at the snaplen).
    Packet(Timestamp, &'a [u8]),
    /// The file ends here.
    End,
    /// The file is damaged here; reading cannot go on. The text says how.
    Damaged(String),
}

impl CaptureFile {
    /// Opens a pcap or pcapng file.
    pub fn open(path: &str) -> Result<Self, SourceError> {
        let mut f = Self::open_with_libpcap(path)?;
        // Any trouble here just leaves the reading to libpcap, which has the file open.
        f.fast = std::fs::File::open(path).ok().and_then(FastPcap::new);
        Ok(f)
    }

    /// Opens a file to be read by libpcap alone (the reference the fast reader is
    /// tested against).
    #[doc(hidden)]
    pub fn open_with_libpcap(path: &str) -> Result<Self, SourceError> {
        let cap = pcap::Capture::from_file(path).map_err(|e| SourceError::OpenFile {
            path: path.to_string(),
            reason: e.to_string(),
        })?;
        let dl = cap.get_datalink();
        let link = LinkType::from_pcap(dl.0).ok_or_else(|| SourceError::UnsupportedLinkType {
            path: path.to_string(),
            linktype: dl.0,
            name: dl.get_name().unwrap_or_else(|_| "unknown".into()),
        })?;
        Ok(CaptureFile {
            cap,
            fast: None,
            link,
            path: path.to_string(),
        })
    }

    /// How the frames are to be decoded.
    pub fn link(&self) -> LinkType {
        self.link
    }

    /// The path as given to [`CaptureFile::open`].
    pub fn path(&self) -> &str {
        &self.path
    }

    /// Whether the fast reader is (still) reading this file.
    #[doc(hidden)]
    pub fn is_fast(&self) -> bool {
        self.fast.is_some()
    }

    /// The next record.
    #[inline]
    pub fn next_record(&mut self) -> Record<'_> {
        if let Some(fast) = &mut self.fast {
            match fast.next() {
                Fast::Packet(ts, at) => {
                    // Re-borrowed here so the hand-over below may use `self`.
                    let fast = self.fast.as_ref().expect("just read from it");
                    return Record::Packet(ts, &fast.buf[at]);
                }
                Fast::End => return Record::End,
                Fast::HandOver => {
                    let done = fast.records;
                    self.fast = None;
                    if let Err(instead) = self.skip(done) {
                        return instead;
                    }
                }
            }
        }
        match self.cap.next_packet() {
            Ok(p) => {
                let tv = p.header.ts;
                let ts = Timestamp::from_secs_micros(
                    tv.tv_sec.max(0) as u64,
                    tv.tv_usec.clamp(0, 999_999) as u64,
                );
                Record::Packet(ts, p.data)
            }
            Err(pcap::Error::NoMorePackets) => Record::End,
            Err(e) => Record::Damaged(e.to_string()),
        }
    }
}

impl CaptureFile {
    /// Skips the first `records` records with libpcap: those a fast reader already
    /// returned when it handed over. `Err` is what to report instead.
    pub(crate) fn skip(&mut self, records: u64) -> Result<(), Record<'static>> {
        // libpcap read the same header at open; the records before the hand-over were
        // whole and plain, so skipping them cannot fail — if it somehow does, that is the
        // damage to report.
        for _ in 0..records {
            match self.cap.next_packet() {
                Ok(_) => {}
                Err(pcap::Error::NoMorePackets) => return Err(Record::End),
                Err(e) => return Err(Record::Damaged(e.to_string())),
            }
        }
        Ok(())
    }
}

/// What the fast reader found.
enum Fast {
    /// A record: its time and where its bytes are in the buffer.
    Packet(Timestamp, std::ops::Range<usize>),
    /// The file ends exactly after the last record.
    End,
    /// Anything else: libpcap reads on from here.
    HandOver,
}

/// The most bytes libpcap accepts in one record of the link types tcp-sniffer decodes
/// (`MAXIMUM_SNAPLEN`); also its snapshot length when the header's is 0 or larger.
const MAX_SNAPLEN: u32 = 262_144;
/// A record header: seconds, micro- or nanoseconds, captured length, original length.
pub(crate) const RECORD_HEADER: usize = 16;
/// The read buffer: many records per `read(2)`, and always room for the largest one.
const BUF_SIZE: usize = 1 << 20;

/// How a classic pcap file the fast readers take writes its records (see the module docs):
/// read from its file header by [`PcapFormat::read`].
#[derive(Debug, Clone, Copy)]
pub(crate) struct PcapFormat {
    /// The file was written on a host of the other byte order.
    swapped: bool,
    /// Timestamps are in nanoseconds (libpcap scales them down to microseconds).
    nanos: bool,
    /// libpcap's snapshot length for the file: longer records are cut, which is libpcap's to do.
    pub(crate) snapshot: u32,
}

impl PcapFormat {
    /// The format of `file` when its header is one the fast readers take (see the module
    /// docs), leaving `file` positioned after the header; `None` leaves the file to libpcap.
    pub(crate) fn read(file: &mut std::fs::File) -> Option<PcapFormat> {
        let mut h = [0u8; 24];
        file.read_exact(&mut h).ok()?;
        let magic = u32::from_le_bytes(h[0..4].try_into().ok()?);
        let (swapped, nanos) = match magic {
            0xa1b2_c3d4 => (false, false),
            0xd4c3_b2a1 => (true, false),
            0xa1b2_3c4d => (false, true),
            0x4d3c_b2a1 => (true, true),
            _ => return None,
        };
        let u16_at = |i: usize| {
            let v = u16::from_le_bytes([h[i], h[i + 1]]);
            if swapped {
                v.swap_bytes()
            } else {
                v
            }
        };
        let u32_at = |i: usize| {
            let v = u32::from_le_bytes([h[i], h[i + 1], h[i + 2], h[i + 3]]);
            if swapped {
                v.swap_bytes()
            } else {
                v
            }
        };
        if u16_at(4) != 2 || u16_at(6) != 4 {
            return None;
        }
        // The upper bits carry an FCS length and other extensions: libpcap's to interpret.
        if u32_at(20) & 0xffff_0000 != 0 {
            return None;
        }
        let snaplen = u32_at(16);
        let snapshot = if snaplen == 0 || snaplen > MAX_SNAPLEN {
            MAX_SNAPLEN
        } else {
            snaplen
        };
        Some(PcapFormat {
            swapped,
            nanos,
            snapshot,
        })
    }

    /// The `u32` in the file's byte order at `at` of a record header.
    #[inline]
    fn field(&self, header: &[u8; RECORD_HEADER], at: usize) -> u32 {
        let v = u32::from_le_bytes([header[at], header[at + 1], header[at + 2], header[at + 3]]);
        if self.swapped {
            v.swap_bytes()
        } else {
            v
        }
    }

    /// A record header's captured length.
    #[inline]
    pub(crate) fn caplen(&self, header: &[u8; RECORD_HEADER]) -> u32 {
        self.field(header, 8)
    }

    /// A record header's capture time.
    #[inline]
    pub(crate) fn time(&self, header: &[u8; RECORD_HEADER]) -> Timestamp {
        // As libpcap 1.10 has it: the file's fields widen to its 64-bit `timeval` signed
        // when in host order but unsigned when byte-swapped (so 0x8000_0000 seconds is
        // before 1970 in one and 2038 in the other); nanoseconds scale down by integer
        // division; then the clamping `next_record` applies to libpcap's values.
        let widen = |v: u32| {
            if self.swapped {
                v as i64
            } else {
                v as i32 as i64
            }
        };
        let (secs, mut frac) = (widen(self.field(header, 0)), widen(self.field(header, 4)));
        if self.nanos {
            frac /= 1000;
        }
        Timestamp::from_secs_micros(secs.max(0) as u64, frac.clamp(0, 999_999) as u64)
    }
}

/// The buffered reader of classic pcap records (see the module docs).
struct FastPcap {
    file: std::fs::File,
    format: PcapFormat,
    buf: Vec<u8>,
    /// Unread bytes are `buf[start..end]`.
    start: usize,
    end: usize,
    /// `read` returned 0 (or failed: libpcap then reads again and says why).
    eof: bool,
    /// Records returned so far.
    records: u64,
}

impl FastPcap {
    /// A reader for `file` when its header is one the fast reader takes (see the module
    /// docs), positioned after the header; `None` leaves the file to libpcap.
    fn new(mut file: std::fs::File) -> Option<FastPcap> {
        let format = PcapFormat::read(&mut file)?;
        Some(FastPcap {
            file,
            format,
            buf: vec![0; BUF_SIZE],
            start: 0,
            end: 0,
            eof: false,
            records: 0,
        })
    }

    /// Makes at least `n` unread bytes available, unless the file ends first; returns
    /// whether they are.
    fn fill(&mut self, n: usize) -> bool {
        if self.end - self.start >= n {
            return true;
        }
        debug_assert!(n <= self.buf.len());
        if self.start > 0 {
            self.buf.copy_within(self.start..self.end, 0);
            self.end -= self.start;
            self.start = 0;
        }
        while self.end < n && !self.eof {
            match self.file.read(&mut self.buf[self.end..]) {
                Ok(0) | Err(_) => self.eof = true,
                Ok(k) => self.end += k,
            }
        }
        self.end >= n
    }

    /// The next record (see [`Fast`]).
    #[inline]
    fn next(&mut self) -> Fast {
        // Nearly every record is already whole in the buffer: one bounds check for it,
        // and the refill path only when it is not.
        match self.buffered() {
            Some(record) => record,
            None => self.refill_and_next(),
        }
    }

    /// The next record if its header and bytes are all buffered and it is one the fast
    /// reader takes; `None` otherwise (the caller refills, or hands over).
    #[inline]
    fn buffered(&mut self) -> Option<Fast> {
        let unread = self.buf.get(self.start..self.end)?;
        let header = unread.first_chunk::<RECORD_HEADER>()?;
        let caplen = self.format.caplen(header);
        // Longer than the snapshot: libpcap's to refuse, with its own words.
        if caplen > self.format.snapshot || unread.len() - RECORD_HEADER < caplen as usize {
            return None;
        }
        let ts = self.format.time(header);
        let at = self.start + RECORD_HEADER;
        self.start = at + caplen as usize;
        self.records += 1;
        Some(Fast::Packet(ts, at..self.start))
    }

    /// Refills the buffer, then reads the next record; the end of the file, or a hand-over
    /// at anything the fast reader is not sure of.
    #[cold]
    fn refill_and_next(&mut self) -> Fast {
        if !self.fill(RECORD_HEADER) {
            // Nothing left: the end. A partial header is damage, libpcap's to word.
            return if self.start == self.end {
                Fast::End
            } else {
                Fast::HandOver
            };
        }
        let header = self.buf[self.start..self.end].first_chunk::<RECORD_HEADER>();
        let Some(caplen) = header.map(|h| self.format.caplen(h)) else {
            return Fast::HandOver; // cannot be: `fill` made the header's bytes available
        };
        if caplen > self.format.snapshot || !self.fill(RECORD_HEADER + caplen as usize) {
            return Fast::HandOver;
        }
        // `fill` may have moved the unread bytes to the front: read the record from there.
        self.buffered().unwrap_or(Fast::HandOver)
    }
}

/// A capture source could not be opened or read.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SourceError {
    /// The capture file could not be opened (missing, unreadable, not pcap/pcapng).
    #[error("cannot read capture file {path}: {reason}")]
    OpenFile {
        /// The path as given.
        path: String,
        /// libpcap's explanation.
        reason: String,
    },
    /// The file's link-layer type is not one tcp-sniffer decodes.
    #[error(
        "capture file {path} has link-layer type {linktype} ({name}), which tcp-sniffer does not decode; \
         supported: Ethernet (1), BSD loopback (0, 108), raw IP (12, 14, 101, 228, 229), Linux cooked SLL (113) and SLL2 (276)"
    )]
    UnsupportedLinkType {
        /// The path as given.
        path: String,
        /// The pcap LINKTYPE value.
        linktype: i32,
        /// Its libpcap name, when known.
        name: String,
    },
}
