//! The real `tcp-sniffer-webhook` binary: exit codes, JSON logs on stderr, SIGTERM.

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::mpsc;

use common::*;
use serde_json::Value;

const BIN: &str = env!("CARGO_BIN_EXE_tcp-sniffer-webhook");

/// Run with a clean environment so a developer's LISTEN_ADDR etc. cannot leak in.
fn cmd() -> Command {
    let mut c = Command::new(BIN);
    c.env_clear();
    c
}

#[test]
fn invalid_settings_exit_2_naming_the_setting() {
    for (args, envs, needle) in [
        (vec![], vec![], "--tls-cert / TLS_CERT_FILE"),
        (
            vec!["--tls-cert", "/c", "--tls-key", "/k"],
            vec![],
            "--sniffer-image / SNIFFER_IMAGE",
        ),
        (
            vec!["--tls-cert", "/c", "--tls-key", "/k"],
            vec![("SNIFFER_IMAGE", "img"), ("DEFAULT_SAMPLE_RATE", "3")],
            "--sample-rate / DEFAULT_SAMPLE_RATE",
        ),
        (
            vec![
                "--tls-cert",
                "/c",
                "--tls-key",
                "/k",
                "--sniffer-image",
                "img",
            ],
            vec![("LISTEN_ADDR", "8443")],
            "--listen / LISTEN_ADDR",
        ),
    ] {
        let out = cmd().args(&args).envs(envs).output().unwrap();
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(needle), "{needle} not in {err}");
    }
    // Unknown flags are clap errors: exit 2 as well.
    let out = cmd().arg("--no-such-flag").output().unwrap();
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn unreadable_certificate_exits_1_with_a_json_log() {
    let out = cmd()
        .args([
            "--listen",
            "127.0.0.1:0",
            "--probe-addr",
            "127.0.0.1:0",
            "--tls-cert",
            "/nonexistent/tls.crt",
            "--tls-key",
            "/nonexistent/tls.key",
        ])
        .env("SNIFFER_IMAGE", "img")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    let last: Value = serde_json::from_str(err.lines().last().unwrap()).unwrap();
    assert_eq!(last["level"], "error");
    assert!(
        last["error"]
            .as_str()
            .unwrap()
            .contains("/nonexistent/tls.crt"),
        "{last}"
    );
}

#[test]
fn probe_port_in_use_exits_1_naming_the_setting() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let taken_addr = taken.local_addr().unwrap().to_string();
    let out = cmd()
        .args(["--listen", "127.0.0.1:0", "--probe-addr", &taken_addr])
        .args(["--tls-cert", "/nonexistent/tls.crt", "--tls-key", "/k"])
        .env("SNIFFER_IMAGE", "img")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    let last: Value = serde_json::from_str(err.lines().last().unwrap()).unwrap();
    let msg = last["error"].as_str().unwrap();
    assert!(msg.contains("--probe-addr / PROBE_ADDR"), "{last}");
    assert!(msg.contains(&taken_addr), "{last}");
    drop(taken);
}

#[test]
fn serves_and_stops_cleanly_on_sigterm() {
    let pki = TestPki::new("binary");
    pki.install("bin");
    let child = cmd()
        // The serve-on delay after SIGTERM: the test checks /readyz and a review inside it,
        // right after the log line that opens it. Generous, so a busy machine cannot close it
        // first; it is not measured.
        .args([
            "--listen",
            "127.0.0.1:0",
            "--probe-addr",
            "127.0.0.1:0",
            "--shutdown-delay-ms",
            "10000",
        ])
        .env("TLS_CERT_FILE", pki.cert_path())
        .env("TLS_KEY_FILE", pki.key_path())
        .env("SNIFFER_IMAGE", "registry.example/tcp-sniffer:1")
        .env("NATIVE_SIDECAR", "true")
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Kill the server if an assertion fails, so no process outlives the test.
    let mut child = KillOnDrop(child);
    let (tx, rx) = mpsc::channel::<String>();
    let stderr = child.0.stderr.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let mut lines = Vec::new();
    let next = |lines: &mut Vec<Value>| -> Value {
        let l = rx
            .recv_timeout(DEADLINE)
            .unwrap_or_else(|_| panic!("no log line within {DEADLINE:?}"));
        let v: Value = serde_json::from_str(&l).unwrap_or_else(|e| panic!("not JSON: {l:?}: {e}"));
        for k in ["timestamp", "level", "message"] {
            assert!(v.get(k).is_some(), "{k} missing in {l}");
        }
        lines.push(v.clone());
        v
    };
    let first = next(&mut lines);
    assert_eq!(first["message"], "tcp-sniffer-webhook listening");
    assert_eq!(first["nativeSidecar"], true);
    let addr: std::net::SocketAddr = first["addr"].as_str().unwrap().parse().unwrap();
    let probe_addr: std::net::SocketAddr = first["probeAddr"]
        .as_str()
        .unwrap_or_else(|| panic!("no probeAddr in {first}"))
        .parse()
        .unwrap();
    // The probe listener: plain HTTP, a new connection per request (as the kubelet's).
    let probe = async |path: &str| {
        reqwest::Client::builder()
            .http1_only()
            .pool_max_idle_per_host(0)
            .build()
            .unwrap()
            .get(format!("http://{probe_addr}{path}"))
            .send()
            .await
            .map(|r| r.status().as_u16())
    };

    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let client = reqwest::Client::builder()
        .use_rustls_tls()
        .tls_built_in_root_certs(false)
        .add_root_certificate(reqwest::Certificate::from_pem(pki.ca_pem.as_bytes()).unwrap())
        .resolve(SERVER_NAME, addr)
        .build()
        .unwrap();
    let url = |p: &str| format!("https://{SERVER_NAME}:{}{p}", addr.port());
    // POSTs an AdmissionReview for a fixture pod.
    let review = async || {
        let body = serde_json::to_vec(&review_for(&fixture("pods/init-containers.json"))).unwrap();
        client
            .post(url("/mutate"))
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
    };
    rt.block_on(async {
        // Ready once the first connection is served.
        wait_until_async(
            "/readyz to say 200",
            async || matches!(client.get(url("/readyz")).send().await, Ok(r) if r.status() == 200),
        )
        .await;
        let r = review().await.unwrap();
        assert_eq!(r.status(), 200);
        let answer: Value = r.json().await.unwrap();
        assert!(answer["response"].get("patch").is_some(), "{answer:#}");
        let ops = patch_ops(&answer["response"]);
        assert_eq!(ops[0]["path"], "/spec/initContainers/0");
        assert_eq!(probe("/healthz").await.unwrap(), 200, "probe port /healthz");
        assert_eq!(probe("/readyz").await.unwrap(), 200, "probe port /readyz");
        assert_eq!(probe("/metrics").await.unwrap(), 404, "probe port /metrics");
    });
    // The review was logged with its outcome.
    let review_log = next(&mut lines);
    assert_eq!(review_log["message"], "admission review");
    assert_eq!(review_log["verdict"], "injected");
    assert_eq!(review_log["pod"], "with-init");

    let status = Command::new("kill")
        .args(["-TERM", &child.0.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    // The server logs that the delay began; from then on /readyz says 503 (at once: no
    // polling) while requests are still served.
    let signalled = next(&mut lines);
    assert_eq!(signalled["message"], "signal received", "{signalled}");
    let delay = next(&mut lines);
    assert!(
        delay["message"]
            .as_str()
            .unwrap()
            .starts_with("shutdown requested"),
        "{delay}"
    );
    rt.block_on(async {
        let r = client
            .get(url("/readyz"))
            .send()
            .await
            .expect("still serving during the delay");
        assert_eq!(r.status(), 503, "/readyz during the shutdown delay");
        assert_eq!(
            probe("/readyz")
                .await
                .expect("probe port open during the delay"),
            503,
            "probe port /readyz during the shutdown delay"
        );
        let r = review()
            .await
            .expect("a review is still served during the delay");
        assert_eq!(r.status(), 200);
    });
    // Close the client's pooled connections (an idle h2 connection is drained with a
    // GOAWAY + PING that needs the client's runtime to answer).
    drop(client);
    drop(rt);
    let mut code = None;
    wait_until("the server to exit after SIGTERM and its delay", || {
        code = child.0.try_wait().unwrap().map(|s| s.code());
        code.is_some()
    });
    assert_eq!(code, Some(Some(0)));
    // The rest of the log, up to the end of stderr (the reader ends with the process).
    loop {
        match rx.recv_timeout(DEADLINE) {
            Ok(l) => lines.push(serde_json::from_str(&l).unwrap()),
            Err(mpsc::RecvTimeoutError::Disconnected) => break,
            Err(mpsc::RecvTimeoutError::Timeout) => {
                panic!("stderr still open {DEADLINE:?} after the server exited")
            }
        }
    }
    let messages: Vec<&str> = lines.iter().filter_map(|l| l["message"].as_str()).collect();
    assert!(messages.contains(&"signal received"), "{messages:?}");
    assert_eq!(messages.last(), Some(&"stopped"), "{messages:?}");
}

struct KillOnDrop(std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        if let Ok(None) = self.0.try_wait() {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
}
