//! Settings of the HTTP/1 stage.

/// Settings of the HTTP stage.
#[derive(Clone, Debug)]
pub struct HttpConfig {
    /// Body bytes kept per message (`maxBodySize`); 0 keeps no body.
    pub max_body_size: usize,
    /// Header names whose values are replaced by `"[REDACTED]"` (compared case-insensitively).
    pub redact_headers: Vec<String>,
    /// Query parameters and body fields redacted in every message (see [`crate::redact`]).
    pub redact: crate::redact::Redaction,
    /// Longest message head (and trailer section) accepted.
    pub max_head_size: usize,
    /// Most header lines in one head (capped at 512).
    pub max_headers: usize,
}

impl Default for HttpConfig {
    fn default() -> Self {
        HttpConfig {
            max_body_size: 65_536,
            redact_headers: crate::redact::effective_list(
                crate::redact::DEFAULT_REDACT_HEADERS,
                &[],
            ),
            redact: crate::redact::Redaction::default(),
            max_head_size: 64 * 1024,
            max_headers: 128,
        }
    }
}
