//! The output URL: messages `POST`ed to an HTTP(S) endpoint.
//!
//! # Delivery
//!
//! - One message per request (`Content-Type: application/json`), or with
//!   `outputBatchSize` > 1 up to that many per request as `application/x-ndjson`
//!   (one message per line). A partial batch goes out once its oldest message has
//!   waited `outputBatchWaitMs`, or at once on stop.
//! - `Authorization: Bearer <token>` when `outputUrlAuthToken` is set. The token is
//!   kept in a sensitive header value; it is never logged, never part of an error or
//!   `Debug` output, and never sent anywhere but the configured URL: redirects are
//!   not followed (a `3xx` counts as rejected and is logged with the target host).
//! - Timeouts per attempt: connect (5 s) and overall (10 s, covering connect, TLS,
//!   sending and the response) — [`HttpOutputConfig::connect_timeout`],
//!   [`HttpOutputConfig::request_timeout`].
//! - A connection error, a timeout, `429` or `5xx` is retried after `base`, `2×base`
//!   and `4×base` (`outputRetryBaseMs`, default 1 s: 1 s, 2 s, 4 s); after the third
//!   retry fails the message is dropped and counted (`dropped_retries_exhausted`).
//!   Other statuses (`4xx`, `3xx`, anything not `2xx`) are not retried
//!   (`dropped_rejected`). Failures are logged with their reason, at most one line
//!   per kind every 10 s, with the number of similar events held back.
//! - OTLP: a `2xx` answer may carry an `ExportTraceServiceResponse` whose
//!   `partial_success` says the collector accepted the request but dropped some spans
//!   ([`otlp::partial_success`]). The request is not retried (the spec forbids it); its
//!   messages count as delivered, the dropped spans as `otlp_spans_rejected`, and a warn
//!   line carries the collector's `error_message` (rate-limited like failures). An empty
//!   answer is a full success; one that cannot be read is too (logged at debug).
//! - HTTPS uses rustls (ring) with Mozilla's roots (webpki-roots). When
//!   `SSL_CERT_FILE` names a PEM file, its certificates are the trusted roots
//!   instead (OpenSSL's convention: the file replaces the default set), which is how
//!   a private CA is trusted. Proxies from `HTTPS_PROXY`/`HTTP_PROXY`/`ALL_PROXY`
//!   (with `NO_PROXY`) are honoured, as ureq does by default.
//!
//! # Bounds and concurrency
//!
//! `send` never blocks on the network: it copies each message into a queue bounded
//! at `outputQueueSize` messages (counting those being sent or waiting for a retry)
//! and drops what does not fit (`dropped_queue_full`). `outputConcurrency` sender
//! threads take work from the queue. A failed request does not hold its sender
//! while it waits: it goes into a retry schedule (part of the same bound) and the
//! sender moves on, so one failing message never holds the rest back. Memory is
//! therefore at most `outputQueueSize` messages and
//! [`MAX_QUEUED_BYTES`](super::MAX_QUEUED_BYTES) of JSON
//! ([`HttpOutputConfig::max_queued_bytes`]), whichever is reached first.
//!
//! # Lifecycle
//!
//! `close()` marks the queue closing: senders send what is queued (partial batches
//! at once, retries when due) and exit when nothing is left. If that has not
//! happened by `outputDrainTimeoutMs`, everything still queued, scheduled or in
//! flight is counted as `dropped_at_shutdown` (logged once), senders stop counting,
//! and `close()` returns; a sender still inside a request finishes it (bounded by
//! the request timeout) and exits. Dropping the output without `close()` does the
//! same without waiting.
//!
//! A panic in a sender ends that sender only (the others go on draining the queue); the
//! message it was sending is counted as `dropped_at_shutdown` when the output closes. The
//! output then reports itself closed and the panic through [`Output::failure`]: the run
//! treats it as fatal and stops.

use std::cmp::{Ordering as CmpOrdering, Reverse};
use std::collections::{BinaryHeap, VecDeque};
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use serde_json::json;
use ureq::http::HeaderValue;
use ureq::tls::{Certificate, PemItem, RootCerts, TlsConfig};
use ureq::Agent;

use super::log::{self, RateLimit};
use super::otlp::{self, EncodedSpan, SpanBuilder};
use super::{Batch, Output, OutputError};
use crate::config::{LogLevel, OutputFormat, Settings};
use crate::fatal::{self, FaultPoint, ThreadPanic};
use crate::redact::REDACTED;
use crate::stats::OutputStats;

/// Retries after the first attempt (spec: 1 s, 2 s, 4 s).
pub const MAX_RETRIES: u32 = 3;
/// Default connect timeout per attempt.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// Default overall timeout per attempt.
pub const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// Failure log lines of one kind are written at most this often.
const LOG_INTERVAL: Duration = Duration::from_secs(10);
/// Response bodies are read (and discarded) up to this size so connections can be reused.
const RESPONSE_BODY_LIMIT: u64 = 64 * 1024;

/// Everything the output URL sink needs. [`HttpOutputConfig::from_settings`]
/// fills it from validated settings; tests adjust fields (timeouts, CA).
#[derive(Clone)]
#[non_exhaustive]
pub struct HttpOutputConfig {
    /// `http://` or `https://` URL.
    pub url: String,
    /// Bearer token. Never logged.
    pub auth_token: Option<String>,
    /// Messages per request; 1 = `application/json`, more = `application/x-ndjson`.
    pub batch_size: usize,
    /// A partial batch is sent once its oldest message has waited this long.
    pub batch_wait: Duration,
    /// Sender threads.
    pub concurrency: usize,
    /// Messages queued, in flight or awaiting a retry before new ones are dropped.
    pub queue_size: usize,
    /// The same bound in bytes of JSON (messages can be large: bodies up to
    /// `maxBodySize`, base64 when binary). Default [`super::MAX_QUEUED_BYTES`].
    pub max_queued_bytes: usize,
    /// How long `close()` may take to deliver what is pending.
    pub drain_timeout: Duration,
    /// First retry delay; the next ones double it.
    pub retry_base: Duration,
    /// Retries after the first attempt.
    pub max_retries: u32,
    /// Connect timeout per attempt (includes DNS).
    pub connect_timeout: Duration,
    /// Overall timeout per attempt (connect, TLS, request, response).
    pub request_timeout: Duration,
    /// Trusted root certificates (PEM) replacing the built-in Mozilla roots.
    pub ca_pem: Option<Vec<u8>>,
    /// JSON messages, or OTLP spans ([`super::otlp`]).
    pub format: OutputFormat,
}

impl fmt::Debug for HttpOutputConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HttpOutputConfig")
            .field("url", &endpoint_label(&self.url))
            .field(
                "auth_token",
                &self.auth_token.as_ref().map(|_| "[REDACTED]"),
            )
            .field("batch_size", &self.batch_size)
            .field("batch_wait", &self.batch_wait)
            .field("concurrency", &self.concurrency)
            .field("queue_size", &self.queue_size)
            .field("max_queued_bytes", &self.max_queued_bytes)
            .field("drain_timeout", &self.drain_timeout)
            .field("retry_base", &self.retry_base)
            .field("max_retries", &self.max_retries)
            .field("connect_timeout", &self.connect_timeout)
            .field("request_timeout", &self.request_timeout)
            .field("ca_pem", &self.ca_pem.as_ref().map(|p| p.len()))
            .field("format", &self.format)
            .finish()
    }
}

impl HttpOutputConfig {
    /// Defaults (as in [`Settings::default`]) for `url`.
    pub fn new(url: impl Into<String>) -> Self {
        let d = Settings::default();
        HttpOutputConfig {
            url: url.into(),
            auth_token: None,
            batch_size: d.output_batch_size,
            batch_wait: Duration::from_millis(d.output_batch_wait_ms),
            concurrency: d.output_concurrency,
            queue_size: d.output_queue_size,
            max_queued_bytes: super::MAX_QUEUED_BYTES,
            drain_timeout: Duration::from_millis(d.output_drain_timeout_ms),
            retry_base: Duration::from_millis(d.output_retry_base_ms),
            max_retries: MAX_RETRIES,
            connect_timeout: DEFAULT_CONNECT_TIMEOUT,
            request_timeout: DEFAULT_REQUEST_TIMEOUT,
            ca_pem: None,
            format: OutputFormat::Json,
        }
    }

    /// From validated settings, or `None` when no output URL is set. Reads the
    /// roots from `SSL_CERT_FILE` when that is set.
    pub fn from_settings(s: &Settings) -> Result<Option<Self>, OutputError> {
        let Some(url) = &s.output_url else {
            return Ok(None);
        };
        let mut c = HttpOutputConfig::new(url.clone());
        c.auth_token = s.output_url_auth_token.clone();
        c.batch_size = s.output_batch_size;
        c.batch_wait = Duration::from_millis(s.output_batch_wait_ms);
        c.concurrency = s.output_concurrency;
        c.queue_size = s.output_queue_size;
        c.drain_timeout = Duration::from_millis(s.output_drain_timeout_ms);
        c.retry_base = Duration::from_millis(s.output_retry_base_ms);
        c.format = s.output_format;
        if let Some(path) = std::env::var_os("SSL_CERT_FILE").filter(|p| !p.is_empty()) {
            let pem = std::fs::read(&path).map_err(|e| OutputError::CaFile {
                path: path.to_string_lossy().into_owned(),
                reason: e.to_string(),
            })?;
            c.ca_pem = Some(pem);
        }
        Ok(Some(c))
    }
}

/// `scheme://host[:port]` of a URL, without credentials, path or query: what logs show.
fn endpoint_label(url: &str) -> String {
    crate::config::url_label(url)
}

/// What must never appear in a log line: the whole URL, its userinfo, its path and query
/// (webhook-style URLs carry secrets there), and the token. Longest first, so a piece
/// inside another is replaced as part of it.
fn secrets_of(url: &str, token: Option<&str>) -> Vec<String> {
    let mut out = vec![url.to_string()];
    if let Some((_, rest)) = url.split_once("://") {
        let split = rest.find(['/', '?', '#']).unwrap_or(rest.len());
        let (authority, tail) = rest.split_at(split);
        if let Some((userinfo, _)) = authority.rsplit_once('@') {
            out.push(userinfo.to_string());
        }
        let tail = tail.split('#').next().unwrap_or("");
        out.push(tail.to_string());
        if let Some((path, query)) = tail.split_once('?') {
            out.push(path.to_string());
            out.push(query.to_string());
        }
    }
    out.retain(|s| s.len() >= 2 && s != "/");
    out.extend(token.filter(|t| !t.is_empty()).map(str::to_string));
    out.sort_by_key(|s| std::cmp::Reverse(s.len()));
    out
}

/// `reason` with every secret of the output URL replaced (see [`secrets_of`]): error texts
/// of the HTTP client may quote the URL.
fn scrub(mut reason: String, secrets: &[String]) -> String {
    for s in secrets {
        if reason.contains(s.as_str()) {
            reason = reason.replace(s.as_str(), REDACTED);
        }
    }
    reason
}

/// Counters shared with the sender threads.
#[derive(Default)]
struct Counters {
    delivered: AtomicU64,
    dropped_queue_full: AtomicU64,
    dropped_retries_exhausted: AtomicU64,
    dropped_rejected: AtomicU64,
    dropped_at_shutdown: AtomicU64,
    retries: AtomicU64,
    otlp_spans_rejected: AtomicU64,
}

/// A message (JSON) or an exchange (an encoded OTLP span) waiting to be batched.
struct Fresh {
    json: Vec<u8>,
    /// Messages it stands for (1 for JSON; an exchange's request and responses for OTLP).
    count: usize,
    at: Instant,
}

/// A request body waiting for its next attempt.
struct Job {
    body: Vec<u8>,
    /// Messages in `body`.
    count: usize,
    /// Spans in `body` (OTLP; for JSON the number of messages).
    items: usize,
    /// Bytes this job holds against the byte budget.
    bytes: usize,
    /// Retries done so far.
    retries: u32,
}

/// A job in the retry schedule, ordered by due time (then by insertion).
struct Scheduled {
    due: Instant,
    seq: u64,
    job: Job,
}

impl PartialEq for Scheduled {
    fn eq(&self, o: &Self) -> bool {
        (self.due, self.seq) == (o.due, o.seq)
    }
}
impl Eq for Scheduled {}
impl PartialOrd for Scheduled {
    fn partial_cmp(&self, o: &Self) -> Option<CmpOrdering> {
        Some(self.cmp(o))
    }
}
impl Ord for Scheduled {
    fn cmp(&self, o: &Self) -> CmpOrdering {
        (self.due, self.seq).cmp(&(o.due, o.seq))
    }
}

#[derive(Default)]
struct State {
    fresh: VecDeque<Fresh>,
    /// Messages in `fresh`.
    fresh_msgs: usize,
    retry: BinaryHeap<Reverse<Scheduled>>,
    /// Messages in `retry`.
    retry_msgs: usize,
    /// Messages being sent right now.
    in_flight: usize,
    /// JSON bytes of everything counted in `pending()`.
    bytes: usize,
    next_seq: u64,
    /// No more sends; senders exit once nothing is left.
    closing: bool,
    /// Given up: everything pending was counted as dropped; senders stop.
    aborted: bool,
    /// Sender threads still running.
    senders: usize,
    /// The first sender's panic, if one died of one.
    failure: Option<ThreadPanic>,
}

impl State {
    fn pending(&self) -> usize {
        self.fresh_msgs + self.retry_msgs + self.in_flight
    }
}

/// Settings the senders need, fixed at construction.
struct Inner {
    url: String,
    label: String,
    /// The token and the URL's userinfo and query: scrubbed from every logged reason.
    secrets: Vec<String>,
    auth: Option<HeaderValue>,
    batch_size: usize,
    batch_wait: Duration,
    retry_base: Duration,
    max_retries: u32,
    queue_size: usize,
    max_bytes: usize,
    format: OutputFormat,
    /// Request bodies are gzip'd (`Content-Encoding: gzip`): JSON batches and OTLP.
    gzip: bool,
}

struct Shared {
    inner: Inner,
    state: Mutex<State>,
    /// Work arrived / a retry is due / closing.
    work_cv: Condvar,
    /// A sender exited.
    exit_cv: Condvar,
    counters: Counters,
    log_exhausted: RateLimit,
    log_rejected: RateLimit,
    log_queue_full: RateLimit,
    /// OTLP partial successes with dropped spans (warn).
    log_partial: RateLimit,
    /// OTLP partial successes that only carry a warning (info).
    log_partial_note: RateLimit,
    /// OTLP: the encoded `Resource` of every export request (set from the first message
    /// that carries the pod's placement).
    resource: Mutex<Vec<u8>>,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Posts messages to the output URL from a pool of sender threads. See the module docs.
pub struct HttpOutput {
    shared: Arc<Shared>,
    drain_timeout: Duration,
    closed: bool,
    /// OTLP: pairs messages into spans (on the caller's thread).
    spans: Option<SpanBuilder>,
}

impl fmt::Debug for HttpOutput {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HttpOutput")
            .field("endpoint", &self.shared.inner.label)
            .field("closed", &self.closed)
            .finish()
    }
}

impl HttpOutput {
    /// Validates `cfg`, builds the HTTP agent and starts the sender threads.
    pub fn new(cfg: HttpOutputConfig) -> Result<Self, OutputError> {
        let uri: ureq::http::Uri = cfg
            .url
            .parse()
            .map_err(|_| OutputError::InvalidUrl(endpoint_label(&cfg.url)))?;
        match uri.scheme_str() {
            Some("http") | Some("https") if uri.host().is_some() => {}
            _ => return Err(OutputError::InvalidUrl(endpoint_label(&cfg.url))),
        }
        let auth = match &cfg.auth_token {
            None => None,
            Some(t) => {
                if !t.bytes().all(|b| (0x20..0x7f).contains(&b)) {
                    return Err(OutputError::InvalidToken);
                }
                let mut v = HeaderValue::from_str(&format!("Bearer {t}"))
                    .map_err(|_| OutputError::InvalidToken)?;
                v.set_sensitive(true);
                Some(v)
            }
        };
        let mut tls = TlsConfig::builder();
        if let Some(pem) = &cfg.ca_pem {
            let certs: Vec<Certificate<'static>> = ureq::tls::parse_pem(pem)
                .filter_map(|item| match item {
                    Ok(PemItem::Certificate(c)) => Some(c),
                    _ => None,
                })
                .collect();
            if certs.is_empty() {
                return Err(OutputError::CaFile {
                    path: "SSL_CERT_FILE".into(),
                    reason: "no PEM certificate found".into(),
                });
            }
            tls = tls.root_certs(RootCerts::new_with_certs(&certs));
        }
        let concurrency = cfg.concurrency.max(1);
        let agent: Agent = Agent::config_builder()
            .http_status_as_error(false)
            .max_redirects(0)
            .timeout_connect(Some(cfg.connect_timeout.min(cfg.request_timeout)))
            .timeout_global(Some(cfg.request_timeout))
            .max_idle_connections(concurrency * 2)
            .max_idle_connections_per_host(concurrency * 2)
            .user_agent(concat!("tcp-sniffer/", env!("CARGO_PKG_VERSION")))
            .tls_config(tls.build())
            .build()
            .into();
        let shared = Arc::new(Shared {
            inner: Inner {
                label: endpoint_label(&cfg.url),
                secrets: secrets_of(&cfg.url, cfg.auth_token.as_deref()),
                url: cfg.url,
                auth,
                batch_size: cfg.batch_size.max(1),
                batch_wait: cfg.batch_wait,
                retry_base: cfg.retry_base,
                max_retries: cfg.max_retries,
                queue_size: cfg.queue_size.max(1),
                max_bytes: cfg.max_queued_bytes.max(1),
                format: cfg.format,
                gzip: cfg.format == OutputFormat::Otlp || cfg.batch_size > 1,
            },
            state: Mutex::new(State::default()),
            work_cv: Condvar::new(),
            exit_cv: Condvar::new(),
            counters: Counters::default(),
            log_exhausted: RateLimit::new(LOG_INTERVAL),
            log_rejected: RateLimit::new(LOG_INTERVAL),
            log_queue_full: RateLimit::new(LOG_INTERVAL),
            log_partial: RateLimit::new(LOG_INTERVAL),
            log_partial_note: RateLimit::new(LOG_INTERVAL),
            resource: Mutex::new(SpanBuilder::default().resource()),
        });
        let out = HttpOutput {
            shared: shared.clone(),
            drain_timeout: cfg.drain_timeout,
            closed: false,
            spans: (cfg.format == OutputFormat::Otlp).then(SpanBuilder::default),
        };
        for i in 0..concurrency {
            let s = shared.clone();
            let agent = agent.clone();
            s.lock().senders += 1;
            let on_panic = s.clone();
            let spawned = fatal::spawn(
                &format!("tcp-sniffer-post-{i}"),
                move || sender_loop(&s, &agent),
                move |p| sender_died(&on_panic, p),
            );
            if let Err(e) = spawned {
                shared.lock().senders -= 1;
                // `out` is dropped here, which stops the senders already started.
                return Err(OutputError::Spawn(e));
            }
        }
        Ok(out)
    }

    /// Gives up on everything pending: counts it as dropped at shutdown.
    fn abort(&self, st: &mut State) -> u64 {
        if st.aborted {
            return 0;
        }
        st.aborted = true;
        let left = st.pending() as u64;
        st.fresh.clear();
        st.fresh_msgs = 0;
        st.retry.clear();
        st.retry_msgs = 0;
        self.shared
            .counters
            .dropped_at_shutdown
            .fetch_add(left, Ordering::Relaxed);
        self.shared.work_cv.notify_all();
        left
    }
}

/// What [`HttpOutput::enqueue`] queues: a message's JSON (copied only once accepted), or
/// an encoded span.
enum Item<'a> {
    Json(&'a [u8]),
    Span(EncodedSpan),
}

impl Item<'_> {
    fn len(&self) -> usize {
        match self {
            Item::Json(j) => j.len(),
            Item::Span(e) => e.bytes.len(),
        }
    }
    fn messages(&self) -> usize {
        match self {
            Item::Json(_) => 1,
            Item::Span(e) => e.messages,
        }
    }
    fn into_vec(self) -> Vec<u8> {
        match self {
            Item::Json(j) => j.to_vec(),
            Item::Span(e) => e.bytes,
        }
    }
}

impl HttpOutput {
    /// Queues `items` (standing for `total` messages) within the bounds; counts the rest as
    /// dropped (queue full, or at shutdown once closing).
    fn enqueue<'a>(&self, items: impl Iterator<Item = Item<'a>>, total: usize) {
        if total == 0 {
            return;
        }
        let s = &self.shared;
        let now = Instant::now();
        let dropped = {
            let mut st = s.lock();
            if st.closing || st.aborted {
                drop(st);
                s.counters
                    .dropped_at_shutdown
                    .fetch_add(total as u64, Ordering::Relaxed);
                return;
            }
            // An empty queue takes one whole batch whatever its size (see `has_room`).
            let empty = st.pending() == 0;
            let mut accepted = 0;
            for item in items {
                let m = item.messages();
                if !empty
                    && (st.pending() + m > s.inner.queue_size
                        || st.bytes + item.len() > s.inner.max_bytes)
                {
                    break;
                }
                st.bytes += item.len();
                st.fresh_msgs += m;
                st.fresh.push_back(Fresh {
                    json: item.into_vec(),
                    count: m,
                    at: now,
                });
                accepted += m;
            }
            total.saturating_sub(accepted) as u64
        };
        s.work_cv.notify_all();
        if dropped > 0 {
            s.counters
                .dropped_queue_full
                .fetch_add(dropped, Ordering::Relaxed);
            if let Some(held) = s.log_queue_full.check() {
                log::log(
                    LogLevel::Warn,
                    "output URL queue full; messages dropped",
                    &[
                        ("endpoint", json!(s.inner.label)),
                        ("messages", json!(dropped)),
                        ("queueSize", json!(s.inner.queue_size)),
                        ("similarEventsNotLogged", json!(held)),
                    ],
                );
            }
        }
    }

    /// OTLP: queues finished spans, and counts messages that could not be read back.
    fn enqueue_spans(&mut self, spans: Vec<EncodedSpan>) {
        let Some(b) = self.spans.as_mut() else {
            return;
        };
        let unreadable = std::mem::take(&mut b.unreadable);
        {
            let mut r = self
                .shared
                .resource
                .lock()
                .unwrap_or_else(|e| e.into_inner());
            let now = b.resource();
            if *r != now {
                *r = now;
            }
        }
        if unreadable > 0 {
            self.shared
                .counters
                .dropped_rejected
                .fetch_add(unreadable, Ordering::Relaxed);
            log::log(
                LogLevel::Warn,
                "messages that could not be turned into spans; dropped",
                &[("messages", json!(unreadable))],
            );
        }
        let total = spans.iter().map(|e| e.messages).sum();
        self.enqueue(spans.into_iter().map(Item::Span), total);
    }
}

impl Output for HttpOutput {
    fn send(&mut self, batch: &Arc<Batch>) {
        let n = batch.len();
        if n == 0 {
            return;
        }
        if let Some(b) = self.spans.as_mut() {
            let now = Instant::now();
            let mut out = Vec::new();
            for m in batch.messages() {
                b.push(m, now, &mut out);
            }
            self.enqueue_spans(out);
            return;
        }
        self.enqueue(batch.messages().map(Item::Json), n);
    }

    /// Senders batch and time by themselves; OTLP exports requests whose responses are
    /// overdue ([`otlp::HOLD_FOR`]).
    fn flush(&mut self) {
        if let Some(b) = self.spans.as_mut() {
            let mut out = Vec::new();
            b.expire(Instant::now(), false, &mut out);
            if !out.is_empty() {
                self.enqueue_spans(out);
            }
        }
    }

    fn close(&mut self) {
        if self.closed {
            return;
        }
        // OTLP: requests still waiting for their responses go out alone.
        if let Some(b) = self.spans.as_mut() {
            let mut out = Vec::new();
            b.expire(Instant::now(), true, &mut out);
            self.enqueue_spans(out);
        }
        self.closed = true;
        let s = &self.shared;
        let deadline = Instant::now() + self.drain_timeout;
        let mut st = s.lock();
        st.closing = true;
        s.work_cv.notify_all();
        while st.senders > 0 && !st.aborted {
            let now = Instant::now();
            if now >= deadline {
                break;
            }
            st = s
                .exit_cv
                .wait_timeout(st, deadline - now)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
        let left = if st.senders > 0 || st.pending() > 0 {
            self.abort(&mut st)
        } else {
            0
        };
        drop(st);
        if left > 0 {
            log::log(
                LogLevel::Warn,
                "output URL not drained before the deadline; pending messages dropped",
                &[
                    ("endpoint", json!(s.inner.label)),
                    ("messages", json!(left)),
                    (
                        "drainTimeoutMs",
                        json!(self.drain_timeout.as_millis() as u64),
                    ),
                ],
            );
        }
        // Failures held back by the log rate limit get one summary line.
        let held = [
            ("retries exhausted", &s.log_exhausted),
            ("rejected", &s.log_rejected),
            ("queue full", &s.log_queue_full),
            ("OTLP spans rejected", &s.log_partial),
        ];
        for (kind, limit) in held {
            let n = limit.take_held();
            if n > 0 {
                log::log(
                    LogLevel::Warn,
                    "output URL failures not logged individually",
                    &[
                        ("endpoint", json!(s.inner.label)),
                        ("kind", json!(kind)),
                        ("events", json!(n)),
                    ],
                );
            }
        }
    }

    fn is_closed(&self) -> bool {
        self.closed || self.shared.lock().failure.is_some()
    }

    fn failure(&self) -> Option<ThreadPanic> {
        self.shared.lock().failure.clone()
    }

    fn has_room(&self, batch: &Batch) -> bool {
        let st = self.shared.lock();
        let pending = st.pending();
        pending == 0
            || (pending + batch.len() <= self.shared.inner.queue_size
                && st.bytes + batch.as_lines().len() <= self.shared.inner.max_bytes)
    }

    fn stats(&self) -> OutputStats {
        let c = &self.shared.counters;
        OutputStats {
            delivered: c.delivered.load(Ordering::Relaxed),
            dropped_queue_full: c.dropped_queue_full.load(Ordering::Relaxed),
            dropped_retries_exhausted: c.dropped_retries_exhausted.load(Ordering::Relaxed),
            dropped_rejected: c.dropped_rejected.load(Ordering::Relaxed),
            dropped_at_shutdown: c.dropped_at_shutdown.load(Ordering::Relaxed),
            retries: c.retries.load(Ordering::Relaxed),
            otlp_spans_rejected: c.otlp_spans_rejected.load(Ordering::Relaxed),
            ..OutputStats::default()
        }
    }
}

impl Drop for HttpOutput {
    fn drop(&mut self) {
        let mut st = self.shared.lock();
        st.closing = true;
        self.abort(&mut st);
    }
}

/// What one attempt came to.
enum Outcome {
    /// 2xx; for OTLP, with what the collector's answer said about dropped spans.
    Delivered(Option<otlp::PartialSuccess>),
    /// Connection error, timeout, 429, 5xx; with the server's `Retry-After`, if any.
    Retry(String, Option<Duration>),
    /// Anything else that is not 2xx.
    Reject(String),
}

/// A sender panicked: it no longer counts as running (its message in flight stays
/// pending, so `close()` counts it as dropped at shutdown), and the output has failed.
fn sender_died(s: &Shared, p: ThreadPanic) {
    let mut st = s.lock();
    st.senders -= 1;
    st.failure.get_or_insert(p);
    drop(st);
    s.exit_cv.notify_all();
    s.work_cv.notify_all();
}

fn sender_loop(s: &Shared, agent: &Agent) {
    while let Some(job) = next_job(s) {
        fatal::inject(FaultPoint::Post);
        let outcome = post(s, agent, &job);
        finish(s, job, outcome);
    }
    let mut st = s.lock();
    st.senders -= 1;
    drop(st);
    s.exit_cv.notify_all();
}

/// Waits for the next request to make: a due retry first, else a (full, timed out
/// or final) batch of fresh messages. `None` when the sender should exit.
fn next_job(s: &Shared) -> Option<Job> {
    let inner = &s.inner;
    let mut st = s.lock();
    loop {
        if st.aborted {
            return None;
        }
        let now = Instant::now();
        if st.retry.peek().is_some_and(|r| r.0.due <= now) {
            let Reverse(r) = st.retry.pop()?;
            st.retry_msgs -= r.job.count;
            st.in_flight += r.job.count;
            return Some(r.job);
        }
        let batch_due = st.fresh.front().map(|f| f.at + inner.batch_wait);
        if let Some(due) = batch_due {
            let ready = inner.batch_size == 1
                || st.fresh.len() >= inner.batch_size
                || st.closing
                || now >= due;
            if ready {
                let n = st.fresh.len().min(inner.batch_size);
                let taken: Vec<Fresh> = st.fresh.drain(..n).collect();
                let count: usize = taken.iter().map(|f| f.count).sum();
                st.fresh_msgs -= count;
                st.in_flight += count;
                drop(st);
                let bytes = taken.iter().map(|f| f.json.len()).sum();
                let body = match inner.format {
                    OutputFormat::Otlp => {
                        let resource = s.resource.lock().unwrap_or_else(|e| e.into_inner()).clone();
                        otlp::export_request(&resource, taken.iter().map(|f| f.json.as_slice()))
                    }
                    OutputFormat::Json if inner.batch_size == 1 => taken.into_iter().next()?.json,
                    OutputFormat::Json => {
                        let mut body =
                            Vec::with_capacity(taken.iter().map(|f| f.json.len() + 1).sum());
                        for f in &taken {
                            body.extend_from_slice(&f.json);
                            body.push(b'\n');
                        }
                        body
                    }
                };
                let body = if inner.gzip { gzip(&body) } else { body };
                return Some(Job {
                    body,
                    count,
                    items: n,
                    bytes,
                    retries: 0,
                });
            }
        }
        if st.closing && st.fresh.is_empty() && st.retry.is_empty() {
            return None;
        }
        let mut wake: Option<Instant> = st.retry.peek().map(|r| r.0.due);
        if let Some(due) = batch_due {
            wake = Some(wake.map_or(due, |w| w.min(due)));
        }
        st = match wake {
            Some(t) => {
                s.work_cv
                    .wait_timeout(st, t.saturating_duration_since(now))
                    .unwrap_or_else(|e| e.into_inner())
                    .0
            }
            None => s.work_cv.wait(st).unwrap_or_else(|e| e.into_inner()),
        };
    }
}

/// `body` gzip'd (fast level: the network, not the CPU, is what batching saves).
fn gzip(body: &[u8]) -> Vec<u8> {
    use std::io::Write as _;
    let mut enc = flate2::write::GzEncoder::new(
        Vec::with_capacity(body.len() / 4 + 64),
        flate2::Compression::fast(),
    );
    // Writing to a Vec cannot fail.
    let _ = enc.write_all(body);
    enc.finish().unwrap_or_default()
}

/// `Retry-After` as delta-seconds (an HTTP-date is not read: the schedule applies).
fn retry_after(resp: &ureq::http::Response<ureq::Body>) -> Option<Duration> {
    let v = resp.headers().get("retry-after")?.to_str().ok()?.trim();
    v.parse::<u64>().ok().map(Duration::from_secs)
}

/// The wait before retry number `retry` (0-based): `base × 2^retry`, times a random factor
/// in [0.8, 1.2) so a fleet of sidecars does not retry in step; raised to the server's
/// `Retry-After` when that is longer, but never past the schedule's last step
/// (`base × 2^(max_retries-1)`, 4 s by default) times 1.2.
fn retry_delay(base: Duration, retry: u32, max_retries: u32, after: Option<Duration>) -> Duration {
    let step = base.saturating_mul(1u32 << retry.min(16));
    let jittered = step.mul_f64(otlp::random_between(0.8, 1.2));
    let longest = base
        .saturating_mul(1u32 << max_retries.saturating_sub(1).min(16))
        .mul_f64(1.2);
    match after {
        Some(a) if a > jittered => a.min(longest),
        _ => jittered,
    }
}

fn post(s: &Shared, agent: &Agent, job: &Job) -> Outcome {
    let inner = &s.inner;
    let content_type = match inner.format {
        OutputFormat::Otlp => "application/x-protobuf",
        OutputFormat::Json if inner.batch_size > 1 => "application/x-ndjson",
        OutputFormat::Json => "application/json",
    };
    let mut req = agent.post(&inner.url).header("content-type", content_type);
    if inner.gzip {
        req = req.header("content-encoding", "gzip");
    }
    if let Some(auth) = &inner.auth {
        req = req.header("authorization", auth.clone());
    }
    match req.send(&job.body[..]) {
        Ok(mut resp) => {
            let status = resp.status().as_u16();
            let location = resp
                .headers()
                .get("location")
                .and_then(|v| v.to_str().ok())
                .map(|l| {
                    if l.contains("://") {
                        endpoint_label(l)
                    } else {
                        inner.label.clone()
                    }
                });
            // Read the (small) answer so the connection can be reused.
            let answer = resp
                .body_mut()
                .with_config()
                .limit(RESPONSE_BODY_LIMIT)
                .read_to_vec();
            let after = retry_after(&resp);
            match status {
                200..=299 if inner.format == OutputFormat::Otlp => {
                    let ct = resp
                        .headers()
                        .get("content-type")
                        .and_then(|v| v.to_str().ok());
                    let read = answer
                        .map_err(|e| format!("answer not read: {e}"))
                        .and_then(|body| otlp::partial_success(ct, &body));
                    match read {
                        Ok(partial) => Outcome::Delivered(partial),
                        Err(reason) => {
                            log::log(
                                LogLevel::Debug,
                                "output URL answered 2xx with an unreadable OTLP export \
                                 response; counted as delivered",
                                &[("endpoint", json!(inner.label)), ("reason", json!(reason))],
                            );
                            Outcome::Delivered(None)
                        }
                    }
                }
                200..=299 => Outcome::Delivered(None),
                429 | 500..=599 => Outcome::Retry(format!("HTTP {status}"), after),
                300..=399 => Outcome::Reject(format!(
                    "HTTP {status}: redirect to {} not followed",
                    location.as_deref().unwrap_or("(no location)")
                )),
                _ => Outcome::Reject(format!("HTTP {status}")),
            }
        }
        Err(e) => Outcome::Retry(scrub(describe_error(&e), &inner.secrets), None),
    }
}

/// The collector kept the request but dropped some of its spans (or sent a warning):
/// counted and logged, never retried (OTLP/HTTP: the client MUST NOT retry a partial
/// success).
fn partial_success(s: &Shared, job: &Job, p: otlp::PartialSuccess) {
    let inner = &s.inner;
    // A collector cannot drop more spans than it was sent; a larger number is its bug and
    // must not inflate the counter.
    let rejected = p.rejected_spans.min(job.items as u64);
    s.counters
        .otlp_spans_rejected
        .fetch_add(rejected, Ordering::Relaxed);
    let (level, limit, what) = if rejected > 0 {
        (
            LogLevel::Warn,
            &s.log_partial,
            "OTLP collector accepted the request but dropped spans; not retried",
        )
    } else {
        (
            LogLevel::Info,
            &s.log_partial_note,
            "OTLP collector accepted every span and sent a warning",
        )
    };
    if let Some(held) = limit.check() {
        log::log(
            level,
            what,
            &[
                ("endpoint", json!(inner.label)),
                ("rejectedSpans", json!(rejected)),
                ("spans", json!(job.items)),
                (
                    "errorMessage",
                    json!(scrub(p.error_message, &inner.secrets)),
                ),
                ("similarEventsNotLogged", json!(held)),
            ],
        );
    }
}

/// A transport error as a log reason (never includes headers, so never the token).
fn describe_error(e: &ureq::Error) -> String {
    match e {
        ureq::Error::Timeout(t) => format!("timeout ({t})"),
        ureq::Error::Io(io) if io.kind() == std::io::ErrorKind::TimedOut => {
            format!("timeout ({io})")
        }
        ureq::Error::Io(io) => format!("connection error: {io}"),
        other => format!("connection error: {other}"),
    }
}

fn finish(s: &Shared, mut job: Job, outcome: Outcome) {
    let inner = &s.inner;
    let c = &s.counters;
    let n = job.count as u64;
    let mut st = s.lock();
    st.in_flight -= job.count;
    if !matches!(outcome, Outcome::Retry(..)) || job.retries >= inner.max_retries {
        st.bytes -= job.bytes;
    }
    if st.aborted {
        // Already counted as dropped at shutdown.
        return;
    }
    match outcome {
        Outcome::Delivered(partial) => {
            c.delivered.fetch_add(n, Ordering::Relaxed);
            if let Some(p) = partial {
                drop(st);
                partial_success(s, &job, p);
            }
        }
        Outcome::Retry(reason, after) if job.retries < inner.max_retries => {
            let delay = retry_delay(inner.retry_base, job.retries, inner.max_retries, after);
            job.retries += 1;
            c.retries.fetch_add(1, Ordering::Relaxed);
            log::log(
                LogLevel::Debug,
                "output URL request failed; will retry",
                &[
                    ("endpoint", json!(inner.label)),
                    ("reason", json!(reason)),
                    ("retry", json!(job.retries)),
                    ("delayMs", json!(delay.as_millis() as u64)),
                ],
            );
            let seq = st.next_seq;
            st.next_seq += 1;
            st.retry_msgs += job.count;
            st.retry.push(Reverse(Scheduled {
                due: Instant::now() + delay,
                seq,
                job,
            }));
            drop(st);
            s.work_cv.notify_one();
        }
        Outcome::Retry(reason, _) => {
            drop(st);
            c.dropped_retries_exhausted.fetch_add(n, Ordering::Relaxed);
            if let Some(held) = s.log_exhausted.check() {
                log::log(
                    LogLevel::Warn,
                    "output URL delivery failed after retries; messages dropped",
                    &[
                        ("endpoint", json!(inner.label)),
                        ("reason", json!(reason)),
                        ("retries", json!(job.retries)),
                        ("messages", json!(n)),
                        ("similarEventsNotLogged", json!(held)),
                    ],
                );
            }
        }
        Outcome::Reject(reason) => {
            drop(st);
            c.dropped_rejected.fetch_add(n, Ordering::Relaxed);
            if let Some(held) = s.log_rejected.check() {
                log::log(
                    LogLevel::Warn,
                    "output URL rejected messages; not retried",
                    &[
                        ("endpoint", json!(inner.label)),
                        ("reason", json!(reason)),
                        ("messages", json!(n)),
                        ("similarEventsNotLogged", json!(held)),
                    ],
                );
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoint_label_hides_credentials_path_and_query() {
        assert_eq!(
            endpoint_label("https://user:pw@example.com:8443/ingest?key=s3cret"),
            "https://example.com:8443"
        );
        assert_eq!(endpoint_label("http://[::1]:9/x"), "http://[::1]:9");
    }

    #[test]
    fn logged_reasons_never_carry_the_urls_credentials() {
        let url = "http://user:pw-secret@collector.example:8080/hook/path-secret?k=qs-secret#f";
        let secrets = secrets_of(url, Some("tok-secret"));
        let reason = format!(
            "connection error: bad uri {url} (user:pw-secret, /hook/path-secret?k=qs-secret, k=qs-secret, tok-secret)"
        );
        let r = scrub(reason, &secrets);
        for s in ["pw-secret", "path-secret", "qs-secret", "tok-secret"] {
            assert!(!r.contains(s), "{s} in {r}");
        }
        assert!(r.starts_with("connection error: bad uri [REDACTED]"), "{r}");
        assert_eq!(
            scrub(
                "timeout (10s)".into(),
                &secrets_of("https://h.example/", None)
            ),
            "timeout (10s)"
        );
        assert_eq!(endpoint_label(url), "http://collector.example:8080");
    }

    #[test]
    fn debug_never_shows_the_token() {
        let mut c = HttpOutputConfig::new("http://127.0.0.1:9/x");
        c.auth_token = Some("s3cret-token".into());
        let d = format!("{c:?}");
        assert!(!d.contains("s3cret"), "{d}");
        let o = HttpOutput::new(c).unwrap();
        assert!(!format!("{o:?}").contains("s3cret"));
    }

    #[test]
    fn rejects_bad_urls_and_tokens() {
        assert!(matches!(
            HttpOutput::new(HttpOutputConfig::new("ftp://example.com/")),
            Err(OutputError::InvalidUrl(_))
        ));
        let mut c = HttpOutputConfig::new("http://127.0.0.1:9/");
        c.auth_token = Some("bad\ntoken".into());
        let e = HttpOutput::new(c).unwrap_err();
        assert!(!e.to_string().contains("bad"), "{e}");
    }

    #[test]
    fn retry_delays_are_jittered_and_honour_retry_after_within_the_schedule() {
        let base = Duration::from_secs(1);
        for retry in 0..3 {
            let step = base * (1 << retry);
            let draws: Vec<Duration> = (0..200)
                .map(|_| retry_delay(base, retry, 3, None))
                .collect();
            for d in &draws {
                assert!(*d >= step.mul_f64(0.8) && *d < step.mul_f64(1.2), "{d:?}");
            }
            let distinct: std::collections::HashSet<_> = draws.iter().collect();
            assert!(distinct.len() > 150, "not jittered: {distinct:?}");
        }
        // Retry-After longer than the step raises it, up to the last step × 1.2.
        let d = retry_delay(base, 0, 3, Some(Duration::from_secs(3)));
        assert_eq!(d, Duration::from_secs(3));
        let d = retry_delay(base, 0, 3, Some(Duration::from_secs(3600)));
        assert_eq!(d, Duration::from_secs(4).mul_f64(1.2));
        // Shorter than the step: the schedule wins.
        let d = retry_delay(base, 2, 3, Some(Duration::from_secs(1)));
        assert!(d >= Duration::from_millis(3200), "{d:?}");
    }

    #[test]
    fn scheduled_orders_by_due_time() {
        let t = Instant::now();
        let job = |c| Job {
            body: Vec::new(),
            count: c,
            items: c,
            bytes: 0,
            retries: 0,
        };
        let mut h = BinaryHeap::new();
        h.push(Reverse(Scheduled {
            due: t + Duration::from_secs(2),
            seq: 0,
            job: job(2),
        }));
        h.push(Reverse(Scheduled {
            due: t + Duration::from_secs(1),
            seq: 1,
            job: job(1),
        }));
        assert_eq!(h.pop().unwrap().0.job.count, 1);
    }
}
