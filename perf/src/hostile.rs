//! `sniffer-perf hostile`: the hostile-traffic suite of issue 11.
//!
//! For each [`Pattern`] it writes (or reuses) the capture of [`crate::gen::hostile`], runs the
//! built CLI over it exactly as a new user would — `tcp-sniffer --read FILE --ports 80 --stats
//! --workers 1`, every other setting default — and measures:
//!
//! * **peak RSS** of the CLI (GNU time's `%M`, else `ru_maxrss`), exit status, wall and CPU time;
//! * the **real exchanges** that came out: stdout is read through a pipe (never stored); a
//!   request with `url` `/real/<n>` and a response with header `x-real: <n>` make exchange `n`
//!   seen;
//! * every **counter** of the `--stats` JSON (the last JSON line on stderr without a `level`),
//!   flattened to `stage.name`, read generically: whatever the engine counts is reported.
//!
//! A pattern **fails** (and `hostile` exits non-zero after writing `hostile.md` and
//! `hostile.json`) when:
//!
//! 1. the CLI did not exit 0 (crash, signal, timeout), or printed no `--stats` JSON;
//! 2. its peak RSS exceeded `--rss-limit-mib` (default 128), or `--budget-mib` when given;
//! 3. real exchanges are missing and the loss counters do not account for them: the missing
//!    count must be at most the sum of the non-zero *loss* counters (names containing one of
//!    [`LOSS_WORDS`]) that count lost things — not bytes, gaps, incomplete messages or cut
//!    bodies, which still come out ([`NOT_MISSING_WORDS`]). A loss with no counter risen is
//!    always a failure. The complete hostile exchanges of `tiny` (two messages each) that are
//!    missing count as lost exchanges too;
//! 4. for `half-open` (every pattern with `--require-final`), the last real exchange (after the
//!    flood) is missing, whatever the counters say — issue 11 requires it after a half-open
//!    flood.

use crate::gen::hostile::{self, HostileStats, Params, Pattern, REAL_HEADER, REAL_PREFIX};
use crate::measure::{machine_info, run_measured, stderr_tail, unix_now};
use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::fs::File;
use std::io::{BufRead, BufReader, BufWriter, Read};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

/// Substrings that make a counter a loss counter: something was shed, evicted, refused, cut,
/// dropped or lost. Matched against the counter's full `stage.name`.
pub const LOSS_WORDS: &[&str] = &[
    "drop",
    "shed",
    "evict",
    "over_cap",
    "overflow",
    "budget",
    "refused",
    "rejected",
    "cut",
    "truncated",
    "too_long",
    "too_many",
    "exceeded",
    "limit",
    "expired",
    "timed_out",
    "timeout",
    "gap",
    "lost",
    "incomplete",
    "discarded",
    "skipped",
    "not_tracked",
    "untracked",
    "parse_error",
    "malformed",
    "errors",
];

/// Options of `sniffer-perf hostile`.
#[derive(Debug, Clone, clap::Args)]
pub struct HostileOptions {
    /// Patterns to run, comma-separated (default: all).
    #[arg(long, value_enum, value_delimiter = ',')]
    pub patterns: Vec<Pattern>,
    /// Quick sizes (`make test`): a tenth or less of the connections, 5 + 1 real exchanges.
    #[arg(long)]
    pub quick: bool,
    /// Hostile connections for every selected pattern (overrides the size's default).
    #[arg(long)]
    pub conns: Option<u64>,
    /// Per-connection size for every selected pattern (head bytes, GETs, stream or body bytes).
    #[arg(long)]
    pub size: Option<u64>,
    /// Real exchanges spread through each capture (one more always comes at the end).
    #[arg(long)]
    pub real: Option<u64>,
    /// Random seed of the captures.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Where captures are written and reused (same name = same parameters = same bytes).
    #[arg(long, default_value = "perf/data/hostile")]
    pub data: PathBuf,
    /// The tcp-sniffer binary.
    #[arg(long, default_value = "target/release/tcp-sniffer")]
    pub sniffer: PathBuf,
    /// Extra arguments for tcp-sniffer (whitespace-separated), after the defaults.
    #[arg(long, default_value = "", allow_hyphen_values = true)]
    pub sniffer_args: String,
    /// Peak RSS above this fails the pattern (issue 11: the CLI with one worker stays under
    /// 128 MiB).
    #[arg(long, default_value_t = 128.0)]
    pub rss_limit_mib: f64,
    /// The engine's documented per-worker memory budget, shown beside each peak; peak RSS
    /// above it fails the pattern too.
    #[arg(long)]
    pub budget_mib: Option<f64>,
    /// An earlier `hostile.json` whose peak RSS and real exchanges are shown as "before" (for
    /// the patterns it ran with the same parameters).
    #[arg(long)]
    pub baseline: Option<PathBuf>,
    /// Kill a run after this many seconds (counted as a failure).
    #[arg(long, default_value_t = 900)]
    pub timeout_s: u64,
    /// Fail every pattern whose last real exchange (after the flood) is missing, not only
    /// `half-open`.
    #[arg(long)]
    pub require_final: bool,
    /// Only write the captures.
    #[arg(long)]
    pub gen_only: bool,
    /// Where hostile.md and hostile.json are written.
    #[arg(long, default_value = "perf/results")]
    pub out: PathBuf,
}

/// What stdout held.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Scan {
    /// Lines (messages) written.
    pub lines: u64,
    /// Real requests seen, by number.
    pub requests: Vec<bool>,
    /// Real responses seen, by number.
    pub responses: Vec<bool>,
    /// Real messages flagged `incomplete`.
    pub real_incomplete: u64,
    /// Real messages whose body was cut (`truncated`; their bodies are 12–16 bytes).
    #[serde(default)]
    pub real_truncated: u64,
    /// Lines mentioning a real exchange that did not parse as JSON.
    pub unparsable: u64,
}

impl Scan {
    /// Exchanges with both the request and the response.
    pub fn complete(&self) -> u64 {
        self.requests
            .iter()
            .zip(&self.responses)
            .filter(|(a, b)| **a && **b)
            .count() as u64
    }
}

/// Counts JSON lines from `r`, noting the real exchanges among `n_real` (see the module doc).
/// Lines that cannot mention a real exchange are not parsed.
pub fn scan_messages<R: Read>(r: R, n_real: u64) -> std::io::Result<Scan> {
    let mut s = Scan {
        requests: vec![false; n_real as usize],
        responses: vec![false; n_real as usize],
        ..Scan::default()
    };
    let mut br = BufReader::with_capacity(1 << 20, r);
    let mut line = Vec::with_capacity(4096);
    loop {
        line.clear();
        if br.read_until(b'\n', &mut line)? == 0 {
            return Ok(s);
        }
        s.lines += 1;
        let Ok(text) = std::str::from_utf8(&line) else {
            continue;
        };
        if !text.contains(REAL_PREFIX) && !text.contains(REAL_HEADER) {
            continue;
        }
        let Ok(v) = serde_json::from_str::<Value>(text) else {
            s.unparsable += 1;
            continue;
        };
        let n = match v["type"].as_str() {
            Some("request") => v["url"]
                .as_str()
                .and_then(|u| u.strip_prefix(REAL_PREFIX))
                .and_then(|n| n.parse::<usize>().ok())
                .map(|n| (n, &mut s.requests)),
            Some("response") => v["headers"][REAL_HEADER]
                .as_str()
                .and_then(|n| n.trim().parse::<usize>().ok())
                .map(|n| (n, &mut s.responses)),
            _ => None,
        };
        if let Some((n, seen)) = n {
            if let Some(slot) = seen.get_mut(n) {
                *slot = true;
                s.real_incomplete += v["incomplete"].as_bool().unwrap_or(false) as u64;
                s.real_truncated += v["truncated"].as_bool().unwrap_or(false) as u64;
            }
        }
    }
}

/// The `--stats` JSON on stderr: the last line that is a JSON object without a `level` (log
/// lines have one).
pub fn stats_from_stderr(text: &str) -> Option<Value> {
    text.lines().rev().find_map(|l| {
        let v: Value = serde_json::from_str(l.trim()).ok()?;
        (v.is_object() && v.get("level").is_none()).then_some(v)
    })
}

/// Every numeric leaf of `v` as `a.b.c` → value (non-integers rounded).
pub fn flatten_counters(v: &Value) -> BTreeMap<String, u64> {
    fn walk(v: &Value, prefix: &str, out: &mut BTreeMap<String, u64>) {
        match v {
            Value::Object(m) => {
                for (k, x) in m {
                    let name = if prefix.is_empty() {
                        k.clone()
                    } else {
                        format!("{prefix}.{k}")
                    };
                    walk(x, &name, out);
                }
            }
            Value::Number(n) => {
                let x = n
                    .as_u64()
                    .or_else(|| n.as_f64().map(|f| f.max(0.0).round() as u64));
                out.insert(prefix.to_string(), x.unwrap_or(0));
            }
            _ => {}
        }
    }
    let mut out = BTreeMap::new();
    walk(v, "", &mut out);
    out
}

/// True for a loss counter (see [`LOSS_WORDS`]).
pub fn is_loss(name: &str) -> bool {
    LOSS_WORDS.iter().any(|w| name.contains(w))
}

/// Loss counters whose names contain one of these do not explain a missing exchange: they
/// count bytes, or damage to messages that still come out (gaps, incomplete or cut bodies).
pub const NOT_MISSING_WORDS: &[&str] = &["bytes", "incomplete", "gap", "truncated", "cut"];

/// How many lost things the non-zero loss counters account for (see [`NOT_MISSING_WORDS`]).
pub fn explained_losses(counters: &BTreeMap<String, u64>) -> u64 {
    counters
        .iter()
        .filter(|(k, _)| is_loss(k) && !NOT_MISSING_WORDS.iter().any(|w| k.contains(w)))
        .map(|(_, v)| *v)
        .fold(0u64, |a, b| a.saturating_add(b))
}

/// One pattern's result.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PatternResult {
    /// Pattern name.
    pub pattern: String,
    /// What the capture holds.
    pub description: String,
    /// Its parameters.
    pub params: Option<Params>,
    /// The capture file.
    pub file: String,
    /// What the generator wrote.
    pub capture: HostileStats,
    /// `0`, `exit N`, `killed by signal N`, `killed after … timeout`, or why it did not run.
    pub exit: String,
    /// Wall seconds of the CLI.
    pub wall_s: f64,
    /// CPU seconds (user + system) of the CLI.
    pub cpu_s: f64,
    /// Peak RSS, MiB.
    pub peak_rss_mib: f64,
    /// The limit applied.
    pub rss_limit_mib: f64,
    /// The documented budget, when given.
    pub budget_mib: Option<f64>,
    /// Real exchanges in the capture.
    pub real_expected: u64,
    /// Real exchanges with both messages out.
    pub real_seen: u64,
    /// Real requests out.
    pub real_requests: u64,
    /// Real responses out.
    pub real_responses: u64,
    /// Real messages flagged incomplete.
    pub real_incomplete: u64,
    /// Real messages whose (12–16-byte) body was cut.
    #[serde(default)]
    pub real_truncated: u64,
    /// The last real exchange (after the flood) came out whole.
    pub final_real_seen: bool,
    /// Messages (stdout lines) the CLI wrote.
    pub messages: u64,
    /// The CLI exited 0.
    #[serde(default)]
    pub exited_ok: bool,
    /// `--stats` JSON was found on stderr.
    #[serde(default)]
    pub stats_found: bool,
    /// Messages the complete hostile exchanges should give (`tiny`: two per connection).
    #[serde(default)]
    pub hostile_expected_messages: u64,
    /// Every non-zero counter of `--stats`.
    pub counters: BTreeMap<String, u64>,
    /// The non-zero loss counters among them.
    pub loss_counters: BTreeMap<String, u64>,
    /// Why the pattern failed (empty: passed).
    pub failures: Vec<String>,
    /// Peak RSS in the baseline report.
    pub before_rss_mib: Option<f64>,
    /// Real exchanges seen in the baseline report.
    pub before_real_seen: Option<u64>,
    /// Tail of stderr when the CLI did not exit 0 or printed no stats.
    pub stderr_tail: String,
}

/// The whole report.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HostileReport {
    /// Unix time of the run.
    pub unix_time: u64,
    /// Machine.
    pub machine: Value,
    /// `quick` or `full`.
    pub mode: String,
    /// The command each capture ran under.
    pub command: String,
    /// `tcp-sniffer --version`.
    #[serde(default)]
    pub sniffer_version: String,
    /// Peak RSS limit, MiB.
    pub rss_limit_mib: f64,
    /// Documented budget, MiB.
    pub budget_mib: Option<f64>,
    /// Every pattern's last real exchange was required.
    #[serde(default)]
    pub require_final: bool,
    /// One per pattern.
    pub patterns: Vec<PatternResult>,
}

fn params_for(o: &HostileOptions, p: Pattern) -> Params {
    let mut params = if o.quick { p.quick() } else { p.full() };
    if let Some(n) = o.conns {
        params.conns = n;
    }
    if let Some(s) = o.size {
        params.size = s;
    }
    if let Some(r) = o.real {
        params.real = r;
    }
    params.seed = o.seed;
    params
}

/// Writes `<stem>.pcap` and `<stem>.meta.json` in `dir` unless both exist with the same
/// parameters. Returns the pcap's path and what it holds.
pub fn ensure_capture(dir: &Path, pattern: Pattern, p: &Params) -> Result<(PathBuf, HostileStats)> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let stem = hostile::file_stem(pattern, p);
    let pcap = dir.join(format!("{stem}.pcap"));
    let meta = dir.join(format!("{stem}.meta.json"));
    if let (Ok(text), Ok(md)) = (std::fs::read_to_string(&meta), std::fs::metadata(&pcap)) {
        if let Ok(v) = serde_json::from_str::<Value>(&text) {
            if let Ok(s) = serde_json::from_value::<HostileStats>(v["stats"].clone()) {
                if s.bytes == md.len() && v["params"] == serde_json::to_value(p)? {
                    return Ok((pcap, s));
                }
            }
        }
    }
    let t0 = std::time::Instant::now();
    let tmp = pcap.with_extension("pcap.part");
    let w = BufWriter::with_capacity(1 << 20, File::create(&tmp)?);
    let (stats, _) = hostile::generate(pattern, p, w)?;
    std::fs::rename(&tmp, &pcap)?;
    let secs = t0.elapsed().as_secs_f64();
    let v = serde_json::json!({
        "pattern": pattern,
        "description": pattern.describe(p),
        "params": p,
        "stats": stats,
        "realUrls": format!("{REAL_PREFIX}0 … {REAL_PREFIX}{}", p.real),
        "generationSeconds": secs,
    });
    std::fs::write(&meta, serde_json::to_string_pretty(&v)? + "\n")?;
    eprintln!(
        "hostile: wrote {} ({:.1} MB, {} packets) in {secs:.1} s",
        pcap.display(),
        stats.bytes as f64 / 1e6,
        stats.packets
    );
    Ok((pcap, stats))
}

fn sniffer_args(o: &HostileOptions, file: &Path) -> Vec<String> {
    let mut a: Vec<String> = vec![
        "--read".into(),
        file.display().to_string(),
        "--ports".into(),
        "80".into(),
        "--stats".into(),
        "--workers".into(),
        "1".into(),
    ];
    a.extend(o.sniffer_args.split_whitespace().map(String::from));
    a
}

/// Runs the CLI over one capture and judges it (see the module doc).
pub fn run_pattern(
    o: &HostileOptions,
    pattern: Pattern,
    p: &Params,
    file: &Path,
    cap: &HostileStats,
    scratch: &Path,
) -> Result<PatternResult> {
    let mut r = PatternResult {
        pattern: pattern.name().into(),
        description: pattern.describe(p),
        params: Some(*p),
        file: file.display().to_string(),
        capture: cap.clone(),
        rss_limit_mib: o.rss_limit_mib,
        budget_mib: o.budget_mib,
        real_expected: cap.real_exchanges,
        ..PatternResult::default()
    };
    let errf = scratch.join(format!("{}.stderr", pattern.name()));
    let rssf = scratch.join(format!("{}.rss", pattern.name()));
    let (reader, writer) = std::io::pipe()?;
    let n_real = cap.real_exchanges;
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(scan_messages(reader, n_real));
    });
    let run = run_measured(
        &o.sniffer,
        sniffer_args(o, file),
        Stdio::from(writer),
        &errf,
        &rssf,
        Duration::from_secs(o.timeout_s),
    );
    // The write end went with the command: the scanner sees EOF once the CLI has exited —
    // unless the CLI outlived GNU time (killed at the timeout), which the wait below bounds.
    let scan = match rx.recv_timeout(Duration::from_secs(60)) {
        Ok(s) => s?,
        Err(_) => {
            r.failures
                .push("stdout still open 60 s after the run ended".into());
            Scan {
                requests: vec![false; n_real as usize],
                responses: vec![false; n_real as usize],
                ..Scan::default()
            }
        }
    };
    let (sample, exit) = run?;
    // GNU time exits with the tool's status; a signal shows in its report.
    let time_note = std::fs::read_to_string(&rssf)
        .unwrap_or_default()
        .lines()
        .find(|l| l.contains("signal"))
        .map(|l| l.trim().to_string());
    r.wall_s = sample.wall_s;
    r.cpu_s = sample.cpu_s();
    r.peak_rss_mib = sample.max_rss_kib as f64 / 1024.0;
    r.messages = scan.lines;
    r.real_seen = scan.complete();
    r.real_requests = scan.requests.iter().filter(|x| **x).count() as u64;
    r.real_responses = scan.responses.iter().filter(|x| **x).count() as u64;
    r.real_incomplete = scan.real_incomplete;
    r.real_truncated = scan.real_truncated;
    let last = n_real.saturating_sub(1) as usize;
    r.final_real_seen = n_real > 0 && scan.requests[last] && scan.responses[last];
    let stderr = std::fs::read_to_string(&errf).unwrap_or_default();
    let stats = stats_from_stderr(&stderr);
    if let Some(v) = &stats {
        r.counters = flatten_counters(v)
            .into_iter()
            .filter(|(_, x)| *x > 0)
            .collect();
        r.loss_counters = r
            .counters
            .iter()
            .filter(|(k, _)| is_loss(k))
            .map(|(k, v)| (k.clone(), *v))
            .collect();
    }
    r.exit = match (&exit, &time_note) {
        (Ok(c), Some(note)) => format!("{c} ({note})"),
        (Ok(c), None) => c.to_string(),
        (Err(e), _) => e.clone(),
    };
    r.exited_ok = exit == Ok(0);
    r.stats_found = stats.is_some();
    r.hostile_expected_messages = 2 * cap.hostile_exchanges_complete;
    r.failures.extend(judge(
        pattern,
        &r,
        &Limits {
            rss_limit_mib: o.rss_limit_mib,
            budget_mib: o.budget_mib,
            require_final: o.require_final,
        },
    ));
    if exit != Ok(0) || stats.is_none() {
        r.stderr_tail = stderr_tail(&errf);
    }
    let _ = std::fs::remove_file(&rssf);
    Ok(r)
}

/// What a result is judged against.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Peak RSS limit, MiB.
    pub rss_limit_mib: f64,
    /// Documented budget, MiB.
    pub budget_mib: Option<f64>,
    /// Every pattern's last real exchange must come out (else only `half-open`'s).
    pub require_final: bool,
}

/// The rules of the check (see the module doc): why `r` fails, empty when it passes.
pub fn judge(pattern: Pattern, r: &PatternResult, l: &Limits) -> Vec<String> {
    let mut f = Vec::new();
    if !r.exited_ok {
        f.push(format!("the CLI did not exit 0: {}", r.exit));
    }
    if !r.stats_found {
        f.push("no --stats JSON on stderr".into());
    }
    if r.peak_rss_mib > l.rss_limit_mib {
        f.push(format!(
            "peak RSS {:.1} MiB > limit {} MiB",
            r.peak_rss_mib, l.rss_limit_mib
        ));
    }
    if let Some(b) = l.budget_mib.filter(|b| r.peak_rss_mib > *b) {
        f.push(format!(
            "peak RSS {:.1} MiB > documented budget {b} MiB",
            r.peak_rss_mib
        ));
    }
    // Complete exchanges lost: the real ones, and the hostile ones of `tiny` (two messages
    // each; the real messages seen are taken out of the count first).
    let missing = r.real_expected.saturating_sub(r.real_seen);
    let hostile_out = r
        .messages
        .saturating_sub(r.real_requests + r.real_responses);
    let hostile_missing = r
        .hostile_expected_messages
        .saturating_sub(hostile_out)
        .div_ceil(2);
    let explained = explained_losses(&r.counters);
    let lost = missing + hostile_missing;
    let what = if hostile_missing > 0 {
        format!(
            "{missing} of {} real exchanges and {hostile_missing} of {} complete hostile exchanges missing",
            r.real_expected,
            r.hostile_expected_messages / 2
        )
    } else {
        format!("{missing} of {} real exchanges missing", r.real_expected)
    };
    if lost > 0 && explained == 0 {
        f.push(format!("{what} and no loss counter rose"));
    } else if lost > explained {
        f.push(format!(
            "{what}, loss counters account for only {explained}"
        ));
    }
    if (pattern == Pattern::HalfOpen || l.require_final) && !r.final_real_seen {
        f.push(if pattern == Pattern::HalfOpen {
            "the real exchange 1 s after the flood is missing".into()
        } else {
            "the real exchange after the flood is missing (--require-final)".into()
        });
    }
    f
}

fn baseline(path: &Path) -> Result<HostileReport> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    serde_json::from_str(&text).with_context(|| format!("parsing {}", path.display()))
}

/// `sniffer-perf hostile` (see the module doc).
pub fn run(o: &HostileOptions) -> Result<()> {
    let patterns: Vec<Pattern> = if o.patterns.is_empty() {
        Pattern::ALL.to_vec()
    } else {
        o.patterns.clone()
    };
    let before = match &o.baseline {
        Some(p) if p.exists() => Some(baseline(p)?),
        Some(p) => {
            eprintln!(
                "hostile: baseline {} not found, no before column",
                p.display()
            );
            None
        }
        None => None,
    };
    if !o.gen_only && !o.sniffer.is_file() {
        bail!(
            "{} not found: build it with cargo build --release -p tcp-sniffer",
            o.sniffer.display()
        );
    }
    std::fs::create_dir_all(&o.out)?;
    let scratch = o.out.join("hostile-tmp");
    std::fs::create_dir_all(&scratch)?;
    let mut results = Vec::new();
    for &pat in &patterns {
        let p = params_for(o, pat);
        let (file, cap) = ensure_capture(&o.data, pat, &p)?;
        if o.gen_only {
            continue;
        }
        eprintln!("hostile: {} — {}", pat.name(), pat.describe(&p));
        let mut r = run_pattern(o, pat, &p, &file, &cap, &scratch)?;
        if let Some(b) = before.as_ref().and_then(|b| {
            // Only the same capture compares: same pattern, same parameters.
            b.patterns
                .iter()
                .find(|x| x.pattern == r.pattern && x.params == r.params)
        }) {
            r.before_rss_mib = Some(b.peak_rss_mib);
            r.before_real_seen = Some(b.real_seen);
        }
        eprintln!(
            "hostile: {}: peak RSS {:.1} MiB, real {}/{}, {} messages, exit {}{}",
            r.pattern,
            r.peak_rss_mib,
            r.real_seen,
            r.real_expected,
            r.messages,
            r.exit,
            if r.failures.is_empty() {
                String::new()
            } else {
                format!(" — FAIL: {}", r.failures.join("; "))
            }
        );
        results.push(r);
    }
    let _ = std::fs::remove_dir_all(&scratch);
    if o.gen_only {
        return Ok(());
    }
    let report = HostileReport {
        unix_time: unix_now(),
        machine: machine_info(),
        mode: if o.quick { "quick" } else { "full" }.into(),
        command: format!(
            "{} {}",
            o.sniffer.display(),
            sniffer_args(o, Path::new("FILE")).join(" ")
        ),
        sniffer_version: std::process::Command::new(&o.sniffer)
            .arg("--version")
            .output()
            .map(|out| String::from_utf8_lossy(&out.stdout).trim().to_string())
            .unwrap_or_default(),
        rss_limit_mib: o.rss_limit_mib,
        budget_mib: o.budget_mib,
        require_final: o.require_final,
        patterns: results,
    };
    std::fs::write(
        o.out.join("hostile.json"),
        serde_json::to_string_pretty(&report)? + "\n",
    )?;
    std::fs::write(o.out.join("hostile.md"), markdown(&report))?;
    let failed: Vec<&str> = report
        .patterns
        .iter()
        .filter(|r| !r.failures.is_empty())
        .map(|r| r.pattern.as_str())
        .collect();
    if !failed.is_empty() {
        bail!(
            "hostile: {} of {} patterns failed: {} (see {})",
            failed.len(),
            report.patterns.len(),
            failed.join(", "),
            o.out.join("hostile.md").display()
        );
    }
    Ok(())
}

fn counters_text(m: &BTreeMap<String, u64>) -> String {
    if m.is_empty() {
        return "–".into();
    }
    m.iter()
        .map(|(k, v)| format!("{k} {v}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The report as Markdown.
pub fn markdown(r: &HostileReport) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "# Hostile traffic (issue 11)\n");
    let _ = writeln!(
        s,
        "Machine: {} ({} CPUs available), kernel {}. {}, mode {}. Each capture run once: `{}` (stdout counted through a pipe). Peak RSS limit {} MiB{}.\n",
        r.machine["cpuModel"].as_str().unwrap_or("?"),
        r.machine["cpusAvailable"],
        r.machine["kernel"].as_str().unwrap_or("?"),
        r.sniffer_version,
        r.mode,
        r.command,
        r.rss_limit_mib,
        r.budget_mib
            .map(|b| format!(", documented budget {b} MiB"))
            .unwrap_or_default()
    );
    let has_before = r.patterns.iter().any(|p| p.before_rss_mib.is_some());
    let _ = writeln!(
        s,
        "| pattern | file MB | packets | peak RSS MiB |{} budget MiB | real seen / expected |{} messages out | wall s | loss counters (non-zero) | verdict |",
        if has_before { " before MiB |" } else { "" },
        if has_before { " before seen |" } else { "" },
    );
    let _ = writeln!(
        s,
        "|---|---:|---:|---:|{}---:|---:|{}---:|---:|---|---|",
        if has_before { "---:|" } else { "" },
        if has_before { "---:|" } else { "" },
    );
    for p in &r.patterns {
        let opt = |v: Option<String>| v.unwrap_or_else(|| "–".into());
        let _ = writeln!(
            s,
            "| {} | {:.1} | {} | {:.1} |{} {} | {} / {}{} |{} {} | {:.2} | {} | {} |",
            p.pattern,
            p.capture.bytes as f64 / 1e6,
            p.capture.packets,
            p.peak_rss_mib,
            if has_before {
                format!(" {} |", opt(p.before_rss_mib.map(|x| format!("{x:.1}"))))
            } else {
                String::new()
            },
            opt(p.budget_mib.map(|b| b.to_string())),
            p.real_seen,
            p.real_expected,
            if p.final_real_seen {
                ""
            } else {
                " (last missing)"
            },
            if has_before {
                format!(" {} |", opt(p.before_real_seen.map(|x| x.to_string())))
            } else {
                String::new()
            },
            p.messages,
            p.wall_s,
            counters_text(&p.loss_counters),
            if p.failures.is_empty() {
                "pass".to_string()
            } else {
                format!("**FAIL**: {}", p.failures.join("; "))
            }
        );
    }
    let _ = writeln!(s, "\n## Patterns\n");
    for p in &r.patterns {
        let _ = writeln!(
            s,
            "- **{}**: {}; {} real exchanges (`GET /real/<n>`, header `x-real`), the last after the flood; {:.2} s of capture time. Exit {}. Real requests / responses seen: {} / {}, flagged incomplete: {}, body truncated: {}.",
            p.pattern,
            p.description,
            p.real_expected,
            p.capture.capture_seconds,
            p.exit,
            p.real_requests,
            p.real_responses,
            p.real_incomplete,
            p.real_truncated
        );
        let _ = writeln!(s, "  Non-zero counters: {}.", counters_text(&p.counters));
        if !p.stderr_tail.is_empty() {
            let _ = writeln!(s, "  stderr: `{}`", p.stderr_tail.replace('`', "'"));
        }
    }
    let _ = writeln!(
        s,
        "\n## The check\n\nA pattern fails when the CLI does not exit 0 or prints no `--stats`; when its peak RSS (GNU time `%M`) exceeds the limit (or the documented budget, when given); when real exchanges (or `tiny`'s complete hostile exchanges) are missing and no loss counter rose, or more are missing than the non-zero loss counters that count lost things add up to — a loss counter is one whose name contains one of: {} (those also containing `bytes`, `incomplete`, `gap`, `truncated` or `cut` count damage to messages that still come out, and explain nothing); and, for `half-open`{}, when the real exchange after the flood is missing, whatever the counters say.",
        LOSS_WORDS.iter().map(|w| format!("`{w}`")).collect::<Vec<_>>().join(", "),
        if r.require_final { " and every other pattern (`--require-final`)" } else { "" }
    );
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scan_finds_real_exchanges() {
        let out = concat!(
            r#"{"type":"request","url":"/real/0","headers":{"x-real":"0"}}"#,
            "\n",
            r#"{"type":"request","url":"/slow/3","headers":{}}"#,
            "\n",
            r#"{"type":"response","statusCode":200,"headers":{"x-real":"0"},"incomplete":true,"truncated":true}"#,
            "\n",
            r#"{"type":"request","url":"/real/1","headers":{"x-real":"1"}}"#,
            "\n",
            r#"{"type":"request","url":"/real/9","headers":{"x-real":"9"}}"#,
            "\n"
        );
        let s = scan_messages(out.as_bytes(), 2).unwrap();
        assert_eq!(s.lines, 5);
        assert_eq!(s.requests, vec![true, true]);
        assert_eq!(s.responses, vec![true, false]);
        assert_eq!(
            (s.complete(), s.real_incomplete, s.real_truncated),
            (1, 1, 1)
        );
    }

    fn passing() -> PatternResult {
        PatternResult {
            exit: "0".into(),
            exited_ok: true,
            stats_found: true,
            peak_rss_mib: 20.0,
            real_expected: 21,
            real_seen: 21,
            real_requests: 21,
            real_responses: 21,
            final_real_seen: true,
            messages: 42,
            ..PatternResult::default()
        }
    }

    const LIMITS: Limits = Limits {
        rss_limit_mib: 128.0,
        budget_mib: None,
        require_final: false,
    };

    #[test]
    fn judge_applies_every_rule() {
        let ok = passing();
        assert!(judge(Pattern::HalfOpen, &ok, &LIMITS).is_empty());
        let over = PatternResult {
            peak_rss_mib: 990.0,
            ..passing()
        };
        assert_eq!(judge(Pattern::Heads60k, &over, &LIMITS).len(), 1);
        let budget = Limits {
            budget_mib: Some(64.0),
            ..LIMITS
        };
        let mid = PatternResult {
            peak_rss_mib: 100.0,
            ..passing()
        };
        assert_eq!(judge(Pattern::Heads60k, &mid, &budget).len(), 1);
        let crashed = PatternResult {
            exit: "139".into(),
            exited_ok: false,
            stats_found: false,
            ..passing()
        };
        assert_eq!(judge(Pattern::Tiny, &crashed, &LIMITS).len(), 2);
        // Lost real exchanges: a failure unless loss counters (not bytes) account for them.
        let mut lost = PatternResult {
            real_seen: 18,
            real_requests: 18,
            real_responses: 18,
            messages: 36,
            ..passing()
        };
        lost.counters.insert("reassembly.gap_bytes".into(), 5000);
        assert!(judge(Pattern::Heads60k, &lost, &LIMITS)[0].contains("no loss counter"));
        lost.counters.insert("flow.connections_over_cap".into(), 2);
        assert!(judge(Pattern::Heads60k, &lost, &LIMITS)[0].contains("only 2"));
        lost.counters.insert("flow.connections_over_cap".into(), 3);
        assert!(judge(Pattern::Heads60k, &lost, &LIMITS).is_empty());
        // tiny's own exchanges count.
        let tiny = PatternResult {
            hostile_expected_messages: 200,
            messages: 42 + 196,
            ..passing()
        };
        assert!(judge(Pattern::Tiny, &tiny, &LIMITS)[0].contains("2 of 100 complete hostile"));
        // The last exchange after a half-open flood is required, counted or not.
        let mut late = PatternResult {
            final_real_seen: false,
            real_seen: 20,
            real_requests: 20,
            real_responses: 20,
            messages: 40,
            ..passing()
        };
        late.counters
            .insert("flow.connections_over_cap".into(), 50_000);
        assert_eq!(judge(Pattern::HalfOpen, &late, &LIMITS).len(), 1);
        assert!(judge(Pattern::BodyFlood, &late, &LIMITS).is_empty());
        let strict = Limits {
            require_final: true,
            ..LIMITS
        };
        assert_eq!(judge(Pattern::BodyFlood, &late, &strict).len(), 1);
    }

    #[test]
    fn stats_are_the_last_json_line_without_level() {
        let err = "{\"level\":\"info\",\"msg\":\"x\"}\n{\"capture\":{\"packets\":3,\"x\":0},\"flow\":{\"connections_over_cap\":7,\"gap_bytes\":90},\"http\":{\"bodies_cut_by_budget\":5,\"incomplete_messages\":4}}\nnot json\n";
        let v = stats_from_stderr(err).unwrap();
        let c = flatten_counters(&v);
        assert_eq!(c["capture.packets"], 3);
        assert_eq!(c["capture.x"], 0);
        assert!(is_loss("flow.connections_over_cap") && !is_loss("capture.packets"));
        // Byte counters and damaged messages that still came out do not explain lost exchanges.
        assert!(is_loss("http.bodies_cut_by_budget") && is_loss("http.incomplete_messages"));
        assert_eq!(explained_losses(&c), 7);
    }
}
