//! The injection decision: a pure function from a Pod (and the settings) to a JSON Patch.
//!
//! Nothing here does I/O. [`review_body`] turns the raw body of `POST /mutate` into a
//! [`Decision`] (or a [`BadRequest`] when the body is not an `admission.k8s.io/v1`
//! AdmissionReview at all); [`review_pod`] answers one Pod request; [`mutate`] holds the rules
//! and [`sidecar_container`] / [`build_patch`] write the change.
//!
//! The rules, in order (SPEC.md "Injector"):
//!
//! 1. A review that is not a Pod CREATE is allowed unchanged (no warning).
//! 2. `tcp-sniffer.dev/inject: "false"` as annotation (or label) opts out.
//! 3. A container named `tcp-sniffer` or the annotation `tcp-sniffer.dev/status: injected`
//!    means it was injected already: untouched.
//! 4. `hostNetwork: true` is skipped with a warning: the sniffer would capture the node.
//! 5. Ports come from `tcp-sniffer.dev/ports`, else from the TCP `containerPort`s of the
//!    containers (and of native-sidecar init containers). None at all: skipped with a warning.
//! 6. The other annotations override the defaults; an invalid value yields a warning that
//!    names the annotation, and the default is used.
//!
//! Opt-in (`tcp-sniffer.dev/inject: "true"` label, or the namespace label
//! `tcp-sniffer.dev/injection: enabled`) is enforced by the MutatingWebhookConfiguration's
//! `objectSelector` / `namespaceSelector`: the API server only asks about pods that opted in,
//! and the webhook cannot see namespace labels itself.
//!
//! Whatever goes wrong, the answer is `allowed: true` (with a warning): the webhook never
//! blocks a pod.

use std::collections::BTreeMap;

use json_patch::jsonptr::PointerBuf;
use json_patch::{AddOperation, Patch, PatchOperation};
use k8s_openapi::api::core::v1::{
    Capabilities, Container, EnvVar, EnvVarSource, ExecAction, ObjectFieldSelector, Pod, Probe,
    ResourceRequirements, SeccompProfile, SecretKeySelector, SecurityContext,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use kube_core::admission::{
    AdmissionRequest, AdmissionResponse, AdmissionReview, Operation, META_API_VERSION_V1, META_KIND,
};
use kube_core::DynamicObject;
use serde_json::Value;

use crate::settings::InjectSettings;
use crate::values;

/// Name of the injected container.
pub const SIDECAR_NAME: &str = "tcp-sniffer";
/// Opt-in label (`"true"`) and opt-out annotation (`"false"`).
pub const INJECT_KEY: &str = "tcp-sniffer.dev/inject";
/// Namespace label that opts a whole namespace in (matched by the webhook configuration).
pub const NAMESPACE_LABEL: &str = "tcp-sniffer.dev/injection";
/// Annotation written on injected pods.
pub const STATUS_ANNOTATION: &str = "tcp-sniffer.dev/status";
/// Value of [`STATUS_ANNOTATION`] on injected pods.
pub const STATUS_INJECTED: &str = "injected";
/// Per-pod override of `PORTS`.
pub const PORTS_ANNOTATION: &str = "tcp-sniffer.dev/ports";
/// Per-pod override of `INTERFACE`.
pub const INTERFACE_ANNOTATION: &str = "tcp-sniffer.dev/interface";
/// Per-pod override of `OUTPUT_URL`.
pub const OUTPUT_URL_ANNOTATION: &str = "tcp-sniffer.dev/output-url";
/// Per-pod override of `SAMPLE_RATE`.
pub const SAMPLE_RATE_ANNOTATION: &str = "tcp-sniffer.dev/sample-rate";
/// Per-pod override of `MAX_BODY_SIZE`.
pub const MAX_BODY_SIZE_ANNOTATION: &str = "tcp-sniffer.dev/max-body-size";

/// Per-pod headers to redact, **added** to [`DEFAULT_REDACT_HEADERS`] (`REDACT_HEADERS`).
pub const REDACT_HEADERS_ANNOTATION: &str = "tcp-sniffer.dev/redact-headers";
/// `"true"`: stdout messages carry bodies (`STDOUT_BODIES=true`).
pub const LOG_BODIES_ANNOTATION: &str = "tcp-sniffer.dev/log-bodies";
/// Per-pod `LOG_LEVEL` of the sidecar.
pub const LOG_LEVEL_ANNOTATION: &str = "tcp-sniffer.dev/log-level";

/// The sidecar's default redacted headers (`redactHeaders`, from the settings table).
pub use crate::values::DEFAULT_REDACT_HEADERS;

/// Every annotation the webhook reads as a value (used for metric labels).
pub const VALUE_ANNOTATIONS: [&str; 9] = [
    INJECT_KEY,
    PORTS_ANNOTATION,
    INTERFACE_ANNOTATION,
    OUTPUT_URL_ANNOTATION,
    SAMPLE_RATE_ANNOTATION,
    MAX_BODY_SIZE_ANNOTATION,
    REDACT_HEADERS_ANNOTATION,
    LOG_BODIES_ANNOTATION,
    LOG_LEVEL_ANNOTATION,
];

/// `REDACT_HEADERS` for a pod that names `v` (see [`values::redact_headers`]).
pub fn redact_headers(v: &str) -> Result<String, String> {
    values::redact_headers(v)
}

// The sidecar's parsers (shared settings table), so a value it would refuse is never injected.
use values::{log_bodies, log_level};

/// Why a pod was left alone.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum SkipReason {
    /// The review is not about a Pod (another kind, or a subresource).
    NotPod,
    /// The operation is not CREATE.
    NotCreate,
    /// The request carries no object, or one that does not read as a Pod.
    InvalidObject,
    /// The pod opted out.
    OptedOut,
    /// The sidecar is already there.
    AlreadyInjected,
    /// `hostNetwork: true`.
    HostNetwork,
    /// No ports to watch.
    NoPorts,
    /// Plain-container mode (`NATIVE_SIDECAR=false`) and a pod that runs to completion
    /// (`restartPolicy` `Never` or `OnFailure`, e.g. a Job's): a plain sidecar would keep it
    /// from ever completing.
    RunsToCompletion,
}

impl SkipReason {
    /// All reasons, for metrics.
    pub const ALL: [SkipReason; 8] = [
        SkipReason::NotPod,
        SkipReason::NotCreate,
        SkipReason::InvalidObject,
        SkipReason::OptedOut,
        SkipReason::AlreadyInjected,
        SkipReason::HostNetwork,
        SkipReason::NoPorts,
        SkipReason::RunsToCompletion,
    ];

    /// Stable snake_case name (metric label, log field).
    pub fn as_str(self) -> &'static str {
        match self {
            SkipReason::NotPod => "not_pod",
            SkipReason::NotCreate => "not_create",
            SkipReason::InvalidObject => "invalid_object",
            SkipReason::OptedOut => "opted_out",
            SkipReason::AlreadyInjected => "already_injected",
            SkipReason::HostNetwork => "host_network",
            SkipReason::NoPorts => "no_ports",
            SkipReason::RunsToCompletion => "runs_to_completion",
        }
    }
}

/// What was decided for one pod.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// The sidecar is added.
    Injected,
    /// Left alone, for this reason.
    Skipped(SkipReason),
}

/// Result of [`mutate`]: the verdict, the patch when injecting, and warnings for the user.
#[derive(Debug, Clone, PartialEq)]
pub struct Mutation {
    /// Injected or skipped.
    pub verdict: Verdict,
    /// JSON Patch to apply (only with [`Verdict::Injected`]).
    pub patch: Option<Patch>,
    /// Warnings returned to the API client (kubectl shows them).
    pub warnings: Vec<String>,
    /// Annotations whose value was invalid (the default was used).
    pub invalid_annotations: Vec<&'static str>,
}

impl Mutation {
    fn skip(reason: SkipReason, warnings: Vec<String>, invalid: Vec<&'static str>) -> Self {
        Mutation {
            verdict: Verdict::Skipped(reason),
            patch: None,
            warnings,
            invalid_annotations: invalid,
        }
    }
}

/// The sidecar's per-pod values after annotations were applied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SidecarValues {
    /// Ports to watch.
    pub ports: Vec<u16>,
    /// INTERFACE.
    pub interface: String,
    /// OUTPUT_URL (None: not set).
    pub output_url: Option<String>,
    /// SAMPLE_RATE.
    pub sample_rate: String,
    /// MAX_BODY_SIZE.
    pub max_body_size: u64,
    /// REDACT_HEADERS (None: the sidecar's defaults).
    pub redact_headers: Option<String>,
    /// STDOUT_BODIES=true.
    pub stdout_bodies: bool,
    /// LOG_LEVEL (None: the sidecar's default).
    pub log_level: Option<String>,
}

fn annotation<'a>(pod: &'a Pod, key: &str) -> Option<&'a str> {
    pod.metadata
        .annotations
        .as_ref()?
        .get(key)
        .map(String::as_str)
}

fn label<'a>(pod: &'a Pod, key: &str) -> Option<&'a str> {
    pod.metadata.labels.as_ref()?.get(key).map(String::as_str)
}

/// The pod's name for logs and warnings; `generateName` pods have none yet.
pub fn pod_display_name(pod: &Pod) -> String {
    match (&pod.metadata.name, &pod.metadata.generate_name) {
        (Some(n), _) if !n.is_empty() => n.clone(),
        (_, Some(g)) if !g.is_empty() => format!("{g}<generated>"),
        _ => "<unnamed>".to_string(),
    }
}

fn all_containers(pod: &Pod) -> impl Iterator<Item = &Container> {
    let spec = pod.spec.as_ref();
    let containers = spec.map(|s| s.containers.iter()).into_iter().flatten();
    let inits = spec
        .and_then(|s| s.init_containers.as_ref())
        .map(|v| v.iter())
        .into_iter()
        .flatten();
    containers.chain(inits)
}

/// TCP `containerPort`s of the app containers and of native-sidecar init containers,
/// ascending, without duplicates.
pub fn container_ports(pod: &Pod) -> Vec<u16> {
    let mut ports: Vec<u16> = Vec::new();
    let Some(spec) = pod.spec.as_ref() else {
        return ports;
    };
    let sidecar_inits = spec
        .init_containers
        .iter()
        .flatten()
        .filter(|c| c.restart_policy.as_deref() == Some("Always"));
    for c in spec.containers.iter().chain(sidecar_inits) {
        for p in c.ports.iter().flatten() {
            let tcp = p
                .protocol
                .as_deref()
                .is_none_or(|proto| proto.eq_ignore_ascii_case("TCP"));
            if tcp && (1..=65535).contains(&p.container_port) {
                ports.push(p.container_port as u16);
            }
        }
    }
    ports.sort_unstable();
    ports.dedup();
    ports
}

fn override_value<T>(
    pod: &Pod,
    key: &'static str,
    default: T,
    parse: impl Fn(&str) -> Result<T, String>,
    warnings: &mut Vec<String>,
    invalid: &mut Vec<&'static str>,
    shown_default: &str,
) -> T {
    match annotation(pod, key) {
        None => default,
        Some(v) => match parse(v) {
            Ok(x) => x,
            Err(msg) => {
                warnings.push(format!(
                    "tcp-sniffer: annotation {key}: {msg}; using the default {shown_default}"
                ));
                invalid.push(key);
                default
            }
        },
    }
}

/// Decide what to do with `pod`. Pure: the same pod and settings always give the same answer.
pub fn mutate(pod: &Pod, settings: &InjectSettings) -> Mutation {
    let mut warnings = Vec::new();
    let mut invalid = Vec::new();

    // 2. Opt-out.
    let opt_out = |v: Option<&str>| v.is_some_and(|v| v.trim().eq_ignore_ascii_case("false"));
    if opt_out(annotation(pod, INJECT_KEY)) || opt_out(label(pod, INJECT_KEY)) {
        return Mutation::skip(SkipReason::OptedOut, warnings, invalid);
    }
    if let Some(v) = annotation(pod, INJECT_KEY) {
        if !v.trim().eq_ignore_ascii_case("true") {
            warnings.push(format!(
                "tcp-sniffer: annotation {INJECT_KEY}: {v:?} is not accepted; expected \"true\" or \"false\"; injecting"
            ));
            invalid.push(INJECT_KEY);
        }
    }

    // 3. Already injected.
    if annotation(pod, STATUS_ANNOTATION) == Some(STATUS_INJECTED)
        || all_containers(pod).any(|c| c.name == SIDECAR_NAME)
    {
        return Mutation::skip(SkipReason::AlreadyInjected, warnings, invalid);
    }

    let Some(spec) = pod.spec.as_ref() else {
        warnings.push("tcp-sniffer: the pod has no spec; not injected".into());
        return Mutation::skip(SkipReason::InvalidObject, warnings, invalid);
    };

    // 4. hostNetwork.
    if spec.host_network == Some(true) {
        warnings.push(
            "tcp-sniffer: not injected: the pod uses hostNetwork, the sniffer would capture the node's traffic"
                .into(),
        );
        return Mutation::skip(SkipReason::HostNetwork, warnings, invalid);
    }

    // 4b. A plain sidecar never exits on its own: in a pod that runs to completion (a Job's)
    // the pod would never complete. Native sidecars are stopped by the kubelet after the app.
    if !settings.native_sidecar {
        if let Some(rp @ ("Never" | "OnFailure")) = spec.restart_policy.as_deref() {
            warnings.push(format!(
                "tcp-sniffer: not injected: the pod has restartPolicy {rp} (a Job's pod?) and the webhook runs with NATIVE_SIDECAR=false; a plain sidecar container would keep it from completing. Use native sidecars (Kubernetes >= 1.29)"
            ));
            return Mutation::skip(SkipReason::RunsToCompletion, warnings, invalid);
        }
    }

    // 5. Ports.
    let mut ports = None;
    if let Some(v) = annotation(pod, PORTS_ANNOTATION) {
        match values::ports(v) {
            Ok(p) => ports = Some(p),
            Err(msg) => {
                warnings.push(format!(
                    "tcp-sniffer: annotation {PORTS_ANNOTATION}: {msg}; using the containers' TCP ports"
                ));
                invalid.push(PORTS_ANNOTATION);
            }
        }
    }
    let ports = ports.unwrap_or_else(|| container_ports(pod));
    if ports.is_empty() {
        warnings.push(format!(
            "tcp-sniffer: not injected: no ports to watch; set the annotation {PORTS_ANNOTATION} or declare a TCP containerPort"
        ));
        return Mutation::skip(SkipReason::NoPorts, warnings, invalid);
    }

    // 6. Overrides.
    let interface = override_value(
        pod,
        INTERFACE_ANNOTATION,
        settings.interface.clone(),
        values::interface,
        &mut warnings,
        &mut invalid,
        &settings.interface,
    );
    let output_url = override_value(
        pod,
        OUTPUT_URL_ANNOTATION,
        settings.output_url.clone(),
        |v| values::output_url(v).map(Some),
        &mut warnings,
        &mut invalid,
        &settings
            .output_url
            .as_deref()
            .map_or_else(|| "(none)".to_string(), values::url_label),
    );
    let sample_rate = override_value(
        pod,
        SAMPLE_RATE_ANNOTATION,
        settings.sample_rate.clone(),
        values::sample_rate,
        &mut warnings,
        &mut invalid,
        &settings.sample_rate,
    );
    let max_body_size = override_value(
        pod,
        MAX_BODY_SIZE_ANNOTATION,
        settings.max_body_size,
        values::max_body_size,
        &mut warnings,
        &mut invalid,
        &settings.max_body_size.to_string(),
    );

    let redact_headers = override_value(
        pod,
        REDACT_HEADERS_ANNOTATION,
        None,
        |v| redact_headers(v).map(Some),
        &mut warnings,
        &mut invalid,
        "(the sidecar's defaults)",
    );
    let stdout_bodies = override_value(
        pod,
        LOG_BODIES_ANNOTATION,
        false,
        log_bodies,
        &mut warnings,
        &mut invalid,
        "false",
    );
    let log_level = override_value(
        pod,
        LOG_LEVEL_ANNOTATION,
        None,
        |v| log_level(v).map(Some),
        &mut warnings,
        &mut invalid,
        "(the sidecar's default)",
    );

    let values = SidecarValues {
        ports,
        interface,
        output_url,
        sample_rate,
        max_body_size,
        redact_headers,
        stdout_bodies,
        log_level,
    };
    let patch = build_patch(
        pod,
        &sidecar_container(&values, settings),
        settings.native_sidecar,
    );
    Mutation {
        verdict: Verdict::Injected,
        patch: Some(patch),
        warnings,
        invalid_annotations: invalid,
    }
}

fn env(name: &str, value: impl Into<String>) -> EnvVar {
    EnvVar {
        name: name.into(),
        value: Some(value.into()),
        value_from: None,
    }
}

fn env_field(name: &str, path: &str) -> EnvVar {
    EnvVar {
        name: name.into(),
        value: None,
        value_from: Some(EnvVarSource {
            field_ref: Some(ObjectFieldSelector {
                api_version: Some("v1".into()),
                field_path: path.into(),
            }),
            ..Default::default()
        }),
    }
}

/// The `tcp-sniffer` container for these values and settings.
pub fn sidecar_container(v: &SidecarValues, settings: &InjectSettings) -> Container {
    let mut env_vars = vec![
        env("PORTS", values::ports_env(&v.ports)),
        env("INTERFACE", v.interface.clone()),
    ];
    if let Some(url) = &v.output_url {
        env_vars.push(env("OUTPUT_URL", url.clone()));
    }
    if let Some((name, key)) = &settings.token_secret {
        env_vars.push(EnvVar {
            name: "OUTPUT_URL_AUTH_TOKEN".into(),
            value: None,
            value_from: Some(EnvVarSource {
                secret_key_ref: Some(SecretKeySelector {
                    name: name.clone(),
                    key: key.clone(),
                    optional: Some(true),
                }),
                ..Default::default()
            }),
        });
    }
    env_vars.extend([
        env("SAMPLE_RATE", v.sample_rate.clone()),
        env("MAX_BODY_SIZE", v.max_body_size.to_string()),
    ]);
    if let Some(h) = &v.redact_headers {
        env_vars.push(env("REDACT_HEADERS", h.clone()));
    }
    if v.stdout_bodies {
        env_vars.push(env("STDOUT_BODIES", "true"));
    }
    if let Some(l) = &v.log_level {
        env_vars.push(env("LOG_LEVEL", l.clone()));
    }
    env_vars.extend([
        env_field("POD_NAME", "metadata.name"),
        env_field("POD_NAMESPACE", "metadata.namespace"),
        env_field("NODE_NAME", "spec.nodeName"),
        env_field("POD_IP", "status.podIP"),
    ]);

    let quantities = |cpu: &Option<String>, mem: &Option<String>| {
        let mut m = BTreeMap::new();
        if let Some(c) = cpu {
            m.insert("cpu".to_string(), Quantity(c.clone()));
        }
        if let Some(x) = mem {
            m.insert("memory".to_string(), Quantity(x.clone()));
        }
        (!m.is_empty()).then_some(m)
    };
    let r = &settings.resources;
    let resources = ResourceRequirements {
        requests: quantities(&r.cpu_request, &r.memory_request),
        limits: quantities(&r.cpu_limit, &r.memory_limit),
        ..Default::default()
    };

    Container {
        name: SIDECAR_NAME.into(),
        image: Some(settings.image.clone()),
        image_pull_policy: Some(settings.image_pull_policy.clone()),
        env: Some(env_vars),
        resources: Some(resources),
        restart_policy: settings.native_sidecar.then(|| "Always".to_string()),
        startup_probe: settings.native_sidecar.then(capture_running_probe),
        termination_message_policy: Some("FallbackToLogsOnError".into()),
        security_context: Some(SecurityContext {
            allow_privilege_escalation: Some(false),
            capabilities: Some(Capabilities {
                add: Some(vec!["NET_RAW".into()]),
                drop: Some(vec!["ALL".into()]),
            }),
            privileged: Some(false),
            read_only_root_filesystem: Some(true),
            run_as_non_root: Some(settings.run_as_user != 0),
            run_as_user: Some(settings.run_as_user),
            seccomp_profile: Some(SeccompProfile {
                type_: "RuntimeDefault".into(),
                localhost_profile: None,
            }),
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// Script of [`capture_running_probe`]: succeeds once the pod's network namespace has a
/// packet socket (`/proc/net/packet` lists one line per AF_PACKET socket after its header;
/// the sniffer opens one when capture runs, with AF_PACKET or with libpcap).
pub const CAPTURE_RUNNING_SCRIPT: &str = "process.exit(require('fs').readFileSync('/proc/net/packet','utf8').trim().split('\\n').length>1?0:1)";

/// Startup probe of the native sidecar. The kubelet starts the next init container and the
/// app only after a restartable init container's startup probe succeeded, so the app starts
/// after capture runs. The sidecar has no readiness endpoint of its own (no metrics port
/// yet); the probe runs the image's own node (the entrypoint's interpreter) on
/// `/proc/net/packet`, which needs no privilege and no writable file.
pub fn capture_running_probe() -> Probe {
    Probe {
        exec: Some(ExecAction {
            command: Some(vec![
                "/usr/local/bin/node".into(),
                "-e".into(),
                CAPTURE_RUNNING_SCRIPT.into(),
            ]),
        }),
        period_seconds: Some(1),
        timeout_seconds: Some(5),
        failure_threshold: Some(120),
        ..Default::default()
    }
}

fn add(path: PointerBuf, value: Value) -> PatchOperation {
    PatchOperation::Add(AddOperation { path, value })
}

/// The JSON Patch that adds `sidecar` to `pod` and marks it injected. Missing arrays and maps
/// are created first; keys are escaped (`~` → `~0`, `/` → `~1`) by [`PointerBuf::from_tokens`].
pub fn build_patch(pod: &Pod, sidecar: &Container, native_sidecar: bool) -> Patch {
    let sidecar = serde_json::to_value(sidecar).unwrap_or(Value::Null);
    let mut ops = Vec::with_capacity(2);
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

    #[test]
    fn ports_from_containers() {
        let p = pod(json!({
            "metadata": {"name": "p"},
            "spec": {
                "containers": [
                    {"name": "a", "ports": [{"containerPort": 9090}, {"containerPort": 53, "protocol": "UDP"}]},
                    {"name": "b", "ports": [{"containerPort": 80, "protocol": "TCP"}, {"containerPort": 9090}]}
                ],
                "initContainers": [
                    {"name": "setup", "ports": [{"containerPort": 1111}]},
                    {"name": "proxy", "restartPolicy": "Always", "ports": [{"containerPort": 15001}]}
                ]
            }
        }));
        assert_eq!(container_ports(&p), vec![80, 9090, 15001]);
    }

    #[test]
    fn rules() {
        let s = settings();
        let skip = |p: &Pod| mutate(p, &s).verdict;
        assert_eq!(
            skip(&simple(json!({"tcp-sniffer.dev/inject": "false"}))),
            Verdict::Skipped(SkipReason::OptedOut)
        );
        assert_eq!(
            skip(&simple(json!({"tcp-sniffer.dev/inject": "FALSE "}))),
            Verdict::Skipped(SkipReason::OptedOut)
        );
        assert_eq!(
            skip(&simple(json!({"tcp-sniffer.dev/status": "injected"}))),
            Verdict::Skipped(SkipReason::AlreadyInjected)
        );
        assert_eq!(
            skip(&simple(json!({"tcp-sniffer.dev/ports": "8080"}))),
            Verdict::Injected
        );
        let mut p = simple(json!({}));
        p.metadata.labels = Some([(INJECT_KEY.to_string(), "false".to_string())].into());
        assert_eq!(skip(&p), Verdict::Skipped(SkipReason::OptedOut));
        let mut p = simple(json!({}));
        p.spec.as_mut().unwrap().host_network = Some(true);
        let m = mutate(&p, &s);
        assert_eq!(m.verdict, Verdict::Skipped(SkipReason::HostNetwork));
        assert!(m.warnings[0].contains("hostNetwork"));
        let mut p = simple(json!({}));
        p.spec.as_mut().unwrap().containers[0].ports = None;
        let m = mutate(&p, &s);
        assert_eq!(m.verdict, Verdict::Skipped(SkipReason::NoPorts));
        assert!(m.warnings[0].contains(PORTS_ANNOTATION));
    }

    #[test]
    fn invalid_annotations_warn_and_use_defaults() {
        let m = mutate(
            &simple(json!({
                "tcp-sniffer.dev/ports": "0,http",
                "tcp-sniffer.dev/interface": "eth0/1",
                "tcp-sniffer.dev/output-url": "ftp://nope",
                "tcp-sniffer.dev/sample-rate": "2",
                "tcp-sniffer.dev/max-body-size": "-5",
                "tcp-sniffer.dev/inject": "perhaps",
                "tcp-sniffer.dev/redact-headers": "x-token, bad header",
                "tcp-sniffer.dev/log-bodies": "yes please",
                "tcp-sniffer.dev/log-level": "trace",
            })),
            &settings(),
        );
        assert_eq!(m.verdict, Verdict::Injected);
        assert_eq!(m.warnings.len(), 9, "{:#?}", m.warnings);
        for key in VALUE_ANNOTATIONS {
            assert!(m.invalid_annotations.contains(&key), "{key}");
            assert!(m.warnings.iter().any(|w| w.contains(key)), "{key}");
        }
        let v = serde_json::to_value(m.patch.unwrap()).unwrap();
        let env = &v[0]["value"]["env"];
        assert_eq!(env[0], json!({"name": "PORTS", "value": "8080"}));
        assert_eq!(env[1], json!({"name": "INTERFACE", "value": "any"}));
        assert_eq!(env[2], json!({"name": "SAMPLE_RATE", "value": "1"}));
        assert_eq!(env[3], json!({"name": "MAX_BODY_SIZE", "value": "65536"}));
        assert_eq!(
            env[4]["name"], "POD_NAME",
            "no value that was refused is passed on"
        );
    }

    #[test]
    fn redact_headers_are_added_to_the_defaults() {
        assert_eq!(
            redact_headers("X-Session, authorization,x-session").unwrap(),
            "authorization,proxy-authorization,cookie,set-cookie,x-api-key,x-auth-token,x-session"
        );
        assert!(redact_headers("a b").is_err());
        assert!(redact_headers("x-ok, caf\u{e9}").is_err());
        assert!(redact_headers(" , ").is_err());
        assert!(redact_headers("none,x-a").is_err());
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
