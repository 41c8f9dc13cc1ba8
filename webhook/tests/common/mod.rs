//! Shared by the webhook's integration tests: fixtures, patch application, the expected sidecar.
#![allow(dead_code)]

use std::path::PathBuf;
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::Pod;
use serde_json::{json, Value};

/// How long a test waits for an event before it fails. Generous on purpose: the machine is
/// shared and noisy, so a deadline only turns a hang into a clear failure; it measures nothing.
pub const DEADLINE: Duration = Duration::from_secs(60);

/// Polls `done` until it holds; fails naming `what` once [`DEADLINE`] has passed.
pub fn wait_until(what: &str, mut done: impl FnMut() -> bool) {
    let end = Instant::now() + DEADLINE;
    while !done() {
        assert!(
            Instant::now() < end,
            "gave up after {DEADLINE:?} waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// [`wait_until`] for async checks (inside a tokio runtime).
pub async fn wait_until_async(what: &str, mut done: impl AsyncFnMut() -> bool) {
    let end = Instant::now() + DEADLINE;
    while !done().await {
        assert!(
            Instant::now() < end,
            "gave up after {DEADLINE:?} waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

pub fn fixture_path(rel: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(rel)
}

pub fn fixture(rel: &str) -> Value {
    let p = fixture_path(rel);
    let text = std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

/// The ReplicaSet-controller envelope around `pod`.
pub fn review_for(pod: &Value) -> Value {
    let mut review = fixture("deployment-pod-create.json");
    review["request"]["object"] = pod.clone();
    review["request"]["name"] = pod["metadata"]["name"].clone();
    if review["request"]["name"].is_null() {
        review["request"]["name"] = json!("");
    }
    review
}

/// The `response` of an answered review, checked for the invariants every answer has.
pub fn response_of(answer: &Value, uid: &str) -> Value {
    assert_eq!(answer["apiVersion"], "admission.k8s.io/v1", "{answer:#}");
    assert_eq!(answer["kind"], "AdmissionReview");
    assert!(answer.get("request").is_none());
    let r = answer["response"].clone();
    assert_eq!(r["uid"], uid);
    assert_eq!(r["allowed"], true, "the webhook never blocks a pod: {r:#}");
    r
}

/// Apply the response's patch (base64 JSON Patch) to `object` with json-patch.
pub fn apply(response: &Value, object: &Value) -> Option<Value> {
    let b64 = response.get("patch")?.as_str().expect("patch is a string");
    assert_eq!(response["patchType"], "JSONPatch");
    let raw = base64_decode(b64);
    let patch: json_patch::Patch = serde_json::from_slice(&raw).expect("patch is a JSON Patch");
    let mut doc = object.clone();
    json_patch::patch(&mut doc, &patch).expect("patch applies cleanly");
    Some(doc)
}

pub fn patch_ops(response: &Value) -> Value {
    let raw = base64_decode(response["patch"].as_str().unwrap());
    serde_json::from_slice(&raw).unwrap()
}

fn base64_decode(s: &str) -> Vec<u8> {
    const T: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = Vec::with_capacity(s.len() * 3 / 4);
    let (mut acc, mut bits) = (0u32, 0u32);
    for c in s.bytes().filter(|c| *c != b'=') {
        let v = T.iter().position(|t| *t == c).expect("base64 alphabet") as u32;
        acc = (acc << 6) | v;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    out
}

pub fn as_pod(v: &Value) -> Pod {
    serde_json::from_value(v.clone()).expect("the patched object is a valid k8s-openapi Pod")
}

/// What the sidecar must look like, written out by hand (independent of the code under test).
#[allow(clippy::too_many_arguments)] // one argument per env value keeps the table readable
pub fn expected_sidecar(
    image: &str,
    ports: &str,
    interface: &str,
    output_url: Option<&str>,
    token: Option<(&str, &str)>,
    sample_rate: &str,
    max_body: &str,
    native: bool,
) -> Value {
    let mut env = vec![
        json!({"name": "PORTS", "value": ports}),
        json!({"name": "INTERFACE", "value": interface}),
    ];
    if let Some(u) = output_url {
        env.push(json!({"name": "OUTPUT_URL", "value": u}));
    }
    if let Some((name, key)) = token {
        env.push(json!({"name": "OUTPUT_URL_AUTH_TOKEN", "valueFrom": {"secretKeyRef": {"name": name, "key": key, "optional": true}}}));
    }
    env.extend([
        json!({"name": "SAMPLE_RATE", "value": sample_rate}),
        json!({"name": "MAX_BODY_SIZE", "value": max_body}),
        json!({"name": "POD_NAME", "valueFrom": {"fieldRef": {"apiVersion": "v1", "fieldPath": "metadata.name"}}}),
        json!({"name": "POD_NAMESPACE", "valueFrom": {"fieldRef": {"apiVersion": "v1", "fieldPath": "metadata.namespace"}}}),
        json!({"name": "NODE_NAME", "valueFrom": {"fieldRef": {"apiVersion": "v1", "fieldPath": "spec.nodeName"}}}),
        json!({"name": "POD_IP", "valueFrom": {"fieldRef": {"apiVersion": "v1", "fieldPath": "status.podIP"}}}),
        json!({"name": "METRICS_ADDR", "value": "0.0.0.0:9464"}),
    ]);
    let mut c = json!({
        "name": "tcp-sniffer",
        "image": image,
        "imagePullPolicy": "IfNotPresent",
        "env": env,
        "ports": [{"name": "metrics", "containerPort": 9464, "protocol": "TCP"}],
        "resources": {
            "requests": {"cpu": "50m", "memory": "64Mi"},
            "limits": {"cpu": "500m", "memory": "256Mi"}
        },
        "securityContext": {
            "allowPrivilegeEscalation": false,
            "capabilities": {"add": ["NET_RAW"], "drop": ["ALL"]},
            "privileged": false,
            "readOnlyRootFilesystem": true,
            "runAsNonRoot": true,
            "runAsUser": 65532,
            "seccompProfile": {"type": "RuntimeDefault"}
        },
        "terminationMessagePolicy": "FallbackToLogsOnError"
    });
    if native {
        c["restartPolicy"] = json!("Always");
        c["startupProbe"] = json!({
            "exec": {"command": [
                "/usr/local/bin/node", "-e",
                "process.exit(require('fs').readFileSync('/proc/net/packet','utf8').trim().split('\\n').length>1?0:1)"
            ]},
            "periodSeconds": 1,
            "timeoutSeconds": 5,
            "failureThreshold": 120
        });
    }
    c
}

/// A test CA and server certificates it signs, written to a private temp directory.
pub struct TestPki {
    pub dir: PathBuf,
    pub ca_pem: String,
    issuer: rcgen::Issuer<'static, rcgen::KeyPair>,
}

/// DNS name in the test server certificates (the in-cluster Service name).
pub const SERVER_NAME: &str = "tcp-sniffer-webhook.tcp-sniffer.svc";

impl TestPki {
    pub fn new(tag: &str) -> Self {
        let dir = std::env::temp_dir().join(format!(
            "tcp-sniffer-webhook-{tag}-{}-{}",
            std::process::id(),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos()
        ));
        std::fs::create_dir_all(&dir).unwrap();
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "tcp-sniffer test CA");
        let key = rcgen::KeyPair::generate().unwrap();
        let ca = params.self_signed(&key).unwrap();
        TestPki {
            dir,
            ca_pem: ca.pem(),
            issuer: rcgen::Issuer::new(params, key),
        }
    }

    pub fn cert_path(&self) -> PathBuf {
        self.dir.join("tls.crt")
    }

    pub fn key_path(&self) -> PathBuf {
        self.dir.join("tls.key")
    }

    /// Issue a new server certificate (new key) and return (cert PEM, key PEM, leaf DER).
    pub fn issue(&self, cn: &str) -> (String, String, Vec<u8>) {
        let mut params = rcgen::CertificateParams::new(vec![SERVER_NAME.to_string()]).unwrap();
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, cn);
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = params.signed_by(&key, &self.issuer).unwrap();
        (cert.pem(), key.serialize_pem(), cert.der().to_vec())
    }

    /// Issue a server certificate for an existing key (PEM); returns (cert PEM, leaf DER).
    pub fn issue_with_key(&self, cn: &str, key_pem: &str) -> (String, Vec<u8>) {
        let mut params = rcgen::CertificateParams::new(vec![SERVER_NAME.to_string()]).unwrap();
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, cn);
        let key = rcgen::KeyPair::from_pem(key_pem).unwrap();
        let cert = params.signed_by(&key, &self.issuer).unwrap();
        (cert.pem(), cert.der().to_vec())
    }

    /// Issue and install a certificate the way a Secret volume update looks to the reader:
    /// each file is written aside and renamed into place. Returns the leaf DER.
    pub fn install(&self, cn: &str) -> Vec<u8> {
        let (cert, key, der) = self.issue(cn);
        self.write_atomically(&self.key_path(), &key);
        self.write_atomically(&self.cert_path(), &cert);
        der
    }

    /// Write a certificate and key the way the kubelet updates a Secret volume (its
    /// AtomicWriter, which cert-manager rotations go through): both files into a new
    /// timestamped directory, a `..data_tmp` symlink to it renamed over `..data`, the old
    /// directory removed. `tls.crt` and `tls.key` are symlinks to `..data/…`, created once.
    /// The reader sees either the old pair or the new one, never a mix.
    pub fn install_as_secret_volume(&self, cert: &str, key: &str) {
        use std::os::unix::fs::symlink;
        let generation = self.dir.join("..generation");
        let n: u64 = std::fs::read_to_string(&generation)
            .ok()
            .and_then(|s| s.trim().parse().ok())
            .unwrap_or(0)
            + 1;
        std::fs::write(&generation, n.to_string()).unwrap();
        let ts = format!("..2026_12_03_09_00_{n:02}.{}", 100000000 + n);
        let ts_dir = self.dir.join(&ts);
        std::fs::create_dir(&ts_dir).unwrap();
        std::fs::write(ts_dir.join("tls.crt"), cert).unwrap();
        std::fs::write(ts_dir.join("tls.key"), key).unwrap();
        let old = std::fs::read_link(self.dir.join("..data")).ok();
        let tmp = self.dir.join("..data_tmp");
        let _ = std::fs::remove_file(&tmp);
        symlink(&ts, &tmp).unwrap();
        std::fs::rename(&tmp, self.dir.join("..data")).unwrap();
        for f in ["tls.crt", "tls.key"] {
            let p = self.dir.join(f);
            if std::fs::symlink_metadata(&p).is_err() {
                symlink(format!("..data/{f}"), &p).unwrap();
            }
        }
        if let Some(old) = old {
            std::fs::remove_dir_all(self.dir.join(old)).unwrap();
        }
    }

    pub fn write_atomically(&self, path: &std::path::Path, text: &str) {
        let tmp = path.with_extension("tmp");
        std::fs::write(&tmp, text).unwrap();
        std::fs::rename(&tmp, path).unwrap();
    }
}

impl Drop for TestPki {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
