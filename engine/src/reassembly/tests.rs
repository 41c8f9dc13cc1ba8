//! Unit tests of the reassembler: fixtures of hand-made segments, every split
//! point of a byte stream, and random (fuzz-ish) segment soups.

use super::*;

#[derive(Debug, Clone, PartialEq, Eq)]
enum Ev {
    Data(Vec<u8>, u64),
    Gap(u64),
    Fin(u64),
}

/// Records sink events, merging adjacent data runs, and checks the sink contract.
#[derive(Default, Debug)]
struct Rec {
    evs: Vec<Ev>,
    fins: usize,
}

impl StreamSink for Rec {
    fn data(&mut self, bytes: &[u8], ts: Timestamp) {
        assert!(!bytes.is_empty(), "empty data event");
        assert_eq!(self.fins, 0, "data after fin");
        self.evs.push(Ev::Data(bytes.to_vec(), ts.0));
    }
    fn gap(&mut self, len: u64, _ts: Timestamp) {
        assert!(len > 0, "empty gap");
        assert_eq!(self.fins, 0, "gap after fin");
        self.evs.push(Ev::Gap(len));
    }
    fn fin(&mut self, ts: Timestamp) {
        self.fins += 1;
        assert_eq!(self.fins, 1, "fin twice");
        self.evs.push(Ev::Fin(ts.0));
    }
}

impl Rec {
    /// Concatenated data bytes.
    fn bytes(&self) -> Vec<u8> {
        let mut v = Vec::new();
        for e in &self.evs {
            if let Ev::Data(d, _) = e {
                v.extend_from_slice(d);
            }
        }
        v
    }
    /// Data runs merged, as (text, gap) items: data as strings, gaps as "<gap N>".
    fn text(&self) -> String {
        let mut s = String::new();
        for e in &self.evs {
            match e {
                Ev::Data(d, _) => s.push_str(&String::from_utf8_lossy(d)),
                Ev::Gap(n) => s.push_str(&format!("<gap {n}>")),
                Ev::Fin(_) => s.push_str("<fin>"),
            }
        }
        s
    }
    fn gaps(&self) -> u64 {
        self.evs
            .iter()
            .map(|e| if let Ev::Gap(n) = e { *n } else { 0 })
            .sum()
    }
}

/// A reassembler with its limits, budget, stats and sink.
struct Harness {
    r: Reassembler,
    limits: Limits,
    budget: Budget,
    stats: ReassemblyStats,
    out: Rec,
}

impl Harness {
    fn new() -> Self {
        Self::with(Limits::default(), 1 << 30)
    }
    fn with(limits: Limits, budget: usize) -> Self {
        Harness {
            r: Reassembler::new(),
            limits,
            budget: Budget::new(budget),
            stats: ReassemblyStats::default(),
            out: Rec::default(),
        }
    }
    fn seg(&mut self, s: Segment<'_>) {
        self.r.segment(
            &s,
            &self.limits,
            &mut self.budget,
            &mut self.stats,
            &mut self.out,
        );
        self.check();
    }
    fn data(&mut self, seq: u32, payload: &[u8]) {
        self.seg(seg(seq, payload));
    }
    fn ack(&mut self, ack: u32) {
        self.r.peer_ack(
            ack,
            Timestamp(99),
            &self.limits,
            &mut self.budget,
            &mut self.stats,
            &mut self.out,
        );
        self.check();
    }
    fn flush(&mut self) {
        self.r.flush(
            Timestamp(100),
            &mut self.budget,
            &mut self.stats,
            &mut self.out,
        );
        self.check();
        assert_eq!(self.budget.used(), 0);
        assert_eq!(self.r.buffered_bytes(), 0);
        assert!(self.r.is_closed());
    }
    fn check(&self) {
        self.r.buffer.check();
        assert_eq!(self.r.buffered_bytes(), self.budget.used());
        assert!(self.r.buffer.len() <= self.limits.max_segments_per_direction);
        assert!(self.r.buffered_bytes() <= self.limits.max_buffered_per_direction);
        if let Some(off) = self.r.buffer.first_off() {
            assert!(off > self.r.delivered, "contiguous data left stored");
        }
        let accounted: u64 = self
            .out
            .evs
            .iter()
            .map(|e| match e {
                Ev::Data(d, _) => d.len() as u64,
                Ev::Gap(n) => *n,
                Ev::Fin(_) => 0,
            })
            .sum();
        assert_eq!(accounted, self.r.delivered);
    }
}

fn seg(seq: u32, payload: &[u8]) -> Segment<'_> {
    Segment {
        seq,
        syn: false,
        fin: false,
        rst: false,
        payload,
        missing: 0,
        ts: Timestamp(u64::from(seq)),
    }
}

fn syn(seq: u32) -> Segment<'static> {
    Segment {
        syn: true,
        ..seg(seq, b"")
    }
}

fn fin(seq: u32, payload: &[u8]) -> Segment<'_> {
    Segment {
        fin: true,
        ..seg(seq, payload)
    }
}

#[test]
fn in_order_is_delivered_at_once_without_buffering() {
    let mut h = Harness::new();
    h.seg(syn(1000));
    h.data(1001, b"hello ");
    assert_eq!(h.out.evs, vec![Ev::Data(b"hello ".to_vec(), 1001)]);
    h.data(1007, b"world");
    h.seg(fin(1012, b""));
    assert_eq!(h.out.text(), "hello world<fin>");
    assert!(h.r.is_closed());
    assert_eq!(h.stats.out_of_order_segments, 0);
    assert_eq!(h.stats.delivered_bytes, 11);
    assert_eq!(h.stats.segments, 4);
    h.flush();
    assert_eq!(h.out.text(), "hello world<fin>");
}

#[test]
fn reordered_segments_are_put_back_in_order() {
    let mut h = Harness::new();
    h.seg(syn(0));
    h.data(7, b"world");
    h.data(12, b"!");
    assert!(h.out.evs.is_empty());
    assert_eq!(h.r.buffered_bytes(), 6);
    h.data(1, b"hello ");
    assert_eq!(h.out.text(), "hello world!");
    // Buffered runs keep the capture time of their own segment.
    assert_eq!(h.out.evs[1], Ev::Data(b"world".to_vec(), 7));
    assert_eq!(h.stats.out_of_order_segments, 2);
    assert_eq!(h.r.buffered_bytes(), 0);
    assert_eq!(h.budget.used(), 0);
}

#[test]
fn duplicates_are_dropped_and_counted() {
    let mut h = Harness::new();
    h.seg(syn(0));
    h.data(1, b"abc");
    h.data(1, b"abc");
    h.data(7, b"ghi");
    h.data(7, b"ghi");
    h.data(4, b"def");
    h.data(4, b"def");
    assert_eq!(h.out.text(), "abcdefghi");
    assert_eq!(h.stats.retransmitted_segments, 2);
    assert_eq!(h.stats.retransmitted_bytes, 6);
    assert_eq!(h.stats.overlap_bytes, 3);
}

#[test]
fn overlaps_first_copy_wins() {
    // Already delivered bytes win over a retransmission with other bytes.
    let mut h = Harness::new();
    h.seg(syn(0));
    h.data(1, b"AAAA");
    h.data(3, b"bbbbbb");
    assert_eq!(h.out.text(), "AAAAbbbb");
    assert_eq!(h.stats.retransmitted_bytes, 2);

    // Buffered bytes win over a later segment covering them, whether the later
    // one is in order (zero-copy path) or also out of order.
    let mut h = Harness::new();
    h.seg(syn(0));
    h.data(5, b"XX"); // offsets 4..6
    h.data(9, b"YY"); // offsets 8..10
    h.data(3, b"cccccccccc"); // offsets 2..12, out of order: fills holes only
    h.data(1, b"aaaaaaaaaaaaaaa"); // offsets 0..15, in order
    assert_eq!(h.out.text(), "aaccXXccYYccaaa");
    assert_eq!(h.stats.overlap_bytes, 4 + 10);
    assert_eq!(h.budget.used(), 0);
}

#[test]
fn sequence_numbers_wrap_around() {
    let isn = u32::MAX - 5;
    let text = b"0123456789abcdefghij";
    let mut h = Harness::new();
    h.seg(syn(isn));
    let s = |off: usize| SeqNumber(isn).0.wrapping_add(1 + off as u32);
    h.data(s(10), &text[10..]);
    h.data(s(4), &text[4..10]); // crosses 2^32
    h.data(s(0), &text[..4]);
    h.seg(fin(s(20), b""));
    assert_eq!(h.out.text(), "0123456789abcdefghij<fin>");
    assert_eq!(h.r.next_seq(), Some(SeqNumber(s(20))));
}

#[test]
fn fin_out_of_order_waits_for_the_data_before_it() {
    let mut h = Harness::new();
    h.seg(syn(0));
    h.data(1, b"ab");
    h.seg(Segment {
        ts: Timestamp(77),
        ..fin(5, b"ef")
    });
    assert_eq!(h.out.text(), "ab");
    assert!(!h.r.is_closed());
    h.data(3, b"cd");
    assert_eq!(h.out.text(), "abcdef<fin>");
    assert_eq!(h.out.evs.last(), Some(&Ev::Fin(77)));
    assert!(h.r.is_closed());
    // Data after the FIN is dropped; retransmissions are counted as such.
    h.data(7, b"zz");
    h.data(1, b"ab");
    assert_eq!(h.stats.segments_after_close, 1);
    assert_eq!(h.stats.retransmitted_segments, 1);
    h.flush();
    assert_eq!(h.out.text(), "abcdef<fin>");
}

#[test]
fn data_beyond_a_known_fin_is_dropped() {
    let mut h = Harness::new();
    h.seg(syn(0));
    h.data(10, b"late"); // buffered, later found to be past the FIN
    h.seg(fin(3, b"cd"));
    assert_eq!(h.stats.beyond_fin_bytes, 4);
    assert_eq!(h.budget.used(), 2); // "cd" waits for "ab"
    h.data(1, b"abXYZ"); // "XY" loses to the stored "cd", "Z" lies after the FIN
    assert_eq!(h.out.text(), "abcd<fin>");
    assert_eq!(h.stats.beyond_fin_bytes, 5);
    assert_eq!(h.stats.overlap_bytes, 2);
}

#[test]
fn rst_flushes_and_closes() {
    let mut h = Harness::new();
    h.seg(syn(0));
    h.data(1, b"ab");
    h.data(5, b"ef");
    h.seg(Segment {
        rst: true,
        ..seg(7, b"ignored")
    });
    assert_eq!(h.out.text(), "ab<gap 2>ef");
    assert_eq!(h.out.fins, 0, "RST is not a FIN");
    assert!(h.r.is_closed());
    assert_eq!(h.budget.used(), 0);
    assert_eq!(h.stats.flush_gap_events, 1);
    h.data(7, b"more");
    assert_eq!(h.stats.segments_after_close, 1);
    assert_eq!(h.out.text(), "ab<gap 2>ef");
}

#[test]
fn gap_when_the_segment_limit_is_hit() {
    let limits = Limits {
        max_buffered_per_direction: 1 << 20,
        max_segments_per_direction: 2,
    };
    let mut h = Harness::with(limits, 1 << 20);
    h.seg(syn(0));
    h.data(1, b"a");
    h.data(3, b"c"); // hole at offset 1
    h.data(5, b"e"); // hole at 3
    h.data(7, b"g"); // would be the third stored run: the first hole is declared lost
    assert_eq!(h.out.text(), "a<gap 1>c");
    assert_eq!(h.stats.buffer_overflow_events, 1);
    assert_eq!(h.r.buffer.len(), 2);
    h.data(4, b"d");
    assert_eq!(h.out.text(), "a<gap 1>cde");
    h.flush();
    assert_eq!(h.out.text(), "a<gap 1>cde<gap 1>g");
    assert_eq!(h.stats.gap_events, 2);
    assert_eq!(h.stats.gap_bytes, 2);
}

#[test]
fn gap_when_the_byte_limit_is_hit() {
    let limits = Limits {
        max_buffered_per_direction: 8,
        max_segments_per_direction: 100,
    };
    let mut h = Harness::with(limits, 1 << 20);
    h.seg(syn(0));
    h.data(11, b"kkkk"); // offsets 10..14
    h.data(21, b"uuuu"); // offsets 20..24, 8 stored
    h.data(31, b"EEEE"); // would be 12: drop hole 0..10, deliver "kkkk", store
    assert_eq!(h.out.text(), "<gap 10>kkkk");
    assert_eq!(h.r.buffered_bytes(), 8);
    // A segment bigger than the limit on its own is never stored: skip to it.
    let big = [b'B'; 20];
    h.data(51, &big); // offsets 50..70
    assert_eq!(
        h.out.text(),
        format!(
            "<gap 10>kkkk<gap 6>uuuu<gap 6>EEEE<gap 16>{}",
            "B".repeat(20)
        )
    );
    assert_eq!(h.stats.buffer_overflow_events, 4);
    assert_eq!(h.budget.used(), 0);
}

#[test]
fn gap_when_the_worker_budget_is_exhausted() {
    let limits = Limits::default();
    let mut budget = Budget::new(6);
    let mut stats = ReassemblyStats::default();
    let (mut a, mut b) = (Reassembler::new(), Reassembler::new());
    let (mut oa, mut ob) = (Rec::default(), Rec::default());
    a.segment(&syn(0), &limits, &mut budget, &mut stats, &mut oa);
    b.segment(&syn(0), &limits, &mut budget, &mut stats, &mut ob);
    a.segment(&seg(5, b"eeee"), &limits, &mut budget, &mut stats, &mut oa);
    assert_eq!(budget.used(), 4);
    // b's first out-of-order segment does not fit the shared budget, and b has
    // nothing of its own to give back: it skips straight to the segment.
    b.segment(&seg(3, b"ccc"), &limits, &mut budget, &mut stats, &mut ob);
    assert_eq!(ob.text(), "<gap 2>ccc");
    assert_eq!(stats.budget_exhausted_events, 1);
    assert_eq!(budget.used(), 4);
    b.segment(&seg(8, b"hh"), &limits, &mut budget, &mut stats, &mut ob);
    assert_eq!(budget.used(), 6);
    a.flush(Timestamp(1), &mut budget, &mut stats, &mut oa);
    b.flush(Timestamp(1), &mut budget, &mut stats, &mut ob);
    assert_eq!(oa.text(), "<gap 4>eeee");
    assert_eq!(ob.text(), "<gap 2>ccc<gap 2>hh");
    assert_eq!(budget.used(), 0);
}

#[test]
fn peer_ack_declares_unseen_bytes_lost() {
    let mut h = Harness::new();
    h.seg(syn(0));
    h.ack(1); // acknowledges the SYN only: nothing lost
    h.data(1, b"ab");
    h.data(5, b"ef");
    h.data(9, b"ij");
    h.ack(3); // old news
    assert_eq!(h.out.text(), "ab");
    h.ack(7); // bytes 2..4 were lost; "ef" follows
    assert_eq!(h.out.text(), "ab<gap 2>ef");
    h.ack(13); // 6..8 lost, "ij", then 10..12 never seen either
    assert_eq!(h.out.text(), "ab<gap 2>ef<gap 2>ij<gap 2>");
    assert_eq!(h.stats.ack_gap_events, 3);
    assert_eq!(h.budget.used(), 0);
    // The acknowledgement of a FIN does not make the FIN a lost byte.
    h.seg(fin(17, b""));
    h.ack(18);
    assert_eq!(h.out.text(), "ab<gap 2>ef<gap 2>ij<gap 2><gap 4><fin>");
    // Acknowledgements before anything was seen, or absurdly far, are ignored.
    let mut h = Harness::new();
    h.ack(500);
    h.data(1000, b"x");
    h.ack(1001 + (1 << 30) + 1);
    assert_eq!(h.stats.huge_jump_acks, 1);
    assert_eq!(h.out.text(), "x");
    // An acknowledgement may declare lost at most 1 MiB past the last byte seen.
    h.ack(1001 + (1 << 20) + 1);
    assert_eq!(h.stats.acks_beyond_seen, 1);
    assert_eq!(h.out.text(), "x");
    h.ack(1001 + (1 << 20));
    assert_eq!(h.out.text(), format!("x<gap {}>", 1 << 20));
}

#[test]
fn flush_delivers_with_gaps_and_fin() {
    let mut h = Harness::new();
    h.seg(syn(0));
    h.data(1, b"ab");
    h.data(5, b"ef");
    h.seg(fin(9, b"ij")); // FIN at offset 10
    h.flush();
    assert_eq!(h.out.text(), "ab<gap 2>ef<gap 2>ij<fin>");
    assert_eq!(h.stats.flush_gap_events, 2);
    // Without FIN, flush stops after the last stored byte.
    let mut h = Harness::new();
    h.data(100, b"ab");
    h.data(110, b"kl");
    h.flush();
    assert_eq!(h.out.text(), "ab<gap 8>kl");
    h.flush(); // idempotent
    assert_eq!(h.out.text(), "ab<gap 8>kl");
}

#[test]
fn snaplen_cut_becomes_a_gap_after_the_payload() {
    let mut h = Harness::new();
    h.seg(syn(0));
    h.seg(Segment {
        missing: 3,
        ..seg(1, b"abc")
    });
    assert_eq!(h.out.text(), "abc<gap 3>");
    assert_eq!(h.stats.snaplen_gap_events, 1);
    // A full copy of the cut bytes arriving later is old news.
    h.data(4, b"DEFghi");
    assert_eq!(h.out.text(), "abc<gap 3>ghi");
    // Out of order and cut: the payload is stored, the cut part stays a hole
    // until an acknowledgement or the flush declares it.
    h.seg(Segment {
        missing: 2,
        ..seg(13, b"mn")
    });
    h.data(10, b"jkl");
    assert_eq!(h.out.text(), "abc<gap 3>ghijklmn");
    h.ack(17);
    assert_eq!(h.out.text(), "abc<gap 3>ghijklmn<gap 2>");
    // A cut segment carrying a FIN: the FIN follows the missing bytes.
    h.seg(Segment {
        missing: 4,
        ..fin(17, b"op")
    });
    assert_eq!(h.out.text(), "abc<gap 3>ghijklmn<gap 2>op<gap 4><fin>");
}

#[test]
fn mid_stream_start_uses_the_first_segment() {
    let mut h = Harness::new();
    h.data(5000, b"world");
    h.data(4994, b"hello "); // before the start: old
    h.data(5005, b"!");
    assert_eq!(h.out.text(), "world!");
    assert_eq!(h.stats.retransmitted_segments, 1);
    // A pure ACK can start the stream too.
    let mut h = Harness::new();
    h.data(7000, b"");
    h.data(7002, b"cd");
    h.data(7000, b"ab");
    assert_eq!(h.out.text(), "abcd");
}

#[test]
fn syn_rebases_only_an_empty_stream() {
    let mut h = Harness::new();
    h.data(50, b""); // a stray ACK first
    h.seg(syn(900));
    h.data(901, b"ok");
    assert_eq!(h.out.text(), "ok");
    h.seg(syn(900)); // SYN retransmission changes nothing
    h.data(903, b"!");
    assert_eq!(h.out.text(), "ok!");
}

#[test]
fn huge_jumps_are_dropped() {
    let mut h = Harness::new();
    h.seg(syn(0));
    h.data(1, b"ab");
    h.data(3 + (1 << 30) + 1, b"garbage");
    h.data(3u32.wrapping_sub((1 << 30) + 5), b"garbage");
    assert_eq!(h.stats.huge_jump_segments, 2);
    assert_eq!(h.budget.used(), 0);
    // Up to the threshold it is a (large) out-of-order segment.
    h.data(3 + (1 << 20), b"far");
    assert_eq!(h.r.buffered_bytes(), 3);
    h.data(3, b"cd");
    h.flush();
    assert_eq!(h.out.text(), format!("abcd<gap {}>far", (1 << 20) - 2));
}

#[test]
fn syn_with_data() {
    let mut h = Harness::new();
    h.seg(Segment {
        syn: true,
        ..seg(10, b"fast open")
    });
    h.data(20, b"!");
    assert_eq!(h.out.text(), "fast open!");
}

/// Deterministic xorshift64* generator.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
    fn shuffle<T>(&mut self, v: &mut [T]) {
        for i in (1..v.len()).rev() {
            v.swap(i, self.below(i + 1));
        }
    }
}

fn text_3k() -> Vec<u8> {
    let mut v = Vec::new();
    let mut i = 0;
    while v.len() < 3000 {
        v.extend_from_slice(
            format!("GET /item/{i} HTTP/1.1\r\nHost: example.test\r\nX-N: {i}\r\n\r\n").as_bytes(),
        );
        i += 1;
    }
    v.truncate(3000);
    v
}

/// Feeds the stream (ISN `isn`) as the given (start, end) cuts in the given
/// order, then a FIN, and expects exactly the stream back, without gaps.
fn feed_cuts(input: &[u8], isn: u32, cuts: &[(usize, usize)]) {
    let mut h = Harness::new();
    h.seg(syn(isn));
    for &(a, b) in cuts {
        let s = isn.wrapping_add(1).wrapping_add(a as u32);
        h.data(s, &input[a..b]);
    }
    h.seg(fin(
        isn.wrapping_add(1).wrapping_add(input.len() as u32),
        b"",
    ));
    assert_eq!(h.out.gaps(), 0, "cuts {cuts:?}");
    assert_eq!(h.out.fins, 1);
    assert!(h.out.bytes() == input, "cuts {cuts:?}");
    assert_eq!(h.budget.used(), 0);
}

#[test]
fn every_split_point_in_order_and_reversed() {
    let input = text_3k();
    for isn in [0, u32::MAX - 1500] {
        for k in 1..input.len() {
            feed_cuts(&input, isn, &[(0, k), (k, input.len())]);
            feed_cuts(&input, isn, &[(k, input.len()), (0, k)]);
        }
    }
}

#[test]
fn random_cuts_shuffled_with_duplicates_and_overlaps() {
    let input = text_3k();
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    for round in 0..300 {
        let mut points = vec![0, input.len()];
        for _ in 0..1 + rng.below(40) {
            points.push(rng.below(input.len()));
        }
        points.sort_unstable();
        points.dedup();
        let mut cuts: Vec<(usize, usize)> = points.windows(2).map(|w| (w[0], w[1])).collect();
        match round % 4 {
            0 => {}
            1 => cuts.reverse(),
            2 => rng.shuffle(&mut cuts),
            _ => {
                // Duplicates and overlapping retransmissions of the same bytes.
                for _ in 0..rng.below(20) {
                    let a = rng.below(input.len());
                    let b = (a + 1 + rng.below(500)).min(input.len());
                    cuts.push((a, b));
                    let dup = cuts[rng.below(cuts.len())];
                    cuts.push(dup);
                }
                rng.shuffle(&mut cuts);
            }
        }
        let isn = if round % 2 == 0 {
            rng.next() as u32
        } else {
            u32::MAX - rng.below(3000) as u32
        };
        feed_cuts(&input, isn, &cuts);
    }
}

/// Honest senders over a lossy capture, tight limits and a shared budget: every
/// delivered byte must be the sender's byte at that offset, accounting exact.
#[test]
fn fuzz_lossy_capture_delivers_true_bytes_only() {
    let mut rng = Rng(12345);
    let stream: Vec<u8> = (0..20_000).map(|_| rng.next() as u8).collect();
    let mut all = ReassemblyStats::default();
    let mut fins = 0;
    for round in 0..200 {
        let limits = Limits {
            max_buffered_per_direction: 1 + rng.below(4000),
            max_segments_per_direction: 1 + rng.below(12),
        };
        let mut budget = Budget::new(rng.below(6000));
        let mut stats = ReassemblyStats::default();
        let mut rs: Vec<(Reassembler, Rec, u32)> = (0..3)
            .map(|_| (Reassembler::new(), Rec::default(), rng.next() as u32))
            .collect();
        for (r, out, isn) in rs.iter_mut() {
            r.segment(&syn(*isn), &limits, &mut budget, &mut stats, out);
        }
        let total = 2000 + rng.below(stream.len() - 2000);
        for _ in 0..300 {
            let i = rng.below(3);
            let (r, out, isn) = &mut rs[i];
            let base = isn.wrapping_add(1);
            let mut a = rng.below(total);
            if rng.below(40) == 0 {
                a = total - rng.below(100).min(total); // the end of the stream, often with FIN
            }
            let b = (a + rng.below(1500)).min(total);
            let missing = if rng.below(10) == 0 {
                (rng.below(200)).min(total - b)
            } else {
                0
            };
            let is_fin = b + missing == total && rng.below(3) == 0;
            match rng.below(8) {
                0 => r.peer_ack(
                    base.wrapping_add(rng.below(total + 1) as u32),
                    Timestamp(1),
                    &limits,
                    &mut budget,
                    &mut stats,
                    out,
                ),
                _ => r.segment(
                    &Segment {
                        seq: base.wrapping_add(a as u32),
                        syn: false,
                        fin: is_fin,
                        rst: false,
                        payload: &stream[a..b],
                        missing: missing as u32,
                        ts: Timestamp(round),
                    },
                    &limits,
                    &mut budget,
                    &mut stats,
                    out,
                ),
            }
            r.buffer.check();
            assert!(r.buffered_bytes() <= limits.max_buffered_per_direction);
            assert!(r.buffer.len() <= limits.max_segments_per_direction);
            let sum: usize = rs.iter().map(|(r, _, _)| r.buffered_bytes()).sum();
            assert_eq!(sum, budget.used());
            assert!(budget.used() <= budget.max());
        }
        for (r, out, _) in rs.iter_mut() {
            r.flush(Timestamp(2), &mut budget, &mut stats, out);
            // Replay the events against the true stream.
            let mut off = 0usize;
            for e in &out.evs {
                match e {
                    Ev::Data(d, _) => {
                        assert!(stream[off..off + d.len()] == d[..], "wrong bytes at {off}");
                        off += d.len();
                    }
                    Ev::Gap(n) => off += *n as usize,
                    Ev::Fin(_) => assert_eq!(off, total),
                }
            }
            assert!(off <= total);
            fins += out.fins as u64;
            assert_eq!(off as u64, r.delivered);
        }
        assert_eq!(budget.used(), 0);
        all.merge(&stats);
    }
    eprintln!("{all:?}");
    // The soup reached every path it is meant to test.
    for (name, n) in [
        ("out_of_order", all.out_of_order_segments),
        ("retransmitted", all.retransmitted_bytes),
        ("overlap", all.overlap_bytes),
        ("overflow", all.buffer_overflow_events),
        ("budget", all.budget_exhausted_events),
        ("ack", all.ack_gap_events),
        ("snaplen", all.snaplen_gap_events),
        ("flush", all.flush_gap_events),
        ("fin", fins),
    ] {
        assert!(n > 0, "{name} never happened");
    }
}

/// Garbage in: random sequence numbers, flags and lengths. Must not panic and
/// must keep the budget exact.
#[test]
fn fuzz_garbage_never_panics() {
    let mut rng = Rng(777);
    let junk: Vec<u8> = (0..70_000).map(|_| rng.next() as u8).collect();
    let mut all = ReassemblyStats::default();
    for _ in 0..300 {
        let limits = Limits {
            max_buffered_per_direction: rng.below(100_000),
            max_segments_per_direction: rng.below(50),
        };
        let mut budget = Budget::new(rng.below(200_000));
        let mut stats = ReassemblyStats::default();
        let mut r = Reassembler::new();
        let mut out = Rec::default();
        let mut seq = rng.next() as u32;
        for _ in 0..200 {
            // Mostly near the current position, sometimes anywhere.
            let s = if rng.below(5) == 0 {
                rng.next() as u32
            } else {
                seq.wrapping_add(rng.below(20_000) as u32)
                    .wrapping_sub(10_000)
            };
            if rng.below(6) == 0 {
                r.peer_ack(s, Timestamp(3), &limits, &mut budget, &mut stats, &mut out);
            } else {
                let max_len = if rng.below(10) == 0 { 65_536 } else { 1500 };
                let len = rng.below(max_len);
                let at = rng.below(junk.len() - len);
                let flags = rng.next();
                r.segment(
                    &Segment {
                        seq: s,
                        syn: flags & 0xf == 0,
                        fin: flags & 0xf0 == 0,
                        rst: flags & 0xff00 == 0,
                        payload: &junk[at..at + len],
                        missing: match flags >> 16 & 7 {
                            0 => rng.next() as u32,
                            1 | 2 => rng.below(100_000) as u32,
                            _ => 0,
                        },
                        ts: Timestamp(4),
                    },
                    &limits,
                    &mut budget,
                    &mut stats,
                    &mut out,
                );
            }
            r.buffer.check();
            assert_eq!(r.buffered_bytes(), budget.used());
            if rng.below(3) == 0 {
                seq = seq.wrapping_add(rng.below(3000) as u32);
            }
        }
        if rng.below(2) == 0 {
            r.flush(Timestamp(5), &mut budget, &mut stats, &mut out);
        } else {
            r.discard(&mut budget, &mut stats);
        }
        assert_eq!(budget.used(), 0);
        assert!(r.is_closed());
        all.merge(&stats);
    }
    eprintln!("{all:?}");
    assert!(all.huge_jump_segments > 0 && all.huge_jump_acks > 0 && all.discarded_bytes > 0);
}
