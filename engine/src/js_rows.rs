//! Messages as rows: the compact form the Node library's JavaScript side turns back into
//! schema v1 objects ([`BatchFormat::JsRows`](crate::output::BatchFormat::JsRows)).
//!
//! The library's bottleneck is its JavaScript thread, and most of that thread's time was
//! `JSON.parse` building keyed objects: every key of every message read, matched and
//! turned into a property, `source` and `destination` as objects of their own. The same
//! values as one JSON array per message parse in about half the time, and the object
//! built from the array by an object literal (`node-addon/ts/rows.ts`) costs less than the
//! parse saved. Rows never leave the process: the engine writes them only when the
//! library's callback is the sole output ([`BatchFormat::for_outputs`](crate::output::BatchFormat::for_outputs)).
//!
//! A row, by position (the same values, written by the same functions, as [`HttpMessage::write_json`]):
//!
//! | index | value |
//! |---|---|
//! | 0 | `0` request, `1` response |
//! | 1 | `connectionId`, or its index in the batch's [`RowStrings`] |
//! | 2 | `sequence` |
//! | 3 | `timestamp` |
//! | 4 | `endTimestamp`, or `0` when it equals `timestamp` |
//! | 5, 6 | `source.ip` (or its index in the batch's [`RowStrings`]), `source.port` |
//! | 7, 8 | `destination.ip` (or its index in the batch's [`RowStrings`]), `destination.port` |
//! | 9 | `direction` as its index in [`DIRECTIONS`] |
//! | 10, 11 | request: `method`, `url`; response: `statusCode`, `statusMessage` |
//! | 12 | `httpVersion` as its index in [`HTTP_VERSIONS`], or the string when not listed there |
//! | 13 | `headers` |
//! | 14 | `body` |
//! | 15 | `bodyEncoding`: `0` utf8, `1` base64 |
//! | 16 | `bodySize` |
//! | 17, 18 | `truncated`, `incomplete` |
//! | 19 | `latencyMs`, or `null` when the message has none |
//! | 20 | `pod`, or `null` |
//! | 21 | only when the message has one of the rarer fields: an object holding those of `streamId`, `trailers`, `decodedBodySize`, `tunnel` (`true`) and `parseError` it has |
//!
//! The closed sets (direction, HTTP version, body encoding) go as small integers and the
//! usual `endTimestamp` (the same instant as `timestamp`) as `0`: `JSON.parse` makes a new
//! string for every string value, and these four were a quarter of a row's strings; the
//! JavaScript side maps the numbers back to its own constant strings (8–15 % less
//! JavaScript-thread time per message, measured on workload S).
//!
//! The connection id and the two addresses repeat from message to message (every message
//! of a connection, every connection of a client): a batch writes each of these values as a
//! string the first time, and after that as the number of its first time (the batch's
//! [`RowStrings`]). The JavaScript side keeps one table per batch, appending each such
//! string as it meets it, rows in order and in a row elements 1, 5, 7 in that order; a
//! number is an index into that table. So `JSON.parse` makes one string per distinct
//! value instead of one per use, and the message objects share it (strings are
//! immutable): about 8 % less JavaScript-thread time on workload S. A batch is delivered
//! whole or dropped whole, so no table outlives its batch and a dropped batch leaves no
//! reference dangling.
//!
//! Invariant: the JavaScript side's object for a row is, key for key and in the same
//! order, `JSON.parse` of [`HttpMessage::write_json`] for the same message (the Node
//! parity tests compare the two on every capture of the corpus). [`DIRECTIONS`] and
//! [`HTTP_VERSIONS`] are `node-addon/ts/rows.ts`'s tables of the same names, in the same
//! order.

use std::collections::hash_map::Entry;
use std::net::IpAddr;
use std::ops::Range;

use rustc_hash::FxHashMap;

use crate::message::{
    fields_room, pod_room, str_room, write_body, Cursor, Direction, HttpMessage, MessageKind,
    Placement, HEAD_ROOM, TAIL_ROOM,
};

/// Row element 9: a direction is its index here (`node-addon/ts/rows.ts` has the same table).
pub const DIRECTIONS: [Direction; 3] =
    [Direction::Inbound, Direction::Outbound, Direction::Unknown];

/// Row element 12: an HTTP version listed here is its index (`node-addon/ts/rows.ts` has the
/// same table); any other goes as its string.
pub const HTTP_VERSIONS: [&str; 4] = ["0.9", "1.0", "1.1", "2"];

/// The row digit for `d`: its index in [`DIRECTIONS`]. A match rather than a search of the
/// table so that a new direction cannot compile without a digit; the row test decodes every
/// direction through [`DIRECTIONS`] and holds the two together.
fn direction_digit(d: Direction) -> u8 {
    match d {
        Direction::Inbound => b'0',
        Direction::Outbound => b'1',
        Direction::Unknown => b'2',
    }
}

/// The values of one batch's rows written as a number after their first time (elements 1,
/// 5 and 7, see the module docs), each with its index: the number of distinct values met
/// before it. Bounded by its batch: at most three entries per message.
#[derive(Debug, Default)]
pub struct RowStrings {
    seen: FxHashMap<Repeated, u32>,
}

/// A value [`RowStrings`] numbers.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
enum Repeated {
    Connection(u64),
    Address(IpAddr),
}

impl RowStrings {
    /// Forgets every value: the next batch starts a table of its own.
    pub fn clear(&mut self) {
        self.seen.clear();
    }

    /// Writes `v`: as its index when the batch has written it before, else as its string
    /// (and `v` takes the next index).
    fn put(&mut self, c: &mut Cursor<'_>, v: Repeated) {
        let next = self.seen.len() as u32;
        match self.seen.entry(v) {
            Entry::Occupied(e) => c.put_u64(u64::from(*e.get())),
            Entry::Vacant(e) => {
                e.insert(next);
                c.byte(b'"');
                match v {
                    Repeated::Connection(id) => c.put_hex16(id),
                    Repeated::Address(ip) => c.put_ip(ip),
                }
                c.byte(b'"');
            }
        }
    }
}

impl HttpMessage {
    /// Appends this message as one row (see the module docs) to `out`, and returns where
    /// the `body` string's contents are in `out`, as [`HttpMessage::write_json`] does.
    /// `strings` is the batch's: rows of one batch must be written in the order they are
    /// delivered, with the same `strings`. Written through the same `Cursor` as
    /// `write_json`, with the same room: a row holds the same pieces less the keys (an
    /// index, at most 10 digits, is shorter than the room of the value it stands for).
    pub fn write_js_row(
        &self,
        placement: Option<&Placement>,
        strings: &mut RowStrings,
        out: &mut Vec<u8>,
    ) -> Range<usize> {
        let start_line = match &self.kind {
            MessageKind::Request { method, url } => str_room(method) + str_room(url),
            MessageKind::Response { status_message, .. } => str_room(status_message),
        };
        let head =
            HEAD_ROOM + str_room(self.http_version) + start_line + fields_room(&self.headers);
        // SAFETY: as in `write_json`: `HEAD_ROOM` covers its fixed-size pieces, which
        // are these and more (a row has no keys), and each string is within its room (the
        // trailers come after the body in a row, and have their room there).
        let mut c = unsafe { Cursor::new(out, head) };
        match self.kind {
            MessageKind::Request { .. } => c.put(b"[0,"),
            MessageKind::Response { .. } => c.put(b"[1,"),
        }
        strings.put(&mut c, Repeated::Connection(self.connection_id));
        c.byte(b',');
        c.put_u64(self.sequence);
        c.put(b",\"");
        c.put(&self.timestamp.rfc3339());
        if self.end_timestamp == self.timestamp {
            c.put(b"\",0");
        } else {
            c.put(b"\",\"");
            c.put(&self.end_timestamp.rfc3339());
            c.byte(b'"');
        }
        for e in [&self.source, &self.destination] {
            c.byte(b',');
            strings.put(&mut c, Repeated::Address(e.ip));
            c.byte(b',');
            c.put_u64(u64::from(e.port));
        }
        c.byte(b',');
        c.byte(direction_digit(self.direction));
        c.byte(b',');
        let latency = match &self.kind {
            MessageKind::Request { method, url } => {
                c.put_str(method);
                c.byte(b',');
                c.put_str(url);
                None
            }
            MessageKind::Response {
                status_code,
                status_message,
                latency_ms,
            } => {
                c.put_u64(u64::from(*status_code));
                c.byte(b',');
                c.put_str(status_message);
                *latency_ms
            }
        };
        c.byte(b',');
        match HTTP_VERSIONS.iter().position(|&v| v == self.http_version) {
            Some(i) => c.byte(b'0' + i as u8),
            None => c.put_str(self.http_version),
        }
        c.byte(b',');
        c.put_fields(&self.headers);
        c.byte(b',');
        c.finish();
        let body_start = out.len() + 1;
        let base64 = write_body(&self.body, self.truncated, out);
        let body = body_start..out.len() - 1;
        let tail = TAIL_ROOM
            + fields_room(&self.trailers)
            + self.parse_error.map_or(0, str_room)
            + placement.map_or(0, pod_room);
        // SAFETY: `TAIL_ROOM` covers the fixed-size pieces after the body in `write_json`,
        // which are these and more (with their keys); the trailers, which a row writes
        // here rather than before the body, the parse error and the pod's values are
        // each within their own room.
        let mut c = unsafe { Cursor::new(out, tail) };
        c.put(if base64 { b",1," } else { b",0," });
        c.put_u64(self.body_size);
        match (self.truncated, self.incomplete) {
            (false, false) => c.put(b",false,false,"),
            (false, true) => c.put(b",false,true,"),
            (true, false) => c.put(b",true,false,"),
            (true, true) => c.put(b",true,true,"),
        }
        match latency {
            Some(ms) => c.put_millis(ms),
            None => c.put(b"null"),
        }
        c.byte(b',');
        match placement {
            Some(p) => c.put_pod(p),
            None => c.put(b"null"),
        }
        self.put_rare_fields(&mut c);
        c.byte(b']');
        c.finish();
        body
    }

    /// Element 21 of a row: `,{…}` with the rarer fields this message has, in schema
    /// order; nothing when it has none. Each field ends in a comma, the last taken back.
    fn put_rare_fields(&self, c: &mut Cursor<'_>) {
        if self.stream_id.is_none()
            && self.trailers.is_empty()
            && self.decoded_body_size.is_none()
            && !self.tunnel
            && self.parse_error.is_none()
        {
            return;
        }
        c.put(b",{");
        if let Some(id) = self.stream_id {
            c.put(b"\"streamId\":");
            c.put_u64(u64::from(id));
            c.byte(b',');
        }
        if !self.trailers.is_empty() {
            c.put(b"\"trailers\":");
            c.put_fields(&self.trailers);
            c.byte(b',');
        }
        if let Some(n) = self.decoded_body_size {
            c.put(b"\"decodedBodySize\":");
            c.put_u64(n);
            c.byte(b',');
        }
        if self.tunnel {
            c.put(b"\"tunnel\":true,");
        }
        if let Some(e) = self.parse_error {
            c.put(b"\"parseError\":");
            c.put_str(e);
            c.byte(b',');
        }
        c.back(1);
        c.byte(b'}');
    }
}

#[cfg(test)]
mod tests {
    use serde_json::{json, Value};

    use super::RowStrings;
    use crate::message::{HeaderValue, HttpMessage, MessageKind, Placement};
    use crate::testing::sample_message;

    /// Element `i` of a row as the JavaScript side reads it: a string is appended to the
    /// batch's `table`, a number is an index into it.
    fn repeated(r: &[Value], i: usize, table: &mut Vec<Value>) -> Value {
        match &r[i] {
            Value::String(_) => {
                table.push(r[i].clone());
                r[i].clone()
            }
            Value::Number(n) => {
                let n = n.as_u64().expect("an index") as usize;
                assert!(n < table.len(), "element {i}: index {n} of {}", table.len());
                table[n].clone()
            }
            other => panic!("element {i} must be a string or an index, got {other}"),
        }
    }

    /// The object the JavaScript side builds from `row` (node-addon/ts/rows.ts), by the
    /// same rules, `table` being its batch's strings so far: what the row must hold for
    /// the two to agree.
    fn object_of(row: &Value, table: &mut Vec<Value>) -> Value {
        let r = row.as_array().expect("a row is an array");
        // In this order: the order the JavaScript side appends them to its table.
        let connection = repeated(r, 1, table);
        let source = repeated(r, 5, table);
        let destination = repeated(r, 7, table);
        let mut m = serde_json::Map::new();
        m.insert(
            "type".into(),
            json!(if r[0] == 0 { "request" } else { "response" }),
        );
        m.insert("connectionId".into(), connection);
        m.insert("sequence".into(), r[2].clone());
        m.insert("timestamp".into(), r[3].clone());
        let end = if r[4] == json!(0) { &r[3] } else { &r[4] };
        m.insert("endTimestamp".into(), end.clone());
        m.insert("source".into(), json!({"ip": source, "port": r[6]}));
        m.insert(
            "destination".into(),
            json!({"ip": destination, "port": r[8]}),
        );
        let direction = super::DIRECTIONS[r[9].as_u64().expect("direction index") as usize];
        m.insert("direction".into(), json!(direction.as_str()));
        let (a, b) = if r[0] == 0 {
            ("method", "url")
        } else {
            ("statusCode", "statusMessage")
        };
        m.insert(a.into(), r[10].clone());
        m.insert(b.into(), r[11].clone());
        let version = match r[12].as_u64() {
            Some(i) => json!(super::HTTP_VERSIONS[i as usize]),
            None => r[12].clone(),
        };
        m.insert("httpVersion".into(), version);
        let rare = r.get(21).cloned().unwrap_or(json!({}));
        if let Some(v) = rare.get("streamId") {
            m.insert("streamId".into(), v.clone());
        }
        m.insert("headers".into(), r[13].clone());
        if let Some(v) = rare.get("trailers") {
            m.insert("trailers".into(), v.clone());
        }
        m.insert("body".into(), r[14].clone());
        let encoding = match r[15].as_u64() {
            Some(0) => "utf8",
            Some(1) => "base64",
            _ => panic!("bodyEncoding must be 0 or 1, got {}", r[15]),
        };
        m.insert("bodyEncoding".into(), json!(encoding));
        m.insert("bodySize".into(), r[16].clone());
        for k in ["decodedBodySize", "tunnel"] {
            if let Some(v) = rare.get(k) {
                m.insert(k.into(), v.clone());
            }
        }
        m.insert("truncated".into(), r[17].clone());
        m.insert("incomplete".into(), r[18].clone());
        if let Some(v) = rare.get("parseError") {
            m.insert("parseError".into(), v.clone());
        }
        if !r[19].is_null() {
            m.insert("latencyMs".into(), r[19].clone());
        }
        if !r[20].is_null() {
            m.insert("pod".into(), r[20].clone());
        }
        assert!(
            r.len() == 21 || (r.len() == 22 && rare.as_object().is_some_and(|o| !o.is_empty()))
        );
        Value::Object(m)
    }

    /// Every message shape: request and response, every optional field on and off, IPv6,
    /// a binary body, a placement.
    fn shapes() -> Vec<HttpMessage> {
        let mut out = Vec::new();
        let base = sample_message();
        out.push(base.clone());
        let mut resp = base.clone();
        resp.kind = MessageKind::Response {
            status_code: 404,
            status_message: "Not \"Found\"".into(),
            latency_ms: Some(12.345),
        };
        out.push(resp.clone());
        let mut no_latency = resp.clone();
        no_latency.kind = MessageKind::Response {
            status_code: 200,
            status_message: String::new(),
            latency_ms: None,
        };
        out.push(no_latency);
        let mut rare = resp.clone();
        rare.stream_id = Some(3);
        rare.trailers = vec![("grpc-status".into(), HeaderValue::Single("0".into()))];
        rare.decoded_body_size = Some(99);
        rare.tunnel = true;
        rare.parse_error = Some("invalid-version");
        out.push(rare);
        let mut one_rare = base.clone();
        one_rare.parse_error = Some("invalid-header");
        out.push(one_rare);
        let mut v6 = base.clone();
        v6.source.ip = "2001:db8::1".parse().unwrap();
        v6.destination.ip = "::ffff:10.0.0.1".parse().unwrap();
        v6.body = vec![0xff, 0, b'"', b'\n'];
        v6.body_size = 4;
        v6.end_timestamp = crate::time::Timestamp(v6.timestamp.0 + 1_234_567);
        out.push(v6);
        // Every direction and HTTP version the tables list, and one they do not.
        for (d, v) in [
            (crate::message::Direction::Inbound, "1.0"),
            (crate::message::Direction::Outbound, "0.9"),
            (crate::message::Direction::Unknown, "2"),
            (crate::message::Direction::Inbound, "3"),
        ] {
            let mut m = resp.clone();
            m.direction = d;
            m.http_version = v;
            out.push(m);
        }
        out
    }

    #[test]
    fn a_row_rebuilds_the_json_object_key_for_key() {
        let placements = [
            None,
            Some(Placement {
                name: Some("web-0".into()),
                namespace: None,
                node: Some("n\u{e9}".into()),
            }),
        ];
        for p in &placements {
            for m in shapes() {
                let mut row = Vec::new();
                let body = m.write_js_row(p.as_ref(), &mut RowStrings::default(), &mut row);
                let mut obj = Vec::new();
                let obj_body = m.write_json(p.as_ref(), &mut obj);
                assert_eq!(
                    row[body], obj[obj_body],
                    "the body range points at the body"
                );
                let row: Value = serde_json::from_slice(&row).expect("a row is JSON");
                let want: Value = serde_json::from_slice(&obj).unwrap();
                // Values and which keys (serde_json's map sorts keys: the order the JavaScript
                // side gives them is held to the CLI's by the Node parity tests).
                assert_eq!(object_of(&row, &mut Vec::new()), want);
            }
        }
    }

    /// One batch of every shape, several times over, with connections and addresses
    /// shared among its messages: each repeated value is a string the first time and an
    /// index after, and every row still rebuilds its message. A second batch starts a
    /// table of its own.
    #[test]
    fn a_batch_writes_each_repeated_value_once() {
        let mut msgs = Vec::new();
        for (i, mut m) in shapes().into_iter().cycle().take(40).enumerate() {
            m.connection_id = (i % 3) as u64;
            if i % 4 == 0 {
                // The same address at both ends (loopback): the second is an index already.
                m.destination.ip = m.source.ip;
            }
            msgs.push(m);
        }
        let mut strings = RowStrings::default();
        for _batch in 0..2 {
            strings.clear();
            let (mut table, mut indices) = (Vec::new(), 0);
            for m in &msgs {
                let mut row = Vec::new();
                m.write_js_row(None, &mut strings, &mut row);
                let row: Value = serde_json::from_slice(&row).expect("a row is JSON");
                indices += [1, 5, 7].iter().filter(|&&i| row[i].is_number()).count();
                let mut obj = Vec::new();
                m.write_json(None, &mut obj);
                let want: Value = serde_json::from_slice(&obj).unwrap();
                assert_eq!(object_of(&row, &mut table), want);
            }
            let addresses: std::collections::HashSet<_> = msgs
                .iter()
                .flat_map(|m| [m.source.ip, m.destination.ip])
                .collect();
            assert!(addresses.len() >= 3, "{addresses:?}");
            assert_eq!(table.len(), 3 + addresses.len(), "{table:?}");
            assert_eq!(indices, 3 * 40 - table.len());
        }
    }
}
