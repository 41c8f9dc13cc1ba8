//! `--ports any`, CONNECT tunnels and compressed bodies, captured live from real peers.
//!
//! In a network namespace of its own (`unshare(CLONE_NEWNET)` on a thread, as
//! `live_http.rs` does), the test starts nginx on an unusual port (47001, listed nowhere)
//! with `gzip on`, and a tiny forward proxy written in Python (47002: answers `CONNECT` with
//! `200` and relays bytes both ways), then runs the `tcp-sniffer` binary with `--ports any`
//! on `lo` and drives real clients:
//!
//! * `curl --compressed` fetches a 20 000-byte text file: the response must carry
//!   `content-encoding: gzip`, `bodySize` the compressed length, `decodedBodySize` 20 000 and
//!   the decoded text as `body`;
//! * `curl --proxytunnel -x` fetches `/1k` through the proxy: the `CONNECT` and its `200`
//!   come out on port 47002, then the `GET /1k` and its response with `tunnel: true`; the
//!   proxy's own connection to nginx comes out too, without `tunnel`;
//! * `curl https://` to the plain-HTTP port sends a TLS ClientHello: counted in
//!   `http.non_http_tls`, the connection let go (`flow.connections_not_http`), and one
//!   `warn` line names port 47001;
//!
//! and every request must come from the side that sent the request line, with nginx's
//! access log agreeing on the exchanges it served.
//!
//! Needs root (namespaces, CAP_NET_RAW), nginx, curl and python3; skips loudly without them
//! (fails under CI).

use std::fs;
use std::net::{SocketAddr, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use serde_json::Value;

mod common;

use common::netns::{enter_new_netns, ip};
use common::DEADLINE;

const NGINX_PORT: u16 = 47001;
const PROXY_PORT: u16 = 47002;
const TEXT_LEN: usize = 20_000;

const NGINX_CONF: &str = r#"
daemon off;
master_process off;
worker_processes 1;
pid {{DIR}}/nginx.pid;
error_log {{DIR}}/error.log warn;
events { worker_connections 64; }
http {
    types { text/plain txt; }
    default_type application/octet-stream;
    client_body_temp_path {{DIR}}/tmp;
    proxy_temp_path {{DIR}}/tmp;
    fastcgi_temp_path {{DIR}}/tmp;
    uwsgi_temp_path {{DIR}}/tmp;
    scgi_temp_path {{DIR}}/tmp;
    gzip on;
    gzip_min_length 0;
    gzip_types text/plain;
    log_format live '$remote_port $request_method $request_uri $status';
    server {
        listen 127.0.0.1:47001;
        root {{DIR}}/www;
        access_log {{DIR}}/access.log live;
    }
}
"#;

/// A forward proxy that understands only `CONNECT host:port`: it answers `200` and relays.
const PROXY_PY: &str = r#"
import socket, sys, threading
def pipe(a, b):
    try:
        while True:
            d = a.recv(65536)
            if not d:
                break
            b.sendall(d)
    except OSError:
        pass
    try:
        b.shutdown(socket.SHUT_WR)
    except OSError:
        pass
def serve(c):
    head = b""
    while b"\r\n\r\n" not in head:
        d = c.recv(4096)
        if not d:
            c.close(); return
        head += d
    line = head.split(b"\r\n")[0].split()
    if line[0] != b"CONNECT":
        c.sendall(b"HTTP/1.1 405 Method Not Allowed\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
        c.close(); return
    host, port = line[1].rsplit(b":", 1)
    u = socket.create_connection((host.decode(), int(port)))
    c.sendall(b"HTTP/1.1 200 Connection Established\r\n\r\n")
    rest = head.split(b"\r\n\r\n", 1)[1]
    if rest:
        u.sendall(rest)
    t = threading.Thread(target=pipe, args=(u, c)); t.start()
    pipe(c, u); t.join(); c.close(); u.close()
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", int(sys.argv[1]))); s.listen(16)
while True:
    c, _ = s.accept()
    threading.Thread(target=serve, args=(c,), daemon=True).start()
"#;

fn skip(reason: &str) {
    common::netns::skip("live any-port", reason);
}

fn missing(tools: &[&str]) -> Option<String> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    let missing: Vec<&str> = tools
        .iter()
        .copied()
        .filter(|t| !std::env::split_paths(&path).any(|d| d.join(t).is_file()))
        .collect();
    (!missing.is_empty()).then(|| format!("not installed: {}", missing.join(", ")))
}

/// Kills and reaps a child when dropped (a failed assertion leaves nothing running).
struct Reap(Child);

impl Drop for Reap {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn wait_listening(port: u16) {
    let addr: SocketAddr = ([127, 0, 0, 1], port).into();
    common::wait_until(&format!("something listening on {addr}"), DEADLINE, || {
        TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok()
    });
}

fn curl(args: &[&str]) -> (bool, String) {
    let out = Command::new("curl")
        .args(["-sS", "--max-time", "20"])
        .args(args)
        .output()
        .expect("run curl");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}

fn text() -> String {
    let mut t = String::new();
    let mut i = 0;
    while t.len() < TEXT_LEN {
        t.push_str(&format!("line {i} of a compressible text\n"));
        i += 1;
    }
    t.truncate(TEXT_LEN);
    t
}

fn scenario(dir: PathBuf, backend: &'static str) {
    fs::create_dir_all(dir.join("www")).unwrap();
    fs::create_dir_all(dir.join("tmp")).unwrap();
    fs::write(dir.join("www/big.txt"), text()).unwrap();
    fs::write(dir.join("www/1k"), vec![b'k'; 1024]).unwrap();
    let d = dir.to_string_lossy().to_string();
    fs::write(dir.join("nginx.conf"), NGINX_CONF.replace("{{DIR}}", &d)).unwrap();
    let _nginx = Reap(
        Command::new("nginx")
            .args([
                "-p",
                &d,
                "-c",
                &format!("{d}/nginx.conf"),
                "-e",
                &format!("{d}/error.log"),
            ])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start nginx"),
    );
    let _proxy = Reap(
        Command::new("python3")
            .args(["-c", PROXY_PY, &PROXY_PORT.to_string()])
            .stdin(Stdio::null())
            .spawn()
            .expect("start the proxy"),
    );
    wait_listening(NGINX_PORT);
    wait_listening(PROXY_PORT);
    let log_lines = || {
        fs::read_to_string(dir.join("access.log"))
            .unwrap_or_default()
            .lines()
            .map(str::to_string)
            .collect::<Vec<_>>()
    };
    let probes = log_lines().len();

    let out = dir.join("messages.jsonl");
    let mut sniffer = Reap(
        Command::new(env!("CARGO_BIN_EXE_tcp-sniffer"))
            .args([
                "-i",
                "lo",
                "--ports",
                "any",
                "--backend",
                backend,
                "--stats",
            ])
            .stdin(Stdio::null())
            .stdout(fs::File::create(&out).unwrap())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start tcp-sniffer"),
    );
    let stderr = match common::wait_capturing(&mut sniffer.0) {
        Ok(lines) => lines,
        Err(log) if log.contains("CAP_NET_RAW") => return skip(&log),
        Err(log) => panic!("tcp-sniffer did not start capturing {log}"),
    };

    let base = format!("http://127.0.0.1:{NGINX_PORT}");
    let (ok, body) = curl(&["--compressed", &format!("{base}/big.txt")]);
    assert!(
        ok && body == text(),
        "curl --compressed got {} bytes",
        body.len()
    );
    let proxy = format!("http://127.0.0.1:{PROXY_PORT}");
    let (ok, body) = curl(&["--proxytunnel", "-x", &proxy, &format!("{base}/1k")]);
    assert!(
        ok && body.len() == 1024,
        "through the proxy: {ok} {}",
        body.len()
    );
    // TLS to the plain-HTTP port: fails, as it should; the sniffer counts and warns.
    let _ = curl(&["-k", &format!("https://127.0.0.1:{NGINX_PORT}/")]);
    common::wait_until("nginx logged the exchanges", DEADLINE, || {
        log_lines().len() - probes >= 3
    });

    let pid = sniffer.0.id() as i32;
    // SAFETY: signalling our own child, which has not been reaped yet.
    let signalled = unsafe { libc::kill(pid, libc::SIGINT) };
    assert_eq!(signalled, 0);
    let end = Instant::now() + DEADLINE;
    let status = loop {
        if let Some(s) = sniffer.0.try_wait().unwrap() {
            break s;
        }
        assert!(
            Instant::now() < end,
            "tcp-sniffer did not exit after SIGINT"
        );
        thread::sleep(Duration::from_millis(50));
    };
    let log = stderr.join().unwrap();
    assert!(status.success(), "{status}: {}", log.join("\n"));
    let msgs: Vec<Value> = fs::read_to_string(&out)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let brief: Vec<String> = msgs
        .iter()
        .map(|m| {
            format!(
                "{} {}:{}->{} {}{} tunnel={}",
                m["type"],
                m["method"],
                m["url"],
                m["destination"]["port"],
                m["statusCode"],
                m["source"]["port"],
                m["tunnel"]
            )
        })
        .collect();
    let all = brief.join("\n");

    // Roles: every request goes to nginx or the proxy, every response comes from them.
    for m in &msgs {
        let server = if m["type"] == "request" {
            &m["destination"]["port"]
        } else {
            &m["source"]["port"]
        };
        assert!(
            *server == NGINX_PORT || *server == PROXY_PORT,
            "server side from content: {m}\n{all}"
        );
    }

    // gzip: decoded, sizes as a browser would report them.
    let gz = msgs
        .iter()
        .find(|m| m["type"] == "response" && m["headers"]["content-encoding"] == "gzip")
        .unwrap_or_else(|| panic!("no gzip response:\n{all}"));
    assert_eq!(gz["decodedBodySize"], TEXT_LEN, "{gz}");
    assert!(
        gz["bodySize"].as_u64().unwrap() < TEXT_LEN as u64 / 2,
        "{gz}"
    );
    assert_eq!(gz["body"], text().as_str());
    assert_eq!(gz["incomplete"], false);

    // CONNECT, then the request inside the tunnel.
    let on_proxy: Vec<&Value> = msgs
        .iter()
        .filter(|m| m["destination"]["port"] == PROXY_PORT || m["source"]["port"] == PROXY_PORT)
        .collect();
    let kinds: Vec<String> = on_proxy
        .iter()
        .map(|m| {
            format!(
                "{}{}{}",
                m["method"].as_str().unwrap_or(""),
                m["statusCode"]
                    .as_u64()
                    .map(|s| s.to_string())
                    .unwrap_or_default(),
                if m["tunnel"] == true { "+tunnel" } else { "" }
            )
        })
        .collect();
    assert_eq!(
        kinds,
        ["CONNECT", "200", "GET+tunnel", "200+tunnel"],
        "on the proxy's port:\n{all}"
    );
    assert_eq!(on_proxy[0]["url"], format!("127.0.0.1:{NGINX_PORT}"));
    assert_eq!(on_proxy[2]["url"], "/1k");
    assert_eq!(on_proxy[3]["bodySize"], 1024);
    // The proxy's own connection to nginx: the same exchange, not in a tunnel.
    assert!(
        msgs.iter().any(|m| m["url"] == "/1k"
            && m["destination"]["port"] == NGINX_PORT
            && m.get("tunnel").is_none()),
        "{all}"
    );

    // TLS on 47001: counted, let go, warned about once.
    let stats: Value = log
        .iter()
        .rev()
        .find_map(|l| {
            serde_json::from_str::<Value>(l)
                .ok()
                .filter(|v| v.get("http").is_some())
        })
        .unwrap_or_else(|| panic!("no --stats line:\n{}", log.join("\n")));
    assert!(
        stats["http"]["non_http_tls"].as_u64().unwrap() >= 1,
        "{stats}"
    );
    assert!(
        stats["flow"]["connections_not_http"].as_u64().unwrap() >= 1,
        "{stats}"
    );
    let warns: Vec<&String> = log
        .iter()
        .filter(|l| l.contains(r#""level":"warn""#) && l.contains("TLS on a monitored port"))
        .collect();
    assert_eq!(warns.len(), 1, "{warns:?}");
    assert!(
        warns[0].contains(&format!(r#""port":{NGINX_PORT}"#)),
        "{}",
        warns[0]
    );

    // nginx served big.txt and /1k (through the proxy): both came out as exchanges.
    let served: Vec<String> = log_lines().into_iter().skip(probes).collect();
    for path in ["/big.txt", "/1k"] {
        assert!(
            served
                .iter()
                .any(|l| l.contains(&format!("GET {path} 200"))),
            "{served:?}"
        );
        assert!(
            msgs.iter()
                .any(|m| m["url"] == path && m["destination"]["port"] == NGINX_PORT),
            "{path}:\n{all}"
        );
    }
    assert_eq!(stats["capture"]["kernel_drops"], 0, "{stats}");
}

fn run(backend: &'static str) {
    if let Some(reason) = missing(&["nginx", "curl", "python3"]) {
        return skip(&reason);
    }
    let dir = std::env::temp_dir().join(format!("s18-any-port-{backend}-{}", std::process::id()));
    let _ = fs::remove_dir_all(&dir);
    let keep = dir.clone();
    let handle = thread::spawn(move || {
        enter_new_netns()?;
        ip("link set lo up")?;
        scenario(dir, backend);
        Ok::<(), String>(())
    });
    let result = handle.join();
    let _ = fs::remove_dir_all(&keep);
    match result {
        Ok(Ok(())) => {}
        Ok(Err(reason)) => skip(&reason),
        Err(panic) => std::panic::resume_unwind(panic),
    }
}

#[test]
fn any_port_connect_and_gzip_af_packet() {
    run("af_packet");
}

#[test]
fn any_port_connect_and_gzip_pcap() {
    run("pcap");
}
