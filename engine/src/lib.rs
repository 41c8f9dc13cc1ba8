//! # tcp-sniffer engine
//!
//! Turns captured packets into the HTTP/1.x messages of the tcp-sniffer schema (v1).
//!
//! The data path, one module per stage:
//!
//! ```text
//! capture (AF_PACKET ring, libpcap live, pcap/pcapng file)
//!   └─► wire        decode link layer, IPv4/IPv6, TCP — zero-copy views
//!        └─► flow   flow table: connection per canonical 5-tuple, caps, idle timeout, sampling
//!             └─► reassembly   per-direction TCP byte streams: order, de-duplicate, gaps
//!                  └─► http    HTTP/1 framing, request/response pairing → HttpMessage
//!                       └─► http2   (HTTP/2 connections, handed over by http) frames,
//!                                   HPACK, one message per stream side
//!                       └─► message   serialise once ─► outputs
//! ```
//!
//! Every stage counts what it could not deliver; nothing is lost silently.
//! All buffering is bounded.
#![deny(missing_docs)]

pub mod allocator;
pub mod budget;
pub mod capture;
pub mod config;
pub mod fatal;
pub mod flow;
pub mod handoff;
pub mod http;
pub mod http2;
pub mod js_rows;
pub mod message;
pub mod metrics;
pub mod output;
pub mod pipeline;
pub mod reassembly;
pub mod redact;
pub mod runtime;
pub mod shard;
pub mod stats;
#[doc(hidden)]
pub mod testing;
pub mod time;
pub mod wire;
