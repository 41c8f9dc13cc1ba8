//! Runs llhttp's HTTP/1 conformance cases (`../shared/corpus/llhttp/`)
//! through [`HttpConnection`] and compares message boundaries.
//!
//! Each case's ```` ```http ```` input is fed in one `data()` call: request
//! cases from the client side; response cases from the server side after
//! synthetic pending requests on the client side (`HEAD` when the case's
//! meta says `skipBody`, so framing matches). Compared with the ```` ```log ````:
//!
//! * the messages llhttp completes (`message complete`) against the complete
//!   messages we emit while data is fed: count, method and URL or status
//!   code, body length (sum of the `span[body]` lengths);
//! * whether llhttp reports an error against whether we count a parse error
//!   (or detect non-HTTP). llhttp's "Pause on CONNECT/Upgrade" is not an
//!   error: it ends HTTP parsing, as our tunnel handling does.
//! * `*-finish` cases call `fin()`: `finish=2` (unsafe to finish) must match
//!   an incomplete message or a discarded partial head.
//!
//! Cases that use one of llhttp's lenient modes run too; when they differ they
//! are skipped with the lenient flag as reason. Other differences are
//! deliberate and listed in [`KNOWN`] with their reason. The test prints a
//! summary and fails if any case that is not skipped fails.

use std::collections::BTreeMap;
use std::fs;
use std::net::{IpAddr, Ipv4Addr};
use std::path::{Path, PathBuf};

use tcp_sniffer::http::{HttpConfig, HttpConnection, HttpStats};
use tcp_sniffer::message::{ConnMeta, Direction, Endpoint, HttpMessage, MessageKind, Side};
use tcp_sniffer::time::Timestamp;

const R_CLOSE: &str =
    "deliberate: bytes after `Connection: close` are still parsed (llhttp: error)";
const R_PARTIAL_HEAD: &str =
    "input ends inside the head: a head is judged once complete (llhttp fails while streaming)";
const R_METHOD: &str =
    "deliberate: any token is a method (RFC 9110 §9.1); llhttp knows a fixed list per protocol";
const R_LF: &str =
    "deliberate: bare LF line ends accepted in heads (httparse; RFC 9112 §2.2 permits it)";
const R_PROTO: &str = "deliberate: RTSP/ICE and HTTP/0.9 are not HTTP/1.x: a parse error here";
const R_PRI: &str = "`PRI * HTTP/1.1` is parsed as a request; only the HTTP/2 preface (`PRI * HTTP/2.0`) is detected";
const R_CHUNK: &str =
    "deliberate: lenient chunk-size lines (whitespace, empty or unbalanced extensions ignored, as hyper)";
const R_UTF8: &str = "deliberate: UTF-8 in the request-target accepted (httparse)";
const R_OBS_FOLD: &str =
    "deliberate: obsolete line folding in requests replaced by SP (RFC 9112 §5.2 allows it; llhttp: error)";
const R_SPACE_TARGET: &str =
    "deliberate: a request-target with spaces (`TOKEN SP target SP HTTP/1.x`) accepted, as real servers do";
const R_FINISH_CB: &str =
    "llhttp harness: finish=1 comes from its callback; we emit the empty close-delimited response at FIN";

/// Deliberate differences: (file, case heading, reason).
const KNOWN: &[(&str, &str, &str)] = &[
    (
        "request/connection.md",
        "No restart when keep-alive is off (1.0)",
        R_CLOSE,
    ),
    (
        "request/connection.md",
        "CRLF between requests, explicit `close`",
        R_CLOSE,
    ),
    (
        "request/connection.md",
        "CRLF between requests, explicit `close` followed by tab",
        R_CLOSE,
    ),
    (
        "response/connection.md",
        "HTTP/1.1 with keep-alive disabled and 204 status",
        R_CLOSE,
    ),
    (
        "request/content-length.md",
        "Error on `Content-Length` overflow",
        R_PARTIAL_HEAD,
    ),
    (
        "request/content-length.md",
        "Error on duplicate `Content-Length`",
        R_PARTIAL_HEAD,
    ),
    (
        "request/invalid.md",
        "HTTP protocol and ANNOUNCE method",
        R_METHOD,
    ),
    ("request/invalid.md", "Invalid method", R_METHOD),
    ("request/invalid.md", "Headers separated by LF", R_LF),
    ("request/invalid.md", "Empty headers separated by LF", R_LF),
    ("request/invalid.md", "Missing CR between headers", R_LF),
    ("response/invalid.md", "Only LFs present and no body", R_LF),
    ("response/invalid.md", "Only LFs present", R_LF),
    ("response/sample.md", "No carriage ret", R_LF),
    ("request/method.md", "SOURCE request with ICE", R_PROTO),
    ("request/method.md", "OPTIONS request with RTSP", R_PROTO),
    ("request/method.md", "ANNOUNCE request with RTSP", R_PROTO),
    ("response/sample.md", "RTSP response", R_PROTO),
    ("response/sample.md", "ICE response", R_PROTO),
    ("response/sample.md", "HTTP version 0.9", R_PROTO),
    ("request/sample.md", "No HTTP version", R_PROTO),
    ("request/method.md", "PRI request HTTP2", R_PRI),
    (
        "request/transfer-encoding.md",
        "No extension after semicolon",
        R_CHUNK,
    ),
    (
        "request/transfer-encoding.md",
        "Unbalanced chunk extensions quoting",
        R_CHUNK,
    ),
    (
        "request/transfer-encoding.md",
        "Space after chunk header",
        R_CHUNK,
    ),
    (
        "response/transfer-encoding.md",
        "Trailing space on chunked body",
        R_CHUNK,
    ),
    (
        "response/transfer-encoding.md",
        "No extension after semicolon",
        R_CHUNK,
    ),
    (
        "response/transfer-encoding.md",
        "Unbalanced chunk extensions quoting",
        R_CHUNK,
    ),
    (
        "request/uri.md",
        "Disallow UTF-8 in URI path in strict mode",
        R_UTF8,
    ),
    (
        "response/finish.md",
        "It should be safe to finish with cb after empty response",
        R_FINISH_CB,
    ),
    ("request/invalid.md", "Spaces before headers", R_OBS_FOLD),
    (
        "request/sample.md",
        "Line folding in header value with LF",
        R_OBS_FOLD,
    ),
    ("request/uri.md", "Space in URI", R_SPACE_TARGET),
];

#[derive(Debug)]
struct Case {
    file: String,
    name: String,
    kind: String,
    skip_body: bool,
    input: Vec<u8>,
    log: Vec<String>,
}

#[derive(Debug, PartialEq, Clone)]
struct Msg {
    what: String,
    body_len: u64,
}

#[derive(Debug, PartialEq)]
struct Outcome {
    messages: Vec<Msg>,
    error: bool,
}

/// `../shared/corpus/llhttp` from the project root (`LLHTTP_CORPUS_DIR` overrides).
fn corpus_dir() -> PathBuf {
    match std::env::var_os("LLHTTP_CORPUS_DIR") {
        Some(d) => PathBuf::from(d),
        None => Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/corpus/llhttp"),
    }
}

/// Undoes the corpus escapes: `\r`, `\n`, `\t`, `\f`, `\xNN`, `\\`, `\"`.
fn unescape(s: &str) -> Vec<u8> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\' && i + 1 < b.len() {
            let hex = |h: &[u8]| {
                std::str::from_utf8(h)
                    .ok()
                    .and_then(|h| u8::from_str_radix(h, 16).ok())
            };
            match b[i + 1] {
                b'r' => out.push(b'\r'),
                b'n' => out.push(b'\n'),
                b't' => out.push(b'\t'),
                b'f' => out.push(0x0c),
                b'\\' => out.push(b'\\'),
                b'"' => out.push(b'"'),
                b'x' if i + 4 <= b.len() && hex(&b[i + 2..i + 4]).is_some() => {
                    out.push(hex(&b[i + 2..i + 4]).unwrap_or(0));
                    i += 4;
                    continue;
                }
                _ => {
                    out.push(b'\\');
                    i += 1;
                    continue;
                }
            }
            i += 2;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    out
}

/// The input block: lines joined with CRLF, a trailing `\` joins with nothing.
fn input_bytes(lines: &[&str]) -> Vec<u8> {
    let mut text = String::new();
    for (k, line) in lines.iter().enumerate() {
        if let Some(joined) = line.strip_suffix('\\') {
            text.push_str(joined);
        } else {
            text.push_str(line);
            if k + 1 < lines.len() {
                text.push_str("\r\n");
            }
        }
    }
    unescape(&text)
}

fn parse_file(path: &Path) -> Vec<Case> {
    let text = fs::read_to_string(path).expect("corpus file");
    let file = format!(
        "{}/{}",
        path.parent()
            .and_then(|p| p.file_name())
            .and_then(|n| n.to_str())
            .unwrap_or(""),
        path.file_name().and_then(|n| n.to_str()).unwrap_or("")
    );
    let lines: Vec<&str> = text.lines().collect();
    let mut cases = Vec::new();
    let mut heading = String::new();
    let mut i = 0;
    while i < lines.len() {
        let line = lines[i];
        if let Some(h) = line
            .strip_prefix("### ")
            .or_else(|| line.strip_prefix("## "))
        {
            heading = h.trim().to_owned();
        }
        if let Some(meta) = line
            .trim()
            .strip_prefix("<!-- meta=")
            .and_then(|m| m.strip_suffix(" -->"))
        {
            let meta: serde_json::Value = serde_json::from_str(meta).expect("meta json");
            let kind = meta["type"].as_str().unwrap_or("").to_owned();
            let skip_body = meta["skipBody"].as_bool().unwrap_or(false);
            // ```http block
            let mut j = i + 1;
            while j < lines.len() && !lines[j].starts_with("```http") {
                j += 1;
            }
            let start = j + 1;
            let mut end = start;
            while end < lines.len() && lines[end] != "```" {
                end += 1;
            }
            let input = input_bytes(&lines[start..end.min(lines.len())]);
            // ```log block
            let mut k = end + 1;
            while k < lines.len() && !lines[k].starts_with("```log") {
                k += 1;
            }
            let lstart = k + 1;
            let mut lend = lstart;
            while lend < lines.len() && lines[lend] != "```" {
                lend += 1;
            }
            let log = lines[lstart.min(lines.len())..lend.min(lines.len())]
                .iter()
                .map(|s| s.to_string())
                .collect();
            cases.push(Case {
                file: file.clone(),
                name: heading.clone(),
                kind,
                skip_body,
                input,
                log,
            });
            i = lend;
        }
        i += 1;
    }
    cases
}

/// What llhttp says: completed messages, and whether it reported an error.
fn expected(case: &Case) -> Outcome {
    let mut messages = Vec::new();
    let mut error = false;
    let (mut method, mut url, mut status, mut body) = (Vec::new(), Vec::new(), String::new(), 0u64);
    for line in &case.log {
        let rest = line.split_once(' ').map(|(_, r)| r).unwrap_or("");
        if rest == "message begin" {
            method.clear();
            url.clear();
            status.clear();
            body = 0;
        } else if let Some(span) = rest.strip_prefix("len=") {
            let (len, tail) = span.split_once(' ').unwrap_or(("0", ""));
            let value = tail
                .split_once("=\"")
                .map(|(_, v)| v.strip_suffix('"').unwrap_or(v))
                .unwrap_or("");
            if tail.starts_with("span[method]") {
                method.extend(unescape(value));
            } else if tail.starts_with("span[url]") {
                url.extend(unescape(value));
            } else if tail.starts_with("span[body]") {
                body += len.parse::<u64>().unwrap_or(0);
            }
        } else if let Some(h) = rest.strip_prefix("headers complete ") {
            if let Some(s) = h.split(' ').find_map(|f| f.strip_prefix("status=")) {
                status = s.to_owned();
            }
        } else if rest == "message complete" {
            let what = if case.kind.starts_with("request") {
                format!(
                    "{} {}",
                    String::from_utf8_lossy(&method),
                    String::from_utf8_lossy(&url)
                )
            } else {
                status.clone()
            };
            messages.push(Msg {
                what,
                body_len: body,
            });
        } else if let Some(e) = rest.strip_prefix("error code=") {
            // 22 and 23: paused on CONNECT/Upgrade/PRI, not an error.
            let code = e.split(' ').next().unwrap_or("");
            if code != "22" && code != "23" {
                error = true;
            }
        } else if let Some(f) = rest.strip_prefix("finish=") {
            if f != "0" {
                error = true;
            }
        }
    }
    Outcome { messages, error }
}

fn meta() -> ConnMeta {
    ConnMeta {
        id: 1,
        client: Endpoint {
            ip: IpAddr::V4(Ipv4Addr::LOCALHOST),
            port: 50000,
        },
        server: Endpoint {
            ip: IpAddr::V4(Ipv4Addr::LOCALHOST),
            port: 80,
        },
        direction: Direction::Unknown,
        mid_stream: false,
    }
}

fn describe(m: &HttpMessage) -> Msg {
    let what = match &m.kind {
        MessageKind::Request { method, url } => format!("{method} {url}"),
        MessageKind::Response { status_code, .. } => status_code.to_string(),
    };
    Msg {
        what,
        body_len: m.body_size,
    }
}

/// What we say.
fn actual(case: &Case) -> Outcome {
    let cfg = HttpConfig::default();
    let mut stats = HttpStats::default();
    let mut out = Vec::new();
    let mut conn = HttpConnection::new(&meta());
    let is_request = case.kind.starts_with("request");
    let side = if is_request {
        Side::Client
    } else {
        Side::Server
    };
    if !is_request {
        let req: &[u8] = if case.skip_body {
            b"HEAD / HTTP/1.1\r\n\r\n"
        } else {
            b"GET / HTTP/1.1\r\n\r\n"
        };
        for _ in 0..16 {
            conn.data(Side::Client, req, Timestamp(0), &cfg, &mut stats, &mut out);
        }
        out.clear();
    }
    conn.data(side, &case.input, Timestamp(1), &cfg, &mut stats, &mut out);
    let mut error = stats.parse_errors() > 0
        || stats.non_http_tls + stats.non_http_http2 + stats.non_http_other > 0
        || out.iter().any(|m| m.incomplete);
    if case.kind.ends_with("-finish") {
        let skipped = stats.skipped_bytes;
        let n = out.len();
        conn.fin(side, Timestamp(2), &cfg, &mut stats, &mut out);
        error |= stats.skipped_bytes > skipped || out[n..].iter().any(|m| m.incomplete);
    }
    let messages = out
        .iter()
        .filter(|m| !m.incomplete && (is_request == matches!(m.kind, MessageKind::Request { .. })))
        .map(describe)
        .collect();
    Outcome { messages, error }
}

#[test]
fn llhttp_conformance_corpus() {
    let dir = corpus_dir();
    let mut cases = Vec::new();
    for sub in ["request", "response"] {
        let mut files: Vec<PathBuf> = fs::read_dir(dir.join(sub))
            .expect("corpus directory")
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "md"))
            .collect();
        files.sort();
        for f in files {
            cases.extend(parse_file(&f));
        }
    }
    assert!(
        cases.len() > 100,
        "corpus not found or not parsed: {} cases",
        cases.len()
    );

    let mut passed = 0;
    let mut skipped: BTreeMap<String, usize> = BTreeMap::new();
    let mut failed = Vec::new();
    let mut known_used = vec![false; KNOWN.len()];
    for case in &cases {
        if case.skip_body && case.kind.starts_with("request") {
            *skipped
                .entry("llhttp `skipBody` callback on a request (no wire equivalent)".to_owned())
                .or_default() += 1;
            continue;
        }
        let want = expected(case);
        let got = actual(case);
        // llhttp stops at its first error; we resynchronise and may find more
        // messages after it. Those before the error must match.
        let agree = if want.error {
            got.error && got.messages.get(..want.messages.len()) == Some(&want.messages[..])
        } else {
            want == got
        };
        if agree {
            passed += 1;
            continue;
        }
        let base = case.kind.trim_end_matches("-finish");
        if let Some(flag) = base
            .strip_prefix("request-")
            .or_else(|| base.strip_prefix("response-"))
        {
            *skipped
                .entry(format!("llhttp lenient mode `{flag}`"))
                .or_default() += 1;
            continue;
        }
        if let Some(k) = KNOWN
            .iter()
            .position(|(f, n, _)| *f == case.file && *n == case.name)
        {
            known_used[k] = true;
            *skipped.entry(KNOWN[k].2.to_owned()).or_default() += 1;
            continue;
        }
        failed.push(format!(
            "{} / {}: expected {:?}, got {:?}\n    input {:?}",
            case.file,
            case.name,
            want,
            got,
            String::from_utf8_lossy(&case.input)
        ));
    }
    println!(
        "llhttp corpus: {} cases, {passed} passed, {} skipped, {} failed",
        cases.len(),
        skipped.values().sum::<usize>(),
        failed.len()
    );
    for (reason, n) in &skipped {
        println!("  skipped {n:3}: {reason}");
    }
    for f in &failed {
        println!("  FAILED {f}");
    }
    for (k, used) in known_used.iter().enumerate() {
        if !used {
            println!("  note: known difference no longer needed: {:?}", KNOWN[k]);
        }
    }
    assert!(failed.is_empty(), "{} llhttp cases failed", failed.len());
}
