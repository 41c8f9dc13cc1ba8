// stdout sink: JSON lines through a writer thread, prompt flushing, a bounded
// queue in front of a reader that stops reading, and a closed pipe.

use std::io::{BufRead, BufReader, Write};
use std::sync::mpsc;
use std::sync::Arc;
use std::time::{Duration, Instant};

mod common;

use common::{returns_within, wait_until, DEADLINE};

use tcp_sniffer::message::HttpMessage;
use tcp_sniffer::output::{Batch, Output, StdoutOutput};
use tcp_sniffer::testing::{request, sample_message};
use tcp_sniffer::time::Timestamp;

fn batch(from: u64, n: u64) -> Arc<Batch> {
    let msgs: Vec<HttpMessage> = (from..from + n)
        .map(|i| HttpMessage {
            kind: request("GET", &format!("/{i}")),
            sequence: i,
            timestamp: Timestamp(i),
            end_timestamp: Timestamp(i),
            ..sample_message()
        })
        .collect();
    Arc::new(Batch::from_messages(&msgs, None))
}

/// A pipe as (read end, write end).
fn pipe() -> (std::fs::File, std::fs::File) {
    use std::os::fd::FromRawFd;
    let mut fds = [0; 2];
    // SAFETY: `fds` is a writable array of two descriptors, as pipe(2) requires.
    assert_eq!(unsafe { libc::pipe(fds.as_mut_ptr()) }, 0);
    // SAFETY: both descriptors were just created and are owned by nobody else.
    unsafe {
        (
            std::fs::File::from_raw_fd(fds[0]),
            std::fs::File::from_raw_fd(fds[1]),
        )
    }
}

#[test]
fn lines_appear_promptly_and_everything_is_flushed_on_close() {
    let (r, w) = pipe();
    let mut out = StdoutOutput::with_writer(w, 10_000, Duration::from_secs(5)).unwrap();
    let (tx, rx) = mpsc::channel();
    let reader = std::thread::spawn(move || {
        let mut n = 0u64;
        for line in BufReader::new(r).lines() {
            let line = line.unwrap();
            let v: serde_json::Value =
                serde_json::from_str(&line).expect("one JSON object per line");
            assert_eq!(v["type"], "request");
            n += 1;
            let _ = tx.send(Instant::now());
        }
        n
    });
    // Light traffic: the writer flushes as soon as its queue is empty, so one message
    // reaches the reader while the output is still open (nothing else would push it out:
    // no more messages, no close). The latency is reported, not asserted.
    let t = Instant::now();
    out.send(&batch(0, 1));
    let seen = rx.recv_timeout(DEADLINE).unwrap_or_else(|_| {
        panic!("a lone line was not flushed within {DEADLINE:?} while the output stayed open")
    });
    eprintln!("first line after {:?} (reported, not asserted)", seen - t);
    assert!(!out.is_closed());

    for i in 0..200 {
        out.send(&batch(1 + i * 50, 50));
    }
    out.close();
    drop(out); // closes the write end
    assert_eq!(reader.join().unwrap(), 1 + 200 * 50);
}

/// A writer that blocks until released (a reader that stopped reading).
struct Blocked(mpsc::Receiver<()>);

impl Write for Blocked {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        let _ = self.0.recv();
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// The writer never returns (a reader that stopped reading, and is never released): `send`
/// and `close` must still return. Proven by their returning at all, not by timing them: a
/// `send` that waited for room, or a `close` that waited for the writer, would never return.
#[test]
fn a_blocked_reader_never_stalls_send() {
    let (release, gate) = mpsc::channel::<()>();
    let mut out =
        StdoutOutput::with_writer(Blocked(gate), 1_000, Duration::from_millis(200)).unwrap();
    let b = batch(0, 100);
    let mut out = returns_within("10 000 sends to a blocked writer", DEADLINE, move || {
        let mut slowest = Duration::ZERO;
        for _ in 0..10_000 {
            let t = Instant::now();
            out.send(&b);
            slowest = slowest.max(t.elapsed());
        }
        eprintln!("slowest send {slowest:?} (reported, not asserted)");
        out
    });
    let st = out.stats();
    assert!(st.dropped_queue_full >= 1_000_000 - 1_100, "{st:?}");
    let out = returns_within("close with a blocked writer", DEADLINE, move || {
        out.close();
        out
    });
    let st = out.stats();
    assert_eq!(st.delivered, 0);
    assert_eq!(
        st.dropped_queue_full + st.dropped_at_shutdown,
        1_000_000,
        "every message counted: {st:?}"
    );
    assert!(!out.is_closed());
    drop(release);
}

#[test]
fn a_closed_pipe_closes_the_output_without_panic() {
    let (r, w) = pipe();
    drop(r);
    let mut out = StdoutOutput::with_writer(w, 10_000, Duration::from_secs(5)).unwrap();
    let mut sent = 0;
    wait_until("the output to notice EPIPE and close", DEADLINE, || {
        if out.is_closed() {
            return true;
        }
        out.send(&batch(0, 10));
        sent += 10;
        false
    });
    out.close();
    let st = out.stats();
    assert_eq!(st.delivered, 0);
    assert_eq!(
        st.dropped_stdout_closed + st.dropped_queue_full,
        sent,
        "{st:?}"
    );
}

#[test]
fn head_n1_style_reader_that_leaves_early() {
    let (r, w) = pipe();
    let mut out = StdoutOutput::with_writer(w, 10_000, Duration::from_secs(5)).unwrap();
    out.send(&batch(0, 1));
    let mut first = String::new();
    let mut br = BufReader::new(r);
    br.read_line(&mut first).unwrap();
    assert!(first.starts_with("{\"type\":\"request\""));
    drop(br); // like `head -n 1` exiting
    wait_until("the output to notice the reader left", DEADLINE, || {
        if out.is_closed() {
            return true;
        }
        out.send(&batch(1, 1000));
        false
    });
    out.close();
    let st = out.stats();
    assert_eq!(st.delivered, 1);
    assert!(st.dropped_stdout_closed > 0);
}

#[test]
fn stdout_constructor_works() {
    // The real stdout of the test process: nothing is written (the test harness
    // owns stdout); starting and closing shows the thread stops cleanly.
    let mut out = StdoutOutput::stdout(10, Duration::from_secs(1)).unwrap();
    out.close();
    assert_eq!(out.stats().delivered, 0);
}
