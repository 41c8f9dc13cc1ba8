//! A tiny structured logger: JSON lines on stderr.
//!
//! Each line is one object with `timestamp` (RFC 3339 UTC, microseconds), `level`,
//! `message` and any extra fields, camelCase: the format of every tcp-sniffer binary,
//! written by [`tcp_sniffer_settings::log::line`]. stdout carries messages only, so logs
//! never go there. Secrets (the output URL's token) and HTTP bodies are never passed here.
//!
//! The level is process-wide ([`set_level`], default `info`). The destination can be
//! replaced ([`set_sink`]), e.g. by a host that routes logs elsewhere or by tests.

use std::io::Write;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::config::LogLevel;
use crate::time::Timestamp;

static LEVEL: AtomicU8 = AtomicU8::new(level_rank(LogLevel::Info));

type Sink = Box<dyn Write + Send>;
static SINK: Mutex<Option<Sink>> = Mutex::new(None);

/// Levels are ordered from least to most verbose.
const fn level_rank(l: LogLevel) -> u8 {
    l as u8
}

/// Sets the most verbose level that is written (process-wide).
pub fn set_level(level: LogLevel) {
    LEVEL.store(level_rank(level), Ordering::Relaxed);
}

/// True when a line at `level` would be written.
pub fn enabled(level: LogLevel) -> bool {
    level_rank(level) <= LEVEL.load(Ordering::Relaxed)
}

/// Sends log lines to `sink` instead of stderr (`None` restores stderr).
pub fn set_sink(sink: Option<Box<dyn Write + Send>>) {
    *SINK.lock().unwrap_or_else(|e| e.into_inner()) = sink;
}

/// Writes one log line with extra `fields` (which must not repeat the three
/// standard keys). Write errors are ignored: logging never fails the caller.
pub fn log(level: LogLevel, message: &str, fields: &[(&str, Value)]) {
    if !enabled(level) {
        return;
    }
    let line = tcp_sniffer_settings::log::line(
        &Timestamp::now().to_string(),
        level,
        message,
        fields.iter().map(|(k, v)| (*k, v.clone())),
    );
    let mut sink = SINK.lock().unwrap_or_else(|e| e.into_inner());
    match sink.as_mut() {
        Some(w) => {
            let _ = w.write_all(&line);
            let _ = w.flush();
        }
        None => {
            let _ = std::io::stderr().lock().write_all(&line);
        }
    }
}

/// Lets one line through per interval and counts the ones held back, so a
/// failure that repeats for every message (endpoint down under load) logs a
/// few lines a minute rather than one per message.
#[derive(Debug)]
pub struct RateLimit {
    interval: Duration,
    state: Mutex<(Option<Instant>, u64)>,
}

impl RateLimit {
    /// At most one line per `interval`.
    pub const fn new(interval: Duration) -> Self {
        RateLimit {
            interval,
            state: Mutex::new((None, 0)),
        }
    }

    /// `Some(suppressed)` when a line may be written now (`suppressed` = events
    /// held back since the last line), `None` when this event is held back.
    pub fn check(&self) -> Option<u64> {
        let mut st = self.state.lock().unwrap_or_else(|e| e.into_inner());
        let now = Instant::now();
        match st.0 {
            Some(last) if now.duration_since(last) < self.interval => {
                st.1 += 1;
                None
            }
            _ => {
                let suppressed = st.1;
                *st = (Some(now), 0);
                Some(suppressed)
            }
        }
    }
}

impl RateLimit {
    /// Events held back since the last line written, reset to zero (for a
    /// summary line at shutdown).
    pub fn take_held(&self) -> u64 {
        let mut st = self.state.lock().unwrap_or_else(|e| e.into_inner());
        std::mem::take(&mut st.1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rate_limit_counts_held_back_events() {
        let r = RateLimit::new(Duration::from_secs(3600));
        assert_eq!(r.check(), Some(0));
        assert_eq!(r.check(), None);
        assert_eq!(r.check(), None);
        assert_eq!(r.take_held(), 2);
        assert_eq!(r.take_held(), 0);
        let r = RateLimit::new(Duration::ZERO);
        assert_eq!(r.check(), Some(0));
        assert_eq!(r.check(), Some(0));
    }

    #[test]
    fn levels_order() {
        assert!(level_rank(LogLevel::Error) < level_rank(LogLevel::Debug));
    }
}
