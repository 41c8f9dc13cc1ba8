//! tcp-sniffer's mutating admission webhook.
//!
//! Kubernetes asks `POST /mutate` about every pod that opted in; the answer adds the
//! `tcp-sniffer` sidecar container as a JSON Patch. The pieces:
//!
//! - [`mutate`]: the decision as a pure function (rules, sidecar, patch). No I/O.
//! - [`settings`]: flags and environment, validated once at start.
//! - [`values`]: parsers shared by settings and per-pod annotations.
//! - [`tls`]: certificate and key from files, reloaded when they change.
//! - [`metrics`]: counters and a latency histogram in Prometheus text format.
//! - [`bootstrap`]: its own CA and certificate, stored in a Secret, `caBundle` patched.
//! - [`server`]: warp routes served over TLS (tokio-rustls + hyper-util), graceful shutdown,
//!   and a plain-HTTP listener for the kubelet's probes (`/healthz`, `/readyz` only).
//!
//! ```
//! use tcp_sniffer_webhook::{mutate::{mutate, Verdict}, settings::InjectSettings};
//! let pod = serde_json::from_value(serde_json::json!({
//!     "metadata": {"name": "web"},
//!     "spec": {"containers": [{"name": "web", "ports": [{"containerPort": 8080}]}]}
//! })).unwrap();
//! let m = mutate(&pod, &InjectSettings::with_image("tcp-sniffer:1"));
//! assert_eq!(m.verdict, Verdict::Injected);
//! ```
#![deny(missing_docs)]

pub mod bootstrap;
pub mod logging;
pub mod metrics;
pub mod mutate;
pub mod server;
pub mod settings;
pub mod tls;
pub mod values;
