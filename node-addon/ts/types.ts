// The public types: the configuration and the HTTP message (schema v1, see SPEC.md and
// docs/schema.md). Kept apart from index.ts so they read as the contract they are.

/** Sender or receiver of a message. */
export interface Endpoint {
  /** IPv4 dotted quad, or IPv6 in its canonical text form. */
  ip: string;
  port: number;
}

/** Where the sniffer runs, from the downward API (`POD_NAME`, `POD_NAMESPACE`, `NODE_NAME`). */
export interface Pod {
  name?: string | null;
  namespace?: string | null;
  node?: string | null;
}

/**
 * Header names are lower-cased, as Node's `http.IncomingMessage.headers`; `set-cookie`
 * is always an array; redacted values are `"[REDACTED]"`.
 */
export interface HttpHeaders {
  'set-cookie'?: string[];
  [name: string]: string | string[] | undefined;
}

/** Fields shared by requests and responses. */
interface HttpMessageBase {
  /** Stable id of the TCP connection (16 hex digits), unique within the sniffer's run. */
  connectionId: string;
  /** 0-based exchange index on the connection; a response has its request's sequence. */
  sequence: number;
  /** Capture time of the first byte, RFC 3339 UTC with microseconds. */
  timestamp: string;
  /** Capture time of the last byte. */
  endTimestamp: string;
  source: Endpoint;
  destination: Endpoint;
  direction: 'inbound' | 'outbound' | 'unknown';
  /** `'0.9'`: a request line without a version, and its head-less reply. */
  httpVersion: '0.9' | '1.0' | '1.1' | '2';
  /** HTTP/2 only: the stream that carried the message. */
  streamId?: number;
  headers: HttpHeaders;
  /** Only when the message had trailers (HTTP/2 trailing HEADERS, e.g. gRPC's `grpc-status`). */
  trailers?: HttpHeaders;
  /** The body without chunked framing, at most `maxBodySize` bytes of it. */
  body: string;
  bodyEncoding: 'utf8' | 'base64';
  /** The full body length seen, even when `body` was cut. */
  bodySize: number;
  /** `body` holds less than `bodySize` because of `maxBodySize`. */
  truncated: boolean;
  /** Part of the message was never seen (capture gap, started mid-message, early close). */
  incomplete: boolean;
  /** `body` was decompressed (`decodeBodies`): the decoded length; `bodySize` is the length on the wire. */
  decodedBodySize?: number;
  /** Carried inside a `CONNECT` tunnel on the same connection. */
  tunnel?: true;
  /** The head broke the grammar but was delimited (e.g. `'invalid-version'`); it holds what was there. */
  parseError?: string;
  /** Present when the placement is known. */
  pod?: Pod;
}

/** An HTTP request. */
export interface HttpRequestMessage extends HttpMessageBase {
  type: 'request';
  /** Method exactly as on the wire. */
  method: string;
  /** Request-target exactly as on the wire. */
  url: string;
}

/** An HTTP response. */
export interface HttpResponseMessage extends HttpMessageBase {
  type: 'response';
  statusCode: number;
  statusMessage: string;
  /** From the request's last byte to the response's first byte; absent when the request was not seen. */
  latencyMs?: number;
}

/** One message per request and per response, discriminated on `type`. */
export type HttpMessage = HttpRequestMessage | HttpResponseMessage;

/** `createSniffer`'s configuration. Validated by the engine; unknown keys are rejected. */
export interface SnifferConfig {
  /** Interface name, or `"any"` (default). */
  interface?: string;
  /**
   * TCP ports the application serves HTTP on (required): 1–65535, no duplicates; or `"any"`:
   * HTTP/1 and the HTTP/2 preface are recognised by content on every TCP port.
   */
  ports: number[] | number | 'any' | string;
  /**
   * POST each message here: `https://`, or `http://` to a loopback host. Any other `http://`
   * URL needs `allowInsecureOutputUrl` (outside NODE_ENV=production it defaults to true and
   * a warning is logged). Errors and logs show only `scheme://host[:port]`.
   */
  outputUrl?: string;
  /** Accept an `http://` output URL to a host that is not loopback (default: true with a warning, false with NODE_ENV=production). */
  allowInsecureOutputUrl?: boolean;
  /** Sent as `Authorization: Bearer …`; never logged. */
  outputUrlAuthToken?: string;
  /** Also write JSON lines to stdout (default false for the library). */
  outputStdout?: boolean;
  /**
   * What `outputUrl` receives: `'json'` (the messages; NDJSON when batched, default) or
   * `'otlp'`: OTLP/HTTP protobuf traces, one span per exchange (e.g. `…:4318/v1/traces`).
   */
  outputFormat?: 'json' | 'otlp';
  /**
   * `HOST:PORT` to serve Prometheus metrics on (`GET /metrics`), e.g. `'127.0.0.1:9464'`
   * (port 0: any free port, reported by `start()`). Default: off (the sidecar: `0.0.0.0:9464`).
   */
  metricsAddr?: string;
  /** Messages written to stdout carry their body (default false: `body: ""`, `bodySize` kept). The callback, events and the output URL always get bodies up to `maxBodySize`. */
  stdoutBodies?: boolean;
  /** Decompress gzip, deflate, br and zstd bodies as they arrive (default true): `body` is decoded, `decodedBodySize` its length. */
  decodeBodies?: boolean;
  /** Called once per message; a throwing callback is logged and counted, capture goes on. */
  onHttpMessage?: (message: HttpMessage) => void;
  /** Fraction of connections observed, 0 < rate ≤ 1 (default 1). */
  sampleRate?: number;
  /** Body bytes kept per message, 0–16777216 (16 MiB; default 65536; 0 = no bodies). */
  maxBodySize?: number;
  /** Connections tracked at once, ≥ 1 (default 10000). */
  maxConcurrentConnections?: number;
  /** Idle connections are evicted after this long, ≥ 1000 (default 60000). */
  connectionIdleTimeoutMs?: number;
  /**
   * Header names whose values become `"[REDACTED]"`, added to the defaults (authorization,
   * proxy-authorization, cookie, set-cookie, x-api-key, x-auth-token); `"none"` as the first
   * entry drops the defaults.
   */
  redactHeaders?: string[] | string;
  /**
   * Query parameter names (case-insensitive) whose values in `url` become `[REDACTED]`, added
   * to the defaults (access_token, refresh_token, id_token, token, api_key, apikey, password,
   * passwd, secret, client_secret, signature, sig, x-amz-signature, x-amz-credential,
   * x-amz-security-token); `"none"` first drops them.
   */
  redactQueryParams?: string[] | string;
  /**
   * JSON object keys (any depth) and form fields whose values become `"[REDACTED]"`, added to
   * the defaults (password, passwd, secret, client_secret, token, access_token, refresh_token,
   * api_key, apikey, credit_card, card_number, cvv, ssn); `"none"` first drops them.
   */
  redactBodyFields?: string[] | string;
  /** `auto` (AF_PACKET, else libpcap; default), `af_packet` or `pcap`. */
  captureBackend?: 'auto' | 'af_packet' | 'pcap';
  /** Worker threads, ≥ 1 (default: CPUs available; 1 for files). */
  workers?: number;
  /** Replay this pcap/pcapng file instead of capturing live. */
  readFile?: string;
  /** `error`, `warn`, `info` (default) or `debug`. */
  logLevel?: 'error' | 'warn' | 'info' | 'debug';
  /** Messages per POST to the output URL, 1–10000 (default 1; >1 sends NDJSON). */
  outputBatchSize?: number;
  /** A partial POST batch is sent after this long, 1–600000 ms (default 1000). */
  outputBatchWaitMs?: number;
  /** Concurrent POST senders, 1–256 (default 4). */
  outputConcurrency?: number;
  /** Messages waiting per output before new ones are dropped (counted), 1–10000000 (default 10000). Also bounds the JavaScript delivery queue. */
  outputQueueSize?: number;
  /** On stop, how long pending deliveries may take, 0–3600000 ms (default 10000). */
  outputDrainTimeoutMs?: number;
  /** First retry delay of the output URL, 1–60000 ms (default 1000; then doubled). */
  outputRetryBaseMs?: number;
}

/** What `start()` set up. */
export interface StartInfo {
  /** `"af_packet"`, `"pcap"` or `"file"`. */
  backend: 'af_packet' | 'pcap' | 'file';
  workers: number;
  /** The interface, or the file. */
  source: string;
  /** Why `auto` fell back from AF_PACKET to libpcap, if it did. */
  fallbackReason: string | null;
  /** The address `/metrics` is served on, when `metricsAddr` is set. */
  metricsAddr: string | null;
  pod: Pod | null;
}

/**
 * The counters, grouped by stage (the names of the engine's `--stats` and the sidecar's
 * stats log line). Every counter is a whole number that only grows during a run. The
 * groups and names are exact: `test/types.test.js` checks them against what the addon
 * returns, so a counter the engine adds or renames fails the tests until it is typed here.
 */
export interface SnifferStats {
  capture: CaptureStats;
  decode: DecodeStats;
  flow: FlowStats;
  reassembly: ReassemblyStats;
  http: HttpStats;
  output: OutputStats;
}

/** `stats().capture` */
export interface CaptureStats {
  /** Packets read from the capture source. */
  packets: number;
  /** Bytes of those packets as captured. */
  bytes: number;
  /** Packets the kernel dropped (ring full), accumulated. */
  kernel_drops: number;
  /** Packets dropped between the reader and a worker because its queue was full. */
  queue_drops: number;
  /** Records in a capture file that could not be read (the rest of the file is still read when possible). */
  file_errors: number;
}

/** `stats().decode` */
export interface DecodeStats {
  /** The capture ended inside a header. */
  truncated: number;
  /** Not IPv4/IPv6 at the link layer: ARP, LLDP, …. */
  not_ip: number;
  /** IP but not TCP: UDP, ICMP, …. */
  not_tcp: number;
  /** IPv4 fragments of TCP, skipped. */
  ipv4_fragments: number;
  /** IPv6 fragments, skipped. */
  ipv6_fragments: number;
  /** IPsec ESP, undecodable. */
  esp: number;
  /** Inconsistent headers. */
  malformed: number;
}

/** `stats().flow` */
export interface FlowStats {
  /** TCP segments on a monitored port. */
  segments: number;
  /** TCP segments on no monitored port (filtered out). */
  segments_unmonitored: number;
  /** Segments of connections left out by `sampleRate`. */
  segments_sampled_out: number;
  /** Connections tracked. */
  connections_opened: number;
  /** Connections that ended with FIN on both sides. */
  connections_closed: number;
  /** Connections that ended with RST. */
  connections_reset: number;
  /** Connections evicted after `connectionIdleTimeoutMs` without packets. */
  connections_idle_evicted: number;
  /** Connections that never carried payload (half-open) dropped after 10 s. */
  connections_half_open_timed_out: number;
  /** Half-open connections dropped to make room for a new one at the cap. */
  connections_half_open_evicted: number;
  /** Connections whose server had sent nothing yet, dropped (oldest first) to make room for a new one at the cap when no half-open one was left. */
  connections_unanswered_evicted: number;
  /** Connections evicted, idlest first, because the worker's memory budget for heads, pending requests or out-of-order bytes was nearly spent. */
  connections_evicted_memory: number;
  /** New connections not tracked because `maxConcurrentConnections` was reached. */
  connections_over_cap: number;
  /** Segments of connections that could not be tracked because of the cap. */
  segments_over_cap: number;
  /** Connections replaced by a new SYN on the same addresses and ports. */
  connections_reused: number;
  /** Connections still open when the capture ended (flushed as incomplete where unfinished). */
  connections_open_at_end: number;
  /** Payload bytes of connections no longer parsed as HTTP (upgraded, tunnelled, not HTTP). */
  bytes_not_parsed: number;
  /** `ports: "any"`: connections let go because their first bytes were not HTTP. */
  connections_not_http: number;
  /** `ports: "any"`: segments of connections let go as not HTTP, dropped unread. */
  segments_not_http: number;
}

/** `stats().reassembly` */
export interface ReassemblyStats {
  /** Segments passed to `Reassembler::segment`. */
  segments: number;
  /** Payload bytes passed to the sink as data (in order, de-duplicated). */
  delivered_bytes: number;
  /** Segments that arrived ahead of the next expected byte (a hole before them). */
  out_of_order_segments: number;
  /** Segments made entirely of bytes already delivered (retransmissions), dropped. */
  retransmitted_segments: number;
  /** Payload bytes dropped because they were already delivered. */
  retransmitted_bytes: number;
  /** Payload bytes dropped because the same stream bytes were already buffered (the first copy wins). */
  overlap_bytes: number;
  /** Gaps reported to the sink, whatever the cause. */
  gap_events: number;
  /** Stream bytes reported as gaps (never seen), whatever the cause. */
  gap_bytes: number;
  /** Gaps forced because the direction's buffer hit `Limits` (bytes or segments). */
  buffer_overflow_events: number;
  /** Gaps forced because the worker's `Budget` was exhausted. */
  budget_exhausted_events: number;
  /** Gaps declared because the peer acknowledged bytes the capture never saw. */
  ack_gap_events: number;
  /** Gaps for bytes the capture cut off (snaplen, `Segment::missing`). */
  snaplen_gap_events: number;
  /** Gaps for holes still open when the direction was flushed (RST, eviction, end). */
  flush_gap_events: number;
  /** Segments dropped because their sequence number was more than `MAX_SEQ_JUMP` away from the next expected byte. */
  huge_jump_segments: number;
  /** Acknowledgements ignored because they were more than `MAX_SEQ_JUMP` ahead. */
  huge_jump_acks: number;
  /** Acknowledgements ignored because they acknowledged more than `MAX_ACK_BEYOND_SEEN` (1 MiB) past the last byte seen in that direction. */
  acks_beyond_seen: number;
  /** Payload bytes dropped because they lie after the sender's FIN. */
  beyond_fin_bytes: number;
  /** Segments carrying new payload after the direction was closed (FIN delivered, RST or flush), dropped. */
  segments_after_close: number;
  /** Payload bytes still buffered and dropped by `Reassembler::discard`. */
  discarded_bytes: number;
}

/** `stats().http` */
export interface HttpStats {
  /** Requests emitted (complete or incomplete). */
  requests: number;
  /** Responses emitted (final and interim, complete or incomplete). */
  responses: number;
  /** Interim `1xx` responses emitted (other than `101`); also counted in `responses`. */
  interim_responses: number;
  /** A message head longer than `max_head_size` without its end. */
  parse_error_head_too_large: number;
  /** A message head with more than `max_headers` header lines. */
  parse_error_too_many_headers: number;
  /** A malformed request line, status line or header line. */
  parse_error_invalid_head: number;
  /** A version other than `HTTP/1.0` or `HTTP/1.1` (including HTTP/0.9 and HTTP/2 text); `HTTP/1.2` … `HTTP/1.9` are read as 1.1 instead (`higher_minor_versions`). */
  parse_error_invalid_version: number;
  /** An unparsable, overflowing or conflicting `Content-Length` (without `Transfer-Encoding`). */
  parse_error_invalid_content_length: number;
  /** A request whose `Transfer-Encoding` does not end in `chunked` (RFC 9112 §6.3: 400). */
  parse_error_invalid_transfer_encoding: number;
  /** A malformed chunk-size line or a missing CRLF after chunk data. */
  parse_error_invalid_chunk: number;
  /** A chunk size that does not fit in 64 bits. */
  parse_error_chunk_size_overflow: number;
  /** A chunk extension longer than the limit (16 KiB per chunk-size line). */
  parse_error_chunk_extension_too_large: number;
  /** A trailer section longer than `max_head_size`. */
  parse_error_trailers_too_large: number;
  /** Messages with both `Transfer-Encoding` and `Content-Length` (Transfer-Encoding wins). */
  transfer_encoding_with_content_length: number;
  /** Connections whose first bytes were a TLS record. */
  non_http_tls: number;
  /** Connections whose first bytes were the HTTP/2 connection preface. */
  non_http_http2: number;
  /** Connections whose first bytes were neither HTTP/1 nor TLS nor HTTP/2. */
  non_http_other: number;
  /** Directions whose first bytes were not a message start, but a plausible one began within the first 64 bytes: the bytes before it were skipped (counted in `skipped_bytes`) and parsing started there. */
  detect_resyncs: number;
  /** Heads (requests or responses) with obsolete line folding, parsed after removing each fold's line break, its whitespace kept (RFC 9112 §5.2; llhttp's value). */
  obs_fold_heads: number;
  /** Requests whose request line httparse rejects but that read `TOKEN SP target SP HTTP/1.x` with spaces inside the target (e.g. `CONNECT host:25 / HTTP/1.0`): accepted, the url as on the wire. */
  lenient_request_lines: number;
  /** Heads with a header value holding a control byte other than HTAB, NUL, CR and LF (e.g. form feed): accepted, the value as sent, as llhttp's lenient header-value modes and nginx do. */
  lenient_header_values: number;
  /** Heads (requests or responses) whose start line said `HTTP/1.2` … `HTTP/1.9`: parsed as HTTP/1.1, their messages' `httpVersion` `"1.1"` (RFC 9112 §2.3, RFC 9110 §6.2). */
  higher_minor_versions: number;
  /** Malformed header lines (not `name: value`) dropped from heads that had a lenient request line (`lenient_request_lines`). */
  ignored_header_lines: number;
  /** HTTP/0.9 requests (`METHOD SP target` without a version) emitted with `httpVersion` 0.9. */
  http09_requests: number;
  /** Replies to HTTP/0.9 requests (no head; the bytes up to the close are the body) emitted with `statusCode` 0. */
  http09_responses: number;
  /** Heads that broke the grammar but were delimited, emitted with `parseError` (each also counted in its `parse_error_*` counter): the peer's answer still pairs. */
  heads_with_parse_error: number;
  /** Heads with at least one line ended by a bare LF instead of CRLF (accepted, as llhttp's lenient mode and Zeek do). */
  bare_lf_heads: number;
  /** Complete chunked bodies with at least one framing line (chunk size, end of chunk data, trailer, final empty line) ended by a bare LF instead of CRLF (accepted, as llhttp's lenient mode does). */
  bare_lf_chunked_bodies: number;
  /** Complete chunked bodies with whitespace after a chunk size (`a \r\n`): accepted, as hyper and llhttp's lenient mode do. */
  chunk_size_whitespace_bodies: number;
  /** Status lines without a reason phrase (`HTTP/1.1 200`), accepted. */
  missing_reason_phrases: number;
  /** Unparsable bytes after a message with `Connection: close` on the same side (each run up to where a message start was searched for again): skipped (in `skipped_bytes`) as the peer ignores them, not counted as parse errors. */
  data_after_close: number;
  /** Message heads parsed on a side after a message with `Connection: close` on it (a peer that closes ignores them): parsed anyway, as llhttp's lenient keep-alive mode does. */
  messages_after_close: number;
  /** Bodies decoded from their `Content-Encoding` (`decodeBodies`): `body` holds decoded bytes and `decodedBodySize` is set. */
  bodies_decoded: number;
  /** Of those, bodies whose decoding stopped at the bomb limit (output over 64× the input): `decodedBodySize` is a lower bound and the message is `truncated`. */
  bodies_decode_bomb_limited: number;
  /** Bodies whose encoded bytes were not valid for their coding (or asked for a window over the limit: brotli 4 MiB, zstd 1 MiB): emitted as on the wire, without `decodedBodySize`. */
  body_decode_errors: number;
  /** Bodies not decoded because the worker's bodies budget could not hold a decoder's state. */
  bodies_not_decoded_budget: number;
  /** `CONNECT` tunnels whose first bytes were TLS (not parsed; the connection's bytes from there on are skipped). */
  tunnel_tls: number;
  /** Connections switched to another protocol by a `101` response. */
  upgraded_connections: number;
  /** Connections turned into a tunnel by a `2xx` answer to `CONNECT`. */
  connect_tunnels: number;
  /** Bytes seen but not parsed: resynchronisation, tunnels, non-HTTP connections, partial heads at the end of a stream. */
  skipped_bytes: number;
  /** Times a direction had to search for the next message start (after an error, a gap, or a mid-stream start). */
  resyncs: number;
  /** Gaps reported by the reassembly stage while parsing HTTP. */
  gaps: number;
  /** Gap bytes that fell inside a body of known length and were skipped while keeping the framing. */
  gap_body_bytes: number;
  /** Messages whose body was cut to `max_body_size` (or lost bytes in a gap). */
  truncated_bodies: number;
  /** Of those, messages cut because the worker's body budget (all its messages in progress together) was spent. */
  bodies_cut_by_budget: number;
  /** Messages emitted with `incomplete: true`. */
  incomplete_messages: number;
  /** Messages whose chunked trailer section was dropped (trailers are not merged into the headers). */
  trailers_discarded: number;
  /** Responses for which no request was seen (emitted incomplete). */
  responses_without_request: number;
  /** Requests that never got a final response (connection ended, or the response was lost in a gap, or the pending queue overflowed). */
  requests_without_response: number;
  /** Requests assumed lost (a client-side gap between or inside heads, or an unparsable request head): a placeholder keeps the pairing in step. */
  lost_requests: number;
  /** Responses assumed lost (a server-side gap between or inside heads, or an unparsable response head): the oldest pending request is dequeued. */
  lost_responses: number;
  /** Unanswered requests shed because the connection's pending queue was full (`MAX_PENDING`); their responses still pair, without `latencyMs`. */
  pending_overflow: number;
  /** Partial heads (or bytes held under detection, resynchronisation or while an `Upgrade`/`CONNECT` awaited its answer) dropped because the worker's heads budget was spent; handled like a capture gap. */
  heads_shed_by_budget: number;
  /** Pending requests shed because the worker's pending budget was spent (deep pipelining on many connections): the connection's oldest gives up its slot; its response still pairs with it, without `latencyMs`. */
  pending_shed_by_budget: number;
  /** Connections parsed as HTTP/2 (prior knowledge, a server speaking first with SETTINGS, `Upgrade: h2c`, or frames found mid-connection). */
  h2_connections: number;
  /** Of those, connections switched by `101` to `h2c`. */
  h2_upgrades: number;
  /** Of those, connections first seen mid-way whose frames were found by content. */
  h2_mid_stream: number;
  /** HTTP/2 frames read (both directions, every type). */
  h2_frames: number;
  /** HTTP/2 streams opened (one request/response exchange each). */
  h2_streams: number;
  /** RST_STREAM frames (a message in progress on the stream is emitted incomplete). */
  h2_resets: number;
  /** GOAWAY frames. */
  h2_goaways: number;
  /** Server pushes (PUSH_PROMISE): the promised request is emitted. */
  h2_push_promises: number;
  /** Trailing header blocks (trailers, e.g. gRPC status). */
  h2_trailers: number;
  /** Header blocks HPACK could not decode (COMPRESSION_ERROR); that direction's table becomes unknown and the message is incomplete. */
  h2_hpack_errors: number;
  /** Header fields left out because they referred to HPACK table entries of unknown content (mid-connection start, or after a gap). */
  h2_hpack_unknown_fields: number;
  /** HPACK tables dropped because the heads budget refused their growth. */
  h2_hpack_tables_shed: number;
  /** Header blocks lost whole (larger than the limit, interrupted, or cut by a gap). */
  h2_header_blocks_lost: number;
  /** Frames whose payload broke their type's layout, or out of place. */
  h2_frame_errors: number;
  /** Frames skipped unread: unknown types, oversized control frames. */
  h2_frames_skipped: number;
  /** DATA frames on streams whose headers were not seen (bytes skipped). */
  h2_data_without_stream: number;
  /** Times frame boundaries were searched for and found again after a gap. */
  h2_resyncs: number;
  /** Streams shed (their messages emitted incomplete) at `MAX_STREAMS` or when the pending budget was spent. */
  h2_streams_shed: number;
}

/** `stats().output` */
export interface OutputStats {
  /** Messages produced by the workers. */
  messages: number;
  /** Messages written or sent successfully (every enabled output). */
  delivered: number;
  /** Messages dropped because an output queue was full. */
  dropped_queue_full: number;
  /** Messages dropped after the output URL's retries were exhausted. */
  dropped_retries_exhausted: number;
  /** Messages rejected by the output URL with a non-retryable 4xx. */
  dropped_rejected: number;
  /** Messages still pending when the drain deadline passed on stop. */
  dropped_at_shutdown: number;
  /** Messages not written because stdout was closed. */
  dropped_stdout_closed: number;
  /** Output URL requests retried (each retry of a request counts once, whatever the number of messages in it). */
  retries: number;
  /** OTLP spans the collector accepted in a request but then dropped, as its answer's `partial_success.rejected_spans` said (their messages also count as delivered). */
  otlp_spans_rejected: number;
  /** Calls to the JavaScript callback that threw. */
  callback_errors: number;
  /** Messages an async iterator could not buffer because its consumer fell behind during live capture (JavaScript side; a file replay waits instead). */
  dropped_iterator_full: number;
}
