//! No silent death: a panic in any engine thread stops the run, is reported, and the CLI
//! exits 1 (issue 11). The panics are injected with the `TCP_SNIFFER_TEST_PANIC` hook
//! (see `tcp_sniffer::fatal`) into the real binary, so each case runs in a child process;
//! the library cases use an output that panics. Every child must end by itself within a
//! deadline: a hang is a failure too.

mod common;

use std::io::{Read, Write};
use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Command, Output as ProcOutput, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value;
use tcp_sniffer::fatal::FatalError;
use tcp_sniffer::output::{Batch, Output};
use tcp_sniffer::runtime::{Hooks, Sniffer};
use tcp_sniffer::stats::OutputStats;

use common::netns;

fn demo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../tests/data/demo.pcap")
}

/// Runs `cmd` to its end, killing it and everything it started (and failing) if it takes
/// longer than `limit`.
fn run_bounded(mut cmd: Command, limit: Duration) -> ProcOutput {
    use std::os::unix::process::CommandExt;
    let mut child = cmd
        .process_group(0)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start the child");
    let (mut out, mut err) = (child.stdout.take().unwrap(), child.stderr.take().unwrap());
    let out_t = std::thread::spawn(move || {
        let mut v = Vec::new();
        let _ = out.read_to_end(&mut v);
        v
    });
    let err_t = std::thread::spawn(move || {
        let mut v = Vec::new();
        let _ = err.read_to_end(&mut v);
        v
    });
    let deadline = Instant::now() + limit;
    let status = loop {
        if let Some(st) = child.try_wait().unwrap() {
            break st;
        }
        if Instant::now() >= deadline {
            // The whole group: a shell's children would keep the pipes open.
            // SAFETY: plain syscall on the process group this test created.
            unsafe { libc::kill(-(child.id() as i32), libc::SIGKILL) };
            let _ = child.wait();
            let stderr = String::from_utf8_lossy(&err_t.join().unwrap()).to_string();
            panic!("the child did not end within {limit:?} (it hangs); stderr:\n{stderr}");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    ProcOutput {
        status,
        stdout: out_t.join().unwrap(),
        stderr: err_t.join().unwrap(),
    }
}

fn cli(args: &[&str], fault: Option<&str>) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_tcp-sniffer"));
    cmd.args(args).env_remove("TCP_SNIFFER_TEST_PANIC");
    if let Some(f) = fault {
        cmd.env("TCP_SNIFFER_TEST_PANIC", f);
    }
    cmd
}

/// The JSON log lines on stderr (other lines are a failure: stderr is JSON lines).
fn log_lines(stderr: &[u8]) -> Vec<Value> {
    String::from_utf8_lossy(stderr)
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            serde_json::from_str(l).unwrap_or_else(|e| panic!("not a JSON log line ({e}): {l}"))
        })
        .collect()
}

/// Checks the run died of the injected panic in a thread whose name starts with `thread`:
/// exit 1, the `engine thread panicked` error line naming it, and the stop line.
fn assert_died_in(out: &ProcOutput, thread: &str) -> Vec<Value> {
    let text = String::from_utf8_lossy(&out.stderr).to_string();
    assert_eq!(out.status.code(), Some(1), "exit status; stderr:\n{text}");
    let logs = log_lines(&out.stderr);
    let panicked: Vec<&Value> = logs
        .iter()
        .filter(|l| l["message"] == "engine thread panicked")
        .collect();
    assert_eq!(panicked.len(), 1, "one panic line; stderr:\n{text}");
    let p = panicked[0];
    assert_eq!(p["level"], "error");
    assert_eq!(p["code"], "ERR_TCP_SNIFFER_INTERNAL");
    let name = p["thread"].as_str().unwrap_or_default();
    assert!(
        name.starts_with(thread),
        "thread {name:?}, want {thread}…; stderr:\n{text}"
    );
    assert!(
        p["panic"]
            .as_str()
            .unwrap_or_default()
            .contains("injected panic"),
        "{p}"
    );
    // Where the thread was (the injection site), not the hook's own code.
    assert!(
        p["location"]
            .as_str()
            .is_some_and(|l| l.contains(".rs:") && !l.contains("src/fatal.rs")),
        "{p}"
    );
    assert!(
        logs.iter()
            .any(|l| l["message"] == "internal error; stopping"
                && l["level"] == "error"
                && l["error"].as_str().unwrap_or_default().contains(name)),
        "the run records the panic as its fatal error; stderr:\n{text}"
    );
    logs
}

const REPLAY: &[&str] = &["--read", "", "--ports", "8080"];

fn replay_args(extra: &[&str]) -> Vec<String> {
    let demo = demo().to_str().unwrap().to_string();
    let mut v: Vec<String> = REPLAY.iter().map(|s| s.to_string()).collect();
    v[1] = demo;
    v.extend(extra.iter().map(|s| s.to_string()));
    v
}

fn replay_cli(extra: &[&str], fault: Option<&str>) -> ProcOutput {
    let args = replay_args(extra);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    run_bounded(cli(&args, fault), Duration::from_secs(30))
}

#[test]
fn cli_replay_without_a_fault_exits_0() {
    let out = replay_cli(&[], None);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout).lines().count(), 10);
}

#[test]
fn cli_replay_worker_panic_exits_1_and_names_the_thread() {
    // One worker replays on the replay thread; the panic comes at the 6th packet.
    let out = replay_cli(&["--stats"], Some("worker:5"));
    let logs = assert_died_in(&out, "tcp-sniffer-replay");
    assert!(
        logs.iter().any(|l| l["message"]
            == "fault injection armed: an engine thread will panic on purpose (a test hook)"),
        "the armed hook is announced"
    );
}

#[test]
fn cli_sharded_replay_worker_panic_exits_1_and_names_the_worker() {
    let out = replay_cli(&["--workers", "2"], Some("worker:3"));
    assert_died_in(&out, "tcp-sniffer-replay-");
}

#[test]
fn cli_replay_output_panic_exits_1() {
    // The replay thread delivers the batches; its panic comes at the first batch.
    let out = replay_cli(&[], Some("output"));
    assert_died_in(&out, "tcp-sniffer-replay");
}

#[test]
fn cli_stdout_writer_panic_exits_1() {
    let out = replay_cli(&[], Some("stdout"));
    assert_died_in(&out, "tcp-sniffer-stdout");
}

/// A collector that answers 200 to every request until the test ends.
fn collector() -> (String, Arc<AtomicUsize>) {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/ingest", l.local_addr().unwrap());
    let seen = Arc::new(AtomicUsize::new(0));
    let count = seen.clone();
    std::thread::spawn(move || {
        for conn in l.incoming() {
            let Ok(mut c) = conn else { continue };
            let count = count.clone();
            std::thread::spawn(move || {
                let mut buf = vec![0u8; 1 << 16];
                let mut data = Vec::new();
                loop {
                    let Ok(n) = c.read(&mut buf) else { return };
                    if n == 0 {
                        return;
                    }
                    data.extend_from_slice(&buf[..n]);
                    // Requests are small and Content-Length framed; answer once the head
                    // and the body are in.
                    while let Some(end) = find(&data, b"\r\n\r\n") {
                        let head = String::from_utf8_lossy(&data[..end]).to_ascii_lowercase();
                        let len: usize = head
                            .lines()
                            .find_map(|l| l.strip_prefix("content-length:"))
                            .and_then(|v| v.trim().parse().ok())
                            .unwrap_or(0);
                        if data.len() < end + 4 + len {
                            break;
                        }
                        data.drain(..end + 4 + len);
                        count.fetch_add(1, Ordering::SeqCst);
                        let _ = c.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n");
                    }
                }
            });
        }
    });
    (url, seen)
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

#[test]
fn cli_output_url_sender_panic_exits_1() {
    let (url, posted) = collector();
    // The 10 messages of the demo are queued at once; the third request panics its sender.
    let out = replay_cli(
        &["--output-url", &url, "--output-concurrency", "2", "--stats"],
        Some("post:2"),
    );
    let logs = assert_died_in(&out, "tcp-sniffer-post-");
    // Drained, not dropped: the other sender posts everything still queued; only the
    // message the dead sender held is lost, and it is counted.
    assert_eq!(posted.load(Ordering::SeqCst), 9);
    let stats = logs
        .iter()
        .find(|l| l.get("output").is_some())
        .expect("--stats line");
    assert_eq!(stats["output"]["messages"], 10, "{stats}");
    assert_eq!(stats["output"]["delivered"], 9, "{stats}");
    assert_eq!(stats["output"]["dropped_at_shutdown"], 1, "{stats}");
}

/// An output whose `send` panics on the `n`th batch (a bug in the output stage's thread).
struct PanickingOutput {
    batches: usize,
    panic_at: usize,
    closed: Arc<AtomicUsize>,
}

impl Output for PanickingOutput {
    fn send(&mut self, _batch: &Arc<Batch>) {
        self.batches += 1;
        if self.batches == self.panic_at {
            panic!("output bug at batch {}", self.batches);
        }
    }
    fn flush(&mut self) {}
    fn close(&mut self) {
        self.closed.fetch_add(1, Ordering::SeqCst);
    }
    fn is_closed(&self) -> bool {
        false
    }
    fn stats(&self) -> OutputStats {
        OutputStats::default()
    }
}

#[test]
fn library_replay_panic_is_the_runs_fatal_error_and_the_outputs_are_drained() {
    let settings = common::settings(&[("--read", demo().to_str().unwrap()), ("--ports", "8080")]);
    let closed = Arc::new(AtomicUsize::new(0));
    let collected = common::Collect::default();
    let outputs: Vec<Box<dyn Output>> = vec![
        Box::new(collected.clone()),
        Box::new(PanickingOutput {
            batches: 0,
            panic_at: 1,
            closed: closed.clone(),
        }),
    ];
    let reported: Arc<Mutex<Vec<(String, String)>>> = Arc::default();
    let hooks = {
        let reported = reported.clone();
        Hooks {
            on_error: Some(Box::new(move |e: &FatalError| {
                reported
                    .lock()
                    .unwrap()
                    .push((e.code().to_string(), e.to_string()));
            })),
            on_end: Some(Box::new(|| panic!("a failed replay must not report 'end'"))),
        }
    };
    let mut sniffer = Sniffer::start(&settings, outputs, None, hooks).unwrap();
    let t = Instant::now();
    let err = sniffer.wait().expect_err("the panic is the run's result");
    assert!(
        t.elapsed() < Duration::from_secs(10),
        "wait took {:?}",
        t.elapsed()
    );
    let FatalError::Panic(p) = &err else {
        panic!("want a panic, got {err:?}")
    };
    assert_eq!(p.thread, "tcp-sniffer-replay");
    assert_eq!(p.message, "output bug at batch 1");
    assert!(
        p.location
            .as_deref()
            .is_some_and(|l| l.contains("tests/fatal.rs")),
        "{p:?}"
    );
    assert_eq!(
        sniffer.fatal_error().map(|e| e.code()),
        Some("ERR_TCP_SNIFFER_INTERNAL")
    );
    let reported = reported.lock().unwrap().clone();
    assert_eq!(reported.len(), 1, "on_error once: {reported:?}");
    assert_eq!(reported[0].0, "ERR_TCP_SNIFFER_INTERNAL");
    assert!(reported[0].1.contains("tcp-sniffer-replay"), "{reported:?}");
    // The outputs were closed (drained) after the panic; the other output got the batch
    // that was being delivered.
    assert_eq!(closed.load(Ordering::SeqCst), 1);
    assert!(!collected.0.lock().unwrap().is_empty());
    assert!(sniffer.is_finished());
    let _ = sniffer.stop();
}

#[test]
fn library_replay_without_a_panic_waits_ok() {
    let settings = common::settings(&[("--read", demo().to_str().unwrap()), ("--ports", "8080")]);
    let collected = common::Collect::default();
    let mut sniffer = Sniffer::start(
        &settings,
        vec![Box::new(collected.clone())],
        None,
        Hooks::default(),
    )
    .unwrap();
    sniffer.wait().expect("no fatal error");
    assert_eq!(sniffer.stop().output.messages, 10);
    assert_eq!(
        String::from_utf8_lossy(&collected.0.lock().unwrap())
            .lines()
            .count(),
        10
    );
}

/// The CLI capturing live on `lo` in a new network namespace (`unshare -n`), with the fault
/// armed; `traffic` runs HTTP exchanges on port 8080 meanwhile (a worker needs packets,
/// the output stage messages).
fn live_cli(backend: &str, fault: &str, traffic: bool, workers: u32) -> Option<ProcOutput> {
    // SAFETY: geteuid(2) takes nothing and cannot fail.
    if unsafe { libc::geteuid() } != 0 {
        netns::skip("live capture", "needs root for a network namespace");
        return None;
    }
    let bin = env!("CARGO_BIN_EXE_tcp-sniffer");
    let traffic = if traffic {
        // A server, and a GET every 50 ms until the sniffer ends.
        "python3 -m http.server 8080 --bind 127.0.0.1 >/dev/null 2>&1 & server=$!; \
         while kill -0 $pid 2>/dev/null; do \
           curl -s -o /dev/null http://127.0.0.1:8080/ 2>/dev/null; sleep 0.05; \
         done & "
    } else {
        ""
    };
    let script = format!(
        "ip link set lo up || exit 90; \
         TCP_SNIFFER_TEST_PANIC={fault} {bin} -i lo --ports 8080 --workers {workers} --backend {backend} \
           >/dev/null & pid=$!; \
         {traffic} wait $pid; rc=$?; [ -n \"$server\" ] && kill $server; exit $rc"
    );
    let mut cmd = Command::new("unshare");
    cmd.args(["-n", "bash", "-c", &script])
        .env_remove("TCP_SNIFFER_TEST_PANIC");
    let out = run_bounded(cmd, Duration::from_secs(30));
    if out.status.code() == Some(90) {
        netns::skip(
            "live capture",
            "cannot bring lo up in a new network namespace",
        );
        return None;
    }
    Some(out)
}

#[test]
fn live_af_packet_capture_panic_exits_1() {
    if let Some(out) = live_cli("af_packet", "capture", false, 1) {
        assert_died_in(&out, "tcp-sniffer-ring-0");
    }
}

#[test]
fn live_af_packet_worker_panic_exits_1() {
    if let Some(out) = live_cli("af_packet", "worker", true, 1) {
        assert_died_in(&out, "tcp-sniffer-ring-0");
    }
}

#[test]
fn live_pcap_reader_panic_exits_1() {
    if let Some(out) = live_cli("pcap", "capture", false, 1) {
        assert_died_in(&out, "tcp-sniffer-pcap");
    }
}

#[test]
fn live_pcap_worker_panic_exits_1() {
    // Several workers: the reader hands batches to worker threads.
    if let Some(out) = live_cli("pcap", "worker", true, 2) {
        assert_died_in(&out, "tcp-sniffer-worker-");
    }
    // One worker reads the libpcap handle itself, in the capture thread.
    if let Some(out) = live_cli("pcap", "worker", true, 1) {
        assert_died_in(&out, "tcp-sniffer-pcap");
    }
}

#[test]
fn live_output_stage_panic_exits_1() {
    if let Some(out) = live_cli("af_packet", "output", true, 1) {
        assert_died_in(&out, "tcp-sniffer-output");
    }
}
