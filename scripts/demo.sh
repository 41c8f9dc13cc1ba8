#!/usr/bin/env bash
# `make demo`: show tcp-sniffer at work.
#
# As root, live: a private network namespace with a small HTTP server, the sidecar entrypoint
# capturing on its loopback, a few curl requests, the messages on stdout (node-addon/scripts/demo.sh).
# Without root: the same entrypoint replays tests/data/demo.pcap, a real capture shipped in the repo.
set -euo pipefail
cd "$(dirname "$0")/.."
exec node-addon/scripts/demo.sh "$@"
