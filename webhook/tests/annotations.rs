//! The per-pod annotations beyond ports and URL: privacy and logging (`redact-headers` →
//! `REDACT_HEADERS`, added to the defaults; `log-bodies` → `STDOUT_BODIES=true`; `log-level` →
//! `LOG_LEVEL`), output (`output-format` → `OUTPUT_FORMAT`, `output-batch-size` →
//! `OUTPUT_BATCH_SIZE`, `ca-bundle` → a ConfigMap volume and `SSL_CERT_FILE`), the sidecar's
//! resources (`cpu-request`, `cpu-limit`, `memory-request`, `memory-limit`) and its metrics
//! port (`metrics-port` → `METRICS_ADDR` and the container port `metrics`). Valid values reach
//! the sidecar; an invalid value gives an allowed answer with a warning naming the annotation,
//! and is not passed on. Real AdmissionReview envelopes, the patch applied, the result read as
//! a typed Pod.

mod common;

use common::*;
use k8s_openapi::api::core::v1::{Container, Pod};
use serde_json::{json, Value};
use tcp_sniffer_webhook::mutate::{review_body, Verdict};
use tcp_sniffer_webhook::settings::InjectSettings;

const UID: &str = "3f1c2b7e-8d4a-4c55-9a0e-1b2c3d4e5f60";

fn pod_with(annotations: Value) -> Value {
    let mut pod = fixture("pods/several-containers.json");
    pod["metadata"]["annotations"] = annotations;
    pod
}

/// The sidecar's env as (name, value).
type Env = Vec<(String, Option<String>)>;

/// (sidecar env as name → value, warnings) for a pod with these annotations.
fn run(annotations: Value) -> (Env, Vec<String>) {
    let (env, warnings, _) = run_with(annotations, &InjectSettings::with_image("tcp-sniffer:test"));
    (env, warnings)
}

/// [`run`] with these settings (`native_sidecar` is tried both ways), and the patched pod.
fn run_with(annotations: Value, settings: &InjectSettings) -> (Env, Vec<String>, Pod) {
    let pod = pod_with(annotations);
    let body = serde_json::to_vec(&review_for(&pod)).unwrap();
    let mut first = None;
    let mut patched = None;
    for native in [true, false] {
        let s = InjectSettings {
            native_sidecar: native,
            ..settings.clone()
        };
        let d = review_body(&body, &s).unwrap();
        assert_eq!(d.verdict, Verdict::Injected);
        let v: Value = serde_json::from_slice(&d.to_json().unwrap()).unwrap();
        let resp = response_of(&v, UID);
        let after = as_pod(&apply(&resp, &pod).unwrap());
        let spec = after.spec.clone().unwrap();
        let sidecar = sidecar_of(&after);
        let env = sidecar
            .env
            .clone()
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
        // Same volumes, and the same sidecar apart from where it sits.
        match &patched {
            None => patched = Some(after),
            Some(p) => {
                let strip = |mut c: Container| {
                    c.restart_policy = None;
                    c.startup_probe = None;
                    c
                };
                assert_eq!(strip(sidecar_of(p)), strip(sidecar));
                assert_eq!(p.spec.as_ref().unwrap().volumes, spec.volumes);
            }
        }
    }
    let (env, warnings) = first.unwrap();
    (env, warnings, patched.unwrap())
}

fn sidecar_of(pod: &Pod) -> Container {
    let spec = pod.spec.as_ref().unwrap();
    spec.containers
        .iter()
        .chain(spec.init_containers.iter().flatten())
        .find(|c| c.name == "tcp-sniffer")
        .unwrap()
        .clone()
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

fn with_url() -> InjectSettings {
    InjectSettings {
        output_url: Some("https://collector.example/ingest".into()),
        ..InjectSettings::with_image("tcp-sniffer:test")
    }
}

fn quantities(c: &Container, which: &str) -> Vec<(String, String)> {
    let r = c.resources.clone().unwrap_or_default();
    let m = if which == "requests" {
        r.requests
    } else {
        r.limits
    };
    m.unwrap_or_default()
        .into_iter()
        .map(|(k, v)| (k, v.0))
        .collect()
}

#[test]
fn output_format_batch_size_and_ca_bundle_reach_the_sidecar() {
    let (env, warnings, pod) = run_with(
        json!({
            "tcp-sniffer.dev/output-format": "OTLP",
            "tcp-sniffer.dev/output-batch-size": "200",
            "tcp-sniffer.dev/ca-bundle": "corp-ca/bundle.pem",
        }),
        &with_url(),
    );
    assert!(warnings.is_empty(), "{warnings:?}");
    assert_eq!(get(&env, "OUTPUT_FORMAT"), Some("otlp"));
    assert_eq!(get(&env, "OUTPUT_BATCH_SIZE"), Some("200"));
    assert_eq!(
        get(&env, "SSL_CERT_FILE"),
        Some("/etc/tcp-sniffer/ca/ca.crt")
    );
    let volumes = pod.spec.as_ref().unwrap().volumes.clone().unwrap();
    assert_eq!(volumes.len(), 1);
    let cm = volumes[0].config_map.as_ref().unwrap();
    assert_eq!(volumes[0].name, "tcp-sniffer-ca");
    assert_eq!(cm.name, "corp-ca");
    let item = &cm.items.as_ref().unwrap()[0];
    assert_eq!(
        (item.key.as_str(), item.path.as_str()),
        ("bundle.pem", "ca.crt")
    );
    let mounts = sidecar_of(&pod).volume_mounts.unwrap();
    assert_eq!(mounts.len(), 1);
    assert_eq!(mounts[0].name, "tcp-sniffer-ca");
    assert_eq!(mounts[0].mount_path, "/etc/tcp-sniffer/ca");
    assert_eq!(mounts[0].read_only, Some(true));
    // Only the sidecar mounts it.
    for c in &pod.spec.as_ref().unwrap().containers {
        assert!(c.volume_mounts.is_none(), "{}", c.name);
    }
}

#[test]
fn ca_bundle_is_added_to_existing_volumes() {
    let mut pod = fixture("pods/volumes-env.json");
    pod["metadata"]["annotations"] = json!({"tcp-sniffer.dev/ca-bundle": "corp-ca"});
    let before = pod["spec"]["volumes"].as_array().unwrap().len();
    assert!(before > 0);
    let body = serde_json::to_vec(&review_for(&pod)).unwrap();
    let uid = pod_uid(&body);
    let d = review_body(&body, &with_url()).unwrap();
    let v: Value = serde_json::from_slice(&d.to_json().unwrap()).unwrap();
    let after = as_pod(&apply(&response_of(&v, &uid), &pod).unwrap());
    let volumes = after.spec.unwrap().volumes.unwrap();
    assert_eq!(volumes.len(), before + 1);
    let ca = volumes.last().unwrap();
    assert_eq!(ca.name, "tcp-sniffer-ca");
    let cm = ca.config_map.as_ref().unwrap();
    assert_eq!(cm.items.as_ref().unwrap()[0].key, "ca.crt");
}

fn pod_uid(body: &[u8]) -> String {
    let v: Value = serde_json::from_slice(body).unwrap();
    v["request"]["uid"].as_str().unwrap().to_string()
}

#[test]
fn webhook_defaults_for_output_and_ca_apply_only_with_a_url() {
    let s = InjectSettings {
        output_format: Some("json".into()),
        output_batch_size: Some(25),
        ca_bundle: Some(("corp-ca".into(), "ca.crt".into())),
        ..with_url()
    };
    let (env, warnings, pod) = run_with(json!({}), &s);
    assert!(warnings.is_empty(), "{warnings:?}");
    assert_eq!(get(&env, "OUTPUT_FORMAT"), Some("json"));
    assert_eq!(get(&env, "OUTPUT_BATCH_SIZE"), Some("25"));
    assert!(get(&env, "SSL_CERT_FILE").is_some());
    assert!(pod.spec.unwrap().volumes.is_some());

    // Without an output URL the default bundle is left out quietly (nothing to trust it for).
    let s = InjectSettings {
        output_url: None,
        ..s
    };
    let (env, warnings, pod) = run_with(json!({}), &s);
    assert!(warnings.is_empty(), "{warnings:?}");
    assert!(get(&env, "SSL_CERT_FILE").is_none());
    assert!(pod.spec.unwrap().volumes.is_none());
}

#[test]
fn resources_per_pod() {
    let (_, warnings, pod) = run_with(
        json!({
            "tcp-sniffer.dev/cpu-request": "100m",
            "tcp-sniffer.dev/cpu-limit": "1",
            "tcp-sniffer.dev/memory-request": "128Mi",
            "tcp-sniffer.dev/memory-limit": "512Mi",
        }),
        &with_url(),
    );
    assert!(warnings.is_empty(), "{warnings:?}");
    let c = sidecar_of(&pod);
    assert_eq!(
        quantities(&c, "requests"),
        vec![
            ("cpu".into(), "100m".into()),
            ("memory".into(), "128Mi".into())
        ]
    );
    assert_eq!(
        quantities(&c, "limits"),
        vec![
            ("cpu".into(), "1".into()),
            ("memory".into(), "512Mi".into())
        ]
    );

    // One of the pair: the other stays the webhook's default (50m/500m, 64Mi/256Mi).
    let (_, warnings, pod) = run_with(json!({"tcp-sniffer.dev/memory-limit": "1Gi"}), &with_url());
    assert!(warnings.is_empty(), "{warnings:?}");
    let c = sidecar_of(&pod);
    assert_eq!(
        quantities(&c, "limits"),
        vec![
            ("cpu".into(), "500m".into()),
            ("memory".into(), "1Gi".into())
        ]
    );
    assert_eq!(
        quantities(&c, "requests"),
        vec![
            ("cpu".into(), "50m".into()),
            ("memory".into(), "64Mi".into())
        ]
    );
}

#[test]
fn a_request_above_its_limit_is_not_applied() {
    // Alone above the default limit (500m), or above the pod's own limit: the API server would
    // refuse the pod, so the pod's values for that resource are dropped, the other kept.
    for annotations in [
        json!({"tcp-sniffer.dev/cpu-request": "2"}),
        json!({"tcp-sniffer.dev/cpu-request": "0.5", "tcp-sniffer.dev/cpu-limit": "400m"}),
        json!({"tcp-sniffer.dev/cpu-limit": "10m"}),
    ] {
        let mut with_memory = annotations.clone();
        with_memory["tcp-sniffer.dev/memory-limit"] = json!("300Mi");
        let (_, warnings, pod) = run_with(with_memory, &with_url());
        assert_eq!(warnings.len(), 1, "{annotations}: {warnings:?}");
        assert!(warnings[0].contains("cpu request"), "{}", warnings[0]);
        for key in annotations.as_object().unwrap().keys() {
            assert!(warnings[0].contains(key.as_str()), "{}", warnings[0]);
        }
        let c = sidecar_of(&pod);
        assert_eq!(
            quantities(&c, "limits"),
            vec![
                ("cpu".into(), "500m".into()),
                ("memory".into(), "300Mi".into())
            ]
        );
        assert_eq!(quantities(&c, "requests")[0], ("cpu".into(), "50m".into()));
    }
}

#[test]
fn metrics_port_is_declared_and_moves_off_the_apps_ports() {
    let (env, warnings, pod) = run_with(json!({}), &with_url());
    assert!(warnings.is_empty(), "{warnings:?}");
    assert_eq!(get(&env, "METRICS_ADDR"), Some("0.0.0.0:9464"));
    let ports = sidecar_of(&pod).ports.unwrap();
    assert_eq!(ports.len(), 1);
    assert_eq!(ports[0].name.as_deref(), Some("metrics"));
    assert_eq!(ports[0].container_port, 9464);
    assert_eq!(ports[0].protocol.as_deref(), Some("TCP"));

    let (env, warnings, pod) =
        run_with(json!({"tcp-sniffer.dev/metrics-port": "9100"}), &with_url());
    assert!(warnings.is_empty(), "{warnings:?}");
    assert_eq!(get(&env, "METRICS_ADDR"), Some("0.0.0.0:9100"));
    assert_eq!(sidecar_of(&pod).ports.unwrap()[0].container_port, 9100);

    // The fixture's containers use 8080 and 9090; a default on 9090 moves to 9091.
    let s = InjectSettings {
        metrics_port: 9090,
        ..with_url()
    };
    let (env, warnings, _) = run_with(json!({}), &s);
    assert_eq!(warnings.len(), 1, "{warnings:?}");
    assert!(warnings[0].contains("9091"), "{}", warnings[0]);
    assert_eq!(get(&env, "METRICS_ADDR"), Some("0.0.0.0:9091"));
    // An annotation naming a port of the app is refused.
    let (env, warnings, _) = run_with(json!({"tcp-sniffer.dev/metrics-port": "8080"}), &with_url());
    assert_eq!(warnings.len(), 1, "{warnings:?}");
    assert!(
        warnings[0].contains("tcp-sniffer.dev/metrics-port"),
        "{}",
        warnings[0]
    );
    assert_eq!(get(&env, "METRICS_ADDR"), Some("0.0.0.0:9464"));
}

#[test]
fn invalid_output_ca_resource_values_warn_and_are_not_applied() {
    let wanted = ["OUTPUT_FORMAT", "OUTPUT_BATCH_SIZE", "SSL_CERT_FILE"];
    for (key, value, settings) in [
        ("tcp-sniffer.dev/output-format", "protobuf", with_url()),
        ("tcp-sniffer.dev/output-format", "json,otlp", with_url()),
        // otlp goes to the output URL: without one it is not applied.
        (
            "tcp-sniffer.dev/output-format",
            "otlp",
            InjectSettings::with_image("t"),
        ),
        ("tcp-sniffer.dev/output-batch-size", "0", with_url()),
        ("tcp-sniffer.dev/output-batch-size", "10001", with_url()),
        ("tcp-sniffer.dev/output-batch-size", "ten", with_url()),
        ("tcp-sniffer.dev/ca-bundle", "Corp_CA", with_url()),
        ("tcp-sniffer.dev/ca-bundle", "corp-ca/", with_url()),
        ("tcp-sniffer.dev/ca-bundle", "corp-ca/a/b", with_url()),
        // Nothing to trust it for.
        (
            "tcp-sniffer.dev/ca-bundle",
            "corp-ca",
            InjectSettings::with_image("t"),
        ),
        ("tcp-sniffer.dev/cpu-request", "-1", with_url()),
        ("tcp-sniffer.dev/cpu-limit", "0", with_url()),
        ("tcp-sniffer.dev/memory-request", "64MB", with_url()),
        ("tcp-sniffer.dev/memory-limit", "lots", with_url()),
        ("tcp-sniffer.dev/metrics-port", "0", with_url()),
        ("tcp-sniffer.dev/metrics-port", "http", with_url()),
    ] {
        let (env, warnings, pod) = run_with(json!({ key: value }), &settings);
        assert_eq!(warnings.len(), 1, "{key}={value:?}: {warnings:?}");
        assert!(warnings[0].contains(key), "{}", warnings[0]);
        for name in wanted {
            assert!(get(&env, name).is_none(), "{key}={value:?}: {name} set");
        }
        assert!(
            pod.spec.as_ref().unwrap().volumes.is_none(),
            "{key}={value:?}"
        );
        let c = sidecar_of(&pod);
        assert_eq!(
            quantities(&c, "requests"),
            vec![
                ("cpu".into(), "50m".into()),
                ("memory".into(), "64Mi".into())
            ]
        );
        assert_eq!(
            quantities(&c, "limits"),
            vec![
                ("cpu".into(), "500m".into()),
                ("memory".into(), "256Mi".into())
            ]
        );
        assert_eq!(get(&env, "METRICS_ADDR"), Some("0.0.0.0:9464"));
    }
}
