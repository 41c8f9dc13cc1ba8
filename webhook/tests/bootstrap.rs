//! Certificate bootstrap against a local fake API server that implements just the endpoints
//! the overlay's RBAC grants: GET/PUT/PATCH of one Secret and GET/PATCH of one
//! MutatingWebhookConfiguration (with resourceVersion conflicts and JSON Patch as the real one).
//! Any other request is answered 403, as RBAC with `resourceNames` would, and recorded.

mod common;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::Engine as _;
use bytes::Bytes;
use common::TestPki;
use serde_json::{json, Value};
use tcp_sniffer_webhook::bootstrap::{bootstrap, check, ApiClient, BootstrapSettings, Material};
use tcp_sniffer_webhook::metrics::Metrics;
use tcp_sniffer_webhook::server;
use tcp_sniffer_webhook::settings::{InjectSettings, ServerSettings};
use warp::http::{Method, StatusCode};
use warp::Filter;

const TOKEN: &str = "test-token";
const SECRET_PATH: &str = "/api/v1/namespaces/tcp-sniffer/secrets/tcp-sniffer-webhook-tls";
const MWC_PATH: &str =
    "/apis/admissionregistration.k8s.io/v1/mutatingwebhookconfigurations/tcp-sniffer";

#[derive(Default)]
struct Fake {
    objects: BTreeMap<String, Value>,
    rv: u64,
    /// (method, path, status) of every request.
    log: Vec<(String, String, u16)>,
    /// Deny everything (a missing RoleBinding).
    deny: bool,
    /// Hold the first GETs of the Secret until this many have arrived (replicas racing).
    race: Option<(Arc<tokio::sync::Barrier>, usize)>,
}

fn reply(status: StatusCode, v: Value) -> warp::reply::Response {
    let mut r = warp::reply::Response::new(serde_json::to_vec(&v).unwrap().into());
    *r.status_mut() = status;
    r
}

fn status(code: StatusCode, msg: &str) -> Value {
    json!({"kind": "Status", "apiVersion": "v1", "status": "Failure", "message": msg, "code": code.as_u16()})
}

fn handle(
    f: &mut Fake,
    method: &Method,
    path: &str,
    auth: Option<String>,
    body: &[u8],
) -> warp::reply::Response {
    if auth.as_deref() != Some(&format!("Bearer {TOKEN}")) {
        return reply(
            StatusCode::UNAUTHORIZED,
            status(StatusCode::UNAUTHORIZED, "Unauthorized"),
        );
    }
    let allowed = match path {
        SECRET_PATH => [Method::GET, Method::PUT, Method::PATCH].contains(method),
        MWC_PATH => [Method::GET, Method::PATCH].contains(method),
        _ => false,
    };
    if !allowed || f.deny {
        return reply(
            StatusCode::FORBIDDEN,
            status(
                StatusCode::FORBIDDEN,
                &format!("{method} {path} is forbidden"),
            ),
        );
    }
    let Some(cur) = f.objects.get(path).cloned() else {
        return reply(
            StatusCode::NOT_FOUND,
            status(StatusCode::NOT_FOUND, "not found"),
        );
    };
    match *method {
        Method::GET => reply(StatusCode::OK, cur),
        Method::PUT => {
            let new: Value = match serde_json::from_slice(body) {
                Ok(v) => v,
                Err(e) => {
                    return reply(
                        StatusCode::BAD_REQUEST,
                        status(StatusCode::BAD_REQUEST, &e.to_string()),
                    )
                }
            };
            if new["metadata"]["resourceVersion"] != cur["metadata"]["resourceVersion"] {
                return reply(
                    StatusCode::CONFLICT,
                    status(StatusCode::CONFLICT, "the object has been modified; please apply your changes to the latest version and try again"),
                );
            }
            if new["metadata"]["name"] != cur["metadata"]["name"] {
                return reply(
                    StatusCode::BAD_REQUEST,
                    status(StatusCode::BAD_REQUEST, "name"),
                );
            }
            f.rv += 1;
            let mut stored = new;
            stored["metadata"]["resourceVersion"] = json!(f.rv.to_string());
            f.objects.insert(path.to_string(), stored.clone());
            reply(StatusCode::OK, stored)
        }
        Method::PATCH => {
            let patch: json_patch::Patch = match serde_json::from_slice(body) {
                Ok(p) => p,
                Err(e) => {
                    return reply(
                        StatusCode::BAD_REQUEST,
                        status(StatusCode::BAD_REQUEST, &e.to_string()),
                    )
                }
            };
            let mut doc = cur;
            if let Err(e) = json_patch::patch(&mut doc, &patch) {
                return reply(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    status(StatusCode::UNPROCESSABLE_ENTITY, &e.to_string()),
                );
            }
            f.rv += 1;
            doc["metadata"]["resourceVersion"] = json!(f.rv.to_string());
            f.objects.insert(path.to_string(), doc.clone());
            reply(StatusCode::OK, doc)
        }
        _ => reply(
            StatusCode::METHOD_NOT_ALLOWED,
            status(StatusCode::METHOD_NOT_ALLOWED, ""),
        ),
    }
}

/// The objects as deploy/overlays/self-signed creates them: an empty Secret and the webhook
/// configuration without caBundle.
fn installed() -> Fake {
    let mut f = Fake {
        rv: 10,
        ..Default::default()
    };
    f.objects.insert(
        SECRET_PATH.into(),
        json!({"apiVersion": "v1", "kind": "Secret", "type": "Opaque",
               "metadata": {"name": "tcp-sniffer-webhook-tls", "namespace": "tcp-sniffer", "resourceVersion": "1"}}),
    );
    let hook = |name: &str| {
        json!({"name": name, "clientConfig": {"service": {"name": "tcp-sniffer-webhook", "namespace": "tcp-sniffer", "path": "/mutate", "port": 443}},
        "admissionReviewVersions": ["v1"], "sideEffects": "None", "failurePolicy": "Ignore"})
    };
    f.objects.insert(
        MWC_PATH.into(),
        json!({"apiVersion": "admissionregistration.k8s.io/v1", "kind": "MutatingWebhookConfiguration",
               "metadata": {"name": "tcp-sniffer", "resourceVersion": "2"},
               "webhooks": [hook("pods.inject.tcp-sniffer.dev"), hook("namespaces.inject.tcp-sniffer.dev")]}),
    );
    f
}

async fn fake_api(f: Fake) -> (SocketAddr, Arc<Mutex<Fake>>) {
    let state = Arc::new(Mutex::new(f));
    let s = state.clone();
    let route = warp::method()
        .and(warp::path::full())
        .and(warp::header::optional::<String>("authorization"))
        .and(warp::body::bytes())
        .then(
            move |m: Method, p: warp::path::FullPath, auth: Option<String>, body: Bytes| {
                let s = s.clone();
                async move {
                    let (r, barrier) = {
                        let mut f = s.lock().unwrap();
                        let r = handle(&mut f, &m, p.as_str(), auth, &body);
                        let code = r.status().as_u16();
                        f.log.push((m.to_string(), p.as_str().to_string(), code));
                        // Racing replicas: the first GETs of the Secret are read now and
                        // answered only once all of them were read.
                        let barrier = match f.race.as_mut() {
                            Some((b, left))
                                if *left > 0 && m == Method::GET && p.as_str() == SECRET_PATH =>
                            {
                                *left -= 1;
                                Some(b.clone())
                            }
                            _ => None,
                        };
                        (r, barrier)
                    };
                    if let Some(b) = barrier {
                        b.wait().await;
                    }
                    r
                }
            },
        );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(warp::serve(route).incoming(listener).run());
    (addr, state)
}

fn settings(dir: &std::path::Path) -> BootstrapSettings {
    BootstrapSettings {
        namespace: "tcp-sniffer".into(),
        secret: "tcp-sniffer-webhook-tls".into(),
        webhook_config: "tcp-sniffer".into(),
        service: "tcp-sniffer-webhook".into(),
        cert_file: dir.join("tls.crt"),
        key_file: dir.join("tls.key"),
    }
}

fn api(addr: SocketAddr) -> ApiClient {
    ApiClient::new(&format!("http://{addr}"), Some(TOKEN.into()), None).unwrap()
}

fn secret_material(f: &Fake) -> Material {
    let d = &f.objects[SECRET_PATH]["data"];
    let g = |k: &str| {
        String::from_utf8(
            base64::engine::general_purpose::STANDARD
                .decode(d[k].as_str().unwrap())
                .unwrap(),
        )
        .unwrap()
    };
    Material {
        ca_pem: g("ca.crt"),
        cert_pem: g("tls.crt"),
        key_pem: g("tls.key"),
    }
}

fn bundles(f: &Fake) -> Vec<String> {
    f.objects[MWC_PATH]["webhooks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| {
            w["clientConfig"]["caBundle"]
                .as_str()
                .unwrap_or("")
                .to_string()
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn empty_secret_gets_a_certificate_and_the_ca_bundle_is_patched() {
    let pki = TestPki::new("bootstrap"); // only for its private temp directory
    let (addr, fake) = fake_api(installed()).await;
    let s = settings(&pki.dir);
    let out = bootstrap(&api(addr), &s).await.unwrap();
    assert!(out.generated);
    assert_eq!(out.patched_webhooks, 2);
    let m = {
        let f = fake.lock().unwrap();
        let m = secret_material(&f);
        let want = base64::engine::general_purpose::STANDARD.encode(&m.ca_pem);
        assert_eq!(bundles(&f), vec![want.clone(), want]);
        // Only the granted verbs on the two objects were used.
        for (verb, path, code) in &f.log {
            assert!(path == SECRET_PATH || path == MWC_PATH, "{verb} {path}");
            assert!(*code < 400, "{verb} {path} -> {code}");
        }
        m
    };
    check(&m, "tcp-sniffer-webhook", "tcp-sniffer").unwrap();
    assert_eq!(m.ca_pem, out.ca_pem);
    // The files the server loads are the Secret's.
    assert_eq!(std::fs::read_to_string(&s.cert_file).unwrap(), m.cert_pem);
    assert_eq!(std::fs::read_to_string(&s.key_file).unwrap(), m.key_pem);

    // The server serves that certificate, and a client trusting only the caBundle accepts it
    // under the Service's name.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let server_addr = listener.local_addr().unwrap();
    let ss = ServerSettings {
        listen: server_addr,
        tls_cert: s.cert_file.clone(),
        tls_key: s.key_file.clone(),
        tls_reload_interval: Duration::from_secs(60),
        max_request_bytes: 1 << 20,
        max_connections: 16,
        probe_addr: None,
        shutdown_delay: Duration::ZERO,
        shutdown_timeout: Duration::from_secs(5),
    };
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(async move {
        server::run(
            listener,
            &ss,
            InjectSettings::with_image("i"),
            Arc::new(Metrics::default()),
            async move {
                let _ = rx.await;
            },
        )
        .await
        .unwrap();
    });
    let name = "tcp-sniffer-webhook.tcp-sniffer.svc";
    let c = reqwest::Client::builder()
        .use_rustls_tls()
        .tls_built_in_root_certs(false)
        .add_root_certificate(reqwest::Certificate::from_pem(out.ca_pem.as_bytes()).unwrap())
        .resolve(name, server_addr)
        .build()
        .unwrap();
    let resp = c
        .get(format!("https://{name}:{}/healthz", server_addr.port()))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), reqwest::StatusCode::OK);
    let _ = tx.send(());
    task.await.unwrap();

    // A restart (or the second replica) reuses the Secret: same CA, nothing to patch.
    let pki2 = TestPki::new("bootstrap-2");
    let again = bootstrap(&api(addr), &settings(&pki2.dir)).await.unwrap();
    assert!(!again.generated);
    assert_eq!(again.patched_webhooks, 0);
    assert_eq!(again.ca_pem, out.ca_pem);
    assert_eq!(
        std::fs::read_to_string(pki2.dir.join("tls.crt")).unwrap(),
        m.cert_pem
    );
}

/// Two replicas starting at once: exactly one stores its certificate, the other gets 409 and
/// uses the stored one; both end with the same CA, which is the caBundle.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_replicas_agree_on_one_certificate() {
    for _ in 0..5 {
        let (a, b) = (TestPki::new("replica-a"), TestPki::new("replica-b"));
        let mut f = installed();
        // Both replicas read the empty Secret before either writes.
        f.race = Some((Arc::new(tokio::sync::Barrier::new(2)), 2));
        let (addr, fake) = fake_api(f).await;
        let (sa, sb) = (settings(&a.dir), settings(&b.dir));
        let (ca, cb) = (api(addr), api(addr));
        let (ra, rb) = tokio::join!(bootstrap(&ca, &sa), bootstrap(&cb, &sb));
        let (ra, rb) = (ra.unwrap(), rb.unwrap());
        assert_eq!(ra.ca_pem, rb.ca_pem);
        assert!(
            ra.generated ^ rb.generated,
            "exactly one generated: {} {}",
            ra.generated,
            rb.generated
        );
        let f = fake.lock().unwrap();
        let conflicts = f.log.iter().filter(|(_, _, c)| *c == 409).count();
        assert_eq!(conflicts, 1, "{:?}", f.log);
        assert_eq!(secret_material(&f).ca_pem, ra.ca_pem);
        let want = base64::engine::general_purpose::STANDARD.encode(&ra.ca_pem);
        assert_eq!(bundles(&f), vec![want.clone(), want]);
        assert_eq!(
            std::fs::read_to_string(&sa.cert_file).unwrap(),
            std::fs::read_to_string(&sb.cert_file).unwrap()
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unusable_secret_is_replaced_and_failures_name_the_object() {
    // A key that does not match the certificate: replaced by a new pair.
    let pki = TestPki::new("bad-secret");
    let mut f = installed();
    let (cert, _key, _) = pki.issue("x");
    let (_c2, other_key, _) = pki.issue("y");
    let b = |s: &str| base64::engine::general_purpose::STANDARD.encode(s);
    f.objects.get_mut(SECRET_PATH).unwrap()["data"] =
        json!({"ca.crt": b(&pki.ca_pem), "tls.crt": b(&cert), "tls.key": b(&other_key)});
    let (addr, fake) = fake_api(f).await;
    let out = bootstrap(&api(addr), &settings(&pki.dir)).await.unwrap();
    assert!(out.generated);
    check(
        &secret_material(&fake.lock().unwrap()),
        "tcp-sniffer-webhook",
        "tcp-sniffer",
    )
    .unwrap();

    // No RBAC: the error names the verb, the object and RBAC.
    let mut f = installed();
    f.deny = true;
    let (addr, _) = fake_api(f).await;
    let e = bootstrap(&api(addr), &settings(&pki.dir))
        .await
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("get Secret tcp-sniffer/tcp-sniffer-webhook-tls: HTTP 403")
            && e.contains("RBAC"),
        "{e}"
    );

    // The Secret is missing (RBAC cannot grant `create` by name, so the overlay ships it).
    let mut f = installed();
    f.objects.remove(SECRET_PATH);
    let (addr, _) = fake_api(f).await;
    let e = bootstrap(&api(addr), &settings(&pki.dir))
        .await
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("HTTP 404") && e.contains("overlays/self-signed"),
        "{e}"
    );

    // A wrong token.
    let (addr, _) = fake_api(installed()).await;
    let bad = ApiClient::new(&format!("http://{addr}"), Some("nope".into()), None).unwrap();
    let e = bootstrap(&bad, &settings(&pki.dir))
        .await
        .unwrap_err()
        .to_string();
    assert!(e.contains("HTTP 401"), "{e}");
}
