# tcp-sniffer: the two commands a new machine needs are `make demo` and `make test`.
# Both install what they need first (scripts/install-deps.sh is idempotent).

CARGO ?= cargo
RELEASE_BIN := target/release/tcp-sniffer

.PHONY: demo test deps build build-release lint unit-tests fuzz-smoke clean

deps:
	scripts/install-deps.sh

build-release: deps
	$(CARGO) build --release --locked -p tcp-sniffer

build: build-release

# Replays a small real capture (Node server + curl on loopback) shipped in the repo.
demo: build-release
	@echo "== tcp-sniffer --read tests/data/demo.pcap --ports 8080 --stats" >&2
	@$(RELEASE_BIN) --read tests/data/demo.pcap --ports 8080 --stats

lint: deps
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets --locked -- -D warnings

unit-tests: deps
	@if $(CARGO) nextest --version >/dev/null 2>&1; then \
		$(CARGO) nextest run --workspace --locked --no-fail-fast; \
	else \
		$(CARGO) test --workspace --locked --no-fail-fast; \
	fi

test: lint unit-tests build-release
	scripts/cli-smoke.sh $(RELEASE_BIN)

clean:
	$(CARGO) clean
