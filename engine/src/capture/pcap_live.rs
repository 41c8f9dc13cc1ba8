//! libpcap live capture: the fallback when AF_PACKET rings cannot be set up.
//!
//! One handle, read by one thread, which dispatches packets to the workers by flow hash
//! itself. The handle is *not* in immediate mode: libpcap then uses `TPACKET_V3` blocks of
//! variable-size frames (immediate mode's `TPACKET_V2` ring has fixed 256 KiB frames, so a
//! 32 MiB buffer held ~128 packets and a busy loopback overflowed it). A partly filled block
//! is handed over after [`BLOCK_TIMEOUT_MS`]. The handle is *non-blocking*; the waiting is our
//! own `poll(2)` on libpcap's descriptor, bounded by [`PcapLiveConfig::timeout`], so the
//! reader regularly gets control back to run timers and notice a stop request. (libpcap's
//! own read timeout cannot do this: on Linux it is not a bound on a quiet capture.) Snap length
//! 262144 (libpcap's maximum), not promiscuous, a 32 MiB buffer.
//!
//! Because of the block timeout, packets captured in the last 20 ms are not yet visible when
//! a stop is requested: the reader keeps polling after `stop` until the ring is empty
//! (`runtime::StopDrain`).
//!
//! **Limit:** libpcap sizes its ring frames for 64 KiB packets when offloads are on, so IPv6
//! BIG TCP super-packets (over 64 KiB) are cut at about 64 KiB. The cut shows as
//! `data.len() < orig_len` (their IP length is 0, so the decoder's `missing` cannot see it);
//! the AF_PACKET rings keep them whole.
//!
//! Two ways to read: [`PcapLive::poll`] (a batch through a callback, like the AF_PACKET ring)
//! and [`PcapLive::next_packet`] (one at a time).
//!
//! The filter is [`filter_expression`](super::filter_expression) (with its `vlan` alternative)
//! on Ethernet devices, where libpcap re-inserts stripped VLAN tags into the frame, and
//! [`ip_filter_expression`](super::ip_filter_expression) on every other link type, e.g. the
//! Linux cooked header libpcap uses for `"any"`. The kernel runs the filter before libpcap
//! re-inserts anything: a received tagged frame (tag in the packet's metadata) matches the
//! untagged alternative; the `vlan` one is for tags still inline in the frame (sent by a device
//! without VLAN offload). The live tests cover both (`engine/tests/capture_live.rs`). A port
//! list too long for the kernel gets the all-TCP filter ([`live_filter`](super::live_filter)).

use std::os::fd::AsRawFd;
use std::time::Duration;

use super::{resolve_interface, CaptureError, KernelStats, LinkType, Packet};
use crate::time::Timestamp;

/// Default snap length: libpcap's maximum, so GRO super-packets are kept whole.
pub const DEFAULT_SNAPLEN: i32 = 262_144;
/// Default kernel buffer (libpcap's ring) in bytes: 32 MiB.
pub const DEFAULT_BUFFER_SIZE: i32 = 32 << 20;
/// Most packets [`PcapLive::poll`] shows per call.
const DISPATCH_BATCH: usize = 256;

/// How long libpcap's kernel ring holds a partly filled block before handing it over.
pub const BLOCK_TIMEOUT_MS: i32 = 20;

/// Default read timeout.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_millis(100);

/// Settings of a libpcap live capture.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct PcapLiveConfig {
    /// Interface name, or `"any"`.
    pub interface: String,
    /// TCP ports to capture; empty = all TCP.
    pub ports: Vec<u16>,
    /// Snap length in bytes.
    pub snaplen: i32,
    /// libpcap buffer size in bytes.
    pub buffer_size: i32,
    /// Longest time [`PcapLive::next_packet`] waits before returning `Ok(None)`.
    pub timeout: Duration,
    /// Promiscuous mode (off by default).
    pub promiscuous: bool,
}

impl PcapLiveConfig {
    /// The defaults for `interface` and `ports`.
    pub fn new(interface: &str, ports: &[u16]) -> Self {
        PcapLiveConfig {
            interface: interface.to_string(),
            ports: ports.to_vec(),
            snaplen: DEFAULT_SNAPLEN,
            buffer_size: DEFAULT_BUFFER_SIZE,
            timeout: DEFAULT_TIMEOUT,
            promiscuous: false,
        }
    }
}

/// An open libpcap live capture.
pub struct PcapLive {
    cap: pcap::Capture<pcap::Active>,
    link: LinkType,
    interface: String,
    expression: String,
    timeout: Duration,
    /// The last read found nothing: the next one waits first.
    drained: bool,
}

impl std::fmt::Debug for PcapLive {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PcapLive")
            .field("interface", &self.interface)
            .field("link", &self.link)
            .field("filter", &self.expression)
            .finish()
    }
}

impl PcapLive {
    /// Opens the interface and installs the port filter.
    pub fn open(config: &PcapLiveConfig) -> Result<PcapLive, CaptureError> {
        let ms = config.timeout.as_millis();
        if !(1..=60_000).contains(&ms) {
            return Err(CaptureError::InvalidConfig(format!(
                "libpcap read timeout must be 1 ms to 60 s, not {:?}",
                config.timeout
            )));
        }
        if config.snaplen < 1 || config.buffer_size < 1 {
            return Err(CaptureError::InvalidConfig(format!(
                "libpcap snap length and buffer size must be positive (got {} and {})",
                config.snaplen, config.buffer_size
            )));
        }
        // Our own check first: clearer than libpcap's "SIOCGIFINDEX: No such device".
        let iface = resolve_interface(&config.interface)?;
        let pcap_err =
            |operation: &'static str, e: pcap::Error| map_pcap_error(operation, &iface.name, e);
        let cap = pcap::Capture::from_device(iface.name.as_str())
            .map_err(|e| pcap_err("pcap_create", e))?
            // Not immediate mode: libpcap then uses a TPACKET_V2 ring of fixed frames sized
            // for the snap length (256 KiB), so 32 MiB held only ~128 packets and a busy
            // loopback overflowed it. Without it libpcap uses TPACKET_V3 blocks of
            // variable-size frames; the read timeout retires a partly filled block, and our
            // own poll(2) wakes up when it does, so a lone packet still arrives promptly.
            .immediate_mode(false)
            .timeout(BLOCK_TIMEOUT_MS)
            .snaplen(config.snaplen)
            .buffer_size(config.buffer_size)
            .promisc(config.promiscuous)
            .open()
            .map_err(|e| pcap_err("pcap_activate", e))?
            .setnonblock()
            .map_err(|e| pcap_err("pcap_setnonblock", e))?;
        let dl = cap.get_datalink();
        let link = LinkType::from_pcap(dl.0).ok_or_else(|| CaptureError::UnsupportedLinkType {
            interface: iface.name.clone(),
            linktype: dl.0,
            name: dl.get_name().unwrap_or_else(|_| "unknown".into()),
        })?;
        let program = super::live_filter(dl, &config.ports, super::expression_for(link))?;
        let mut live = PcapLive {
            cap,
            link,
            interface: iface.name.clone(),
            expression: program.expression().to_string(),
            timeout: config.timeout,
            drained: false,
        };
        let expression = live.expression.clone();
        live.cap
            .filter(&expression, true)
            .map_err(|e| CaptureError::Filter {
                expression,
                reason: e.to_string(),
            })?;
        Ok(live)
    }

    /// How the frames are to be decoded (Ethernet on Ethernet devices and `lo`, Linux cooked
    /// for `"any"`).
    pub fn link(&self) -> LinkType {
        self.link
    }

    /// The interface name as configured.
    pub fn interface(&self) -> &str {
        &self.interface
    }

    /// The filter expression installed.
    pub fn filter(&self) -> &str {
        &self.expression
    }

    /// Waits up to the configured timeout for packets, shows every packet libpcap has ready
    /// to `on_packet` and returns how many it showed (0 when the timeout passed). The same
    /// shape as [`AfPacketRing::poll`](super::afpacket::AfPacketRing::poll).
    pub fn poll<F>(&mut self, mut on_packet: F) -> Result<usize, CaptureError>
    where
        F: FnMut(Packet<'_>),
    {
        let link = self.link;
        let mut shown = 0;
        for attempt in 0..2 {
            if attempt == 1 && !self.wait()? {
                break;
            }
            let n = self
                .cap
                .dispatch(Some(DISPATCH_BATCH), |p| on_packet(convert(link, &p)))
                .map_err(|e| map_pcap_error("pcap_dispatch", &self.interface, e))?;
            shown += n;
            if n > 0 {
                break;
            }
        }
        self.drained = shown == 0;
        Ok(shown)
    }

    /// The next packet, or `Ok(None)` when none is ready. If the previous call found none
    /// either, this one first waits up to the configured timeout for one, so a loop of calls
    /// neither spins nor blocks for longer than the timeout. The packet borrows libpcap's
    /// buffer until the next call.
    pub fn next_packet(&mut self) -> Result<Option<Packet<'_>>, CaptureError> {
        if self.drained {
            self.drained = false;
            if !self.wait()? {
                self.drained = true;
                return Ok(None);
            }
        }
        let link = self.link;
        match self.cap.next_packet() {
            Ok(p) => Ok(Some(convert(link, &p))),
            Err(pcap::Error::TimeoutExpired) => {
                self.drained = true;
                Ok(None)
            }
            Err(e) => Err(map_pcap_error("pcap_next_ex", &self.interface, e)),
        }
    }

    /// Waits until the capture socket is readable (or has an error, which libpcap reports on
    /// the next read), at most the configured timeout. False on timeout or a signal.
    fn wait(&mut self) -> Result<bool, CaptureError> {
        let mut pfd = libc::pollfd {
            fd: self.cap.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        let ms = self
            .timeout
            .as_micros()
            .div_ceil(1000)
            .min(i32::MAX as u128) as libc::c_int;
        // SAFETY: one valid pollfd.
        let rc = unsafe { libc::poll(&mut pfd, 1, ms) };
        if rc < 0 {
            let e = std::io::Error::last_os_error();
            if e.raw_os_error() == Some(libc::EINTR) {
                return Ok(false);
            }
            return Err(CaptureError::Os {
                operation: "poll",
                interface: self.interface.clone(),
                source: e,
            });
        }
        Ok(rc > 0)
    }

    /// libpcap's counters since the capture was opened (libpcap accumulates the kernel's).
    pub fn stats(&mut self) -> Result<KernelStats, CaptureError> {
        let st = self
            .cap
            .stats()
            .map_err(|e| map_pcap_error("pcap_stats", &self.interface, e))?;
        Ok(KernelStats {
            packets: u64::from(st.received),
            drops: u64::from(st.dropped),
            freeze_q_cnt: 0,
            interface_drops: u64::from(st.if_dropped),
        })
    }
}

fn convert<'a>(link: LinkType, p: &pcap::Packet<'a>) -> Packet<'a> {
    let tv = p.header.ts;
    Packet {
        ts: Timestamp::from_secs_micros(
            tv.tv_sec.max(0) as u64,
            tv.tv_usec.clamp(0, 999_999) as u64,
        ),
        data: p.data,
        link,
        orig_len: p.header.len,
    }
}

/// libpcap only gives text; recognise the cases that deserve their own error.
fn map_pcap_error(operation: &'static str, interface: &str, e: pcap::Error) -> CaptureError {
    let reason = e.to_string();
    let lower = reason.to_ascii_lowercase();
    if lower.contains("operation not permitted") || lower.contains("permission") {
        CaptureError::MissingCapability {
            operation: "opening a libpcap live capture",
            capability: "CAP_NET_RAW",
        }
    } else if lower.contains("no such device") {
        CaptureError::NoSuchInterface {
            name: interface.to_string(),
            available: super::interface_names(),
        }
    } else if lower.contains("network is down")
        || lower.contains("is not up")
        || lower.contains("went down")
    {
        CaptureError::InterfaceDown {
            name: interface.to_string(),
        }
    } else {
        CaptureError::Pcap {
            operation,
            interface: interface.to_string(),
            reason,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn libpcap_texts_become_typed_errors() {
        let perm = map_pcap_error(
            "pcap_activate",
            "eth0",
            pcap::Error::PcapError("socket: Operation not permitted".into()),
        );
        assert!(matches!(
            perm,
            CaptureError::MissingCapability {
                capability: "CAP_NET_RAW",
                ..
            }
        ));
        let down = map_pcap_error(
            "pcap_next_ex",
            "eth0",
            pcap::Error::PcapError("The interface went down".into()),
        );
        assert!(matches!(down, CaptureError::InterfaceDown { .. }), "{down}");
        let gone = map_pcap_error(
            "pcap_activate",
            "eth9",
            pcap::Error::PcapError("SIOCGIFINDEX: No such device".into()),
        );
        assert!(gone.to_string().contains("\"eth9\""));
    }

    #[test]
    fn bad_timeout_is_refused() {
        let mut c = PcapLiveConfig::new("any", &[80]);
        c.timeout = Duration::ZERO;
        assert!(matches!(
            PcapLive::open(&c),
            Err(CaptureError::InvalidConfig(_))
        ));
    }
}
