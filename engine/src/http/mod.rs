//! HTTP/1.0 and HTTP/1.1 assembly and request/response pairing.
//!
//! One [`HttpConnection`] per TCP connection. The reassembly stage feeds it
//! each direction's in-order bytes ([`HttpConnection::data`]), explicit holes
//! ([`HttpConnection::gap`]), half-closes ([`HttpConnection::fin`]) and the
//! connection's end ([`HttpConnection::close`]); it appends finished
//! [`HttpMessage`](crate::message::HttpMessage)s to `out` and counts everything else in [`HttpStats`].
//!
//! # How it works
//!
//! Each direction is a small state machine: `Detect` (first bytes of a
//! connection seen from its SYN: TLS or other binary stop parsing; HTTP/2 —
//! the client preface or a server's first SETTINGS — hands the connection
//! over to [`crate::http2`], as does a `101` to `h2c` or, on a connection seen
//! from its middle, bytes that are HTTP/2 frames;
//! a message start within the first 64 bytes after some garbage is parsed,
//! the garbage skipped, see `detect.rs`),
//! `Resync` (searching for a plausible message start, see `detect.rs`),
//! `Idle` (between messages; empty lines are skipped), `Head` (collecting a
//! head), `Body` (framing per `body.rs`) and, on the client side only,
//! `AwaitAnswer` (after an `Upgrade` or `CONNECT` request: bytes are held
//! until the server says whether the connection switches protocols).
//!
//! Heads are parsed zero-copy from the delivered slice when the whole head is
//! in it; only a partial head (or a partial resync candidate) is copied into
//! the direction's buffer. A head with obsolete line folding or a request line
//! with spaces in its target or control bytes in a header value is parsed from a
//! scratch copy no longer than the head (see `head.rs`). Bodies are never
//! buffered beyond `max_body_size`.
//!
//! # Leniency (llhttp's lenient flags)
//!
//! What a lenient real server accepts without any request-smuggling ambiguity is
//! accepted and counted, not reported as a parse error: obsolete line folds
//! (`obs_fold_heads`), bare LF line ends in heads and chunk framing
//! (`bare_lf_heads`, `bare_lf_chunked_bodies`), control bytes other than NUL, CR
//! and LF in header values (`lenient_header_values`), spaces after a chunk size,
//! missing reason phrases, and bytes after a message with `Connection: close`
//! that are not a message (`data_after_close`: skipped, as the peer ignores them).
//! What RFC 9112 has a server refuse because peers would frame it differently
//! stays an error (or a head with `parseError`): a bare CR as a line end,
//! whitespace before a header's colon, `Transfer-Encoding` that does not end in
//! `chunked` in a request (with or without `Content-Length`), chunk data not
//! followed by CRLF, and versions other than HTTP/1.x. `tests/llhttp_corpus.rs`
//! pins each such case with its reason.
//!
//! # Pairing
//!
//! A request gets the next sequence number when its head is parsed and is
//! queued as pending; it is emitted when its last byte arrives. A response
//! head pairs with the oldest pending request: interim `1xx` (not `101`) are
//! emitted at once with that request's sequence and do not dequeue it; a final
//! response dequeues it. `latencyMs` runs from the request's last byte (or,
//! while the request is still being sent, e.g. `Expect: 100-continue`, its
//! last byte so far) to the response's first byte.
//!
//! A response with no pending request takes the next sequence number (so
//! sequences stay unique on the connection) and is emitted with
//! `incomplete: true`; an interim one with no pending request reuses the next
//! number without taking it, so the final response that follows shares it.
//!
//! # Gaps
//!
//! * Inside a `Content-Length` body (or a chunk's data, or a close-delimited
//!   body) the gap's bytes are skipped and framing continues; the message is
//!   emitted with `incomplete: true` and its `body` stops at the hole
//!   (`bodySize` still counts the missing bytes, so `truncated` is true).
//! * Inside a head or chunk framing: the message is emitted incomplete if its
//!   head was parsed, and the direction resynchronises.
//! * A gap on the client side between requests or inside a head means a
//!   request was lost: a placeholder is queued so the responses that follow
//!   keep their pairing; the response paired with it is emitted incomplete.
//!   Likewise a gap on the server side between responses or inside a head
//!   dequeues the oldest pending request (its response was lost). Several
//!   messages lost in one gap cannot be counted; pairing then shifts.
//!
//! # Invariants
//!
//! * Never panics on any input; all arithmetic on wire values is checked.
//! * Per direction, buffered bytes ≤ `max(max_head_size, detect bound)` plus
//!   at most `max_body_size` bytes of body; pending requests ≤ [`MAX_PENDING`].
//! * Everything held is charged to the worker's pools ([`crate::budget`]): a
//!   direction's buffer (by capacity) to `heads` before it grows — refused, the
//!   buffered bytes are shed like a gap (`heads_shed_by_budget`); the head of a
//!   message whose body is in progress to `heads`; pending requests past the
//!   first to `pending` — refused, the connection's oldest pending request is
//!   shed (`pending_shed_by_budget`); bodies to `bodies`. Dropping the
//!   connection gives everything back.
//! * A growing head is scanned for its end once (the scan position is kept)
//!   and validated with exponentially spaced re-parses, so cost is linear.
//! * `data` consumes all of its input; bytes not parsed are counted in
//!   `skipped_bytes`.
//!
//! # Layout
//!
//! As hyper splits `proto/h1`: `conn.rs` is the connection's state machine
//! (both directions, the byte loop, memory, gaps and ends), `pairing.rs`
//! pairs requests with responses and emits messages, `head.rs` parses heads,
//! `body.rs` frames bodies, `detect.rs` finds where messages start, and
//! `stats.rs` counts everything.

pub(crate) mod body;
mod config;
mod conn;
pub(crate) mod decode;
mod detect;
mod head;
mod pairing;
mod stats;

#[cfg(test)]
mod tests;

pub use config::{HttpConfig, PortNotice, PortNotices};
pub use conn::{HttpConnection, ORIENT_WINDOW};
pub use head::{RedactedHeaders, REDACTED};
// Shared with the HTTP/2 stage (same header rules, same redaction, same head charge).
pub(crate) use head::{header_name, latin1, merge_header, redact as redact_headers};
pub(crate) use pairing::held_bytes;
pub use pairing::{MAX_PENDING, PENDING_COST};
pub use stats::HttpStats;
