# tcp-sniffer: the two commands a new machine needs are `make demo` and `make test`.
# Both install what they need first (scripts/install-deps.sh is idempotent).
#
# Build once, reuse everywhere: `build-release` compiles the release binaries a single time;
# the CLI checks, the Node package, the images and the benchmarks all use those artifacts.

CARGO ?= cargo
RELEASE_BIN := target/release/tcp-sniffer
FUZZ_SECONDS ?= 30

.PHONY: demo test bench bench-quick deps build build-release lint unit-tests cli-tests \
        node-build node-test fuzz-smoke deploy-tests image-tests clean

deps:
	scripts/install-deps.sh

build-release: deps
	$(CARGO) build --release --locked -p tcp-sniffer -p tcp-sniffer-webhook -p sniffer-perf

build: build-release

# Live when it can (root: a network namespace, a real server, curl, the sidecar entrypoint);
# otherwise replays a small real capture shipped in the repo.
demo: build-release node-build
	scripts/demo.sh

lint: deps
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets --locked -- -D warnings
	RUSTDOCFLAGS="-D warnings" $(CARGO) doc --workspace --no-deps --locked
	@# The fuzz crate is its own workspace with its own committed lock file: check it here too, so a
	@# dependency change in engine/ fails in the first minute rather than at fuzz-smoke, last.
	@$(CARGO) metadata --locked --format-version 1 --manifest-path engine/fuzz/Cargo.toml >/dev/null || \
		{ echo "engine/fuzz/Cargo.lock is stale: run cargo metadata --manifest-path engine/fuzz/Cargo.toml --format-version 1 >/dev/null and commit it"; exit 1; }

# Unit, corpus, replay, output, live-capture and webhook tests (live tests need root; in CI
# they never skip). Every test has a time limit (.config/nextest.toml). nextest does not run
# doctests, so they run after it.
unit-tests: deps
	@if $(CARGO) nextest --version >/dev/null 2>&1; then \
		rc=0; \
		$(CARGO) nextest run --workspace --locked --no-fail-fast || rc=1; \
		$(CARGO) test --doc --workspace --locked || rc=1; \
		exit $$rc; \
	else \
		$(CARGO) test --workspace --locked --no-fail-fast; \
	fi

cli-tests: build-release
	scripts/cli-smoke.sh $(RELEASE_BIN)

node-build: build-release
	cd node-addon && npm ci --ignore-scripts --no-audit --no-fund && npm run build

node-test: node-build
	cd node-addon && npm run typecheck && npm test

fuzz-smoke: deps
	FUZZ_SECONDS=$(FUZZ_SECONDS) scripts/fuzz-smoke.sh

deploy-tests: deps
	tests/deploy/run.sh

image-tests: build-release node-build
	tests/images/run.sh

bench-quick: deps
	BENCH_QUICK=1 perf/bench.sh

bench: deps
	perf/bench.sh

test: lint unit-tests cli-tests node-test deploy-tests image-tests bench-quick fuzz-smoke

clean:
	$(CARGO) clean
