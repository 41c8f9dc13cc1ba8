#!/usr/bin/env bash
# Live-capture cost to the application (`sniffer-perf live`): nginx under wrk at its highest
# rate, with no capture, with `tcpdump -w /dev/null`, and with tcp-sniffer per backend and
# worker count, interleaved over ROUNDS rounds (so the machine's drift spreads over all of
# them). Prints a Markdown table; with JSON_OUT=FILE also writes the results as JSON there
# (what `sniffer-perf live` reads: medians, the loss per capture against the baseline, and
# the targets).
#
# Runs everything in a private network namespace (`unshare -n`): nginx on 127.0.0.1:8080,
# wrk against a 1 KiB static file, the release build of tcp-sniffer on `lo`. Nothing leaves
# the namespace; every process it starts is stopped before it exits.
#
# Usage (root): scripts/live-bench.sh            # builds the release binary first
#   DURATION=10 CONNECTIONS=64 THREADS=2 ROUNDS=3 RUNS="af_packet:1 af_packet:2 pcap:1 pcap:2"
#   SNIFFER=PATH        use this tcp-sniffer binary instead of building one
#   SNIFFER_ARGS="..."  extra tcp-sniffer flags (experiments)
#   JSON_OUT=FILE       also write {"wrk": …, "machine": …, "rows": [ … ]} to FILE (one object
#                       per table row, numbers as numbers; see the keys in `jrow` below)
#
# Columns:
#   wrk requests   requests wrk completed ("N requests in"); req/s = that / wrk's time
#   messages       messages tcp-sniffer wrote (stdout goes to /dev/null; the count is
#                  output.delivered of its final --stats, requests and responses http.*)
#   kernel drops   capture.kernel_drops from --stats (tcpdump: "dropped by kernel")
#   queue drops    capture.queue_drops (libpcap reader -> worker) and output.dropped_queue_full
#   CPU            user+sys of the capture process while wrk ran (/proc/PID/stat), as % of one
#                  core, and per 10 000 requests/s (% of one core)
#   wake-ups/s     voluntary context switches of all its threads per second
#                  (/proc/PID/task/*/status): how often it slept and was woken
set -euo pipefail

DURATION=${DURATION:-10}
CONNECTIONS=${CONNECTIONS:-64}
THREADS=${THREADS:-2}
RUNS=${RUNS:-"af_packet:1 af_packet:2 pcap:1 pcap:2"}
ROUNDS=${ROUNDS:-3}
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
py() { python3 -c "print($1)"; }
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
# Voluntary and involuntary context switches of every thread of a process, "VOL INVOL".
# Voluntary switches are the process going to sleep and being woken: its wake-ups.
ctxt() {
  cat /proc/"$1"/task/*/status 2>/dev/null |
    awk '/^voluntary_ctxt_switches/ { v += $2 } /^nonvoluntary_ctxt_switches/ { n += $2 } END { print v + 0, n + 0 }'
}

# Measures process $1 while wrk runs: sets cpu, core, rate, wake, invol.
measure() {
  local c0 c1 t0 t1 v0 n0 v1 n1
  read -r v0 n0 < <(ctxt "$1")
  c0=$(cpu_ticks "$1"); t0=$(now)
  run_wrk
  c1=$(cpu_ticks "$1"); t1=$(now)
  read -r v1 n1 < <(ctxt "$1")
  cpu=$(py "($c1 - $c0) / $hz")
  core=$(py "100 * $cpu / ($t1 - $t0)")
  rate=$(py "$wrk_requests / $wrk_secs")
  wake=$(py "($v1 - $v0) / ($t1 - $t0)")
  invol=$(py "($n1 - $n0) / ($t1 - $t0)")
}

run_none() {
  run_wrk
  rate=$(py "$wrk_requests / $wrk_secs")
  row "none (baseline)" "-" "$round" "$wrk_requests" "$(printf %.0f "$rate")" "-" "-" "-" "-" "-" "-" "-"
  jrow capture=none round="$round" wrk_requests="$wrk_requests" wrk_seconds="$wrk_secs" \
    requests_per_s="$rate"
}

# tcpdump as a peer: same filter, writing to /dev/null.
run_tcpdump() {
  : >"$dir/tcpdump.log"
  tcpdump -i lo -w /dev/null "tcp port $PORT" 2>"$dir/tcpdump.log" &
  local td=$!
  pids+=($td)
  for _ in $(seq 100); do grep -q 'listening on' "$dir/tcpdump.log" && break; sleep 0.05; done
  measure "$td"
  kill -INT "$td"
  wait "$td" || true
  tdrops=$(awk '/dropped by kernel/ { print $1 }' "$dir/tcpdump.log")
  tcaptured=$(awk '/packets captured/ { print $1 }' "$dir/tcpdump.log")
  row "tcpdump -w /dev/null" "-" "$round" "$wrk_requests" "$(printf %.0f "$rate")" "($tcaptured packets)" \
    "$tdrops" "-" "$(printf %.0f%% "$core")" "$(py "f'{$core / ($rate / 10000):.1f}%'")" \
    "$(printf %.0f "$wake")" "$(printf %.0f "$invol")"
  jrow capture=tcpdump round="$round" wrk_requests="$wrk_requests" wrk_seconds="$wrk_secs" \
    requests_per_s="$rate" packets_captured="$tcaptured" kernel_drops="$tdrops" cpu_seconds="$cpu" \
    cpu_core_pct="$core" cpu_pct_per_10k_rps="$(py "$core / ($rate / 10000)")" \
    wakeups_per_s="$wake" involuntary_switches_per_s="$invol"
}

# tcp-sniffer at its defaults but for backend and workers, messages to /dev/null (what it
# wrote and emitted is read from its final --stats counters, so no counting process competes
# with the app for the CPU).
run_sniffer() {
  local backend=${1%%:*} workers=${1##*:}
  local err="$dir/err-$1-$round.log"
  # shellcheck disable=SC2086 # SNIFFER_ARGS is a list of extra flags
  "$bin" -i lo -p "$PORT" --backend "$backend" --workers "$workers" --stats ${SNIFFER_ARGS:-} \
    >/dev/null 2>"$err" &
  local sn=$!
  pids+=($sn)
  for _ in $(seq 200); do grep -qs '"message":"capturing"' "$err" && break; sleep 0.05; done
  grep -qs '"message":"capturing"' "$err" || { cat "$err" >&2; exit 1; }
  measure "$sn"
  kill -INT "$sn"
  wait "$sn" || { echo "live-bench: tcp-sniffer exited with $?" >&2; cat "$err" >&2; exit 1; }
  read -r kdrops qdrops odrops messages requests_out responses_out < <(tail -n 1 "$err" | python3 -c '
import json, sys
s = json.load(sys.stdin)
print(s["capture"]["kernel_drops"], s["capture"]["queue_drops"], s["output"]["dropped_queue_full"],
      s["output"]["delivered"], s["http"]["requests"], s["http"]["responses"])')
  row "tcp-sniffer $backend" "$workers" "$round" "$wrk_requests" "$(printf %.0f "$rate")" "$messages" \
    "$kdrops" "$qdrops + $odrops" "$(printf %.0f%% "$core")" "$(py "f'{$core / ($rate / 10000):.1f}%'")" \
    "$(printf %.0f "$wake")" "$(printf %.0f "$invol")"
  jrow capture=tcp-sniffer backend="$backend" workers="$workers" round="$round" \
    wrk_requests="$wrk_requests" wrk_seconds="$wrk_secs" requests_per_s="$rate" messages="$messages" \
    requests_emitted="$requests_out" responses_emitted="$responses_out" \
    kernel_drops="$kdrops" queue_drops="$qdrops" output_drops="$odrops" cpu_seconds="$cpu" \
    cpu_core_pct="$core" cpu_pct_per_10k_rps="$(py "$core / ($rate / 10000)")" \
    wakeups_per_s="$wake" involuntary_switches_per_s="$invol"
}

# Interleaved: every round runs every capture once, so drift of the machine (other load,
# thermal, page cache) spreads over all of them instead of biasing the last ones.
run_wrk >/dev/null # warm-up: nginx's caches, the connection tables
for round in $(seq "$ROUNDS"); do
  run_none
  run_tcpdump
  for run in $RUNS; do
    run_sniffer "$run"
  done
done

if [ -n "${JSON_OUT:-}" ]; then
  python3 - "$dir/rows.jsonl" "$JSON_OUT" "$THREADS" "$CONNECTIONS" "$DURATION" "$PORT" <<'PY'
import json, os, platform, sys
rows_file, out, threads, conns, duration, port = sys.argv[1:]
rows = [json.loads(l) for l in open(rows_file) if l.strip()]
doc = {
    "wrk": {"threads": int(threads), "connections": int(conns), "durationSeconds": int(duration),
            "url": f"http://127.0.0.1:{port}/1k", "server": "nginx, 1 worker process, access log off"},
    "machine": {"cpus": os.cpu_count(), "kernel": platform.release()},
    "rounds": max([r.get("round", 1) for r in rows] or [0]),
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
echo "| capture | workers | round | wrk requests | req/s | messages | kernel drops | queue + output drops | CPU (% of a core) | CPU per 10k req/s | wake-ups/s | involuntary switches/s |"
echo "|---|---|---|---|---|---|---|---|---|---|---|---|"
printf '%s\n' "${rows[@]}"
