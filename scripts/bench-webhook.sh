#!/usr/bin/env bash
# Load-test POST /mutate of tcp-sniffer-webhook over TLS with wrk, on loopback only.
#
#   scripts/bench-webhook.sh [DURATION_SECONDS] [CONNECTIONS] [THREADS]
#
# Builds the release binary (CARGO_TARGET_DIR is honoured), makes a throw-away certificate
# with openssl, starts the webhook on 127.0.0.1:18443, posts the pod fixture
# webhook/tests/fixtures/deployment-pod-create.json (a ReplicaSet pod CREATE that gets
# injected) for DURATION seconds, prints wrk's latency distribution (p50..p99) and the
# webhook's own /metrics counters, and stops the webhook. Needs: wrk (with TLS), openssl, curl.
set -euo pipefail

DURATION="${1:-15}"
CONNECTIONS="${2:-16}"
THREADS="${3:-2}"
ADDR="127.0.0.1:18443"
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
TARGET="${CARGO_TARGET_DIR:-$ROOT/target}"
WORK="$(mktemp -d /tmp/bench-webhook.XXXXXX)"
PID=""
cleanup() {
  if [[ -n "$PID" ]] && kill -0 "$PID" 2>/dev/null; then kill -TERM "$PID"; wait "$PID" || true; fi
  rm -rf "$WORK"
}
trap cleanup EXIT

for tool in wrk openssl curl; do
  command -v "$tool" >/dev/null || { echo "bench-webhook: $tool is required" >&2; exit 1; }
done

(cd "$ROOT" && cargo build --release -p tcp-sniffer-webhook >&2)
BIN="$TARGET/release/tcp-sniffer-webhook"

openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 1 \
  -subj "/CN=localhost" -addext "subjectAltName=DNS:localhost,IP:127.0.0.1" \
  -keyout "$WORK/tls.key" -out "$WORK/tls.crt" 2>/dev/null

"$BIN" --listen "$ADDR" --tls-cert "$WORK/tls.crt" --tls-key "$WORK/tls.key" \
  --probe-addr "" --sniffer-image bench/tcp-sniffer:bench --shutdown-delay-ms 0 --log-level warn \
  2>"$WORK/webhook.log" &
PID=$!
for _ in $(seq 1 100); do
  curl -fsk "https://$ADDR/readyz" >/dev/null 2>&1 && break
  sleep 0.1
done
curl -fsk "https://$ADDR/readyz" >/dev/null || { cat "$WORK/webhook.log" >&2; exit 1; }

cat > "$WORK/post.lua" <<LUA
local f = assert(io.open("$ROOT/webhook/tests/fixtures/deployment-pod-create.json", "rb"))
wrk.method = "POST"
wrk.body = f:read("*a")
f:close()
wrk.headers["Content-Type"] = "application/json"
done = function(summary, latency, requests)
  io.write(string.format("reviews/s: %.0f  p50: %.2f ms  p90: %.2f ms  p99: %.2f ms  max: %.2f ms  errors: %d\n",
    summary.requests / (summary.duration / 1e6),
    latency:percentile(50) / 1000, latency:percentile(90) / 1000,
    latency:percentile(99) / 1000, latency.max / 1000,
    summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.status + summary.errors.timeout))
end
LUA

echo "# wrk -t$THREADS -c$CONNECTIONS -d${DURATION}s --latency -s post.lua https://$ADDR/mutate  (cores: $(nproc))"
wrk -t"$THREADS" -c"$CONNECTIONS" -d"${DURATION}s" --latency -s "$WORK/post.lua" "https://$ADDR/mutate"
echo "# webhook /metrics:"
curl -fsk "https://$ADDR/metrics" | grep -E '^tcp_sniffer_webhook_(reviews_total|injected_total|http_errors_total|mutate_duration_seconds_(sum|count))' || true
