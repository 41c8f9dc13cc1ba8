//! Every capture of Zeek's HTTP tests through the engine, compared with Zeek's `http.log`.
//!
//! For each exchange Zeek logged, tcp-sniffer must agree on method, host (the `Host` header),
//! uri, HTTP version, user agent, status code, reason phrase and request/response body
//! lengths (each where the log has the column), keyed by connection 4-tuple and exchange
//! index (`trans_depth` − 1 = `sequence`). Where it deliberately differs,
//! [`KNOWN_DIFFERENCES`] pins each differing row exactly (as the test prints it) with the
//! reason: any other difference in the same file fails, and so does a pinned row that no
//! longer differs, so the list stays true. The number of matching rows may not fall below
//! [`MIN_MATCHING`] (raise it, never lower it). Captures without an `http.log` must run
//! without panic.

mod common;

use std::collections::BTreeMap;
use std::path::Path;

use serde_json::Value;

/// Rows where tcp-sniffer and Zeek disagree on purpose, each exactly as the test prints it
/// (`zeek only:` Zeek's row that none of ours matches, `ours only:` ours that none of Zeek's
/// matches), with why tcp-sniffer is right: (directory, row, reason).
const KNOWN_DIFFERENCES: &[(&str, &str, &str)] = &[
    ("cl-uint64max", "zeek only: trans_depth=2 method=GET host=target uri=/smuggled-cl-uint64max", WHY_CL_UINT64MAX),
    ("http-09", "zeek only: 42960>80 trans_depth=2 method=- host=- uri=- version=- user_agent=- status_code=- status_msg=- request_body_len=0 response_body_len=0", WHY_HTTP_09),
    ("http-09", "zeek only: 42964>80 trans_depth=2 method=- host=- uri=- version=- user_agent=- status_code=- status_msg=- request_body_len=0 response_body_len=0", WHY_HTTP_09),
    ("http-09-content-length-confusion", "zeek only: 46982>80 trans_depth=1 method=- host=- uri=- version=1.1 user_agent=- status_code=200 status_msg=OK request_body_len=0 response_body_len=0", WHY_HTTP_09_CONTENT_LENGTH_CONFUSION),
    ("http-09-content-length-confusion", "ours only: 46982>80 trans_depth=1 method=- host=- uri=- version=1.1 user_agent=- status_code=200 status_msg=OK request_body_len=0 response_body_len=4", WHY_HTTP_09_CONTENT_LENGTH_CONFUSION),
    ("http-09", "ours only: 42970>80 trans_depth=1 method=T host=- uri=/zeek.html version=0.9 user_agent=- status_code=0 status_msg= request_body_len=0 response_body_len=11", WHY_HTTP_09_UNKNOWN_METHOD),
    ("http-09-content-length-confusion", "zeek only: 46982>80 trans_depth=2 method=GET host=- uri=/ version=0.9 user_agent=- status_code=0 status_msg= request_body_len=0 response_body_len=19", WHY_HTTP_09_CONTENT_LENGTH_CONFUSION),
    ("http-09-content-length-confusion", "ours only: 46982>80 trans_depth=2 method=GET host=- uri=/ version=0.9 user_agent=- status_code=0 status_msg= request_body_len=0 response_body_len=15", WHY_HTTP_09_CONTENT_LENGTH_CONFUSION),
    ("http-11-request-then-cruft", "ours only: 51792>80 trans_depth=2 method=T host=- uri=/ version=1.1 user_agent=- status_code=400 status_msg=Bad Request request_body_len=0 response_body_len=150", WHY_HTTP_11_REQUEST_THEN_CRUFT),
    ("http-11-request-then-cruft", "ours only: 51792>80 trans_depth=3 method=T host=- uri=/ version=- user_agent=- status_code=- status_msg=- request_body_len=0 response_body_len=0", WHY_HTTP_11_REQUEST_THEN_CRUFT),
    ("http-11-request-then-cruft", "ours only: 51792>80 trans_depth=4 method=T host=- uri=/ version=- user_agent=- status_code=- status_msg=- request_body_len=0 response_body_len=0", WHY_HTTP_11_REQUEST_THEN_CRUFT),
    ("http-11-request-then-cruft", "ours only: 51792>80 trans_depth=5 method=T host=- uri=/ version=- user_agent=- status_code=- status_msg=- request_body_len=0 response_body_len=0", WHY_HTTP_11_REQUEST_THEN_CRUFT),
    ("http-bad-request-with-version", "zeek only: 49157>80 trans_depth=1 method=- host=- uri=- version=1.1 user_agent=- status_code=200 status_msg=OK request_body_len=0 response_body_len=14", WHY_HTTP_BAD_REQUEST_WITH_VERSION),
    ("http-bad-request-with-version", "ours only: 49157>80 trans_depth=1 method=GET host=www.msftncsi.com uri=/txt version=1.1 user_agent=Microsoft NCSI status_code=200 status_msg=OK request_body_len=0 response_body_len=14", WHY_HTTP_BAD_REQUEST_WITH_VERSION),
    ("http-filename", "zeek only: 63526>80 trans_depth=1 method=GET host=httpbin.org uri=/response-headers?Content-Type=application/octet-stream; charset=UTF-8&Content-Disposition=attachment; filename=\"test.json\" version=1.1 user_agent=curl/7.45.0 status_code=200 status_msg=OK request_body_len=0 response_body_len=191", WHY_HTTP_FILENAME),
    ("http-filename", "ours only: 63526>80 trans_depth=1 method=GET host=httpbin.org uri=/response-headers?Content-Type=application/octet-stream;%20charset=UTF-8&Content-Disposition=attachment;%20filename%3d%22test.json%22 version=1.1 user_agent=curl/7.45.0 status_code=200 status_msg=OK request_body_len=0 response_body_len=191", WHY_HTTP_FILENAME),
    ("http-no-crlf", "zeek only: 49783>80 trans_depth=1 method=POST host=5.2.136.90 uri=/7u0e9j2avwlvnuynyo/szcm27k/fzb067wy/ version=1.1 user_agent=Mozilla/4.0 (compatible; MSIE 7.0; Windows NT 10.0; WOW64; Trident/7.0; .NET4.0C; .NET4.0E) status_code=200 status_msg=OK request_body_len=6086 response_body_len=306596", WHY_HTTP_NO_CRLF),
    ("http-no-crlf", "zeek only: 49783>80 trans_depth=2 method=POST host=5.2.136.90 uri=/ko5ezxmguvv/p8d4003oiu/utkdae7r/74uzr8n74r/ version=1.1 user_agent=Mozilla/4.0 (compatible; MSIE 7.0; Windows NT 10.0; WOW64; Trident/7.0; .NET4.0C; .NET4.0E) status_code=200 status_msg=OK request_body_len=7558 response_body_len=411556", WHY_HTTP_NO_CRLF),
    ("http-no-crlf", "zeek only: 49783>80 trans_depth=3 method=POST host=5.2.136.90 uri=/vwst360x8syxks325x/26dtqu31wzhmwqq/8p9iu8zbragj/ version=1.1 user_agent=Mozilla/4.0 (compatible; MSIE 7.0; Windows NT 10.0; WOW64; Trident/7.0; .NET4.0C; .NET4.0E) status_code=200 status_msg=OK request_body_len=8214 response_body_len=473908", WHY_HTTP_NO_CRLF),
    ("http-no-crlf", "zeek only: 49783>80 trans_depth=4 method=POST host=5.2.136.90 uri=/mro86v6nvs42/ version=1.1 user_agent=Mozilla/4.0 (compatible; MSIE 7.0; Windows NT 10.0; WOW64; Trident/7.0; .NET4.0C; .NET4.0E) status_code=200 status_msg=OK request_body_len=6278 response_body_len=287012", WHY_HTTP_NO_CRLF),
    ("http-no-crlf", "zeek only: 49783>80 trans_depth=5 method=POST host=5.2.136.90 uri=/raet/u6tpsbdmo5g7crj4f/8l720ln/lwrl5fe38/1yje7g5qc/ version=1.1 user_agent=Mozilla/4.0 (compatible; MSIE 7.0; Windows NT 10.0; WOW64; Trident/7.0; .NET4.0C; .NET4.0E) status_code=200 status_msg=OK request_body_len=6230 response_body_len=1172", WHY_HTTP_NO_CRLF),
    ("http-no-crlf", "ours only: 49783>80 trans_depth=1 method=POST host=5.2.136.90 uri=/7u0e9j2avwlvnuynyo/szcm27k/fzb067wy/ version=1.1 user_agent=Mozilla/4.0 (compatible; MSIE 7.0; Windows NT 10.0; WOW64; Trident/7.0; .NET4.0C; .NET4.0E) status_code=200 status_msg=OK request_body_len=6084 response_body_len=306596", WHY_HTTP_NO_CRLF),
    ("http-no-crlf", "ours only: 49783>80 trans_depth=2 method=POST host=5.2.136.90 uri=/ko5ezxmguvv/p8d4003oiu/utkdae7r/74uzr8n74r/ version=1.1 user_agent=Mozilla/4.0 (compatible; MSIE 7.0; Windows NT 10.0; WOW64; Trident/7.0; .NET4.0C; .NET4.0E) status_code=200 status_msg=OK request_body_len=7556 response_body_len=411556", WHY_HTTP_NO_CRLF),
    ("http-no-crlf", "ours only: 49783>80 trans_depth=3 method=POST host=5.2.136.90 uri=/vwst360x8syxks325x/26dtqu31wzhmwqq/8p9iu8zbragj/ version=1.1 user_agent=Mozilla/4.0 (compatible; MSIE 7.0; Windows NT 10.0; WOW64; Trident/7.0; .NET4.0C; .NET4.0E) status_code=200 status_msg=OK request_body_len=8212 response_body_len=473908", WHY_HTTP_NO_CRLF),
    ("http-no-crlf", "ours only: 49783>80 trans_depth=4 method=POST host=5.2.136.90 uri=/mro86v6nvs42/ version=1.1 user_agent=Mozilla/4.0 (compatible; MSIE 7.0; Windows NT 10.0; WOW64; Trident/7.0; .NET4.0C; .NET4.0E) status_code=200 status_msg=OK request_body_len=6276 response_body_len=287012", WHY_HTTP_NO_CRLF),
    ("http-no-crlf", "ours only: 49783>80 trans_depth=5 method=POST host=5.2.136.90 uri=/raet/u6tpsbdmo5g7crj4f/8l720ln/lwrl5fe38/1yje7g5qc/ version=1.1 user_agent=Mozilla/4.0 (compatible; MSIE 7.0; Windows NT 10.0; WOW64; Trident/7.0; .NET4.0C; .NET4.0E) status_code=200 status_msg=OK request_body_len=6228 response_body_len=1172", WHY_HTTP_NO_CRLF),
    ("no-version", "zeek only: 1035>80 trans_depth=2 method=- host=- uri=- version=- user_agent=- status_code=- status_msg=- request_body_len=0 response_body_len=0", WHY_NO_VERSION),
];

const WHY_CL_UINT64MAX: &str =
    "Content-Length 18446744073709551615 is valid syntax, so per RFC 9112 section 6.3 every \
         following byte is body (as a conforming server sees it): the smuggled GET is not a \
         request; Zeek treats the value as an overflow and parses the GET";
const WHY_HTTP_09: &str =
    "Zeek logs a second, empty row (trans_depth 2, no method, no status) when the HTTP/0.9 connection closes; there is no second exchange on the wire. The exchange itself (httpVersion 0.9, statusCode 0, the reply up to the close as body) agrees";
const WHY_HTTP_09_UNKNOWN_METHOD: &str =
    "`T /zeek.html` is an HTTP/0.9 request with an unknown but valid method token (RFC 9110 section 9.1), and the server answers it; Zeek's protocol detection only starts HTTP on a known method, so it logs nothing for this connection";
const WHY_HTTP_09_CONTENT_LENGTH_CONFUSION: &str =
    "the server sends a response (Content-Length: 4) before any request; tcp-sniffer emits it as an incomplete response whose body is the 4 bytes its Content-Length frames (the CRLF and `th`), so the HTTP/0.9 reply that follows the client's `GET /` is 15 bytes, not 19; Zeek ignores the Content-Length of the unsolicited response. The 0.9 request and its pairing agree";
const WHY_HTTP_11_REQUEST_THEN_CRUFT: &str =
    "after the first exchange the client sends `T / HTTP` (an invalid version), four times; tcp-sniffer emits each as a request with `parseError: invalid-version` and pairs the server's 400 with the first (the server then closes, so the other three stay unanswered). Zeek's protocol detection does not log requests with an unknown method";
const WHY_HTTP_BAD_REQUEST_WITH_VERSION: &str =
    "the client's first bytes are 5 bytes of garbage (4 binary bytes and a space) before \
         'GET /txt HTTP/1.1'; tcp-sniffer skips them (counted in detect_resyncs and \
         skipped_bytes) and emits the request, which the server answered with 200; Zeek logs the \
         exchange without a method or uri. status_code, request_body_len and response_body_len \
         (14) agree";
const WHY_HTTP_FILENAME: &str =
    "Zeek's log shows the uri percent-decoded; the schema's url is the request-target \
         exactly as on the wire";
const WHY_HTTP_NO_CRLF: &str =
    "the client sends a stray CRLF after each POST body; Zeek counts it into \
         request_body_len, tcp-sniffer follows Content-Length and skips the CRLF before the next \
         request line as RFC 9112 section 2.2 allows (all 5 exchanges pair correctly)";
const WHY_NO_VERSION: &str =
    "Zeek logs a second, empty row (trans_depth 2) when the HTTP/0.9 connection closes; there is no second exchange on the wire. The HTTP/0.9 exchange itself agrees";

/// Ports for captures that have no http.log to take them from.
const DEFAULT_PORTS: &str = "80,81,1080,1234,2375,3128,8000,8001,8080,8240,8888";

/// Fields compared, as named in Zeek's `http.log`.
const COMPARED: [&str; 10] = [
    "trans_depth",
    "method",
    "host",
    "uri",
    "version",
    "user_agent",
    "status_code",
    "status_msg",
    "request_body_len",
    "response_body_len",
];

/// Zeek rows that tcp-sniffer matches in every compared field, at least. Only ever raise it.
const MIN_MATCHING: usize = 49;

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
    } else if v == "(empty)" || v == "<empty>" {
        // Zeek's marks for an empty string (`<empty>`: the reason phrase of an HTTP/0.9
        // reply, which has no status line).
        String::new()
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
        let header = |name: &str| m["headers"][name].as_str().map(str::to_string);
        if is_req {
            e.insert("method", m["method"].as_str().unwrap().to_string());
            if let Some(h) = header("host") {
                e.insert("host", h);
            }
            if let Some(h) = header("user-agent") {
                e.insert("user_agent", h);
            }

            e.insert("uri", m["url"].as_str().unwrap().to_string());
            e.insert("request_body_len", m["bodySize"].to_string());
        } else {
            let status = m["statusCode"].as_u64().unwrap();
            // Zeek logs the final response; interim 1xx go to info_code.
            if status >= 200 || !e.contains_key("status_code") {
                e.insert("status_code", status.to_string());
                if let Some(t) = m["statusMessage"].as_str() {
                    e.insert("status_msg", t.to_string());
                }
                // Zeek's version is the response's (`-` when it saw none).
                e.insert("version", m["httpVersion"].as_str().unwrap().to_string());
                // Zeek's response_body_len is the length after content decoding.
                let len = m.get("decodedBodySize").unwrap_or(&m["bodySize"]);
                e.insert("response_body_len", len.to_string());
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

/// A row as one line: `client-port>server-port field=value ...` (`-` unset).
fn compact(r: &Row) -> String {
    let conn = r
        .conn
        .as_ref()
        .map(|(_, cp, _, sp)| format!("{cp}>{sp} "))
        .unwrap_or_default();
    let fields: Vec<String> = r.fields.iter().map(|(k, v)| format!("{k}={v}")).collect();
    format!("{conn}{}", fields.join(" "))
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
            diffs.push(format!("zeek only: {}", compact(z)));
        }
    }
    for o in remaining {
        diffs.push(format!("ours only: {}", compact(&o)));
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
    let mut used = vec![false; KNOWN_DIFFERENCES.len()];
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
        for d in diffs {
            match KNOWN_DIFFERENCES
                .iter()
                .position(|(f, row, _)| *f == name && *row == d)
            {
                Some(k) => {
                    used[k] = true;
                    report.push_str(&format!(
                        "  known: {d}\n    because {}\n",
                        KNOWN_DIFFERENCES[k].2
                    ));
                }
                None => unexplained.push(format!("    (\"{name}\", {d:?}, \"...\"),")),
            }
        }
    }
    for (k, u) in used.iter().enumerate() {
        if !u {
            unexplained.push(format!(
                "{:?} no longer differs (or its file is gone): remove it from KNOWN_DIFFERENCES",
                (KNOWN_DIFFERENCES[k].0, KNOWN_DIFFERENCES[k].1)
            ));
        }
    }
    println!(
        "{report}total: {total_matched}/{total_rows} Zeek exchanges match in every compared field (floor {MIN_MATCHING})"
    );
    assert!(
        unexplained.is_empty(),
        "unexplained differences from Zeek:\n{}",
        unexplained.join("\n")
    );
    assert!(
        total_matched >= MIN_MATCHING,
        "only {total_matched} Zeek rows match; at least {MIN_MATCHING} did before"
    );
}
