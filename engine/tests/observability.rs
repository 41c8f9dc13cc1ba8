// Observability against real peers: `/metrics` scraped by a real Prometheus server (Debian's
// `prometheus`) and linted by `promtool check metrics`; OTLP/HTTP traces received by an HTTP
// server that decodes them with the official protobuf definitions (the `opentelemetry-proto`
// crate here, and the Python `opentelemetry-proto` package when its venv is installed by
// scripts/install-deps.sh).
//
// The traffic is the demo capture replayed through the library's runtime (the same
// `Sniffer` the CLI and the addon drive); the live test in live_http.rs covers capture.

use std::io::{Read, Write};
use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::any_value;
use opentelemetry_proto::tonic::trace::v1::Span;
use prost::Message as _;
use tcp_sniffer::output::build_outputs;
use tcp_sniffer::runtime::{Hooks, Sniffer};

mod common;

fn demo() -> String {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../tests/data/demo.pcap")
        .to_string_lossy()
        .into_owned()
}

fn replay(pairs: &[(&str, &str)]) -> Sniffer {
    let s = common::settings(pairs);
    let outputs = build_outputs(&s, false).expect("outputs");
    let mut sn = Sniffer::start(&s, outputs, None, Hooks::default()).expect("start");
    common::wait_until("the replay ends", common::DEADLINE, || sn.is_finished());
    sn.wait().expect("replay without error");
    sn
}

/// A plain HTTP GET on loopback; returns the status and body.
fn get(addr: &str, path: &str, accept: Option<&str>) -> (u16, String) {
    let mut c = std::net::TcpStream::connect(addr).expect("connect");
    c.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let accept = accept
        .map(|a| format!("Accept: {a}\r\n"))
        .unwrap_or_default();
    write!(
        c,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\n{accept}Connection: close\r\n\r\n"
    )
    .unwrap();
    let mut out = String::new();
    c.read_to_string(&mut out).unwrap();
    let status = out[9..12].parse().unwrap();
    let body = out
        .split_once("\r\n\r\n")
        .map(|x| x.1)
        .unwrap_or("")
        .to_string();
    (status, body)
}

fn sample(text: &str, line_start: &str) -> Option<f64> {
    text.lines()
        .find(|l| l.starts_with(line_start))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Kills the child on drop.
struct Child(std::process::Child);
impl Drop for Child {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn metrics_are_scraped_by_prometheus_and_pass_promtool() {
    for tool in ["prometheus", "promtool"] {
        if Command::new(tool).arg("--version").output().is_err() {
            assert!(
                !common::is_ci(),
                "{tool} missing in CI: run scripts/install-deps.sh"
            );
            eprintln!("SKIP: {tool} not installed (scripts/install-deps.sh installs it)");
            return;
        }
    }
    let sn = replay(&[
        ("--read", &demo()),
        ("--ports", "80,8080"),
        ("--metrics-addr", "127.0.0.1:0"),
        ("--stdout", "false"),
    ]);
    let stats = sn.stats();
    let addr = sn.metrics_addr().expect("metrics served").to_string();

    // What the endpoint says, straight.
    let (status, text) = get(&addr, "/metrics", None);
    assert_eq!(status, 200);
    let exchanges = stats.http.responses - stats.http.interim_responses;
    assert!(exchanges > 0, "the demo capture has exchanges");
    let answered: f64 = text
        .lines()
        .filter(|l| l.starts_with("tcp_sniffer_http_requests_total{"))
        .filter(|l| !l.contains("status_class=\"none\""))
        .map(|l| l.rsplit(' ').next().unwrap().parse::<f64>().unwrap())
        .sum();
    assert_eq!(answered as u64, exchanges, "{text}");
    let with_request = exchanges - stats.http.responses_without_request;
    assert_eq!(
        sample(&text, "tcp_sniffer_http_request_duration_seconds_count"),
        Some(with_request as f64)
    );
    assert_eq!(
        sample(&text, "tcp_sniffer_capture_packets_total "),
        Some(stats.capture.packets as f64)
    );
    assert_eq!(
        sample(&text, "tcp_sniffer_http_request_messages_total "),
        Some(stats.http.requests as f64)
    );
    assert_eq!(
        text.matches("# TYPE tcp_sniffer_http_requests_total ")
            .count(),
        1
    );
    assert_eq!(get(&addr, "/", None).0, 404);
    let (_, om) = get(
        &addr,
        "/metrics",
        Some("application/openmetrics-text;version=1.0.0"),
    );
    assert!(om.ends_with("# EOF\n"));

    // promtool lints the exposition (naming, HELP, TYPE, units).
    let mut p = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    p.stdin.take().unwrap().write_all(text.as_bytes()).unwrap();
    let out = p.wait_with_output().unwrap();
    assert!(
        out.status.success() && out.stdout.is_empty() && out.stderr.is_empty(),
        "promtool check metrics: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );

    // A real Prometheus scrapes it; its query API must show the same counts.
    let dir = std::env::temp_dir().join(format!("tcp-sniffer-prom-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let config = dir.join("prometheus.yml");
    std::fs::write(
        &config,
        format!(
            "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\nscrape_configs:\n  - job_name: tcp-sniffer\n    static_configs:\n      - targets: ['{addr}']\n"
        ),
    )
    .unwrap();
    let web = format!("127.0.0.1:{}", free_port());
    let _prom = Child(
        Command::new("prometheus")
            .arg(format!("--config.file={}", config.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.join("data").display()
            ))
            .arg(format!("--web.listen-address={web}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("prometheus starts"),
    );
    let query = |q: &str| -> Option<serde_json::Value> {
        let url = format!("http://{web}/api/v1/query");
        let mut resp = ureq::get(&url).query("query", q).call().ok()?;
        let v: serde_json::Value = serde_json::from_reader(resp.body_mut().as_reader()).ok()?;
        v["data"]["result"].as_array()?.first().cloned()
    };
    let up = common::wait_for(
        "Prometheus scrapes the endpoint",
        Duration::from_secs(120),
        || query("up{job=\"tcp-sniffer\"}").filter(|r| r["value"][1] == "1"),
    );
    eprintln!("scrape target up: {up}");
    let sum = common::wait_for(
        "Prometheus has the RED counter",
        Duration::from_secs(60),
        || query("sum(tcp_sniffer_http_requests_total{status_class!=\"none\"})"),
    );
    assert_eq!(sum["value"][1], exchanges.to_string(), "{sum}");
    let count = query("tcp_sniffer_http_request_duration_seconds_count").unwrap();
    assert_eq!(count["value"][1], with_request.to_string());
    let packets = query("tcp_sniffer_capture_packets_total").unwrap();
    assert_eq!(packets["value"][1], stats.capture.packets.to_string());
    let _ = std::fs::remove_dir_all(&dir);
    drop(sn);
}

fn attr(sp: &Span, k: &str) -> Option<any_value::Value> {
    sp.attributes
        .iter()
        .find(|a| a.key == k)
        .and_then(|a| a.value.clone()?.value)
}

#[test]
fn otlp_spans_decode_with_the_official_definitions() {
    let (url, got) = common::otlp::receiver();
    std::env::set_var("POD_NAME", "web-7f9c");
    std::env::set_var("POD_NAMESPACE", "shop");
    std::env::set_var("NODE_NAME", "node-a");
    let s = common::settings(&[
        ("--read", &demo()),
        ("--ports", "80,8080"),
        ("--output-url", &url),
        ("--output-format", "otlp"),
        ("--output-batch-size", "7"),
        ("--output-batch-wait-ms", "50"),
    ]);
    std::env::set_var("OUTPUT_URL_AUTH_TOKEN", "unused");
    let mut s = s;
    s.output_url_auth_token = Some("tok-otlp".into());
    let outputs = build_outputs(&s, false).expect("outputs");
    let placement = tcp_sniffer::message::Placement::from_env();
    let mut sn = Sniffer::start(&s, outputs, placement, Hooks::default()).expect("start");
    common::wait_until("the replay ends", common::DEADLINE, || sn.is_finished());
    sn.wait().unwrap();
    let stats = sn.stop();
    assert_eq!(
        stats.output.delivered, stats.output.messages,
        "{:?}",
        stats.output
    );

    let reqs = got.lock().unwrap().clone();
    assert!(!reqs.is_empty());
    let mut spans = Vec::new();
    for (headers, body) in &reqs {
        let h = |k: &str| {
            headers
                .iter()
                .find(|(n, _)| n == k)
                .map(|(_, v)| v.as_str())
        };
        assert_eq!(h("content-type"), Some("application/x-protobuf"));
        assert_eq!(h("content-encoding"), Some("gzip"));
        assert_eq!(h("authorization"), Some("Bearer tok-otlp"));
        let export = ExportTraceServiceRequest::decode(body.as_slice()).expect("decodes");
        for rs in export.resource_spans {
            let res = rs.resource.unwrap();
            let get = |k: &str| {
                res.attributes
                    .iter()
                    .find(|a| a.key == k)
                    .and_then(|a| a.value.clone()?.value)
            };
            assert_eq!(
                get("k8s.pod.name"),
                Some(any_value::Value::StringValue("web-7f9c".into()))
            );
            assert_eq!(
                get("k8s.namespace.name"),
                Some(any_value::Value::StringValue("shop".into()))
            );
            assert_eq!(
                get("k8s.node.name"),
                Some(any_value::Value::StringValue("node-a".into()))
            );
            for ss in rs.scope_spans {
                assert_eq!(ss.scope.unwrap().name, "tcp-sniffer");
                spans.extend(ss.spans);
            }
        }
    }
    // One span per exchange: every request, plus every response whose request was not seen.
    let expected = stats.http.requests + stats.http.responses_without_request;
    assert_eq!(spans.len() as u64, expected);
    let mut with_status = 0;
    for sp in &spans {
        assert_eq!(sp.trace_id.len(), 16);
        assert_eq!(sp.span_id.len(), 8);
        assert!(sp.end_time_unix_nano >= sp.start_time_unix_nano);
        assert!(
            sp.start_time_unix_nano > 1_000_000_000_000_000_000,
            "a 2001+ capture"
        );
        assert!(attr(sp, "client.address").is_some());
        assert!(attr(sp, "server.port").is_some());
        if let Some(any_value::Value::IntValue(code)) = attr(sp, "http.response.status_code") {
            with_status += 1;
            let error = sp.status.as_ref().unwrap().code == 2;
            assert_eq!(error, code >= 500, "server span status for {code}");
        }
        if attr(sp, "http.request.method").is_some() {
            assert!(attr(sp, "url.path").is_some());
        }
    }
    let answered = stats.http.responses - stats.http.interim_responses;
    assert_eq!(with_status, answered);
    eprintln!(
        "{} export requests, {} spans; first span: {:?}",
        reqs.len(),
        spans.len(),
        spans[0]
    );

    // An independent decoder: the Python opentelemetry-proto package (its venv is made by
    // scripts/install-deps.sh).
    let py = "/opt/tcp-sniffer-tools/otlp/bin/python";
    if !std::path::Path::new(py).exists() {
        assert!(
            !common::is_ci(),
            "{py} missing in CI: run scripts/install-deps.sh"
        );
        eprintln!("SKIP python decoder: {py} not installed");
        return;
    }
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/otlp_decode.py");
    let mut total = 0;
    for (_, body) in &reqs {
        let mut p = Command::new(py)
            .arg(&script)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        p.stdin.take().unwrap().write_all(body).unwrap();
        let out = p.wait_with_output().unwrap();
        assert!(out.status.success());
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        total += v["spans"].as_u64().unwrap();
        assert_eq!(v["resource"]["k8s.pod.name"], "web-7f9c");
    }
    assert_eq!(total, expected);
}

#[test]
fn json_batches_are_gzipped() {
    let (url, got) = common::otlp::receiver();
    let s = common::settings(&[
        ("--read", &demo()),
        ("--ports", "80,8080"),
        ("--output-url", &url),
        ("--output-batch-size", "5"),
        ("--output-batch-wait-ms", "50"),
    ]);
    let outputs = build_outputs(&s, false).expect("outputs");
    let mut sn = Sniffer::start(&s, outputs, None, Hooks::default()).expect("start");
    let t = Instant::now();
    common::wait_until("the replay ends", common::DEADLINE, || sn.is_finished());
    sn.wait().unwrap();
    let stats = sn.stop();
    eprintln!("replayed in {:?}", t.elapsed());
    let reqs = got.lock().unwrap().clone();
    let mut lines = 0;
    for (headers, body) in &reqs {
        assert!(headers.contains(&("content-encoding".into(), "gzip".into())));
        assert!(headers.contains(&("content-type".into(), "application/x-ndjson".into())));
        for l in std::str::from_utf8(body).unwrap().lines() {
            serde_json::from_str::<serde_json::Value>(l).unwrap();
            lines += 1;
        }
    }
    assert_eq!(lines as u64, stats.output.messages);
    assert_eq!(stats.output.delivered, stats.output.messages);
}

#[test]
fn cli_exits_3_when_a_replay_delivered_nothing_only_when_asked() {
    let run = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_tcp-sniffer"))
            .args(["--read", &demo()])
            .args(args)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .output()
            .unwrap()
    };
    // No traffic on port 9 in the demo capture: nothing is delivered.
    let nothing = run(&["--ports", "9", "--fail-if-nothing-delivered"]);
    assert_eq!(nothing.status.code(), Some(3));
    let log = String::from_utf8_lossy(&nothing.stderr);
    assert!(log.contains("nothing was delivered"), "{log}");
    assert_eq!(run(&["--ports", "9"]).status.code(), Some(0), "opt-in only");
    assert_eq!(
        run(&["--ports", "8080", "--fail-if-nothing-delivered"])
            .status
            .code(),
        Some(0)
    );
    let live = Command::new(env!("CARGO_BIN_EXE_tcp-sniffer"))
        .args(["-i", "lo", "--ports", "80", "--fail-if-nothing-delivered"])
        .output()
        .unwrap();
    assert_eq!(live.status.code(), Some(2), "only with --read");
}
