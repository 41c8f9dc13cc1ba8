//! Real HTTP traffic, captured live, checked message by message against the servers' own logs.
//!
//! Every test runs in network namespaces it creates (a thread that calls `unshare(CLONE_NEWNET)`;
//! processes spawned from that thread inherit the namespace — the approach of
//! `tests/capture_live.rs`), starts real servers there — nginx (static files of 0 B, 1 KiB,
//! 64 KiB and 1 MiB; `engine/tests/live/nginx.conf.template`) and a Node `http` server
//! (chunked bodies, trailers, `Expect: 100-continue`; `engine/tests/live/server.js`) — drives
//! them with real clients (curl over HTTP/1.0 and 1.1, keep-alive, POST, IPv6; ab; wrk; Node
//! `fetch`; raw pipelined requests), captures with the sniffer, and then compares:
//!
//! * every exchange in the server's log (nginx's access log, the Node server's JSON log) must
//!   come out as a request message and its response message (paired by `connectionId` and
//!   `sequence`) with the same method, url, HTTP version, request body size, status and
//!   response body size — per client address and port, in order; no response without its
//!   request, no exchange the servers did not log; nothing `incomplete`, except a static file
//!   whose body nginx did not send whole (the client went away, e.g. wrk at the end of its
//!   run): that one must be flagged `incomplete`, and its body size is not compared (nginx
//!   counts bytes handed to the kernel, which may never reach the wire);
//! * an `Expect: 100-continue` request also has its interim `100` response (same `sequence`);
//! * HTTP/2 (`lo_h2`, peers in `engine/tests/live/h2.js`): every stream the Node `http2` and
//!   gRPC servers logged, with its `grpc-status`, from curl, the Node client, h2load and a
//!   gRPC client;
//! * the counters show no kernel, queue or output drops.
//!
//! Each scenario runs for both backends (af_packet, pcap) and 1 and 2 workers: four tests named
//! `<scenario>::<backend>_<n>_worker(s)_<frontend>`. The frontend alternates between the library
//! ([`Sniffer::start`] with an in-memory output) and the `tcp-sniffer` binary (stdout JSON lines,
//! `--stats`, stopped by SIGINT or SIGTERM), so both are exercised with both backends.
//!
//! The tests take a global lock and run one at a time: they load a 2-core machine (servers,
//! clients and a debug build of the sniffer), and two at once would turn a correctness test
//! into a drop measurement. For the same reason wrk is throttled (`live/throttle.lua`);
//! `scripts/live-bench.sh` measures the unthrottled rate with a release build.
//!
//! Needs root (CAP_SYS_ADMIN for namespaces, CAP_NET_RAW for capture) and nginx, node, curl,
//! wrk, ab, ethtool (`scripts/install-deps.sh test`). Without them each test prints a loud
//! SKIPPED banner and passes — except when `CI` is set, where it fails.

use std::collections::{BTreeMap, HashMap};
use std::fs;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicUsize, Ordering};
use std::sync::{mpsc, Arc, Mutex, MutexGuard};
use std::thread;
use std::time::{Duration, Instant};

use serde_json::Value;
use tcp_sniffer::capture::afpacket::{AfPacketConfig, AfPacketRing};
use tcp_sniffer::capture::CaptureError;
use tcp_sniffer::config::{CaptureBackend, Settings};
use tcp_sniffer::output::{Batch, Output};
use tcp_sniffer::runtime::{Hooks, Sniffer, StartError};
use tcp_sniffer::stats::OutputStats;

mod common;

use common::netns::{enter_new_netns, gettid, ip, sh};
use common::DEADLINE;

const NGINX_PORT: u16 = 8080;
const NODE_PORT: u16 = 8081;

// ---------------------------------------------------------------- privilege, tools, namespaces

fn skip_http(reason: &str) {
    common::netns::skip("live HTTP", reason);
}

/// One test at a time (see the module docs). A failed test poisons nothing for the others.
fn serial() -> MutexGuard<'static, ()> {
    static SERIAL: Mutex<()> = Mutex::new(());
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

/// The tools a scenario runs, or the reason it cannot.
fn missing_tools(tools: &[&str]) -> Option<String> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    let mut dirs: Vec<PathBuf> = std::env::split_paths(&path).collect();
    dirs.extend(["/usr/sbin".into(), "/sbin".into()]);
    let missing: Vec<&str> = tools
        .iter()
        .copied()
        .filter(|t| !dirs.iter().any(|d| d.join(t).is_file()))
        .collect();
    (!missing.is_empty()).then(|| format!("missing tools: {}", missing.join(", ")))
}

/// Sets the flag when dropped (also when a test panics), so helper threads end.
struct SetOnDrop(Arc<AtomicBool>);

impl Drop for SetOnDrop {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Relaxed);
    }
}

/// Runs `body` on a thread in a fresh network namespace with `lo` up, holding the global lock.
/// Skips (returns) when the namespace cannot be made or a tool is missing.
fn in_netns(tools: &[&str], body: impl FnOnce() + Send + 'static) {
    let _serial = serial();
    if let Some(reason) = missing_tools(tools) {
        return skip_http(&reason);
    }
    let handle = thread::spawn(move || {
        enter_new_netns()?;
        ip("link set lo up")?;
        body();
        Ok::<(), String>(())
    });
    match handle.join() {
        Ok(Ok(())) => {}
        Ok(Err(reason)) => skip_http(&reason),
        Err(panic) => std::panic::resume_unwind(panic),
    }
}

type Job = Box<dyn FnOnce() + Send>;

/// A thread living in its own network namespace that runs closures there: the peer end of a
/// veth pair, with its servers (processes spawned from it inherit the namespace). The
/// namespace lives until this is dropped and every process started in it has exited.
struct PeerNs {
    tid: i64,
    jobs: Option<mpsc::Sender<Job>>,
    thread: Option<thread::JoinHandle<()>>,
}

impl PeerNs {
    fn new() -> Result<PeerNs, String> {
        let (tid_tx, tid_rx) = mpsc::channel();
        let (jobs, job_rx) = mpsc::channel::<Job>();
        let thread = thread::spawn(move || {
            let entered = enter_new_netns().map(|()| gettid());
            let ok = entered.is_ok();
            tid_tx.send(entered).unwrap();
            if ok {
                for job in job_rx {
                    job();
                }
            }
        });
        let tid = tid_rx.recv().unwrap()?;
        Ok(PeerNs {
            tid,
            jobs: Some(jobs),
            thread: Some(thread),
        })
    }

    /// Runs `f` on the namespace's thread and returns what it returns.
    fn run<T: Send + 'static>(&self, f: impl FnOnce() -> T + Send + 'static) -> T {
        let (tx, rx) = mpsc::channel();
        self.jobs
            .as_ref()
            .unwrap()
            .send(Box::new(move || {
                let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(f));
                let _ = tx.send(r);
            }))
            .unwrap();
        match rx.recv().expect("peer namespace thread died") {
            Ok(v) => v,
            Err(panic) => std::panic::resume_unwind(panic),
        }
    }
}

impl Drop for PeerNs {
    fn drop(&mut self) {
        drop(self.jobs.take());
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

// ---------------------------------------------------------------- temp dirs and files

/// A directory under the system temp dir, removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new(tag: &str) -> TempDir {
        static N: AtomicU32 = AtomicU32::new(0);
        let path = std::env::temp_dir().join(format!(
            "tcp-sniffer-live-{tag}-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = fs::remove_dir_all(&path);
        fs::create_dir_all(&path).unwrap();
        TempDir(path)
    }

    fn path(&self) -> &Path {
        &self.0
    }

    fn file(&self, name: &str) -> String {
        self.0.join(name).to_string_lossy().into_owned()
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        if std::env::var_os("LIVE_HTTP_KEEP").is_none() {
            let _ = fs::remove_dir_all(&self.0);
        } else {
            eprintln!("kept {}", self.0.display());
        }
    }
}

/// Deterministic file contents (not all one byte, so a misplaced copy would show).
fn contents(len: usize) -> Vec<u8> {
    (0..len).map(|i| b'a' + (i % 23) as u8).collect()
}

fn fixture(name: &str) -> String {
    format!("{}/tests/live/{name}", env!("CARGO_MANIFEST_DIR"))
}

// ---------------------------------------------------------------- servers

/// Waits until `addr` accepts connections, or panics with `why()`.
fn wait_listening(addr: SocketAddr, child: &mut Child, why: impl Fn() -> String) {
    common::wait_until(&format!("a server listening on {addr}"), DEADLINE, || {
        if let Ok(Some(status)) = child.try_wait() {
            panic!(
                "server exited ({status}) before listening on {addr}: {}",
                why()
            );
        }
        TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok()
    });
}

/// A real nginx, one foreground process, every path in its own temp dir. Killed on drop.
struct Nginx {
    child: Child,
    dir: TempDir,
}

/// The static files nginx serves: `/empty`, `/1k`, `/64k`, `/1m`.
const FILES: [(&str, usize); 4] = [("empty", 0), ("1k", 1024), ("64k", 65536), ("1m", 1 << 20)];

impl Nginx {
    /// Starts nginx listening on `listen` (in the calling thread's namespace), with the
    /// access log on, and waits until it accepts connections on the first address. The probe
    /// connection sends nothing: nginx logs nothing for it.
    fn start(listen: &[SocketAddr]) -> Nginx {
        let dir = TempDir::new("nginx");
        fs::create_dir_all(dir.path().join("www")).unwrap();
        fs::create_dir_all(dir.path().join("tmp")).unwrap();
        for (name, len) in FILES {
            fs::write(dir.path().join("www").join(name), contents(len)).unwrap();
        }
        let listen_lines: String = listen
            .iter()
            .map(|a| format!("        listen {a};\n"))
            .collect();
        let conf = fs::read_to_string(fixture("nginx.conf.template"))
            .unwrap()
            .replace("{{DIR}}", &dir.path().to_string_lossy())
            .replace("{{LISTEN}}\n", &listen_lines)
            .replace(
                "{{ACCESS_LOG}}",
                &format!("access_log {} live;", dir.file("access.log")),
            );
        fs::write(dir.path().join("nginx.conf"), conf).unwrap();
        let mut child = Command::new("nginx")
            .args(["-p", &dir.file(""), "-c", &dir.file("nginx.conf")])
            .args(["-e", &dir.file("error.log")])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("cannot start nginx");
        let error_log = dir.file("error.log");
        wait_listening(listen[0], &mut child, || {
            fs::read_to_string(&error_log).unwrap_or_default()
        });
        Nginx { child, dir }
    }

    fn access_log(&self) -> Vec<String> {
        fs::read_to_string(self.dir.file("access.log"))
            .unwrap_or_default()
            .lines()
            .map(str::to_string)
            .collect()
    }

    /// The exchanges nginx logged (see `log_format live` in the template), after the first
    /// `skip` lines.
    fn exchanges(&self, skip: usize) -> Vec<Logged> {
        self.access_log()
            .iter()
            .skip(skip)
            .map(|line| {
                let f: Vec<&str> = line.split(' ').collect();
                assert_eq!(f.len(), 11, "unexpected access log line {line:?}");
                let (method, url, status) = (f[4], f[5], f[7].parse().unwrap());
                let resp_body: u64 = f[8].parse().unwrap();
                // A static file sent short: the client went away mid-response.
                let path = url.split('?').next().unwrap_or(url);
                let cut = method != "HEAD"
                    && status == 200
                    && FILES
                        .iter()
                        .any(|&(name, len)| path == format!("/{name}") && resp_body < len as u64);
                Logged {
                    client: format!("{} {}", f[0], f[1]),
                    ex: Ex {
                        method: method.into(),
                        url: url.into(),
                        version: f[6].trim_start_matches("HTTP/").into(),
                        req_body: f[10].parse().unwrap_or(0),
                        status,
                        resp_body,
                        interim: vec![],
                        incomplete: cut,
                        grpc_status: None,
                    }
                    .normalized(),
                }
            })
            .collect()
    }
}

impl Drop for Nginx {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The Node `http` server of `live/server.js`. Killed on drop.
struct NodeServer {
    child: Child,
    dir: TempDir,
}

impl NodeServer {
    fn start(port: u16, addresses: &[&str]) -> NodeServer {
        let dir = TempDir::new("node");
        let mut child = Command::new("node")
            .arg(fixture("server.js"))
            .arg(port.to_string())
            .arg(dir.file("log.jsonl"))
            .args(addresses)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("cannot start node");
        let mut ready = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut ready)
            .unwrap();
        assert_eq!(ready.trim(), "ready", "node server did not start");
        NodeServer { child, dir }
    }

    fn exchanges(&self) -> Vec<Logged> {
        fs::read_to_string(self.dir.file("log.jsonl"))
            .unwrap_or_default()
            .lines()
            .map(|line| {
                let v: Value = serde_json::from_str(line).unwrap();
                Logged {
                    client: format!("{} {}", v["addr"].as_str().unwrap(), v["port"]),
                    ex: Ex {
                        method: v["method"].as_str().unwrap().into(),
                        url: v["url"].as_str().unwrap().into(),
                        version: v["version"].as_str().unwrap().into(),
                        req_body: v["reqBody"].as_u64().unwrap(),
                        status: v["status"].as_u64().unwrap() as u16,
                        resp_body: v["respBody"].as_u64().unwrap(),
                        interim: if v["expect"] == "100-continue" {
                            vec![100]
                        } else {
                            vec![]
                        },
                        incomplete: false,
                        grpc_status: None,
                    },
                }
            })
            .collect()
    }
}

impl Drop for NodeServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The HTTP/2 peers of `live/h2.js`: a Node `http2` server (prior knowledge) and a gRPC server
/// (@grpc/grpc-js), logging every stream they finish.
struct H2Server {
    child: Child,
    dir: TempDir,
}

/// Where `scripts/install-deps.sh test` puts @grpc/grpc-js.
const GRPC_JS: &str = "/opt/tcp-sniffer-tools/grpc-js/node_modules/@grpc/grpc-js";

impl H2Server {
    fn start(h2_port: u16, grpc_port: u16) -> H2Server {
        let dir = TempDir::new("h2");
        let mut child = Command::new("node")
            .arg(fixture("h2.js"))
            .args(["server", &h2_port.to_string(), &grpc_port.to_string()])
            .arg(dir.file("log.jsonl"))
            .env("GRPC_JS", GRPC_JS)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("cannot start node");
        let mut ready = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut ready)
            .unwrap();
        assert_eq!(ready.trim(), "ready", "node h2.js server did not start");
        H2Server { child, dir }
    }

    /// The logged streams, per client in stream order (the log is in completion order).
    fn exchanges(&self) -> Vec<Logged> {
        let mut rows: Vec<(String, u64, Logged)> = fs::read_to_string(self.dir.file("log.jsonl"))
            .unwrap_or_default()
            .lines()
            .enumerate()
            .map(|(i, line)| {
                let v: Value = serde_json::from_str(line).unwrap();
                let client = format!("{} {}", v["addr"].as_str().unwrap(), v["port"]);
                // gRPC calls are sequential on their channel: log order is stream order.
                let order = v["stream"].as_u64().unwrap_or(i as u64);
                let ex = Ex {
                    method: v["method"].as_str().unwrap().into(),
                    url: v["url"].as_str().unwrap().into(),
                    version: "2".into(),
                    req_body: v["reqBody"].as_u64().unwrap(),
                    status: v["status"].as_u64().unwrap() as u16,
                    resp_body: v["respBody"].as_u64().unwrap(),
                    interim: vec![],
                    incomplete: false,
                    grpc_status: v["grpc"].as_u64(),
                };
                (client.clone(), order, Logged { client, ex })
            })
            .collect();
        rows.sort_by(|a, b| (&a.0, a.1).cmp(&(&b.0, b.1)));
        rows.into_iter().map(|r| r.2).collect()
    }
}

impl Drop for H2Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

// ---------------------------------------------------------------- clients

/// Runs a client to completion; panics with its output when it fails. Returns its stdout.
fn client(program: &str, args: &[&str]) -> String {
    let out = Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("cannot run {program}: {e}"));
    assert!(
        out.status.success(),
        "{program} {args:?} failed ({}):\n{}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// curl with bodies thrown away; several URLs in one call share a keep-alive connection.
fn curl(args: &[&str]) {
    let mut all = vec!["-sS", "--max-time", "30", "-g"];
    for a in args {
        all.push(a);
        if a.starts_with("http://") {
            all.extend(["-o", "/dev/null"]);
        }
    }
    client("curl", &all);
}

/// `wrk -t1 -c4`, throttled (see the module docs); returns the requests it reports.
fn wrk(url: &str, seconds: u32) -> u64 {
    let out = client(
        "wrk",
        &[
            "-t1",
            "-c4",
            &format!("-d{seconds}s"),
            "-s",
            &fixture("throttle.lua"),
            url,
        ],
    );
    let line = out
        .lines()
        .find(|l| l.contains("requests in"))
        .unwrap_or_else(|| panic!("no 'requests in' line in wrk's output:\n{out}"));
    line.split_whitespace().next().unwrap().parse().unwrap()
}

/// ApacheBench (HTTP/1.0); `keep_alive` adds `-k` (HTTP/1.0 with `Connection: Keep-Alive`).
fn ab(url: &str, n: u32, c: u32, keep_alive: bool) {
    let (n, c) = (n.to_string(), c.to_string());
    let mut args = vec!["-q", "-n", &n, "-c", &c];
    if keep_alive {
        args.push("-k");
    }
    args.push(url);
    let out = client("ab", &args);
    assert!(
        out.contains("Failed requests:        0"),
        "ab reported failures:\n{out}"
    );
}

/// Node's `fetch`: each step `(method, url, body bytes, as a stream)`.
fn node_fetch(steps: &[(&str, String, Option<usize>, bool)]) {
    let plan: Vec<Value> = steps
        .iter()
        .map(|(method, url, body, stream)| {
            let mut v = serde_json::json!({ "method": method, "url": url });
            if let Some(b) = body {
                v["body"] = (*b).into();
                v["stream"] = (*stream).into();
            }
            v
        })
        .collect();
    client(
        "node",
        &[&fixture("fetch.js"), &Value::Array(plan).to_string()],
    );
}

/// Writes every request in one `write` (pipelined), then reads until the server closes (the
/// last request says `Connection: close`). Returns what came back.
fn pipelined(to: SocketAddr, requests: &[&str]) -> Vec<u8> {
    let mut s = TcpStream::connect_timeout(&to, Duration::from_secs(5)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    s.write_all(requests.concat().as_bytes()).unwrap();
    let mut got = Vec::new();
    s.read_to_end(&mut got).unwrap();
    got
}

/// Reads one `Content-Length`-framed response from `s` (bytes left over stay in `buf`).
/// Returns the status and the body length.
fn read_response(s: &mut TcpStream, buf: &mut Vec<u8>) -> (u16, usize) {
    let mut chunk = [0u8; 65536];
    let head_end = loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        let n = s.read(&mut chunk).unwrap();
        assert!(n > 0, "connection closed inside a response head");
        buf.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).to_ascii_lowercase();
    let status = head[9..12].parse().unwrap();
    let len: usize = head
        .lines()
        .find_map(|l| l.strip_prefix("content-length:"))
        .map(|v| v.trim().parse().unwrap())
        .unwrap_or(0);
    while buf.len() < head_end + len {
        let n = s.read(&mut chunk).unwrap();
        assert!(n > 0, "connection closed inside a response body");
        buf.extend_from_slice(&chunk[..n]);
    }
    buf.drain(..head_end + len);
    (status, len)
}

// ---------------------------------------------------------------- the sniffer

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Backend {
    AfPacket,
    Pcap,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Frontend {
    /// `Sniffer::start` with an in-memory output.
    Library,
    /// The `tcp-sniffer` binary, stopped with this signal.
    Cli(i32),
}

#[derive(Clone, Copy, Debug)]
struct Setup {
    backend: Backend,
    workers: usize,
    frontend: Frontend,
}

/// Keeps every batch the sniffer emits, as JSON lines.
struct Collect {
    lines: Arc<Mutex<Vec<u8>>>,
    messages: u64,
}

impl Output for Collect {
    fn send(&mut self, batch: &Arc<Batch>) {
        self.lines
            .lock()
            .unwrap()
            .extend_from_slice(batch.as_lines());
        self.messages += batch.len() as u64;
    }
    fn flush(&mut self) {}
    fn close(&mut self) {}
    fn is_closed(&self) -> bool {
        false
    }
    fn stats(&self) -> OutputStats {
        OutputStats {
            delivered: self.messages,
            ..OutputStats::default()
        }
    }
}

enum Running {
    Library {
        sniffer: Sniffer,
        lines: Arc<Mutex<Vec<u8>>>,
    },
    Cli {
        child: Child,
        signal: i32,
        stdout: String,
        stderr: thread::JoinHandle<Vec<String>>,
        _dir: TempDir,
    },
}

/// A running capture, started in the calling thread's network namespace.
struct Capture {
    running: Running,
    setup: Setup,
    started: Instant,
}

/// What a capture emitted and its final counters.
struct Captured {
    messages: Vec<Value>,
    stats: Value,
    setup: Setup,
}

impl Capture {
    /// Starts capturing `ports` on `iface`. `None`: skipped (no capability).
    fn start(setup: Setup, iface: &str, ports: &[u16]) -> Option<Capture> {
        let running = match setup.frontend {
            Frontend::Library => {
                let settings = Settings {
                    interface: iface.into(),
                    ports: ports.to_vec(),
                    capture_backend: match setup.backend {
                        Backend::AfPacket => CaptureBackend::AfPacket,
                        Backend::Pcap => CaptureBackend::Pcap,
                    },
                    workers: Some(setup.workers),
                    ..Settings::default()
                };
                let lines = Arc::new(Mutex::new(Vec::new()));
                let out = Collect {
                    lines: lines.clone(),
                    messages: 0,
                };
                match Sniffer::start(&settings, vec![Box::new(out)], None, Hooks::default()) {
                    Ok(sniffer) => {
                        let info = sniffer.info();
                        assert_eq!(info.workers, setup.workers);
                        assert_eq!(
                            info.backend,
                            match setup.backend {
                                Backend::AfPacket => "af_packet",
                                Backend::Pcap => "pcap",
                            }
                        );
                        Running::Library { sniffer, lines }
                    }
                    Err(StartError::Capture(e @ CaptureError::MissingCapability { .. })) => {
                        skip_http(&e.to_string());
                        return None;
                    }
                    Err(e) => panic!("cannot start the sniffer: {e}"),
                }
            }
            Frontend::Cli(signal) => {
                let dir = TempDir::new("cli");
                let stdout = dir.file("messages.jsonl");
                let ports: Vec<String> = ports.iter().map(u16::to_string).collect();
                let mut child = Command::new(env!("CARGO_BIN_EXE_tcp-sniffer"))
                    .args(["-i", iface, "-p", &ports.join(",")])
                    .args([
                        "--backend",
                        match setup.backend {
                            Backend::AfPacket => "af_packet",
                            Backend::Pcap => "pcap",
                        },
                    ])
                    .args(["--workers", &setup.workers.to_string(), "--stats"])
                    .stdin(Stdio::null())
                    .stdout(fs::File::create(&stdout).unwrap())
                    .stderr(Stdio::piped())
                    .spawn()
                    .expect("cannot start tcp-sniffer");
                let stderr = match common::wait_capturing(&mut child) {
                    Ok(lines) => lines,
                    Err(log) if log.contains("CAP_NET_RAW") => {
                        skip_http(&log);
                        return None;
                    }
                    Err(log) => panic!("tcp-sniffer did not start capturing {log}"),
                };
                Running::Cli {
                    child,
                    signal,
                    stdout,
                    stderr,
                    _dir: dir,
                }
            }
        };
        Some(Capture {
            running,
            setup,
            started: Instant::now(),
        })
    }

    /// Stops (library: `stop()`; CLI: the signal, then wait for the drain and exit 0).
    fn stop(self) -> Captured {
        let ran = self.started.elapsed();
        let (messages, stats) = match self.running {
            Running::Library { sniffer, lines } => {
                let stats = serde_json::to_value(sniffer.stop()).unwrap();
                let lines = std::mem::take(&mut *lines.lock().unwrap());
                (parse_lines(&lines), stats)
            }
            Running::Cli {
                mut child,
                signal,
                stdout,
                stderr,
                _dir,
            } => {
                // SAFETY: signalling our own child, which has not been reaped yet.
                assert_eq!(unsafe { libc::kill(child.id() as i32, signal) }, 0);
                let end = Instant::now() + DEADLINE;
                let status = loop {
                    if let Some(s) = child.try_wait().unwrap() {
                        break s;
                    }
                    if Instant::now() > end {
                        let _ = child.kill();
                        panic!("tcp-sniffer did not exit within {DEADLINE:?} of signal {signal}");
                    }
                    thread::sleep(Duration::from_millis(20));
                };
                let log = stderr.join().unwrap();
                assert!(
                    status.success(),
                    "tcp-sniffer exited with {status} after signal {signal}:\n{}",
                    log.join("\n")
                );
                let stats = log
                    .iter()
                    .rev()
                    .find_map(|l| {
                        serde_json::from_str::<Value>(l)
                            .ok()
                            .filter(|v| v.get("capture").is_some())
                    })
                    .unwrap_or_else(|| panic!("no --stats line:\n{}", log.join("\n")));
                (parse_lines(&fs::read(&stdout).unwrap()), stats)
            }
        };
        eprintln!(
            "{:?}: {} messages in {ran:.1?}; capture {} http requests {} responses {}",
            self.setup,
            messages.len(),
            stats["capture"],
            stats["http"]["requests"],
            stats["http"]["responses"],
        );
        Captured {
            messages,
            stats,
            setup: self.setup,
        }
    }
}

fn parse_lines(bytes: &[u8]) -> Vec<Value> {
    bytes
        .split(|b| *b == b'\n')
        .filter(|l| !l.is_empty())
        .map(|l| {
            serde_json::from_slice(l).unwrap_or_else(|e| {
                panic!(
                    "sniffer output is not a JSON line ({e}): {}",
                    String::from_utf8_lossy(l)
                )
            })
        })
        .collect()
}

// ---------------------------------------------------------------- comparing

/// One exchange, as a server logged it or as the sniffer's messages tell it.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
struct Ex {
    method: String,
    url: String,
    /// `"1.0"` or `"1.1"`.
    version: String,
    req_body: u64,
    /// Final status; 0 when the sniffer emitted no final response.
    status: u16,
    resp_body: u64,
    /// Interim (1xx) statuses before the final one.
    interim: Vec<u16>,
    /// Either message was flagged `incomplete` (servers' logs: a body sent short).
    incomplete: bool,
    /// gRPC: the response's `grpc-status` trailer.
    grpc_status: Option<u64>,
}

impl Ex {
    /// The exchange as compared: a cut exchange's response body size is not compared.
    fn normalized(mut self) -> Ex {
        if self.incomplete {
            self.resp_body = 0;
        }
        self
    }
}

/// An exchange and its client, `"ip port"`.
#[derive(Clone, Debug)]
struct Logged {
    client: String,
    ex: Ex,
}

/// Pairs the sniffer's messages by connection and sequence.
struct Observed {
    /// Per exchange: client, request timestamp, connection, sequence, exchange.
    exchanges: Vec<(String, String, String, u64, Ex)>,
    /// Responses whose request was not emitted.
    orphans: Vec<Value>,
}

fn observe(messages: &[Value]) -> Observed {
    let key = |m: &Value| {
        (
            m["connectionId"].as_str().unwrap().to_string(),
            m["sequence"].as_u64().unwrap(),
        )
    };
    let mut requests: BTreeMap<(String, u64), &Value> = BTreeMap::new();
    let mut responses: HashMap<(String, u64), Vec<&Value>> = HashMap::new();
    for m in messages {
        match m["type"].as_str() {
            Some("request") => {
                let k = key(m);
                assert!(
                    requests.insert(k.clone(), m).is_none(),
                    "two requests with connection {} sequence {}",
                    k.0,
                    k.1
                );
            }
            Some("response") => responses.entry(key(m)).or_default().push(m),
            other => panic!("message of type {other:?}: {m}"),
        }
    }
    let mut exchanges = Vec::new();
    for (k, req) in requests {
        let resps = responses.remove(&k).unwrap_or_default();
        let status = |m: &Value| m["statusCode"].as_u64().unwrap() as u16;
        let last = resps.iter().find(|m| status(m) >= 200 || status(m) == 101);
        let ex = Ex {
            method: req["method"].as_str().unwrap().into(),
            url: req["url"].as_str().unwrap().into(),
            version: req["httpVersion"].as_str().unwrap().into(),
            req_body: req["bodySize"].as_u64().unwrap(),
            status: last.map(|m| status(m)).unwrap_or(0),
            resp_body: last.map(|m| m["bodySize"].as_u64().unwrap()).unwrap_or(0),
            interim: resps
                .iter()
                .map(|m| status(m))
                .filter(|s| *s < 200 && *s != 101)
                .collect(),
            incomplete: req["incomplete"] == true || resps.iter().any(|m| m["incomplete"] == true),
            grpc_status: last.and_then(|m| m["trailers"]["grpc-status"].as_str()?.parse().ok()),
        }
        .normalized();
        let client = format!(
            "{} {}",
            req["source"]["ip"].as_str().unwrap(),
            req["source"]["port"]
        );
        let at = req["timestamp"].as_str().unwrap().to_string();
        exchanges.push((client, at, k.0, k.1, ex));
    }
    let mut orphans: Vec<Value> = responses.into_values().flatten().cloned().collect();
    orphans.sort_by_key(|m| m["timestamp"].as_str().map(str::to_string));
    Observed { exchanges, orphans }
}

/// A message without its headers and body, for failure reports.
fn brief(m: &Value) -> String {
    format!(
        "{} conn {} seq {} {}{} {} bytes, incomplete {}, at {}",
        m["type"].as_str().unwrap_or("?"),
        m["connectionId"].as_str().unwrap_or("?"),
        m["sequence"],
        m["method"]
            .as_str()
            .map(|s| format!("{s} "))
            .unwrap_or_default(),
        m.get("url").or(m.get("statusCode")).unwrap_or(&Value::Null),
        m["bodySize"],
        m["incomplete"],
        m["timestamp"].as_str().unwrap_or("?"),
    )
}

impl Captured {
    /// Asserts that the messages tell exactly the exchanges in `truth`, per client in order,
    /// and that nothing was dropped.
    fn assert_matches(&self, truth: &[Logged]) {
        let seen = observe(&self.messages);
        let mut want: BTreeMap<&str, Vec<&Ex>> = BTreeMap::new();
        for l in truth {
            want.entry(&l.client).or_default().push(&l.ex);
        }
        let mut sorted: Vec<_> = seen.exchanges.iter().collect();
        sorted.sort_by(|a, b| (&a.1, &a.2, a.3).cmp(&(&b.1, &b.2, b.3)));
        let mut got: BTreeMap<&str, Vec<&Ex>> = BTreeMap::new();
        for (client, _, _, _, ex) in sorted {
            got.entry(client).or_default().push(ex);
        }
        let mut problems = Vec::new();
        for (client, w) in &want {
            let g = got.get(client).cloned().unwrap_or_default();
            if &g != w {
                // The first difference and what follows it, not the whole list.
                let i = w.iter().zip(&g).take_while(|(a, b)| a == b).count();
                let tail = |l: &[&Ex]| -> Vec<Ex> {
                    l.iter().skip(i).take(3).map(|e| (*e).clone()).collect()
                };
                problems.push(format!(
                    "client {client}: {} logged, {} told; from exchange {i} on:\n  \
                     server logged {:?}\n  sniffer told  {:?}",
                    w.len(),
                    g.len(),
                    tail(w),
                    tail(&g)
                ));
            }
        }
        for (client, g) in &got {
            if !want.contains_key(client) {
                problems.push(format!(
                    "client {client}: the sniffer told {} exchanges ({:?}, ...), the server logged none",
                    g.len(),
                    g[0]
                ));
            }
        }
        // The same comparison as multisets, which reads better when many clients differ.
        let mut multiset: BTreeMap<&Ex, i64> = BTreeMap::new();
        for l in truth {
            *multiset.entry(&l.ex).or_default() += 1;
        }
        for e in &seen.exchanges {
            *multiset.entry(&e.4).or_default() -= 1;
        }
        let diff: Vec<String> = multiset
            .iter()
            .filter(|(_, n)| **n != 0)
            .map(|(e, n)| format!("  {n:+} {e:?}"))
            .collect();
        let lossless = self.drops();
        if !problems.is_empty() || !seen.orphans.is_empty() || !lossless.is_empty() {
            let shown: Vec<&String> = problems.iter().take(8).collect();
            panic!(
                "{:?}: {} exchanges logged by the servers, {} told by the sniffer \
                 ({} messages); {} clients differ; drops: {lossless:?}\n\
                 multiset (logged minus told, first 20):\n{}\n\
                 first differing clients:\n{}\n\
                 responses without a request ({}): {:?}\nstats: {}",
                self.setup,
                truth.len(),
                seen.exchanges.len(),
                self.messages.len(),
                problems.len(),
                diff.iter().take(20).cloned().collect::<Vec<_>>().join("\n"),
                shown
                    .iter()
                    .map(|s| s.as_str())
                    .collect::<Vec<_>>()
                    .join("\n"),
                seen.orphans.len(),
                seen.orphans.iter().take(5).map(brief).collect::<Vec<_>>(),
                self.stats
            );
        }
        // The counters agree with what came out.
        let count = |t: &str| self.messages.iter().filter(|m| m["type"] == t).count() as u64;
        assert_eq!(self.stats["http"]["requests"], count("request"));
        assert_eq!(self.stats["http"]["responses"], count("response"));
        assert_eq!(
            self.stats["output"]["messages"],
            self.messages.len() as u64,
            "{}",
            self.stats
        );
    }

    /// Non-zero drop counters, by name.
    fn drops(&self) -> Vec<(String, u64)> {
        [
            ("capture", "kernel_drops"),
            ("capture", "queue_drops"),
            ("output", "dropped_queue_full"),
            ("output", "dropped_at_shutdown"),
            ("output", "dropped_stdout_closed"),
        ]
        .iter()
        .filter_map(|(stage, name)| {
            let n = self.stats[stage][name].as_u64().unwrap_or(0);
            (n > 0).then(|| (format!("{stage}.{name}"), n))
        })
        .collect()
    }

    /// Every message of a connection whose server is `server` has `direction`.
    fn assert_direction(&self, server: &str, direction: &str) {
        let mut n = 0;
        for m in &self.messages {
            let srv = if m["type"] == "request" {
                &m["destination"]
            } else {
                &m["source"]
            };
            if srv["ip"] == server {
                assert_eq!(m["direction"], direction, "{m}");
                n += 1;
            }
        }
        assert!(n > 0, "no message with server {server}");
    }
}

// ---------------------------------------------------------------- scenarios

/// Every client against nginx on `lo`: curl (1.0, 1.1 keep-alive, HEAD, POST, IPv6, 0 B to
/// 1 MiB), ab (1.0, with and without keep-alive), wrk, Node `fetch`, pipelined requests.
fn lo_nginx(setup: Setup) {
    in_netns(&["nginx", "curl", "ab", "wrk", "node"], move || {
        let v4 = SocketAddr::from(([127, 0, 0, 1], NGINX_PORT));
        let v6: SocketAddr = format!("[::1]:{NGINX_PORT}").parse().unwrap();
        let nginx = Nginx::start(&[v4, v6]);
        let Some(capture) = Capture::start(setup, "lo", &[NGINX_PORT]) else {
            return;
        };
        let u4 = |path: &str| format!("http://{v4}{path}");
        let u6 = |path: &str| format!("http://{v6}{path}");
        let post_body = nginx.dir.file("www/64k");
        let big_body = nginx.dir.file("www/1m");

        // curl, HTTP/1.1: five requests on one keep-alive connection, 0 B .. 1 MiB and a 404.
        curl(&[
            &u4("/empty"),
            &u4("/1k"),
            &u4("/64k"),
            &u4("/1m"),
            &u4("/missing?x=1&y=%20"),
        ]);
        // HTTP/1.0: a connection per request.
        curl(&["--http1.0", &u4("/1k"), &u4("/64k?v=1.0")]);
        // IPv6, keep-alive.
        curl(&[&u6("/1m"), &u6("/empty"), &u6("/1k?v6")]);
        // HEAD: no body, whatever Content-Length says.
        curl(&["-I", &u4("/64k?head")]);
        // POST bodies (nginx answers `return 200` and discards them). No `Expect`: nginx
        // would answer 100 Continue itself, which its log does not show.
        curl(&[
            "-H",
            "Expect:",
            "--data-binary",
            &format!("@{post_body}"),
            &u4("/post/64k"),
        ]);
        curl(&[
            "-H",
            "Expect:",
            "--data-binary",
            &format!("@{big_body}"),
            &u6("/post/1m"),
        ]);
        curl(&["--http1.0", "-d", "a=1&b=2", &u4("/post/form")]);
        // ab: HTTP/1.0, a connection per request; then HTTP/1.0 keep-alive.
        ab(&u4("/1k?ab"), 200, 4, false);
        ab(&u4("/64k?ab-k"), 50, 2, true);
        // wrk: HTTP/1.1 keep-alive, four connections.
        let wrk_requests = wrk(&u4("/1k?wrk"), 2);
        // Node's fetch (undici): keep-alive pool.
        node_fetch(&[
            ("GET", u4("/1k?fetch"), None, false),
            ("GET", u4("/1m?fetch"), None, false),
            ("GET", u4("/empty?fetch"), None, false),
            ("POST", u4("/post/fetch"), Some(3000), false),
            ("GET", u6("/64k?fetch"), None, false),
            ("GET", u4("/nope?fetch"), None, false),
        ]);
        // Pipelined: four requests in one write.
        let got = pipelined(
            v4,
            &[
                "GET /1k?p=1 HTTP/1.1\r\nHost: t\r\n\r\n",
                "HEAD /64k?p=2 HTTP/1.1\r\nHost: t\r\n\r\n",
                "GET /empty?p=3 HTTP/1.1\r\nHost: t\r\n\r\n",
                "GET /64k?p=4 HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n",
            ],
        );
        assert!(got.len() > 65536 + 1024, "{} bytes came back", got.len());

        let captured = capture.stop();
        let truth = nginx.exchanges(0);
        eprintln!(
            "nginx logged {} exchanges ({wrk_requests} from wrk)",
            truth.len()
        );
        assert!(truth.len() as u64 >= 274 + wrk_requests);
        captured.assert_matches(&truth);
        captured.assert_direction("127.0.0.1", "inbound");
        captured.assert_direction("::1", "inbound");
    });
}

/// The Node server: chunked responses (HTTP/1.1) and close-delimited ones (HTTP/1.0),
/// trailers, chunked uploads, `Expect: 100-continue` (interim 100 with the request's sequence).
fn lo_node(setup: Setup) {
    in_netns(&["node", "curl"], move || {
        let node = NodeServer::start(NODE_PORT, &["127.0.0.1", "::1"]);
        let Some(capture) = Capture::start(setup, "lo", &[NODE_PORT]) else {
            return;
        };
        let u4 = |path: &str| format!("http://127.0.0.1:{NODE_PORT}{path}");
        let u6 = |path: &str| format!("http://[::1]:{NODE_PORT}{path}");
        let dir = TempDir::new("bodies");
        let (small, big) = (dir.file("small"), dir.file("big"));
        fs::write(&small, contents(1000)).unwrap();
        fs::write(&big, contents(70_000)).unwrap();

        // Chunked responses, 5 KB and 1 MiB, trailers, 204; keep-alive.
        curl(&[
            &u4("/chunked?n=5&size=1000"),
            &u4("/chunked?n=64&size=16384"),
            &u4("/trailers"),
            &u4("/empty"),
        ]);
        // HTTP/1.0: Node ends the body by closing the connection.
        curl(&[
            "--http1.0",
            &u4("/chunked?n=3&size=100"),
            &u4("/trailers?v=1.0"),
        ]);
        // Expect: 100-continue, with a Content-Length body and with a chunked one.
        let expect = "Expect: 100-continue";
        curl(&[
            "-H",
            expect,
            "--data-binary",
            &format!("@{big}"),
            &u4("/upload?expect"),
        ]);
        curl(&[
            "-X",
            "PUT",
            "-H",
            expect,
            "-H",
            "Transfer-Encoding: chunked",
            "--data-binary",
            &format!("@{small}"),
            &u6("/upload?expect-chunked"),
        ]);
        // A chunked upload without Expect, over IPv6.
        curl(&[
            "-H",
            "Expect:",
            "-H",
            "Transfer-Encoding: chunked",
            "--data-binary",
            &format!("@{big}"),
            &u6("/upload?chunked"),
        ]);
        // fetch: a streamed body goes out chunked.
        node_fetch(&[
            ("GET", u4("/chunked?n=10&size=5000&fetch"), None, false),
            ("GET", u4("/trailers?fetch"), None, false),
            ("POST", u4("/upload?stream"), Some(70_000), true),
            ("POST", u4("/upload?fixed"), Some(3000), false),
            ("GET", u4("/nope"), None, false),
            ("GET", u6("/chunked?n=2&size=10&fetch"), None, false),
        ]);
        // Pipelined, chunked responses back to back.
        let got = pipelined(
            SocketAddr::from(([127, 0, 0, 1], NODE_PORT)),
            &[
                "GET /chunked?n=2&size=10&p=1 HTTP/1.1\r\nHost: t\r\n\r\n",
                "GET /trailers?p=2 HTTP/1.1\r\nHost: t\r\n\r\n",
                "GET /empty?p=3 HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n",
            ],
        );
        assert!(
            got.ends_with(b"\r\n\r\n"),
            "{}",
            String::from_utf8_lossy(&got)
        );

        let captured = capture.stop();
        let truth = node.exchanges();
        assert_eq!(truth.len(), 18, "{truth:#?}");
        assert_eq!(truth.iter().filter(|l| l.ex.interim == [100]).count(), 2);
        captured.assert_matches(&truth);
    });
}

const H2_PORT: u16 = 8082;
const GRPC_PORT: u16 = 50051;

/// HTTP/2 in cleartext against real peers: curl `--http2-prior-knowledge` (IPv4, IPv6), the Node `http2` client (7 concurrent streams with interleaved DATA frames, bodies
/// up to 200 KB, trailers, 204, 404, then more streams on the warm HPACK tables), h2load (many
/// connections, 10 streams in flight each, GET and POST), and a gRPC client and server
/// (@grpc/grpc-js: unary calls up to 100 KB, a NOT_FOUND trailers-only answer, a server
/// stream). Every stream the servers logged must come out with its method, url, status, body
/// sizes and (gRPC) `grpc-status`, as `httpVersion: "2"` with its `streamId`.
fn lo_h2(setup: Setup) {
    if !Path::new(GRPC_JS).exists() {
        return skip_http(&format!(
            "{GRPC_JS} is missing (scripts/install-deps.sh test)"
        ));
    }
    in_netns(&["node", "curl", "h2load"], move || {
        let server = H2Server::start(H2_PORT, GRPC_PORT);
        let Some(capture) = Capture::start(setup, "lo", &[H2_PORT, GRPC_PORT]) else {
            return;
        };
        let u4 = |path: &str| format!("http://127.0.0.1:{H2_PORT}{path}");
        let u6 = |path: &str| format!("http://[::1]:{H2_PORT}{path}");
        let dir = TempDir::new("h2bodies");
        let small = dir.file("small");
        fs::write(&small, contents(3000)).unwrap();

        // One URL per call: curl 7.88 fails ("Error in the HTTP2 framing layer") when it
        // reuses an HTTP/2 connection to Node's server for a second URL.
        for path in ["/data?size=100", "/data?size=70000", "/trailers", "/empty"] {
            curl(&["--http2-prior-knowledge", &u4(path)]);
        }
        curl(&[
            "--http2-prior-knowledge",
            "--data-binary",
            &format!("@{small}"),
            &u6("/upload?curl"),
        ]);
        client("node", &[&fixture("h2.js"), "client", &u4("")]);
        client(
            "h2load",
            &["-n", "40", "-c", "2", "-m", "10", &u4("/data?size=2000")],
        );
        client(
            "h2load",
            &[
                "-n",
                "20",
                "-c",
                "1",
                "-m",
                "5",
                "-d",
                &small,
                &u4("/upload?h2load"),
            ],
        );
        // Compressed bodies (decodeBodies): curl decodes them too (`--compressed`), and what
        // it got must be what the sniffer tells. 1500 lines fit in maxBodySize (64 KiB),
        // 5000 do not (the body is cut, decodedBodySize counts it all).
        let coded = [("gzip", 1500), ("br", 1500), ("gzip", 5000), ("br", 5000)];
        for (coding, lines) in coded {
            let got = dir.file(&format!("{coding}-{lines}"));
            client(
                "curl",
                &[
                    "-sS",
                    "--max-time",
                    "30",
                    "--http2-prior-knowledge",
                    "--compressed",
                    "-o",
                    &got,
                    &u4(&format!("/coded?coding={coding}&lines={lines}")),
                ],
            );
            assert_eq!(fs::read_to_string(&got).unwrap(), coded_text(lines));
        }
        let status = Command::new("node")
            .arg(fixture("h2.js"))
            .args(["grpc", &GRPC_PORT.to_string()])
            .env("GRPC_JS", GRPC_JS)
            .status()
            .expect("cannot run node");
        assert!(status.success(), "the gRPC client failed: {status}");

        let captured = capture.stop();
        let truth = server.exchanges();
        assert_eq!(truth.len(), 4 + 1 + 9 + 40 + 20 + 4 + 7, "{truth:#?}");
        assert_eq!(
            truth.iter().filter(|l| l.ex.grpc_status == Some(5)).count(),
            2
        );
        captured.assert_matches(&truth);
        for m in &captured.messages {
            assert_eq!(m["httpVersion"], "2", "{m}");
            assert!(m["streamId"].as_u64().is_some_and(|id| id % 2 == 1), "{m}");
        }
        assert_eq!(captured.stats["http"]["h2_hpack_errors"], 0);
        assert_eq!(captured.stats["http"]["incomplete_messages"], 0);
        // bodySize is the compressed DATA length (compared above with the server's log); the
        // body is decoded, cut at maxBodySize, and decodedBodySize is the whole decoded length.
        for (coding, lines) in coded {
            let url = format!("/coded?coding={coding}&lines={lines}");
            let req = captured
                .messages
                .iter()
                .find(|m| m["url"] == url.as_str())
                .unwrap_or_else(|| panic!("no request for {url}"));
            let resp = captured
                .messages
                .iter()
                .find(|m| {
                    m["type"] == "response"
                        && m["connectionId"] == req["connectionId"]
                        && m["streamId"] == req["streamId"]
                })
                .unwrap_or_else(|| panic!("no response for {url}"));
            let plain = coded_text(lines);
            let kept = plain.len().min(65536);
            assert_eq!(resp["decodedBodySize"], plain.len(), "{url}: {resp}");
            assert_eq!(resp["bodyEncoding"], "utf8", "{url}");
            assert_eq!(resp["body"].as_str(), Some(&plain[..kept]), "{url}");
            assert_eq!(
                resp["truncated"] == true,
                kept < plain.len(),
                "{url}: {resp}"
            );
        }
        assert_eq!(captured.stats["http"]["bodies_decoded"], coded.len());
        assert_eq!(captured.stats["http"]["body_decode_errors"], 0);
    });
}

/// The body of `h2.js`'s `/coded?lines=N`, before compression.
fn coded_text(lines: usize) -> String {
    (0..lines)
        .map(|i| format!("line {i} of the coded body\n"))
        .collect()
}

/// Connections opened before capture started: their later exchanges still come out, whole.
fn lo_opened_before_capture(setup: Setup) {
    in_netns(&["nginx", "curl"], move || {
        let v4 = SocketAddr::from(([127, 0, 0, 1], NGINX_PORT));
        let v6: SocketAddr = format!("[::1]:{NGINX_PORT}").parse().unwrap();
        let nginx = Nginx::start(&[v4, v6]);
        let req = |path: &str| format!("GET {path} HTTP/1.1\r\nHost: t\r\n\r\n");

        // A: one exchange before capture. B (IPv6): connected, idle. C: a 1 MiB download that
        // the client has not read yet (it sits in the socket buffers).
        let mut a = TcpStream::connect(v4).unwrap();
        let mut a_buf = Vec::new();
        a.write_all(req("/1k?before").as_bytes()).unwrap();
        assert_eq!(read_response(&mut a, &mut a_buf), (200, 1024));
        let mut b = TcpStream::connect(v6).unwrap();
        let mut b_buf = Vec::new();
        common::wait_until("nginx to log the first request", DEADLINE, || {
            !nginx.access_log().is_empty()
        });
        let before = nginx.access_log().len();
        assert_eq!(before, 1);

        let Some(capture) = Capture::start(setup, "lo", &[NGINX_PORT]) else {
            return;
        };
        a.write_all(req("/64k?after=1").as_bytes()).unwrap();
        assert_eq!(read_response(&mut a, &mut a_buf), (200, 65536));
        a.write_all(req("/empty?after=2").as_bytes()).unwrap();
        assert_eq!(read_response(&mut a, &mut a_buf), (200, 0));
        // Two pipelined requests on B.
        b.write_all((req("/1k?b=1") + &req("/1m?b=2")).as_bytes())
            .unwrap();
        assert_eq!(read_response(&mut b, &mut b_buf), (200, 1024));
        assert_eq!(read_response(&mut b, &mut b_buf), (200, 1 << 20));
        // And once more on A, after B.
        a.write_all(req("/missing?after=3").as_bytes()).unwrap();
        assert_eq!(read_response(&mut a, &mut a_buf).0, 404);
        drop((a, b));
        // A new connection, for comparison.
        curl(&[&format!("http://{v4}/1k?fresh")]);

        let captured = capture.stop();
        let truth = nginx.exchanges(before);
        assert_eq!(truth.len(), 6);
        captured.assert_matches(&truth);
    });
}

/// Stop the moment the last response has arrived: what the kernel captured but had not yet
/// handed over (a block retires up to 20 ms later) must still come out. Repeated, because
/// each round is a race the sniffer has to win every time.
fn lo_stop_right_after_exchange(setup: Setup) {
    in_netns(&["nginx"], move || {
        let v4 = SocketAddr::from(([127, 0, 0, 1], NGINX_PORT));
        let nginx = Nginx::start(&[v4]);
        for round in 0..6 {
            let before = nginx.access_log().len();
            let Some(capture) = Capture::start(setup, "lo", &[NGINX_PORT]) else {
                return;
            };
            let mut s = TcpStream::connect(v4).unwrap();
            let mut buf = Vec::new();
            let req = format!("GET /1k?round={round} HTTP/1.1\r\nHost: t\r\n\r\n");
            s.write_all(req.as_bytes()).unwrap();
            assert_eq!(read_response(&mut s, &mut buf), (200, 1024));
            let captured = capture.stop();
            drop(s);
            let truth = nginx.exchanges(before);
            assert_eq!(truth.len(), 1, "round {round}: nginx logged {truth:?}");
            captured.assert_matches(&truth);
        }
    });
}

/// A veth pair between two namespaces with offloads on: TSO/GSO super-packets from the
/// client (uploads), GRO-merged super-packets into it (downloads; the server side sends
/// MTU-sized segments, TSO off, and `va` merges them), a VLAN sub-interface where the kernel
/// has 802.1Q. The client and the sniffer are in this namespace, nginx in the peer's.
fn veth_offloads(setup: Setup) {
    in_netns(
        &["nginx", "curl", "ab", "wrk", "node", "ethtool"],
        move || {
            let peer = match PeerNs::new() {
                Ok(p) => p,
                Err(e) => return skip_http(&e),
            };
            let tid = peer.tid;
            for cmd in [
                "link add va type veth peer name vb".to_string(),
                format!("link set vb netns {tid}"),
                "addr add 10.77.0.1/24 dev va".into(),
                "addr add fd00:77::1/64 dev va nodad".into(),
                "link set va up".into(),
            ] {
                ip(&cmd).unwrap();
            }
            let vlan = match ip("link add link va name va.100 type vlan id 100") {
                Ok(()) => {
                    ip("addr add 10.77.100.1/24 dev va.100").unwrap();
                    ip("link set va.100 up").unwrap();
                    true
                }
                Err(e) => {
                    eprintln!(
                        "!!! NOTE: no VLAN sub-interface ({e}); the VLAN case is not tested here"
                    );
                    false
                }
            };
            sh("ethtool", "-K va gro on tso on gso on").unwrap();
            let listen: Vec<SocketAddr> = {
                let mut l = vec![
                    SocketAddr::from(([10, 77, 0, 2], NGINX_PORT)),
                    format!("[fd00:77::2]:{NGINX_PORT}").parse().unwrap(),
                ];
                if vlan {
                    l.push(SocketAddr::from(([10, 77, 100, 2], NGINX_PORT)));
                }
                l
            };
            let nginx = {
                let listen = listen.clone();
                peer.run(move || {
                    let mut setup = vec![
                        "link set lo up",
                        "addr add 10.77.0.2/24 dev vb",
                        "addr add fd00:77::2/64 dev vb nodad",
                        "link set vb up",
                    ];
                    if vlan {
                        setup.extend([
                            "link add link vb name vb.100 type vlan id 100",
                            "addr add 10.77.100.2/24 dev vb.100",
                            "link set vb.100 up",
                        ]);
                    }
                    for cmd in setup {
                        ip(cmd).unwrap();
                    }
                    sh("ethtool", "-K vb gro on tso off gso off").unwrap();
                    Nginx::start(&listen)
                })
            };

            // Our own ring on `va`, to see the super-packets the sniffer got.
            let largest = Arc::new(AtomicUsize::new(0));
            let stop_probe = SetOnDrop(Arc::new(AtomicBool::new(false)));
            let probe = {
                let mut ring = AfPacketRing::open(&AfPacketConfig::new("va", &[NGINX_PORT]))
                    .expect("probe ring");
                let (largest, stop) = (largest.clone(), stop_probe.0.clone());
                thread::spawn(move || {
                    while !stop.load(Ordering::Relaxed) {
                        ring.poll(Duration::from_millis(20), |p| {
                            largest.fetch_max(p.orig_len as usize, Ordering::Relaxed);
                        })
                        .unwrap();
                    }
                })
            };
            let Some(capture) = Capture::start(setup, "va", &[NGINX_PORT]) else {
                return;
            };
            let u4 = |path: &str| format!("http://10.77.0.2:{NGINX_PORT}{path}");
            let u6 = |path: &str| format!("http://[fd00:77::2]:{NGINX_PORT}{path}");
            let big_body = nginx.dir.file("www/1m");
            curl(&[&u4("/1m"), &u4("/64k"), &u4("/1m?again"), &u4("/empty")]);
            curl(&[&u6("/1m?v6"), &u6("/1k?v6")]);
            curl(&["--http1.0", &u4("/1m?v=1.0")]);
            curl(&[
                "-H",
                "Expect:",
                "--data-binary",
                &format!("@{big_body}"),
                &u4("/post/1m"),
            ]);
            curl(&[
                "-H",
                "Expect:",
                "--data-binary",
                &format!("@{big_body}"),
                &u6("/post/1m-v6"),
            ]);
            if vlan {
                curl(&[
                    &format!("http://10.77.100.2:{NGINX_PORT}/64k?vlan"),
                    &format!("http://10.77.100.2:{NGINX_PORT}/1m?vlan"),
                ]);
            }
            ab(&u4("/64k?ab"), 100, 4, false);
            let wrk_requests = wrk(&u4("/1k?wrk"), 1);
            node_fetch(&[
                ("GET", u4("/1m?fetch"), None, false),
                // Small enough to be sent whole before nginx answers (`return 200` does not wait for
                // the body): with a big body fetch may abandon the upload once the response is in,
                // and nginx logs the Content-Length header, not what arrived.
                ("POST", u6("/post/fetch"), Some(20_000), false),
                ("GET", u6("/1k?fetch-after"), None, false),
            ]);
            let got = pipelined(
                listen[0],
                &[
                    "GET /64k?p=1 HTTP/1.1\r\nHost: t\r\n\r\n",
                    "GET /1m?p=2 HTTP/1.1\r\nHost: t\r\n\r\n",
                    "GET /1k?p=3 HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n",
                ],
            );
            assert!(got.len() > (1 << 20) + 65536);

            let captured = capture.stop();
            drop(stop_probe);
            probe.join().unwrap();
            let truth = nginx.exchanges(0);
            let largest = largest.load(Ordering::Relaxed);
            eprintln!(
                "veth: nginx logged {} exchanges ({wrk_requests} from wrk); largest packet on va \
             {largest} B",
                truth.len()
            );
            assert!(
                largest > 1514,
                "no super-packet on va (largest {largest} B): offloads are not in effect"
            );
            captured.assert_matches(&truth);
            captured.assert_direction("10.77.0.2", "outbound");
            captured.assert_direction("fd00:77::2", "outbound");
            drop(nginx);
            drop(peer);
        },
    );
}

/// Four tests per scenario: both backends, 1 and 2 workers; the library and the binary
/// (stopped by SIGINT, or SIGTERM) each run both backends.
macro_rules! matrix {
    ($($scenario:ident),* $(,)?) => {$(
        mod $scenario {
            use super::{Backend::*, Frontend::*, Setup};

            #[test]
            fn af_packet_1_worker_library() {
                super::$scenario(Setup { backend: AfPacket, workers: 1, frontend: Library });
            }

            #[test]
            fn af_packet_2_workers_cli() {
                super::$scenario(Setup {
                    backend: AfPacket,
                    workers: 2,
                    frontend: Cli(libc::SIGINT),
                });
            }

            #[test]
            fn pcap_1_worker_cli() {
                super::$scenario(Setup { backend: Pcap, workers: 1, frontend: Cli(libc::SIGTERM) });
            }

            #[test]
            fn pcap_2_workers_library() {
                super::$scenario(Setup { backend: Pcap, workers: 2, frontend: Library });
            }
        }
    )*};
}

matrix!(
    lo_nginx,
    lo_node,
    lo_h2,
    lo_opened_before_capture,
    lo_stop_right_after_exchange,
    veth_offloads
);

/// Observability, live: nginx on `lo` in a namespace, curl as the client, the library
/// sniffer serving `/metrics` (scraped by a real Prometheus in the same namespace) and
/// exporting OTLP spans to a receiver that decodes them with the official protobuf types.
/// Every request curl made must be counted by Prometheus and come out as one span.
#[test]
fn lo_nginx_red_metrics_in_prometheus_and_otlp_spans() {
    in_netns(&["nginx", "curl", "prometheus"], move || {
        use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
        use prost::Message as _;
        use tcp_sniffer::config::OutputFormat;
        use tcp_sniffer::output::{HttpOutput, HttpOutputConfig};

        let v4 = SocketAddr::from(([127, 0, 0, 1], NGINX_PORT));
        let _nginx = Nginx::start(&[v4]);
        let (url, got) = common::otlp::receiver();
        let mut out = HttpOutputConfig::new(url);
        out.format = OutputFormat::Otlp;
        out.batch_size = 16;
        out.batch_wait = Duration::from_millis(100);
        let settings = Settings {
            interface: "lo".into(),
            ports: vec![NGINX_PORT],
            metrics_addr: Some("127.0.0.1:0".into()),
            ..Settings::default()
        };
        let output = HttpOutput::new(out).unwrap();
        let sniffer =
            match Sniffer::start(&settings, vec![Box::new(output)], None, Hooks::default()) {
                Ok(s) => s,
                Err(StartError::Capture(e @ CaptureError::MissingCapability { .. })) => {
                    return skip_http(&e.to_string())
                }
                Err(e) => panic!("cannot start the sniffer: {e}"),
            };
        let metrics = sniffer.metrics_addr().expect("metrics served").to_string();

        // 30 GETs (10 of them 404) on keep-alive connections, 5 POSTs, 3 HEADs.
        let u = |p: &str| format!("http://{v4}{p}");
        let gets: Vec<String> = (0..20)
            .map(|i| u(&format!("/1k?i={i}")))
            .chain((0..10).map(|i| u(&format!("/missing/{i}"))))
            .collect();
        let gets: Vec<&str> = gets.iter().map(String::as_str).collect();
        curl(&gets);
        for i in 0..5 {
            curl(&[
                "-X",
                "POST",
                "--data-binary",
                "x=1",
                &u(&format!("/post/{i}")),
            ]);
        }
        for _ in 0..3 {
            curl(&["-I", &u("/1k")]);
        }
        let (total, not_found) = (38u64, 10u64);

        let dir = TempDir::new("prometheus");
        let config = dir.file("prometheus.yml");
        fs::write(
            &config,
            format!(
                "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\nscrape_configs:\n  - job_name: sniffer\n    static_configs:\n      - targets: ['{metrics}']\n"
            ),
        )
        .unwrap();
        let mut prom = Command::new("prometheus")
            .arg(format!("--config.file={config}"))
            .arg(format!("--storage.tsdb.path={}", dir.file("data")))
            .arg("--web.listen-address=127.0.0.1:9090")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("prometheus starts");
        let query = |q: &str| -> Option<String> {
            let mut r = ureq::get("http://127.0.0.1:9090/api/v1/query")
                .query("query", q)
                .call()
                .ok()?;
            let v: Value = serde_json::from_reader(r.body_mut().as_reader()).ok()?;
            v["data"]["result"][0]["value"][1]
                .as_str()
                .map(str::to_string)
        };
        let counted = common::wait_for(
            "Prometheus counts every request",
            Duration::from_secs(120),
            || query("sum(tcp_sniffer_http_requests_total)").filter(|v| *v == total.to_string()),
        );
        let by_class = query("sum(tcp_sniffer_http_requests_total{status_class=\"4xx\"})");
        let posts = query("sum(tcp_sniffer_http_requests_total{method=\"POST\"})");
        let hist = query("sum(tcp_sniffer_http_request_duration_seconds_count)");
        let _ = prom.kill();
        let _ = prom.wait();
        eprintln!(
            "prometheus: {counted} requests, 4xx {by_class:?}, POST {posts:?}, histogram {hist:?}"
        );
        assert_eq!(by_class, Some(not_found.to_string()));
        assert_eq!(posts, Some("5".into()));
        assert_eq!(hist, Some(total.to_string()));

        let stats = sniffer.stop();
        assert_eq!(
            stats.output.delivered, stats.output.messages,
            "{:?}",
            stats.output
        );
        let mut spans = Vec::new();
        for (_, body) in got.lock().unwrap().iter() {
            let req = ExportTraceServiceRequest::decode(body.as_slice()).expect("decodes");
            for rs in req.resource_spans {
                for ss in rs.scope_spans {
                    spans.extend(ss.spans);
                }
            }
        }
        assert_eq!(spans.len() as u64, total);
        let paths: Vec<String> = spans
            .iter()
            .filter_map(|s| {
                s.attributes
                    .iter()
                    .find(|a| a.key == "url.path")
                    .and_then(|a| match a.value.as_ref()?.value.as_ref()? {
                        opentelemetry_proto::tonic::common::v1::any_value::Value::StringValue(
                            p,
                        ) => Some(p.clone()),
                        _ => None,
                    })
            })
            .collect();
        for i in 0..10 {
            assert!(paths.contains(&format!("/missing/{i}")), "{paths:?}");
        }
        assert_eq!(spans.iter().filter(|s| s.name == "POST").count(), 5);
        eprintln!("first span: {:?}", spans[0]);
    });
}
