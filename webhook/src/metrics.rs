//! Process-wide counters, rendered by hand in the Prometheus text exposition format (0.0.4).
//!
//! Everything is a relaxed atomic: `/metrics` may read a review half-counted, never a torn
//! number. Label sets are fixed (enums), so the series count is bounded.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::Duration;

use crate::mutate::{SkipReason, Verdict, VALUE_ANNOTATIONS};

/// Upper bounds (seconds) of the `/mutate` latency histogram.
pub const LATENCY_BUCKETS: [f64; 12] = [
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0,
];

/// HTTP error statuses that are counted.
pub const HTTP_ERRORS: [u16; 7] = [400, 404, 405, 408, 413, 415, 503];

/// Why the server closed a connection on its own (label of `connections_closed_total`).
pub const CLOSE_REASONS: [&str; 3] = ["idle", "shed", "handshake_timeout"];

/// All counters of the process.
#[derive(Debug, Default)]
pub struct Metrics {
    reviews: AtomicU64,
    injected: AtomicU64,
    skipped: [AtomicU64; SkipReason::ALL.len()],
    warnings: AtomicU64,
    invalid_annotations: [AtomicU64; VALUE_ANNOTATIONS.len()],
    http_errors: [AtomicU64; HTTP_ERRORS.len()],
    buckets: [AtomicU64; LATENCY_BUCKETS.len()],
    latency_count: AtomicU64,
    latency_sum_ns: AtomicU64,
    tls_handshake_errors: AtomicU64,
    tls_reloads: AtomicU64,
    tls_reload_errors: AtomicU64,
    tls_loaded_at: AtomicU64,
    connections_open: AtomicU64,
    connections_closed: [AtomicU64; CLOSE_REASONS.len()],
}

impl Metrics {
    /// One review answered (status 200).
    pub fn review(
        &self,
        verdict: Verdict,
        warnings: usize,
        invalid: &[&'static str],
        took: Duration,
    ) {
        self.reviews.fetch_add(1, Relaxed);
        match verdict {
            Verdict::Injected => {
                self.injected.fetch_add(1, Relaxed);
            }
            Verdict::Skipped(r) => {
                if let Some(i) = SkipReason::ALL.iter().position(|x| *x == r) {
                    self.skipped[i].fetch_add(1, Relaxed);
                }
            }
        }
        self.warnings.fetch_add(warnings as u64, Relaxed);
        for a in invalid {
            if let Some(i) = VALUE_ANNOTATIONS.iter().position(|x| x == a) {
                self.invalid_annotations[i].fetch_add(1, Relaxed);
            }
        }
        self.observe(took);
    }

    /// Time spent answering one `/mutate` call (any status).
    pub fn observe(&self, took: Duration) {
        let secs = took.as_secs_f64();
        for (i, le) in LATENCY_BUCKETS.iter().enumerate() {
            if secs <= *le {
                self.buckets[i].fetch_add(1, Relaxed);
            }
        }
        self.latency_count.fetch_add(1, Relaxed);
        self.latency_sum_ns
            .fetch_add(u64::try_from(took.as_nanos()).unwrap_or(u64::MAX), Relaxed);
    }

    /// An HTTP error answer.
    pub fn http_error(&self, status: u16) {
        if let Some(i) = HTTP_ERRORS.iter().position(|s| *s == status) {
            self.http_errors[i].fetch_add(1, Relaxed);
        }
    }

    /// A TLS handshake that failed or timed out.
    pub fn tls_handshake_error(&self) {
        self.tls_handshake_errors.fetch_add(1, Relaxed);
    }

    /// Certificate (re)loaded; `unix_secs` is when.
    pub fn tls_loaded(&self, unix_secs: u64, initial: bool) {
        if !initial {
            self.tls_reloads.fetch_add(1, Relaxed);
        }
        self.tls_loaded_at.store(unix_secs, Relaxed);
    }

    /// A changed certificate could not be loaded (the old one stays).
    pub fn tls_reload_error(&self) {
        self.tls_reload_errors.fetch_add(1, Relaxed);
    }

    /// Connection opened (+1) or closed (-1).
    pub fn connection(&self, opened: bool) {
        if opened {
            self.connections_open.fetch_add(1, Relaxed);
        } else {
            self.connections_open.fetch_sub(1, Relaxed);
        }
    }

    /// The server closed a connection itself: `idle` (no request for the idle timeout,
    /// including clients that never finish their headers), `shed` (closed to make room at the
    /// connection cap), `handshake_timeout`.
    pub fn connection_closed(&self, reason: &str) {
        if let Some(i) = CLOSE_REASONS.iter().position(|r| *r == reason) {
            self.connections_closed[i].fetch_add(1, Relaxed);
        }
    }

    /// Render all series.
    pub fn render(&self) -> String {
        let mut o = String::with_capacity(4096);
        let g = |a: &AtomicU64| a.load(Relaxed);
        let counter = |o: &mut String, name: &str, help: &str| {
            let _ = writeln!(o, "# HELP {name} {help}\n# TYPE {name} counter");
        };
        counter(
            &mut o,
            "tcp_sniffer_webhook_reviews_total",
            "AdmissionReviews answered with 200.",
        );
        let _ = writeln!(o, "tcp_sniffer_webhook_reviews_total {}", g(&self.reviews));
        counter(
            &mut o,
            "tcp_sniffer_webhook_injected_total",
            "Pods the sidecar was added to.",
        );
        let _ = writeln!(
            o,
            "tcp_sniffer_webhook_injected_total {}",
            g(&self.injected)
        );
        counter(
            &mut o,
            "tcp_sniffer_webhook_skipped_total",
            "Reviews answered without a patch, by reason.",
        );
        for (i, r) in SkipReason::ALL.iter().enumerate() {
            let _ = writeln!(
                o,
                "tcp_sniffer_webhook_skipped_total{{reason=\"{}\"}} {}",
                r.as_str(),
                g(&self.skipped[i])
            );
        }
        counter(
            &mut o,
            "tcp_sniffer_webhook_warnings_total",
            "Warnings returned to API clients.",
        );
        let _ = writeln!(
            o,
            "tcp_sniffer_webhook_warnings_total {}",
            g(&self.warnings)
        );
        counter(
            &mut o,
            "tcp_sniffer_webhook_invalid_annotations_total",
            "Invalid per-pod annotation values (default used), by annotation.",
        );
        for (i, a) in VALUE_ANNOTATIONS.iter().enumerate() {
            let _ = writeln!(
                o,
                "tcp_sniffer_webhook_invalid_annotations_total{{annotation=\"{a}\"}} {}",
                g(&self.invalid_annotations[i])
            );
        }
        counter(
            &mut o,
            "tcp_sniffer_webhook_http_errors_total",
            "Requests answered with an HTTP error, by status code.",
        );
        for (i, c) in HTTP_ERRORS.iter().enumerate() {
            let _ = writeln!(
                o,
                "tcp_sniffer_webhook_http_errors_total{{code=\"{c}\"}} {}",
                g(&self.http_errors[i])
            );
        }
        let name = "tcp_sniffer_webhook_mutate_duration_seconds";
        let _ = writeln!(o, "# HELP {name} Time to answer POST /mutate, from full body to response.\n# TYPE {name} histogram");
        for (i, le) in LATENCY_BUCKETS.iter().enumerate() {
            let _ = writeln!(o, "{name}_bucket{{le=\"{le}\"}} {}", g(&self.buckets[i]));
        }
        let count = g(&self.latency_count);
        let _ = writeln!(o, "{name}_bucket{{le=\"+Inf\"}} {count}");
        let _ = writeln!(o, "{name}_sum {}", g(&self.latency_sum_ns) as f64 / 1e9);
        let _ = writeln!(o, "{name}_count {count}");
        counter(
            &mut o,
            "tcp_sniffer_webhook_tls_handshake_errors_total",
            "TLS handshakes that failed or timed out.",
        );
        let _ = writeln!(
            o,
            "tcp_sniffer_webhook_tls_handshake_errors_total {}",
            g(&self.tls_handshake_errors)
        );
        counter(
            &mut o,
            "tcp_sniffer_webhook_tls_reloads_total",
            "Certificate reloads after a file change.",
        );
        let _ = writeln!(
            o,
            "tcp_sniffer_webhook_tls_reloads_total {}",
            g(&self.tls_reloads)
        );
        counter(
            &mut o,
            "tcp_sniffer_webhook_tls_reload_errors_total",
            "Changed certificate files that could not be loaded (old certificate kept).",
        );
        let _ = writeln!(
            o,
            "tcp_sniffer_webhook_tls_reload_errors_total {}",
            g(&self.tls_reload_errors)
        );
        let _ = writeln!(o, "# HELP tcp_sniffer_webhook_tls_certificate_loaded_timestamp_seconds When the certificate in use was loaded.\n# TYPE tcp_sniffer_webhook_tls_certificate_loaded_timestamp_seconds gauge");
        let _ = writeln!(
            o,
            "tcp_sniffer_webhook_tls_certificate_loaded_timestamp_seconds {}",
            g(&self.tls_loaded_at)
        );
        let _ = writeln!(o, "# HELP tcp_sniffer_webhook_connections_open TLS connections being served.\n# TYPE tcp_sniffer_webhook_connections_open gauge");
        let _ = writeln!(
            o,
            "tcp_sniffer_webhook_connections_open {}",
            g(&self.connections_open)
        );
        counter(
            &mut o,
            "tcp_sniffer_webhook_connections_closed_total",
            "Connections the server closed on its own, by reason (idle, shed at the cap, handshake timeout).",
        );
        for (i, r) in CLOSE_REASONS.iter().enumerate() {
            let _ = writeln!(
                o,
                "tcp_sniffer_webhook_connections_closed_total{{reason=\"{r}\"}} {}",
                g(&self.connections_closed[i])
            );
        }
        let _ = writeln!(o, "# HELP tcp_sniffer_webhook_build_info Version of this binary.\n# TYPE tcp_sniffer_webhook_build_info gauge");
        let _ = writeln!(
            o,
            "tcp_sniffer_webhook_build_info{{version=\"{}\"}} 1",
            env!("CARGO_PKG_VERSION")
        );
        o
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_counts_and_histogram() {
        let m = Metrics::default();
        m.review(
            Verdict::Injected,
            1,
            &["tcp-sniffer.dev/ports"],
            Duration::from_micros(300),
        );
        m.review(
            Verdict::Skipped(SkipReason::NoPorts),
            1,
            &[],
            Duration::from_millis(2),
        );
        m.http_error(415);
        let t = m.render();
        for line in [
            "tcp_sniffer_webhook_reviews_total 2",
            "tcp_sniffer_webhook_injected_total 1",
            "tcp_sniffer_webhook_skipped_total{reason=\"no_ports\"} 1",
            "tcp_sniffer_webhook_skipped_total{reason=\"opted_out\"} 0",
            "tcp_sniffer_webhook_warnings_total 2",
            "tcp_sniffer_webhook_invalid_annotations_total{annotation=\"tcp-sniffer.dev/ports\"} 1",
            "tcp_sniffer_webhook_http_errors_total{code=\"415\"} 1",
            "tcp_sniffer_webhook_mutate_duration_seconds_bucket{le=\"0.00025\"} 0",
            "tcp_sniffer_webhook_mutate_duration_seconds_bucket{le=\"0.0005\"} 1",
            "tcp_sniffer_webhook_mutate_duration_seconds_bucket{le=\"0.0025\"} 2",
            "tcp_sniffer_webhook_mutate_duration_seconds_bucket{le=\"+Inf\"} 2",
            "tcp_sniffer_webhook_mutate_duration_seconds_count 2",
        ] {
            assert!(t.lines().any(|l| l == line), "missing {line:?} in\n{t}");
        }
        // Every sample line belongs to a declared family.
        for l in t.lines().filter(|l| !l.starts_with('#')) {
            let name = l.split(['{', ' ']).next().unwrap();
            let family = name
                .trim_end_matches("_bucket")
                .trim_end_matches("_sum")
                .trim_end_matches("_count");
            assert!(
                t.contains(&format!("# TYPE {family} ")) || t.contains(&format!("# TYPE {name} ")),
                "{l}"
            );
        }
    }
}
