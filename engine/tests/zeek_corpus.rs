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
const KNOWN_DIFFERENCES: &[(&str, &str)] = &[];

/// Ports for captures that have no http.log to take them from.
const DEFAULT_PORTS: &str = "80,81,1080,3128,8000,8001,8080,8240,8888";

#[derive(Debug, Default, Clone, PartialEq)]
struct Exchange {
    method: Option<String>,
    uri: Option<String>,
    status: Option<u64>,
    request_body_len: Option<u64>,
    response_body_len: Option<u64>,
}

type Key = (String, u64, String, u64, u64);

fn parse_http_log(text: &str) -> BTreeMap<Key, Exchange> {
    let mut fields: Vec<&str> = Vec::new();
    let mut rows = BTreeMap::new();
    for line in text.lines() {
        if let Some(f) = line.strip_prefix("#fields\t") {
            fields = f.split('\t').collect();
            continue;
        }
        if line.starts_with('#') || line.is_empty() {
            continue;
        }
        let cols: Vec<&str> = line.split('\t').collect();
        let get = |name: &str| -> Option<String> {
            let i = fields.iter().position(|f| *f == name)?;
            let v = cols.get(i)?;
            (*v != "-").then(|| v.to_string())
        };
        let num = |name: &str| get(name).and_then(|v| v.parse::<u64>().ok());
        let key = (
            get("id.orig_h").unwrap(),
            num("id.orig_p").unwrap(),
            get("id.resp_h").unwrap(),
            num("id.resp_p").unwrap(),
            num("trans_depth").unwrap_or(1) - 1,
        );
        rows.insert(
            key,
            Exchange {
                method: get("method"),
                uri: get("uri"),
                status: num("status_code"),
                request_body_len: num("request_body_len"),
                response_body_len: num("response_body_len"),
            },
        );
    }
    rows
}

/// tcp-sniffer's messages folded into exchanges like Zeek's rows.
fn exchanges(msgs: &[Value]) -> BTreeMap<Key, Exchange> {
    let mut out: BTreeMap<Key, Exchange> = BTreeMap::new();
    for m in msgs {
        let is_req = m["type"] == "request";
        let (client, server) = if is_req {
            (&m["source"], &m["destination"])
        } else {
            (&m["destination"], &m["source"])
        };
        let key = (
            client["ip"].as_str().unwrap().to_string(),
            client["port"].as_u64().unwrap(),
            server["ip"].as_str().unwrap().to_string(),
            server["port"].as_u64().unwrap(),
            m["sequence"].as_u64().unwrap(),
        );
        let e = out.entry(key).or_default();
        if is_req {
            e.method = m["method"].as_str().map(str::to_string);
            e.uri = m["url"].as_str().map(str::to_string);
            e.request_body_len = m["bodySize"].as_u64();
        } else {
            let status = m["statusCode"].as_u64();
            // Zeek logs the final response; interim 1xx go to info_code.
            if status.is_some_and(|s| s >= 200) || e.status.is_none() {
                e.status = status;
                e.response_body_len = m["bodySize"].as_u64();
            }
        }
    }
    out
}

fn ports_of(log: &BTreeMap<Key, Exchange>) -> String {
    let mut ports: Vec<u64> = log.keys().map(|k| k.3).collect();
    ports.sort_unstable();
    ports.dedup();
    ports
        .iter()
        .map(|p| p.to_string())
        .collect::<Vec<_>>()
        .join(",")
}

fn compare(zeek: &BTreeMap<Key, Exchange>, ours: &BTreeMap<Key, Exchange>) -> Vec<String> {
    let mut diffs = Vec::new();
    for (k, z) in zeek {
        let Some(o) = ours.get(k) else {
            diffs.push(format!("missing exchange {k:?}: zeek {z:?}"));
            continue;
        };
        // Zeek's request_body_len is 0 when there is no request body; so is ours.
        let want = Exchange {
            request_body_len: z.request_body_len.or(Some(0)),
            response_body_len: z.response_body_len.or(Some(0)),
            ..z.clone()
        };
        let got = Exchange {
            request_body_len: o.request_body_len.or(Some(0)),
            response_body_len: o.response_body_len.or(Some(0)),
            ..o.clone()
        };
        if want != got {
            diffs.push(format!(
                "exchange {k:?}: zeek {want:?} / tcp-sniffer {got:?}"
            ));
        }
    }
    for k in ours.keys().filter(|k| !zeek.contains_key(*k)) {
        diffs.push(format!("extra exchange {k:?}: tcp-sniffer {:?}", ours[k]));
    }
    diffs
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
            .as_ref()
            .map(ports_of)
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
        let ours = exchanges(&msgs);
        let diffs = compare(&log, &ours);
        let matched = log.len() - diffs.iter().filter(|d| !d.starts_with("extra")).count();
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
