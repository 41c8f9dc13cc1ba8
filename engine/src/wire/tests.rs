//! Whole-frame tests of [`decode_tcp`]: every link type, VLAN stacks, padding, snaplen cuts at
//! every length, fragments, lying lengths, and random / mutated frames.
//!
//! The fixtures were built with correct checksums and checked with tshark 4.0 (written to
//! pcap files of each link type: tshark decodes them as the comments say, checksums correct).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use super::*;

/// 192.168.1.10:51000 → 93.184.216.34:80, PSH|ACK, seq 0x11223344, ack 0x55667788; IPv4 with
/// a Router Alert option (IHL 6), TCP with NOP NOP Timestamps (data offset 8);
/// payload "GET / HTTP/1.1\r\nHost: a\r\n\r\n".
const IPV4_REQUEST: [u8; 83] = [
    0x46, 0x00, 0x00, 0x53, 0x1c, 0x46, 0x40, 0x00, 0x40, 0x06, 0x91, 0xcd, //
    0xc0, 0xa8, 0x01, 0x0a, 0x5d, 0xb8, 0xd8, 0x22, 0x94, 0x04, 0x00, 0x00, //
    0xc7, 0x38, 0x00, 0x50, 0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88, //
    0x80, 0x18, 0xff, 0xff, 0x59, 0x66, 0x00, 0x00, 0x01, 0x01, 0x08, 0x0a, //
    0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08, 0x47, 0x45, 0x54, 0x20, //
    0x2f, 0x20, 0x48, 0x54, 0x54, 0x50, 0x2f, 0x31, 0x2e, 0x31, 0x0d, 0x0a, //
    0x48, 0x6f, 0x73, 0x74, 0x3a, 0x20, 0x61, 0x0d, 0x0a, 0x0d, 0x0a,
];
const REQUEST: &[u8] = b"GET / HTTP/1.1\r\nHost: a\r\n\r\n";

/// 93.184.216.34:80 → 192.168.1.10:51000, a pure ACK: 40 bytes, padded to 60 on Ethernet.
const IPV4_ACK: [u8; 40] = [
    0x45, 0x00, 0x00, 0x28, 0x1c, 0x46, 0x40, 0x00, 0x40, 0x06, 0x26, 0xfd, //
    0x5d, 0xb8, 0xd8, 0x22, 0xc0, 0xa8, 0x01, 0x0a, 0x00, 0x50, 0xc7, 0x38, //
    0x55, 0x66, 0x77, 0x88, 0x11, 0x22, 0x33, 0x5f, 0x50, 0x10, 0xff, 0xff, //
    0xdf, 0x4e, 0x00, 0x00,
];

/// [2001:db8::1]:8080 → [2001:db8::2]:40000, PSH|ACK, seq 1000, ack 2000, through hop-by-hop,
/// destination options and an atomic fragment header; payload "HTTP/1.1 204 No Content\r\n\r\n".
const IPV6_RESPONSE: [u8; 111] = [
    0x60, 0x00, 0x00, 0x00, 0x00, 0x47, 0x00, 0x40, 0x20, 0x01, 0x0d, 0xb8, //
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01, //
    0x20, 0x01, 0x0d, 0xb8, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, //
    0x00, 0x00, 0x00, 0x02, 0x3c, 0x00, 0x01, 0x04, 0x00, 0x00, 0x00, 0x00, //
    0x2c, 0x00, 0x01, 0x04, 0x00, 0x00, 0x00, 0x00, 0x06, 0x00, 0x00, 0x00, //
    0xab, 0xcd, 0xef, 0x01, 0x1f, 0x90, 0x9c, 0x40, 0x00, 0x00, 0x03, 0xe8, //
    0x00, 0x00, 0x07, 0xd0, 0x50, 0x18, 0xff, 0xff, 0x13, 0x6c, 0x00, 0x00, //
    0x48, 0x54, 0x54, 0x50, 0x2f, 0x31, 0x2e, 0x31, 0x20, 0x32, 0x30, 0x34, //
    0x20, 0x4e, 0x6f, 0x20, 0x43, 0x6f, 0x6e, 0x74, 0x65, 0x6e, 0x74, 0x0d, //
    0x0a, 0x0d, 0x0a,
];
const RESPONSE: &[u8] = b"HTTP/1.1 204 No Content\r\n\r\n";

const ETH_IPV4: [u8; 14] = [
    0x00, 0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88, 0x99, 0xaa, 0xbb, 0x08, 0x00,
];
const ETH_IPV6: [u8; 14] = [
    0x00, 0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88, 0x99, 0xaa, 0xbb, 0x86, 0xdd,
];
/// 802.1ad S-tag 100, then 802.1Q C-tag 200, then IPv6.
const ETH_QINQ_IPV6: [u8; 22] = [
    0x00, 0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88, 0x99, 0xaa, 0xbb, //
    0x88, 0xa8, 0x00, 0x64, 0x81, 0x00, 0x00, 0xc8, 0x86, 0xdd,
];
/// Linux cooked v1, host, ARPHRD_LOOPBACK, IPv4.
const SLL_IPV4: [u8; 16] = [0, 0, 0x03, 0x04, 0, 6, 0, 0, 0, 0, 0, 0, 0, 0, 0x08, 0x00];
/// Linux cooked v1 carrying a VLAN tag (id 42) the kernel had stripped, then IPv6.
const SLL_VLAN_IPV6: [u8; 20] = [
    0, 0, 0, 1, 0, 6, 0x02, 0x42, 0xac, 0x11, 0, 2, 0, 0, 0x81, 0x00, 0x00, 0x2a, 0x86, 0xdd,
];
/// Linux cooked v2, IPv6, ifindex 1, ARPHRD_LOOPBACK, outgoing.
const SLL2_IPV6: [u8; 20] = [
    0x86, 0xdd, 0, 0, 0, 0, 0, 1, 0x03, 0x04, 4, 6, 0, 0, 0, 0, 0, 0, 0, 0,
];
/// Linux cooked v2 carrying a VLAN tag, then IPv4.
const SLL2_VLAN_IPV4: [u8; 24] = [
    0x81, 0x00, 0, 0, 0, 0, 0, 2, 0, 1, 0, 6, 0x02, 0x42, 0xac, 0x11, 0, 2, 0, 0, //
    0x00, 0x2a, 0x08, 0x00,
];

fn frame(header: &[u8], packet: &[u8]) -> Vec<u8> {
    [header, packet].concat()
}

fn request() -> TcpSegment<'static> {
    TcpSegment {
        src: IpAddr::V4(Ipv4Addr::new(192, 168, 1, 10)),
        dst: IpAddr::V4(Ipv4Addr::new(93, 184, 216, 34)),
        src_port: 51000,
        dst_port: 80,
        seq: 0x1122_3344,
        ack: 0x5566_7788,
        flags: TcpFlags::from_bits(TcpFlags::PSH | TcpFlags::ACK),
        payload: REQUEST,
        missing: 0,
    }
}

fn response() -> TcpSegment<'static> {
    TcpSegment {
        src: IpAddr::V6("2001:db8::1".parse::<Ipv6Addr>().unwrap()),
        dst: IpAddr::V6("2001:db8::2".parse::<Ipv6Addr>().unwrap()),
        src_port: 8080,
        dst_port: 40000,
        seq: 1000,
        ack: 2000,
        flags: TcpFlags::from_bits(TcpFlags::PSH | TcpFlags::ACK),
        payload: RESPONSE,
        missing: 0,
    }
}

/// Every link type with an IPv4 and an IPv6 frame (where it can carry both), and the segment
/// each must decode to.
/// Ethernet + PPPoE session header (ethertype 0x8864) around an IP packet of `len` bytes.
fn eth_pppoe(protocol: u16, len: usize) -> Vec<u8> {
    let mut h = ETH_IPV4[..12].to_vec();
    h.extend_from_slice(&[0x88, 0x64, 0x11, 0x00, 0x00, 0x2a]);
    h.extend_from_slice(&((len + 2) as u16).to_be_bytes());
    h.extend_from_slice(&protocol.to_be_bytes());
    h
}

/// An outer IPv4 packet (protocol `proto`, DF) carrying `header` then `inner`.
fn outer(proto: u8, header: &[u8], inner: &[u8]) -> Vec<u8> {
    let total = (20 + header.len() + inner.len()) as u16;
    let mut v = vec![0x45, 0];
    v.extend_from_slice(&total.to_be_bytes());
    v.extend_from_slice(&[
        0, 0, 0x40, 0, 64, proto, 0, 0, 192, 168, 0, 1, 192, 168, 0, 2,
    ]);
    v.extend_from_slice(header);
    v.extend_from_slice(inner);
    v
}

fn cases() -> Vec<(LinkType, Vec<u8>, TcpSegment<'static>)> {
    use LinkType::*;
    vec![
        (
            Ethernet,
            frame(&eth_pppoe(0x0021, IPV4_REQUEST.len()), &IPV4_REQUEST),
            request(),
        ),
        (
            Ethernet,
            frame(&eth_pppoe(0x0057, IPV6_RESPONSE.len()), &IPV6_RESPONSE),
            response(),
        ),
        (
            CiscoHdlc,
            frame(&[0x0f, 0, 0x08, 0x00], &IPV4_REQUEST),
            request(),
        ),
        (
            CiscoHdlc,
            frame(&[0x8f, 0, 0x86, 0xdd], &IPV6_RESPONSE),
            response(),
        ),
        (Ipv4, outer(4, &[], &IPV4_REQUEST), request()),
        (Ipv4, outer(41, &[], &IPV6_RESPONSE), response()),
        (
            Ipv4,
            outer(47, &[0, 0, 0x08, 0x00], &IPV4_REQUEST),
            request(),
        ),
        (
            Ipv4,
            outer(
                47,
                &[0x30, 0, 0x86, 0xdd, 0, 0, 0, 7, 0, 0, 0, 1],
                &IPV6_RESPONSE,
            ),
            response(),
        ),
        (
            Ipv4,
            outer(47, &[0, 0, 0x65, 0x58], &frame(&ETH_IPV4, &IPV4_REQUEST)),
            request(),
        ),
        (
            Ethernet,
            frame(
                &ETH_IPV4,
                &outer(
                    17,
                    &[
                        0xc0, 0x01, 0x12, 0xb5, 0, 0, 0, 0, 0x08, 0, 0, 0, 0, 0, 0x2a, 0,
                    ],
                    &frame(&ETH_IPV4, &IPV4_REQUEST),
                ),
            ),
            request(),
        ),
        (
            Ipv4,
            outer(
                17,
                &[
                    0xc0, 0x01, 0x17, 0xc1, 0, 0, 0, 0, 0x01, 0, 0x65, 0x58, 0, 0, 0x2a, 0, 1, 2,
                    3, 4,
                ],
                &frame(&ETH_IPV6, &IPV6_RESPONSE),
            ),
            response(),
        ),
        (Ethernet, frame(&ETH_IPV4, &IPV4_REQUEST), request()),
        (Ethernet, frame(&ETH_IPV6, &IPV6_RESPONSE), response()),
        (Ethernet, frame(&ETH_QINQ_IPV6, &IPV6_RESPONSE), response()),
        (LinuxSll, frame(&SLL_IPV4, &IPV4_REQUEST), request()),
        (LinuxSll, frame(&SLL_VLAN_IPV6, &IPV6_RESPONSE), response()),
        (LinuxSll2, frame(&SLL2_IPV6, &IPV6_RESPONSE), response()),
        (LinuxSll2, frame(&SLL2_VLAN_IPV4, &IPV4_REQUEST), request()),
        (Null, frame(&2u32.to_le_bytes(), &IPV4_REQUEST), request()),
        (Null, frame(&2u32.to_be_bytes(), &IPV4_REQUEST), request()),
        (
            Null,
            frame(&30u32.to_le_bytes(), &IPV6_RESPONSE),
            response(),
        ),
        (
            Null,
            frame(&28u32.to_be_bytes(), &IPV6_RESPONSE),
            response(),
        ),
        (Loop, frame(&2u32.to_be_bytes(), &IPV4_REQUEST), request()),
        (
            Loop,
            frame(&24u32.to_be_bytes(), &IPV6_RESPONSE),
            response(),
        ),
        (Raw, IPV4_REQUEST.to_vec(), request()),
        (Raw, IPV6_RESPONSE.to_vec(), response()),
        (Ipv4, IPV4_REQUEST.to_vec(), request()),
        (Ipv6, IPV6_RESPONSE.to_vec(), response()),
    ]
}

const ALL_LINK_TYPES: [LinkType; 9] = [
    LinkType::CiscoHdlc,
    LinkType::Ethernet,
    LinkType::Null,
    LinkType::Loop,
    LinkType::Raw,
    LinkType::Ipv4,
    LinkType::Ipv6,
    LinkType::LinuxSll,
    LinkType::LinuxSll2,
];

#[test]
fn from_pcap() {
    let expected = [
        (0, Some(LinkType::Null)),
        (1, Some(LinkType::Ethernet)),
        (12, Some(LinkType::Raw)),
        (14, Some(LinkType::Raw)),
        (101, Some(LinkType::Raw)),
        (108, Some(LinkType::Loop)),
        (113, Some(LinkType::LinuxSll)),
        (228, Some(LinkType::Ipv4)),
        (229, Some(LinkType::Ipv6)),
        (276, Some(LinkType::LinuxSll2)),
        (104, Some(LinkType::CiscoHdlc)),
        (105, None), // 802.11
        (127, None), // radiotap
        (-1, None),
    ];
    for (linktype, link) in expected {
        assert_eq!(LinkType::from_pcap(linktype), link, "{linktype}");
    }
}

#[test]
fn every_link_type() {
    for (link, frame, expected) in cases() {
        assert_eq!(
            decode_tcp(link, &frame),
            Ok(expected),
            "{link:?} {frame:02x?}"
        );
    }
}

#[test]
fn ethernet_padding_and_fcs_are_not_payload() {
    let mut padded = frame(&ETH_IPV4, &IPV4_ACK);
    padded.resize(60, 0);
    let ack = decode_tcp(LinkType::Ethernet, &padded).unwrap();
    assert_eq!(ack.payload, b"");
    assert_eq!(ack.missing, 0);
    assert!(ack.flags.ack() && !ack.flags.psh());
    assert_eq!((ack.src_port, ack.dst_port), (80, 51000));
    assert_eq!(ack.ack, 0x1122_335f);

    // A capture that keeps the FCS.
    let mut with_fcs = frame(&ETH_IPV4, &IPV4_REQUEST);
    with_fcs.extend_from_slice(&[0xde, 0xad, 0xbe, 0xef]);
    assert_eq!(decode_tcp(LinkType::Ethernet, &with_fcs), Ok(request()));
}

/// Cut every frame at every length: a cut inside the headers is `Truncated`; a cut in the
/// payload decodes, with `missing` counting what was cut.
#[test]
fn every_prefix() {
    for (link, frame, expected) in cases() {
        let headers = frame.len() - expected.payload.len();
        for len in 0..=frame.len() {
            let result = decode_tcp(link, &frame[..len]);
            if len < headers {
                assert!(
                    matches!(result, Err(DecodeError::Truncated(_))),
                    "{link:?} cut at {len}: {result:?}"
                );
            } else {
                let segment = result.unwrap();
                assert_eq!(segment.payload, &expected.payload[..len - headers]);
                assert_eq!(segment.missing as usize, frame.len() - len);
            }
        }
    }
}

#[test]
fn snaplen_truncation() {
    let full = frame(&ETH_IPV4, &IPV4_REQUEST);
    let cut = decode_tcp(LinkType::Ethernet, &full[..full.len() - 10]).unwrap();
    assert_eq!(cut.payload, &REQUEST[..REQUEST.len() - 10]);
    assert_eq!(cut.missing, 10);
    // Cut right after the TCP header: no payload, all missing.
    let headers = ETH_IPV4.len() + IPV4_REQUEST.len() - REQUEST.len();
    let cut = decode_tcp(LinkType::Ethernet, &full[..headers]).unwrap();
    assert_eq!((cut.payload, cut.missing), (&b""[..], REQUEST.len() as u32));
    // One byte into the TCP options: the TCP header is cut.
    assert_eq!(
        decode_tcp(LinkType::Ethernet, &full[..headers - 1]),
        Err(DecodeError::Truncated(Layer::Tcp))
    );
}

/// A real capture: `tcpdump -i any -y LINUX_SLL2 -s 120` of curl asking a local server over
/// `::1`. tshark: 40250 → 18080, seq 1486774501, ack 1532041026, PSH|ACK, TCP length 75; the
/// frame was 167 bytes on the wire, 120 captured.
const SLL2_IPV6_SNAPLEN_120: [u8; 120] = [
    0x86, 0xdd, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01, 0x03, 0x04, 0x00, 0x06, //
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x60, 0x06, 0x7f, 0x1d, //
    0x00, 0x6b, 0x06, 0x40, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, //
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00, //
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01, //
    0x9d, 0x3a, 0x46, 0xa0, 0x58, 0x9e, 0x60, 0xe5, 0x5b, 0x51, 0x17, 0x42, //
    0x80, 0x18, 0x00, 0x40, 0x00, 0x73, 0x00, 0x00, 0x01, 0x01, 0x08, 0x0a, //
    0x5e, 0xfd, 0xdf, 0x9b, 0x2a, 0xa0, 0x0e, 0xa4, 0x47, 0x45, 0x54, 0x20, //
    0x2f, 0x20, 0x48, 0x54, 0x54, 0x50, 0x2f, 0x31, 0x2e, 0x31, 0x0d, 0x0a, //
    0x48, 0x6f, 0x73, 0x74, 0x3a, 0x20, 0x5b, 0x3a, 0x3a, 0x31, 0x5d, 0x3a, //
];

#[test]
fn real_capture_cut_by_snaplen() {
    let segment = decode_tcp(LinkType::LinuxSll2, &SLL2_IPV6_SNAPLEN_120).unwrap();
    assert_eq!(segment.src, IpAddr::V6(Ipv6Addr::LOCALHOST));
    assert_eq!(segment.dst, IpAddr::V6(Ipv6Addr::LOCALHOST));
    assert_eq!((segment.src_port, segment.dst_port), (40250, 18080));
    assert_eq!((segment.seq, segment.ack), (1_486_774_501, 1_532_041_026));
    assert_eq!(segment.flags.bits(), TcpFlags::PSH | TcpFlags::ACK);
    assert_eq!(segment.payload, b"GET / HTTP/1.1\r\nHost: [::1]:");
    assert_eq!(segment.payload.len() as u32 + segment.missing, 75);
}

#[test]
fn lengths_that_lie() {
    let malformed = |layer, reason| Err(DecodeError::Malformed { layer, reason });
    // TCP data offset 6 (24 bytes) in a 40-byte IPv4 packet: with or without padding after
    // it, the header runs past the IP total length.
    let mut ack = IPV4_ACK;
    ack[32] = 0x60;
    let mut padded = frame(&ETH_IPV4, &ack);
    assert_eq!(
        decode_tcp(LinkType::Ethernet, &padded),
        malformed(Layer::Tcp, MalformedReason::Length)
    );
    padded.resize(60, 0);
    assert_eq!(
        decode_tcp(LinkType::Ethernet, &padded),
        malformed(Layer::Tcp, MalformedReason::Length)
    );
    // Total length shorter than IPv4 header + TCP header.
    let mut short = IPV4_REQUEST;
    short[3] = 30;
    assert_eq!(
        decode_tcp(LinkType::Ipv4, &short),
        malformed(Layer::Tcp, MalformedReason::Length)
    );
    // Data offset below 5.
    let mut doff = IPV4_REQUEST;
    doff[36] = 0x40;
    assert_eq!(
        decode_tcp(LinkType::Raw, &doff),
        malformed(Layer::Tcp, MalformedReason::HeaderLength)
    );
    // Raw IP with version 5, and an empty raw frame.
    let mut v5 = IPV4_REQUEST;
    v5[0] = 0x55;
    assert_eq!(
        decode_tcp(LinkType::Raw, &v5),
        malformed(Layer::Ip, MalformedReason::Version)
    );
    assert_eq!(
        decode_tcp(LinkType::Raw, &[]),
        Err(DecodeError::Truncated(Layer::Ip))
    );
    // Ethertype IPv6, IPv4 inside.
    assert_eq!(
        decode_tcp(LinkType::Ethernet, &frame(&ETH_IPV6, &IPV4_REQUEST)),
        malformed(Layer::Ipv6, MalformedReason::Version)
    );
}

#[test]
fn zero_ip_length_means_the_frame() {
    // IPv4 BIG TCP / TSO: total length 0.
    let mut tso = IPV4_REQUEST;
    tso[2..4].copy_from_slice(&[0, 0]);
    assert_eq!(decode_tcp(LinkType::Ipv4, &tso), Ok(request()));
    // Cut inside the TCP header: truncated, not malformed.
    assert_eq!(
        decode_tcp(LinkType::Ipv4, &tso[..30]),
        Err(DecodeError::Truncated(Layer::Tcp))
    );
    // IPv6 payload length 0.
    let mut jumbo = IPV6_RESPONSE;
    jumbo[4..6].copy_from_slice(&[0, 0]);
    assert_eq!(decode_tcp(LinkType::Ipv6, &jumbo), Ok(response()));
}

#[test]
fn fragments() {
    let mut first = IPV4_REQUEST;
    first[6] = 0x20; // MF
    assert_eq!(
        decode_tcp(LinkType::Ipv4, &first),
        Err(DecodeError::Ipv4Fragment)
    );
    let mut later = IPV4_REQUEST;
    later[6..8].copy_from_slice(&[0x00, 0x10]);
    assert_eq!(
        decode_tcp(LinkType::Ipv4, &later),
        Err(DecodeError::Ipv4Fragment)
    );
    // The IPv6 fixture's atomic fragment header (byte 59: offset 0, M clear) with M set.
    let mut v6_first = IPV6_RESPONSE;
    v6_first[59] = 1;
    assert_eq!(
        decode_tcp(LinkType::Ipv6, &v6_first),
        Err(DecodeError::Ipv6Fragment)
    );
    let mut v6_later = IPV6_RESPONSE;
    v6_later[58] = 0x01; // offset 32
    assert_eq!(
        decode_tcp(LinkType::Ipv6, &v6_later),
        Err(DecodeError::Ipv6Fragment)
    );
}

#[test]
fn not_ip_not_tcp() {
    let mut arp = frame(&ETH_IPV4, &IPV4_REQUEST);
    arp[12..14].copy_from_slice(&[0x08, 0x06]);
    assert_eq!(
        decode_tcp(LinkType::Ethernet, &arp),
        Err(DecodeError::NotIp(0x0806))
    );
    let mut udp = IPV4_REQUEST;
    udp[9] = protocol::UDP;
    assert_eq!(
        decode_tcp(LinkType::Ipv4, &udp),
        Err(DecodeError::NotTcp(17))
    );
    let mut icmp6 = IPV6_RESPONSE;
    icmp6[56] = protocol::ICMPV6; // the fragment header's next header
    assert_eq!(
        decode_tcp(LinkType::Ipv6, &icmp6),
        Err(DecodeError::NotTcp(58))
    );
}

#[test]
fn stats() {
    let errors = [
        DecodeError::Truncated(Layer::Tcp),
        DecodeError::Truncated(Layer::Ethernet),
        DecodeError::NotIp(0x0806),
        DecodeError::NotTcp(17),
        DecodeError::Ipv4Fragment,
        DecodeError::Ipv6Fragment,
        DecodeError::Esp,
        DecodeError::Malformed {
            layer: Layer::Ipv4,
            reason: MalformedReason::HeaderLength,
        },
    ];
    let mut stats = DecodeStats::default();
    for err in &errors {
        stats.record(err);
    }
    let mut sum = stats.clone();
    sum.merge(&stats);
    assert_eq!(sum.total(), 2 * errors.len() as u64);
    assert_eq!(
        serde_json::to_value(&sum).unwrap(),
        serde_json::json!({
            "truncated": 4, "not_ip": 2, "not_tcp": 2, "ipv4_fragments": 2,
            "ipv6_fragments": 2, "esp": 2, "malformed": 2
        })
    );
}

#[test]
fn error_messages() {
    assert_eq!(
        DecodeError::Truncated(Layer::Ipv6Ext).to_string(),
        "truncated IPv6 extension header"
    );
    assert_eq!(
        DecodeError::NotIp(0x0806).to_string(),
        "not IP (link-layer protocol 0x0806)"
    );
    assert_eq!(
        DecodeError::Malformed {
            layer: Layer::Tcp,
            reason: MalformedReason::Length
        }
        .to_string(),
        "malformed TCP header: header runs past the declared IP length"
    );
}

/// xorshift64: deterministic pseudo-random bytes without a dependency.
struct XorShift(u64);

impl XorShift {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

/// A decoded segment's payload must lie inside the frame, after the headers.
fn check_invariants(frame: &[u8], result: &Result<TcpSegment<'_>, DecodeError>) {
    if let Ok(segment) = result {
        let frame_range = frame.as_ptr_range();
        let payload = segment.payload.as_ptr_range();
        assert!(frame_range.start <= payload.start && payload.end <= frame_range.end);
    }
}

#[test]
fn random_bytes_never_panic() {
    let mut rng = XorShift(0x9e37_79b9_7f4a_7c15);
    let mut buf = [0u8; 256];
    for link in ALL_LINK_TYPES {
        for _ in 0..5_000 {
            let len = rng.below(buf.len() + 1);
            for byte in &mut buf[..len] {
                *byte = rng.next() as u8;
            }
            // Make the interesting paths likely: a plausible link header and IP version.
            if len > 20 && rng.below(2) == 0 {
                let at = match link {
                    LinkType::Ethernet => 14,
                    LinkType::LinuxSll => 16,
                    LinkType::LinuxSll2 => 20,
                    LinkType::Null | LinkType::Loop | LinkType::CiscoHdlc => 4,
                    _ => 0,
                };
                match link {
                    LinkType::Ethernet => buf[12..14].copy_from_slice(&[0x08, 0x00]),
                    LinkType::LinuxSll => buf[14..16].copy_from_slice(&[0x86, 0xdd]),
                    LinkType::LinuxSll2 => buf[0..2].copy_from_slice(&[0x08, 0x00]),
                    LinkType::Null => buf[..4].copy_from_slice(&2u32.to_le_bytes()),
                    LinkType::Loop => buf[..4].copy_from_slice(&24u32.to_be_bytes()),
                    LinkType::CiscoHdlc => buf[..4].copy_from_slice(&[0x0f, 0, 0x08, 0x00]),
                    _ => {}
                }
                if at < len {
                    buf[at] = if rng.below(2) == 0 { 0x45 } else { 0x60 };
                }
            }
            let frame = &buf[..len];
            let result = decode_tcp(link, frame);
            check_invariants(frame, &result);
        }
    }
}

#[test]
fn mutated_frames_never_panic() {
    let mut rng = XorShift(0x2545_f491_4f6c_dd1d);
    let mut decoded = 0;
    let mut stats = DecodeStats::default();
    for (link, original, _) in cases() {
        for _ in 0..2_000 {
            let mut frame = original.clone();
            for _ in 0..1 + rng.below(4) {
                let at = rng.below(frame.len());
                frame[at] = rng.next() as u8;
            }
            frame.truncate(rng.below(frame.len() + 1).max(frame.len() / 2));
            let result = decode_tcp(link, &frame);
            check_invariants(&frame, &result);
            match &result {
                Ok(_) => decoded += 1,
                Err(err) => stats.record(err),
            }
        }
    }
    // Both outcomes occur: the mutations reach deep into the headers.
    assert!(decoded > 0 && stats.total() > 0, "{decoded} {stats:?}");
    assert!(stats.truncated > 0 && stats.malformed > 0 && stats.not_tcp > 0);
}

// ---- peek_flow: the cheap look sharding uses must agree with the full decode ----

/// [`IPV6_RESPONSE`] without its extension headers: TCP is the first next header, the
/// layout `peek_flow` reads.
fn ipv6_response_direct() -> Vec<u8> {
    let mut p = IPV6_RESPONSE[..40].to_vec();
    p[6] = protocol::TCP;
    let upper = &IPV6_RESPONSE[64..];
    p[4..6].copy_from_slice(&(upper.len() as u16).to_be_bytes());
    p.extend_from_slice(upper);
    p
}

/// Every fixture, plus the layouts only `peek_flow`'s positive path reads.
fn peek_cases() -> Vec<(LinkType, Vec<u8>)> {
    let mut all: Vec<(LinkType, Vec<u8>)> = cases().into_iter().map(|(l, f, _)| (l, f)).collect();
    let v6 = ipv6_response_direct();
    all.push((LinkType::Ethernet, frame(&ETH_IPV6, &v6)));
    all.push((LinkType::LinuxSll2, frame(&SLL2_IPV6, &v6)));
    all.push((LinkType::Raw, v6.clone()));
    all.push((LinkType::Ipv6, v6));
    all
}

/// The contract: when both answer, they name the same flow. True when both did.
fn check_peek(link: LinkType, frame: &[u8], decoded: &Result<TcpSegment<'_>, DecodeError>) -> bool {
    let (Some(p), Ok(seg)) = (peek_flow(link, frame), decoded) else {
        return false;
    };
    assert_eq!(
        (p.src, p.src_port, p.dst, p.dst_port),
        (seg.src, seg.src_port, seg.dst, seg.dst_port),
        "{link:?} {frame:02x?}"
    );
    true
}

#[test]
fn peek_finds_the_common_layouts_and_agrees_with_the_decode() {
    let v6 = ipv6_response_direct();
    assert_eq!(decode_tcp(LinkType::Ipv6, &v6), Ok(response()));
    let expect = [
        (
            LinkType::Ethernet,
            frame(&ETH_IPV4, &IPV4_REQUEST),
            request(),
        ),
        (LinkType::Ethernet, frame(&ETH_IPV6, &v6), response()),
        (
            LinkType::LinuxSll,
            frame(&SLL_IPV4, &IPV4_REQUEST),
            request(),
        ),
        (LinkType::LinuxSll2, frame(&SLL2_IPV6, &v6), response()),
        (LinkType::Raw, IPV4_REQUEST.to_vec(), request()),
        (LinkType::Raw, v6.clone(), response()),
        (LinkType::Ipv4, IPV4_REQUEST.to_vec(), request()),
        (LinkType::Ipv6, v6.clone(), response()),
    ];
    for (link, frame, seg) in expect {
        let p = peek_flow(link, &frame).unwrap_or_else(|| panic!("{link:?}: no peek"));
        assert_eq!(
            (p.src, p.src_port, p.dst, p.dst_port),
            (seg.src, seg.src_port, seg.dst, seg.dst_port)
        );
    }
    // Tags, tunnels, PPPoE, extension headers and the loopback headers: decode fully.
    for (link, frame) in [
        (LinkType::Ethernet, frame(&ETH_QINQ_IPV6, &IPV6_RESPONSE)),
        (LinkType::Ethernet, frame(&ETH_IPV6, &IPV6_RESPONSE)),
        (LinkType::Ipv4, outer(4, &[], &IPV4_REQUEST)),
        (LinkType::Null, frame(&2u32.to_le_bytes(), &IPV4_REQUEST)),
    ] {
        assert_eq!(peek_flow(link, &frame), None, "{link:?}");
    }
    // A fragment is the full decode's to count.
    let mut fragment = IPV4_REQUEST;
    fragment[6] |= 0x20; // MF
    assert_eq!(peek_flow(LinkType::Ipv4, &fragment), None);
    for (link, frame) in peek_cases() {
        check_peek(link, &frame, &decode_tcp(link, &frame));
    }
}

#[test]
fn peek_agrees_with_the_decode_on_every_prefix_and_mutation() {
    let mut rng = XorShift(0x5851_f42d_4c95_7f2d);
    let mut agreed = 0;
    for (link, original) in peek_cases() {
        for len in 0..=original.len() {
            let f = &original[..len];
            check_peek(link, f, &decode_tcp(link, f));
        }
        for _ in 0..2_000 {
            let mut f = original.clone();
            for _ in 0..1 + rng.below(4) {
                let at = rng.below(f.len());
                f[at] = rng.next() as u8;
            }
            f.truncate(rng.below(f.len() + 1).max(f.len() / 2));
            agreed += usize::from(check_peek(link, &f, &decode_tcp(link, &f)));
        }
    }
    // The comparison ran on thousands of frames both accept (about a quarter of the
    // mutations keep both answers; the rest break the decode or the peek).
    assert!(agreed > 2_000, "{agreed}");
}

#[test]
fn peek_never_panics_on_random_bytes() {
    let mut rng = XorShift(0x2127_599b_f432_5c37);
    let mut buf = [0u8; 128];
    for link in ALL_LINK_TYPES {
        for _ in 0..5_000 {
            let len = rng.below(buf.len() + 1);
            for byte in &mut buf[..len] {
                *byte = rng.next() as u8;
            }
            // Plausible headers half of the time, so the IP paths run.
            if len > 60 && rng.below(2) == 0 {
                buf[12..14].copy_from_slice(&[0x08, 0x00]);
                buf[14] = 0x45;
                buf[23] = protocol::TCP;
                buf[20..22].copy_from_slice(&[0, 0]);
            }
            let f = &buf[..len];
            check_peek(link, f, &decode_tcp(link, f));
        }
    }
}

// ---- decode_common: decode_tcp's fast path must give the full decode's answer ----

/// The contract: when the fast path answers, the full decode gives the same segment. True
/// when the fast path answered.
fn check_fast(link: LinkType, frame: &[u8]) -> bool {
    let Some(fast) = peek::decode_common(link, frame) else {
        return false;
    };
    assert_eq!(
        Ok(fast),
        decode_tcp_full(link, frame),
        "{link:?} {frame:02x?}"
    );
    true
}

/// The fixtures the fast path reads, with the edge cases of its lengths: padding, an FCS,
/// IP length 0, IPv4 options, snaplen cuts (every prefix below).
fn fast_cases() -> Vec<(LinkType, Vec<u8>)> {
    let mut all = peek_cases();
    let mut padded = frame(&ETH_IPV4, &IPV4_ACK);
    padded.resize(60, 0);
    all.push((LinkType::Ethernet, padded));
    let mut with_fcs = frame(&ETH_IPV4, &IPV4_REQUEST);
    with_fcs.extend_from_slice(&[0xde, 0xad, 0xbe, 0xef]);
    all.push((LinkType::Ethernet, with_fcs));
    let mut tso = IPV4_REQUEST;
    tso[2..4].copy_from_slice(&[0, 0]);
    all.push((LinkType::Ipv4, tso.to_vec()));
    let mut v6 = ipv6_response_direct();
    v6[4..6].copy_from_slice(&[0, 0]);
    all.push((LinkType::Ipv6, v6));
    // IHL 6: a 4-byte option (Router Alert) before TCP.
    let mut opt = IPV4_REQUEST[..20].to_vec();
    opt[0] = 0x46;
    opt.extend_from_slice(&[0x94, 0x04, 0x00, 0x00]);
    opt.extend_from_slice(&IPV4_REQUEST[20..]);
    let total = (opt.len() as u16).to_be_bytes();
    opt[2..4].copy_from_slice(&total);
    all.push((LinkType::Raw, opt));
    all.push((LinkType::LinuxSll2, SLL2_IPV6_SNAPLEN_120.to_vec()));
    all
}

#[test]
fn the_fast_path_takes_the_common_layouts_and_agrees_with_the_full_decode() {
    for (link, frame) in fast_cases() {
        let common = matches!(
            link,
            LinkType::Ethernet
                | LinkType::LinuxSll
                | LinkType::LinuxSll2
                | LinkType::Raw
                | LinkType::Ipv4
                | LinkType::Ipv6
        );
        let full = decode_tcp_full(link, &frame);
        // Every common layout that decodes, without tags or extension headers, is taken.
        let plain = common && full.is_ok() && peek_flow(link, &frame).is_some();
        assert_eq!(check_fast(link, &frame), plain, "{link:?} {frame:02x?}");
        assert_eq!(decode_tcp(link, &frame), full);
    }
    // Tags, tunnels, PPPoE, extension headers, loopback headers: the full decode's.
    for (link, frame) in [
        (LinkType::Ethernet, frame(&ETH_QINQ_IPV6, &IPV6_RESPONSE)),
        (LinkType::Ethernet, frame(&ETH_IPV6, &IPV6_RESPONSE)),
        (LinkType::Ipv4, outer(4, &[], &IPV4_REQUEST)),
        (LinkType::Null, frame(&2u32.to_le_bytes(), &IPV4_REQUEST)),
        (LinkType::LinuxSll2, frame(&SLL2_VLAN_IPV4, &IPV4_REQUEST)),
    ] {
        assert_eq!(peek::decode_common(link, &frame), None, "{link:?}");
        assert!(decode_tcp(link, &frame).is_ok(), "{link:?}");
    }
}

#[test]
fn the_fast_path_agrees_with_the_full_decode_on_every_prefix_and_mutation() {
    let mut rng = XorShift(0x1405_7b7e_f767_814f);
    let (mut taken, mut refused) = (0, 0);
    for (link, original) in fast_cases() {
        for len in 0..=original.len() {
            let f = &original[..len];
            check_fast(link, f);
            assert_eq!(decode_tcp(link, f), decode_tcp_full(link, f));
        }
        for _ in 0..3_000 {
            let mut f = original.clone();
            // Mostly the bytes the fast path reads: link type, lengths, IHL, flags, offsets.
            for _ in 0..1 + rng.below(3) {
                let at = rng.below(f.len().min(80));
                f[at] = rng.next() as u8;
            }
            f.truncate(rng.below(f.len() + 1).max(f.len() / 2));
            if check_fast(link, &f) {
                taken += 1;
            } else {
                refused += 1;
                assert_eq!(decode_tcp(link, &f), decode_tcp_full(link, &f));
            }
        }
    }
    // Both sides ran on thousands of frames.
    assert!(taken > 5_000 && refused > 5_000, "{taken} {refused}");
}

#[test]
fn the_fast_path_agrees_with_the_full_decode_on_random_bytes() {
    let mut rng = XorShift(0x7a3c_5b1f_9e2d_4c68);
    let mut buf = [0u8; 128];
    let mut taken = 0;
    for link in ALL_LINK_TYPES {
        for _ in 0..5_000 {
            let len = rng.below(buf.len() + 1);
            for byte in &mut buf[..len] {
                *byte = rng.next() as u8;
            }
            // Plausible IPv4/IPv6 + TCP headers most of the time, so the fast path runs.
            let at = match link {
                LinkType::Ethernet => 14,
                LinkType::LinuxSll => 16,
                LinkType::LinuxSll2 => 20,
                _ => 0,
            };
            if len > at + 60 && rng.below(4) != 0 {
                let v6 = rng.below(2) == 0;
                let et: [u8; 2] = if v6 { [0x86, 0xdd] } else { [0x08, 0x00] };
                match link {
                    LinkType::Ethernet => buf[12..14].copy_from_slice(&et),
                    LinkType::LinuxSll => buf[14..16].copy_from_slice(&et),
                    LinkType::LinuxSll2 => buf[0..2].copy_from_slice(&et),
                    _ => {}
                }
                if v6 {
                    buf[at] = 0x60 | (buf[at] & 0x0f);
                    buf[at + 6] = protocol::TCP;
                    buf[at + 4] = 0;
                } else {
                    buf[at] = 0x45 + (rng.below(3) as u8);
                    buf[at + 9] = protocol::TCP;
                    buf[at + 2] = 0;
                    buf[at + 6] &= 0xc0;
                    buf[at + 7] = 0;
                }
            }
            let f = &buf[..len];
            taken += usize::from(check_fast(link, f));
            assert_eq!(decode_tcp(link, f), decode_tcp_full(link, f));
        }
    }
    assert!(taken > 3_000, "{taken}");
}
