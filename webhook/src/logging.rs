//! The webhook's log lines: the format of every tcp-sniffer binary.
//!
//! JSON lines on stderr with `timestamp` (RFC 3339 UTC, microseconds), `level` in lower case,
//! `message` and the event's fields in camelCase, written by
//! [`tcp_sniffer_settings::log::line`] — the same function the sniffer and the sidecar log
//! through. The code logs with `tracing` (field names in snake_case, as Rust writes them); the
//! formatter renames them, so call sites need not know the format. Span fields are not
//! written (the webhook logs events only).

use std::fmt;

use serde_json::Value;
use tcp_sniffer_settings::LogLevel;
use tracing::field::{Field, Visit};
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields};
use tracing_subscriber::registry::LookupSpan;

/// Installs the global subscriber: this crate at `level`, libraries (rustls, h2, hyper) at most
/// at `warn`, so `debug` shows the webhook's decisions without every HTTP/2 frame.
pub fn init(level: LogLevel) {
    let deps = LogLevel::Warn.min(level);
    let filter = tracing_subscriber::EnvFilter::new(format!("{deps},tcp_sniffer_webhook={level}"));
    tracing_subscriber::fmt()
        .event_format(JsonLines)
        .with_writer(std::io::stderr)
        .with_env_filter(filter)
        .init();
}

/// The one line format (see the module doc).
#[derive(Debug, Clone, Copy, Default)]
pub struct JsonLines;

/// `tracing`'s levels in ours (`trace` is written as `debug`: there is no finer level).
pub fn level_of(l: &Level) -> LogLevel {
    match *l {
        Level::ERROR => LogLevel::Error,
        Level::WARN => LogLevel::Warn,
        Level::INFO => LogLevel::Info,
        _ => LogLevel::Debug,
    }
}

impl<S, N> FormatEvent<S, N> for JsonLines
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        _ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        let mut fields = Fields::default();
        event.record(&mut fields);
        let line = tcp_sniffer_settings::log::line(
            &now_rfc3339(),
            level_of(event.metadata().level()),
            &fields.message,
            fields.fields,
        );
        writer.write_str(&String::from_utf8_lossy(&line))
    }
}

/// Now, as `2026-01-02T03:04:05.123456Z`.
fn now_rfc3339() -> String {
    let t = time::OffsetDateTime::now_utc();
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:06}Z",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second(),
        t.microsecond()
    )
}

/// An event's message and fields, typed where `tracing` gives a type.
#[derive(Default)]
struct Fields {
    message: String,
    fields: Vec<(String, Value)>,
}

impl Fields {
    fn put(&mut self, field: &Field, v: Value) {
        if field.name() == "message" {
            self.message = match v {
                Value::String(s) => s,
                other => other.to_string(),
            };
        } else {
            self.fields.push((field.name().to_string(), v));
        }
    }
}

impl Visit for Fields {
    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        // `%x` fields arrive here too, with Display behind Debug.
        self.put(field, Value::String(format!("{value:?}")));
    }
    fn record_str(&mut self, field: &Field, value: &str) {
        self.put(field, value.into());
    }
    fn record_i64(&mut self, field: &Field, value: i64) {
        self.put(field, value.into());
    }
    fn record_u64(&mut self, field: &Field, value: u64) {
        self.put(field, value.into());
    }
    fn record_bool(&mut self, field: &Field, value: bool) {
        self.put(field, value.into());
    }
    fn record_f64(&mut self, field: &Field, value: f64) {
        self.put(field, value.into());
    }
    fn record_error(&mut self, field: &Field, value: &(dyn std::error::Error + 'static)) {
        self.put(field, Value::String(value.to_string()));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tcp_sniffer_settings::log::Captured;

    #[test]
    fn lines_have_lowercase_levels_and_camel_case_fields() {
        let buf = Captured::default();
        let w = buf.clone();
        let sub = tracing_subscriber::fmt()
            .event_format(JsonLines)
            .with_writer(move || w.clone())
            .with_max_level(Level::TRACE)
            .finish();
        tracing::subscriber::with_default(sub, || {
            tracing::info!(native_sidecar = true, max_body_size = 5u64, image = %"img:1", "listening");
            tracing::warn!(rate = 0.5, wanted = -1i64, "lowered");
            tracing::trace!("fine");
        });
        let text = buf.text();
        let lines = buf.lines();
        assert_eq!(lines.len(), 3, "{text}");
        assert_eq!(lines[0]["level"], "info");
        assert_eq!(lines[0]["message"], "listening");
        assert_eq!(lines[0]["nativeSidecar"], true);
        assert_eq!(lines[0]["maxBodySize"], 5);
        assert_eq!(lines[0]["image"], "img:1");
        assert!(lines[0].get("native_sidecar").is_none());
        assert_eq!(lines[1]["level"], "warn");
        assert_eq!(lines[1]["rate"], 0.5);
        assert_eq!(lines[2]["level"], "debug");
        let ts = lines[0]["timestamp"].as_str().unwrap();
        assert_eq!(ts.len(), "2026-01-02T03:04:05.123456Z".len(), "{ts}");
        assert!(ts.ends_with('Z'));
    }
}
