//! [`JsOutput`]: the engine's [`Output`] that hands batches to JavaScript.
//!
//! One `Channel::try_send` per batch carries the whole batch's JSON-lines text into
//! one call of the JavaScript `deliver(text)` function (the TypeScript side splits
//! and parses it). The queue between the engine and the JavaScript thread is the
//! Channel's, and it is bounded here, by counting what is in flight: at most
//! `outputQueueSize` messages and [`MAX_QUEUED_BYTES`] bytes. When JavaScript is too
//! slow and the bound is reached, live capture drops the batch and counts it
//! (`dropped_queue_full`); file replay asks [`Output::has_room`] first and waits
//! instead, so a replay delivers everything.
//!
//! `deliver` returns how many user callbacks threw for that batch; the count goes to
//! `callback_errors`. On `close` the output waits (at most `outputDrainTimeoutMs`)
//! for every batch in flight to be delivered; what is still in flight then is
//! counted as `dropped_at_shutdown` and is not delivered later.

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use neon::event::Channel;
use neon::handle::Root;
use neon::prelude::*;
use serde_json::json;
use tcp_sniffer::config::LogLevel;
use tcp_sniffer::output::{log::log, wait_until, Batch, Output, MAX_QUEUED_BYTES};
use tcp_sniffer::stats::OutputStats;

/// Counters and flags shared by the engine's output thread and the JavaScript thread.
#[derive(Default)]
pub struct JsShared {
    /// Messages sent through the Channel and not yet handed to `deliver`.
    in_flight: AtomicUsize,
    /// Bytes of those messages.
    in_flight_bytes: AtomicUsize,
    /// Set when `close` gave up waiting: later deliveries are discarded (already counted).
    abandoned: AtomicBool,
    /// Set by `close`: nothing more is accepted.
    closed: AtomicBool,
    /// Set by JavaScript while an async iterator's buffer is full: a file replay waits
    /// (live capture does not ask, see [`Output::has_room`]).
    paused: AtomicBool,
    delivered: AtomicU64,
    dropped_queue_full: AtomicU64,
    dropped_at_shutdown: AtomicU64,
    callback_errors: AtomicU64,
    /// Held while counting, so giving up and delivering cannot interleave.
    acct: Mutex<()>,
    /// Signalled whenever a batch leaves the queue (room for replay, progress for close).
    room: Condvar,
}

impl JsShared {
    /// The counters so far.
    pub fn stats(&self) -> OutputStats {
        OutputStats {
            delivered: self.delivered.load(Ordering::Relaxed),
            dropped_queue_full: self.dropped_queue_full.load(Ordering::Relaxed),
            dropped_at_shutdown: self.dropped_at_shutdown.load(Ordering::Relaxed),
            callback_errors: self.callback_errors.load(Ordering::Relaxed),
            ..OutputStats::default()
        }
    }

    /// Pauses or resumes a file replay (JavaScript's async iterator is full / has room again).
    pub fn set_paused(&self, paused: bool) {
        self.paused.store(paused, Ordering::SeqCst);
        if !paused {
            let _acct = self.acct.lock().unwrap_or_else(|e| e.into_inner());
            self.room.notify_all();
        }
    }

    /// Takes `n` messages of `bytes` off the in-flight count and wakes waiters.
    fn leave(&self, n: usize, bytes: usize) {
        self.in_flight.fetch_sub(n, Ordering::SeqCst);
        self.in_flight_bytes.fetch_sub(bytes, Ordering::SeqCst);
        self.room.notify_all();
    }
}

/// Sends each batch to JavaScript through a Neon [`Channel`], bounded.
pub struct JsOutput {
    channel: Channel,
    deliver: Arc<Root<JsFunction>>,
    shared: Arc<JsShared>,
    queue_size: usize,
    drain_timeout: Duration,
}

impl JsOutput {
    /// `deliver(text: string) => number` is called on the JavaScript thread once per
    /// batch with its JSON lines; it returns how many user callbacks threw.
    pub fn new(
        channel: Channel,
        deliver: Root<JsFunction>,
        shared: Arc<JsShared>,
        queue_size: usize,
        drain_timeout: Duration,
    ) -> Self {
        JsOutput {
            channel,
            deliver: Arc::new(deliver),
            shared,
            queue_size: queue_size.max(1),
            drain_timeout,
        }
    }

    fn fits(&self, n: usize, bytes: usize) -> bool {
        let in_flight = self.shared.in_flight.load(Ordering::SeqCst);
        in_flight == 0
            || (in_flight + n <= self.queue_size
                && self.shared.in_flight_bytes.load(Ordering::SeqCst) + bytes <= MAX_QUEUED_BYTES)
    }
}

/// Runs on the JavaScript thread: one call of `deliver` for the whole batch.
fn deliver_batch(
    mut cx: Cx,
    deliver: &Root<JsFunction>,
    batch: &Batch,
    shared: &JsShared,
) -> NeonResult<()> {
    let (n, bytes) = (batch.len(), batch.as_lines().len());
    if shared.abandoned.load(Ordering::SeqCst) {
        // `close` counted this batch as dropped_at_shutdown already.
        return Ok(());
    }
    // The engine writes JSON, which is UTF-8; lossy only guards the impossible case.
    let text = String::from_utf8_lossy(batch.as_lines());
    let f = deliver.to_inner(&mut cx);
    let result = cx.try_catch(|cx| {
        let arg = cx.string(&text);
        f.call_with(cx).arg(arg).apply::<JsValue, _>(cx)
    });
    let errors = match result {
        Ok(v) => v
            .downcast::<JsNumber, _>(&mut cx)
            .map(|x| x.value(&mut cx).max(0.0) as u64)
            .unwrap_or(0),
        Err(e) => {
            // `deliver` itself threw (it catches user callbacks): count the batch's messages.
            let text = e
                .to_string(&mut cx)
                .map(|s| s.value(&mut cx))
                .unwrap_or_default();
            log(
                LogLevel::Error,
                "message delivery to JavaScript failed",
                &[("error", json!(text)), ("messages", json!(n))],
            );
            n as u64
        }
    };
    // Count, then leave the queue: `close` returns only after the counts are final.
    let _acct = shared.acct.lock().unwrap_or_else(|e| e.into_inner());
    shared.callback_errors.fetch_add(errors, Ordering::Relaxed);
    shared.delivered.fetch_add(n as u64, Ordering::Relaxed);
    if shared.abandoned.load(Ordering::SeqCst) {
        // `close` gave up while this batch was being delivered: it was delivered after all.
        shared
            .dropped_at_shutdown
            .fetch_sub(n as u64, Ordering::Relaxed);
    } else {
        shared.leave(n, bytes);
    }
    Ok(())
}

impl Output for JsOutput {
    fn send(&mut self, batch: &Arc<Batch>) {
        let (n, bytes) = (batch.len(), batch.as_lines().len());
        if n == 0 {
            return;
        }
        let s = &self.shared;
        if s.closed.load(Ordering::SeqCst) || !self.fits(n, bytes) {
            s.dropped_queue_full.fetch_add(n as u64, Ordering::Relaxed);
            return;
        }
        s.in_flight.fetch_add(n, Ordering::SeqCst);
        s.in_flight_bytes.fetch_add(bytes, Ordering::SeqCst);
        let (batch, deliver, shared) = (batch.clone(), self.deliver.clone(), s.clone());
        let sent = self
            .channel
            .try_send(move |cx| deliver_batch(cx, &deliver, &batch, &shared));
        if sent.is_err() {
            // The JavaScript environment is shutting down.
            s.leave(n, bytes);
            s.dropped_at_shutdown.fetch_add(n as u64, Ordering::Relaxed);
        }
    }

    fn flush(&mut self) {}

    fn close(&mut self) {
        let s = &self.shared;
        s.closed.store(true, Ordering::SeqCst);
        let deadline = Instant::now() + self.drain_timeout;
        let mut guard = s.acct.lock().unwrap_or_else(|e| e.into_inner());
        loop {
            let pending = s.in_flight.load(Ordering::SeqCst);
            if pending == 0 {
                return;
            }
            let now = Instant::now();
            if now >= deadline {
                s.abandoned.store(true, Ordering::SeqCst);
                s.dropped_at_shutdown
                    .fetch_add(pending as u64, Ordering::Relaxed);
                log(
                    LogLevel::Warn,
                    "JavaScript did not take every message before the drain deadline",
                    &[("dropped", json!(pending))],
                );
                return;
            }
            guard = s
                .room
                .wait_timeout(guard, (deadline - now).min(Duration::from_millis(50)))
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
    }

    fn is_closed(&self) -> bool {
        self.shared.closed.load(Ordering::SeqCst)
    }

    fn has_room(&self, batch: &Batch) -> bool {
        !self.shared.paused.load(Ordering::SeqCst) && self.fits(batch.len(), batch.as_lines().len())
    }

    fn wait_for_room(&self, batch: &Batch, timeout: Duration) -> bool {
        let s = &self.shared;
        wait_until(&s.acct, &s.room, timeout, Duration::from_millis(50), || {
            self.has_room(batch) || self.is_closed()
        })
    }

    fn stats(&self) -> OutputStats {
        self.shared.stats()
    }
}
