#!/usr/bin/env bash
# `make bench`: generate every workload, run every tool over it side by side, check
# tcp-sniffer against the ground truth, and write perf/results/ (Markdown, JSON, SVG).
#
#   perf/bench.sh            the full suite (≈10–15 min on 2 cores): S 100 MB, others 50 MB,
#                            median of 5 runs, one worker, then S again with two workers
#   BENCH_QUICK=1 perf/bench.sh   CI mode (< 2 min): 2 MB files, one run, results in
#                            target/bench-quick/ — checks the harness works, measures nothing
set -euo pipefail
cd "$(dirname "$0")/.."

quick=${BENCH_QUICK:-0}
bash perf/install-tools.sh
# The same package set as `make build-release`, so the artifacts are reused, not rebuilt.
cargo build --release --locked -p tcp-sniffer -p tcp-sniffer-webhook -p sniffer-perf
perf_bin=target/release/sniffer-perf

if [ "$quick" = 1 ]; then
  data=target/bench-quick/data out=target/bench-quick runs=1
  sizes=(S:2 L:2 F:2 A:2 M:2)
else
  data=perf/data out=perf/results runs=5
  sizes=(S:100 L:50 F:50 A:50 M:50)
fi
mkdir -p "$data" "$out"

files=()
for ws in "${sizes[@]}"; do
  w=${ws%%:*} mb=${ws##*:}
  f="$data/$w-${mb}mb-seed1.pcap"
  [ -s "$f" ] || "$perf_bin" gen --workload "$w" --size-mb "$mb" --seed 1 --out "$data" >&2
  files+=(--file "$f")
done

echo "== one worker, every tool, every workload" >&2
"$perf_bin" compare "${files[@]}" --runs "$runs" --check-truth --sniffer-args "--workers 1" --out "$out"

echo "== two workers on S (scaling)" >&2
"$perf_bin" compare "${files[0]}" "${files[1]}" --runs "$runs" --tools tcp-sniffer --sniffer-args "--workers 2" \
  --check-truth --out "$out/two-workers"

echo "bench: reports in $out/compare.md and $out/two-workers/compare.md" >&2
