//! Where packets come from: AF_PACKET `TPACKET_V3` rings with fanout, a libpcap fallback, and
//! capture files.
//!
//! Two self-contained live backends hand out the same zero-copy [`Packet`]:
//!
//! - [`afpacket`] — the default. One memory-mapped `TPACKET_V3` ring per worker, all rings in one
//!   fanout group whose program ([`bpf::Program::fanout_hash`]) hashes each connection the same
//!   way in both directions, so both directions of a connection reach the same ring (and hence
//!   the same worker). The port filter runs in the kernel
//!   as classic BPF compiled by libpcap ([`bpf`]); packets are read in place in the ring block and
//!   the block is handed back to the kernel when the callback has seen them all.
//! - [`pcap_live`] — the fallback (`captureBackend: "pcap"`, or `auto` when AF_PACKET cannot be set
//!   up): one libpcap handle in immediate mode; the caller dispatches by flow hash itself.
//!
//! ```no_run
//! use std::time::Duration;
//! use tcp_sniffer::capture::afpacket::{open_fanout, AfPacketConfig};
//!
//! let config = AfPacketConfig::new("any", &[80, 8080]);
//! let mut rings = open_fanout(&config, 2)?; // one per worker thread
//! let ring = &mut rings[0];
//! ring.poll(Duration::from_millis(100), |packet| {
//!     if let Ok(segment) = tcp_sniffer::wire::decode_tcp(packet.link, packet.data) {
//!         println!("{} -> {} ({} bytes)", segment.src_port, segment.dst_port, segment.payload.len());
//!     }
//! })?;
//! println!("kernel drops so far: {}", ring.stats()?.drops);
//! # Ok::<(), tcp_sniffer::capture::CaptureError>(())
//! ```
//!
//! # Decisions
//!
//! - **`SOCK_DGRAM`, not `SOCK_RAW`.** With `SOCK_RAW` the kernel delivers each device's own link
//!   header, so on `any` an Ethernet device (and `lo`, which is Ethernet-framed) and a tun or
//!   WireGuard device (no link header at all) share one socket. A classic BPF program is
//!   compiled for *one* link type: an Ethernet-compiled port filter reads the wrong offsets on a
//!   raw-IP device and silently drops (or wrongly passes) its traffic. With `SOCK_DGRAM` the kernel
//!   strips the link header and both the BPF filter and the ring frame start at the network
//!   header, on every device type. The filter is therefore compiled for `LINKTYPE_RAW` and every
//!   AF_PACKET [`Packet`] has [`LinkType::Raw`] (IPv4 or IPv6 told apart by the version nibble).
//!   This is what libpcap's own `any` device ("cooked" capture) does.
//! - **VLAN.** On receive the kernel always takes the outer 802.1Q tag out of the frame into
//!   `tp_vlan_tci` before packet taps run; on transmit, devices without VLAN offload get the tag
//!   inline, but the kernel's network-header offset already points past it. Either way a
//!   `SOCK_DGRAM` frame starts at the IP header, so no `vlan` clause is needed (or possible) in the
//!   raw-IP filter. Only the *inner* tag of a stacked (QinQ) frame received on the parent device
//!   would be left in front of the IP header; such frames are filtered out there and are seen on
//!   the VLAN sub-interface (or on `any`). The libpcap fallback, which captures Ethernet framing on
//!   named Ethernet devices, uses [`filter_expression`] with its `vlan` alternative.
//! - **Snap length.** The BPF program's accept value is the snap length; libpcap compiles
//!   `ret #65535` for a dead handle, which would cut GRO/TSO super-packets (64 KiB and, with BIG
//!   TCP, up to 512 KiB). [`bpf`] rewrites the accept value to "whole packet"; the ring block
//!   size then bounds a frame.
//! - **Starting a fanout group without splitting flows.** Every ring is created with a
//!   drop-everything filter, bound and joined to the group; only when *all* rings are members is
//!   the port filter swapped in (atomically, per socket). Otherwise the first ring would receive
//!   every flow until the others joined, and flows would move between rings while the group grew.
//! - **Fanout group ids** are kernel-assigned (`PACKET_FANOUT_FLAG_UNIQUEID`) unless the caller
//!   names one: a fixed id would silently merge two sniffers in one network namespace into one
//!   group, each seeing only part of the traffic.
//! - **Only `CAP_NET_RAW`.** No promiscuous mode unless asked for (a pod's own traffic does not
//!   need it), no `SO_RCVBUF` forcing (`SO_RCVBUFFORCE` needs `CAP_NET_ADMIN`; the ring is the
//!   buffer anyway).
//! - **Kernel counters.** `PACKET_STATISTICS` resets on read, so each backend accumulates them
//!   into [`KernelStats`] totals.
//!
//! The interface helpers here feed configuration defaults: [`local_addresses`] (to tell inbound
//! from outbound exchanges) and [`available_cpus`] ([`cgroup`]: the default number of workers).
//!
//! [`mod@file`] reads pcap and pcapng files (through libpcap) for replay.
//!
//! [`source`] puts all of them behind one small interface, [`source::PacketSource`], that
//! the one worker loop drives: live sources shed when behind, a file waits.

use std::ffi::CStr;
use std::fmt::Write as _;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

pub use crate::wire::LinkType;

pub mod afpacket;
pub mod bpf;
pub mod cgroup;
pub mod file;
pub mod pcap_live;
pub mod shared_file;
pub mod source;

pub use cgroup::available_cpus;
pub use file::{CaptureFile, Record, SourceError};

/// The interface name that means "every interface".
pub const ANY_INTERFACE: &str = "any";

/// One captured frame, borrowed from the capture buffer (the ring block, or libpcap's buffer).
///
/// Valid only inside the callback (AF_PACKET) or until the next read (libpcap): the bytes
/// belong to the kernel again afterwards. Copy out only what must outlive it.
#[derive(Debug, Clone, Copy)]
pub struct Packet<'a> {
    /// When the kernel saw the packet.
    pub ts: crate::time::Timestamp,
    /// The captured bytes, starting at the header `link` names; at most the snap length.
    pub data: &'a [u8],
    /// How to decode `data`.
    pub link: LinkType,
    /// The packet's length on the wire (as the kernel saw it, after GRO); `data` may be shorter.
    pub orig_len: u32,
}

/// Kernel-side counters of one capture handle, accumulated since it was opened.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct KernelStats {
    /// Packets that passed the kernel filter, *including* the ones dropped for lack of room.
    pub packets: u64,
    /// Packets that passed the filter but were dropped because the ring (or buffer) was full.
    pub drops: u64,
    /// AF_PACKET: how often the ring froze (every block was held by user space).
    pub freeze_q_cnt: u64,
    /// libpcap: packets the interface or its driver dropped (0 where not reported).
    pub interface_drops: u64,
}

impl KernelStats {
    /// Adds `other`'s counters to these (to sum the rings of a fanout group).
    pub fn merge(&mut self, other: &KernelStats) {
        let KernelStats {
            packets,
            drops,
            freeze_q_cnt,
            interface_drops,
        } = other;
        self.packets += packets;
        self.drops += drops;
        self.freeze_q_cnt += freeze_q_cnt;
        self.interface_drops += interface_drops;
    }
}

/// Why live capture could not start or could not go on.
///
/// The messages are written for the person reading the log at 3 a.m.: what is wrong, on which
/// interface, and what to do about it.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CaptureError {
    /// The interface does not exist in this network namespace.
    #[error(
        "no network interface named {name:?} in this network namespace; available: {}; \
         or use \"any\" to capture on all of them",
        list_or_none(.available)
    )]
    NoSuchInterface {
        /// The name as given.
        name: String,
        /// The interfaces that do exist (from `if_nameindex`).
        available: Vec<String>,
    },
    /// The interface exists but is administratively down (or went down during capture).
    #[error(
        "network interface {name:?} is down; bring it up (`ip link set {name} up`) or capture on \
         another interface"
    )]
    InterfaceDown {
        /// The interface name.
        name: String,
    },
    /// The interface was removed while capturing.
    #[error("network interface {name:?} went away during capture (device removed)")]
    InterfaceGone {
        /// The interface name.
        name: String,
    },
    /// The process lacks a capability the operation needs.
    #[error(
        "{operation} needs the {capability} capability, which this process does not have: run \
         as root or grant it (Kubernetes: securityContext.capabilities.add: [\"{k8s}\"])",
        k8s = .capability.trim_start_matches("CAP_")
    )]
    MissingCapability {
        /// What was being done.
        operation: &'static str,
        /// The Linux capability that is missing, e.g. `CAP_NET_RAW`.
        capability: &'static str,
    },
    /// The kernel could not allocate the ring.
    #[error(
        "cannot allocate the AF_PACKET ring for interface {interface:?}: {blocks} blocks of {} KiB \
         = {} MiB; the kernel is out of memory for it (ENOMEM). Lower the ring size or the \
         number of workers",
        .block_size / 1024,
        .total_bytes >> 20
    )]
    RingTooLarge {
        /// The interface name.
        interface: String,
        /// Blocks requested.
        blocks: u32,
        /// Bytes per block.
        block_size: u32,
        /// Bytes in all.
        total_bytes: u64,
    },
    /// AF_PACKET sockets do not exist here (kernel without `CONFIG_PACKET`, a sandbox such as
    /// gVisor); the libpcap backend will not work either.
    #[error("AF_PACKET sockets are not supported by this kernel or sandbox ({0})")]
    Unsupported(std::io::Error),
    /// The BPF filter expression did not compile.
    #[error("cannot compile the capture filter {expression:?}: {reason}")]
    Filter {
        /// The expression.
        expression: String,
        /// libpcap's explanation.
        reason: String,
    },
    /// A capture setting is out of range.
    #[error("invalid capture setting: {0}")]
    InvalidConfig(String),
    /// The named fanout group exists with different settings (another program uses the id).
    #[error(
        "PACKET_FANOUT group {group} is already used by another socket in this network namespace \
         with different settings (or is full); choose another group id or let the kernel \
         assign one"
    )]
    FanoutGroupInUse {
        /// The group id.
        group: u16,
    },
    /// libpcap delivers a link-layer type the decoder does not know.
    #[error(
        "interface {interface:?} delivers link-layer type {linktype} ({name}), which tcp-sniffer \
         does not decode; capture on \"any\" instead"
    )]
    UnsupportedLinkType {
        /// The interface name.
        interface: String,
        /// The pcap `LINKTYPE_*`/`DLT_*` value.
        linktype: i32,
        /// Its libpcap name.
        name: String,
    },
    /// A system call failed for another reason.
    #[error("{operation} failed for interface {interface:?}: {source}")]
    Os {
        /// The call, e.g. `setsockopt(PACKET_RX_RING)`.
        operation: &'static str,
        /// The interface name.
        interface: String,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// libpcap reported an error.
    #[error("libpcap: {operation} on interface {interface:?} failed: {reason}")]
    Pcap {
        /// What was being done.
        operation: &'static str,
        /// The interface name.
        interface: String,
        /// libpcap's explanation.
        reason: String,
    },
}

fn list_or_none(names: &[String]) -> String {
    if names.is_empty() {
        "(none)".to_string()
    } else {
        names.join(", ")
    }
}

/// The BPF filter expression for Ethernet-framed captures: TCP on any of `ports`, untagged or
/// behind one 802.1Q/802.1ad tag that is inline in the frame.
///
/// `[80]` gives `(P) or (vlan and (P))` where `P` is [`ip_filter_expression`]`(&[80])`.
/// No ports means all TCP. For link types without an Ethernet header (raw IP, Linux
/// cooked) use [`ip_filter_expression`]: libpcap cannot compile `vlan` for those.
pub fn filter_expression(ports: &[u16]) -> String {
    let ip = ip_filter_expression(ports);
    format!("({ip}) or (vlan and ({ip}))")
}

/// The BPF filter expression without a link-layer clause: TCP on any of `ports`, IPv4 and
/// IPv6, including IPv6 BIG TCP super-packets.
///
/// `[80]` gives `tcp port 80 or (ip6[6] == 0 and ip6[40] == 6 and (ip6[48:2] == 80 or
/// ip6[50:2] == 80))`. The second alternative is for IPv6 GSO/GRO packets over 64 KiB (BIG
/// TCP): the kernel hands them to packet taps with an 8-byte hop-by-hop header (a Jumbo Payload
/// option) between the IPv6 and TCP headers, which libpcap's `tcp port` does not look through,
/// so without it every such packet — most of a fast IPv6 transfer — would be filtered out.
/// No ports means all TCP (`ports: any`).
///
/// Every expression also lets the overlay encapsulations through ([`ENCAP_FILTER`]: VXLAN,
/// Geneve, GRE, IP-in-IP, 6in4 and 4in6, over IPv4 or IPv6): the kernel cannot look
/// inside them for the inner TCP port, so the decoder unwraps them and the flow table
/// keeps the monitored ports (`flow.segments_unmonitored` counts the rest). A pod's own
/// interface carries no overlay packets, so this costs nothing there; on a node's
/// interface it is what makes the pods' flows visible.
pub fn ip_filter_expression(ports: &[u16]) -> String {
    let mut ports = ports.to_vec();
    ports.sort_unstable();
    ports.dedup();
    // An IPv6 hop-by-hop header of 8 bytes followed by TCP: the BIG TCP layout.
    const BIG_TCP: &str = "ip6[6] == 0 and ip6[40] == 6";
    if ports.is_empty() {
        return format!("tcp or ({BIG_TCP}) or {ENCAP_FILTER}");
    }
    let mut plain = String::new();
    let mut big = String::new();
    for (i, (lo, hi)) in port_runs(&ports).into_iter().enumerate() {
        if i > 0 {
            plain.push_str(" or ");
            big.push_str(" or ");
        }
        if lo == hi {
            let _ = write!(plain, "tcp port {lo}");
            let _ = write!(big, "ip6[48:2] == {lo} or ip6[50:2] == {lo}");
        } else {
            // A run of consecutive ports costs the filter two comparisons, not one per port.
            let _ = write!(plain, "tcp portrange {lo}-{hi}");
            let _ = write!(
                big,
                "(ip6[48:2] >= {lo} and ip6[48:2] <= {hi}) or (ip6[50:2] >= {lo} and ip6[50:2] <= {hi})"
            );
        }
    }
    format!("{plain} or ({BIG_TCP} and ({big})) or {ENCAP_FILTER}")
}

/// `sorted` (sorted, no duplicates) as runs of consecutive ports, `(first, last)`.
fn port_runs(sorted: &[u16]) -> Vec<(u16, u16)> {
    let mut runs: Vec<(u16, u16)> = Vec::new();
    for &port in sorted {
        match runs.last_mut() {
            Some((_, last)) if u32::from(*last) + 1 == u32::from(port) => *last = port,
            _ => runs.push((port, port)),
        }
    }
    runs
}

/// The kernel's limit on the length of a classic BPF program (`BPF_MAXINSNS`).
pub const KERNEL_FILTER_MAX_INSTRUCTIONS: usize = 4096;

/// The filter a live capture installs: `expression(ports)` compiled for `linktype`, or, when
/// that program is longer than the kernel accepts ([`KERNEL_FILTER_MAX_INSTRUCTIONS`]: many
/// ports that are not consecutive), `expression(&[])` — all TCP — with a warning.
///
/// Why widen instead of failing or letting libpcap filter: the kernel refuses a longer
/// program with a bare `EINVAL`, and libpcap then filters in user space after copying every
/// packet of the host to the sniffer, while reporting the port filter as installed. All TCP
/// in the kernel keeps the cost visible and bounded, and nothing is missed: the flow table
/// keeps only the listed ports (the rest is counted in `flow.segments_unmonitored`).
pub(crate) fn live_filter(
    linktype: pcap::Linktype,
    ports: &[u16],
    expression: fn(&[u16]) -> String,
) -> Result<bpf::Program, CaptureError> {
    let exact = bpf::Program::compile(&expression(ports), linktype)?;
    // Room for the loopback prefix AF_PACKET puts in front (libpcap needs none, but one
    // rule for both backends keeps them filtering alike).
    let len = exact.instructions().len() + bpf::LOOPBACK_ECHO_PREFIX;
    if len <= KERNEL_FILTER_MAX_INSTRUCTIONS {
        return Ok(exact);
    }
    crate::output::log::log(
        crate::config::LogLevel::Warn,
        "too many ports for the kernel filter: it now lets all TCP through and tcp-sniffer \
         keeps the listed ports itself, which costs more CPU on a busy host; list fewer ports, \
         or ranges of consecutive ports (each range is as cheap as one port)",
        &[
            ("ports", serde_json::json!(ports.len())),
            ("instructions", serde_json::json!(len)),
            (
                "kernelLimit",
                serde_json::json!(KERNEL_FILTER_MAX_INSTRUCTIONS),
            ),
        ],
    );
    bpf::Program::compile(&expression(&[]), linktype)
}

/// The overlay encapsulations the decoder unwraps (`wire::encap`), as a filter clause:
/// VXLAN (UDP 4789) and Geneve (UDP 6081) by destination port, GRE (47), IP-in-IP (4) and
/// IPv6-in-IP (41) by protocol, under an IPv4 or an IPv6 outer header.
///
/// `ip6 proto` and `udp dst port` look at the fixed IPv6 header's next header only, so the
/// clause also walks up to two outer IPv6 extension headers of the common "next header,
/// length in 8-byte units − 1" form: hop-by-hop (0), routing (43) and destination options
/// (60), in any order (a routing header with segments left, as SRv6 uses, is the case met
/// in practice). Their lengths come from the packet, so each offset is computed by the filter
/// (classic BPF has no loops: one clause per depth). A load past the packet's end rejects
/// it, which only happens to packets that matched nothing before this last clause. A tunnel
/// behind three or more extension headers, an AH (4-byte units) or a fragment header is not
/// matched live (docs/limits.md); files decode it.
pub const ENCAP_FILTER: &str = concat!(
    "(udp dst port 4789 or udp dst port 6081",
    " or ip proto 47 or ip proto 4 or ip proto 41",
    " or ip6 proto 47 or ip6 proto 4 or ip6 proto 41",
    // One extension header at 40; what it announces starts at 48 + 8 * its length.
    " or ((ip6[6] == 0 or ip6[6] == 43 or ip6[6] == 60) and (",
    "ip6[40] == 47 or ip6[40] == 4 or ip6[40] == 41",
    " or (ip6[40] == 17 and (ip6[50 + ip6[41] * 8:2] == 4789",
    " or ip6[50 + ip6[41] * 8:2] == 6081))",
    // A second one at 48 + 8 * L1, announcing what starts at 56 + 8 * L1 + 8 * L2.
    " or ((ip6[40] == 0 or ip6[40] == 43 or ip6[40] == 60) and (",
    "ip6[48 + ip6[41] * 8] == 47 or ip6[48 + ip6[41] * 8] == 4",
    " or ip6[48 + ip6[41] * 8] == 41",
    " or (ip6[48 + ip6[41] * 8] == 17",
    " and (ip6[58 + ip6[41] * 8 + ip6[49 + ip6[41] * 8] * 8:2] == 4789",
    " or ip6[58 + ip6[41] * 8 + ip6[49 + ip6[41] * 8] * 8:2] == 6081)))))))",
);

/// The filter expression that fits a libpcap link type: [`filter_expression`] for Ethernet,
/// [`ip_filter_expression`] otherwise.
pub fn filter_expression_for(link: LinkType, ports: &[u16]) -> String {
    expression_for(link)(ports)
}

/// The function that writes [`filter_expression_for`]`(link, _)`.
pub(crate) fn expression_for(link: LinkType) -> fn(&[u16]) -> String {
    match link {
        LinkType::Ethernet => filter_expression,
        _ => ip_filter_expression,
    }
}

/// The IP addresses of interface `iface` (all interfaces for `"any"`), from `getifaddrs(3)` in
/// the calling thread's network namespace. Empty if the interface does not exist or the call
/// fails. IPv6 link-local addresses are included (without scope).
pub fn local_addresses(iface: &str) -> Vec<IpAddr> {
    let mut out = Vec::new();
    for entry in interface_entries() {
        if iface != ANY_INTERFACE && entry.name != iface {
            continue;
        }
        if let Some(addr) = entry.addr {
            if !out.contains(&addr) {
                out.push(addr);
            }
        }
    }
    out
}

/// One `getifaddrs` entry, reduced to what we use.
#[derive(Debug, Clone)]
pub(crate) struct IfEntry {
    pub(crate) name: String,
    pub(crate) flags: u32,
    pub(crate) addr: Option<IpAddr>,
}

/// Every `getifaddrs` entry (one per address, plus one `AF_PACKET` entry per link).
pub(crate) fn interface_entries() -> Vec<IfEntry> {
    let mut head: *mut libc::ifaddrs = std::ptr::null_mut();
    // SAFETY: getifaddrs writes a list head we free with freeifaddrs below.
    if unsafe { libc::getifaddrs(&mut head) } != 0 {
        return Vec::new();
    }
    let mut out = Vec::new();
    let mut cur = head;
    while !cur.is_null() {
        // SAFETY: `cur` is a node of the list getifaddrs returned, not yet freed.
        let ifa = unsafe { &*cur };
        if !ifa.ifa_name.is_null() {
            // SAFETY: ifa_name is a NUL-terminated string owned by the list.
            let name = unsafe { CStr::from_ptr(ifa.ifa_name) }
                .to_string_lossy()
                .into_owned();
            // SAFETY: ifa_addr, when non-null, points at a sockaddr whose family says its size.
            let addr = unsafe { sockaddr_ip(ifa.ifa_addr) };
            out.push(IfEntry {
                name,
                flags: ifa.ifa_flags,
                addr,
            });
        }
        cur = ifa.ifa_next;
    }
    // SAFETY: head came from getifaddrs and is freed once.
    unsafe { libc::freeifaddrs(head) };
    out
}

/// The IP address in a `sockaddr`, if it is `AF_INET` or `AF_INET6`.
///
/// # Safety
/// `sa` is null or points at a valid socket address of the size its family implies.
unsafe fn sockaddr_ip(sa: *const libc::sockaddr) -> Option<IpAddr> {
    if sa.is_null() {
        return None;
    }
    match i32::from((*sa).sa_family) {
        libc::AF_INET => {
            let sin = &*(sa as *const libc::sockaddr_in);
            Some(IpAddr::V4(Ipv4Addr::from(u32::from_be(
                sin.sin_addr.s_addr,
            ))))
        }
        libc::AF_INET6 => {
            let sin6 = &*(sa as *const libc::sockaddr_in6);
            Some(IpAddr::V6(Ipv6Addr::from(sin6.sin6_addr.s6_addr)))
        }
        _ => None,
    }
}

/// The names of all interfaces in the calling thread's network namespace (`if_nameindex(3)`).
pub fn interface_names() -> Vec<String> {
    // SAFETY: if_nameindex returns an array terminated by a zero entry, freed below.
    let list = unsafe { libc::if_nameindex() };
    if list.is_null() {
        return Vec::new();
    }
    let mut names = Vec::new();
    let mut i = 0;
    loop {
        // SAFETY: we stop at the terminating entry (index 0, null name).
        let entry = unsafe { &*list.add(i) };
        if entry.if_index == 0 || entry.if_name.is_null() {
            break;
        }
        // SAFETY: if_name is a NUL-terminated string owned by the list.
        names.push(
            unsafe { CStr::from_ptr(entry.if_name) }
                .to_string_lossy()
                .into_owned(),
        );
        i += 1;
    }
    // SAFETY: list came from if_nameindex and is freed once.
    unsafe { libc::if_freenameindex(list) };
    names
}

/// An interface resolved for capture: its name and kernel index (0 for `"any"`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Interface {
    pub(crate) name: String,
    pub(crate) index: u32,
}

/// Looks `name` up: `"any"` is index 0; otherwise the interface must exist and be up.
pub(crate) fn resolve_interface(name: &str) -> Result<Interface, CaptureError> {
    if name == ANY_INTERFACE {
        return Ok(Interface {
            name: name.to_string(),
            index: 0,
        });
    }
    let no_such = || CaptureError::NoSuchInterface {
        name: name.to_string(),
        available: interface_names(),
    };
    if name.is_empty() || name.len() >= libc::IFNAMSIZ {
        return Err(no_such());
    }
    let cname = std::ffi::CString::new(name).map_err(|_| no_such())?;
    // SAFETY: cname is a valid NUL-terminated string.
    let index = unsafe { libc::if_nametoindex(cname.as_ptr()) };
    if index == 0 {
        return Err(no_such());
    }
    if !interface_is_up(name) {
        return Err(CaptureError::InterfaceDown {
            name: name.to_string(),
        });
    }
    Ok(Interface {
        name: name.to_string(),
        index,
    })
}

/// Whether the interface has `IFF_UP` set (false if it cannot be found).
pub(crate) fn interface_is_up(name: &str) -> bool {
    interface_entries()
        .iter()
        .any(|e| e.name == name && e.flags & libc::IFF_UP as u32 != 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filter_expressions() {
        let big = "ip6[6] == 0 and ip6[40] == 6";
        assert_eq!(
            ip_filter_expression(&[8080, 80, 80]),
            format!(
                "tcp port 80 or tcp port 8080 or ({big} and (ip6[48:2] == 80 or ip6[50:2] == 80 \
                 or ip6[48:2] == 8080 or ip6[50:2] == 8080)) or {ENCAP_FILTER}"
            )
        );
        assert_eq!(
            ip_filter_expression(&[]),
            format!("tcp or ({big}) or {ENCAP_FILTER}")
        );
        let p = ip_filter_expression(&[80]);
        assert_eq!(
            filter_expression(&[80]),
            format!("({p}) or (vlan and ({p}))")
        );
        assert_eq!(filter_expression_for(LinkType::LinuxSll, &[80]), p);
    }

    #[test]
    fn loopback_has_its_addresses() {
        let lo = local_addresses("lo");
        // Absent only where the test runs without a loopback address at all.
        if !lo.is_empty() {
            assert!(lo.iter().all(|a| a.is_loopback()), "{lo:?}");
        }
        let any = local_addresses(ANY_INTERFACE);
        assert!(lo.iter().all(|a| any.contains(a)));
        assert!(local_addresses("no-such-if0").is_empty());
    }

    #[test]
    fn missing_interface_lists_the_others() {
        let err = resolve_interface("no-such-if0").unwrap_err();
        let text = err.to_string();
        assert!(text.contains("\"no-such-if0\""), "{text}");
        if interface_names().contains(&"lo".to_string()) {
            assert!(text.contains("lo"), "{text}");
        }
        assert_eq!(resolve_interface("any").unwrap().index, 0);
    }

    #[test]
    fn capability_message_names_the_capability() {
        let err = CaptureError::MissingCapability {
            operation: "opening an AF_PACKET socket",
            capability: "CAP_NET_RAW",
        };
        let text = err.to_string();
        assert!(text.contains("CAP_NET_RAW"), "{text}");
        assert!(text.contains("[\"NET_RAW\"]"), "{text}");
    }
}
