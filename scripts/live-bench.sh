#!/usr/bin/env bash
# Live-capture measurements for issue 3's closing note: nginx under wrk at its highest rate,
# with the sniffer capturing on lo — for each backend and worker count — and tcpdump as a
# peer. Prints a Markdown table; with JSON_OUT=FILE also writes the results as JSON there
# (what `sniffer-perf live` reads).
#
# Runs everything in a private network namespace (`unshare -n`): nginx on 127.0.0.1:8080,
# wrk against a 1 KiB static file, the release build of tcp-sniffer on `lo`. Nothing leaves
# the namespace; every process it starts is stopped before it exits.
#
# Usage (root): scripts/live-bench.sh            # builds the release binary first
#   DURATION=10 CONNECTIONS=64 THREADS=2 RUNS="af_packet:1 af_packet:2 pcap:1 pcap:2"
#   SNIFFER=PATH   use this tcp-sniffer binary instead of building one
#   JSON_OUT=FILE  also write {"wrk": …, "machine": …, "rows": [ … ]} to FILE (one object per
#                  table row, numbers as numbers; see the keys in `jrow` below)
#
# Columns:
#   wrk requests   requests wrk completed ("N requests in"); req/s = that / wall time
#   messages       JSON lines the sniffer wrote to stdout (counted by `wc -l` on a pipe;
#                  requests among them by `grep -c` on a tee of it)
#   of 2×requests  messages / (2 × wrk requests): 100% = a request and a response for each
#   kernel drops   capture.kernel_drops from --stats (tcpdump: "dropped by kernel")
#   queue drops    capture.queue_drops (libpcap reader -> worker) and output.dropped_queue_full
#   CPU            user+sys of the capture process while wrk ran (/proc/PID/stat), as % of one
#                  core, and per 10 000 requests/s (% of one core)
set -euo pipefail

DURATION=${DURATION:-10}
CONNECTIONS=${CONNECTIONS:-64}
THREADS=${THREADS:-2}
RUNS=${RUNS:-"af_packet:1 af_packet:2 pcap:1 pcap:2"}
PORT=8080

root=$(cd "$(dirname "$0")/.." && pwd)

if [ -z "${LIVE_BENCH_INNER:-}" ]; then
  if [ "$(id -u)" != 0 ]; then
    echo "live-bench: needs root (network namespace, packet capture)" >&2
    exit 1
  fi
  for t in nginx wrk tcpdump unshare python3; do
    command -v "$t" >/dev/null || { echo "live-bench: $t not found (scripts/install-deps.sh test)" >&2; exit 1; }
  done
  if [ -z "${SNIFFER:-}" ]; then
    (cd "$root" && cargo build --release -p tcp-sniffer >&2)
  fi
  if [ -n "${JSON_OUT:-}" ]; then
    JSON_OUT=$(realpath -m "$JSON_OUT")
    export JSON_OUT
  fi
  export LIVE_BENCH_INNER=1
  exec unshare -n "$0" "$@"
fi

bin=$(realpath "${SNIFFER:-${CARGO_TARGET_DIR:-$root/target}/release/tcp-sniffer}")
dir=$(mktemp -d /tmp/tcp-sniffer-live-bench.XXXXXX)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$dir"
}
trap cleanup EXIT

ip link set lo up
mkdir -p "$dir/www" "$dir/tmp"
head -c 1024 /dev/zero | tr '\0' 'x' >"$dir/www/1k"
sed -e "s|{{DIR}}|$dir|g" \
    -e "s|{{LISTEN}}|        listen 127.0.0.1:$PORT;|" \
    -e "s|{{ACCESS_LOG}}|access_log off;|" \
    "$root/engine/tests/live/nginx.conf.template" >"$dir/nginx.conf"
nginx -p "$dir/" -c "$dir/nginx.conf" -e "$dir/error.log" &
pids+=($!)
for _ in $(seq 100); do
  (exec 3<>/dev/tcp/127.0.0.1/$PORT) 2>/dev/null && break
  sleep 0.05
done

hz=$(getconf CLK_TCK)
# user+sys clock ticks of a process
cpu_ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat"; }
now() { date +%s.%N; }

# Runs wrk; sets wrk_requests and wrk_secs.
run_wrk() {
  local out
  out=$(wrk -t"$THREADS" -c"$CONNECTIONS" -d"${DURATION}s" "http://127.0.0.1:$PORT/1k")
  wrk_requests=$(awk '/requests in/ { print $1 }' <<<"$out")
  wrk_secs=$(awk '/requests in/ { sub(/s,$/, "", $4); print $4 }' <<<"$out")
}

rows=()
row() { rows+=("| $(IFS='|'; echo "$*" | sed 's/|/ | /g') |"); }
pct() { python3 -c "import sys; a, b = map(float, sys.argv[1:]); print(f'{100*a/b:.1f}%' if b else '-')" "$@"; }
# One row for JSON_OUT: key=value arguments; values that parse as numbers are written as numbers.
jrow() {
  python3 -c '
import json, sys
def val(v):
    for t in (int, float):
        try:
            return t(v)
        except ValueError:
            pass
    return v
print(json.dumps({k: val(v) for k, v in (a.split("=", 1) for a in sys.argv[1:])}))' "$@" >>"$dir/rows.jsonl"
}

# Baseline: no capture.
run_wrk
row "none (baseline)" "-" "$wrk_requests" "$(python3 -c "print(round($wrk_requests/$wrk_secs))")" "-" "-" "-" "-" "-" "-"
jrow capture=none wrk_requests="$wrk_requests" wrk_seconds="$wrk_secs" \
  requests_per_s="$(python3 -c "print($wrk_requests/$wrk_secs)")"

for run in $RUNS; do
  backend=${run%%:*}
  workers=${run##*:}
  err="$dir/err-$run.log"
  count="$dir/count-$run"
  "$bin" -i lo -p "$PORT" --backend "$backend" --workers "$workers" --stats \
    > >(tee >(grep -c '^{"type":"request"' >"$count.req") | wc -l >"$count") 2>"$err" &
  sn=$!
  pids+=($sn)
  for _ in $(seq 200); do grep -q '"message":"capturing"' "$err" && break; sleep 0.05; done
  grep -q '"message":"capturing"' "$err" || { cat "$err" >&2; exit 1; }
  c0=$(cpu_ticks "$sn"); t0=$(now)
  run_wrk
  c1=$(cpu_ticks "$sn"); t1=$(now)
  kill -INT "$sn"
  wait "$sn" || { echo "live-bench: tcp-sniffer exited with $?" >&2; cat "$err" >&2; exit 1; }
  for _ in $(seq 100); do [ -s "$count" ] && [ -s "$count.req" ] && break; sleep 0.05; done
  read -r kdrops qdrops odrops < <(tail -n 1 "$err" | python3 -c '
import json, sys
s = json.load(sys.stdin)
print(s["capture"]["kernel_drops"], s["capture"]["queue_drops"], s["output"]["dropped_queue_full"])')
  messages=$(cat "$count")
  requests_out=$(cat "$count.req")
  cpu=$(python3 -c "print(($c1 - $c0) / $hz)")
  core=$(python3 -c "print(100 * $cpu / ($t1 - $t0))")
  rate=$(python3 -c "print($wrk_requests / $wrk_secs)")
  row "tcp-sniffer $backend" "$workers" "$wrk_requests" "$(printf %.0f "$rate")" "$messages" \
    "$(pct "$messages" "$((2 * wrk_requests))")" "$kdrops" "$qdrops + $odrops" \
    "$(printf %.0f%% "$core")" "$(python3 -c "print(f'{$core / ($rate / 10000):.0f}%')")"
  jrow capture=tcp-sniffer backend="$backend" workers="$workers" wrk_requests="$wrk_requests" \
    wrk_seconds="$wrk_secs" requests_per_s="$rate" messages="$messages" \
    requests_emitted="$requests_out" responses_emitted="$((messages - requests_out))" \
    kernel_drops="$kdrops" queue_drops="$qdrops" output_drops="$odrops" cpu_seconds="$cpu" \
    cpu_core_pct="$core" cpu_pct_per_10k_rps="$(python3 -c "print($core / ($rate / 10000))")"
done

# tcpdump as a peer: same filter, writing to /dev/null.
: >"$dir/tcpdump.log"
tcpdump -i lo -w /dev/null "tcp port $PORT" 2>"$dir/tcpdump.log" &
td=$!
pids+=($td)
for _ in $(seq 100); do grep -q 'listening on' "$dir/tcpdump.log" && break; sleep 0.05; done
c0=$(cpu_ticks "$td"); t0=$(now)
run_wrk
c1=$(cpu_ticks "$td"); t1=$(now)
kill -INT "$td"
wait "$td" || true
tdrops=$(awk '/dropped by kernel/ { print $1 }' "$dir/tcpdump.log")
tcaptured=$(awk '/packets captured/ { print $1 }' "$dir/tcpdump.log")
cpu=$(python3 -c "print(($c1 - $c0) / $hz)")
core=$(python3 -c "print(100 * $cpu / ($t1 - $t0))")
rate=$(python3 -c "print($wrk_requests / $wrk_secs)")
row "tcpdump -w /dev/null" "-" "$wrk_requests" "$(printf %.0f "$rate")" "($tcaptured packets)" "-" \
  "$tdrops" "-" "$(printf %.0f%% "$core")" "$(python3 -c "print(f'{$core / ($rate / 10000):.0f}%')")"
jrow capture=tcpdump wrk_requests="$wrk_requests" wrk_seconds="$wrk_secs" requests_per_s="$rate" \
  packets_captured="$tcaptured" kernel_drops="$tdrops" cpu_seconds="$cpu" cpu_core_pct="$core" \
  cpu_pct_per_10k_rps="$(python3 -c "print($core / ($rate / 10000))")"

if [ -n "${JSON_OUT:-}" ]; then
  python3 - "$dir/rows.jsonl" "$JSON_OUT" "$THREADS" "$CONNECTIONS" "$DURATION" "$PORT" <<'PY'
import json, os, platform, sys
rows_file, out, threads, conns, duration, port = sys.argv[1:]
rows = [json.loads(l) for l in open(rows_file) if l.strip()]
doc = {
    "wrk": {"threads": int(threads), "connections": int(conns), "durationSeconds": int(duration),
            "url": f"http://127.0.0.1:{port}/1k", "server": "nginx, 1 worker process, access log off"},
    "machine": {"cpus": os.cpu_count(), "kernel": platform.release()},
    "rows": rows,
}
with open(out + ".tmp", "w") as f:
    json.dump(doc, f, indent=2)
    f.write("\n")
os.replace(out + ".tmp", out)
PY
fi

echo
echo "wrk -t$THREADS -c$CONNECTIONS -d${DURATION}s http://127.0.0.1:$PORT/1k (nginx 1 process, access log off), $(nproc) CPUs, kernel $(uname -r)"
echo
echo "| capture | workers | wrk requests | req/s | messages | of 2×requests | kernel drops | queue + output drops | CPU (% of a core) | CPU per 10k req/s |"
echo "|---|---|---|---|---|---|---|---|---|---|"
printf '%s\n' "${rows[@]}"
