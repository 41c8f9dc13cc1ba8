//! HTTPS server: warp routes, TLS via tokio-rustls, connections served by hyper-util.
//!
//! warp 0.4 has no TLS of its own, and its `Accept` trait is private, so this module owns the
//! accept loop: accept TCP → TLS handshake (bounded by a timeout, certificate from
//! [`CertStore`]) → `warp::service(routes)` on a hyper-util auto (HTTP/1.1 + h2) connection.
//!
//! Lifecycle (read top to bottom in [`serve`]):
//! - `ready` (shared with `/readyz`) turns false as soon as shutdown is asked for;
//! - the shutdown future given to [`serve`] resolves after the serve-on delay, then the
//!   listener is dropped (no new connections) and every open connection is told to finish its
//!   in-flight request and close ([`GracefulShutdown`]); [`serve`] returns when all are gone or
//!   the drain timeout passed;
//! - one connection's failure (bad handshake, reset) is logged at debug level and counted; it
//!   never affects another.
//!
//! The probe listener ([`serve_probes`], `--probe-addr`) is a second, plain-HTTP listener that
//! answers only `GET /healthz` and `GET /readyz` (every other path: 404), from the same
//! [`AppState`], so `/readyz` turns 503 at the same moment on both. It exists so that clients
//! filling the TLS listener's connection cap cannot make the kubelet's probes fail and restart
//! a webhook that works. It is small and bounded on its own: HTTP/1 only, one request per
//! connection, [`PROBE_TIMEOUT`] for the headers and for the whole connection,
//! [`PROBE_MAX_CONNECTIONS`] at once (at the cap, connections that have sent no request for
//! [`PROBE_SHED_MIN_IDLE`] are closed to make room). It closes after the TLS listener has
//! drained.
//!
//! [`GracefulShutdown`]: hyper_util::server::graceful::GracefulShutdown

use std::collections::HashMap;
use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::{Buf, BufMut, Bytes, BytesMut};
use futures_util::{FutureExt as _, Stream, StreamExt};
use http::{header, HeaderMap, HeaderValue, StatusCode};
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{watch, Notify, OwnedSemaphorePermit, Semaphore};
use tokio::task::JoinSet;
use tokio_rustls::TlsAcceptor;
use warp::reply::Response;
use warp::{Filter, Rejection};

use crate::metrics::Metrics;
use crate::mutate::{review_body, Verdict};
use crate::settings::{InjectSettings, ServerSettings};
use crate::tls::CertStore;

/// How long a client may take for the TLS handshake.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(5);
/// How long an HTTP/1 client may take to send request headers.
pub const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(5);
/// From the end of the request headers to the answer (body included); the API server's own
/// webhook timeout is at most 30 s and 5 s in deploy/.
pub const REQUEST_DEADLINE: Duration = Duration::from_secs(5);
/// A connection with nothing in flight is closed after this long.
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(5);
/// At the connection cap, a connection idle for less than this is not closed to make room.
pub const SHED_MIN_IDLE: Duration = Duration::from_secs(1);
/// Concurrent h2 streams per connection (the API server opens more connections when it needs
/// more; a client cannot park hundreds of slow streams on one connection).
pub const H2_MAX_CONCURRENT_STREAMS: u32 = 16;

/// Probe listener: connections open at once.
pub const PROBE_MAX_CONNECTIONS: usize = 64;
/// Probe listener: time for the request headers, and for the whole connection (the kubelet's
/// own probe timeout in deploy/ is 2 s; its probes send their request at once).
pub const PROBE_TIMEOUT: Duration = Duration::from_secs(2);
/// Probe listener: at the cap, a connection with no request for this long is closed.
pub const PROBE_SHED_MIN_IDLE: Duration = Duration::from_millis(250);

/// What the request handlers share.
#[derive(Debug)]
pub struct AppState {
    /// Sidecar shape and defaults.
    pub inject: InjectSettings,
    /// Counters.
    pub metrics: Arc<Metrics>,
    /// `/readyz` answers 200 while true.
    pub ready: AtomicBool,
    /// Largest accepted `/mutate` body.
    pub max_request_bytes: u64,
    /// Bytes of request bodies that may be held at once (one permit per byte).
    pub body_budget: Arc<Semaphore>,
}

fn text(status: StatusCode, body: impl Into<String>) -> Response {
    let mut r = Response::new(body.into().into());
    *r.status_mut() = status;
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    r
}

fn error(state: &AppState, status: StatusCode, msg: String) -> Response {
    state.metrics.http_error(status.as_u16());
    tracing::warn!(status = status.as_u16(), error = %msg, "rejected /mutate request");
    text(status, format!("{msg}\n"))
}

/// An error answered before the request body was read to its end: the connection cannot
/// carry another request, so say so. Without `Connection: close` an HTTP/1 client pools the
/// connection and sends its next request into one the server is closing (hyper's client then
/// fails it with `IncompleteMessage`). [`ConnService`] removes the header on HTTP/2, where it
/// is not allowed and streams end on their own.
fn error_body_unread(state: &AppState, status: StatusCode, msg: String) -> Response {
    let mut r = error(state, status, msg);
    r.headers_mut()
        .insert(header::CONNECTION, HeaderValue::from_static("close"));
    r
}

fn is_json(headers: &HeaderMap) -> bool {
    let Some(ct) = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
    else {
        return false;
    };
    let mime = ct.split(';').next().unwrap_or("").trim();
    mime.eq_ignore_ascii_case("application/json")
}

/// Read the whole body, at most `limit` bytes, each chunk paid for from the shared `budget`
/// (waiting for it when other requests hold it all). The permits live as long as the bytes.
async fn read_limited<S, B>(
    body: S,
    limit: u64,
    budget: &Arc<Semaphore>,
) -> Result<(Bytes, Option<OwnedSemaphorePermit>), (StatusCode, String)>
where
    S: Stream<Item = Result<B, warp::Error>>,
    B: Buf,
{
    let mut body = std::pin::pin!(body);
    let mut buf = BytesMut::new();
    let mut held: Option<OwnedSemaphorePermit> = None;
    while let Some(chunk) = body.next().await {
        let chunk = chunk.map_err(|e| {
            (
                StatusCode::BAD_REQUEST,
                format!("reading the body failed: {e}"),
            )
        })?;
        if (buf.len() + chunk.remaining()) as u64 > limit {
            return Err((
                StatusCode::PAYLOAD_TOO_LARGE,
                format!("the body is larger than {limit} bytes (--max-request-bytes)"),
            ));
        }
        let n = u32::try_from(chunk.remaining()).unwrap_or(u32::MAX);
        if n > 0 {
            let p = budget.clone().acquire_many_owned(n).await.map_err(|_| {
                (
                    StatusCode::SERVICE_UNAVAILABLE,
                    "the server is shutting down".to_string(),
                )
            })?;
            match held.as_mut() {
                Some(h) => h.merge(p),
                None => held = Some(p),
            }
        }
        buf.put(chunk);
    }
    Ok((buf.freeze(), held))
}

async fn mutate_handler<S, B>(
    state: Arc<AppState>,
    headers: HeaderMap,
    body: S,
) -> Result<Response, Infallible>
where
    S: Stream<Item = Result<B, warp::Error>>,
    B: Buf,
{
    if !is_json(&headers) {
        let got = headers
            .get(header::CONTENT_TYPE)
            .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
            .unwrap_or_else(|| "none".into());
        return Ok(error_body_unread(
            &state,
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            format!("Content-Type must be application/json, got {got}"),
        ));
    }
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > state.max_request_bytes) {
        return Ok(error_body_unread(
            &state,
            StatusCode::PAYLOAD_TOO_LARGE,
            format!(
                "the body is larger than {} bytes (--max-request-bytes)",
                state.max_request_bytes
            ),
        ));
    }
    let (bytes, _budget) =
        match read_limited(body, state.max_request_bytes, &state.body_budget).await {
            Ok(b) => b,
            Err((status, msg)) => return Ok(error_body_unread(&state, status, msg)),
        };
    let started = Instant::now();
    let decision = match review_body(&bytes, &state.inject) {
        Ok(d) => d,
        Err(bad) => {
            state.metrics.observe(started.elapsed());
            return Ok(error(&state, StatusCode::BAD_REQUEST, bad.0));
        }
    };
    let json = match decision.to_json() {
        Ok(j) => j,
        Err(e) => {
            // Not reachable with serde_json values; answer 500 rather than panic.
            tracing::error!(error = %e, "could not serialise the AdmissionReview");
            return Ok(text(StatusCode::INTERNAL_SERVER_ERROR, "internal error\n"));
        }
    };
    let took = started.elapsed();
    state.metrics.review(
        decision.verdict,
        decision.warnings.len(),
        &decision.invalid_annotations,
        took,
    );
    let (verdict, reason) = match decision.verdict {
        Verdict::Injected => ("injected", ""),
        Verdict::Skipped(r) => ("skipped", r.as_str()),
    };
    tracing::info!(
        uid = %decision.uid,
        namespace = %decision.namespace,
        pod = %decision.pod,
        verdict,
        reason,
        warnings = ?decision.warnings,
        micros = took.as_micros() as u64,
        "admission review"
    );
    let mut r = Response::new(json.into());
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    Ok(r)
}

async fn recover(state: Arc<AppState>, err: Rejection) -> Result<Response, Infallible> {
    let (status, msg) = if err.is_not_found() {
        (
            StatusCode::NOT_FOUND,
            "not found; endpoints: POST /mutate, GET /healthz, GET /readyz, GET /metrics",
        )
    } else if err.find::<warp::reject::MethodNotAllowed>().is_some() {
        (
            StatusCode::METHOD_NOT_ALLOWED,
            "method not allowed; endpoints: POST /mutate, GET /healthz, GET /readyz, GET /metrics",
        )
    } else {
        (StatusCode::BAD_REQUEST, "bad request")
    };
    state.metrics.http_error(status.as_u16());
    Ok(text(status, format!("{msg}\n")))
}

/// `GET /healthz`: 200 while the process serves.
fn healthz() -> impl Filter<Extract = (Response,), Error = Rejection> + Clone + Send + Sync + 'static
{
    warp::path!("healthz")
        .and(warp::get())
        .map(|| text(StatusCode::OK, "ok\n"))
}

/// `GET /readyz`: 200 while `state.ready`, 503 from the moment shutdown is asked for.
fn readyz(
    state: Arc<AppState>,
) -> impl Filter<Extract = (Response,), Error = Rejection> + Clone + Send + Sync + 'static {
    warp::path!("readyz").and(warp::get()).map(move || {
        if state.ready.load(Ordering::Relaxed) {
            text(StatusCode::OK, "ready\n")
        } else {
            text(StatusCode::SERVICE_UNAVAILABLE, "shutting down\n")
        }
    })
}

/// The probe listener's routes: `GET /healthz` and `GET /readyz`, 404 for every other path
/// (405 for another method). Errors here are not counted in `http_errors_total`, which is
/// about the API server's side.
pub fn probe_routes(
    state: Arc<AppState>,
) -> impl Filter<Extract = (Response,), Error = Infallible> + Clone + Send + Sync + 'static {
    healthz()
        .or(readyz(state))
        .unify()
        .recover(|err: Rejection| async move {
            let (status, msg) = if err.find::<warp::reject::MethodNotAllowed>().is_some() {
                (
                    StatusCode::METHOD_NOT_ALLOWED,
                    "method not allowed; this is the probe port: GET /healthz, GET /readyz\n",
                )
            } else {
                (
                    StatusCode::NOT_FOUND,
                    "not found; this is the probe port: GET /healthz, GET /readyz (reviews and metrics are on the TLS port)\n",
                )
            };
            Ok::<_, Infallible>(text(status, msg))
        })
        .unify()
}

/// All routes: `POST /mutate`, `GET /healthz`, `GET /readyz`, `GET /metrics`.
pub fn routes(
    state: Arc<AppState>,
) -> impl Filter<Extract = (Response,), Error = Infallible> + Clone + Send + Sync + 'static {
    let with_state = {
        let s = state.clone();
        warp::any().map(move || s.clone())
    };
    let mutate = warp::path!("mutate")
        .and(warp::post())
        .and(with_state.clone())
        .and(warp::header::headers_cloned())
        .and(warp::body::stream())
        .and_then(mutate_handler);
    let (healthz, readyz) = (healthz(), readyz(state.clone()));
    let metrics = warp::path!("metrics")
        .and(warp::get())
        .and(with_state.clone())
        .map(|s: Arc<AppState>| {
            let mut r = Response::new(s.metrics.render().into());
            r.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
            );
            r
        });
    mutate
        .or(healthz)
        .unify()
        .or(readyz)
        .unify()
        .or(metrics)
        .unify()
        .recover(move |e| recover(state.clone(), e))
        .unify()
}

/// Timeouts and limits that protect the server from slow, idle and oversized clients.
///
/// Every phase of a connection is bounded: the TLS handshake, the time to the end of the
/// request headers, the time from the headers to the answer (body read + decision), the idle
/// time between requests, and the lingering close after an error answer. Memory is bounded by
/// `max_request_bytes` per request and `body_budget_bytes` over all requests being read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    /// TLS handshake.
    pub handshake_timeout: Duration,
    /// HTTP/1: from the connection (or the previous answer) to the end of the request headers.
    pub header_read_timeout: Duration,
    /// From the request headers to the answer, body included: 408 after it.
    pub request_deadline: Duration,
    /// A connection with no request in flight for this long is closed (HTTP/1 and h2 alike,
    /// so a client that never sends a request, or never finishes its headers, is closed too).
    pub idle_timeout: Duration,
    /// h2: PING interval, and how long to wait for the PONG before closing.
    pub h2_keep_alive_interval: Duration,
    /// h2: see `h2_keep_alive_interval`.
    pub h2_keep_alive_timeout: Duration,
    /// h2: concurrent streams per connection.
    pub h2_max_concurrent_streams: u32,
    /// After the server decided to close an HTTP/1 connection (an error answer while the
    /// client is still sending, a timeout), it sends its answer and FIN and keeps reading and
    /// discarding for at most this long, so that the close does not turn into a reset that
    /// destroys the answer at the client.
    pub linger_timeout: Duration,
    /// ... and at most this many bytes.
    pub linger_max_bytes: u64,
    /// Bytes of request bodies held in memory at once, over all requests. A request whose
    /// next chunk does not fit waits (within its deadline) for others to finish.
    pub body_budget_bytes: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            handshake_timeout: HANDSHAKE_TIMEOUT,
            header_read_timeout: HEADER_READ_TIMEOUT,
            request_deadline: REQUEST_DEADLINE,
            idle_timeout: IDLE_TIMEOUT,
            h2_keep_alive_interval: Duration::from_secs(10),
            h2_keep_alive_timeout: Duration::from_secs(5),
            h2_max_concurrent_streams: H2_MAX_CONCURRENT_STREAMS,
            linger_timeout: Duration::from_secs(2),
            linger_max_bytes: 16 << 20,
            body_budget_bytes: 32 << 20,
        }
    }
}

/// One open connection, as the accept loop and the idle watchdog see it.
#[derive(Debug)]
struct ConnState {
    id: u64,
    /// Requests being answered on this connection.
    inflight: AtomicUsize,
    /// When `inflight` last dropped to 0 (or the connection was accepted).
    idle_since: Mutex<Instant>,
    /// Still in the TLS handshake (or not started it): shed before established connections,
    /// because a client that comes back costs only an accept() until it handshakes.
    handshaking: AtomicBool,
    /// Chosen to be closed at the cap.
    shedding: AtomicBool,
    shed: Notify,
}

impl ConnState {
    /// How long the connection has had no request in flight; `None` while one is.
    fn idle_for(&self) -> Option<Duration> {
        if self.inflight.load(Ordering::Acquire) > 0 {
            return None;
        }
        Some(
            self.idle_since
                .lock()
                .map(|t| t.elapsed())
                .unwrap_or_default(),
        )
    }
}

/// Marks a request in flight on its connection for as long as it lives.
struct InFlight(Arc<ConnState>);

impl InFlight {
    fn enter(conn: Arc<ConnState>) -> Self {
        conn.inflight.fetch_add(1, Ordering::AcqRel);
        InFlight(conn)
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        if let Ok(mut t) = self.0.idle_since.lock() {
            *t = Instant::now();
        }
        self.0.inflight.fetch_sub(1, Ordering::AcqRel);
    }
}

/// Every open connection, so that the longest-idle one can be closed at the cap.
#[derive(Debug, Default)]
struct Registry {
    next_id: AtomicU64,
    conns: Mutex<HashMap<u64, Arc<ConnState>>>,
}

/// Removes its connection from the registry when dropped.
struct Registered {
    conn: Arc<ConnState>,
    registry: Arc<Registry>,
}

impl Drop for Registered {
    fn drop(&mut self) {
        if let Ok(mut m) = self.registry.conns.lock() {
            m.remove(&self.conn.id);
        }
    }
}

impl Registry {
    fn register(self: &Arc<Self>) -> Registered {
        let conn = Arc::new(ConnState {
            id: self.next_id.fetch_add(1, Ordering::Relaxed),
            inflight: AtomicUsize::new(0),
            idle_since: Mutex::new(Instant::now()),
            handshaking: AtomicBool::new(true),
            shedding: AtomicBool::new(false),
            shed: Notify::new(),
        });
        if let Ok(mut m) = self.conns.lock() {
            m.insert(conn.id, conn.clone());
        }
        Registered {
            conn,
            registry: self.clone(),
        }
    }

    /// Ask (at most) `n` idle connections (no request in flight, idle for at least
    /// `min_idle`) to close: those still in their TLS handshake first, then the ones idle for
    /// longest. Returns how many were asked; 0 when every connection is busy or new.
    fn shed(&self, n: usize, min_idle: Duration) -> usize {
        let Ok(m) = self.conns.lock() else {
            return 0;
        };
        // Sort key: handshaking before established, then longest idle first.
        let mut idle: Vec<((bool, Duration), Arc<ConnState>)> = m
            .values()
            .filter(|c| !c.shedding.load(Ordering::Relaxed))
            .filter_map(|c| {
                let d = c.idle_for()?;
                (d >= min_idle).then(|| ((c.handshaking.load(Ordering::Relaxed), d), c.clone()))
            })
            .collect();
        drop(m);
        let n = n.min(idle.len());
        if n == 0 {
            return 0;
        }
        idle.select_nth_unstable_by(n - 1, |a, b| b.0.cmp(&a.0));
        for (_, c) in &idle[..n] {
            c.shedding.store(true, Ordering::Relaxed);
            c.shed.notify_one();
        }
        n
    }
}

/// The routes as one connection serves them: each request is marked in flight (so the idle
/// watchdog and the shedding leave the connection alone) and bounded by the request deadline.
#[derive(Clone)]
struct ConnService<S> {
    inner: S,
    conn: Arc<ConnState>,
    deadline: Duration,
    metrics: Arc<Metrics>,
    http1: bool,
}

impl<S> hyper::service::Service<http::Request<Incoming>> for ConnService<S>
where
    S: hyper::service::Service<http::Request<Incoming>, Response = Response, Error = Infallible>,
    S::Future: Send + 'static,
{
    type Response = Response;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Response, Infallible>> + Send>>;

    fn call(&self, req: http::Request<Incoming>) -> Self::Future {
        let guard = InFlight::enter(self.conn.clone());
        let fut = self.inner.call(req);
        let (deadline, metrics, http1) = (self.deadline, self.metrics.clone(), self.http1);
        Box::pin(async move {
            let _guard = guard;
            match tokio::time::timeout(deadline, fut).await {
                Ok(Ok(mut r)) if !http1 => {
                    // Connection-specific headers are not allowed in HTTP/2 (RFC 9113 §8.2.2).
                    r.headers_mut().remove(header::CONNECTION);
                    Ok(r)
                }
                Ok(r) => r,
                Err(_) => {
                    metrics.http_error(StatusCode::REQUEST_TIMEOUT.as_u16());
                    tracing::debug!(
                        deadline_ms = deadline.as_millis() as u64,
                        "request not complete before the deadline; 408"
                    );
                    let mut r = text(
                        StatusCode::REQUEST_TIMEOUT,
                        format!(
                            "the request was not complete within {} ms\n",
                            deadline.as_millis()
                        ),
                    );
                    if http1 {
                        r.headers_mut()
                            .insert(header::CONNECTION, HeaderValue::from_static("close"));
                    }
                    Ok(r)
                }
            }
        })
    }
}

/// Why a connection is being closed by the server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Close {
    Idle,
    Shed,
    Stop,
}

/// A connection slot from `permits`, for the accept loops of both listeners. At the cap, up to
/// `batch` of the connections idle longest (at least `min_idle`) are shed (`on_shed` gets how
/// many), retried every `min_idle / 4` as connections age, until a slot frees. Shedding a batch
/// means a flood of new connections waits for a close once per batch, not once per connection.
/// `None` when `cancel` completes first (or the semaphore was closed).
async fn slot_or_shed(
    permits: &Arc<Semaphore>,
    registry: &Registry,
    batch: usize,
    min_idle: Duration,
    mut on_shed: impl FnMut(usize),
    cancel: impl Future<Output = ()>,
) -> Option<OwnedSemaphorePermit> {
    let mut cancel = std::pin::pin!(cancel);
    loop {
        if let Ok(p) = permits.clone().try_acquire_owned() {
            return Some(p);
        }
        on_shed(registry.shed(batch, min_idle));
        tokio::select! {
            _ = &mut cancel => return None,
            p = permits.clone().acquire_owned() => return p.ok(),
            _ = tokio::time::sleep(min_idle / 4) => {}
        }
    }
}

async fn stopped(stop: &mut watch::Receiver<bool>) {
    loop {
        if *stop.borrow_and_update() {
            return;
        }
        if stop.changed().await.is_err() {
            return std::future::pending().await;
        }
    }
}

/// Resolves when the connection should be closed: idle too long, shed at the cap, or the
/// server is stopping.
async fn close_signal(
    conn: &ConnState,
    idle_timeout: Duration,
    stop: &mut watch::Receiver<bool>,
) -> Close {
    loop {
        let wait = match conn.idle_for() {
            Some(d) if d >= idle_timeout => return Close::Idle,
            Some(d) => idle_timeout - d,
            None => idle_timeout,
        };
        tokio::select! {
            _ = tokio::time::sleep(wait) => {}
            _ = conn.shed.notified() => return Close::Shed,
            _ = stopped(stop) => return Close::Stop,
        }
    }
}

/// Read and discard what the client still sends, after our answer and our FIN, for a
/// bounded time and byte count; then the socket is dropped.
async fn linger(mut tls: tokio_rustls::server::TlsStream<TcpStream>, limits: &Limits) {
    let deadline = tokio::time::Instant::now() + limits.linger_timeout;
    if tokio::time::timeout_at(deadline, tls.shutdown())
        .await
        .is_err()
    {
        return;
    }
    let (mut tcp, _) = tls.into_inner();
    let mut buf = vec![0u8; 16 * 1024];
    let mut seen = 0u64;
    while seen <= limits.linger_max_bytes {
        match tokio::time::timeout_at(deadline, tcp.read(&mut buf)).await {
            Ok(Ok(n)) if n > 0 => seen += n as u64,
            _ => break,
        }
    }
}

/// One TCP connection from accept to close.
#[allow(clippy::too_many_arguments)] // the pieces a connection task owns
async fn connection<S>(
    tcp: TcpStream,
    peer: SocketAddr,
    acceptor: TlsAcceptor,
    routes: S,
    conn: Arc<ConnState>,
    limits: Arc<Limits>,
    mut stop: watch::Receiver<bool>,
    metrics: Arc<Metrics>,
) where
    S: hyper::service::Service<http::Request<Incoming>, Response = Response, Error = Infallible>
        + Clone
        + Send
        + Sync
        + Unpin
        + 'static,
    S::Future: Send + 'static,
{
    let tls = tokio::select! {
        r = tokio::time::timeout(limits.handshake_timeout, acceptor.accept(tcp)) => match r {
            Ok(Ok(tls)) => tls,
            Ok(Err(e)) => {
                metrics.tls_handshake_error();
                tracing::debug!(%peer, error = %e, "TLS handshake failed");
                return;
            }
            Err(_) => {
                metrics.tls_handshake_error();
                metrics.connection_closed("handshake_timeout");
                tracing::debug!(%peer, "TLS handshake timed out");
                return;
            }
        },
        _ = conn.shed.notified() => return,
        _ = stopped(&mut stop) => return,
    };
    conn.handshaking.store(false, Ordering::Relaxed);
    let h2 = tls.get_ref().1.alpn_protocol() == Some(b"h2");
    let svc = ConnService {
        inner: routes,
        conn: conn.clone(),
        deadline: limits.request_deadline,
        metrics: metrics.clone(),
        http1: !h2,
    };
    metrics.connection(true);
    let closed = if h2 {
        let mut b = hyper::server::conn::http2::Builder::new(TokioExecutor::new());
        b.timer(TokioTimer::new())
            .max_concurrent_streams(limits.h2_max_concurrent_streams)
            .keep_alive_interval(limits.h2_keep_alive_interval)
            .keep_alive_timeout(limits.h2_keep_alive_timeout)
            .max_header_list_size(64 * 1024)
            .max_pending_accept_reset_streams(limits.h2_max_concurrent_streams as usize);
        let c = b.serve_connection(TokioIo::new(tls), svc);
        let mut c = std::pin::pin!(c);
        let why = tokio::select! {
            r = c.as_mut() => {
                if let Err(e) = r {
                    tracing::debug!(%peer, error = %e, "connection ended with an error");
                }
                None
            }
            why = close_signal(&conn, limits.idle_timeout, &mut stop) => Some(why),
        };
        if let Some(why) = why {
            c.as_mut().graceful_shutdown();
            finish(c, why, &limits).await;
        }
        why
    } else {
        let mut b = hyper::server::conn::http1::Builder::new();
        b.timer(TokioTimer::new())
            .header_read_timeout(limits.header_read_timeout)
            .max_buf_size(64 * 1024);
        let mut c = b.serve_connection(TokioIo::new(tls), svc);
        let why = tokio::select! {
            r = std::future::poll_fn(|cx| c.poll_without_shutdown(cx)) => {
                if let Err(e) = r {
                    tracing::debug!(%peer, error = %e, "connection ended with an error");
                }
                None
            }
            why = close_signal(&conn, limits.idle_timeout, &mut stop) => Some(why),
        };
        if let Some(why) = why {
            std::pin::Pin::new(&mut c).graceful_shutdown();
            finish(
                std::future::poll_fn(|cx| c.poll_without_shutdown(cx)),
                why,
                &limits,
            )
            .await;
        }
        let tls = c.into_parts().io.into_inner();
        if why != Some(Close::Shed) {
            linger(tls, &limits).await;
        }
        why
    };
    if closed == Some(Close::Idle) {
        metrics.connection_closed("idle");
    }
    metrics.connection(false);
}

/// Let a connection that was asked to close finish: in-flight requests complete (bounded by
/// their deadline; at shutdown by the drain timeout).
async fn finish<F: Future>(c: F, why: Close, limits: &Limits) {
    if why == Close::Stop {
        c.await;
    } else {
        let _ = tokio::time::timeout(limits.request_deadline, c).await;
    }
}

/// Serve HTTPS on `listener` until `shutdown` resolves, then drain (at most
/// `settings.shutdown_timeout`). `state.ready` is cleared by the caller's shutdown future
/// or here, whichever is first.
pub async fn serve(
    listener: TcpListener,
    store: Arc<CertStore>,
    state: Arc<AppState>,
    settings: &ServerSettings,
    limits: Limits,
    shutdown: impl Future<Output = ()>,
) {
    let acceptor = TlsAcceptor::from(store.server_config());
    let routes = TowerToHyperService::new(warp::service(routes(state.clone())));
    let limits = Arc::new(limits);
    let registry = Arc::new(Registry::default());
    let (stop_tx, stop_rx) = watch::channel(false);
    let mut tasks = JoinSet::new();
    let permits = Arc::new(Semaphore::new(settings.max_connections));
    let shed_batch = (settings.max_connections / 64).clamp(1, 64);
    let mut shutdown = std::pin::pin!(shutdown);
    state.ready.store(true, Ordering::Relaxed);

    loop {
        while tasks.try_join_next().is_some() {}
        let (tcp, peer) = tokio::select! {
            _ = &mut shutdown => break,
            r = listener.accept() => match r {
                Ok(x) => x,
                Err(e) => {
                    // EMFILE and friends: make room by closing an idle connection, and back
                    // off instead of spinning.
                    tracing::warn!(error = %e, "accept failed");
                    for _ in 0..registry.shed(shed_batch, SHED_MIN_IDLE) {
                        state.metrics.connection_closed("shed");
                    }
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        // At the cap, the connections idle for longest (or still in their TLS handshake) are
        // closed to make room: idle clients cannot lock out the API server or the kubelet's
        // probes. Connections with a request in flight, or that connected (or were answered)
        // less than SHED_MIN_IDLE ago, are never shed: a new client has time to send its
        // request.
        let shed = |n| {
            for _ in 0..n {
                state.metrics.connection_closed("shed");
            }
        };
        let slot = slot_or_shed(
            &permits,
            &registry,
            shed_batch,
            SHED_MIN_IDLE,
            shed,
            &mut shutdown,
        );
        let Some(permit) = slot.await else { break };
        let _ = tcp.set_nodelay(true);
        let registered = registry.register();
        tasks.spawn(
            connection(
                tcp,
                peer,
                acceptor.clone(),
                routes.clone(),
                registered.conn.clone(),
                limits.clone(),
                stop_rx.clone(),
                state.metrics.clone(),
            )
            .map(move |()| {
                drop(permit);
                drop(registered);
            }),
        );
    }

    state.ready.store(false, Ordering::Relaxed);
    drop(listener);
    tracing::info!(
        open = tasks.len(),
        "listener closed; draining open connections"
    );
    let _ = stop_tx.send(true);
    let drained = tokio::time::timeout(settings.shutdown_timeout, async {
        while tasks.join_next().await.is_some() {}
    })
    .await;
    if drained.is_err() {
        tracing::warn!(
            timeout_ms = settings.shutdown_timeout.as_millis() as u64,
            open = tasks.len(),
            "drain timed out; closing the remaining connections"
        );
        tasks.shutdown().await;
    }
}

/// One probe connection: HTTP/1, one request, at most [`PROBE_TIMEOUT`] from accept to close.
async fn probe_connection<S>(
    tcp: TcpStream,
    routes: S,
    conn: Arc<ConnState>,
    mut stop: watch::Receiver<bool>,
    metrics: Arc<Metrics>,
) where
    S: hyper::service::Service<http::Request<Incoming>, Response = Response, Error = Infallible>
        + Clone
        + Send
        + Sync
        + Unpin
        + 'static,
    S::Future: Send + 'static,
{
    let svc = ConnService {
        inner: routes,
        conn: conn.clone(),
        deadline: PROBE_TIMEOUT,
        metrics,
        http1: true,
    };
    let mut b = hyper::server::conn::http1::Builder::new();
    b.timer(TokioTimer::new())
        .header_read_timeout(PROBE_TIMEOUT)
        .keep_alive(false)
        .max_buf_size(16 * 1024);
    let c = b.serve_connection(TokioIo::new(tcp), svc);
    let mut c = std::pin::pin!(c);
    let stopping = tokio::select! {
        _ = tokio::time::timeout(PROBE_TIMEOUT, c.as_mut()) => false,
        _ = conn.shed.notified() => false,
        _ = stopped(&mut stop) => true,
    };
    if stopping {
        // A request being answered is finished (within PROBE_TIMEOUT), then the close.
        c.as_mut().graceful_shutdown();
        let _ = tokio::time::timeout(PROBE_TIMEOUT, c).await;
    }
}

/// Serve the probe routes ([`probe_routes`]) over plain HTTP on `listener` until `stop` turns
/// true; then close the listener and the open probe connections (each is at most
/// [`PROBE_TIMEOUT`] old anyway).
pub async fn serve_probes(
    listener: TcpListener,
    state: Arc<AppState>,
    mut stop: watch::Receiver<bool>,
) {
    let routes = TowerToHyperService::new(warp::service(probe_routes(state.clone())));
    let registry = Arc::new(Registry::default());
    let permits = Arc::new(Semaphore::new(PROBE_MAX_CONNECTIONS));
    let mut tasks = JoinSet::new();
    loop {
        while tasks.try_join_next().is_some() {}
        let tcp = tokio::select! {
            _ = stopped(&mut stop) => break,
            r = listener.accept() => match r {
                Ok((tcp, _)) => tcp,
                Err(e) => {
                    tracing::warn!(error = %e, "probe listener: accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        // At the cap, close connections that sent nothing (a kubelet probe sends its request
        // at once); the others end within PROBE_TIMEOUT anyway.
        let batch = PROBE_MAX_CONNECTIONS / 4;
        let slot = slot_or_shed(
            &permits,
            &registry,
            batch,
            PROBE_SHED_MIN_IDLE,
            |_| {},
            stopped(&mut stop),
        );
        let Some(permit) = slot.await else { break };
        let _ = tcp.set_nodelay(true);
        let registered = registry.register();
        tasks.spawn(
            probe_connection(
                tcp,
                routes.clone(),
                registered.conn.clone(),
                stop.clone(),
                state.metrics.clone(),
            )
            .map(move |()| {
                drop(permit);
                drop(registered);
            }),
        );
    }
    drop(listener);
    let _ = tokio::time::timeout(PROBE_TIMEOUT, async {
        while tasks.join_next().await.is_some() {}
    })
    .await;
    tasks.shutdown().await;
}

/// Load the certificate, start the reload watcher, and serve until `stop` resolves. After
/// `stop`: `/readyz` says 503 at once, connections are still served for the
/// `shutdown_delay`, then the listener closes and open requests drain.
pub async fn run(
    listener: TcpListener,
    settings: &ServerSettings,
    inject: InjectSettings,
    metrics: Arc<Metrics>,
    stop: impl Future<Output = ()> + Send + 'static,
) -> Result<(), crate::tls::TlsError> {
    run_with_limits(listener, settings, Limits::default(), inject, metrics, stop).await
}

/// [`run`] with other [`Limits`] than the defaults.
pub async fn run_with_limits(
    listener: TcpListener,
    settings: &ServerSettings,
    limits: Limits,
    inject: InjectSettings,
    metrics: Arc<Metrics>,
    stop: impl Future<Output = ()> + Send + 'static,
) -> Result<(), crate::tls::TlsError> {
    run_with_probes(listener, None, settings, limits, inject, metrics, stop).await
}

/// [`run_with_limits`], and the probe listener ([`serve_probes`]) on `probes` when given (the
/// binary binds it from `settings.probe_addr`). The probe listener answers through the
/// shutdown delay and the drain (`/readyz` 503), and closes after the TLS listener.
pub async fn run_with_probes(
    listener: TcpListener,
    probes: Option<TcpListener>,
    settings: &ServerSettings,
    limits: Limits,
    inject: InjectSettings,
    metrics: Arc<Metrics>,
    stop: impl Future<Output = ()> + Send + 'static,
) -> Result<(), crate::tls::TlsError> {
    let store = CertStore::load(&settings.tls_cert, &settings.tls_key, &metrics)?;
    let state = Arc::new(AppState {
        inject,
        metrics: metrics.clone(),
        ready: AtomicBool::new(false),
        max_request_bytes: settings.max_request_bytes,
        body_budget: Arc::new(Semaphore::new(limits.body_budget_bytes)),
    });
    let (watch_stop_tx, watch_stop_rx) = tokio::sync::oneshot::channel::<()>();
    let watcher = tokio::spawn(crate::tls::watch(
        store.clone(),
        metrics,
        settings.tls_reload_interval,
        async move {
            let _ = watch_stop_rx.await;
        },
    ));
    let delay = settings.shutdown_delay;
    let st = state.clone();
    let shutdown = async move {
        stop.await;
        st.ready.store(false, Ordering::Relaxed);
        tracing::info!(
            delay_ms = delay.as_millis() as u64,
            "shutdown requested; /readyz now 503, still serving during the delay"
        );
        tokio::time::sleep(delay).await;
    };
    let (probe_stop_tx, probe_stop_rx) = watch::channel(false);
    let probe_task = probes.map(|l| tokio::spawn(serve_probes(l, state.clone(), probe_stop_rx)));
    serve(listener, store, state, settings, limits, shutdown).await;
    let _ = probe_stop_tx.send(true);
    if let Some(t) = probe_task {
        let _ = t.await;
    }
    let _ = watch_stop_tx.send(());
    let _ = watcher.await;
    tracing::info!("stopped");
    Ok(())
}

/// Backlog of the listening socket: room in the kernel for a burst of new connections while
/// the accept loop makes room at the cap (tokio's default is 1024; Linux caps it at
/// `net.core.somaxconn`, 4096 by default).
pub const LISTEN_BACKLOG: u32 = 4096;

/// Bind `addr` for [`serve`] with [`LISTEN_BACKLOG`] and `SO_REUSEADDR` (a restart does not
/// wait for the old socket's TIME_WAIT).
pub fn bind(addr: SocketAddr) -> std::io::Result<TcpListener> {
    let socket = if addr.is_ipv4() {
        tokio::net::TcpSocket::new_v4()?
    } else {
        tokio::net::TcpSocket::new_v6()?
    };
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(LISTEN_BACKLOG)
}

/// Raise this process's soft open-file limit to its hard limit and return the new soft limit.
/// Every connection costs one descriptor; the connection cap is kept below this.
pub fn raise_nofile_limit() -> std::io::Result<u64> {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit/setrlimit only read and write the struct passed by pointer.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    if lim.rlim_cur < lim.rlim_max {
        let want = libc::rlimit {
            rlim_cur: lim.rlim_max,
            rlim_max: lim.rlim_max,
        };
        // SAFETY: as above.
        if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &want) } == 0 {
            lim.rlim_cur = lim.rlim_max;
        }
    }
    Ok(lim.rlim_cur)
}

/// The connection cap that fits `nofile` descriptors, keeping 64 for the listener, the
/// certificate files and the runtime.
pub fn connection_cap(wanted: usize, nofile: u64) -> usize {
    let fit = nofile.saturating_sub(64).max(1);
    wanted.min(usize::try_from(fit).unwrap_or(usize::MAX))
}
