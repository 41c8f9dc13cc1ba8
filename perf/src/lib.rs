//! `sniffer-perf`: the benchmark harness of tcp-sniffer.
//!
//! * [`gen`] writes deterministic synthetic pcap files (workloads S, L, F, A, M, H) with the
//!   HTTP messages a correct sniffer must emit written beside them ([`truth`]).
//! * [`compare`] runs tcp-sniffer and other tools (tcpdump, tshark, tcpflow, httpry) over the
//!   same files and reports wall time, CPU time, peak RSS and throughput as Markdown, JSON and SVG.
//! * [`replay`] runs the engine in-process (the `tcp_sniffer` library) over the same files with
//!   N workers, one child process per timed run; [`live`] measures live capture under load.
//! * [`hostile`] runs the CLI over hostile captures ([`gen::hostile`]): peak RSS, the real
//!   exchanges mixed in, every counter; fails on crashes, memory over the limit, unexplained loss.
//! * [`measure`] times child processes (wall, CPU, peak RSS) for both.
//! * [`pcap`] and [`frame`] are the small pieces of file format and packet layout they share.
//!
//! ```no_run
//! use sniffer_perf::gen::{generate, Workload};
//! let (stats, _, _) = generate(Workload::S, 1_000_000, 1, Vec::new(), Vec::new()).unwrap();
//! assert!(stats.bytes >= 1_000_000);
//! ```
#![deny(missing_docs)]

pub mod compare;
pub mod frame;
pub mod gen;
pub mod hostile;
pub mod live;
pub mod measure;
pub mod pcap;
pub mod replay;
pub mod report;
pub mod rng;
pub mod summary;
pub mod truth;
