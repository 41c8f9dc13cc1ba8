//! Untrusted clients (SPEC.md "Injector": "Untrusted clients cannot starve it"). The server runs
//! in-process over real TLS; misbehaving clients are raw TLS sockets (tokio-rustls) that send
//! exactly the bytes chosen here: nothing at all, headers one byte at a time, a body that never
//! ends, bodies over 3 MiB, more idle connections than the cap.
//!
//! The plain-HTTP probe listener (`--probe-addr`) is tested here too: what it answers, and that
//! it answers while the TLS listener is held at its connection cap by the same attack.
//!
//! Nothing here asserts a duration. Deadlines in these tests are generous bounds on "it happens
//! at all" (the server's own limits are seconds); latencies under attack are printed, not
//! checked.

mod common;

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::*;
use rustls::pki_types::ServerName;
use serde_json::Value;
use tcp_sniffer_webhook::metrics::Metrics;
use tcp_sniffer_webhook::server::{self, Limits};
use tcp_sniffer_webhook::settings::{InjectSettings, ServerSettings};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::oneshot;
use tokio_rustls::client::TlsStream;
use tokio_rustls::TlsConnector;

/// "It happens at all": far above every server limit, far below a hung test.
const GENEROUS: Duration = Duration::from_secs(60);
/// The server's default body limit (SPEC: 3 MiB).
const MIB3: usize = 3 << 20;

struct Running {
    addr: SocketAddr,
    /// The probe listener, when started with one.
    probe_addr: Option<SocketAddr>,
    stop: Option<oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<()>,
    pki: TestPki,
    metrics: Arc<Metrics>,
}

async fn start(tag: &str, limits: Limits, max_connections: usize) -> Running {
    start_with(tag, limits, max_connections, false, Duration::ZERO).await
}

/// [`start`], with the probe listener when `probes`, and this serve-on delay after stop.
async fn start_with(
    tag: &str,
    limits: Limits,
    max_connections: usize,
    probes: bool,
    shutdown_delay: Duration,
) -> Running {
    let pki = TestPki::new(tag);
    pki.install("server");
    let listener = server::bind("127.0.0.1:0".parse().unwrap()).unwrap();
    let addr = listener.local_addr().unwrap();
    let probe_listener = probes.then(|| server::bind("127.0.0.1:0".parse().unwrap()).unwrap());
    let probe_addr = probe_listener.as_ref().map(|l| l.local_addr().unwrap());
    // The binary's defaults, except the connection cap where a test is about the cap.
    let defaults = {
        use clap::Parser as _;
        tcp_sniffer_webhook::settings::Args::try_parse_from([
            "x",
            "--tls-cert",
            "c",
            "--tls-key",
            "k",
            "--sniffer-image",
            "i",
        ])
        .unwrap()
        .validate()
        .unwrap()
        .server
    };
    assert_eq!(defaults.max_request_bytes, MIB3 as u64);
    let settings = ServerSettings {
        listen: addr,
        tls_cert: pki.cert_path(),
        tls_key: pki.key_path(),
        tls_reload_interval: Duration::from_secs(60),
        max_connections,
        probe_addr,
        shutdown_delay,
        shutdown_timeout: Duration::from_secs(5),
        ..defaults
    };
    let metrics = Arc::new(Metrics::default());
    let (tx, rx) = oneshot::channel::<()>();
    let m = metrics.clone();
    let task = tokio::spawn(async move {
        server::run_with_probes(
            listener,
            probe_listener,
            &settings,
            limits,
            InjectSettings::with_image("tcp-sniffer:test"),
            m,
            async move {
                let _ = rx.await;
            },
        )
        .await
        .expect("server runs");
    });
    Running {
        addr,
        probe_addr,
        stop: Some(tx),
        task,
        pki,
        metrics,
    }
}

impl Running {
    fn connector(&self, alpn: &[&[u8]]) -> TlsConnector {
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
        cfg.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
        TlsConnector::from(Arc::new(cfg))
    }

    async fn tls(&self, c: &TlsConnector) -> std::io::Result<TlsStream<TcpStream>> {
        let tcp = TcpStream::connect(self.addr).await?;
        c.connect(ServerName::try_from(SERVER_NAME).unwrap(), tcp)
            .await
    }

    fn client(&self, http1_only: bool) -> reqwest::Client {
        let mut b = reqwest::Client::builder()
            .add_root_certificate(
                reqwest::Certificate::from_pem(self.pki.ca_pem.as_bytes()).unwrap(),
            )
            .tls_built_in_root_certs(false)
            .use_rustls_tls()
            .resolve(SERVER_NAME, self.addr)
            .timeout(GENEROUS);
        if http1_only {
            b = b.http1_only();
        } else {
            b = b.http2_prior_knowledge();
        }
        b.build().unwrap()
    }

    /// A plain-HTTP GET on the probe listener, on a new connection (as the kubelet probes).
    async fn probe(
        &self,
        method: reqwest::Method,
        path: &str,
    ) -> reqwest::Result<reqwest::Response> {
        let addr = self.probe_addr.expect("started with the probe listener");
        reqwest::Client::builder()
            .http1_only()
            .pool_max_idle_per_host(0)
            .timeout(GENEROUS)
            .build()
            .unwrap()
            .request(method, format!("http://{addr}{path}"))
            .send()
            .await
    }

    fn url(&self, path: &str) -> String {
        format!("https://{SERVER_NAME}:{}{path}", self.addr.port())
    }

    fn metric(&self, line_prefix: &str) -> u64 {
        self.metrics
            .render()
            .lines()
            .find_map(|l| l.strip_prefix(line_prefix))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or_else(|| panic!("no metric {line_prefix}"))
    }

    async fn stop(mut self) {
        let _ = self.stop.take().unwrap().send(());
        tokio::time::timeout(GENEROUS, self.task)
            .await
            .expect("stops")
            .unwrap();
    }
}

/// Read until the peer closes (or errors), at most `GENEROUS`. Returns what was read and
/// whether the end was a clean close (EOF / TLS close_notify) rather than a reset.
async fn read_to_close<R: AsyncReadExt + Unpin>(r: &mut R) -> (Vec<u8>, Result<(), String>) {
    let mut out = Vec::new();
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        match tokio::time::timeout(GENEROUS, r.read(&mut buf)).await {
            Err(_) => panic!("the server neither answered nor closed within {GENEROUS:?}"),
            Ok(Ok(0)) => return (out, Ok(())),
            Ok(Ok(n)) => out.extend_from_slice(&buf[..n]),
            Ok(Err(e)) => return (out, Err(e.to_string())),
        }
    }
}

fn status_line(resp: &[u8]) -> String {
    String::from_utf8_lossy(resp)
        .lines()
        .next()
        .unwrap_or("")
        .to_string()
}

/// A body over 3 MiB is answered with a 413 the client can read, by a client that sends the
/// whole body before it reads anything (the hardest case: without a lingering close the
/// server's close resets the connection and the answer is lost).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_bodies_get_a_readable_413() {
    let r = start("413", Limits::default(), 64).await;
    let c = r.connector(&[b"http/1.1"]);
    let body = vec![b' '; 4 << 20];
    for chunked in [false, true] {
        let mut s = r.tls(&c).await.unwrap();
        let head = if chunked {
            "POST /mutate HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ntransfer-encoding: chunked\r\n\r\n".to_string()
        } else {
            format!("POST /mutate HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n", body.len())
        };
        s.write_all(head.as_bytes()).await.unwrap();
        // Write everything first, ignoring write errors (the server may stop reading once it
        // has decided), then read.
        let mut write_err = None;
        for part in body.chunks(64 * 1024) {
            let res = if chunked {
                let mut framed = format!("{:x}\r\n", part.len()).into_bytes();
                framed.extend_from_slice(part);
                framed.extend_from_slice(b"\r\n");
                s.write_all(&framed).await
            } else {
                s.write_all(part).await
            };
            if let Err(e) = res {
                write_err = Some(e.to_string());
                break;
            }
        }
        if chunked && write_err.is_none() {
            let _ = s.write_all(b"0\r\n\r\n").await;
        }
        let _ = s.flush().await;
        let (resp, end) = read_to_close(&mut s).await;
        let text = String::from_utf8_lossy(&resp);
        assert_eq!(
            status_line(&resp),
            "HTTP/1.1 413 Payload Too Large",
            "chunked={chunked}: write error {write_err:?}, end {end:?}, got {text:?}"
        );
        assert!(text.contains("larger than 3145728 bytes"), "{text}");
        eprintln!("413 chunked={chunked}: write error {write_err:?}, end of connection {end:?}");
    }
    // A real client (hyper's, via reqwest) over HTTP/1.1 and h2, with Content-Length and
    // chunked: it is still sending when the answer comes, and must get the answer, not a
    // reset. Several times, as the race is timing-dependent.
    for http1 in [true, false] {
        let c = r.client(http1);
        for i in 0..8 {
            let req = c
                .post(r.url("/mutate"))
                .header("content-type", "application/json");
            let req = if i % 2 == 0 {
                req.body(body.clone())
            } else {
                let chunks: Vec<Result<Vec<u8>, std::io::Error>> =
                    body.chunks(256 * 1024).map(|c| Ok(c.to_vec())).collect();
                req.body(reqwest::Body::wrap_stream(futures_util::stream::iter(
                    chunks,
                )))
            };
            let resp = req.send().await.unwrap_or_else(|e| {
                panic!("http1={http1} chunked={}: no 413 but {e:?}", i % 2 == 1)
            });
            assert_eq!(resp.status(), reqwest::StatusCode::PAYLOAD_TOO_LARGE);
            // The body was not read to its end, so the connection cannot be reused: an
            // HTTP/1 client must be told, or it pools the connection and its next request
            // meets the server's close (hyper: IncompleteMessage).
            let connection = resp
                .headers()
                .get("connection")
                .map(|v| v.as_bytes().to_vec());
            if http1 {
                assert_eq!(
                    connection.as_deref(),
                    Some(&b"close"[..]),
                    "http1 413 without Connection: close"
                );
            } else {
                assert_eq!(connection, None, "a Connection header on HTTP/2");
            }
            assert!(resp.text().await.unwrap().contains("larger than"));
        }
    }
    // A body of exactly the limit is read (and, not being JSON, answered 400).
    let resp = r
        .client(true)
        .post(r.url("/mutate"))
        .header("content-type", "application/json")
        .body(vec![b' '; MIB3])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), reqwest::StatusCode::BAD_REQUEST);
    r.stop().await;
}

fn short_limits() -> Limits {
    Limits {
        handshake_timeout: Duration::from_millis(500),
        header_read_timeout: Duration::from_millis(500),
        request_deadline: Duration::from_millis(500),
        idle_timeout: Duration::from_millis(500),
        ..Limits::default()
    }
}

/// Slow and idle clients are closed by the server: nothing sent at all (TCP only, or TLS
/// only), headers trickled, a body trickled (408), an h2 connection that sends nothing after
/// its preface, and a keep-alive connection after its answer.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_and_idle_clients_are_closed() {
    let r = start("slow", short_limits(), 64).await;
    let h1 = r.connector(&[b"http/1.1"]);

    // TCP, no handshake.
    let mut tcp = TcpStream::connect(r.addr).await.unwrap();
    let (got, _) = read_to_close(&mut tcp).await;
    assert!(got.is_empty());

    // TLS, then nothing.
    let mut s = r.tls(&h1).await.unwrap();
    let (got, _) = read_to_close(&mut s).await;
    assert!(got.is_empty(), "{:?}", String::from_utf8_lossy(&got));

    // Headers one byte every 100 ms, forever: closed (hyper's header timeout or ours).
    let mut s = r.tls(&h1).await.unwrap();
    let trickle = b"GET /healthz HTTP/1.1\r\nhost: x\r\nx-slow: ".repeat(100);
    let closed = async {
        for b in trickle.iter() {
            if s.write_all(&[*b]).await.is_err() || s.flush().await.is_err() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!(
            "the server kept a header trickler for {} bytes",
            trickle.len()
        );
    };
    tokio::time::timeout(GENEROUS, closed).await.unwrap();

    // A body trickled after complete headers: 408, readable. Split so one side trickles
    // while the other reads.
    let (mut rd, mut wr) = tokio::io::split(r.tls(&h1).await.unwrap());
    wr.write_all(b"POST /mutate HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-length: 100000\r\n\r\n{")
        .await
        .unwrap();
    let trickler = tokio::spawn(async move {
        loop {
            tokio::time::sleep(Duration::from_millis(100)).await;
            if wr.write_all(b" ").await.is_err() || wr.flush().await.is_err() {
                break;
            }
        }
    });
    let (resp, _) = read_to_close(&mut rd).await;
    assert_eq!(status_line(&resp), "HTTP/1.1 408 Request Timeout");
    assert!(String::from_utf8_lossy(&resp).contains("not complete within 500 ms"));
    trickler.abort();

    // h2: the preface and SETTINGS, then nothing: the server says GOAWAY and closes.
    let h2 = r.connector(&[b"h2"]);
    let mut s = r.tls(&h2).await.unwrap();
    s.write_all(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\x00\x00\x00\x04\x00\x00\x00\x00\x00")
        .await
        .unwrap();
    s.flush().await.unwrap();
    let (got, _) = read_to_close(&mut s).await;
    // Frames are: length(3) type(1) flags(1) stream(4); GOAWAY is type 7.
    let mut types = Vec::new();
    let mut i = 0;
    while i + 9 <= got.len() {
        let len = (got[i] as usize) << 16 | (got[i + 1] as usize) << 8 | got[i + 2] as usize;
        types.push(got[i + 3]);
        i += 9 + len;
    }
    assert!(types.contains(&7), "no GOAWAY in frame types {types:?}");

    // A keep-alive HTTP/1.1 connection is closed some time after its answer.
    let mut s = r.tls(&h1).await.unwrap();
    s.write_all(b"GET /healthz HTTP/1.1\r\nhost: x\r\n\r\n")
        .await
        .unwrap();
    let (resp, end) = read_to_close(&mut s).await;
    assert_eq!(status_line(&resp), "HTTP/1.1 200 OK");
    assert!(end.is_ok(), "closed cleanly, not reset: {end:?}");

    assert!(r.metric("tcp_sniffer_webhook_connections_closed_total{reason=\"idle\"} ") >= 2);
    assert!(
        r.metric("tcp_sniffer_webhook_connections_closed_total{reason=\"handshake_timeout\"} ")
            >= 1
    );
    assert!(r.metric("tcp_sniffer_webhook_http_errors_total{code=\"408\"} ") >= 1);
    r.stop().await;
}

/// At the connection cap, a new client gets in: the connection idle for longest is closed to
/// make room. The limits are long here, so nothing but the shedding can free a slot.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_connections_are_shed_at_the_cap() {
    let limits = Limits {
        handshake_timeout: Duration::from_secs(600),
        header_read_timeout: Duration::from_secs(600),
        idle_timeout: Duration::from_secs(600),
        ..Limits::default()
    };
    let r = start("cap", limits, 16).await;
    let h1 = r.connector(&[b"http/1.1"]);
    let mut idle = Vec::new();
    for _ in 0..16 {
        idle.push(r.tls(&h1).await.unwrap());
    }
    // Plus TCP connections that never handshake, waiting in the backlog.
    let mut raw = Vec::new();
    for _ in 0..8 {
        raw.push(TcpStream::connect(r.addr).await.unwrap());
    }
    let c = r.client(true);
    for _ in 0..8 {
        let resp = c.get(r.url("/healthz")).send().await.unwrap();
        assert_eq!(resp.status(), reqwest::StatusCode::OK);
    }
    assert!(r.metric("tcp_sniffer_webhook_connections_closed_total{reason=\"shed\"} ") >= 8);
    r.stop().await;
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i]
}

/// The review fixtures: (body, pod as sent, uid).
fn reviews() -> Vec<(Vec<u8>, Value, String)> {
    let mut out = Vec::new();
    let dir = fixture_path("pods");
    let mut names: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    for (i, n) in names.iter().enumerate() {
        let pod = fixture(&format!("pods/{n}"));
        let mut review = review_for(&pod);
        let uid = format!("attack-{i}");
        review["request"]["uid"] = Value::String(uid.clone());
        out.push((serde_json::to_vec(&review).unwrap(), pod, uid));
    }
    for f in ["gke-echo-pod.json", "deployment-pod-create.json"] {
        let review = fixture(f);
        out.push((
            serde_json::to_vec(&review).unwrap(),
            review["request"]["object"].clone(),
            review["request"]["uid"].as_str().unwrap().to_string(),
        ));
    }
    out
}

/// Check one answer the way kube-apiserver would use it.
fn check_answer(answer: &Value, pod: &Value, uid: &str) {
    let resp = response_of(answer, uid);
    if let Some(patched) = apply(&resp, pod) {
        let pod = as_pod(&patched);
        let spec = pod.spec.unwrap();
        let sidecars = spec
            .containers
            .iter()
            .chain(spec.init_containers.iter().flatten())
            .filter(|c| c.name == "tcp-sniffer")
            .count();
        assert_eq!(sidecars, 1);
    }
}

/// The attackers of [`reviews_and_healthz_are_answered_under_attack`], running until
/// [`Attack::end`].
struct Attack {
    stop: Arc<AtomicBool>,
    /// Connections the attackers opened so far.
    conns: Arc<AtomicU64>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Attack {
    /// `idle_n` idle clients, 100 tricklers and 10 oversized senders against `r`'s TLS port,
    /// each reconnecting when closed. Returns once the idle TLS clients and the tricklers are
    /// connected.
    async fn start(r: &Arc<Running>, idle_n: usize) -> Attack {
        let stop = Arc::new(AtomicBool::new(false));
        let attack_conns = Arc::new(AtomicU64::new(0));
        let mut attackers = Vec::new();

        // Idle: half of them complete the TLS handshake and then say nothing, half never start it.
        for i in 0..idle_n {
            let (r, stop, n) = (r.clone(), stop.clone(), attack_conns.clone());
            let tls = i % 2 == 0;
            attackers.push(tokio::spawn(async move {
                let c = r.connector(&[b"http/1.1", b"h2"]);
                while !stop.load(Ordering::Relaxed) {
                    n.fetch_add(1, Ordering::Relaxed);
                    let mut buf = [0u8; 256];
                    if tls {
                        let Ok(mut s) = r.tls(&c).await else {
                            tokio::time::sleep(Duration::from_millis(100)).await;
                            continue;
                        };
                        // (An h2 server speaks first: its SETTINGS. Read until the close.)
                        while matches!(s.read(&mut buf).await, Ok(n) if n > 0) {}
                    } else {
                        let Ok(mut s) = TcpStream::connect(r.addr).await else {
                            tokio::time::sleep(Duration::from_millis(100)).await;
                            continue;
                        };
                        let _ = s.read(&mut buf).await;
                    }
                }
            }));
        }
        // Tricklers: headers, or a body, one byte every 500 ms.
        for i in 0..100 {
            let (r, stop, n) = (r.clone(), stop.clone(), attack_conns.clone());
            attackers.push(tokio::spawn(async move {
                let c = r.connector(&[b"http/1.1"]);
                while !stop.load(Ordering::Relaxed) {
                    n.fetch_add(1, Ordering::Relaxed);
                    let Ok(mut s) = r.tls(&c).await else {
                        tokio::time::sleep(Duration::from_millis(100)).await;
                        continue;
                    };
                    if i % 2 == 1 {
                        let head = b"POST /mutate HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-length: 1000000\r\n\r\n";
                        if s.write_all(head).await.is_err() {
                            continue;
                        }
                    }
                    while !stop.load(Ordering::Relaxed) {
                        if s.write_all(b"x").await.is_err() || s.flush().await.is_err() {
                            break;
                        }
                        tokio::time::sleep(Duration::from_millis(500)).await;
                    }
                }
            }));
        }
        // Oversized: 4 MiB bodies, chunked (the server reads 3 MiB before it knows) and declared.
        for i in 0..10 {
            let (r, stop, n) = (r.clone(), stop.clone(), attack_conns.clone());
            attackers.push(tokio::spawn(async move {
                let c = r.client(i % 2 == 0);
                let body = vec![b' '; 4 << 20];
                while !stop.load(Ordering::Relaxed) {
                    n.fetch_add(1, Ordering::Relaxed);
                    let req = c
                        .post(r.url("/mutate"))
                        .header("content-type", "application/json");
                    let req = if i % 4 < 2 {
                        let chunks: Vec<Result<Vec<u8>, std::io::Error>> =
                            body.chunks(256 * 1024).map(|c| Ok(c.to_vec())).collect();
                        req.body(reqwest::Body::wrap_stream(futures_util::stream::iter(
                            chunks,
                        )))
                    } else {
                        req.body(body.clone())
                    };
                    let _ = req.send().await;
                }
            }));
        }

        // Let the attack build up: the TLS idle clients and the tricklers are connected (the
        // other 500 idle ones hold TCP connections in their handshake).
        let t0 = Instant::now();
        while r.metric("tcp_sniffer_webhook_connections_open ") < (idle_n / 2 + 50) as u64 {
            assert!(t0.elapsed() < GENEROUS, "the attack never built up");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        Attack {
            stop,
            conns: attack_conns,
            tasks: attackers,
        }
    }

    async fn end(self) {
        self.stop.store(true, Ordering::Relaxed);
        for a in &self.tasks {
            a.abort();
        }
        for a in self.tasks {
            let _ = a.await;
        }
    }
}

/// ~1 000 idle clients, header and body tricklers and oversized bodies, held for the whole
/// run (each reconnects when the server closes it), while real AdmissionReviews from the
/// fixtures and /healthz probes keep being answered. Every review must be answered correctly
/// and /healthz must answer; the latencies are printed (not asserted).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reviews_and_healthz_are_answered_under_attack() {
    let nofile = server::raise_nofile_limit().unwrap();
    let idle_n: usize = 1000;
    assert!(nofile > 2 * idle_n as u64 + 500, "open-file limit {nofile}");
    // The cap is below the attackers' 1 100 connections (the scenario): the shedding and
    // the timeouts must make room.
    let r = Arc::new(start("attack", Limits::default(), 1024).await);
    let attack = Attack::start(&r, idle_n).await;
    let attack_conns = attack.conns.clone();
    let (mut open_min, mut open_max) = (u64::MAX, 0);

    // The legitimate side: the API server (h2, one client) and kubelet-style probes (a new
    // HTTP/1.1 connection per probe), for a few rounds.
    let api = r.client(false);
    let reviews = reviews();
    let mut review_lat = Vec::new();
    let mut healthz_lat = Vec::new();
    // About three idle-timeout cycles, so every attacker has been closed and has come back.
    let rounds = 40;
    for _ in 0..rounds {
        let open = r.metric("tcp_sniffer_webhook_connections_open ");
        (open_min, open_max) = (open_min.min(open), open_max.max(open));
        for (body, pod, uid) in &reviews {
            let t = Instant::now();
            let resp = api
                .post(r.url("/mutate"))
                .header("content-type", "application/json")
                .body(body.clone())
                .send()
                .await
                .unwrap_or_else(|e| panic!("review {uid} not answered under attack: {e}"));
            assert_eq!(resp.status(), reqwest::StatusCode::OK, "{uid}");
            let answer: Value = resp.json().await.unwrap();
            review_lat.push(t.elapsed());
            check_answer(&answer, pod, uid);
        }
        // As the kubelet probes: a new connection each time, /healthz and /readyz.
        for path in ["/healthz", "/readyz"] {
            let probe = r.client(true);
            let t = Instant::now();
            let h = probe
                .get(r.url(path))
                .send()
                .await
                .unwrap_or_else(|e| panic!("{path} not answered under attack: {e}"));
            assert_eq!(h.status(), reqwest::StatusCode::OK, "{path}");
            healthz_lat.push(t.elapsed());
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    attack.end().await;
    review_lat.sort();
    healthz_lat.sort();
    let m = r.metrics.render();
    let get = |p: &str| {
        m.lines()
            .find_map(|l| l.strip_prefix(p))
            .unwrap_or("?")
            .to_string()
    };
    println!(
        "under attack ({idle_n} idle, 100 tricklers, 10 oversized; {} attack connections made; \
         {open_min}..{open_max} TLS connections open while measuring):\n  \
         reviews: n={} p50={:?} p99={:?} max={:?}\n  \
         healthz+readyz (new connection each): n={} p50={:?} p99={:?} max={:?}\n  \
         closed idle={} shed={} handshake_timeout={}; 408={} 413={}",
        attack_conns.load(Ordering::Relaxed),
        review_lat.len(),
        percentile(&review_lat, 0.5),
        percentile(&review_lat, 0.99),
        review_lat.last().unwrap(),
        healthz_lat.len(),
        percentile(&healthz_lat, 0.5),
        percentile(&healthz_lat, 0.99),
        healthz_lat.last().unwrap(),
        get("tcp_sniffer_webhook_connections_closed_total{reason=\"idle\"} "),
        get("tcp_sniffer_webhook_connections_closed_total{reason=\"shed\"} "),
        get("tcp_sniffer_webhook_connections_closed_total{reason=\"handshake_timeout\"} "),
        get("tcp_sniffer_webhook_http_errors_total{code=\"408\"} "),
        get("tcp_sniffer_webhook_http_errors_total{code=\"413\"} "),
    );
    assert_eq!(review_lat.len(), rounds * reviews.len());
    assert!(r.metric("tcp_sniffer_webhook_http_errors_total{code=\"413\"} ") >= 1);
    match Arc::try_unwrap(r) {
        Ok(r) => r.stop().await,
        Err(_) => panic!("attackers still hold the server"),
    }
}

/// The probe listener answers GET /healthz and /readyz over plain HTTP and nothing else;
/// /readyz turns 503 as soon as stop is asked (while /healthz stays 200 through the serve-on
/// delay), and the listener is gone once the server stopped.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn probe_listener_answers_health_and_readiness_only() {
    use reqwest::{Method, StatusCode};
    let r = start_with(
        "probes",
        Limits::default(),
        64,
        true,
        Duration::from_secs(5),
    )
    .await;
    for path in ["/healthz", "/readyz"] {
        let resp = r.probe(Method::GET, path).await.unwrap();
        assert_eq!(resp.status(), StatusCode::OK, "{path}");
    }
    for (method, path, want) in [
        (Method::POST, "/mutate", StatusCode::NOT_FOUND),
        (Method::GET, "/metrics", StatusCode::NOT_FOUND),
        (Method::GET, "/", StatusCode::NOT_FOUND),
        (Method::GET, "/healthz/x", StatusCode::NOT_FOUND),
        (Method::POST, "/healthz", StatusCode::METHOD_NOT_ALLOWED),
    ] {
        let resp = r.probe(method.clone(), path).await.unwrap();
        assert_eq!(resp.status(), want, "{method} {path}");
        let body = resp.text().await.unwrap();
        assert!(body.contains("GET /healthz, GET /readyz"), "{body}");
    }
    // The TLS port keeps its own /healthz and /readyz (backward compatible).
    let tls = r.client(true);
    for path in ["/healthz", "/readyz"] {
        let resp = tls.get(r.url(path)).send().await.unwrap();
        assert_eq!(resp.status(), StatusCode::OK, "TLS {path}");
    }
    let probe_addr = r.probe_addr.unwrap();

    // Stop: /readyz 503 on the probe port during the serve-on delay, /healthz still 200.
    let mut r = r;
    let _ = r.stop.take().unwrap().send(());
    let t0 = Instant::now();
    loop {
        let resp = r.probe(Method::GET, "/readyz").await.unwrap();
        if resp.status() == StatusCode::SERVICE_UNAVAILABLE {
            break;
        }
        assert_eq!(resp.status(), StatusCode::OK);
        assert!(
            t0.elapsed() < GENEROUS,
            "/readyz never turned 503 after stop"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let resp = r.probe(Method::GET, "/healthz").await.unwrap();
    assert_eq!(
        resp.status(),
        StatusCode::OK,
        "/healthz during the serve-on delay"
    );
    tokio::time::timeout(GENEROUS, r.task)
        .await
        .expect("stops")
        .unwrap();
    assert!(
        TcpStream::connect(probe_addr).await.is_err(),
        "the probe listener is still open after the server stopped"
    );
}

/// The attack of [`reviews_and_healthz_are_answered_under_attack`] holds the TLS listener at
/// its connection cap (shown by the shed counter: connections are shed only at the cap); the
/// kubelet-style probes on the plain probe port (a new connection each) are all answered 200.
/// Their latencies are printed (not asserted), next to the same probes over TLS.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn probes_on_the_probe_port_are_answered_while_tls_is_saturated() {
    let nofile = server::raise_nofile_limit().unwrap();
    let idle_n: usize = 1000;
    assert!(nofile > 2 * idle_n as u64 + 500, "open-file limit {nofile}");
    let cap = 1024;
    let r =
        Arc::new(start_with("probe-attack", Limits::default(), cap, true, Duration::ZERO).await);
    let attack = Attack::start(&r, idle_n).await;
    let shed = "tcp_sniffer_webhook_connections_closed_total{reason=\"shed\"} ";
    let shed_before = r.metric(shed);
    let (mut plain_lat, mut tls_lat) = (Vec::new(), Vec::new());
    let mut open_max = 0;
    let rounds = 20;
    for _ in 0..rounds {
        open_max = open_max.max(r.metric("tcp_sniffer_webhook_connections_open "));
        for path in ["/healthz", "/readyz"] {
            let t = Instant::now();
            let resp = r
                .probe(reqwest::Method::GET, path)
                .await
                .unwrap_or_else(|e| panic!("{path} on the probe port not answered: {e}"));
            assert_eq!(resp.status(), reqwest::StatusCode::OK, "{path}");
            plain_lat.push(t.elapsed());
            // For comparison: the same probe over TLS (answered too, see the test above).
            let t = Instant::now();
            if let Ok(resp) = r.client(true).get(r.url(path)).send().await {
                if resp.status() == reqwest::StatusCode::OK {
                    tls_lat.push(t.elapsed());
                }
            }
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    let shed_during = r.metric(shed) - shed_before;
    attack.end().await;
    plain_lat.sort();
    tls_lat.sort();
    println!(
        "probes while the TLS port is under attack (cap {cap}, up to {open_max} TLS connections \
         open, {shed_during} shed while measuring):\n  \
         probe port (plain HTTP): n={} p50={:?} p99={:?} max={:?}\n  \
         TLS port: n={} p50={:?} p99={:?} max={:?}",
        plain_lat.len(),
        percentile(&plain_lat, 0.5),
        percentile(&plain_lat, 0.99),
        plain_lat.last().unwrap(),
        tls_lat.len(),
        percentile(&tls_lat, 0.5),
        percentile(&tls_lat, 0.99),
        tls_lat.last().copied().unwrap_or_default(),
    );
    assert_eq!(plain_lat.len(), rounds * 2);
    assert!(
        shed_during > 0,
        "the TLS listener never reached its cap of {cap}: the attack did not saturate it"
    );
    match Arc::try_unwrap(r) {
        Ok(r) => r.stop().await,
        Err(_) => panic!("attackers still hold the server"),
    }
}

/// The probe listener cannot itself be held: twice its cap of idle connections (sending
/// nothing) and a header trickler do not keep a probe from being answered, and the server
/// closes every one of them on its own (the idle ones shed at the cap or timed out).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn probe_listener_is_bounded() {
    let r = start_with("probe-cap", Limits::default(), 64, true, Duration::ZERO).await;
    let addr = r.probe_addr.unwrap();
    let mut idle = Vec::new();
    for _ in 0..2 * server::PROBE_MAX_CONNECTIONS {
        idle.push(TcpStream::connect(addr).await.unwrap());
    }
    let mut trickler = TcpStream::connect(addr).await.unwrap();
    trickler
        .write_all(b"GET /healthz HTTP/1.1\r\n")
        .await
        .unwrap();
    let t = Instant::now();
    let resp = r
        .probe(reqwest::Method::GET, "/healthz")
        .await
        .expect("a probe is answered while the probe port is flooded");
    assert_eq!(resp.status(), reqwest::StatusCode::OK);
    println!(
        "probe answered in {:?} with {} idle connections and a trickler on the probe port",
        t.elapsed(),
        idle.len()
    );
    // Closed by the server (408 or not): read_to_close fails the test if it never is.
    let _ = read_to_close(&mut trickler).await;
    for mut s in idle {
        let (got, _) = read_to_close(&mut s).await;
        assert!(got.is_empty(), "an idle probe connection got {got:?}");
    }
    r.stop().await;
}
