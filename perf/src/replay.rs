//! The engine over a file, in-process through the `tcp_sniffer` library, N workers.
//!
//! Every timed run is its own child process — the current binary re-executed with the hidden
//! `replay-once` subcommand — measured with `wait4` like `compare`'s runs (so peak RSS and CPU
//! time are that run's alone). The child replays the file with
//! [`tcp_sniffer::pipeline::run_file`] into a [`CountingOutput`] (messages and JSON bytes; the
//! messages are serialised exactly as for any output, then dropped) and prints one JSON line
//! ([`OnceResult`]). With `--check-truth`, one more, untimed, run per file and worker count keeps
//! the JSON lines in a file and compares them with `<name>.truth.jsonl`.

use crate::measure::{
    machine_info, median_sample, reset_dir, run_measured, stderr_tail, unix_now, warm_cache,
    workload_of, Sample,
};
use crate::pcap;
use crate::truth::{self, CheckReport};
use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::ffi::OsString;
use std::fmt::Write as _;
use std::fs::File;
use std::io::{BufReader, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tcp_sniffer::config::Settings;
use tcp_sniffer::output::{Batch, Output};
use tcp_sniffer::stats::OutputStats;

/// Options of `sniffer-perf replay`.
#[derive(Debug, Clone, clap::Args)]
pub struct ReplayOptions {
    /// A pcap file to replay (repeat for several workloads).
    #[arg(long = "file", required = true)]
    pub files: Vec<PathBuf>,
    /// Worker counts to run, comma-separated; speed-ups are against the first (1 when listed).
    #[arg(long, value_delimiter = ',', default_value = "1,2")]
    pub workers: Vec<usize>,
    /// Timed runs per file and worker count; the report gives the median.
    #[arg(long, default_value_t = 5)]
    pub runs: usize,
    /// Ports the engine watches.
    #[arg(long, default_value = "80,8080")]
    pub ports: String,
    /// Also check the engine's messages against `<name>.truth.jsonl` beside each file (one
    /// extra, untimed run per file and worker count).
    #[arg(long)]
    pub check_truth: bool,
    /// Directory for replay.md, replay.json and replay.svg.
    #[arg(long, default_value = "perf/results")]
    pub out: PathBuf,
    /// A run taking longer is killed and the row marked failed.
    #[arg(long, default_value_t = 900)]
    pub timeout_s: u64,
}

/// Options of the hidden `replay-once` subcommand: one replay, one JSON line on stdout.
#[derive(Debug, Clone, clap::Args)]
pub struct OnceOptions {
    /// The pcap file.
    #[arg(long)]
    pub file: PathBuf,
    /// Workers.
    #[arg(long, default_value_t = 1)]
    pub workers: usize,
    /// Ports the engine watches, comma-separated.
    #[arg(long, default_value = "80,8080")]
    pub ports: String,
    /// Write the messages (JSON lines) here as well as counting them.
    #[arg(long)]
    pub keep: Option<PathBuf>,
}

/// An [`Output`] that counts messages and JSON bytes and, optionally, writes the lines to a file.
pub struct CountingOutput {
    messages: Arc<AtomicU64>,
    bytes: Arc<AtomicU64>,
    keep: Option<BufWriter<File>>,
    error: Arc<Mutex<Option<String>>>,
}

impl CountingOutput {
    /// A counter; with `keep`, every line is also written to that file.
    pub fn new(keep: Option<File>) -> Self {
        CountingOutput {
            messages: Arc::default(),
            bytes: Arc::default(),
            keep: keep.map(|f| BufWriter::with_capacity(1 << 20, f)),
            error: Arc::default(),
        }
    }

    /// Shared handles to (messages, JSON bytes), readable after the output moved into the engine.
    pub fn counters(&self) -> (Arc<AtomicU64>, Arc<AtomicU64>) {
        (self.messages.clone(), self.bytes.clone())
    }

    /// Where a write error of the kept lines is recorded.
    pub fn error(&self) -> Arc<Mutex<Option<String>>> {
        self.error.clone()
    }

    fn fail(&mut self, e: std::io::Error) {
        *self.error.lock().unwrap() = Some(e.to_string());
        self.keep = None;
    }
}

impl Output for CountingOutput {
    fn send(&mut self, batch: &Arc<Batch>) {
        self.messages
            .fetch_add(batch.len() as u64, Ordering::Relaxed);
        self.bytes
            .fetch_add(batch.as_lines().len() as u64, Ordering::Relaxed);
        if let Some(w) = &mut self.keep {
            if let Err(e) = w.write_all(batch.as_lines()) {
                self.fail(e);
            }
        }
    }

    fn flush(&mut self) {
        if let Some(w) = &mut self.keep {
            if let Err(e) = w.flush() {
                self.fail(e);
            }
        }
    }

    fn close(&mut self) {
        self.flush();
    }

    fn is_closed(&self) -> bool {
        false
    }

    fn stats(&self) -> OutputStats {
        OutputStats {
            delivered: self.messages.load(Ordering::Relaxed),
            ..OutputStats::default()
        }
    }
}

/// What one `replay-once` run prints (one JSON line).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OnceResult {
    /// Workers used.
    pub workers: usize,
    /// Seconds inside `run_file` (process start and exit excluded).
    pub engine_s: f64,
    /// Messages the output received.
    pub messages: u64,
    /// Bytes of JSON lines the output received.
    pub json_bytes: u64,
    /// The engine's counters (`Stats` as JSON, as `--stats` prints them).
    pub stats: serde_json::Value,
    /// The file was damaged at some record.
    pub damaged: Option<String>,
}

/// Parses `"80,8080"`.
pub fn parse_ports(s: &str) -> Result<Vec<u16>> {
    s.split(',')
        .filter(|p| !p.trim().is_empty())
        .map(|p| {
            p.trim()
                .parse::<u16>()
                .with_context(|| format!("bad port {p:?}"))
        })
        .collect()
}

/// Replays `o.file` in this process and returns the counts and the engine's counters.
pub fn run_once(o: &OnceOptions) -> Result<OnceResult> {
    let path = o
        .file
        .to_str()
        .context("file name is not UTF-8")?
        .to_string();
    let settings = Settings {
        ports: parse_ports(&o.ports)?,
        workers: Some(o.workers.max(1)),
        read_file: Some(path.clone()),
        output_stdout: Some(false),
        ..Settings::default()
    };
    let keep = match &o.keep {
        Some(p) => Some(File::create(p).with_context(|| format!("creating {}", p.display()))?),
        None => None,
    };
    let out = CountingOutput::new(keep);
    let (messages, bytes) = out.counters();
    let error = out.error();
    let mut outputs: Vec<Box<dyn Output>> = vec![Box::new(out)];
    let t0 = Instant::now();
    let summary = tcp_sniffer::pipeline::run_file(&settings, &path, &mut outputs, None)
        .with_context(|| format!("replaying {path}"))?;
    let engine_s = t0.elapsed().as_secs_f64();
    drop(outputs);
    if let Some(e) = error.lock().unwrap().take() {
        bail!("writing the messages: {e}");
    }
    Ok(OnceResult {
        workers: o.workers.max(1),
        engine_s,
        messages: messages.load(Ordering::Relaxed),
        json_bytes: bytes.load(Ordering::Relaxed),
        stats: serde_json::to_value(&summary.stats)?,
        damaged: summary.damaged,
    })
}

/// Substrings that make an engine counter a loss counter (reported when non-zero): drops,
/// gaps, incomplete messages, parse errors, caps and overflows, lost or unpaired messages,
/// damaged input.
pub const LOSS_PATTERNS: &[&str] = &[
    "drop",
    "gap",
    "incomplete",
    "parse_error",
    "over_cap",
    "overflow",
    "budget_exhausted",
    "huge_jump",
    "lost_",
    "without_",
    "truncated",
    "malformed",
    "discarded",
    "file_errors",
];

/// The non-zero loss counters in a `Stats` JSON object, as `stage.counter` → value.
pub fn loss_counters(stats: &serde_json::Value) -> BTreeMap<String, u64> {
    let mut out = BTreeMap::new();
    if let Some(stages) = stats.as_object() {
        for (stage, counters) in stages {
            let Some(counters) = counters.as_object() else {
                continue;
            };
            for (name, v) in counters {
                let n = v.as_u64().unwrap_or(0);
                if n > 0 && LOSS_PATTERNS.iter().any(|p| name.contains(p)) {
                    out.insert(format!("{stage}.{name}"), n);
                }
            }
        }
    }
    out
}

/// One file with one worker count.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ReplayRow {
    /// Workers.
    pub workers: usize,
    /// `ok` or `failed`.
    pub status: String,
    /// Why failed.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub note: String,
    /// Every timed run (process wall, CPU, peak RSS).
    pub runs: Vec<Sample>,
    /// Every timed run's seconds inside `run_file`.
    pub engine_s: Vec<f64>,
    /// Median of each field over the runs.
    pub median: Option<Sample>,
    /// Packets ÷ median wall.
    pub packets_per_s: Option<f64>,
    /// File bits ÷ median wall, 10⁹/s.
    pub gbit_per_s: Option<f64>,
    /// File bytes ÷ median wall, 10⁶/s.
    pub mb_per_s: Option<f64>,
    /// Messages ÷ median wall.
    pub messages_per_s: Option<f64>,
    /// Median wall ÷ packets, nanoseconds.
    pub ns_per_packet: Option<f64>,
    /// Median CPU (user + system) ÷ packets, nanoseconds.
    pub cpu_ns_per_packet: Option<f64>,
    /// Median CPU seconds per 10⁹ bytes of pcap.
    pub cpu_s_per_gb: Option<f64>,
    /// Median peak RSS, MiB.
    pub peak_rss_mib: Option<f64>,
    /// Largest peak RSS of any run, MiB.
    pub max_peak_rss_mib: Option<f64>,
    /// The first worker count's median wall ÷ this one's.
    pub speedup: Option<f64>,
    /// Messages emitted (the same in every run, else `note` says so).
    pub messages: Option<u64>,
    /// Messages emitted ÷ messages in the truth file.
    pub emitted_ratio: Option<f64>,
    /// The engine's non-zero loss counters ([`LOSS_PATTERNS`]) of the first run.
    pub loss_counters: BTreeMap<String, u64>,
    /// The engine's counters of the first run.
    pub stats: Option<serde_json::Value>,
    /// With --check-truth: the untimed run's messages against the truth.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub check: Option<CheckReport>,
}

/// One file, every worker count.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ReplayFile {
    /// The pcap.
    pub file: String,
    /// Workload letter.
    pub workload: String,
    /// Size in bytes.
    pub bytes: u64,
    /// Packets in it.
    pub packets: u64,
    /// Messages in its truth file, if any.
    pub expected_messages: Option<u64>,
    /// Per worker count, in the order asked.
    pub rows: Vec<ReplayRow>,
}

/// The whole replay report.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ReplayReport {
    /// Unix time of the run.
    pub generated_at_unix: u64,
    /// CPU model, CPUs, kernel.
    pub machine: serde_json::Value,
    /// Timed runs per row.
    pub runs: usize,
    /// Ports watched.
    pub ports: String,
    /// Per file.
    pub files: Vec<ReplayFile>,
}

fn once_args(file: &Path, workers: usize, ports: &str, keep: Option<&Path>) -> Vec<OsString> {
    let mut a: Vec<OsString> = vec![
        "replay-once".into(),
        "--file".into(),
        file.as_os_str().to_owned(),
        "--workers".into(),
        workers.to_string().into(),
        "--ports".into(),
        ports.into(),
    ];
    if let Some(k) = keep {
        a.push("--keep".into());
        a.push(k.as_os_str().to_owned());
    }
    a
}

fn read_once(stdout: &Path) -> Result<OnceResult> {
    let text = std::fs::read_to_string(stdout)?;
    let line = text
        .lines()
        .rev()
        .find(|l| !l.trim().is_empty())
        .context("replay-once printed nothing")?;
    serde_json::from_str(line).with_context(|| format!("replay-once printed {line:?}"))
}

/// Runs the replays and writes `replay.{md,json,svg}` under `opts.out`.
pub fn run(opts: &ReplayOptions) -> Result<()> {
    if opts.runs == 0 {
        bail!("--runs must be at least 1");
    }
    if opts.workers.is_empty() || opts.workers.contains(&0) {
        bail!("--workers must list worker counts of at least 1");
    }
    parse_ports(&opts.ports)?;
    let exe = std::env::current_exe().context("locating the sniffer-perf binary")?;
    std::fs::create_dir_all(&opts.out)?;
    let work = std::env::temp_dir().join(format!("sniffer-perf-replay-{}", std::process::id()));
    reset_dir(&work)?;
    let timeout = Duration::from_secs(opts.timeout_s);
    let (errf, rssf, outf) = (work.join("stderr"), work.join("rss"), work.join("stdout"));
    let mut files = Vec::new();
    for file in &opts.files {
        let bytes = std::fs::metadata(file)
            .with_context(|| format!("reading {}", file.display()))?
            .len();
        let packets = pcap::count_packets(file)
            .with_context(|| format!("reading {} as pcap", file.display()))?;
        let truth_path =
            PathBuf::from(format!("{}.truth.jsonl", file.with_extension("").display()));
        let expected = truth_path
            .is_file()
            .then(|| count_truth(&truth_path))
            .transpose()?;
        let workload = workload_of(file);
        warm_cache(file)?;
        eprintln!(
            "replay: {} ({workload}, {:.1} MB, {packets} packets)",
            file.display(),
            bytes as f64 / 1e6
        );
        let mut rows: Vec<ReplayRow> = opts.workers.iter().map(|&w| empty_row(w)).collect();
        // Rounds interleave the worker counts, as `compare` interleaves tools.
        for round in 0..opts.runs {
            for row in rows.iter_mut().filter(|r| r.status == "ok") {
                let (s, exit) = run_measured(
                    &exe,
                    once_args(file, row.workers, &opts.ports, None),
                    Stdio::from(File::create(&outf)?),
                    &errf,
                    &rssf,
                    timeout,
                )?;
                let res = match exit {
                    Ok(0) => read_once(&outf),
                    other => Err(anyhow::anyhow!("exit {other:?}: {}", stderr_tail(&errf))),
                };
                match res {
                    Ok(r) => {
                        eprintln!(
                            "  round {} workers {} {:8.3} s wall {:8.3} s cpu {:7.1} MiB {} messages",
                            round + 1,
                            row.workers,
                            s.wall_s,
                            s.cpu_s(),
                            s.max_rss_kib as f64 / 1024.0,
                            r.messages
                        );
                        match row.messages {
                            None => {
                                row.messages = Some(r.messages);
                                row.loss_counters = loss_counters(&r.stats);
                                row.stats = Some(r.stats);
                            }
                            Some(n) if n != r.messages => {
                                row.note = format!(
                                    "message count differs between runs: {n} and {}",
                                    r.messages
                                );
                            }
                            Some(_) => {}
                        }
                        row.runs.push(s);
                        row.engine_s.push(r.engine_s);
                    }
                    Err(e) => {
                        row.status = "failed".into();
                        row.note = format!("{e:#}");
                        eprintln!("  workers {} FAILED: {}", row.workers, row.note);
                    }
                }
            }
        }
        if opts.check_truth {
            if expected.is_none() {
                for row in rows.iter_mut() {
                    row.status = "failed".into();
                    row.note = format!(
                        "--check-truth, but there is no truth file {}",
                        truth_path.display()
                    );
                }
            } else {
                let want = truth::read_truth(&truth_path)?;
                let kept = work.join("messages.jsonl");
                for row in rows.iter_mut().filter(|r| r.status == "ok") {
                    let (_, exit) = run_measured(
                        &exe,
                        once_args(file, row.workers, &opts.ports, Some(&kept)),
                        Stdio::from(File::create(&outf)?),
                        &errf,
                        &rssf,
                        timeout,
                    )?;
                    if exit != Ok(0) {
                        row.status = "failed".into();
                        row.note = format!("truth run: exit {exit:?}: {}", stderr_tail(&errf));
                        continue;
                    }
                    let c = truth::check(&want, BufReader::new(File::open(&kept)?))?;
                    if let Some(why) = crate::compare::truth_disagreement(&c) {
                        row.status = "failed".into();
                        row.note = format!("the engine's messages disagree with the truth: {why}");
                        eprintln!("  workers {} FAILED: {}", row.workers, row.note);
                    }
                    row.check = Some(c);
                    let _ = std::fs::remove_file(&kept);
                }
            }
        }
        finish_rows(&mut rows, bytes, packets, expected);
        files.push(ReplayFile {
            file: file.display().to_string(),
            workload,
            bytes,
            packets,
            expected_messages: expected,
            rows,
        });
    }
    let _ = std::fs::remove_dir_all(&work);
    let report = ReplayReport {
        generated_at_unix: unix_now(),
        machine: machine_info(),
        runs: opts.runs,
        ports: opts.ports.clone(),
        files,
    };
    let json = opts.out.join("replay.json");
    std::fs::write(&json, serde_json::to_string_pretty(&report)? + "\n")?;
    let md = opts.out.join("replay.md");
    std::fs::write(&md, markdown(&report))?;
    let svg = opts.out.join("replay.svg");
    std::fs::write(&svg, svg_chart(&report))?;
    eprintln!(
        "replay: wrote {}, {}, {}",
        md.display(),
        json.display(),
        svg.display()
    );
    print!("{}", markdown(&report));
    let failed: Vec<String> = report
        .files
        .iter()
        .flat_map(|f| {
            f.rows
                .iter()
                .filter(|r| r.status != "ok")
                .map(move |r| format!("{} workers {}: {}", f.workload, r.workers, r.note))
        })
        .collect();
    if !failed.is_empty() {
        bail!("replay failed for {}", failed.join(", "));
    }
    Ok(())
}

fn count_truth(p: &Path) -> Result<u64> {
    let text = std::fs::read(p)?;
    Ok(text
        .split(|&b| b == b'\n')
        .filter(|l| !l.iter().all(u8::is_ascii_whitespace))
        .count() as u64)
}

fn empty_row(workers: usize) -> ReplayRow {
    ReplayRow {
        workers,
        status: "ok".into(),
        note: String::new(),
        runs: Vec::new(),
        engine_s: Vec::new(),
        median: None,
        packets_per_s: None,
        gbit_per_s: None,
        mb_per_s: None,
        messages_per_s: None,
        ns_per_packet: None,
        cpu_ns_per_packet: None,
        cpu_s_per_gb: None,
        peak_rss_mib: None,
        max_peak_rss_mib: None,
        speedup: None,
        messages: None,
        emitted_ratio: None,
        loss_counters: BTreeMap::new(),
        stats: None,
        check: None,
    }
}

fn finish_rows(rows: &mut [ReplayRow], bytes: u64, packets: u64, expected: Option<u64>) {
    for r in rows.iter_mut().filter(|r| !r.runs.is_empty()) {
        let m = median_sample(&r.runs);
        let wall = m.wall_s.max(1e-9);
        r.packets_per_s = Some(packets as f64 / wall);
        r.gbit_per_s = Some(bytes as f64 * 8.0 / 1e9 / wall);
        r.mb_per_s = Some(bytes as f64 / 1e6 / wall);
        r.messages_per_s = r.messages.map(|n| n as f64 / wall);
        r.ns_per_packet = Some(wall * 1e9 / packets.max(1) as f64);
        r.cpu_ns_per_packet = Some(m.cpu_s() * 1e9 / packets.max(1) as f64);
        r.cpu_s_per_gb = Some(m.cpu_s() / (bytes as f64 / 1e9));
        r.peak_rss_mib = Some(m.max_rss_kib as f64 / 1024.0);
        r.max_peak_rss_mib = r
            .runs
            .iter()
            .map(|s| s.max_rss_kib as f64 / 1024.0)
            .reduce(f64::max);
        r.emitted_ratio = match (r.messages, expected) {
            (Some(n), Some(e)) if e > 0 => Some(n as f64 / e as f64),
            _ => None,
        };
        r.median = Some(m);
    }
    let base = rows.first().and_then(|r| r.median).map(|m| m.wall_s);
    if let Some(b) = base {
        for r in rows.iter_mut() {
            r.speedup = r.median.map(|m| b / m.wall_s.max(1e-9));
        }
    }
}

fn f(v: Option<f64>, digits: usize) -> String {
    v.map(|x| format!("{x:.digits$}"))
        .unwrap_or_else(|| "–".into())
}

/// Thousands separated by thin spaces, for big counts.
fn big(v: f64) -> String {
    let s = format!("{:.0}", v);
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i) % 3 == 0 {
            out.push('\u{202f}');
        }
        out.push(c);
    }
    out
}

/// The replay report as Markdown: one table for every file × worker count, then the truth
/// checks and loss counters, then the targets.
pub fn markdown(r: &ReplayReport) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "# tcp-sniffer engine replay (in-process, library)\n");
    let _ = writeln!(
        s,
        "Machine: {} ({} CPUs available), kernel {}. Each run is its own process (`sniffer-perf replay-once`: \
         `pipeline::run_file` into an output that counts the serialised messages); median of {} runs; ports {}.\n",
        r.machine["cpuModel"].as_str().unwrap_or("?"),
        r.machine["cpusAvailable"],
        r.machine["kernel"].as_str().unwrap_or("?"),
        r.runs,
        r.ports
    );
    let _ = writeln!(s, "Columns: **wall** median elapsed seconds of the process; **packets/s**, **Gbit/s** (pcap bytes × 8), **messages/s** per median wall; **ns/pkt** median wall ÷ packets (CPU ns/pkt: CPU time ÷ packets); **CPU s/GB** user+system seconds per 10⁹ bytes of pcap; **RSS** median peak resident set (max over runs); **speed-up** the first worker count's wall ÷ this one's; **complete** expected messages found ÷ expected (truth check), **exact** of those with every checked field right; **emitted** messages ÷ expected.\n");
    let _ = writeln!(s, "| workload | MB | workers | wall s | packets/s | Gbit/s | messages/s | ns/pkt (CPU) | CPU s/GB | RSS MiB (max) | speed-up | complete | exact | emitted |");
    let _ = writeln!(
        s,
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
    );
    for fr in &r.files {
        for row in &fr.rows {
            if row.status != "ok" {
                let _ = writeln!(
                    s,
                    "| {} | {:.1} | {} | FAILED | | | | | | | | | | |",
                    fr.workload,
                    fr.bytes as f64 / 1e6,
                    row.workers
                );
                continue;
            }
            let m = row.median.unwrap_or_default();
            let (complete, exact) = match &row.check {
                Some(c) => (
                    format!("{:.3} %", c.completeness * 100.0),
                    format!("{:.3} %", 100.0 * c.exact as f64 / c.expected.max(1) as f64),
                ),
                None => ("–".into(), "–".into()),
            };
            let _ = writeln!(
                s,
                "| {} | {:.1} | {} | {:.3} | {} | {} | {} | {} ({}) | {} | {} ({}) | {}× | {} | {} | {} |",
                fr.workload,
                fr.bytes as f64 / 1e6,
                row.workers,
                m.wall_s,
                row.packets_per_s.map(big).unwrap_or_default(),
                f(row.gbit_per_s, 3),
                row.messages_per_s.map(big).unwrap_or_default(),
                f(row.ns_per_packet, 0),
                f(row.cpu_ns_per_packet, 0),
                f(row.cpu_s_per_gb, 2),
                f(row.peak_rss_mib, 1),
                f(row.max_peak_rss_mib, 1),
                f(row.speedup, 2),
                complete,
                exact,
                row.emitted_ratio
                    .map(|e| format!("{:.3} %", e * 100.0))
                    .unwrap_or_else(|| "–".into()),
            );
        }
    }
    let _ = writeln!(s);
    let notes: Vec<String> = r
        .files
        .iter()
        .flat_map(|fr| {
            fr.rows
                .iter()
                .filter(|row| !row.note.is_empty())
                .map(move |row| {
                    format!(
                        "- **{} workers {}**: {}",
                        fr.workload, row.workers, row.note
                    )
                })
        })
        .collect();
    if !notes.is_empty() {
        let _ = writeln!(s, "Notes:\n\n{}\n", notes.join("\n"));
    }
    let _ = writeln!(s, "## Loss counters and truth mismatches\n");
    let _ = writeln!(s, "Every non-zero engine counter whose name contains one of {} (first run), and the truth check's mismatches by kind.\n",
        LOSS_PATTERNS.iter().map(|p| format!("`{p}`")).collect::<Vec<_>>().join(", "));
    let _ = writeln!(
        s,
        "| workload | workers | loss counters | truth mismatches |"
    );
    let _ = writeln!(s, "|---|---:|---|---|");
    for fr in &r.files {
        for row in fr.rows.iter().filter(|r| r.status == "ok") {
            let loss = if row.loss_counters.is_empty() {
                "none".to_string()
            } else {
                row.loss_counters
                    .iter()
                    .map(|(k, v)| format!("{k} {v}"))
                    .collect::<Vec<_>>()
                    .join(", ")
            };
            let mism = match &row.check {
                Some(c) if c.mismatches.is_empty() => "none".to_string(),
                Some(c) => c
                    .mismatches
                    .iter()
                    .map(|(k, v)| format!("{k} {v}"))
                    .collect::<Vec<_>>()
                    .join(", "),
                None => "not checked".into(),
            };
            let _ = writeln!(
                s,
                "| {} | {} | {} | {} |",
                fr.workload, row.workers, loss, mism
            );
        }
    }
    let _ = writeln!(s);
    let _ = writeln!(s, "## Targets (issue 8)\n");
    for t in targets(r) {
        let _ = writeln!(s, "- {t}");
    }
    s
}

/// The replay targets, one line each: 2 workers ≥ 1.7× one worker (S), completeness
/// 100 % (S, L, F, M) or ≥ 99 % (A), peak RSS ≤ 64 MiB on every workload.
pub fn targets(r: &ReplayReport) -> Vec<String> {
    let verdict = |ok: bool| if ok { "met" } else { "NOT met" };
    let mut out = Vec::new();
    for fr in &r.files {
        if fr.workload == "S" {
            let one = fr.rows.iter().find(|row| row.workers == 1);
            let two = fr.rows.iter().find(|row| row.workers == 2);
            if let (Some(a), Some(b)) = (one.and_then(|r| r.median), two.and_then(|r| r.median)) {
                let x = a.wall_s / b.wall_s;
                out.push(format!(
                    "S, 2 workers ÷ 1 worker throughput: {x:.2}× (target ≥ 1.7×) — {}",
                    verdict(x >= 1.7)
                ));
            }
        }
    }
    for fr in &r.files {
        let goal = if fr.workload == "A" { 0.99 } else { 1.0 };
        let checks: Vec<(usize, f64)> = fr
            .rows
            .iter()
            .filter_map(|row| row.check.as_ref().map(|c| (row.workers, c.completeness)))
            .collect();
        if !checks.is_empty() {
            let worst = checks.iter().map(|c| c.1).fold(f64::INFINITY, f64::min);
            out.push(format!(
                "{} completeness: {} (target {}) — {}",
                fr.workload,
                checks
                    .iter()
                    .map(|(w, c)| format!(
                        "{:.3} % with {w} worker{}",
                        c * 100.0,
                        if *w == 1 { "" } else { "s" }
                    ))
                    .collect::<Vec<_>>()
                    .join(", "),
                if goal < 1.0 { "≥ 99 %" } else { "100 %" },
                verdict(worst >= goal)
            ));
        }
    }
    let rss: Vec<(String, usize, f64)> = r
        .files
        .iter()
        .flat_map(|fr| {
            fr.rows.iter().filter_map(move |row| {
                row.max_peak_rss_mib
                    .map(|m| (fr.workload.clone(), row.workers, m))
            })
        })
        .collect();
    if let Some((w, n, m)) = rss
        .iter()
        .cloned()
        .reduce(|a, b| if b.2 > a.2 { b } else { a })
    {
        out.push(format!(
            "peak RSS, every workload and worker count: largest {m:.1} MiB ({w}, {n} worker{}) (target ≤ 64 MiB) — {}",
            if n == 1 { "" } else { "s" },
            verdict(m <= 64.0)
        ));
    }
    out
}

/// A bar chart of packets/s: one group per file, one bar per worker count.
pub fn svg_chart(r: &ReplayReport) -> String {
    let groups: Vec<crate::report::BarGroup> = r
        .files
        .iter()
        .map(|fr| crate::report::BarGroup {
            label: format!(
                "{} — {} ({:.0} MB)",
                fr.workload,
                fr.file.rsplit('/').next().unwrap_or(&fr.file),
                fr.bytes as f64 / 1e6
            ),
            bars: fr
                .rows
                .iter()
                .filter_map(|row| {
                    row.packets_per_s.map(|p| crate::report::Bar {
                        label: format!(
                            "{} worker{}",
                            row.workers,
                            if row.workers == 1 { "" } else { "s" }
                        ),
                        value: p / 1e3,
                        color: if row.workers == 1 {
                            "#d62728"
                        } else {
                            "#ff9896"
                        },
                    })
                })
                .collect(),
        })
        .collect();
    crate::report::bar_chart(
        &format!(
            "tcp-sniffer engine replay (kpackets/s, median of {} runs; longer is faster)",
            r.runs
        ),
        " kpackets/s",
        &groups,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loss_counters_pick_non_zero_losses() {
        let v = serde_json::json!({
            "capture": { "packets": 10, "kernel_drops": 0, "queue_drops": 2 },
            "reassembly": { "gap_events": 1, "retransmitted_segments": 5 },
            "http": { "incomplete_messages": 3, "parse_error_invalid_head": 1, "requests": 9 },
        });
        let l = loss_counters(&v);
        assert_eq!(
            l.keys().cloned().collect::<Vec<_>>(),
            [
                "capture.queue_drops",
                "http.incomplete_messages",
                "http.parse_error_invalid_head",
                "reassembly.gap_events"
            ]
        );
    }

    #[test]
    fn ports_parse() {
        assert_eq!(parse_ports("80, 8080").unwrap(), [80, 8080]);
        assert!(parse_ports("http").is_err());
    }
}
