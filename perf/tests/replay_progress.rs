//! A file replayed through `Sniffer::start` reports its counters while it runs, not only at
//! the end: the library's `stats()` (and so the Node library's) shows progress on long files.
//! Uses a generated S file and an output that takes its time, so the replay lasts seconds.

use sniffer_perf::gen::{generate, Workload};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tcp_sniffer::config::Settings;
use tcp_sniffer::output::{Batch, Output};
use tcp_sniffer::runtime::{Hooks, Sniffer};
use tcp_sniffer::stats::OutputStats;

/// Accepts every batch, slowly (a destination that applies back-pressure): about 60 µs a
/// message, whatever the batch size.
struct Slow {
    delivered: u64,
}

impl Output for Slow {
    fn send(&mut self, batch: &Arc<Batch>) {
        std::thread::sleep(Duration::from_micros(60) * batch.len() as u32);
        self.delivered += batch.len() as u64;
    }
    fn flush(&mut self) {}
    fn close(&mut self) {}
    fn is_closed(&self) -> bool {
        false
    }
    fn stats(&self) -> OutputStats {
        OutputStats {
            delivered: self.delivered,
            ..OutputStats::default()
        }
    }
}

#[test]
fn stats_show_progress_during_a_file_replay() {
    let dir = std::env::temp_dir().join(format!("sniffer-perf-progress-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let pcap = dir.join("S.pcap");
    let (gen, _, _) = generate(
        Workload::S,
        6_000_000,
        11,
        std::fs::File::create(&pcap).unwrap(),
        std::io::sink(),
    )
    .unwrap();
    let expected = gen.requests + gen.responses;

    for workers in [1, 2] {
        let settings = Settings {
            read_file: Some(pcap.to_string_lossy().into_owned()),
            ports: vec![80, 8080],
            workers: Some(workers),
            ..Settings::default()
        };
        let slow: Box<dyn Output> = Box::new(Slow { delivered: 0 });
        let sniffer = Sniffer::start(&settings, vec![slow], None, Hooks::default()).unwrap();
        let deadline = Instant::now() + Duration::from_secs(120);
        let mut mid_run = Vec::new();
        while !sniffer.is_finished() {
            assert!(Instant::now() < deadline, "replay did not finish in 120 s");
            let s = sniffer.stats();
            mid_run.push((s.capture.packets, s.output.messages));
            std::thread::sleep(Duration::from_millis(50));
        }
        let last = sniffer.stop();
        assert_eq!(last.capture.packets, gen.packets, "{workers} workers");
        assert_eq!(last.output.messages, expected, "{workers} workers");
        assert_eq!(last.output.delivered, expected, "{workers} workers");
        // Some snapshot saw packets and messages counted but not yet all of them.
        assert!(
            mid_run
                .iter()
                .any(|&(p, m)| p > 0 && p < gen.packets && m > 0 && m < expected),
            "{workers} workers: no progress while running: {mid_run:?}"
        );
        // Counters never go back.
        assert!(
            mid_run
                .windows(2)
                .all(|w| w[0].0 <= w[1].0 && w[0].1 <= w[1].1),
            "{workers} workers: counters went back: {mid_run:?}"
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
}
