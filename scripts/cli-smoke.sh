#!/usr/bin/env bash
# End-to-end checks of the built `tcp-sniffer` binary: exit codes, stdout discipline,
# the demo capture, a closed pipe. Usage: scripts/cli-smoke.sh path/to/tcp-sniffer
set -euo pipefail
bin=${1:?usage: $0 path/to/tcp-sniffer}
cd "$(dirname "$0")/.."
fail() { echo "cli-smoke: FAIL: $*" >&2; exit 1; }
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT

# The demo capture: 5 exchanges (2 keep-alive GETs, a POST, a 404, a HEAD) = 10 messages.
"$bin" --read tests/data/demo.pcap --ports 8080 --stats >"$tmp/out" 2>"$tmp/err" || fail "demo replay exited $?"
n=$(wc -l <"$tmp/out")
[ "$n" = 10 ] || fail "expected 10 messages from demo.pcap, got $n"
node -e '
  const lines = require("fs").readFileSync(process.argv[1], "utf8").trim().split("\n").map(JSON.parse);
  const req = lines.filter(m => m.type === "request"), res = lines.filter(m => m.type === "response");
  const want = ["GET /api/users", "GET /stream", "POST /api/users", "GET /missing", "HEAD /health"];
  const got = req.map(m => m.method + " " + m.url);
  if (JSON.stringify(got) !== JSON.stringify(want)) throw new Error("requests: " + JSON.stringify(got));
  if (JSON.stringify(res.map(m => m.statusCode)) !== "[200,200,201,404,200]") throw new Error("statuses");
  const post = req[2];
  if (post.headers.authorization !== "[REDACTED]") throw new Error("authorization not redacted");
  if (res[1].body !== "chunk one\nchunk two\nlast chunk\n") throw new Error("chunked body: " + res[1].body);
  if (JSON.stringify(res[2].headers["set-cookie"]) !== "[\"[REDACTED]\",\"[REDACTED]\"]") throw new Error("set-cookie");
  for (const r of res) if (!(r.latencyMs >= 0)) throw new Error("latency");
' "$tmp/out" || fail "demo messages are not as expected"
node -e 'JSON.parse(require("fs").readFileSync(process.argv[1], "utf8").trim().split("\n").pop())' "$tmp/err" \
  || fail "--stats did not print JSON on stderr"

# Safe defaults on tests/data/secrets.pcap (every secret value contains "SECRET"): headers,
# query parameters, JSON and form fields are redacted; lists add to the defaults;
# --stdout-bodies=false keeps bodySize but drops bodies; a remote http:// output URL is refused
# under NODE_ENV=production without showing its credentials.
"$bin" --read tests/data/secrets.pcap --ports 8080 >"$tmp/out" 2>"$tmp/err" || fail "secrets replay exited $?"
left=$(grep -o 'SECRET[A-Za-z0-9-]*' "$tmp/out" | sort | tr '\n' ' ')
[ "$left" = "SECRET-custom-header SECRET-pin-form SECRET-pin-json " ] || fail "unredacted by default: $left"
"$bin" --read tests/data/secrets.pcap --ports 8080 --redact-headers x-custom-auth \
  --redact-body-fields pin --max-body-size 220 >"$tmp/out" 2>"$tmp/err" || fail "secrets replay exited $?"
! grep -q SECRET "$tmp/out" || fail "secrets left with added lists: $(grep -o 'SECRET[A-Za-z0-9-]*' "$tmp/out")"
"$bin" --read tests/data/secrets.pcap --ports 8080 --stdout-bodies=false >"$tmp/out" 2>"$tmp/err" || fail "--stdout-bodies=false exited $?"
node -e '
  const m = require("fs").readFileSync(process.argv[1], "utf8").trim().split("\n").map(JSON.parse);
  if (m.length !== 8 || m.some(x => x.body !== "")) throw new Error("bodies on stdout");
  if (m[0].bodySize !== 99) throw new Error("bodySize");
' "$tmp/out" || fail "--stdout-bodies=false"
set +e
OUTPUT_URL_AUTH_TOKEN=SECRET-token NODE_ENV=production "$bin" --read tests/data/secrets.pcap --ports 8080 \
  --output-url 'http://u:SECRET-pw@collector.invalid/x?k=SECRET-q' >/dev/null 2>"$tmp/err"; rc=$?
set -e
[ "$rc" = 2 ] || fail "remote http:// output URL under NODE_ENV=production exited $rc, want 2"
! grep -q SECRET "$tmp/err" || fail "credentials in the error: $(cat "$tmp/err")"

# Invalid settings exit 2 and name the setting.
set +e
"$bin" --read tests/data/demo.pcap --ports 0 >/dev/null 2>"$tmp/err"; rc=$?
set -e
[ "$rc" = 2 ] || fail "invalid --ports exited $rc, want 2"
grep -q -- '--ports' "$tmp/err" || fail "error does not name --ports: $(cat "$tmp/err")"

# An unreadable file exits 1 with a clear message.
set +e
"$bin" --read "$tmp/nope.pcap" --ports 80 >/dev/null 2>"$tmp/err"; rc=$?
set -e
[ "$rc" = 1 ] || fail "missing file exited $rc, want 1"
grep -q "cannot read capture file" "$tmp/err" || fail "unclear error: $(cat "$tmp/err")"

# No silent death: a panic in an engine thread (injected with the test hook) exits 1 with an
# error line naming the thread, and does not hang.
set +e
TCP_SNIFFER_TEST_PANIC=worker:5 timeout 30 "$bin" --read tests/data/demo.pcap --ports 8080 >/dev/null 2>"$tmp/err"; rc=$?
set -e
[ "$rc" = 1 ] || fail "an injected worker panic exited $rc, want 1: $(cat "$tmp/err")"
grep -q '"message":"engine thread panicked".*"thread":"tcp-sniffer-replay"' "$tmp/err" \
  || fail "no error line naming the panicked thread: $(cat "$tmp/err")"

# A broken pcap (cut in the middle of a record) keeps what came before.
head -c 3000 tests/data/demo.pcap >"$tmp/cut.pcap"
"$bin" --read "$tmp/cut.pcap" --ports 8080 >"$tmp/out" 2>"$tmp/err" || fail "cut pcap exited $?"
[ -s "$tmp/out" ] || fail "cut pcap produced no messages"

# File replay is lossless: a slow reader with a tiny output queue still gets every message.
n=$("$bin" --read tests/data/demo.pcap --ports 8080 --output-queue-size 1 | (sleep 1; wc -l))
[ "$n" = 10 ] || fail "slow reader got $n of 10 messages"

# The output URL, from a real capture to a real local HTTP server: one POST per message,
# JSON body, the bearer token from OUTPUT_URL_AUTH_TOKEN; with a URL set, stdout stays empty.
cat >"$tmp/collector.js" <<'JS'
const http = require('http'), fs = require('fs');
const seen = [];
const srv = http.createServer((req, res) => {
  let body = '';
  req.on('data', c => body += c);
  req.on('end', () => {
    seen.push({ auth: req.headers.authorization, type: req.headers['content-type'], msg: JSON.parse(body) });
    fs.writeFileSync(process.argv[2], JSON.stringify(seen));
    res.end('ok');
  });
});
srv.listen(0, '127.0.0.1', () => fs.writeFileSync(process.argv[3], String(srv.address().port)));
JS
node "$tmp/collector.js" "$tmp/posted.json" "$tmp/port" & collector=$!
trap 'kill $collector 2>/dev/null; rm -rf "$tmp"' EXIT
for _ in $(seq 50); do [ -s "$tmp/port" ] && break; sleep 0.1; done
OUTPUT_URL_AUTH_TOKEN=s3cret-token "$bin" --read tests/data/demo.pcap --ports 8080 \
  --output-url "http://127.0.0.1:$(cat "$tmp/port")/ingest" >"$tmp/out" 2>"$tmp/err" || fail "output URL replay exited $?"
[ ! -s "$tmp/out" ] || fail "stdout is not empty when an output URL is set"
! grep -q s3cret-token "$tmp/err" || fail "the token appeared in the logs"
node -e '
  const seen = JSON.parse(require("fs").readFileSync(process.argv[1], "utf8"));
  if (seen.length !== 10) throw new Error("collector got " + seen.length + " POSTs, want 10");
  for (const s of seen) {
    if (s.auth !== "Bearer s3cret-token") throw new Error("authorization: " + s.auth);
    if (s.type !== "application/json") throw new Error("content-type: " + s.type);
  }
  const urls = seen.filter(s => s.msg.type === "request").map(s => s.msg.url).sort();
  if (JSON.stringify(urls) !== JSON.stringify(["/api/users", "/api/users", "/health", "/missing", "/stream"])) throw new Error(urls);
' "$tmp/posted.json" || fail "the output URL did not receive the demo messages as expected"

# A closed pipe ends the sniffer cleanly.
set +e
"$bin" --read tests/data/demo.pcap --ports 8080 | head -n 1 >/dev/null
rc=${PIPESTATUS[0]}
set -e
[ "$rc" = 0 ] || fail "| head -n 1 made tcp-sniffer exit $rc"
echo "cli-smoke: ok"
