#!/usr/bin/env bash
# `make bench`: issue 8's whole suite, then a summary of which targets are met.
#
#   1. gen       every workload (S L F A M H) with its ground truth
#   2. compare   every tool (tcpdump, tshark, tcpflow, httpry, the tcp-sniffer CLI with one
#                worker and, as tcp-sniffer-2w, with two; tcp-sniffer-pair, two one-worker runs
#                at once: the host's ceiling for two threads) over every file, interleaved,
#                median of 5, CLI output checked against the truth
#   3. replay    the engine in-process (library) over every file with 1 and 2 workers, median
#                of 5, completeness checked against the truth, loss counters
#   4. live      nginx under wrk in a network namespace: no capture, tcpdump, tcp-sniffer per
#                backend × workers, interleaved over 5 rounds; the app's throughput lost to each
#                (vs tcpdump: ≤ 2×), CPU per 10k req/s, wake-ups/s (root; skipped with a note
#                otherwise, an error under CI)
#
# CI is read as everywhere in the project (README, "Testing"): set to anything but "", "0" or
# "false" means CI, and under CI nothing is skipped. compare and replay fail when a tool
# crashes or tcp-sniffer's output disagrees with the truth, and so does this script.
#   5. js        messages/s delivered to a JavaScript callback through the Node library (S)
#                (needs node: skipped with a note otherwise, an error under CI)
#   6. summary   README.md: the targets, met or not, and every table
#
#   perf/bench.sh                  the full suite (≈12 min on 2 cores): S 100 MB, L A M 30 MB,
#                                  F 20 MB (tcpflow writes two files per connection: ≈0.65 s/MB
#                                  of F, tshark ≈0.4 s/MB of S or F, per run); reports in
#                                  perf/results/ (data in perf/data/, not committed)
#   BENCH_QUICK=1 perf/bench.sh    CI mode (< 2 min): 2 MB files, one run, 2 s of live load,
#                                  one live run per backend; reports in target/bench-quick/ —
#                                  checks the harness works, measures nothing
set -euo pipefail
cd "$(dirname "$0")/.."

# CI set to anything but "", "0" or "false" (any case).
is_ci() {
  local v=${CI:-}
  v=${v,,}
  case "${v//[[:space:]]/}" in
    '' | 0 | false) return 1 ;;
    *) return 0 ;;
  esac
}

quick=${BENCH_QUICK:-0}
t_start=$(date +%s)
bash perf/install-tools.sh
# The same package set as `make build-release`, so the artifacts are reused, not rebuilt.
cargo build --release --locked -p tcp-sniffer -p tcp-sniffer-webhook -p sniffer-perf
tdir=${CARGO_TARGET_DIR:-target}
perf_bin=$tdir/release/sniffer-perf
sniffer=$tdir/release/tcp-sniffer

if [ "$quick" = 1 ]; then
  data=$tdir/bench-quick/data out=$tdir/bench-quick runs=1 js_runs=1
  sizes=(S:2 L:2 F:2 A:2 M:2 H:2)
  live_duration=2 live_runs="af_packet:1 pcap:1" live_rounds=1
  mode="BENCH_QUICK=1 perf/bench.sh (quick: checks the harness, measures nothing)"
else
  data=perf/data out=perf/results runs=5 js_runs=3
  sizes=(S:100 L:30 F:20 A:30 M:30 H:30)
  live_duration=10 live_runs="af_packet:1 af_packet:2 pcap:1 pcap:2" live_rounds=5
  mode="perf/bench.sh (full)"
fi
mkdir -p "$data" "$out"
timings=$out/timings.tsv
: >"$timings"
t_step=$(date +%s)
# Records the seconds since the previous step under NAME.
step_done() {
  local now
  now=$(date +%s)
  printf '%s\t%s\n' "$1" "$((now - t_step))" >>"$timings"
  t_step=$now
}
printf 'build and tools\t%s\n' "$((t_step - t_start))" >>"$timings"

echo "== gen" >&2
files=()
for ws in "${sizes[@]}"; do
  w=${ws%%:*} mb=${ws##*:}
  f="$data/$w-${mb}mb-seed1.pcap"
  [ -s "$f" ] && [ -s "${f%.pcap}.truth.jsonl" ] ||
    "$perf_bin" gen --workload "$w" --size-mb "$mb" --seed 1 --out "$data" >&2
  files+=(--file "$f")
done
s_file="$data/S-${sizes[0]##*:}mb-seed1.pcap"
step_done "gen"

echo "== compare: every tool, tcp-sniffer with 1 and 2 workers, every workload" >&2
"$perf_bin" compare "${files[@]}" --runs "$runs" --check-truth --sniffer "$sniffer" \
  --tools tcpdump,tshark,tcpflow,httpry,tcp-sniffer,tcp-sniffer-2w,tcp-sniffer-pair \
  --sniffer-args "--workers 1" --out "$out" >/dev/null
step_done "compare (every tool, median of $runs)"

echo "== replay: the engine in-process, 1 and 2 workers, every workload" >&2
"$perf_bin" replay "${files[@]}" --workers 1,2 --runs "$runs" --check-truth --out "$out" >/dev/null
step_done "replay (1 and 2 workers, median of $runs)"

echo "== live: nginx under wrk, tcp-sniffer per backend" >&2
"$perf_bin" live --duration "$live_duration" --rounds "$live_rounds" --runs "$live_runs" --sniffer "$sniffer" --out "$out" >/dev/null
step_done "live (${live_duration} s per run)"

echo "== js: messages/s to a JavaScript callback" >&2
if command -v node >/dev/null; then
  # The release addon `make node-build` produces; built here only when missing or older than
  # the Rust sources (same command as make node-build, so no second copy).
  addon=node-addon/index.node
  if [ ! -f "$addon" ] || [ ! -f node-addon/dist/index.js ] ||
    [ -n "$(find engine/src node-addon/src node-addon/ts -newer "$addon" -print -quit)" ]; then
    echo "bench: building the Node addon (npm run build in node-addon)" >&2
    (cd node-addon && { [ -d node_modules ] || npm ci --ignore-scripts --no-audit --no-fund; } && npm run build) >&2
  fi
  node node-addon/bench/callback-throughput.js "$s_file" --runs "$js_runs" --cli "$sniffer" >"$out/js-callback.out"
  # Issue 14's JavaScript target, in this run's words: "JS callback msg/s vs CLI msg/s: …, ratio R,
  # target >= 0.5: met|NOT met" (the summary's table repeats it from js-callback.json).
  js_target=$(grep '^JS callback msg/s vs CLI msg/s' "$out/js-callback.out")
  echo "bench: $js_target" >&2
  {
    echo "# tcp-sniffer into JavaScript: messages/s to a callback"
    echo
    echo "\`node node-addon/bench/callback-throughput.js $s_file --runs $js_runs\`: the same file replayed by the"
    echo "Node library into an \`onHttpMessage\` callback (batch crossing and JSON.parse included), the batch"
    echo "crossing alone (raw chunks, no JSON.parse), and the CLI writing to stdout; each run a fresh process,"
    echo "rounds interleaved; median of $js_runs; node $(node --version). JS thread CPU: the event loop's own"
    echo "CPU seconds (what the crossing costs the application)."
    echo
    grep '^|' "$out/js-callback.out"
    echo
    echo "**$js_target**"
  } >"$out/js-callback.md"
  tail -n 1 "$out/js-callback.out" | python3 -m json.tool >"$out/js-callback.json"
  rm -f "$out/js-callback.out"
elif is_ci; then
  echo "bench: node not found, and CI is set so the JS callback measurement may not be skipped (scripts/install-deps.sh installs node)" >&2
  exit 1
else
  echo "bench: !!! SKIPPED: node not found — JS callback measurement skipped (with CI set this is a failure)" >&2
  printf '# tcp-sniffer into JavaScript\n\nSkipped: node is not installed.\n' >"$out/js-callback.md"
  rm -f "$out/js-callback.json"
fi
step_done "js callback (median of $js_runs)"

# Issue 11: the CLI under hostile traffic, peak RSS per pattern (perf/README.md, `hostile`). A
# failing pattern fails the bench, after the summary is written.
echo "== hostile: the CLI under hostile traffic" >&2
# 120 MiB: docs/memory.md's bound for one worker replaying a file (71 MiB of traffic state, 32 MiB
# of stdout queue, the process itself).
hostile_args=(--data "$data/hostile" --sniffer "$sniffer" --out "$out" --budget-mib 120)
before=perf/results/hostile-before.json
[ "$quick" = 1 ] && hostile_args+=(--quick) && before=perf/results/hostile-before-quick.json
[ -f "$before" ] && hostile_args+=(--baseline "$before")
hostile_failed=0
"$perf_bin" hostile "${hostile_args[@]}" >&2 || hostile_failed=1
step_done "hostile traffic (one run per pattern)"

"$perf_bin" summary --out "$out" --timings "$timings" --mode "$mode"
echo "bench: $(($(date +%s) - t_start)) s; summary in $out/README.md" >&2
if [ "$hostile_failed" = 1 ]; then
  echo "bench: hostile traffic: at least one pattern FAILED (see $out/hostile.md)" >&2
  exit 1
fi
