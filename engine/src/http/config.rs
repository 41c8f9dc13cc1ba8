//! Settings of the HTTP/1 stage.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

/// What a port carried that the engine cannot read, logged once per port per run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PortNotice {
    /// TLS: encrypted.
    Tls,
    /// HTTP/2 first seen mid-connection: header fields coded against HPACK state from
    /// before the capture cannot be decoded.
    Http2MidStream,
}

/// Which ports were already logged, per [`PortNotice`]: one bit per port, shared by the
/// workers of a run (lock-free, 16 KiB).
pub struct PortNotices {
    bits: [Box<[AtomicU64]>; 2],
}

impl std::fmt::Debug for PortNotices {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PortNotices")
    }
}

impl Default for PortNotices {
    fn default() -> Self {
        let bits = || (0..1024).map(|_| AtomicU64::new(0)).collect();
        PortNotices {
            bits: [bits(), bits()],
        }
    }
}

impl PortNotices {
    /// True the first time `kind` is noted for `port` (the caller logs then).
    pub fn first(&self, kind: PortNotice, port: u16) -> bool {
        let word = &self.bits[kind as usize][usize::from(port / 64)];
        let bit = 1u64 << (port % 64);
        word.fetch_or(bit, Ordering::Relaxed) & bit == 0
    }

    /// Logs `kind` for server port `port` at `warn`, the first time only.
    pub fn note(&self, kind: PortNotice, port: u16) {
        if !self.first(kind, port) {
            return;
        }
        let (message, counter) = match kind {
            PortNotice::Tls => (
                "TLS on a monitored port: encrypted traffic cannot be read (counted, not parsed; logged once per port)",
                "http.non_http_tls",
            ),
            PortNotice::Http2MidStream => (
                "HTTP/2 on a monitored port was first seen mid-connection: header fields coded against HPACK state from before the capture cannot be read (those messages are incomplete; logged once per port)",
                "http.h2_mid_stream",
            ),
        };
        crate::output::log::log(
            crate::config::LogLevel::Warn,
            message,
            &[("port", port.into()), ("counter", counter.into())],
        );
    }
}

/// Settings of the HTTP stage.
#[derive(Clone, Debug)]
pub struct HttpConfig {
    /// Body bytes kept per message (`maxBodySize`); 0 keeps no body.
    pub max_body_size: usize,
    /// Header names whose values are replaced by `"[REDACTED]"` (compared case-insensitively).
    pub redact_headers: super::head::RedactedHeaders,
    /// Query parameters and body fields redacted in every message (see [`crate::redact`]).
    pub redact: crate::redact::Redaction,
    /// Longest message head (and trailer section) accepted.
    pub max_head_size: usize,
    /// Most header lines in one head (capped at 512).
    pub max_headers: usize,
    /// Decode `gzip`, `deflate`, `br` and `zstd` bodies (`decodeBodies`).
    pub decode_bodies: bool,
    /// Ports already warned about (shared by the workers of one run).
    pub notices: Arc<PortNotices>,
}

impl HttpConfig {
    /// The HTTP stage's part of validated settings.
    pub fn from_settings(s: &crate::config::Settings) -> Self {
        HttpConfig {
            max_body_size: s.max_body_size,
            redact_headers: super::head::RedactedHeaders::new(s.redact_headers.clone()),
            redact: crate::redact::Redaction::new(
                s.redact_query_params.clone(),
                s.redact_body_fields.clone(),
            ),
            max_head_size: 64 * 1024,
            max_headers: 128,
            decode_bodies: s.decode_bodies,
            notices: Arc::default(),
        }
    }
}

impl Default for HttpConfig {
    /// The settings' defaults (the table in `tcp-sniffer-settings`).
    fn default() -> Self {
        Self::from_settings(&crate::config::Settings::default())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_port_is_noted_once_per_kind_and_run() {
        let n = PortNotices::default();
        assert!(n.first(PortNotice::Tls, 443));
        assert!(!n.first(PortNotice::Tls, 443));
        assert!(
            n.first(PortNotice::Http2MidStream, 443),
            "kinds are separate"
        );
        for p in [0u16, 63, 64, 65535] {
            assert!(n.first(PortNotice::Tls, p), "{p}");
            assert!(!n.first(PortNotice::Tls, p), "{p}");
        }
        // A new run (a new HttpConfig) warns again.
        let other = HttpConfig::default();
        assert!(other.notices.first(PortNotice::Tls, 443));
    }
}
