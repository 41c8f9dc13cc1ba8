'use strict';
// No silent death (issue 11): a panic in an engine thread is a fatal error — the
// library's 'error' event (code ERR_TCP_SNIFFER_INTERNAL), an error log line, and exit 1
// for the sidecar. The panic is injected with the engine's fault-injection hook
// TCP_SNIFFER_TEST_PANIC (read once per process), so every case runs in a child process,
// which must end by itself: a hang is a failure (the run() timeout kills it).
const test = require('node:test');
const assert = require('node:assert/strict');
const { run, jsonLines, sidecarJs, demoPcap, pkgDir, requireRoot } = require('./helpers');

const CHILD_TIMEOUT_MS = 30_000;

/** Runs `node -e code` with the fault armed (no process.exit in `code`: it must end by itself). */
function child(code, fault) {
  const env = { PATH: process.env.PATH, TCP_SNIFFER_TEST_PANIC: fault };
  return run(process.execPath, ['-e', code], { env, cwd: pkgDir, timeoutMs: CHILD_TIMEOUT_MS });
}

/** The child's report: the last stdout line, as JSON. */
function report(r) {
  assert.equal(r.signal, null, `the child hung and was killed:\n${r.stderr}`);
  assert.equal(r.code, 0, r.stderr);
  const lines = r.stdout.trim().split('\n');
  return JSON.parse(lines[lines.length - 1]);
}

const libraryChild = `
  const { createSniffer, SnifferError } = require('.');
  const s = createSniffer({ ports: [8080], readFile: ${JSON.stringify(demoPcap)}, workers: Number(process.argv[1] || 1) });
  const errors = [];
  let ended = false;
  s.on('error', (e) => errors.push({ code: e.code, message: e.message, name: e.name, isSnifferError: e instanceof SnifferError }));
  s.on('end', () => (ended = true));
  s.start().then(async () => {
    while (errors.length === 0 && !ended) await new Promise((r) => setTimeout(r, 20));
    const stats = await s.stop();
    console.log(JSON.stringify({ errors, ended, messages: stats.output.messages }));
  });
`;

test("library: a worker panic during readFile emits 'error' (ERR_TCP_SNIFFER_INTERNAL), stop() resolves, the process ends", async () => {
  const r = await child(libraryChild, 'worker:5');
  const out = report(r);
  assert.equal(out.ended, false, "a failed replay does not emit 'end'");
  assert.equal(out.errors.length, 1, JSON.stringify(out));
  const e = out.errors[0];
  assert.equal(e.code, 'ERR_TCP_SNIFFER_INTERNAL');
  assert.equal(e.name, 'SnifferError');
  assert.equal(e.isSnifferError, true);
  assert.match(e.message, /^internal error: thread tcp-sniffer-replay panicked: injected panic/);
  // The engine's error line names the thread too.
  const logs = jsonLines(r.stderr);
  const line = logs.find((l) => l.message === 'engine thread panicked');
  assert.ok(line, r.stderr);
  assert.equal(line.level, 'error');
  assert.equal(line.thread, 'tcp-sniffer-replay');
});

test("library: a panic while delivering a batch, with two workers (each worker delivers its own), is reported the same way", async () => {
  const code = libraryChild.replace('process.argv[1] || 1', '2');
  const r = await child(code, 'output');
  const out = report(r);
  assert.equal(out.errors.length, 1, JSON.stringify(out));
  assert.equal(out.errors[0].code, 'ERR_TCP_SNIFFER_INTERNAL');
  assert.match(out.errors[0].message, /^internal error: thread tcp-sniffer-replay-[01] panicked: injected panic/);
});

test('library: an async iterator throws the internal error', async () => {
  const code = `
    const { createSniffer } = require('.');
    (async () => {
      const s = createSniffer({ ports: [8080], readFile: ${JSON.stringify(demoPcap)} });
      s.on('error', () => {});
      let thrown = null;
      try {
        for await (const m of s) void m;
      } catch (e) {
        thrown = { code: e.code, message: e.message };
      }
      await s.stop();
      console.log(JSON.stringify({ thrown }));
    })();
  `;
  const out = report(await child(code, 'worker:3'));
  assert.ok(out.thrown, 'the iterator must not end quietly');
  assert.equal(out.thrown.code, 'ERR_TCP_SNIFFER_INTERNAL');
});

function sidecar(env, args) {
  return run(process.execPath, [sidecarJs, ...args], {
    env: { PATH: process.env.PATH, ...env },
    timeoutMs: CHILD_TIMEOUT_MS,
  });
}

function assertSidecarDied(r, thread) {
  assert.equal(r.signal, null, `the sidecar hung and was killed:\n${r.stderr}`);
  assert.equal(r.code, 1, r.stderr);
  const logs = jsonLines(r.stderr);
  const panicked = logs.find((l) => l.message === 'engine thread panicked');
  assert.ok(panicked, r.stderr);
  assert.equal(panicked.level, 'error');
  assert.ok(panicked.thread.startsWith(thread), `thread ${panicked.thread}, want ${thread}…`);
  const reported = logs.find((l) => l.message === 'internal error');
  assert.ok(reported, r.stderr);
  assert.equal(reported.level, 'error');
  assert.equal(reported.code, 'ERR_TCP_SNIFFER_INTERNAL');
  assert.match(reported.error, new RegExp(`thread ${thread}`));
  assert.ok(logs.some((l) => l.message === 'stopped'), 'it stopped (and drained) before exiting');
  return logs;
}

test('sidecar: a worker panic during --read → error lines and exit 1', async () => {
  const r = await sidecar({ PORTS: '8080', TCP_SNIFFER_TEST_PANIC: 'worker:5' }, ['--read', demoPcap]);
  assertSidecarDied(r, 'tcp-sniffer-replay');
});

test('sidecar: a stdout writer panic → error lines and exit 1', async () => {
  const r = await sidecar({ PORTS: '8080', TCP_SNIFFER_TEST_PANIC: 'stdout' }, ['--read', demoPcap]);
  assertSidecarDied(r, 'tcp-sniffer-stdout');
});

test('sidecar: a live capture thread panic (lo, network namespace) → exit 1', async (t) => {
  if (!requireRoot(t)) return;
  const r = await run(
    'unshare',
    ['-n', '--', 'sh', '-c', 'ip link set lo up && exec "$@"', 'sh', process.execPath, sidecarJs],
    {
      env: { PATH: process.env.PATH, PORTS: '8080', INTERFACE: 'lo', WORKERS: '1', TCP_SNIFFER_TEST_PANIC: 'capture' },
      timeoutMs: CHILD_TIMEOUT_MS,
    },
  );
  assertSidecarDied(r, 'tcp-sniffer-');
});
