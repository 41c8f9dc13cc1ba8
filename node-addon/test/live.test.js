'use strict';
// Live capture in a fresh network namespace (needs root; CI runs as root): a real Node
// HTTP server and `fetch` client; N requests give N request and N response messages
// through both the callback and the event; stop() drains; a throwing callback is logged
// and counted and capture goes on.
const test = require('node:test');
const assert = require('node:assert/strict');
const path = require('node:path');
const { requireRoot, inNetns, jsonLines } = require('./helpers');

const child = path.join(__dirname, 'fixtures', 'live-child.js');
const N = 6;

function checkMessages(msgs, port) {
  // Order is per connection; fetch may use several connections, and workers shard by
  // connection, so put requests in the order they were made (the index is in the URL).
  const index = (m) => Number(/\/item\/(\d+)/.exec(m.url)[1]);
  const reqs = msgs.filter((m) => m.type === 'request').sort((a, b) => index(a) - index(b));
  const ress = msgs.filter((m) => m.type === 'response');
  assert.equal(reqs.length, N, `requests: ${reqs.length}`);
  assert.equal(ress.length, N, `responses: ${ress.length}`);
  reqs.forEach((m, i) => {
    const isPost = i % 2 === 1;
    assert.equal(m.method, isPost ? 'POST' : 'GET');
    assert.equal(m.url, `/item/${i}?q=${i}`);
    assert.equal(m.httpVersion, '1.1');
    assert.equal(m.destination.port, port);
    assert.equal(m.destination.ip, '127.0.0.1');
    assert.equal(m.source.ip, '127.0.0.1');
    assert.equal(m.headers['x-test'], String(i));
    assert.equal(m.headers.authorization, '[REDACTED]');
    assert.equal(m.headers.host, `127.0.0.1:${port}`);
    assert.ok(['inbound', 'outbound'].includes(m.direction), m.direction);
    assert.equal(m.incomplete, false);
    if (isPost) {
      assert.equal(m.body, `payload-${i}`);
      assert.equal(m.bodySize, `payload-${i}`.length);
      assert.equal(m.bodyEncoding, 'utf8');
    }
  });
  for (const res of ress) {
    const req = reqs.find((r) => r.connectionId === res.connectionId && r.sequence === res.sequence);
    assert.ok(req, `response ${res.connectionId}/${res.sequence} pairs with a request`);
    assert.equal(res.statusCode, 200);
    assert.equal(res.statusMessage, 'OK');
    assert.equal(res.source.port, port);
    assert.deepEqual(res.headers['set-cookie'], ['[REDACTED]', '[REDACTED]']);
    assert.equal(res.headers['content-type'], 'application/json');
    const body = JSON.parse(res.body);
    assert.equal(body.path, req.url);
    assert.equal(typeof res.latencyMs, 'number');
    assert.ok(res.latencyMs >= 0);
  }
}

test('live: N requests → N requests and N responses via callback and event; stop() drains', async (t) => {
  if (!requireRoot(t)) return;
  const r = await inNetns(child, [String(N)]);
  assert.equal(r.code, 0, `child failed:\n${r.stderr}`);
  const out = JSON.parse(r.stdout);
  assert.deepEqual(out.statuses, Array(N).fill(200));
  assert.ok(['af_packet', 'pcap'].includes(out.info.backend));
  checkMessages(out.viaCallback, out.port);
  assert.deepEqual(out.viaEvent, out.viaCallback);
  assert.equal(out.stats.output.messages, 2 * N);
  assert.equal(out.stats.output.delivered, 2 * N);
  assert.equal(out.stats.output.dropped_queue_full, 0);
  assert.equal(out.stats.output.callback_errors, 0);
  assert.ok(out.stats.capture.packets > 0);
});

test('live: a throwing callback is logged and counted; capture goes on', async (t) => {
  if (!requireRoot(t)) return;
  const r = await inNetns(child, [String(N), 'throw']);
  assert.equal(r.code, 0, `child failed:\n${r.stderr}`);
  const out = JSON.parse(r.stdout);
  checkMessages(out.viaCallback, out.port); // every message still came, after the throws
  assert.deepEqual(out.viaEvent, out.viaCallback);
  assert.equal(out.thrown, N);
  assert.equal(out.stats.output.callback_errors, N);
  const logs = jsonLines(r.stderr);
  const line = logs.find((l) => /onHttpMessage threw/.test(l.message));
  assert.ok(line, `a JSON log line about the throwing callback on stderr:\n${r.stderr}`);
  assert.equal(line.level, 'error');
  assert.match(line.timestamp, /Z$/);
  assert.match(line.error, /deliberate callback failure/);
  assert.equal(typeof line.connectionId, 'string');
});

test('live: an async iterator that falls behind drops and counts; the callback still gets everything', async (t) => {
  if (!requireRoot(t)) return;
  const r = await inNetns(child, [String(N), 'iter']);
  assert.equal(r.code, 0, `child failed:\n${r.stderr}`);
  const out = JSON.parse(r.stdout);
  checkMessages(out.viaCallback, out.port);
  assert.equal(out.stats.output.dropped_iterator_full, 2 * N - 1);
  assert.equal(out.stats.output.dropped_queue_full, 0);
});

for (const backend of ['af_packet', 'pcap']) {
  test(`live: the interface going away (${backend}) → 'error' event, iterator throws, sniffer stops`, async (t) => {
    if (!requireRoot(t)) return;
    const r = await inNetns(path.join(__dirname, 'fixtures', 'error-child.js'), [backend]);
    assert.equal(r.code, 0, `child failed:\n${r.stderr}`);
    const out = JSON.parse(r.stdout);
    assert.equal(out.info.backend, backend);
    assert.equal(out.errors.length, 1, JSON.stringify(out.errors));
    assert.match(out.errors[0], /^capture failed: .*tsv0/);
    assert.match(out.iterator, /^threw: capture failed: /);
    assert.equal(out.statsEvents, 1);
    const logs = jsonLines(r.stderr);
    assert.ok(logs.some((l) => l.level === 'error' && /capture failed/.test(l.message)), r.stderr);
  });
}
