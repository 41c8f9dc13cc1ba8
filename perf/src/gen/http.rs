//! Writing HTTP/1.x messages into a connection's buffers.

use crate::rng::Rng;
use std::io::Write;

/// Size of the filler text that bodies are copied from.
pub const FILL_LEN: usize = 64 * 1024;

/// 64 KiB of deterministic printable text (JSON-ish words) to copy bodies from.
pub fn filler(rng: &mut Rng) -> Vec<u8> {
    const WORDS: &[&str] = &[
        "alpha",
        "bravo",
        "charlie",
        "delta",
        "echo",
        "foxtrot",
        "golf",
        "hotel",
        "india",
        "juliet",
        "kilo",
        "lima",
        "mike",
        "november",
        "oscar",
        "papa",
        "quebec",
        "romeo",
        "sierra",
        "tango",
        "uniform",
        "victor",
        "whiskey",
        "xray",
        "yankee",
        "zulu",
        "{\"id\":",
        "\"name\":",
        "[1,2,3]",
        "null",
        "true",
    ];
    let mut v = Vec::with_capacity(FILL_LEN + 16);
    while v.len() < FILL_LEN {
        v.extend_from_slice(rng.pick(WORDS).as_bytes());
        v.push(if rng.chance(100) { b'\n' } else { b' ' });
    }
    v.truncate(FILL_LEN);
    v
}

/// Appends `len` body bytes copied from `fill`, starting at a random place.
pub fn body(buf: &mut Vec<u8>, fill: &[u8], len: usize, rng: &mut Rng) {
    let mut left = len;
    let mut off = rng.below(fill.len() as u64) as usize;
    while left > 0 {
        let n = left.min(fill.len() - off);
        buf.extend_from_slice(&fill[off..off + n]);
        left -= n;
        off = 0;
    }
}

/// Options for a chunked body.
#[derive(Debug, Clone, Copy)]
pub struct Chunking {
    /// Smallest chunk.
    pub min: usize,
    /// Largest chunk.
    pub max: usize,
    /// Add chunk extensions (`;name=value`, `;name="quoted"`) to some chunks.
    pub extensions: bool,
    /// End with trailer fields.
    pub trailers: bool,
    /// Write sizes in upper-case hex, some with leading zeros.
    pub odd_hex: bool,
}

impl Chunking {
    /// Plain chunks between `min` and `max` bytes.
    pub fn plain(min: usize, max: usize) -> Self {
        Chunking {
            min,
            max,
            extensions: false,
            trailers: false,
            odd_hex: false,
        }
    }
}

/// Appends a chunked body carrying `total` payload bytes.
pub fn chunked(buf: &mut Vec<u8>, fill: &[u8], total: usize, c: Chunking, rng: &mut Rng) {
    let mut left = total;
    while left > 0 {
        let n = left.min(rng.urange(c.min.max(1), c.max.max(1)));
        if c.odd_hex && rng.chance(500) {
            write!(buf, "{:04X}", n).unwrap();
        } else {
            write!(buf, "{:x}", n).unwrap();
        }
        if c.extensions && rng.chance(400) {
            if rng.chance(500) {
                write!(buf, ";ext{}={}", rng.below(10), rng.below(1000)).unwrap();
            } else {
                buf.extend_from_slice(b";note=\"a;b c\"");
            }
        }
        buf.extend_from_slice(b"\r\n");
        body(buf, fill, n, rng);
        buf.extend_from_slice(b"\r\n");
        left -= n;
    }
    buf.extend_from_slice(b"0");
    if c.extensions {
        buf.extend_from_slice(b";last=1");
    }
    buf.extend_from_slice(b"\r\n");
    if c.trailers {
        write!(
            buf,
            "X-Checksum: {:08x}\r\nX-Trailer-Note: done\r\n",
            rng.next_u64() as u32
        )
        .unwrap();
    }
    buf.extend_from_slice(b"\r\n");
}

/// Appends a request line.
pub fn request_line(buf: &mut Vec<u8>, method: &str, url: &str, version: &str) {
    for part in [method, " ", url, " HTTP/", version, "\r\n"] {
        buf.extend_from_slice(part.as_bytes());
    }
}

/// Appends a status line.
pub fn status_line(buf: &mut Vec<u8>, version: &str, code: u16, reason: &str) {
    write!(buf, "HTTP/{version} {code} {reason}\r\n").unwrap();
}

/// Appends one header field.
pub fn header(buf: &mut Vec<u8>, name: &str, value: &str) {
    buf.extend_from_slice(name.as_bytes());
    buf.extend_from_slice(b": ");
    buf.extend_from_slice(value.as_bytes());
    buf.extend_from_slice(b"\r\n");
}

/// Appends one header field with a numeric value.
pub fn header_num(buf: &mut Vec<u8>, name: &str, value: usize) {
    write!(buf, "{name}: {value}\r\n").unwrap();
}

/// Appends the empty line that ends a head.
pub fn end_head(buf: &mut Vec<u8>) {
    buf.extend_from_slice(b"\r\n");
}

/// The standard reason phrase of `code`.
pub fn reason(code: u16) -> &'static str {
    match code {
        100 => "Continue",
        200 => "OK",
        201 => "Created",
        204 => "No Content",
        301 => "Moved Permanently",
        304 => "Not Modified",
        400 => "Bad Request",
        404 => "Not Found",
        500 => "Internal Server Error",
        503 => "Service Unavailable",
        _ => "Unknown",
    }
}

/// A short lower-case hex id.
pub fn hex_id(rng: &mut Rng) -> String {
    format!("{:016x}", rng.next_u64())
}
