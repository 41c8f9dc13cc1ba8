//! HPACK (RFC 7541) header block decoder for a passive observer.
//!
//! One [`Decoder`] per direction of a connection: the header blocks one
//! endpoint sends are compressed against one dynamic table, which the decoder
//! mirrors. Unlike an endpoint's decoder, an observer may not know the table:
//! a capture that starts mid-connection, or a gap that may have swallowed a
//! header block, leaves entries of unknown content. The decoder then keeps
//! decoding and says what it could not resolve, and never invents a header:
//!
//! * entries inserted since the table became unknown are known exactly (new
//!   entries go to the front; eviction takes the oldest first, so the unknown
//!   ones leave before any known one);
//! * an index past the known entries is reported in [`Block::unknown`], and the
//!   field is left out;
//! * a dynamic table size update to 0 empties the table: it is known again.
//!
//! # Invariants
//!
//! * Never panics on any input; integers are bounded (< 2^32) and strings
//!   cannot extend past the block.
//! * Every byte the dynamic table holds is charged to the heads pool
//!   ([`crate::budget`]); when the pool refuses, the table is dropped and
//!   becomes unknown (counted by the caller from [`Block::table_shed`]).
//! * The table never holds more than [`MAX_TABLE_SIZE`] bytes (RFC size).
//! * A block that is malformed (a COMPRESSION_ERROR for an endpoint) leaves the
//!   table unknown: what follows is decoded as far as it can be.

use std::collections::VecDeque;

use super::huffman;
use crate::budget::Pool;

/// The largest dynamic table a size update may select. Endpoints advertise
/// `SETTINGS_HEADER_TABLE_SIZE` (4096 by default; browsers use 64 KiB); an
/// update beyond this bound is treated as a compression error (the table
/// becomes unknown), which bounds what one direction can make us hold.
pub(crate) const MAX_TABLE_SIZE: usize = 64 << 10;
/// The table size before any update (RFC 9113 §6.5.2).
pub(crate) const DEFAULT_TABLE_SIZE: usize = 4096;
/// Bytes charged per entry on top of its name and value (allocation overhead).
const ENTRY_OVERHEAD: usize = 64;

/// The static table (RFC 7541 Appendix A), index 1 first.
pub(crate) const STATIC_TABLE: [(&str, &str); 61] = [
    (":authority", ""),
    (":method", "GET"),
    (":method", "POST"),
    (":path", "/"),
    (":path", "/index.html"),
    (":scheme", "http"),
    (":scheme", "https"),
    (":status", "200"),
    (":status", "204"),
    (":status", "206"),
    (":status", "304"),
    (":status", "400"),
    (":status", "404"),
    (":status", "500"),
    ("accept-charset", ""),
    ("accept-encoding", "gzip, deflate"),
    ("accept-language", ""),
    ("accept-ranges", ""),
    ("accept", ""),
    ("access-control-allow-origin", ""),
    ("age", ""),
    ("allow", ""),
    ("authorization", ""),
    ("cache-control", ""),
    ("content-disposition", ""),
    ("content-encoding", ""),
    ("content-language", ""),
    ("content-length", ""),
    ("content-location", ""),
    ("content-range", ""),
    ("content-type", ""),
    ("cookie", ""),
    ("date", ""),
    ("etag", ""),
    ("expect", ""),
    ("expires", ""),
    ("from", ""),
    ("host", ""),
    ("if-match", ""),
    ("if-modified-since", ""),
    ("if-none-match", ""),
    ("if-range", ""),
    ("if-unmodified-since", ""),
    ("last-modified", ""),
    ("link", ""),
    ("location", ""),
    ("max-forwards", ""),
    ("proxy-authenticate", ""),
    ("proxy-authorization", ""),
    ("range", ""),
    ("referer", ""),
    ("refresh", ""),
    ("retry-after", ""),
    ("server", ""),
    ("set-cookie", ""),
    ("strict-transport-security", ""),
    ("transfer-encoding", ""),
    ("user-agent", ""),
    ("vary", ""),
    ("via", ""),
    ("www-authenticate", ""),
];

/// Why a header block could not be decoded (a COMPRESSION_ERROR, RFC 9113 §4.3).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum HpackError {
    /// An integer longer than 32 bits, or cut by the end of the block.
    Integer,
    /// A string longer than what is left of the block.
    StringLength,
    /// A Huffman string that breaks RFC 7541 §5.2.
    Huffman,
    /// Index 0, or past the table while the table is fully known.
    Index,
    /// A size update larger than [`MAX_TABLE_SIZE`], or after the first field.
    SizeUpdate,
}

/// One decoded field. Names are as sent (HTTP/2 requires lower case).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Field {
    pub(crate) name: Vec<u8>,
    pub(crate) value: Vec<u8>,
}

/// A decoded header block.
#[derive(Debug, Default)]
pub(crate) struct Block {
    /// Fields in order, without those that could not be resolved or that
    /// passed `max_list`.
    pub(crate) fields: Vec<Field>,
    /// Fields that referred to dynamic table entries of unknown content.
    pub(crate) unknown: u32,
    /// Fields left out because the list passed `max_list` bytes.
    pub(crate) dropped: u32,
    /// The table was dropped because the heads pool refused its growth.
    pub(crate) table_shed: bool,
}

/// A dynamic table entry; `None` for a name the decoder could not resolve
/// (an indexed name of unknown content) but whose insertion it had to mirror.
#[derive(Debug)]
struct Entry {
    name: Option<Box<[u8]>>,
    value: Box<[u8]>,
}

impl Entry {
    /// RFC 7541 §4.1 size (an unknown name counts as empty: an underestimate).
    fn size(&self) -> usize {
        self.name.as_ref().map_or(0, |n| n.len()) + self.value.len() + 32
    }
    fn charge(&self) -> usize {
        self.name.as_ref().map_or(0, |n| n.len()) + self.value.len() + ENTRY_OVERHEAD
    }
}

/// The dynamic table of one direction and the decoding state around it.
#[derive(Debug)]
pub(crate) struct Decoder {
    /// Newest first: index 62 is `entries[0]`.
    entries: VecDeque<Entry>,
    /// RFC size of `entries`.
    size: usize,
    /// Current maximum size (from the last size update).
    max_size: usize,
    /// Entries older than `entries` may exist whose content is not known.
    unknown_tail: bool,
    /// Bytes of `pool` charged for `entries`.
    charged: usize,
    pool: Pool,
}

impl Drop for Decoder {
    fn drop(&mut self) {
        self.pool.give(self.charged);
    }
}

impl Decoder {
    /// A decoder for a direction seen from its first header block (`known`),
    /// or from the middle of the connection.
    pub(crate) fn new(known: bool, pool: Pool) -> Self {
        Decoder {
            entries: VecDeque::new(),
            size: 0,
            max_size: DEFAULT_TABLE_SIZE,
            unknown_tail: !known,
            charged: 0,
            pool,
        }
    }

    /// Header blocks of this direction may have been lost: the table's content
    /// is no longer known.
    pub(crate) fn forget(&mut self) {
        self.entries.clear();
        self.entries.shrink_to_fit();
        self.size = 0;
        self.pool.give(std::mem::take(&mut self.charged));
        self.unknown_tail = true;
    }

    /// Whether the table's whole content is known.
    #[cfg(test)]
    pub(crate) fn is_known(&self) -> bool {
        !self.unknown_tail
    }

    /// Bytes charged for the table.
    pub(crate) fn held_bytes(&self) -> usize {
        self.charged
    }

    /// Decodes one complete header block (HEADERS/PUSH_PROMISE fragment plus
    /// its CONTINUATIONs). Fields beyond `max_list` bytes (name + value + 32
    /// each) are left out of the result but still update the table.
    pub(crate) fn decode(&mut self, mut b: &[u8], max_list: usize) -> Result<Block, HpackError> {
        let r = self.decode_inner(&mut b, max_list);
        if r.is_err() {
            self.forget();
        }
        r
    }

    fn decode_inner(&mut self, b: &mut &[u8], max_list: usize) -> Result<Block, HpackError> {
        let mut block = Block::default();
        let mut list = 0usize;
        let mut first = true;
        while let Some(&byte) = b.first() {
            if byte & 0x80 != 0 {
                // Indexed header field (§6.1).
                let index = integer(b, 7)?;
                match self.lookup(index)? {
                    Some((n, v)) => push(&mut block, &mut list, max_list, n.to_vec(), v.to_vec()),
                    None => block.unknown += 1,
                }
            } else if byte & 0xe0 == 0x20 {
                // Dynamic table size update (§6.3): only at the block's start.
                if !first {
                    return Err(HpackError::SizeUpdate);
                }
                let size = integer(b, 5)?;
                if size > MAX_TABLE_SIZE {
                    return Err(HpackError::SizeUpdate);
                }
                self.max_size = size;
                self.evict(0);
                if size == 0 {
                    // Nothing survives: the table is known again.
                    self.unknown_tail = false;
                }
                continue; // several updates may follow each other
            } else {
                // Literals (§6.2): with incremental indexing (01), without (0000),
                // never indexed (0001).
                let (prefix, index_it) = if byte & 0xc0 == 0x40 {
                    (6, true)
                } else {
                    (4, false)
                };
                let name_index = integer(b, prefix)?;
                let name: Option<Vec<u8>> = if name_index == 0 {
                    Some(string(b)?)
                } else {
                    self.lookup(name_index)?.map(|(n, _)| n.to_vec())
                };
                let value = string(b)?;
                if index_it {
                    let entry = Entry {
                        name: name.clone().map(Vec::into_boxed_slice),
                        value: value.clone().into_boxed_slice(),
                    };
                    if !self.insert(entry) {
                        block.table_shed = true;
                    }
                }
                match name {
                    Some(n) => push(&mut block, &mut list, max_list, n, value),
                    None => block.unknown += 1,
                }
            }
            first = false;
        }
        Ok(block)
    }

    /// The entry at `index` (1-based over static then dynamic); `None` when it
    /// is in the unknown part of the table or its name was never known.
    fn lookup(&self, index: usize) -> Result<Option<NameValue<'_>>, HpackError> {
        if index == 0 {
            return Err(HpackError::Index);
        }
        if let Some((n, v)) = STATIC_TABLE.get(index - 1) {
            return Ok(Some((n.as_bytes(), v.as_bytes())));
        }
        match self.entries.get(index - 62) {
            Some(e) => Ok(e.name.as_deref().map(|n| (n, &*e.value))),
            None if self.unknown_tail => Ok(None),
            None => Err(HpackError::Index),
        }
    }

    /// Adds an entry (§4.4); false when the pool refused it (the table is
    /// then dropped and unknown).
    fn insert(&mut self, e: Entry) -> bool {
        let size = e.size();
        if size > self.max_size {
            // Larger than the table: it empties the table and is not added.
            self.evict(self.max_size);
            return true;
        }
        self.evict(size);
        let charge = e.charge();
        if !self.pool.try_take(charge) {
            self.forget();
            return false;
        }
        self.charged += charge;
        self.size += size;
        self.entries.push_front(e);
        true
    }

    /// Evicts the oldest entries until `room` more bytes fit under `max_size`.
    fn evict(&mut self, room: usize) {
        while self.size + room > self.max_size {
            let Some(old) = self.entries.pop_back() else {
                self.size = 0;
                break;
            };
            self.size -= old.size();
            let c = old.charge();
            self.charged -= c;
            self.pool.give(c);
        }
    }
}

/// A table entry's name and value.
type NameValue<'a> = (&'a [u8], &'a [u8]);

fn push(block: &mut Block, list: &mut usize, max: usize, name: Vec<u8>, value: Vec<u8>) {
    *list = list.saturating_add(name.len() + value.len() + 32);
    if *list > max {
        block.dropped += 1;
    } else {
        block.fields.push(Field { name, value });
    }
}

/// An HPACK integer with an `n`-bit prefix (§5.1), consumed from `b`.
pub(crate) fn integer(b: &mut &[u8], n: u32) -> Result<usize, HpackError> {
    let (&first, rest) = b.split_first().ok_or(HpackError::Integer)?;
    let max_prefix = (1u32 << n) - 1;
    let mut v = u32::from(first) & max_prefix;
    *b = rest;
    if v < max_prefix {
        return Ok(v as usize);
    }
    let mut shift = 0u32;
    loop {
        let (&c, rest) = b.split_first().ok_or(HpackError::Integer)?;
        *b = rest;
        let add = u64::from(c & 0x7f) << shift;
        let sum = u64::from(v) + add;
        if shift > 28 || sum > u64::from(u32::MAX) {
            return Err(HpackError::Integer);
        }
        v = sum as u32;
        if c & 0x80 == 0 {
            return Ok(v as usize);
        }
        shift += 7;
    }
}

/// A string literal (§5.2), consumed from `b`.
fn string(b: &mut &[u8]) -> Result<Vec<u8>, HpackError> {
    let huffman = b.first().is_some_and(|&c| c & 0x80 != 0);
    let len = integer(b, 7)?;
    if len > b.len() {
        return Err(HpackError::StringLength);
    }
    let (s, rest) = b.split_at(len);
    *b = rest;
    if huffman {
        let mut out = Vec::new();
        huffman::decode(s, &mut out).map_err(|_| HpackError::Huffman)?;
        Ok(out)
    } else {
        Ok(s.to_vec())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(s: &str) -> Vec<u8> {
        let s: String = s.split_whitespace().collect();
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }

    fn fields(b: &Block) -> Vec<(String, String)> {
        b.fields
            .iter()
            .map(|f| {
                (
                    String::from_utf8(f.name.clone()).unwrap(),
                    String::from_utf8(f.value.clone()).unwrap(),
                )
            })
            .collect()
    }

    fn table(d: &Decoder) -> Vec<(String, String)> {
        d.entries
            .iter()
            .map(|e| {
                (
                    String::from_utf8(e.name.clone().unwrap().into()).unwrap(),
                    String::from_utf8(e.value.clone().into()).unwrap(),
                )
            })
            .collect()
    }

    fn pairs(p: &[(&str, &str)]) -> Vec<(String, String)> {
        p.iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect()
    }

    #[test]
    fn rfc7541_c1_integers() {
        assert_eq!(integer(&mut &[0b0000_1010][..], 5), Ok(10));
        assert_eq!(integer(&mut &[0x1f, 0x9a, 0x0a][..], 5), Ok(1337));
        assert_eq!(integer(&mut &[42][..], 8), Ok(42));
        assert_eq!(integer(&mut &[0x1f, 0x9a][..], 5), Err(HpackError::Integer));
        let huge = [0x1f, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01];
        assert_eq!(integer(&mut &huge[..], 5), Err(HpackError::Integer));
    }

    #[test]
    fn rfc7541_c2_literals() {
        // C.2.1 literal with indexing.
        let mut d = Decoder::new(true, Pool::unlimited());
        let b = d
            .decode(
                &hex("400a 6375 7374 6f6d 2d6b 6579 0d63 7573 746f 6d2d 6865 6164 6572"),
                1 << 20,
            )
            .unwrap();
        assert_eq!(fields(&b), pairs(&[("custom-key", "custom-header")]));
        assert_eq!(d.size, 55);
        // C.2.2 without indexing.
        let mut d = Decoder::new(true, Pool::unlimited());
        let b = d
            .decode(&hex("040c 2f73 616d 706c 652f 7061 7468"), 1 << 20)
            .unwrap();
        assert_eq!(fields(&b), pairs(&[(":path", "/sample/path")]));
        assert_eq!(d.size, 0);
        // C.2.3 never indexed.
        let b = d
            .decode(&hex("1008 7061 7373 776f 7264 0673 6563 7265 74"), 1 << 20)
            .unwrap();
        assert_eq!(fields(&b), pairs(&[("password", "secret")]));
        assert_eq!(d.size, 0);
        // C.2.4 indexed.
        let b = d.decode(&hex("82"), 1 << 20).unwrap();
        assert_eq!(fields(&b), pairs(&[(":method", "GET")]));
    }

    /// C.3 (plain) and C.4 (Huffman): three requests on one connection.
    #[test]
    fn rfc7541_c3_c4_requests() {
        let blocks = [
            (
                "8286 8441 0f77 7777 2e65 7861 6d70 6c65 2e63 6f6d",
                "8286 8441 8cf1 e3c2 e5f2 3a6b a0ab 90f4 ff",
            ),
            (
                "8286 84be 5808 6e6f 2d63 6163 6865",
                "8286 84be 5886 a8eb 1064 9cbf",
            ),
            (
                "8287 85bf 400a 6375 7374 6f6d 2d6b 6579 0c63 7573 746f 6d2d 7661 6c75 65",
                "8287 85bf 4088 25a8 49e9 5ba9 7d7f 8925 a849 e95b b8e8 b4bf",
            ),
        ];
        let want_fields = [
            pairs(&[
                (":method", "GET"),
                (":scheme", "http"),
                (":path", "/"),
                (":authority", "www.example.com"),
            ]),
            pairs(&[
                (":method", "GET"),
                (":scheme", "http"),
                (":path", "/"),
                (":authority", "www.example.com"),
                ("cache-control", "no-cache"),
            ]),
            pairs(&[
                (":method", "GET"),
                (":scheme", "https"),
                (":path", "/index.html"),
                (":authority", "www.example.com"),
                ("custom-key", "custom-value"),
            ]),
        ];
        let want_tables = [
            pairs(&[(":authority", "www.example.com")]),
            pairs(&[
                ("cache-control", "no-cache"),
                (":authority", "www.example.com"),
            ]),
            pairs(&[
                ("custom-key", "custom-value"),
                ("cache-control", "no-cache"),
                (":authority", "www.example.com"),
            ]),
        ];
        let sizes = [57, 110, 164];
        for huffman in [false, true] {
            let mut d = Decoder::new(true, Pool::unlimited());
            for (i, (plain, huff)) in blocks.iter().enumerate() {
                let b = d
                    .decode(&hex(if huffman { huff } else { plain }), 1 << 20)
                    .unwrap();
                assert_eq!(fields(&b), want_fields[i], "huffman {huffman} block {i}");
                assert_eq!(table(&d), want_tables[i]);
                assert_eq!(d.size, sizes[i]);
            }
        }
    }

    /// C.5 (plain) and C.6 (Huffman): three responses with a 256-byte table and eviction.
    #[test]
    fn rfc7541_c5_c6_responses_with_eviction() {
        let blocks = [
            (
                "4803 3330 3258 0770 7269 7661 7465 611d 4d6f 6e2c 2032 3120 4f63 7420 3230 3133
                 2032 303a 3133 3a32 3120 474d 546e 1768 7474 7073 3a2f 2f77 7777 2e65 7861 6d70
                 6c65 2e63 6f6d",
                "4882 6402 5885 aec3 771a 4b61 96d0 7abe 9410 54d4 44a8 2005 9504 0b81 66e0 82a6
                 2d1b ff6e 919d 29ad 1718 63c7 8f0b 97c8 e9ae 82ae 43d3",
            ),
            ("4803 3330 37c1 c0bf", "4883 640e ffc1 c0bf"),
            (
                "88c1 611d 4d6f 6e2c 2032 3120 4f63 7420 3230 3133 2032 303a 3133 3a32 3220 474d
                 54c0 5a04 677a 6970 7738 666f 6f3d 4153 444a 4b48 514b 425a 584f 5157 454f 5049
                 5541 5851 5745 4f49 553b 206d 6178 2d61 6765 3d33 3630 303b 2076 6572 7369 6f6e
                 3d31",
                "88c1 6196 d07a be94 1054 d444 a820 0595 040b 8166 e084 a62d 1bff c05a 839b d9ab
                 77ad 94e7 821d d7f2 e6c7 b335 dfdf cd5b 3960 d5af 2708 7f36 72c1 ab27 0fb5 291f
                 9587 3160 65c0 03ed 4ee5 b106 3d50 07",
            ),
        ];
        let date1 = "Mon, 21 Oct 2013 20:13:21 GMT";
        let date2 = "Mon, 21 Oct 2013 20:13:22 GMT";
        let loc = "https://www.example.com";
        let cookie = "foo=ASDJKHQKBZXOQWEOPIUAXQWEOIU; max-age=3600; version=1";
        let want_fields = [
            pairs(&[
                (":status", "302"),
                ("cache-control", "private"),
                ("date", date1),
                ("location", loc),
            ]),
            pairs(&[
                (":status", "307"),
                ("cache-control", "private"),
                ("date", date1),
                ("location", loc),
            ]),
            pairs(&[
                (":status", "200"),
                ("cache-control", "private"),
                ("date", date2),
                ("location", loc),
                ("content-encoding", "gzip"),
                ("set-cookie", cookie),
            ]),
        ];
        let want_tables = [
            pairs(&[
                ("location", loc),
                ("date", date1),
                ("cache-control", "private"),
                (":status", "302"),
            ]),
            pairs(&[
                (":status", "307"),
                ("location", loc),
                ("date", date1),
                ("cache-control", "private"),
            ]),
            pairs(&[
                ("set-cookie", cookie),
                ("content-encoding", "gzip"),
                ("date", date2),
            ]),
        ];
        let sizes = [222, 222, 215];
        for huffman in [false, true] {
            let mut d = Decoder::new(true, Pool::unlimited());
            d.max_size = 256;
            for (i, (plain, huff)) in blocks.iter().enumerate() {
                let b = d
                    .decode(&hex(if huffman { huff } else { plain }), 1 << 20)
                    .unwrap();
                assert_eq!(fields(&b), want_fields[i], "huffman {huffman} block {i}");
                assert_eq!(table(&d), want_tables[i], "huffman {huffman} block {i}");
                assert_eq!(d.size, sizes[i]);
            }
        }
    }

    #[test]
    fn unknown_table_decodes_what_it_can() {
        let mut d = Decoder::new(false, Pool::unlimited());
        // 0xbe = index 62 (unknown), then :method GET, then a new indexed literal.
        let b = d
            .decode(&hex("be82 400a 6375 7374 6f6d 2d6b 6579 0161"), 1 << 20)
            .unwrap();
        assert_eq!(b.unknown, 1);
        assert_eq!(
            fields(&b),
            pairs(&[(":method", "GET"), ("custom-key", "a")])
        );
        // Index 62 is now known; 63 is not.
        let b = d.decode(&hex("bebf"), 1 << 20).unwrap();
        assert_eq!(fields(&b), pairs(&[("custom-key", "a")]));
        assert_eq!(b.unknown, 1);
        // A literal with an unknown indexed name still takes its slot.
        let b = d.decode(&hex("7f01 0178 bf be"), 1 << 20).unwrap();
        assert_eq!(
            b.unknown, 2,
            "the literal's name and index 62 (itself) are unknown"
        );
        assert_eq!(fields(&b), pairs(&[("custom-key", "a")]));
        // A size update to 0 makes the table known: an index past it is an error.
        assert!(!d.is_known());
        let b = d.decode(&hex("2082"), 1 << 20).unwrap();
        assert_eq!(fields(&b), pairs(&[(":method", "GET")]));
        assert!(d.is_known());
        assert_eq!(
            d.decode(&hex("be"), 1 << 20).unwrap_err(),
            HpackError::Index
        );
        // The error leaves the table unknown.
        assert!(!d.is_known());
    }

    #[test]
    fn malformed_blocks_are_errors_not_panics() {
        let mut d = Decoder::new(true, Pool::unlimited());
        assert_eq!(d.decode(&[0x80], 1 << 20).unwrap_err(), HpackError::Index);
        assert_eq!(
            d.decode(&[0x40, 0x05, b'a'], 1 << 20).unwrap_err(),
            HpackError::StringLength
        );
        assert_eq!(
            d.decode(&[0x82, 0x20], 1 << 20).unwrap_err(),
            HpackError::SizeUpdate
        );
        assert_eq!(
            d.decode(&[0x3f, 0xff, 0xff, 0x7f], 1 << 20).unwrap_err(),
            HpackError::SizeUpdate
        );
        assert_eq!(
            d.decode(&[0x00, 0x81, 0xff, 0x00], 1 << 20).unwrap_err(),
            HpackError::Huffman
        );
        // Every two-byte prefix of anything: no panic.
        for a in 0..=255u8 {
            for b in 0..=255u8 {
                let mut d = Decoder::new(a & 1 == 0, Pool::unlimited());
                let _ = d.decode(&[a, b, 0x01, b'x', 0x81, 0x1f], 1 << 20);
            }
        }
    }

    #[test]
    fn table_is_charged_and_given_back() {
        let pool = Pool::new(200);
        let mut d = Decoder::new(true, pool.clone());
        d.decode(
            &hex("400a 6375 7374 6f6d 2d6b 6579 0d63 7573 746f 6d2d 6865 6164 6572"),
            1 << 20,
        )
        .unwrap();
        assert_eq!(pool.held(), 10 + 13 + ENTRY_OVERHEAD);
        // The next entry does not fit the pool: the table is dropped and unknown.
        let big = [&[0x40, 0x01, b'n', 0x7f, 100][..], &[b'v'; 227]].concat();
        let b = d.decode(&big, 1 << 20).unwrap();
        assert!(b.table_shed);
        assert!(!d.is_known());
        assert_eq!(pool.held(), 0);
        d.decode(&hex("4001 6e01 76"), 1 << 20).unwrap();
        assert!(pool.held() > 0);
        drop(d);
        assert_eq!(pool.held(), 0);
    }

    #[test]
    fn list_limit_drops_fields_but_keeps_the_table() {
        let mut d = Decoder::new(true, Pool::unlimited());
        let b = d
            .decode(
                &hex("8240 0a63 7573 746f 6d2d 6b65 790d 6375 7374 6f6d 2d68 6561 6465 72"),
                50,
            )
            .unwrap();
        assert_eq!(fields(&b), pairs(&[(":method", "GET")]));
        assert_eq!(b.dropped, 1);
        assert_eq!(table(&d), pairs(&[("custom-key", "custom-header")]));
    }
}
