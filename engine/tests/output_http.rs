// Output URL sink against a real HTTP/1.1 server on 127.0.0.1 (written here on
// std::net + httparse, with a rustls variant for HTTPS). Retry delays are
// shortened through `retry_base` (outputRetryBaseMs) except in the one test that
// checks the real 1 s / 2 s / 4 s schedule.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tcp_sniffer::config::{RawValue, SettingsBuilder, Surface};
use tcp_sniffer::message::{Direction, HeaderValue, HttpMessage};
use tcp_sniffer::output::{build_outputs, log, Batch, HttpOutput, HttpOutputConfig, Output};
use tcp_sniffer::testing::{endpoint, request, response, sample_message};
use tcp_sniffer::time::Timestamp;
use tcp_sniffer_settings::log::Captured;

mod common;

use common::{returns_within, wait_until, DEADLINE};

// ---------------------------------------------------------------------------
// Messages

fn message(i: u64) -> HttpMessage {
    let client = endpoint("10.0.0.1:40000");
    let server = endpoint("10.0.0.2:8080");
    let is_request = i & 1 == 0;
    HttpMessage {
        kind: if is_request {
            request("POST", &format!("/items/{i}"))
        } else {
            response(201, "Created", Some(1.5))
        },
        connection_id: 7,
        sequence: i / 2,
        timestamp: Timestamp(1_700_000_000_000_000 + i),
        end_timestamp: Timestamp(1_700_000_000_000_100 + i),
        source: if is_request { client } else { server },
        destination: if is_request { server } else { client },
        direction: Direction::Inbound,
        headers: vec![(
            "content-type".into(),
            HeaderValue::Single("text/plain".into()),
        )],
        body: format!("body number {i}").into_bytes(),
        body_size: 14,
        ..sample_message()
    }
}

fn batch(from: u64, n: u64) -> Arc<Batch> {
    let msgs: Vec<HttpMessage> = (from..from + n).map(message).collect();
    Arc::new(Batch::from_messages(&msgs, None))
}

// ---------------------------------------------------------------------------
// Test server

#[derive(Clone, Debug)]
struct Req {
    at: Instant,
    path: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Req {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

#[derive(Clone, Copy, Debug)]
enum Reply {
    Status(u16),
    /// Status after a pause.
    Slow(Duration, u16),
    /// Read the request, never answer: hold the connection until the client gives up.
    Hang,
    /// 307 to another place.
    Redirect(u16),
    /// Status with `Retry-After: <seconds>`.
    RetryAfter(u16, u64),
    /// Status with this content type and body.
    Answer(u16, &'static str, &'static [u8]),
}

type Responder = dyn Fn(usize, &Req) -> Reply + Send + Sync;

struct Server {
    port: u16,
    reqs: Arc<Mutex<Vec<Req>>>,
}

impl Server {
    fn url(&self) -> String {
        format!("http://127.0.0.1:{}/ingest", self.port)
    }
    fn requests(&self) -> Vec<Req> {
        self.reqs.lock().unwrap().clone()
    }
}

/// Starts a plain HTTP server; `tls` wraps each connection when set.
fn serve_with(
    respond: impl Fn(usize, &Req) -> Reply + Send + Sync + 'static,
    tls: Option<Arc<rustls::ServerConfig>>,
) -> Server {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let reqs = Arc::new(Mutex::new(Vec::new()));
    let counter = Arc::new(AtomicUsize::new(0));
    let respond: Arc<Responder> = Arc::new(respond);
    let r2 = reqs.clone();
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(conn) = conn else { continue };
            let reqs = r2.clone();
            let counter = counter.clone();
            let respond = respond.clone();
            let tls = tls.clone();
            std::thread::spawn(move || match tls {
                None => handle(conn, &reqs, &counter, &*respond),
                Some(cfg) => {
                    let Ok(sc) = rustls::ServerConnection::new(cfg) else {
                        return;
                    };
                    let stream = rustls::StreamOwned::new(sc, conn);
                    handle(stream, &reqs, &counter, &*respond)
                }
            });
        }
    });
    Server { port, reqs }
}

fn serve(respond: impl Fn(usize, &Req) -> Reply + Send + Sync + 'static) -> Server {
    serve_with(respond, None)
}

/// Serves HTTP/1.1 requests on one connection (keep-alive) until it closes.
fn handle<S: Read + Write>(
    stream: S,
    reqs: &Mutex<Vec<Req>>,
    counter: &AtomicUsize,
    respond: &Responder,
) {
    let mut r = BufReader::new(stream);
    loop {
        let mut head = Vec::new();
        loop {
            let mut line = Vec::new();
            match r.read_until(b'\n', &mut line) {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
            head.extend_from_slice(&line);
            if line == b"\r\n" {
                break;
            }
        }
        let at = Instant::now();
        let mut hs = [httparse::EMPTY_HEADER; 32];
        let mut pr = httparse::Request::new(&mut hs);
        assert!(pr.parse(&head).unwrap().is_complete(), "bad request head");
        assert_eq!(pr.method, Some("POST"));
        let path = pr.path.unwrap().to_string();
        let headers: Vec<(String, String)> = pr
            .headers
            .iter()
            .map(|h| {
                (
                    h.name.to_ascii_lowercase(),
                    String::from_utf8_lossy(h.value).into_owned(),
                )
            })
            .collect();
        let len: usize = headers
            .iter()
            .find(|(k, _)| k == "content-length")
            .expect("content-length")
            .1
            .parse()
            .unwrap();
        let mut body = vec![0; len];
        if r.read_exact(&mut body).is_err() {
            return;
        }
        // Batches come gzip'd (Content-Encoding: gzip); the tests look at what was sent.
        if headers
            .iter()
            .any(|(k, v)| k == "content-encoding" && v == "gzip")
        {
            let mut plain = Vec::new();
            flate2::read::GzDecoder::new(&body[..])
                .read_to_end(&mut plain)
                .expect("a valid gzip body");
            body = plain;
        }
        let req = Req {
            at,
            path,
            headers,
            body,
        };
        let n = counter.fetch_add(1, Ordering::SeqCst);
        reqs.lock().unwrap().push(req.clone());
        let mut body: &[u8] = b"ok";
        let (status, extra) = match respond(n, &req) {
            Reply::Status(s) => (s, String::new()),
            Reply::Answer(s, ct, b) => {
                body = b;
                (s, format!("content-type: {ct}\r\n"))
            }
            Reply::RetryAfter(s, secs) => (s, format!("retry-after: {secs}\r\n")),
            Reply::Slow(d, s) => {
                std::thread::sleep(d);
                (s, String::new())
            }
            Reply::Hang => {
                // Until the client closes: a client without a timeout would wait forever.
                let _ = std::io::copy(&mut r, &mut std::io::sink());
                return;
            }
            Reply::Redirect(port) => (
                307,
                format!("location: http://127.0.0.2:{port}/elsewhere\r\n"),
            ),
        };
        let mut resp = format!(
            "HTTP/1.1 {status} X\r\ncontent-length: {}\r\n{extra}\r\n",
            body.len()
        )
        .into_bytes();
        resp.extend_from_slice(body);
        let s = r.get_mut();
        if s.write_all(&resp).and_then(|_| s.flush()).is_err() {
            return;
        }
    }
}

fn cfg(url: &str) -> HttpOutputConfig {
    let mut c = HttpOutputConfig::new(url);
    c.retry_base = Duration::from_millis(20);
    c.drain_timeout = Duration::from_secs(10);
    c.request_timeout = Duration::from_secs(5);
    c
}

fn json_lines(body: &[u8]) -> Vec<serde_json::Value> {
    std::str::from_utf8(body)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

// ---------------------------------------------------------------------------
// Tests

#[test]
fn posts_one_json_message_per_request_with_token() {
    let srv = serve(|_, _| Reply::Status(200));
    let mut c = cfg(&srv.url());
    c.auth_token = Some("tok-123".into());
    let mut out = HttpOutput::new(c).unwrap();
    out.send(&batch(0, 3));
    out.close();
    let st = out.stats();
    assert_eq!(st.delivered, 3);
    assert_eq!(st.retries, 0);
    let reqs = srv.requests();
    assert_eq!(reqs.len(), 3);
    let mut urls = Vec::new();
    for r in &reqs {
        assert_eq!(r.path, "/ingest");
        assert_eq!(r.header("content-type"), Some("application/json"));
        assert_eq!(r.header("authorization"), Some("Bearer tok-123"));
        let v: serde_json::Value = serde_json::from_slice(&r.body).expect("one JSON object");
        assert!(v["type"] == "request" || v["type"] == "response");
        assert_eq!(v["connectionId"], "0000000000000007");
        if let Some(u) = v["url"].as_str() {
            urls.push(u.to_string());
        }
    }
    assert_eq!(urls.len(), 2, "two requests and one response");
}

#[test]
fn no_token_no_authorization_header() {
    let srv = serve(|_, _| Reply::Status(204));
    let mut out = HttpOutput::new(cfg(&srv.url())).unwrap();
    out.send(&batch(0, 1));
    out.close();
    assert_eq!(out.stats().delivered, 1);
    assert_eq!(srv.requests()[0].header("authorization"), None);
}

#[test]
fn status_500_then_200_delivers_exactly_once_after_one_retry() {
    let srv = serve(|n, _| Reply::Status(if n == 0 { 500 } else { 200 }));
    let mut out = HttpOutput::new(cfg(&srv.url())).unwrap();
    out.send(&batch(0, 1));
    out.close();
    let st = out.stats();
    assert_eq!(st.delivered, 1);
    assert_eq!(st.retries, 1);
    assert_eq!(st.dropped_retries_exhausted, 0);
    let reqs = srv.requests();
    assert_eq!(reqs.len(), 2, "one failure, one success, nothing more");
    assert_eq!(reqs[0].body, reqs[1].body);
    assert!(
        reqs[1].at - reqs[0].at >= Duration::from_millis(16),
        "the first retry waits 20 ms ± 20 %"
    );
}

#[test]
fn status_429_is_retried() {
    let srv = serve(|n, _| Reply::Status(if n < 2 { 429 } else { 200 }));
    let mut out = HttpOutput::new(cfg(&srv.url())).unwrap();
    out.send(&batch(0, 1));
    out.close();
    let st = out.stats();
    assert_eq!((st.delivered, st.retries), (1, 2));
    assert_eq!(srv.requests().len(), 3);
}

#[test]
fn status_400_is_not_retried() {
    let srv = serve(|_, _| Reply::Status(400));
    let mut out = HttpOutput::new(cfg(&srv.url())).unwrap();
    out.send(&batch(0, 2));
    out.close();
    let st = out.stats();
    assert_eq!(st.delivered, 0);
    assert_eq!(st.dropped_rejected, 2);
    assert_eq!(st.retries, 0);
    assert_eq!(srv.requests().len(), 2);
}

#[test]
fn persistent_503_is_dropped_after_three_retries() {
    let srv = serve(|_, _| Reply::Status(503));
    let mut out = HttpOutput::new(cfg(&srv.url())).unwrap();
    out.send(&batch(0, 1));
    out.close();
    let st = out.stats();
    assert_eq!(st.dropped_retries_exhausted, 1);
    assert_eq!(st.retries, 3);
    let reqs = srv.requests();
    assert_eq!(reqs.len(), 4);
    // base, 2×base, 4×base
    for (i, w) in reqs.windows(2).enumerate() {
        assert!(w[1].at - w[0].at >= Duration::from_millis(20 << i).mul_f64(0.8));
    }
}

#[test]
fn redirect_is_not_followed_and_token_stays_home() {
    let other = serve(|_, _| Reply::Status(200));
    let port = other.port;
    let srv = serve(move |_, _| Reply::Redirect(port));
    let mut c = cfg(&srv.url());
    c.auth_token = Some("tok-redirect".into());
    let mut out = HttpOutput::new(c).unwrap();
    out.send(&batch(0, 1));
    out.close();
    let st = out.stats();
    assert_eq!(st.dropped_rejected, 1);
    assert_eq!(st.delivered, 0);
    assert_eq!(srv.requests().len(), 1);
    assert!(other.requests().is_empty(), "redirect must not be followed");
}

#[test]
fn connection_refused_is_retried_then_dropped() {
    let port = {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let mut out = HttpOutput::new(cfg(&format!("http://127.0.0.1:{port}/"))).unwrap();
    out.send(&batch(0, 3));
    out.close();
    let st = out.stats();
    assert_eq!(st.dropped_retries_exhausted, 3);
    assert_eq!(st.retries, 9, "three retries for each of three requests");
    assert_eq!(st.delivered, 0);
}

#[test]
fn server_that_never_answers_times_out() {
    let srv = serve(|_, _| Reply::Hang);
    let mut c = cfg(&srv.url());
    c.request_timeout = Duration::from_millis(300);
    let mut out = HttpOutput::new(c).unwrap();
    let t = Instant::now();
    out.send(&batch(0, 1));
    // The server holds every connection until the client gives up: without the request
    // timeout, close (which drains) would never return.
    let out = returns_within(
        "close against a server that never answers",
        DEADLINE,
        move || {
            out.close();
            out
        },
    );
    let st = out.stats();
    assert_eq!(st.dropped_retries_exhausted, 1);
    assert_eq!(st.retries, 3);
    assert_eq!(srv.requests().len(), 4);
    // 4 attempts × 300 ms + 20 + 40 + 80 ms of waiting. A lower bound on the output's own
    // timers: a busy machine can only make it longer, never fail it.
    assert!(
        t.elapsed() >= Duration::from_millis(1300),
        "{:?}",
        t.elapsed()
    );
}

fn rss_kib() -> u64 {
    let s = std::fs::read_to_string("/proc/self/status").unwrap();
    s.lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches(" kB").trim().parse().ok())
        .unwrap()
}

#[test]
fn slow_server_under_flood_never_blocks_send_and_counts_drops() {
    let srv = serve(|_, _| Reply::Slow(Duration::from_millis(100), 200));
    let mut c = cfg(&srv.url());
    c.queue_size = 500;
    c.concurrency = 2;
    c.drain_timeout = Duration::from_millis(300);
    let mut out = HttpOutput::new(c).unwrap();
    // One batch is reused: what matters is how many messages are offered.
    let b = batch(0, 250);
    let rss_before = rss_kib();
    let mut slowest = Duration::ZERO;
    let t = Instant::now();
    let rounds = 2_000u64; // 500 000 messages, ~150 MB if they were all kept
    for _ in 0..rounds {
        let s = Instant::now();
        out.send(&b);
        slowest = slowest.max(s.elapsed());
    }
    let offered = rounds * 250;
    let elapsed = t.elapsed();
    let rss_growth_mib = rss_kib().saturating_sub(rss_before) / 1024;
    out.close();
    let st = out.stats();
    eprintln!(
        "flood: {offered} messages offered in {elapsed:?} (slowest send {slowest:?}: reported, not asserted), RSS +{rss_growth_mib} MiB, {st:?}"
    );
    // send never waited for room: a 100 ms server with 2 connections could not have taken
    // more than a few hundred of 500 000 messages while they were offered; the rest were
    // dropped, and counted, instead.
    assert!(st.dropped_queue_full >= offered - 1_000, "{st:?}");
    assert_eq!(
        st.delivered + st.dropped_queue_full + st.dropped_at_shutdown,
        offered,
        "every message is delivered or counted"
    );
    assert!(srv.requests().len() as u64 >= st.delivered);
    assert!(rss_growth_mib < 64, "memory grew by {rss_growth_mib} MiB");
}

#[test]
fn queue_is_bounded_in_bytes_too() {
    let srv = serve(|_, _| Reply::Hang);
    let mut c = cfg(&srv.url());
    c.queue_size = 1_000_000;
    let one = batch(0, 1).as_lines().len();
    c.max_queued_bytes = one * 10;
    c.drain_timeout = Duration::from_millis(100);
    let mut out = HttpOutput::new(c).unwrap();
    // An empty queue takes one whole batch (so file replay can always make
    // progress); once anything is queued, the byte cap applies.
    out.send(&batch(0, 1));
    out.send(&batch(1, 100));
    out.close();
    let st = out.stats();
    assert!(st.dropped_queue_full >= 90, "{st:?}");
    assert_eq!(
        st.dropped_queue_full + st.dropped_at_shutdown,
        101,
        "{st:?}"
    );
}

#[test]
fn batch_mode_posts_ndjson() {
    let srv = serve(|_, _| Reply::Status(200));
    let mut c = cfg(&srv.url());
    c.batch_size = 10;
    c.batch_wait = Duration::from_millis(150);
    c.auth_token = Some("tok-b".into());
    let mut out = HttpOutput::new(c).unwrap();
    let t = Instant::now();
    out.send(&batch(0, 25));
    // Without close: the partial batch must go out once it has waited 150 ms.
    wait_until("all 25 messages posted without close", DEADLINE, || {
        srv.requests()
            .iter()
            .map(|r| json_lines(&r.body).len())
            .sum::<usize>()
            >= 25
    });
    out.close();
    assert_eq!(out.stats().delivered, 25);
    let reqs = srv.requests();
    assert_eq!(reqs.len(), 3);
    let mut sizes: Vec<usize> = Vec::new();
    for r in &reqs {
        assert_eq!(r.header("content-type"), Some("application/x-ndjson"));
        assert_eq!(r.header("content-encoding"), Some("gzip"));
        assert_eq!(r.header("authorization"), Some("Bearer tok-b"));
        assert!(r.body.ends_with(b"\n"));
        sizes.push(json_lines(&r.body).len());
    }
    sizes.sort();
    assert_eq!(sizes, vec![5, 10, 10]);
    let partial = reqs
        .iter()
        .find(|r| json_lines(&r.body).len() == 5)
        .unwrap();
    // A lower bound on the output's own timer (a busy machine can only make it longer).
    assert!(partial.at - t >= Duration::from_millis(150));
}

#[test]
fn close_sends_partial_batch_at_once() {
    let srv = serve(|_, _| Reply::Status(200));
    let mut c = cfg(&srv.url());
    c.batch_size = 100;
    // Far beyond the deadline below: a close that waited for the timer would never return.
    c.batch_wait = Duration::from_secs(24 * 3600);
    let mut out = HttpOutput::new(c).unwrap();
    out.send(&batch(0, 7));
    let out = returns_within("close with a partial batch", DEADLINE, move || {
        out.close();
        out
    });
    assert_eq!(out.stats().delivered, 7);
    assert_eq!(json_lines(&srv.requests()[0].body).len(), 7);
}

#[test]
fn close_drains_pending_messages() {
    let srv = serve(|_, _| Reply::Slow(Duration::from_millis(5), 200));
    let mut c = cfg(&srv.url());
    c.concurrency = 4;
    let mut out = HttpOutput::new(c).unwrap();
    out.send(&batch(0, 200));
    out.close();
    let st = out.stats();
    assert_eq!(st.delivered, 200);
    assert_eq!(srv.requests().len(), 200);
    // After close, nothing is accepted.
    out.send(&batch(0, 3));
    assert_eq!(out.stats().dropped_at_shutdown, 3);
    assert!(out.is_closed());
}

#[test]
fn drain_deadline_counts_the_rest_as_dropped_at_shutdown() {
    let srv = serve(|_, _| Reply::Hang);
    let mut c = cfg(&srv.url());
    c.drain_timeout = Duration::from_millis(300);
    // Longer than any test: only the drain deadline can end close.
    c.request_timeout = Duration::from_secs(24 * 3600);
    c.concurrency = 2;
    let mut out = HttpOutput::new(c).unwrap();
    out.send(&batch(0, 10));
    // The server holds its connections until the client gives up, so only the drain
    // deadline lets close return.
    let out = returns_within("close past the drain deadline", DEADLINE, move || {
        out.close();
        out
    });
    let st = out.stats();
    assert_eq!(st.dropped_at_shutdown, 10);
    assert_eq!(st.delivered, 0);
    drop(srv);
}

/// Test CA, and a server certificate for 127.0.0.1 and localhost signed by it.
fn test_pki() -> (String, Arc<rustls::ServerConfig>) {
    use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair};
    let ca_key = KeyPair::generate().unwrap();
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "tcp-sniffer test CA");
    let ca_cert = ca_params.self_signed(&ca_key).unwrap();
    let issuer = Issuer::new(ca_params, ca_key);
    let key = KeyPair::generate().unwrap();
    let params = CertificateParams::new(vec!["localhost".into(), "127.0.0.1".into()]).unwrap();
    let cert = params.signed_by(&key, &issuer).unwrap();
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let server = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(
            vec![cert.der().clone()],
            rustls::pki_types::PrivateKeyDer::Pkcs8(key.serialize_der().into()),
        )
        .unwrap();
    (ca_cert.pem(), Arc::new(server))
}

#[test]
fn https_with_a_test_ca() {
    let (ca_pem, server_cfg) = test_pki();
    let srv = serve_with(|_, _| Reply::Status(200), Some(server_cfg));
    for host in ["localhost", "127.0.0.1"] {
        let mut c = cfg(&format!("https://{host}:{}/secure", srv.port));
        c.ca_pem = Some(ca_pem.clone().into_bytes());
        c.auth_token = Some("tok-tls".into());
        let mut out = HttpOutput::new(c).unwrap();
        out.send(&batch(0, 2));
        out.close();
        assert_eq!(out.stats().delivered, 2, "{host}");
    }
    let reqs = srv.requests();
    assert_eq!(reqs.len(), 4);
    assert!(reqs
        .iter()
        .all(|r| r.path == "/secure" && r.header("authorization") == Some("Bearer tok-tls")));

    // Without the CA (Mozilla roots only) the certificate is not trusted.
    let mut c = cfg(&format!("https://localhost:{}/secure", srv.port));
    c.max_retries = 0;
    let mut out = HttpOutput::new(c).unwrap();
    out.send(&batch(0, 1));
    out.close();
    assert_eq!(out.stats().dropped_retries_exhausted, 1);
    assert_eq!(
        srv.requests().len(),
        4,
        "no request over an untrusted connection"
    );
}

#[test]
fn real_retry_schedule_is_1s_2s_4s() {
    let srv = serve(|_, _| Reply::Status(503));
    let mut c = HttpOutputConfig::new(srv.url());
    c.drain_timeout = Duration::from_secs(20);
    assert_eq!(c.retry_base, Duration::from_secs(1), "default base");
    let mut out = HttpOutput::new(c).unwrap();
    out.send(&batch(0, 1));
    out.close();
    assert_eq!(out.stats().dropped_retries_exhausted, 1);
    let reqs = srv.requests();
    assert_eq!(reqs.len(), 4);
    for (i, w) in reqs.windows(2).enumerate() {
        let gap = w[1].at - w[0].at;
        let nominal = Duration::from_secs(1 << i);
        // Reported; only the lower bound is asserted: the output must wait at least its
        // backoff less the jitter (±20 %), and a busy machine can only make the gap longer,
        // never fail this. How much longer is noise, not the output's doing.
        eprintln!("retry {}: {gap:?} (nominal {nominal:?})", i + 1);
        assert!(gap >= nominal.mul_f64(0.8), "retry {} after {gap:?}", i + 1);
    }
}

#[test]
fn failures_are_logged_with_reason_and_never_the_token() {
    let logs = Captured::default();
    log::set_sink(Some(Box::new(logs.clone())));
    log::set_level(tcp_sniffer::config::LogLevel::Debug);
    let token = "tok-SECRET-never-logged";
    for reply in [Reply::Status(503), Reply::Status(401)] {
        let srv = serve(move |_, _| reply);
        let mut c = cfg(&srv.url());
        c.auth_token = Some(token.into());
        let mut out = HttpOutput::new(c).unwrap();
        out.send(&batch(0, 1));
        out.close();
    }
    let mut c = cfg("http://127.0.0.1:1/");
    c.auth_token = Some(token.into());
    let mut out = HttpOutput::new(c).unwrap();
    out.send(&batch(0, 1));
    out.close();
    log::set_sink(None);
    log::set_level(tcp_sniffer::config::LogLevel::Info);

    let text = logs.text();
    assert!(!text.contains("SECRET"), "token leaked into logs:\n{text}");
    let lines = logs.lines();
    for l in &lines {
        assert!(l["timestamp"].is_string() && l["level"].is_string() && l["message"].is_string());
    }
    let reasons: Vec<&str> = lines.iter().filter_map(|l| l["reason"].as_str()).collect();
    assert!(reasons.iter().any(|r| r.contains("HTTP 503")), "{text}");
    assert!(reasons.iter().any(|r| r.contains("HTTP 401")), "{text}");
    assert!(
        reasons.iter().any(|r| r.contains("connection error")),
        "{text}"
    );
}

#[test]
fn build_outputs_follows_settings() {
    let build = |pairs: &[(&str, &str)], default_stdout: bool| {
        let mut b = SettingsBuilder::new(Surface::Cli, false);
        b.set("--ports", RawValue::Text("80".into())).unwrap();
        for (k, v) in pairs {
            b.set(k, RawValue::Text((*v).into())).unwrap();
        }
        build_outputs(&b.build().unwrap(), default_stdout)
            .unwrap()
            .len()
    };
    assert_eq!(build(&[], true), 1, "CLI default: stdout");
    assert_eq!(build(&[], false), 0, "library default: callback only");
    assert_eq!(build(&[("--output-url", "http://127.0.0.1:9/")], true), 1);
    assert_eq!(
        build(
            &[
                ("--output-url", "http://127.0.0.1:9/"),
                ("--stdout", "true")
            ],
            true
        ),
        2
    );
}

#[test]
fn plain_http_is_refused_in_production_unless_loopback() {
    let mut b = SettingsBuilder::new(Surface::Env, true);
    let e = b
        .set(
            "OUTPUT_URL",
            RawValue::Text("http://collector.example.com/in".into()),
        )
        .and_then(|_| b.set("PORTS", RawValue::Text("80".into())))
        .and_then(|_| b.build().map(|_| ()))
        .unwrap_err();
    assert!(e.to_string().contains("OUTPUT_URL"), "{e}");
    assert!(e.to_string().contains("https://"), "{e}");
    let mut b = SettingsBuilder::new(Surface::Env, true);
    b.set("OUTPUT_URL", RawValue::Text("http://127.0.0.1:9/in".into()))
        .unwrap();
    b.set("PORTS", RawValue::Text("80".into())).unwrap();
    assert!(b.build().is_ok());
}

#[test]
fn retry_after_is_honoured_within_the_schedule() {
    // 503 with Retry-After: 1 once, then 200. The schedule's first step is 200 ms (±20 %);
    // Retry-After raises it to 1 s, capped at the last step × 1.2 (800 ms × 1.2 = 960 ms).
    let srv = serve(|n, _| {
        if n == 0 {
            Reply::RetryAfter(503, 1)
        } else {
            Reply::Status(200)
        }
    });
    let mut c = cfg(&srv.url());
    c.retry_base = Duration::from_millis(200);
    let mut out = HttpOutput::new(c).unwrap();
    out.send(&batch(0, 1));
    out.close();
    assert_eq!(out.stats().delivered, 1);
    let reqs = srv.requests();
    assert_eq!(reqs.len(), 2);
    let gap = reqs[1].at - reqs[0].at;
    eprintln!("retry after {gap:?}");
    assert!(
        gap >= Duration::from_millis(950),
        "Retry-After ignored: {gap:?}"
    );
}

/// OTLP/HTTP partial success: a 200 whose `ExportTraceServiceResponse` says the collector
/// dropped some spans. Counted in `otlp_spans_rejected`, one warn line with the collector's
/// message, and no retry; a garbage or empty answer is a plain success.
#[test]
fn otlp_partial_success_is_counted_logged_and_never_retried() {
    use opentelemetry_proto::tonic::collector::trace::v1::{
        ExportTracePartialSuccess, ExportTraceServiceResponse,
    };
    use prost::Message as _;
    use tcp_sniffer::config::{LogLevel, OutputFormat};

    let pb: &'static [u8] = ExportTraceServiceResponse {
        partial_success: Some(ExportTracePartialSuccess {
            rejected_spans: 2,
            error_message: "spans older than 24h dropped".into(),
        }),
    }
    .encode_to_vec()
    .leak();
    // More than were sent (a collector bug): counted as the request's three spans.
    let too_many: &'static [u8] = ExportTraceServiceResponse {
        partial_success: Some(ExportTracePartialSuccess {
            rejected_spans: 99,
            error_message: "quota".into(),
        }),
    }
    .encode_to_vec()
    .leak();
    let json: &'static [u8] =
        br#"{"partialSuccess":{"rejectedSpans":"1","errorMessage":"attribute too long"}}"#;
    let cases: [(Reply, u64, Option<&str>); 6] = [
        (
            Reply::Answer(200, "application/x-protobuf", too_many),
            3,
            Some("quota"),
        ),
        (
            Reply::Answer(200, "application/x-protobuf", pb),
            2,
            Some("spans older than 24h dropped"),
        ),
        (
            Reply::Answer(200, "application/json", json),
            1,
            Some("attribute too long"),
        ),
        (Reply::Answer(200, "application/x-protobuf", b""), 0, None),
        (
            Reply::Answer(200, "application/x-protobuf", b"\xff\xfe not protobuf"),
            0,
            None,
        ),
        (Reply::Answer(200, "application/json", b"<html>"), 0, None),
    ];
    for (reply, rejected, message) in cases {
        let logs = Captured::default();
        log::set_sink(Some(Box::new(logs.clone())));
        log::set_level(LogLevel::Debug);
        let srv = serve(move |_, _| reply);
        let mut c = cfg(&srv.url());
        c.format = OutputFormat::Otlp;
        c.batch_size = 10;
        let mut out = HttpOutput::new(c).unwrap();
        // Three exchanges (request + response each): three spans in one export request.
        out.send(&batch(0, 6));
        out.close();
        log::set_sink(None);
        log::set_level(LogLevel::Info);
        let st = out.stats();
        let text = logs.text();
        assert_eq!(srv.requests().len(), 1, "{reply:?}: never retried\n{text}");
        assert_eq!(st.retries, 0, "{reply:?}");
        assert_eq!(st.delivered, 6, "{reply:?}: the request was accepted");
        assert_eq!(st.dropped_rejected, 0, "{reply:?}");
        assert_eq!(st.otlp_spans_rejected, rejected, "{reply:?}\n{text}");
        let lines = logs.lines();
        let warns: Vec<&serde_json::Value> =
            lines.iter().filter(|l| l["level"] == "warn").collect();
        match message {
            Some(m) => {
                assert_eq!(warns.len(), 1, "{reply:?}: one warn line\n{text}");
                assert_eq!(warns[0]["errorMessage"], m, "{text}");
                assert_eq!(warns[0]["rejectedSpans"], rejected, "{text}");
                assert_eq!(warns[0]["spans"], 3, "{text}");
            }
            None => {
                assert!(warns.is_empty(), "{reply:?}: no warning\n{text}");
            }
        }
        let unreadable = lines.iter().any(|l| {
            l["level"] == "debug" && l["message"].as_str().unwrap().contains("unreadable")
        });
        let garbage = matches!(reply, Reply::Answer(_, _, b) if !b.is_empty() && rejected == 0);
        assert_eq!(
            unreadable, garbage,
            "{reply:?}: debug line for a garbage answer\n{text}"
        );
    }
}
