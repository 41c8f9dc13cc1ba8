//! Side-by-side runs: every tool over the same pcap files, median of N runs.
//!
//! Each run is one child process; its wall time is measured around `spawn` … `wait4`, and its
//! CPU time (user + system) and peak RSS (`ru_maxrss`) come from the `rusage` that `wait4`
//! returns for exactly that child. Rounds interleave the tools (round 1 of every tool, then
//! round 2, …) so that background noise spreads over all of them, and the file is read once
//! before the first round so that every tool starts from a warm page cache.
//!
//! The run fails (after writing its reports) when a tool crashes or times out, when
//! tcp-sniffer is missing, when a tool is missing under CI ([`crate::live::is_ci`]), and, with
//! `--check-truth`, when a file has no truth or tcp-sniffer's output disagrees with it
//! ([`truth_disagreement`]).

pub use crate::measure::Sample;
use crate::measure::{
    find_program, machine_info, measure, median_sample, reset_dir, run_measured, stderr_tail,
    unix_now, warm_cache, workload_of,
};
use crate::pcap;
use crate::truth::{self, CheckReport};
use anyhow::{bail, Context, Result};
use serde::Serialize;
use std::ffi::OsString;
use std::fs::File;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Options of `sniffer-perf compare`.
#[derive(Debug, Clone, clap::Args)]
pub struct CompareOptions {
    /// A pcap file to run every tool over (repeat for several workloads).
    #[arg(long = "file", required = true)]
    pub files: Vec<PathBuf>,
    /// Timed runs per tool and file; the report gives the median.
    #[arg(long, default_value_t = 5)]
    pub runs: usize,
    /// Tools to run, comma-separated: tcpdump, tshark, tcpflow, httpry, tcp-sniffer, and
    /// tcp-sniffer-2w (the same CLI with `--workers 2` in place of any `--workers` in
    /// `--sniffer-args`; compared with tcpdump and the first in the summary's targets), and
    /// tcp-sniffer-pair (two tcp-sniffer runs at once: the host's ceiling for two threads).
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "tcpdump,tshark,tcpflow,httpry,tcp-sniffer,tcp-sniffer-2w,tcp-sniffer-pair"
    )]
    pub tools: Vec<String>,
    /// The tcp-sniffer binary.
    #[arg(long, default_value = "target/release/tcp-sniffer")]
    pub sniffer: PathBuf,
    /// Extra arguments for tcp-sniffer, whitespace-separated (e.g. "--workers 1").
    #[arg(long, allow_hyphen_values = true, default_value = "")]
    pub sniffer_args: String,
    /// Ports tcp-sniffer watches.
    #[arg(long, default_value = "80,8080")]
    pub ports: String,
    /// Directory for compare.md, compare.json and compare.svg.
    #[arg(long, default_value = "perf/results")]
    pub out: PathBuf,
    /// Also check tcp-sniffer's output against `<name>.truth.jsonl` beside each file.
    #[arg(long)]
    pub check_truth: bool,
    /// A run taking longer is killed and the tool marked failed for that file.
    #[arg(long, default_value_t = 900)]
    pub timeout_s: u64,
}

/// The tcp-sniffer CLI with two workers, as a tool of its own.
pub const SNIFFER_2W: &str = "tcp-sniffer-2w";

/// Two tcp-sniffer runs (as `tcp-sniffer`, one worker) over the same file at once, as two
/// processes sharing nothing but the machine. Its wall is until both have exited, its CPU both
/// processes', its RSS the larger. One run's wall × 2 ÷ the pair's wall is what two perfect,
/// independent workers could get out of this host for this work: less than 2 when the two CPUs
/// share a core (SMT), caches or memory bandwidth. The summary gives it beside the two-worker
/// target, so that a miss can be read against what the host allows.
pub const SNIFFER_PAIR: &str = "tcp-sniffer-pair";

/// tcp-sniffer, with one worker or two.
fn is_sniffer(tool: &str) -> bool {
    tool == "tcp-sniffer" || tool == SNIFFER_2W
}

/// How to run one tool.
struct Tool {
    name: String,
    program: Option<PathBuf>,
    note: String,
}

impl Tool {
    fn args(
        &self,
        file: &Path,
        tmp: &Path,
        opts: &CompareOptions,
        out_file: Option<&Path>,
    ) -> Vec<OsString> {
        let f = file.as_os_str().to_owned();
        let s = |x: &str| OsString::from(x);
        match self.name.as_str() {
            "tcpdump" => vec![s("-n"), s("-r"), f, s("-w"), s("/dev/null")],
            "tshark" => vec![
                s("-n"),
                s("-r"),
                f,
                s("-Y"),
                s("http"),
                s("-T"),
                s("fields"),
                s("-e"),
                s("http.request.method"),
                s("-e"),
                s("http.response.code"),
            ],
            "tcpflow" => vec![s("-r"), f, s("-o"), tmp.as_os_str().to_owned()],
            "httpry" => {
                let o = out_file
                    .map(|p| p.as_os_str().to_owned())
                    .unwrap_or_else(|| s("/dev/null"));
                vec![s("-q"), s("-r"), f, s("-o"), o]
            }
            _ => {
                let mut a = vec![s("--read"), f, s("--ports"), s(&opts.ports), s("--stdout")];
                let mut extra = opts.sniffer_args.split_whitespace();
                if self.name == SNIFFER_2W {
                    while let Some(x) = extra.next() {
                        match x {
                            "--workers" => {
                                extra.next();
                            }
                            x if x.starts_with("--workers=") => {}
                            x => a.push(s(x)),
                        }
                    }
                    a.extend([s("--workers"), s("2")]);
                } else {
                    a.extend(extra.map(s));
                }
                a
            }
        }
    }

    fn version(&self) -> String {
        let Some(p) = &self.program else {
            return String::new();
        };
        let flag = match self.name.as_str() {
            "tcpflow" => "-V",
            "httpry" => "-h",
            _ => "--version",
        };
        let out = Command::new(p).arg(flag).stdin(Stdio::null()).output();
        out.map(|o| {
            let text = format!(
                "{}{}",
                String::from_utf8_lossy(&o.stdout),
                String::from_utf8_lossy(&o.stderr)
            );
            text.lines()
                .find(|l| !l.trim().is_empty())
                .unwrap_or("")
                .trim()
                .to_string()
        })
        .unwrap_or_default()
    }
}

/// [`SNIFFER_PAIR`]'s run: `prog args` twice at once. The wall runs from before the first
/// spawn until both have exited; the exit and the stderr file (`work/stderr-pair-{0,1}`) are
/// the first run's unless it succeeded and the second did not.
fn run_pair(
    prog: &Path,
    args: &[OsString],
    work: &Path,
    timeout: Duration,
) -> Result<(Sample, std::result::Result<i32, String>, PathBuf)> {
    let start = Instant::now();
    let stderr_of = |k: usize| work.join(format!("stderr-pair-{k}"));
    let [first, second] = std::thread::scope(|scope| {
        [0, 1]
            .map(|k| {
                scope.spawn(move || {
                    run_measured(
                        prog,
                        args,
                        Stdio::null(),
                        &stderr_of(k),
                        &work.join(format!("rss-pair-{k}")),
                        timeout,
                    )
                })
            })
            .map(|h| h.join().expect("a pair run's thread panicked"))
    });
    let wall_s = start.elapsed().as_secs_f64();
    let ((a, exit_a), (b, exit_b)) = (first?, second?);
    let sample = Sample {
        wall_s,
        user_s: a.user_s + b.user_s,
        sys_s: a.sys_s + b.sys_s,
        max_rss_kib: a.max_rss_kib.max(b.max_rss_kib),
    };
    Ok(match (exit_a, exit_b) {
        (Ok(0), other) => (sample, other, stderr_of(1)),
        (first, _) => (sample, first, stderr_of(0)),
    })
}

fn resolve_tools(opts: &CompareOptions) -> Vec<Tool> {
    opts.tools
        .iter()
        .map(|name| {
            let name = name.trim().to_string();
            let (program, note) = match name.as_str() {
                "tcp-sniffer" | SNIFFER_2W | SNIFFER_PAIR => match find_program(&opts.sniffer.to_string_lossy()) {
                    Some(p) => (Some(p), String::new()),
                    None => (
                        None,
                        format!(
                            "SKIPPED: tcp-sniffer not found at {} (build it: cargo build --release -p tcp-sniffer, or pass --sniffer PATH)",
                            opts.sniffer.display()
                        ),
                    ),
                },
                "tcpdump" | "tshark" | "tcpflow" | "httpry" => match find_program(&name) {
                    Some(p) => (Some(p), String::new()),
                    None => (None, format!("SKIPPED: {name} is not installed (perf/install-tools.sh installs it)")),
                },
                other => (None, format!("SKIPPED: unknown tool {other:?}")),
            };
            Tool { name, program, note }
        })
        .collect()
}

/// One tool's outcome on one file.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ToolResult {
    /// Tool name.
    pub tool: String,
    /// `ok`, `skipped` or `failed`.
    pub status: String,
    /// Why skipped or failed.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub note: String,
    /// Every timed run.
    pub runs: Vec<Sample>,
    /// Median of each field over the runs (each field's own median).
    pub median: Option<Sample>,
    /// File bytes ÷ median wall time, MB/s (10^6).
    pub mb_per_s: Option<f64>,
    /// Packets ÷ median wall time.
    pub packets_per_s: Option<f64>,
    /// Median CPU seconds per GB (10^9 bytes) of file.
    pub cpu_s_per_gb: Option<f64>,
    /// This tool's median wall time ÷ tcp-sniffer's: how many times faster tcp-sniffer is.
    pub wall_vs_sniffer: Option<f64>,
    /// What the tool produced in one extra, untimed run: lines of output (tshark: HTTP
    /// packets; httpry: records; tcp-sniffer: messages) or files (tcpflow: flow files).
    pub output_count: Option<u64>,
    /// tcp-sniffer only, with --check-truth: its output against the truth file.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub check: Option<CheckReport>,
}

/// All tools on one file.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct FileResult {
    /// The pcap.
    pub file: String,
    /// Workload letter from `<name>.meta.json`, else the file name.
    pub workload: String,
    /// Size in bytes.
    pub bytes: u64,
    /// Packets in it.
    pub packets: u64,
    /// Messages in its truth file, if any.
    pub expected_messages: Option<u64>,
    /// Per tool.
    pub results: Vec<ToolResult>,
}

/// The whole report.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Report {
    /// Unix time of the run.
    pub generated_at_unix: u64,
    /// CPU model, CPUs, kernel.
    pub machine: serde_json::Value,
    /// Timed runs per tool and file.
    pub runs: usize,
    /// Tool name → version line (empty when skipped).
    pub tool_versions: std::collections::BTreeMap<String, String>,
    /// Per file.
    pub files: Vec<FileResult>,
}

fn count_lines(path: &Path, skip_comments: bool) -> Result<u64> {
    let r = BufReader::new(File::open(path)?);
    let mut n = 0;
    for l in r.split(b'\n') {
        let l = l?;
        if l.is_empty() || (skip_comments && l.starts_with(b"#")) {
            continue;
        }
        n += 1;
    }
    Ok(n)
}

/// Why tcp-sniffer's output disagrees with the truth, or `None` when it agrees: every expected
/// message found exactly once with every checked field right, and nothing else emitted.
pub fn truth_disagreement(c: &CheckReport) -> Option<String> {
    let agrees = c.expected > 0
        && c.matched == c.expected
        && c.exact == c.expected
        && c.emitted == c.expected
        && c.mismatches.is_empty();
    (!agrees).then(|| {
        format!(
            "{} expected, {} emitted, {} matched, {} exact; mismatches {:?}; e.g. {:?}",
            c.expected,
            c.emitted,
            c.matched,
            c.exact,
            c.mismatches,
            c.examples.iter().take(3).collect::<Vec<_>>()
        )
    })
}

/// Runs the comparison and writes `compare.{md,json,svg}` under `opts.out`; fails when a tool
/// failed or, with `--check-truth`, tcp-sniffer's output disagrees with the truth (see the
/// module docs).
pub fn run(opts: &CompareOptions) -> Result<()> {
    if opts.runs == 0 {
        bail!("--runs must be at least 1");
    }
    let tools = resolve_tools(opts);
    for t in &tools {
        if !t.note.is_empty() {
            eprintln!("compare: {}", t.note);
        }
    }
    std::fs::create_dir_all(&opts.out)?;
    let work = std::env::temp_dir().join(format!("sniffer-perf-{}", std::process::id()));
    reset_dir(&work)?;
    let timeout = Duration::from_secs(opts.timeout_s);
    let mut files = Vec::new();
    // What makes the run fail, reported after the reports are written.
    let mut problems: Vec<String> = Vec::new();
    for t in tools.iter().filter(|t| t.program.is_none()) {
        if is_sniffer(&t.name) || crate::live::is_ci() {
            problems.push(format!(
                "{} (under CI no tool may be skipped)",
                t.note.trim_start_matches("SKIPPED: ")
            ));
        }
    }
    for file in &opts.files {
        let bytes = std::fs::metadata(file)
            .with_context(|| format!("reading {}", file.display()))?
            .len();
        let packets = pcap::count_packets(file)
            .with_context(|| format!("reading {} as pcap", file.display()))?;
        let truth_path =
            PathBuf::from(format!("{}.truth.jsonl", file.with_extension("").display()));
        let truth = if truth_path.is_file() {
            Some(truth::read_truth(&truth_path)?)
        } else {
            None
        };
        warm_cache(file)?;
        let workload = workload_of(file);
        eprintln!(
            "compare: {} ({workload}, {:.1} MB, {packets} packets)",
            file.display(),
            bytes as f64 / 1e6
        );
        let mut results: Vec<ToolResult> = tools
            .iter()
            .map(|t| ToolResult {
                tool: t.name.clone(),
                status: if t.program.is_some() { "ok" } else { "skipped" }.into(),
                note: t.note.clone(),
                runs: Vec::new(),
                median: None,
                mb_per_s: None,
                packets_per_s: None,
                cpu_s_per_gb: None,
                wall_vs_sniffer: None,
                output_count: None,
                check: None,
            })
            .collect();
        let tmp = work.join("tcpflow");
        let errf = work.join("stderr");
        for round in 0..opts.runs {
            for (t, res) in tools.iter().zip(results.iter_mut()) {
                let Some(prog) = &t.program else { continue };
                if res.status != "ok" {
                    continue;
                }
                reset_dir(&tmp)?;
                let args = t.args(file, &tmp, opts, None);
                let (s, exit, err_file) = if t.name == SNIFFER_PAIR {
                    run_pair(prog, &args, &work, timeout)?
                } else {
                    let rss = work.join("rss");
                    let (s, exit) = run_measured(prog, args, Stdio::null(), &errf, &rss, timeout)?;
                    (s, exit, errf.clone())
                };
                match exit {
                    Ok(0) => {
                        eprintln!(
                            "  round {} {:<12} {:8.3} s wall {:8.3} s cpu {:7.1} MiB",
                            round + 1,
                            t.name,
                            s.wall_s,
                            s.cpu_s(),
                            s.max_rss_kib as f64 / 1024.0
                        );
                        res.runs.push(s);
                    }
                    other => {
                        res.status = "failed".into();
                        res.note = format!("exit {other:?}: {}", stderr_tail(&err_file));
                        eprintln!("  {} FAILED: {}", t.name, res.note);
                    }
                }
                if t.name == "tcpflow" && round + 1 == opts.runs && res.status == "ok" {
                    res.output_count = Some(
                        std::fs::read_dir(&tmp)
                            .map(|d| d.count() as u64)
                            .unwrap_or(0),
                    );
                }
                settle(&tmp)?;
            }
        }
        // One untimed run per tool with text output, to count what it found.
        for (t, res) in tools.iter().zip(results.iter_mut()) {
            let Some(prog) = &t.program else { continue };
            if res.status != "ok"
                || !(matches!(t.name.as_str(), "tshark" | "httpry") || is_sniffer(&t.name))
            {
                continue;
            }
            let out_path = work.join(format!("{}.out", t.name));
            let mut cmd = Command::new(prog);
            if t.name == "httpry" {
                let _ = std::fs::remove_file(&out_path);
                cmd.args(t.args(file, &tmp, opts, Some(&out_path)))
                    .stdout(Stdio::null());
            } else {
                cmd.args(t.args(file, &tmp, opts, None))
                    .stdout(File::create(&out_path)?);
            }
            cmd.stdin(Stdio::null()).stderr(File::create(&errf)?);
            match measure(&mut cmd, timeout)? {
                (_, Ok(0)) => {
                    res.output_count =
                        Some(count_lines(&out_path, t.name == "httpry").unwrap_or(0));
                    if is_sniffer(&t.name) && opts.check_truth {
                        match &truth {
                            Some(tr) => {
                                let c = truth::check(tr, BufReader::new(File::open(&out_path)?))?;
                                if let Some(why) = truth_disagreement(&c) {
                                    eprintln!("  {} DISAGREES with the truth: {why}", t.name);
                                    problems.push(format!(
                                        "{}: {}'s output disagrees with {}: {why}",
                                        file.display(),
                                        t.name,
                                        truth_path.display()
                                    ));
                                }
                                res.check = Some(c);
                            }
                            None => problems.push(format!(
                                "{}: --check-truth, but there is no truth file {}",
                                file.display(),
                                truth_path.display()
                            )),
                        }
                    }
                }
                (_, other) => {
                    res.status = "failed".into();
                    res.note = format!("untimed run: exit {other:?}: {}", stderr_tail(&errf));
                    eprintln!("  {} FAILED: {}", t.name, res.note);
                }
            }
            let _ = std::fs::remove_file(&out_path);
        }
        let _ = std::fs::remove_dir_all(&tmp);
        for r in results
            .iter_mut()
            .filter(|r| r.status == "ok" && !r.runs.is_empty())
        {
            let m = median_sample(&r.runs);
            r.mb_per_s = Some(bytes as f64 / 1e6 / m.wall_s);
            r.packets_per_s = Some(packets as f64 / m.wall_s);
            r.cpu_s_per_gb = Some(m.cpu_s() / (bytes as f64 / 1e9));
            r.median = Some(m);
        }
        let sniffer_wall = results
            .iter()
            .find(|r| r.tool == "tcp-sniffer")
            .and_then(|r| r.median)
            .map(|m| m.wall_s);
        if let Some(sw) = sniffer_wall {
            for r in results.iter_mut() {
                r.wall_vs_sniffer = r.median.map(|m| m.wall_s / sw);
            }
        }
        for r in results.iter().filter(|r| r.status == "failed") {
            problems.push(format!("{}: {} failed: {}", file.display(), r.tool, r.note));
        }
        files.push(FileResult {
            file: file.display().to_string(),
            workload,
            bytes,
            packets,
            expected_messages: truth.as_ref().map(|t| t.len() as u64),
            results,
        });
    }
    let _ = std::fs::remove_dir_all(&work);
    let report = Report {
        generated_at_unix: unix_now(),
        machine: machine_info(),
        runs: opts.runs,
        tool_versions: tools
            .iter()
            .map(|t| (t.name.clone(), t.version()))
            .collect(),
        files,
    };
    let json = opts.out.join("compare.json");
    std::fs::write(&json, serde_json::to_string_pretty(&report)? + "\n")?;
    let md = opts.out.join("compare.md");
    std::fs::write(&md, crate::report::markdown(&report))?;
    let svg = opts.out.join("compare.svg");
    std::fs::write(&svg, crate::report::svg(&report))?;
    eprintln!(
        "compare: wrote {}, {}, {}",
        md.display(),
        json.display(),
        svg.display()
    );
    print!("{}", crate::report::markdown(&report));
    if !problems.is_empty() {
        bail!("compare failed:\n  {}", problems.join("\n  "));
    }
    Ok(())
}
/// Untimed, after every timed run: removes what the tool wrote (tcpflow's flow files) and
/// waits for the kernel to write back whatever is dirty. Otherwise tcpflow's thousands of
/// files are written back by kernel threads during the next tool's timed run, which then
/// shares the two cores with them (seen: two-worker runs 0.12 to 0.20 s after tcpflow).
fn settle(tmp: &Path) -> Result<()> {
    reset_dir(tmp)?;
    // SAFETY: sync(2) takes no arguments and cannot fail.
    unsafe { libc::sync() };
    Ok(())
}
