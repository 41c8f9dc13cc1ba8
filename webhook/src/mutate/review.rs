//! The AdmissionReview in and out: decode the body of `POST /mutate`, answer non-Pod and
//! non-CREATE requests unchanged, run [`super::mutate`] on Pod CREATEs, and write the response
//! (patch as base64, warnings, audit annotation). Every decoded review is answered
//! `allowed: true`; only a body that is not an `admission.k8s.io/v1` AdmissionReview at all is
//! a [`BadRequest`] (HTTP 400).

use json_patch::Patch;
use k8s_openapi::api::core::v1::Pod;
use kube_core::admission::{
    AdmissionRequest, AdmissionResponse, AdmissionReview, Operation, META_API_VERSION_V1, META_KIND,
};
use kube_core::DynamicObject;
use serde_json::Value;

use super::rule::{mutate, pod_display_name, SkipReason, Verdict};
use crate::settings::InjectSettings;

/// The answer for one admission review, with what the server needs for logs and metrics.
#[derive(Debug, Clone)]
pub struct Decision {
    /// The AdmissionReview to send back (always `allowed: true`).
    pub review: AdmissionReview<DynamicObject>,
    /// Injected or skipped.
    pub verdict: Verdict,
    /// Warnings (also in the response).
    pub warnings: Vec<String>,
    /// Annotations with invalid values.
    pub invalid_annotations: Vec<&'static str>,
    /// Request uid.
    pub uid: String,
    /// Namespace of the request.
    pub namespace: String,
    /// Pod name (or `generateName<generated>`).
    pub pod: String,
}

impl Decision {
    /// The review as JSON for the wire. `response.patch` is written as a base64 string, the
    /// way Kubernetes' Go types encode `[]byte` (kube-core's serde derive would write an array
    /// of numbers, which the API server also accepts, at four times the size).
    pub fn to_json(&self) -> Result<Vec<u8>, serde_json::Error> {
        use base64::Engine as _;
        let mut v = serde_json::to_value(&self.review)?;
        let patch = self.review.response.as_ref().and_then(|r| r.patch.as_ref());
        if let (Some(bytes), Some(resp)) = (patch, v.get_mut("response")) {
            resp["patch"] = Value::String(base64::engine::general_purpose::STANDARD.encode(bytes));
        }
        serde_json::to_vec(&v)
    }
}

fn is_pod_request<K: kube_core::Resource>(req: &AdmissionRequest<K>) -> bool {
    req.kind.group.is_empty()
        && req.kind.kind == "Pod"
        && req.resource.resource == "pods"
        && req.sub_resource.as_deref().is_none_or(str::is_empty)
}

fn respond(
    mut response: AdmissionResponse,
    verdict: Verdict,
    patch: Option<Patch>,
    warnings: Vec<String>,
    invalid: Vec<&'static str>,
    namespace: String,
    pod: String,
) -> Decision {
    let uid = response.uid.clone();
    let mut warnings = warnings;
    if let Some(p) = patch {
        match response.clone().with_patch(p) {
            Ok(r) => response = r,
            Err(e) => {
                // Cannot happen with plain JSON values; never block the pod if it does.
                warnings.push(format!("tcp-sniffer: not injected: {e}"));
                return respond(
                    response,
                    Verdict::Skipped(SkipReason::InvalidObject),
                    None,
                    warnings,
                    invalid,
                    namespace,
                    pod,
                );
            }
        }
    }
    if !warnings.is_empty() {
        response.warnings = Some(warnings.clone());
    }
    let decision = match verdict {
        Verdict::Injected => "injected".to_string(),
        Verdict::Skipped(r) => format!("skipped-{}", r.as_str().replace('_', "-")),
    };
    if !matches!(
        verdict,
        Verdict::Skipped(SkipReason::NotPod | SkipReason::NotCreate)
    ) {
        response
            .audit_annotations
            .insert("decision".into(), decision);
    }
    Decision {
        review: response.into_review(),
        verdict,
        warnings,
        invalid_annotations: invalid,
        uid,
        namespace,
        pod,
    }
}

/// Answer one request whose object parsed as a Pod.
pub fn review_pod(req: &AdmissionRequest<Pod>, settings: &InjectSettings) -> Decision {
    let response = AdmissionResponse::from(req);
    let namespace = req.namespace.clone().unwrap_or_default();
    let name = req
        .object
        .as_ref()
        .map(pod_display_name)
        .unwrap_or_else(|| req.name.clone());
    if !is_pod_request(req) {
        return respond(
            response,
            Verdict::Skipped(SkipReason::NotPod),
            None,
            vec![],
            vec![],
            namespace,
            name,
        );
    }
    if req.operation != Operation::Create {
        return respond(
            response,
            Verdict::Skipped(SkipReason::NotCreate),
            None,
            vec![],
            vec![],
            namespace,
            name,
        );
    }
    let Some(pod) = req.object.as_ref() else {
        return respond(
            response,
            Verdict::Skipped(SkipReason::InvalidObject),
            None,
            vec!["tcp-sniffer: not injected: the admission request carries no object".into()],
            vec![],
            namespace,
            name,
        );
    };
    let m = mutate(pod, settings);
    respond(
        response,
        m.verdict,
        m.patch,
        m.warnings,
        m.invalid_annotations,
        namespace,
        name,
    )
}

/// The body of `POST /mutate` is not an `admission.k8s.io/v1` AdmissionReview: answer 400.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
#[non_exhaustive]
pub struct BadRequest(pub String);

fn check_types(apiv: &str, kind: &str) -> Result<(), BadRequest> {
    if apiv != META_API_VERSION_V1 || kind != META_KIND {
        return Err(BadRequest(format!(
            "expected apiVersion {META_API_VERSION_V1:?} kind {META_KIND:?}, got apiVersion {apiv:?} kind {kind:?}"
        )));
    }
    Ok(())
}

/// Decode the body of `POST /mutate` and decide. `Err` means HTTP 400; every `Ok` is an
/// `allowed: true` review.
pub fn review_body(body: &[u8], settings: &InjectSettings) -> Result<Decision, BadRequest> {
    // Fast path: a well-formed review whose object reads as a Pod.
    if let Ok(review) = serde_json::from_slice::<AdmissionReview<Pod>>(body) {
        check_types(&review.types.api_version, &review.types.kind)?;
        let req: AdmissionRequest<Pod> = review
            .try_into()
            .map_err(|_| BadRequest("the AdmissionReview has no request".into()))?;
        return Ok(review_pod(&req, settings));
    }
    // Slow path: find out what is wrong, and answer as helpfully as the body allows.
    let value: Value = serde_json::from_slice(body)
        .map_err(|e| BadRequest(format!("the body is not valid JSON: {e}")))?;
    let s = |v: &Value, k: &str| v.get(k).and_then(Value::as_str).unwrap_or("").to_string();
    check_types(&s(&value, "apiVersion"), &s(&value, "kind"))?;
    let Some(request) = value.get("request").filter(|r| r.is_object()) else {
        return Err(BadRequest("the AdmissionReview has no request".into()));
    };
    let uid = s(request, "uid");
    let review: AdmissionReview<DynamicObject> = match serde_json::from_value(value.clone()) {
        Ok(r) => r,
        Err(e) if !uid.is_empty() => {
            // We know whom to answer: allow, and say why nothing was done.
            let mut response = AdmissionResponse::invalid("");
            response.allowed = true;
            response.uid = uid;
            response.result = Default::default();
            return Ok(respond(
                response,
                Verdict::Skipped(SkipReason::InvalidObject),
                None,
                vec![format!(
                    "tcp-sniffer: not injected: could not read the admission request: {e}"
                )],
                vec![],
                s(request, "namespace"),
                s(request, "name"),
            ));
        }
        Err(e) => {
            return Err(BadRequest(format!(
                "the AdmissionReview could not be read: {e}"
            )))
        }
    };
    let req: AdmissionRequest<DynamicObject> = review
        .try_into()
        .map_err(|_| BadRequest("the AdmissionReview has no request".into()))?;
    let response = AdmissionResponse::from(&req);
    let namespace = req.namespace.clone().unwrap_or_default();
    if !is_pod_request(&req) {
        return Ok(respond(
            response,
            Verdict::Skipped(SkipReason::NotPod),
            None,
            vec![],
            vec![],
            namespace,
            req.name,
        ));
    }
    if req.operation != Operation::Create {
        return Ok(respond(
            response,
            Verdict::Skipped(SkipReason::NotCreate),
            None,
            vec![],
            vec![],
            namespace,
            req.name,
        ));
    }
    // A Pod CREATE whose object is not a readable Pod.
    let why = match request.get("object") {
        None | Some(Value::Null) => "the admission request carries no object".to_string(),
        Some(o) => match serde_json::from_value::<Pod>(o.clone()) {
            Err(e) => format!("the object is not a valid Pod: {e}"),
            Ok(_) => "the request could not be read".to_string(),
        },
    };
    Ok(respond(
        response,
        Verdict::Skipped(SkipReason::InvalidObject),
        None,
        vec![format!("tcp-sniffer: not injected: {why}")],
        vec![],
        namespace,
        req.name,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Plain-container mode: the patch paths below are the simplest to read there.
    fn settings() -> InjectSettings {
        InjectSettings {
            native_sidecar: false,
            ..InjectSettings::with_image("sniffer:test")
        }
    }

    #[test]
    fn review_body_errors() {
        let s = settings();
        assert!(review_body(b"{", &s)
            .unwrap_err()
            .0
            .contains("not valid JSON"));
        assert!(review_body(b"[]", &s).unwrap_err().0.contains("apiVersion"));
        let v1beta1 =
            br#"{"apiVersion":"admission.k8s.io/v1beta1","kind":"AdmissionReview","request":{}}"#;
        assert!(review_body(v1beta1, &s)
            .unwrap_err()
            .0
            .contains("admission.k8s.io/v1"));
        let no_req = br#"{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview"}"#;
        assert!(review_body(no_req, &s)
            .unwrap_err()
            .0
            .contains("no request"));
        let garbage_req = br#"{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"uid":"u1","kind":7}}"#;
        let d = review_body(garbage_req, &s).unwrap();
        assert_eq!(d.verdict, Verdict::Skipped(SkipReason::InvalidObject));
        let r: Value = serde_json::from_slice(&d.to_json().unwrap()).unwrap();
        assert_eq!(r["response"]["uid"], "u1");
        assert_eq!(r["response"]["allowed"], true);
        assert!(r["response"]["warnings"][0]
            .as_str()
            .unwrap()
            .contains("could not read"));
    }
}
