//! Where packets come from: capture files now; live capture (AF_PACKET, libpcap) plugs in beside.
//!
//! A source hands out `(timestamp, frame bytes)` pairs and the [`LinkType`] that
//! tells the decoder how to read them. Frames are borrowed from the source's own
//! buffer and are valid until the next call: nothing is copied here.

pub mod file;

pub use crate::wire::LinkType;

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
