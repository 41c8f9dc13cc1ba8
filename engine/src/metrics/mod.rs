//! Prometheus metrics: `GET /metrics` on `metricsAddr`.
//!
//! What is served, rendered by `prometheus-client` at each scrape:
//! - every counter of [`Stats`] as `tcp_sniffer_<stage>_<counter>_total` (stage as in the
//!   `--stats` JSON: `capture`, `decode`, `flow`, `reassembly`, `http`, `output`), each with
//!   the counter's own doc as `# HELP` (`metrics/help.rs`); `http.requests` and `http.responses` are
//!   `tcp_sniffer_http_request_messages_total` and `tcp_sniffer_http_response_messages_total`
//!   ([`counter_name`]) so they do not collide with the RED counter;
//! - loss by reason, in three families: `tcp_sniffer_packets_dropped_total{reason}`,
//!   `tcp_sniffer_connections_lost_total{reason}`, `tcp_sniffer_messages_dropped_total{reason}`;
//! - RED metrics of the observed traffic ([`red`]): `tcp_sniffer_http_requests_total{method,
//!   status_class}` and the histogram `tcp_sniffer_http_request_duration_seconds`.
//!
//! Format: the Prometheus text format 0.0.4, or OpenMetrics 1.0 when the scraper asks for
//! it in `Accept` (Prometheus does).
//!
//! The endpoint ([`MetricsServer`]) is one thread serving one connection at a time: a
//! request head must arrive within 2 s and fit in 8 KiB, the answer is written within 5 s,
//! then the connection is closed. A slow or hostile client holds it for at most that long,
//! and never touches the capture path: the counters are read from the snapshot the workers
//! publish anyway.

mod help;
pub mod red;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::MetricType;
use prometheus_client::registry::Registry;
use serde_json::json;

use crate::config::LogLevel;
use crate::output::log::log;
use crate::stats::Stats;

pub use red::{enable, enabled, ExchangeTracker};

/// Where the counters come from at each scrape.
pub type StatsSource = Arc<dyn Fn() -> Stats + Send + Sync>;

/// Longest wait for a scraper's request head.
const READ_TIMEOUT: Duration = Duration::from_secs(2);
/// Longest wait to write the answer.
const WRITE_TIMEOUT: Duration = Duration::from_secs(5);
/// Largest request head accepted.
const MAX_HEAD: usize = 8 * 1024;
/// How often the accept loop checks for stop.
const POLL: Duration = Duration::from_millis(100);

/// Prometheus text format 0.0.4.
pub const TEXT_CONTENT_TYPE: &str = prometheus_client::encoding::prometheus_text::CONTENT_TYPE;
/// OpenMetrics 1.0.
pub const OPENMETRICS_CONTENT_TYPE: &str =
    "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// The counters of one scrape, as a `prometheus-client` collector.
#[derive(Debug)]
struct StatsCollector {
    stats: serde_json::Value,
    s: Stats,
}

fn counter(
    enc: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    value: u64,
) -> Result<(), std::fmt::Error> {
    let c = ConstCounter::new(value);
    let m = enc.encode_descriptor(name, help, None, MetricType::Counter)?;
    c.encode(m)
}

fn labelled(
    enc: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    label: &str,
    values: &[(&str, u64)],
) -> Result<(), std::fmt::Error> {
    let mut m = enc.encode_descriptor(name, help, None, MetricType::Counter)?;
    for (reason, v) in values {
        let labels = [(label, *reason)];
        let fam = m.encode_family(&labels)?;
        ConstCounter::new(*v).encode(fam)?;
    }
    Ok(())
}

impl Collector for StatsCollector {
    fn encode(&self, mut enc: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let s = &self.s;
        // Every counter, under its stage.
        if let Some(groups) = self.stats.as_object() {
            for (group, fields) in groups {
                let Some(fields) = fields.as_object() else {
                    continue;
                };
                for (field, v) in fields {
                    let Some(v) = v.as_u64() else { continue };
                    let help = help::HELP
                        .iter()
                        .find(|(g, f, _)| g == group && f == field)
                        .map(|h| h.2)
                        .unwrap_or("tcp-sniffer counter (see the --stats JSON).");
                    counter(&mut enc, &counter_name(group, field), help, v)?;
                }
            }
        }
        // Loss by reason (the same counters, grouped so one query sums them).
        labelled(
            &mut enc,
            "tcp_sniffer_packets_dropped",
            "Packets lost before decoding, by reason: kernel (capture ring full), queue (a worker's queue full).",
            "reason",
            &[
                ("kernel", s.capture.kernel_drops),
                ("queue", s.capture.queue_drops),
            ],
        )?;
        let f = &s.flow;
        labelled(
            &mut enc,
            "tcp_sniffer_connections_lost",
            "Connections not observed to their end, by reason: over_cap (maxConcurrentConnections reached, never tracked), idle (evicted after connectionIdleTimeoutMs), half_open_timeout, half_open_evicted, unanswered_evicted (shed at the cap), memory (worker memory budget).",
            "reason",
            &[
                ("over_cap", f.connections_over_cap),
                ("idle", f.connections_idle_evicted),
                ("half_open_timeout", f.connections_half_open_timed_out),
                ("half_open_evicted", f.connections_half_open_evicted),
                ("unanswered_evicted", f.connections_unanswered_evicted),
                ("memory", f.connections_evicted_memory),
            ],
        )?;
        let o = &s.output;
        labelled(
            &mut enc,
            "tcp_sniffer_messages_dropped",
            "Messages not delivered, by reason: queue_full, retries_exhausted, rejected (non-retryable answer), shutdown (drain deadline passed), stdout_closed.",
            "reason",
            &[
                ("queue_full", o.dropped_queue_full),
                ("retries_exhausted", o.dropped_retries_exhausted),
                ("rejected", o.dropped_rejected),
                ("shutdown", o.dropped_at_shutdown),
                ("stdout_closed", o.dropped_stdout_closed),
            ],
        )?;
        // RED.
        {
            let mut m = enc.encode_descriptor(
                "tcp_sniffer_http_requests",
                "HTTP exchanges observed, by method (standard methods, else other; unknown when the request was not seen) and status class (none: no response seen).",
                None,
                MetricType::Counter,
            )?;
            for (mi, method) in red::METHODS.iter().enumerate() {
                for (ci, class) in red::CLASSES.iter().enumerate() {
                    let v = red::TOTALS.requests[mi][ci].load(Ordering::Relaxed);
                    if v == 0 {
                        continue;
                    }
                    let labels = [("method", *method), ("status_class", *class)];
                    ConstCounter::new(v).encode(m.encode_family(&labels)?)?;
                }
            }
        }
        {
            let mut cumulative = 0u64;
            let mut buckets = Vec::with_capacity(red::BUCKETS.len() + 1);
            for (i, le) in red::BUCKETS
                .iter()
                .copied()
                .chain([f64::INFINITY])
                .enumerate()
            {
                cumulative += red::TOTALS.buckets[i].load(Ordering::Relaxed);
                buckets.push((le, cumulative));
            }
            let sum = red::TOTALS.sum_us.load(Ordering::Relaxed) as f64 / 1e6;
            let mut m = enc.encode_descriptor(
                "tcp_sniffer_http_request_duration_seconds",
                "Duration of observed HTTP exchanges, from the request's last byte to the response's last byte (capture time).",
                None,
                MetricType::Histogram,
            )?;
            m.encode_histogram::<prometheus_client::encoding::NoLabelSet>(
                sum, cumulative, &buckets, None,
            )?;
        }
        Ok(())
    }
}

/// The metric name (before `_total`) of the `--stats` counter `group.field`:
/// `tcp_sniffer_<group>_<field>`, except the HTTP stage's message counts, which would
/// otherwise take the RED metric's name (`tcp_sniffer_http_requests_total`).
pub fn counter_name(group: &str, field: &str) -> String {
    match (group, field) {
        ("http", "requests") => "tcp_sniffer_http_request_messages".into(),
        ("http", "responses") => "tcp_sniffer_http_response_messages".into(),
        _ => format!("tcp_sniffer_{group}_{field}"),
    }
}

/// Renders `stats` and the RED metrics. `openmetrics` picks the format (see module docs);
/// returns the body and its `Content-Type`.
pub fn render(stats: &Stats, openmetrics: bool) -> (String, &'static str) {
    let mut registry = Registry::default();
    registry.register_collector(Box::new(StatsCollector {
        stats: serde_json::to_value(stats).unwrap_or_default(),
        s: stats.clone(),
    }));
    let mut out = String::with_capacity(16 * 1024);
    let ok = if openmetrics {
        prometheus_client::encoding::text::encode(&mut out, &registry)
    } else {
        prometheus_client::encoding::prometheus_text::encode(&mut out, &registry)
    };
    if ok.is_err() {
        out.clear();
    }
    let ct = if openmetrics {
        OPENMETRICS_CONTENT_TYPE
    } else {
        TEXT_CONTENT_TYPE
    };
    (out, ct)
}

/// `GET /metrics` on one address, from one thread. Stops when dropped.
pub struct MetricsServer {
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl std::fmt::Debug for MetricsServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MetricsServer")
            .field("addr", &self.addr)
            .finish()
    }
}

/// The metrics endpoint could not be started.
#[derive(Debug, thiserror::Error)]
#[error("cannot serve metrics on {addr} (metricsAddr): {source}")]
pub struct MetricsError {
    /// The address asked for.
    pub addr: String,
    /// Why (address in use, permission, …).
    #[source]
    pub source: std::io::Error,
}

impl MetricsServer {
    /// Binds `addr` (so a port in use fails here, at start) and serves `source`'s counters.
    /// Turns on RED recording for the process ([`enable`]).
    pub fn start(addr: &str, source: StatsSource) -> Result<MetricsServer, MetricsError> {
        let err = |e| MetricsError {
            addr: addr.to_string(),
            source: e,
        };
        let listener = TcpListener::bind(addr).map_err(err)?;
        listener.set_nonblocking(true).map_err(err)?;
        let local = listener.local_addr().map_err(err)?;
        enable();
        let stop = Arc::new(AtomicBool::new(false));
        let thread = std::thread::Builder::new()
            .name("tcp-sniffer-metrics".into())
            .spawn({
                let stop = stop.clone();
                move || serve(listener, &source, &stop)
            })
            .map_err(err)?;
        log(
            LogLevel::Info,
            "serving Prometheus metrics",
            &[
                ("address", json!(local.to_string())),
                ("path", json!("/metrics")),
            ],
        );
        Ok(MetricsServer {
            addr: local,
            stop,
            thread: Some(thread),
        })
    }

    /// The address actually bound (useful with port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }
}

impl Drop for MetricsServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            // A scrape holds the counters' owner for a moment: if the sniffer went away
            // meanwhile, the last reference (and this drop) is on the server's own thread,
            // which must not join itself; it ends on its own once `stop` is seen.
            if t.thread().id() != std::thread::current().id() {
                let _ = t.join();
            }
        }
    }
}

fn serve(listener: TcpListener, source: &StatsSource, stop: &AtomicBool) {
    while !stop.load(Ordering::SeqCst) {
        match listener.accept() {
            Ok((conn, _)) => {
                // One client's failure stays with that client.
                let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                    let _ = answer(conn, source);
                }));
            }
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => std::thread::sleep(POLL),
            Err(_) => std::thread::sleep(POLL),
        }
    }
}

fn answer(mut conn: TcpStream, source: &StatsSource) -> std::io::Result<()> {
    conn.set_nonblocking(false)?;
    conn.set_read_timeout(Some(READ_TIMEOUT))?;
    conn.set_write_timeout(Some(WRITE_TIMEOUT))?;
    let mut head = Vec::with_capacity(1024);
    let mut buf = [0u8; 1024];
    let deadline = std::time::Instant::now() + READ_TIMEOUT;
    loop {
        if memchr::memmem::find(&head, b"\r\n\r\n").is_some() {
            break;
        }
        if head.len() > MAX_HEAD {
            return reply(
                &mut conn,
                "431 Request Header Fields Too Large",
                "text/plain",
                "request head too large\n",
            );
        }
        if std::time::Instant::now() >= deadline {
            return Ok(());
        }
        let n = conn.read(&mut buf)?;
        if n == 0 {
            return Ok(());
        }
        head.extend_from_slice(&buf[..n]);
    }
    let mut headers = [httparse::EMPTY_HEADER; 64];
    let mut req = httparse::Request::new(&mut headers);
    if !matches!(req.parse(&head), Ok(httparse::Status::Complete(_))) {
        return reply(&mut conn, "400 Bad Request", "text/plain", "bad request\n");
    }
    let path = req.path.unwrap_or("/");
    let path = path.split('?').next().unwrap_or(path);
    let method = req.method.unwrap_or("");
    if path != "/metrics" {
        return reply(
            &mut conn,
            "404 Not Found",
            "text/plain",
            "not found; metrics are at /metrics\n",
        );
    }
    if method != "GET" && method != "HEAD" {
        return reply(
            &mut conn,
            "405 Method Not Allowed",
            "text/plain",
            "use GET\n",
        );
    }
    let openmetrics = req.headers.iter().any(|h| {
        h.name.eq_ignore_ascii_case("accept")
            && std::str::from_utf8(h.value)
                .is_ok_and(|v| v.contains("application/openmetrics-text"))
    });
    let (body, ct) = render(&source(), openmetrics);
    if method == "HEAD" {
        let head = format!(
            "HTTP/1.1 200 OK\r\nContent-Type: {ct}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
            body.len()
        );
        return conn.write_all(head.as_bytes());
    }
    reply(&mut conn, "200 OK", ct, &body)
}

fn reply(conn: &mut TcpStream, status: &str, ct: &str, body: &str) -> std::io::Result<()> {
    let head = format!(
        "HTTP/1.1 {status}\r\nContent-Type: {ct}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    conn.write_all(head.as_bytes())?;
    conn.write_all(body.as_bytes())?;
    conn.flush()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_stats_counter_has_help() {
        let v = serde_json::to_value(Stats::default()).unwrap();
        let mut missing = Vec::new();
        for (g, fields) in v.as_object().unwrap() {
            for (f, _) in fields.as_object().unwrap() {
                if !help::HELP.iter().any(|(hg, hf, _)| hg == g && hf == f) {
                    missing.push(format!("{g}.{f}"));
                }
            }
        }
        assert!(
            missing.is_empty(),
            "add HELP lines to engine/src/metrics/help.rs for: {missing:?}"
        );
    }

    #[test]
    fn renders_every_counter_with_help_and_type() {
        let mut s = Stats::default();
        s.capture.packets = 7;
        s.capture.kernel_drops = 3;
        s.output.dropped_retries_exhausted = 2;
        let (text, ct) = render(&s, false);
        assert_eq!(ct, TEXT_CONTENT_TYPE);
        assert!(
            text.contains("# TYPE tcp_sniffer_capture_packets_total counter\n"),
            "{text}"
        );
        assert!(
            text.contains("\ntcp_sniffer_capture_packets_total 7\n"),
            "{text}"
        );
        assert!(text.contains("tcp_sniffer_packets_dropped_total{reason=\"kernel\"} 3\n"));
        assert!(
            text.contains("tcp_sniffer_messages_dropped_total{reason=\"retries_exhausted\"} 2\n")
        );
        assert!(text.contains("# TYPE tcp_sniffer_http_request_duration_seconds histogram\n"));
        let counters = help::HELP.len();
        let typed = text.matches("# TYPE tcp_sniffer_").count();
        assert_eq!(typed, counters + 5, "{text}");
        assert_eq!(text.matches("# HELP ").count(), typed);
        let (om, ct) = render(&s, true);
        assert_eq!(ct, OPENMETRICS_CONTENT_TYPE);
        assert!(om.ends_with("# EOF\n"));
    }
}
