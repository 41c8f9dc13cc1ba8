//! Counters for everything the sniffer saw and everything it could not deliver.
//!
//! Each worker owns a [`Stats`] and updates it without locks; the pipeline merges
//! worker snapshots into one report. Every field is a monotonically increasing
//! `u64` (kernel drop counters are accumulated, since reading them resets them).
//! The JSON form (`--stats`, `sniffer.stats()`) uses these names, grouped by stage.

use serde::Serialize;

use crate::http::HttpStats;
use crate::reassembly::ReassemblyStats;
use crate::wire::DecodeStats;

/// Capture stage: what reached the sniffer and what the kernel or queues dropped.
#[derive(Clone, Debug, Default, Serialize)]
pub struct CaptureStats {
    /// Packets read from the capture source.
    pub packets: u64,
    /// Bytes of those packets as captured.
    pub bytes: u64,
    /// Packets the kernel dropped (ring full), accumulated.
    pub kernel_drops: u64,
    /// Packets dropped between the reader and a worker because its queue was full.
    pub queue_drops: u64,
    /// Records in a capture file that could not be read (the rest of the file is still read when possible).
    pub file_errors: u64,
}

/// Flow table: connections tracked, refused and evicted.
#[derive(Clone, Debug, Default, Serialize)]
pub struct FlowStats {
    /// TCP segments on a monitored port.
    pub segments: u64,
    /// TCP segments on no monitored port (filtered out).
    pub segments_unmonitored: u64,
    /// Segments of connections left out by `sampleRate`.
    pub segments_sampled_out: u64,
    /// Connections tracked.
    pub connections_opened: u64,
    /// Connections that ended with FIN on both sides.
    pub connections_closed: u64,
    /// Connections that ended with RST.
    pub connections_reset: u64,
    /// Connections evicted after `connectionIdleTimeoutMs` without packets.
    pub connections_idle_evicted: u64,
    /// Connections that never carried payload (half-open) dropped after 10 s.
    pub connections_half_open_timed_out: u64,
    /// Half-open connections dropped to make room for a new one at the cap.
    pub connections_half_open_evicted: u64,
    /// Connections whose server had sent nothing yet, dropped (oldest first) to make
    /// room for a new one at the cap when no half-open one was left.
    pub connections_unanswered_evicted: u64,
    /// Connections evicted, idlest first, because the worker's memory budget for
    /// heads, pending requests or out-of-order bytes was nearly spent.
    pub connections_evicted_memory: u64,
    /// New connections not tracked because `maxConcurrentConnections` was reached.
    pub connections_over_cap: u64,
    /// Segments of connections that could not be tracked because of the cap.
    pub segments_over_cap: u64,
    /// Connections replaced by a new SYN on the same addresses and ports.
    pub connections_reused: u64,
    /// Connections still open when the capture ended (flushed as incomplete where unfinished).
    pub connections_open_at_end: u64,
    /// Payload bytes of connections no longer parsed as HTTP (upgraded, tunnelled, not HTTP).
    pub bytes_not_parsed: u64,
    /// `ports: any`: connections let go because their first bytes were not HTTP (or no
    /// message start was found within the detection window of a connection seen mid-way).
    pub connections_not_http: u64,
    /// `ports: any`: segments of connections let go as not HTTP, dropped unread.
    pub segments_not_http: u64,
}

/// Output stage: messages produced, delivered and dropped.
#[derive(Clone, Debug, Default, Serialize)]
pub struct OutputStats {
    /// Messages produced by the workers.
    pub messages: u64,
    /// Messages written or sent successfully (every enabled output).
    pub delivered: u64,
    /// Messages dropped because an output queue was full.
    pub dropped_queue_full: u64,
    /// Messages dropped after the output URL's retries were exhausted.
    pub dropped_retries_exhausted: u64,
    /// Messages rejected by the output URL with a non-retryable 4xx.
    pub dropped_rejected: u64,
    /// Messages still pending when the drain deadline passed on stop.
    pub dropped_at_shutdown: u64,
    /// Messages not written because stdout was closed.
    pub dropped_stdout_closed: u64,
    /// Output URL requests retried (each retry of a request counts once, whatever
    /// the number of messages in it).
    pub retries: u64,
    /// OTLP spans the collector accepted in a request but then dropped, as its answer's
    /// `partial_success.rejected_spans` said (their messages also count as delivered).
    pub otlp_spans_rejected: u64,
    /// Calls to the JavaScript callback that threw.
    pub callback_errors: u64,
}

/// All counters. See the module docs.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Stats {
    /// Capture stage.
    pub capture: CaptureStats,
    /// Packet decoding.
    pub decode: DecodeStats,
    /// Flow table.
    pub flow: FlowStats,
    /// TCP reassembly.
    pub reassembly: ReassemblyStats,
    /// HTTP parsing and pairing.
    pub http: HttpStats,
    /// Outputs.
    pub output: OutputStats,
}

macro_rules! merge_fields {
    ($dst:expr, $src:expr, $($f:ident),* $(,)?) => { $( $dst.$f += $src.$f; )* };
}

impl CaptureStats {
    /// Adds `other`'s counters to these.
    pub fn merge(&mut self, o: &CaptureStats) {
        merge_fields!(
            self,
            o,
            packets,
            bytes,
            kernel_drops,
            queue_drops,
            file_errors
        );
    }
}

impl FlowStats {
    /// Adds `other`'s counters to these.
    pub fn merge(&mut self, o: &FlowStats) {
        merge_fields!(
            self,
            o,
            segments,
            segments_unmonitored,
            segments_sampled_out,
            connections_opened,
            connections_closed,
            connections_reset,
            connections_idle_evicted,
            connections_half_open_timed_out,
            connections_half_open_evicted,
            connections_unanswered_evicted,
            connections_evicted_memory,
            connections_over_cap,
            segments_over_cap,
            connections_reused,
            connections_open_at_end,
            bytes_not_parsed,
            connections_not_http,
            segments_not_http,
        );
    }
}

impl OutputStats {
    /// Adds `other`'s counters to these.
    pub fn merge(&mut self, o: &OutputStats) {
        merge_fields!(
            self,
            o,
            messages,
            delivered,
            dropped_queue_full,
            dropped_retries_exhausted,
            dropped_rejected,
            dropped_at_shutdown,
            dropped_stdout_closed,
            retries,
            otlp_spans_rejected,
            callback_errors,
        );
    }
}

impl Stats {
    /// Adds `other`'s counters to these.
    pub fn merge(&mut self, o: &Stats) {
        self.capture.merge(&o.capture);
        self.decode.merge(&o.decode);
        self.flow.merge(&o.flow);
        self.reassembly.merge(&o.reassembly);
        self.http.merge(&o.http);
        self.output.merge(&o.output);
    }

    /// The counters as one JSON object.
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_else(|_| "{}".into())
    }
}
