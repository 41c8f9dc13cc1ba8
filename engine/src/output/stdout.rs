//! JSON lines on stdout: one message per line, nothing else.
//!
//! The capture path never writes to the pipe itself: [`StdoutOutput::send`] puts
//! the shared batch on a queue bounded in messages (`outputQueueSize`) and in bytes
//! ([`MAX_QUEUED_BYTES`]) and returns;
//! one writer thread copies batches into a 64 KiB buffer and flushes it whenever
//! the queue runs empty (so a message is visible at once when traffic is light) and
//! at least every 100 ms under load. A reader that stops reading fills the queue,
//! and further batches are dropped and counted (`dropped_queue_full`) — capture
//! goes on.
//!
//! A closed pipe (`tcp-sniffer ... | head -n 1`) is not an error: the writer sees
//! `EPIPE` (Rust ignores `SIGPIPE`), the output reports itself closed, what can no
//! longer be written is counted as `dropped_stdout_closed`, and the pipeline stops.
//!
//! Lifecycle: `close()` drops the queue's sender; the writer drains the queue,
//! flushes and exits. If it has not finished within the drain deadline (a reader
//! that never reads), what is still queued is counted as `dropped_at_shutdown` and
//! the thread is left behind, blocked in `write`, without delaying the caller.
//!
//! A panic in the writer ends it like a closed pipe (the output reports itself closed,
//! what it had not written is counted as `dropped_stdout_closed`, `close()` does not
//! wait) and is reported through [`Output::failure`]: the run treats it as fatal.

use std::io::{ErrorKind, Write};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use crate::handoff::{Receiver, Sender};
use serde_json::json;

use super::{log, Batch, Output, OutputError, MAX_QUEUED_BYTES};
use crate::config::LogLevel;
use crate::fatal::{self, FaultPoint, ThreadPanic};
use crate::stats::OutputStats;

/// The writer flushes at least this often while data is waiting.
pub const FLUSH_INTERVAL: Duration = Duration::from_millis(100);

/// Counters and flags shared with the writer thread.
#[derive(Default)]
struct Shared {
    /// Messages queued and not yet written (the queue bound applies to this).
    pending: AtomicUsize,
    /// Bytes of those messages (bounded by [`MAX_QUEUED_BYTES`]).
    pending_bytes: AtomicUsize,
    closed: AtomicBool,
    /// Write `"body":""` instead of each body (`stdoutBodies` false).
    omit_bodies: AtomicBool,
    /// Set when close() gave up waiting: the writer no longer counts anything.
    abandoned: AtomicBool,
    /// Held while counting, so giving up and counting cannot interleave.
    acct: Mutex<()>,
    /// Messages accepted onto the queue.
    accepted: AtomicU64,
    delivered: AtomicU64,
    dropped_queue_full: AtomicU64,
    /// Accepted messages the writer could not write (pipe closed).
    dropped_closed: AtomicU64,
    /// Messages refused by `send` because the pipe was already closed.
    dropped_closed_send: AtomicU64,
    dropped_at_shutdown: AtomicU64,
    done: Mutex<bool>,
    done_cv: Condvar,
    /// The writer's panic, if it died of one.
    failure: Mutex<Option<ThreadPanic>>,
    /// Signalled whenever the writer takes messages off the queue (file replay waits on it).
    room: Condvar,
    room_lock: Mutex<()>,
}

impl Shared {
    /// Messages accepted and neither written nor counted as dropped yet (queued, or
    /// written into the buffer but not flushed). Call with `acct` held.
    fn unaccounted(&self) -> u64 {
        self.accepted
            .load(Ordering::Relaxed)
            .saturating_sub(self.delivered.load(Ordering::Relaxed))
            .saturating_sub(self.dropped_closed.load(Ordering::Relaxed))
    }
}

/// Writes batches to stdout (or any writer) from a background thread.
pub struct StdoutOutput {
    tx: Option<Sender<Arc<Batch>>>,
    shared: Arc<Shared>,
    queue_size: usize,
    drain_timeout: Duration,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl StdoutOutput {
    /// Whether the lines carry their bodies (`stdoutBodies`); without, each message is
    /// written with `"body":""` (its `bodySize` stays). Writers start with bodies.
    pub fn with_bodies(self, bodies: bool) -> Self {
        self.shared.omit_bodies.store(!bodies, Ordering::Relaxed);
        self
    }

    /// Writes to the process's stdout; at most `queue_size` messages wait, and
    /// `close()` waits at most `drain_timeout` for them to be written.
    pub fn stdout(queue_size: usize, drain_timeout: Duration) -> Result<Self, OutputError> {
        Self::with_writer(std::io::stdout(), queue_size, drain_timeout)
    }

    /// Writes to `w` (tests use pipes and slow writers).
    pub fn with_writer<W: Write + Send + 'static>(
        w: W,
        queue_size: usize,
        drain_timeout: Duration,
    ) -> Result<Self, OutputError> {
        let (tx, rx) = crate::handoff::unbounded::<Arc<Batch>>();
        let shared = Arc::new(Shared::default());
        let (s, on_panic) = (shared.clone(), shared.clone());
        let thread = fatal::spawn(
            "tcp-sniffer-stdout",
            move || {
                writer_loop(w, rx, &s);
                *s.done.lock().unwrap_or_else(|e| e.into_inner()) = true;
                s.done_cv.notify_all();
            },
            move |p| writer_died(&on_panic, p),
        )
        .map_err(OutputError::Spawn)?;
        Ok(StdoutOutput {
            tx: Some(tx),
            shared,
            queue_size: queue_size.max(1),
            drain_timeout,
            thread: Some(thread),
        })
    }
}

/// The writer panicked: everything accepted and not yet written is lost (counted as
/// `dropped_stdout_closed`), the output is closed, and `close()` does not wait.
fn writer_died(s: &Shared, p: ThreadPanic) {
    *s.failure.lock().unwrap_or_else(|e| e.into_inner()) = Some(p);
    s.closed.store(true, Ordering::SeqCst);
    {
        let _g = s.acct.lock().unwrap_or_else(|e| e.into_inner());
        if !s.abandoned.swap(true, Ordering::Relaxed) {
            let left = s.unaccounted();
            s.dropped_closed.fetch_add(left, Ordering::Relaxed);
        }
    }
    s.room.notify_all();
    *s.done.lock().unwrap_or_else(|e| e.into_inner()) = true;
    s.done_cv.notify_all();
}

fn writer_loop<W: Write>(w: W, rx: Receiver<Arc<Batch>>, s: &Shared) {
    let mut w = std::io::BufWriter::with_capacity(1 << 16, w);
    // Messages in `w`'s buffer: counted as delivered once flushed.
    let mut unflushed = 0u64;
    let mut last_flush = Instant::now();
    for batch in rx.iter() {
        fatal::inject(FaultPoint::Stdout);
        let n = batch.len();
        s.pending_bytes
            .fetch_sub(batch.as_lines().len(), Ordering::Relaxed);
        if s.closed.load(Ordering::Relaxed) {
            s.pending.fetch_sub(n, Ordering::Relaxed);
            s.room.notify_all();
            count(s, &s.dropped_closed, n as u64);
            continue;
        }
        let written = if s.omit_bodies.load(Ordering::Relaxed) {
            batch.write_lines_without_bodies(&mut w)
        } else {
            w.write_all(batch.as_lines())
        };
        s.pending.fetch_sub(n, Ordering::Relaxed);
        s.room.notify_all();
        if let Err(e) = written {
            fail(s, e, unflushed + n as u64);
            unflushed = 0;
            continue;
        }
        unflushed += n as u64;
        if rx.is_empty() || last_flush.elapsed() >= FLUSH_INTERVAL {
            match w.flush() {
                Ok(()) => count(s, &s.delivered, unflushed),
                Err(e) => fail(s, e, unflushed),
            }
            unflushed = 0;
            last_flush = Instant::now();
        }
    }
    if unflushed > 0 && !s.closed.load(Ordering::Relaxed) {
        match w.flush() {
            Ok(()) => count(s, &s.delivered, unflushed),
            Err(e) => fail(s, e, unflushed),
        }
    }
    // Don't let BufWriter's drop retry a failed write.
    let _ = w.into_parts();
}

/// Adds to a counter unless close() already accounted for everything.
fn count(s: &Shared, c: &AtomicU64, n: u64) {
    let _g = s.acct.lock().unwrap_or_else(|e| e.into_inner());
    if !s.abandoned.load(Ordering::Relaxed) {
        c.fetch_add(n, Ordering::Relaxed);
    }
}

fn fail(s: &Shared, e: std::io::Error, lost: u64) {
    if !s.closed.swap(true, Ordering::Relaxed) && e.kind() != ErrorKind::BrokenPipe {
        log::log(
            LogLevel::Error,
            "stdout output stopped",
            &[("error", json!(e.to_string()))],
        );
    }
    count(s, &s.dropped_closed, lost);
}

impl Output for StdoutOutput {
    fn send(&mut self, batch: &Arc<Batch>) {
        let n = batch.len();
        if n == 0 {
            return;
        }
        let s = &self.shared;
        let Some(tx) = self.tx.as_ref() else {
            s.dropped_at_shutdown.fetch_add(n as u64, Ordering::Relaxed);
            return;
        };
        if s.closed.load(Ordering::Relaxed) {
            s.dropped_closed_send.fetch_add(n as u64, Ordering::Relaxed);
            return;
        }
        // Only this thread adds to `pending`, so check-then-add cannot overshoot.
        let bytes = batch.as_lines().len();
        // An empty queue takes one whole batch whatever its size (see `has_room`).
        let pending = s.pending.load(Ordering::Relaxed);
        if pending > 0
            && (pending + n > self.queue_size
                || s.pending_bytes.load(Ordering::Relaxed) + bytes > MAX_QUEUED_BYTES)
        {
            s.dropped_queue_full.fetch_add(n as u64, Ordering::Relaxed);
            return;
        }
        s.pending.fetch_add(n, Ordering::Relaxed);
        s.pending_bytes.fetch_add(bytes, Ordering::Relaxed);
        s.accepted.fetch_add(n as u64, Ordering::Relaxed);
        // Cannot fail: the writer only exits after this sender is dropped.
        let _ = tx.send(batch.clone());
    }

    /// The writer flushes by itself whenever its queue runs empty and at least
    /// every [`FLUSH_INTERVAL`]; nothing to do here.
    fn flush(&mut self) {}

    fn close(&mut self) {
        let Some(tx) = self.tx.take() else { return };
        drop(tx);
        let s = &self.shared;
        let deadline = Instant::now() + self.drain_timeout;
        let mut done = s.done.lock().unwrap_or_else(|e| e.into_inner());
        while !*done {
            let now = Instant::now();
            if now >= deadline {
                break;
            }
            done = s
                .done_cv
                .wait_timeout(done, deadline - now)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
        if *done {
            drop(done);
            if let Some(t) = self.thread.take() {
                let _ = t.join();
            }
            return;
        }
        drop(done);
        let left = {
            let _g = s.acct.lock().unwrap_or_else(|e| e.into_inner());
            s.abandoned.store(true, Ordering::Relaxed);
            // Everything accepted and not yet accounted for (queued, or written
            // into the buffer but not flushed).
            let left = s.unaccounted();
            s.dropped_at_shutdown.fetch_add(left, Ordering::Relaxed);
            left
        };
        log::log(
            LogLevel::Warn,
            "stdout not drained before the deadline; pending messages dropped",
            &[
                ("messages", json!(left)),
                (
                    "drainTimeoutMs",
                    json!(self.drain_timeout.as_millis() as u64),
                ),
            ],
        );
        // The writer is blocked in write(): leave it behind.
        self.thread.take();
    }

    fn is_closed(&self) -> bool {
        self.shared.closed.load(Ordering::Relaxed)
    }

    fn failure(&self) -> Option<ThreadPanic> {
        self.shared
            .failure
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    fn wait_for_room(&self, batch: &Batch, timeout: Duration) -> bool {
        // The writer signals `room`; the short recheck only guards against a missed wake-up.
        let s = &self.shared;
        super::wait_until(
            &s.room_lock,
            &s.room,
            timeout,
            Duration::from_millis(5),
            || self.has_room(batch) || self.is_closed(),
        )
    }

    fn has_room(&self, batch: &Batch) -> bool {
        let s = &self.shared;
        let pending = s.pending.load(Ordering::Relaxed);
        pending == 0
            || (pending + batch.len() <= self.queue_size
                && s.pending_bytes.load(Ordering::Relaxed) + batch.as_lines().len()
                    <= MAX_QUEUED_BYTES)
    }

    fn stats(&self) -> OutputStats {
        let s = &self.shared;
        OutputStats {
            delivered: s.delivered.load(Ordering::Relaxed),
            dropped_queue_full: s.dropped_queue_full.load(Ordering::Relaxed),
            dropped_stdout_closed: s.dropped_closed.load(Ordering::Relaxed)
                + s.dropped_closed_send.load(Ordering::Relaxed),
            dropped_at_shutdown: s.dropped_at_shutdown.load(Ordering::Relaxed),
            ..OutputStats::default()
        }
    }
}

impl Drop for StdoutOutput {
    fn drop(&mut self) {
        // Best effort without blocking: the writer drains what it has and exits.
        self.tx.take();
    }
}
