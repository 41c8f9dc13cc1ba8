//! `sniffer-perf replay` end to end: a small generated file through the real engine (in child
//! processes of the real binary), the report's fields, and 100 % completeness.

use sniffer_perf::gen::{generate, Workload};
use std::path::PathBuf;
use std::process::Command;

fn tmp_dir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("sniffer-perf-test-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

#[test]
fn replay_reports_throughput_rss_and_full_completeness() {
    let dir = tmp_dir("replay");
    let pcap = dir.join("S-tiny.pcap");
    let truth = dir.join("S-tiny.truth.jsonl");
    let (stats, _, _) = generate(
        Workload::S,
        300_000,
        5,
        std::fs::File::create(&pcap).unwrap(),
        std::fs::File::create(&truth).unwrap(),
    )
    .unwrap();
    let expected = stats.requests + stats.responses;
    let out = dir.join("out");
    let run = Command::new(env!("CARGO_BIN_EXE_sniffer-perf"))
        .args(["replay", "--file"])
        .arg(&pcap)
        .args(["--workers", "1,2", "--runs", "2", "--check-truth", "--out"])
        .arg(&out)
        .output()
        .unwrap();
    assert!(
        run.status.success(),
        "replay failed: {}",
        String::from_utf8_lossy(&run.stderr)
    );
    let md = std::fs::read_to_string(out.join("replay.md")).unwrap();
    assert!(md.contains("| S-tiny |") || md.contains("S-tiny"), "{md}");
    assert!(std::fs::read_to_string(out.join("replay.svg"))
        .unwrap()
        .starts_with("<svg"));
    let rep: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("replay.json")).unwrap()).unwrap();
    assert_eq!(rep["runs"], 2);
    let f = &rep["files"][0];
    assert_eq!(f["packets"], stats.packets);
    assert_eq!(f["bytes"], stats.bytes);
    assert_eq!(f["expectedMessages"], expected);
    let rows = f["rows"].as_array().unwrap();
    assert_eq!(rows.len(), 2);
    for (row, workers) in rows.iter().zip([1, 2]) {
        assert_eq!(row["workers"], workers);
        assert_eq!(row["status"], "ok", "{row}");
        assert_eq!(row["runs"].as_array().unwrap().len(), 2);
        for k in [
            "packetsPerS",
            "gbitPerS",
            "messagesPerS",
            "nsPerPacket",
            "cpuSPerGb",
            "peakRssMib",
            "speedup",
        ] {
            let v = row[k]
                .as_f64()
                .unwrap_or_else(|| panic!("{k} missing: {row}"));
            assert!(v > 0.0 && v.is_finite(), "{k} = {v}");
        }
        // Each run is a child process: its own (small) peak RSS, not the test's.
        let rss = row["peakRssMib"].as_f64().unwrap();
        assert!(rss > 1.0 && rss < 512.0, "peak RSS {rss} MiB");
        assert_eq!(row["messages"], expected, "{row}");
        assert_eq!(row["emittedRatio"].as_f64(), Some(1.0));
        let check = &row["check"];
        assert_eq!(check["completeness"].as_f64(), Some(1.0), "{check}");
        assert_eq!(check["exact"], expected, "{check}");
        assert_eq!(check["mismatches"], serde_json::json!({}), "{check}");
        // S has no gaps or errors: no loss counter is non-zero.
        assert_eq!(row["lossCounters"], serde_json::json!({}), "{row}");
        assert_eq!(row["stats"]["capture"]["packets"], stats.packets);
    }
    assert_eq!(rows[0]["speedup"].as_f64(), Some(1.0));
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn replay_once_prints_one_json_line() {
    let dir = tmp_dir("once");
    let pcap = dir.join("A.pcap");
    let (stats, _, _) = generate(
        Workload::A,
        200_000,
        2,
        std::fs::File::create(&pcap).unwrap(),
        std::io::sink(),
    )
    .unwrap();
    let run = Command::new(env!("CARGO_BIN_EXE_sniffer-perf"))
        .args(["replay-once", "--workers", "2", "--file"])
        .arg(&pcap)
        .output()
        .unwrap();
    assert!(
        run.status.success(),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    let text = String::from_utf8(run.stdout).unwrap();
    assert_eq!(text.lines().count(), 1, "{text}");
    let v: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(v["workers"], 2);
    assert_eq!(v["messages"], stats.requests + stats.responses);
    assert!(v["jsonBytes"].as_u64().unwrap() > 0);
    assert_eq!(v["stats"]["capture"]["packets"], stats.packets);
    let _ = std::fs::remove_dir_all(&dir);
}
