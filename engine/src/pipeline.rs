//! Workers and the run loop: packets in, batches of serialised messages out.
//!
//! A [`Worker`] owns one shard of connections (a [`FlowTable`]) and its counters;
//! it is driven by one thread and takes no lock. It also serialises its own messages
//! into JSON batches ([`Worker::take_batch`]): serialisation is a large share of the
//! work per message, so it scales with the workers instead of queueing behind one
//! output thread, and a message is freed by the thread that allocated it.
//!
//! [`run_file`] replays a capture file. With one worker everything runs on the calling
//! thread. With more, the workers share one reading of the file ([`SharedFile`]):
//! whichever needs the next block first reads it and sorts its records by shard (the
//! connection's direction-independent hash, [`shard_of`](crate::shard::shard_of), so
//! both directions meet on one worker), and each worker walks only its own records —
//! the file-replay analogue of the kernel's fanout: no reader thread to become the
//! bottleneck, no packet copies, no packet queues, and no worker touching another's
//! frames. Each worker also hands its batches to the outputs itself (one at a time,
//! under a lock), so no thread sits between the workers and the outputs.
//!
//! Replaying a file is lossless: the queue to the outputs applies back-pressure to
//! the workers instead of dropping (a file can wait; live capture cannot, and sheds
//! instead).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::handoff::{Sender, TrySendError};
use serde_json::json;

use crate::budget::Pool;
use crate::capture::file::{CaptureFile, SourceError};
use crate::capture::shared_file::SharedFile;
use crate::capture::source::{Ending, FileSource, HandOff, PacketSource, Polled};
use crate::capture::{CaptureError, Packet};
use crate::config::{LogLevel, Settings};
use crate::fatal::{self, FaultPoint, ThreadPanic};
use crate::flow::{FlowConfig, FlowCounters, FlowTable};
use crate::http::HttpConfig;
use crate::message::{HttpMessage, Placement};
use crate::output::log::log;
use crate::output::{Batch, BatchFormat, Output, SpareBuffers};
use crate::reassembly::Limits;
use crate::stats::{CaptureStats, OutputStats, Stats};
use crate::time::Timestamp;
use crate::wire::{decode_tcp, DecodeError, DecodeStats, LinkType, TcpSegment};

/// Connections flushed between two hand-overs at the end of a capture.
pub const FINISH_SLICE: usize = 16;

/// How often (in capture time) a worker looks for idle connections.
const SWEEP_INTERVAL_US: u64 = 1_000_000;

/// Builds the flow-table configuration from validated settings.
pub fn flow_config(s: &Settings, workers: usize, local_addrs: Vec<std::net::IpAddr>) -> FlowConfig {
    FlowConfig {
        ports: s.ports.clone(),
        exclude_ports: own_ports(s),
        // The cap is for the whole sniffer; each worker holds an equal share.
        max_connections: s.max_concurrent_connections.div_ceil(workers.max(1)),
        idle_timeout_us: s.connection_idle_timeout_ms.saturating_mul(1000),
        sample_rate: s.sample_rate,
        local_addrs,
        reassembly: Limits::default(),
        http: HttpConfig::from_settings(s),
        workers,
    }
}

/// With `ports: any`, the ports of the sniffer's own traffic, which it must not observe:
/// the output URL's (its POSTs would be captured, reported and POSTed again, without end)
/// and the metrics endpoint's. Empty with listed ports: the user chose those.
fn own_ports(s: &Settings) -> Vec<u16> {
    if !s.any_port() {
        return Vec::new();
    }
    let mut own = Vec::new();
    if let Some(url) = &s.output_url {
        // `scheme://host[:port]`, never credentials.
        let label = crate::config::url_label(url);
        let default = if label.starts_with("https") { 443 } else { 80 };
        let authority = label.split_once("://").map_or("", |(_, a)| a);
        let port = match authority.rsplit_once(':') {
            Some((host, p)) if !host.ends_with('[') && !p.contains(']') => p.parse().ok(),
            _ => None,
        };
        own.push(port.unwrap_or(default));
    }
    if let Some(port) = s
        .metrics_addr
        .as_deref()
        .and_then(|a| a.rsplit_once(':'))
        .and_then(|(_, p)| p.parse::<u16>().ok())
        .filter(|p| *p != 0)
    {
        own.push(port);
    }
    own
}

/// One shard: decodes packets and turns them into messages.
pub struct Worker {
    table: FlowTable,
    counters: FlowCounters,
    decode: DecodeStats,
    capture: CaptureStats,
    out: Vec<HttpMessage>,
    /// Approximate bytes of the messages in `out` (bodies plus a fixed cost each).
    out_bytes: usize,
    /// Messages serialised but not yet handed over (see [`Worker::take_batch`]).
    batch: Batch,
    /// How many bytes `out_bytes` worth of messages take serialised, as seen so far.
    batch_sizer: BatchSizer,
    /// The buffers of this worker's delivered full batches, for its next ones.
    spares: SpareBuffers,
    /// Written into every message (`pod`).
    placement: Option<Placement>,
    /// The form of the batches this worker writes.
    format: BatchFormat,
    last_sweep: Timestamp,
    /// Messages dropped because the output stage's queue was full.
    output_drops: u64,
    /// Latest capture time seen (capture clocks can step back; this never does).
    clock: Timestamp,
    /// RED metrics of this worker's exchanges (recorded only while `/metrics` is served).
    red: crate::metrics::ExchangeTracker,
}

impl Worker {
    /// Worker number `id` (ids make connection ids unique across workers).
    pub fn new(cfg: FlowConfig, id: u16) -> Self {
        Worker {
            table: FlowTable::new(cfg, id),
            counters: FlowCounters::default(),
            decode: DecodeStats::default(),
            capture: CaptureStats::default(),
            out: Vec::new(),
            out_bytes: 0,
            batch: Batch::default(),
            batch_sizer: BatchSizer::default(),
            spares: SpareBuffers::default(),
            placement: None,
            format: BatchFormat::Json,
            last_sweep: Timestamp(0),
            output_drops: 0,
            clock: Timestamp(0),
            red: crate::metrics::ExchangeTracker::default(),
        }
    }

    /// Writes `placement` into every message this worker serialises.
    pub fn with_placement(mut self, placement: Option<Placement>) -> Self {
        self.placement = placement;
        self
    }

    /// Writes its batches in `format` (see [`BatchFormat::for_outputs`]).
    pub fn with_format(mut self, format: BatchFormat) -> Self {
        self.format = format;
        self.batch = Batch::new(format);
        self
    }

    /// Processes one captured frame.
    #[inline]
    pub fn packet(&mut self, link: LinkType, frame: &[u8], ts: Timestamp) {
        self.process(frame.len(), ts, decode_tcp(link, frame));
    }

    #[inline]
    fn process(&mut self, len: usize, ts: Timestamp, decoded: Result<TcpSegment<'_>, DecodeError>) {
        fatal::inject(FaultPoint::Worker);
        self.capture.packets += 1;
        self.capture.bytes += len as u64;
        if ts > self.clock {
            self.clock = ts;
        }
        match decoded {
            Ok(seg) => {
                let before = self.out.len();
                self.table
                    .segment(&seg, ts, &mut self.counters, &mut self.out);
                self.count_out_bytes(before);
            }
            Err(e) => self.decode.record(&e),
        }
        if self.clock.micros_since(self.last_sweep) >= SWEEP_INTERVAL_US {
            self.tick(self.clock);
        }
    }

    /// Evicts idle connections as of `now` (called by the packet path in capture
    /// time, and by live capture's timer when no packets come).
    pub fn tick(&mut self, now: Timestamp) {
        self.last_sweep = now;
        let before = self.out.len();
        self.table
            .sweep_idle(now, &mut self.counters, &mut self.out);
        self.count_out_bytes(before);
    }

    /// Adds the messages from `out[before..]` to `out_bytes`: bodies dominate a
    /// message's size; the rest is a few hundred bytes.
    fn count_out_bytes(&mut self, before: usize) {
        for m in &self.out[before..] {
            self.out_bytes += m.body.len() + 512;
        }
    }

    /// Ends the capture: flushes every connection.
    pub fn finish(&mut self) {
        self.finish_with(|_| {});
    }

    /// Ends the capture: flushes every connection, [`FINISH_SLICE`] at a time, calling
    /// `hand_over` whenever a batch is full (`Worker::batch_full`), so the messages
    /// of thousands of unfinished connections never sit in memory all at once.
    pub fn finish_with(&mut self, mut hand_over: impl FnMut(&mut Worker)) {
        let now = self.clock;
        loop {
            let before = self.out.len();
            let more = self
                .table
                .close_some(now, FINISH_SLICE, &mut self.counters, &mut self.out);
            self.count_out_bytes(before);
            if !more {
                break;
            }
            self.serialise_some();
            if self.batch_full() {
                hand_over(self);
            }
        }
        hand_over(self);
    }

    /// Counts messages that could not be handed to the output stage (its queue was full).
    pub fn count_output_drops(&mut self, n: u64) {
        self.output_drops += n;
    }

    /// Records the kernel's drop counter for this worker's capture socket (a running total).
    pub fn set_kernel_drops(&mut self, total: u64) {
        self.capture.kernel_drops = total;
    }

    /// Messages finished and not yet serialised (tests and fuzz drivers look at them here).
    pub fn messages(&mut self) -> &mut Vec<HttpMessage> {
        &mut self.out
    }

    /// About how many bytes the messages not yet handed over take (file replay hands a
    /// batch over past about 1 MiB, so queues of batches are bounded in bytes too).
    pub fn pending_bytes(&self) -> usize {
        self.out_bytes + self.batch.as_lines().len()
    }

    /// Messages finished and not yet handed over, serialised or not.
    pub fn pending(&self) -> usize {
        self.out.len() + self.batch.len()
    }

    /// Whether a full batch is waiting: [`BATCH_MESSAGES`] messages or about
    /// [`BATCH_BYTES`] of them (the unit in which files and shutdown hand over).
    pub(crate) fn batch_full(&self) -> bool {
        self.pending() >= BATCH_MESSAGES || self.pending_bytes() >= BATCH_BYTES
    }

    /// Serialises the finished messages into the batch being filled once
    /// [`SERIALISE_EVERY`] of them wait (files and shutdown, which hand over full
    /// batches): each is written out while it is still in the cache, and the batch goes
    /// out later in one piece — one wake-up of the output's thread per megabyte, not
    /// per few hundred messages.
    pub(crate) fn serialise_some(&mut self) {
        if self.out.len() >= SERIALISE_EVERY {
            if self.batch.is_empty() {
                // Room for the whole batch at once: growing it step by step would copy
                // it over and over. In the buffers of a batch already delivered, still
                // mapped (see `SpareBuffers`).
                self.batch
                    .reserve_from(BATCH_BYTES + BATCH_BYTES / 4, &self.spares);
            }
            self.serialise_out();
        }
    }

    /// Serialises every finished message into the batch being filled.
    fn serialise_out(&mut self) {
        let estimated = std::mem::take(&mut self.out_bytes);
        if self.out.is_empty() {
            return;
        }
        self.red.observe(&self.out);
        // Room for all of them at once: a live batch (a ring block's messages, often
        // hundreds) grown step by step was copied over about once more on the way (4 % of
        // a live worker's time, in `realloc`).
        let before = self.batch.as_lines().len();
        self.batch.reserve(self.batch_sizer.room_for(estimated));
        self.batch.extend(&self.out, self.placement.as_ref());
        self.batch_sizer
            .observe(estimated, self.batch.as_lines().len() - before);
        self.out.clear();
    }

    /// Every message finished and not yet handed over, serialised as one batch.
    pub fn take_batch(&mut self) -> Batch {
        self.serialise_out();
        std::mem::replace(&mut self.batch, Batch::new(self.format))
    }

    /// Takes back a batch the output stage had no room for: it goes out first, with the
    /// messages finished meanwhile appended to it.
    pub fn hold_back(&mut self, batch: Batch) {
        debug_assert!(self.batch.is_empty(), "take_batch empties the batch");
        self.batch = batch;
    }

    /// A snapshot of this worker's counters.
    pub fn stats(&self) -> Stats {
        Stats {
            capture: self.capture.clone(),
            decode: self.decode.clone(),
            flow: self.counters.flow.clone(),
            reassembly: self.counters.reassembly.clone(),
            http: self.counters.http.clone(),
            output: OutputStats {
                dropped_queue_full: self.output_drops,
                ..OutputStats::default()
            },
        }
    }
}

/// Sizes the buffer for a run of messages before they are serialised, from how many bytes
/// the worker's messages took against their estimate (`out_bytes`: bodies plus 512 each)
/// so far. The estimate alone is off by however the traffic's headers differ from 512
/// bytes (measured: 1.04 times it on workload S, 1.05 on nginx's 1 KiB responses live,
/// 1.18 on the zeek `x-gzip` capture).
///
/// Room is the estimate times that ratio, plus an eighth and [`BatchSizer::SLACK`]: a
/// message reserves its worst case (every byte escaped) before writing, so a buffer filled
/// to the last byte would still grow, and copy the batch, at its last message. At most
/// about 1.2 times what is written, plus the slack: no more than growing by doubling gave.
#[derive(Debug, Default)]
struct BatchSizer {
    estimated: u64,
    written: u64,
}

impl BatchSizer {
    /// Room for the last message's worst-case reservation before its head (512 bytes and
    /// six per byte of its strings). A large body's (six per byte of a 4 KiB chunk) is
    /// covered by the eighth once the batch holds a few such messages.
    const SLACK: usize = 8 << 10;
    /// Past this many estimated bytes both sums are halved: the ratio follows the traffic.
    const WINDOW: u64 = 64 << 20;

    fn room_for(&self, estimated: usize) -> usize {
        let estimated = estimated as u64;
        // Half as much again until a first batch has shown the ratio.
        let expected = (estimated.saturating_mul(self.written))
            .checked_div(self.estimated)
            .unwrap_or(estimated.saturating_mul(3) / 2);
        let expected = usize::try_from(expected).unwrap_or(usize::MAX);
        expected
            .saturating_add(expected / 8)
            .saturating_add(Self::SLACK)
    }

    fn observe(&mut self, estimated: usize, written: usize) {
        self.estimated += estimated as u64;
        self.written += written as u64;
        if self.estimated > Self::WINDOW {
            self.estimated /= 2;
            self.written /= 2;
        }
    }
}

/// A capture could not be run.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RunError {
    /// The source could not be opened.
    #[error(transparent)]
    Source(#[from] SourceError),
    /// A thread of the replay (a worker when there are several, or an output's own
    /// thread) panicked: the replay stopped, the outputs were closed (what was queued is
    /// drained within their deadline). A panic on the calling thread unwinds as usual.
    #[error("internal error: {panic}")]
    Panicked {
        /// The first panic.
        panic: ThreadPanic,
        /// The counters of the part of the replay that ran.
        stats: Box<Stats>,
    },
}

/// What a finished run reports.
#[derive(Debug)]
pub struct RunSummary {
    /// Every counter, outputs included.
    pub stats: Stats,
    /// The file was damaged at some record; what came before was processed.
    pub damaged: Option<String>,
}

/// Messages in a full batch (files and shutdown hand over full batches) ...
const BATCH_MESSAGES: usize = 4096;
/// ... or about this many bytes of them, whichever comes first.
const BATCH_BYTES: usize = 1 << 20;
/// Finished messages a worker collects before serialising them into its batch.
const SERIALISE_EVERY: usize = 256;

/// How long a worker waits in one poll of its source before checking timers and `stop`.
pub(crate) const POLL_TIMEOUT: Duration = Duration::from_millis(50);
/// Longest a capture thread keeps reading after `stop` (a busy interface never goes quiet).
const STOP_DRAIN_LIMIT: Duration = Duration::from_millis(500);
/// How often workers publish their counters (and live ones sweep idle connections on the
/// wall clock).
pub(crate) const HOUSEKEEPING: Duration = Duration::from_millis(250);
/// A live worker keeps up to this many finished messages while the output stage's queue
/// is full, and drops (and counts) them only past it.
const MAX_HELD_MESSAGES: usize = 1024;

/// What the worker loop needs from the run it belongs to.
pub(crate) trait RunControl: Sync {
    /// Whether the run is being stopped (`stop()`, a fatal error, a panic elsewhere).
    fn stopping(&self) -> bool;
    /// Worker `k`'s counters so far.
    fn publish(&self, k: usize, stats: Stats);
    /// A capture error ended worker's source: the run's fatal error.
    fn fail_capture(&self, err: &CaptureError);
}

/// Where a worker's finished messages go.
pub(crate) trait Downstream {
    /// Hands `worker`'s finished messages on under `policy`. False when nothing downstream
    /// will take more (every output is gone): reading on is pointless.
    fn hand_over(&mut self, worker: &mut Worker, policy: HandOff) -> bool;
}

/// The queue to an output stage on another thread (live capture).
pub(crate) struct OutputQueue {
    pub(crate) tx: Sender<Batch>,
    /// Bytes of batches waiting in the queue, all workers together (live capture: a batch
    /// that does not fit is held back or dropped as when the queue is full; counting
    /// batches alone would let large bodies pile up).
    pub(crate) queued: Pool,
}

impl Downstream for OutputQueue {
    fn hand_over(&mut self, worker: &mut Worker, policy: HandOff) -> bool {
        if worker.pending() == 0 {
            return true;
        }
        let mut batch = worker.take_batch();
        let n = batch.len() as u64;
        if policy == HandOff::Wait {
            return self.tx.send(batch).is_ok();
        }
        let sent = if batch.charge_to(&self.queued) {
            self.tx.try_send(batch)
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
        true
    }
}

/// The one worker loop, for every [`PacketSource`]: polls `source` into `worker` until
/// the source ends (or the run stops, as the source's [`Ending`] says), hands finished
/// messages `down` as the source's [`HandOff`] says, and publishes counters every
/// [`HOUSEKEEPING`] (live sources also sweep idle connections then, on the wall clock).
/// At the end it flushes every connection and hands the rest over, waiting for room.
/// Returns why the source ended early, if it was damaged.
pub(crate) fn worker_loop<S: PacketSource, D: Downstream, C: RunControl + ?Sized>(
    mut source: S,
    worker: &mut Worker,
    k: usize,
    down: &mut D,
    run: &C,
) -> Option<String> {
    let mut last_housekeeping = Instant::now();
    let mut reported_down = false;
    // Set once `stop` is seen by a capture handle: what is left to take from the kernel.
    let mut drain: Option<StopDrain> = None;
    loop {
        match S::ENDING {
            Ending::Drain => {
                if drain.is_none() && run.stopping() {
                    drain = Some(StopDrain::new());
                }
                match &drain {
                    Some(d) if !d.more() => break,
                    Some(_) => {}
                    None => fatal::inject(FaultPoint::Capture),
                }
            }
            Ending::AtOnce if run.stopping() => break,
            Ending::AtOnce | Ending::Closed => {}
        }
        let polled = source.poll(POLL_TIMEOUT, |p: Packet<'_>| {
            worker.packet(p.link, p.data, p.ts)
        });
        if let Some(d) = &mut drain {
            // Draining: an error, like an empty poll, means there is nothing more to take.
            d.polled(match polled {
                Ok(Polled::Packets(n)) => n,
                Ok(Polled::End) | Err(_) => 0,
            });
            continue;
        }
        match polled {
            Ok(Polled::Packets(_)) => reported_down = false,
            Ok(Polled::End) => break,
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
                run.fail_capture(&e);
                break;
            }
        }
        let open = match S::HAND_OFF {
            HandOff::Shed => down.hand_over(worker, HandOff::Shed),
            HandOff::Wait => {
                worker.serialise_some();
                !worker.batch_full() || down.hand_over(worker, HandOff::Wait)
            }
        };
        if !open {
            break;
        }
        if last_housekeeping.elapsed() >= HOUSEKEEPING {
            last_housekeeping = Instant::now();
            if S::HAND_OFF == HandOff::Shed {
                // No packets for a while must still end idle connections. Never for a
                // file: its output must not depend on how fast it was read.
                worker.tick(Timestamp::now());
            }
            if let Some(drops) = source.kernel_drops() {
                worker.set_kernel_drops(drops);
            }
            run.publish(k, worker.stats());
        }
    }
    if let Some(drops) = source.kernel_drops() {
        worker.set_kernel_drops(drops);
    }
    let damaged = source.damage();
    drop(source);
    worker.finish_with(|w| {
        down.hand_over(w, HandOff::Wait);
    });
    run.publish(k, worker.stats());
    damaged
}

/// After `stop`, packets already in the kernel's ring are captured traffic: take them
/// before flushing, or the response sent a moment before `stop` is lost. A block that is
/// being filled retires within its timeout (20 ms), so two empty polls of [`POLL_TIMEOUT`]
/// mean the ring is empty; a busy interface never goes quiet, so the drain also ends after
/// [`STOP_DRAIN_LIMIT`].
pub(crate) struct StopDrain {
    empty_polls: u32,
    deadline: Instant,
}

impl StopDrain {
    pub(crate) fn new() -> StopDrain {
        StopDrain {
            empty_polls: 0,
            deadline: Instant::now() + STOP_DRAIN_LIMIT,
        }
    }

    /// Whether to poll again.
    pub(crate) fn more(&self) -> bool {
        self.empty_polls < 2 && Instant::now() < self.deadline
    }

    /// Records how many packets a poll showed (0 also for an error: nothing more to take).
    pub(crate) fn polled(&mut self, shown: usize) {
        self.empty_polls = if shown == 0 { self.empty_polls + 1 } else { 0 };
    }
}

/// Replays a pcap/pcapng file through `workers` workers into `outputs`.
pub fn run_file(
    settings: &Settings,
    path: &str,
    outputs: &mut [Box<dyn Output>],
    placement: Option<&Placement>,
) -> Result<RunSummary, RunError> {
    run_file_until(settings, path, outputs, placement, &AtomicBool::new(false))
}

/// [`run_file`], ending early (connections flushed, outputs closed) once `stop` is set.
pub fn run_file_until(
    settings: &Settings,
    path: &str,
    outputs: &mut [Box<dyn Output>],
    placement: Option<&Placement>,
    stop: &AtomicBool,
) -> Result<RunSummary, RunError> {
    run_file_observed(settings, path, outputs, placement, stop, &|_, _| {})
}

/// [`run_file_until`], reporting counters while it runs: about every 250 ms each worker
/// `k` calls `progress(k, its counters so far)`, and the thread delivering a batch calls
/// `progress(workers, counters with only `output` set)`. The [`RunSummary`] has the
/// final totals; callers that keep the reports must replace them with it.
pub fn run_file_observed(
    settings: &Settings,
    path: &str,
    outputs: &mut [Box<dyn Output>],
    placement: Option<&Placement>,
    stop: &AtomicBool,
    progress: &(dyn Fn(usize, Stats) + Sync),
) -> Result<RunSummary, RunError> {
    fatal::arm();
    let file = CaptureFile::open(path)?;
    // A file has no "own addresses": direction is unknown.
    let workers = settings.workers.unwrap_or(1).max(1);
    let cfg = flow_config(settings, workers, Vec::new());
    let format = BatchFormat::for_outputs(outputs);
    // Set when a thread of this replay panicked: the rest stop as on `stop`.
    let abort = AtomicBool::new(false);
    let replay = Replay {
        stop,
        abort: &abort,
        progress,
        shards: workers,
    };
    let mut to = Delivery {
        outputs,
        emitted: 0,
        stop,
        abort: &abort,
        failed: None,
        progress,
        slot: workers,
        last_progress: Instant::now(),
    };
    let (mut stats, damaged, mut failed) = if workers == 1 {
        // One worker reads the file on this thread and hands its batches straight to
        // the outputs: no thread, no queue.
        let mut w = Worker::new(cfg, 0)
            .with_placement(placement.cloned())
            .with_format(format);
        let damaged = worker_loop(FileSource::new(file), &mut w, 0, &mut to, &replay);
        (w.stats(), damaged, None)
    } else {
        drop(file);
        replay.sharded(path, cfg, placement, format, &mut to)
    };
    if damaged.is_some() {
        stats.capture.file_errors += 1;
    }
    let emitted = to.emitted;
    failed = failed.or(to.failed.take());
    for o in outputs.iter_mut() {
        o.close();
        stats.output.merge(&o.stats());
        failed = failed.or_else(|| o.failure());
    }
    stats.output.messages = emitted;
    match failed {
        Some(panic) => Err(RunError::Panicked {
            panic,
            stats: Box::new(stats),
        }),
        None => Ok(RunSummary { stats, damaged }),
    }
}

/// Hands the serialised messages of a file replay to the outputs, waiting for room
/// rather than dropping (a file can wait; see the module docs).
struct Delivery<'o, 'p> {
    outputs: &'o mut [Box<dyn Output>],
    /// Messages handed over so far.
    emitted: u64,
    /// Set when the replay is being stopped: stop waiting for room.
    stop: &'p AtomicBool,
    /// Set when a thread of the replay panicked (stop waiting too).
    abort: &'p AtomicBool,
    /// The first output whose own thread panicked (see [`Output::failure`]).
    failed: Option<ThreadPanic>,
    progress: &'p (dyn Fn(usize, Stats) + Sync),
    /// The `progress` slot for the outputs' counters (after the workers').
    slot: usize,
    last_progress: Instant,
}

impl Delivery<'_, '_> {
    fn deliver(&mut self, batch: Batch) {
        if batch.is_empty() {
            return;
        }
        fatal::inject(FaultPoint::Output);
        self.emitted += batch.len() as u64;
        let batch = Arc::new(batch);
        for o in self.outputs.iter_mut() {
            // Back-pressure, not loss — unless the replay is being stopped.
            while !o.wait_for_room(&batch, Duration::from_millis(100)) {
                if self.stop.load(Ordering::Relaxed) || self.abort.load(Ordering::Relaxed) {
                    break;
                }
            }
            o.send(&batch);
            if self.failed.is_none() {
                self.failed = o.failure();
                if self.failed.is_some() {
                    self.abort.store(true, Ordering::SeqCst);
                }
            }
        }
        if self.last_progress.elapsed() >= HOUSEKEEPING {
            self.last_progress = Instant::now();
            let mut s = Stats::default();
            for o in self.outputs.iter() {
                s.output.merge(&o.stats());
            }
            s.output.messages = self.emitted;
            (self.progress)(self.slot, s);
        }
    }

    /// Every output is gone (e.g. stdout's reader went away), or one failed: reading on
    /// is pointless.
    fn all_closed(&self) -> bool {
        self.failed.is_some()
            || (!self.outputs.is_empty() && self.outputs.iter().all(|o| o.is_closed()))
    }
}

/// The outputs themselves, on the worker's own thread (a file read by one worker). It
/// always waits for room, whatever the policy: only files hand over this way.
impl Downstream for Delivery<'_, '_> {
    fn hand_over(&mut self, worker: &mut Worker, _policy: HandOff) -> bool {
        self.deliver(worker.take_batch());
        !self.all_closed()
    }
}

/// What every worker of one replay shares.
struct Replay<'p> {
    stop: &'p AtomicBool,
    /// Set when a thread of the replay panicked: the others stop as on `stop`.
    abort: &'p AtomicBool,
    progress: &'p (dyn Fn(usize, Stats) + Sync),
    shards: usize,
}

impl RunControl for Replay<'_> {
    fn stopping(&self) -> bool {
        self.stop.load(Ordering::Relaxed) || self.abort.load(Ordering::Relaxed)
    }

    fn publish(&self, k: usize, stats: Stats) {
        (self.progress)(k, stats);
    }

    /// A file source reports damage, never a capture error; should one come, the replay
    /// stops as for a panic elsewhere and the error is logged.
    fn fail_capture(&self, err: &CaptureError) {
        log(
            LogLevel::Error,
            "reading the capture file failed; stopping",
            &[("error", json!(err.to_string()))],
        );
        self.abort.store(true, Ordering::SeqCst);
    }
}

impl Replay<'_> {
    /// The sharded replay (see the module docs): one thread per shard takes its shard of
    /// `path` (read once for all of them) and hands its batches to the outputs itself, one
    /// worker at a time; this thread only waits for them.
    fn sharded(
        &self,
        path: &str,
        cfg: FlowConfig,
        placement: Option<&Placement>,
        format: BatchFormat,
        to: &mut Delivery<'_, '_>,
    ) -> (Stats, Option<String>, Option<ThreadPanic>) {
        // Workers deliver under this lock rather than through a queue to this thread: a
        // batch then wakes one thread (the output's), not two, and this thread needs no
        // core. Serialising happens before the lock (`take_batch`); under it only the
        // hand-over to the outputs, which waits for room when they are full — the same
        // back-pressure a bounded queue gave. A panic while it is held (an output's `send`)
        // ends that worker and stops the replay; the others go on delivering what they
        // hold (a poisoned lock guards nothing half-done: `deliver` counts a batch only
        // once it was handed on).
        let to = Mutex::new(to);
        let file = SharedFile::open(path, self.shards).map_err(|e| e.to_string());
        let file = &file;
        std::thread::scope(|scope| {
            let handles: Vec<_> = (0..self.shards)
                .map(|id| {
                    let cfg = cfg.clone();
                    let placement = placement.cloned();
                    let to = &to;
                    let name = format!("tcp-sniffer-replay-{id}");
                    let body = move || {
                        let mut w = Worker::new(cfg, id as u16)
                            .with_placement(placement)
                            .with_format(format);
                        let mut down = SharedDelivery(to);
                        // The caller opened it a moment ago; failing now means it changed.
                        let reader = match &file {
                            Ok(file) => file.reader(id).map_err(|e| e.to_string()),
                            Err(e) => Err(e.clone()),
                        };
                        let damaged = match reader {
                            Ok(reader) => {
                                let source = FileSource::shard(reader);
                                worker_loop(source, &mut w, id, &mut down, self)
                            }
                            Err(e) => {
                                w.finish_with(|w| {
                                    down.hand_over(w, HandOff::Wait);
                                });
                                Some(format!("cannot reopen the file: {e}"))
                            }
                        };
                        (w.stats(), damaged)
                    };
                    // A panic ends this worker and stops the others; what they already
                    // handed over is still delivered.
                    let thread = name.clone();
                    std::thread::Builder::new()
                        .name(name)
                        .spawn_scoped(scope, move || {
                            fatal::catch(&thread, body).inspect_err(|_| {
                                self.abort.store(true, Ordering::SeqCst);
                            })
                        })
                        .expect("cannot start a replay worker thread")
                })
                .collect();
            let mut stats = Stats::default();
            let mut damaged = None;
            let mut failed = None;
            for h in handles {
                // Every worker reads on to the damage itself, so they find the same.
                let name = h
                    .thread()
                    .name()
                    .unwrap_or("tcp-sniffer-replay")
                    .to_string();
                match h.join() {
                    Ok(Ok((s, d))) => {
                        stats.merge(&s);
                        damaged = damaged.or(d);
                    }
                    Ok(Err(p)) => failed = failed.or(Some(p)),
                    Err(payload) => {
                        let p = ThreadPanic::from_payload(&name, payload.as_ref());
                        failed = failed.or(Some(p));
                    }
                }
            }
            (stats, damaged, failed)
        })
    }
}

/// The outputs of a sharded replay, shared by its workers (see [`Replay::sharded`]).
struct SharedDelivery<'a, 'o, 'p>(&'a Mutex<&'a mut Delivery<'o, 'p>>);

impl Downstream for SharedDelivery<'_, '_, '_> {
    fn hand_over(&mut self, worker: &mut Worker, _policy: HandOff) -> bool {
        if worker.pending() == 0 {
            let to = self.0.lock().unwrap_or_else(|e| e.into_inner());
            return !to.all_closed();
        }
        // Serialised outside the lock: that is the workers' parallel part.
        let batch = worker.take_batch();
        let mut to = self.0.lock().unwrap_or_else(|e| e.into_inner());
        if to.all_closed() {
            // Nothing will take it (the outputs are gone): drop it and stop reading.
            return false;
        }
        to.deliver(batch);
        !to.all_closed()
    }
}

#[cfg(test)]
mod tests {
    use super::BatchSizer;

    #[test]
    fn batch_room_follows_what_messages_took_against_their_estimate() {
        let mut sizer = BatchSizer::default();
        // Before any batch: half as much again.
        assert_eq!(sizer.room_for(1_000), 1_500 + 1_500 / 8 + BatchSizer::SLACK);
        sizer.observe(1_000, 1_300);
        sizer.observe(3_000, 3_900);
        let room = sizer.room_for(2_000);
        assert_eq!(room, 2_600 + 2_600 / 8 + BatchSizer::SLACK);
        // The sums are halved past the window, and the ratio kept.
        for _ in 0..100 {
            sizer.observe(1_000_000, 1_300_000);
        }
        assert!(sizer.estimated <= BatchSizer::WINDOW);
        assert_eq!(sizer.room_for(2_000), room);
        // Traffic that changes moves the ratio.
        for _ in 0..200 {
            sizer.observe(1 << 20, 2 << 20);
        }
        assert!(sizer.room_for(2_000) > 3_900);
        assert_eq!(sizer.room_for(0), BatchSizer::SLACK);
    }
}
