//! Certificate bootstrap: an install with no placeholders (deploy/overlays/self-signed).
//!
//! At start, before serving, the webhook makes sure that
//!
//! 1. the Secret (which the overlay creates empty) holds a CA and a serving certificate for the
//!    Service's DNS names — if it does not, one is made here (rcgen) and written with a `PUT`
//!    that carries the `resourceVersion` read, so of two replicas starting at once exactly one
//!    wins and the other (409 Conflict) reads and uses the winner's;
//! 2. the certificate and key are in the files the server loads (`TLS_CERT_FILE`,
//!    `TLS_KEY_FILE`, an emptyDir in the overlay);
//! 3. every webhook entry of the MutatingWebhookConfiguration trusts that CA (`caBundle`,
//!    a JSON Patch, only when it differs).
//!
//! It needs nothing but those two named objects: `get`, `update`, `patch` on the Secret and
//! `get`, `patch` on the configuration, by `resourceNames` (RBAC cannot limit `create` by
//! name, hence the empty Secret in the overlay). Every failure names the object and the verb.

use std::path::{Path, PathBuf};
use std::time::Duration;

use base64::Engine as _;
use serde_json::{json, Value};

const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::STANDARD;
/// Where a pod finds its service-account token, CA and namespace.
pub const SERVICE_ACCOUNT_DIR: &str = "/var/run/secrets/kubernetes.io/serviceaccount";

/// What to bootstrap.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BootstrapSettings {
    /// Namespace of the Secret and the Service; empty: the service account's namespace.
    pub namespace: String,
    /// Secret that holds `ca.crt`, `tls.crt`, `tls.key`.
    pub secret: String,
    /// MutatingWebhookConfiguration whose `caBundle`s are set.
    pub webhook_config: String,
    /// Service name (the certificate's DNS names).
    pub service: String,
    /// Where the server reads its certificate.
    pub cert_file: PathBuf,
    /// Where the server reads its key.
    pub key_file: PathBuf,
}

/// A failed bootstrap step.
#[derive(Debug, thiserror::Error)]
#[error("certificate bootstrap: {0}")]
pub struct BootstrapError(pub String);

fn fail(msg: impl Into<String>) -> BootstrapError {
    BootstrapError(msg.into())
}

/// A minimal client for the two objects: base URL, bearer token, TLS roots.
#[derive(Debug, Clone)]
pub struct ApiClient {
    base: String,
    token: Option<String>,
    http: reqwest::Client,
}

impl ApiClient {
    /// `base` like `https://10.96.0.1:443`; `ca_pem` the roots to trust (None: plain HTTP only,
    /// for tests).
    pub fn new(
        base: &str,
        token: Option<String>,
        ca_pem: Option<&[u8]>,
    ) -> Result<Self, BootstrapError> {
        let mut b = reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .use_rustls_tls()
            .tls_built_in_root_certs(false);
        if let Some(pem) = ca_pem {
            for c in reqwest::Certificate::from_pem_bundle(pem)
                .map_err(|e| fail(format!("the API server CA cannot be read: {e}")))?
            {
                b = b.add_root_certificate(c);
            }
        }
        Ok(ApiClient {
            base: base.trim_end_matches('/').to_string(),
            token,
            http: b.build().map_err(|e| fail(format!("HTTP client: {e}")))?,
        })
    }

    /// The in-cluster API server, as the pod's service account sees it.
    pub fn in_cluster() -> Result<Self, BootstrapError> {
        let host = std::env::var("KUBERNETES_SERVICE_HOST")
            .map_err(|_| fail("KUBERNETES_SERVICE_HOST is not set (not running in a pod?)"))?;
        let port = std::env::var("KUBERNETES_SERVICE_PORT").unwrap_or_else(|_| "443".into());
        let host = if host.contains(':') {
            format!("[{host}]")
        } else {
            host
        };
        let dir = Path::new(SERVICE_ACCOUNT_DIR);
        let token = std::fs::read_to_string(dir.join("token")).map_err(|e| {
            fail(format!(
                "{}/token: {e} (automountServiceAccountToken must be true)",
                SERVICE_ACCOUNT_DIR
            ))
        })?;
        let ca = std::fs::read(dir.join("ca.crt"))
            .map_err(|e| fail(format!("{SERVICE_ACCOUNT_DIR}/ca.crt: {e}")))?;
        ApiClient::new(
            &format!("https://{host}:{port}"),
            Some(token.trim().to_string()),
            Some(&ca),
        )
    }

    async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<(&str, Vec<u8>)>,
    ) -> Result<(u16, Value), BootstrapError> {
        let mut req = self
            .http
            .request(method.clone(), format!("{}{path}", self.base));
        if let Some(t) = &self.token {
            req = req.bearer_auth(t);
        }
        if let Some((ct, b)) = body {
            req = req.header("content-type", ct).body(b);
        }
        let resp = req
            .send()
            .await
            .map_err(|e| fail(format!("{method} {path}: {e}")))?;
        let status = resp.status().as_u16();
        let bytes = resp
            .bytes()
            .await
            .map_err(|e| fail(format!("{method} {path}: {e}")))?;
        let v = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        Ok((status, v))
    }
}

fn api_error(verb: &str, what: &str, status: u16, v: &Value) -> BootstrapError {
    let msg = v["message"].as_str().unwrap_or("");
    let hint = match status {
        401 | 403 => {
            " (RBAC: the overlay's Role/ClusterRole grant get/update/patch on exactly these names)"
        }
        404 => " (deploy/overlays/self-signed creates it; was it deleted?)",
        _ => "",
    };
    fail(format!("{verb} {what}: HTTP {status} {msg}{hint}"))
}

/// The certificate material kept in the Secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Material {
    /// CA certificate (PEM) — the caBundle.
    pub ca_pem: String,
    /// Serving certificate (PEM).
    pub cert_pem: String,
    /// Serving key (PEM).
    pub key_pem: String,
}

/// DNS names of the Service, as the API server calls it.
pub fn dns_names(service: &str, namespace: &str) -> Vec<String> {
    vec![
        service.to_string(),
        format!("{service}.{namespace}"),
        format!("{service}.{namespace}.svc"),
        format!("{service}.{namespace}.svc.cluster.local"),
    ]
}

/// A new CA and a serving certificate it signs, both valid for 10 years (there is no
/// renewal: delete the Secret's data and restart the pods to get new ones).
pub fn generate(service: &str, namespace: &str) -> Result<Material, BootstrapError> {
    let e = |e: rcgen::Error| fail(format!("generating the certificate: {e}"));
    let now = time_now();
    let mut ca = rcgen::CertificateParams::new(Vec::<String>::new()).map_err(e)?;
    ca.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Constrained(0));
    ca.distinguished_name
        .push(rcgen::DnType::CommonName, format!("{service} webhook CA"));
    ca.key_usages = vec![
        rcgen::KeyUsagePurpose::KeyCertSign,
        rcgen::KeyUsagePurpose::CrlSign,
    ];
    ca.not_before = now;
    ca.not_after = now + rcgen_days(3650);
    let ca_key = rcgen::KeyPair::generate().map_err(e)?;
    let ca_cert = ca.self_signed(&ca_key).map_err(e)?;
    let issuer = rcgen::Issuer::new(ca, ca_key);

    let mut leaf = rcgen::CertificateParams::new(dns_names(service, namespace)).map_err(e)?;
    leaf.distinguished_name.push(
        rcgen::DnType::CommonName,
        format!("{service}.{namespace}.svc"),
    );
    leaf.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ServerAuth];
    leaf.not_before = now;
    leaf.not_after = now + rcgen_days(3650);
    let key = rcgen::KeyPair::generate().map_err(e)?;
    let cert = leaf.signed_by(&key, &issuer).map_err(e)?;
    Ok(Material {
        ca_pem: ca_cert.pem(),
        cert_pem: cert.pem(),
        key_pem: key.serialize_pem(),
    })
}

fn time_now() -> time::OffsetDateTime {
    // One minute back, for clocks a little behind ours.
    time::OffsetDateTime::now_utc() - time::Duration::minutes(1)
}

fn rcgen_days(d: i64) -> time::Duration {
    time::Duration::days(d)
}

fn from_secret(secret: &Value) -> Option<Material> {
    let get = |k: &str| -> Option<String> {
        let b = B64.decode(secret["data"][k].as_str()?).ok()?;
        let s = String::from_utf8(b).ok()?;
        (!s.trim().is_empty()).then_some(s)
    };
    Some(Material {
        ca_pem: get("ca.crt")?,
        cert_pem: get("tls.crt")?,
        key_pem: get("tls.key")?,
    })
}

/// Check that the material is usable: the key matches the certificate, and the CA verifies the
/// certificate for the Service's name.
pub fn check(m: &Material, service: &str, namespace: &str) -> Result<(), String> {
    use rustls::client::danger::ServerCertVerifier as _;
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
    let chain = CertificateDer::pem_slice_iter(m.cert_pem.as_bytes())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("tls.crt: {e}"))?;
    let leaf = chain.first().ok_or("tls.crt holds no certificate")?;
    let key =
        PrivateKeyDer::from_pem_slice(m.key_pem.as_bytes()).map_err(|e| format!("tls.key: {e}"))?;
    let provider = crate::tls::provider();
    let signing = provider
        .key_provider
        .load_private_key(key)
        .map_err(|e| format!("tls.key: {e}"))?;
    rustls::sign::CertifiedKey::new(chain.clone(), signing)
        .keys_match()
        .map_err(|e| format!("tls.key does not match tls.crt: {e}"))?;
    let mut roots = rustls::RootCertStore::empty();
    for c in CertificateDer::pem_slice_iter(m.ca_pem.as_bytes()) {
        roots
            .add(c.map_err(|e| format!("ca.crt: {e}"))?)
            .map_err(|e| format!("ca.crt: {e}"))?;
    }
    let verifier =
        rustls::client::WebPkiServerVerifier::builder_with_provider(roots.into(), provider)
            .build()
            .map_err(|e| format!("ca.crt: {e}"))?;
    let name = ServerName::try_from(format!("{service}.{namespace}.svc"))
        .map_err(|e| format!("service name: {e}"))?;
    verifier
        .verify_server_cert(leaf, &chain[1..], &name, &[], UnixTime::now())
        .map_err(|e| format!("ca.crt does not verify tls.crt for {name:?}: {e}"))?;
    Ok(())
}

fn write_atomically(path: &Path, text: &str) -> Result<(), BootstrapError> {
    let tmp = path.with_extension("tmp");
    let w = |e: std::io::Error| fail(format!("{}: {e}", path.display()));
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(w)?;
    }
    std::fs::write(&tmp, text).map_err(w)?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(0o600)).map_err(w)?;
    }
    std::fs::rename(&tmp, path).map_err(w)
}

/// What [`bootstrap`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    /// A new CA and certificate were made and stored (false: the Secret's were used).
    pub generated: bool,
    /// Webhook entries whose caBundle was set.
    pub patched_webhooks: usize,
    /// The CA in use.
    pub ca_pem: String,
}

/// Run the bootstrap (see the module doc).
pub async fn bootstrap(api: &ApiClient, s: &BootstrapSettings) -> Result<Outcome, BootstrapError> {
    let mut s = s.clone();
    if s.namespace.is_empty() {
        let f = Path::new(SERVICE_ACCOUNT_DIR).join("namespace");
        s.namespace = std::fs::read_to_string(&f)
            .map_err(|e| fail(format!("{}: {e} (or set POD_NAMESPACE)", f.display())))?
            .trim()
            .to_string();
    }
    let s = &s;
    let secret_path = format!("/api/v1/namespaces/{}/secrets/{}", s.namespace, s.secret);
    let what = format!("Secret {}/{}", s.namespace, s.secret);
    let mut generated = false;
    let mut material = None;
    for _attempt in 0..5 {
        let (st, secret) = api.call(reqwest::Method::GET, &secret_path, None).await?;
        if st != 200 {
            return Err(api_error("get", &what, st, &secret));
        }
        if let Some(m) = from_secret(&secret) {
            match check(&m, &s.service, &s.namespace) {
                Ok(()) => {
                    material = Some(m);
                    break;
                }
                Err(why) => tracing::warn!(
                    secret = %what,
                    problem = %why,
                    "the Secret's certificate is not usable; making a new one"
                ),
            }
        }
        let m = generate(&s.service, &s.namespace)?;
        let mut new = secret.clone();
        new["data"] = json!({
            "ca.crt": B64.encode(&m.ca_pem),
            "tls.crt": B64.encode(&m.cert_pem),
            "tls.key": B64.encode(&m.key_pem),
        });
        // The resourceVersion read above makes this a compare-and-swap.
        let body = serde_json::to_vec(&new).map_err(|e| fail(e.to_string()))?;
        let (st, v) = api
            .call(
                reqwest::Method::PUT,
                &secret_path,
                Some(("application/json", body)),
            )
            .await?;
        match st {
            200 | 201 => {
                generated = true;
                material = Some(m);
                break;
            }
            409 => {
                tracing::info!(secret = %what, "another replica stored a certificate first; using it");
                continue;
            }
            _ => return Err(api_error("update", &what, st, &v)),
        }
    }
    let m = material.ok_or_else(|| fail(format!("{what}: kept conflicting after 5 attempts")))?;
    write_atomically(&s.key_file, &m.key_pem)?;
    write_atomically(&s.cert_file, &m.cert_pem)?;

    let cfg_path = format!(
        "/apis/admissionregistration.k8s.io/v1/mutatingwebhookconfigurations/{}",
        s.webhook_config
    );
    let cfg_what = format!("MutatingWebhookConfiguration {}", s.webhook_config);
    let (st, cfg) = api.call(reqwest::Method::GET, &cfg_path, None).await?;
    if st != 200 {
        return Err(api_error("get", &cfg_what, st, &cfg));
    }
    let bundle = B64.encode(&m.ca_pem);
    let empty = Vec::new();
    let hooks = cfg["webhooks"].as_array().unwrap_or(&empty);
    let mut ops = Vec::new();
    for (i, w) in hooks.iter().enumerate() {
        if w["clientConfig"]["caBundle"].as_str() != Some(bundle.as_str()) {
            // Guard each index with the entry's name, so a concurrent edit cannot make us
            // write into another entry.
            ops.push(
                json!({"op": "test", "path": format!("/webhooks/{i}/name"), "value": w["name"]}),
            );
            ops.push(json!({"op": "add", "path": format!("/webhooks/{i}/clientConfig/caBundle"), "value": bundle}));
        }
    }
    let patched = ops.len() / 2;
    if !ops.is_empty() {
        let body = serde_json::to_vec(&ops).map_err(|e| fail(e.to_string()))?;
        let (st, v) = api
            .call(
                reqwest::Method::PATCH,
                &cfg_path,
                Some(("application/json-patch+json", body)),
            )
            .await?;
        if st != 200 {
            return Err(api_error("patch", &cfg_what, st, &v));
        }
    }
    Ok(Outcome {
        generated,
        patched_webhooks: patched,
        ca_pem: m.ca_pem,
    })
}
