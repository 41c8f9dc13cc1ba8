//! Helpers shared by the integration tests: replay a capture through the engine
//! and collect its messages as JSON values.

#![allow(dead_code)]

pub mod netns;

use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use tcp_sniffer::config::{RawValue, Settings, SettingsBuilder, Surface};
use tcp_sniffer::output::{Batch, Output};
use tcp_sniffer::pipeline::{run_file, RunSummary};
use tcp_sniffer::stats::OutputStats;

/// The shared corpus (`../shared/corpus` from the repository root), or `TCP_SNIFFER_CORPUS`.
/// Missing corpus is a failure, not a silent pass: set ALLOW_MISSING_CORPUS=1 to skip loudly.
pub fn corpus_dir() -> Option<PathBuf> {
    let dir = std::env::var_os("TCP_SNIFFER_CORPUS")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared/corpus"));
    if dir.is_dir() {
        return Some(dir);
    }
    if std::env::var_os("ALLOW_MISSING_CORPUS").is_some() {
        eprintln!(
            "!!! SKIPPED: corpus not found at {} (ALLOW_MISSING_CORPUS is set)",
            dir.display()
        );
        return None;
    }
    panic!(
        "corpus not found at {}; put the shared corpus there, point TCP_SNIFFER_CORPUS at it, \
         or set ALLOW_MISSING_CORPUS=1 to skip these tests",
        dir.display()
    );
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
