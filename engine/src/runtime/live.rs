//! Live capture: the sources of the one worker loop, and the libpcap reader.
//!
//! ```text
//!  AF_PACKET: ring k ──────────────────────────────► worker_loop k   (kernel fanout shards)
//!  libpcap:   reader ─► batches by flow hash ─► queue k ─► worker_loop k
//!  libpcap, one worker: the handle ──────────────────────► worker_loop 0
//!                                   worker_loop k ─► JSON batches ─► output stage
//! ```
//!
//! Every worker runs [`worker_loop`] (in `pipeline`, shared with file replay); what differs
//! between backends is only the [`PacketSource`] it polls (an AF_PACKET ring, the libpcap
//! handle itself when there is one worker, or the queue the libpcap reader fills for
//! several) and how that source ends ([`Ending`]). Live capture never blocks on the output
//! stage: every live source hands over with [`HandOff::Shed`] (a batch is held back up to a
//! bound, then dropped and counted); only at shutdown, when the output stage is draining,
//! does a worker wait ([`HandOff::Wait`]).
//!
//! Every thread here runs under `SCHED_BATCH` ([`yield_to_the_application`]): it gets its
//! full fair share of the CPU, but its wake-ups do not preempt the application it watches.
//! The kernel's ring (or libpcap's buffer) holds what arrives meanwhile, and a few
//! milliseconds of delay cost a passive observer nothing.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::handoff::{bounded, Receiver, RecvTimeoutError, Sender, TrySendError};
use serde_json::json;

use super::output::output_stage;
use super::{Shared, StartError, StartInfo};
use crate::budget::{Charge, Pool};
use crate::capture::afpacket::{open_fanout, AfPacketConfig};
use crate::capture::pcap_live::{PcapLive, PcapLiveConfig};
use crate::capture::source::{Ending, HandOff, PacketSource, Polled};
use crate::capture::{available_cpus, local_addresses, CaptureError, Packet};
use crate::config::{CaptureBackend, LogLevel, Settings};
use crate::fatal::{self, FaultPoint};
use crate::message::Placement;
use crate::output::log::log;
use crate::output::{Batch, BatchFormat, Output};
use crate::pipeline::{
    flow_config, worker_loop, OutputQueue, RunControl, StopDrain, Worker, HOUSEKEEPING,
    POLL_TIMEOUT,
};
use crate::shard::shard_of;
use crate::stats::Stats;
use crate::time::Timestamp;
use crate::wire::LinkType;

/// Message batches waiting for the output stage, per worker.
const OUTPUT_QUEUE_BATCHES: usize = 64;
/// Packet batches waiting for one worker (libpcap backend).
const WORKER_QUEUE_BATCHES: usize = 64;
/// When a worker's packet queue is full, the libpcap reader keeps adding to that worker's
/// pending batch (handed over once there is room) up to this many bytes; past it the batch
/// is dropped and counted. Under live capture batches are small (a poll in immediate mode
/// returns a few packets), so the queue alone absorbs only milliseconds of jitter.
const MAX_HELD_PACKET_BYTES: usize = 16 << 20;
/// Bytes of serialised messages waiting for (or inside) the output stage's queue, all
/// workers together: a batch that does not fit is held back or dropped as when the
/// queue is full. Counting batches alone would let 64 batches of large bodies pile up.
const OUTPUT_QUEUE_BYTES: usize = 16 << 20;
/// Bytes of packets waiting in the libpcap reader's queues to the workers, all
/// workers together (the same rule).
const WORKER_QUEUE_BYTES: usize = 32 << 20;

/// One worker's queue of packet batches from the libpcap reader.
struct PacketQueue(Receiver<PacketBatch>);

impl PacketSource for PacketQueue {
    const ENDING: Ending = Ending::Closed;
    const HAND_OFF: HandOff = HandOff::Shed;

    fn poll<F: FnMut(Packet<'_>)>(
        &mut self,
        timeout: Duration,
        mut f: F,
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
    // No kernel drops of its own: the reader counts them (its own stats slot).
}

/// Runs the one worker loop over a live `source` into the output stage.
fn run_worker<S: PacketSource>(
    source: S,
    mut worker: Worker,
    k: usize,
    tx: Sender<Batch>,
    queued: Pool,
    shared: &Shared,
) {
    let mut down = OutputQueue { tx, queued };
    worker_loop(source, &mut worker, k, &mut down, shared);
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

    let format = BatchFormat::for_outputs(&outputs);
    // Worker `k`, as every backend makes its workers.
    let new_worker = |k: usize| {
        Worker::new(cfg.clone(), k as u16)
            .with_placement(placement.clone())
            .with_format(format)
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
            let worker = new_worker(k);
            let (shared, tx, queued) = (shared.clone(), msg_tx.clone(), queued.clone());
            let name = format!("tcp-sniffer-ring-{k}");
            capture_threads.push(spawn(&name, &shared.clone(), move || {
                run_worker(ring, worker, k, tx, queued, &shared)
            })?);
        }
        "af_packet"
    } else {
        let mut pcfg = PcapLiveConfig::new(&settings.interface, &settings.ports);
        pcfg.timeout = POLL_TIMEOUT;
        let live = PcapLive::open(&pcfg)?;
        if workers == 1 {
            // One worker reads the handle itself: no reader thread, no copy of every
            // packet into a batch, no queue and no wake-up per hand-over.
            let worker = new_worker(0);
            let (shared, tx, queued) = (shared.clone(), msg_tx.clone(), queued.clone());
            capture_threads.push(spawn("tcp-sniffer-pcap", &shared.clone(), move || {
                run_worker(live, worker, 0, tx, queued, &shared)
            })?);
        } else {
            capture_threads.extend(start_pcap(
                live,
                workers,
                &new_worker,
                &msg_tx,
                &queued,
                shared,
            )?);
        }
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

/// Starts a thread of live capture (see [`super::spawn`]) under `SCHED_BATCH`
/// ([`yield_to_the_application`]): every thread of this module is started here.
fn spawn(
    name: &str,
    shared: &Arc<Shared>,
    f: impl FnOnce() + Send + 'static,
) -> Result<JoinHandle<()>, StartError> {
    super::spawn(name, shared, move || {
        yield_to_the_application();
        f()
    })
}

/// Puts the calling thread under `SCHED_BATCH`: the same CFS share as before, but the
/// scheduler no longer lets its wake-ups preempt a running task. Without it, every time a
/// ring block retires the capture thread can take the CPU from the application's request
/// handler mid-request; with it, it runs at the next ordinary scheduling point. Capture
/// loses nothing (the ring buffers the delay) and the application keeps its cache and its
/// time slice. Needs no privilege; if the kernel refuses, the thread runs as it was.
fn yield_to_the_application() {
    let param = libc::sched_param { sched_priority: 0 };
    // SAFETY: `param` is a valid `sched_param` that outlives the call; pid 0 is the calling
    // thread, and SCHED_BATCH with priority 0 is allowed to every thread.
    let rc = unsafe { libc::sched_setscheduler(0, libc::SCHED_BATCH, &param) };
    if rc != 0 {
        log(
            LogLevel::Debug,
            "could not put a capture thread under SCHED_BATCH; it keeps the default policy",
            &[("reason", json!(std::io::Error::last_os_error().to_string()))],
        );
    }
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
    workers: usize,
    new_worker: &dyn Fn(usize) -> Worker,
    msg_tx: &Sender<Batch>,
    queued: &Pool,
    shared: &Arc<Shared>,
) -> Result<Vec<JoinHandle<()>>, StartError> {
    let mut threads = Vec::new();
    let mut txs = Vec::new();
    for k in 0..workers {
        let (tx, rx) = bounded::<PacketBatch>(WORKER_QUEUE_BATCHES);
        txs.push(tx);
        let worker = new_worker(k);
        let (shared, out, queued) = (shared.clone(), msg_tx.clone(), queued.clone());
        let name = format!("tcp-sniffer-worker-{k}");
        threads.push(spawn(&name, &shared.clone(), move || {
            run_worker(PacketQueue(rx), worker, k, out, queued, &shared)
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
