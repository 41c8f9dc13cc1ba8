//! A running sniffer: the lifecycle of capture threads, workers and the output stage.
//!
//! [`Sniffer::start`] returns once capture is running (or fails with the reason); [`Sniffer::stop`]
//! stops capture, flushes what the connections hold (unfinished messages come out
//! `incomplete`), drains the outputs within their deadline and returns the final counters.
//! The CLI's live mode and the Node addon both drive this type.
//!
//! Threads and who owns what:
//!
//! ```text
//!  AF_PACKET: ring k ─► worker k   (one thread each; the kernel's fanout hash shards)
//!  libpcap:   reader ─► batches by flow hash ─► worker k   (bounded queues, try_send)
//!  file:      each worker reads the file, keeps its shard (see pipeline::run_file)
//!                    worker k ─► JSON batches ─► output stage ─► outputs
//! ```
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

use std::net::IpAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crossbeam_channel::{bounded, Receiver, Sender, TrySendError};

use crate::budget::{Charge, Pool};
use serde_json::json;

use crate::capture::afpacket::{open_fanout, AfPacketConfig, AfPacketRing};
use crate::capture::pcap_live::{PcapLive, PcapLiveConfig};
use crate::capture::{available_cpus, local_addresses, CaptureError, Packet};
use crate::config::{CaptureBackend, LogLevel, Settings};
use crate::fatal::{self, FatalError, FaultPoint, ThreadPanic};
use crate::flow::FlowConfig;
use crate::message::Placement;
use crate::output::log::log;
use crate::output::{Batch, Output};
use crate::pipeline::{flow_config, run_file_observed, shard_of, RunError, Worker};
use crate::stats::{OutputStats, Stats};
use crate::time::Timestamp;
use crate::wire::LinkType;

/// How long a capture thread waits for packets before checking timers and `stop`.
const POLL_TIMEOUT: Duration = Duration::from_millis(50);
/// Longest a capture thread keeps reading after `stop` (a busy interface never goes quiet).
const STOP_DRAIN_LIMIT: Duration = Duration::from_millis(500);
/// How often workers publish their counters and sweep idle connections (wall clock).
const HOUSEKEEPING: Duration = Duration::from_millis(250);
/// How often the output stage makes written messages visible.
const OUTPUT_FLUSH: Duration = Duration::from_millis(100);
/// Message batches waiting for the output stage, per worker.
const OUTPUT_QUEUE_BATCHES: usize = 64;
/// Packet batches waiting for one worker (libpcap backend).
const WORKER_QUEUE_BATCHES: usize = 64;
/// When a worker's packet queue is full, the libpcap reader keeps adding to that worker's
/// pending batch (handed over once there is room) up to this many bytes; past it the batch
/// is dropped and counted. Under live capture batches are small (a poll in immediate mode
/// returns a few packets), so the queue alone absorbs only milliseconds of jitter.
const MAX_HELD_PACKET_BYTES: usize = 16 << 20;
/// Likewise, a worker keeps up to this many finished messages while the output stage's
/// queue is full, and drops (and counts) them only past it.
const MAX_HELD_MESSAGES: usize = 1024;
/// Bytes of serialised messages waiting for (or inside) the output stage's queue, all
/// workers together: a batch that does not fit is held back or dropped as when the
/// queue is full. Counting batches alone would let 64 batches of large bodies pile up.
const OUTPUT_QUEUE_BYTES: usize = 16 << 20;
/// Bytes of packets waiting in the libpcap reader's queues to the workers, all
/// workers together (the same rule).
const WORKER_QUEUE_BYTES: usize = 32 << 20;

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

    fn fail_capture(&self, err: &CaptureError) {
        self.fail(FatalError::Capture(err.to_string()));
    }

    /// Whether the run already has a fatal error.
    fn failed(&self) -> bool {
        self.fatal
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .is_some()
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
        let workers = settings.workers.unwrap_or_else(available_cpus).max(1);
        let local = local_addresses(&settings.interface);
        let cfg = flow_config(settings, workers, local);

        let mut fallback_reason = None;
        let rings = match settings.capture_backend {
            CaptureBackend::Pcap => None,
            CaptureBackend::AfPacket => Some(open_fanout(&af_config(settings), workers)?),
            CaptureBackend::Auto => match open_fanout(&af_config(settings), workers) {
                Ok(r) => Some(r),
                Err(e) => {
                    log(
                        LogLevel::Warn,
                        "AF_PACKET capture could not be set up; falling back to libpcap",
                        &[("reason", json!(e.to_string()))],
                    );
                    fallback_reason = Some(e.to_string());
                    None
                }
            },
        };

        let (msg_tx, msg_rx) = bounded::<Batch>(OUTPUT_QUEUE_BATCHES * workers);
        let queued = Pool::new(OUTPUT_QUEUE_BYTES);
        let output_thread = spawn("tcp-sniffer-output", &shared, {
            let shared = shared.clone();
            move || output_stage(msg_rx, outputs, &shared)
        })?;
        let mut capture_threads = Vec::new();
        let backend = if let Some(rings) = rings {
            for (k, ring) in rings.into_iter().enumerate() {
                let worker = Worker::new(cfg.clone(), k as u16).with_placement(placement.clone());
                let (shared, tx, queued) = (shared.clone(), msg_tx.clone(), queued.clone());
                let name = format!("tcp-sniffer-ring-{k}");
                capture_threads.push(spawn(&name, &shared.clone(), move || {
                    ring_loop(ring, worker, k, tx, &queued, &shared)
                })?);
            }
            "af_packet"
        } else {
            let mut pcfg = PcapLiveConfig::new(&settings.interface, &settings.ports);
            pcfg.timeout = POLL_TIMEOUT;
            let live = PcapLive::open(&pcfg)?;
            capture_threads.extend(start_pcap(
                live, cfg, workers, &placement, &msg_tx, &queued, &shared,
            )?);
            "pcap"
        };
        drop(msg_tx);
        Ok(Sniffer {
            shared,
            capture_threads,
            output_thread: Some(output_thread),
            info: StartInfo {
                backend,
                workers,
                source: settings.interface.clone(),
                fallback_reason,
            },
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
        crate::source::file::CaptureFile::open(&path).map_err(RunError::from)?;
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

fn af_config(s: &Settings) -> AfPacketConfig {
    AfPacketConfig::new(&s.interface, &s.ports)
}

/// Hands a worker's finished messages (serialised by the worker) to the output stage
/// without blocking capture. When its queue is full they stay with the worker (the next
/// call sends them with the newer ones), up to [`MAX_HELD_MESSAGES`]; past that they are
/// dropped and counted.
fn hand_over(worker: &mut Worker, tx: &Sender<Batch>, queued: &Pool, blocking: bool) {
    if worker.pending() == 0 {
        return;
    }
    let mut batch = worker.take_batch();
    let n = batch.len() as u64;
    if blocking {
        // Shutdown: the output stage is still draining; waiting here is correct.
        let _ = tx.send(batch);
        return;
    }
    let sent = if batch.charge_to(queued) {
        tx.try_send(batch)
    } else {
        Err(TrySendError::Full(batch))
    };
    match sent {
        Ok(()) => {}
        Err(TrySendError::Full(batch)) if batch.len() < MAX_HELD_MESSAGES => {
            worker.hold_back(batch);
        }
        Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) => {
            worker.count_output_drops(n);
        }
    }
}

/// One AF_PACKET ring and its worker, until `stop`.
fn ring_loop(
    mut ring: AfPacketRing,
    mut worker: Worker,
    k: usize,
    tx: Sender<Batch>,
    queued: &Pool,
    shared: &Shared,
) {
    let mut last_housekeeping = Instant::now();
    let mut reported_down = false;
    while !shared.stop.load(Ordering::Relaxed) {
        fatal::inject(FaultPoint::Capture);
        match ring.poll(POLL_TIMEOUT, |p: Packet<'_>| {
            worker.packet(p.link, p.data, p.ts)
        }) {
            Ok(_) => reported_down = false,
            Err(CaptureError::InterfaceDown { name }) => {
                if !reported_down {
                    log(
                        LogLevel::Warn,
                        "interface is down; capture resumes when it comes back up",
                        &[("interface", json!(name))],
                    );
                    reported_down = true;
                }
            }
            Err(e) => {
                shared.fail_capture(&e);
                break;
            }
        }
        hand_over(&mut worker, &tx, queued, false);
        if last_housekeeping.elapsed() >= HOUSEKEEPING {
            last_housekeeping = Instant::now();
            worker.tick(Timestamp::now());
            if let Ok(k_stats) = ring.stats() {
                worker.set_kernel_drops(k_stats.drops);
            }
            shared.publish(k, worker.stats());
        }
    }
    let mut drain = StopDrain::new();
    while drain.more() {
        let polled = ring.poll(POLL_TIMEOUT, |p: Packet<'_>| {
            worker.packet(p.link, p.data, p.ts)
        });
        drain.polled(polled.unwrap_or(0));
    }
    if let Ok(k_stats) = ring.stats() {
        worker.set_kernel_drops(k_stats.drops);
    }
    drop(ring);
    worker.finish_with(|w| hand_over(w, &tx, queued, true));
    shared.publish(k, worker.stats());
}

/// After `stop`, packets already in the kernel's ring are captured traffic: take them
/// before flushing, or the response sent a moment before `stop` is lost. A block that is
/// being filled retires within its timeout (20 ms), so two empty polls of [`POLL_TIMEOUT`]
/// mean the ring is empty; a busy interface never goes quiet, so the drain also ends after
/// [`STOP_DRAIN_LIMIT`].
struct StopDrain {
    empty_polls: u32,
    deadline: Instant,
}

impl StopDrain {
    fn new() -> StopDrain {
        StopDrain {
            empty_polls: 0,
            deadline: Instant::now() + STOP_DRAIN_LIMIT,
        }
    }

    /// Whether to poll again.
    fn more(&self) -> bool {
        self.empty_polls < 2 && Instant::now() < self.deadline
    }

    /// Records how many packets a poll showed (0 also for an error: nothing more to take).
    fn polled(&mut self, shown: usize) {
        self.empty_polls = if shown == 0 { self.empty_polls + 1 } else { 0 };
    }
}

/// Packets copied out of libpcap's buffer for one worker.
#[derive(Default)]
struct PacketBatch {
    link: Option<LinkType>,
    data: Vec<u8>,
    /// (end offset in `data`, timestamp) per packet.
    packets: Vec<(usize, Timestamp)>,
    /// The batch's share of [`WORKER_QUEUE_BYTES`] while it is queued.
    queued: Option<Charge>,
}

/// The libpcap backend: one reader dispatching to `workers` worker threads.
fn start_pcap(
    mut live: PcapLive,
    cfg: FlowConfig,
    workers: usize,
    placement: &Option<Placement>,
    msg_tx: &Sender<Batch>,
    queued: &Pool,
    shared: &Arc<Shared>,
) -> Result<Vec<JoinHandle<()>>, StartError> {
    let mut threads = Vec::new();
    let mut txs = Vec::new();
    for k in 0..workers {
        let (tx, rx) = bounded::<PacketBatch>(WORKER_QUEUE_BATCHES);
        txs.push(tx);
        let mut worker = Worker::new(cfg.clone(), k as u16).with_placement(placement.clone());
        let (shared, out, queued) = (shared.clone(), msg_tx.clone(), queued.clone());
        let name = format!("tcp-sniffer-worker-{k}");
        threads.push(spawn(&name, &shared.clone(), move || {
            pcap_worker(rx, &mut worker, k, out, &queued, &shared)
        })?);
    }
    let owner = shared.clone();
    let shared = shared.clone();
    let packets_queued = Pool::new(WORKER_QUEUE_BYTES);
    threads.push(spawn("tcp-sniffer-pcap", &owner, move || {
        let mut batches: Vec<PacketBatch> = (0..workers).map(|_| PacketBatch::default()).collect();
        let mut queue_drops = 0u64;
        let mut last_stats = Instant::now();
        // A full queue: keep the batch and add to it (see MAX_HELD_PACKET_BYTES).
        let send = |k: usize, batches: &mut Vec<PacketBatch>, drops: &mut u64| {
            let mut b = std::mem::take(&mut batches[k]);
            let n = b.packets.len() as u64;
            b.queued = None; // a batch held back earlier: charge it afresh
            b.queued = Charge::try_new(&packets_queued, b.data.capacity());
            let sent = if b.queued.is_some() {
                txs[k].try_send(b)
            } else {
                Err(TrySendError::Full(b))
            };
            match sent {
                Ok(()) => {}
                Err(TrySendError::Full(b)) if b.data.len() < MAX_HELD_PACKET_BYTES => {
                    batches[k] = b;
                }
                Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) => *drops += n,
            }
        };
        let shard = |p: Packet<'_>, batches: &mut Vec<PacketBatch>| {
            let k = shard_of(p.link, p.data, workers);
            let b = &mut batches[k];
            b.link = Some(p.link);
            b.data.extend_from_slice(p.data);
            b.packets.push((b.data.len(), p.ts));
        };
        while !shared.stop.load(Ordering::Relaxed) {
            fatal::inject(FaultPoint::Capture);
            let polled = live.poll(|p: Packet<'_>| shard(p, &mut batches));
            if let Err(e) = polled {
                if matches!(e, CaptureError::InterfaceDown { .. }) {
                    std::thread::sleep(POLL_TIMEOUT);
                    continue;
                }
                shared.fail_capture(&e);
                break;
            }
            // Hand over after every poll: a lone request must not wait for a full batch.
            for k in 0..workers {
                if !batches[k].packets.is_empty() {
                    send(k, &mut batches, &mut queue_drops);
                }
            }
            if last_stats.elapsed() >= HOUSEKEEPING {
                last_stats = Instant::now();
                publish_reader_stats(
                    &shared,
                    workers,
                    queue_drops,
                    live.stats().map(|s| s.drops).unwrap_or(0),
                );
            }
        }
        let mut drain = StopDrain::new();
        while drain.more() {
            let polled = live.poll(|p: Packet<'_>| shard(p, &mut batches));
            drain.polled(polled.unwrap_or(0));
        }
        // What is batched, and batches held back by a full queue: the workers are still
        // draining, so wait for room.
        for (k, b) in batches.into_iter().enumerate() {
            if !b.packets.is_empty() {
                let _ = txs[k].send(b);
            }
        }
        let kernel = live.stats().map(|s| s.drops).unwrap_or(0);
        publish_reader_stats(&shared, workers, queue_drops, kernel);
        // Dropping `txs` ends the workers once they have drained their queues.
    })?);
    Ok(threads)
}

/// The reader's own counters go in the slot after the workers'.
fn publish_reader_stats(shared: &Shared, workers: usize, queue_drops: u64, kernel_drops: u64) {
    let mut s = Stats::default();
    s.capture.queue_drops = queue_drops;
    s.capture.kernel_drops = kernel_drops;
    shared.publish(workers, s);
}

fn pcap_worker(
    rx: Receiver<PacketBatch>,
    worker: &mut Worker,
    k: usize,
    tx: Sender<Batch>,
    queued: &Pool,
    shared: &Shared,
) {
    let mut last_housekeeping = Instant::now();
    loop {
        match rx.recv_timeout(POLL_TIMEOUT) {
            Ok(batch) => {
                if let Some(link) = batch.link {
                    let mut start = 0;
                    for &(end, ts) in &batch.packets {
                        worker.packet(link, &batch.data[start..end], ts);
                        start = end;
                    }
                }
                hand_over(worker, &tx, queued, false);
            }
            Err(crossbeam_channel::RecvTimeoutError::Timeout) => {}
            Err(crossbeam_channel::RecvTimeoutError::Disconnected) => break,
        }
        if last_housekeeping.elapsed() >= HOUSEKEEPING {
            last_housekeeping = Instant::now();
            worker.tick(Timestamp::now());
            shared.publish(k, worker.stats());
        }
    }
    worker.finish_with(|w| hand_over(w, &tx, queued, true));
    shared.publish(k, worker.stats());
}

/// Hands every batch (serialised by its worker) to every output, flushing every 100 ms.
fn output_stage(rx: Receiver<Batch>, mut outputs: Vec<Box<dyn Output>>, shared: &Shared) {
    let mut messages = 0u64;
    let mut last_flush = Instant::now();
    let publish = |outputs: &[Box<dyn Output>], messages: u64| {
        let mut total = OutputStats::default();
        for o in outputs {
            total.merge(&o.stats());
        }
        total.messages = messages;
        *shared.output.lock().unwrap_or_else(|e| e.into_inner()) = total;
    };
    // An output's own thread panicked: the run's fatal error (once).
    let check_failures = |outputs: &[Box<dyn Output>]| {
        if !shared.failed() {
            if let Some(p) = outputs.iter().find_map(|o| o.failure()) {
                shared.fail(FatalError::Panic(p));
            }
        }
    };
    loop {
        match rx.recv_timeout(OUTPUT_FLUSH) {
            Ok(batch) => {
                fatal::inject(FaultPoint::Output);
                messages += batch.len() as u64;
                let batch = Arc::new(batch);
                for o in outputs.iter_mut() {
                    o.send(&batch);
                }
            }
            Err(crossbeam_channel::RecvTimeoutError::Timeout) => {}
            Err(crossbeam_channel::RecvTimeoutError::Disconnected) => break,
        }
        if last_flush.elapsed() >= OUTPUT_FLUSH {
            last_flush = Instant::now();
            for o in outputs.iter_mut() {
                o.flush();
            }
            publish(&outputs, messages);
            check_failures(&outputs);
        }
    }
    check_failures(&outputs);
    for o in outputs.iter_mut() {
        o.close();
    }
    publish(&outputs, messages);
    check_failures(&outputs);
}

/// The addresses of `interface` (for `direction`), re-exported for the CLI's startup line.
pub fn interface_addresses(interface: &str) -> Vec<IpAddr> {
    local_addresses(interface)
}
