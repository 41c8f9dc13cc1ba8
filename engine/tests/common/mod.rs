//! Helpers shared by the integration tests: replay a capture through the engine
//! and collect its messages as JSON values.

#![allow(dead_code)]

pub mod netns;
pub mod otlp;

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::Child;
use std::sync::{mpsc, Arc, Mutex};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use tcp_sniffer::config::{RawValue, Settings, SettingsBuilder, Surface};
use tcp_sniffer::output::{Batch, Output};
use tcp_sniffer::pipeline::{run_file, RunSummary};
use tcp_sniffer::stats::OutputStats;

/// Reads the stderr of a `tcp-sniffer` process started with `.stderr(Stdio::piped())` (JSON
/// log lines, then the `--stats` line) on a thread, and waits up to 10 s for its `capturing`
/// log line, which it writes once capture runs. `Ok`: the thread, which returns every line
/// when the process closes its stderr. `Err`: the process did not get there (it is killed);
/// everything it wrote, with its exit status, for the caller to skip on (`CAP_NET_RAW`) or
/// fail with.
pub fn wait_capturing(child: &mut Child) -> Result<JoinHandle<Vec<String>>, String> {
    let err = child.stderr.take().expect("stderr is piped");
    let (tx, rx) = mpsc::channel();
    let lines = thread::spawn(move || {
        let mut lines = Vec::new();
        for line in BufReader::new(err).lines() {
            let line = line.unwrap_or_default();
            if line.contains(r#""message":"capturing""#) {
                let _ = tx.send(());
            }
            lines.push(line);
        }
        lines
    });
    if rx.recv_timeout(Duration::from_secs(10)).is_ok() {
        return Ok(lines);
    }
    let _ = child.kill();
    let status = child
        .wait()
        .map_or_else(|e| format!("wait failed: {e}"), |s| s.to_string());
    let log = lines.join().unwrap_or_default().join("\n");
    Err(format!("({status}):\n{log}"))
}

/// Whether this run is CI, read the same way by every test in every language (README,
/// "Testing"): `CI` set to anything but `""`, `"0"` or `"false"` (any case). Under CI nothing
/// is skipped: what a test cannot run for is a failure that names the reason.
pub fn is_ci() -> bool {
    std::env::var("CI")
        .is_ok_and(|v| !matches!(v.trim().to_ascii_lowercase().as_str(), "" | "0" | "false"))
}

/// The shared corpus (`../shared/corpus` from the repository root), or `TCP_SNIFFER_CORPUS`.
/// Missing corpus is a failure, not a silent pass: set ALLOW_MISSING_CORPUS=1 to skip loudly
/// (honoured only outside CI: under CI a missing corpus always fails).
pub fn corpus_dir() -> Option<PathBuf> {
    let dir = std::env::var_os("TCP_SNIFFER_CORPUS")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared/corpus"));
    if dir.is_dir() {
        return Some(dir);
    }
    if is_ci() {
        panic!(
            "corpus not found at {}, and CI is set so the corpus tests may not skip \
             (ALLOW_MISSING_CORPUS is not honoured under CI); put the shared corpus there or \
             point TCP_SNIFFER_CORPUS at it",
            dir.display()
        );
    }
    if std::env::var_os("ALLOW_MISSING_CORPUS").is_some() {
        // Past the harness's output capture, so the skip shows although the test passes.
        use std::io::Write;
        let _ = writeln!(
            std::io::stderr(),
            "\n!!! SKIPPED: corpus not found at {} (ALLOW_MISSING_CORPUS is set; under CI this \
             is a failure)\n",
            dir.display()
        );
        return None;
    }
    panic!(
        "corpus not found at {}; put the shared corpus there, point TCP_SNIFFER_CORPUS at it, \
         or set ALLOW_MISSING_CORPUS=1 to skip these tests (outside CI only)",
        dir.display()
    );
}

/// How long a test waits for an event before it fails. Generous on purpose: the machine is
/// shared and noisy, so a deadline only turns a hang into a clear failure; it measures nothing.
pub const DEADLINE: Duration = Duration::from_secs(60);

/// Polls `check` until it gives `Some`, and returns that; fails naming `what` if `within`
/// passes first. The one place tests wait for an event (a counter, a file, a state).
pub fn wait_for<T>(what: &str, within: Duration, mut check: impl FnMut() -> Option<T>) -> T {
    let end = Instant::now() + within;
    loop {
        if let Some(v) = check() {
            return v;
        }
        assert!(
            Instant::now() < end,
            "gave up after {within:?} waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// [`wait_for`] a condition.
pub fn wait_until(what: &str, within: Duration, mut done: impl FnMut() -> bool) {
    wait_for(what, within, || done().then_some(()))
}

/// Runs `f` on its own thread and returns its result; fails naming `what` if it has not
/// returned within `within` (a call that must not block, proven without timing it).
pub fn returns_within<T: Send + 'static>(
    what: &str,
    within: Duration,
    f: impl FnOnce() -> T + Send + 'static,
) -> T {
    let (tx, rx) = std::sync::mpsc::channel();
    let worker = std::thread::spawn(move || {
        let _ = tx.send(f());
    });
    match rx.recv_timeout(within) {
        Ok(v) => {
            worker.join().unwrap();
            v
        }
        Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => match worker.join() {
            Err(panic) => std::panic::resume_unwind(panic),
            Ok(()) => unreachable!("the worker sends before it ends"),
        },
        Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {
            panic!("{what} did not return within {within:?} (it blocked)")
        }
    }
}

/// Collects every batch's JSON lines.
#[derive(Clone, Default)]
pub struct Collect(pub Arc<Mutex<Vec<u8>>>);

impl Output for Collect {
    fn send(&mut self, batch: &Arc<Batch>) {
        self.0.lock().unwrap().extend_from_slice(batch.as_lines());
    }
    fn flush(&mut self) {}
    fn close(&mut self) {}
    fn is_closed(&self) -> bool {
        false
    }
    fn stats(&self) -> OutputStats {
        OutputStats::default()
    }
}

/// Settings from CLI-style pairs.
pub fn settings(pairs: &[(&str, &str)]) -> Settings {
    let mut b = SettingsBuilder::new(Surface::Cli, false);
    for (k, v) in pairs {
        b.set(k, RawValue::Text(v.to_string())).unwrap();
    }
    b.build().unwrap()
}

/// Replays `path` and returns the messages (as JSON) and the run summary.
pub fn replay(path: &std::path::Path, s: &Settings) -> (Vec<serde_json::Value>, RunSummary) {
    let c = Collect::default();
    let mut outputs: Vec<Box<dyn Output>> = vec![Box::new(c.clone())];
    let summary = run_file(s, path.to_str().unwrap(), &mut outputs, None).expect("replay");
    let text = String::from_utf8(c.0.lock().unwrap().clone()).expect("output is UTF-8");
    let msgs = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("bad JSON line {l}: {e}")))
        .collect();
    (msgs, summary)
}
