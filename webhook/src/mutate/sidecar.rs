//! The `tcp-sniffer` container: image, env (per SPEC.md "Configuration"), security context,
//! resources, the metrics port and, for a native sidecar, the startup probe; and the volume
//! that holds a private collector's CA bundle. Pure: the same values and settings always build
//! the same container.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{
    Capabilities, ConfigMapVolumeSource, Container, ContainerPort, EnvVar, EnvVarSource,
    ExecAction, KeyToPath, ObjectFieldSelector, Probe, ResourceRequirements, SeccompProfile,
    SecretKeySelector, SecurityContext, Volume, VolumeMount,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;

use crate::settings::{InjectSettings, SidecarResources};
use crate::values;

/// Name of the injected container.
pub const SIDECAR_NAME: &str = "tcp-sniffer";
/// Name of the container port of the sidecar's metrics endpoint.
pub const METRICS_PORT_NAME: &str = "metrics";
/// The pod volume holding the CA bundle (a ConfigMap).
pub const CA_VOLUME: &str = "tcp-sniffer-ca";
/// Where [`CA_VOLUME`] is mounted in the sidecar (read-only).
pub const CA_DIR: &str = "/etc/tcp-sniffer/ca";
/// The bundle file, whatever the ConfigMap's key: `SSL_CERT_FILE` names it. The engine then
/// trusts exactly these roots for the output URL (OpenSSL's convention: the file replaces the
/// default set).
pub const CA_FILE: &str = "/etc/tcp-sniffer/ca/ca.crt";

/// The sidecar's per-pod values after annotations were applied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SidecarValues {
    /// Ports to watch; empty means `any` (every TCP port, HTTP recognised by content).
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
    /// OUTPUT_FORMAT (None: the sidecar's default, `json`).
    pub output_format: Option<String>,
    /// OUTPUT_BATCH_SIZE (None: the sidecar's default, 1).
    pub output_batch_size: Option<u32>,
    /// ConfigMap name and key of the CA bundle (None: the image's roots).
    pub ca_bundle: Option<(String, String)>,
    /// Requests and limits.
    pub resources: SidecarResources,
    /// Port of the metrics endpoint (`METRICS_ADDR=0.0.0.0:PORT`).
    pub metrics_port: u16,
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
    if let Some(f) = &v.output_format {
        env_vars.push(env("OUTPUT_FORMAT", f.clone()));
    }
    if let Some(n) = v.output_batch_size {
        env_vars.push(env("OUTPUT_BATCH_SIZE", n.to_string()));
    }
    if v.ca_bundle.is_some() {
        env_vars.push(env("SSL_CERT_FILE", CA_FILE));
    }
    env_vars.extend([
        env_field("POD_NAME", "metadata.name"),
        env_field("POD_NAMESPACE", "metadata.namespace"),
        env_field("NODE_NAME", "spec.nodeName"),
        env_field("POD_IP", "status.podIP"),
        env("METRICS_ADDR", format!("0.0.0.0:{}", v.metrics_port)),
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
    let r = &v.resources;
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
        ports: Some(vec![ContainerPort {
            name: Some(METRICS_PORT_NAME.into()),
            container_port: i32::from(v.metrics_port),
            protocol: Some("TCP".into()),
            ..Default::default()
        }]),
        volume_mounts: v.ca_bundle.as_ref().map(|_| {
            vec![VolumeMount {
                name: CA_VOLUME.into(),
                mount_path: CA_DIR.into(),
                read_only: Some(true),
                ..Default::default()
            }]
        }),
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
/// after capture runs. The probe does not use the metrics endpoint: it answers once the
/// process listens, which says nothing about capture, and images without it must still start.
/// The probe runs the image's own node (the entrypoint's interpreter) on
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

/// The pod volumes the sidecar needs: the CA bundle's ConfigMap (its key as `ca.crt`), if any.
/// Not optional: a missing ConfigMap holds the sidecar back with an event that names it,
/// rather than starting a sidecar that cannot reach its collector.
pub fn sidecar_volumes(v: &SidecarValues) -> Vec<Volume> {
    let Some((name, key)) = &v.ca_bundle else {
        return Vec::new();
    };
    vec![Volume {
        name: CA_VOLUME.into(),
        config_map: Some(ConfigMapVolumeSource {
            name: name.clone(),
            items: Some(vec![KeyToPath {
                key: key.clone(),
                path: "ca.crt".into(),
                mode: None,
            }]),
            default_mode: Some(0o444),
            optional: Some(false),
        }),
        ..Default::default()
    }]
}
