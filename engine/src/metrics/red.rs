//! RED metrics of the observed HTTP exchanges: rate (`tcp_sniffer_http_requests_total`
//! by `method` and `status_class`) and duration (`tcp_sniffer_http_request_duration_seconds`,
//! from the request's last byte to the response's last byte). Errors are the `5xx` class.
//!
//! Invariants:
//! - Label cardinality is fixed: [`METHODS`] × [`CLASSES`], whatever the traffic. A method
//!   outside the standard set counts as `other`; a response whose request was not seen as
//!   `unknown`.
//! - An exchange counts once, when its final response is seen (interim `1xx` other than
//!   `101` are skipped). A request whose response never comes counts as `status_class="none"`
//!   once it has waited [`UNANSWERED_AFTER_US`] of capture time, or when the tracker is full.
//! - Each worker owns one [`ExchangeTracker`] (no locks while it observes); it adds its
//!   counts to the process-wide totals once per batch, so workers do not fight over one
//!   cache line per message. Memory is bounded by [`MAX_TRACKED`] pending requests per worker.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use crate::message::{HttpMessage, MessageKind};
use crate::time::Timestamp;

/// The `method` label's values: the RFC 9110 methods and PATCH, then `other`
/// (any other token) and `unknown` (a response whose request was not seen).
pub const METHODS: [&str; 11] = [
    "GET", "HEAD", "POST", "PUT", "DELETE", "CONNECT", "OPTIONS", "TRACE", "PATCH", "other",
    "unknown",
];
const OTHER_METHOD: usize = 9;
const UNKNOWN_METHOD: usize = 10;

/// The `status_class` label's values: `1xx`…`5xx`, `other` (a status outside 100–599,
/// e.g. the `0` of an HTTP/0.9 reply) and `none` (no response was seen).
pub const CLASSES: [&str; 7] = ["1xx", "2xx", "3xx", "4xx", "5xx", "other", "none"];
const NONE_CLASS: usize = 6;

/// Upper bounds (seconds) of the duration histogram's buckets (`+Inf` is added).
pub const BUCKETS: [f64; 15] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0,
];
const NB: usize = BUCKETS.len() + 1;

/// Pending requests one worker remembers while it waits for their responses.
pub const MAX_TRACKED: usize = 65_536;
/// A request unanswered for this long (capture time) counts with `status_class="none"`.
pub const UNANSWERED_AFTER_US: u64 = 300_000_000;

/// Process-wide totals (what `/metrics` shows).
pub(super) struct Totals {
    pub(super) requests: [[AtomicU64; CLASSES.len()]; METHODS.len()],
    /// Per bucket, not cumulative; the last one is `+Inf`.
    pub(super) buckets: [AtomicU64; NB],
    pub(super) sum_us: AtomicU64,
}

pub(super) static TOTALS: Totals = Totals {
    requests: [const { [const { AtomicU64::new(0) }; CLASSES.len()] }; METHODS.len()],
    buckets: [const { AtomicU64::new(0) }; NB],
    sum_us: AtomicU64::new(0),
};

/// Whether workers record exchanges: set once a metrics endpoint is started in this process
/// (tracking costs a hash insert per request; without an endpoint nobody would read it).
static ENABLED: AtomicBool = AtomicBool::new(false);

/// Turns recording on for this process.
pub fn enable() {
    ENABLED.store(true, Ordering::Relaxed);
}

/// Whether recording is on.
pub fn enabled() -> bool {
    ENABLED.load(Ordering::Relaxed)
}

/// Index into [`METHODS`] of a method as on the wire (case-sensitive, as RFC 9110 says).
pub fn method_index(method: &str) -> usize {
    METHODS[..OTHER_METHOD]
        .iter()
        .position(|m| *m == method)
        .unwrap_or(OTHER_METHOD)
}

/// Index into [`CLASSES`] of a status code.
pub fn class_index(status: u16) -> usize {
    match status {
        100..=599 => (status / 100 - 1) as usize,
        _ => 5,
    }
}

/// A request waiting for its response.
#[derive(Clone, Copy)]
struct Pending {
    method: u8,
    end: Timestamp,
}

/// One worker's view of its exchanges. See the module docs.
#[derive(Default)]
pub struct ExchangeTracker {
    pending: HashMap<(u64, u64), Pending, ahash::RandomState>,
    requests: [[u64; CLASSES.len()]; METHODS.len()],
    buckets: [u64; NB],
    sum_us: u64,
    dirty: bool,
}

impl ExchangeTracker {
    /// Records `msgs` (in capture order per connection) and adds the counts to the
    /// process-wide totals. Does nothing unless [`enabled`].
    pub fn observe(&mut self, msgs: &[HttpMessage]) {
        if !enabled() || msgs.is_empty() {
            return;
        }
        for m in msgs {
            self.observe_one(m);
        }
        self.publish();
    }

    fn observe_one(&mut self, m: &HttpMessage) {
        let key = (m.connection_id, m.sequence);
        match &m.kind {
            MessageKind::Request { method, .. } => {
                let p = Pending {
                    method: method_index(method) as u8,
                    end: m.end_timestamp,
                };
                if self.pending.len() >= MAX_TRACKED {
                    self.expire(m.end_timestamp, true);
                }
                if self.pending.len() >= MAX_TRACKED {
                    self.count(p.method as usize, NONE_CLASS);
                    return;
                }
                if let Some(old) = self.pending.insert(key, p) {
                    // The same exchange again (cannot happen with the pairing's sequences,
                    // but the older one must not be lost from the counts).
                    self.count(old.method as usize, NONE_CLASS);
                }
            }
            MessageKind::Response { status_code, .. } => {
                let status = *status_code;
                if (100..200).contains(&status) && status != 101 {
                    return; // interim: the exchange goes on
                }
                let class = class_index(status);
                match self.pending.remove(&key) {
                    Some(p) => {
                        self.count(p.method as usize, class);
                        let us = m.end_timestamp.micros_since(p.end);
                        self.time(us);
                    }
                    None => self.count(UNKNOWN_METHOD, class),
                }
            }
        }
    }

    /// Counts requests that waited past [`UNANSWERED_AFTER_US`] (or, when `full`, the
    /// older half of what is pending if nothing is that old) as unanswered.
    fn expire(&mut self, now: Timestamp, full: bool) {
        let cutoff = now.0.saturating_sub(UNANSWERED_AFTER_US);
        let mut gone = Vec::new();
        self.pending.retain(|_, p| {
            let keep = p.end.0 > cutoff;
            if !keep {
                gone.push(p.method);
            }
            keep
        });
        if full && gone.is_empty() {
            let mut ends: Vec<u64> = self.pending.values().map(|p| p.end.0).collect();
            let mid = ends.len() / 2;
            let (_, median, _) = ends.select_nth_unstable(mid);
            let median = *median;
            self.pending.retain(|_, p| {
                let keep = p.end.0 > median;
                if !keep {
                    gone.push(p.method);
                }
                keep
            });
        }
        for m in gone {
            self.count(m as usize, NONE_CLASS);
        }
    }

    fn count(&mut self, method: usize, class: usize) {
        self.requests[method][class] += 1;
        self.dirty = true;
    }

    fn time(&mut self, us: u64) {
        let secs = us as f64 / 1e6;
        let b = BUCKETS.iter().position(|&le| secs <= le).unwrap_or(NB - 1);
        self.buckets[b] += 1;
        self.sum_us += us;
        self.dirty = true;
    }

    /// Adds what was counted since the last call to the process-wide totals.
    fn publish(&mut self) {
        if !self.dirty {
            return;
        }
        self.dirty = false;
        for (m, row) in self.requests.iter_mut().enumerate() {
            for (c, n) in row.iter_mut().enumerate() {
                if *n > 0 {
                    TOTALS.requests[m][c].fetch_add(*n, Ordering::Relaxed);
                    *n = 0;
                }
            }
        }
        for (b, n) in self.buckets.iter_mut().enumerate() {
            if *n > 0 {
                TOTALS.buckets[b].fetch_add(*n, Ordering::Relaxed);
                *n = 0;
            }
        }
        TOTALS
            .sum_us
            .fetch_add(std::mem::take(&mut self.sum_us), Ordering::Relaxed);
    }

    /// Pending requests remembered now.
    pub fn pending(&self) -> usize {
        self.pending.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn label_values_are_bounded() {
        assert_eq!(METHODS[method_index("GET")], "GET");
        assert_eq!(METHODS[method_index("PATCH")], "PATCH");
        assert_eq!(METHODS[method_index("get")], "other");
        assert_eq!(METHODS[method_index("PROPFIND")], "other");
        assert_eq!(METHODS[method_index(&"X".repeat(10_000))], "other");
        assert_eq!(CLASSES[class_index(101)], "1xx");
        assert_eq!(CLASSES[class_index(204)], "2xx");
        assert_eq!(CLASSES[class_index(599)], "5xx");
        assert_eq!(CLASSES[class_index(0)], "other");
        assert_eq!(CLASSES[class_index(600)], "other");
    }
}
