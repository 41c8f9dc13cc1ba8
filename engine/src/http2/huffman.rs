//! The HPACK Huffman code (RFC 7541 Appendix B) and a decoder for it.
//!
//! The code table is the RFC's data (symbols 0–255; EOS, symbol 256, is
//! `0x3fffffff` on 30 bits). Decoding walks a binary tree built once from the
//! table, a nibble at a time through a 16-way transition table derived from
//! it, so a byte costs two table look-ups.
//!
//! # Invariants
//!
//! * [`decode`] never panics and its output is never longer than
//!   `8 * input.len() / 5` bytes (the shortest code has 5 bits).
//! * Padding longer than 7 bits, padding that is not a prefix of EOS, and an
//!   EOS inside the string are errors (RFC 7541 §5.2).

use std::sync::OnceLock;

const CODES: [u32; 256] = [
    0x1ff8, 0x7fffd8, 0xfffffe2, 0xfffffe3, 0xfffffe4, 0xfffffe5, 0xfffffe6, 0xfffffe7, 0xfffffe8,
    0xffffea, 0x3ffffffc, 0xfffffe9, 0xfffffea, 0x3ffffffd, 0xfffffeb, 0xfffffec, 0xfffffed,
    0xfffffee, 0xfffffef, 0xffffff0, 0xffffff1, 0xffffff2, 0x3ffffffe, 0xffffff3, 0xffffff4,
    0xffffff5, 0xffffff6, 0xffffff7, 0xffffff8, 0xffffff9, 0xffffffa, 0xffffffb, 0x14, 0x3f8,
    0x3f9, 0xffa, 0x1ff9, 0x15, 0xf8, 0x7fa, 0x3fa, 0x3fb, 0xf9, 0x7fb, 0xfa, 0x16, 0x17, 0x18,
    0x0, 0x1, 0x2, 0x19, 0x1a, 0x1b, 0x1c, 0x1d, 0x1e, 0x1f, 0x5c, 0xfb, 0x7ffc, 0x20, 0xffb,
    0x3fc, 0x1ffa, 0x21, 0x5d, 0x5e, 0x5f, 0x60, 0x61, 0x62, 0x63, 0x64, 0x65, 0x66, 0x67, 0x68,
    0x69, 0x6a, 0x6b, 0x6c, 0x6d, 0x6e, 0x6f, 0x70, 0x71, 0x72, 0xfc, 0x73, 0xfd, 0x1ffb, 0x7fff0,
    0x1ffc, 0x3ffc, 0x22, 0x7ffd, 0x3, 0x23, 0x4, 0x24, 0x5, 0x25, 0x26, 0x27, 0x6, 0x74, 0x75,
    0x28, 0x29, 0x2a, 0x7, 0x2b, 0x76, 0x2c, 0x8, 0x9, 0x2d, 0x77, 0x78, 0x79, 0x7a, 0x7b, 0x7ffe,
    0x7fc, 0x3ffd, 0x1ffd, 0xffffffc, 0xfffe6, 0x3fffd2, 0xfffe7, 0xfffe8, 0x3fffd3, 0x3fffd4,
    0x3fffd5, 0x7fffd9, 0x3fffd6, 0x7fffda, 0x7fffdb, 0x7fffdc, 0x7fffdd, 0x7fffde, 0xffffeb,
    0x7fffdf, 0xffffec, 0xffffed, 0x3fffd7, 0x7fffe0, 0xffffee, 0x7fffe1, 0x7fffe2, 0x7fffe3,
    0x7fffe4, 0x1fffdc, 0x3fffd8, 0x7fffe5, 0x3fffd9, 0x7fffe6, 0x7fffe7, 0xffffef, 0x3fffda,
    0x1fffdd, 0xfffe9, 0x3fffdb, 0x3fffdc, 0x7fffe8, 0x7fffe9, 0x1fffde, 0x7fffea, 0x3fffdd,
    0x3fffde, 0xfffff0, 0x1fffdf, 0x3fffdf, 0x7fffeb, 0x7fffec, 0x1fffe0, 0x1fffe1, 0x3fffe0,
    0x1fffe2, 0x7fffed, 0x3fffe1, 0x7fffee, 0x7fffef, 0xfffea, 0x3fffe2, 0x3fffe3, 0x3fffe4,
    0x7ffff0, 0x3fffe5, 0x3fffe6, 0x7ffff1, 0x3ffffe0, 0x3ffffe1, 0xfffeb, 0x7fff1, 0x3fffe7,
    0x7ffff2, 0x3fffe8, 0x1ffffec, 0x3ffffe2, 0x3ffffe3, 0x3ffffe4, 0x7ffffde, 0x7ffffdf,
    0x3ffffe5, 0xfffff1, 0x1ffffed, 0x7fff2, 0x1fffe3, 0x3ffffe6, 0x7ffffe0, 0x7ffffe1, 0x3ffffe7,
    0x7ffffe2, 0xfffff2, 0x1fffe4, 0x1fffe5, 0x3ffffe8, 0x3ffffe9, 0xffffffd, 0x7ffffe3, 0x7ffffe4,
    0x7ffffe5, 0xfffec, 0xfffff3, 0xfffed, 0x1fffe6, 0x3fffe9, 0x1fffe7, 0x1fffe8, 0x7ffff3,
    0x3fffea, 0x3fffeb, 0x1ffffee, 0x1ffffef, 0xfffff4, 0xfffff5, 0x3ffffea, 0x7ffff4, 0x3ffffeb,
    0x7ffffe6, 0x3ffffec, 0x3ffffed, 0x7ffffe7, 0x7ffffe8, 0x7ffffe9, 0x7ffffea, 0x7ffffeb,
    0xffffffe, 0x7ffffec, 0x7ffffed, 0x7ffffee, 0x7ffffef, 0x7fffff0, 0x3ffffee,
];

const LENGTHS: [u8; 256] = [
    13, 23, 28, 28, 28, 28, 28, 28, 28, 24, 30, 28, 28, 30, 28, 28, 28, 28, 28, 28, 28, 28, 30, 28,
    28, 28, 28, 28, 28, 28, 28, 28, 6, 10, 10, 12, 13, 6, 8, 11, 10, 10, 8, 11, 8, 6, 6, 6, 5, 5,
    5, 6, 6, 6, 6, 6, 6, 6, 7, 8, 15, 6, 12, 10, 13, 6, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7,
    7, 7, 7, 7, 7, 7, 7, 7, 8, 7, 8, 13, 19, 13, 14, 6, 15, 5, 6, 5, 6, 5, 6, 6, 6, 5, 7, 7, 6, 6,
    6, 5, 6, 7, 6, 5, 5, 6, 7, 7, 7, 7, 7, 15, 11, 14, 13, 28, 20, 22, 20, 20, 22, 22, 22, 23, 22,
    23, 23, 23, 23, 23, 24, 23, 24, 24, 22, 23, 24, 23, 23, 23, 23, 21, 22, 23, 22, 23, 23, 24, 22,
    21, 20, 22, 22, 23, 23, 21, 23, 22, 22, 24, 21, 22, 23, 23, 21, 21, 22, 21, 23, 22, 23, 23, 20,
    22, 22, 22, 23, 22, 22, 23, 26, 26, 20, 19, 22, 23, 22, 25, 26, 26, 26, 27, 27, 26, 24, 25, 19,
    21, 26, 27, 27, 26, 27, 24, 21, 21, 26, 26, 28, 27, 27, 27, 20, 24, 20, 21, 22, 21, 21, 23, 22,
    22, 25, 25, 24, 24, 26, 23, 26, 27, 26, 26, 27, 27, 27, 27, 27, 28, 27, 27, 27, 27, 27, 26,
];

/// EOS code (symbol 256).
const EOS_CODE: u32 = 0x3fff_ffff;
const EOS_LEN: u8 = 30;

/// A Huffman string that breaks RFC 7541 §5.2.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct HuffmanError;

/// One state of the nibble automaton: for each of the 16 next nibbles, the
/// next state, the symbol emitted (if any), and whether EOS was hit.
#[derive(Clone, Copy, Default)]
struct Edge {
    next: u16,
    sym: u8,
    emit: bool,
    fail: bool,
}

struct Automaton {
    /// `edges[state * 16 + nibble]`.
    edges: Vec<Edge>,
    /// Whether ending in `state` is valid padding (≤ 7 bits, all ones).
    accept: Vec<bool>,
}

/// The binary tree: `nodes[i] = [child0, child1]`; a child ≥ `LEAF` is a leaf
/// whose symbol is `child - LEAF` (256 = EOS); 0 is "no child" (the root is
/// never a child).
const LEAF: u32 = 1 << 16;

fn build_tree() -> Vec<[u32; 2]> {
    let mut nodes: Vec<[u32; 2]> = vec![[0, 0]];
    let codes = CODES
        .iter()
        .zip(LENGTHS.iter())
        .map(|(&c, &l)| (c, l))
        .chain(std::iter::once((EOS_CODE, EOS_LEN)));
    for (sym, (code, len)) in codes.enumerate() {
        let mut node = 0usize;
        for i in (0..len).rev() {
            let bit = ((code >> i) & 1) as usize;
            if i == 0 {
                nodes[node][bit] = LEAF + sym as u32;
            } else {
                if nodes[node][bit] == 0 {
                    nodes.push([0, 0]);
                    nodes[node][bit] = (nodes.len() - 1) as u32;
                }
                node = nodes[node][bit] as usize;
            }
        }
    }
    nodes
}

fn automaton() -> &'static Automaton {
    static A: OnceLock<Automaton> = OnceLock::new();
    A.get_or_init(|| {
        let tree = build_tree();
        // Depth and all-ones-ness of each inner node, for the padding rule.
        let mut depth = vec![0u8; tree.len()];
        let mut ones = vec![true; tree.len()];
        for (i, n) in tree.iter().enumerate() {
            for (bit, &c) in n.iter().enumerate() {
                if c != 0 && c < LEAF {
                    depth[c as usize] = depth[i] + 1;
                    ones[c as usize] = ones[i] && bit == 1;
                }
            }
        }
        let mut edges = vec![Edge::default(); tree.len() * 16];
        for state in 0..tree.len() {
            for nibble in 0..16u8 {
                let mut node = state;
                let mut e = Edge::default();
                for i in (0..4).rev() {
                    let c = tree[node][((nibble >> i) & 1) as usize];
                    if c >= LEAF {
                        let sym = c - LEAF;
                        if sym == 256 || e.emit {
                            // EOS, or a second symbol in one nibble (impossible:
                            // codes are ≥ 5 bits) — treat both as errors.
                            e.fail = true;
                            break;
                        }
                        e.sym = sym as u8;
                        e.emit = true;
                        node = 0;
                    } else {
                        node = c as usize;
                    }
                }
                e.next = node as u16;
                edges[state * 16 + nibble as usize] = e;
            }
        }
        let accept = (0..tree.len())
            .map(|s| s == 0 || (ones[s] && depth[s] <= 7))
            .collect();
        Automaton { edges, accept }
    })
}

/// Decodes a Huffman-coded string, appending to `out`.
pub(crate) fn decode(input: &[u8], out: &mut Vec<u8>) -> Result<(), HuffmanError> {
    let a = automaton();
    out.reserve(input.len() * 8 / 5);
    let mut state = 0usize;
    for &b in input {
        for nibble in [b >> 4, b & 0xf] {
            let e = a.edges[state * 16 + nibble as usize];
            if e.fail {
                return Err(HuffmanError);
            }
            if e.emit {
                out.push(e.sym);
            }
            state = e.next as usize;
        }
    }
    if a.accept[state] {
        Ok(())
    } else {
        Err(HuffmanError)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn encode(s: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        let (mut acc, mut bits) = (0u64, 0u32);
        for &b in s {
            acc = (acc << LENGTHS[b as usize]) | u64::from(CODES[b as usize]);
            bits += u32::from(LENGTHS[b as usize]);
            while bits >= 8 {
                bits -= 8;
                out.push((acc >> bits) as u8);
            }
        }
        if bits > 0 {
            out.push(((acc << (8 - bits)) | (0xff >> bits)) as u8);
        }
        out
    }

    #[test]
    fn rfc7541_c4_strings() {
        let mut out = Vec::new();
        // C.4.1: "www.example.com"
        decode(
            &[
                0xf1, 0xe3, 0xc2, 0xe5, 0xf2, 0x3a, 0x6b, 0xa0, 0xab, 0x90, 0xf4, 0xff,
            ],
            &mut out,
        )
        .unwrap();
        assert_eq!(out, b"www.example.com");
        out.clear();
        // C.4.2: "no-cache"
        decode(&[0xa8, 0xeb, 0x10, 0x64, 0x9c, 0xbf], &mut out).unwrap();
        assert_eq!(out, b"no-cache");
    }

    #[test]
    fn every_byte_round_trips() {
        let all: Vec<u8> = (0..=255u8).collect();
        let mut out = Vec::new();
        decode(&encode(&all), &mut out).unwrap();
        assert_eq!(out, all);
        for b in 0..=255u8 {
            out.clear();
            decode(&encode(&[b, b'a', b]), &mut out).unwrap();
            assert_eq!(out, [b, b'a', b]);
        }
    }

    #[test]
    fn bad_padding_and_eos_are_errors() {
        let mut out = Vec::new();
        // A whole byte of padding (8 ones).
        let mut s = encode(b"a");
        s.push(0xff);
        assert_eq!(decode(&s, &mut out), Err(HuffmanError));
        // Padding of zeros: 'a' is 00011, padded with 000.
        assert_eq!(decode(&[0b0001_1000], &mut out), Err(HuffmanError));
        // EOS itself (30 ones) padded to 32 bits.
        assert_eq!(
            decode(&[0xff, 0xff, 0xff, 0xff], &mut out),
            Err(HuffmanError)
        );
        // Arbitrary bytes never panic.
        for a in 0..=255u8 {
            for b in [0u8, 0x7f, 0xfe, 0xff] {
                out.clear();
                let _ = decode(&[a, b, a], &mut out);
                assert!(out.len() <= 3 * 8 / 5);
            }
        }
    }
}
