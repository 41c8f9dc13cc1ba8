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
  httpVersion: '1.0' | '1.1';
  headers: HttpHeaders;
  /** The body without chunked framing, at most `maxBodySize` bytes of it. */
  body: string;
  bodyEncoding: 'utf8' | 'base64';
  /** The full body length seen, even when `body` was cut. */
  bodySize: number;
  /** `body` holds less than `bodySize` because of `maxBodySize`. */
  truncated: boolean;
  /** Part of the message was never seen (capture gap, started mid-message, early close). */
  incomplete: boolean;
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
  /** TCP ports the application serves HTTP on (required): 1–65535, no duplicates. */
  ports: number[] | number | string;
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

/** The counters, grouped by stage (names as the engine's `--stats`). */
export interface SnifferStats {
  capture: {
    packets: number;
    bytes: number;
    kernel_drops: number;
    queue_drops: number;
    file_errors: number;
  };
  decode: Record<string, number>;
  flow: Record<string, number>;
  reassembly: Record<string, number>;
  http: Record<string, number>;
  output: {
    messages: number;
    delivered: number;
    dropped_queue_full: number;
    dropped_retries_exhausted: number;
    dropped_rejected: number;
    dropped_at_shutdown: number;
    dropped_stdout_closed: number;
    retries: number;
    /** Calls of `onHttpMessage` or a `'message'` listener that threw. */
    callback_errors: number;
    /** Messages an async iterator could not buffer because its consumer fell behind during live capture (JavaScript side; a file replay waits instead). */
    dropped_iterator_full: number;
  };
}
