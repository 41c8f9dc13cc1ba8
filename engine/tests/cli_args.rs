//! The command line behaves like one, on the built binary: `--help` lists every flag of the
//! settings table, and unknown flags, repeated flags, flags that cannot go together, missing
//! and stray values exit 2 with a message that names exactly what is wrong; `-p8080`,
//! `--ports=8080` and `--flag=false` work.

use std::path::PathBuf;
use std::process::{Command, Output};

use tcp_sniffer_settings::{Surface, TABLE};

fn demo() -> String {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../tests/data/demo.pcap")
        .to_string_lossy()
        .into_owned()
}

fn run(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_tcp-sniffer"))
        .args(args)
        .env_remove("NODE_ENV")
        .env_remove("OUTPUT_URL_AUTH_TOKEN")
        .output()
        .expect("run tcp-sniffer")
}

/// Runs `args`, expects exit 2, nothing on stdout, and returns stderr.
fn usage_error(args: &[&str]) -> String {
    let out = run(args);
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
    assert!(out.stdout.is_empty(), "{args:?}: stdout not empty");
    err
}

/// Messages on stdout of a successful run.
fn messages(args: &[&str]) -> usize {
    let out = run(args);
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap().lines().count()
}

#[test]
fn help_lists_every_flag_of_the_table() {
    for h in ["--help", "-h"] {
        let out = run(&[h]);
        assert_eq!(out.status.code(), Some(0));
        let text = String::from_utf8(out.stdout).unwrap();
        for row in TABLE {
            if let Some(f) = row.flag {
                assert!(text.contains(&format!("--{}", f.long)), "{h}: --{}", f.long);
                if let Some(c) = f.short {
                    assert!(text.contains(&format!("-{c}, --{}", f.long)), "{h}: -{c}");
                }
            }
        }
        // The rules between settings, from the table's rows, on both flags of each rule.
        for row in TABLE.iter().filter(|r| r.flag.is_some()) {
            for rule in tcp_sniffer_settings::docs::rules(row, |r| r.name_on(Surface::Cli)) {
                let rule = tcp_sniffer_settings::docs::plain(&rule);
                assert!(text.contains(&rule[1..]), "{h}: {}: {rule}", row.key);
            }
        }
        assert!(
            text.contains("Cannot be given with --interface or --backend"),
            "{h}"
        );
        assert!(text.contains("Needed by --output-format otlp"), "{h}");
        for extra in [
            "--stats",
            "--version",
            "OUTPUT_URL_AUTH_TOKEN",
            "Exit codes",
        ] {
            assert!(text.contains(extra), "{h}: {extra}");
        }
    }
    let out = run(&["--version"]);
    assert_eq!(out.status.code(), Some(0));
    assert!(String::from_utf8(out.stdout)
        .unwrap()
        .starts_with("tcp-sniffer "));
}

#[test]
fn unknown_flags_are_named() {
    let d = demo();
    let err = usage_error(&["--read", &d, "-p", "8080", "--frobnicate"]);
    assert!(err.contains("unexpected argument '--frobnicate'"), "{err}");
    // Even where a value could follow.
    let err = usage_error(&["--frobnicate", "x", "--read", &d, "-p", "8080"]);
    assert!(err.contains("'--frobnicate'"), "{err}");
    // A near miss gets a suggestion.
    let err = usage_error(&["--read", &d, "-p", "8080", "--max-body-sise", "1"]);
    assert!(err.contains("--max-body-size"), "{err}");
    let err = usage_error(&["--read", &d, "-p", "8080", "stray"]);
    assert!(err.contains("unexpected argument 'stray'"), "{err}");
    // The token is never a flag.
    let err = usage_error(&["--read", &d, "-p", "8080", "--output-url-auth-token", "t"]);
    assert!(err.contains("'--output-url-auth-token'"), "{err}");
}

#[test]
fn attached_and_inline_values() {
    let d = demo();
    assert_eq!(messages(&["-p8080", "--read", &d]), 10);
    assert_eq!(messages(&["--ports=8080", &format!("-r{d}")]), 10);
    assert_eq!(messages(&["-p", "8080", "--read", &d, "--stdout=true"]), 10);
    assert_eq!(messages(&["-p", "8080", "--read", &d, "--stdout"]), 10);
    assert_eq!(messages(&["-p", "8080", "--read", &d, "--stdout=false"]), 0);
    // A boolean flag takes its value only after `=`.
    let err = usage_error(&["-p", "8080", "--read", &d, "--stdout", "false"]);
    assert!(err.contains("unexpected argument 'false'"), "{err}");
}

#[test]
fn repeated_single_valued_flags_are_refused() {
    let d = demo();
    let err = usage_error(&["-p", "8080", "-p", "80", "--read", &d]);
    assert!(
        err.contains("'--ports <LIST>' cannot be used multiple times"),
        "{err}"
    );
    let err = usage_error(&["-p", "8080", "--ports=80", "--read", &d]);
    assert!(err.contains("--ports"), "{err}");
    let err = usage_error(&["-p", "8080", "--read", &d, "--stdout", "--stdout=false"]);
    assert!(err.contains("'--stdout"), "{err}");
    let err = usage_error(&["-p", "80", "--read", &d, "--read", &d]);
    assert!(
        err.contains("'--read <FILE>' cannot be used multiple times"),
        "{err}"
    );
}

#[test]
fn read_conflicts_with_live_capture_flags() {
    let d = demo();
    let err = usage_error(&["--read", &d, "-i", "eth0", "-p", "80"]);
    assert!(
        err.contains("'--read <FILE>' cannot be used with '--interface <NAME>'"),
        "{err}"
    );
    let err = usage_error(&["-i", "lo", "--read", &d, "-p", "80"]);
    assert!(
        err.contains("--read") && err.contains("--interface"),
        "{err}"
    );
    let err = usage_error(&["--read", &d, "--backend", "pcap", "-p", "80"]);
    assert!(err.contains("--read") && err.contains("--backend"), "{err}");
}

#[test]
fn missing_and_invalid_values_name_the_flag() {
    let d = demo();
    let err = usage_error(&["--read", &d, "-p"]);
    assert!(
        err.contains("a value is required for '--ports <LIST>'"),
        "{err}"
    );
    let err = usage_error(&["--read", &d]);
    assert!(err.contains("invalid setting --ports: required"), "{err}");
    let err = usage_error(&["--read", &d, "-p", "0"]);
    assert!(
        err.contains("invalid setting --ports: each port must be 1-65535"),
        "{err}"
    );
    let err = usage_error(&["--read", &d, "-p", "80", "--max-body-size", "99999999"]);
    assert!(
        err.contains("invalid setting --max-body-size: expected an integer from 0 to 16777216"),
        "{err}"
    );
    let err = usage_error(&["--read", &d, "-p", "80", "--log-level", "trace"]);
    assert!(
        err.contains("invalid setting --log-level: expected one of \"error\", \"warn\", \"info\", \"debug\", got \"trace\""),
        "{err}"
    );
    let err = usage_error(&["--read", &d, "-p", "80", "--stdout-bodies=maybe"]);
    assert!(err.contains("invalid setting --stdout-bodies"), "{err}");
}
