#!/usr/bin/env bash
# Installs the tools that `sniffer-perf compare` runs beside tcp-sniffer.
# Idempotent: installs only what is missing, runs `apt-get update` only when a
# package it needs is unknown to apt's current lists. Needs root (or sudo).
# Debian 12 (bookworm) has all of them: tcpdump, tshark, tcpflow, httpry.
set -euo pipefail

want=(tcpdump tshark tcpflow httpry time)
SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null 2>&1; then SUDO="sudo"; else
    echo "install-tools: not root and no sudo; cannot install ${want[*]}" >&2; exit 1
  fi
fi

missing=()
for p in "${want[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done
if [ ${#missing[@]} -eq 0 ]; then
  echo "install-tools: all present (${want[*]})"; exit 0
fi

# Refresh apt's lists only if one of the missing packages has no install candidate.
need_update=0
for p in "${missing[@]}"; do
  cand=$(apt-cache policy "$p" 2>/dev/null | awk '/Candidate:/ {print $2}')
  if [ -z "$cand" ] || [ "$cand" = "(none)" ]; then need_update=1; fi
done
if [ $need_update -eq 1 ]; then $SUDO apt-get update -qq; fi

installable=()
for p in "${missing[@]}"; do
  cand=$(apt-cache policy "$p" 2>/dev/null | awk '/Candidate:/ {print $2}')
  if [ -n "$cand" ] && [ "$cand" != "(none)" ]; then installable+=("$p"); else
    echo "install-tools: no package named $p here; compare will skip it" >&2
  fi
done
if [ ${#installable[@]} -gt 0 ]; then
  # tshark asks whether non-root users may capture; answer non-interactively.
  echo "wireshark-common wireshark-common/install-setuid boolean false" | $SUDO debconf-set-selections 2>/dev/null || true
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${installable[@]}"
fi
echo "install-tools: done"
