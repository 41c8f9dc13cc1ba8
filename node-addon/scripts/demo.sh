#!/usr/bin/env bash
# The live demo of the sidecar entrypoint (for `make demo`).
#
# As root: in a fresh network namespace (unshare -n; it disappears with the process, so
# nothing is left behind) it starts a small Node HTTP server on 127.0.0.1:8080, runs
# tcp-sniffer-sidecar on that namespace's lo with PORTS=8080, makes a few requests with
# curl, prints the captured messages (stdout JSON lines), then SIGTERMs the sidecar,
# which drains and exits 0.
#
# Without root (or without unshare): replays the shipped capture tests/data/demo.pcap
# through the same entrypoint: `tcp-sniffer-sidecar --read FILE` (the sidecar's one flag,
# for demos and tests; the container sets only env vars).
#
# Needs the built package (npm ci && npm run build in node-addon/); builds it if missing.
set -euo pipefail
here="$(cd "$(dirname "$0")/.." && pwd)"
repo="$(cd "$here/.." && pwd)"
sidecar="$here/dist/sidecar.js"
pcap="$repo/tests/data/demo.pcap"

if [[ ! -f "$sidecar" || ! -f "$here/index.node" ]]; then
  echo "== building node-addon (npm ci && npm run build)" >&2
  (cd "$here" && npm ci --ignore-scripts --no-audit --no-fund >&2 && npm run build >&2)
fi

replay() {
  echo "== $1: replaying $pcap through tcp-sniffer-sidecar --read" >&2
  PORTS=8080 node "$sidecar" --read "$pcap"
}

if [[ "${1:-}" == "--in-netns" ]]; then
  # Inside the namespace (re-executed by the branch below).
  ip link set lo up
  work="$(mktemp -d)"
  server_pid="" sidecar_pid=""
  cleanup() {
    [[ -n "$sidecar_pid" ]] && kill "$sidecar_pid" 2>/dev/null || true
    [[ -n "$server_pid" ]] && kill "$server_pid" 2>/dev/null || true
    rm -rf "$work"
  }
  trap cleanup EXIT
  node -e '
    require("node:http").createServer((req, res) => {
      req.resume();
      req.on("end", () => {
        res.setHeader("content-type", "application/json");
        res.end(JSON.stringify({ hello: "world", path: req.url }));
      });
    }).listen(8080, "127.0.0.1");' &
  server_pid=$!
  PORTS=8080 INTERFACE=lo POD_NAME=demo-pod POD_NAMESPACE=demo NODE_NAME=demo-node \
    node "$sidecar" >"$work/messages.jsonl" 2>"$work/log.jsonl" &
  sidecar_pid=$!
  for _ in $(seq 100); do
    grep -q 'sidecar started' "$work/log.jsonl" 2>/dev/null && break
    kill -0 "$sidecar_pid" 2>/dev/null || { cat "$work/log.jsonl" >&2; exit 1; }
    sleep 0.1
  done
  for _ in $(seq 50); do curl -s -o /dev/null http://127.0.0.1:8080/ && break; sleep 0.1; done
  echo "== curl: GET /api/users, POST /api/users, GET /missing, HEAD /health" >&2
  curl -s -o /dev/null http://127.0.0.1:8080/api/users
  curl -s -o /dev/null -H 'content-type: application/json' -d '{"name":"ada"}' http://127.0.0.1:8080/api/users
  curl -s -o /dev/null http://127.0.0.1:8080/missing
  curl -s -o /dev/null -I http://127.0.0.1:8080/health
  sleep 0.3
  kill -TERM "$sidecar_pid"
  code=0
  wait "$sidecar_pid" || code=$?
  sidecar_pid=""
  echo "== sidecar log (stderr, JSON lines)" >&2
  cat "$work/log.jsonl" >&2
  echo "== messages (stdout, JSON lines); sidecar exit code $code" >&2
  cat "$work/messages.jsonl"
  exit "$code"
fi

if [[ "$(id -u)" == 0 ]] && command -v unshare >/dev/null && unshare -n true 2>/dev/null; then
  echo "== live: a Node server, tcp-sniffer-sidecar on lo and curl in a fresh network namespace" >&2
  exec unshare -n -- "$0" --in-netns
fi
replay "not root (or no unshare)"
