//! The JSON Patch (RFC 6902) that adds the sidecar to a pod and marks it injected.

use json_patch::jsonptr::PointerBuf;
use json_patch::{AddOperation, Patch, PatchOperation};
use k8s_openapi::api::core::v1::{Container, Pod, Volume};
use serde_json::Value;

use super::rule::{STATUS_ANNOTATION, STATUS_INJECTED};

fn add(path: PointerBuf, value: Value) -> PatchOperation {
    PatchOperation::Add(AddOperation { path, value })
}

/// The JSON Patch that adds `sidecar` (and the `volumes` it mounts) to `pod` and marks it
/// injected. Missing arrays and maps are created first; keys are escaped (`~` → `~0`, `/` →
/// `~1`) by [`PointerBuf::from_tokens`].
pub fn build_patch(
    pod: &Pod,
    sidecar: &Container,
    volumes: &[Volume],
    native_sidecar: bool,
) -> Patch {
    let sidecar = serde_json::to_value(sidecar).unwrap_or(Value::Null);
    let mut ops = Vec::with_capacity(2 + volumes.len());
    if !volumes.is_empty() {
        let to_value = |v: &Volume| serde_json::to_value(v).unwrap_or(Value::Null);
        if pod.spec.as_ref().is_some_and(|s| s.volumes.is_some()) {
            for v in volumes {
                ops.push(add(
                    PointerBuf::from_tokens(["spec", "volumes", "-"]),
                    to_value(v),
                ));
            }
        } else {
            ops.push(add(
                PointerBuf::from_tokens(["spec", "volumes"]),
                Value::Array(volumes.iter().map(to_value).collect()),
            ));
        }
    }
    if native_sidecar {
        let has_inits = pod
            .spec
            .as_ref()
            .is_some_and(|s| s.init_containers.is_some());
        if has_inits {
            // First, so it is running before the other init containers and the app start.
            ops.push(add(
                PointerBuf::from_tokens(["spec", "initContainers", "0"]),
                sidecar,
            ));
        } else {
            ops.push(add(
                PointerBuf::from_tokens(["spec", "initContainers"]),
                Value::Array(vec![sidecar]),
            ));
        }
    } else {
        // `containers` is required in a valid pod; "-" appends after the app containers so
        // the app stays the default container for kubectl.
        ops.push(add(
            PointerBuf::from_tokens(["spec", "containers", "-"]),
            sidecar,
        ));
    }
    if pod.metadata.annotations.is_some() {
        ops.push(add(
            PointerBuf::from_tokens(["metadata", "annotations", STATUS_ANNOTATION]),
            Value::String(STATUS_INJECTED.into()),
        ));
    } else {
        let mut m = serde_json::Map::new();
        m.insert(
            STATUS_ANNOTATION.into(),
            Value::String(STATUS_INJECTED.into()),
        );
        ops.push(add(
            PointerBuf::from_tokens(["metadata", "annotations"]),
            Value::Object(m),
        ));
    }
    Patch(ops)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mutate::mutate;
    use crate::settings::InjectSettings;
    use serde_json::json;

    fn pod(v: Value) -> Pod {
        serde_json::from_value(v).unwrap()
    }

    /// Plain-container mode: the patch paths below are the simplest to read there.
    fn settings() -> InjectSettings {
        InjectSettings {
            native_sidecar: false,
            ..InjectSettings::with_image("sniffer:test")
        }
    }

    fn simple(annotations: Value) -> Pod {
        pod(json!({
            "apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": "p", "annotations": annotations},
            "spec": {"containers": [{"name": "app", "image": "app", "ports": [{"containerPort": 8080}]}]}
        }))
    }

    #[test]
    fn pointer_escaping() {
        let p = PointerBuf::from_tokens(["metadata", "annotations", "tcp-sniffer.dev/status"]);
        assert_eq!(p.as_str(), "/metadata/annotations/tcp-sniffer.dev~1status");
        let p = PointerBuf::from_tokens(["metadata", "annotations", "a~b/c"]);
        assert_eq!(p.as_str(), "/metadata/annotations/a~0b~1c");
    }

    #[test]
    fn patch_paths() {
        let m = mutate(&simple(json!({"x": "y"})), &settings());
        let v = serde_json::to_value(m.patch.unwrap()).unwrap();
        assert_eq!(v[0]["op"], "add");
        assert_eq!(v[0]["path"], "/spec/containers/-");
        assert_eq!(
            v[1]["path"],
            "/metadata/annotations/tcp-sniffer.dev~1status"
        );
        assert_eq!(v[1]["value"], "injected");

        let mut p = simple(json!({}));
        p.metadata.annotations = None;
        let m = mutate(
            &p,
            &InjectSettings {
                native_sidecar: true,
                ..settings()
            },
        );
        let v = serde_json::to_value(m.patch.unwrap()).unwrap();
        assert_eq!(v[0]["path"], "/spec/initContainers");
        assert_eq!(v[0]["value"][0]["restartPolicy"], "Always");
        assert_eq!(v[1]["path"], "/metadata/annotations");
        assert_eq!(v[1]["value"], json!({"tcp-sniffer.dev/status": "injected"}));
    }
}
