//! The one log format of every tcp-sniffer binary, and the one mapping of log level names.
//!
//! A log line is one JSON object on stderr: `timestamp` (RFC 3339 UTC with microseconds),
//! `level` (`error`, `warn`, `info` or `debug`, lower case), `message`, then the line's
//! fields with camelCase names. [`line()`] writes it; the engine's logger (the CLI and the
//! sidecar) and the webhook's tracing formatter both call it, so the format cannot drift.

use std::borrow::Cow;
use std::fmt;
use std::io::Write;
use std::sync::{Arc, Mutex};

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// Log verbosity. Ordered from least to most verbose.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogLevel {
    /// Errors only.
    Error,
    /// Errors and warnings.
    Warn,
    /// The default.
    Info,
    /// Everything.
    Debug,
}

impl LogLevel {
    /// Every level, least verbose first.
    pub const ALL: [LogLevel; 4] = [
        LogLevel::Error,
        LogLevel::Warn,
        LogLevel::Info,
        LogLevel::Debug,
    ];

    /// The names, in the order of [`LogLevel::ALL`] (the accepted values of `logLevel`).
    pub const NAMES: &'static [&'static str] = &["error", "warn", "info", "debug"];

    /// The lower-case name, as written in log lines and accepted by `logLevel`.
    pub const fn as_str(self) -> &'static str {
        Self::NAMES[self as usize]
    }

    /// The level named `name` (any case, surrounding blanks ignored).
    pub fn from_name(name: &str) -> Option<LogLevel> {
        let name = name.trim();
        Self::ALL
            .into_iter()
            .find(|l| l.as_str().eq_ignore_ascii_case(name))
    }
}

impl fmt::Display for LogLevel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// `snake_case` (or `kebab-case`) field names in camelCase; camelCase names unchanged.
pub fn camel_case(name: &str) -> Cow<'_, str> {
    if !name.contains(['_', '-']) {
        return Cow::Borrowed(name);
    }
    let mut out = String::with_capacity(name.len());
    let mut upper = false;
    for c in name.chars() {
        if c == '_' || c == '-' {
            upper = !out.is_empty();
        } else if upper {
            out.extend(c.to_uppercase());
            upper = false;
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

/// One log line, newline included. Field names are written in camelCase; a field named like
/// one of the three standard keys is dropped (they cannot be overridden).
pub fn line<K: AsRef<str>>(
    timestamp: &str,
    level: LogLevel,
    message: &str,
    fields: impl IntoIterator<Item = (K, Value)>,
) -> Vec<u8> {
    let mut obj = Map::new();
    obj.insert("timestamp".into(), timestamp.into());
    obj.insert("level".into(), level.as_str().into());
    obj.insert("message".into(), message.into());
    for (k, v) in fields {
        let k = camel_case(k.as_ref());
        if !matches!(k.as_ref(), "timestamp" | "level" | "message") {
            obj.insert(k.into_owned(), v);
        }
    }
    let mut out = serde_json::to_vec(&Value::Object(obj)).unwrap_or_default();
    out.push(b'\n');
    out
}

/// A log destination that keeps what is written, for the tests of each binary's log lines
/// (the engine's `set_sink`, the webhook's tracing writer). Clones share one buffer. Not
/// part of the API.
#[doc(hidden)]
#[derive(Clone, Default)]
pub struct Captured(Arc<Mutex<Vec<u8>>>);

impl Captured {
    /// Everything written so far, as text (lossy: log lines are UTF-8).
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.buf()).into_owned()
    }

    /// Every line written so far, parsed; panics, with the text, on a line that is not JSON.
    pub fn lines(&self) -> Vec<Value> {
        let text = self.text();
        text.lines()
            .map(|l| {
                serde_json::from_str(l)
                    .unwrap_or_else(|e| panic!("log line is not JSON ({e}): {l}\n{text}"))
            })
            .collect()
    }

    fn buf(&self) -> std::sync::MutexGuard<'_, Vec<u8>> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl Write for Captured {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.buf().extend_from_slice(b);
        Ok(b.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn names_round_trip() {
        for l in LogLevel::ALL {
            assert_eq!(LogLevel::from_name(l.as_str()), Some(l));
            assert_eq!(LogLevel::from_name(&l.as_str().to_uppercase()), Some(l));
            assert_eq!(serde_json::to_value(l).unwrap(), json!(l.as_str()));
        }
        assert_eq!(LogLevel::from_name("trace"), None);
        assert!(LogLevel::Error < LogLevel::Debug);
    }

    #[test]
    fn lines_are_camel_case_with_lowercase_levels() {
        assert_eq!(camel_case("max_body_size"), "maxBodySize");
        assert_eq!(camel_case("fallbackReason"), "fallbackReason");
        assert_eq!(camel_case("run-as-user"), "runAsUser");
        let l = line(
            "2026-01-01T00:00:00.000000Z",
            LogLevel::Warn,
            "hello",
            [("native_sidecar", json!(true)), ("level", json!("x"))],
        );
        let v: Value = serde_json::from_slice(&l).unwrap();
        assert_eq!(
            v,
            json!({"timestamp": "2026-01-01T00:00:00.000000Z", "level": "warn",
                   "message": "hello", "nativeSidecar": true})
        );
        assert!(l.ends_with(b"}\n"));
    }
}
