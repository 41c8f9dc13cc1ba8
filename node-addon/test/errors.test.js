'use strict';
// Every error of the library carries a stable `code` (README "Errors"; SnifferErrorCode in
// ts/index.ts). These tests meet each code the way a user would, with the real addon.
const test = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { createSniffer, SnifferError, SnifferConfigError, ERROR_CODES } = require('..');
const { demoPcap, requireRoot, run, pkgDir } = require('./helpers');

/** Asserts `err` is a SnifferError with `code` and a message matching `re`. */
function isCoded(code, re) {
  return (err) => {
    assert.ok(err instanceof SnifferError, `a SnifferError: ${err?.stack ?? err}`);
    assert.ok(err instanceof Error);
    assert.equal(err.code, code, err.message);
    assert.ok(ERROR_CODES.includes(err.code));
    if (re) assert.match(err.message, re);
    return true;
  };
}

test('errors: an invalid setting throws ERR_TCP_SNIFFER_CONFIG (a SnifferConfigError)', () => {
  assert.throws(() => createSniffer({ ports: [0] }), (err) => {
    assert.ok(err instanceof SnifferConfigError);
    return isCoded('ERR_TCP_SNIFFER_CONFIG', /invalid setting ports/)(err);
  });
  assert.throws(() => createSniffer({ ports: [80], bogus: 1 }), isCoded('ERR_TCP_SNIFFER_CONFIG', /bogus/));
});

test('errors: a missing capture file rejects start() with ERR_TCP_SNIFFER_FILE', async () => {
  const s = createSniffer({ ports: [8080], readFile: '/nonexistent/capture.pcap' });
  await assert.rejects(s.start(), isCoded('ERR_TCP_SNIFFER_FILE', /\/nonexistent\/capture\.pcap/));
  // The sniffer is done: a second start() says so, with a code too.
  await assert.rejects(s.start(), isCoded('ERR_TCP_SNIFFER_STATE', /create a new one/));
  const final = await s.stop();
  assert.equal(final.capture.packets, 0);
});

test('errors: a file that is not a capture rejects with ERR_TCP_SNIFFER_FILE', async () => {
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'tcp-sniffer-err-'));
  try {
    const f = path.join(tmp, 'notes.pcap');
    fs.writeFileSync(f, 'this is not a pcap file, just text\n'.repeat(10));
    const s = createSniffer({ ports: [8080], readFile: f });
    await assert.rejects(s.start(), isCoded('ERR_TCP_SNIFFER_FILE', /notes\.pcap/));
  } finally {
    fs.rmSync(tmp, { recursive: true, force: true });
  }
});

test('errors: an async iterator over a missing file throws the start error', async () => {
  const s = createSniffer({ ports: [8080], readFile: '/nonexistent/capture.pcap' });
  await assert.rejects(async () => {
    for await (const m of s) void m;
  }, isCoded('ERR_TCP_SNIFFER_FILE'));
});

test('errors: start() after stop() rejects with ERR_TCP_SNIFFER_STATE (after a real run)', async () => {
  const s = createSniffer({ ports: [8080], readFile: demoPcap });
  let n = 0;
  s.on('message', () => n++);
  const ended = new Promise((resolve) => s.once('end', resolve));
  const info = await s.start();
  assert.equal(info.backend, 'file');
  await ended;
  const final = await s.stop();
  assert.equal(n, 10);
  assert.equal(final.http.requests, 5);
  await assert.rejects(s.start(), isCoded('ERR_TCP_SNIFFER_STATE', /stopped/));
  // The final counters stay, and stop() again resolves with them.
  assert.deepEqual(await s.stop(), final);
});

test('errors: start() after stop() before start rejects with ERR_TCP_SNIFFER_STATE', async () => {
  const s = createSniffer({ ports: [8080] });
  await s.stop();
  await assert.rejects(s.start(), isCoded('ERR_TCP_SNIFFER_STATE'));
});

test('errors: start() while a stop() is pending rejects with ERR_TCP_SNIFFER_STATE', async () => {
  const s = createSniffer({ ports: [8080], readFile: demoPcap });
  s.on('message', () => undefined);
  await s.start();
  const stopping = s.stop();
  await assert.rejects(s.start(), isCoded('ERR_TCP_SNIFFER_STATE'));
  await stopping;
});

test('errors: an invalid messages() argument throws ERR_TCP_SNIFFER_ARGUMENT', () => {
  const s = createSniffer({ ports: [8080] });
  assert.throws(() => s.messages({ bufferSize: 0 }), isCoded('ERR_TCP_SNIFFER_ARGUMENT', /bufferSize/));
});

test('errors: an interface that does not exist rejects with ERR_TCP_SNIFFER_CAPTURE', async (t) => {
  if (!requireRoot(t)) return;
  const s = createSniffer({ ports: [8080], interface: 'tsn-nosuch0' });
  await assert.rejects(s.start(), isCoded('ERR_TCP_SNIFFER_CAPTURE', /tsn-nosuch0/));
});

test('errors: live capture without CAP_NET_RAW rejects with ERR_TCP_SNIFFER_PERMISSION', async (t) => {
  if (!requireRoot(t)) return;
  // A child without any capability (not root, empty bounding set): what an unprivileged user meets.
  const script = `
    const { createSniffer } = require(${JSON.stringify(pkgDir)});
    createSniffer({ ports: [8080], interface: 'lo' }).start().then(
      () => { console.log(JSON.stringify({ started: true })); process.exit(0); },
      (e) => console.log(JSON.stringify({ code: e.code, name: e.name, message: e.message })),
    );`;
  const r = await run(
    'setpriv',
    ['--reuid=65534', '--regid=65534', '--clear-groups', '--inh-caps=-all', '--bounding-set=-all', '--', process.execPath, '-e', script],
    { cwd: os.tmpdir(), timeoutMs: 60_000 },
  );
  assert.equal(r.code, 0, r.stderr);
  const out = JSON.parse(r.stdout.trim().split('\n').pop());
  assert.equal(out.code, 'ERR_TCP_SNIFFER_PERMISSION', r.stdout + r.stderr);
  assert.equal(out.name, 'SnifferError');
  assert.match(out.message, /CAP_NET_RAW/);
});

test('errors: an addon that cannot be loaded throws ERR_TCP_SNIFFER_LOAD at require()', async () => {
  const script = `
    try { require(${JSON.stringify(pkgDir)}); console.log(JSON.stringify({ loaded: true })); }
    catch (e) { console.log(JSON.stringify({ code: e.code, message: e.message })); }`;
  const r = await run(process.execPath, ['-e', script], {
    env: { ...process.env, TCP_SNIFFER_NATIVE: '/nonexistent/tcp-sniffer/index.node' },
    timeoutMs: 60_000,
  });
  assert.equal(r.code, 0, r.stderr);
  const out = JSON.parse(r.stdout);
  assert.equal(out.code, 'ERR_TCP_SNIFFER_LOAD', r.stdout);
  assert.match(out.message, /cannot load its native addon \/nonexistent\/tcp-sniffer\/index\.node/);
  assert.match(out.message, /Linux x64 with glibc/);
  assert.ok(ERROR_CODES.includes(out.code));
});
