//! Replays fuzz inputs through the fuzz drivers without libFuzzer.
//!
//! The drivers (`engine/fuzz/src/drivers.rs`) are included by path, so these
//! tests run exactly the code the cargo-fuzz targets run, checks included.
//!
//! * `seeds_replay`: every seed in `engine/fuzz/seeds/<target>/`.
//! * `regressions_dir_replays`: every file in `tests/fuzz_regressions/`, named
//!   `<target>-<what>.bin`, so a file added without its own test still runs.
//!   A crash is fixed before its input lands here: the suite never ignores a test.
//! * one named test per crash found (`include_bytes!`), so a failure names the bug.
//!
//! To add a regression: minimise the crash (`cargo fuzz tmin`, see
//! `engine/fuzz/README.md`), copy it to `tests/fuzz_regressions/<target>-<what>.bin`
//! and add a test below calling `drivers::<target>(include_bytes!(...))`.

#[allow(dead_code)]
#[path = "../fuzz/src/drivers.rs"]
mod drivers;

use std::path::{Path, PathBuf};

fn files_in(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = match std::fs::read_dir(dir) {
        Ok(rd) => rd
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.is_file())
            .collect(),
        Err(_) => Vec::new(),
    };
    files.sort();
    files
}

fn run(target: &str, data: &[u8]) -> usize {
    match target {
        "http_stream" => drivers::http_stream(data),
        "http2_stream" => drivers::http2_stream(data),
        // The `http_stream` script, gaps up to 2^63 (the full `len: u64` of
        // `HttpConnection::gap`, beyond what reassembly delivers).
        "http_stream_u64gap" => drivers::http_stream_script(data, 63),
        "packets" => drivers::packets(data),
        other => panic!("unknown fuzz target {other:?}"),
    }
}

#[test]
fn seeds_replay() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/seeds");
    let mut n = 0;
    for target in ["http_stream", "http2_stream", "packets"] {
        for f in files_in(&root.join(target)) {
            let data = std::fs::read(&f).expect("read seed");
            let msgs = run(target, &data);
            eprintln!(
                "{target}/{}: {msgs} messages",
                f.file_name().unwrap().to_string_lossy()
            );
            // Every seed but the HTTP/0.9-style ones (not HTTP/1.x, so not parsed)
            // is an HTTP exchange: one that yields nothing is a broken seed.
            let http09 = f.ends_with("http-09") || f.ends_with("no-version");
            assert!(msgs > 0 || http09, "seed {f:?} produced no message");
            n += 1;
        }
    }
    assert!(
        n >= 10,
        "expected the committed seeds under {root:?}, found {n}"
    );
}

#[test]
fn regressions_dir_replays() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fuzz_regressions");
    for f in files_in(&dir) {
        let name = f.file_name().unwrap().to_string_lossy().into_owned();
        if name.ends_with(".md") {
            continue;
        }
        let target = if name.starts_with("http_stream-") {
            "http_stream"
        } else if name.starts_with("http_stream_u64gap-") {
            "http_stream_u64gap"
        } else if name.starts_with("http2_stream-") {
            "http2_stream"
        } else if name.starts_with("packets-") {
            "packets"
        } else {
            panic!("{name}: regression files are named <target>-<what>.bin");
        };
        let data = std::fs::read(&f).expect("read regression input");
        let _ = run(target, &data);
    }
}

#[test]
fn empty_and_tiny_inputs() {
    for data in [&b""[..], b"\x00", b"\x01", b"\x00\x00", b"\xff\xff\xff"] {
        let _ = drivers::http_stream(data);
        let _ = drivers::http2_stream(data);
        let _ = drivers::packets(data);
    }
}

/// Found by `packets` in CI: a message's last segment captured before its first (out of
/// order) made `endTimestamp` earlier than `timestamp`. The reassembler now hands the sink
/// non-decreasing times (bytes become readable when the hole before them fills).
#[test]
fn packets_out_of_order_end_before_start() {
    let _ = drivers::packets(include_bytes!(
        "fuzz_regressions/packets-out-of-order-end-before-start.bin"
    ));
}

/// Fixed bug (found by `http_stream` before its gaps were capped at 1 GiB):
/// `HttpConnection::gap` adds `len` to `HttpStats::gap_body_bytes` unchecked
/// (engine/src/http/mod.rs, `on_gap`, `State::Body` arm: `+= len` and
/// `+= len - excess`). Two 2^63-byte gaps inside a close-delimited body overflow
/// it: a panic with overflow checks (debug, tests, fuzzing), a silent wrap in
/// release. Reassembly never reports a gap over 1 GiB (MAX_SEQ_JUMP), so only a
/// direct user of the public `gap(len: u64)` reaches it; the module docs promise
/// "never panics on any input". Fix: `saturating_add` on both lines.
///
/// Script: server sends `HTTP/1.0 200\r\n\r\n` (body until close), then two
/// server gaps of 2^63 bytes.
#[test]
fn http_gap_body_bytes_overflow() {
    let _ = drivers::http_stream_script(
        include_bytes!("fuzz_regressions/http_stream_u64gap-gap-body-bytes-overflow.bin"),
        63,
    );
}

/// Redaction lengthens a short secret value (`1` becomes `"[REDACTED]"`): the body is then
/// longer than `bodySize`, and one grown past `maxBodySize` is cut back and marked truncated.
/// The drivers' checks allow exactly that.
#[test]
fn redacted_body_longer_than_body_size() {
    for body in [
        &br#"{"cvv":1}"#[..],
        br#"{"a":"0123456789012345678901234567890123456789012345","cvv":1}"#,
        // Exactly maxBodySize (64) before redaction.
        br#"{"a":"012345678901234567890123456789012345678901234567","cvv":1}"#,
    ] {
        let req = [
            format!("POST / HTTP/1.1\r\nContent-Length: {}\r\n\r\n", body.len()).as_bytes(),
            body,
        ]
        .concat();
        // byte 0: not mid-stream; one client data record (header 0, length byte); close.
        let mut script = vec![0u8, 0, req.len() as u8];
        script.extend_from_slice(&req);
        assert_eq!(drivers::http_stream(&script), 1);
    }
}
