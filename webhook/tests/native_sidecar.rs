//! Native sidecars by default (SPEC.md "Injector"): an init container with
//! `restartPolicy: Always` and a startup probe, so Jobs complete and the app starts after
//! capture runs; plain containers only with `NATIVE_SIDECAR=false`, which then leaves pods that
//! run to completion alone, with a warning.
//!
//! Real AdmissionReview documents (the ReplicaSet envelope from the fixtures around a Job's
//! pod), the patch applied with json-patch, the result read as a typed k8s-openapi Pod.

mod common;

use clap::Parser as _;
use common::*;
use serde_json::{json, Value};
use tcp_sniffer_webhook::mutate::{review_body, SkipReason, Verdict, CAPTURE_RUNNING_SCRIPT};
use tcp_sniffer_webhook::settings::{Args, InjectSettings};

/// The settings the binary runs with by default (flags and env as in deploy/).
fn binary_defaults(extra: &[&str]) -> InjectSettings {
    let mut argv = vec![
        "x",
        "--tls-cert",
        "c",
        "--tls-key",
        "k",
        "--sniffer-image",
        "tcp-sniffer:test",
    ];
    argv.extend_from_slice(extra);
    Args::try_parse_from(argv)
        .unwrap()
        .validate()
        .unwrap()
        .inject
}

/// The pod the Job controller creates for `kubectl create job pi --image=perl -- perl -e 1`
/// (with a port, so the sniffer has something to watch).
fn job_pod(restart_policy: &str) -> Value {
    json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "generateName": "pi-",
            "namespace": "default",
            "labels": {
                "batch.kubernetes.io/controller-uid": "5a0f3f6e-1111-4a5b-9c1d-2e3f4a5b6c7d",
                "batch.kubernetes.io/job-name": "pi",
                "controller-uid": "5a0f3f6e-1111-4a5b-9c1d-2e3f4a5b6c7d",
                "job-name": "pi",
                "tcp-sniffer.dev/inject": "true"
            },
            "ownerReferences": [{
                "apiVersion": "batch/v1", "kind": "Job", "name": "pi",
                "uid": "5a0f3f6e-1111-4a5b-9c1d-2e3f4a5b6c7d",
                "controller": true, "blockOwnerDeletion": true
            }]
        },
        "spec": {
            "containers": [{
                "name": "pi",
                "image": "perl:5.34",
                "command": ["perl", "-Mbignum=bpi", "-wle", "print bpi(2000)"],
                "ports": [{"containerPort": 8080, "protocol": "TCP"}],
                "resources": {},
                "terminationMessagePath": "/dev/termination-log",
                "terminationMessagePolicy": "File",
                "imagePullPolicy": "IfNotPresent"
            }],
            "restartPolicy": restart_policy,
            "terminationGracePeriodSeconds": 30,
            "dnsPolicy": "ClusterFirst",
            "securityContext": {},
            "schedulerName": "default-scheduler"
        }
    })
}

fn answer(pod: &Value, s: &InjectSettings) -> (Value, tcp_sniffer_webhook::mutate::Decision) {
    let body = serde_json::to_vec(&review_for(pod)).unwrap();
    let d = review_body(&body, s).unwrap();
    let v: Value = serde_json::from_slice(&d.to_json().unwrap()).unwrap();
    (v, d)
}

#[test]
fn native_is_the_default_and_a_job_pod_gets_a_native_sidecar() {
    let s = binary_defaults(&[]);
    assert!(s.native_sidecar, "NATIVE_SIDECAR defaults to true");
    for rp in ["Never", "OnFailure", "Always"] {
        let pod = job_pod(rp);
        let (v, d) = answer(&pod, &s);
        assert_eq!(d.verdict, Verdict::Injected, "{rp}");
        let resp = response_of(&v, "3f1c2b7e-8d4a-4c55-9a0e-1b2c3d4e5f60");
        assert!(resp.get("warnings").is_none(), "{resp:#}");
        let patched = as_pod(&apply(&resp, &pod).unwrap());
        let spec = patched.spec.unwrap();
        // The app is untouched; the sidecar is the (first and only) init container.
        assert_eq!(spec.containers.len(), 1);
        assert_eq!(spec.containers[0].name, "pi");
        assert_eq!(spec.restart_policy.as_deref(), Some(rp));
        let inits = spec.init_containers.unwrap();
        assert_eq!(inits.len(), 1);
        let sidecar = &inits[0];
        assert_eq!(sidecar.name, "tcp-sniffer");
        assert_eq!(sidecar.restart_policy.as_deref(), Some("Always"));
        let want = expected_sidecar(
            "tcp-sniffer:test",
            "8080",
            "any",
            None,
            None,
            "1",
            "65536",
            true,
        );
        assert_eq!(serde_json::to_value(sidecar).unwrap(), want);
        // The startup probe gates the app on capture running.
        let probe = sidecar.startup_probe.as_ref().expect("startup probe");
        let cmd = probe.exec.as_ref().unwrap().command.as_ref().unwrap();
        assert_eq!(cmd[0], "/usr/local/bin/node");
        assert!(probe.failure_threshold.unwrap() * probe.period_seconds.unwrap() >= 60);
    }
}

#[test]
fn plain_mode_skips_pods_that_run_to_completion_with_a_warning() {
    let s = binary_defaults(&["--native-sidecar", "false"]);
    assert!(!s.native_sidecar);
    for rp in ["Never", "OnFailure"] {
        let pod = job_pod(rp);
        let (v, d) = answer(&pod, &s);
        assert_eq!(
            d.verdict,
            Verdict::Skipped(SkipReason::RunsToCompletion),
            "{rp}"
        );
        let resp = response_of(&v, "3f1c2b7e-8d4a-4c55-9a0e-1b2c3d4e5f60");
        assert!(resp.get("patch").is_none(), "{resp:#}");
        let w = resp["warnings"][0].as_str().unwrap();
        assert!(
            w.contains(&format!("restartPolicy {rp}")) && w.contains("NATIVE_SIDECAR=false"),
            "{w}"
        );
        assert_eq!(
            resp["auditAnnotations"]["decision"],
            "skipped-runs-to-completion"
        );
    }
    // A long-running pod still gets a plain container (after the app), without a probe.
    let pod = job_pod("Always");
    let (v, d) = answer(&pod, &s);
    assert_eq!(d.verdict, Verdict::Injected);
    let resp = response_of(&v, "3f1c2b7e-8d4a-4c55-9a0e-1b2c3d4e5f60");
    let spec = as_pod(&apply(&resp, &pod).unwrap()).spec.unwrap();
    assert!(spec.init_containers.is_none());
    let names: Vec<_> = spec.containers.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(names, ["pi", "tcp-sniffer"]);
    assert!(spec.containers[1].startup_probe.is_none());
    assert!(spec.containers[1].restart_policy.is_none());
    // And a pod without restartPolicy (the API server defaults it to Always) too.
    let mut pod = job_pod("Always");
    pod["spec"].as_object_mut().unwrap().remove("restartPolicy");
    assert_eq!(answer(&pod, &s).1.verdict, Verdict::Injected);
}

/// The probe's script, run by a real node on a copy of `/proc/net/packet` without and with a
/// packet socket line. Needs node (the project's node-addon needs it too).
#[test]
fn the_startup_probe_script_tells_a_packet_socket() {
    let dir = std::env::temp_dir().join(format!("tcp-sniffer-probe-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("packet");
    let script = CAPTURE_RUNNING_SCRIPT.replace("/proc/net/packet", file.to_str().unwrap());
    assert_ne!(script, CAPTURE_RUNNING_SCRIPT);
    let header = "sk               RefCnt Type Proto  Iface R Rmem   User   Inode\n";
    let socket = "ffff8b1a4c7e9000 3      3    0003   0     1 0      65532  123456\n";
    let run = |content: &str| -> Option<i32> {
        std::fs::write(&file, content).unwrap();
        std::process::Command::new("node")
            .args(["-e", &script])
            .status()
            .expect("node runs the probe script")
            .code()
    };
    assert_eq!(run(header), Some(1), "no socket yet: the probe fails");
    assert_eq!(run(&format!("{header}{socket}")), Some(0), "capture runs");
    assert_eq!(run(&format!("{header}{socket}{socket}")), Some(0));
    let _ = std::fs::remove_dir_all(&dir);
}
