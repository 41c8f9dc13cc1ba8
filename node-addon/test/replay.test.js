'use strict';
// Replaying tests/data/demo.pcap (a Node server and curl on loopback: 5 exchanges, 10
// messages) through the library: callback, 'message' event and async iterator.
const test = require('node:test');
const assert = require('node:assert/strict');
const { createSniffer } = require('..');
const { demoPcap, demoExchanges, waitFor } = require('./helpers');

function checkDemo(messages) {
  assert.equal(messages.length, 10, `expected 10 messages, got ${messages.length}`);
  demoExchanges.forEach(([method, url, status], i) => {
    const req = messages[2 * i];
    const res = messages[2 * i + 1];
    assert.equal(req.type, 'request');
    assert.equal(req.method, method);
    assert.equal(req.url, url);
    assert.equal(req.httpVersion, '1.1');
    assert.equal(req.destination.port, 8080);
    assert.equal(req.destination.ip, '127.0.0.1');
    assert.equal(req.direction, 'unknown');
    assert.equal(typeof req.headers.host, 'string');
    assert.equal(res.type, 'response');
    assert.equal(res.statusCode, status);
    assert.equal(res.connectionId, req.connectionId);
    assert.equal(res.sequence, req.sequence);
    assert.equal(res.source.port, 8080);
    assert.equal(typeof res.latencyMs, 'number');
    assert.match(res.timestamp, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$/);
    for (const m of [req, res]) {
      assert.equal(typeof m.bodySize, 'number');
      assert.ok(m.bodyEncoding === 'utf8' || m.bodyEncoding === 'base64');
      assert.equal(m.truncated, false);
      assert.equal(m.incomplete, false);
    }
  });
  const post = messages[4];
  assert.equal(post.method, 'POST');
  assert.ok(post.bodySize > 0);
}

test('replay: callback, event and end', async () => {
  const viaCallback = [];
  const viaEvent = [];
  const s = createSniffer({
    ports: [8080],
    readFile: demoPcap,
    onHttpMessage: (m) => viaCallback.push(m),
  });
  s.on('message', (m) => viaEvent.push(m));
  let statsEvent = null;
  s.on('stats', (st) => (statsEvent = st));
  const ended = new Promise((resolve) => s.once('end', resolve));
  const info = await s.start();
  assert.equal(info.backend, 'file');
  assert.equal(info.source, demoPcap);
  await ended;
  checkDemo(viaCallback);
  assert.deepEqual(viaEvent, viaCallback);
  const st = s.stats();
  assert.equal(st.output.messages, 10);
  assert.equal(st.output.delivered, 10);
  assert.equal(st.output.callback_errors, 0);
  assert.equal(st.output.dropped_queue_full, 0);
  assert.ok(st.capture.packets > 0);
  assert.ok(statsEvent, "'stats' is emitted with the final counters");
  assert.equal(statsEvent.output.messages, 10);
  // stop() after the end resolves with the same final counters.
  const final = await s.stop();
  assert.equal(final.output.messages, 10);
});

test('replay: for await (const m of sniffer)', async () => {
  const s = createSniffer({ ports: [8080], readFile: demoPcap });
  const got = [];
  for await (const m of s) got.push(m); // starts the sniffer, ends at the end of the file
  checkDemo(got);
  assert.equal(s.stats().output.dropped_iterator_full, 0);
});

test('replay: a full iterator makes the replay wait, nothing is dropped', async () => {
  const s = createSniffer({ ports: [8080], readFile: demoPcap, outputQueueSize: 1 });
  const got = [];
  for await (const m of s.messages({ bufferSize: 1 })) {
    got.push(m);
    await new Promise((resolve) => setTimeout(resolve, 5)); // a slow consumer
  }
  checkDemo(got);
  const st = s.stats();
  assert.equal(st.output.dropped_iterator_full, 0);
  assert.equal(st.output.dropped_queue_full, 0);
});

test('replay: an iterator that is never read does not stall stop()', async () => {
  const s = createSniffer({ ports: [8080], readFile: demoPcap, outputQueueSize: 1 });
  s.messages({ bufferSize: 1 }); // made, never read: the replay pauses
  await s.start();
  // The replay got going (and then paused behind the unread iterator, or ended).
  await waitFor('the replay to produce a message', () => s.stats().output.messages > 0);
  const st = await s.stop(); // resolves: a test that stalled here would time out
  const o = st.output;
  assert.equal(o.dropped_iterator_full, 0, 'a replay waits for its iterator, it never drops');
  assert.equal(
    o.delivered + o.dropped_at_shutdown + o.dropped_queue_full + o.dropped_iterator_full,
    o.messages,
    `every message delivered or counted as dropped: ${JSON.stringify(o)}`,
  );
});

test('replay: break out of the iterator, then stop', async () => {
  const s = createSniffer({ ports: [8080], readFile: demoPcap });
  let n = 0;
  for await (const m of s) {
    assert.equal(m.type, 'request');
    n++;
    break;
  }
  assert.equal(n, 1);
  const st = await s.stop();
  const o = st.output;
  assert.ok(o.messages >= 1, JSON.stringify(o));
  assert.equal(
    o.delivered + o.dropped_at_shutdown + o.dropped_queue_full + o.dropped_iterator_full,
    o.messages,
    `every message delivered or counted as dropped: ${JSON.stringify(o)}`,
  );
});

test('replay: a throwing callback is counted and the replay goes on', async () => {
  const seen = [];
  const s = createSniffer({
    ports: [8080],
    readFile: demoPcap,
    onHttpMessage: (m) => {
      seen.push(m);
      if (m.type === 'response') throw new Error('callback bug');
    },
  });
  const events = [];
  s.on('message', (m) => events.push(m));
  const ended = new Promise((resolve) => s.once('end', resolve));
  await s.start();
  await ended;
  assert.equal(seen.length, 10);
  assert.equal(events.length, 10, "the 'message' event still fires after a callback threw");
  assert.equal(s.stats().output.callback_errors, 5);
});

test('replay: maxBodySize and redaction reach the messages', async () => {
  const got = [];
  const s = createSniffer({
    ports: [8080],
    readFile: demoPcap,
    maxBodySize: 4,
    redactHeaders: ['user-agent'],
    onHttpMessage: (m) => got.push(m),
  });
  const ended = new Promise((resolve) => s.once('end', resolve));
  await s.start();
  await ended;
  assert.equal(got.length, 10);
  assert.equal(got[0].headers['user-agent'], '[REDACTED]');
  const withBody = got.find((m) => m.bodySize > 4);
  assert.ok(withBody);
  assert.equal(withBody.truncated, true);
  assert.ok(withBody.body.length <= 4);
});

test('replay: messages arrive with a callback only, no listeners', async () => {
  const s = createSniffer({ ports: [8080], readFile: demoPcap, onHttpMessage: () => {} });
  const ended = new Promise((resolve) => s.once('end', resolve));
  await s.start();
  await ended;
  assert.equal(s.stats().output.delivered, 10);
});
