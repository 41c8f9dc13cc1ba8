//! The out-of-order store of one direction: copies of segments that arrived
//! ahead of the next expected byte.
//!
//! Positions are 64-bit *stream offsets* (bytes since the start of the
//! direction), not sequence numbers, so nothing here has to care about
//! wrap-around. Invariants, kept by every method:
//!
//! * entries are sorted by offset and do not overlap;
//! * no entry is empty;
//! * `bytes` is the sum of the entries' lengths.
//!
//! Inserting only fills holes: bytes already stored are never replaced
//! ("first copy wins"). A sorted `VecDeque` is used: the common case is an
//! empty store, the entry count is bounded by
//! `Limits::max_segments_per_direction`, lookups are binary searches, and
//! delivery pops from the front in O(1).

use std::collections::VecDeque;

use crate::time::Timestamp;

/// One stored run of bytes.
#[derive(Debug)]
pub(crate) struct Entry {
    /// Stream offset of `data[0]`.
    pub(crate) off: u64,
    /// The bytes (a copy of part of a segment's payload).
    pub(crate) data: Vec<u8>,
    /// Capture time of the segment the bytes came from.
    pub(crate) ts: Timestamp,
}

impl Entry {
    /// Stream offset one past the last byte.
    pub(crate) fn end(&self) -> u64 {
        self.off + self.data.len() as u64
    }
}

/// Sorted, non-overlapping runs of bytes waiting for the hole before them to fill.
#[derive(Debug, Default)]
pub(crate) struct OutOfOrderBuffer {
    entries: VecDeque<Entry>,
    bytes: usize,
}

impl OutOfOrderBuffer {
    /// Total bytes stored.
    pub(crate) fn bytes(&self) -> usize {
        self.bytes
    }

    /// Number of entries.
    pub(crate) fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether nothing is stored.
    pub(crate) fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Offset of the first stored byte.
    pub(crate) fn first_off(&self) -> Option<u64> {
        self.entries.front().map(|e| e.off)
    }

    /// Offset one past the last stored byte.
    pub(crate) fn last_end(&self) -> Option<u64> {
        self.entries.back().map(Entry::end)
    }

    /// Removes and returns the first entry.
    pub(crate) fn pop_first(&mut self) -> Option<Entry> {
        let e = self.entries.pop_front()?;
        self.bytes -= e.data.len();
        Some(e)
    }

    /// Index of the first entry that ends after `off`.
    fn first_ending_after(&self, off: u64) -> usize {
        self.entries.partition_point(|e| e.end() <= off)
    }

    /// How many bytes, and in how many new entries, inserting `[start, end)`
    /// would add (the parts not already stored).
    pub(crate) fn plan(&self, start: u64, end: u64) -> (usize, usize) {
        let mut i = self.first_ending_after(start);
        let mut cur = start;
        let (mut bytes, mut pieces) = (0usize, 0usize);
        while cur < end {
            match self.entries.get(i) {
                Some(e) if e.off <= cur => {
                    cur = cur.max(e.end());
                    i += 1;
                }
                next => {
                    let hole_end = next.map_or(end, |e| e.off.min(end));
                    bytes += (hole_end - cur) as usize;
                    pieces += 1;
                    cur = hole_end;
                }
            }
        }
        (bytes, pieces)
    }

    /// Stores the parts of `data` (which starts at offset `start`) that are not
    /// stored yet; returns the number of bytes copied.
    pub(crate) fn insert(&mut self, start: u64, data: &[u8], ts: Timestamp) -> usize {
        let end = start + data.len() as u64;
        let mut i = self.first_ending_after(start);
        let mut cur = start;
        let mut copied = 0usize;
        while cur < end {
            match self.entries.get(i) {
                Some(e) if e.off <= cur => {
                    cur = cur.max(e.end());
                    i += 1;
                }
                next => {
                    let hole_end = next.map_or(end, |e| e.off.min(end));
                    let piece = &data[(cur - start) as usize..(hole_end - start) as usize];
                    copied += piece.len();
                    self.entries.insert(
                        i,
                        Entry {
                            off: cur,
                            data: piece.to_vec(),
                            ts,
                        },
                    );
                    i += 1;
                    cur = hole_end;
                }
            }
        }
        self.bytes += copied;
        copied
    }

    /// Drops every stored byte at or after `off`; returns the number of bytes dropped.
    pub(crate) fn truncate_from(&mut self, off: u64) -> usize {
        let i = self.first_ending_after(off);
        let mut dropped = 0usize;
        if let Some(e) = self.entries.get_mut(i) {
            if e.off < off {
                let keep = (off - e.off) as usize;
                dropped += e.data.len() - keep;
                e.data.truncate(keep);
                e.data.shrink_to_fit();
            }
        }
        let from = match self.entries.get(i) {
            Some(e) if e.off < off => i + 1,
            _ => i,
        };
        dropped += self
            .entries
            .drain(from..)
            .map(|e| e.data.len())
            .sum::<usize>();
        self.bytes -= dropped;
        dropped
    }

    /// Drops everything; returns the number of bytes dropped.
    pub(crate) fn clear(&mut self) -> usize {
        let dropped = self.bytes;
        self.entries.clear();
        self.bytes = 0;
        dropped
    }

    /// Checks the invariants (tests only).
    #[cfg(test)]
    pub(crate) fn check(&self) {
        let mut sum = 0;
        for (a, b) in self.entries.iter().zip(self.entries.iter().skip(1)) {
            assert!(a.end() <= b.off, "entries overlap or are unsorted");
        }
        for e in &self.entries {
            assert!(!e.data.is_empty());
            sum += e.data.len();
        }
        assert_eq!(sum, self.bytes);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dump(b: &OutOfOrderBuffer) -> Vec<(u64, Vec<u8>)> {
        b.entries.iter().map(|e| (e.off, e.data.clone())).collect()
    }

    #[test]
    fn insert_fills_only_holes() {
        let mut b = OutOfOrderBuffer::default();
        assert_eq!(b.insert(10, b"abcd", Timestamp(1)), 4);
        assert_eq!(b.insert(20, b"wxyz", Timestamp(1)), 4);
        assert_eq!(b.plan(8, 26), (18 - 8, 3));
        assert_eq!(b.insert(8, b"0123456789ABCDEFGH", Timestamp(2)), 10);
        b.check();
        assert_eq!(
            dump(&b),
            vec![
                (8, b"01".to_vec()),
                (10, b"abcd".to_vec()),
                (14, b"6789AB".to_vec()),
                (20, b"wxyz".to_vec()),
                (24, b"GH".to_vec()),
            ]
        );
        assert_eq!(b.plan(8, 26), (0, 0));
        assert_eq!(b.insert(9, b"zz", Timestamp(3)), 0);
        assert_eq!(b.bytes(), 18);
    }

    #[test]
    fn truncate_cuts_inside_an_entry() {
        let mut b = OutOfOrderBuffer::default();
        b.insert(10, b"abcd", Timestamp(1));
        b.insert(20, b"wxyz", Timestamp(1));
        assert_eq!(b.truncate_from(12), 6);
        b.check();
        assert_eq!(dump(&b), vec![(10, b"ab".to_vec())]);
        assert_eq!(b.truncate_from(10), 2);
        assert!(b.is_empty());
        b.check();
    }
}
