//! Every frame of every capture in the Zeek HTTP corpus through `wire::decode_tcp`, compared
//! with tshark 4.0: per file, the number of TCP segments and the sum of their TCP payload
//! lengths (`tshark -r FILE -Y tcp -T fields -e tcp.len`, which tshark takes from the IP
//! length). No frame of the corpus may fail to decode: the captures are Ethernet, raw IPv4 and
//! BSD null, all TCP, none cut by snaplen.
//!
//! The corpus is found as the other corpus tests find it: `TCP_SNIFFER_CORPUS`, else
//! `../shared/corpus` from the repository root; `ALLOW_MISSING_CORPUS=1` skips loudly (never
//! under CI).

mod common;

use tcp_sniffer::wire::{decode_tcp, DecodeStats, LinkType};

/// (capture, TCP segments, TCP payload bytes) as tshark counts them.
const TSHARK: &[(&str, u64, u64)] = &[
    ("all-headers-event/get.pcap", 14, 5143),
    ("bad-content-range/http-bad-content-range-01.pcap", 22, 185),
    ("build-url/get.pcap", 14, 5143),
    (
        "chunk-2pow64-overflow/variant-01-chunk_2pow64_overflow.pcap",
        8,
        135,
    ),
    ("chunked-rest/variant-10-multi_value_te.pcap", 8, 125),
    ("cl-0-expect-100/variant-07-expect_100_cl0.pcap", 8, 125),
    ("cl-leading-zeros/variant-08-leading_zeros.pcap", 8, 187),
    ("cl-negative/variant-03-cl_negative.pcap", 8, 105),
    ("cl-uint64max/variant-02-cl_uint64max.pcap", 8, 124),
    (
        "concurrent-range-requests/concurrent-range-requests.pcap",
        57,
        31209,
    ),
    (
        "content-length-in-request-body/content-length-in-request-body.pcap",
        21,
        631,
    ),
    (
        "content-length-overflow/content-length-overflow.pcap",
        10,
        228,
    ),
    ("content-range-gap/content-range-gap.pcap", 26, 9822),
    (
        "content-range-less-than-len/content-range-less-than-len.pcap",
        7,
        452,
    ),
    ("ctu-agent-tesla/ctu-62604-80.pcap", 20, 1988),
    ("curl-http-09/curl_http_09.pcap", 8, 133),
    ("deeply-nested-mime/deeply-nested-mime.pcap", 55, 40633),
    ("entity-gap/entity_gap.pcap", 13, 3695),
    ("fake-content-length/fake-content-length.pcap", 7, 398),
    (
        "flip-content-line-orig/zeek-image-post-1080-8000-x.pcap",
        19,
        6140,
    ),
    (
        "flip-content-line-resp/zeek-image-1080-80-x.pcapng",
        17,
        6137,
    ),
    (
        "http-09-content-length-confusion/http-09-content-length-confusion.pcap",
        18,
        66,
    ),
    ("http-09/http_09.pcap", 50, 148),
    (
        "http-11-request-then-cruft/http-11-request-then-cruft.pcap",
        20,
        770,
    ),
    (
        "http-bad-request-with-version/http-bad-request-with-version.pcap",
        12,
        276,
    ),
    ("http-basic-auth-colon/basic-auth-with-colon.pcap", 12, 984),
    (
        "http-basic-auth-extra-space/basic-auth-with-extra-space.pcap",
        38,
        2024,
    ),
    (
        "http-connect-with-header/connect-with-header.pcap",
        58,
        59143,
    ),
    ("http-connect/connect-with-smtp.pcap", 30, 1977),
    ("http-dpd-large-req/http_large_req_8001.pcap", 13, 2103),
    ("http-filename/http-filename.pcap", 11, 903),
    ("http-header-crlf/byteranges.pcap", 68, 57444),
    (
        "http-lower-case/http-lower-case-nonstandard-port.pcap",
        10,
        1227,
    ),
    ("http-lower-case/http-lower-case.pcap", 10, 1227),
    ("http-no-crlf/no_crlf.pcap", 1519, 1520294),
    (
        "inner-transfer-encoding-ossfuzz/http-inner-transfer-encoding-ossfuzz.pcap",
        16,
        1563,
    ),
    (
        "inner-transfer-encoding-reproducer/http-inner-transfer-encoding-reproducer.pcap",
        17,
        351,
    ),
    (
        "invalid-content-ranges/invalid-content-ranges.pcap",
        30,
        434,
    ),
    (
        "m57-long-download-windowsupdate-2/m57-long-49600-80.pcap",
        52,
        37360,
    ),
    ("missing-http-entity/interleaved-http-entity.pcap", 30, 186),
    ("missing-zlib-header/missing-zlib-header.pcap", 28, 12760),
    ("multipart-body-length/multipart-form-data.pcap", 7, 1429),
    ("multipart-extract/multipart.pcap", 10, 1160),
    ("multipart-file-limit/multipart.pcap", 10, 1160),
    ("no-uri/no-uri.pcap", 14, 5143),
    ("no-version/no-version.pcap", 11, 446),
    ("obsolete-line-fold/variant-09-te_obs_fold.pcap", 8, 116),
    ("percent-end-of-line/percent-end-of-line.pcap", 23, 1627),
    (
        "query-method-non-standard-port/query-method-non-standard-port.pcap",
        10,
        308,
    ),
    ("query-method/query-method.pcap", 10, 308),
    ("smuggle-http-request/smuggle-http-request.pcap", 23, 664),
    ("te-cl-desync/variant-04-te_cl_desync.pcap", 8, 132),
    ("upgrade-to-tcp/docker-http-upgrade.pcap", 200, 4749),
    ("version-mismatch/version-mismatch.pcap", 24, 15277),
    ("x-gzip/x-gzip.pcap", 7, 420),
];

#[test]
fn zeek_corpus_decodes_like_tshark() {
    let Some(corpus) = common::corpus_dir() else {
        return;
    };
    let root = corpus.join("zeek-http");
    let mut failures = Vec::new();
    for &(file, segments, payload_bytes) in TSHARK {
        let path = root.join(file);
        let mut capture =
            pcap::Capture::from_file(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let linktype = capture.get_datalink().0;
        let link = LinkType::from_pcap(linktype)
            .unwrap_or_else(|| panic!("{file}: link type {linktype} not supported"));
        let mut stats = DecodeStats::default();
        let (mut got_segments, mut got_bytes) = (0u64, 0u64);
        while let Ok(packet) = capture.next_packet() {
            match decode_tcp(link, packet.data) {
                Ok(segment) => {
                    assert_eq!(segment.missing, 0, "{file}: no capture here is cut");
                    got_segments += 1;
                    got_bytes += segment.payload.len() as u64;
                }
                Err(err) => stats.record(&err),
            }
        }
        if (got_segments, got_bytes) != (segments, payload_bytes) || stats.total() != 0 {
            failures.push(format!(
                "{file}: decoded {got_segments} segments / {got_bytes} bytes, tshark \
                 {segments} / {payload_bytes}; errors {stats:?}"
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
