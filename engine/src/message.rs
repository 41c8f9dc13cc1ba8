//! The HTTP message of schema v1: one per request and one per response.
//!
//! [`HttpMessage`] is what the `http` stage produces and every output consumes.
//! It is serialised exactly once, by [`HttpMessage::write_json`], so stdout,
//! the output URL and the Node addon see byte-identical JSON.

use std::net::{IpAddr, SocketAddr};

use crate::time::Timestamp;

/// One end of a TCP connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Endpoint {
    /// IPv4 or IPv6 address.
    pub ip: IpAddr,
    /// TCP port.
    pub port: u16,
}

impl From<SocketAddr> for Endpoint {
    fn from(a: SocketAddr) -> Self {
        Endpoint {
            ip: a.ip(),
            port: a.port(),
        }
    }
}

/// Which side of a connection sent some bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Side {
    /// The side that sends requests.
    Client,
    /// The side that sends responses (listens on a monitored port).
    Server,
}

impl Side {
    /// The other side.
    pub fn peer(self) -> Side {
        match self {
            Side::Client => Side::Server,
            Side::Server => Side::Client,
        }
    }
}

/// Relative to the captured host (see the schema's `direction`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Direction {
    /// The server side is one of the host's own addresses.
    Inbound,
    /// The client side is one of the host's own addresses.
    Outbound,
    /// Cannot be told (e.g. reading a file).
    #[default]
    Unknown,
}

impl Direction {
    /// The schema's text for this direction.
    pub fn as_str(self) -> &'static str {
        match self {
            Direction::Inbound => "inbound",
            Direction::Outbound => "outbound",
            Direction::Unknown => "unknown",
        }
    }
}

/// What the flow table knows about a connection; copied into each of its messages.
#[derive(Clone, Debug)]
pub struct ConnMeta {
    /// Unique within the sniffer's run (see [`ConnMeta::format_id`]).
    pub id: u64,
    /// The side that sends requests.
    pub client: Endpoint,
    /// The side that sends responses.
    pub server: Endpoint,
    /// Relative to the captured host.
    pub direction: Direction,
    /// True when the capture did not see the connection's SYN: the first bytes
    /// may be the middle of a message and HTTP parsing must resynchronise.
    pub mid_stream: bool,
}

impl ConnMeta {
    /// The `connectionId` text: 16 lower-case hex digits.
    pub fn format_id(id: u64) -> String {
        format!("{id:016x}")
    }
}

/// A header value as Node's `IncomingMessage.headers` would hold it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum HeaderValue {
    /// Any header but `set-cookie`: repeated values already joined.
    Single(String),
    /// `set-cookie`: every value, in order.
    List(Vec<String>),
}

/// Request- or response-specific fields.
#[derive(Clone, Debug, PartialEq)]
pub enum MessageKind {
    /// `type: "request"`.
    Request {
        /// Method exactly as on the wire.
        method: String,
        /// Request-target exactly as on the wire.
        url: String,
    },
    /// `type: "response"`.
    Response {
        /// Status code.
        status_code: u16,
        /// Reason phrase, possibly empty.
        status_message: String,
        /// From the request's last byte to this response's first byte; `None`
        /// when the request was not seen.
        latency_ms: Option<f64>,
    },
}

/// One HTTP request or response (schema v1). See the crate docs for the schema.
#[derive(Clone, Debug, PartialEq)]
pub struct HttpMessage {
    /// Request or response, with the fields only that half has.
    pub kind: MessageKind,
    /// [`ConnMeta::id`] of the connection.
    pub connection_id: u64,
    /// 0-based exchange index on the connection; a response shares its request's.
    pub sequence: u64,
    /// Capture time of the first byte.
    pub timestamp: Timestamp,
    /// Capture time of the last byte.
    pub end_timestamp: Timestamp,
    /// Sender of this message.
    pub source: Endpoint,
    /// Receiver of this message.
    pub destination: Endpoint,
    /// Relative to the captured host.
    pub direction: Direction,
    /// `"1.0"` or `"1.1"`.
    pub http_version: &'static str,
    /// Lower-cased names, first-seen order, Node's joining rules, redaction applied.
    pub headers: Vec<(String, HeaderValue)>,
    /// Body bytes after de-chunking, at most `maxBodySize` of them.
    pub body: Vec<u8>,
    /// Full body length seen, even when `body` was cut.
    pub body_size: u64,
    /// `body` holds less than `body_size` because of `maxBodySize`.
    pub truncated: bool,
    /// Part of the message was never seen (gap, mid-stream start, early end).
    pub incomplete: bool,
}
