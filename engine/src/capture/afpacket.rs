//! AF_PACKET `TPACKET_V3` receive rings in a fanout group.
//!
//! [`open_fanout`] opens one [`AfPacketRing`] per worker. Each ring is a memory-mapped array of
//! blocks the kernel fills with packets and hands to user space when a block is full or its
//! retire timer fires; [`AfPacketRing::poll`] waits for such a block, shows every packet in it
//! to a callback *in place* (no copy) and gives the block back.
//!
//! # Setup, per ring
//!
//! 1. `socket(AF_PACKET, SOCK_DGRAM, 0)` — protocol 0: nothing is queued until `bind`.
//!    `SOCK_DGRAM` so that frames (and the BPF filter) start at the network header on every
//!    device type; see the [module docs](super) for why.
//! 2. `SO_ATTACH_FILTER` with a drop-everything program.
//! 3. `PACKET_VERSION = TPACKET_V3`.
//! 4. `PACKET_RX_RING` with a `tpacket_req3` (sizes below), then `mmap` the ring.
//! 5. `bind` to the interface index (0 = every interface) with protocol `ETH_P_ALL`.
//! 6. Promiscuous mode (`PACKET_ADD_MEMBERSHIP`), only if asked for.
//! 7. `PACKET_FANOUT` with `PACKET_FANOUT_CBPF | PACKET_FANOUT_FLAG_DEFRAG`, and our program
//!    ([`Program::fanout_hash`], `PACKET_FANOUT_DATA`) to pick a ring by a hash of the
//!    connection that is the same in both directions, so both directions of a connection
//!    reach the same ring; IPv4 fragments are reassembled before, so they do not scatter. The
//!    first ring asks the kernel for a unique group id (`PACKET_FANOUT_FLAG_UNIQUEID`), the
//!    others join it. Not the kernel's `PACKET_FANOUT_HASH`: it hashes a tunnel's outer UDP
//!    ports, which a VTEP picks per direction, so a VXLAN or Geneve connection's request and
//!    response reached different workers; and its flow dissection cost more.
//!    **A lone ring** (one worker, no group id configured) is in a group of its own of type
//!    `PACKET_FANOUT_CPU` instead: the group is kept for the defragmentation (IPv4 fragments
//!    reach the ring whole, as with several rings), but there is nothing to choose between,
//!    and hashing would make the kernel dissect every packet for nothing — on loopback twice
//!    (the outgoing copy is hashed before the filter rejects it), in the sending
//!    application's own thread (nginx under wrk on `lo`, one worker: `__skb_flow_dissect` and
//!    `__skb_get_hash_symmetric_net` took 1.4 % of all CPU samples, and are gone).
//!
//! When every ring is in the group, the port filter replaces the drop-everything program on
//! each (see the module docs of [`super`] for why it is done last).
//!
//! # Loopback
//!
//! A packet over a loopback device reaches packet sockets twice, outgoing and incoming; the
//! outgoing copy is rejected by the kernel filter ([`Program::skip_loopback_echo`], as libpcap
//! does for tcpdump), so the kernel copies each loopback packet into the ring once, and every
//! packet is shown once on `lo` and on `any` alike. `poll` still checks each frame's type and
//! skips such a copy, so that invariant does not rest on the filter alone.
//!
//! # Sizing
//!
//! - **Blocks of 1 MiB** ([`DEFAULT_BLOCK_SIZE`]). In `TPACKET_V3` frames are variable-length
//!   and packed into blocks; the largest frame the kernel stores is a block minus its header
//!   (`tp_frame_size` is only bookkeeping and set to the block size). 1 MiB holds GRO
//!   super-packets (64 KiB) and BIG TCP ones (up to 512 KiB) whole.
//! - **32 MiB per fanout group** ([`DEFAULT_RING_SIZE`]), split evenly between the rings but
//!   never fewer than [`MIN_BLOCKS`] blocks per ring. The total is the budget, not a per-worker
//!   amount, so a pod with many CPUs does not pin hundreds of MiB of kernel memory. At 1 Gbit/s
//!   32 MiB is a quarter-second of traffic the workers may fall behind by before the kernel drops.
//! - **Blocks retire after 20 ms** ([`DEFAULT_BLOCK_TIMEOUT`]) if not full, so a lone request is
//!   visible within ~20 ms (well inside the 100 ms target), and at moderate rates a ring of
//!   32 blocks still tolerates ~0.6 s of worker stall (every partly-filled block retired by the
//!   timer uses a whole block). An empty block is never retired, so an idle ring costs nothing.

use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::ptr::NonNull;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use super::bpf::Program;
use super::{resolve_interface, CaptureError, Interface, KernelStats, LinkType, Packet};
use crate::time::Timestamp;

/// Bytes per ring block (1 MiB).
pub const DEFAULT_BLOCK_SIZE: u32 = 1 << 20;
/// Bytes of ring memory for the whole fanout group (32 MiB).
pub const DEFAULT_RING_SIZE: u64 = 32 << 20;
/// How long the kernel keeps a non-full block before handing it over (20 ms).
pub const DEFAULT_BLOCK_TIMEOUT: Duration = Duration::from_millis(20);
/// Fewest blocks a ring gets, whatever the budget: fewer leaves the kernel nowhere to write
/// while user space holds blocks.
pub const MIN_BLOCKS: u32 = 4;
/// Most rings in one fanout group (the kernel's `PACKET_FANOUT_MAX`).
pub const MAX_RINGS: usize = 256;
/// Most blocks [`AfPacketRing::poll`] hands over per call, so the caller's timers keep running
/// under load.
const MAX_BLOCKS_PER_POLL: usize = 8;

/// Settings of an AF_PACKET fanout group.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct AfPacketConfig {
    /// Interface name, or `"any"` for every interface of the network namespace.
    pub interface: String,
    /// TCP ports to capture (the kernel filter); empty = all TCP.
    pub ports: Vec<u16>,
    /// Ring memory for the whole group in bytes, split between the rings
    /// (at least [`MIN_BLOCKS`] blocks each).
    pub ring_size: u64,
    /// Bytes per block: a multiple of the page size; bounds the largest frame.
    pub block_size: u32,
    /// Retire timeout of a non-full block (1 ms to 10 s).
    pub block_timeout: Duration,
    /// Put the interface in promiscuous mode (not for `"any"`). Off by default: a pod's own
    /// traffic does not need it.
    pub promiscuous: bool,
    /// The fanout group id; `None` lets the kernel assign an unused one (recommended: a fixed
    /// id shared with another program would merge the two groups).
    pub fanout_group: Option<u16>,
}

impl AfPacketConfig {
    /// The defaults for `interface` and `ports`.
    pub fn new(interface: &str, ports: &[u16]) -> Self {
        AfPacketConfig {
            interface: interface.to_string(),
            ports: ports.to_vec(),
            ring_size: DEFAULT_RING_SIZE,
            block_size: DEFAULT_BLOCK_SIZE,
            block_timeout: DEFAULT_BLOCK_TIMEOUT,
            promiscuous: false,
            fanout_group: None,
        }
    }

    /// Blocks per ring when the budget is split between `rings` rings.
    pub fn blocks_per_ring(&self, rings: usize) -> u32 {
        let per_ring = self.ring_size / rings.max(1) as u64;
        let blocks = per_ring / u64::from(self.block_size.max(1));
        (blocks.min(u64::from(u32::MAX)) as u32).max(MIN_BLOCKS)
    }

    fn validate(&self, rings: usize) -> Result<(), CaptureError> {
        let bad = |s: String| Err(CaptureError::InvalidConfig(s));
        // SAFETY: sysconf has no preconditions.
        let page =
            (unsafe { libc::sysconf(libc::_SC_PAGESIZE) }.max(4096) as u32).next_power_of_two();
        if rings == 0 || rings > MAX_RINGS {
            return bad(format!(
                "AF_PACKET rings must be 1 to {MAX_RINGS}, not {rings}"
            ));
        }
        if self.block_size < page
            || self.block_size & (page - 1) != 0
            || self.block_size > 128 << 20
        {
            return bad(format!(
                "AF_PACKET block size must be a multiple of the page size ({page} B) up to \
                 128 MiB, not {} B",
                self.block_size
            ));
        }
        let ms = self.block_timeout.as_millis();
        if !(1..=10_000).contains(&ms) {
            return bad(format!(
                "AF_PACKET block timeout must be 1 ms to 10 s, not {:?}",
                self.block_timeout
            ));
        }
        if self.promiscuous && self.interface == super::ANY_INTERFACE {
            return bad("promiscuous mode needs a named interface, not \"any\"".to_string());
        }
        Ok(())
    }
}

/// Opens `rings` rings on one interface, all in one fanout group, with the port filter live
/// on all of them once this returns.
pub fn open_fanout(
    config: &AfPacketConfig,
    rings: usize,
) -> Result<Vec<AfPacketRing>, CaptureError> {
    config.validate(rings)?;
    let iface = resolve_interface(&config.interface)?;
    let filter = super::live_filter(
        super::bpf::DLT_RAW,
        &config.ports,
        super::ip_filter_expression,
    )?
    .skip_loopback_echo();
    let blocks = config.blocks_per_ring(rings);
    let mut out: Vec<AfPacketRing> = Vec::with_capacity(rings);
    let mut group = config.fanout_group;
    let mode = if rings == 1 && group.is_none() {
        libc::PACKET_FANOUT_CPU
    } else {
        libc::PACKET_FANOUT_CBPF
    };
    for _ in 0..rings {
        let ring = AfPacketRing::setup(config, &iface, blocks, mode, group)?;
        group = Some(ring.fanout_group);
        out.push(ring);
    }
    for ring in &out {
        filter
            .attach(ring.fd.as_raw_fd())
            .map_err(|e| ring.os("setsockopt(SO_ATTACH_FILTER)", e))?;
    }
    Ok(out)
}

/// One `TPACKET_V3` receive ring: a packet socket and its mapped blocks.
///
/// Dropping it unmaps the ring and closes the socket (which leaves the fanout group).
pub struct AfPacketRing {
    map: NonNull<u8>,
    map_len: usize,
    block_size: usize,
    block_nr: usize,
    /// The block the kernel fills next after the ones already handed over.
    next_block: usize,
    interface: String,
    /// The interface index bound to (0 = every interface).
    ifindex: u32,
    fanout_group: u16,
    totals: KernelStats,
    // Last: closed after `Drop::drop` unmapped the ring.
    fd: OwnedFd,
}

// SAFETY: the mapping belongs to this value alone; nothing else holds pointers into it.
unsafe impl Send for AfPacketRing {}

impl std::fmt::Debug for AfPacketRing {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AfPacketRing")
            .field("interface", &self.interface)
            .field("fd", &self.fd.as_raw_fd())
            .field("blocks", &self.block_nr)
            .field("block_size", &self.block_size)
            .field("fanout_group", &self.fanout_group)
            .finish()
    }
}

impl AfPacketRing {
    /// Opens a single ring (a fanout group of one; see step 7 of the module docs).
    pub fn open(config: &AfPacketConfig) -> Result<AfPacketRing, CaptureError> {
        let mut rings = open_fanout(config, 1)?;
        Ok(rings.remove(0))
    }

    /// Steps 1–7 of the module docs, with the drop-everything filter in place.
    fn setup(
        config: &AfPacketConfig,
        iface: &Interface,
        block_nr: u32,
        fanout_mode: u32,
        group: Option<u16>,
    ) -> Result<AfPacketRing, CaptureError> {
        let os = |operation: &'static str, source: std::io::Error| CaptureError::Os {
            operation,
            interface: iface.name.clone(),
            source,
        };
        // 1. The socket. Protocol 0: no packets until bind.
        // SAFETY: plain syscall.
        let raw =
            unsafe { libc::socket(libc::AF_PACKET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0) };
        if raw < 0 {
            let err = std::io::Error::last_os_error();
            return Err(match err.raw_os_error() {
                Some(libc::EPERM) | Some(libc::EACCES) => CaptureError::MissingCapability {
                    operation: "opening an AF_PACKET socket",
                    capability: "CAP_NET_RAW",
                },
                Some(libc::EAFNOSUPPORT)
                | Some(libc::EPROTONOSUPPORT)
                | Some(libc::ESOCKTNOSUPPORT) => CaptureError::Unsupported(err),
                _ => os("socket(AF_PACKET)", err),
            });
        }
        // SAFETY: raw is a fresh descriptor we own.
        let fd = unsafe { OwnedFd::from_raw_fd(raw) };
        let sock = fd.as_raw_fd();

        // 2. Nothing passes until the whole group exists.
        Program::drop_all()
            .attach(sock)
            .map_err(|e| os("setsockopt(SO_ATTACH_FILTER)", e))?;

        // 3. TPACKET_V3.
        let version = libc::tpacket_versions::TPACKET_V3 as libc::c_int;
        setsockopt(sock, libc::SOL_PACKET, libc::PACKET_VERSION, &version)
            .map_err(|e| os("setsockopt(PACKET_VERSION, TPACKET_V3)", e))?;

        // 4. The ring.
        let block_size = config.block_size;
        let req = libc::tpacket_req3 {
            tp_block_size: block_size,
            tp_block_nr: block_nr,
            tp_frame_size: block_size,
            tp_frame_nr: block_nr,
            tp_retire_blk_tov: config.block_timeout.as_millis() as u32,
            tp_sizeof_priv: 0,
            tp_feature_req_word: 0,
        };
        let too_large = || CaptureError::RingTooLarge {
            interface: iface.name.clone(),
            blocks: block_nr,
            block_size,
            total_bytes: u64::from(block_nr) * u64::from(block_size),
        };
        if let Err(e) = setsockopt(sock, libc::SOL_PACKET, libc::PACKET_RX_RING, &req) {
            return Err(match e.raw_os_error() {
                Some(libc::ENOMEM) => too_large(),
                _ => os("setsockopt(PACKET_RX_RING)", e),
            });
        }
        let map_len = block_nr as usize * block_size as usize;
        // SAFETY: maps the ring the kernel just allocated for this socket.
        let addr = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                map_len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED,
                sock,
                0,
            )
        };
        if addr == libc::MAP_FAILED {
            let e = std::io::Error::last_os_error();
            return Err(match e.raw_os_error() {
                Some(libc::ENOMEM) => too_large(),
                _ => os("mmap(PACKET_RX_RING)", e),
            });
        }
        let mut ring = AfPacketRing {
            map: NonNull::new(addr as *mut u8).expect("mmap returned null"),
            map_len,
            block_size: block_size as usize,
            block_nr: block_nr as usize,
            next_block: 0,
            interface: iface.name.clone(),
            ifindex: iface.index,
            fanout_group: 0,
            totals: KernelStats::default(),
            fd,
        };

        // 5. Bind: from here on the kernel queues packets (that pass the filter).
        // SAFETY: sockaddr_ll is plain data.
        let mut sll: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
        sll.sll_family = libc::AF_PACKET as u16;
        sll.sll_protocol = (libc::ETH_P_ALL as u16).to_be();
        sll.sll_ifindex = iface.index as i32;
        // SAFETY: sll is a valid sockaddr_ll of the size given.
        let rc = unsafe {
            libc::bind(
                sock,
                &sll as *const libc::sockaddr_ll as *const libc::sockaddr,
                std::mem::size_of::<libc::sockaddr_ll>() as libc::socklen_t,
            )
        };
        if rc != 0 {
            let e = std::io::Error::last_os_error();
            return Err(match e.raw_os_error() {
                Some(libc::ENODEV) | Some(libc::ENXIO) => CaptureError::NoSuchInterface {
                    name: iface.name.clone(),
                    available: super::interface_names(),
                },
                Some(libc::ENETDOWN) => CaptureError::InterfaceDown {
                    name: iface.name.clone(),
                },
                _ => os("bind(AF_PACKET)", e),
            });
        }
        // A bind to an interface that went down in the meantime succeeds but sets ENETDOWN.
        ring.take_socket_error()?;

        // 6. Promiscuous mode, on request.
        if config.promiscuous {
            let mreq = libc::packet_mreq {
                mr_ifindex: iface.index as i32,
                mr_type: libc::PACKET_MR_PROMISC as u16,
                mr_alen: 0,
                mr_address: [0; 8],
            };
            if let Err(e) = setsockopt(sock, libc::SOL_PACKET, libc::PACKET_ADD_MEMBERSHIP, &mreq) {
                return Err(match e.raw_os_error() {
                    Some(libc::EPERM) | Some(libc::EACCES) => CaptureError::MissingCapability {
                        operation: "promiscuous mode",
                        capability: "CAP_NET_ADMIN",
                    },
                    _ => os("setsockopt(PACKET_ADD_MEMBERSHIP, PACKET_MR_PROMISC)", e),
                });
            }
        }

        // 7. The fanout group.
        let mut type_flags = fanout_mode | libc::PACKET_FANOUT_FLAG_DEFRAG;
        let id = match group {
            Some(id) => id,
            None => {
                type_flags |= libc::PACKET_FANOUT_FLAG_UNIQUEID;
                0
            }
        };
        let arg: u32 = u32::from(id) | (type_flags << 16);
        if let Err(e) = setsockopt(sock, libc::SOL_PACKET, libc::PACKET_FANOUT, &arg) {
            return Err(match (e.raw_os_error(), group) {
                (Some(libc::EINVAL) | Some(libc::ENOSPC), Some(group)) => {
                    CaptureError::FanoutGroupInUse { group }
                }
                _ => os("setsockopt(PACKET_FANOUT)", e),
            });
        }
        if fanout_mode == libc::PACKET_FANOUT_CBPF {
            // Every member sets it (the same program): the group has one, whoever joined first.
            Program::fanout_hash()
                .attach_fanout(sock)
                .map_err(|e| os("setsockopt(PACKET_FANOUT_DATA)", e))?;
        }
        let mut joined: u32 = 0;
        getsockopt(sock, libc::SOL_PACKET, libc::PACKET_FANOUT, &mut joined)
            .map_err(|e| os("getsockopt(PACKET_FANOUT)", e))?;
        ring.fanout_group = (joined & 0xffff) as u16;
        Ok(ring)
    }

    /// The interface name as configured.
    pub fn interface(&self) -> &str {
        &self.interface
    }

    /// The fanout group id (kernel-assigned unless configured).
    pub fn fanout_group(&self) -> u16 {
        self.fanout_group
    }

    /// Blocks in the ring.
    pub fn blocks(&self) -> usize {
        self.block_nr
    }

    /// Bytes per block.
    pub fn block_size(&self) -> usize {
        self.block_size
    }

    /// How every packet of this backend is to be decoded: always [`LinkType::Raw`] (the frame
    /// starts at the IP header; see the [module docs](super)).
    pub fn link(&self) -> LinkType {
        LinkType::Raw
    }

    /// The socket, for a caller that multiplexes several (e.g. with its own `poll`).
    pub fn as_raw_fd(&self) -> libc::c_int {
        self.fd.as_raw_fd()
    }

    /// Waits up to `timeout` for a retired block, shows each packet of every ready block (at
    /// most a few per call) to `on_packet`, in arrival order, and gives the blocks back to the
    /// kernel. Returns how many packets were shown: 0 when the timeout passed, a signal
    /// interrupted the wait, or the ready blocks held only skipped loopback copies.
    ///
    /// The transmit-side copy of each loopback packet is skipped (see the module docs), so each
    /// packet is shown once; the kernel counters in [`AfPacketRing::stats`] count both copies.
    ///
    /// Errors: [`CaptureError::InterfaceDown`] if the interface went down (the ring stays
    /// attached and resumes when it comes back up, so the caller may log and keep polling; the
    /// error is reported once); [`CaptureError::InterfaceGone`] if it was removed (fatal: the
    /// socket will not follow a new device of the same name).
    pub fn poll<F>(&mut self, timeout: Duration, mut on_packet: F) -> Result<usize, CaptureError>
    where
        F: FnMut(Packet<'_>),
    {
        if !self.block_ready(self.next_block) {
            let mut pfd = libc::pollfd {
                fd: self.fd.as_raw_fd(),
                events: libc::POLLIN,
                revents: 0,
            };
            let ms = timeout.as_micros().div_ceil(1000).min(i32::MAX as u128) as libc::c_int;
            // SAFETY: one valid pollfd.
            let rc = unsafe { libc::poll(&mut pfd, 1, ms) };
            if rc < 0 {
                let e = std::io::Error::last_os_error();
                if e.raw_os_error() == Some(libc::EINTR) {
                    return Ok(0);
                }
                return Err(self.os("poll", e));
            }
            if pfd.revents & libc::POLLERR != 0 {
                self.take_socket_error()?;
            }
            if !self.block_ready(self.next_block) {
                return Ok(0);
            }
        }
        let mut shown = 0;
        for _ in 0..MAX_BLOCKS_PER_POLL {
            let index = self.next_block;
            if !self.block_ready(index) {
                break;
            }
            // Hand the block back and move on even if the callback panics, so a caught panic
            // never makes the next call show the same packets again.
            let guard = Release { ring: self, index };
            shown += guard.ring.walk_block(index, &mut on_packet);
        }
        Ok(shown)
    }

    /// Reads the kernel counters (which resets them in the kernel), adds them to the totals
    /// and returns the totals since the ring was opened.
    pub fn stats(&mut self) -> Result<KernelStats, CaptureError> {
        let mut st = libc::tpacket_stats_v3 {
            tp_packets: 0,
            tp_drops: 0,
            tp_freeze_q_cnt: 0,
        };
        getsockopt(
            self.fd.as_raw_fd(),
            libc::SOL_PACKET,
            libc::PACKET_STATISTICS,
            &mut st,
        )
        .map_err(|e| self.os("getsockopt(PACKET_STATISTICS)", e))?;
        self.totals.packets += u64::from(st.tp_packets);
        self.totals.drops += u64::from(st.tp_drops);
        self.totals.freeze_q_cnt += u64::from(st.tp_freeze_q_cnt);
        Ok(self.totals)
    }

    fn os(&self, operation: &'static str, source: std::io::Error) -> CaptureError {
        CaptureError::Os {
            operation,
            interface: self.interface.clone(),
            source,
        }
    }

    /// Reads and clears the socket's pending error (`SO_ERROR`).
    fn take_socket_error(&mut self) -> Result<(), CaptureError> {
        let mut err: libc::c_int = 0;
        getsockopt(
            self.fd.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_ERROR,
            &mut err,
        )
        .map_err(|e| self.os("getsockopt(SO_ERROR)", e))?;
        match err {
            0 => Ok(()),
            // The kernel says ENETDOWN both when the device goes down and when it is removed;
            // a removed device has no index under its name any more (or a new one).
            libc::ENETDOWN if self.still_there() => Err(CaptureError::InterfaceDown {
                name: self.interface.clone(),
            }),
            libc::ENETDOWN => Err(CaptureError::InterfaceGone {
                name: self.interface.clone(),
            }),
            libc::ENODEV | libc::ENXIO => Err(CaptureError::InterfaceGone {
                name: self.interface.clone(),
            }),
            other => Err(self.os("capture", std::io::Error::from_raw_os_error(other))),
        }
    }

    /// Whether the interface bound to still exists under its name and index.
    fn still_there(&self) -> bool {
        let Ok(name) = std::ffi::CString::new(self.interface.as_str()) else {
            return false;
        };
        // SAFETY: name is a valid NUL-terminated string.
        unsafe { libc::if_nametoindex(name.as_ptr()) == self.ifindex }
    }

    fn block_ptr(&self, index: usize) -> *mut u8 {
        debug_assert!(index < self.block_nr);
        // SAFETY: index < block_nr, so the offset stays inside the mapping.
        unsafe { self.map.as_ptr().add(index * self.block_size) }
    }

    /// The block's status word, shared with the kernel.
    fn block_status(&self, index: usize) -> &AtomicU32 {
        let desc = self.block_ptr(index) as *mut libc::tpacket_block_desc;
        // SAFETY: the status word is an aligned u32 inside the mapping, which lives as long as
        // `self`; the kernel and we only access it atomically.
        unsafe { AtomicU32::from_ptr(std::ptr::addr_of_mut!((*desc).hdr.bh1.block_status)) }
    }

    fn block_ready(&self, index: usize) -> bool {
        self.block_status(index).load(Ordering::Acquire) & libc::TP_STATUS_USER != 0
    }

    /// Shows every packet of a block the kernel handed over. Offsets the kernel wrote are still
    /// bounds-checked: a bad one ends the walk instead of reading outside the block.
    fn walk_block<F: FnMut(Packet<'_>)>(&self, index: usize, on_packet: &mut F) -> usize {
        let base = self.block_ptr(index);
        let desc = base as *const libc::tpacket_block_desc;
        // SAFETY: the block is ours (TP_STATUS_USER, acquired); the kernel does not write it
        // until we release it. The header lies at the start of the block.
        let (num_pkts, first) = unsafe {
            let bh1 = std::ptr::addr_of!((*desc).hdr.bh1);
            (
                std::ptr::addr_of!((*bh1).num_pkts).read(),
                std::ptr::addr_of!((*bh1).offset_to_first_pkt).read(),
            )
        };
        let hdr_len = std::mem::size_of::<libc::tpacket3_hdr>();
        let mut offset = first as usize;
        let mut shown = 0;
        for _ in 0..num_pkts {
            if offset
                .checked_add(hdr_len)
                .is_none_or(|end| end > self.block_size)
            {
                break;
            }
            // SAFETY: the header lies inside the block (checked above).
            let hdr = unsafe { (base.add(offset) as *const libc::tpacket3_hdr).read_unaligned() };
            let start = offset + usize::from(hdr.tp_mac);
            let len = hdr.tp_snaplen as usize;
            if start
                .checked_add(len)
                .is_none_or(|end| end > self.block_size)
            {
                break;
            }
            if !self.loopback_echo(base, offset) {
                // SAFETY: the frame lies inside the block (checked above); the block stays ours
                // while the callback runs, and the borrow cannot outlive it.
                let data = unsafe { std::slice::from_raw_parts(base.add(start), len) };
                on_packet(Packet {
                    ts: Timestamp::from_secs_micros(
                        u64::from(hdr.tp_sec),
                        u64::from(hdr.tp_nsec / 1000),
                    ),
                    data,
                    link: LinkType::Raw,
                    orig_len: hdr.tp_len,
                });
                shown += 1;
            }
            if hdr.tp_next_offset == 0 {
                break;
            }
            offset += hdr.tp_next_offset as usize;
        }
        shown
    }
}

impl AfPacketRing {
    /// Whether the packet at `offset` is the transmit-side copy of a loopback packet.
    ///
    /// A packet sent over a loopback device passes the packet taps twice: once going out
    /// (`PACKET_OUTGOING`) and once coming back in (`PACKET_HOST`). Only the second is shown, as
    /// libpcap does; other devices' outgoing packets are the host's own traffic and are kept.
    /// The `sockaddr_ll` the kernel writes after each `tpacket3_hdr` says which it is.
    fn loopback_echo(&self, base: *const u8, offset: usize) -> bool {
        const SLL_OFFSET: usize = (std::mem::size_of::<libc::tpacket3_hdr>() + 15) & !15;
        let sll_len = std::mem::size_of::<libc::sockaddr_ll>();
        if offset + SLL_OFFSET + sll_len > self.block_size {
            return false;
        }
        // SAFETY: inside the block (checked above), which is ours while we walk it.
        let sll =
            unsafe { (base.add(offset + SLL_OFFSET) as *const libc::sockaddr_ll).read_unaligned() };
        sll.sll_hatype == libc::ARPHRD_LOOPBACK && sll.sll_pkttype == libc::PACKET_OUTGOING
    }
}

/// Gives a block back to the kernel and advances to the next one when dropped.
struct Release<'r> {
    ring: &'r mut AfPacketRing,
    index: usize,
}

impl Drop for Release<'_> {
    fn drop(&mut self) {
        self.ring
            .block_status(self.index)
            .store(libc::TP_STATUS_KERNEL, Ordering::Release);
        self.ring.next_block = (self.index + 1) % self.ring.block_nr;
    }
}

impl Drop for AfPacketRing {
    fn drop(&mut self) {
        // SAFETY: unmaps exactly the mapping made in `setup`; no borrow of it can outlive
        // `&mut self` methods. The socket closes afterwards, when `fd` drops.
        unsafe {
            libc::munmap(self.map.as_ptr() as *mut libc::c_void, self.map_len);
        }
    }
}

fn setsockopt<T>(
    fd: libc::c_int,
    level: libc::c_int,
    name: libc::c_int,
    value: &T,
) -> std::io::Result<()> {
    // SAFETY: value is a valid T of the size given.
    let rc = unsafe {
        libc::setsockopt(
            fd,
            level,
            name,
            value as *const T as *const libc::c_void,
            std::mem::size_of::<T>() as libc::socklen_t,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

fn getsockopt<T>(
    fd: libc::c_int,
    level: libc::c_int,
    name: libc::c_int,
    value: &mut T,
) -> std::io::Result<()> {
    let mut len = std::mem::size_of::<T>() as libc::socklen_t;
    // SAFETY: value is a writable T of the size given.
    let rc = unsafe {
        libc::getsockopt(
            fd,
            level,
            name,
            value as *mut T as *mut libc::c_void,
            &mut len,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ring_budget_is_split_with_a_floor() {
        let c = AfPacketConfig::new("any", &[80]);
        assert_eq!(c.blocks_per_ring(1), 32);
        assert_eq!(c.blocks_per_ring(2), 16);
        assert_eq!(c.blocks_per_ring(64), MIN_BLOCKS);
    }

    #[test]
    fn settings_are_checked() {
        let mut c = AfPacketConfig::new("any", &[80]);
        assert!(c.validate(1).is_ok());
        assert!(c.validate(0).is_err());
        assert!(c.validate(MAX_RINGS + 1).is_err());
        c.block_size = 1000;
        assert!(c.validate(1).unwrap_err().to_string().contains("page size"));
        c.block_size = DEFAULT_BLOCK_SIZE;
        c.block_timeout = Duration::ZERO;
        assert!(c.validate(1).is_err());
        c.block_timeout = DEFAULT_BLOCK_TIMEOUT;
        c.promiscuous = true;
        assert!(c.validate(1).unwrap_err().to_string().contains("\"any\""));
    }
}
