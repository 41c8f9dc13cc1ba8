//! Reading pcap and pcapng files through libpcap.
//!
//! A damaged file is read as far as it can be: the records before the damage are
//! processed, the damage is counted (`capture.file_errors`) and reported, and the
//! run ends normally — what was already captured is never thrown away.

use super::LinkType;
use crate::time::Timestamp;

/// An open capture file.
pub struct CaptureFile {
    cap: pcap::Capture<pcap::Offline>,
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

    /// The next record.
    pub fn next_record(&mut self) -> Record<'_> {
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
