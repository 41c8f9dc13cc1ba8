'use strict';
// `ports: 'any'` through the library: replaying tests/data/any-port.pcap
// (scripts/gen-encap-fixtures.py), the capture the engine's replay test uses. It holds HTTP on
// 31337 (a port nobody lists), HTTP seen mid-way with the server on the HIGHER port (roles
// must come from who sent the request line, not from the port numbers), SMTP and TLS (let
// go, counted), and HTTP on 9999 inside VXLAN over IPv6.
const test = require('node:test');
const assert = require('node:assert/strict');
const path = require('node:path');
const { createSniffer } = require('..');
const { repoDir } = require('./helpers');

const anyPortPcap = path.join(repoDir, 'tests', 'data', 'any-port.pcap');

/** [client ip, client port, server ip, server port, method, url, status, response body]. */
const exchanges = [
  ['10.0.0.1', 41000, '10.0.0.2', 31337, 'GET', '/odd-port', 200, 'hi'],
  ['10.0.0.1', 80, '10.0.0.2', 60000, 'POST', '/reverse', 201, ''],
  ['10.1.0.1', 42000, '10.1.0.2', 9999, 'GET', '/in-vxlan6', 200, 'vxlan'],
];

function body(m) {
  return Buffer.from(m.body ?? '', m.bodyEncoding === 'base64' ? 'base64' : 'utf8').toString();
}

test("ports: 'any' finds HTTP on every port by content, with the right fields", async () => {
  const s = createSniffer({ ports: 'any', readFile: anyPortPcap });
  const got = [];
  for await (const m of s) got.push(m);
  assert.equal(got.length, 6, `3 exchanges, 6 messages: ${JSON.stringify(got.map((m) => [m.type, m.url ?? m.statusCode]))}`);

  for (const [cip, cport, sip, sport, method, url, status, resBody] of exchanges) {
    const req = got.find((m) => m.type === 'request' && m.url === url);
    assert.ok(req, `request ${method} ${url}`);
    assert.equal(req.method, method);
    assert.equal(req.httpVersion, '1.1');
    assert.equal(req.headers.host, 'a');
    assert.deepEqual([req.source.ip, req.source.port], [cip, cport], `${url}: sent by the client`);
    assert.deepEqual([req.destination.ip, req.destination.port], [sip, sport], `${url}: to the server`);
    assert.equal(req.incomplete, false);
    assert.equal(req.parseError, undefined);

    const res = got.find((m) => m.type === 'response' && m.connectionId === req.connectionId);
    assert.ok(res, `response to ${url}`);
    assert.equal(res.statusCode, status);
    assert.equal(res.sequence, req.sequence, `${url}: paired`);
    assert.equal(typeof res.latencyMs, 'number', `${url}: paired, so it has a latency`);
    assert.deepEqual([res.source.ip, res.source.port], [sip, sport], `${url}: response from the server`);
    assert.deepEqual([res.destination.ip, res.destination.port], [cip, cport]);
    assert.equal(res.bodySize, Buffer.byteLength(resBody));
    assert.equal(body(res), resBody);
    assert.equal(res.incomplete, false);
  }
  const post = got.find((m) => m.url === '/reverse');
  assert.equal(post.bodySize, 3);
  assert.equal(body(post), 'abc');

  const st = s.stats();
  assert.equal(st.flow.connections_not_http, 2, 'SMTP and TLS let go');
  assert.equal(st.http.non_http_tls, 1);
  assert.equal(st.http.requests, 3);
  assert.equal(st.http.responses, 3);
  assert.equal(st.output.messages, 6);
});

test("listed ports on the same capture show only what is listed", async () => {
  const s = createSniffer({ ports: [31337], readFile: anyPortPcap });
  const got = [];
  for await (const m of s) got.push(m);
  assert.deepEqual(
    got.map((m) => [m.type, m.url ?? m.statusCode]),
    [
      ['request', '/odd-port'],
      ['response', 200],
    ],
  );
});
