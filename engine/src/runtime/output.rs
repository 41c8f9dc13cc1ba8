//! The output stage: one thread hands every batch of serialised messages to every output.
//!
//! Invariants: it never serialises (workers do), it flushes the outputs every
//! [`OUTPUT_FLUSH`], and it ends only when every worker has dropped its sender — then it
//! closes the outputs (each drains within its deadline) and publishes their final counters.

use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::handoff::{Receiver, RecvTimeoutError};

use super::Shared;
use crate::fatal::{self, FatalError, FaultPoint};
use crate::output::{Batch, Output};
use crate::stats::OutputStats;

/// How often the output stage makes written messages visible.
const OUTPUT_FLUSH: Duration = Duration::from_millis(100);

/// Hands every batch (serialised by its worker) to every output, flushing every 100 ms.
pub(super) fn output_stage(
    rx: Receiver<Batch>,
    mut outputs: Vec<Box<dyn Output>>,
    shared: &Shared,
) {
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
            Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => break,
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
