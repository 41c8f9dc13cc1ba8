#!/usr/bin/env bash
# Fuzz smoke test: builds the cargo-fuzz targets in engine/fuzz and runs each
# one briefly from the committed seeds. Fails (exit 1) on any crash, timeout or
# OOM and prints the reproducer's path and the commands to replay and minimise it.
#
#   scripts/fuzz-smoke.sh                    # every target, FUZZ_SECONDS each
#   FUZZ_SECONDS=300 scripts/fuzz-smoke.sh packets
#
# Environment:
#   FUZZ_SECONDS   seconds of fuzzing per target (default 45)
#   FUZZ_MAX_LEN   libFuzzer -max_len (default 65536)
#   FUZZ_TIMEOUT   seconds one input may take before it counts as a hang (default 10)
#   FUZZ_RSS_MB    libFuzzer -rss_limit_mb (default 2048)
#   FUZZ_SANITIZER cargo-fuzz --sanitizer (default none: the fuzzed path has no
#                  unsafe code, and without ASan the cold build takes ~20% less
#                  CPU and runs execute several times faster; `address` for ASan)
#
# Stable Rust only: cargo-fuzz needs -Zsanitizer, so RUSTC_BOOTSTRAP=1 is set for
# the build. engine/fuzz/target is reused between runs (incremental: ~1-3 min cold
# on 2 cores, seconds warm). The corpus grown by a run lives in
# engine/fuzz/target/corpus/<target> (not committed; seeds are engine/fuzz/seeds).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
FUZZ_DIR="$ROOT/engine/fuzz"
FUZZ_SECONDS="${FUZZ_SECONDS:-45}"
FUZZ_MAX_LEN="${FUZZ_MAX_LEN:-65536}"
FUZZ_TIMEOUT="${FUZZ_TIMEOUT:-10}"
FUZZ_RSS_MB="${FUZZ_RSS_MB:-2048}"
FUZZ_SANITIZER="${FUZZ_SANITIZER:-none}"
CARGO_FUZZ_VERSION="0.13.2"
ALL_TARGETS=(http_stream http2_stream packets)
if [ "$#" -gt 0 ]; then TARGETS=("$@"); else TARGETS=("${ALL_TARGETS[@]}"); fi

export RUSTC_BOOTSTRAP=1
cd "$ROOT"

log() { printf '== fuzz-smoke: %s\n' "$*" >&2; }

if ! cargo fuzz --version >/dev/null 2>&1; then
    log "installing cargo-fuzz $CARGO_FUZZ_VERSION (once per machine)"
    cargo install cargo-fuzz --version "$CARGO_FUZZ_VERSION" --locked
fi

# engine/fuzz/Cargo.lock is committed and must be current: cargo-fuzz has no --locked, so
# check it here (fails instead of rewriting it, which would leave the tree dirty); the build
# below then uses it unchanged.
if ! cargo metadata --locked --format-version 1 --manifest-path "$FUZZ_DIR/Cargo.toml" >/dev/null; then
    log "engine/fuzz/Cargo.lock is stale: run \`cargo metadata --manifest-path engine/fuzz/Cargo.toml --format-version 1 >/dev/null\` (or cargo update there) and commit it"
    exit 1
fi

t0=$(date +%s)
log "building ${TARGETS[*]} (release + debug assertions, sanitizer: $FUZZ_SANITIZER)"
for t in "${TARGETS[@]}"; do
    # Build all at once below; this only validates the names.
    case " ${ALL_TARGETS[*]} " in *" $t "*) ;; *) log "unknown target $t"; exit 2 ;; esac
done
if [ "${#TARGETS[@]}" -eq "${#ALL_TARGETS[@]}" ]; then
    cargo fuzz build --fuzz-dir "$FUZZ_DIR" -s "$FUZZ_SANITIZER"
else
    for t in "${TARGETS[@]}"; do cargo fuzz build --fuzz-dir "$FUZZ_DIR" -s "$FUZZ_SANITIZER" "$t"; done
fi
log "build took $(( $(date +%s) - t0 )) s"

failed=0
for t in "${TARGETS[@]}"; do
    corpus="$FUZZ_DIR/target/corpus/$t"
    artifacts="$FUZZ_DIR/artifacts/$t"
    seeds="$FUZZ_DIR/seeds/$t"
    mkdir -p "$corpus" "$artifacts"
    logf="$FUZZ_DIR/target/fuzz-$t.log"
    # Artifacts from an earlier run would be mistaken for this run's.
    before=$(ls -1 "$artifacts" | wc -l)
    log "running $t for ${FUZZ_SECONDS}s (log: $logf)"
    t1=$(date +%s)
    set +e
    # The first corpus dir receives new inputs; the seeds dir is only read.
    # Same flags as the build, so `run` finds it up to date.
    cargo fuzz run --fuzz-dir "$FUZZ_DIR" -s "$FUZZ_SANITIZER" "$t" "$corpus" "$seeds" -- \
        -max_total_time="$FUZZ_SECONDS" -max_len="$FUZZ_MAX_LEN" \
        -timeout="$FUZZ_TIMEOUT" -rss_limit_mb="$FUZZ_RSS_MB" \
        -dict="$FUZZ_DIR/http.dict" -artifact_prefix="$artifacts/" \
        -print_final_stats=1 >"$logf" 2>&1
    rc=$?
    set -e
    execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$logf" | tail -1)
    secs=$(( $(date +%s) - t1 ))
    cov=$(grep -Eo 'cov: [0-9]+ ft: [0-9]+ corp: [0-9]+/[0-9a-zA-Z]+' "$logf" | tail -1 || true)
    if [ "$rc" -eq 0 ]; then
        log "$t: ok, ${execs:-?} execs in ${secs}s (~$(( ${execs:-0} / (FUZZ_SECONDS > 0 ? FUZZ_SECONDS : 1) )) exec/s), $cov"
        continue
    fi
    failed=1
    new=$(ls -1t "$artifacts" | head -n $(( $(ls -1 "$artifacts" | wc -l) - before )) || true)
    log "$t: FAILED (libFuzzer exit $rc) after ${secs}s"
    grep -E 'ERROR: libFuzzer|panicked at|==ERROR|SUMMARY|Test unit written|deadly signal|timeout|out-of-memory' "$logf" | head -20 >&2 || true
    sed -n '/panicked at/,/note: run with/p' "$logf" | head -30 >&2 || true
    for a in $new; do
        p="$artifacts/$a"
        log "reproducer: $p ($(wc -c <"$p") bytes)"
        log "  replay:   RUSTC_BOOTSTRAP=1 cargo fuzz run --fuzz-dir engine/fuzz -s $FUZZ_SANITIZER $t $p"
        log "  minimise: RUSTC_BOOTSTRAP=1 cargo fuzz tmin --fuzz-dir engine/fuzz -s $FUZZ_SANITIZER $t $p"
    done
    [ -n "$new" ] || log "no artifact written; see $logf"
done

log "total $(( $(date +%s) - t0 )) s"
if [ "$failed" -ne 0 ]; then
    log "FAILED: a fuzz target crashed; add the minimised input to engine/tests/fuzz_regressions/ (see engine/fuzz/README.md)"
    exit 1
fi
log "ok"
