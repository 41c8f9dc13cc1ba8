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
//! [`GracefulShutdown`]: hyper_util::server::graceful::GracefulShutdown

use std::convert::Infallible;
use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::{Buf, BufMut, Bytes, BytesMut};
use futures_util::{Stream, StreamExt};
use http::{header, HeaderMap, HeaderValue, StatusCode};
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio_rustls::TlsAcceptor;
use warp::reply::Response;
use warp::{Filter, Rejection};

use crate::metrics::Metrics;
use crate::mutate::{review_body, Verdict};
use crate::settings::{InjectSettings, ServerSettings};
use crate::tls::CertStore;

/// How long a client may take for the TLS handshake.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a client may take to send request headers.
pub const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);

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

async fn read_limited<S, B>(body: S, limit: u64) -> Result<Bytes, (StatusCode, String)>
where
    S: Stream<Item = Result<B, warp::Error>>,
    B: Buf,
{
    let mut body = std::pin::pin!(body);
    let mut buf = BytesMut::new();
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
        buf.put(chunk);
    }
    Ok(buf.freeze())
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
        return Ok(error(
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
        return Ok(error(
            &state,
            StatusCode::PAYLOAD_TOO_LARGE,
            format!(
                "the body is larger than {} bytes (--max-request-bytes)",
                state.max_request_bytes
            ),
        ));
    }
    let bytes = match read_limited(body, state.max_request_bytes).await {
        Ok(b) => b,
        Err((status, msg)) => return Ok(error(&state, status, msg)),
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
    let healthz = warp::path!("healthz")
        .and(warp::get())
        .map(|| text(StatusCode::OK, "ok\n"));
    let readyz = warp::path!("readyz")
        .and(warp::get())
        .and(with_state.clone())
        .map(|s: Arc<AppState>| {
            if s.ready.load(Ordering::Relaxed) {
                text(StatusCode::OK, "ready\n")
            } else {
                text(StatusCode::SERVICE_UNAVAILABLE, "shutting down\n")
            }
        });
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

/// Serve HTTPS on `listener` until `shutdown` resolves, then drain (at most
/// `settings.shutdown_timeout`). `state.ready` is cleared by the caller's shutdown future
/// or here, whichever is first.
pub async fn serve(
    listener: TcpListener,
    store: Arc<CertStore>,
    state: Arc<AppState>,
    settings: &ServerSettings,
    shutdown: impl Future<Output = ()>,
) {
    let acceptor = TlsAcceptor::from(store.server_config());
    let service = warp::service(routes(state.clone()));
    let graceful = GracefulShutdown::new();
    let permits = Arc::new(Semaphore::new(settings.max_connections));
    let mut shutdown = std::pin::pin!(shutdown);
    state.ready.store(true, Ordering::Relaxed);

    loop {
        let permit = tokio::select! {
            _ = &mut shutdown => break,
            p = permits.clone().acquire_owned() => match p {
                Ok(p) => p,
                Err(_) => break,
            },
        };
        let (tcp, peer) = tokio::select! {
            _ = &mut shutdown => break,
            r = listener.accept() => match r {
                Ok(x) => x,
                Err(e) => {
                    // EMFILE and friends: back off instead of spinning.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let _ = tcp.set_nodelay(true);
        let acceptor = acceptor.clone();
        let service = service.clone();
        let watcher = graceful.watcher();
        let metrics = state.metrics.clone();
        tokio::spawn(async move {
            let _permit = permit;
            let tls = match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(tcp)).await {
                Ok(Ok(tls)) => tls,
                Ok(Err(e)) => {
                    metrics.tls_handshake_error();
                    tracing::debug!(%peer, error = %e, "TLS handshake failed");
                    return;
                }
                Err(_) => {
                    metrics.tls_handshake_error();
                    tracing::debug!(%peer, "TLS handshake timed out");
                    return;
                }
            };
            metrics.connection(true);
            let mut builder = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
            builder
                .http1()
                .timer(TokioTimer::new())
                .header_read_timeout(HEADER_READ_TIMEOUT);
            builder
                .http2()
                .timer(TokioTimer::new())
                .max_concurrent_streams(256);
            let conn =
                builder.serve_connection(TokioIo::new(tls), TowerToHyperService::new(service));
            if let Err(e) = watcher.watch(conn).await {
                tracing::debug!(%peer, error = %e, "connection ended with an error");
            }
            metrics.connection(false);
        });
    }

    state.ready.store(false, Ordering::Relaxed);
    drop(listener);
    tracing::info!(
        open = graceful.count(),
        "listener closed; draining open connections"
    );
    if tokio::time::timeout(settings.shutdown_timeout, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!(
            timeout_ms = settings.shutdown_timeout.as_millis() as u64,
            "drain timed out; closing the remaining connections"
        );
    }
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
    let store = CertStore::load(&settings.tls_cert, &settings.tls_key, &metrics)?;
    let state = Arc::new(AppState {
        inject,
        metrics: metrics.clone(),
        ready: AtomicBool::new(false),
        max_request_bytes: settings.max_request_bytes,
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
    serve(listener, store, state, settings, shutdown).await;
    let _ = watch_stop_tx.send(());
    let _ = watcher.await;
    tracing::info!("stopped");
    Ok(())
}
