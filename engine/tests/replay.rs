//! File replay through the whole pipeline: sharding, damaged files, settings effects.

mod common;

use std::path::{Path, PathBuf};

use serde_json::Value;

fn demo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../tests/data/demo.pcap")
}

/// Messages without the fields that legitimately differ between runs with a
/// different worker count (connection ids carry the worker number).
fn canonical(msgs: &[Value]) -> Vec<String> {
    let mut v: Vec<String> = msgs
        .iter()
        .map(|m| {
            let mut m = m.clone();
            m.as_object_mut().unwrap().remove("connectionId");
            m.to_string()
        })
        .collect();
    v.sort();
    v
}

#[test]
fn sharded_replay_gives_the_same_messages_as_one_worker() {
    let mut files = vec![demo()];
    if let Some(corpus) = common::corpus_dir() {
        for name in [
            "http-no-crlf/no_crlf.pcap",
            "concurrent-range-requests/concurrent-range-requests.pcap",
            "multipart-extract/multipart.pcap",
        ] {
            files.push(corpus.join("zeek-http").join(name));
        }
    }
    for f in files {
        let one = common::replay(
            &f,
            &common::settings(&[("--ports", "80,8080"), ("--workers", "1")]),
        )
        .0;
        let three = common::replay(
            &f,
            &common::settings(&[("--ports", "80,8080"), ("--workers", "3")]),
        )
        .0;
        assert!(!one.is_empty(), "{} gave no messages", f.display());
        assert_eq!(canonical(&one), canonical(&three), "{}", f.display());
    }
}

#[test]
fn demo_capture_messages_are_complete_and_paired() {
    let (msgs, summary) = common::replay(&demo(), &common::settings(&[("--ports", "8080")]));
    assert_eq!(msgs.len(), 10);
    for pair in msgs.chunks(2) {
        assert_eq!(pair[0]["type"], "request");
        assert_eq!(pair[1]["type"], "response");
        assert_eq!(pair[0]["connectionId"], pair[1]["connectionId"]);
        assert_eq!(pair[0]["sequence"], pair[1]["sequence"]);
        assert_eq!(pair[0]["incomplete"], false);
        assert!(pair[1]["latencyMs"].as_f64().unwrap() >= 0.0);
    }
    // The first curl reused its connection for two requests.
    assert_eq!(msgs[2]["sequence"], 1);
    assert_eq!(summary.stats.output.messages, 10);
    assert_eq!(summary.stats.http.requests, 5);
    assert_eq!(summary.stats.flow.connections_closed, 4);
}

#[test]
fn body_cap_truncates_and_reports_full_size() {
    let (msgs, _) = common::replay(
        &demo(),
        &common::settings(&[("--ports", "8080"), ("--max-body-size", "5")]),
    );
    let post = msgs.iter().find(|m| m["method"] == "POST").unwrap();
    assert_eq!(post["body"], "{\"nam");
    assert_eq!(post["bodySize"], 31);
    assert_eq!(post["truncated"], true);
    let (msgs, _) = common::replay(
        &demo(),
        &common::settings(&[("--ports", "8080"), ("--max-body-size", "0")]),
    );
    assert!(msgs.iter().all(|m| m["body"] == ""));
}

#[test]
fn unmonitored_ports_produce_nothing_and_are_counted() {
    let (msgs, summary) = common::replay(&demo(), &common::settings(&[("--ports", "9999")]));
    assert!(msgs.is_empty());
    assert_eq!(
        summary.stats.flow.segments_unmonitored,
        summary.stats.capture.packets
    );
}

#[test]
fn damaged_files_keep_what_came_before() {
    let dir = std::env::temp_dir().join(format!("tcp-sniffer-replay-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let bytes = std::fs::read(demo()).unwrap();
    // Cut in the middle of a record.
    let cut = dir.join("cut.pcap");
    std::fs::write(&cut, &bytes[..3000]).unwrap();
    let (msgs, summary) = common::replay(&cut, &common::settings(&[("--ports", "8080")]));
    assert!(!msgs.is_empty());
    assert!(summary.damaged.is_some());
    assert_eq!(summary.stats.capture.file_errors, 1);
    // Not a capture file at all: a clear error, no panic.
    let junk = dir.join("junk.pcap");
    std::fs::write(&junk, b"this is not a pcap file at all").unwrap();
    let s = common::settings(&[("--ports", "8080")]);
    let mut outputs: Vec<Box<dyn tcp_sniffer::output::Output>> = Vec::new();
    let err = tcp_sniffer::pipeline::run_file(&s, junk.to_str().unwrap(), &mut outputs, None)
        .unwrap_err();
    assert!(
        err.to_string().starts_with("cannot read capture file"),
        "{err}"
    );
    // A record header that claims a huge length.
    let mut evil = bytes[..24].to_vec();
    evil.extend_from_slice(&[
        0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 0xff, 0x7f, 0xff, 0xff, 0xff, 0x7f,
    ]);
    let evil_path = dir.join("evil.pcap");
    std::fs::write(&evil_path, &evil).unwrap();
    let (msgs, summary) = common::replay(Path::new(&evil_path), &s);
    assert!(msgs.is_empty());
    assert!(summary.damaged.is_some());
    std::fs::remove_dir_all(&dir).ok();
}

fn any_port_pcap() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../tests/data/any-port.pcap")
}

/// `tests/data/any-port.pcap` (scripts/gen-encap-fixtures.py): HTTP on 31337, HTTP seen
/// mid-way with the server on the higher port, SMTP, TLS, and HTTP on 9999 inside VXLAN
/// over IPv6. With `--ports any` every HTTP exchange comes out, each request sent by the
/// side that sent the request line, and the rest is let go and counted.
#[test]
fn any_port_finds_http_on_unlisted_ports_by_content() {
    for workers in ["1", "2"] {
        let (msgs, summary) = common::replay(
            &any_port_pcap(),
            &common::settings(&[("--ports", "any"), ("--workers", workers)]),
        );
        let mut got: Vec<(String, u64, u64, String)> = msgs
            .iter()
            .map(|m| {
                let what = if m["type"] == "request" {
                    format!(
                        "{} {}",
                        m["method"].as_str().unwrap(),
                        m["url"].as_str().unwrap()
                    )
                } else {
                    m["statusCode"].to_string()
                };
                (
                    m["type"].as_str().unwrap().to_string(),
                    m["source"]["port"].as_u64().unwrap(),
                    m["destination"]["port"].as_u64().unwrap(),
                    what,
                )
            })
            .collect();
        got.sort();
        let want: Vec<(String, u64, u64, String)> = [
            ("request", 41000, 31337, "GET /odd-port"),
            ("request", 42000, 9999, "GET /in-vxlan6"),
            ("request", 80, 60000, "POST /reverse"),
            ("response", 9999, 42000, "200"),
            ("response", 31337, 41000, "200"),
            ("response", 60000, 80, "201"),
        ]
        .iter()
        .map(|(t, s, d, w)| (t.to_string(), *s, *d, w.to_string()))
        .collect();
        let mut want = want;
        want.sort();
        assert_eq!(got, want, "workers {workers}");
        for m in &msgs {
            if m["type"] == "response" {
                assert!(m["latencyMs"].is_number(), "paired: {m}");
            }
        }
        let s = &summary.stats;
        assert_eq!(s.flow.connections_not_http, 2, "SMTP and TLS let go");
        assert_eq!(s.http.non_http_tls, 1);
        assert!(s.flow.segments_not_http > 0);
        assert_eq!(s.http.requests, 3);
    }
    // With listed ports the same capture shows only what is listed.
    let (msgs, _) = common::replay(&any_port_pcap(), &common::settings(&[("--ports", "31337")]));
    assert_eq!(msgs.len(), 2);
}
