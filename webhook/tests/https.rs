//! Over real HTTPS: the server runs in-process on 127.0.0.1:0 with certificates from a test CA
//! (rcgen); a real client (reqwest + rustls, trusting only that CA) posts reviews, rotates the
//! files, sends malformed requests, and reads /metrics.

mod common;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use common::*;
use reqwest::StatusCode;
use serde_json::{json, Value};
use tcp_sniffer_webhook::metrics::Metrics;
use tcp_sniffer_webhook::server;
use tcp_sniffer_webhook::settings::{InjectSettings, ServerSettings};
use tokio::sync::oneshot;

const LIMIT: u64 = 64 * 1024;

struct Running {
    addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<()>,
    pki: TestPki,
    first_der: Vec<u8>,
}

async fn start(tag: &str) -> Running {
    start_with(tag, Duration::from_secs(5)).await
}

/// [`start`] with the given drain timeout.
async fn start_with(tag: &str, shutdown_timeout: Duration) -> Running {
    let pki = TestPki::new(tag);
    let first_der = pki.install("first");
    start_on(pki, first_der, shutdown_timeout).await
}

/// Serve the certificate already installed in `pki`.
async fn start_on(pki: TestPki, first_der: Vec<u8>, shutdown_timeout: Duration) -> Running {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let settings = ServerSettings {
        listen: addr,
        tls_cert: pki.cert_path(),
        tls_key: pki.key_path(),
        tls_reload_interval: Duration::from_millis(100),
        max_request_bytes: LIMIT,
        max_connections: 64,
        probe_addr: None,
        shutdown_delay: Duration::from_millis(0),
        shutdown_timeout,
    };
    let (tx, rx) = oneshot::channel::<()>();
    let task = tokio::spawn(async move {
        server::run(
            listener,
            &settings,
            InjectSettings::with_image("tcp-sniffer:test"),
            Arc::new(Metrics::default()),
            async move {
                let _ = rx.await;
            },
        )
        .await
        .expect("server runs");
    });
    Running {
        addr,
        stop: Some(tx),
        task,
        pki,
        first_der,
    }
}

impl Running {
    /// A client trusting only the test CA. TLS session resumption is off so every new
    /// connection does a full handshake and sees the certificate served right now.
    fn client(&self, http1_only: bool) -> reqwest::Client {
        use rustls::pki_types::pem::PemObject;
        let mut roots = rustls::RootCertStore::empty();
        for c in rustls::pki_types::CertificateDer::pem_slice_iter(self.pki.ca_pem.as_bytes()) {
            roots.add(c.unwrap()).unwrap();
        }
        let mut cfg = rustls::ClientConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
        cfg.resumption = rustls::client::Resumption::disabled();
        cfg.alpn_protocols = if http1_only {
            vec![b"http/1.1".to_vec()]
        } else {
            vec![b"h2".to_vec(), b"http/1.1".to_vec()]
        };
        let mut b = reqwest::Client::builder()
            .use_preconfigured_tls(cfg)
            .resolve(SERVER_NAME, self.addr)
            .tls_info(true)
            .pool_max_idle_per_host(0)
            .timeout(Duration::from_secs(10));
        if http1_only {
            b = b.http1_only();
        }
        b.build().unwrap()
    }

    fn url(&self, path: &str) -> String {
        format!("https://{SERVER_NAME}:{}{path}", self.addr.port())
    }

    async fn stop(mut self) {
        let _ = self.stop.take().unwrap().send(());
        tokio::time::timeout(DEADLINE, self.task)
            .await
            .expect("stops in time")
            .unwrap();
    }
}

fn peer_der(resp: &reqwest::Response) -> Vec<u8> {
    resp.extensions()
        .get::<reqwest::tls::TlsInfo>()
        .and_then(|i| i.peer_certificate())
        .expect("peer certificate")
        .to_vec()
}

fn review_body() -> Vec<u8> {
    serde_json::to_vec(&review_for(&fixture("pods/several-containers.json"))).unwrap()
}

async fn post_review(c: &reqwest::Client, r: &Running) -> reqwest::Response {
    c.post(r.url("/mutate"))
        .header("content-type", "application/json")
        .body(review_body())
        .send()
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reviews_over_https_http1_and_h2() {
    let r = start("reviews").await;
    for http1 in [true, false] {
        let c = r.client(http1);
        let resp = post_review(&c, &r).await;
        assert_eq!(resp.status(), StatusCode::OK);
        assert_eq!(
            resp.version(),
            if http1 {
                reqwest::Version::HTTP_11
            } else {
                reqwest::Version::HTTP_2
            }
        );
        assert_eq!(resp.headers()["content-type"], "application/json");
        assert_eq!(peer_der(&resp), r.first_der);
        let answer: Value = resp.json().await.unwrap();
        let resp = response_of(&answer, "3f1c2b7e-8d4a-4c55-9a0e-1b2c3d4e5f60");
        let patched = apply(&resp, &fixture("pods/several-containers.json")).unwrap();
        let pod = as_pod(&patched);
        // Native sidecar (the default): the first init container.
        assert_eq!(
            pod.spec.unwrap().init_containers.unwrap()[0].name,
            "tcp-sniffer"
        );
    }
    // The real GKE document, content-type with parameters.
    let c = r.client(true);
    let resp = c
        .post(r.url("/mutate"))
        .header("content-type", "application/json; charset=utf-8")
        .body(serde_json::to_vec(&fixture("gke-echo-pod.json")).unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let answer: Value = resp.json().await.unwrap();
    assert!(response_of(&answer, "0c9a8d74-9cb7-44dd-b98e-09fd62def2f4")
        .get("patch")
        .is_some());
    r.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_requests_get_clear_statuses() {
    let r = start("malformed").await;
    let c = r.client(true);
    let post = |ct: Option<&'static str>, body: Vec<u8>| {
        let mut req = c.post(r.url("/mutate")).body(body);
        if let Some(ct) = ct {
            req = req.header("content-type", ct);
        }
        req.send()
    };
    let json = Some("application/json");
    let cases: Vec<(Option<&str>, Vec<u8>, StatusCode, &str)> = vec![
        (
            Some("text/plain"),
            review_body(),
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "application/json",
        ),
        (
            None,
            review_body(),
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "got none",
        ),
        (
            Some("application/jsonx"),
            review_body(),
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "application/json",
        ),
        (
            json,
            b"{\"apiVersion\":".to_vec(),
            StatusCode::BAD_REQUEST,
            "not valid JSON",
        ),
        (
            json,
            b"".to_vec(),
            StatusCode::BAD_REQUEST,
            "not valid JSON",
        ),
        (
            json,
            br#"{"apiVersion":"v1","kind":"Pod"}"#.to_vec(),
            StatusCode::BAD_REQUEST,
            "admission.k8s.io/v1",
        ),
        (
            json,
            br#"{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview"}"#.to_vec(),
            StatusCode::BAD_REQUEST,
            "no request",
        ),
        (
            json,
            vec![b' '; LIMIT as usize + 1],
            StatusCode::PAYLOAD_TOO_LARGE,
            "larger than",
        ),
    ];
    for (ct, body, status, text) in cases {
        let resp = match post(ct, body).await {
            Ok(r) => r,
            // The server answers 413 from Content-Length without reading the body and then
            // closes; the client may see the reset while still sending. Counted below.
            Err(e) if status == StatusCode::PAYLOAD_TOO_LARGE => {
                eprintln!("413 case: client saw {e}");
                continue;
            }
            Err(e) => panic!("{ct:?}: {e}"),
        };
        assert_eq!(resp.status(), status, "{ct:?}");
        let t = resp.text().await.unwrap();
        assert!(t.contains(text), "{status}: {t:?}");
    }
    // A chunked body (no Content-Length) over the limit is cut off too.
    let chunks: Vec<Result<Vec<u8>, std::io::Error>> =
        (0..20).map(|_| Ok(vec![b' '; 8 * 1024])).collect();
    let resp = c
        .post(r.url("/mutate"))
        .header("content-type", "application/json")
        .body(reqwest::Body::wrap_stream(futures_util::stream::iter(
            chunks,
        )))
        .send()
        .await;
    // The server may answer before the client finished sending; either way no 200.
    if let Ok(resp) = resp {
        assert_eq!(resp.status(), StatusCode::PAYLOAD_TOO_LARGE);
    }
    // Routing errors.
    assert_eq!(
        c.get(r.url("/mutate")).send().await.unwrap().status(),
        StatusCode::METHOD_NOT_ALLOWED
    );
    assert_eq!(
        c.get(r.url("/nope")).send().await.unwrap().status(),
        StatusCode::NOT_FOUND
    );
    // The server is fine afterwards.
    assert_eq!(post_review(&c, &r).await.status(), StatusCode::OK);
    let metrics = metrics_text(&r, &c).await;
    for line in [
        "tcp_sniffer_webhook_http_errors_total{code=\"415\"} 3",
        "tcp_sniffer_webhook_http_errors_total{code=\"400\"} 4",
        "tcp_sniffer_webhook_http_errors_total{code=\"405\"} 1",
        "tcp_sniffer_webhook_http_errors_total{code=\"404\"} 1",
        "tcp_sniffer_webhook_reviews_total 1",
    ] {
        assert!(
            metrics.lines().any(|l| l == line),
            "missing {line:?}:\n{metrics}"
        );
    }
    let n413: u64 = metrics
        .lines()
        .find_map(|l| l.strip_prefix("tcp_sniffer_webhook_http_errors_total{code=\"413\"} "))
        .unwrap()
        .parse()
        .unwrap();
    assert!(n413 >= 1, "{metrics}");
    r.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_ready_and_metrics() {
    let r = start("health").await;
    let c = r.client(false);
    let h = c.get(r.url("/healthz")).send().await.unwrap();
    assert_eq!(h.status(), StatusCode::OK);
    assert_eq!(
        c.get(r.url("/readyz")).send().await.unwrap().status(),
        StatusCode::OK
    );
    // One of each outcome.
    for file in [
        "several-containers.json",
        "no-ports.json",
        "opt-out.json",
        "invalid-annotations.json",
    ] {
        let body = serde_json::to_vec(&review_for(&fixture(&format!("pods/{file}")))).unwrap();
        let resp = c
            .post(r.url("/mutate"))
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::OK);
    }
    let resp = c.get(r.url("/metrics")).send().await.unwrap();
    assert_eq!(
        resp.headers()["content-type"],
        "text/plain; version=0.0.4; charset=utf-8"
    );
    let m = resp.text().await.unwrap();
    for line in [
        "tcp_sniffer_webhook_reviews_total 4",
        "tcp_sniffer_webhook_injected_total 2",
        "tcp_sniffer_webhook_skipped_total{reason=\"no_ports\"} 1",
        "tcp_sniffer_webhook_skipped_total{reason=\"opted_out\"} 1",
        "tcp_sniffer_webhook_warnings_total 6",
        "tcp_sniffer_webhook_invalid_annotations_total{annotation=\"tcp-sniffer.dev/sample-rate\"} 1",
        "tcp_sniffer_webhook_mutate_duration_seconds_count 4",
        "tcp_sniffer_webhook_mutate_duration_seconds_bucket{le=\"+Inf\"} 4",
        "tcp_sniffer_webhook_tls_reloads_total 0",
    ] {
        assert!(m.lines().any(|l| l == line), "missing {line:?}:\n{m}");
    }
    r.stop().await;
}

/// The `/metrics` page.
async fn metrics_text(r: &Running, c: &reqwest::Client) -> String {
    c.get(r.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
}

/// A gauge or counter from `/metrics`.
async fn metric(r: &Running, c: &reqwest::Client, name: &str) -> u64 {
    let m = metrics_text(r, c).await;
    m.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' '))
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("{name} not in /metrics:\n{m}"))
}

/// Wait until the server has counted `n` failed reloads (no fixed sleeps: CI may be slow).
async fn wait_for_reload_errors(r: &Running, c: &reqwest::Client, n: u64) {
    wait_until_async(&format!("reload error {n} to be counted"), async || {
        metric(r, c, "tcp_sniffer_webhook_tls_reload_errors_total").await >= n
    })
    .await;
}

async fn wait_for_cert(r: &Running, c: &reqwest::Client, want: &[u8]) {
    wait_until_async("the new certificate to be served", async || {
        peer_der(&c.get(r.url("/healthz")).send().await.unwrap()) == want
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn certificate_rotation_without_dropped_requests() {
    let r = start("rotate").await;
    let c = r.client(true);
    assert_eq!(
        peer_der(&c.get(r.url("/healthz")).send().await.unwrap()),
        r.first_der
    );

    // Load in the background during every rotation: no request may fail.
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let load = {
        let (c, url, stop) = (r.client(false), r.url("/mutate"), stop.clone());
        tokio::spawn(async move {
            let mut n = 0u32;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let resp = c
                    .post(&url)
                    .header("content-type", "application/json")
                    .body(review_body())
                    .send()
                    .await;
                let resp = resp.expect("no request is dropped during rotation");
                assert_eq!(resp.status(), StatusCode::OK);
                n += 1;
            }
            n
        })
    };

    // 1. A new certificate is picked up.
    let second = r.pki.install("second");
    wait_for_cert(&r, &c, &second).await;

    // 2. A broken file keeps the old certificate in use, and is counted.
    r.pki.write_atomically(
        &r.pki.cert_path(),
        "-----BEGIN CERTIFICATE-----\nnot base64!\n-----END CERTIFICATE-----\n",
    );
    wait_for_reload_errors(&r, &c, 1).await;
    assert_eq!(
        peer_der(&c.get(r.url("/healthz")).send().await.unwrap()),
        second
    );

    // 3. A key that does not match the certificate is refused too.
    let (cert3, _key3, _) = r.pki.issue("third");
    r.pki.write_atomically(&r.pki.cert_path(), &cert3);
    wait_for_reload_errors(&r, &c, 2).await;
    assert_eq!(
        peer_der(&c.get(r.url("/healthz")).send().await.unwrap()),
        second
    );

    // 4. A good pair again.
    let fourth = r.pki.install("fourth");
    wait_for_cert(&r, &c, &fourth).await;

    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let n = load.await.unwrap();
    assert!(n > 0);

    let m = metrics_text(&r, &c).await;
    let get = |name: &str| -> u64 {
        m.lines()
            .find_map(|l| l.strip_prefix(name).and_then(|v| v.trim().parse().ok()))
            .unwrap_or_else(|| panic!("{name} missing:\n{m}"))
    };
    assert!(get("tcp_sniffer_webhook_tls_reloads_total ") >= 2);
    assert!(get("tcp_sniffer_webhook_tls_reload_errors_total ") >= 2);
    r.stop().await;
}

/// cert-manager renews the Secret; the kubelet swaps the mounted files (a new directory behind
/// the `..data` symlink). The webhook serves the new certificate without a restart, to new
/// connections, while an h2 connection opened before keeps working; a renewal that keeps the
/// private key (cert-manager's `rotationPolicy: Never`) is picked up too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn renewal_through_a_secret_volume_is_served_without_restart() {
    let pki = TestPki::new("secret-volume");
    let (cert, key, first) = pki.issue("first");
    pki.install_as_secret_volume(&cert, &key);
    assert!(std::fs::symlink_metadata(pki.cert_path())
        .unwrap()
        .file_type()
        .is_symlink());
    let r = start_on(pki, first.clone(), Duration::from_secs(5)).await;

    // A long-lived h2 connection (as the API server keeps), opened on the first certificate.
    let api = r.client(false);
    let resp = post_review(&api, &r).await;
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(peer_der(&resp), first);

    // 1. Renewal with a new key.
    let (cert2, key2, second) = r.pki.issue("second");
    r.pki.install_as_secret_volume(&cert2, &key2);
    let probe = r.client(true);
    wait_for_cert(&r, &probe, &second).await;
    let resp = post_review(&api, &r).await;
    assert_eq!(
        resp.status(),
        StatusCode::OK,
        "the open connection still works"
    );

    // 2. Renewal that keeps the key: only the certificate changes.
    let (cert3, third) = r.pki.issue_with_key("third-same-key", &key2);
    r.pki.install_as_secret_volume(&cert3, &key2);
    wait_for_cert(&r, &probe, &third).await;

    let c = r.client(true);
    let m = metrics_text(&r, &c).await;
    assert!(
        m.lines()
            .any(|l| l.starts_with("tcp_sniffer_webhook_tls_reloads_total ") && !l.ends_with(" 0")),
        "{m}"
    );
    r.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn untrusted_clients_and_plain_http_are_refused() {
    let r = start("untrusted").await;
    // A client that does not trust the test CA fails the handshake.
    let other = TestPki::new("other-ca");
    let c = reqwest::Client::builder()
        .use_rustls_tls()
        .tls_built_in_root_certs(false)
        .add_root_certificate(reqwest::Certificate::from_pem(other.ca_pem.as_bytes()).unwrap())
        .resolve(SERVER_NAME, r.addr)
        .build()
        .unwrap();
    assert!(c.get(r.url("/healthz")).send().await.is_err());
    // Plain HTTP on the TLS port gets nothing useful.
    let plain = reqwest::Client::new();
    let res = plain.get(format!("http://{}/healthz", r.addr)).send().await;
    assert!(res.map(|r| r.status() != StatusCode::OK).unwrap_or(true));
    // The server keeps serving.
    assert_eq!(
        r.client(true)
            .get(r.url("/healthz"))
            .send()
            .await
            .unwrap()
            .status(),
        StatusCode::OK
    );
    let _ = json!(null);
    r.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_finishes_in_flight_requests() {
    // A drain deadline no busy machine reaches: the drain, not its timeout, must end it.
    let r = start_with("shutdown", DEADLINE).await;
    let c = r.client(true);
    assert_eq!(post_review(&c, &r).await.status(), StatusCode::OK);
    // Start a request whose body arrives slowly, then ask for shutdown while it is in flight.
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<Vec<u8>, std::io::Error>>(4);
    let body = review_body();
    let url = r.url("/mutate");
    let c2 = c.clone();
    let inflight = tokio::spawn(async move {
        c2.post(url)
            .header("content-type", "application/json")
            .body(reqwest::Body::wrap_stream(tokio_stream_from(rx)))
            .send()
            .await
    });
    tx.send(Ok(body[..10].to_vec())).await.unwrap();
    // Wait until the slow request's connection is being served (this poll's own connection
    // counts too, hence 2).
    wait_until_async("the slow request's connection to be served", async || {
        metric(&r, &c, "tcp_sniffer_webhook_connections_open").await >= 2
    })
    .await;
    let addr = r.addr;
    let stopper = tokio::spawn(r.stop());
    // The drain has begun once the listener is closed (the shutdown delay here is 0): only
    // then does the rest of the body go, so the in-flight request is served by the drain.
    wait_until_async("the listener to close for the drain", async || {
        tokio::net::TcpStream::connect(addr).await.is_err()
    })
    .await;
    assert!(
        !stopper.is_finished(),
        "the server stopped without draining the slow request"
    );
    tx.send(Ok(body[10..].to_vec())).await.unwrap();
    drop(tx);
    let resp = inflight
        .await
        .unwrap()
        .expect("in-flight request completes");
    assert_eq!(resp.status(), StatusCode::OK);
    stopper.await.unwrap();
    // And the listener is closed.
    assert!(tokio::net::TcpStream::connect(addr).await.is_err());
}

fn tokio_stream_from(
    mut rx: tokio::sync::mpsc::Receiver<Result<Vec<u8>, std::io::Error>>,
) -> impl futures_util::Stream<Item = Result<Vec<u8>, std::io::Error>> {
    futures_util::stream::poll_fn(move |cx| rx.poll_recv(cx))
}
