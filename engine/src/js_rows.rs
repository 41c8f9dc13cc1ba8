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
//! | 1 | `connectionId` |
//! | 2 | `sequence` |
//! | 3, 4 | `timestamp`, `endTimestamp` |
//! | 5, 6 | `source.ip`, `source.port` |
//! | 7, 8 | `destination.ip`, `destination.port` |
//! | 9 | `direction` |
//! | 10, 11 | request: `method`, `url`; response: `statusCode`, `statusMessage` |
//! | 12 | `httpVersion` |
//! | 13 | `headers` |
//! | 14, 15, 16 | `body`, `bodyEncoding`, `bodySize` |
//! | 17, 18 | `truncated`, `incomplete` |
//! | 19 | `latencyMs`, or `null` when the message has none |
//! | 20 | `pod`, or `null` |
//! | 21 | only when the message has one of the rarer fields: an object holding those of `streamId`, `trailers`, `decodedBodySize`, `tunnel` (`true`) and `parseError` it has |
//!
//! Invariant: the JavaScript side's object for a row is, key for key and in the same
//! order, `JSON.parse` of [`HttpMessage::write_json`] for the same message (the Node
//! parity tests compare the two on every capture of the corpus).

use std::net::IpAddr;
use std::ops::Range;

use crate::message::{
    write_body, write_fields, write_hex16, write_millis, write_placement, write_str, write_u64,
    HttpMessage, MessageKind, Placement,
};

impl HttpMessage {
    /// Appends this message as one row (see the module docs) to `out`, and returns where
    /// the `body` string's contents are in `out`, as [`HttpMessage::write_json`] does.
    pub fn write_js_row(&self, placement: Option<&Placement>, out: &mut Vec<u8>) -> Range<usize> {
        out.reserve(256 + self.body.len() * 4 / 3);
        out.extend_from_slice(match self.kind {
            MessageKind::Request { .. } => b"[0,\"",
            MessageKind::Response { .. } => b"[1,\"",
        });
        write_hex16(self.connection_id, out);
        out.extend_from_slice(b"\",");
        write_u64(self.sequence, out);
        out.extend_from_slice(b",\"");
        let first = self.timestamp.rfc3339();
        out.extend_from_slice(&first);
        out.extend_from_slice(b"\",\"");
        if self.end_timestamp == self.timestamp {
            out.extend_from_slice(&first);
        } else {
            self.end_timestamp.write_rfc3339(out);
        }
        out.extend_from_slice(b"\",");
        write_ip_port(self.source.ip, self.source.port, out);
        out.push(b',');
        write_ip_port(self.destination.ip, self.destination.port, out);
        out.extend_from_slice(b",\"");
        out.extend_from_slice(self.direction.as_str().as_bytes());
        out.extend_from_slice(b"\",");
        let latency = match &self.kind {
            MessageKind::Request { method, url } => {
                write_str(method, out);
                out.push(b',');
                write_str(url, out);
                None
            }
            MessageKind::Response {
                status_code,
                status_message,
                latency_ms,
            } => {
                write_u64(u64::from(*status_code), out);
                out.push(b',');
                write_str(status_message, out);
                *latency_ms
            }
        };
        out.extend_from_slice(b",\"");
        out.extend_from_slice(self.http_version.as_bytes());
        out.extend_from_slice(b"\",");
        write_fields(&self.headers, out);
        out.push(b',');
        let (body, encoding) = write_body(&self.body, self.truncated, out);
        out.extend_from_slice(b",\"");
        out.extend_from_slice(encoding.as_bytes());
        out.extend_from_slice(b"\",");
        write_u64(self.body_size, out);
        out.extend_from_slice(if self.truncated { b",true" } else { b",false" });
        out.extend_from_slice(if self.incomplete {
            b",true,"
        } else {
            b",false,"
        });
        match latency {
            Some(ms) => write_millis(ms, out),
            None => out.extend_from_slice(b"null"),
        }
        out.push(b',');
        match placement {
            Some(p) => write_placement(p, out),
            None => out.extend_from_slice(b"null"),
        }
        self.write_rare_fields(out);
        out.push(b']');
        body
    }

    /// Element 21 of a row: `,{…}` with the rarer fields this message has, in schema
    /// order; nothing when it has none.
    fn write_rare_fields(&self, out: &mut Vec<u8>) {
        if self.stream_id.is_none()
            && self.trailers.is_empty()
            && self.decoded_body_size.is_none()
            && !self.tunnel
            && self.parse_error.is_none()
        {
            return;
        }
        out.extend_from_slice(b",{");
        let start = out.len();
        let key = |name: &[u8], out: &mut Vec<u8>| {
            if out.len() > start {
                out.push(b',');
            }
            out.extend_from_slice(name);
        };
        if let Some(id) = self.stream_id {
            key(b"\"streamId\":", out);
            write_u64(u64::from(id), out);
        }
        if !self.trailers.is_empty() {
            key(b"\"trailers\":", out);
            write_fields(&self.trailers, out);
        }
        if let Some(n) = self.decoded_body_size {
            key(b"\"decodedBodySize\":", out);
            write_u64(n, out);
        }
        if self.tunnel {
            key(b"\"tunnel\":true", out);
        }
        if let Some(e) = self.parse_error {
            key(b"\"parseError\":", out);
            write_str(e, out);
        }
        out.push(b'}');
    }
}

/// `"ip",port`: an endpoint's two row elements.
fn write_ip_port(ip: IpAddr, port: u16, out: &mut Vec<u8>) {
    out.push(b'"');
    match ip {
        IpAddr::V4(v4) => {
            for (i, o) in v4.octets().into_iter().enumerate() {
                if i > 0 {
                    out.push(b'.');
                }
                write_u64(u64::from(o), out);
            }
        }
        IpAddr::V6(v6) => crate::message::write_display(&v6, out),
    }
    out.extend_from_slice(b"\",");
    write_u64(u64::from(port), out);
}

#[cfg(test)]
mod tests {
    use serde_json::{json, Value};

    use crate::message::{HeaderValue, HttpMessage, MessageKind, Placement};
    use crate::testing::sample_message;

    /// The object the JavaScript side builds from `row` (node-addon/ts/rows.ts), by the
    /// same rules: what the row must hold for the two to agree.
    fn object_of(row: &Value) -> Value {
        let r = row.as_array().expect("a row is an array");
        let mut m = serde_json::Map::new();
        m.insert(
            "type".into(),
            json!(if r[0] == 0 { "request" } else { "response" }),
        );
        m.insert("connectionId".into(), r[1].clone());
        m.insert("sequence".into(), r[2].clone());
        m.insert("timestamp".into(), r[3].clone());
        m.insert("endTimestamp".into(), r[4].clone());
        m.insert("source".into(), json!({"ip": r[5], "port": r[6]}));
        m.insert("destination".into(), json!({"ip": r[7], "port": r[8]}));
        m.insert("direction".into(), r[9].clone());
        let (a, b) = if r[0] == 0 {
            ("method", "url")
        } else {
            ("statusCode", "statusMessage")
        };
        m.insert(a.into(), r[10].clone());
        m.insert(b.into(), r[11].clone());
        m.insert("httpVersion".into(), r[12].clone());
        let rare = r.get(21).cloned().unwrap_or(json!({}));
        if let Some(v) = rare.get("streamId") {
            m.insert("streamId".into(), v.clone());
        }
        m.insert("headers".into(), r[13].clone());
        if let Some(v) = rare.get("trailers") {
            m.insert("trailers".into(), v.clone());
        }
        m.insert("body".into(), r[14].clone());
        m.insert("bodyEncoding".into(), r[15].clone());
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
                let body = m.write_js_row(p.as_ref(), &mut row);
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
                assert_eq!(object_of(&row), want);
            }
        }
    }
}
