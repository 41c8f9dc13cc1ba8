//! The webhook's validators against the sidecar's settings table (`tcp-sniffer-settings`):
//! whatever annotation values a pod carries, every setting the webhook writes into the
//! sidecar's env is one the table knows and holds a value the table's parser (the sidecar's
//! own validation) accepts, so an injected sidecar never exits 2 on its settings. Real
//! AdmissionReview envelopes, the patch applied, the result read as a typed Pod.

mod common;

use common::*;
use serde_json::{json, Value};
use tcp_sniffer_settings::table;
use tcp_sniffer_settings::value::RawValue;
use tcp_sniffer_webhook::mutate::{review_body, VALUE_ANNOTATIONS};
use tcp_sniffer_webhook::settings::InjectSettings;

/// Env the sidecar gets that is not a setting of the table: placement from the downward API.
const NOT_SETTINGS: [&str; 4] = ["POD_NAME", "POD_NAMESPACE", "NODE_NAME", "POD_IP"];

/// The sidecar's env (name → literal value, `None` for a reference) for a pod with these
/// annotations, or `None` when it was not injected.
fn sidecar_env(annotations: Value, s: &InjectSettings) -> Option<Vec<(String, Option<String>)>> {
    let mut pod = fixture("pods/several-containers.json");
    pod["metadata"]["annotations"] = annotations;
    let body = serde_json::to_vec(&review_for(&pod)).unwrap();
    let d = review_body(&body, s).unwrap();
    let v: Value = serde_json::from_slice(&d.to_json().unwrap()).unwrap();
    let resp = response_of(&v, "3f1c2b7e-8d4a-4c55-9a0e-1b2c3d4e5f60");
    let spec = as_pod(&apply(&resp, &pod)?).spec.unwrap();
    let sidecar = spec
        .containers
        .iter()
        .chain(spec.init_containers.iter().flatten())
        .find(|c| c.name == "tcp-sniffer")?
        .clone();
    Some(
        sidecar
            .env
            .unwrap_or_default()
            .into_iter()
            .map(|e| (e.name, e.value))
            .collect(),
    )
}

/// Values to try per annotation: valid ones, edge cases, and ones only one side might accept.
fn samples(annotation: &str) -> &'static [&'static str] {
    match annotation.trim_start_matches("tcp-sniffer.dev/") {
        "ports" => &[
            "8080", "80, 443", "1,65535", "0", "65536", "80,80", "80,,81", "1e3", "x",
        ],
        "interface" => &[
            "any",
            "eth0",
            "veth1234567890a",
            "eth0:1",
            "a/b",
            "0123456789abcdef",
            ".",
            "",
        ],
        "output-url" => &[
            "https://collector.example/in",
            "http://127.0.0.1:9000/x",
            "http://[::1]:9/x",
            "http://collector.example/in",
            "ftp://x/",
            "https:///nohost",
            "https://a b/",
            "collector:8080",
        ],
        "sample-rate" => &["1", "0.5", "0.50", "1e-3", "0", "1.5", "NaN", "inf", "-0.1"],
        "max-body-size" => &["0", "65536", "16777216", "16777217", "-1", "1.5", "64k"],
        "redact-headers" => &[
            "x-a",
            "X-A, x-b",
            "none",
            "x,none",
            "bad header",
            "caf\u{e9}",
            " , ",
        ],
        "log-bodies" => &["true", "false", "TRUE", "yes", "1", ""],
        "log-level" => &["debug", "DEBUG", " info ", "trace", "info,debug", ""],
        _ => &["true", "false", "x"],
    }
}

#[test]
fn every_env_value_the_webhook_writes_is_one_the_sidecar_accepts() {
    let defaults = InjectSettings::with_image("tcp-sniffer:test");
    let mut checked = 0;
    for annotation in VALUE_ANNOTATIONS {
        for value in samples(annotation) {
            let Some(env) = sidecar_env(json!({ annotation: value }), &defaults) else {
                continue;
            };
            for (name, literal) in &env {
                if NOT_SETTINGS.contains(&name.as_str()) {
                    continue;
                }
                let row = table::by_env(name).unwrap_or_else(|| {
                    panic!("the webhook writes {name}, which is not a sidecar setting")
                });
                let Some(v) = literal else { continue };
                if let Err(e) = row.parse(&RawValue::Text(v.clone())) {
                    panic!("{annotation}={value:?}: the webhook writes {name}={v:?}, which the sidecar refuses: {e}");
                }
                checked += 1;
            }
        }
    }
    assert!(checked > 100, "only {checked} values checked");
}

#[test]
fn what_the_sidecar_refuses_the_webhook_refuses() {
    use tcp_sniffer_webhook::values;
    for row_and_check in [
        (&table::PORTS, values::ports("80,80").is_err()),
        (&table::INTERFACE, values::interface("eth0:1").is_err()),
        (
            &table::MAX_BODY_SIZE,
            values::max_body_size("16777217").is_err(),
        ),
        (&table::SAMPLE_RATE, values::sample_rate("0").is_err()),
        (&table::LOG_LEVEL, values::log_level("trace").is_err()),
    ] {
        assert!(row_and_check.1, "{}", row_and_check.0.key);
    }
    // The sidecar refuses a remote cleartext URL (ALLOW_INSECURE_OUTPUT_URL is not injected).
    assert!(values::output_url("http://collector.example/in").is_err());
    // The webhook's own defaults for the sidecar are the table's.
    let s = InjectSettings::with_image("x");
    assert_eq!(s.interface, table::INTERFACE.default_text());
    assert_eq!(s.sample_rate, table::SAMPLE_RATE.default_text());
    assert_eq!(
        s.max_body_size.to_string(),
        table::MAX_BODY_SIZE.default_text()
    );
}
