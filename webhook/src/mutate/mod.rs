//! The injection decision: a pure function from a Pod (and the settings) to a JSON Patch.
//!
//! Nothing here does I/O. The layers, each only calling the ones below it:
//!
//! - [`review`]: the AdmissionReview in and out. [`review_body`] turns the raw body of
//!   `POST /mutate` into a [`Decision`] (or a [`BadRequest`] when the body is not an
//!   `admission.k8s.io/v1` AdmissionReview at all); [`review_pod`] answers one Pod request.
//! - [`rule`]: which pods get a sidecar and with which values ([`mutate`]); the per-pod
//!   annotations are read and validated here.
//! - [`sidecar`]: the `tcp-sniffer` container for those values ([`sidecar_container`]).
//! - [`patch`]: the JSON Patch that adds it to the pod ([`build_patch`]).
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

pub mod patch;
pub mod review;
pub mod rule;
pub mod sidecar;

pub use patch::build_patch;
pub use review::{review_body, review_pod, BadRequest, Decision};
pub use rule::*;
pub use sidecar::{
    capture_running_probe, sidecar_container, SidecarValues, CAPTURE_RUNNING_SCRIPT, SIDECAR_NAME,
};
