//! Live capture under load: `scripts/live-bench.sh` (nginx under `wrk` in a private network
//! namespace, tcp-sniffer capturing on `lo` with each backend and worker count, `tcpdump -w
//! /dev/null` as the peer), its JSON results turned into `live.md` and `live.json`.
//!
//! Needs root (a network namespace, packet capture). Without root it writes a report saying
//! it was skipped — unless under CI ([`is_ci`]), where that is an error.

use crate::measure::{machine_info, unix_now};
use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};
use std::fmt::Write as _;
use std::path::PathBuf;
use std::process::{Command, Stdio};

/// Options of `sniffer-perf live`.
#[derive(Debug, Clone, clap::Args)]
pub struct LiveOptions {
    /// Seconds of `wrk` load per run.
    #[arg(long, default_value_t = 10)]
    pub duration: u64,
    /// Capture runs, space-separated `backend:workers`.
    #[arg(long, default_value = "af_packet:1 af_packet:2 pcap:1 pcap:2")]
    pub runs: String,
    /// wrk connections.
    #[arg(long, default_value_t = 64)]
    pub connections: u32,
    /// wrk threads.
    #[arg(long, default_value_t = 2)]
    pub threads: u32,
    /// The tcp-sniffer binary (built beforehand; the script does not build it then).
    #[arg(long, default_value = "target/release/tcp-sniffer")]
    pub sniffer: PathBuf,
    /// The measuring script.
    #[arg(long, default_value = "scripts/live-bench.sh")]
    pub script: PathBuf,
    /// Directory for live.md and live.json.
    #[arg(long, default_value = "perf/results")]
    pub out: PathBuf,
}

/// One row of the script's JSON: the baseline (`capture: none`), a tcp-sniffer run, or tcpdump.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct LiveRow {
    /// `none`, `tcp-sniffer` or `tcpdump`.
    pub capture: String,
    /// tcp-sniffer: `af_packet` or `pcap`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub backend: Option<String>,
    /// tcp-sniffer: workers.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub workers: Option<u64>,
    /// Requests wrk completed.
    pub wrk_requests: u64,
    /// wrk's own duration.
    pub wrk_seconds: f64,
    /// `wrk_requests ÷ wrk_seconds`.
    pub requests_per_s: f64,
    /// tcp-sniffer: messages written.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub messages: Option<u64>,
    /// tcp-sniffer: requests among them.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub requests_emitted: Option<u64>,
    /// tcp-sniffer: responses among them.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub responses_emitted: Option<u64>,
    /// tcpdump: packets captured.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub packets_captured: Option<u64>,
    /// Kernel drops (tcp-sniffer `capture.kernel_drops`, tcpdump "dropped by kernel").
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kernel_drops: Option<u64>,
    /// tcp-sniffer `capture.queue_drops`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub queue_drops: Option<u64>,
    /// tcp-sniffer `output.dropped_queue_full`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub output_drops: Option<u64>,
    /// CPU seconds (user + system) of the capture process while wrk ran.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cpu_seconds: Option<f64>,
    /// That as % of one core.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cpu_core_pct: Option<f64>,
    /// % of one core per 10 000 requests/s.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cpu_pct_per_10k_rps: Option<f64>,
}

impl LiveRow {
    /// tcp-sniffer: messages ÷ (2 × wrk requests).
    pub fn completeness(&self) -> Option<f64> {
        self.messages
            .map(|m| m as f64 / (2 * self.wrk_requests.max(1)) as f64)
    }

    /// tcp-sniffer: every request wrk completed came out, with its response (requests in
    /// flight when wrk stopped may add a few more).
    pub fn every_request_out(&self) -> Option<bool> {
        Some(
            self.requests_emitted? >= self.wrk_requests
                && self.responses_emitted? >= self.wrk_requests,
        )
    }
}

/// What the script writes with `JSON_OUT`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ScriptOutput {
    /// wrk settings and the server.
    pub wrk: serde_json::Value,
    /// CPUs and kernel as the script saw them.
    pub machine: serde_json::Value,
    /// Baseline, tcp-sniffer runs, tcpdump.
    pub rows: Vec<LiveRow>,
}

/// The live report.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct LiveReport {
    /// Unix time of the run.
    pub generated_at_unix: u64,
    /// CPU model, CPUs, kernel.
    pub machine: serde_json::Value,
    /// `ok` or `skipped`.
    pub status: String,
    /// Why skipped.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub note: String,
    /// The script's results.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub results: Option<ScriptOutput>,
    /// The issue's targets, one line each.
    pub targets: Vec<String>,
}

/// Whether this run is CI, read as every test in every language of the project reads it
/// (README, "Testing"): `CI` set to anything but `""`, `"0"` or `"false"` (any case). Under CI
/// nothing may be skipped.
pub fn is_ci() -> bool {
    std::env::var("CI")
        .is_ok_and(|v| !matches!(v.trim().to_ascii_lowercase().as_str(), "" | "0" | "false"))
}

/// Runs the script and writes `live.md` and `live.json` under `opts.out`.
pub fn run(opts: &LiveOptions) -> Result<()> {
    std::fs::create_dir_all(&opts.out)?;
    let ci = is_ci();
    // SAFETY: plain syscall without arguments.
    let root = unsafe { libc::geteuid() } == 0;
    let mut report = LiveReport {
        generated_at_unix: unix_now(),
        machine: machine_info(),
        status: "ok".into(),
        note: String::new(),
        results: None,
        targets: Vec::new(),
    };
    if !root {
        if ci {
            bail!("live: needs root (network namespace, packet capture), and CI forbids skipping");
        }
        report.status = "skipped".into();
        report.note = "not run: needs root (network namespace, packet capture)".into();
        eprintln!("live: SKIPPED — {}", report.note);
        return write(opts, &report);
    }
    if !opts.sniffer.is_file() {
        bail!(
            "live: no tcp-sniffer at {} (cargo build --release -p tcp-sniffer, or --sniffer PATH)",
            opts.sniffer.display()
        );
    }
    let json = std::env::temp_dir().join(format!("sniffer-perf-live-{}.json", std::process::id()));
    let _ = std::fs::remove_file(&json);
    eprintln!(
        "live: {} (runs {:?}, {} s each)",
        opts.script.display(),
        opts.runs,
        opts.duration
    );
    let status = Command::new("bash")
        .arg(&opts.script)
        .env("DURATION", opts.duration.to_string())
        .env("RUNS", &opts.runs)
        .env("CONNECTIONS", opts.connections.to_string())
        .env("THREADS", opts.threads.to_string())
        .env("SNIFFER", &opts.sniffer)
        .env("JSON_OUT", &json)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .status()
        .with_context(|| format!("running {}", opts.script.display()))?;
    if !status.success() {
        bail!("live: {} failed: {status}", opts.script.display());
    }
    let text = std::fs::read_to_string(&json)
        .with_context(|| format!("reading the script's JSON {}", json.display()))?;
    let _ = std::fs::remove_file(&json);
    let results: ScriptOutput = serde_json::from_str(&text).context("parsing the script's JSON")?;
    report.targets = targets(&results);
    report.results = Some(results);
    write(opts, &report)
}

fn write(opts: &LiveOptions, report: &LiveReport) -> Result<()> {
    let json = opts.out.join("live.json");
    std::fs::write(&json, serde_json::to_string_pretty(report)? + "\n")?;
    let md = opts.out.join("live.md");
    std::fs::write(&md, markdown(report))?;
    eprintln!("live: wrote {}, {}", md.display(), json.display());
    print!("{}", markdown(report));
    Ok(())
}

/// Every request out and zero kernel drops, per tcp-sniffer run.
pub fn targets(r: &ScriptOutput) -> Vec<String> {
    let verdict = |ok: bool| if ok { "met" } else { "NOT met" };
    r.rows
        .iter()
        .filter(|row| row.capture == "tcp-sniffer")
        .map(|row| {
            let out = row.every_request_out().unwrap_or(false);
            let drops = row.kernel_drops.unwrap_or(u64::MAX);
            format!(
                "tcp-sniffer {} × {}: {} of {} requests and {} responses out — {}; kernel drops {} (target 0) — {}",
                row.backend.as_deref().unwrap_or("?"),
                row.workers.unwrap_or(0),
                row.requests_emitted.unwrap_or(0),
                row.wrk_requests,
                row.responses_emitted.unwrap_or(0),
                verdict(out),
                drops,
                verdict(drops == 0)
            )
        })
        .collect()
}

fn opt<T: std::fmt::Display>(v: Option<T>) -> String {
    v.map(|x| x.to_string()).unwrap_or_else(|| "–".into())
}

/// The live report as Markdown.
pub fn markdown(r: &LiveReport) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "# tcp-sniffer live capture under load\n");
    let Some(res) = &r.results else {
        let _ = writeln!(s, "**Skipped**: {}\n", r.note);
        return s;
    };
    let _ = writeln!(
        s,
        "`wrk -t{} -c{} -d{}s {}` against {}, in a private network namespace (`unshare -n`), everything on `lo`; machine: {} ({} CPUs), kernel {}. \
         tcp-sniffer writes JSON lines to a pipe that counts them; `tcpdump -i lo -w /dev/null` is the peer.\n",
        res.wrk["threads"],
        res.wrk["connections"],
        res.wrk["durationSeconds"],
        res.wrk["url"].as_str().unwrap_or("?"),
        res.wrk["server"].as_str().unwrap_or("nginx"),
        r.machine["cpuModel"].as_str().unwrap_or("?"),
        res.machine["cpus"],
        res.machine["kernel"].as_str().unwrap_or("?"),
    );
    let _ = writeln!(s, "Columns: **requests** wrk completed; **req/s** that ÷ wrk's time; **requests out / responses out** messages of each type tcp-sniffer emitted (a few more than wrk's count are requests in flight when wrk stopped); **of 2×requests** messages ÷ (2 × requests); **kernel drops** `capture.kernel_drops` (tcpdump: \"dropped by kernel\"); **queue + output drops** `capture.queue_drops` + `output.dropped_queue_full`; **CPU** user+system of the capture process while wrk ran, % of one core, and that per 10 000 requests/s.\n");
    let _ = writeln!(s, "| capture | workers | requests | req/s | requests out | responses out | of 2×requests | kernel drops | queue + output drops | CPU % of a core | CPU % per 10k req/s |");
    let _ = writeln!(s, "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    for row in &res.rows {
        let name = match row.capture.as_str() {
            "none" => "none (baseline)".to_string(),
            "tcp-sniffer" => format!("tcp-sniffer {}", row.backend.as_deref().unwrap_or("?")),
            "tcpdump" => format!(
                "tcpdump -w /dev/null ({} packets)",
                opt(row.packets_captured)
            ),
            other => other.to_string(),
        };
        let drops = match (row.queue_drops, row.output_drops) {
            (Some(q), Some(o)) => format!("{}", q + o),
            _ => "–".into(),
        };
        let _ = writeln!(
            s,
            "| {name} | {} | {} | {:.0} | {} | {} | {} | {} | {drops} | {} | {} |",
            opt(row.workers),
            row.wrk_requests,
            row.requests_per_s,
            opt(row.requests_emitted),
            opt(row.responses_emitted),
            row.completeness()
                .map(|c| format!("{:.2} %", c * 100.0))
                .unwrap_or_else(|| "–".into()),
            opt(row.kernel_drops),
            row.cpu_core_pct
                .map(|c| format!("{c:.0} %"))
                .unwrap_or_else(|| "–".into()),
            row.cpu_pct_per_10k_rps
                .map(|c| format!("{c:.1} %"))
                .unwrap_or_else(|| "–".into()),
        );
    }
    let _ = writeln!(s, "\n## Targets (issue 8)\n");
    for t in &r.targets {
        let _ = writeln!(s, "- {t}");
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn script_json_parses_and_targets_read_it() {
        let text = r#"{"wrk": {"threads": 2, "connections": 64, "durationSeconds": 2, "url": "u", "server": "nginx"},
            "machine": {"cpus": 2, "kernel": "6"},
            "rows": [
              {"capture": "none", "wrk_requests": 100, "wrk_seconds": 2.0, "requests_per_s": 50.0},
              {"capture": "tcp-sniffer", "backend": "pcap", "workers": 1, "wrk_requests": 100, "wrk_seconds": 2.0,
               "requests_per_s": 50.0, "messages": 202, "requests_emitted": 101, "responses_emitted": 101,
               "kernel_drops": 0, "queue_drops": 0, "output_drops": 0, "cpu_seconds": 0.5, "cpu_core_pct": 25.0,
               "cpu_pct_per_10k_rps": 5000.0},
              {"capture": "tcpdump", "wrk_requests": 100, "wrk_seconds": 2.0, "requests_per_s": 50.0,
               "packets_captured": 400, "kernel_drops": 0, "cpu_seconds": 0.1, "cpu_core_pct": 5.0, "cpu_pct_per_10k_rps": 1000.0}
            ]}"#;
        let r: ScriptOutput = serde_json::from_str(text).unwrap();
        let t = targets(&r);
        assert_eq!(t.len(), 1);
        assert!(
            t[0].contains("— met; kernel drops 0 (target 0) — met"),
            "{}",
            t[0]
        );
        let rep = LiveReport {
            generated_at_unix: 0,
            machine: serde_json::json!({}),
            status: "ok".into(),
            note: String::new(),
            results: Some(r),
            targets: t,
        };
        let md = markdown(&rep);
        assert!(
            md.contains("| tcp-sniffer pcap | 1 | 100 | 50 | 101 | 101 | 101.00 % | 0 | 0 |"),
            "{md}"
        );
    }
}
