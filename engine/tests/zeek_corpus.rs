//! Every capture of Zeek's HTTP tests through the engine, compared with Zeek's `http.log`.
//!
//! For each exchange Zeek logged, tcp-sniffer must agree on method, uri, status code and
//! request/response body lengths, keyed by connection 4-tuple and exchange index
//! (`trans_depth` − 1 = `sequence`). Where it deliberately differs, [`KNOWN_DIFFERENCES`]
//! says why, per file; a listed file that no longer differs fails the test, so the list
//! stays true. Captures without an `http.log` must run without panic.

mod common;

use std::collections::BTreeMap;
use std::path::Path;

use serde_json::Value;

/// Files where tcp-sniffer and Zeek disagree on purpose, and why tcp-sniffer is right.
const KNOWN_DIFFERENCES: &[(&str, &str)] = &[
    (
        "x-gzip",
        "Zeek's response_body_len is the length after gzip decoding; bodySize is the body as \
         sent (after de-chunking only): the schema reports what crossed the wire",
    ),
    (
        "missing-zlib-header",
        "Zeek's response_body_len is the length after deflate decoding; bodySize is the body \
         as sent (after de-chunking only)",
    ),
    (
        "http-filename",
        "Zeek's log shows the uri percent-decoded; the schema's url is the request-target \
         exactly as on the wire",
    ),
    (
        "http-no-crlf",
        "the client sends a stray CRLF after each POST body; Zeek counts it into \
         request_body_len, tcp-sniffer follows Content-Length and skips the CRLF before the next \
         request line as RFC 9112 section 2.2 allows (all 5 exchanges pair correctly)",
    ),
    (
        "http-09",
        "HTTP/0.9 requests (no version) are outside schema v1 (httpVersion is 1.0 or 1.1): \
         counted as parse_error_invalid_version, not emitted",
    ),
    (
        "no-version",
        "HTTP/0.9-style request line without a version: counted as a parse error, not emitted",
    ),
    (
        "http-09-content-length-confusion",
        "the server sends a response before any request; tcp-sniffer emits it as an incomplete \
         response with the body its Content-Length frames (4 bytes); Zeek guesses an HTTP/0.9 \
         exchange instead",
    ),
    (
        "cl-uint64max",
        "Content-Length 18446744073709551615 is valid syntax, so per RFC 9112 section 6.3 every \
         following byte is body (as a conforming server sees it): the smuggled GET is not a \
         request; Zeek treats the value as an overflow and parses the GET",
    ),
    (
        "no-uri",
        "'GET HTTP/1.1' has no request-target (RFC 9112 section 3): counted as an invalid head; \
         the response is still emitted, paired to a placeholder and marked incomplete",
    ),
    (
        "http-bad-request-with-version",
        "the client's first bytes are 5 bytes of garbage (4 binary bytes and a space) before \
         'GET /txt HTTP/1.1'; tcp-sniffer skips them (counted in detect_resyncs and \
         skipped_bytes) and emits the request, which the server answered with 200; Zeek logs the \
         exchange without a method or uri. status_code, request_body_len and response_body_len \
         (14) agree",
    ),
    (
        "http-11-request-then-cruft",
        "after the first exchange the client sends cruft the server answers with 400; \
         tcp-sniffer emits that 400 response (incomplete, its request unparseable), Zeek does \
         not log it",
    ),
];

/// Ports for captures that have no http.log to take them from.
const DEFAULT_PORTS: &str = "80,81,1080,1234,2375,3128,8000,8001,8080,8240,8888";

/// Fields compared, as named in Zeek's `http.log`.
const COMPARED: [&str; 6] = [
    "trans_depth",
    "method",
    "uri",
    "status_code",
    "request_body_len",
    "response_body_len",
];

/// One exchange: connection 4-tuple (when the log has it) and the compared fields ("-" = unset).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct Row {
    conn: Option<(String, String, String, String)>,
    fields: Vec<(String, String)>,
}

/// Parses a full Zeek log (`#fields` line) or a `zeek-cut` excerpt (first line = names).
fn parse_http_log(text: &str) -> Vec<Row> {
    let mut names: Vec<String> = Vec::new();
    let mut rows = Vec::new();
    for line in text.lines() {
        if let Some(f) = line.strip_prefix("#fields\t") {
            names = f.split('\t').map(str::to_string).collect();
            continue;
        }
        if line.starts_with('#') || line.is_empty() {
            continue;
        }
        let cols: Vec<&str> = line.split('\t').collect();
        if names.is_empty() {
            names = cols.iter().map(|c| c.to_string()).collect();
            continue;
        }
        let get = |name: &str| -> Option<String> {
            let i = names.iter().position(|f| f == name)?;
            cols.get(i).map(|v| v.to_string())
        };
        let conn = match (
            get("id.orig_h"),
            get("id.orig_p"),
            get("id.resp_h"),
            get("id.resp_p"),
        ) {
            (Some(a), Some(b), Some(c), Some(d)) => Some((a, b, c, d)),
            _ => None,
        };
        let fields = COMPARED
            .iter()
            .filter_map(|f| get(f).map(|v| (f.to_string(), normalise(f, &v))))
            .collect();
        rows.push(Row { conn, fields });
    }
    rows
}

/// Zeek writes `-` for a body it did not see; tcp-sniffer reports 0 bytes.
fn normalise(field: &str, v: &str) -> String {
    if field.ends_with("_body_len") && v == "-" {
        "0".into()
    } else {
        v.to_string()
    }
}

/// Client address, client port, server address, server port, exchange index.
type ExchangeKey = (String, String, String, String, u64);

/// tcp-sniffer's messages folded into rows like Zeek's, with the fields `like` has.
fn our_rows(msgs: &[Value], like: &[String]) -> Vec<Row> {
    let mut by_key: BTreeMap<ExchangeKey, BTreeMap<&str, String>> = BTreeMap::new();
    for m in msgs {
        let is_req = m["type"] == "request";
        let (client, server) = if is_req {
            (&m["source"], &m["destination"])
        } else {
            (&m["destination"], &m["source"])
        };
        let seq = m["sequence"].as_u64().unwrap();
        let key = (
            client["ip"].as_str().unwrap().to_string(),
            client["port"].to_string(),
            server["ip"].as_str().unwrap().to_string(),
            server["port"].to_string(),
            seq,
        );
        let e = by_key.entry(key).or_default();
        e.insert("trans_depth", (seq + 1).to_string());
        if is_req {
            e.insert("method", m["method"].as_str().unwrap().to_string());
            e.insert("uri", m["url"].as_str().unwrap().to_string());
            e.insert("request_body_len", m["bodySize"].to_string());
        } else {
            let status = m["statusCode"].as_u64().unwrap();
            // Zeek logs the final response; interim 1xx go to info_code.
            if status >= 200 || !e.contains_key("status_code") {
                e.insert("status_code", status.to_string());
                e.insert("response_body_len", m["bodySize"].to_string());
            }
        }
    }
    by_key
        .into_iter()
        .map(|((ch, cp, sh, sp, _), f)| Row {
            conn: Some((ch, cp, sh, sp)),
            fields: like
                .iter()
                .map(|name| {
                    let v = f.get(name.as_str()).cloned().unwrap_or_else(|| "-".into());
                    (name.clone(), normalise(name, &v))
                })
                .collect(),
        })
        .collect()
}

fn ports_of(log: &[Row]) -> Option<String> {
    let mut ports: Vec<u16> = log
        .iter()
        .filter_map(|r| r.conn.as_ref()?.3.parse().ok())
        .collect();
    ports.sort_unstable();
    ports.dedup();
    (!ports.is_empty()).then(|| {
        ports
            .iter()
            .map(|p| p.to_string())
            .collect::<Vec<_>>()
            .join(",")
    })
}

/// Differences as text; empty when tcp-sniffer agrees. Logs without addresses
/// (`zeek-cut` excerpts keyed by uid) are compared as multisets of rows.
fn compare(zeek: &[Row], msgs: &[Value]) -> (usize, Vec<String>) {
    let names: Vec<String> = zeek
        .first()
        .map(|r| r.fields.iter().map(|(n, _)| n.clone()).collect())
        .unwrap_or_default();
    let mut ours = our_rows(msgs, &names);
    let keyed = zeek.iter().all(|r| r.conn.is_some());
    if !keyed {
        for r in &mut ours {
            r.conn = None;
        }
    }
    let mut zeek_sorted = zeek.to_vec();
    zeek_sorted.sort();
    ours.sort();
    let mut diffs = Vec::new();
    let mut matched = 0;
    let mut remaining = ours.clone();
    for z in &zeek_sorted {
        if let Some(i) = remaining.iter().position(|o| o == z) {
            remaining.remove(i);
            matched += 1;
        } else {
            diffs.push(format!("zeek row not matched: {z:?}"));
        }
    }
    for o in remaining {
        diffs.push(format!("tcp-sniffer row not in zeek's log: {o:?}"));
    }
    (matched, diffs)
}

#[test]
fn zeek_http_corpus_agrees_or_differences_are_explained() {
    let Some(corpus) = common::corpus_dir() else {
        return;
    };
    let root = corpus.join("zeek-http");
    let mut dirs: Vec<_> = std::fs::read_dir(&root)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    dirs.sort();
    let mut unexplained = Vec::new();
    let mut report = String::new();
    let (mut total_rows, mut total_matched) = (0, 0);
    for dir in dirs.iter().filter(|d| d.is_dir()) {
        let name = dir.file_name().unwrap().to_string_lossy().to_string();
        let log = std::fs::read_to_string(dir.join("http.log"))
            .ok()
            .map(|t| parse_http_log(&t));
        let mut captures: Vec<_> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| {
                matches!(
                    p.extension().and_then(|e| e.to_str()),
                    Some("pcap" | "pcapng")
                )
            })
            .collect();
        captures.sort();
        let ports = log
            .as_deref()
            .and_then(ports_of)
            .unwrap_or_else(|| DEFAULT_PORTS.to_string());
        let s = common::settings(&[("--ports", &ports)]);
        let mut msgs = Vec::new();
        for cap in &captures {
            let (m, _summary) = common::replay(Path::new(cap), &s);
            msgs.extend(m);
        }
        let Some(log) = log else {
            report.push_str(&format!(
                "{name}: no http.log; {} messages, no panic\n",
                msgs.len()
            ));
            continue;
        };
        let (matched, diffs) = compare(&log, &msgs);
        total_rows += log.len();
        total_matched += matched;
        report.push_str(&format!(
            "{name}: {matched}/{} exchanges match\n",
            log.len()
        ));
        let known = KNOWN_DIFFERENCES.iter().find(|(f, _)| *f == name);
        match (diffs.is_empty(), known) {
            (true, None) => {}
            (true, Some(_)) => unexplained.push(format!(
                "{name}: listed in KNOWN_DIFFERENCES but now agrees with Zeek"
            )),
            (false, Some((_, why))) => {
                report.push_str(&format!("  known difference: {why}\n"));
                for d in &diffs {
                    report.push_str(&format!("    {d}\n"));
                }
            }
            (false, None) => {
                for d in diffs {
                    unexplained.push(format!("{name}: {d}"));
                }
            }
        }
    }
    println!("{report}total: {total_matched}/{total_rows} Zeek exchanges match");
    assert!(
        unexplained.is_empty(),
        "unexplained differences from Zeek:\n{}",
        unexplained.join("\n")
    );
}
