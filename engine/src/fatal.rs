//! No silent death: a panic in any engine thread is a fatal error of the run.
//!
//! Every thread the engine starts — capture (AF_PACKET rings, the libpcap reader),
//! workers (live and file replay), the output stage, the stdout writer, the output URL's
//! senders — is started by [`spawn`] or runs its body under [`catch`]. A panic is caught
//! where it happens and becomes a [`ThreadPanic`] (the thread's name, the panic message
//! and where it happened), logged once as an error line (`engine thread panicked`). The
//! thread's owner records the first one as the run's [`FatalError`] and stops the rest
//! of the run (see [`crate::runtime`]): the other threads stop as `stop()` would, what
//! was already queued for the outputs is drained within the drain deadline, and nothing
//! waits for the dead thread. The CLI then exits 1, the Node library emits `'error'`
//! with code `ERR_TCP_SNIFFER_INTERNAL`, and the sidecar exits 1.
//!
//! Panics are caught with `catch_unwind`, so the crate must not be built with
//! `panic = "abort"` (it is not; with it, a panic would end the process at once, which
//! is loud too, but nothing would be drained). While a caught body runs, the engine's
//! panic hook (installed once, chaining to the previous hook for every other panic)
//! keeps the panic's location (and a backtrace when `RUST_BACKTRACE` asks for one) instead
//! of printing Rust's plain-text report, so stderr stays JSON lines.
//!
//! # Fault injection (a test hook)
//!
//! `TCP_SNIFFER_TEST_PANIC=POINT[:N]` makes one engine thread panic on purpose, so the
//! tests can check the path above on the real binaries (the CLI, the Node library, the
//! sidecar). It is read once, when the first sniffer or replay starts; when it is set a
//! warning says so (`fault injection armed`), and it only ever causes that one panic.
//! `POINT` is where, `N` (default 0) how many occasions pass first:
//!
//! | point | panics in | occasion |
//! |---|---|---|
//! | `worker` | a worker (live: `tcp-sniffer-ring-K` / `tcp-sniffer-worker-K`; replay: `tcp-sniffer-replay` or `tcp-sniffer-replay-K`) | a packet |
//! | `capture` | the thread reading packets (`tcp-sniffer-ring-K`, `tcp-sniffer-pcap`); a file replay has none | a poll |
//! | `output` | the output stage (`tcp-sniffer-output`) or a replay's delivering thread (`tcp-sniffer-replay`; with several workers each worker delivers its own batches, `tcp-sniffer-replay-K`) | a batch |
//! | `stdout` | the stdout writer (`tcp-sniffer-stdout`) | a batch |
//! | `post` | an output URL sender (`tcp-sniffer-post-K`) | a request |

use std::any::Any;
use std::cell::{Cell, RefCell};
use std::fmt;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Once, OnceLock};
use std::thread::JoinHandle;

use serde_json::json;

use crate::config::LogLevel;
use crate::output::log::log;

/// The error code of an internal error (a panic) in the Node library.
pub const CODE_INTERNAL: &str = "ERR_TCP_SNIFFER_INTERNAL";
/// The error code of a fatal capture error in the Node library.
pub const CODE_CAPTURE: &str = "ERR_TCP_SNIFFER_CAPTURE";
/// The fault-injection variable (see the module docs). A test hook, not a setting.
pub const TEST_PANIC_ENV: &str = "TCP_SNIFFER_TEST_PANIC";

/// A panic caught in an engine thread.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ThreadPanic {
    /// The thread's name (e.g. `tcp-sniffer-worker-0`).
    pub thread: String,
    /// The panic message.
    pub message: String,
    /// `file:line` of the panic, when known.
    pub location: Option<String>,
}

impl fmt::Display for ThreadPanic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "thread {} panicked: {}", self.thread, self.message)?;
        if let Some(at) = &self.location {
            write!(f, " (at {at})")?;
        }
        Ok(())
    }
}

impl ThreadPanic {
    /// A panic of thread `thread` from `catch_unwind`'s or `join`'s payload.
    pub fn from_payload(thread: &str, payload: &(dyn Any + Send)) -> ThreadPanic {
        if let Some(p) = payload.downcast_ref::<ThreadPanic>() {
            return p.clone();
        }
        let message = if let Some(s) = payload.downcast_ref::<&str>() {
            (*s).to_string()
        } else if let Some(s) = payload.downcast_ref::<String>() {
            s.clone()
        } else {
            "(panic payload is not text)".to_string()
        };
        ThreadPanic {
            thread: thread.to_string(),
            message,
            location: None,
        }
    }
}

/// What stopped a run.
#[derive(Clone, Debug, thiserror::Error)]
#[non_exhaustive]
pub enum FatalError {
    /// Capture failed (the interface went away, the file could not be read again).
    #[error("capture failed: {0}")]
    Capture(String),
    /// An engine thread panicked.
    #[error("internal error: {0}")]
    Panic(ThreadPanic),
}

impl FatalError {
    /// The stable code the Node library gives this error (`ERR_TCP_SNIFFER_…`).
    pub fn code(&self) -> &'static str {
        match self {
            FatalError::Capture(_) => CODE_CAPTURE,
            FatalError::Panic(_) => CODE_INTERNAL,
        }
    }

    /// The error without the leading kind (`capture failed: `, `internal error: `).
    pub fn detail(&self) -> String {
        match self {
            FatalError::Capture(text) => text.clone(),
            FatalError::Panic(p) => p.to_string(),
        }
    }
}

thread_local! {
    /// Set while a body runs under [`catch`]: the hook keeps the location, prints nothing.
    static CATCHING: Cell<bool> = const { Cell::new(false) };
    /// Where the last caught panic on this thread happened.
    static LOCATION: RefCell<Option<String>> = const { RefCell::new(None) };
    /// Its backtrace, when `RUST_BACKTRACE` asks for one.
    static BACKTRACE: RefCell<Option<String>> = const { RefCell::new(None) };
}

fn install_hook() {
    static HOOK: Once = Once::new();
    HOOK.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if CATCHING.with(Cell::get) {
                let at = info
                    .location()
                    .map(|l| format!("{}:{}", l.file(), l.line()));
                LOCATION.with(|l| *l.borrow_mut() = at);
                let bt = std::backtrace::Backtrace::capture();
                let bt = (bt.status() == std::backtrace::BacktraceStatus::Captured)
                    .then(|| bt.to_string());
                BACKTRACE.with(|b| *b.borrow_mut() = bt);
            } else {
                previous(info);
            }
        }));
    });
}

/// Runs `f`, catching a panic as a [`ThreadPanic`] of `thread` (logged as an error line).
/// A nested `catch` reports the panic once, from the innermost one.
pub fn catch<T>(thread: &str, f: impl FnOnce() -> T) -> Result<T, ThreadPanic> {
    install_hook();
    let outer = CATCHING.with(|c| c.replace(true));
    let result = catch_unwind(AssertUnwindSafe(f));
    CATCHING.with(|c| c.set(outer));
    result.map_err(|payload| {
        if let Some(p) = payload.downcast_ref::<ThreadPanic>() {
            // Re-raised from an inner catch (which logged it): keep it as it is.
            return p.clone();
        }
        let mut p = ThreadPanic::from_payload(thread, payload.as_ref());
        p.location = LOCATION.with(|l| l.borrow_mut().take());
        let mut fields = vec![
            ("thread", json!(p.thread)),
            ("panic", json!(p.message)),
            ("location", json!(p.location)),
            ("code", json!(CODE_INTERNAL)),
        ];
        if let Some(bt) = BACKTRACE.with(|b| b.borrow_mut().take()) {
            fields.push(("backtrace", json!(bt)));
        }
        log(LogLevel::Error, "engine thread panicked", &fields);
        p
    })
}

/// Starts thread `name` running `f`; a panic in it is caught ([`catch`]) and given to
/// `on_panic` on the same thread, which then ends normally.
pub fn spawn<F, P>(name: &str, f: F, on_panic: P) -> std::io::Result<JoinHandle<()>>
where
    F: FnOnce() + Send + 'static,
    P: FnOnce(ThreadPanic) + Send + 'static,
{
    let owned = name.to_string();
    std::thread::Builder::new()
        .name(owned.clone())
        .spawn(move || {
            if let Err(p) = catch(&owned, f) {
                on_panic(p);
            }
        })
}

/// Where [`inject`] may panic (see the module docs).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FaultPoint {
    /// A worker, at a packet.
    Worker,
    /// A capture thread, at a poll.
    Capture,
    /// The output stage or a replay's delivering thread, at a batch.
    Output,
    /// The stdout writer, at a batch.
    Stdout,
    /// An output URL sender, at a request.
    Post,
}

impl FaultPoint {
    fn parse(s: &str) -> Option<FaultPoint> {
        Some(match s {
            "worker" => FaultPoint::Worker,
            "capture" => FaultPoint::Capture,
            "output" => FaultPoint::Output,
            "stdout" => FaultPoint::Stdout,
            "post" => FaultPoint::Post,
            _ => return None,
        })
    }
}

struct Fault {
    point: FaultPoint,
    after: u64,
    seen: AtomicU64,
    fired: AtomicBool,
}

static FAULT: OnceLock<Option<Fault>> = OnceLock::new();

fn fault() -> Option<&'static Fault> {
    FAULT
        .get_or_init(|| {
            let raw = std::env::var(TEST_PANIC_ENV).ok()?;
            let raw = raw.trim();
            if raw.is_empty() {
                return None;
            }
            let (point, after) = match raw.split_once(':') {
                Some((p, n)) => (p, n.parse::<u64>().ok()),
                None => (raw, Some(0)),
            };
            match (FaultPoint::parse(point), after) {
                (Some(point), Some(after)) => {
                    log(
                        LogLevel::Warn,
                        "fault injection armed: an engine thread will panic on purpose (a test hook)",
                        &[(TEST_PANIC_ENV, json!(raw))],
                    );
                    Some(Fault {
                        point,
                        after,
                        seen: AtomicU64::new(0),
                        fired: AtomicBool::new(false),
                    })
                }
                _ => {
                    log(
                        LogLevel::Warn,
                        "fault injection variable not understood; ignored",
                        &[
                            (TEST_PANIC_ENV, json!(raw)),
                            (
                                "expected",
                                json!("worker|capture|output|stdout|post, optionally :N"),
                            ),
                        ],
                    );
                    None
                }
            }
        })
        .as_ref()
}

/// Reads [`TEST_PANIC_ENV`] (once per process; a sniffer or replay calls this as it starts).
pub fn arm() {
    let _ = fault();
}

/// The fault-injection hook: panics here if [`TEST_PANIC_ENV`] names `point` and this is
/// its occasion. Otherwise (always, in production) a load and a branch.
#[inline]
#[track_caller]
pub fn inject(point: FaultPoint) {
    if let Some(f) = FAULT.get().and_then(Option::as_ref) {
        if f.point == point {
            fire(f);
        }
    }
}

#[cold]
#[track_caller]
fn fire(f: &Fault) {
    if f.seen.fetch_add(1, Ordering::Relaxed) >= f.after && !f.fired.swap(true, Ordering::SeqCst) {
        panic!("injected panic ({TEST_PANIC_ENV} fault injection)");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn catch_turns_a_panic_into_a_thread_panic_with_message_and_location() {
        let r: Result<(), _> = catch("tcp-sniffer-test", || panic!("boom {}", 7));
        let p = r.unwrap_err();
        assert_eq!(p.thread, "tcp-sniffer-test");
        assert_eq!(p.message, "boom 7");
        let at = p.location.clone().expect("location");
        assert!(at.contains("fatal.rs:"), "{at}");
        assert_eq!(
            FatalError::Panic(p.clone()).to_string(),
            format!("internal error: thread tcp-sniffer-test panicked: boom 7 (at {at})")
        );
        assert_eq!(FatalError::Panic(p).code(), "ERR_TCP_SNIFFER_INTERNAL");
        assert_eq!(catch("x", || 5), Ok(5));
    }

    #[test]
    fn a_rethrown_thread_panic_keeps_the_inner_thread() {
        let r: Result<(), _> = catch("outer", || {
            let inner = catch("inner", || panic!("deep")).unwrap_err();
            std::panic::resume_unwind(Box::new(inner));
        });
        let p = r.unwrap_err();
        assert_eq!((p.thread.as_str(), p.message.as_str()), ("inner", "deep"));
    }

    #[test]
    fn spawn_hands_the_panic_to_its_owner_and_the_thread_ends_normally() {
        let (tx, rx) = std::sync::mpsc::channel();
        let t = spawn(
            "tcp-sniffer-test-spawn",
            || {
                let v: Vec<u8> = Vec::new();
                let _ = v[std::hint::black_box(3)];
            },
            move |p| tx.send(p).unwrap(),
        )
        .unwrap();
        assert!(t.join().is_ok(), "the panic was caught inside the thread");
        let p = rx.recv().unwrap();
        assert_eq!(p.thread, "tcp-sniffer-test-spawn");
        assert!(p.message.contains("index out of bounds"), "{}", p.message);
    }
}
