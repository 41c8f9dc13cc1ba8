//! Counters of the HTTP stage: what was parsed, and everything that was not.

macro_rules! http_stats {
    ($( $(#[$doc:meta])* $name:ident ),* $(,)?) => {
        /// Counters of the HTTP/1 stage, summed over connections with [`HttpStats::merge`].
        ///
        /// Every byte the stage does not turn into a message is counted in
        /// `skipped_bytes` (except bytes lost in capture gaps, which the
        /// reassembly stage counts), and every message that is not whole is
        /// counted by reason.
        #[derive(Debug, Default, Clone, PartialEq, Eq, serde::Serialize)]
        pub struct HttpStats {
            $( $(#[$doc])* pub $name: u64, )*
        }

        impl HttpStats {
            /// Adds every counter of `other` to `self`.
            pub fn merge(&mut self, other: &HttpStats) {
                $( self.$name = self.$name.wrapping_add(other.$name); )*
            }
        }
    };
}

http_stats! {
    /// Requests emitted (complete or incomplete).
    requests,
    /// Responses emitted (final and interim, complete or incomplete).
    responses,
    /// Interim `1xx` responses emitted (other than `101`); also counted in `responses`.
    interim_responses,
    /// A message head longer than `max_head_size` without its end.
    parse_error_head_too_large,
    /// A message head with more than `max_headers` header lines.
    parse_error_too_many_headers,
    /// A malformed request line, status line or header line.
    parse_error_invalid_head,
    /// A version other than `HTTP/1.0` or `HTTP/1.1` (including HTTP/0.9 and HTTP/2 text);
    /// `HTTP/1.2` … `HTTP/1.9` are read as 1.1 instead (`higher_minor_versions`).
    parse_error_invalid_version,
    /// An unparsable, overflowing or conflicting `Content-Length` (without `Transfer-Encoding`).
    parse_error_invalid_content_length,
    /// A request whose `Transfer-Encoding` does not end in `chunked` (RFC 9112 §6.3: 400).
    parse_error_invalid_transfer_encoding,
    /// A malformed chunk-size line or a missing CRLF after chunk data.
    parse_error_invalid_chunk,
    /// A chunk size that does not fit in 64 bits.
    parse_error_chunk_size_overflow,
    /// A chunk extension longer than the limit (16 KiB per chunk-size line).
    parse_error_chunk_extension_too_large,
    /// A trailer section longer than `max_head_size`.
    parse_error_trailers_too_large,
    /// Messages with both `Transfer-Encoding` and `Content-Length` (Transfer-Encoding wins).
    transfer_encoding_with_content_length,
    /// Connections whose first bytes were a TLS record.
    non_http_tls,
    /// Connections whose first bytes were the HTTP/2 connection preface.
    non_http_http2,
    /// Connections whose first bytes were neither HTTP/1 nor TLS nor HTTP/2.
    non_http_other,
    /// Directions whose first bytes were not a message start, but a plausible
    /// one began within the first 64 bytes: the bytes before it were skipped
    /// (counted in `skipped_bytes`) and parsing started there.
    detect_resyncs,
    /// Heads (requests or responses) with obsolete line folding, parsed after
    /// removing each fold's line break, its whitespace kept (RFC 9112 §5.2; llhttp's value).
    obs_fold_heads,
    /// Requests whose request line httparse rejects but that read
    /// `TOKEN SP target SP HTTP/1.x` with spaces inside the target (e.g.
    /// `CONNECT host:25 / HTTP/1.0`): accepted, the url as on the wire.
    lenient_request_lines,
    /// Heads with a header value holding a control byte other than HTAB, NUL, CR and LF
    /// (e.g. form feed): accepted, the value as sent, as llhttp's lenient header-value
    /// modes and nginx do.
    lenient_header_values,
    /// Heads (requests or responses) whose start line said `HTTP/1.2` … `HTTP/1.9`:
    /// parsed as HTTP/1.1, their messages' `httpVersion` `"1.1"` (RFC 9112 §2.3,
    /// RFC 9110 §6.2).
    higher_minor_versions,
    /// Malformed header lines (not `name: value`) dropped from heads that had a
    /// lenient request line (`lenient_request_lines`).
    ignored_header_lines,
    /// HTTP/0.9 requests (`METHOD SP target` without a version) emitted with `httpVersion` 0.9.
    http09_requests,
    /// Replies to HTTP/0.9 requests (no head; the bytes up to the close are the body)
    /// emitted with `statusCode` 0.
    http09_responses,
    /// Heads that broke the grammar but were delimited, emitted with `parseError` (each
    /// also counted in its `parse_error_*` counter): the peer's answer still pairs.
    heads_with_parse_error,
    /// Heads with at least one line ended by a bare LF instead of CRLF (accepted, as
    /// llhttp's lenient mode and Zeek do).
    bare_lf_heads,
    /// Complete chunked bodies with at least one framing line (chunk size, end of chunk
    /// data, trailer, final empty line) ended by a bare LF instead of CRLF (accepted, as
    /// llhttp's lenient mode does).
    bare_lf_chunked_bodies,
    /// Complete chunked bodies with whitespace after a chunk size (`a \r\n`): accepted,
    /// as hyper and llhttp's lenient mode do.
    chunk_size_whitespace_bodies,
    /// Status lines without a reason phrase (`HTTP/1.1 200`), accepted.
    missing_reason_phrases,
    /// Unparsable bytes after a message with `Connection: close` on the same side (each
    /// run up to where a message start was searched for again): skipped (in
    /// `skipped_bytes`) as the peer ignores them, not counted as parse errors.
    data_after_close,
    /// Message heads parsed on a side after a message with `Connection: close` on it (a peer
    /// that closes ignores them): parsed anyway, as llhttp's lenient keep-alive mode does.
    messages_after_close,
    /// Bodies decoded from their `Content-Encoding` (`decodeBodies`): `body` holds decoded
    /// bytes and `decodedBodySize` is set.
    bodies_decoded,
    /// Of those, bodies whose decoding stopped at the bomb limit (output over 64× the input):
    /// `decodedBodySize` is a lower bound and the message is `truncated`.
    bodies_decode_bomb_limited,
    /// Bodies whose encoded bytes were not valid for their coding (or asked for a window over
    /// 1 MiB): emitted as on the wire, without `decodedBodySize`.
    body_decode_errors,
    /// Bodies not decoded because the worker's bodies budget could not hold a decoder's state.
    bodies_not_decoded_budget,
    /// `CONNECT` tunnels whose first bytes were TLS (not parsed; the connection's bytes
    /// from there on are skipped).
    tunnel_tls,
    /// Connections switched to another protocol by a `101` response.
    upgraded_connections,
    /// Connections turned into a tunnel by a `2xx` answer to `CONNECT` (cleartext HTTP inside
    /// is parsed, its messages carry `tunnel: true`).
    connect_tunnels,
    /// Bytes seen but not parsed: resynchronisation, tunnels, non-HTTP
    /// connections, partial heads at the end of a stream.
    skipped_bytes,
    /// Times a direction had to search for the next message start (after an
    /// error, a gap, or a mid-stream start).
    resyncs,
    /// Gaps reported by the reassembly stage while parsing HTTP.
    gaps,
    /// Gap bytes that fell inside a body of known length and were skipped
    /// while keeping the framing.
    gap_body_bytes,
    /// Messages whose body was cut to `max_body_size` (or lost bytes in a gap).
    truncated_bodies,
    /// Of those, messages cut because the worker's body budget (all its messages in
    /// progress together) was spent.
    bodies_cut_by_budget,
    /// Messages emitted with `incomplete: true`.
    incomplete_messages,
    /// Messages whose chunked trailer section was dropped (trailers are not
    /// merged into the headers).
    trailers_discarded,
    /// Responses for which no request was seen (emitted incomplete).
    responses_without_request,
    /// Requests that never got a final response (connection ended, or the
    /// response was lost in a gap, or the pending queue overflowed).
    requests_without_response,
    /// Requests assumed lost (a client-side gap between or inside heads, or an
    /// unparsable request head): a placeholder keeps the pairing in step.
    lost_requests,
    /// Responses assumed lost (a server-side gap between or inside heads, or an
    /// unparsable response head): the oldest pending request is dequeued.
    lost_responses,
    /// Unanswered requests shed because the connection's pending queue was full
    /// (`MAX_PENDING`); their responses still pair, without `latencyMs`.
    pending_overflow,
    /// Partial heads (or bytes held under detection, resynchronisation or while an
    /// `Upgrade`/`CONNECT` awaited its answer) dropped because the worker's heads
    /// budget was spent; handled like a capture gap.
    heads_shed_by_budget,
    /// Pending requests shed because the worker's pending budget was spent (deep
    /// pipelining on many connections): the connection's oldest gives up its slot;
    /// its response still pairs with it, without `latencyMs`.
    pending_shed_by_budget,
    /// Connections parsed as HTTP/2 (prior knowledge, a server speaking first
    /// with SETTINGS, `Upgrade: h2c`, or frames found mid-connection).
    h2_connections,
    /// Of those, connections switched by `101` to `h2c`.
    h2_upgrades,
    /// Of those, connections first seen mid-way whose frames were found by content.
    h2_mid_stream,
    /// HTTP/2 frames read (both directions, every type).
    h2_frames,
    /// HTTP/2 streams opened (one request/response exchange each).
    h2_streams,
    /// RST_STREAM frames (a message in progress on the stream is emitted incomplete).
    h2_resets,
    /// GOAWAY frames.
    h2_goaways,
    /// Server pushes (PUSH_PROMISE): the promised request is emitted.
    h2_push_promises,
    /// Trailing header blocks (trailers, e.g. gRPC status).
    h2_trailers,
    /// Header blocks HPACK could not decode (COMPRESSION_ERROR); that
    /// direction's table becomes unknown and the message is incomplete.
    h2_hpack_errors,
    /// Header fields left out because they referred to HPACK table entries of
    /// unknown content (mid-connection start, or after a gap).
    h2_hpack_unknown_fields,
    /// HPACK tables dropped because the heads budget refused their growth.
    h2_hpack_tables_shed,
    /// Header blocks lost whole (larger than the limit, interrupted, or cut by a gap).
    h2_header_blocks_lost,
    /// Frames whose payload broke their type's layout, or out of place.
    h2_frame_errors,
    /// Frames skipped unread: unknown types, oversized control frames.
    h2_frames_skipped,
    /// DATA frames on streams whose headers were not seen (bytes skipped).
    h2_data_without_stream,
    /// Times frame boundaries were searched for and found again after a gap.
    h2_resyncs,
    /// Streams shed (their messages emitted incomplete) at `MAX_STREAMS` or
    /// when the pending budget was spent.
    h2_streams_shed,
}

impl HttpStats {
    /// Sum of every `parse_error_*` counter.
    pub fn parse_errors(&self) -> u64 {
        self.parse_error_head_too_large
            + self.parse_error_too_many_headers
            + self.parse_error_invalid_head
            + self.parse_error_invalid_version
            + self.parse_error_invalid_content_length
            + self.parse_error_invalid_transfer_encoding
            + self.parse_error_invalid_chunk
            + self.parse_error_chunk_size_overflow
            + self.parse_error_chunk_extension_too_large
            + self.parse_error_trailers_too_large
    }
}
