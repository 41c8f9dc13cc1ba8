'use strict';
// The sidecar entrypoint (dist/sidecar.js, bin tcp-sniffer-sidecar) as a process.
const test = require('node:test');
const assert = require('node:assert/strict');
const path = require('node:path');
const { requireRoot, inNetns, run, jsonLines, sidecarJs, demoPcap, secretsPcap } = require('./helpers');

function sidecar(env, args = []) {
  return run(process.execPath, [sidecarJs, ...args], {
    env: { PATH: process.env.PATH, ...env },
    timeoutMs: 60_000,
  });
}

// Invalid env → exit 2, one JSON error line naming the variable (the engine's text).
const invalid = [
  [{}, 'invalid setting PORTS: required: the TCP port(s) the application serves HTTP on, e.g. 8080 or 80,8080, or any'],
  [{ PORTS: '80,80' }, 'invalid setting PORTS: port 80 is listed twice'],
  [{ PORTS: '0' }, 'invalid setting PORTS: each port must be 1-65535: expected an integer from 1 to 65535, got "0"'],
  [{ PORTS: '80', MAX_BODY_SIZE: '-1' }, 'invalid setting MAX_BODY_SIZE: expected an integer from 0 to 16777216, got "-1"'],
  [{ PORTS: '80', SAMPLE_RATE: '2' }, 'invalid setting SAMPLE_RATE: expected a number with 0 < rate <= 1, got 2'],
  [{ PORTS: '80', CAPTURE_BACKEND: 'dpdk' }, 'invalid setting CAPTURE_BACKEND: expected one of "auto", "af_packet", "pcap", got "dpdk"'],
  [{ PORTS: '80', OUTPUT_STDOUT: 'maybe' }, 'invalid setting OUTPUT_STDOUT: expected true or false, got "maybe"'],
  [{ PORTS: '80', OUTPUT_URL: 'ftp://x/' }, 'invalid setting OUTPUT_URL: expected an http:// or https:// URL, got scheme "ftp"'],
  [{ PORTS: '80', OUTPUT_URL: 'http://collector.example/', NODE_ENV: 'production' }, 'invalid setting OUTPUT_URL: http://collector.example is plain http to a host that is not loopback, which sends the captured traffic and the token in clear (the sidecar refuses it); use https://, or set ALLOW_INSECURE_OUTPUT_URL=true to accept it'],
  [{ PORTS: '80', OUTPUT_URL: 'http://collector.example/' }, 'invalid setting OUTPUT_URL: http://collector.example is plain http to a host that is not loopback, which sends the captured traffic and the token in clear (the sidecar refuses it); use https://, or set ALLOW_INSECURE_OUTPUT_URL=true to accept it'],
  [{ PORTS: '80', STDOUT_BODIES: 'sometimes' }, 'invalid setting STDOUT_BODIES: expected true or false, got "sometimes"'],
  [{ PORTS: '80', REDACT_QUERY_PARAMS: 'x,none' }, 'invalid setting REDACT_QUERY_PARAMS: "none" (drop the default list) must be the first entry, got it after "x"'],
  [{ PORTS: '80', CONNECTION_IDLE_TIMEOUT_MS: '10' }, 'invalid setting CONNECTION_IDLE_TIMEOUT_MS: expected an integer >= 1000, got "10"'],
  [{ PORTS: '80', LOG_LEVEL: 'loud' }, 'invalid setting LOG_LEVEL: expected one of "error", "warn", "info", "debug", got "loud"'],
  [{ PORTS: '80', STATS_INTERVAL_MS: '500' }, 'invalid setting STATS_INTERVAL_MS: expected an integer >= 1000, got "500"'],
  [{ PORTS: '80', STATS_INTERVAL_MS: 'soon' }, 'invalid setting STATS_INTERVAL_MS: expected an integer >= 1000, got "soon"'],
];

for (const [env, expected] of invalid) {
  test(`sidecar: invalid env ${JSON.stringify(env)} → exit 2`, async () => {
    const r = await sidecar(env);
    assert.equal(r.code, 2, r.stderr);
    assert.equal(r.stdout, '');
    const logs = jsonLines(r.stderr);
    assert.equal(logs.length, 1, r.stderr);
    assert.equal(logs[0].level, 'error');
    assert.equal(logs[0].message, expected);
    assert.match(logs[0].timestamp, /^\d{4}-\d\d-\d\dT.*Z$/);
  });
}

test('sidecar: METRICS_ADDR is validated (exit 2) and served (start line names the address)', async () => {
  const bad = await sidecar({ PORTS: '8080', METRICS_ADDR: '9464' }, ['--read', demoPcap]);
  assert.equal(bad.code, 2, bad.stderr);
  assert.match(jsonLines(bad.stderr)[0].message, /^invalid setting METRICS_ADDR: expected HOST:PORT/);
  const r = await sidecar({ PORTS: '8080', METRICS_ADDR: '127.0.0.1:0', OUTPUT_FORMAT: 'json' }, ['--read', demoPcap]);
  assert.equal(r.code, 0, r.stderr);
  const start = jsonLines(r.stderr).find((l) => l.message === 'tcp-sniffer sidecar started');
  assert.match(start.metricsAddr, /^127\.0\.0\.1:[1-9][0-9]*$/, r.stderr);
  assert.equal(start.outputFormat, 'json');
  const off = await sidecar({ PORTS: '8080', METRICS_ADDR: 'off' }, ['--read', demoPcap]);
  assert.equal(off.code, 0, off.stderr);
  const offStart = jsonLines(off.stderr).find((l) => l.message === 'tcp-sniffer sidecar started');
  assert.equal(offStart.metricsAddr, null);
});

test('sidecar: capture failure at start → exit 1', async () => {
  const r = await sidecar({ PORTS: '80', INTERFACE: 'nosuchif0', CAPTURE_BACKEND: 'pcap' });
  assert.equal(r.code, 1, r.stderr);
  const logs = jsonLines(r.stderr);
  const err = logs.find((l) => l.level === 'error');
  assert.ok(err, r.stderr);
  assert.match(err.message, /^cannot start capture: /);
  assert.match(JSON.stringify(err), /nosuchif0/);
});

test('sidecar: --read replays a file to stdout and exits 0 (no root needed)', async () => {
  const r = await sidecar({ PORTS: '8080', OUTPUT_URL_AUTH_TOKEN: 'never-log-this-token' }, ['--read', demoPcap]);
  assert.equal(r.code, 0, r.stderr);
  const msgs = jsonLines(r.stdout);
  assert.equal(msgs.length, 10);
  assert.deepEqual(
    msgs.filter((m) => m.type === 'request').map((m) => `${m.method} ${m.url}`),
    ['GET /api/users', 'GET /stream', 'POST /api/users', 'GET /missing', 'HEAD /health'],
  );
  const logs = jsonLines(r.stderr);
  const startLine = logs.find((l) => l.message === 'tcp-sniffer sidecar started');
  assert.ok(startLine, r.stderr);
  assert.equal(startLine.backend, 'file');
  assert.deepEqual(startLine.ports, [8080]);
  assert.deepEqual(startLine.outputs, ['stdout']);
  assert.ok(!r.stderr.includes('never-log-this-token'), 'the token is never logged');
  const stopped = logs.find((l) => l.message === 'stopped');
  assert.equal(stopped.stats.output.messages, 10);
});

test('sidecar: live on lo in a network namespace; SIGTERM drains and exits 0', async (t) => {
  if (!requireRoot(t)) return;
  const N = 4;
  const r = await inNetns(path.join(__dirname, 'fixtures', 'sidecar-child.js'), [String(N)]);
  assert.equal(r.code, 0, `child failed:\n${r.stderr}`);
  const out = JSON.parse(r.stdout);
  assert.equal(out.code, 0, `sidecar exit code:\n${out.stderr}`);
  // stdout: JSON lines, messages only.
  const msgs = jsonLines(out.stdout);
  assert.equal(msgs.filter((m) => m.type === 'request').length, N, out.stdout);
  assert.equal(msgs.filter((m) => m.type === 'response').length, N, out.stdout);
  for (const m of msgs) {
    assert.deepEqual(m.pod, { name: 'demo-pod', namespace: 'demo-ns', node: 'node-1' });
  }
  assert.deepEqual(
    msgs.filter((m) => m.type === 'request').map((m) => m.url).sort(),
    Array.from({ length: N }, (_, i) => `/s/${i}`),
  );
  // stderr: JSON logs with timestamp, level, message; startup line, stats, stop.
  const logs = jsonLines(out.stderr);
  for (const l of logs) {
    assert.equal(typeof l.timestamp, 'string');
    assert.ok(['error', 'warn', 'info', 'debug'].includes(l.level));
    assert.equal(typeof l.message, 'string');
  }
  const startLine = logs.find((l) => l.message === 'tcp-sniffer sidecar started');
  assert.ok(startLine, out.stderr);
  assert.equal(startLine.interface, 'lo');
  assert.deepEqual(startLine.ports, [out.port]);
  assert.ok(['af_packet', 'pcap'].includes(startLine.backend));
  assert.deepEqual(startLine.pod, { name: 'demo-pod', namespace: 'demo-ns', node: 'node-1' });
  assert.ok(logs.some((l) => l.message === 'stats' && l.stats && l.stats.capture), 'a periodic stats line');
  assert.ok(logs.some((l) => /^stopping/.test(l.message) && l.signal === 'SIGTERM'));
  const stopped = logs.find((l) => l.message === 'stopped');
  assert.equal(stopped.stats.output.messages, 2 * N);
  assert.ok(!out.stderr.includes('never-log-this-token'), 'the token is never logged');
});

test('sidecar: the interface going away during capture → exit 1', async (t) => {
  if (!requireRoot(t)) return;
  const script = [
    'ip link add tsv0 type veth peer name tsv1 && ip link set tsv0 up && ip link set tsv1 up',
    'log=$(mktemp)',
    `PORTS=80 INTERFACE=tsv0 "${process.execPath}" "${sidecarJs}" 2>"$log" & pid=$!`,
    // Wait for the startup line (at most 60 s), or fail saying so.
    'for i in $(seq 600); do grep -q "sidecar started" "$log" && break; sleep 0.1; done',
    'grep -q "sidecar started" "$log" || { cat "$log" >&2; echo "sidecar never started" >&2; kill $pid; exit 3; }',
    'ip link del tsv0',
    'wait $pid; code=$?',
    'cat "$log" >&2; rm -f "$log"; echo "exit=$code" >&2',
  ].join('\n');
  const r = await run('unshare', ['-n', '--', 'sh', '-c', script], { timeoutMs: 60_000 });
  assert.match(r.stderr, /exit=1\n/, r.stderr);
  const logs = jsonLines(r.stderr.replace(/exit=\d+\n/, ''));
  assert.ok(logs.some((l) => l.message === 'capture failed' && /tsv0/.test(l.error)), r.stderr);
  assert.ok(logs.some((l) => l.message === 'stopped'), r.stderr);
});

// Safe defaults (SPEC "Sidecar process"): tests/data/secrets.pcap holds 4 exchanges whose
// every secret value contains "SECRET".
const REMOTE = 'http://user:SECRETPW@collector.invalid:9/ingest?key=SECRETQS';
const TOKEN = 'SECRET-TOKEN-value';

function assertNoCredentials(text) {
  for (const s of ['SECRETPW', 'SECRETQS', 'SECRET-TOKEN', 'user:', '/ingest']) {
    assert.ok(!text.includes(s), `${s} appears in: ${text}`);
  }
}

/** Every SECRET… value left in `text`, sorted. */
function secretsIn(text) {
  return (text.match(/SECRET[A-Za-z0-9-]*/g) ?? []).sort();
}

test('sidecar: refuses a cleartext output URL to a remote host (exit 2), whatever NODE_ENV says', async () => {
  for (const extra of [{}, { NODE_ENV: 'development' }, { ALLOW_INSECURE_OUTPUT_URL: 'false' }]) {
    const r = await sidecar(
      { PORTS: '8080', OUTPUT_URL: REMOTE, OUTPUT_URL_AUTH_TOKEN: TOKEN, ...extra },
      ['--read', secretsPcap],
    );
    assert.equal(r.code, 2, r.stderr);
    assert.equal(r.stdout, '');
    const logs = jsonLines(r.stderr);
    assert.equal(logs.length, 1, r.stderr);
    assert.equal(logs[0].level, 'error');
    assert.match(logs[0].message, /^invalid setting OUTPUT_URL: http:\/\/collector\.invalid:9 is plain http/);
    assert.match(logs[0].message, /ALLOW_INSECURE_OUTPUT_URL=true/);
    assertNoCredentials(r.stderr);
  }
  // https and loopback http are accepted.
  for (const url of ['http://127.0.0.1:9/x', 'http://localhost:9/x']) {
    const r = await sidecar(
      { PORTS: '8080', OUTPUT_URL: url, OUTPUT_DRAIN_TIMEOUT_MS: '0' },
      ['--read', secretsPcap],
    );
    assert.equal(r.code, 0, r.stderr);
  }
});

test('sidecar: ALLOW_INSECURE_OUTPUT_URL=true accepts it with a warning; no credential in any log line', async () => {
  const r = await sidecar(
    {
      PORTS: '8080',
      OUTPUT_URL: REMOTE,
      OUTPUT_URL_AUTH_TOKEN: TOKEN,
      ALLOW_INSECURE_OUTPUT_URL: 'true',
      OUTPUT_RETRY_BASE_MS: '1',
      OUTPUT_DRAIN_TIMEOUT_MS: '1500',
      LOG_LEVEL: 'debug',
    },
    ['--read', secretsPcap],
  );
  assert.equal(r.code, 0, r.stderr);
  const logs = jsonLines(r.stderr);
  assert.ok(logs.some((l) => l.level === 'warn' && /plain http/.test(l.message)), r.stderr);
  const start = logs.find((l) => l.message === 'tcp-sniffer sidecar started');
  assert.deepEqual(start.outputs, ['http://collector.invalid:9']);
  assert.equal(start.stdoutBodies, false);
  assertNoCredentials(r.stderr);
  assert.equal(r.stdout, '', 'with an output URL and no OUTPUT_STDOUT, stdout stays empty');
});

test('sidecar: stdout messages carry no bodies unless STDOUT_BODIES=true, and are redacted', async () => {
  const r = await sidecar({ PORTS: '8080' }, ['--read', secretsPcap]);
  assert.equal(r.code, 0, r.stderr);
  const msgs = jsonLines(r.stdout);
  assert.equal(msgs.length, 8);
  for (const m of msgs) assert.equal(m.body, '');
  assert.deepEqual(msgs.map((m) => m.bodySize), [99, 54, 52, 0, 240, 2, 0, 17]);
  assert.equal(msgs[0].url, '/login?access_token=[REDACTED]&page=2');
  assert.equal(msgs[0].headers.authorization, '[REDACTED]');
  assert.deepEqual(secretsIn(r.stdout), ['SECRET-custom-header']);
  assert.ok(!r.stderr.includes('SECRET'), r.stderr);

  const on = await sidecar(
    { PORTS: '8080', STDOUT_BODIES: 'true', REDACT_HEADERS: 'x-custom-auth', REDACT_BODY_FIELDS: 'pin' },
    ['--read', secretsPcap],
  );
  assert.equal(on.code, 0, on.stderr);
  const full = jsonLines(on.stdout);
  assert.equal(full[7].body, '{"hello":"world"}');
  assert.equal(JSON.parse(full[0].body).password, '[REDACTED]');
  assert.equal(full[0].headers.authorization, '[REDACTED]', 'REDACT_HEADERS adds to the defaults');
  assert.deepEqual(secretsIn(on.stdout), []);
});
