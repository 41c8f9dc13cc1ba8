//! Outputs: where serialised messages go.
//!
//! Messages are serialised exactly once, into a [`Batch`] of JSON lines; every
//! output receives the same `Arc<Batch>`. stdout writes the lines as they are, the
//! output URL slices single messages out of it, the Node addon hands the text to
//! JavaScript in one crossing.
//!
//! - [`stdout::StdoutOutput`]: JSON lines on stdout from a writer thread (bounded
//!   queue, drops counted, closed pipe ends the run cleanly).
//! - [`http_post::HttpOutput`]: `POST` to the output URL from a pool of senders
//!   (bounded queue, retries 1 s/2 s/4 s, drain deadline on close).
//! - [`log`]: the JSON-lines logger on stderr these use.
//!
//! [`build_outputs`] makes the outputs the settings ask for. Every output's
//! `send` returns without waiting for its destination; `close` waits at most
//! `outputDrainTimeoutMs` and counts what it could not deliver.

pub mod http_post;
pub mod log;
pub mod otlp;
pub mod stdout;

use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use crate::budget::{Charge, Pool};
use crate::config::Settings;
use crate::fatal::ThreadPanic;
use crate::js_rows::RowStrings;
use crate::message::{HttpMessage, Placement};
use crate::stats::OutputStats;

pub use http_post::{HttpOutput, HttpOutputConfig};
pub use stdout::StdoutOutput;

/// Each output holds at most this many bytes of queued JSON, whatever
/// `outputQueueSize` allows (10 000 messages with 64 KiB bodies would be ~870 MB); see docs/memory.md.
pub const MAX_QUEUED_BYTES: usize = 32 << 20;

/// An output could not be set up. Messages never contain the auth token.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum OutputError {
    /// The output URL is not an absolute `http://` or `https://` URL.
    #[error("invalid setting outputUrl: expected an http:// or https:// URL with a host, got {0}")]
    InvalidUrl(String),
    /// The token cannot be sent in an HTTP header (the value is not shown).
    #[error("invalid setting outputUrlAuthToken: only printable ASCII characters are accepted")]
    InvalidToken,
    /// The trusted-roots file could not be used.
    #[error("cannot use the CA certificates in {path}: {reason}")]
    CaFile {
        /// The file (or the setting naming it).
        path: String,
        /// What went wrong.
        reason: String,
    },
    /// A sender or writer thread could not be started.
    #[error("cannot start an output thread: {0}")]
    Spawn(#[source] std::io::Error),
}

/// The outputs `settings` ask for: the output URL when set, and stdout when
/// `outputStdout` is true — or, when it is not set, when `default_stdout` is true
/// and no output URL is set (pass `true` for the CLI and the sidecar, `false` for
/// the library, whose messages go to its callback).
///
/// Uses `outputQueueSize` and `outputDrainTimeoutMs` for both outputs, and for the
/// URL also `outputUrl`, `outputUrlAuthToken`, `outputBatchSize`,
/// `outputBatchWaitMs`, `outputConcurrency`, `outputRetryBaseMs` and the
/// `SSL_CERT_FILE` environment variable (see [`http_post`]).
pub fn build_outputs(
    settings: &Settings,
    default_stdout: bool,
) -> Result<Vec<Box<dyn Output>>, OutputError> {
    let mut outputs: Vec<Box<dyn Output>> = Vec::new();
    let stdout = settings
        .output_stdout
        .unwrap_or(default_stdout && settings.output_url.is_none());
    if stdout {
        outputs.push(Box::new(
            StdoutOutput::stdout(
                settings.output_queue_size,
                Duration::from_millis(settings.output_drain_timeout_ms),
            )?
            .with_bodies(settings.stdout_bodies),
        ));
    }
    if let Some(cfg) = HttpOutputConfig::from_settings(settings)? {
        outputs.push(Box::new(HttpOutput::new(cfg)?));
    }
    Ok(outputs)
}

/// The form messages take in a [`Batch`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum BatchFormat {
    /// Schema v1 JSON objects: what every output writes and what users read.
    #[default]
    Json,
    /// JSON arrays of the same values by position ([`HttpMessage::write_js_row`]): for
    /// the Node library only, whose JavaScript side builds schema v1 objects from them.
    /// JavaScript's `JSON.parse` builds arrays far faster than keyed objects, and it is
    /// the library's bottleneck; no output that writes messages out may get rows.
    JsRows,
}

impl BatchFormat {
    /// Rows when every output takes them (the library with its callback alone), else JSON.
    pub fn for_outputs(outputs: &[Box<dyn Output>]) -> BatchFormat {
        if !outputs.is_empty() && outputs.iter().all(|o| o.takes_rows()) {
            BatchFormat::JsRows
        } else {
            BatchFormat::Json
        }
    }
}

/// Serialised messages, each followed by `\n`: schema v1 JSON objects, or rows when
/// every output takes them (see [`BatchFormat`]).
#[derive(Debug, Default)]
pub struct Batch {
    format: BatchFormat,
    buffers: Buffers,
    /// Bytes of a queue's byte budget this batch holds while it waits (given back
    /// when the batch is dropped, after delivery).
    queued: Option<Charge>,
    /// Where the buffers go back when the batch is dropped (full file batches only).
    spares: Option<SpareBuffers>,
}

/// The memory of a [`Batch`]: what [`SpareBuffers`] keeps for the next one.
#[derive(Debug, Default)]
struct Buffers {
    lines: Vec<u8>,
    ends: Vec<usize>,
    /// Where each message's `body` string contents are in `lines` (between the quotes).
    bodies: Vec<std::ops::Range<usize>>,
    /// The values rows write once per batch ([`BatchFormat::JsRows`] only).
    row_strings: RowStrings,
}

/// The buffers of a worker's delivered file batches, kept for its next batches.
///
/// A file batch is about a megabyte, filled on the worker's thread and dropped on the
/// output's. Given back to the allocator, its pages were often returned to the kernel
/// and faulted in again for the next batch: with two workers, some 4 700 page faults
/// (and the `madvise` that preceded them, which interrupts the other core) per 100 MB
/// replayed. Kept here, they stay mapped. A live capture's batches come here only at
/// shutdown, when its workers hand over full batches as a file's do: while it runs they
/// are small, and its queue charges a batch for its capacity (see [`Batch::charge_to`]).
///
/// Bounded: at most 4 sets (`KEPT`), each of at most 4 MiB (`MAX_LINES`; a batch grown
/// past it by a large body is freed).
#[derive(Clone, Debug, Default)]
pub struct SpareBuffers(Arc<Mutex<Vec<Buffers>>>);

impl SpareBuffers {
    /// Sets of buffers kept: about as many batches as are in flight at once.
    const KEPT: usize = 4;
    /// The largest `lines` buffer kept.
    const MAX_LINES: usize = 4 << 20;

    fn take(&self) -> Option<Buffers> {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).pop()
    }

    fn give_back(&self, mut buffers: Buffers) {
        if buffers.lines.capacity() > Self::MAX_LINES {
            return;
        }
        let mut spare = self.0.lock().unwrap_or_else(|e| e.into_inner());
        if spare.len() < Self::KEPT {
            buffers.lines.clear();
            buffers.ends.clear();
            buffers.bodies.clear();
            buffers.row_strings.clear();
            spare.push(buffers);
        }
    }

    /// Sets of buffers kept right now.
    #[cfg(test)]
    fn kept(&self) -> usize {
        self.0.lock().unwrap().len()
    }
}

impl Drop for Batch {
    fn drop(&mut self) {
        if let Some(spares) = self.spares.take() {
            spares.give_back(std::mem::take(&mut self.buffers));
        }
    }
}

impl Batch {
    /// Serialises `msgs` (with the placement, when known).
    pub fn from_messages(msgs: &[HttpMessage], placement: Option<&Placement>) -> Batch {
        let mut batch = Batch::default();
        batch.extend(msgs, placement);
        batch
    }

    /// An empty batch whose messages will be written in `format`.
    pub fn new(format: BatchFormat) -> Batch {
        Batch {
            format,
            buffers: Buffers::default(),
            queued: None,
            spares: None,
        }
    }

    /// The form of this batch's messages.
    pub fn format(&self) -> BatchFormat {
        self.format
    }

    /// Makes room for at least `bytes` of serialised messages in this empty batch, in
    /// buffers from `spares` when it has some, and gives its buffers back to `spares`
    /// once it has been delivered (for full file batches; see [`SpareBuffers`]).
    pub fn reserve_from(&mut self, bytes: usize, spares: &SpareBuffers) {
        debug_assert!(self.is_empty(), "only an empty batch swaps its buffers");
        if self.buffers.lines.capacity() < bytes {
            if let Some(buffers) = spares.take() {
                self.buffers = buffers;
            }
        }
        self.buffers.lines.reserve(bytes);
        self.spares = Some(spares.clone());
    }

    /// Makes room for at least `bytes` more of serialised messages.
    pub fn reserve(&mut self, bytes: usize) {
        self.buffers.lines.reserve(bytes);
    }

    /// Appends `msgs`, serialised (with the placement, when known).
    pub fn extend(&mut self, msgs: &[HttpMessage], placement: Option<&Placement>) {
        // A typical message is 400–700 bytes of JSON; reserving once avoids most regrowth.
        self.buffers.lines.reserve(msgs.len() * 640);
        self.buffers.ends.reserve(msgs.len());
        self.buffers.bodies.reserve(msgs.len());
        for m in msgs {
            let body = match self.format {
                BatchFormat::Json => m.write_json(placement, &mut self.buffers.lines),
                BatchFormat::JsRows => m.write_js_row(
                    placement,
                    &mut self.buffers.row_strings,
                    &mut self.buffers.lines,
                ),
            };
            self.buffers.bodies.push(body);
            self.buffers.lines.push(b'\n');
            self.buffers.ends.push(self.buffers.lines.len());
        }
    }

    /// Charges the batch's bytes to `queue` for as long as it lives; false (and
    /// nothing charged) when they do not fit.
    pub fn charge_to(&mut self, queue: &Pool) -> bool {
        self.queued = None;
        match Charge::try_new(queue, self.buffers.lines.capacity()) {
            Some(c) => {
                self.queued = Some(c);
                true
            }
            None => false,
        }
    }

    /// All messages as JSON lines.
    pub fn as_lines(&self) -> &[u8] {
        &self.buffers.lines
    }

    /// Writes all messages as JSON lines, each with `"body":""` (the rest, `bodySize`
    /// included, as it is): stdout without `stdoutBodies`.
    pub fn write_lines_without_bodies(&self, w: &mut impl std::io::Write) -> std::io::Result<()> {
        let mut from = 0;
        for body in &self.buffers.bodies {
            w.write_all(&self.buffers.lines[from..body.start])?;
            from = body.end;
        }
        w.write_all(&self.buffers.lines[from..])
    }

    /// Number of messages.
    pub fn len(&self) -> usize {
        self.buffers.ends.len()
    }

    /// True when the batch holds no message.
    pub fn is_empty(&self) -> bool {
        self.buffers.ends.is_empty()
    }

    /// Each message's JSON (object or row, see [`Batch::format`]), without the line end.
    pub fn messages(&self) -> impl Iterator<Item = &[u8]> + '_ {
        let mut start = 0;
        self.buffers.ends.iter().map(move |&end| {
            let m = &self.buffers.lines[start..end - 1];
            start = end;
            m
        })
    }
}

/// A destination for messages. Implementations must never block the caller for
/// long: a slow destination queues (bounded) and counts what it drops.
pub trait Output: Send {
    /// Hands over one batch.
    fn send(&mut self, batch: &Arc<Batch>);
    /// Whether this output can take batches of [`BatchFormat::JsRows`]. Only the Node
    /// library's does; every output that writes messages out needs schema v1 JSON.
    fn takes_rows(&self) -> bool {
        false
    }
    /// Makes everything sent so far visible (called at least every 100 ms while running).
    fn flush(&mut self);
    /// Delivers what is pending (within the output's drain deadline) and stops.
    fn close(&mut self);
    /// The output can take no more messages (e.g. stdout's reader went away).
    fn is_closed(&self) -> bool;
    /// Whether `batch` would be queued whole right now. Live capture never asks
    /// (it sheds); file replay waits for room, so replaying a file loses nothing
    /// to a slow reader. An empty queue always has room, whatever the batch size.
    fn has_room(&self, batch: &Batch) -> bool {
        let _ = batch;
        true
    }
    /// Waits up to `timeout` for [`Output::has_room`] (or [`Output::is_closed`]); returns
    /// whether it came. The caller loops, so a replay being stopped is never stuck here.
    /// The default polls; outputs with a writer thread wake the caller as soon as room appears.
    fn wait_for_room(&self, batch: &Batch, timeout: std::time::Duration) -> bool {
        let deadline = std::time::Instant::now() + timeout;
        loop {
            if self.has_room(batch) || self.is_closed() {
                return true;
            }
            if std::time::Instant::now() >= deadline {
                return false;
            }
            std::thread::sleep(std::time::Duration::from_millis(1));
        }
    }
    /// Counters so far.
    fn stats(&self) -> OutputStats;
    /// The panic that killed one of this output's threads, if one did. The output then
    /// reports itself closed (so nothing waits for it); the run treats the panic as fatal
    /// (see [`crate::fatal`]).
    fn failure(&self) -> Option<ThreadPanic> {
        None
    }
}

/// Waits on `room` (with `lock`) until `ready()` holds or `timeout` passes; true when ready.
/// Wakes at least every `recheck` in case a notification was missed. The shared body of
/// the outputs' [`Output::wait_for_room`].
pub fn wait_until(
    lock: &Mutex<()>,
    room: &Condvar,
    timeout: Duration,
    recheck: Duration,
    mut ready: impl FnMut() -> bool,
) -> bool {
    let deadline = Instant::now() + timeout;
    let mut guard = lock.lock().unwrap_or_else(|e| e.into_inner());
    while !ready() {
        let now = Instant::now();
        if now >= deadline {
            return false;
        }
        guard = room
            .wait_timeout(guard, (deadline - now).min(recheck))
            .unwrap_or_else(|e| e.into_inner())
            .0;
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    fn msg(body: &[u8], truncated: bool) -> HttpMessage {
        HttpMessage {
            kind: crate::testing::request("POST", "/\"body\":x"),
            body: body.to_vec(),
            body_size: 1000,
            truncated,
            ..crate::testing::sample_message()
        }
    }

    #[test]
    fn delivered_file_batches_give_their_buffers_back_bounded() {
        let spares = SpareBuffers::default();
        let msgs = [msg(b"hello", false)];
        // A full file batch: its buffers come back once the last holder drops it.
        let mut batch = Batch::new(BatchFormat::Json);
        batch.reserve_from(1 << 20, &spares);
        batch.extend(&msgs, None);
        let shared = Arc::new(batch);
        let held_by_an_output = shared.clone();
        drop(shared);
        assert_eq!(spares.kept(), 0, "still held by an output");
        drop(held_by_an_output);
        assert_eq!(spares.kept(), 1);

        // The next batch writes into those buffers: emptied, room kept, nothing reallocated.
        let mut next = Batch::new(BatchFormat::Json);
        next.reserve_from(1 << 20, &spares);
        assert_eq!(spares.kept(), 0);
        assert!(next.is_empty() && next.as_lines().is_empty());
        let at = next.as_lines().as_ptr();
        next.extend(&msgs, None);
        assert_eq!(next.as_lines().as_ptr(), at);
        assert_eq!(next.len(), 1);

        // At most KEPT sets; one grown past MAX_LINES (a huge body) is freed instead.
        drop(next);
        let in_flight: Vec<Batch> = (0..SpareBuffers::KEPT + 2)
            .map(|_| {
                let mut b = Batch::new(BatchFormat::Json);
                b.reserve_from(1 << 20, &spares);
                b
            })
            .collect();
        drop(in_flight);
        assert_eq!(spares.kept(), SpareBuffers::KEPT);
        let spares = SpareBuffers::default();
        let mut huge = Batch::new(BatchFormat::Json);
        huge.reserve_from(SpareBuffers::MAX_LINES + 1, &spares);
        drop(huge);
        assert_eq!(spares.kept(), 0);

        // A batch not made from spares (live capture) never brings its buffers here.
        let mut live = Batch::new(BatchFormat::Json);
        live.extend(&msgs, None);
        drop(live);
        assert_eq!(spares.kept(), 0);
    }

    #[test]
    fn lines_without_bodies_keep_everything_but_the_body() {
        let msgs = [
            msg(b"{\"password\":\"x\\\"y\"}\n\xe2\x80\xa8", true),
            msg(&[0xff, 0x00, b'"', b'\n'], false),
            msg(b"", false),
        ];
        let placement = Placement {
            name: Some("p".into()),
            ..Placement::default()
        };
        let batch = Batch::from_messages(&msgs, Some(&placement));
        let mut out = Vec::new();
        batch.write_lines_without_bodies(&mut out).unwrap();
        let text = String::from_utf8(out).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        let full: Vec<&str> = std::str::from_utf8(batch.as_lines())
            .unwrap()
            .lines()
            .collect();
        assert_eq!(lines.len(), 3);
        for (line, full) in lines.iter().zip(full) {
            let mut a: serde_json::Value = serde_json::from_str(line).unwrap();
            let mut b: serde_json::Value = serde_json::from_str(full).unwrap();
            assert_eq!(a["body"], "");
            assert_eq!(a["bodySize"], 1000);
            a.as_object_mut().unwrap().remove("body");
            b.as_object_mut().unwrap().remove("body");
            assert_eq!(a, b);
        }
        assert!(!text.contains("password"));
    }
}
