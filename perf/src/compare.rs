//! Side-by-side runs: every tool over the same pcap files, median of N runs.
//!
//! Each run is one child process; its wall time is measured around `spawn` … `wait4`, and its
//! CPU time (user + system) and peak RSS (`ru_maxrss`) come from the `rusage` that `wait4`
//! returns for exactly that child. Rounds interleave the tools (round 1 of every tool, then
//! round 2, …) so that background noise spreads over all of them, and the file is read once
//! before the first round so that every tool starts from a warm page cache.

use crate::pcap;
use crate::truth::{self, CheckReport};
use anyhow::{bail, Context, Result};
use serde::Serialize;
use std::ffi::OsString;
use std::fs::File;
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::mpsc;
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
    /// Tools to run, comma-separated: tcpdump, tshark, tcpflow, httpry, tcp-sniffer.
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "tcpdump,tshark,tcpflow,httpry,tcp-sniffer"
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

/// Resource use of one child process.
#[derive(Debug, Clone, Copy, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Sample {
    /// Wall-clock seconds from spawn to exit.
    pub wall_s: f64,
    /// User CPU seconds.
    pub user_s: f64,
    /// System CPU seconds.
    pub sys_s: f64,
    /// Peak resident set size, KiB (`ru_maxrss`).
    pub max_rss_kib: u64,
}

impl Sample {
    /// User + system seconds.
    pub fn cpu_s(&self) -> f64 {
        self.user_s + self.sys_s
    }
}

/// GNU time, used as a small parent process so a tool's peak RSS is its own.
const GNU_TIME: &str = "/usr/bin/time";

/// A command running `prog` under GNU time (when installed), which writes the tool's peak
/// RSS in KiB to `rss_file`. Needed because `ru_maxrss` from `wait4` includes the parent's
/// resident set at fork time (the kernel carries the old address space's high-water mark
/// across exec): a harness holding a truth file in memory would report its own size for
/// every tool. Arguments added to the returned command go to `prog`.
pub fn rss_command(prog: &Path, rss_file: &Path) -> Command {
    let _ = std::fs::remove_file(rss_file);
    if Path::new(GNU_TIME).exists() {
        let mut c = Command::new(GNU_TIME);
        c.arg("-f").arg("%M").arg("-o").arg(rss_file).arg(prog);
        c
    } else {
        Command::new(prog)
    }
}

/// The peak RSS GNU time wrote, if it did.
fn read_rss(rss_file: &Path) -> Option<u64> {
    let text = std::fs::read_to_string(rss_file).ok()?;
    text.lines().rev().find_map(|l| l.trim().parse().ok())
}

/// Runs `cmd` to completion, measuring it with `wait4`. Returns the sample and the exit status
/// (`Err` text when killed by a signal or by the timeout).
pub fn measure(
    cmd: &mut Command,
    timeout: Duration,
) -> Result<(Sample, std::result::Result<i32, String>)> {
    let t0 = Instant::now();
    let child = cmd
        .spawn()
        .with_context(|| format!("spawning {:?}", cmd.get_program()))?;
    let pid = child.id() as libc::pid_t;
    let (tx, rx) = mpsc::channel::<()>();
    let watchdog = std::thread::spawn(move || {
        if let Err(mpsc::RecvTimeoutError::Timeout) = rx.recv_timeout(timeout) {
            // SAFETY: plain syscall; the child is not reaped yet, so `pid` still names it.
            unsafe { libc::kill(pid, libc::SIGKILL) };
            return true;
        }
        false
    });
    let mut status: libc::c_int = 0;
    // SAFETY: rusage is plain data; wait4 fills it for the child we spawned.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    let r = loop {
        // SAFETY: pid is our unreaped child; pointers are valid for the call.
        let r = unsafe { libc::wait4(pid, &mut status, 0, &mut ru) };
        if r == -1 && std::io::Error::last_os_error().kind() == std::io::ErrorKind::Interrupted {
            continue;
        }
        break r;
    };
    let wall = t0.elapsed().as_secs_f64();
    let _ = tx.send(());
    let timed_out = watchdog.join().unwrap_or(false);
    drop(child); // already reaped by wait4; dropping a Child does not wait
    if r != pid {
        bail!("wait4 failed: {}", std::io::Error::last_os_error());
    }
    let tv = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    let s = Sample {
        wall_s: wall,
        user_s: tv(ru.ru_utime),
        sys_s: tv(ru.ru_stime),
        max_rss_kib: ru.ru_maxrss as u64,
    };
    let exit = if timed_out {
        Err(format!("killed after {} s timeout", timeout.as_secs()))
    } else if libc::WIFEXITED(status) {
        Ok(libc::WEXITSTATUS(status))
    } else {
        Err(format!("killed by signal {}", libc::WTERMSIG(status)))
    };
    Ok((s, exit))
}

/// Where a program is on `PATH` (or the path itself when it names an existing file).
pub fn find_program(name: &str) -> Option<PathBuf> {
    let p = Path::new(name);
    if p.components().count() > 1 {
        return p.is_file().then(|| p.to_path_buf());
    }
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|d| d.join(name))
            .find(|c| c.is_file())
    })
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
                a.extend(opts.sniffer_args.split_whitespace().map(s));
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

fn resolve_tools(opts: &CompareOptions) -> Vec<Tool> {
    opts.tools
        .iter()
        .map(|name| {
            let name = name.trim().to_string();
            let (program, note) = match name.as_str() {
                "tcp-sniffer" => match find_program(&opts.sniffer.to_string_lossy()) {
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

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

fn median_sample(runs: &[Sample]) -> Sample {
    Sample {
        wall_s: median(runs.iter().map(|s| s.wall_s).collect()),
        user_s: median(runs.iter().map(|s| s.user_s).collect()),
        sys_s: median(runs.iter().map(|s| s.sys_s).collect()),
        max_rss_kib: median(runs.iter().map(|s| s.max_rss_kib as f64).collect()) as u64,
    }
}

fn workload_of(file: &Path) -> String {
    let meta = file.with_extension("meta.json");
    if let Ok(text) = std::fs::read_to_string(&meta) {
        if let Ok(v) = serde_json::from_str::<serde_json::Value>(&text) {
            if let Some(w) = v.get("workload").and_then(|w| w.as_str()) {
                return w.to_string();
            }
        }
    }
    file.file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default()
}

fn warm_cache(file: &Path) -> Result<()> {
    let mut f = File::open(file).with_context(|| format!("opening {}", file.display()))?;
    let mut buf = vec![0u8; 1 << 20];
    while f.read(&mut buf)? > 0 {}
    Ok(())
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

fn reset_dir(d: &Path) -> Result<()> {
    if d.exists() {
        std::fs::remove_dir_all(d).with_context(|| format!("cleaning {}", d.display()))?;
    }
    std::fs::create_dir_all(d)?;
    Ok(())
}

fn stderr_tail(p: &Path) -> String {
    let s = std::fs::read_to_string(p).unwrap_or_default();
    let lines: Vec<&str> = s.lines().rev().take(3).collect();
    lines.into_iter().rev().collect::<Vec<_>>().join(" | ")
}

/// Runs the comparison and writes `compare.{md,json,svg}` under `opts.out`.
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
                let rss_file = work.join("rss");
                let mut cmd = rss_command(prog, &rss_file);
                cmd.args(t.args(file, &tmp, opts, None))
                    .stdin(Stdio::null())
                    .stdout(Stdio::null())
                    .stderr(File::create(&errf)?);
                let (mut s, exit) = measure(&mut cmd, timeout)?;
                if let Some(kib) = read_rss(&rss_file) {
                    s.max_rss_kib = kib;
                }
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
                        res.note = format!("exit {other:?}: {}", stderr_tail(&errf));
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
            }
        }
        // One untimed run per tool with text output, to count what it found.
        for (t, res) in tools.iter().zip(results.iter_mut()) {
            let Some(prog) = &t.program else { continue };
            if res.status != "ok" || !matches!(t.name.as_str(), "tshark" | "httpry" | "tcp-sniffer")
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
            if let (_, Ok(0)) = measure(&mut cmd, timeout)? {
                res.output_count = Some(count_lines(&out_path, t.name == "httpry").unwrap_or(0));
                if t.name == "tcp-sniffer" && opts.check_truth {
                    match &truth {
                        Some(tr) => {
                            res.check =
                                Some(truth::check(tr, BufReader::new(File::open(&out_path)?))?)
                        }
                        None => eprintln!(
                            "compare: no truth file {} — skipping --check-truth",
                            truth_path.display()
                        ),
                    }
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
        generated_at_unix: std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0),
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
    Ok(())
}

fn machine_info() -> serde_json::Value {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = cpuinfo
        .lines()
        .find(|l| l.starts_with("model name"))
        .and_then(|l| l.split(':').nth(1))
        .unwrap_or("")
        .trim()
        .to_string();
    let cpus = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1);
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease")
        .unwrap_or_default()
        .trim()
        .to_string();
    serde_json::json!({ "cpuModel": model, "cpusAvailable": cpus, "kernel": kernel })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn measure_reports_child_cpu_and_exit() {
        let mut cmd = Command::new("sh");
        cmd.args([
            "-c",
            "i=0; while [ $i -lt 20000 ]; do i=$((i+1)); done; exit 3",
        ])
        .stdout(Stdio::null());
        let (s, exit) = measure(&mut cmd, Duration::from_secs(60)).unwrap();
        assert_eq!(exit, Ok(3));
        assert!(s.wall_s > 0.0 && s.max_rss_kib > 0);
        let mut slow = Command::new("sleep");
        slow.arg("30");
        let (s, exit) = measure(&mut slow, Duration::from_millis(200)).unwrap();
        assert!(exit.is_err() && s.wall_s < 10.0);
    }

    #[test]
    fn median_of_even_and_odd() {
        assert_eq!(median(vec![3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(vec![4.0, 1.0, 2.0, 3.0]), 2.5);
    }
}
