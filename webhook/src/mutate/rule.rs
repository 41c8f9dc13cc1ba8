//! Which pods get a sidecar, and with which values: the rules of [`super`] in [`mutate`], and
//! the per-pod annotations, each validated once (an invalid value is a warning naming the
//! annotation, and the default is used: the sidecar never receives a value it refuses).

use json_patch::Patch;
use k8s_openapi::api::core::v1::{Container, Pod};

use super::patch::build_patch;
use super::sidecar::{sidecar_container, sidecar_volumes, SidecarValues, CA_VOLUME, SIDECAR_NAME};
use crate::settings::{InjectSettings, SidecarResources};
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
/// Per-pod `OUTPUT_FORMAT` (`json` or `otlp`; `otlp` needs an output URL).
pub const OUTPUT_FORMAT_ANNOTATION: &str = "tcp-sniffer.dev/output-format";
/// Per-pod `OUTPUT_BATCH_SIZE` (messages per POST, 1–10000).
pub const OUTPUT_BATCH_SIZE_ANNOTATION: &str = "tcp-sniffer.dev/output-batch-size";
/// CA certificates for a private collector: a ConfigMap in the pod's namespace, `NAME` (key
/// `ca.crt`) or `NAME/KEY`, mounted into the sidecar and named by `SSL_CERT_FILE`.
pub const CA_BUNDLE_ANNOTATION: &str = "tcp-sniffer.dev/ca-bundle";
/// Per-pod CPU request of the sidecar.
pub const CPU_REQUEST_ANNOTATION: &str = "tcp-sniffer.dev/cpu-request";
/// Per-pod CPU limit of the sidecar.
pub const CPU_LIMIT_ANNOTATION: &str = "tcp-sniffer.dev/cpu-limit";
/// Per-pod memory request of the sidecar.
pub const MEMORY_REQUEST_ANNOTATION: &str = "tcp-sniffer.dev/memory-request";
/// Per-pod memory limit of the sidecar.
pub const MEMORY_LIMIT_ANNOTATION: &str = "tcp-sniffer.dev/memory-limit";
/// Per-pod port of the sidecar's metrics endpoint (`METRICS_ADDR`, declared as the
/// container port `metrics`).
pub const METRICS_PORT_ANNOTATION: &str = "tcp-sniffer.dev/metrics-port";

/// The sidecar's default redacted headers (`redactHeaders`, from the settings table).
pub use crate::values::DEFAULT_REDACT_HEADERS;

/// Every annotation the webhook reads as a value (used for metric labels).
pub const VALUE_ANNOTATIONS: [&str; 17] = [
    INJECT_KEY,
    PORTS_ANNOTATION,
    INTERFACE_ANNOTATION,
    OUTPUT_URL_ANNOTATION,
    SAMPLE_RATE_ANNOTATION,
    MAX_BODY_SIZE_ANNOTATION,
    REDACT_HEADERS_ANNOTATION,
    LOG_BODIES_ANNOTATION,
    LOG_LEVEL_ANNOTATION,
    OUTPUT_FORMAT_ANNOTATION,
    OUTPUT_BATCH_SIZE_ANNOTATION,
    CA_BUNDLE_ANNOTATION,
    CPU_REQUEST_ANNOTATION,
    CPU_LIMIT_ANNOTATION,
    MEMORY_REQUEST_ANNOTATION,
    MEMORY_LIMIT_ANNOTATION,
    METRICS_PORT_ANNOTATION,
];

/// `REDACT_HEADERS` for a pod that names `v` (see [`values::redact_headers`]).
pub fn redact_headers(v: &str) -> Result<String, String> {
    values::redact_headers(v)
}

fn log_bodies(v: &str) -> Result<bool, String> {
    values::log_bodies(v)
}

fn log_level(v: &str) -> Result<String, String> {
    values::log_level(v)
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

/// The CA bundle for this pod, if any: the annotation's ConfigMap, else the webhook's default.
/// Applied only with an output URL (it is only read for HTTPS to the collector) and when the
/// pod has no volume of the same name. The ConfigMap must exist in the pod's namespace: the
/// kubelet does not start the sidecar without it (an event on the pod names it).
fn ca_bundle(
    pod: &Pod,
    settings: &InjectSettings,
    has_output_url: bool,
    warnings: &mut Vec<String>,
    invalid: &mut Vec<&'static str>,
) -> Option<(String, String)> {
    let shown = settings
        .ca_bundle
        .as_ref()
        .map_or_else(|| "(none)".to_string(), |(n, k)| format!("{n}/{k}"));
    let ca = override_value(
        pod,
        CA_BUNDLE_ANNOTATION,
        settings.ca_bundle.clone(),
        |v| values::configmap_ref(v).map(Some),
        warnings,
        invalid,
        &shown,
    )?;
    let from_pod =
        annotation(pod, CA_BUNDLE_ANNOTATION).is_some() && !invalid.contains(&CA_BUNDLE_ANNOTATION);
    let why_not = if !has_output_url {
        // The default bundle only matters to pods that send somewhere: no warning for those
        // that do not.
        if !from_pod {
            return None;
        }
        "there is no output URL to trust it for (set tcp-sniffer.dev/output-url)".to_string()
    } else if pod
        .spec
        .as_ref()
        .and_then(|s| s.volumes.as_ref())
        .is_some_and(|v| v.iter().any(|v| v.name == CA_VOLUME))
    {
        format!("the pod already has a volume named {CA_VOLUME}")
    } else {
        return Some(ca);
    };
    warnings.push(format!(
        "tcp-sniffer: {}: {why_not}; not applied",
        if from_pod {
            format!("annotation {CA_BUNDLE_ANNOTATION}")
        } else {
            "the webhook's default CA bundle".to_string()
        }
    ));
    if from_pod {
        invalid.push(CA_BUNDLE_ANNOTATION);
    }
    None
}

/// Request and limit of one resource: each annotation checked alone (a positive quantity),
/// then together with the other (or the default): a request above its limit would make the API
/// server refuse the whole pod, so the pod's values for this resource are then not applied.
fn resource_pair(
    pod: &Pod,
    what: &str,
    keys: [&'static str; 2],
    defaults: [&Option<String>; 2],
    warnings: &mut Vec<String>,
    invalid: &mut Vec<&'static str>,
) -> (Option<String>, Option<String>) {
    let shown = |d: &Option<String>| d.clone().unwrap_or_else(|| "(none)".into());
    let one = |i: usize, warnings: &mut Vec<String>, invalid: &mut Vec<&'static str>| {
        override_value(
            pod,
            keys[i],
            defaults[i].clone(),
            |v| values::positive_quantity(v).map(Some),
            warnings,
            invalid,
            &shown(defaults[i]),
        )
    };
    let request = one(0, warnings, invalid);
    let limit = one(1, warnings, invalid);
    let nanos = |q: &Option<String>| q.as_deref().and_then(values::quantity_nanos);
    match (nanos(&request), nanos(&limit)) {
        (Some(r), Some(l)) if r > l => {
            let set: Vec<&'static str> = keys
                .into_iter()
                .filter(|k| annotation(pod, k).is_some() && !invalid.contains(k))
                .collect();
            warnings.push(format!(
                "tcp-sniffer: annotation {}: the sidecar's {what} request {} would be above its limit {} (the API server refuses such a pod); using the defaults {} / {}",
                set.join(", "),
                request.as_deref().unwrap_or(""),
                limit.as_deref().unwrap_or(""),
                shown(defaults[0]),
                shown(defaults[1]),
            ));
            invalid.extend(set);
            (defaults[0].clone(), defaults[1].clone())
        }
        _ => (request, limit),
    }
}

/// Every TCP port the pod's containers declare (init containers too: the port is shared by
/// the whole pod's network namespace).
fn declared_ports(pod: &Pod) -> Vec<u16> {
    all_containers(pod)
        .flat_map(|c| c.ports.iter().flatten())
        .filter(|p| {
            p.protocol
                .as_deref()
                .is_none_or(|proto| proto.eq_ignore_ascii_case("TCP"))
        })
        .filter_map(|p| u16::try_from(p.container_port).ok())
        .collect()
}

/// The port of the sidecar's metrics endpoint. The sidecar shares the pod's network namespace:
/// a port the app uses (declared, or watched) would make the sidecar fail to listen, so the
/// webhook's default moves up to the next free port (with a warning), and an annotation that
/// names a used port is not applied.
fn metrics_port(
    pod: &Pod,
    watched: &[u16],
    settings: &InjectSettings,
    warnings: &mut Vec<String>,
    invalid: &mut Vec<&'static str>,
) -> u16 {
    let mut used = declared_ports(pod);
    used.extend_from_slice(watched);
    let default = settings.metrics_port;
    let port = override_value(
        pod,
        METRICS_PORT_ANNOTATION,
        default,
        |v| {
            let p = values::port(v)?;
            if used.contains(&p) {
                Err(format!("port {p} is used by the pod"))
            } else {
                Ok(p)
            }
        },
        warnings,
        invalid,
        &default.to_string(),
    );
    if !used.contains(&port) {
        return port;
    }
    let free = (port..=u16::MAX)
        .chain(1024..port)
        .find(|p| !used.contains(p))
        .unwrap_or(port);
    warnings.push(format!(
        "tcp-sniffer: port {port} is used by the pod; the sidecar's metrics listen on {free} (set {METRICS_PORT_ANNOTATION} to choose)"
    ));
    free
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
    // An annotation `any` gives an empty list: every port, recognised by content.
    let any_port = ports.as_ref().is_some_and(Vec::is_empty);
    let ports = ports.unwrap_or_else(|| container_ports(pod));
    if ports.is_empty() && !any_port {
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

    let output_format = override_value(
        pod,
        OUTPUT_FORMAT_ANNOTATION,
        settings.output_format.clone(),
        |v| values::output_format(v).map(Some),
        &mut warnings,
        &mut invalid,
        settings.output_format.as_deref().unwrap_or("json"),
    );
    // The table's rules between settings, on what the sidecar would get (e.g. otlp goes to
    // the output URL only): a combination it refuses is not applied, and the sidecar
    // writes JSON lines to stdout.
    let output_format = match values::sidecar_rules(&[
        ("OUTPUT_FORMAT", output_format.as_deref()),
        ("OUTPUT_URL", output_url.as_deref()),
    ]) {
        Err(why) => {
            let from_pod = annotation(pod, OUTPUT_FORMAT_ANNOTATION).is_some()
                && !invalid.contains(&OUTPUT_FORMAT_ANNOTATION);
            warnings.push(format!(
                "tcp-sniffer: {}: {why} (set {OUTPUT_URL_ANNOTATION}); not applied, the sidecar writes JSON lines to stdout",
                if from_pod { format!("annotation {OUTPUT_FORMAT_ANNOTATION}") } else { "the webhook's default output format".to_string() }
            ));
            if from_pod {
                invalid.push(OUTPUT_FORMAT_ANNOTATION);
            }
            None
        }
        Ok(()) => output_format,
    };
    let output_batch_size = override_value(
        pod,
        OUTPUT_BATCH_SIZE_ANNOTATION,
        settings.output_batch_size,
        |v| values::output_batch_size(v).map(Some),
        &mut warnings,
        &mut invalid,
        &settings.output_batch_size.map_or_else(
            || "(the sidecar's default, 1)".to_string(),
            |n| n.to_string(),
        ),
    );
    let ca_bundle = ca_bundle(
        pod,
        settings,
        output_url.is_some(),
        &mut warnings,
        &mut invalid,
    );
    let (cpu_request, cpu_limit) = resource_pair(
        pod,
        "cpu",
        [CPU_REQUEST_ANNOTATION, CPU_LIMIT_ANNOTATION],
        [
            &settings.resources.cpu_request,
            &settings.resources.cpu_limit,
        ],
        &mut warnings,
        &mut invalid,
    );
    let (memory_request, memory_limit) = resource_pair(
        pod,
        "memory",
        [MEMORY_REQUEST_ANNOTATION, MEMORY_LIMIT_ANNOTATION],
        [
            &settings.resources.memory_request,
            &settings.resources.memory_limit,
        ],
        &mut warnings,
        &mut invalid,
    );
    let resources = SidecarResources {
        cpu_request,
        cpu_limit,
        memory_request,
        memory_limit,
    };
    let metrics_port = metrics_port(pod, &ports, settings, &mut warnings, &mut invalid);

    let values = SidecarValues {
        ports,
        interface,
        output_url,
        sample_rate,
        max_body_size,
        redact_headers,
        stdout_bodies,
        log_level,
        output_format,
        output_batch_size,
        ca_bundle,
        resources,
        metrics_port,
    };
    let patch = build_patch(
        pod,
        &sidecar_container(&values, settings),
        &sidecar_volumes(&values),
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
    fn ports_annotation_any_watches_every_port() {
        let s = settings();
        // Even a pod that declares no port: `any` recognises HTTP by content.
        let mut p = simple(json!({"tcp-sniffer.dev/ports": "any"}));
        p.spec.as_mut().unwrap().containers[0].ports = None;
        let m = mutate(&p, &s);
        assert!(m.invalid_annotations.is_empty(), "{:?}", m.warnings);
        let v = serde_json::to_value(m.patch.unwrap()).unwrap();
        assert_eq!(
            v[0]["value"]["env"][0],
            json!({"name": "PORTS", "value": "any"})
        );
        let m = mutate(&simple(json!({"tcp-sniffer.dev/ports": "any,80"})), &s);
        assert_eq!(m.invalid_annotations, vec![PORTS_ANNOTATION]);
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
                "tcp-sniffer.dev/output-format": "xml",
                "tcp-sniffer.dev/output-batch-size": "0",
                "tcp-sniffer.dev/ca-bundle": "Corp CA",
                "tcp-sniffer.dev/cpu-request": "-1",
                "tcp-sniffer.dev/cpu-limit": "0",
                "tcp-sniffer.dev/memory-request": "1 Gi",
                "tcp-sniffer.dev/memory-limit": "big",
                "tcp-sniffer.dev/metrics-port": "http",
            })),
            &settings(),
        );
        assert_eq!(m.verdict, Verdict::Injected);
        assert_eq!(
            m.warnings.len(),
            VALUE_ANNOTATIONS.len(),
            "{:#?}",
            m.warnings
        );
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
