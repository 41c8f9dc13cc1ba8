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
