//! Fixtures for tests, benches and examples of this workspace — not part of the API (the
//! module is hidden from the docs and may change without notice).
//!
//! One [`sample_message`] instead of a literal of every [`HttpMessage`] field in each test:
//! a test names the fields it is about and takes the rest from the sample with struct update
//! syntax, so adding a field to the message (schema v1 grows by adding fields) touches this
//! file only.
//!
//! ```
//! use tcp_sniffer::message::HttpMessage;
//! use tcp_sniffer::testing::{request, sample_message};
//! let m = HttpMessage {
//!     kind: request("POST", "/login"),
//!     body: b"{}".to_vec(),
//!     body_size: 2,
//!     ..sample_message()
//! };
//! assert_eq!(m.http_version, "1.1");
//! ```

use std::net::SocketAddr;

use crate::message::{Direction, Endpoint, HttpMessage, MessageKind};
use crate::time::Timestamp;

/// `GET /` over HTTP/1.1 from `127.0.0.1:50000` to `127.0.0.1:80`: connection 1, sequence
/// 0, both timestamps 0, direction unknown, no headers, no body, nothing truncated,
/// incomplete or tunnelled, no HTTP/2 stream, no trailers.
pub fn sample_message() -> HttpMessage {
    HttpMessage {
        kind: request("GET", "/"),
        connection_id: 1,
        sequence: 0,
        timestamp: Timestamp(0),
        end_timestamp: Timestamp(0),
        source: endpoint("127.0.0.1:50000"),
        destination: endpoint("127.0.0.1:80"),
        direction: Direction::Unknown,
        http_version: "1.1",
        headers: Vec::new(),
        body: Vec::new(),
        body_size: 0,
        truncated: false,
        incomplete: false,
        parse_error: None,
        decoded_body_size: None,
        tunnel: false,
        stream_id: None,
        trailers: Vec::new(),
    }
}

/// A request's [`MessageKind`].
pub fn request(method: &str, url: &str) -> MessageKind {
    MessageKind::Request {
        method: method.into(),
        url: url.into(),
    }
}

/// A response's [`MessageKind`].
pub fn response(status_code: u16, status_message: &str, latency_ms: Option<f64>) -> MessageKind {
    MessageKind::Response {
        status_code,
        status_message: status_message.into(),
        latency_ms,
    }
}

/// An [`Endpoint`] from `"ip:port"` (`"[::1]:80"` for IPv6). Panics on anything else: a
/// fixture's address is a literal.
pub fn endpoint(addr: &str) -> Endpoint {
    addr.parse::<SocketAddr>()
        .unwrap_or_else(|e| panic!("fixture address {addr:?}: {e}"))
        .into()
}
