//! The command line's safe defaults, on the built binary: redaction lists (added to the
//! defaults, `none` drops them), query/JSON/form redaction (also of a body cut by
//! `--max-body-size`), `--stdout-bodies`, the cleartext output URL rules, and no credential
//! in any error or log line.
//!
//! `tests/data/secrets.pcap` (written by `scripts/gen-secrets-pcap.py`) holds four exchanges
//! whose every secret value contains `SECRET`.

use std::path::PathBuf;
use std::process::{Command, Output};

use serde_json::Value;

fn secrets_pcap() -> String {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../tests/data/secrets.pcap")
        .to_string_lossy()
        .into_owned()
}

fn run(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_tcp-sniffer"));
    cmd.args(args);
    cmd.env_remove("NODE_ENV")
        .env_remove("OUTPUT_URL_AUTH_TOKEN");
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().expect("run tcp-sniffer")
}

/// Replays the capture with `extra` flags; returns the messages and stdout as text.
fn replay(extra: &[&str]) -> (Vec<Value>, String) {
    let pcap = secrets_pcap();
    let mut args = vec!["--read", pcap.as_str(), "--ports", "8080"];
    args.extend_from_slice(extra);
    let out = run(&args, &[]);
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    let msgs: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(msgs.len(), 8, "{text}");
    (msgs, text)
}

/// Every `SECRET…` value left in `text`, sorted.
fn secrets_in(text: &str) -> Vec<String> {
    let mut found: Vec<String> = text
        .match_indices("SECRET")
        .map(|(i, _)| {
            text[i..]
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '-')
                .collect()
        })
        .collect();
    found.sort();
    found
}

#[test]
fn defaults_redact_headers_query_json_and_form_fields() {
    let (msgs, text) = replay(&[]);
    // Only the two names that are not in any default list are left.
    assert_eq!(
        secrets_in(&text),
        ["SECRET-custom-header", "SECRET-pin-form", "SECRET-pin-json"],
        "{text}"
    );
    let login = &msgs[0];
    assert_eq!(login["url"], "/login?access_token=[REDACTED]&page=2");
    for h in ["authorization", "x-api-key", "cookie"] {
        assert_eq!(login["headers"][h], "[REDACTED]", "{h}");
    }
    let body: Value = serde_json::from_str(login["body"].as_str().unwrap()).unwrap();
    assert_eq!(body["password"], "[REDACTED]");
    assert_eq!(body["profile"]["Token"], "[REDACTED]");
    assert_eq!(body["user"], "bob");
    assert_eq!(login["bodySize"], 99, "bodySize is the wire size");
    let resp: Value = serde_json::from_str(msgs[1]["body"].as_str().unwrap()).unwrap();
    assert_eq!(resp["access_token"], "[REDACTED]");
    assert_eq!(msgs[1]["headers"]["set-cookie"][0], "[REDACTED]");
    assert_eq!(
        msgs[2]["body"],
        "user=bob&password=[REDACTED]&pin=SECRET-pin-form"
    );
    // Nothing to redact: byte for byte.
    assert_eq!(msgs[6]["url"], "/plain?q=ok");
    assert_eq!(msgs[7]["body"], r#"{"hello":"world"}"#);
}

#[test]
fn lists_add_to_the_defaults() {
    let (msgs, text) = replay(&[
        "--redact-headers",
        "X-Custom-Auth",
        "--redact-body-fields",
        "pin",
        "--redact-query-params",
        "page",
    ]);
    assert_eq!(secrets_in(&text), Vec::<String>::new(), "{text}");
    assert_eq!(msgs[0]["headers"]["authorization"], "[REDACTED]");
    assert_eq!(msgs[0]["headers"]["x-custom-auth"], "[REDACTED]");
    assert_eq!(
        msgs[0]["url"],
        "/login?access_token=[REDACTED]&page=[REDACTED]"
    );
    assert_eq!(
        msgs[2]["body"],
        "user=bob&password=[REDACTED]&pin=[REDACTED]"
    );
}

#[test]
fn none_drops_the_defaults() {
    let (msgs, _) = replay(&[
        "--redact-headers",
        "none,x-api-key",
        "--redact-query-params",
        "none",
        "--redact-body-fields",
        "none",
    ]);
    assert_eq!(msgs[0]["headers"]["authorization"], "Bearer SECRET-authz");
    assert_eq!(msgs[0]["headers"]["x-api-key"], "[REDACTED]");
    assert_eq!(msgs[0]["url"], "/login?access_token=SECRET-qs-1&page=2");
    assert!(msgs[0]["body"]
        .as_str()
        .unwrap()
        .contains(r#""password":"SECRET-pw-1""#));
    // A list without `none` first is an error that says so.
    let pcap = secrets_pcap();
    let out = run(
        &[
            "--read",
            &pcap,
            "--ports",
            "8080",
            "--redact-headers",
            "x-a,none",
        ],
        &[],
    );
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("--redact-headers") && err.contains("first"),
        "{err}"
    );
}

#[test]
fn a_json_body_cut_inside_a_secret_is_still_redacted() {
    // The /long body's password value starts at byte 214; 220 cuts it after "SECRET".
    let (msgs, text) = replay(&["--max-body-size", "220"]);
    assert!(!text.contains("SECRET-cut"), "{text}");
    let long = &msgs[4];
    assert_eq!(long["url"], "/long");
    let body = long["body"].as_str().unwrap();
    assert!(body.len() <= 220, "{}", body.len());
    assert!(!body.contains("SECRET"), "{body}");
    assert!(body.contains(r#""password":"[RED"#), "{body}");
    assert_eq!(long["truncated"], true);
    assert_eq!(long["bodySize"], 240);
    // Other cut points too (the value begins at 214 and ends at 240).
    for max in ["215", "230", "239", "241"] {
        let (_, text) = replay(&["--max-body-size", max]);
        assert!(!text.contains("SECRET-cut"), "{max}: {text}");
    }
}

#[test]
fn stdout_bodies_on_by_default_for_the_cli_and_off_on_request() {
    let (with, _) = replay(&[]);
    assert_eq!(with[7]["body"], r#"{"hello":"world"}"#);
    for flag in ["--stdout-bodies=false", "--stdout-bodies=0"] {
        let (without, text) = replay(&[flag]);
        for (m, w) in without.iter().zip(&with) {
            assert_eq!(m["body"], "", "{flag}: {m}");
            assert_eq!(m["bodySize"], w["bodySize"]);
            assert_eq!(m["truncated"], w["truncated"]);
        }
        assert!(!text.contains("hello"), "{text}");
    }
    let (explicit, _) = replay(&["--stdout-bodies"]);
    assert_eq!(explicit[7]["body"], r#"{"hello":"world"}"#);
}

const REMOTE: &str = "http://user:SECRETPW@collector.invalid:9/ingest?key=SECRETQS";
const TOKEN: &str = "SECRET-TOKEN-value";

fn assert_no_credentials(stderr: &str) {
    for s in ["SECRETPW", "SECRETQS", "SECRET-TOKEN", "user:", "/ingest"] {
        assert!(!stderr.contains(s), "{s} in stderr: {stderr}");
    }
}

#[test]
fn a_cleartext_remote_output_url_is_refused_in_production_and_never_logged() {
    let pcap = secrets_pcap();
    let base = [
        "--read",
        pcap.as_str(),
        "--ports",
        "8080",
        "--output-url",
        REMOTE,
    ];
    // NODE_ENV=production refuses it (exit 2) unless --allow-insecure-output-url.
    let out = run(
        &base,
        &[("NODE_ENV", "production"), ("OUTPUT_URL_AUTH_TOKEN", TOKEN)],
    );
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("--output-url") && err.contains("--allow-insecure-output-url"),
        "{err}"
    );
    assert!(err.contains("http://collector.invalid:9"), "{err}");
    assert_no_credentials(&err);
    // An explicit false refuses it without NODE_ENV too.
    let mut args = base.to_vec();
    args.push("--allow-insecure-output-url=false");
    let out = run(&args, &[("OUTPUT_URL_AUTH_TOKEN", TOKEN)]);
    assert_eq!(out.status.code(), Some(2));
    assert_no_credentials(&String::from_utf8_lossy(&out.stderr));
    // Malformed URLs: the error does not echo them either.
    let out = run(
        &[
            "--read",
            &pcap,
            "--ports",
            "8080",
            "--output-url",
            "gopher://user:SECRETPW@x/?SECRETQS",
        ],
        &[],
    );
    assert_eq!(out.status.code(), Some(2));
    assert_no_credentials(&String::from_utf8_lossy(&out.stderr));
}

#[test]
fn a_cleartext_remote_output_url_is_accepted_with_a_warning_outside_production() {
    let pcap = secrets_pcap();
    for extra in [None, Some("--allow-insecure-output-url")] {
        let mut args = vec![
            "--read",
            pcap.as_str(),
            "--ports",
            "8080",
            "--output-url",
            REMOTE,
            "--output-retry-base-ms",
            "1",
            "--output-drain-timeout-ms",
            "1500",
            "--log-level",
            "debug",
        ];
        args.extend(extra);
        let mut env = vec![("OUTPUT_URL_AUTH_TOKEN", TOKEN)];
        if extra.is_some() {
            env.push(("NODE_ENV", "production"));
        }
        let out = run(&args, &env);
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{err}");
        assert!(
            err.contains("\"level\":\"warn\"")
                && err.contains("plain http")
                && err.contains("http://collector.invalid:9"),
            "{err}"
        );
        // Delivery fails (the host does not exist): those log lines carry no credential.
        assert!(err.contains("output URL"), "{err}");
        assert_no_credentials(&err);
        // With an output URL, stdout stays empty.
        assert!(out.stdout.is_empty());
    }
}

#[test]
fn help_lists_the_new_settings() {
    let out = run(&["--help"], &[]);
    let help = String::from_utf8_lossy(&out.stdout);
    for flag in [
        "--redact-query-params",
        "--redact-body-fields",
        "--stdout-bodies",
        "--allow-insecure-output-url",
        "x-auth-token",
        "x-amz-security-token",
        "card_number",
    ] {
        assert!(help.contains(flag), "{flag}");
    }
}
