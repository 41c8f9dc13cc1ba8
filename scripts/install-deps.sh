#!/usr/bin/env bash
# Installs what building and testing tcp-sniffer needs on a fresh Debian 12 machine.
#
# Idempotent: a package already present is not reinstalled, and `apt-get update`
# runs at most once, only when something is missing. Safe to run on every
# `make demo` / `make test`.
#
# Usage: scripts/install-deps.sh [build|test|images|all]   (default: all)
set -euo pipefail

what=${1:-all}

build_pkgs=(libpcap-dev pkg-config)
# tshark and tcpdump are reference analysers for the corpus tests and perf;
# nginx, curl, wrk and ab (apache2-utils) are real peers for live tests (node too,
# from its own install); iproute2 makes namespaces; ethtool turns offloads on.
test_pkgs=(tshark tcpdump nginx curl wrk apache2-utils iproute2 ethtool openssl)

# Manifests and images (tests/deploy, tests/images, scripts/images.sh): python3-yaml turns
# `kubectl kustomize` output into JSON; podman (with runc, and catatonit for a pod's
# infra container) builds and runs the images; debootstrap makes their Debian base.
deploy_pkgs=(python3-yaml)
images_pkgs=(podman runc catatonit netavark debootstrap)

case "$what" in
  build) want=("${build_pkgs[@]}") ;;
  images) want=("${images_pkgs[@]}" "${deploy_pkgs[@]}" openssl) ;;
  test|all) want=("${build_pkgs[@]}" "${test_pkgs[@]}" "${deploy_pkgs[@]}" "${images_pkgs[@]}") ;;
  *) echo "usage: $0 [build|test|images|all]" >&2; exit 2 ;;
esac

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
exit 0
