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
    /// Decode `gzip`, `deflate`, `br` and `zstd` bodies (`decodeBodies`).
    pub decode_bodies: bool,
}

impl HttpConfig {
    /// The HTTP stage's part of validated settings.
    pub fn from_settings(s: &crate::config::Settings) -> Self {
        HttpConfig {
            max_body_size: s.max_body_size,
            redact_headers: s.redact_headers.clone(),
            redact: crate::redact::Redaction {
                query_params: s.redact_query_params.clone(),
                body_fields: s.redact_body_fields.clone(),
            },
            max_head_size: 64 * 1024,
            max_headers: 128,
            decode_bodies: s.decode_bodies,
        }
    }
}

impl Default for HttpConfig {
    /// The settings' defaults (the table in `tcp-sniffer-settings`).
    fn default() -> Self {
        Self::from_settings(&crate::config::Settings::default())
    }
}
