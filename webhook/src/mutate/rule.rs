//! Which pods get a sidecar, and with which values: the rules of [`super`] in [`mutate`], and
//! the per-pod annotations, each validated once (an invalid value is a warning naming the
//! annotation, and the default is used: the sidecar never receives a value it refuses).

use json_patch::Patch;
use k8s_openapi::api::core::v1::{Container, Pod};

use super::patch::build_patch;
use super::sidecar::{sidecar_container, SidecarValues, SIDECAR_NAME};
use crate::settings::InjectSettings;
use crate::values;

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

/// The sidecar's default redacted headers (SPEC.md "Configuration", `redactHeaders`).
pub const DEFAULT_REDACT_HEADERS: [&str; 6] = [
    "authorization",
    "proxy-authorization",
    "cookie",
    "set-cookie",
    "x-api-key",
    "x-auth-token",
];

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

/// RFC 9110 `tchar`, the engine's rule for header names.
fn is_token_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

/// `REDACT_HEADERS` for a pod that names `v`: the defaults plus these names, lower-cased and
/// without duplicates (the same value whether the sidecar adds its list to its defaults or
/// replaces them). Names are checked with the engine's rule (RFC 9110 tokens).
pub fn redact_headers(v: &str) -> Result<String, String> {
    let mut out: Vec<String> = DEFAULT_REDACT_HEADERS
        .iter()
        .map(|s| s.to_string())
        .collect();
    let mut added = 0;
    for n in v.split(',').map(str::trim).filter(|n| !n.is_empty()) {
        if !n.bytes().all(is_token_byte) {
            return Err(format!(
                "{n:?} is not a header name (RFC 9110 token: letters, digits, !#$%&'*+-.^_`|~)"
            ));
        }
        if n.eq_ignore_ascii_case("none") {
            return Err("\"none\" (dropping the default redactions) is not accepted per pod; list headers to add".into());
        }
        let n = n.to_ascii_lowercase();
        if !out.contains(&n) {
            out.push(n);
        }
        added += 1;
    }
    if added == 0 {
        return Err("expected comma-separated header names, got none".into());
    }
    Ok(out.join(","))
}

fn log_bodies(v: &str) -> Result<bool, String> {
    match v.trim().to_ascii_lowercase().as_str() {
        "true" => Ok(true),
        "false" => Ok(false),
        other => Err(format!(
            "{other:?} is not accepted; expected \"true\" or \"false\""
        )),
    }
}

fn log_level(v: &str) -> Result<String, String> {
    match v.trim().to_ascii_lowercase().as_str() {
        l @ ("error" | "warn" | "info" | "debug") => Ok(l.to_string()),
        other => Err(format!(
            "{other:?} is not accepted; expected error, warn, info or debug"
        )),
    }
}

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

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{json, Value};

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
}
