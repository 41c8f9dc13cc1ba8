//! Queues between the threads of the capture path: a mutex, a deque and two condition
//! variables, with the few operations the pipeline uses (the names follow
//! `crossbeam-channel`, which this replaces).
//!
//! Why not a channel library: the sidecar shares its pod's cores with the application, and
//! how it waits is part of what it costs. `crossbeam-channel` (and `std::sync::mpsc`, a
//! port of it) first spins and then calls `sched_yield` several times before it parks a
//! thread on an empty queue. Each such yield on a busy core is an involuntary context
//! switch — the core goes to the application and comes back. Under wrk against nginx on
//! two cores, the output stage and the stdout writer made some 600–700 of them per second
//! (tcpdump: 50), and the yields were 6–8 % of the sniffer's CPU samples; with the libpcap
//! backend's packet queues, 9 500. These threads take a batch (hundreds of messages) tens
//! of times per second: nothing is gained by spinning for the next one. Here a receiver
//! that finds the queue empty parks at once, and a sender wakes it only if it is parked
//! (measured after: 70–120 involuntary switches per second; libpcap 880).
//!
//! Invariants:
//! - Items come out in the order they went in; none is lost while the receiver lives.
//! - A bounded queue never holds more than its capacity.
//! - `recv*` reports `Disconnected` only once every sender is gone *and* the queue is
//!   empty; a send reports it once the receiver is gone (and gives the item back).

use std::collections::VecDeque;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// A queue of at most `cap` items (at least 1).
pub fn bounded<T>(cap: usize) -> (Sender<T>, Receiver<T>) {
    channel(Some(cap.max(1)))
}

/// A queue without a bound of its own (its user bounds it, e.g. in bytes).
pub fn unbounded<T>() -> (Sender<T>, Receiver<T>) {
    channel(None)
}

fn channel<T>(cap: Option<usize>) -> (Sender<T>, Receiver<T>) {
    let chan = Arc::new(Chan {
        state: Mutex::new(State {
            items: VecDeque::new(),
            senders: 1,
            receiver: true,
            receiver_parked: false,
            senders_parked: 0,
        }),
        filled: Condvar::new(),
        drained: Condvar::new(),
        cap,
    });
    (Sender(chan.clone()), Receiver(chan))
}

struct Chan<T> {
    state: Mutex<State<T>>,
    /// The receiver waits here for an item (or the last sender to leave).
    filled: Condvar,
    /// Senders of a full bounded queue wait here for room (or the receiver to leave).
    drained: Condvar,
    cap: Option<usize>,
}

struct State<T> {
    items: VecDeque<T>,
    senders: usize,
    receiver: bool,
    receiver_parked: bool,
    senders_parked: usize,
}

impl<T> Chan<T> {
    fn lock(&self) -> MutexGuard<'_, State<T>> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn full(&self, s: &State<T>) -> bool {
        self.cap.is_some_and(|cap| s.items.len() >= cap)
    }

    /// Queues `item` (room checked by the caller) and wakes the receiver if it is parked.
    fn push(&self, mut s: MutexGuard<'_, State<T>>, item: T) {
        s.items.push_back(item);
        let wake = s.receiver_parked;
        drop(s);
        if wake {
            self.filled.notify_one();
        }
    }
}

/// The sending side; clone it for each sending thread.
pub struct Sender<T>(Arc<Chan<T>>);

/// The receiving side (one thread).
pub struct Receiver<T>(Arc<Chan<T>>);

/// [`Sender::send`] failed: the receiver is gone. The item is given back.
#[derive(Debug, PartialEq, Eq)]
pub struct SendError<T>(pub T);

/// [`Sender::try_send`] failed; the item is given back.
#[derive(Debug, PartialEq, Eq)]
pub enum TrySendError<T> {
    /// The bounded queue is full.
    Full(T),
    /// The receiver is gone.
    Disconnected(T),
}

/// [`Receiver::recv_timeout`] returned no item.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RecvTimeoutError {
    /// None came within the timeout.
    Timeout,
    /// Every sender is gone and the queue is empty.
    Disconnected,
}

impl<T> Sender<T> {
    /// Queues `item`, waiting for room in a full bounded queue.
    pub fn send(&self, item: T) -> Result<(), SendError<T>> {
        let chan = &*self.0;
        let mut s = chan.lock();
        loop {
            if !s.receiver {
                return Err(SendError(item));
            }
            if !chan.full(&s) {
                chan.push(s, item);
                return Ok(());
            }
            s.senders_parked += 1;
            s = chan.drained.wait(s).unwrap_or_else(|e| e.into_inner());
            s.senders_parked -= 1;
        }
    }

    /// Queues `item` if there is room now.
    pub fn try_send(&self, item: T) -> Result<(), TrySendError<T>> {
        let chan = &*self.0;
        let s = chan.lock();
        if !s.receiver {
            return Err(TrySendError::Disconnected(item));
        }
        if chan.full(&s) {
            return Err(TrySendError::Full(item));
        }
        chan.push(s, item);
        Ok(())
    }
}

impl<T> Clone for Sender<T> {
    fn clone(&self) -> Self {
        self.0.lock().senders += 1;
        Sender(self.0.clone())
    }
}

impl<T> Drop for Sender<T> {
    fn drop(&mut self) {
        let mut s = self.0.lock();
        s.senders -= 1;
        let wake = s.senders == 0 && s.receiver_parked;
        drop(s);
        if wake {
            self.0.filled.notify_one();
        }
    }
}

impl<T> Receiver<T> {
    /// The next item, waiting up to `timeout` for one.
    pub fn recv_timeout(&self, timeout: Duration) -> Result<T, RecvTimeoutError> {
        self.recv_until(Instant::now().checked_add(timeout))
    }

    /// The next item, waiting as long as it takes; `None` once every sender is gone and
    /// the queue is empty.
    pub fn recv(&self) -> Option<T> {
        self.recv_until(None).ok()
    }

    /// Every item, until every sender is gone and the queue is empty.
    pub fn iter(&self) -> impl Iterator<Item = T> + '_ {
        std::iter::from_fn(|| self.recv())
    }

    /// True when no item is waiting.
    pub fn is_empty(&self) -> bool {
        self.0.lock().items.is_empty()
    }

    /// Waits until `deadline` (`None`: no deadline).
    fn recv_until(&self, deadline: Option<Instant>) -> Result<T, RecvTimeoutError> {
        let chan = &*self.0;
        let mut s = chan.lock();
        loop {
            if let Some(item) = s.items.pop_front() {
                let wake = s.senders_parked > 0;
                drop(s);
                if wake {
                    chan.drained.notify_one();
                }
                return Ok(item);
            }
            if s.senders == 0 {
                return Err(RecvTimeoutError::Disconnected);
            }
            s.receiver_parked = true;
            s = match deadline {
                None => chan.filled.wait(s).unwrap_or_else(|e| e.into_inner()),
                Some(deadline) => {
                    let now = Instant::now();
                    if now >= deadline {
                        s.receiver_parked = false;
                        return Err(RecvTimeoutError::Timeout);
                    }
                    chan.filled
                        .wait_timeout(s, deadline - now)
                        .unwrap_or_else(|e| e.into_inner())
                        .0
                }
            };
            s.receiver_parked = false;
        }
    }
}

impl<T> Drop for Receiver<T> {
    fn drop(&mut self) {
        let mut s = self.0.lock();
        s.receiver = false;
        let wake = s.senders_parked > 0;
        drop(s);
        if wake {
            self.0.drained.notify_all();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn items_come_out_in_order_then_disconnected_once_senders_leave() {
        let (tx, rx) = unbounded();
        let tx2 = tx.clone();
        tx.send(1).unwrap();
        tx2.send(2).unwrap();
        drop(tx);
        assert_eq!(rx.recv_timeout(Duration::ZERO), Ok(1));
        drop(tx2);
        // Queued items outlive their senders.
        assert_eq!(rx.recv_timeout(Duration::ZERO), Ok(2));
        assert_eq!(
            rx.recv_timeout(Duration::from_secs(5)),
            Err(RecvTimeoutError::Disconnected)
        );
        assert_eq!(rx.iter().count(), 0);
    }

    #[test]
    fn a_bounded_queue_refuses_past_its_capacity_and_a_full_send_waits() {
        let (tx, rx) = bounded(2);
        tx.try_send(1).unwrap();
        tx.send(2).unwrap();
        assert_eq!(tx.try_send(3), Err(TrySendError::Full(3)));
        assert_eq!(
            rx.recv_timeout(Duration::from_millis(1)),
            Ok(1),
            "an item is there"
        );
        std::thread::scope(|s| {
            s.spawn(|| {
                tx.send(3).unwrap();
                tx.send(4).unwrap(); // waits for the receiver below
            });
            let got: Vec<_> = (0..3).map(|_| rx.recv().unwrap()).collect();
            assert_eq!(got, [2, 3, 4]);
        });
        assert_eq!(
            rx.recv_timeout(Duration::from_millis(10)),
            Err(RecvTimeoutError::Timeout)
        );
    }

    #[test]
    fn senders_learn_the_receiver_is_gone_even_while_waiting_for_room() {
        let (tx, rx) = bounded(1);
        tx.send(1).unwrap();
        std::thread::scope(|s| {
            let waiting = s.spawn(|| tx.send(2));
            std::thread::sleep(Duration::from_millis(20));
            drop(rx);
            assert_eq!(waiting.join().unwrap(), Err(SendError(2)));
        });
        assert_eq!(tx.try_send(3), Err(TrySendError::Disconnected(3)));
    }

    #[test]
    fn many_senders_on_threads_lose_nothing() {
        let (tx, rx) = bounded(8);
        let got: Vec<u32> = std::thread::scope(|s| {
            for k in 0..4u32 {
                let tx = tx.clone();
                s.spawn(move || {
                    for i in 0..10_000 {
                        tx.send(k * 100_000 + i).unwrap();
                    }
                });
            }
            drop(tx);
            rx.iter().collect()
        });
        assert_eq!(got.len(), 40_000);
        for k in 0..4u32 {
            let mine: Vec<_> = got.iter().filter(|&&v| v / 100_000 == k).collect();
            assert!(mine.windows(2).all(|w| w[0] < w[1]), "sender {k} in order");
        }
    }
}
