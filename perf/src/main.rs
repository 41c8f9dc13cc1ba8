//! `sniffer-perf`: generate benchmark pcaps, compare tools side by side, check sniffer output
//! against ground truth. See perf/README.md.

use anyhow::{bail, Context, Result};
use clap::{Parser, Subcommand};
use sniffer_perf::compare::{self, CompareOptions};
use sniffer_perf::gen::{self, Workload};
use sniffer_perf::hostile::{self, HostileOptions};
use sniffer_perf::live::{self, LiveOptions};
use sniffer_perf::replay::{self, OnceOptions, ReplayOptions};
use sniffer_perf::summary::{self, SummaryOptions};
use sniffer_perf::truth;
use std::fs::File;
use std::io::{BufReader, BufWriter, Write};
use std::path::PathBuf;
use std::time::Instant;

/// The same allocator as the tcp-sniffer CLI, so `replay` measures the engine as the CLI runs it.
#[global_allocator]
static GLOBAL: tcp_sniffer::allocator::MiMalloc = tcp_sniffer::allocator::MiMalloc;

#[derive(Parser)]
#[command(
    name = "sniffer-perf",
    version,
    about = "Benchmark harness for tcp-sniffer"
)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Write a deterministic synthetic pcap and its ground truth (<name>.pcap, <name>.truth.jsonl,
    /// <name>.meta.json).
    Gen {
        /// S small keep-alive, L large bodies, F short connections, A adversarial, M mix.
        #[arg(long, value_enum, ignore_case = true)]
        workload: Workload,
        /// Target pcap size in MB (10^6 bytes), 1–1024; open connections are closed cleanly after.
        #[arg(long, default_value_t = 100, value_parser = clap::value_parser!(u64).range(1..=1024))]
        size_mb: u64,
        /// Random seed; the same seed gives the same bytes.
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// Output directory (created if missing).
        #[arg(long, default_value = "perf/data")]
        out: PathBuf,
        /// Base file name (default `<W>-<N>mb-seed<K>`).
        #[arg(long)]
        name: Option<String>,
    },
    /// Run several tools over the same pcap(s): median wall time, CPU time, peak RSS, MB/s.
    Compare(CompareOptions),
    /// Replay pcap(s) through the engine in-process (the tcp_sniffer library) with N workers:
    /// packets/s, Gbit/s, messages/s, CPU, peak RSS, completeness, loss counters.
    Replay(ReplayOptions),
    /// One replay in this process, one JSON line on stdout (what `replay` runs per timed run).
    #[command(hide = true)]
    ReplayOnce(OnceOptions),
    /// Live capture under load (root): nginx under wrk in a network namespace, tcp-sniffer per
    /// backend and worker count, tcpdump as the peer (runs scripts/live-bench.sh).
    Live(LiveOptions),
    /// Hostile traffic (issue 11): unfinished heads, unanswered pipelining, half-open flood,
    /// tiny connections, out-of-order storm, body flood, each with real exchanges mixed in; the
    /// CLI's peak RSS, real exchanges out, every counter; non-zero exit on a failure.
    Hostile(HostileOptions),
    /// Write README.md over the reports in a directory: issue 8's targets, met or not, and every
    /// table.
    Summary(SummaryOptions),
    /// Compare tcp-sniffer JSON lines with a truth file; exits non-zero when they disagree.
    Check {
        /// The `<name>.truth.jsonl` file.
        #[arg(long)]
        truth: PathBuf,
        /// The sniffer's output (JSON lines).
        #[arg(long)]
        messages: PathBuf,
    },
}

fn main() -> Result<()> {
    tcp_sniffer::allocator::keep_heap_in_small_pages();
    match Cli::parse().cmd {
        Cmd::Gen {
            workload,
            size_mb,
            seed,
            out,
            name,
        } => {
            std::fs::create_dir_all(&out).with_context(|| format!("creating {}", out.display()))?;
            let name = name.unwrap_or_else(|| format!("{workload:?}-{size_mb}mb-seed{seed}"));
            let pcap_path = out.join(format!("{name}.pcap"));
            let truth_path = out.join(format!("{name}.truth.jsonl"));
            let pcap = BufWriter::with_capacity(1 << 20, File::create(&pcap_path)?);
            let tr = BufWriter::with_capacity(1 << 20, File::create(&truth_path)?);
            let t0 = Instant::now();
            let (stats, _, _) = gen::generate(workload, size_mb * 1_000_000, seed, pcap, tr)?;
            let secs = t0.elapsed().as_secs_f64();
            let meta = serde_json::json!({
                "workload": workload,
                "seed": seed,
                "sizeMb": size_mb,
                "pcap": pcap_path.file_name().map(|s| s.to_string_lossy()),
                "truth": truth_path.file_name().map(|s| s.to_string_lossy()),
                "stats": stats,
                "generationSeconds": secs,
                "generationMBps": stats.bytes as f64 / 1e6 / secs,
            });
            std::fs::write(
                out.join(format!("{name}.meta.json")),
                serde_json::to_string_pretty(&meta)? + "\n",
            )?;
            eprintln!(
                "{}: {} packets, {:.1} MB, {} connections, {} requests, {} responses ({} expected incomplete) in {:.2} s ({:.0} MB/s)",
                pcap_path.display(),
                stats.packets,
                stats.bytes as f64 / 1e6,
                stats.connections,
                stats.requests,
                stats.responses,
                stats.expected_incomplete,
                secs,
                stats.bytes as f64 / 1e6 / secs
            );
            Ok(())
        }
        Cmd::Compare(opts) => compare::run(&opts),
        Cmd::Replay(opts) => replay::run(&opts),
        Cmd::ReplayOnce(opts) => {
            let r = replay::run_once(&opts)?;
            println!("{}", serde_json::to_string(&r)?);
            Ok(())
        }
        Cmd::Live(opts) => live::run(&opts),
        Cmd::Hostile(opts) => hostile::run(&opts),
        Cmd::Summary(opts) => summary::run(&opts),
        Cmd::Check { truth: t, messages } => {
            let want = truth::read_truth(&t)?;
            let f =
                File::open(&messages).with_context(|| format!("opening {}", messages.display()))?;
            let rep = truth::check(&want, BufReader::new(f))?;
            // `check … | head` closes the pipe early: that is not an error worth a panic.
            let mut out = std::io::stdout().lock();
            if let Err(e) = writeln!(out, "{}", serde_json::to_string_pretty(&rep)?) {
                if e.kind() != std::io::ErrorKind::BrokenPipe {
                    return Err(e.into());
                }
            }
            if rep.expected == 0 {
                bail!("truth file is empty");
            }
            if let Some(why) = compare::truth_disagreement(&rep) {
                bail!("tcp-sniffer's output disagrees with the truth: {why}");
            }
            Ok(())
        }
    }
}
