'use strict';
// Output to a local HTTP endpoint through the library (the engine's POST sink), next to
// the callback: every message reaches both.
const test = require('node:test');
const assert = require('node:assert/strict');
const http = require('node:http');
const zlib = require('node:zlib');
const { createSniffer } = require('..');
const { demoPcap } = require('./helpers');

async function collector(handler) {
  const received = [];
  const server = http.createServer((req, res) => {
    const chunks = [];
    req.on('data', (d) => chunks.push(d));
    req.on('end', () => {
      // Batches arrive gzip'd (Content-Encoding: gzip), as a real collector accepts them.
      let raw = Buffer.concat(chunks);
      if (req.headers['content-encoding'] === 'gzip') raw = zlib.gunzipSync(raw);
      const body = raw.toString('utf8');
      received.push({ headers: req.headers, body, method: req.method, url: req.url });
      handler(req, res);
    });
  });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { server, received, url: `http://127.0.0.1:${server.address().port}/ingest` };
}

test('output URL: one POST per message with the bearer token, next to the callback', async () => {
  const c = await collector((_req, res) => res.end('ok'));
  const viaCallback = [];
  const s = createSniffer({
    ports: [8080],
    readFile: demoPcap,
    outputUrl: c.url,
    outputUrlAuthToken: 'tok-123',
    onHttpMessage: (m) => viaCallback.push(m),
  });
  const ended = new Promise((resolve) => s.once('end', resolve));
  await s.start();
  await ended;
  c.server.close();
  assert.equal(viaCallback.length, 10);
  assert.equal(c.received.length, 10);
  for (const r of c.received) {
    assert.equal(r.method, 'POST');
    assert.equal(r.url, '/ingest');
    assert.equal(r.headers['content-type'], 'application/json');
    assert.equal(r.headers.authorization, 'Bearer tok-123');
  }
  const posted = c.received.map((r) => JSON.parse(r.body));
  const key = (m) => `${m.connectionId}/${m.sequence}/${m.type}`;
  assert.deepEqual(posted.map(key).sort(), viaCallback.map(key).sort());
  // With a second output the batches stay schema v1 JSON (rows are for the callback alone):
  // the URL gets objects, and the callback the very same ones.
  const byKey = (ms) => [...ms].sort((a, b) => key(a).localeCompare(key(b)));
  assert.deepEqual(byKey(viaCallback), byKey(posted));
  const st = s.stats();
  assert.equal(st.output.messages, 10);
  assert.equal(st.output.delivered, 20, 'delivered counts every output: URL and callback');
});

test('output URL: batching sends NDJSON', async () => {
  const c = await collector((_req, res) => res.end('ok'));
  const s = createSniffer({
    ports: [8080],
    readFile: demoPcap,
    outputUrl: c.url,
    outputBatchSize: 100,
    outputBatchWaitMs: 50,
  });
  const ended = new Promise((resolve) => s.once('end', resolve));
  await s.start();
  await ended;
  c.server.close();
  const lines = c.received.flatMap((r) => {
    assert.equal(r.headers['content-type'], 'application/x-ndjson');
    assert.equal(r.headers['content-encoding'], 'gzip');
    return r.body.split('\n').filter(Boolean).map((l) => JSON.parse(l));
  });
  assert.equal(lines.length, 10);
});

test('output URL: a 400 is not retried; the drop is counted', async () => {
  const c = await collector((_req, res) => {
    res.statusCode = 400;
    res.end('no');
  });
  const s = createSniffer({ ports: [8080], readFile: demoPcap, outputUrl: c.url, outputRetryBaseMs: 10 });
  const ended = new Promise((resolve) => s.once('end', resolve));
  await s.start();
  await ended;
  c.server.close();
  assert.equal(c.received.length, 10);
  assert.equal(s.stats().output.dropped_rejected, 10);
});
