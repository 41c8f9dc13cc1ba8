'use strict';
// The sidecar entrypoint (dist/sidecar.js, bin tcp-sniffer-sidecar) as a process.
const test = require('node:test');
const assert = require('node:assert/strict');
const path = require('node:path');
const { requireRoot, inNetns, run, jsonLines, sidecarJs, demoPcap } = require('./helpers');

function sidecar(env, args = []) {
  return run(process.execPath, [sidecarJs, ...args], {
    env: { PATH: process.env.PATH, ...env },
    timeoutMs: 60_000,
  });
}

// Invalid env → exit 2, one JSON error line naming the variable (the engine's text).
const invalid = [
  [{}, 'invalid setting PORTS: required: the TCP port(s) the application serves HTTP on, e.g. 8080 or 80,8080'],
  [{ PORTS: '80,80' }, 'invalid setting PORTS: port 80 is listed twice'],
  [{ PORTS: '0' }, 'invalid setting PORTS: each port must be 1-65535: expected an integer from 1 to 65535, got "0"'],
  [{ PORTS: '80', MAX_BODY_SIZE: '-1' }, 'invalid setting MAX_BODY_SIZE: expected an integer >= 0, got "-1"'],
  [{ PORTS: '80', SAMPLE_RATE: '2' }, 'invalid setting SAMPLE_RATE: expected a number with 0 < rate <= 1, got 2'],
  [{ PORTS: '80', CAPTURE_BACKEND: 'dpdk' }, 'invalid setting CAPTURE_BACKEND: expected one of "auto", "af_packet", "pcap", got "dpdk"'],
  [{ PORTS: '80', OUTPUT_STDOUT: 'maybe' }, 'invalid setting OUTPUT_STDOUT: expected true or false, got "maybe"'],
  [{ PORTS: '80', OUTPUT_URL: 'ftp://x/' }, 'invalid setting OUTPUT_URL: expected an http:// or https:// URL, got scheme "ftp"'],
  [{ PORTS: '80', OUTPUT_URL: 'http://collector.example/', NODE_ENV: 'production' }, 'invalid setting OUTPUT_URL: with NODE_ENV=production only https:// URLs are accepted (plain http is allowed for loopback hosts only), got "http://collector.example/"'],
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
