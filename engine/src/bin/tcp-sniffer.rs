//! `tcp-sniffer`: the command-line face of the engine.
//!
//! Glue only: parse flags into the engine's one settings validation, pick the
//! outputs, run, print `--stats`. Exit codes: 0 done, 1 capture/file failure or an
//! internal error (a panic in an engine thread, logged as an error line naming the
//! thread), 2 invalid settings.

use std::process::ExitCode;

/// The binary (not the library: the Node addon is loaded with `dlopen`, where mimalloc's
/// static TLS is a problem) uses mimalloc: messages are built on worker threads and freed on
/// output threads, a pattern glibc's malloc handles poorly (it was a quarter of replay time).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

use serde_json::json;
use tcp_sniffer::config::LogLevel;
use tcp_sniffer::config::{RawValue, Settings, SettingsBuilder, Surface};
use tcp_sniffer::message::Placement;
use tcp_sniffer::output::{build_outputs, log, Output};
use tcp_sniffer::runtime::{Hooks, Sniffer, StartError};

const USAGE: &str = "\
tcp-sniffer: show the HTTP/1.x requests and responses on the given ports, as JSON lines.

USAGE:
    tcp-sniffer --read FILE --ports PORTS [OPTIONS]      replay a pcap/pcapng file
    tcp-sniffer -i IFACE --ports PORTS [OPTIONS]         capture live

OPTIONS:
    -p, --ports LIST              server ports, comma-separated (required), e.g. 80,8080
    -r, --read FILE               replay a pcap or pcapng file instead of capturing
    -i, --interface NAME          interface to capture on, or 'any' (default: any)
        --backend auto|af_packet|pcap
                                  live capture backend (default: auto)
        --workers N               worker threads (default: 1 for files, CPUs for live)
        --stdout                  write JSON lines to stdout (default when no --output-url)
        --output-url URL          POST each message to URL (https://, or http:// to a loopback
                                  host; other http:// URLs are accepted with a warning unless
                                  NODE_ENV=production); the bearer token is read from the
                                  OUTPUT_URL_AUTH_TOKEN environment variable
        --output-format json|otlp json: the messages (NDJSON when batched); otlp: OTLP/HTTP
                                  protobuf traces, one span per exchange (URL e.g.
                                  https://collector:4318/v1/traces) (default: json)
        --metrics-addr HOST:PORT  serve Prometheus metrics at http://HOST:PORT/metrics
                                  (default: off)
        --allow-insecure-output-url[=false]
                                  accept an http:// output URL to a host that is not loopback
                                  (default: true, with a warning; false under NODE_ENV=production)
        --sample-rate R           observe this fraction of connections, 0 < R <= 1 (default: 1)
        --max-body-size BYTES     body bytes kept per message (default: 65536; 0 = none)
        --stdout-bodies[=false]   messages on stdout carry their body (default: true; with
                                  =false they carry body \"\" and their bodySize)
        --max-connections N       connections tracked at once (default: 10000)
        --idle-timeout-ms MS      evict connections idle this long (default: 60000, min 1000)
        --redact-headers LIST     header names whose values are replaced by [REDACTED], added
                                  to the defaults: authorization, proxy-authorization, cookie,
                                  set-cookie, x-api-key, x-auth-token ('none' first drops them)
        --redact-query-params LIST
                                  query parameters whose values in url become [REDACTED], added
                                  to the defaults: access_token, refresh_token, id_token, token,
                                  api_key, apikey, password, passwd, secret, client_secret,
                                  signature, sig, x-amz-signature, x-amz-credential,
                                  x-amz-security-token ('none' first drops them)
        --redact-body-fields LIST JSON keys (any depth) and form fields whose values become
                                  \"[REDACTED]\", added to the defaults: password, passwd, secret,
                                  client_secret, token, access_token, refresh_token, api_key,
                                  apikey, credit_card, card_number, cvv, ssn ('none' first drops them)
        --log-level LEVEL         error, warn, info or debug (default: info)
        --output-batch-size N, --output-batch-wait-ms MS, --output-concurrency N,
        --output-queue-size N, --output-drain-timeout-ms MS, --output-retry-base-ms MS
                                  output URL tuning (see README)
        --stats                   print the final counters as JSON on stderr
        --fail-if-nothing-delivered
                                  with --read: exit 3 when no message was delivered (an
                                  empty capture, wrong ports, or an output that took nothing)
    -h, --help                    this text
    -V, --version                 the version

Messages go to stdout, one JSON object per line; logs and --stats go to stderr.
Exit codes: 0 done; 1 capture or file failure, or an internal error (a panic in an
engine thread: logged as an error line that names the thread); 2 invalid settings;
3 nothing delivered (only with --fail-if-nothing-delivered).
";

/// What the command line asks for besides the engine's settings.
struct Cli {
    settings: Settings,
    print_stats: bool,
    /// `--fail-if-nothing-delivered`: a replay that delivered no message exits 3.
    fail_if_nothing_delivered: bool,
}

fn parse_args(args: impl Iterator<Item = String>) -> Result<Option<Cli>, String> {
    let production = std::env::var("NODE_ENV")
        .map(|v| v == "production")
        .unwrap_or(false);
    let mut b = SettingsBuilder::new(Surface::Cli, production);
    let mut print_stats = false;
    let mut fail_if_nothing_delivered = false;
    let mut args = args.peekable();
    while let Some(arg) = args.next() {
        let (flag, inline) = match arg.split_once('=') {
            Some((f, v)) if f.starts_with("--") => (f.to_string(), Some(v.to_string())),
            _ => (arg.clone(), None),
        };
        let flag = match flag.as_str() {
            "-h" | "--help" => {
                print!("{USAGE}");
                return Ok(None);
            }
            "-V" | "--version" => {
                println!("tcp-sniffer {}", env!("CARGO_PKG_VERSION"));
                return Ok(None);
            }
            "--stats" => {
                print_stats = true;
                continue;
            }
            "--fail-if-nothing-delivered" => {
                fail_if_nothing_delivered = true;
                continue;
            }
            // Boolean flags: bare means true; `--flag=false` says false.
            f @ ("--stdout" | "--stdout-bodies" | "--allow-insecure-output-url")
                if inline.is_none() =>
            {
                b.set(f, RawValue::Text("true".into()))
                    .map_err(|e| e.to_string())?;
                continue;
            }
            "-p" => "--ports".to_string(),
            "-r" => "--read".to_string(),
            "-i" => "--interface".to_string(),
            f if f.starts_with('-') => f.to_string(),
            other => {
                return Err(format!(
                    "unexpected argument {other:?}; see tcp-sniffer --help"
                ))
            }
        };
        let value = match inline {
            Some(v) => v,
            None => args
                .next()
                .ok_or_else(|| format!("{flag} needs a value; see tcp-sniffer --help"))?,
        };
        b.set(&flag, RawValue::Text(value))
            .map_err(|e| e.to_string())?;
    }
    if let Ok(token) = std::env::var("OUTPUT_URL_AUTH_TOKEN") {
        b.set_as(Surface::Env, "OUTPUT_URL_AUTH_TOKEN", RawValue::Text(token))
            .map_err(|e| e.to_string())?;
    }
    let settings = b.build().map_err(|e| e.to_string())?;
    if fail_if_nothing_delivered && settings.read_file.is_none() {
        return Err("--fail-if-nothing-delivered goes with --read FILE".into());
    }
    Ok(Some(Cli {
        settings,
        print_stats,
        fail_if_nothing_delivered,
    }))
}

fn main() -> ExitCode {
    let cli = match parse_args(std::env::args().skip(1)) {
        Ok(Some(cli)) => cli,
        Ok(None) => return ExitCode::SUCCESS,
        Err(msg) => {
            eprintln!("tcp-sniffer: {msg}");
            return ExitCode::from(2);
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
