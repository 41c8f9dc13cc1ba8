#!/usr/bin/env bash
# Renders a kustomization offline (`kubectl kustomize`) and prints it as one JSON array
# of objects, for webhook/tests/deploy_manifests.rs.
# Needs kubectl (with its built-in kustomize) and Python's yaml module (Debian's
# python3-yaml, from scripts/install-deps.sh).
# Usage: tests/deploy/render.sh DIR
set -euo pipefail
dir=${1:?usage: tests/deploy/render.sh KUSTOMIZATION_DIR}
command -v kubectl >/dev/null || { echo "render: kubectl is not installed; it renders the kustomize manifests" >&2; exit 1; }
py=
for p in /usr/bin/python3 python3; do
  if command -v "$p" >/dev/null && "$p" -c 'import yaml' 2>/dev/null; then py=$p; break; fi
done
[ -n "$py" ] || { echo "render: no python3 with the yaml module (apt-get install python3-yaml, or pip install pyyaml)" >&2; exit 1; }
yaml=$(kubectl kustomize "$dir")
# CSafeLoader when present; both load YAML 1.1, which is what kustomize's output quotes for.
"$py" -c '
import json, sys, yaml
Loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
docs = [d for d in yaml.load_all(sys.stdin, Loader=Loader) if d is not None]
json.dump(docs, sys.stdout)
' <<<"$yaml"
