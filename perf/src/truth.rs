//! Ground truth: the HTTP messages a correct sniffer must emit for a generated pcap, and the
//! comparison of a sniffer's JSON lines against it.
//!
//! File `<name>.truth.jsonl` holds one [`TruthMsg`] per line, in the order the generator planned
//! them (per connection that is capture order; across connections it is not).

use serde::{Deserialize, Serialize};
use std::borrow::Cow;
use std::collections::HashMap;
use std::io::BufRead;
use std::net::IpAddr;

/// An IP address and port, IP in canonical text form (IPv6 per RFC 5952, like the sniffer).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Addr {
    /// The IP, written in canonical text form.
    pub ip: IpAddr,
    /// TCP port.
    pub port: u16,
}

/// Which half of an exchange.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    /// A request.
    Request,
    /// A response (interim 1xx included).
    Response,
}

/// One expected HTTP message.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TruthMsg {
    /// `"request"` or `"response"`.
    #[serde(rename = "type")]
    pub kind: Kind,
    /// 0-based index of the connection in the generated file (for people; not in sniffer output).
    pub conn: u64,
    /// Client side of the connection (a request's source, a response's destination).
    pub client: Addr,
    /// Server side of the connection.
    pub server: Addr,
    /// 0-based exchange index on the connection; interim 1xx responses share it with the final one.
    pub sequence: u64,
    /// Requests: method as on the wire.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub method: Option<Cow<'static, str>>,
    /// Requests: request-target as on the wire.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// Responses: status code.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status_code: Option<u16>,
    /// Responses: reason phrase.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status_message: Option<Cow<'static, str>>,
    /// `"1.0"` or `"1.1"`.
    pub http_version: Cow<'static, str>,
    /// Body length after removing chunked framing (0 for HEAD responses, 1xx, 204, 304).
    pub body_size: u64,
    /// Body sent with `Transfer-Encoding: chunked`.
    pub chunked: bool,
    /// The sniffer should flag this message `incomplete` (bytes of it are missing from the capture).
    pub incomplete: bool,
    /// What is special about this message (A and M workloads): `pipelined`, `expect-100`,
    /// `chunk-ext`, `trailers`, `gap`, `split-head`, `reorder`, `retransmit`, `overlap`, `head`,
    /// `close-delimited`, `vlan`, `ipv6`, `isn-wrap`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tags: Vec<Cow<'static, str>>,
}

impl TruthMsg {
    /// Appends this message as one JSON line, byte for byte what `serde_json::to_writer` writes
    /// plus `\n`, but several times faster. `addrs` is [`addrs_json`] of its client and server.
    pub fn write_line(&self, out: &mut Vec<u8>, addrs: &str) {
        out.extend_from_slice(match self.kind {
            Kind::Request => b"{\"type\":\"request\",\"conn\":",
            Kind::Response => b"{\"type\":\"response\",\"conn\":",
        });
        push_u64(out, self.conn);
        out.push(b',');
        out.extend_from_slice(addrs.as_bytes());
        out.extend_from_slice(b",\"sequence\":");
        push_u64(out, self.sequence);
        if let Some(m) = &self.method {
            out.extend_from_slice(b",\"method\":");
            push_str(out, m);
        }
        if let Some(u) = &self.url {
            out.extend_from_slice(b",\"url\":");
            push_str(out, u);
        }
        if let Some(c) = self.status_code {
            out.extend_from_slice(b",\"statusCode\":");
            push_u64(out, c as u64);
        }
        if let Some(m) = &self.status_message {
            out.extend_from_slice(b",\"statusMessage\":");
            push_str(out, m);
        }
        out.extend_from_slice(b",\"httpVersion\":");
        push_str(out, &self.http_version);
        out.extend_from_slice(b",\"bodySize\":");
        push_u64(out, self.body_size);
        out.extend_from_slice(if self.chunked {
            b",\"chunked\":true"
        } else {
            b",\"chunked\":false"
        });
        out.extend_from_slice(if self.incomplete {
            b",\"incomplete\":true"
        } else {
            b",\"incomplete\":false"
        });
        if !self.tags.is_empty() {
            out.extend_from_slice(b",\"tags\":[");
            for (i, t) in self.tags.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                push_str(out, t);
            }
            out.push(b']');
        }
        out.extend_from_slice(b"}\n");
    }
}

/// `"client":{"ip":"…","port":…},"server":{…}` as serde_json writes it.
pub fn addrs_json(client: &Addr, server: &Addr) -> String {
    format!(
        "\"client\":{},\"server\":{}",
        serde_json::to_string(client).expect("address serialises"),
        serde_json::to_string(server).expect("address serialises")
    )
}

fn push_u64(out: &mut Vec<u8>, mut v: u64) {
    let mut tmp = [0u8; 20];
    let mut i = tmp.len();
    loop {
        i -= 1;
        tmp[i] = b'0' + (v % 10) as u8;
        v /= 10;
        if v == 0 {
            break;
        }
    }
    out.extend_from_slice(&tmp[i..]);
}

fn push_str(out: &mut Vec<u8>, s: &str) {
    let plain = s.bytes().all(|b| b >= 0x20 && b != b'"' && b != b'\\');
    if plain {
        out.push(b'"');
        out.extend_from_slice(s.as_bytes());
        out.push(b'"');
    } else {
        serde_json::to_writer(&mut *out, s).expect("string serialises");
    }
}

/// Key that identifies a message in both truth and sniffer output: client, server, sequence,
/// type, and the ordinal among messages sharing those (0 except for the final response after an
/// interim 1xx).
pub type Key = (Addr, Addr, u64, Kind, u32);

/// Reads a truth file.
pub fn read_truth(path: &std::path::Path) -> anyhow::Result<Vec<TruthMsg>> {
    let f = std::io::BufReader::new(std::fs::File::open(path)?);
    let mut out = Vec::new();
    for (i, line) in f.lines().enumerate() {
        let line = line?;
        if line.trim().is_empty() {
            continue;
        }
        out.push(
            serde_json::from_str(&line)
                .map_err(|e| anyhow::anyhow!("{}:{}: {e}", path.display(), i + 1))?,
        );
    }
    Ok(out)
}

/// The facts of one message the sniffer emitted (SPEC schema v1; other fields are ignored).
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Emitted {
    /// `"request"` or `"response"`.
    #[serde(rename = "type")]
    pub kind: Kind,
    /// Exchange index on the connection.
    pub sequence: u64,
    /// Sender.
    pub source: Addr,
    /// Receiver.
    pub destination: Addr,
    /// Requests: method.
    #[serde(default)]
    pub method: Option<String>,
    /// Requests: URL.
    #[serde(default)]
    pub url: Option<String>,
    /// Responses: status code.
    #[serde(default)]
    pub status_code: Option<u16>,
    /// Full body length seen.
    #[serde(default)]
    pub body_size: Option<u64>,
    /// Flagged incomplete.
    #[serde(default)]
    pub incomplete: Option<bool>,
}

/// Result of comparing sniffer output with truth.
#[derive(Debug, Clone, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CheckReport {
    /// Messages in the truth file.
    pub expected: u64,
    /// Of those, expected to be flagged incomplete.
    pub expected_incomplete: u64,
    /// Lines the sniffer emitted.
    pub emitted: u64,
    /// Expected messages found in the output (by key).
    pub matched: u64,
    /// `matched / expected`.
    pub completeness: f64,
    /// Expected messages matched with every checked field equal.
    pub exact: u64,
    /// Counts of problems by kind: `missing`, `missing-expected-incomplete`, `unexpected`,
    /// `duplicate`, `unparsable-line`, `method`, `url`, `status`, `body-size`,
    /// `incomplete-not-flagged`, `flagged-incomplete`.
    pub mismatches: std::collections::BTreeMap<String, u64>,
    /// Up to 20 examples, one line each.
    pub examples: Vec<String>,
}

/// Compares sniffer JSON lines (`output`) with `truth`. Every message is keyed by
/// [`Key`]; fields compared: method, url, status code, body size (only for messages not expected
/// incomplete), and the `incomplete` flag.
pub fn check<R: BufRead>(truth: &[TruthMsg], output: R) -> anyhow::Result<CheckReport> {
    let mut rep = CheckReport::default();
    let mut want: HashMap<Key, &TruthMsg> = HashMap::with_capacity(truth.len());
    let mut ord: HashMap<(Addr, Addr, u64, Kind), u32> = HashMap::new();
    for t in truth {
        let base = (t.client.clone(), t.server.clone(), t.sequence, t.kind);
        let n = ord.entry(base).or_insert(0);
        want.insert(
            (t.client.clone(), t.server.clone(), t.sequence, t.kind, *n),
            t,
        );
        *n += 1;
        rep.expected += 1;
        rep.expected_incomplete += t.incomplete as u64;
    }
    ord.clear();
    let mut seen: HashMap<Key, ()> = HashMap::with_capacity(truth.len());
    let bump = |rep: &mut CheckReport, kind: &str, ex: String| {
        *rep.mismatches.entry(kind.to_string()).or_insert(0) += 1;
        if rep.examples.len() < 20 {
            rep.examples.push(format!("{kind}: {ex}"));
        }
    };
    for line in output.lines() {
        let line = line?;
        if line.trim().is_empty() {
            continue;
        }
        rep.emitted += 1;
        let m: Emitted = match serde_json::from_str(&line) {
            Ok(m) => m,
            Err(e) => {
                bump(&mut rep, "unparsable-line", format!("{e}"));
                continue;
            }
        };
        let (client, server) = if m.kind == Kind::Request {
            (m.source.clone(), m.destination.clone())
        } else {
            (m.destination.clone(), m.source.clone())
        };
        let base = (client.clone(), server.clone(), m.sequence, m.kind);
        let n = ord.entry(base).or_insert(0);
        let key: Key = (client, server, m.sequence, m.kind, *n);
        *n += 1;
        let desc = format!(
            "{}:{} -> {}:{} seq {} {:?}",
            key.0.ip, key.0.port, key.1.ip, key.1.port, key.2, key.3
        );
        let Some(t) = want.get(&key) else {
            bump(&mut rep, "unexpected", desc);
            continue;
        };
        if seen.insert(key, ()).is_some() {
            bump(&mut rep, "duplicate", desc);
            continue;
        }
        rep.matched += 1;
        let mut ok = true;
        if t.kind == Kind::Request {
            if m.method.as_deref() != t.method.as_deref() {
                ok = false;
                bump(
                    &mut rep,
                    "method",
                    format!("{desc}: {:?} != {:?}", m.method, t.method),
                );
            }
            if m.url != t.url {
                ok = false;
                bump(
                    &mut rep,
                    "url",
                    format!("{desc}: {:?} != {:?}", m.url, t.url),
                );
            }
        } else if m.status_code != t.status_code {
            ok = false;
            bump(
                &mut rep,
                "status",
                format!("{desc}: {:?} != {:?}", m.status_code, t.status_code),
            );
        }
        let flagged = m.incomplete.unwrap_or(false);
        if t.incomplete && !flagged {
            ok = false;
            bump(&mut rep, "incomplete-not-flagged", desc.clone());
        } else if !t.incomplete && flagged {
            ok = false;
            bump(&mut rep, "flagged-incomplete", desc.clone());
        }
        if !t.incomplete && m.body_size != Some(t.body_size) {
            ok = false;
            bump(
                &mut rep,
                "body-size",
                format!("{desc}: {:?} != {}", m.body_size, t.body_size),
            );
        }
        rep.exact += ok as u64;
    }
    for (k, t) in &want {
        if !seen.contains_key(k) {
            let kind = if t.incomplete {
                "missing-expected-incomplete"
            } else {
                "missing"
            };
            let desc = format!(
                "conn {} {}:{} seq {} {:?}",
                t.conn, k.0.ip, k.0.port, k.2, k.3
            );
            bump(&mut rep, kind, desc);
        }
    }
    rep.completeness = if rep.expected == 0 {
        1.0
    } else {
        rep.matched as f64 / rep.expected as f64
    };
    Ok(rep)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(kind: &str, seq: u64, status: Option<u16>, incomplete: bool) -> TruthMsg {
        let is_req = kind == "request";
        let kind = if is_req {
            Kind::Request
        } else {
            Kind::Response
        };
        TruthMsg {
            kind,
            conn: 0,
            client: Addr {
                ip: "10.1.0.1".parse().unwrap(),
                port: 40000,
            },
            server: Addr {
                ip: "10.0.0.1".parse().unwrap(),
                port: 80,
            },
            sequence: seq,
            method: is_req.then(|| "GET".into()),
            url: is_req.then(|| "/".into()),
            status_code: status,
            status_message: None,
            http_version: "1.1".into(),
            body_size: 5,
            chunked: false,
            incomplete,
            tags: vec![],
        }
    }

    #[test]
    fn fast_writer_equals_serde() {
        let mut m = t("request", 3, None, true);
        m.url = Some("/a?\"q\"=\\x\u{1}".to_string());
        m.tags = vec!["gap".into(), "ipv6".into()];
        let mut r = t("response", 1, Some(204), false);
        r.client.ip = "fd00:c::1:7".parse().unwrap();
        r.status_message = Some("No Content".into());
        for msg in [m, r] {
            let mut fast = Vec::new();
            msg.write_line(&mut fast, &addrs_json(&msg.client, &msg.server));
            let mut slow = serde_json::to_vec(&msg).unwrap();
            slow.push(b'\n');
            assert_eq!(
                String::from_utf8(fast).unwrap(),
                String::from_utf8(slow).unwrap()
            );
        }
    }

    #[test]
    fn matches_by_key_and_counts_kinds() {
        let truth = vec![
            t("request", 0, None, false),
            t("response", 0, Some(100), false),
            t("response", 0, Some(200), false),
            t("request", 1, None, false),
            t("response", 1, Some(200), true),
        ];
        let out = r#"{"type":"request","sequence":0,"source":{"ip":"10.1.0.1","port":40000},"destination":{"ip":"10.0.0.1","port":80},"method":"GET","url":"/","bodySize":5,"incomplete":false}
{"type":"response","sequence":0,"source":{"ip":"10.0.0.1","port":80},"destination":{"ip":"10.1.0.1","port":40000},"statusCode":100,"bodySize":5}
{"type":"response","sequence":0,"source":{"ip":"10.0.0.1","port":80},"destination":{"ip":"10.1.0.1","port":40000},"statusCode":201,"bodySize":5}
{"type":"response","sequence":1,"source":{"ip":"10.0.0.1","port":80},"destination":{"ip":"10.1.0.1","port":40000},"statusCode":200,"bodySize":1,"incomplete":true}
{"type":"response","sequence":7,"source":{"ip":"10.0.0.1","port":80},"destination":{"ip":"10.1.0.1","port":40000},"statusCode":200,"bodySize":1}
"#;
        let r = check(&truth, out.as_bytes()).unwrap();
        assert_eq!((r.expected, r.emitted, r.matched, r.exact), (5, 5, 4, 3));
        assert_eq!(r.mismatches["status"], 1);
        assert_eq!(r.mismatches["missing"], 1);
        assert_eq!(r.mismatches["unexpected"], 1);
        assert!((r.completeness - 0.8).abs() < 1e-9);
    }
}
