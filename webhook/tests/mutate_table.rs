//! The pod table: each fixture pod goes through the whole decision (`review_body`, the same
//! function `POST /mutate` calls), the returned JSON Patch is applied with json-patch, and the
//! result is read back as a typed k8s-openapi Pod. Checked for every pod:
//! - the answer is `allowed: true` with the request's uid;
//! - the sidecar is exactly the expected container (written out by hand in `common`);
//! - removing the sidecar and the status annotation gives back the original object, byte for
//!   byte as JSON values: application containers, init containers, volumes, other annotations
//!   (including keys with `/` and `~`) are untouched.

mod common;

use common::*;
use serde_json::{json, Value};
use tcp_sniffer_webhook::mutate::review_body;
use tcp_sniffer_webhook::settings::InjectSettings;

const IMAGE: &str = "registry.example/tcp-sniffer:1.0.0";

#[derive(Debug)]
enum Expect {
    /// Injected with (PORTS, INTERFACE, OUTPUT_URL, SAMPLE_RATE, MAX_BODY_SIZE), and this many warnings.
    Injected(
        &'static str,
        &'static str,
        Option<&'static str>,
        &'static str,
        &'static str,
        usize,
    ),
    /// Untouched; the warning (if any) contains this text.
    Skipped(&'static str, Option<&'static str>),
}

fn settings(native: bool) -> InjectSettings {
    InjectSettings {
        native_sidecar: native,
        ..InjectSettings::with_image(IMAGE)
    }
}

/// Send `pod` through the decision; return (response, patched object if any).
fn decide(pod: &Value, s: &InjectSettings) -> (Value, Option<Value>) {
    let review = review_for(pod);
    let body = serde_json::to_vec(&review).unwrap();
    let d = review_body(&body, s).expect("a well-formed review is never a 400");
    let answer = serde_json::from_slice::<Value>(&d.to_json().unwrap()).unwrap();
    let resp = response_of(&answer, review["request"]["uid"].as_str().unwrap());
    let patched = apply(&resp, pod);
    (resp, patched)
}

/// Remove what the webhook adds; what is left must equal the original.
fn strip_injection(mut patched: Value, native: bool) -> (Value, Value) {
    let list = if native {
        "initContainers"
    } else {
        "containers"
    };
    let arr = patched["spec"][list].as_array_mut().unwrap();
    let idx = arr
        .iter()
        .position(|c| c["name"] == "tcp-sniffer")
        .expect("sidecar present");
    if native {
        assert_eq!(idx, 0, "native sidecar goes first among init containers");
    } else {
        assert_eq!(idx, arr.len() - 1, "sidecar goes after the app containers");
    }
    let sidecar = arr.remove(idx);
    if arr.is_empty() && native {
        patched["spec"]
            .as_object_mut()
            .unwrap()
            .remove("initContainers");
    }
    let ann = patched["metadata"]["annotations"].as_object_mut().unwrap();
    assert_eq!(
        ann.remove("tcp-sniffer.dev/status"),
        Some(json!("injected"))
    );
    (patched, sidecar)
}

fn run_table(native: bool) {
    use Expect::*;
    let table: Vec<(&str, Expect)> = vec![
        (
            "no-ports.json",
            Skipped("no_ports", Some("no ports to watch")),
        ),
        (
            "several-containers.json",
            Injected("53,8080,9090", "any", None, "1", "65536", 0),
        ),
        (
            "init-containers.json",
            Injected("2020,3000", "any", None, "1", "65536", 0),
        ),
        (
            "volumes-env.json",
            Injected("5000", "any", None, "1", "65536", 0),
        ),
        (
            "annotations-escape.json",
            Injected("80,443", "any", None, "1", "65536", 0),
        ),
        (
            "host-network.json",
            Skipped("host_network", Some("hostNetwork")),
        ),
        ("opt-out.json", Skipped("opted_out", None)),
        ("already-injected.json", Skipped("already_injected", None)),
        ("already-annotated.json", Skipped("already_injected", None)),
        (
            "generate-name.json",
            Injected("8081", "any", None, "1", "65536", 0),
        ),
        (
            "invalid-annotations.json",
            Injected("8080,8443", "any", None, "1", "65536", 5),
        ),
        (
            "overrides.json",
            Injected(
                "3000,3001",
                "eth0",
                Some("https://collector.observability.svc:8443/v1/http"),
                "0.1",
                "0",
                0,
            ),
        ),
    ];
    let s = settings(native);
    for (file, expect) in table {
        let pod = fixture(&format!("pods/{file}"));
        let (resp, patched) = decide(&pod, &s);
        let warnings: Vec<String> = resp["warnings"]
            .as_array()
            .map(|a| a.iter().map(|w| w.as_str().unwrap().to_string()).collect())
            .unwrap_or_default();
        match expect {
            Skipped(reason, warning) => {
                assert!(patched.is_none(), "{file}: no patch expected");
                assert_eq!(
                    resp["auditAnnotations"]["decision"],
                    format!("skipped-{}", reason.replace('_', "-")),
                    "{file}"
                );
                match warning {
                    Some(w) => assert!(
                        warnings.len() == 1 && warnings[0].contains(w),
                        "{file}: {warnings:?}"
                    ),
                    None => assert!(warnings.is_empty(), "{file}: {warnings:?}"),
                }
            }
            Injected(ports, iface, url, rate, body, n_warn) => {
                let patched =
                    patched.unwrap_or_else(|| panic!("{file}: expected a patch, got {resp:#}"));
                assert_eq!(warnings.len(), n_warn, "{file}: {warnings:?}");
                // The whole patched object is a valid typed Pod, with the sidecar where expected.
                let typed = as_pod(&patched);
                let spec = typed.spec.as_ref().unwrap();
                let names: Vec<&str> = if native {
                    spec.init_containers
                        .iter()
                        .flatten()
                        .map(|c| c.name.as_str())
                        .collect()
                } else {
                    spec.containers.iter().map(|c| c.name.as_str()).collect()
                };
                assert_eq!(
                    names.iter().filter(|n| **n == "tcp-sniffer").count(),
                    1,
                    "{file}: {names:?}"
                );
                assert_eq!(
                    typed.metadata.annotations.as_ref().unwrap()["tcp-sniffer.dev/status"],
                    "injected"
                );
                // Exactly the configured sidecar.
                let (rest, sidecar) = strip_injection(patched, native);
                let want = expected_sidecar(IMAGE, ports, iface, url, None, rate, body, native);
                assert_eq!(sidecar, want, "{file}: sidecar differs");
                // Everything else untouched. An absent annotations map was created by the
                // patch; it is empty after stripping.
                let mut original = pod.clone();
                if original["metadata"].get("annotations").is_none() {
                    original["metadata"]["annotations"] = json!({});
                }
                assert_eq!(rest, original, "{file}: the rest of the pod changed");
                // App containers byte for byte.
                assert_eq!(
                    serde_json::to_string(&rest["spec"]["containers"]).unwrap(),
                    serde_json::to_string(&pod["spec"]["containers"]).unwrap()
                );
            }
        }
    }
}

#[test]
fn pod_table_regular_sidecar() {
    run_table(false);
}

#[test]
fn pod_table_native_sidecar() {
    run_table(true);
}

#[test]
fn invalid_annotation_warnings_name_each_annotation() {
    let pod = fixture("pods/invalid-annotations.json");
    let (resp, _) = decide(&pod, &settings(false));
    let w = resp["warnings"].to_string();
    for key in [
        "tcp-sniffer.dev/ports",
        "tcp-sniffer.dev/interface",
        "tcp-sniffer.dev/output-url",
        "tcp-sniffer.dev/sample-rate",
        "tcp-sniffer.dev/max-body-size",
    ] {
        assert!(w.contains(key), "{key} not named in {w}");
    }
}

#[test]
fn patch_escapes_and_creates_maps() {
    // annotations map present → add one escaped key
    let (resp, _) = decide(&fixture("pods/annotations-escape.json"), &settings(false));
    let ops = patch_ops(&resp);
    assert_eq!(
        ops,
        json!([
            {"op": "add", "path": "/spec/containers/-", "value": ops[0]["value"].clone()},
            {"op": "add", "path": "/metadata/annotations/tcp-sniffer.dev~1status", "value": "injected"}
        ])
    );
    // no annotations, no initContainers, native mode → both created whole
    let (resp, _) = decide(&fixture("pods/generate-name.json"), &settings(true));
    let ops = patch_ops(&resp);
    assert_eq!(ops[0]["path"], "/spec/initContainers");
    assert!(ops[0]["value"].is_array());
    assert_eq!(ops[1]["path"], "/metadata/annotations");
    assert_eq!(
        ops[1]["value"],
        json!({"tcp-sniffer.dev/status": "injected"})
    );
    // existing initContainers in native mode → inserted at index 0
    let (resp, _) = decide(&fixture("pods/init-containers.json"), &settings(true));
    assert_eq!(patch_ops(&resp)[0]["path"], "/spec/initContainers/0");
}

#[test]
fn token_secret_and_output_url_defaults() {
    let s = InjectSettings {
        output_url: Some("http://collector.observability:9000/ingest".into()),
        token_secret: Some(("sniffer-output".into(), "bearer".into())),
        ..settings(false)
    };
    let pod = fixture("pods/generate-name.json");
    let (resp, patched) = decide(&pod, &s);
    let (_, sidecar) = strip_injection(patched.unwrap(), false);
    let want = expected_sidecar(
        IMAGE,
        "8081",
        "any",
        Some("http://collector.observability:9000/ingest"),
        Some(("sniffer-output", "bearer")),
        "1",
        "65536",
        false,
    );
    assert_eq!(sidecar, want);
    assert!(resp.get("warnings").is_none());
}

#[test]
fn root_and_resources_settings() {
    let mut s = settings(false);
    s.run_as_user = 0;
    s.resources.cpu_limit = None;
    let (_, patched) = decide(&fixture("pods/generate-name.json"), &s);
    let (_, sidecar) = strip_injection(patched.unwrap(), false);
    assert_eq!(sidecar["securityContext"]["runAsNonRoot"], false);
    assert_eq!(sidecar["securityContext"]["runAsUser"], 0);
    assert_eq!(
        sidecar["securityContext"]["capabilities"],
        json!({"add": ["NET_RAW"], "drop": ["ALL"]})
    );
    assert_eq!(sidecar["resources"]["limits"], json!({"memory": "256Mi"}));
}

#[test]
fn gke_sample_is_injected() {
    let review = fixture("gke-echo-pod.json");
    let object = review["request"]["object"].clone();
    let d = review_body(&serde_json::to_vec(&review).unwrap(), &settings(false)).unwrap();
    let answer = serde_json::from_slice::<Value>(&d.to_json().unwrap()).unwrap();
    let resp = response_of(&answer, "0c9a8d74-9cb7-44dd-b98e-09fd62def2f4");
    let patched = apply(&resp, &object).expect("patch");
    as_pod(&patched);
    let (rest, sidecar) = strip_injection(patched, false);
    assert_eq!(
        sidecar,
        expected_sidecar(IMAGE, "8080", "any", None, None, "1", "65536", false)
    );
    assert_eq!(rest, object);
    assert_eq!(d.pod, "echo-pod");
    assert_eq!(d.namespace, "colin-coder");
}

#[test]
fn k8s_docs_scale_example_is_allowed_unchanged() {
    let review = fixture("k8s-docs-scale-update.json");
    let d = review_body(&serde_json::to_vec(&review).unwrap(), &settings(false)).unwrap();
    let answer = serde_json::from_slice::<Value>(&d.to_json().unwrap()).unwrap();
    let resp = response_of(&answer, "705ab4f5-6393-11e8-b7cc-42010a800002");
    assert!(resp.get("patch").is_none());
    assert!(resp.get("warnings").is_none());
    assert!(resp.get("auditAnnotations").is_none());
}

#[test]
fn non_create_and_subresources_are_allowed_unchanged() {
    let pod = fixture("pods/generate-name.json");
    for (field, value) in [
        ("operation", json!("UPDATE")),
        ("operation", json!("DELETE")),
        ("subResource", json!("ephemeralcontainers")),
    ] {
        let mut review = review_for(&pod);
        review["request"][field] = value.clone();
        if value == "DELETE" {
            review["request"]["oldObject"] = review["request"]["object"].take();
        }
        let d = review_body(&serde_json::to_vec(&review).unwrap(), &settings(false)).unwrap();
        let answer = serde_json::from_slice::<Value>(&d.to_json().unwrap()).unwrap();
        let resp = response_of(&answer, review["request"]["uid"].as_str().unwrap());
        assert!(resp.get("patch").is_none(), "{field}={value}");
        assert!(resp.get("warnings").is_none(), "{field}={value}");
    }
}

#[test]
fn broken_pod_object_is_allowed_with_a_warning() {
    let mut review = review_for(&fixture("pods/generate-name.json"));
    review["request"]["object"]["spec"]["containers"] = json!("not a list");
    let d = review_body(&serde_json::to_vec(&review).unwrap(), &settings(false)).unwrap();
    let answer = serde_json::from_slice::<Value>(&d.to_json().unwrap()).unwrap();
    let resp = response_of(&answer, review["request"]["uid"].as_str().unwrap());
    assert!(resp.get("patch").is_none());
    assert!(
        resp["warnings"][0]
            .as_str()
            .unwrap()
            .contains("not a valid Pod"),
        "{resp:#}"
    );
}
