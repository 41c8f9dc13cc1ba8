//! Ethernet (optionally 802.1Q-tagged) / IPv4 or IPv6 / TCP frames for the live tests, and a
//! raw packet socket that puts them on a link.
//!
//! The frame builder is the benchmark generator's (`perf/src/frame.rs`), compiled in here rather
//! than copied: one builder in the repository. This module adds what injecting frames into a
//! live kernel wants on top: the TCP checksum (perf leaves it 0), the frames of a whole TCP
//! connection ([`tcp_exchange`]) and the socket that sends them ([`Injector`]).
//!
//! Declared only by the test binaries that build frames (`#[path = "common/frame.rs"] mod
//! frame;`), not in `common/mod.rs`: perf's own unit test of the builder comes along, and
//! would otherwise run again in every test binary.

#![allow(dead_code)]

use std::net::IpAddr;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

#[path = "../../../perf/src/frame.rs"]
mod perf;

pub use perf::{build, decode, Flow, Segment, ACK, FIN, PSH, SYN};

/// The Ethernet frame of one segment on `flow`, with correct IPv4 header and TCP checksums.
pub fn segment(flow: &Flow, seg: &Segment<'_>) -> Vec<u8> {
    let mut frame = Vec::new();
    build(&mut frame, flow, seg);
    set_tcp_checksum(&mut frame);
    frame
}

/// The frames of one complete TCP connection on `flow`, in the order they cross the wire:
/// the handshake, `request` from the client, its ACK, `response` from the server, its ACK, then
/// the server closes (as after `Connection: close`) and the client does too, each FIN
/// acknowledged. Sequence and acknowledgement numbers are consistent throughout.
pub fn tcp_exchange(flow: &Flow, request: &[u8], response: &[u8]) -> Vec<Vec<u8>> {
    const CLIENT_ISN: u32 = 0x1000_0000;
    const SERVER_ISN: u32 = 0xfff0_0000; // wraps around 2^32 within a long enough response
    let c = |n: usize| CLIENT_ISN.wrapping_add(n as u32);
    let s = |n: usize| SERVER_ISN.wrapping_add(n as u32);
    let (req, resp) = (request.len(), response.len());
    let steps: [(bool, u8, u32, u32, &[u8]); 10] = [
        (true, SYN, c(0), 0, b""),
        (false, SYN | ACK, s(0), c(1), b""),
        (true, ACK, c(1), s(1), b""),
        (true, PSH | ACK, c(1), s(1), request),
        (false, ACK, s(1), c(1 + req), b""),
        (false, PSH | ACK, s(1), c(1 + req), response),
        (true, ACK, c(1 + req), s(1 + resp), b""),
        (false, FIN | ACK, s(1 + resp), c(1 + req), b""),
        (true, FIN | ACK, c(1 + req), s(2 + resp), b""),
        (false, ACK, s(2 + resp), c(2 + req), b""),
    ];
    let (mut client_id, mut server_id) = (0x100u16, 0x200u16);
    steps
        .iter()
        .map(|&(from_client, flags, seq, ack, payload)| {
            let id = if from_client {
                &mut client_id
            } else {
                &mut server_id
            };
            *id += 1;
            segment(
                flow,
                &Segment {
                    from_client,
                    flags,
                    seq,
                    ack,
                    ip_id: *id,
                    payload,
                },
            )
        })
        .collect()
}

/// Fills in the TCP checksum of an Ethernet / (802.1Q) / IPv4 or IPv6 / TCP frame as
/// [`build`] makes it (no IPv4 options, TCP right after the IPv6 header).
pub fn set_tcp_checksum(frame: &mut [u8]) {
    let d = decode(frame).expect("a frame this module built");
    let l3 = if d.vlan.is_some() { 18 } else { 14 };
    let (tcp_start, pseudo) = match (d.src.0, d.dst.0) {
        (IpAddr::V4(s), IpAddr::V4(t)) => {
            let len = (frame.len() - l3 - 20) as u32;
            let mut p = Vec::with_capacity(12);
            p.extend_from_slice(&s.octets());
            p.extend_from_slice(&t.octets());
            p.extend_from_slice(&[0, 6]);
            p.extend_from_slice(&(len as u16).to_be_bytes());
            (l3 + 20, p)
        }
        (IpAddr::V6(s), IpAddr::V6(t)) => {
            let len = (frame.len() - l3 - 40) as u32;
            let mut p = Vec::with_capacity(40);
            p.extend_from_slice(&s.octets());
            p.extend_from_slice(&t.octets());
            p.extend_from_slice(&len.to_be_bytes());
            p.extend_from_slice(&[0, 0, 0, 6]);
            (l3 + 40, p)
        }
        _ => unreachable!("decode checked the address family"),
    };
    frame[tcp_start + 16..tcp_start + 18].fill(0);
    let sum = ones_complement_sum(&pseudo, 0);
    let sum = ones_complement_sum(&frame[tcp_start..], sum);
    frame[tcp_start + 16..tcp_start + 18].copy_from_slice(&(!sum).to_be_bytes());
}

/// The IPv4 fragments of an Ethernet / IPv4 frame (no 802.1Q tag, no IP options): each carries
/// at most `size` bytes of the datagram's payload (`size` a multiple of 8), with its own
/// Ethernet and IP headers, the offset and More Fragments flag set and the header checksum
/// recomputed.
pub fn ipv4_fragments(frame: &[u8], size: usize) -> Vec<Vec<u8>> {
    assert!(
        size.is_multiple_of(8) && size > 0,
        "fragment payloads are multiples of 8 bytes"
    );
    let (eth, ip) = frame.split_at(14);
    assert_eq!(ip[0], 0x45, "IPv4 without options");
    let (header, payload) = ip.split_at(20);
    let chunks: Vec<&[u8]> = payload.chunks(size).collect();
    chunks
        .iter()
        .enumerate()
        .map(|(i, chunk)| {
            let mut h = header.to_vec();
            h[2..4].copy_from_slice(&((20 + chunk.len()) as u16).to_be_bytes());
            let more = u16::from(i + 1 < chunks.len()) << 13;
            h[6..8].copy_from_slice(&(more | (i * size / 8) as u16).to_be_bytes());
            h[10..12].fill(0);
            let sum = !ones_complement_sum(&h, 0);
            h[10..12].copy_from_slice(&sum.to_be_bytes());
            [eth, &h, chunk].concat()
        })
        .collect()
}

/// `inner` (an Ethernet frame) in VXLAN (VNI 1, RFC 7348) over UDP/IPv4 from `src` to `dst`,
/// UDP source port `sport` (a VTEP picks it from its hash of the inner flow, so the two
/// directions of one inner connection usually differ), in an Ethernet frame.
pub fn vxlan(inner: &[u8], src: [u8; 4], dst: [u8; 4], sport: u16) -> Vec<u8> {
    let udp_len = 8 + 8 + inner.len();
    let mut ip = vec![0x45, 0];
    ip.extend_from_slice(&((20 + udp_len) as u16).to_be_bytes());
    ip.extend_from_slice(&[0, 1, 0x40, 0, 64, 17, 0, 0]);
    ip.extend_from_slice(&src);
    ip.extend_from_slice(&dst);
    let sum = !ones_complement_sum(&ip, 0);
    ip[10..12].copy_from_slice(&sum.to_be_bytes());
    let mut frame = vec![0x02, 0x77, 0, 0, 0, 2, 0x02, 0x77, 0, 0, 0, 1, 0x08, 0x00];
    frame.extend_from_slice(&ip);
    frame.extend_from_slice(&sport.to_be_bytes());
    frame.extend_from_slice(&4789u16.to_be_bytes());
    frame.extend_from_slice(&(udp_len as u16).to_be_bytes());
    frame.extend_from_slice(&[0, 0]); // no UDP checksum (allowed over IPv4)
    frame.extend_from_slice(&[0x08, 0, 0, 0, 0, 0, 1, 0]);
    frame.extend_from_slice(inner);
    frame
}

/// RFC 1071 one's-complement sum of `bytes` (odd length padded with a zero byte), added to
/// `sum`.
fn ones_complement_sum(bytes: &[u8], sum: u16) -> u16 {
    let mut acc = u32::from(sum);
    for c in bytes.chunks(2) {
        acc += u32::from(u16::from_be_bytes([c[0], *c.get(1).unwrap_or(&0)]));
    }
    while acc > 0xffff {
        acc = (acc & 0xffff) + (acc >> 16);
    }
    acc as u16
}

/// A raw `AF_PACKET` socket that sends whole Ethernet frames, exactly as given, out of one
/// interface. A socket belongs to the network namespace it was opened in: open it on a thread
/// in that namespace, then send from any thread.
pub struct Injector {
    fd: OwnedFd,
    ifindex: i32,
    iface: String,
}

impl Injector {
    /// Opens the socket for `iface` (needs CAP_NET_RAW).
    pub fn open(iface: &str) -> Result<Injector, String> {
        let name = std::ffi::CString::new(iface).map_err(|e| e.to_string())?;
        // SAFETY: plain syscalls; the name outlives the call.
        let (fd, ifindex) = unsafe {
            (
                libc::socket(libc::AF_PACKET, libc::SOCK_RAW | libc::SOCK_CLOEXEC, 0),
                libc::if_nametoindex(name.as_ptr()),
            )
        };
        if fd < 0 {
            return Err(format!(
                "cannot open a raw packet socket: {} (needs CAP_NET_RAW)",
                std::io::Error::last_os_error()
            ));
        }
        // SAFETY: a fresh descriptor nothing else owns.
        let fd = unsafe { OwnedFd::from_raw_fd(fd) };
        if ifindex == 0 {
            return Err(format!("no interface {iface:?} to inject frames into"));
        }
        Ok(Injector {
            fd,
            ifindex: ifindex as i32,
            iface: iface.to_string(),
        })
    }

    /// Sends `frames` out of the interface, in order, each whole; fails the test otherwise.
    pub fn send(&self, frames: &[Vec<u8>]) {
        // SAFETY: an all-zero sockaddr_ll is valid; the fields that matter are set below.
        let mut sll: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
        sll.sll_family = libc::AF_PACKET as u16;
        sll.sll_ifindex = self.ifindex;
        sll.sll_halen = 6;
        for f in frames {
            // SAFETY: the frame and the address outlive the call; the socket is ours.
            let sent = unsafe {
                libc::sendto(
                    self.fd.as_raw_fd(),
                    f.as_ptr() as *const libc::c_void,
                    f.len(),
                    0,
                    &sll as *const libc::sockaddr_ll as *const libc::sockaddr,
                    std::mem::size_of::<libc::sockaddr_ll>() as libc::socklen_t,
                )
            };
            assert_eq!(
                sent,
                f.len() as isize,
                "sending a {}-byte frame out of {}: {}",
                f.len(),
                self.iface,
                std::io::Error::last_os_error()
            );
        }
    }
}
