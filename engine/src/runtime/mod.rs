//! A running sniffer: the lifecycle of capture threads, workers and the output stage.
//!
//! This module is the lifecycle (start, stop, wait, the fatal-error path); `live.rs` holds
//! live capture (the one worker loop over a packet source, the libpcap reader) and
//! `output.rs` the output stage.
//!
//! [`Sniffer::start`] returns once capture is running (or fails with the reason); [`Sniffer::stop`]
//! stops capture, flushes what the connections hold (unfinished messages come out
//! `incomplete`), drains the outputs within their deadline and returns the final counters.
//! The CLI's live mode and the Node addon both drive this type.
//!
//! Threads and who owns what:
//!
//! ```text
//!  AF_PACKET: ring k ─► worker k   (one thread each; the kernel's fanout shards)
//!  libpcap:   reader ─► batches by flow hash ─► worker k   (bounded queues, try_send;
//!             with one worker, the worker reads the handle itself)
//!  file:      one worker reads it all; several share one reading of it, each taking
//!             its shard's records (see pipeline::run_file, capture::shared_file);
//!             each worker hands its batches to the outputs itself
//!                    worker k ─► JSON batches ─► output stage ─► outputs
//! ```
//!
//! Every worker, live or file, runs the same loop (`pipeline::worker_loop`) over a
//! `capture::source::PacketSource`; live sources shed when behind, a file waits.
//!
//! Shutdown, in order (every field that takes part is in `Shared`):
//! 1. `stop` is set; capture threads notice within one poll timeout (≤ 50 ms) and take
//!    what the kernel already holds (`StopDrain`: blocks retire within 20 ms, so a
//!    response sent just before `stop` is still seen), at most `STOP_DRAIN_LIMIT`;
//! 2. each worker flushes its connections and sends its last messages, then drops its
//!    sender to the output stage;
//! 3. when every sender is gone, the output stage closes the outputs (each drains within
//!    `outputDrainTimeoutMs`) and publishes their final counters;
//! 4. `stop()` joins the threads and returns the merged counters.
//!
//! Overload never blocks capture: a full worker queue (libpcap) or a full output-stage
//! queue first holds the batch back and adds to it (bounded: `MAX_HELD_PACKET_BYTES`,
//! `MAX_HELD_MESSAGES`), so a moment of jitter costs nothing; past the bound the batch is
//! dropped and counted (`capture.queue_drops`, `output.dropped_queue_full`).
//! A fatal capture error (interface removed) is reported through [`Hooks::on_error`] and
//! stops the sniffer as `stop()` would.
//!
//! No silent death: every thread here is started by one helper (`spawn`, over
//! [`fatal::spawn`]) that catches a panic. The first panic (or capture error) is the run's
//! [`FatalError`] (`Shared::fatal`): it is logged, reported through [`Hooks::on_error`],
//! and sets `stop`, so the other threads end as they would on `stop()` (workers flush
//! their connections, the output stage drains what is queued within the drain deadline)
//! and nothing waits for the dead thread: a dead worker's sender is dropped as it unwinds,
//! a dead libpcap reader's queues close, a dead output stage's queue closes (workers then
//! count what they cannot hand over). A panic in an output's own thread (the stdout writer,
//! a URL sender) is reported by that output ([`Output::failure`]); the output stage, or the
//! replay, turns it into the run's fatal error the same way. [`Sniffer::wait`] and
//! [`Sniffer::fatal_error`] return it.

mod live;
mod output;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use serde_json::json;

use crate::capture::CaptureError;
use crate::config::{LogLevel, Settings};
use crate::fatal::{self, FatalError, ThreadPanic};
use crate::message::Placement;
use crate::output::log::log;
use crate::output::Output;
use crate::pipeline::{run_file_observed, RunError};
use crate::stats::{OutputStats, Stats};

/// The fatal-error callback of [`Hooks`].
pub type ErrorHook = Box<dyn Fn(&FatalError) + Send + Sync>;

/// Callbacks into the embedding program (the Node addon's events; the CLI's exit).
#[derive(Default)]
pub struct Hooks {
    /// A fatal error stopped capture: a capture error, or a panic in an engine thread
    /// (called once, from a sniffer thread).
    pub on_error: Option<ErrorHook>,
    /// Replaying a file finished and every message was handed to the outputs
    /// (called once, from a sniffer thread, after the outputs were closed).
    pub on_end: Option<Box<dyn Fn() + Send + Sync>>,
}

/// The sniffer could not start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StartError {
    /// Live capture could not be set up.
    #[error(transparent)]
    Capture(#[from] CaptureError),
    /// The capture file could not be opened.
    #[error(transparent)]
    File(#[from] RunError),
    /// A thread could not be started.
    #[error("cannot start a sniffer thread: {0}")]
    Spawn(#[source] std::io::Error),
    /// `metricsAddr` could not be served (address in use, no permission).
    #[error(transparent)]
    Metrics(#[from] crate::metrics::MetricsError),
}

/// What `start` set up (for the startup log line and the tests).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StartInfo {
    /// `"af_packet"`, `"pcap"` or `"file"`.
    pub backend: &'static str,
    /// Worker threads.
    pub workers: usize,
    /// The interface, or the file.
    pub source: String,
    /// Why `auto` fell back from AF_PACKET to libpcap, if it did.
    pub fallback_reason: Option<String>,
}

/// State shared by the handle and the threads.
struct Shared {
    /// Set by `stop()` or a fatal error; every capture loop checks it.
    stop: AtomicBool,
    /// Latest counters of each worker (index = worker number).
    workers: Mutex<Vec<Stats>>,
    /// Latest counters of the output stage.
    output: Mutex<OutputStats>,
    /// `GET /metrics` when `metricsAddr` is set (stopped when the sniffer is dropped).
    metrics: Mutex<Option<crate::metrics::MetricsServer>>,
    /// Set when every thread has finished (file replay done, or stopped).
    finished: AtomicBool,
    /// The first fatal error, if any (set once, by `fail`; `fail` also sets `stop`).
    fatal: Mutex<Option<FatalError>>,
    hooks: Hooks,
}

impl Shared {
    /// The counters so far: every worker's, plus the output stage's.
    fn snapshot(&self) -> Stats {
        let mut total = Stats::default();
        for s in self
            .workers
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
        {
            total.merge(s);
        }
        // Workers count what they could not hand to the output stage; the stage counts the rest.
        total
            .output
            .merge(&self.output.lock().unwrap_or_else(|e| e.into_inner()));
        total
    }

    fn publish(&self, worker: usize, stats: Stats) {
        let mut all = self.workers.lock().unwrap_or_else(|e| e.into_inner());
        if all.len() <= worker {
            all.resize_with(worker + 1, Stats::default);
        }
        all[worker] = stats;
    }

    /// Records the run's fatal error (the first one wins), stops every thread and reports it.
    fn fail(&self, err: FatalError) {
        let message = match &err {
            FatalError::Capture(_) => "capture failed; stopping",
            FatalError::Panic(_) => "internal error; stopping",
        };
        log(
            LogLevel::Error,
            message,
            &[("error", json!(err.detail())), ("code", json!(err.code()))],
        );
        let first = {
            let mut f = self.fatal.lock().unwrap_or_else(|e| e.into_inner());
            let first = f.is_none();
            if first {
                *f = Some(err.clone());
            }
            first
        };
        self.stop.store(true, Ordering::SeqCst);
        if first {
            if let Some(cb) = &self.hooks.on_error {
                cb(&err);
            }
        }
    }

    /// Whether the run already has a fatal error.
    fn failed(&self) -> bool {
        self.fatal
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .is_some()
    }
}

impl crate::pipeline::RunControl for Shared {
    fn stopping(&self) -> bool {
        self.stop.load(Ordering::Relaxed)
    }

    fn publish(&self, k: usize, stats: Stats) {
        Shared::publish(self, k, stats);
    }

    fn fail_capture(&self, err: &CaptureError) {
        self.fail(FatalError::Capture(err.to_string()));
    }
}

/// A running sniffer. Dropping it stops it (as [`Sniffer::stop`] does, without the result).
pub struct Sniffer {
    shared: Arc<Shared>,
    capture_threads: Vec<JoinHandle<()>>,
    output_thread: Option<JoinHandle<()>>,
    info: StartInfo,
}

impl Sniffer {
    /// Starts capturing (live, or replaying `settings.read_file`) into `outputs`.
    ///
    /// Returns once packets are being captured. Live capture opens every socket before
    /// returning, so a missing interface or capability is reported here.
    pub fn start(
        settings: &Settings,
        outputs: Vec<Box<dyn Output>>,
        placement: Option<Placement>,
        hooks: Hooks,
    ) -> Result<Sniffer, StartError> {
        let shared = Arc::new(Shared {
            stop: AtomicBool::new(false),
            workers: Mutex::new(Vec::new()),
            output: Mutex::new(OutputStats::default()),
            metrics: Mutex::new(None),
            finished: AtomicBool::new(false),
            fatal: Mutex::new(None),
            hooks,
        });
        fatal::arm();
        if let Some(addr) = &settings.metrics_addr {
            // The server holds a weak reference: it must not keep the counters alive, and
            // `Shared` holds the server (dropped, and so stopped, with the sniffer).
            let weak = Arc::downgrade(&shared);
            let source: crate::metrics::StatsSource =
                Arc::new(move || weak.upgrade().map(|s| s.snapshot()).unwrap_or_default());
            let server = crate::metrics::MetricsServer::start(addr, source)?;
            *shared.metrics.lock().unwrap_or_else(|e| e.into_inner()) = Some(server);
        }
        if let Some(path) = settings.read_file.clone() {
            return Self::start_file(settings, path, outputs, placement, shared);
        }
        let started = live::start(settings, outputs, placement, &shared)?;
        Ok(Sniffer {
            shared,
            capture_threads: started.capture_threads,
            output_thread: Some(started.output_thread),
            info: started.info,
        })
    }

    fn start_file(
        settings: &Settings,
        path: String,
        mut outputs: Vec<Box<dyn Output>>,
        placement: Option<Placement>,
        shared: Arc<Shared>,
    ) -> Result<Sniffer, StartError> {
        // Open it here so a missing or unreadable file fails `start`, not a thread.
        crate::capture::file::CaptureFile::open(&path).map_err(RunError::from)?;
        let workers = settings.workers.unwrap_or(1).max(1);
        let settings = settings.clone();
        let thread = spawn("tcp-sniffer-replay", &shared, {
            let shared = shared.clone();
            let path = path.clone();
            move || {
                // Counters while it runs: each worker's in its slot, the outputs' in the
                // slot after them (replaced by the final totals below).
                let progress = |slot: usize, s: Stats| {
                    if slot == workers {
                        *shared.output.lock().unwrap_or_else(|e| e.into_inner()) = s.output;
                    } else {
                        shared.publish(slot, s);
                    }
                };
                // A panic of this thread's own worker (one worker replays inline) is caught
                // here, so the outputs are still drained; the replay's other threads and the
                // outputs' threads come back as `RunError::Panicked` (outputs closed).
                let result = fatal::catch("tcp-sniffer-replay", || {
                    run_file_observed(
                        &settings,
                        &path,
                        &mut outputs,
                        placement.as_ref(),
                        &shared.stop,
                        &progress,
                    )
                });
                let result = match result {
                    Ok(r) => r,
                    Err(p) => {
                        shared.fail(FatalError::Panic(p));
                        let mut total = OutputStats::default();
                        for o in outputs.iter_mut() {
                            o.close();
                            total.merge(&o.stats());
                        }
                        total.messages = shared
                            .output
                            .lock()
                            .unwrap_or_else(|e| e.into_inner())
                            .messages;
                        *shared.output.lock().unwrap_or_else(|e| e.into_inner()) = total;
                        shared.finished.store(true, Ordering::SeqCst);
                        return;
                    }
                };
                // The totals replace what the workers reported on the way (in one step: a
                // reader never sees the counters go back).
                let publish = |mut s: Stats| {
                    *shared.output.lock().unwrap_or_else(|e| e.into_inner()) = s.output.clone();
                    s.output = OutputStats::default();
                    *shared.workers.lock().unwrap_or_else(|e| e.into_inner()) = vec![s];
                };
                match result {
                    Ok(summary) => {
                        if let Some(why) = &summary.damaged {
                            log(
                                LogLevel::Warn,
                                "capture file is damaged; every packet before the damage was processed",
                                &[("file", json!(path)), ("reason", json!(why))],
                            );
                        }
                        publish(summary.stats);
                    }
                    Err(RunError::Panicked { panic, stats }) => {
                        publish(*stats);
                        shared.fail(FatalError::Panic(panic));
                    }
                    Err(e) => shared.fail(FatalError::Capture(e.to_string())),
                }
                shared.finished.store(true, Ordering::SeqCst);
                if !shared.stop.load(Ordering::SeqCst) {
                    if let Some(cb) = &shared.hooks.on_end {
                        cb();
                    }
                }
            }
        })?;
        Ok(Sniffer {
            shared,
            capture_threads: vec![thread],
            output_thread: None,
            info: StartInfo {
                backend: "file",
                workers,
                source: path,
                fallback_reason: None,
            },
        })
    }

    /// What `start` set up.
    pub fn info(&self) -> &StartInfo {
        &self.info
    }

    /// The counters so far (workers publish every 250 ms; exact after `stop`).
    pub fn stats(&self) -> Stats {
        self.shared.snapshot()
    }

    /// The address `/metrics` is served on, when `metricsAddr` is set.
    pub fn metrics_addr(&self) -> Option<std::net::SocketAddr> {
        self.shared
            .metrics
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .as_ref()
            .map(|m| m.local_addr())
    }

    /// True once every thread has finished: a replayed file is done, or capture stopped.
    pub fn is_finished(&self) -> bool {
        self.shared.finished.load(Ordering::SeqCst)
            || (self.capture_threads.iter().all(|t| t.is_finished())
                && self.output_thread.as_ref().is_none_or(|t| t.is_finished()))
    }

    /// The fatal error that stopped capture (a capture error or a panic), if one did.
    pub fn fatal_error(&self) -> Option<FatalError> {
        self.shared
            .fatal
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Waits until every thread has finished — a replayed file is done, or a fatal error
    /// stopped the run (live capture ends only that way; use [`Sniffer::stop`] to end it) —
    /// and returns the fatal error, if there was one. [`Sniffer::stats`] is final afterwards.
    pub fn wait(&mut self) -> Result<(), FatalError> {
        self.join_all();
        self.fatal_error().map_or(Ok(()), Err)
    }

    /// Stops capture, flushes the connections, drains the outputs, returns the final counters.
    pub fn stop(mut self) -> Stats {
        self.shutdown();
        self.stats()
    }

    fn shutdown(&mut self) {
        self.shared.stop.store(true, Ordering::SeqCst);
        self.join_all();
    }

    /// Joins every thread. Their panics were caught inside them ([`fatal::spawn`]); a join
    /// error means reporting one panicked too, and is recorded the same way.
    fn join_all(&mut self) {
        let threads = self
            .capture_threads
            .drain(..)
            .chain(self.output_thread.take());
        for t in threads {
            let name = t.thread().name().unwrap_or("tcp-sniffer").to_string();
            if let Err(payload) = t.join() {
                let p = ThreadPanic::from_payload(&name, payload.as_ref());
                self.shared.fail(FatalError::Panic(p));
            }
        }
        self.shared.finished.store(true, Ordering::SeqCst);
    }
}

impl Drop for Sniffer {
    fn drop(&mut self) {
        self.shutdown();
    }
}

/// Starts every thread of a running sniffer: a panic in it becomes the run's fatal error
/// (logged, reported, and the rest stopped; see the module docs).
fn spawn(
    name: &str,
    shared: &Arc<Shared>,
    f: impl FnOnce() + Send + 'static,
) -> Result<JoinHandle<()>, StartError> {
    let shared = shared.clone();
    fatal::spawn(name, f, move |p| shared.fail(FatalError::Panic(p))).map_err(StartError::Spawn)
}
