//! Counters of what reassembly saw, dropped and could not deliver.

macro_rules! counters {
    ($(#[$doc:meta])* pub struct $name:ident { $($(#[$fdoc:meta])* $field:ident,)* }) => {
        $(#[$doc])*
        #[derive(Debug, Default, Clone, PartialEq, Eq, serde::Serialize)]
        pub struct $name {
            $($(#[$fdoc])* pub $field: u64,)*
        }

        impl $name {
            /// Adds every counter of `other` to `self`.
            pub fn merge(&mut self, other: &$name) {
                $(self.$field += other.$field;)*
            }
        }
    };
}

counters! {
    /// Reassembly counters: per direction, per connection or per worker (combine with
    /// [`ReassemblyStats::merge`]). Every byte that is not delivered as data is counted
    /// under exactly one reason.
    pub struct ReassemblyStats {
        /// Segments passed to `Reassembler::segment`.
        segments,
        /// Payload bytes passed to the sink as data (in order, de-duplicated).
        delivered_bytes,
        /// Segments that arrived ahead of the next expected byte (a hole before them).
        out_of_order_segments,
        /// Segments made entirely of bytes already delivered (retransmissions), dropped.
        retransmitted_segments,
        /// Payload bytes dropped because they were already delivered.
        retransmitted_bytes,
        /// Payload bytes dropped because the same stream bytes were already buffered
        /// (the first copy wins).
        overlap_bytes,
        /// Gaps reported to the sink, whatever the cause.
        gap_events,
        /// Stream bytes reported as gaps (never seen), whatever the cause.
        gap_bytes,
        /// Gaps forced because the direction's buffer hit `Limits` (bytes or segments).
        buffer_overflow_events,
        /// Gaps forced because the worker's `Budget` was exhausted.
        budget_exhausted_events,
        /// Gaps declared because the peer acknowledged bytes the capture never saw.
        ack_gap_events,
        /// Gaps for bytes the capture cut off (snaplen, `Segment::missing`).
        snaplen_gap_events,
        /// Gaps for holes still open when the direction was flushed (RST, eviction, end).
        flush_gap_events,
        /// Segments dropped because their sequence number was more than
        /// `MAX_SEQ_JUMP` away from the next expected byte.
        huge_jump_segments,
        /// Acknowledgements ignored because they were more than `MAX_SEQ_JUMP` ahead.
        huge_jump_acks,
        /// Acknowledgements ignored because they acknowledged more than
        /// `MAX_ACK_BEYOND_SEEN` (1 MiB) past the last byte seen in that direction.
        acks_beyond_seen,
        /// Payload bytes dropped because they lie after the sender's FIN.
        beyond_fin_bytes,
        /// Segments carrying new payload after the direction was closed (FIN
        /// delivered, RST or flush), dropped.
        segments_after_close,
        /// Payload bytes still buffered and dropped by `Reassembler::discard`.
        discarded_bytes,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn merge_adds_and_serialises_snake_case() {
        let mut a = ReassemblyStats {
            gap_bytes: 3,
            ..Default::default()
        };
        let b = ReassemblyStats {
            gap_bytes: 4,
            segments: 1,
            ..Default::default()
        };
        a.merge(&b);
        assert_eq!(a.gap_bytes, 7);
        assert_eq!(a.segments, 1);
        let json = serde_json::to_string(&a).unwrap();
        assert!(json.contains("\"gap_bytes\":7"), "{json}");
        assert!(json.contains("\"out_of_order_segments\":0"), "{json}");
    }
}
