'use strict';
// Safe defaults on the library (SPEC "Configuration"; the sidecar's are in sidecar.test.js):
// redaction of headers, query parameters and JSON/form body fields (lists add to the
// defaults, "none" drops them), no bodies on stdout unless stdoutBodies, the cleartext output
// URL rules, and no credential in any error or log line.
//
// tests/data/secrets.pcap: 4 exchanges (8 messages) whose every secret value contains "SECRET".
const test = require('node:test');
const assert = require('node:assert/strict');
const { createSniffer } = require('..');
const { secretsPcap, pkgDir, run, jsonLines } = require('./helpers');

/** Every SECRET… value left in `text`, sorted. */
function secretsIn(text) {
  return (text.match(/SECRET[A-Za-z0-9-]*/g) ?? []).sort();
}

async function replay(config = {}) {
  const got = [];
  const s = createSniffer({
    ports: [8080],
    readFile: secretsPcap,
    onHttpMessage: (m) => got.push(m),
    ...config,
  });
  const ended = new Promise((resolve) => s.once('end', resolve));
  await s.start();
  await ended;
  assert.equal(got.length, 8);
  return got;
}

/** Runs `script` in a child Node process (cwd: the package), with `env` added. */
function node(script, env = {}) {
  const clean = { ...process.env };
  delete clean.NODE_ENV;
  return run(process.execPath, ['-e', script], {
    cwd: pkgDir,
    env: { ...clean, ...env },
    timeoutMs: 60_000,
  });
}

const REMOTE = 'http://user:SECRETPW@collector.invalid:9/ingest?key=SECRETQS';
const TOKEN = 'SECRET-TOKEN-value';

function assertNoCredentials(text) {
  for (const s of ['SECRETPW', 'SECRETQS', 'SECRET-TOKEN', 'user:', '/ingest']) {
    assert.ok(!text.includes(s), `${s} appears in: ${text}`);
  }
}

test('library: headers, query parameters, JSON and form fields are redacted by default', async () => {
  const got = await replay();
  const text = JSON.stringify(got);
  // Only the names that are in no default list are left.
  assert.deepEqual(secretsIn(text), ['SECRET-custom-header', 'SECRET-pin-form', 'SECRET-pin-json']);
  const [login, loginRes, form] = got;
  assert.equal(login.url, '/login?access_token=[REDACTED]&page=2');
  assert.equal(login.headers.authorization, '[REDACTED]');
  assert.equal(login.headers['x-api-key'], '[REDACTED]');
  assert.equal(login.headers.cookie, '[REDACTED]');
  // The callback gets the body (redacted), not "" as stdout would.
  const body = JSON.parse(login.body);
  assert.equal(body.password, '[REDACTED]');
  assert.equal(body.profile.Token, '[REDACTED]');
  assert.equal(body.user, 'bob');
  assert.equal(login.bodySize, 99);
  assert.equal(JSON.parse(loginRes.body).access_token, '[REDACTED]');
  assert.deepEqual(loginRes.headers['set-cookie'], ['[REDACTED]']);
  assert.equal(form.body, 'user=bob&password=[REDACTED]&pin=SECRET-pin-form');
});

test('library: lists add to the defaults; "none" first drops them', async () => {
  const added = await replay({
    redactHeaders: ['X-Custom-Auth'],
    redactBodyFields: 'pin',
    redactQueryParams: ['page'],
  });
  assert.deepEqual(secretsIn(JSON.stringify(added)), []);
  assert.equal(added[0].headers.authorization, '[REDACTED]');
  assert.equal(added[0].url, '/login?access_token=[REDACTED]&page=[REDACTED]');

  const none = await replay({
    redactHeaders: ['none', 'x-api-key'],
    redactQueryParams: 'none',
    redactBodyFields: ['none'],
  });
  assert.equal(none[0].headers.authorization, 'Bearer SECRET-authz');
  assert.equal(none[0].headers['x-api-key'], '[REDACTED]');
  assert.equal(none[0].url, '/login?access_token=SECRET-qs-1&page=2');
  assert.match(none[0].body, /"password":"SECRET-pw-1"/);

  assert.throws(() => createSniffer({ ports: [80], redactBodyFields: ['pin', 'none'] }), {
    message: /^invalid setting redactBodyFields: "none" \(drop the default list\) must be the first entry/,
  });
  assert.throws(() => createSniffer({ ports: [80], redactQueryParams: ['a=b'] }), {
    message: 'invalid setting redactQueryParams: "a=b" is not a valid query parameter name',
  });
});

test('library: a JSON body cut by maxBodySize inside a secret is still redacted', async () => {
  const got = await replay({ maxBodySize: 220 });
  const long = got[4];
  assert.equal(long.url, '/long');
  assert.equal(long.truncated, true);
  assert.equal(long.bodySize, 240);
  assert.ok(long.body.length <= 220);
  assert.ok(!long.body.includes('SECRET'), long.body);
  assert.match(long.body, /"password":"\[RED/);
});

const STDOUT_SCRIPT = (config) => `
  const { createSniffer } = require('.');
  let cb = 0, cbBodies = 0;
  const s = createSniffer({
    ports: [8080], readFile: ${JSON.stringify(secretsPcap)}, outputStdout: true,
    onHttpMessage: (m) => { cb++; if (m.body !== '') cbBodies++; },
    ...${JSON.stringify(config)},
  });
  s.once('end', () => process.stderr.write(JSON.stringify({ cb, cbBodies }) + '\\n'));
  s.start();
`;

test('library: stdout carries no bodies by default; stdoutBodies: true brings them back', async () => {
  const off = await node(STDOUT_SCRIPT({}));
  assert.equal(off.code, 0, off.stderr);
  const lines = jsonLines(off.stdout);
  assert.equal(lines.length, 8);
  for (const m of lines) assert.equal(m.body, '', JSON.stringify(m));
  assert.deepEqual(lines.map((m) => m.bodySize), [99, 54, 52, 0, 240, 2, 0, 17]);
  // The callback in the same process still gets every non-empty body.
  assert.match(off.stderr, /\{"cb":8,"cbBodies":6\}/);

  const on = await node(STDOUT_SCRIPT({ stdoutBodies: true }));
  assert.equal(on.code, 0, on.stderr);
  const withBodies = jsonLines(on.stdout);
  assert.equal(withBodies[7].body, '{"hello":"world"}');
  assert.equal(JSON.parse(withBodies[0].body).password, '[REDACTED]');
});

test('library: a cleartext output URL to a remote host', async () => {
  const before = process.env.NODE_ENV;
  try {
    delete process.env.NODE_ENV;
    // Outside production: accepted (a warning is logged, see below); an explicit false refuses.
    createSniffer({ ports: [80], outputUrl: REMOTE });
    createSniffer({ ports: [80], outputUrl: 'http://localhost:9/x', allowInsecureOutputUrl: false });
    assert.throws(
      () => createSniffer({ ports: [80], outputUrl: REMOTE, allowInsecureOutputUrl: false, outputUrlAuthToken: TOKEN }),
      (err) => {
        assert.equal(err.code, 'ERR_TCP_SNIFFER_CONFIG');
        assert.match(err.message, /^invalid setting outputUrl: http:\/\/collector\.invalid:9 is plain http/);
        assert.match(err.message, /allowInsecureOutputUrl=true/);
        assertNoCredentials(err.message);
        return true;
      },
    );
    // NODE_ENV=production: refused unless allowInsecureOutputUrl; https and loopback are fine.
    process.env.NODE_ENV = 'production';
    assert.throws(() => createSniffer({ ports: [80], outputUrl: REMOTE }), (err) => {
      assert.match(err.message, /NODE_ENV=production/);
      assertNoCredentials(err.message);
      return true;
    });
    createSniffer({ ports: [80], outputUrl: REMOTE, allowInsecureOutputUrl: true });
    createSniffer({ ports: [80], outputUrl: 'https://user:pw@collector.example/x?k=1' });
    createSniffer({ ports: [80], outputUrl: 'http://127.0.0.1:9/x' });
    createSniffer({ ports: [80], outputUrl: 'http://[::1]:9/x' });
    // Malformed URLs are not echoed.
    for (const bad of ['gopher://user:SECRETPW@x/?SECRETQS', 'user:SECRETPW@x?SECRETQS', 'http://user:SECRETPW@/?SECRETQS']) {
      assert.throws(() => createSniffer({ ports: [80], outputUrl: bad }), (err) => {
        assertNoCredentials(err.message);
        return true;
      });
    }
    assert.throws(() => createSniffer({ ports: [80], allowInsecureOutputUrl: 'yes please' }), {
      message: 'invalid setting allowInsecureOutputUrl: expected a boolean, got "yes please"',
    });
  } finally {
    if (before === undefined) delete process.env.NODE_ENV;
    else process.env.NODE_ENV = before;
  }
});

test('library: the insecure-URL warning and delivery failures never show credentials', async () => {
  const r = await node(`
    const { createSniffer } = require('.');
    const s = createSniffer({
      ports: [8080], readFile: ${JSON.stringify(secretsPcap)}, outputUrl: ${JSON.stringify(REMOTE)},
      outputUrlAuthToken: ${JSON.stringify(TOKEN)}, outputRetryBaseMs: 1, outputDrainTimeoutMs: 1500,
      logLevel: 'debug',
    });
    s.once('end', () => {});
    s.start().catch((e) => { console.error(String(e)); process.exit(3); });
  `);
  assert.equal(r.code, 0, r.stderr);
  const logs = jsonLines(r.stderr);
  const warn = logs.find((l) => l.level === 'warn' && /plain http/.test(l.message));
  assert.ok(warn, r.stderr);
  assert.match(warn.message, /http:\/\/collector\.invalid:9/);
  assert.ok(logs.some((l) => /output URL/.test(l.message)), r.stderr);
  assertNoCredentials(r.stderr);
  assert.equal(r.stdout, '');
});
