//! Classic BPF programs for the kernel socket filter, compiled by libpcap.
//!
//! libpcap compiles the expression against a dead handle of the link type the socket delivers
//! ([`DLT_RAW`] for the `SOCK_DGRAM` AF_PACKET rings). The instructions are read
//! through `BpfInstruction`'s `Display` (`"code jt jf k"`), the only public view the `pcap`
//! crate gives of them, and become `libc::sock_filter`s.
//!
//! A classic BPF program's accept value is the snap length. A dead handle compiles `ret
//! #65535`, which would cut GRO/TSO super-packets, so every non-zero constant return is
//! rewritten to [`WHOLE_PACKET`]; the kernel then copies the whole packet, bounded by the ring
//! block.
//!
//! [`Program::skip_loopback_echo`] prepends a test that rejects the transmit-side copy of a
//! loopback packet in the kernel (every packet over `lo` passes the taps twice, outgoing and
//! incoming): without it the kernel copies each loopback packet into the ring twice, only for
//! user space to skip one copy — the same work libpcap saves tcpdump with the same test.

use super::CaptureError;

/// `BPF_LD | BPF_W | BPF_ABS`.
const LD_W_ABS: u16 = 0x20;
/// `BPF_JMP | BPF_JEQ | BPF_K`.
const JEQ_K: u16 = 0x15;
/// Linux's ancillary-data offset for classic BPF loads (`SKF_AD_OFF`, −0x1000).
const SKF_AD_OFF: u32 = (-0x1000i32) as u32;
/// `SKF_AD_PKTTYPE`: the packet's `PACKET_*` type.
const SKF_AD_PKTTYPE: u32 = 4;
/// `SKF_AD_HATYPE`: the device's `ARPHRD_*` type.
const SKF_AD_HATYPE: u32 = 28;
/// Linux's offset for classic BPF loads relative to the network header (`SKF_NET_OFF`,
/// −0x100000): where the frame starts differs between a packet going out (at its link
/// header) and one coming in (at its network header) when a fanout program runs.
const SKF_NET_OFF: u32 = (-0x10_0000i32) as u32;

/// The accept value that means "the whole packet" (the kernel caps it at the packet length).
pub const WHOLE_PACKET: u32 = u32::MAX;

/// `BPF_RET | BPF_K`.
const RET_K: u16 = 0x06;

/// `DLT_RAW` (raw IPv4/IPv6) as `pcap_open_dead` wants it: libpcap's dead handles take a `DLT_*`
/// value, and `LINKTYPE_RAW` (101) is not one. 12 on Linux and every BSD but OpenBSD.
pub const DLT_RAW: pcap::Linktype = pcap::Linktype(12);

/// A compiled classic BPF program, ready for `SO_ATTACH_FILTER`.
#[derive(Debug, Clone)]
pub struct Program {
    expression: String,
    instructions: Vec<libc::sock_filter>,
}

/// Instructions [`Program::skip_loopback_echo`] puts in front of a program.
pub const LOOPBACK_ECHO_PREFIX: usize = 5;

impl Program {
    /// Compiles `expression` for frames of `linktype`, optimised, accepting whole packets.
    pub fn compile(expression: &str, linktype: pcap::Linktype) -> Result<Program, CaptureError> {
        let filter_err = |reason: String| CaptureError::Filter {
            expression: expression.to_string(),
            reason,
        };
        let dead = pcap::Capture::dead(linktype).map_err(|e| filter_err(e.to_string()))?;
        let program = dead
            .compile(expression, true)
            .map_err(|e| filter_err(e.to_string()))?;
        let mut instructions = Vec::with_capacity(program.get_instructions().len());
        for insn in program.get_instructions() {
            let text = insn.to_string();
            let mut insn = parse_instruction(&text)
                .ok_or_else(|| filter_err(format!("unexpected BPF instruction text {text:?}")))?;
            if insn.code == RET_K && insn.k != 0 {
                insn.k = WHOLE_PACKET;
            }
            instructions.push(insn);
        }
        if instructions.is_empty() || instructions.len() > usize::from(u16::MAX) {
            return Err(filter_err(format!(
                "program has {} instructions",
                instructions.len()
            )));
        }
        Ok(Program {
            expression: expression.to_string(),
            instructions,
        })
    }

    /// This program behind a test that rejects loopback packets going out
    /// (`PACKET_OUTGOING` on an `ARPHRD_LOOPBACK` device), so each loopback packet reaches
    /// the ring once (as it comes in). Other devices' outgoing packets are the host's own
    /// traffic and still pass to the program. Jumps in classic BPF are relative and forward,
    /// so the original program is unchanged behind the prefix.
    pub fn skip_loopback_echo(mut self) -> Program {
        debug_assert_eq!(LOOPBACK_ECHO_PREFIX, 5);
        let insn = |code, jt, jf, k| libc::sock_filter { code, jt, jf, k };
        let mut prefixed = vec![
            // 0: A = pkttype
            insn(LD_W_ABS, 0, 0, SKF_AD_OFF + SKF_AD_PKTTYPE),
            // 1: outgoing? → 2, else → 5 (the original program)
            insn(JEQ_K, 0, 3, libc::PACKET_OUTGOING as u32),
            // 2: A = hatype
            insn(LD_W_ABS, 0, 0, SKF_AD_OFF + SKF_AD_HATYPE),
            // 3: loopback? → 4 (reject), else → 5
            insn(JEQ_K, 0, 1, u32::from(libc::ARPHRD_LOOPBACK)),
            // 4: reject
            insn(RET_K, 0, 0, 0),
        ];
        prefixed.append(&mut self.instructions);
        self.instructions = prefixed;
        self
    }

    /// The program that picks the ring of a packet in a fanout group of several rings
    /// (`PACKET_FANOUT_CBPF`; the kernel takes the value modulo the number of rings): a hash
    /// of the connection that is the same in both directions — the XOR of the two IP
    /// addresses and, for TCP (IPv4 without a fragment offset, IPv6 with TCP right after the
    /// fixed header or after the 8-byte hop-by-hop header of BIG TCP), of the two ports. Any
    /// other packet is hashed on its addresses alone: a tunnel's outer UDP source port is
    /// picked per direction by the sending end (VXLAN, Geneve), so only the outer addresses are
    /// the same both ways, and every tunnelled connection between two hosts meets on one ring.
    /// Not IP at all: ring 0. Loads are relative to the network header (`SKF_NET_OFF`).
    ///
    /// The kernel's own `PACKET_FANOUT_HASH` is symmetric too, but it hashes a tunnel's outer
    /// UDP ports (a VXLAN connection's request and response then reach different rings, so
    /// each worker sees half of it), and dissecting every packet for it cost more.
    pub fn fanout_hash() -> Program {
        let mut asm = Assembler::default();
        let net = |off: u32| SKF_NET_OFF + off;
        asm.op(LD_B_ABS, net(0)).op(RSH_K, 4);
        asm.jeq(4, "v4", "not_v4");
        asm.label("not_v4").jeq(6, "v6", "other");

        asm.label("v4").op(LD_W_ABS, net(12)).op(TAX, 0);
        asm.op(LD_W_ABS, net(16)).op(XOR_X, 0).op(ST, 0);
        asm.op(LD_B_ABS, net(9)).jeq(6, "tcp4", "done");
        // A fragment past the first has no ports (fragments are normally reassembled before
        // the program runs: PACKET_FANOUT_FLAG_DEFRAG).
        asm.label("tcp4").op(LD_H_ABS, net(6));
        asm.jset(0x1fff, "done", "ports4");
        asm.label("ports4")
            .op(LDX_B_MSH, net(0))
            .op(LD_W_IND, net(0));
        asm.ja("ports");

        asm.label("v6").op(LD_W_ABS, net(8)).op(TAX, 0);
        asm.op(LD_W_ABS, net(24)).op(XOR_X, 0).op(TAX, 0);
        for (src, dst) in [(12, 28), (16, 32), (20, 36)] {
            asm.op(LD_W_ABS, net(src)).op(XOR_X, 0).op(TAX, 0);
            asm.op(LD_W_ABS, net(dst)).op(XOR_X, 0).op(TAX, 0);
        }
        asm.op(TXA, 0).op(ST, 0);
        asm.op(LD_B_ABS, net(6)).jeq(6, "tcp6", "hop_by_hop");
        asm.label("hop_by_hop").jeq(0, "hop_by_hop_next", "done");
        asm.label("hop_by_hop_next").op(LD_B_ABS, net(40));
        asm.jeq(6, "hop_by_hop_len", "done");
        asm.label("hop_by_hop_len").op(LD_B_ABS, net(41));
        asm.jeq(0, "big_tcp", "done");
        asm.label("big_tcp").op(LD_W_ABS, net(48)).ja("ports");
        asm.label("tcp6").op(LD_W_ABS, net(40));

        // A = source port << 16 | destination port; M[0] ^= source ^ destination.
        asm.label("ports").op(TAX, 0).op(RSH_K, 16).op(ST, 1);
        asm.op(TXA, 0).op(AND_K, 0xffff).op(LDX_MEM, 1).op(XOR_X, 0);
        asm.op(LDX_MEM, 0).op(XOR_X, 0).op(ST, 0).ja("done");

        asm.label("other").op(LD_IMM, 0).op(ST, 0);
        // Mixed, so that the low bits the kernel's modulo keeps depend on every input bit.
        asm.label("done")
            .op(LD_MEM, 0)
            .op(MUL_K, 0x9e37_79b1)
            .op(RSH_K, 16);
        asm.op(RET_A, 0);
        Program {
            expression: "<fanout: symmetric hash of addresses and TCP ports>".to_string(),
            instructions: asm.finish(),
        }
    }

    /// Sets this program as the ring-choosing program of the fanout group socket `fd` is in
    /// (`PACKET_FANOUT_DATA`; the group must be of type `PACKET_FANOUT_CBPF`).
    pub(crate) fn attach_fanout(&self, fd: libc::c_int) -> std::io::Result<()> {
        self.setsockopt(fd, libc::SOL_PACKET, libc::PACKET_FANOUT_DATA)
    }

    /// A program that rejects every packet (`ret #0`).
    pub fn drop_all() -> Program {
        Program {
            expression: "<drop all>".to_string(),
            instructions: vec![libc::sock_filter {
                code: RET_K,
                jt: 0,
                jf: 0,
                k: 0,
            }],
        }
    }

    /// The expression this program was compiled from.
    pub fn expression(&self) -> &str {
        &self.expression
    }

    /// The instructions.
    pub fn instructions(&self) -> &[libc::sock_filter] {
        &self.instructions
    }

    /// Attaches the program to socket `fd` (`SO_ATTACH_FILTER`), replacing any filter it had.
    /// The swap is atomic: every packet sees either the old or the new program.
    pub(crate) fn attach(&self, fd: libc::c_int) -> std::io::Result<()> {
        self.setsockopt(fd, libc::SOL_SOCKET, libc::SO_ATTACH_FILTER)
    }

    /// Hands the program to the kernel as socket option `name` of `level`.
    fn setsockopt(
        &self,
        fd: libc::c_int,
        level: libc::c_int,
        name: libc::c_int,
    ) -> std::io::Result<()> {
        let prog = libc::sock_fprog {
            len: self.instructions.len() as u16,
            filter: self.instructions.as_ptr() as *mut libc::sock_filter,
        };
        // SAFETY: prog points at our instructions for the duration of the call; the kernel
        // copies them.
        let rc = unsafe {
            libc::setsockopt(
                fd,
                level,
                name,
                &prog as *const libc::sock_fprog as *const libc::c_void,
                std::mem::size_of::<libc::sock_fprog>() as libc::socklen_t,
            )
        };
        if rc == 0 {
            Ok(())
        } else {
            Err(std::io::Error::last_os_error())
        }
    }

    /// Runs the program over `frame` in user space (libpcap's interpreter semantics, restricted
    /// to what compiled port filters use), as an incoming packet on an Ethernet device.
    /// Returns the accept value (0 = rejected). For tests.
    pub fn run(&self, frame: &[u8]) -> u32 {
        self.run_as(frame, libc::PACKET_HOST, libc::ARPHRD_ETHER)
    }

    /// Runs the program over `frame`, whose network header starts at `network` (what loads
    /// relative to `SKF_NET_OFF` read). For tests of [`Program::fanout_hash`].
    pub fn run_with_network_at(&self, frame: &[u8], network: usize) -> u32 {
        run(
            &self.instructions,
            frame,
            Ancillary {
                pkttype: u32::from(libc::PACKET_HOST),
                hatype: u32::from(libc::ARPHRD_ETHER),
                network: network as u32,
            },
        )
    }

    /// [`Program::run`] for a packet of type `pkttype` (`PACKET_*`) on a device of type
    /// `hatype` (`ARPHRD_*`): the two ancillary loads [`Program::skip_loopback_echo`] uses.
    pub fn run_as(&self, frame: &[u8], pkttype: u8, hatype: u16) -> u32 {
        run(
            &self.instructions,
            frame,
            Ancillary {
                pkttype: u32::from(pkttype),
                hatype: u32::from(hatype),
                network: 0,
            },
        )
    }
}

/// Classic BPF opcodes the fanout program uses (`linux/filter.h` spelt out).
const LD_IMM: u16 = 0x00; // A = k
const LD_B_ABS: u16 = 0x30; // A = u8 at k
const LD_H_ABS: u16 = 0x28; // A = u16 at k
const LD_W_IND: u16 = 0x40; // A = u32 at X + k
const LD_MEM: u16 = 0x60; // A = M[k]
const LDX_MEM: u16 = 0x61; // X = M[k]
const LDX_B_MSH: u16 = 0xb1; // X = 4 * (u8 at k & 0xf)
const ST: u16 = 0x02; // M[k] = A
const RSH_K: u16 = 0x74;
const AND_K: u16 = 0x54;
const MUL_K: u16 = 0x24;
const XOR_X: u16 = 0xac; // A ^= X
const JA: u16 = 0x05;
const JSET_K: u16 = 0x45;
const TAX: u16 = 0x07;
const TXA: u16 = 0x87;
const RET_A: u16 = 0x16;

/// Writes a classic BPF program with named jump targets (jumps are forward only, at most
/// 255 instructions for a conditional one).
#[derive(Default)]
struct Assembler {
    insns: Vec<libc::sock_filter>,
    /// (instruction, target of jt or ja, target of jf) for the jumps to resolve.
    jumps: Vec<(usize, &'static str, Option<&'static str>)>,
    labels: Vec<(&'static str, usize)>,
}

impl Assembler {
    fn op(&mut self, code: u16, k: u32) -> &mut Self {
        self.insns.push(libc::sock_filter {
            code,
            jt: 0,
            jf: 0,
            k,
        });
        self
    }

    fn label(&mut self, name: &'static str) -> &mut Self {
        self.labels.push((name, self.insns.len()));
        self
    }

    fn jeq(&mut self, k: u32, then: &'static str, otherwise: &'static str) -> &mut Self {
        self.jumps.push((self.insns.len(), then, Some(otherwise)));
        self.op(JEQ_K, k)
    }

    fn jset(&mut self, k: u32, then: &'static str, otherwise: &'static str) -> &mut Self {
        self.jumps.push((self.insns.len(), then, Some(otherwise)));
        self.op(JSET_K, k)
    }

    fn ja(&mut self, to: &'static str) -> &mut Self {
        self.jumps.push((self.insns.len(), to, None));
        self.op(JA, 0)
    }

    /// The instructions, every jump resolved. Panics on an unknown or backward target: the
    /// program is fixed, and its unit tests run it.
    fn finish(mut self) -> Vec<libc::sock_filter> {
        for &(at, first, second) in &self.jumps {
            let offset = |name: &str| {
                let &(_, to) = self
                    .labels
                    .iter()
                    .find(|(l, _)| *l == name)
                    .unwrap_or_else(|| panic!("BPF label {name} is not defined"));
                assert!(to > at, "BPF jump from {at} back to {name}");
                to - at - 1
            };
            match second {
                None => self.insns[at].k = offset(first) as u32,
                Some(otherwise) => {
                    self.insns[at].jt = u8::try_from(offset(first)).expect("jump too far");
                    self.insns[at].jf = u8::try_from(offset(otherwise)).expect("jump too far");
                }
            }
        }
        self.insns
    }
}

fn parse_instruction(text: &str) -> Option<libc::sock_filter> {
    let mut parts = text.split_whitespace();
    let code = parts.next()?.parse().ok()?;
    let jt = parts.next()?.parse().ok()?;
    let jf = parts.next()?.parse().ok()?;
    let k = parts.next()?.parse().ok()?;
    if parts.next().is_some() {
        return None;
    }
    Some(libc::sock_filter { code, jt, jf, k })
}

/// What the interpreter answers for Linux's ancillary loads.
struct Ancillary {
    pkttype: u32,
    hatype: u32,
    /// Offset of the network header in the frame.
    network: u32,
}

/// A small classic BPF interpreter (ancillary loads: pkttype and hatype only; loads relative
/// to the network header), enough to test compiled filters and the fanout program.
fn run(prog: &[libc::sock_filter], pkt: &[u8], anc: Ancillary) -> u32 {
    let (mut a, mut x) = (0u32, 0u32);
    let mut mem = [0u32; 16];
    let mut pc = 0usize;
    let load = |off: u32, size: usize| -> Option<u32> {
        let off = if off >= SKF_NET_OFF {
            (off - SKF_NET_OFF).checked_add(anc.network)?
        } else {
            off
        };
        let off = off as usize;
        let bytes = pkt.get(off..off.checked_add(size)?)?;
        Some(bytes.iter().fold(0u32, |acc, b| (acc << 8) | u32::from(*b)))
    };
    while let Some(insn) = prog.get(pc) {
        pc += 1;
        let k = insn.k;
        let class = insn.code & 0x07;
        let size = match insn.code & 0x18 {
            0x00 => 4,
            0x08 => 2,
            _ => 1,
        };
        let mode = insn.code & 0xe0;
        let src = if insn.code & 0x08 != 0 { x } else { k };
        match class {
            0x00 | 0x01 => {
                // LD / LDX
                let v = match mode {
                    0x00 => k, // IMM
                    0x20 if k == SKF_AD_OFF + SKF_AD_PKTTYPE => anc.pkttype,
                    0x20 if k == SKF_AD_OFF + SKF_AD_HATYPE => anc.hatype,
                    0x20 => match load(k, size) {
                        // ABS
                        Some(v) => v,
                        None => return 0,
                    },
                    0x40 => match load(x.wrapping_add(k), size) {
                        // IND
                        Some(v) => v,
                        None => return 0,
                    },
                    0x60 => mem[(k & 15) as usize], // MEM
                    0x80 => pkt.len() as u32,       // LEN
                    0xa0 => match load(k, 1) {
                        // MSH (LDX only)
                        Some(v) => (v & 0x0f) * 4,
                        None => return 0,
                    },
                    _ => return 0,
                };
                if class == 0x00 {
                    a = v;
                } else {
                    x = v;
                }
            }
            0x02 => mem[(k & 15) as usize] = a,
            0x03 => mem[(k & 15) as usize] = x,
            0x04 => {
                a = match insn.code & 0xf0 {
                    0x00 => a.wrapping_add(src),
                    0x10 => a.wrapping_sub(src),
                    0x20 => a.wrapping_mul(src),
                    0x30 => match a.checked_div(src) {
                        Some(v) => v,
                        None => return 0,
                    },
                    0x40 => a | src,
                    0x50 => a & src,
                    0x60 => a.checked_shl(src).unwrap_or(0),
                    0x70 => a.checked_shr(src).unwrap_or(0),
                    0x80 => a.wrapping_neg(),
                    0x90 => match a.checked_rem(src) {
                        Some(v) => v,
                        None => return 0,
                    },
                    0xa0 => a ^ src,
                    _ => return 0,
                }
            }
            0x05 => {
                let op = insn.code & 0xf0;
                if op == 0x00 {
                    pc += k as usize;
                } else {
                    let taken = match op {
                        0x10 => a == src,
                        0x20 => a > src,
                        0x30 => a >= src,
                        0x40 => a & src != 0,
                        _ => return 0,
                    };
                    pc += usize::from(if taken { insn.jt } else { insn.jf });
                }
            }
            0x06 => {
                return match insn.code & 0x18 {
                    0x10 => a,
                    _ => k,
                }
            }
            0x07 => {
                if insn.code & 0xf8 == 0 {
                    x = a;
                } else {
                    a = x;
                }
            }
            _ => return 0,
        }
    }
    0
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An IPv4 packet from `src` to `dst` of protocol `proto` whose payload starts with the
    /// two ports; `options` adds 4 bytes of IP options (NOPs).
    fn ipv4_from(
        src: [u8; 4],
        dst: [u8; 4],
        proto: u8,
        ports: (u16, u16),
        options: bool,
    ) -> Vec<u8> {
        let mut p = vec![
            if options { 0x46 } else { 0x45 },
            0,
            0,
            0,
            0,
            0,
            0x40,
            0,
            64,
            proto,
            0,
            0,
        ];
        p.extend_from_slice(&src);
        p.extend_from_slice(&dst);
        if options {
            p.extend_from_slice(&[1, 1, 1, 1]);
        }
        p.extend_from_slice(&ports.0.to_be_bytes());
        p.extend_from_slice(&ports.1.to_be_bytes());
        p.extend_from_slice(&[0; 16]);
        p
    }

    /// An IPv6 packet carrying TCP from `src` to `dst`, behind an 8-byte hop-by-hop header when
    /// `big_tcp` (the layout of BIG TCP super-packets).
    fn ipv6_from(src: [u8; 16], dst: [u8; 16], ports: (u16, u16), big_tcp: bool) -> Vec<u8> {
        let mut p = vec![0x60, 0, 0, 0, 0, 20, if big_tcp { 0 } else { 6 }, 64];
        p.extend_from_slice(&src);
        p.extend_from_slice(&dst);
        if big_tcp {
            p.extend_from_slice(&[6, 0, 0xc2, 4, 0, 1, 0, 0]);
        }
        p.extend_from_slice(&ports.0.to_be_bytes());
        p.extend_from_slice(&ports.1.to_be_bytes());
        p.extend_from_slice(&[0; 16]);
        p
    }

    /// The fanout program's value for an IP packet, checked to be the same with the network
    /// header at the start (a packet coming in) and behind an Ethernet header (going out).
    fn fanout(ip: &[u8]) -> u32 {
        let prog = Program::fanout_hash();
        let bare = prog.run_with_network_at(ip, 0);
        let framed = prog.run_with_network_at(&ethernet(None, 0x0800, ip), 14);
        assert_eq!(bare, framed, "the value depends on where the frame starts");
        bare
    }

    #[test]
    fn fanout_hash_is_the_same_in_both_directions() {
        for i in 0..200u16 {
            let (a, b) = ([10, 0, (i % 7) as u8, 1], [10, 9, 0, (i % 5) as u8 + 2]);
            let (client, server) = (30_000 + 17 * i, [80, 443, 8080][usize::from(i % 3)]);
            let options = i % 2 == 0;
            assert_eq!(
                fanout(&ipv4_from(a, b, 6, (client, server), options)),
                fanout(&ipv4_from(b, a, 6, (server, client), !options)),
                "IPv4 {a:?}:{client} ↔ {b:?}:{server}"
            );
            let (mut a6, mut b6) = ([0u8; 16], [0u8; 16]);
            a6[0] = 0xfd;
            a6[15] = i as u8;
            b6[0] = 0xfd;
            b6[7] = (i >> 3) as u8;
            b6[15] = 1;
            let big = i % 2 == 0;
            assert_eq!(
                fanout(&ipv6_from(a6, b6, (client, server), big)),
                fanout(&ipv6_from(b6, a6, (server, client), !big)),
                "IPv6 {a6:?}:{client} ↔ {b6:?}:{server} (BIG TCP one way)"
            );
        }
    }

    #[test]
    fn fanout_hash_spreads_the_connections_of_one_client() {
        let (client, server) = ([10, 0, 0, 1], [10, 0, 0, 2]);
        for rings in [2u32, 3, 4] {
            let mut per_ring = vec![0u32; rings as usize];
            for port in 32_768..(32_768 + 4_000) {
                per_ring[(fanout(&ipv4_from(client, server, 6, (port, 8080), false)) % rings)
                    as usize] += 1;
            }
            let even = 4_000 / rings;
            for n in &per_ring {
                assert!(
                    n.abs_diff(even) < even / 5,
                    "{rings} rings: {per_ring:?} is not within 20 % of even"
                );
            }
        }
    }

    /// A tunnel's outer UDP source port is chosen per direction by the sending end: only the
    /// outer addresses may count. Not IP: ring 0.
    #[test]
    fn fanout_hash_ignores_ports_that_are_not_tcp_and_sends_non_ip_to_ring_0() {
        let (a, b) = ([192, 168, 1, 10], [192, 168, 1, 20]);
        let there = fanout(&ipv4_from(a, b, 17, (41_234, 4789), false));
        let back = fanout(&ipv4_from(b, a, 17, (52_011, 4789), false));
        assert_eq!(there, back);
        assert_eq!(there, fanout(&ipv4_from(a, b, 47, (0, 0), false)));
        let mut fragment = ipv4_from(a, b, 6, (1234, 80), false);
        fragment[7] = 0xb9; // fragment offset 185 × 8 bytes: no TCP header here
        assert_eq!(fanout(&fragment), there);
        assert_eq!(
            Program::fanout_hash().run_with_network_at(&[0x00; 40], 0),
            0
        );
    }

    /// IPv4 + TCP header, ports as given, no payload.
    fn ipv4_tcp(sport: u16, dport: u16) -> Vec<u8> {
        let mut p = vec![
            0x45, 0, 0, 40, 0, 0, 0x40, 0, 64, 6, 0, 0, 127, 0, 0, 1, 127, 0, 0, 1,
        ];
        p.extend_from_slice(&sport.to_be_bytes());
        p.extend_from_slice(&dport.to_be_bytes());
        p.extend_from_slice(&[0, 0, 0, 1, 0, 0, 0, 0, 0x50, 0x02, 0xff, 0xff, 0, 0, 0, 0]);
        p
    }

    fn ipv6_tcp(sport: u16, dport: u16) -> Vec<u8> {
        let mut p = vec![0x60, 0, 0, 0, 0, 20, 6, 64];
        p.extend_from_slice(&[0; 15]);
        p.push(1);
        p.extend_from_slice(&[0; 15]);
        p.push(1);
        p.extend_from_slice(&sport.to_be_bytes());
        p.extend_from_slice(&dport.to_be_bytes());
        p.extend_from_slice(&[0, 0, 0, 1, 0, 0, 0, 0, 0x50, 0x02, 0xff, 0xff, 0, 0, 0, 0]);
        p
    }

    fn ethernet(vlan: Option<u16>, ethertype: u16, ip: &[u8]) -> Vec<u8> {
        let mut f = vec![0u8; 12];
        if let Some(id) = vlan {
            f.extend_from_slice(&0x8100u16.to_be_bytes());
            f.extend_from_slice(&id.to_be_bytes());
        }
        f.extend_from_slice(&ethertype.to_be_bytes());
        f.extend_from_slice(ip);
        f
    }

    #[test]
    fn raw_ip_port_filter_accepts_whole_packets() {
        let prog = Program::compile(&super::super::ip_filter_expression(&[8080]), DLT_RAW).unwrap();
        assert!(prog
            .instructions()
            .iter()
            .all(|i| i.code != RET_K || i.k == 0 || i.k == WHOLE_PACKET));
        assert_eq!(prog.run(&ipv4_tcp(40000, 8080)), WHOLE_PACKET);
        assert_eq!(prog.run(&ipv4_tcp(8080, 40000)), WHOLE_PACKET);
        assert_eq!(prog.run(&ipv6_tcp(8080, 40000)), WHOLE_PACKET);
        assert_eq!(prog.run(&ipv4_tcp(40000, 8081)), 0);
        assert_eq!(prog.run(&ipv6_tcp(40000, 22)), 0);
        let mut udp = ipv4_tcp(40000, 8080);
        udp[9] = 17;
        assert_eq!(prog.run(&udp), 0);
    }

    /// Consecutive ports become ranges (two comparisons each), for plain TCP and for BIG TCP
    /// jumbograms alike; the ends of every range are in, their neighbours out.
    #[test]
    fn consecutive_ports_are_filtered_as_ranges() {
        let ports = [8000, 8001, 8002, 8003, 9000, 443, 8004];
        let expr = super::super::ip_filter_expression(&ports);
        assert!(
            expr.starts_with("tcp port 443 or tcp portrange 8000-8004 or tcp port 9000 or "),
            "{expr}"
        );
        let prog = Program::compile(&expr, DLT_RAW).unwrap();
        for port in [443, 8000, 8002, 8004, 9000] {
            assert_eq!(prog.run(&ipv4_tcp(40000, port)), WHOLE_PACKET, "{port}");
            assert_eq!(prog.run(&ipv6_tcp(port, 40000)), WHOLE_PACKET, "{port}");
            assert_eq!(prog.run(&ipv6_big_tcp(40000, port)), WHOLE_PACKET, "{port}");
        }
        for port in [442, 444, 7999, 8005, 8999, 9001] {
            assert_eq!(prog.run(&ipv4_tcp(40000, port)), 0, "{port}");
            assert_eq!(prog.run(&ipv6_big_tcp(port, 40000)), 0, "{port}");
        }
        // 2 000 consecutive ports cost what one range costs.
        let wide: Vec<u16> = (10_000..12_000).collect();
        let wide = Program::compile(&super::super::ip_filter_expression(&wide), DLT_RAW).unwrap();
        assert!(
            wide.instructions().len() < 200,
            "{}",
            wide.instructions().len()
        );
    }

    /// A port list whose program the kernel would refuse (over `BPF_MAXINSNS`) gets the
    /// all-TCP filter instead of an `EINVAL` or libpcap's silent user-space filtering; a
    /// list that fits keeps its exact filter.
    #[test]
    fn too_many_ports_widen_the_live_filter_to_all_tcp() {
        use super::super::{ip_filter_expression, live_filter, KERNEL_FILTER_MAX_INSTRUCTIONS};
        let scattered: Vec<u16> = (0..450).map(|i| 1000 + 7 * i).collect();
        let exact = Program::compile(&ip_filter_expression(&scattered), DLT_RAW).unwrap();
        assert!(exact.instructions().len() > KERNEL_FILTER_MAX_INSTRUCTIONS);
        let live = live_filter(DLT_RAW, &scattered, ip_filter_expression).unwrap();
        assert_eq!(live.expression(), ip_filter_expression(&[]));
        assert!(live.skip_loopback_echo().instructions().len() <= KERNEL_FILTER_MAX_INSTRUCTIONS);

        let few: Vec<u16> = (0..100).map(|i| 1000 + 7 * i).collect();
        let live = live_filter(DLT_RAW, &few, ip_filter_expression).unwrap();
        assert_eq!(live.expression(), ip_filter_expression(&few));
        assert_eq!(live.run(&ipv4_tcp(40000, 1007)), WHOLE_PACKET);
        assert_eq!(live.run(&ipv4_tcp(40000, 1008)), 0);
    }

    /// Real encapsulated frames (the `wire` corpus, generated by scapy) pass the live filter
    /// whatever their inner port, over IPv4 and IPv6 outer headers, with listed ports and
    /// with `ports: any`; plain UDP and other protocols still do not.
    #[test]
    fn encapsulated_packets_pass_the_filter() {
        use crate::wire::encap::tests::FIXTURES;
        for ports in [&[8080u16][..], &[]] {
            let prog =
                Program::compile(&super::super::ip_filter_expression(ports), DLT_RAW).unwrap();
            for (name, ip, _) in FIXTURES {
                assert_eq!(prog.run(ip), WHOLE_PACKET, "{name} with ports {ports:?}");
            }
            let mut udp = ipv4_tcp(40000, 53);
            udp[9] = 17;
            assert_eq!(prog.run(&udp), 0, "plain UDP");
            let mut icmp = ipv4_tcp(40000, 8080);
            icmp[9] = 1;
            assert_eq!(prog.run(&icmp), 0, "ICMP");
        }
    }

    /// `packet` (outer IPv6) with extension headers `(type, length in 8-byte units - 1)`
    /// inserted between the fixed header and what it carried, payload length fixed up.
    fn with_ext_headers(packet: &[u8], exts: &[(u8, u8)]) -> Vec<u8> {
        let mut out = packet[..40].to_vec();
        let carried = packet[6];
        out[6] = exts.first().map_or(carried, |e| e.0);
        for (i, &(kind, len)) in exts.iter().enumerate() {
            let next = exts.get(i + 1).map_or(carried, |e| e.0);
            let mut h = vec![0u8; 8 * (usize::from(len) + 1)];
            h[0] = next;
            h[1] = len;
            if kind == 43 {
                // Routing type 4 (SRv6), segments left 0.
                h[2] = 4;
            } else {
                // One PadN option filling the rest (hop-by-hop, destination options).
                h[2] = 1;
                h[3] = (h.len() - 4) as u8;
            }
            out.extend_from_slice(&h);
        }
        out.extend_from_slice(&packet[40..]);
        let plen = (out.len() - 40) as u16;
        out[4..6].copy_from_slice(&plen.to_be_bytes());
        out
    }

    /// Tunnels behind one or two outer IPv6 extension headers (hop-by-hop, routing,
    /// destination options, of several lengths) pass the live filter; three do not (the
    /// documented limit); plain UDP or TCP behind them is still not let through by this
    /// clause. Every variant still decodes to the inner segment.
    #[test]
    fn tunnels_behind_ipv6_extension_headers_pass_the_filter() {
        use crate::wire::encap::tests::FIXTURES;
        let chains: &[&[(u8, u8)]] = &[
            &[(0, 0)],
            &[(60, 1)],
            &[(43, 2)],
            &[(0, 0), (60, 0)],
            &[(0, 3), (43, 2)],
            &[(60, 0), (43, 5)],
            &[(43, 1), (60, 1)],
        ];
        let prog = Program::compile(&super::super::ip_filter_expression(&[8080]), DLT_RAW).unwrap();
        let eth = Program::compile(
            &super::super::filter_expression(&[8080]),
            pcap::Linktype::ETHERNET,
        )
        .unwrap();
        let mut tested = 0;
        for (name, ip, _) in FIXTURES {
            // Outer IPv6 without extension headers of its own.
            if ip[0] >> 4 != 6 || crate::wire::ipv6::is_extension(ip[6]) {
                continue;
            }
            for exts in chains {
                let p = with_ext_headers(ip, exts);
                assert_eq!(prog.run(&p), WHOLE_PACKET, "{name} behind {exts:?}");
                let frame = ethernet(None, 0x86dd, &p);
                assert_eq!(
                    eth.run(&frame),
                    WHOLE_PACKET,
                    "{name} behind {exts:?}, Ethernet"
                );
                let tagged = ethernet(Some(7), 0x86dd, &p);
                assert_eq!(
                    eth.run(&tagged),
                    WHOLE_PACKET,
                    "{name} behind {exts:?}, VLAN"
                );
                let seg = crate::wire::decode_tcp(crate::wire::LinkType::Raw, &p)
                    .unwrap_or_else(|e| panic!("{name} behind {exts:?}: {e:?}"));
                assert_eq!(seg.dst_port, 8080, "{name} behind {exts:?}");
                tested += 1;
            }
            let three = with_ext_headers(ip, &[(0, 0), (60, 0), (43, 0)]);
            assert_eq!(prog.run(&three), 0, "{name} behind three extension headers");
        }
        assert!(tested >= 5 * chains.len(), "only {tested} IPv6 fixtures");
        // UDP to another port, and TCP to an unlisted port, behind extension headers.
        let mut dns = ipv6_tcp(40000, 53);
        dns[6] = 17;
        for exts in chains {
            assert_eq!(
                prog.run(&with_ext_headers(&dns, exts)),
                0,
                "DNS behind {exts:?}"
            );
            let tcp = with_ext_headers(&ipv6_tcp(40000, 22), exts);
            assert_eq!(prog.run(&tcp), 0, "TCP behind {exts:?}");
        }
        // A header claiming more length than the packet has: rejected, no panic.
        let mut short = with_ext_headers(&dns, &[(60, 0)]);
        short[40] = 17;
        short[41] = 200;
        assert_eq!(prog.run(&short), 0);
        // The filter stays well inside the kernel's 4096-instruction limit with many ports.
        let many: Vec<u16> = (8000..8100).collect();
        let big = Program::compile(
            &super::super::filter_expression(&many),
            pcap::Linktype::ETHERNET,
        )
        .unwrap();
        assert!(
            big.instructions().len() < 4096,
            "{}",
            big.instructions().len()
        );
    }

    /// IPv6 BIG TCP: payload length 0 and an 8-byte hop-by-hop header with a Jumbo Payload
    /// option before TCP.
    fn ipv6_big_tcp(sport: u16, dport: u16) -> Vec<u8> {
        let mut p = ipv6_tcp(sport, dport);
        p[4..6].copy_from_slice(&[0, 0]);
        p[6] = 0; // next header: hop-by-hop
        let jumbo = (p.len() as u32 - 40 + 8).to_be_bytes();
        let hbh = [6, 0, 0xc2, 4, jumbo[0], jumbo[1], jumbo[2], jumbo[3]];
        p.splice(40..40, hbh);
        p
    }

    #[test]
    fn raw_ip_filter_matches_big_tcp_jumbograms() {
        let prog = Program::compile(&super::super::ip_filter_expression(&[8080]), DLT_RAW).unwrap();
        assert_eq!(prog.run(&ipv6_big_tcp(40000, 8080)), WHOLE_PACKET);
        assert_eq!(prog.run(&ipv6_big_tcp(8080, 40000)), WHOLE_PACKET);
        assert_eq!(prog.run(&ipv6_big_tcp(40000, 8081)), 0);
        let all = Program::compile(&super::super::ip_filter_expression(&[]), DLT_RAW).unwrap();
        assert_eq!(all.run(&ipv6_big_tcp(1, 2)), WHOLE_PACKET);
        // The wire decoder agrees about the layout.
        let frame = ipv6_big_tcp(1, 8080);
        let seg = crate::wire::decode_tcp(crate::wire::LinkType::Raw, &frame).unwrap();
        assert_eq!(seg.dst_port, 8080);
    }

    #[test]
    fn ethernet_filter_matches_inline_vlan_tags() {
        let prog = Program::compile(
            &super::super::filter_expression(&[80]),
            pcap::Linktype::ETHERNET,
        )
        .unwrap();
        let ip = ipv4_tcp(1234, 80);
        assert_ne!(prog.run(&ethernet(None, 0x0800, &ip)), 0);
        assert_ne!(prog.run(&ethernet(Some(100), 0x0800, &ip)), 0);
        assert_ne!(
            prog.run(&ethernet(Some(100), 0x86dd, &ipv6_tcp(80, 1234))),
            0
        );
        assert_eq!(
            prog.run(&ethernet(Some(100), 0x0800, &ipv4_tcp(1234, 81))),
            0
        );
        assert_eq!(prog.run(&ethernet(None, 0x0806, &ip)), 0);
    }

    #[test]
    fn bad_expressions_are_named() {
        let err = Program::compile("tcp port eighty", DLT_RAW).unwrap_err();
        let text = err.to_string();
        assert!(text.contains("tcp port eighty"), "{text}");
        // `vlan` has no meaning without an Ethernet header.
        assert!(Program::compile("vlan and tcp", DLT_RAW).is_err());
    }

    #[test]
    fn loopback_echo_is_rejected_in_the_kernel_filter_and_nothing_else_is() {
        let prog = Program::compile(&super::super::ip_filter_expression(&[8080]), DLT_RAW)
            .unwrap()
            .skip_loopback_echo();
        let pkt = ipv4_tcp(40000, 8080);
        let lo = libc::ARPHRD_LOOPBACK;
        // The loopback packet once: going out rejected, coming in accepted.
        assert_eq!(prog.run_as(&pkt, libc::PACKET_OUTGOING, lo), 0);
        assert_eq!(prog.run_as(&pkt, libc::PACKET_HOST, lo), WHOLE_PACKET);
        // Another device's outgoing traffic is the host's own: kept.
        assert_eq!(
            prog.run_as(&pkt, libc::PACKET_OUTGOING, libc::ARPHRD_ETHER),
            WHOLE_PACKET
        );
        // The port filter behind the prefix still decides.
        assert_eq!(
            prog.run_as(&ipv4_tcp(40000, 9090), libc::PACKET_HOST, lo),
            0
        );
        assert_eq!(
            prog.run_as(&ipv6_tcp(8080, 40000), libc::PACKET_HOST, lo),
            WHOLE_PACKET
        );
    }

    #[test]
    fn drop_all_rejects() {
        assert_eq!(Program::drop_all().run(&ipv4_tcp(1, 2)), 0);
    }
}
