#!/usr/bin/env bash
# Deployment manifest tests: every kustomization under deploy/ renders offline and passes
# webhook/tests/deploy_manifests.rs (typed k8s-openapi parse + round trip, Service/port/path
# consistency with the server, the three probes over plain HTTP on the container port `probes`
# = the server's PROBE_ADDR, a NetworkPolicy opening exactly the TLS and probe ports, selectors,
# restricted security contexts, settings accepted by the server's own parser, certificate
# overlays, the example injected as configured).
# Needs kubectl (its built-in kustomize) and python3-yaml (scripts/install-deps.sh).
set -euo pipefail
cd "$(dirname "$0")/../.."
command -v kubectl >/dev/null || { echo "deploy-test: kubectl is required (kubectl kustomize)" >&2; exit 1; }
for k in deploy/base deploy/overlays/* deploy/examples deploy/observability; do
  kubectl kustomize "$k" >/dev/null || { echo "deploy-test: $k does not render" >&2; exit 1; }
done
exec cargo test --locked -p tcp-sniffer-webhook --test deploy_manifests "$@"
