//! `tcp-sniffer`: the command-line face of the engine.
//!
//! Glue only: parse flags into the engine's one settings validation, pick the
//! outputs, run, print `--stats`. Exit codes: 0 done, 1 capture/file failure or an
//! internal error (a panic in an engine thread, logged as an error line naming the
//! thread), 2 invalid settings.

use std::process::ExitCode;

/// The binary uses mimalloc (see `tcp_sniffer::allocator`): messages are built on worker
/// threads and freed on output threads, a pattern glibc's malloc handles poorly (it was a
/// quarter of replay time).
#[global_allocator]
static GLOBAL: tcp_sniffer::allocator::MiMalloc = tcp_sniffer::allocator::MiMalloc;

use clap::parser::ValueSource;
use clap::{Arg, ArgAction, Command};
use serde_json::json;
use tcp_sniffer::config::LogLevel;
use tcp_sniffer::config::{RawValue, Settings, SettingsBuilder, Surface};
use tcp_sniffer::message::Placement;
use tcp_sniffer::output::{build_outputs, log, Output};
use tcp_sniffer::runtime::{Hooks, Sniffer, StartError};
use tcp_sniffer_settings::{docs, Kind, TABLE};

const USAGE: &str = "\
tcp-sniffer --read FILE --ports PORTS [OPTIONS]   replay a pcap/pcapng file
       tcp-sniffer -i IFACE --ports PORTS [OPTIONS]      capture live";

const AFTER_HELP: &str = "\
Boolean flags alone mean true; --flag=false says false. The output URL's bearer token is
read from the OUTPUT_URL_AUTH_TOKEN environment variable, never from a flag. Each flag may
be given once; --read cannot go with --interface or --backend.

Messages go to stdout, one JSON object per line; logs and --stats go to stderr.
Exit codes: 0 done; 1 capture or file failure, or an internal error (a panic in an
engine thread: logged as an error line that names the thread); 2 invalid settings or
arguments; 3 nothing delivered (only with --fail-if-nothing-delivered).";

/// What the command line asks for besides the engine's settings.
struct Cli {
    settings: Settings,
    print_stats: bool,
    /// `--fail-if-nothing-delivered`: a replay that delivered no message exits 3.
    fail_if_nothing_delivered: bool,
}

/// The command line: one flag per row of the settings table that has one (its help, value
/// name, short letter and conflicts come from the row), plus `--stats`. clap checks the
/// shape (unknown flags, repeats, conflicts, missing values); the values go through the
/// engine's one validation, so their errors read the same as the library's and the sidecar's.
fn command() -> Command {
    let mut cmd = Command::new("tcp-sniffer")
        .version(env!("CARGO_PKG_VERSION"))
        .about("tcp-sniffer: show the HTTP/1.x requests and responses on the given ports, as JSON lines.")
        .override_usage(USAGE)
        .after_help(AFTER_HELP)
        .max_term_width(100);
    for row in TABLE {
        let Some(flag) = row.flag else { continue };
        let mut arg = Arg::new(row.key)
            .long(flag.long)
            .help(docs::flag_help(row))
            .value_name(docs::value_name(row.kind))
            .action(ArgAction::Set);
        if let Some(c) = flag.short {
            arg = arg.short(c);
        }
        if row.kind == Kind::Bool {
            arg = arg
                .num_args(0..=1)
                .require_equals(true)
                .default_missing_value("true");
        }
        for other in row.conflicts {
            arg = arg.conflicts_with(*other);
        }
        cmd = cmd.arg(arg);
    }
    cmd.arg(
        Arg::new("stats")
            .long("stats")
            .action(ArgAction::SetTrue)
            .help("Print the final counters as JSON on stderr."),
    )
    .arg(
        Arg::new("fail-if-nothing-delivered")
            .long("fail-if-nothing-delivered")
            .action(ArgAction::SetTrue)
            .help("With --read: exit 3 when no message was delivered (an empty capture, wrong ports, or an output that took nothing)."),
    )
}

/// `Ok(None)`: `--help` or `--version` was printed. `Err`: the message and the exit code.
fn parse_args(args: impl Iterator<Item = String>) -> Result<Option<Cli>, (String, u8)> {
    let argv = std::iter::once("tcp-sniffer".to_string()).chain(args);
    let m = match command().try_get_matches_from(argv) {
        Ok(m) => m,
        Err(e) => {
            let code = e.exit_code();
            let text = e.render().to_string();
            if code == 0 {
                print!("{text}");
                return Ok(None);
            }
            return Err((text.trim_end().to_string(), code as u8));
        }
    };
    let production = std::env::var("NODE_ENV")
        .map(|v| v == "production")
        .unwrap_or(false);
    let invalid = |e: tcp_sniffer::config::ConfigError| (format!("tcp-sniffer: {e}"), 2);
    let mut b = SettingsBuilder::new(Surface::Cli, production);
    for row in TABLE {
        let Some(flag) = row.flag else { continue };
        if m.value_source(row.key) != Some(ValueSource::CommandLine) {
            continue;
        }
        if let Some(v) = m.get_one::<String>(row.key) {
            b.set(&format!("--{}", flag.long), RawValue::Text(v.clone()))
                .map_err(invalid)?;
        }
    }
    if let Ok(token) = std::env::var("OUTPUT_URL_AUTH_TOKEN") {
        b.set_as(Surface::Env, "OUTPUT_URL_AUTH_TOKEN", RawValue::Text(token))
            .map_err(invalid)?;
    }
    let settings = b.build().map_err(invalid)?;
    if m.get_flag("fail-if-nothing-delivered") && settings.read_file.is_none() {
        return Err((
            "tcp-sniffer: --fail-if-nothing-delivered goes with --read FILE".into(),
            2,
        ));
    }
    Ok(Some(Cli {
        settings,
        print_stats: m.get_flag("stats"),
        fail_if_nothing_delivered: m.get_flag("fail-if-nothing-delivered"),
    }))
}

fn main() -> ExitCode {
    tcp_sniffer::allocator::keep_heap_in_small_pages();
    let cli = match parse_args(std::env::args().skip(1)) {
        Ok(Some(cli)) => cli,
        Ok(None) => return ExitCode::SUCCESS,
        Err((msg, code)) => {
            eprintln!("{msg}");
            return ExitCode::from(code);
        }
    };
    let s = &cli.settings;
    // Live mode: block the stop signals before any thread starts (the outputs start their
    // writer threads), so every thread inherits the mask and only `live`'s sigtimedwait
    // receives them: the stop is always an orderly drain. A thread started earlier would
    // take a SIGINT with the default action and kill the process mid-capture.
    let signals = s.read_file.is_none().then(block_stop_signals);
    let outputs = match build_outputs(s, true) {
        Ok(o) => o,
        Err(e) => {
            eprintln!("tcp-sniffer: {e}");
            return ExitCode::from(2);
        }
    };
    let placement = Placement::from_env();
    log::set_level(s.log_level);
    if let Some(warning) = s.insecure_output_url_warning() {
        log::log(LogLevel::Warn, &warning, &[]);
    }
    if s.read_file.is_none() {
        let signals = signals.unwrap_or_else(block_stop_signals); // set above: live mode
        return live(&cli, outputs, placement, &signals);
    }
    replay(&cli, outputs, placement)
}

/// Replays `--read FILE` to the end (the same run as the library's `readFile`: a panic in
/// any of its threads stops it and is reported, see `tcp_sniffer::fatal`).
fn replay(cli: &Cli, outputs: Vec<Box<dyn Output>>, placement: Option<Placement>) -> ExitCode {
    let mut sniffer = match Sniffer::start(&cli.settings, outputs, placement, Hooks::default()) {
        Ok(sn) => sn,
        Err(e @ StartError::File(_)) => {
            eprintln!("tcp-sniffer: {e}");
            return ExitCode::from(1);
        }
        Err(e) => {
            log::log(
                LogLevel::Error,
                &format!("cannot start the replay: {e}"),
                &[],
            );
            return ExitCode::from(1);
        }
    };
    // The engine has logged the error (with its thread) and stopped the run.
    let result = sniffer.wait();
    let stats = sniffer.stop();
    if cli.print_stats {
        eprintln!("{}", stats.to_json());
    }
    match result {
        Ok(()) if cli.fail_if_nothing_delivered && stats.output.delivered == 0 => {
            log::log(
                LogLevel::Error,
                "nothing was delivered (--fail-if-nothing-delivered)",
                &[
                    ("messages", json!(stats.output.messages)),
                    ("packets", json!(stats.capture.packets)),
                ],
            );
            ExitCode::from(3)
        }
        Ok(()) => ExitCode::SUCCESS,
        Err(_) => ExitCode::from(1),
    }
}

/// Live capture until SIGINT or SIGTERM (or a fatal capture error), then drain.
/// `signals`: SIGINT and SIGTERM, blocked in every thread of the process.
fn live(
    cli: &Cli,
    outputs: Vec<Box<dyn Output>>,
    placement: Option<Placement>,
    signals: &libc::sigset_t,
) -> ExitCode {
    let s = &cli.settings;
    let sniffer = match Sniffer::start(s, outputs, placement.clone(), Hooks::default()) {
        Ok(sn) => sn,
        Err(e) => {
            log::log(LogLevel::Error, &format!("cannot start capture: {e}"), &[]);
            return ExitCode::from(1);
        }
    };
    let info = sniffer.info().clone();
    log::log(
        LogLevel::Info,
        "capturing",
        &[
            ("interface", json!(info.source)),
            ("ports", json!(s.ports)),
            ("backend", json!(info.backend)),
            ("workers", json!(info.workers)),
            ("fallbackReason", json!(info.fallback_reason)),
            (
                "pod",
                json!(placement
                    .as_ref()
                    .map(|p| json!({"name": p.name, "namespace": p.namespace, "node": p.node}))),
            ),
        ],
    );
    let mut signal = None;
    while signal.is_none() && !sniffer.is_finished() {
        signal = wait_signal(signals, std::time::Duration::from_millis(200));
    }
    let fatal = sniffer.fatal_error();
    log::log(
        LogLevel::Info,
        "stopping: flushing connections and draining outputs",
        &[("signal", json!(signal.map(signal_name)))],
    );
    let stats = sniffer.stop();
    if cli.print_stats {
        eprintln!("{}", stats.to_json());
    }
    if fatal.is_some() {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    }
}

fn block_stop_signals() -> libc::sigset_t {
    // SAFETY: plain libc signal-set manipulation on a local set.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigaddset(&mut set, libc::SIGINT);
        libc::sigaddset(&mut set, libc::SIGTERM);
        libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut());
        set
    }
}

fn wait_signal(set: &libc::sigset_t, timeout: std::time::Duration) -> Option<libc::c_int> {
    let ts = libc::timespec {
        tv_sec: timeout.as_secs() as libc::time_t,
        tv_nsec: timeout.subsec_nanos() as libc::c_long,
    };
    // SAFETY: `set` is a valid signal set; a null siginfo pointer is allowed.
    let sig = unsafe { libc::sigtimedwait(set, std::ptr::null_mut(), &ts) };
    (sig > 0).then_some(sig)
}

fn signal_name(sig: libc::c_int) -> &'static str {
    match sig {
        libc::SIGINT => "SIGINT",
        libc::SIGTERM => "SIGTERM",
        _ => "signal",
    }
}
