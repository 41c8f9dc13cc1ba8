//! [`JsOutput`]: the engine's [`Output`] that hands batches to JavaScript.
//!
//! One `Channel::try_send` per batch carries the whole batch into one call of the
//! JavaScript `deliver(chunks, rows)` function. `chunks` is an array of strings, each a
//! JSON array of whole messages of at most about [`CHUNK_BYTES`] bytes (a single larger
//! message is a chunk of its own); the TypeScript side runs one `JSON.parse` per chunk.
//! The messages are rows (`rows` true: [`BatchFormat::JsRows`], which the TypeScript side
//! turns into schema v1 objects, see `tcp_sniffer::js_rows`) when the callback is the run's
//! only output, and schema v1 objects otherwise (the other outputs need those). A batch's
//! rows may refer to strings in its earlier rows (`tcp_sniffer::js_rows::RowStrings`), so a
//! batch crosses whole, in one call, its chunks in order, or not at all. The
//! chunks are built on the engine's output thread, so the JavaScript thread only creates
//! the strings and parses them.
//!
//! Why chunks (measured, `node --cpu-prof` and `perf` on a 100 MB replay, see
//! `bench/callback-throughput.js`): V8 puts every object larger than 128 KiB in its
//! large-object space, one `mmap` per object, zeroed and unmapped again after the next
//! scavenge. A whole batch as one string (256 messages then, ~150 KB; a file's batches
//! are now about 1 MiB) and the `'[' + … + ']'` JavaScript used to wrap it spent about a
//! quarter of the JavaScript thread in page faults and `munmap`. 48 KiB chunks stay in
//! the young generation even as two-byte strings
//! (non-ASCII text).
//!
//! The queue between the engine and the JavaScript thread is the Channel's, and it is
//! bounded here, by counting what is in flight: at most `outputQueueSize` messages and
//! [`MAX_QUEUED_BYTES`] bytes. When JavaScript is too slow and the bound is reached, live
//! capture drops the batch and counts it (`dropped_queue_full`); file replay asks
//! [`Output::has_room`] first and waits instead, so a replay delivers everything.
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
use tcp_sniffer::output::{log::log, wait_until, Batch, BatchFormat, Output, MAX_QUEUED_BYTES};
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
    /// `deliver(chunks: string[]) => number` is called on the JavaScript thread once per
    /// batch with its messages as JSON arrays; it returns how many user callbacks threw.
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

/// A chunk of a batch grows to about this many bytes of JSON before the next one starts
/// (see the module docs: under V8's 128 KiB large-object size, even as a two-byte string).
pub const CHUNK_BYTES: usize = 48 << 10;

/// A batch as it crosses: JSON arrays of whole messages, each about [`CHUNK_BYTES`] at most.
struct Chunks {
    texts: Vec<String>,
    /// The messages are rows ([`BatchFormat::JsRows`]), not schema v1 objects.
    rows: bool,
    /// Messages in all of them.
    n: usize,
    /// Bytes of all of them (what the in-flight byte bound counts).
    bytes: usize,
}

impl Chunks {
    /// Splits `batch` into JSON arrays of whole messages.
    fn of(batch: &Batch) -> Chunks {
        let mut texts = Vec::new();
        let mut cur: Vec<u8> = Vec::new();
        let mut bytes = 0;
        let mut done = |cur: &mut Vec<u8>, texts: &mut Vec<String>| {
            cur.push(b']');
            bytes += cur.len();
            let raw = std::mem::take(cur);
            // The engine writes JSON, which is UTF-8; lossy only guards the impossible case.
            texts.push(
                String::from_utf8(raw)
                    .unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned()),
            );
        };
        for m in batch.messages() {
            if !cur.is_empty() && cur.len() + m.len() + 1 > CHUNK_BYTES {
                done(&mut cur, &mut texts);
            }
            if cur.is_empty() {
                cur.reserve(CHUNK_BYTES.max(m.len() + 2));
                cur.push(b'[');
            } else {
                cur.push(b',');
            }
            cur.extend_from_slice(m);
        }
        if !cur.is_empty() {
            done(&mut cur, &mut texts);
        }
        Chunks {
            texts,
            rows: batch.format() == BatchFormat::JsRows,
            n: batch.len(),
            bytes,
        }
    }
}

/// Runs on the JavaScript thread: one call of `deliver` for the whole batch.
fn deliver_batch(
    mut cx: Cx,
    deliver: &Root<JsFunction>,
    chunks: &Chunks,
    shared: &JsShared,
) -> NeonResult<()> {
    let (n, bytes) = (chunks.n, chunks.bytes);
    if shared.abandoned.load(Ordering::SeqCst) {
        // `close` counted this batch as dropped_at_shutdown already.
        return Ok(());
    }
    let f = deliver.to_inner(&mut cx);
    let result = cx.try_catch(|cx| {
        let arr = JsArray::new(cx, chunks.texts.len());
        for (i, t) in chunks.texts.iter().enumerate() {
            let s = cx.string(t);
            arr.set(cx, i as u32, s)?;
        }
        let rows = cx.boolean(chunks.rows);
        f.call_with(cx).arg(arr).arg(rows).apply::<JsValue, _>(cx)
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
        // Built here, on the engine's output thread: the JavaScript thread is the
        // bottleneck of this path. What is in flight is these chunks (the batch itself is
        // not kept), so they are what the byte bound counts.
        let chunks = Chunks::of(batch);
        let bytes = chunks.bytes;
        s.in_flight.fetch_add(n, Ordering::SeqCst);
        s.in_flight_bytes.fetch_add(bytes, Ordering::SeqCst);
        let (deliver, shared) = (self.deliver.clone(), s.clone());
        let sent = self
            .channel
            .try_send(move |cx| deliver_batch(cx, &deliver, &chunks, &shared));
        if sent.is_err() {
            // The JavaScript environment is shutting down.
            s.leave(n, bytes);
            s.dropped_at_shutdown.fetch_add(n as u64, Ordering::Relaxed);
        }
    }

    fn takes_rows(&self) -> bool {
        true
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

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;
    use tcp_sniffer::message::HttpMessage;
    use tcp_sniffer::testing::{endpoint, request, sample_message};
    use tcp_sniffer::time::Timestamp;

    fn msg(seq: u64, body: &str) -> HttpMessage {
        HttpMessage {
            kind: request("POST", &format!("/items/{seq}?q=\"x\"\n")),
            connection_id: 7,
            sequence: seq,
            timestamp: Timestamp(seq),
            end_timestamp: Timestamp(seq + 1),
            source: endpoint("127.0.0.1:8080"),
            destination: endpoint("127.0.0.1:8080"),
            body: body.as_bytes().to_vec(),
            body_size: body.len() as u64,
            ..sample_message()
        }
    }

    /// Every chunk is a JSON array; together they are the batch's messages in order, and
    /// only a message that alone exceeds [`CHUNK_BYTES`] makes a chunk exceed it.
    #[test]
    fn chunks_are_json_arrays_of_the_batch_in_order() {
        let big = "Grüße, 世界 ".repeat(6000); // ~96 KB, more than a chunk
        let msgs: Vec<HttpMessage> = (0..700)
            .map(|i| match i % 97 {
                0 => msg(i, &big),
                1 => msg(i, "naïve \u{1} \"quoted\""),
                _ => msg(i, "{\"n\":1}"),
            })
            .collect();
        let batch = Batch::from_messages(&msgs, None);
        let chunks = Chunks::of(&batch);
        assert_eq!(chunks.n, 700);
        assert!(chunks.texts.len() > 3, "{} chunks", chunks.texts.len());
        assert_eq!(
            chunks.bytes,
            chunks.texts.iter().map(String::len).sum::<usize>()
        );
        let want: Vec<Value> = batch
            .messages()
            .map(|m| serde_json::from_slice(m).unwrap())
            .collect();
        let mut got = Vec::new();
        for t in &chunks.texts {
            let Value::Array(items) = serde_json::from_str::<Value>(t).unwrap() else {
                panic!("a chunk is not a JSON array: {}", &t[..40]);
            };
            assert!(
                t.len() <= CHUNK_BYTES || items.len() == 1,
                "a chunk of {} bytes holds {} messages",
                t.len(),
                items.len()
            );
            got.extend(items);
        }
        assert_eq!(got, want);
    }

    #[test]
    fn an_empty_batch_has_no_chunks() {
        let chunks = Chunks::of(&Batch::default());
        assert_eq!((chunks.texts.len(), chunks.n, chunks.bytes), (0, 0, 0));
    }
}
