//! Measures the output URL sink against a local endpoint.
//!
//! ```text
//! cargo run --release -p tcp-sniffer --example output_bench -- single  [secs]
//! cargo run --release -p tcp-sniffer --example output_bench -- batched [secs]
//! cargo run --release -p tcp-sniffer --example output_bench -- down    [secs]
//! ```
//!
//! `single` and `batched` (100 per request) offer messages as fast as the queue
//! takes them to a keep-alive HTTP/1.1 server on 127.0.0.1 (in this process) and
//! report messages delivered per second. `down` offers 20 000 messages/s to a port
//! nothing listens on (connection refused, so every message goes through the
//! 1 s/2 s/4 s retries) and reports the process's RSS every second.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tcp_sniffer::message::{Direction, HeaderValue, HttpMessage};
use tcp_sniffer::output::{Batch, HttpOutput, HttpOutputConfig, Output};
use tcp_sniffer::testing::{endpoint, request, sample_message};
use tcp_sniffer::time::Timestamp;

fn messages(n: u64) -> Vec<HttpMessage> {
    (0..n)
        .map(|i| HttpMessage {
            kind: request("GET", &format!("/api/v1/items/{i}?expand=owner")),
            connection_id: i / 4,
            sequence: i % 4,
            timestamp: Timestamp::now(),
            end_timestamp: Timestamp::now(),
            source: endpoint("10.0.0.1:40000"),
            destination: endpoint("10.0.0.2:8080"),
            direction: Direction::Inbound,
            headers: vec![
                (
                    "host".into(),
                    HeaderValue::Single("api.internal:8080".into()),
                ),
                (
                    "user-agent".into(),
                    HeaderValue::Single("curl/8.5.0".into()),
                ),
                (
                    "accept".into(),
                    HeaderValue::Single("application/json".into()),
                ),
                (
                    "authorization".into(),
                    HeaderValue::Single("[REDACTED]".into()),
                ),
            ],
            body: br#"{"name":"widget","count":3}"#.to_vec(),
            body_size: 27,
            ..sample_message()
        })
        .collect()
}

/// Connections the server accepted (a check that the senders keep connections alive).
static CONNECTIONS: AtomicU64 = AtomicU64::new(0);

/// A minimal keep-alive HTTP/1.1 server answering 200 to everything.
fn serve() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for conn in listener.incoming().flatten() {
            CONNECTIONS.fetch_add(1, Ordering::Relaxed);
            std::thread::spawn(move || {
                let mut w = conn.try_clone().unwrap();
                let mut r = BufReader::new(conn);
                let mut body = Vec::new();
                loop {
                    let mut len = 0usize;
                    loop {
                        let mut line = String::new();
                        if r.read_line(&mut line).unwrap_or(0) == 0 {
                            return;
                        }
                        if line == "\r\n" {
                            break;
                        }
                        let lower = line.to_ascii_lowercase();
                        if let Some(v) = lower.strip_prefix("content-length:") {
                            len = v.trim().parse().unwrap_or(0);
                        }
                    }
                    body.resize(len, 0);
                    if r.read_exact(&mut body).is_err() {
                        return;
                    }
                    if w.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n")
                        .is_err()
                    {
                        return;
                    }
                }
            });
        }
    });
    port
}

fn rss_mib() -> f64 {
    let s = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    s.lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .unwrap_or(0.0)
        / 1024.0
}

fn main() {
    let mut args = std::env::args().skip(1);
    let mode = args.next().unwrap_or_else(|| "single".into());
    let secs: u64 = args.next().and_then(|s| s.parse().ok()).unwrap_or(10);
    let batch = Arc::new(Batch::from_messages(&messages(100), None));
    let msg_bytes = batch.as_lines().len() / batch.len();

    match mode.as_str() {
        "single" | "batched" => {
            let port = serve();
            let mut cfg = HttpOutputConfig::new(format!("http://127.0.0.1:{port}/ingest"));
            if mode == "batched" {
                cfg.batch_size = 100;
                cfg.batch_wait = Duration::from_millis(50);
            }
            let concurrency = cfg.concurrency;
            let mut out = HttpOutput::new(cfg).unwrap();
            let t = Instant::now();
            let end = t + Duration::from_secs(secs);
            while Instant::now() < end {
                out.send(&batch);
                // Keep the queue fed without spinning the core the senders need.
                if out.stats().dropped_queue_full > 0 {
                    std::thread::sleep(Duration::from_micros(500));
                }
            }
            let st = out.stats();
            let elapsed = t.elapsed().as_secs_f64();
            out.close();
            println!(
                "{mode}: {:.0} messages/s delivered ({} in {elapsed:.1} s, {concurrency} senders, {} connections, ~{msg_bytes} B/message, RSS {:.1} MiB)",
                st.delivered as f64 / elapsed,
                st.delivered,
                CONNECTIONS.load(Ordering::Relaxed),
                rss_mib()
            );
        }
        "down" => {
            let port = TcpListener::bind("127.0.0.1:0")
                .unwrap()
                .local_addr()
                .unwrap()
                .port();
            let cfg = HttpOutputConfig::new(format!("http://127.0.0.1:{port}/ingest"));
            let mut out = HttpOutput::new(cfg).unwrap();
            println!("down: start RSS {:.1} MiB", rss_mib());
            let t = Instant::now();
            let mut max_rss = 0f64;
            let mut offered = 0u64;
            for s in 1..=secs {
                // 20 000 messages/s in 200 sends of 100.
                for _ in 0..200 {
                    out.send(&batch);
                    offered += 100;
                    std::thread::sleep(Duration::from_millis(5));
                }
                let rss = rss_mib();
                max_rss = max_rss.max(rss);
                let st = out.stats();
                println!(
                    "t={s:>2}s RSS {rss:.1} MiB offered {offered} queue_full {} retries {} exhausted {}",
                    st.dropped_queue_full, st.retries, st.dropped_retries_exhausted
                );
            }
            let elapsed = t.elapsed().as_secs_f64();
            let closing = Instant::now();
            out.close();
            let close_took = closing.elapsed();
            let st = out.stats();
            println!(
                "down: {offered} offered over {elapsed:.0} s, max RSS {max_rss:.1} MiB, close took {close_took:?}, {st:?}"
            );
        }
        other => {
            eprintln!("usage: output_bench single|batched|down [secs] (got {other:?})");
            std::process::exit(2);
        }
    }
}
