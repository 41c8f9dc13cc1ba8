//! The per-pod privacy and logging annotations (SPEC.md "Injector"): `redact-headers`
//! (→ `REDACT_HEADERS`, added to the defaults), `log-bodies` (`"true"` → `STDOUT_BODIES=true`)
//! and `log-level` (→ `LOG_LEVEL`). Valid values reach the sidecar's env; an invalid value
//! gives an allowed answer with a warning naming the annotation, and is not passed on.
//! Real AdmissionReview envelopes, the patch applied, the result read as a typed Pod.

mod common;

use common::*;
use serde_json::{json, Value};
use tcp_sniffer_webhook::mutate::{review_body, Verdict};
use tcp_sniffer_webhook::settings::InjectSettings;

const UID: &str = "3f1c2b7e-8d4a-4c55-9a0e-1b2c3d4e5f60";

fn pod_with(annotations: Value) -> Value {
    let mut pod = fixture("pods/several-containers.json");
    pod["metadata"]["annotations"] = annotations;
    pod
}

/// (sidecar env as name → value, warnings) for a pod with these annotations.
fn run(annotations: Value) -> (Vec<(String, Option<String>)>, Vec<String>) {
    let pod = pod_with(annotations);
    let body = serde_json::to_vec(&review_for(&pod)).unwrap();
    let mut first = None;
    for native in [true, false] {
        let s = InjectSettings {
            native_sidecar: native,
            ..InjectSettings::with_image("tcp-sniffer:test")
        };
        let d = review_body(&body, &s).unwrap();
        assert_eq!(d.verdict, Verdict::Injected);
        let v: Value = serde_json::from_slice(&d.to_json().unwrap()).unwrap();
        let resp = response_of(&v, UID);
        let spec = as_pod(&apply(&resp, &pod).unwrap()).spec.unwrap();
        let sidecar = spec
            .containers
            .iter()
            .chain(spec.init_containers.iter().flatten())
            .find(|c| c.name == "tcp-sniffer")
            .unwrap()
            .clone();
        let env = sidecar
            .env
            .unwrap()
            .into_iter()
            .map(|e| (e.name, e.value))
            .collect::<Vec<_>>();
        let warnings = resp["warnings"]
            .as_array()
            .map(|a| a.iter().map(|w| w.as_str().unwrap().to_string()).collect())
            .unwrap_or_default();
        // The same values in native and plain mode.
        match &first {
            None => first = Some((env, warnings)),
            Some(f) => assert_eq!(f, &(env, warnings)),
        }
    }
    first.unwrap()
}

fn get<'a>(env: &'a [(String, Option<String>)], name: &str) -> Option<&'a str> {
    env.iter()
        .find(|(n, _)| n == name)
        .and_then(|(_, v)| v.as_deref())
}

#[test]
fn valid_annotations_reach_the_sidecar() {
    let (env, warnings) = run(json!({
        "tcp-sniffer.dev/redact-headers": "X-Session-Token, x-tenant",
        "tcp-sniffer.dev/log-bodies": "true",
        "tcp-sniffer.dev/log-level": "DEBUG",
    }));
    assert!(warnings.is_empty(), "{warnings:?}");
    assert_eq!(
        get(&env, "REDACT_HEADERS"),
        Some("authorization,proxy-authorization,cookie,set-cookie,x-api-key,x-auth-token,x-session-token,x-tenant")
    );
    assert_eq!(get(&env, "STDOUT_BODIES"), Some("true"));
    assert_eq!(get(&env, "LOG_LEVEL"), Some("debug"));
}

#[test]
fn absent_or_false_annotations_add_nothing() {
    let (env, warnings) = run(json!({"tcp-sniffer.dev/log-bodies": "false"}));
    assert!(warnings.is_empty());
    for name in ["REDACT_HEADERS", "STDOUT_BODIES", "LOG_LEVEL"] {
        assert!(get(&env, name).is_none(), "{name} in {env:?}");
    }
}

#[test]
fn invalid_values_warn_and_are_not_applied() {
    for (key, value) in [
        ("tcp-sniffer.dev/redact-headers", "x-ok, not a header"),
        ("tcp-sniffer.dev/redact-headers", ""),
        ("tcp-sniffer.dev/redact-headers", "none"),
        ("tcp-sniffer.dev/log-bodies", "yes"),
        ("tcp-sniffer.dev/log-bodies", "1"),
        ("tcp-sniffer.dev/log-level", "trace"),
        ("tcp-sniffer.dev/log-level", "info,debug"),
    ] {
        let (env, warnings) = run(json!({ key: value }));
        assert_eq!(warnings.len(), 1, "{key}={value:?}: {warnings:?}");
        assert!(warnings[0].contains(key), "{}", warnings[0]);
        for name in ["REDACT_HEADERS", "STDOUT_BODIES", "LOG_LEVEL"] {
            assert!(get(&env, name).is_none(), "{key}={value:?}: {name} set");
        }
    }
}
