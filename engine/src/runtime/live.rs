//! Live capture: one worker loop over a [`PacketSource`], and the libpcap reader.
//!
//! ```text
//!  AF_PACKET: ring k ──────────────────────────────► worker_loop k   (kernel fanout shards)
//!  libpcap:   reader ─► batches by flow hash ─► queue k ─► worker_loop k
//!                                   worker_loop k ─► JSON batches ─► output stage
//! ```
//!
//! Every worker runs [`worker_loop`]; what differs between backends is only the source it
//! polls (an AF_PACKET ring, or the queue the libpcap reader fills) and how that source
//! ends ([`Ending`]). Live capture never blocks on the output stage: finished messages are
//! handed over with [`HandOff::Shed`] (held back up to [`MAX_HELD_MESSAGES`], then dropped
//! and counted); only at shutdown, when the output stage is draining, does a worker wait
//! ([`HandOff::Wait`]).

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crossbeam_channel::{bounded, Receiver, RecvTimeoutError, Sender, TrySendError};
use serde_json::json;

use super::output::output_stage;
use super::{spawn, Shared, StartError, StartInfo};
use crate::budget::{Charge, Pool};
use crate::capture::afpacket::{open_fanout, AfPacketConfig, AfPacketRing};
use crate::capture::pcap_live::{PcapLive, PcapLiveConfig};
use crate::capture::{available_cpus, local_addresses, CaptureError, Packet};
use crate::config::{CaptureBackend, LogLevel, Settings};
use crate::fatal::{self, FaultPoint};
use crate::flow::FlowConfig;
use crate::message::Placement;
use crate::output::log::log;
use crate::output::{Batch, Output};
use crate::pipeline::{flow_config, shard_of, Worker};
use crate::stats::Stats;
use crate::time::Timestamp;
use crate::wire::LinkType;

/// How long a capture thread waits for packets before checking timers and `stop`.
pub(super) const POLL_TIMEOUT: Duration = Duration::from_millis(50);
/// Longest a capture thread keeps reading after `stop` (a busy interface never goes quiet).
const STOP_DRAIN_LIMIT: Duration = Duration::from_millis(500);
/// How often workers publish their counters and sweep idle connections (wall clock).
const HOUSEKEEPING: Duration = Duration::from_millis(250);
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

/// What one poll of a [`PacketSource`] gave.
pub(super) enum Polled {
    /// This many packets were shown to the callback (0: the timeout passed).
    Packets(usize),
    /// The source is done: nothing more will come.
    End,
}

/// How a source's worker loop ends.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum Ending {
    /// A capture handle: on `stop`, take what the kernel already holds ([`StopDrain`]),
    /// then end. Fault injection's capture point is here.
    OnStop,
    /// A queue filled by another thread: run until the feeder closes it (the feeder
    /// drains its own capture handle on `stop`).
    Closed,
}

/// Where a worker's packets come from. Packets are borrowed for the callback only.
pub(super) trait PacketSource {
    /// How the worker loop over this source ends.
    const ENDING: Ending;

    /// Shows the packets available within `timeout` to `f`.
    fn poll(
        &mut self,
        timeout: Duration,
        f: &mut dyn FnMut(Packet<'_>),
    ) -> Result<Polled, CaptureError>;

    /// The kernel's drop total for this source, if it has its own.
    fn kernel_drops(&mut self) -> Option<u64>;
}

impl PacketSource for AfPacketRing {
    const ENDING: Ending = Ending::OnStop;

    fn poll(
        &mut self,
        timeout: Duration,
        f: &mut dyn FnMut(Packet<'_>),
    ) -> Result<Polled, CaptureError> {
        AfPacketRing::poll(self, timeout, f).map(Polled::Packets)
    }

    fn kernel_drops(&mut self) -> Option<u64> {
        self.stats().ok().map(|s| s.drops)
    }
}

/// One worker's queue of packet batches from the libpcap reader.
struct PacketQueue(Receiver<PacketBatch>);

impl PacketSource for PacketQueue {
    const ENDING: Ending = Ending::Closed;

    fn poll(
        &mut self,
        timeout: Duration,
        f: &mut dyn FnMut(Packet<'_>),
    ) -> Result<Polled, CaptureError> {
        match self.0.recv_timeout(timeout) {
            Ok(batch) => {
                let Some(link) = batch.link else {
                    return Ok(Polled::Packets(0));
                };
                let mut start = 0;
                for &(end, ts) in &batch.packets {
                    let data = &batch.data[start..end];
                    f(Packet {
                        ts,
                        data,
                        link,
                        orig_len: data.len() as u32,
                    });
                    start = end;
                }
                Ok(Polled::Packets(batch.packets.len()))
            }
            Err(RecvTimeoutError::Timeout) => Ok(Polled::Packets(0)),
            Err(RecvTimeoutError::Disconnected) => Ok(Polled::End),
        }
    }

    fn kernel_drops(&mut self) -> Option<u64> {
        None // the reader counts them (its own stats slot)
    }
}

/// How a worker hands its finished messages to the output stage.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum HandOff {
    /// Live capture: never block. A full queue holds the batch back (the next call sends
    /// it with the newer ones) up to [`MAX_HELD_MESSAGES`]; past that it is dropped and
    /// counted.
    Shed,
    /// Wait for room (shutdown, when the output stage is draining; file replay).
    Wait,
}

/// Hands a worker's finished messages (serialised by the worker) to the output stage.
fn hand_over(worker: &mut Worker, tx: &Sender<Batch>, queued: &Pool, policy: HandOff) {
    if worker.pending() == 0 {
        return;
    }
    let mut batch = worker.take_batch();
    let n = batch.len() as u64;
    if policy == HandOff::Wait {
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

/// The one worker loop: polls `source` into `worker` until the source ends, hands the
/// finished messages over, sweeps idle connections and publishes counters every
/// [`HOUSEKEEPING`]; at the end flushes the connections and waits to hand over the rest.
fn worker_loop<S: PacketSource>(
    mut source: S,
    mut worker: Worker,
    k: usize,
    tx: Sender<Batch>,
    queued: &Pool,
    shared: &Shared,
) {
    let mut last_housekeeping = Instant::now();
    let mut reported_down = false;
    // Set once `stop` is seen by a capture handle: what is left to take from the kernel.
    let mut drain: Option<StopDrain> = None;
    loop {
        if S::ENDING == Ending::OnStop {
            if drain.is_none() && shared.stop.load(Ordering::Relaxed) {
                drain = Some(StopDrain::new());
            }
            match &drain {
                Some(d) if !d.more() => break,
                Some(_) => {}
                None => fatal::inject(FaultPoint::Capture),
            }
        }
        let polled = source.poll(POLL_TIMEOUT, &mut |p: Packet<'_>| {
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
                shared.fail_capture(&e);
                break;
            }
        }
        hand_over(&mut worker, &tx, queued, HandOff::Shed);
        if last_housekeeping.elapsed() >= HOUSEKEEPING {
            last_housekeeping = Instant::now();
            worker.tick(Timestamp::now());
            if let Some(drops) = source.kernel_drops() {
                worker.set_kernel_drops(drops);
            }
            shared.publish(k, worker.stats());
        }
    }
    if let Some(drops) = source.kernel_drops() {
        worker.set_kernel_drops(drops);
    }
    drop(source);
    worker.finish_with(|w| hand_over(w, &tx, queued, HandOff::Wait));
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

/// The threads of a live capture.
pub(super) struct Started {
    pub(super) capture_threads: Vec<JoinHandle<()>>,
    pub(super) output_thread: JoinHandle<()>,
    pub(super) info: StartInfo,
}

/// Opens live capture (every socket before returning, so a missing interface or
/// capability is reported here) and starts the workers and the output stage.
pub(super) fn start(
    settings: &Settings,
    outputs: Vec<Box<dyn Output>>,
    placement: Option<Placement>,
    shared: &Arc<Shared>,
) -> Result<Started, StartError> {
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
    let output_thread = spawn("tcp-sniffer-output", shared, {
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
                worker_loop(ring, worker, k, tx, &queued, &shared)
            })?);
        }
        "af_packet"
    } else {
        let mut pcfg = PcapLiveConfig::new(&settings.interface, &settings.ports);
        pcfg.timeout = POLL_TIMEOUT;
        let live = PcapLive::open(&pcfg)?;
        capture_threads.extend(start_pcap(
            live, cfg, workers, &placement, &msg_tx, &queued, shared,
        )?);
        "pcap"
    };
    drop(msg_tx);
    Ok(Started {
        capture_threads,
        output_thread,
        info: StartInfo {
            backend,
            workers,
            source: settings.interface.clone(),
            fallback_reason,
        },
    })
}

fn af_config(s: &Settings) -> AfPacketConfig {
    AfPacketConfig::new(&s.interface, &s.ports)
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
        let worker = Worker::new(cfg.clone(), k as u16).with_placement(placement.clone());
        let (shared, out, queued) = (shared.clone(), msg_tx.clone(), queued.clone());
        let name = format!("tcp-sniffer-worker-{k}");
        threads.push(spawn(&name, &shared.clone(), move || {
            worker_loop(PacketQueue(rx), worker, k, out, &queued, &shared)
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
