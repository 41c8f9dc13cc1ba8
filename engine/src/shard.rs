//! Which worker a frame belongs to.
//!
//! Several workers split the connections between them by a hash of each connection's
//! addresses and ports that is the same in both directions, so a connection's request
//! and response always meet on one worker. The live libpcap reader and the file reader
//! (`capture::shared_file`) both send each frame to its worker by [`shard_of`]; with
//! AF_PACKET the rings' fanout program (`capture::bpf::Program::fanout_hash`) does the same
//! job in the kernel, on the outer addresses of a tunnelled packet.
//!
//! Invariant: exactly one worker takes each frame, and the choice depends only on the
//! frame's bytes (never on a random seed, so a replay splits the same way every run).

use std::net::IpAddr;

use crate::wire::{decode_tcp, peek_flow, LinkType, TcpSegment};

/// The worker for a frame: by the direction-independent hash of its connection's addresses
/// and ports (`flow_shard`), found by [`peek_flow`] for the common layouts and by the full
/// decode otherwise. A frame that does not decode goes to worker 0, which counts why —
/// unless `peek_flow` found its addresses, then to theirs (the worker that owns them counts
/// it). Either way exactly one worker takes each frame, and both directions of a
/// connection meet on one worker.
pub fn shard_of(link: LinkType, frame: &[u8], workers: usize) -> usize {
    if workers <= 1 {
        return 0;
    }
    if let Some(p) = peek_flow(link, frame) {
        return flow_shard(p.src, p.src_port, p.dst, p.dst_port, workers);
    }
    match decode_tcp(link, frame) {
        Ok(seg) => segment_shard(&seg, workers),
        Err(_) => 0,
    }
}

/// The worker for a decoded segment (see [`shard_of`]).
fn segment_shard(seg: &TcpSegment<'_>, workers: usize) -> usize {
    flow_shard(seg.src, seg.src_port, seg.dst, seg.dst_port, workers)
}

/// The shard of the connection between `a:a_port` and `b:b_port`, out of `workers`: the same
/// in both directions (the endpoints' hashes are added, which commutes) and in every run
/// (no random seed). Cheaper than `FlowKey::stable_hash` (no ordering of the endpoints, no
/// byte-wise hasher): every worker of a file computes it for every frame.
#[inline]
fn flow_shard(a: IpAddr, a_port: u16, b: IpAddr, b_port: u16, workers: usize) -> usize {
    if workers <= 1 {
        return 0;
    }
    let h = endpoint_hash(a, a_port).wrapping_add(endpoint_hash(b, b_port));
    // The high bits of `h * workers`: an even split without a division.
    ((u128::from(h) * workers as u128) >> 64) as usize
}

/// A well-mixed 64-bit hash of one endpoint.
#[inline]
fn endpoint_hash(ip: IpAddr, port: u16) -> u64 {
    let port = u64::from(port) << 32;
    let x = match ip {
        IpAddr::V4(v4) => u64::from(v4.to_bits()) | port,
        IpAddr::V6(v6) => {
            let bits = v6.to_bits();
            // Bit 63 keeps an IPv6 endpoint from meeting an IPv4 one on purpose.
            (bits as u64) ^ ((bits >> 64) as u64).rotate_left(29) ^ port ^ (1 << 63)
        }
    };
    mix64(x)
}

/// splitmix64's finaliser: every input bit flips about half the output bits.
#[inline]
fn mix64(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}
