//! The memory traffic can make a worker hold: one accountant, four pools.
//!
//! Everything a worker keeps because of what it captured, beyond a fixed cost per
//! tracked connection, is drawn from a [`WorkerBudget`]:
//!
//! | pool | what it holds | when it is spent |
//! |---|---|---|
//! | `reassembly` | out-of-order segments waiting for a hole to fill | gaps are declared early (`reassembly.gaps_budget`) |
//! | `heads` | partial heads, bytes under detection or resynchronisation, bytes held while an `Upgrade`/`CONNECT` awaits its answer, and the parsed head of every message whose body is in progress | the head is shed (`http.heads_shed_by_budget`) and the direction resynchronises |
//! | `pending` | requests waiting for their response (pipelining) | the connection's oldest pending request is shed (`http.pending_shed_by_budget`) |
//! | `bodies` | body bytes kept for messages in progress | bodies are cut (`truncated`, `http.bodies_cut_by_budget`) |
//!
//! The sizes are for the whole sniffer and split evenly between workers
//! ([`WorkerBudget::for_workers`]), so the total does not grow with the number of
//! workers. Connections themselves are bounded by `maxConcurrentConnections` (each costs
//! about [`CONNECTION_COST`] bytes when it holds nothing).
//!
//! # Shedding order
//!
//! When a pool is short, state is shed cheapest first: connections that never
//! carried a byte of payload (half-open; they are also timed out after
//! [`HALF_OPEN_TIMEOUT_US`]) make room for new connections at the cap, then those
//! whose server has sent nothing yet; when the
//! `heads` or `reassembly` pool passes [`HIGH_WATERMARK`] of its size,
//! the flow table evicts the connections that have been idle longest until every pool
//! is back under [`LOW_WATERMARK`] (`flow.connections_evicted_memory`); bodies are
//! cut last, without evicting anything, because a cut body still leaves a whole
//! message. The `pending` pool evicts nothing either: a shed pending request keeps
//! its sequence number, so pairing holds.
//!
//! # Invariants
//!
//! * A pool's `held` equals the bytes charged by its live holders: every holder gives
//!   back what it charged when it lets go of the memory or is dropped, so no path
//!   can leak budget (tests check that a table's pools are empty after `close_all`).
//! * [`Pool::try_take`] never lets `held` pass `max`. [`Pool::force_take`] may, by at
//!   most one message head per direction of the segment being processed; the flow
//!   table's pressure relief brings the pool back under its watermark before the next
//!   segment.
//!
//! A worker's connections share its pools from one thread; the counters are atomic
//! only so that a worker can move between threads.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

/// Out-of-order bytes the whole sniffer may hold (split between workers).
pub const REASSEMBLY_BUDGET: usize = 16 << 20;
/// Head bytes (partial heads, held bytes, heads of messages in progress) the whole
/// sniffer may hold.
pub const HEADS_BUDGET: usize = 16 << 20;
/// Bytes of pending-request entries the whole sniffer may hold (about 32 bytes each).
pub const PENDING_BUDGET: usize = 2 << 20;
/// Body bytes of messages in progress the whole sniffer may hold.
pub const BODIES_BUDGET: usize = 24 << 20;

/// Approximate bytes one tracked connection costs when it holds nothing (flow-table
/// entry, two reassemblers, the HTTP state machine); the connection cap bounds it.
pub const CONNECTION_COST: usize = 1024;

/// A connection that has carried no payload is dropped after this long (capture time),
/// as Zeek and Suricata time out connections whose handshake never finished.
pub const HALF_OPEN_TIMEOUT_US: u64 = 10_000_000;

/// A pool above this fraction of its size triggers eviction of the idlest connections.
pub const HIGH_WATERMARK: f64 = 0.875;
/// Eviction under pressure goes on until every pool is below this fraction.
pub const LOW_WATERMARK: f64 = 0.75;

/// A share of a budget, in bytes, that several holders draw from and give back to.
#[derive(Clone, Debug)]
pub struct Pool(Arc<PoolInner>);

#[derive(Debug)]
struct PoolInner {
    held: AtomicUsize,
    max: usize,
}

impl Pool {
    /// A pool of `max` bytes.
    pub fn new(max: usize) -> Self {
        Pool(Arc::new(PoolInner {
            held: AtomicUsize::new(0),
            max,
        }))
    }

    /// A pool with no limit (tests, and parsers used outside a worker).
    pub fn unlimited() -> Self {
        Self::new(usize::MAX)
    }

    /// Bytes held now.
    pub fn held(&self) -> usize {
        self.0.held.load(Ordering::Relaxed)
    }

    /// The pool's size.
    pub fn max(&self) -> usize {
        self.0.max
    }

    /// Bytes that can still be taken.
    pub fn available(&self) -> usize {
        self.max().saturating_sub(self.held())
    }

    /// Fraction of the pool in use (0 for an unlimited pool).
    pub fn fill(&self) -> f64 {
        if self.max() == usize::MAX || self.max() == 0 {
            return 0.0;
        }
        self.held() as f64 / self.max() as f64
    }

    /// Takes `n` bytes if they fit; returns whether they did.
    pub fn try_take(&self, n: usize) -> bool {
        if n > self.available() {
            return false;
        }
        self.0.held.fetch_add(n, Ordering::Relaxed);
        true
    }

    /// Takes up to `want` bytes; returns how many were granted.
    pub fn take_up_to(&self, want: usize) -> usize {
        let granted = want.min(self.available());
        if granted > 0 {
            self.0.held.fetch_add(granted, Ordering::Relaxed);
        }
        granted
    }

    /// Takes `n` bytes even past the limit: for memory already allocated that must be
    /// accounted (see the module's invariants for how far this may go).
    pub fn force_take(&self, n: usize) {
        if n > 0 {
            self.0.held.fetch_add(n, Ordering::Relaxed);
        }
    }

    /// Gives back `n` bytes taken earlier.
    pub fn give(&self, n: usize) {
        if n > 0 {
            let before = self.0.held.fetch_sub(n, Ordering::Relaxed);
            debug_assert!(before >= n, "pool given back more than was taken");
        }
    }
}

/// Bytes taken from a pool for as long as this value lives.
#[derive(Debug)]
pub struct Charge {
    pool: Pool,
    n: usize,
}

impl Charge {
    /// Takes `n` bytes from `pool` even past its limit (memory already allocated).
    pub fn force(pool: &Pool, n: usize) -> Self {
        pool.force_take(n);
        Charge {
            pool: pool.clone(),
            n,
        }
    }

    /// Takes `n` bytes from `pool` if they fit.
    pub fn try_new(pool: &Pool, n: usize) -> Option<Self> {
        pool.try_take(n).then(|| Charge {
            pool: pool.clone(),
            n,
        })
    }
}

impl Drop for Charge {
    fn drop(&mut self) {
        self.pool.give(self.n);
    }
}

/// One worker's pools (see the module docs).
#[derive(Clone, Debug)]
pub struct WorkerBudget {
    /// Size of the reassembly pool (the reassemblers account it themselves, see
    /// [`crate::reassembly::Budget`]).
    pub reassembly_max: usize,
    /// Partial heads, held bytes and heads of messages in progress.
    pub heads: Pool,
    /// Pending-request entries.
    pub pending: Pool,
    /// Body bytes of messages in progress.
    pub bodies: Pool,
}

impl WorkerBudget {
    /// One worker's share when the sniffer runs `workers` workers. Each pool keeps at
    /// least enough for one maximal head, one maximal out-of-order window and a few
    /// pending requests, so a worker can always make progress.
    pub fn for_workers(workers: usize) -> Self {
        let n = workers.max(1);
        let share = |total: usize, floor: usize| (total / n).max(floor);
        WorkerBudget {
            reassembly_max: share(REASSEMBLY_BUDGET, 1 << 20),
            heads: Pool::new(share(HEADS_BUDGET, 256 << 10)),
            pending: Pool::new(share(PENDING_BUDGET, 64 << 10)),
            bodies: Pool::new(share(BODIES_BUDGET, 1 << 20)),
        }
    }

    /// No limits (tests and tools that feed the parsers directly).
    pub fn unlimited() -> Self {
        WorkerBudget {
            reassembly_max: usize::MAX,
            heads: Pool::unlimited(),
            pending: Pool::unlimited(),
            bodies: Pool::unlimited(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn try_take_never_passes_the_limit_and_give_returns() {
        let p = Pool::new(100);
        assert!(p.try_take(60));
        assert!(!p.try_take(41));
        assert_eq!(p.take_up_to(50), 40);
        assert_eq!(p.held(), 100);
        assert!(!p.try_take(1));
        p.give(100);
        assert_eq!(p.held(), 0);
        p.force_take(150);
        assert!(p.fill() > 1.0);
        assert_eq!(p.available(), 0);
        p.give(150);
    }

    #[test]
    fn shares_do_not_grow_with_workers() {
        let one = WorkerBudget::for_workers(1);
        let four = WorkerBudget::for_workers(4);
        assert_eq!(one.heads.max(), HEADS_BUDGET);
        assert_eq!(four.heads.max() * 4, HEADS_BUDGET);
        assert_eq!(four.bodies.max() * 4, BODIES_BUDGET);
        // Floors keep a huge worker count workable.
        assert_eq!(WorkerBudget::for_workers(1 << 20).heads.max(), 256 << 10);
    }
}
