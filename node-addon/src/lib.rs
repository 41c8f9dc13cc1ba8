//! # tcp-sniffer-node
//!
//! The native half of the npm package `tcp-sniffer`: a thin Neon layer over the engine.
//! It converts between JavaScript and the engine's types and owns the Neon `Channel`;
//! capture, reassembly, HTTP and the stdout/URL outputs all live in the engine.
//!
//! Exported functions (raw, untyped; `ts/index.ts` wraps them):
//!
//! | function | what it does |
//! |---|---|
//! | `validate(json, surface, production)` | the engine's validation only; returns the normalized settings as JSON (never the token) or throws the engine's error |
//! | `create(json, surface, production, sidecar)` | validates and returns a handle; throws the engine's error text naming the key/variable |
//! | `start(handle, deliver?, onEvent)` | `Promise<string>` (start info as JSON), resolved once capture runs; `Sniffer::start` runs on its own thread |
//! | `stop(handle)` | `Promise<string>` (final stats as JSON), resolved after the drain; runs on its own thread |
//! | `stats(handle)` | the counters so far, as JSON |
//! | `log(level, message, fieldsJson)` | one line through the engine's JSON logger on stderr |
//! | `setLogLevel(level)` | the engine logger's process-wide level |
//! | `envNames()` | the environment variables that are settings |
//! | `setPaused(handle, paused)` | a file replay waits while paused (JavaScript's async iterator is full) |
//!
//! `surface` is `"library"` (camelCase keys, JSON values) or `"env"` (env var names,
//! text values; empty values count as unset). `sidecar` picks the outputs' default:
//! stdout when no output URL is set. `deliver(chunks)` receives each batch in one
//! crossing, as JSON arrays of messages of at most about 48 KiB each (see `js_output`); `onEvent("error", text, code)` and `onEvent("end")`
//! carry the engine's hooks (`code`: `ERR_TCP_SNIFFER_CAPTURE`, or
//! `ERR_TCP_SNIFFER_INTERNAL` when an engine thread panicked; see `tcp_sniffer::fatal`).
//! The start and stop threads run under `fatal::catch` too: a panic there rejects the
//! promise (message prefixed `internal error:`) instead of leaving it pending.
//!
//! Every error this module throws or rejects with carries a stable `code` property (the
//! table below; `ts/index.ts` turns them into `SnifferError`s, README "Errors" documents
//! them for users). Codes are public API: add new ones, never rename or reuse one.
//!
//! | code | where | meaning |
//! |---|---|---|
//! | `ERR_TCP_SNIFFER_CONFIG` | `validate`, `create` | the settings are invalid (the engine's text names the key) |
//! | `ERR_TCP_SNIFFER_PERMISSION` | `start` | live capture needs `CAP_NET_RAW` (or root) |
//! | `ERR_TCP_SNIFFER_CAPTURE` | `start`, `onEvent("error")` | live capture could not start, or failed while running |
//! | `ERR_TCP_SNIFFER_FILE` | `start` | the capture file to replay cannot be opened or is not a pcap/pcapng file |
//! | `ERR_TCP_SNIFFER_OUTPUT` | `start` | an output (stdout, output URL) could not be set up |
//! | `ERR_TCP_SNIFFER_STATE` | `start`, `stop` | the call does not fit the sniffer's lifecycle (started twice, stopped while starting) |
//! | `ERR_TCP_SNIFFER_SYSTEM` | `start`, `stop` | the operating system refused a thread |
//! | `ERR_TCP_SNIFFER_INTERNAL` | `start`, `stop`, `onEvent("error")` | an engine thread panicked: a bug |

mod js_output;

/// The addon's Rust allocations (messages built on worker threads and freed on the output
/// thread, header lists, batches) go to mimalloc, as the binaries' do; Node's own stay
/// with its allocator. glibc's malloc, the default in a cdylib, was about a fifth of all
/// CPU samples of a 100 MB replay into JavaScript (`_int_malloc`, `_int_free`,
/// `malloc_consolidate`). The engine builds mimalloc with local-dynamic TLS, which a
/// library loaded by `dlopen` needs (see `tcp_sniffer::allocator`).
#[global_allocator]
static GLOBAL: tcp_sniffer::allocator::MiMalloc = tcp_sniffer::allocator::MiMalloc;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use neon::prelude::*;
use serde_json::{json, Map, Value};
use tcp_sniffer::capture::CaptureError;
use tcp_sniffer::config::{LogLevel, RawValue, Settings, SettingsBuilder, Surface};
use tcp_sniffer::fatal::{self, FatalError};
use tcp_sniffer::fatal::{CODE_CAPTURE, CODE_INTERNAL};
use tcp_sniffer::message::Placement;
use tcp_sniffer::output::http_post::HttpOutputConfig;
use tcp_sniffer::output::OutputError;
use tcp_sniffer::output::{build_outputs, log, Output};
use tcp_sniffer::pipeline::RunError;
use tcp_sniffer::runtime::{Hooks, Sniffer, StartError};
use tcp_sniffer::stats::Stats;

use js_output::{JsOutput, JsShared};

/// The settings are invalid.
const CODE_CONFIG: &str = "ERR_TCP_SNIFFER_CONFIG";
/// Live capture lacks a capability.
const CODE_PERMISSION: &str = "ERR_TCP_SNIFFER_PERMISSION";
/// The file to replay cannot be used.
const CODE_FILE: &str = "ERR_TCP_SNIFFER_FILE";
/// An output could not be set up.
const CODE_OUTPUT: &str = "ERR_TCP_SNIFFER_OUTPUT";
/// A lifecycle call out of order.
const CODE_STATE: &str = "ERR_TCP_SNIFFER_STATE";
/// The operating system refused a thread.
const CODE_SYSTEM: &str = "ERR_TCP_SNIFFER_SYSTEM";

/// An error with its stable code, as it crosses into JavaScript.
type Coded = (&'static str, String);

/// The stable code of a start failure (see the table in the module docs).
fn start_error_code(e: &StartError) -> &'static str {
    match e {
        StartError::Capture(CaptureError::MissingCapability { .. }) => CODE_PERMISSION,
        StartError::Capture(_) => CODE_CAPTURE,
        StartError::File(RunError::Panicked { .. }) => CODE_INTERNAL,
        StartError::File(_) => CODE_FILE,
        StartError::Spawn(_) => CODE_SYSTEM,
        // `StartError` is non-exhaustive: a new kind is still a start failure of capture.
        _ => CODE_CAPTURE,
    }
}

/// The stable code of an output that could not be set up.
fn output_error_code(e: &OutputError) -> &'static str {
    match e {
        OutputError::Spawn(_) => CODE_SYSTEM,
        _ => CODE_OUTPUT,
    }
}

/// A JavaScript `Error` with `message` and a `code` property.
fn coded_error<'a, C: Context<'a>>(
    cx: &mut C,
    code: &str,
    message: impl AsRef<str>,
) -> JsResult<'a, JsError> {
    let err = cx.error(message)?;
    let code = cx.string(code);
    err.set(cx, "code", code)?;
    Ok(err)
}

/// Throws a JavaScript `Error` with `message` and a `code` property.
fn throw_coded<'a, C: Context<'a>, T>(
    cx: &mut C,
    code: &str,
    message: impl AsRef<str>,
) -> NeonResult<T> {
    let err = coded_error(cx, code, message)?;
    cx.throw(err)
}

/// Rejects `deferred` with a coded error.
fn reject_coded<'a, C: Context<'a>>(
    cx: &mut C,
    deferred: neon::types::Deferred,
    code: &str,
    message: impl AsRef<str>,
) -> NeonResult<()> {
    let err = coded_error(cx, code, message)?;
    deferred.reject(cx, err);
    Ok(())
}

/// Where a sniffer is in its lifecycle.
enum Phase {
    /// Created, not started.
    Idle,
    /// `start` is running on its thread.
    Starting,
    /// Capturing (or replaying).
    Running(Sniffer),
    /// `stop` is draining on its thread.
    Stopping,
    /// Stopped (or failed to start); the final counters.
    Stopped(Box<Stats>),
}

/// What a JavaScript handle owns. Shared with the start/stop threads.
struct State {
    settings: Settings,
    sidecar: bool,
    phase: Phase,
    /// The JavaScript output's counters (kept after the output is gone).
    js: Option<Arc<JsShared>>,
}

/// The JavaScript handle: a box around the shared state.
struct Handle(Arc<Mutex<State>>);

impl Finalize for Handle {
    fn finalize<'a, C: Context<'a>>(self, _cx: &mut C) {
        // Garbage-collected while running: stop off the JavaScript thread (the drain
        // may need this thread), without waiting for it.
        let running = {
            let mut st = self.0.lock().unwrap_or_else(|e| e.into_inner());
            if let Some(js) = &st.js {
                js.set_paused(false);
            }
            match std::mem::replace(&mut st.phase, Phase::Stopping) {
                Phase::Running(s) => Some(s),
                other => {
                    st.phase = other;
                    None
                }
            }
        };
        if let Some(s) = running {
            // Nobody is left to tell: a panic here is only logged (by `fatal::spawn`).
            let _ = fatal::spawn("tcp-sniffer-finalize", move || drop(s), |_| {});
        }
    }
}

fn parse_surface(cx: &mut FunctionContext, s: &str) -> NeonResult<Surface> {
    match s {
        "library" => Ok(Surface::Library),
        "env" => Ok(Surface::Env),
        other => cx.throw_type_error(format!("unknown surface {other:?}")),
    }
}

/// Validates `config` (a JSON object) on `surface` through the engine, and checks
/// what the outputs need (the CA file). The error text is the engine's.
fn build_settings(config: &str, surface: Surface, production: bool) -> Result<Settings, String> {
    let value: Value =
        serde_json::from_str(config).map_err(|e| format!("invalid configuration: {e}"))?;
    let Value::Object(map) = value else {
        return Err("invalid configuration: expected an object".into());
    };
    let mut b = SettingsBuilder::new(surface, production);
    for (key, v) in map {
        let raw = match (surface, v) {
            (_, Value::Null) => continue,
            (Surface::Library, v) => RawValue::Json(v),
            (_, Value::String(t)) if t.trim().is_empty() => continue,
            (_, Value::String(t)) => RawValue::Text(t),
            (_, other) => RawValue::Text(other.to_string()),
        };
        b.set(&key, raw).map_err(|e| e.to_string())?;
    }
    let settings = b.build().map_err(|e| e.to_string())?;
    HttpOutputConfig::from_settings(&settings).map_err(|e| e.to_string())?;
    Ok(settings)
}

/// The normalized settings as library keys (serde, by the table's key names). The token is
/// never included, only whether it is set (`outputUrlAuthTokenSet`).
fn settings_json(s: &Settings) -> String {
    serde_json::to_string(s).unwrap_or_default()
}

/// `validate(json, surface, production) -> string`
fn validate(mut cx: FunctionContext) -> JsResult<JsString> {
    let config = cx.argument::<JsString>(0)?.value(&mut cx);
    let surface = cx.argument::<JsString>(1)?.value(&mut cx);
    let surface = parse_surface(&mut cx, &surface)?;
    let production = cx.argument::<JsBoolean>(2)?.value(&mut cx);
    match build_settings(&config, surface, production) {
        Ok(s) => Ok(cx.string(settings_json(&s))),
        Err(e) => throw_coded(&mut cx, CODE_CONFIG, e),
    }
}

/// `create(json, surface, production, sidecar, readFile?) -> handle`
///
/// `readFile` overrides the file to replay (the sidecar's `--read` flag; the env
/// surface has no such variable).
fn create(mut cx: FunctionContext) -> JsResult<JsBox<Handle>> {
    let config = cx.argument::<JsString>(0)?.value(&mut cx);
    let surface = cx.argument::<JsString>(1)?.value(&mut cx);
    let surface = parse_surface(&mut cx, &surface)?;
    let production = cx.argument::<JsBoolean>(2)?.value(&mut cx);
    let sidecar = cx.argument::<JsBoolean>(3)?.value(&mut cx);
    let read_file = match cx.argument_opt(4) {
        Some(v) if v.is_a::<JsString, _>(&mut cx) => {
            Some(v.downcast_or_throw::<JsString, _>(&mut cx)?.value(&mut cx))
        }
        _ => None,
    };
    let mut settings = match build_settings(&config, surface, production) {
        Ok(s) => s,
        Err(e) => return throw_coded(&mut cx, CODE_CONFIG, e),
    };
    if let Some(path) = read_file.filter(|p| !p.is_empty()) {
        settings.read_file = Some(path);
    }
    if let Some(warning) = settings.insecure_output_url_warning() {
        log::log(LogLevel::Warn, &warning, &[]);
    }
    Ok(cx.boxed(Handle(Arc::new(Mutex::new(State {
        settings,
        sidecar,
        phase: Phase::Idle,
        js: None,
    })))))
}

fn lock(h: &Handle) -> std::sync::MutexGuard<'_, State> {
    h.0.lock().unwrap_or_else(|e| e.into_inner())
}

/// `start(handle, deliver?, onEvent) -> Promise<string>`
fn start(mut cx: FunctionContext) -> JsResult<JsPromise> {
    let handle = cx.argument::<JsBox<Handle>>(0)?;
    let deliver = match cx.argument_opt(1) {
        Some(v) if v.is_a::<JsFunction, _>(&mut cx) => {
            Some(v.downcast_or_throw::<JsFunction, _>(&mut cx)?.root(&mut cx))
        }
        _ => None,
    };
    let on_event = Arc::new(cx.argument::<JsFunction>(2)?.root(&mut cx));
    let (deferred, promise) = cx.promise();
    let channel = cx.channel();

    let state = handle.0.clone();
    let (settings, sidecar) = {
        let mut st = lock(&handle);
        if !matches!(st.phase, Phase::Idle) {
            let what = if matches!(st.phase, Phase::Stopping | Phase::Stopped(_)) {
                "the sniffer was stopped; create a new one with createSniffer()"
            } else {
                "the sniffer was already started"
            };
            drop(st);
            reject_coded(&mut cx, deferred, CODE_STATE, what)?;
            return Ok(promise);
        }
        st.phase = Phase::Starting;
        (st.settings.clone(), st.sidecar)
    };
    log::set_level(settings.log_level);

    // Outputs: the engine's (stdout, URL), then JavaScript's.
    let mut outputs: Vec<Box<dyn Output>> = match build_outputs(&settings, sidecar) {
        Ok(o) => o,
        Err(e) => {
            lock(&handle).phase = Phase::Stopped(Box::default());
            reject_coded(&mut cx, deferred, output_error_code(&e), e.to_string())?;
            return Ok(promise);
        }
    };
    if let Some(deliver) = deliver {
        let shared = Arc::new(JsShared::default());
        lock(&handle).js = Some(shared.clone());
        outputs.push(Box::new(JsOutput::new(
            cx.channel(),
            deliver,
            shared,
            settings.output_queue_size,
            Duration::from_millis(settings.output_drain_timeout_ms),
        )));
    }

    let hooks = {
        let (ch_err, ch_end) = (cx.channel(), cx.channel());
        let (ev_err, ev_end) = (on_event.clone(), on_event);
        Hooks {
            on_error: Some(Box::new(move |err: &FatalError| {
                let ev = ev_err.clone();
                let (text, code) = (err.detail(), err.code());
                let _ = ch_err.try_send(move |mut cx| {
                    let f = ev.to_inner(&mut cx);
                    let (kind, text, code) = (cx.string("error"), cx.string(text), cx.string(code));
                    f.call_with(&cx).arg(kind).arg(text).arg(code).exec(&mut cx)
                });
            })),
            on_end: Some(Box::new(move || {
                let ev = ev_end.clone();
                let _ = ch_end.try_send(move |mut cx| {
                    let f = ev.to_inner(&mut cx);
                    let kind = cx.string("end");
                    f.call_with(&cx).arg(kind).exec(&mut cx)
                });
            })),
        }
    };

    let spawned = std::thread::Builder::new()
        .name("tcp-sniffer-start".into())
        .spawn(move || {
            let placement = Placement::from_env();
            let result: Result<Sniffer, Coded> = fatal::catch("tcp-sniffer-start", || {
                Sniffer::start(&settings, outputs, placement.clone(), hooks)
                    .map_err(|e| (start_error_code(&e), e.to_string()))
            })
            .unwrap_or_else(|p| Err((CODE_INTERNAL, FatalError::Panic(p).to_string())));
            let outcome = {
                let mut st = state.lock().unwrap_or_else(|e| e.into_inner());
                match result {
                    Ok(sniffer) => {
                        let info = sniffer.info().clone();
                        let metrics = sniffer.metrics_addr().map(|a| a.to_string());
                        st.phase = Phase::Running(sniffer);
                        Ok(json!({
                            "backend": info.backend,
                            "workers": info.workers,
                            "source": info.source,
                            "fallbackReason": info.fallback_reason,
                            "metricsAddr": metrics,
                            "pod": placement.map(|p| json!({
                                "name": p.name, "namespace": p.namespace, "node": p.node
                            })),
                        })
                        .to_string())
                    }
                    Err(e) => {
                        st.phase = Phase::Stopped(Box::default());
                        Err(e)
                    }
                }
            };
            deferred.settle_with(&channel, move |mut cx| match outcome {
                Ok(info) => Ok(cx.string(info).upcast::<JsValue>()),
                Err((code, e)) => throw_coded(&mut cx, code, e),
            });
        });
    if let Err(e) = spawned {
        lock(&handle).phase = Phase::Stopped(Box::default());
        return throw_coded(
            &mut cx,
            CODE_SYSTEM,
            format!("cannot start a sniffer thread: {e}"),
        );
    }
    Ok(promise)
}

/// `stop(handle) -> Promise<string>` (final stats as JSON)
fn stop(mut cx: FunctionContext) -> JsResult<JsPromise> {
    let handle = cx.argument::<JsBox<Handle>>(0)?;
    let (deferred, promise) = cx.promise();
    let state = handle.0.clone();
    let sniffer = {
        let mut st = lock(&handle);
        if let Some(js) = &st.js {
            // A replay waiting for the iterator must notice the stop.
            js.set_paused(false);
        }
        match std::mem::replace(&mut st.phase, Phase::Stopping) {
            Phase::Running(s) => s,
            Phase::Idle => {
                st.phase = Phase::Stopped(Box::default());
                let s = cx.string(stats_json(&Stats::default(), st.js.as_deref()));
                deferred.resolve(&mut cx, s);
                return Ok(promise);
            }
            Phase::Stopped(stats) => {
                let s = cx.string(stats_json(&stats, None));
                st.phase = Phase::Stopped(stats);
                deferred.resolve(&mut cx, s);
                return Ok(promise);
            }
            other @ (Phase::Starting | Phase::Stopping) => {
                let what = if matches!(other, Phase::Starting) {
                    "the sniffer is still starting; await start() first"
                } else {
                    "the sniffer is already stopping"
                };
                st.phase = other;
                drop(st);
                reject_coded(&mut cx, deferred, CODE_STATE, what)?;
                return Ok(promise);
            }
        }
    };
    let channel = cx.channel();
    let spawned = std::thread::Builder::new()
        .name("tcp-sniffer-stop".into())
        .spawn(move || {
            // The engine's threads report their own panics; this catches one in the stop itself.
            let stats = fatal::catch("tcp-sniffer-stop", || sniffer.stop())
                .map_err(|p| FatalError::Panic(p).to_string());
            let text = match &stats {
                Ok(s) => Ok(stats_json(s, None)),
                Err(e) => Err(e.clone()),
            };
            let last = stats.unwrap_or_default();
            state.lock().unwrap_or_else(|e| e.into_inner()).phase = Phase::Stopped(Box::new(last));
            deferred.settle_with(&channel, move |mut cx| match text {
                Ok(text) => Ok(cx.string(text)),
                Err(e) => throw_coded(&mut cx, CODE_INTERNAL, e),
            });
        });
    if let Err(e) = spawned {
        return throw_coded(
            &mut cx,
            CODE_SYSTEM,
            format!("cannot start a sniffer thread: {e}"),
        );
    }
    Ok(promise)
}

/// Stats as JSON. Before the engine has published anything, the JavaScript output's
/// own counters stand in for the output stage's.
fn stats_json(stats: &Stats, js: Option<&JsShared>) -> String {
    match js {
        Some(js) => {
            let mut s = stats.clone();
            s.output.merge(&js.stats());
            s.to_json()
        }
        None => stats.to_json(),
    }
}

/// `stats(handle) -> string`
fn stats(mut cx: FunctionContext) -> JsResult<JsString> {
    let handle = cx.argument::<JsBox<Handle>>(0)?;
    let st = lock(&handle);
    let text = match &st.phase {
        Phase::Running(s) => s.stats().to_json(),
        Phase::Stopped(s) => s.to_json(),
        Phase::Idle | Phase::Starting | Phase::Stopping => Stats::default().to_json(),
    };
    Ok(cx.string(text))
}

/// `setPaused(handle, paused)`: a file replay waits while JavaScript's async iterator is full.
fn set_paused(mut cx: FunctionContext) -> JsResult<JsUndefined> {
    let handle = cx.argument::<JsBox<Handle>>(0)?;
    let paused = cx.argument::<JsBoolean>(1)?.value(&mut cx);
    if let Some(js) = &lock(&handle).js {
        js.set_paused(paused);
    }
    Ok(cx.undefined())
}

/// `log(level, message, fieldsJson?)`: one JSON line on stderr through the engine's logger.
fn js_log(mut cx: FunctionContext) -> JsResult<JsUndefined> {
    let level = cx.argument::<JsString>(0)?.value(&mut cx);
    let level = LogLevel::from_name(&level).unwrap_or(LogLevel::Info);
    let message = cx.argument::<JsString>(1)?.value(&mut cx);
    let fields: Map<String, Value> = match cx.argument_opt(2) {
        Some(v) if v.is_a::<JsString, _>(&mut cx) => {
            let text = v.downcast_or_throw::<JsString, _>(&mut cx)?.value(&mut cx);
            match serde_json::from_str(&text) {
                Ok(Value::Object(m)) => m,
                _ => Map::new(),
            }
        }
        _ => Map::new(),
    };
    let fields: Vec<(&str, Value)> = fields
        .iter()
        .filter(|(k, _)| !matches!(k.as_str(), "timestamp" | "level" | "message"))
        .map(|(k, v)| (k.as_str(), v.clone()))
        .collect();
    log::log(level, &message, &fields);
    Ok(cx.undefined())
}

/// `setLogLevel(level)`: the process-wide log level (the sidecar sets it before its first line).
fn set_log_level(mut cx: FunctionContext) -> JsResult<JsUndefined> {
    let level = cx.argument::<JsString>(0)?.value(&mut cx);
    let level = LogLevel::from_name(&level).unwrap_or(LogLevel::Info);
    log::set_level(level);
    Ok(cx.undefined())
}

/// `envNames() -> string[]`: the environment variables that are settings (the sidecar reads exactly these).
fn env_names(mut cx: FunctionContext) -> JsResult<JsArray> {
    let names: Vec<&str> = tcp_sniffer::config::env_names().collect();
    let arr = cx.empty_array();
    for (i, n) in names.into_iter().enumerate() {
        let s = cx.string(n);
        arr.set(&mut cx, i as u32, s)?;
    }
    Ok(arr)
}

#[neon::main]
fn main(mut cx: ModuleContext) -> NeonResult<()> {
    cx.export_function("validate", validate)?;
    cx.export_function("create", create)?;
    cx.export_function("start", start)?;
    cx.export_function("stop", stop)?;
    cx.export_function("stats", stats)?;
    cx.export_function("log", js_log)?;
    cx.export_function("setLogLevel", set_log_level)?;
    cx.export_function("envNames", env_names)?;
    cx.export_function("setPaused", set_paused)?;
    Ok(())
}
