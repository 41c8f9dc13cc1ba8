//! The kustomize manifests in `deploy/`, rendered offline and checked against the types and
//! the server they deploy.
//!
//! Every overlay is rendered with `kubectl kustomize` (through `tests/deploy/render.sh`, which
//! turns the YAML into JSON) and every object must parse as its `k8s-openapi` type *and
//! serialize back to the same JSON* (a misspelt or misplaced field would otherwise be dropped
//! silently). cert-manager's kinds are checked field by field. Then the cross-object rules:
//!
//! - the webhook configuration calls the Service (name, namespace, port) on `/mutate`, the
//!   Service's target port is the container port the server listens on (`LISTEN_ADDR`), and
//!   that is the server's own default;
//! - both webhook entries exclude `kube-system` and the webhook's own namespace, with
//!   `failurePolicy: Ignore`, `sideEffects: None`, `timeoutSeconds` ≤ 5, CREATE on pods; the
//!   selectors are evaluated on a table of namespaces and pods (opt-in by pod label or by
//!   namespace label, opt-out, never twice);
//! - the webhook pods are restricted (non-root, read-only root, no capabilities, no privilege
//!   escalation, RuntimeDefault seccomp), spread over nodes, probed (startup, liveness,
//!   readiness) over plain HTTP on the container port `probes`, which is the server's probe
//!   listener (`PROBE_ADDR`, its default);
//! - the NetworkPolicy opens exactly the TLS port and the probe port;
//! - the settings ConfigMap is accepted by the server's own settings parser;
//! - each certificate overlay delivers the Secret the Deployment mounts and the CA bundle;
//! - the example app is selected, and the server's `mutate` injects the configured image with
//!   the app's port.
//!
//! Negative cases mutate a rendered manifest and expect the checks to complain.
//! Needs `kubectl` and Python's `yaml` module (see `tests/deploy/render.sh`).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use clap::{CommandFactory, Parser};
use k8s_openapi::api::admissionregistration::v1::{MutatingWebhook, MutatingWebhookConfiguration};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{
    ConfigMap, Container, Namespace, Pod, PodSpec, Secret, Service, ServiceAccount,
};
use k8s_openapi::api::networking::v1::NetworkPolicy;
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding, Role, RoleBinding};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use serde_json::Value;
use tcp_sniffer_webhook::mutate::{
    mutate, Verdict, INJECT_KEY as INJECT_LABEL, NAMESPACE_LABEL as NS_LABEL,
};
use tcp_sniffer_webhook::settings::{Args, Settings};

const NAME_LABEL: &str = "kubernetes.io/metadata.name";

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// `kubectl kustomize deploy/<dir>` as a list of JSON objects.
fn render(dir: &str) -> Vec<Value> {
    let out = Command::new(repo().join("tests/deploy/render.sh"))
        .arg(repo().join("deploy").join(dir))
        .output()
        .expect("run tests/deploy/render.sh");
    assert!(
        out.status.success(),
        "rendering deploy/{dir} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let docs: Vec<Value> = serde_json::from_slice(&out.stdout).expect("render.sh prints JSON");
    assert!(!docs.is_empty(), "deploy/{dir} rendered nothing");
    docs
}

/// Drop JSON nulls (YAML `key:` with nothing after it), which the typed round trip omits.
fn without_nulls(v: &Value) -> Value {
    match v {
        Value::Object(m) => Value::Object(
            m.iter()
                .filter(|(_, v)| !v.is_null())
                .map(|(k, v)| (k.clone(), without_nulls(v)))
                .collect(),
        ),
        Value::Array(a) => Value::Array(a.iter().map(without_nulls).collect()),
        other => other.clone(),
    }
}

/// Parse as `T` and require the typed value to serialize back to the same JSON.
fn typed<T>(obj: &Value) -> Result<T, String>
where
    T: serde::de::DeserializeOwned + serde::Serialize,
{
    let t: T = serde_json::from_value(obj.clone()).map_err(|e| format!("{}: {e}", ident(obj)))?;
    let back = serde_json::to_value(&t).map_err(|e| e.to_string())?;
    let want = without_nulls(obj);
    if back != want {
        return Err(format!(
            "{} does not survive a round trip through its k8s-openapi type (unknown or misplaced field?)\n  rendered: {want}\n  typed:    {back}",
            ident(obj)
        ));
    }
    Ok(t)
}

fn ident(obj: &Value) -> String {
    format!(
        "{}/{} {}",
        obj["apiVersion"].as_str().unwrap_or("?"),
        obj["kind"].as_str().unwrap_or("?"),
        obj["metadata"]["name"].as_str().unwrap_or("?")
    )
}

/// One rendering, split by kind.
#[derive(Default)]
struct Rendered {
    namespaces: Vec<Namespace>,
    service_accounts: Vec<ServiceAccount>,
    config_maps: Vec<ConfigMap>,
    secrets: Vec<Secret>,
    services: Vec<Service>,
    deployments: Vec<Deployment>,
    pdbs: Vec<PodDisruptionBudget>,
    network_policies: Vec<NetworkPolicy>,
    roles: Vec<Role>,
    role_bindings: Vec<RoleBinding>,
    cluster_roles: Vec<ClusterRole>,
    cluster_role_bindings: Vec<ClusterRoleBinding>,
    webhook_configs: Vec<MutatingWebhookConfiguration>,
    /// cert-manager.io Issuers and Certificates, untyped (they are CRDs).
    cert_manager: Vec<Value>,
}

fn split(docs: &[Value]) -> Result<Rendered, Vec<String>> {
    let mut r = Rendered::default();
    let mut errors = Vec::new();
    for d in docs {
        let api = d["apiVersion"].as_str().unwrap_or_default();
        let kind = d["kind"].as_str().unwrap_or_default();
        let res = match (api, kind) {
            ("v1", "Namespace") => typed(d).map(|t| r.namespaces.push(t)),
            ("v1", "ServiceAccount") => typed(d).map(|t| r.service_accounts.push(t)),
            ("v1", "ConfigMap") => typed(d).map(|t| r.config_maps.push(t)),
            ("v1", "Secret") => typed(d).map(|t| r.secrets.push(t)),
            ("v1", "Service") => typed(d).map(|t| r.services.push(t)),
            ("apps/v1", "Deployment") => typed(d).map(|t| r.deployments.push(t)),
            ("policy/v1", "PodDisruptionBudget") => typed(d).map(|t| r.pdbs.push(t)),
            ("rbac.authorization.k8s.io/v1", "Role") => typed(d).map(|t| r.roles.push(t)),
            ("rbac.authorization.k8s.io/v1", "RoleBinding") => {
                typed(d).map(|t| r.role_bindings.push(t))
            }
            ("rbac.authorization.k8s.io/v1", "ClusterRole") => {
                typed(d).map(|t| r.cluster_roles.push(t))
            }
            ("rbac.authorization.k8s.io/v1", "ClusterRoleBinding") => {
                typed(d).map(|t| r.cluster_role_bindings.push(t))
            }
            ("networking.k8s.io/v1", "NetworkPolicy") => {
                typed(d).map(|t| r.network_policies.push(t))
            }
            ("admissionregistration.k8s.io/v1", "MutatingWebhookConfiguration") => {
                typed(d).map(|t| r.webhook_configs.push(t))
            }
            ("cert-manager.io/v1", "Issuer" | "Certificate") => cert_manager_object(d)
                .map(|_| r.cert_manager.push(d.clone()))
                .map_err(|e| format!("{}: {e}", ident(d))),
            _ => Err(format!("{}: a kind this test does not know", ident(d))),
        };
        if let Err(e) = res {
            errors.push(e);
        }
    }
    if errors.is_empty() {
        Ok(r)
    } else {
        Err(errors)
    }
}

/// The fields cert-manager requires (cert-manager.io/v1), checked by hand.
fn cert_manager_object(d: &Value) -> Result<(), String> {
    let allowed_top = ["apiVersion", "kind", "metadata", "spec"];
    if let Some(k) = d
        .as_object()
        .unwrap()
        .keys()
        .find(|k| !allowed_top.contains(&k.as_str()))
    {
        return Err(format!("unexpected top-level field {k}"));
    }
    let spec = d["spec"].as_object().ok_or("no spec")?;
    match d["kind"].as_str() {
        Some("Issuer") => {
            let kinds: Vec<_> = spec.keys().collect();
            match kinds.as_slice() {
                [k] if *k == "selfSigned" => Ok(()),
                [k] if *k == "ca" && spec["ca"]["secretName"].is_string() => Ok(()),
                _ => Err(format!(
                    "an Issuer here is selfSigned or ca with a secretName, got {kinds:?}"
                )),
            }
        }
        _ => {
            let known = [
                "secretName",
                "issuerRef",
                "isCA",
                "commonName",
                "dnsNames",
                "duration",
                "renewBefore",
                "usages",
                "privateKey",
            ];
            if let Some(k) = spec.keys().find(|k| !known.contains(&k.as_str())) {
                return Err(format!("unexpected Certificate field {k}"));
            }
            if !spec.get("secretName").is_some_and(Value::is_string) {
                return Err("Certificate without secretName".into());
            }
            let issuer = &spec["issuerRef"];
            if issuer["name"].as_str().is_none() || issuer["kind"] != "Issuer" {
                return Err("Certificate issuerRef must name an Issuer".into());
            }
            let is_ca = spec.get("isCA") == Some(&Value::Bool(true));
            if !is_ca && !spec.get("dnsNames").is_some_and(Value::is_array) {
                return Err("serving Certificate without dnsNames".into());
            }
            for (k, v) in spec
                .get("privateKey")
                .and_then(Value::as_object)
                .into_iter()
                .flatten()
            {
                let ok = match k.as_str() {
                    "algorithm" => ["RSA", "ECDSA", "Ed25519"].contains(&v.as_str().unwrap_or("")),
                    "size" => v.is_u64(),
                    "rotationPolicy" => ["Always", "Never"].contains(&v.as_str().unwrap_or("")),
                    "encoding" => ["PKCS1", "PKCS8"].contains(&v.as_str().unwrap_or("")),
                    _ => false,
                };
                if !ok {
                    return Err(format!("privateKey.{k}: {v} is not accepted"));
                }
            }
            Ok(())
        }
    }
}

// ------------------------------------------------------------------ label selectors

/// Kubernetes label-selector semantics: matchLabels AND every matchExpression; `NotIn` and
/// `DoesNotExist` match when the key is absent. `None` (no selector) matches everything.
fn selects(sel: Option<&LabelSelector>, labels: &BTreeMap<String, String>) -> bool {
    let Some(sel) = sel else { return true };
    let labels_ok = sel
        .match_labels
        .iter()
        .flatten()
        .all(|(k, v)| labels.get(k) == Some(v));
    let exprs_ok = sel.match_expressions.iter().flatten().all(|e| {
        let vals = e.values.clone().unwrap_or_default();
        let have = labels.get(&e.key);
        match e.operator.as_str() {
            "In" => have.is_some_and(|v| vals.contains(v)),
            "NotIn" => !have.is_some_and(|v| vals.contains(v)),
            "Exists" => have.is_some(),
            "DoesNotExist" => have.is_none(),
            other => panic!("unknown selector operator {other}"),
        }
    });
    labels_ok && exprs_ok
}

fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// Namespace labels as the API server sees them (it always sets kubernetes.io/metadata.name).
fn ns_labels(name: &str, extra: &[(&str, &str)]) -> BTreeMap<String, String> {
    let mut l = labels(extra);
    l.insert(NAME_LABEL.into(), name.into());
    l
}

/// The webhook entries the API server would call for a pod CREATE in that namespace.
fn entries_called<'a>(
    cfg: &'a MutatingWebhookConfiguration,
    ns: &BTreeMap<String, String>,
    pod: &BTreeMap<String, String>,
) -> Vec<&'a str> {
    cfg.webhooks
        .iter()
        .flatten()
        .filter(|w| selects(w.namespace_selector.as_ref(), ns))
        .filter(|w| selects(w.object_selector.as_ref(), pod))
        .map(|w| w.name.as_str())
        .collect()
}

// ------------------------------------------------------------------ the checks

type Labels<'a> = &'a [(&'a str, &'a str)];
/// (namespace, its labels, pod labels, how many webhook entries must be called)
type SelectorCase<'a> = (&'a str, Labels<'a>, Labels<'a>, usize);
/// (what is broken, how, a word the problem report must contain)
type BreakCase = (&'static str, Box<dyn Fn(&mut Value)>, &'static str);

/// The webhook's server side: Deployment, its container, Service, settings.
struct Server<'a> {
    namespace: String,
    deployment: &'a Deployment,
    container: &'a Container,
    service: &'a Service,
    env: BTreeMap<String, String>,
}

fn pod_spec(d: &Deployment) -> &PodSpec {
    d.spec
        .as_ref()
        .and_then(|s| s.template.spec.as_ref())
        .expect("a Deployment has a pod template spec")
}

fn server(r: &Rendered) -> Result<Server<'_>, String> {
    let [deployment] = r.deployments.as_slice() else {
        return Err(format!(
            "expected one Deployment, found {}",
            r.deployments.len()
        ));
    };
    let namespace = deployment
        .metadata
        .namespace
        .clone()
        .ok_or("the Deployment has no namespace")?;
    let container = pod_spec(deployment)
        .containers
        .iter()
        .find(|c| c.name == "webhook")
        .ok_or("no container named webhook")?;
    let tmpl_labels = deployment
        .spec
        .as_ref()
        .and_then(|s| s.template.metadata.as_ref())
        .and_then(|m| m.labels.clone())
        .unwrap_or_default();
    let service = r
        .services
        .iter()
        .find(|s| {
            s.spec
                .as_ref()
                .and_then(|s| s.selector.as_ref())
                .is_some_and(|sel| sel.iter().all(|(k, v)| tmpl_labels.get(k) == Some(v)))
        })
        .ok_or("no Service selects the webhook pods")?;
    // Settings: the ConfigMaps the container takes its environment from, then its own env.
    let mut env = BTreeMap::new();
    for from in container.env_from.iter().flatten() {
        let name = from
            .config_map_ref
            .as_ref()
            .map(|c| c.name.clone())
            .ok_or("envFrom without a configMapRef")?;
        let cm = r
            .config_maps
            .iter()
            .find(|c| c.metadata.name.as_deref() == Some(name.as_str()))
            .ok_or(format!(
                "envFrom names ConfigMap {name}, which is not rendered"
            ))?;
        env.extend(cm.data.clone().unwrap_or_default());
    }
    for e in container.env.iter().flatten() {
        env.insert(e.name.clone(), e.value.clone().unwrap_or_default());
    }
    Ok(Server {
        namespace,
        deployment,
        container,
        service,
        env,
    })
}

/// Turn the settings environment into the server's flags and validate them with the server's
/// own parser: an unknown variable or a refused value fails here, not in the cluster.
fn server_settings(env: &BTreeMap<String, String>) -> Result<Settings, String> {
    let cmd = Args::command();
    let mut argv = vec!["tcp-sniffer-webhook".to_string()];
    for (k, v) in env {
        let arg = cmd
            .get_arguments()
            .find(|a| a.get_env().is_some_and(|e| e == k.as_str()))
            .ok_or(format!("{k} is not a setting of tcp-sniffer-webhook"))?;
        argv.push(format!(
            "--{}={v}",
            arg.get_long().expect("settings have long flags")
        ));
    }
    Args::try_parse_from(&argv)
        .map_err(|e| e.to_string())?
        .validate()
        .map_err(|e| e.to_string())
}

fn check_server(r: &Rendered) -> Vec<String> {
    let mut p = Vec::new();
    let s = match server(r) {
        Ok(s) => s,
        Err(e) => return vec![e],
    };
    let settings = match server_settings(&s.env) {
        Ok(v) => Some(v),
        Err(e) => {
            p.push(format!("webhook settings: {e}"));
            None
        }
    };

    // Ports: Service port -> targetPort -> containerPort == LISTEN_ADDR port == server default.
    let default_listen = Args::try_parse_from(["x"]).unwrap().listen;
    let listen_port = |a: &str| a.rsplit(':').next().and_then(|p| p.parse::<i32>().ok());
    let listen = s
        .env
        .get("LISTEN_ADDR")
        .cloned()
        .unwrap_or(default_listen.clone());
    if listen != default_listen {
        p.push(format!(
            "LISTEN_ADDR {listen} differs from the server's default {default_listen}"
        ));
    }
    let port = listen_port(&listen);
    let https = s
        .container
        .ports
        .iter()
        .flatten()
        .find(|cp| cp.name.as_deref() == Some("https"));
    match https {
        Some(cp) if Some(cp.container_port) == port => {}
        other => p.push(format!(
            "containerPort https {:?} is not the listen port {port:?}",
            other.map(|c| c.container_port)
        )),
    }
    let svc_ports = s
        .service
        .spec
        .as_ref()
        .and_then(|x| x.ports.clone())
        .unwrap_or_default();
    for sp in &svc_ports {
        let target = match &sp.target_port {
            Some(IntOrString::Int(i)) => Some(*i),
            Some(IntOrString::String(n)) => s
                .container
                .ports
                .iter()
                .flatten()
                .find(|cp| cp.name.as_deref() == Some(n.as_str()))
                .map(|cp| cp.container_port),
            None => Some(sp.port),
        };
        if target != port {
            p.push(format!(
                "Service port {} targets {target:?}, not the listen port {port:?}",
                sp.port
            ));
        }
    }

    // Probes over plain HTTP on the probe listener: containerPort `probes` == PROBE_ADDR port
    // == the server's default (the TLS port's cap must not fail them).
    let default_probe = Args::try_parse_from(["x"]).unwrap().probe_addr;
    let probe_addr = s
        .env
        .get("PROBE_ADDR")
        .cloned()
        .unwrap_or(default_probe.clone());
    if probe_addr != default_probe {
        p.push(format!(
            "PROBE_ADDR {probe_addr} differs from the server's default {default_probe}"
        ));
    }
    let probe_port = listen_port(&probe_addr);
    let probes_cp = s
        .container
        .ports
        .iter()
        .flatten()
        .find(|cp| cp.name.as_deref() == Some("probes"));
    match probes_cp {
        Some(cp) if Some(cp.container_port) == probe_port && cp.protocol.as_deref() == Some("TCP") => {}
        other => p.push(format!(
            "containerPort probes {:?} is not the probe listener's port {probe_port:?} (PROBE_ADDR)",
            other.map(|c| c.container_port)
        )),
    }
    for (what, probe, path) in [
        ("startup", &s.container.startup_probe, "/healthz"),
        ("liveness", &s.container.liveness_probe, "/healthz"),
        ("readiness", &s.container.readiness_probe, "/readyz"),
    ] {
        let get = probe.as_ref().and_then(|pr| pr.http_get.as_ref());
        match get {
            Some(g)
                if g.path.as_deref() == Some(path)
                    && g.scheme.as_deref() == Some("HTTP")
                    && (g.port == IntOrString::String("probes".into())
                        || Some(g.port.clone()) == probe_port.map(IntOrString::Int)) => {}
            _ => p.push(format!(
                "{what} probe must GET {path} over HTTP on the probe port (containerPort probes, PROBE_ADDR)"
            )),
        }
    }

    // Replicas, spread, disruption budget.
    let spec = s.deployment.spec.as_ref().unwrap();
    if spec.replicas.unwrap_or(1) < 2 {
        p.push("the webhook Deployment needs at least 2 replicas".into());
    }
    let pod = pod_spec(s.deployment);
    let spread = pod
        .topology_spread_constraints
        .iter()
        .flatten()
        .any(|t| t.topology_key == "kubernetes.io/hostname");
    let anti = pod
        .affinity
        .as_ref()
        .and_then(|a| a.pod_anti_affinity.as_ref())
        .is_some();
    if !spread && !anti {
        p.push("the webhook replicas are not spread across nodes".into());
    }
    let tmpl_labels = spec
        .template
        .metadata
        .as_ref()
        .and_then(|m| m.labels.clone())
        .unwrap_or_default();
    if !r.pdbs.iter().any(|b| {
        b.spec
            .as_ref()
            .is_some_and(|b| b.selector.is_some() && selects(b.selector.as_ref(), &tmpl_labels))
    }) {
        p.push("no PodDisruptionBudget covers the webhook pods".into());
    }

    // Restricted security context (pod level, container level).
    let psc = pod.security_context.as_ref();
    let csc = s.container.security_context.as_ref();
    let run_as_non_root = csc
        .and_then(|c| c.run_as_non_root)
        .or(psc.and_then(|c| c.run_as_non_root));
    if run_as_non_root != Some(true) {
        p.push("runAsNonRoot must be true".into());
    }
    let seccomp = csc
        .and_then(|c| c.seccomp_profile.as_ref())
        .or(psc.and_then(|c| c.seccomp_profile.as_ref()));
    if seccomp.map(|s| s.type_.as_str()) != Some("RuntimeDefault") {
        p.push("seccompProfile must be RuntimeDefault".into());
    }
    match csc {
        None => p.push("the webhook container has no securityContext".into()),
        Some(c) => {
            if c.allow_privilege_escalation != Some(false) {
                p.push("allowPrivilegeEscalation must be false".into());
            }
            if c.read_only_root_filesystem != Some(true) {
                p.push("readOnlyRootFilesystem must be true".into());
            }
            if c.privileged == Some(true) {
                p.push("privileged must not be true".into());
            }
            let caps = c.capabilities.as_ref();
            if caps.and_then(|c| c.drop.clone()) != Some(vec!["ALL".to_string()]) {
                p.push("capabilities must drop ALL".into());
            }
            if caps
                .and_then(|c| c.add.as_ref())
                .is_some_and(|a| !a.is_empty())
            {
                p.push("the webhook needs no added capability".into());
            }
            if c.run_as_user.or(psc.and_then(|c| c.run_as_user)) == Some(0) {
                p.push("runAsUser must not be 0".into());
            }
        }
    }
    let bootstraps = settings.as_ref().is_some_and(|st| st.bootstrap.is_some());
    if bootstraps && pod.automount_service_account_token != Some(true) {
        p.push("the certificate bootstrap needs automountServiceAccountToken: true".into());
    }
    if !bootstraps && pod.automount_service_account_token != Some(false) {
        p.push(
            "the webhook never calls the API: automountServiceAccountToken should be false".into(),
        );
    }
    let res = s.container.resources.as_ref();
    if res.and_then(|r| r.requests.as_ref()).is_none()
        || res.and_then(|r| r.limits.as_ref()).is_none()
    {
        p.push("the webhook container needs resource requests and limits".into());
    }

    // The TLS files are in the mounted Secret; the grace period covers the shutdown.
    if let Some(st) = &settings {
        let mount = s.container.volume_mounts.iter().flatten().find(|m| {
            st.server.tls_cert.starts_with(&m.mount_path)
                && st.server.tls_key.starts_with(&m.mount_path)
        });
        let volume = mount.and_then(|m| pod.volumes.iter().flatten().find(|v| v.name == m.name));
        if st.bootstrap.is_some() {
            // The webhook writes the files itself: a writable emptyDir.
            if volume.and_then(|v| v.empty_dir.as_ref()).is_none()
                || mount.is_some_and(|m| m.read_only == Some(true))
            {
                p.push("with BOOTSTRAP_SECRET, TLS_CERT_FILE/TLS_KEY_FILE must be in a writable emptyDir".into());
            }
        } else if volume
            .and_then(|v| v.secret.as_ref())
            .and_then(|s| s.secret_name.clone())
            .is_none()
        {
            p.push("TLS_CERT_FILE/TLS_KEY_FILE are not in a mounted Secret".into());
        }
        let grace = pod.termination_grace_period_seconds.unwrap_or(30) as u128 * 1000;
        let shutdown = (st.server.shutdown_delay + st.server.shutdown_timeout).as_millis();
        if shutdown >= grace {
            p.push(format!(
                "shutdown delay + timeout ({shutdown} ms) must stay below terminationGracePeriodSeconds ({grace} ms)"
            ));
        }
    }
    p
}

fn check_webhook_config(r: &Rendered) -> Vec<String> {
    let mut p = Vec::new();
    let s = match server(r) {
        Ok(s) => s,
        Err(e) => return vec![e],
    };
    let [cfg] = r.webhook_configs.as_slice() else {
        return vec![format!(
            "expected one MutatingWebhookConfiguration, found {}",
            r.webhook_configs.len()
        )];
    };
    let hooks: &[MutatingWebhook] = cfg.webhooks.as_deref().unwrap_or_default();
    if hooks.len() != 2 {
        p.push(format!(
            "expected 2 webhook entries (pod label, namespace label), found {}",
            hooks.len()
        ));
    }
    let svc_name = s.service.metadata.name.clone().unwrap_or_default();
    let svc_ns = s.service.metadata.namespace.clone().unwrap_or_default();
    let svc_ports: Vec<i32> = s
        .service
        .spec
        .as_ref()
        .and_then(|x| x.ports.as_ref())
        .into_iter()
        .flatten()
        .map(|sp| sp.port)
        .collect();
    for w in hooks {
        let n = &w.name;
        match w.client_config.service.as_ref() {
            None => p.push(format!("{n}: clientConfig must name the Service")),
            Some(cs) => {
                if cs.name != svc_name || cs.namespace != svc_ns {
                    p.push(format!(
                        "{n}: calls Service {}/{}, but the webhook's Service is {svc_ns}/{svc_name}",
                        cs.namespace, cs.name
                    ));
                }
                if cs.path.as_deref() != Some("/mutate") {
                    p.push(format!("{n}: path must be /mutate, is {:?}", cs.path));
                }
                if !svc_ports.contains(&cs.port.unwrap_or(443)) {
                    p.push(format!(
                        "{n}: port {:?} is not a port of the Service {svc_ports:?}",
                        cs.port
                    ));
                }
            }
        }
        if w.client_config.url.is_some() {
            p.push(format!("{n}: use the Service, not a url"));
        }
        if w.failure_policy.as_deref() != Some("Ignore") {
            p.push(format!(
                "{n}: failurePolicy must be Ignore (never block a pod), is {:?}",
                w.failure_policy
            ));
        }
        if w.side_effects != "None" {
            p.push(format!(
                "{n}: sideEffects must be None, is {}",
                w.side_effects
            ));
        }
        match w.timeout_seconds {
            Some(t) if (1..=5).contains(&t) => {}
            t => p.push(format!(
                "{n}: timeoutSeconds must be set and at most 5, is {t:?}"
            )),
        }
        if w.admission_review_versions != ["v1"] {
            p.push(format!("{n}: admissionReviewVersions must be [v1]"));
        }
        if w.reinvocation_policy.as_deref() != Some("IfNeeded") {
            p.push(format!(
                "{n}: reinvocationPolicy should be IfNeeded, is {:?}",
                w.reinvocation_policy
            ));
        }
        let rules = w.rules.as_deref().unwrap_or_default();
        let pods_create = rules.len() == 1
            && rules[0].operations.as_deref() == Some(&["CREATE".to_string()][..])
            && rules[0].resources.as_deref() == Some(&["pods".to_string()][..])
            && rules[0].api_groups.as_deref() == Some(&[String::new()][..]);
        if !pods_create {
            p.push(format!("{n}: rules must be exactly CREATE on core pods"));
        }
        // Explicit exclusion of kube-system and the webhook's own namespace.
        let excluded = |ns: &str| {
            w.namespace_selector
                .as_ref()
                .and_then(|s| s.match_expressions.as_ref())
                .into_iter()
                .flatten()
                .any(|e| {
                    e.key == NAME_LABEL
                        && e.operator == "NotIn"
                        && e.values.iter().flatten().any(|v| v == ns)
                })
        };
        for ns in ["kube-system", s.namespace.as_str()] {
            if !excluded(ns) {
                p.push(format!(
                    "{n}: namespaceSelector must exclude {ns} ({NAME_LABEL} NotIn)"
                ));
            }
        }
    }

    // Who gets injected: (namespace, its labels, pod labels) -> entries called.
    let own = s.namespace.as_str();
    let enabled = [(NS_LABEL, "enabled")];
    let cases: [SelectorCase; 9] = [
        ("default", &[], &[(INJECT_LABEL, "true")], 1),
        ("default", &[], &[], 0),
        ("default", &[], &[(INJECT_LABEL, "false")], 0),
        ("apps", &enabled, &[], 1),
        ("apps", &enabled, &[(INJECT_LABEL, "true")], 1),
        ("apps", &enabled, &[(INJECT_LABEL, "false")], 0),
        ("kube-system", &enabled, &[(INJECT_LABEL, "true")], 0),
        (own, &enabled, &[(INJECT_LABEL, "true")], 0),
        (own, &[], &[(INJECT_LABEL, "true")], 0),
    ];
    for (ns, nsl, podl, want) in cases {
        let got = entries_called(cfg, &ns_labels(ns, nsl), &labels(podl));
        if got.len() != want {
            p.push(format!(
                "a pod labelled {podl:?} in namespace {ns} {nsl:?} is sent to {got:?}, expected {want} entr{}",
                if want == 1 { "y" } else { "ies" }
            ));
        }
    }
    p
}

fn tls_secret_name(r: &Rendered) -> String {
    let s = server(r).expect("server objects");
    let settings = server_settings(&s.env).expect("valid settings");
    let mount = s
        .container
        .volume_mounts
        .iter()
        .flatten()
        .find(|m| settings.server.tls_cert.starts_with(&m.mount_path))
        .expect("TLS mount");
    pod_spec(s.deployment)
        .volumes
        .iter()
        .flatten()
        .find(|v| v.name == mount.name)
        .and_then(|v| v.secret.as_ref())
        .and_then(|s| s.secret_name.clone())
        .expect("TLS Secret volume")
}

fn check_cert_manager(r: &Rendered) -> Vec<String> {
    let mut p = Vec::new();
    let s = server(r).expect("server objects");
    let ns = s.namespace.clone();
    let secret = tls_secret_name(r);
    let svc_dns = format!(
        "{}.{}.svc",
        s.service.metadata.name.as_deref().unwrap_or_default(),
        ns
    );
    let find = |kind: &str, name: &str| {
        r.cert_manager.iter().find(|o| {
            o["kind"] == kind
                && o["metadata"]["name"] == name
                && o["metadata"]["namespace"] == ns.as_str()
        })
    };
    let serving = r
        .cert_manager
        .iter()
        .find(|o| o["kind"] == "Certificate" && o["spec"]["secretName"] == secret.as_str());
    let Some(serving) = serving else {
        return vec![format!(
            "no Certificate writes the Secret {secret} the Deployment mounts"
        )];
    };
    let dns: Vec<&str> = serving["spec"]["dnsNames"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .collect();
    if !dns.contains(&svc_dns.as_str()) {
        p.push(format!(
            "the serving Certificate's dnsNames {dns:?} lack {svc_dns}"
        ));
    }
    // The issuer chain: serving <- CA issuer <- CA certificate <- self-signed issuer.
    let issuer_name = serving["spec"]["issuerRef"]["name"]
        .as_str()
        .unwrap_or_default();
    match find("Issuer", issuer_name) {
        None => p.push(format!(
            "the serving Certificate's Issuer {issuer_name} is not rendered"
        )),
        Some(issuer) => {
            let ca_secret = issuer["spec"]["ca"]["secretName"]
                .as_str()
                .unwrap_or_default();
            let ca = r.cert_manager.iter().find(|o| {
                o["kind"] == "Certificate"
                    && o["spec"]["secretName"] == ca_secret
                    && o["spec"]["isCA"] == true
            });
            match ca {
                None => p.push(format!(
                    "no CA Certificate writes {ca_secret:?} for Issuer {issuer_name}"
                )),
                Some(ca) => {
                    let root = ca["spec"]["issuerRef"]["name"].as_str().unwrap_or_default();
                    if find("Issuer", root).map(|i| i["spec"].get("selfSigned").is_some())
                        != Some(true)
                    {
                        p.push(format!("the CA Certificate's Issuer {root} must be a rendered selfSigned Issuer"));
                    }
                }
            }
        }
    }
    let serving_name = serving["metadata"]["name"].as_str().unwrap_or_default();
    let want = format!("{ns}/{serving_name}");
    let cfg = &r.webhook_configs[0];
    let got = cfg
        .metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get("cert-manager.io/inject-ca-from"));
    if got != Some(&want) {
        p.push(format!(
            "cert-manager.io/inject-ca-from is {got:?}, expected {want}"
        ));
    }
    p
}

/// The self-signed overlay: the webhook bootstraps its own certificate. The Secret it names
/// is rendered (empty, no placeholder), its RBAC grants exactly the verbs it uses on exactly
/// the Secret and the webhook configuration, bound to the Deployment's service account, and
/// the names it is given are the rendered objects' names.
fn check_self_signed(r: &Rendered) -> Vec<String> {
    let mut p = Vec::new();
    let s = match server(r) {
        Ok(s) => s,
        Err(e) => return vec![e],
    };
    let settings = match server_settings(&s.env) {
        Ok(x) => x,
        Err(e) => return vec![e],
    };
    let Some(b) = settings.bootstrap else {
        return vec!["BOOTSTRAP_SECRET is not set".into()];
    };
    match r
        .secrets
        .iter()
        .find(|x| x.metadata.name.as_deref() == Some(b.secret.as_str()))
    {
        None => p.push(format!("the Secret {} is not rendered", b.secret)),
        Some(x) => {
            if x.metadata.namespace.as_deref() != Some(s.namespace.as_str()) {
                p.push(format!("the Secret {} is not in {}", b.secret, s.namespace));
            }
            if x.data.is_some() || x.string_data.is_some() {
                p.push(
                    "the Secret must be rendered without data (re-applying keeps the webhook's)"
                        .into(),
                );
            }
        }
    }
    let cfg = r.webhook_configs[0]
        .metadata
        .name
        .clone()
        .unwrap_or_default();
    if b.webhook_config != cfg {
        p.push(format!(
            "BOOTSTRAP_WEBHOOK_CONFIG {} is not {cfg}",
            b.webhook_config
        ));
    }
    if b.service != s.service.metadata.name.clone().unwrap_or_default() {
        p.push(format!(
            "BOOTSTRAP_SERVICE {} is not the Service",
            b.service
        ));
    }
    if !b.namespace.is_empty() && b.namespace != s.namespace {
        p.push(format!(
            "POD_NAMESPACE {} is not {}",
            b.namespace, s.namespace
        ));
    }
    let sa = pod_spec(s.deployment)
        .service_account_name
        .clone()
        .unwrap_or_default();
    let rule = |rules: &Option<Vec<k8s_openapi::api::rbac::v1::PolicyRule>>| {
        rules
            .clone()
            .unwrap_or_default()
            .into_iter()
            .map(|r| {
                (
                    r.api_groups.unwrap_or_default(),
                    r.resources.unwrap_or_default(),
                    r.resource_names.unwrap_or_default(),
                    r.verbs,
                )
            })
            .collect::<Vec<_>>()
    };
    let strings = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<Vec<_>>();
    let want_role = vec![(
        strings(&[""]),
        strings(&["secrets"]),
        vec![b.secret.clone()],
        strings(&["get", "update", "patch"]),
    )];
    let want_cluster = vec![(
        strings(&["admissionregistration.k8s.io"]),
        strings(&["mutatingwebhookconfigurations"]),
        vec![cfg.clone()],
        strings(&["get", "patch"]),
    )];
    match (&r.roles[..], &r.role_bindings[..]) {
        ([role], [rb]) => {
            if rule(&role.rules) != want_role {
                p.push(format!(
                    "Role rules: {:?}, expected {want_role:?}",
                    rule(&role.rules)
                ));
            }
            if role.metadata.namespace.as_deref() != Some(s.namespace.as_str()) {
                p.push("the Role is not in the webhook's namespace".into());
            }
            if rb.role_ref.name != role.metadata.name.clone().unwrap_or_default()
                || rb.role_ref.kind != "Role"
                || !rb
                    .subjects
                    .iter()
                    .flatten()
                    .all(|x| x.kind == "ServiceAccount" && x.name == sa)
            {
                p.push(
                    "the RoleBinding must bind the Role to the webhook's service account".into(),
                );
            }
        }
        _ => p.push("expected one Role and one RoleBinding".into()),
    }
    match (&r.cluster_roles[..], &r.cluster_role_bindings[..]) {
        ([cr], [crb]) => {
            if rule(&cr.rules) != want_cluster {
                p.push(format!(
                    "ClusterRole rules: {:?}, expected {want_cluster:?}",
                    rule(&cr.rules)
                ));
            }
            if crb.role_ref.name != cr.metadata.name.clone().unwrap_or_default()
                || crb.role_ref.kind != "ClusterRole"
                || !crb.subjects.iter().flatten().all(|x| {
                    x.kind == "ServiceAccount"
                        && x.name == sa
                        && x.namespace.as_deref() == Some(s.namespace.as_str())
                })
            {
                p.push("the ClusterRoleBinding must bind the ClusterRole to the webhook's service account".into());
            }
        }
        _ => p.push("expected one ClusterRole and one ClusterRoleBinding".into()),
    }
    p
}

fn assert_clean(what: &str, problems: Vec<String>) {
    assert!(
        problems.is_empty(),
        "{what}:\n  - {}",
        problems.join("\n  - ")
    );
}

/// The NetworkPolicy selects the webhook pods, covers ingress, and opens exactly two ports in
/// one rule (so the same sources reach both): the container port the server listens on and
/// the probe listener's (`probes`, for the kubelet), TCP. `sources` is what `from` must be (empty =
/// any source).
fn check_network_policy(r: &Rendered, sources: &[&str]) -> Vec<String> {
    let mut p = Vec::new();
    let [np] = &r.network_policies[..] else {
        return vec![format!(
            "expected one NetworkPolicy, got {}",
            r.network_policies.len()
        )];
    };
    let Some(d) = r.deployments.first() else {
        return vec!["no Deployment".into()];
    };
    let pod_labels = d
        .spec
        .as_ref()
        .and_then(|s| s.template.metadata.as_ref())
        .and_then(|m| m.labels.clone())
        .unwrap_or_default();
    let Some(spec) = &np.spec else {
        return vec!["NetworkPolicy without spec".into()];
    };
    let sel = spec.pod_selector.as_ref();
    if sel
        .and_then(|s| s.match_labels.as_ref())
        .is_none_or(|m| m.is_empty())
        || !selects(sel, &pod_labels)
    {
        p.push("the NetworkPolicy must select exactly the webhook pods".into());
    }
    if spec.policy_types.as_deref() != Some(&["Ingress".to_string()][..]) {
        p.push(format!(
            "policyTypes must be [Ingress], got {:?}",
            spec.policy_types
        ));
    }
    let container = &pod_spec(d).containers[0];
    let named = |name: &str| {
        container
            .ports
            .iter()
            .flatten()
            .find(|cp| cp.name.as_deref() == Some(name))
    };
    let opens = |np: &k8s_openapi::api::networking::v1::NetworkPolicyPort, name: &str| {
        np.protocol.as_deref() == Some("TCP")
            && np.end_port.is_none()
            && match (&np.port, named(name)) {
                (Some(IntOrString::String(n)), Some(h)) => h.name.as_deref() == Some(n),
                (Some(IntOrString::Int(i)), Some(h)) => *i == h.container_port,
                _ => false,
            }
    };
    let rules = spec.ingress.clone().unwrap_or_default();
    if rules.len() != 1 {
        p.push(format!("expected one ingress rule, got {}", rules.len()));
    }
    for rule in &rules {
        let ports = rule.ports.clone().unwrap_or_default();
        let ok = ports.len() == 2
            && ports.iter().any(|np| opens(np, "https"))
            && ports.iter().any(|np| opens(np, "probes"));
        if !ok {
            p.push(format!(
                "the ingress rule must open only the TLS port and the probe port, got {ports:?}"
            ));
        }
        let from: Vec<String> = rule
            .from
            .iter()
            .flatten()
            .map(|f| match &f.ip_block {
                Some(b) if f.namespace_selector.is_none() && f.pod_selector.is_none() => {
                    b.cidr.clone()
                }
                _ => format!("{f:?}"),
            })
            .collect();
        if from != sources {
            p.push(format!(
                "ingress sources: expected {sources:?}, got {from:?}"
            ));
        }
    }
    p
}

fn rendered(dir: &str) -> Rendered {
    split(&render(dir)).unwrap_or_else(|e| panic!("deploy/{dir}:\n  - {}", e.join("\n  - ")))
}

// ------------------------------------------------------------------ tests

#[test]
fn base_renders_typed_and_consistent() {
    let r = rendered("base");
    assert_eq!(r.namespaces.len(), 1);
    assert_eq!(r.service_accounts.len(), 1);
    assert_clean("base: server", check_server(&r));
    assert_clean("base: webhook configuration", check_webhook_config(&r));
    assert_clean("base: network policy", check_network_policy(&r, &[]));
}

/// deploy/components/control-plane-only narrows the policy to address blocks, used the way
/// deploy/README.md shows (an overlay with the component and its own ranges).
#[test]
fn network_policy_narrowed_to_the_control_plane() {
    let tmp = std::env::temp_dir().join(format!("tcp-sniffer-np-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&tmp);
    let copy = Command::new("cp")
        .args(["-r", "--"])
        .arg(repo().join("deploy"))
        .arg(&tmp)
        .status()
        .unwrap();
    assert!(copy.success());
    let overlay = tmp.join("overlays/mine");
    std::fs::create_dir_all(&overlay).unwrap();
    std::fs::write(
        overlay.join("kustomization.yaml"),
        "resources: [../cert-manager]\ncomponents: [../../components/control-plane-only]\n",
    )
    .unwrap();
    let docs = |dir: &Path| -> Vec<Value> {
        let out = Command::new(repo().join("tests/deploy/render.sh"))
            .arg(dir)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice(&out.stdout).unwrap()
    };
    let r = split(&docs(&overlay)).unwrap_or_else(|e| panic!("{e:?}"));
    assert_clean(
        "component: network policy",
        check_network_policy(&r, &["192.0.2.0/24", "198.51.100.0/24"]),
    );
    // With the overlay's own ranges, as the README shows.
    std::fs::write(
        overlay.join("kustomization.yaml"),
        "resources: [../cert-manager]\ncomponents: [../../components/control-plane-only]\npatches:\n  - target: {kind: NetworkPolicy, name: tcp-sniffer-webhook}\n    patch: |-\n      - op: replace\n        path: /spec/ingress/0/from\n        value:\n          - ipBlock: {cidr: 10.0.0.0/28}\n",
    )
    .unwrap();
    let r = split(&docs(&overlay)).unwrap_or_else(|e| panic!("{e:?}"));
    assert_clean(
        "overlay: network policy",
        check_network_policy(&r, &["10.0.0.0/28"]),
    );
    let _ = std::fs::remove_dir_all(&tmp);
}

#[test]
fn cert_manager_overlay() {
    let r = rendered("overlays/cert-manager");
    assert_clean("cert-manager: server", check_server(&r));
    assert_clean(
        "cert-manager: webhook configuration",
        check_webhook_config(&r),
    );
    assert_clean("cert-manager: certificates", check_cert_manager(&r));
}

#[test]
fn self_signed_overlay_bootstraps_its_own_certificate() {
    let r = rendered("overlays/self-signed");
    assert_clean("self-signed: server", check_server(&r));
    assert_clean(
        "self-signed: webhook configuration",
        check_webhook_config(&r),
    );
    assert_clean("self-signed: bootstrap", check_self_signed(&r));
    assert_clean("self-signed: network policy", check_network_policy(&r, &[]));
}

/// `kubectl apply -k` of any overlay installs something that works: no placeholder text.
#[test]
fn no_placeholders_anywhere() {
    for dir in [
        "base",
        "overlays/cert-manager",
        "overlays/self-signed",
        "examples",
    ] {
        let text = serde_json::to_string(&render(dir)).unwrap();
        for bad in ["PLACEHOLDER", "placeholder", "REPLACE", "CHANGEME"] {
            assert!(!text.contains(bad), "deploy/{dir} renders {bad:?}");
        }
    }
}

/// The self-signed checks fail on a broken overlay.
#[test]
fn self_signed_checks_catch_broken_rbac() {
    let docs = render("overlays/self-signed");
    let broken = |f: &dyn Fn(&mut Value)| -> Vec<String> {
        let mut d = docs.clone();
        d.iter_mut().for_each(f);
        let r = split(&d).unwrap();
        [check_server(&r), check_self_signed(&r)].concat()
    };
    for (what, f, expect) in [
        (
            "secrets for any name",
            Box::new(|o: &mut Value| {
                if o["kind"] == "Role" {
                    o["rules"][0]
                        .as_object_mut()
                        .unwrap()
                        .remove("resourceNames");
                }
            }) as Box<dyn Fn(&mut Value)>,
            "Role rules",
        ),
        (
            "list verb",
            Box::new(|o: &mut Value| {
                if o["kind"] == "ClusterRole" {
                    o["rules"][0]["verbs"]
                        .as_array_mut()
                        .unwrap()
                        .push("list".into());
                }
            }),
            "ClusterRole rules",
        ),
        (
            "no token",
            Box::new(|o: &mut Value| {
                if o["kind"] == "Deployment" {
                    o["spec"]["template"]["spec"]["automountServiceAccountToken"] = false.into();
                }
            }),
            "automountServiceAccountToken: true",
        ),
        (
            "secret with data",
            Box::new(|o: &mut Value| {
                if o["kind"] == "Secret" {
                    o["data"] = serde_json::json!({"tls.crt": "UExBQ0VIT0xERVI="});
                }
            }),
            "without data",
        ),
        (
            "read-only TLS dir",
            Box::new(|o: &mut Value| {
                if o["kind"] == "Deployment" {
                    o["spec"]["template"]["spec"]["containers"][0]["volumeMounts"][0]["readOnly"] =
                        true.into();
                }
            }),
            "writable emptyDir",
        ),
    ] {
        let problems = broken(&*f);
        assert!(
            problems.iter().any(|p| p.contains(expect)),
            "{what}: expected {expect:?} in {problems:#?}"
        );
    }
}

#[test]
fn example_app_is_selected_and_injected_as_configured() {
    let ex = rendered("examples");
    let base = rendered("base");
    let cfg = &base.webhook_configs[0];
    let s = server(&base).unwrap();
    let settings = server_settings(&s.env).unwrap();
    let [app] = ex.deployments.as_slice() else {
        panic!("one example Deployment")
    };
    let ns_name = app.metadata.namespace.clone().unwrap();
    let ns = ex
        .namespaces
        .iter()
        .find(|n| n.metadata.name.as_deref() == Some(ns_name.as_str()))
        .expect("the example's Namespace is rendered");
    let mut nsl = ns.metadata.labels.clone().unwrap_or_default();
    nsl.insert(NAME_LABEL.into(), ns_name.clone());
    let tmpl = &app.spec.as_ref().unwrap().template;
    let podl = tmpl
        .metadata
        .as_ref()
        .and_then(|m| m.labels.clone())
        .unwrap_or_default();
    assert_eq!(
        entries_called(cfg, &nsl, &podl).len(),
        1,
        "the example pod is sent to the webhook once"
    );

    // What the server does with it, given the deployed settings.
    let pod = Pod {
        metadata: tmpl.metadata.clone().unwrap_or_default(),
        spec: tmpl.spec.clone(),
        status: None,
    };
    let m = mutate(&pod, &settings.inject);
    assert_eq!(m.verdict, Verdict::Injected, "{:?}", m.warnings);
    let mut doc = serde_json::to_value(&pod).unwrap();
    json_patch::patch(&mut doc, &m.patch.unwrap()).unwrap();
    let patched: Pod = serde_json::from_value(doc).unwrap();
    // The deployed settings inject a native sidecar: the first init container.
    assert!(
        settings.inject.native_sidecar,
        "deploy/ sets NATIVE_SIDECAR=true"
    );
    let spec = patched.spec.unwrap();
    assert!(spec.containers.iter().all(|c| c.name != "tcp-sniffer"));
    let sidecar = spec
        .init_containers
        .into_iter()
        .flatten()
        .next()
        .filter(|c| c.name == "tcp-sniffer")
        .expect("the sidecar is added as the first init container");
    assert_eq!(sidecar.restart_policy.as_deref(), Some("Always"));
    assert!(sidecar.startup_probe.is_some());
    assert_eq!(
        sidecar.image.as_deref(),
        Some(s.env["SNIFFER_IMAGE"].as_str())
    );
    let ports = sidecar
        .env
        .iter()
        .flatten()
        .find(|e| e.name == "PORTS")
        .and_then(|e| e.value.clone());
    assert_eq!(ports.as_deref(), Some("80"), "the example's containerPort");
    // The injected user is the one the sidecar image creates (docker/sidecar.Dockerfile).
    let dockerfile = std::fs::read_to_string(repo().join("docker/sidecar.Dockerfile")).unwrap();
    let image_user = dockerfile
        .lines()
        .find_map(|l| l.strip_prefix("USER "))
        .and_then(|u| u.split(':').next())
        .and_then(|u| u.trim().parse::<i64>().ok())
        .expect("docker/sidecar.Dockerfile sets a numeric USER");
    let sc = sidecar.security_context.unwrap();
    assert_eq!(sc.run_as_user, Some(image_user));
    assert_eq!(sc.read_only_root_filesystem, Some(true));
    assert_eq!(
        sc.capabilities.unwrap().add,
        Some(vec!["NET_RAW".to_string()])
    );
}

/// The checks themselves catch what they are there for.
#[test]
fn checks_catch_broken_manifests() {
    let docs = render("base");
    let broken = |f: &dyn Fn(&mut Value)| -> Vec<String> {
        let mut d = docs.clone();
        for o in d.iter_mut() {
            f(o);
        }
        match split(&d) {
            Err(e) => e,
            Ok(r) => [
                check_server(&r),
                check_webhook_config(&r),
                check_network_policy(&r, &[]),
            ]
            .concat(),
        }
    };
    let on = |kind: &'static str, f: fn(&mut Value)| {
        move |o: &mut Value| {
            if o["kind"] == kind {
                f(o)
            }
        }
    };
    let cases: Vec<BreakCase> = vec![
        (
            "network policy opens another port",
            Box::new(on("NetworkPolicy", |o| {
                o["spec"]["ingress"][0]["ports"]
                    .as_array_mut()
                    .unwrap()
                    .push(serde_json::json!({"port": 9090, "protocol": "TCP"}))
            })),
            "only the TLS port and the probe port",
        ),
        (
            "network policy on the wrong port",
            Box::new(on("NetworkPolicy", |o| {
                o["spec"]["ingress"][0]["ports"][0]["port"] = 8080.into()
            })),
            "only the TLS port and the probe port",
        ),
        (
            "network policy without the probe port",
            Box::new(on("NetworkPolicy", |o| {
                o["spec"]["ingress"][0]["ports"]
                    .as_array_mut()
                    .unwrap()
                    .pop();
            })),
            "only the TLS port and the probe port",
        ),
        (
            "liveness probe on the TLS port",
            Box::new(on("Deployment", |o| {
                let g =
                    &mut o["spec"]["template"]["spec"]["containers"][0]["livenessProbe"]["httpGet"];
                g["port"] = "https".into();
                g["scheme"] = "HTTPS".into();
            })),
            "liveness probe must GET /healthz over HTTP on the probe port",
        ),
        (
            "startup probe over HTTPS",
            Box::new(on("Deployment", |o| {
                o["spec"]["template"]["spec"]["containers"][0]["startupProbe"]["httpGet"]
                    ["scheme"] = "HTTPS".into()
            })),
            "startup probe must GET /healthz",
        ),
        (
            "probe container port differs from PROBE_ADDR",
            Box::new(on("ConfigMap", |o| {
                o["data"]["PROBE_ADDR"] = "0.0.0.0:9081".into()
            })),
            "probe listener's port",
        ),
        (
            "network policy selects other pods",
            Box::new(on("NetworkPolicy", |o| {
                o["spec"]["podSelector"] = serde_json::json!({})
            })),
            "select exactly the webhook pods",
        ),
        (
            "failurePolicy Fail",
            Box::new(on("MutatingWebhookConfiguration", |o| {
                o["webhooks"][0]["failurePolicy"] = "Fail".into()
            })),
            "failurePolicy",
        ),
        (
            "timeout 10",
            Box::new(on("MutatingWebhookConfiguration", |o| {
                o["webhooks"][1]["timeoutSeconds"] = 10.into()
            })),
            "timeoutSeconds",
        ),
        (
            "own namespace not excluded",
            Box::new(on("MutatingWebhookConfiguration", |o| {
                o["webhooks"][0]["namespaceSelector"]["matchExpressions"][0]["values"] =
                    serde_json::json!(["kube-system"])
            })),
            "must exclude tcp-sniffer",
        ),
        (
            "wrong path",
            Box::new(on("MutatingWebhookConfiguration", |o| {
                o["webhooks"][0]["clientConfig"]["service"]["path"] = "/inject".into()
            })),
            "path must be /mutate",
        ),
        (
            "wrong service",
            Box::new(on("MutatingWebhookConfiguration", |o| {
                o["webhooks"][1]["clientConfig"]["service"]["name"] = "other".into()
            })),
            "calls Service",
        ),
        (
            "wrong port",
            Box::new(on("MutatingWebhookConfiguration", |o| {
                o["webhooks"][1]["clientConfig"]["service"]["port"] = 8443.into()
            })),
            "is not a port of the Service",
        ),
        (
            "double opt-in",
            Box::new(on("MutatingWebhookConfiguration", |o| {
                o["webhooks"][1]["objectSelector"]["matchExpressions"][0]["values"] =
                    serde_json::json!(["false"])
            })),
            "expected 1 entry",
        ),
        (
            "writable root",
            Box::new(on("Deployment", |o| {
                o["spec"]["template"]["spec"]["containers"][0]["securityContext"]
                    ["readOnlyRootFilesystem"] = false.into()
            })),
            "readOnlyRootFilesystem",
        ),
        (
            "escalation",
            Box::new(on("Deployment", |o| {
                o["spec"]["template"]["spec"]["containers"][0]["securityContext"]
                    .as_object_mut()
                    .unwrap()
                    .remove("allowPrivilegeEscalation");
            })),
            "allowPrivilegeEscalation",
        ),
        (
            "listen port",
            Box::new(on("ConfigMap", |o| {
                o["data"]["LISTEN_ADDR"] = "0.0.0.0:9443".into()
            })),
            "listen port",
        ),
        (
            "unknown setting",
            Box::new(on("ConfigMap", |o| o["data"]["SNIFER_IMAGE"] = "x".into())),
            "SNIFER_IMAGE is not a setting",
        ),
        (
            "bad setting",
            Box::new(on("ConfigMap", |o| {
                o["data"]["DEFAULT_SAMPLE_RATE"] = "2".into()
            })),
            "DEFAULT_SAMPLE_RATE",
        ),
        (
            "misplaced field",
            Box::new(on("Deployment", |o| {
                o["spec"]["template"]["spec"]["containers"][0]["readOnlyRootFilesystem"] =
                    true.into()
            })),
            "round trip",
        ),
        (
            "one replica",
            Box::new(on("Deployment", |o| o["spec"]["replicas"] = 1.into())),
            "2 replicas",
        ),
    ];
    for (what, f, expect) in cases {
        let problems = broken(&*f);
        assert!(
            problems.iter().any(|p| p.contains(expect)),
            "{what}: expected a problem mentioning {expect:?}, got {problems:#?}"
        );
    }
}
