'use strict';
// createSniffer's configuration: every key, good and bad values, unknown keys, with the
// engine's exact error text (one validation: the same text as the sidecar and the CLI).
const test = require('node:test');
const assert = require('node:assert/strict');
const { createSniffer, SnifferConfigError } = require('..');

const P = { ports: [8080] };
const ACCEPTED =
  'interface, ports, outputUrl, allowInsecureOutputUrl, outputUrlAuthToken, outputStdout, outputFormat, metricsAddr, ' +
  'sampleRate, maxBodySize, stdoutBodies, decodeBodies, maxConcurrentConnections, connectionIdleTimeoutMs, ' +
  'redactHeaders, redactQueryParams, redactBodyFields, captureBackend, workers, ' +
  'readFile, logLevel, outputBatchSize, outputBatchWaitMs, outputConcurrency, outputQueueSize, ' +
  'outputDrainTimeoutMs, outputRetryBaseMs';

// [description, config, expected error text or null when valid]
const cases = [
  // ports
  ['ports missing', {}, 'invalid setting ports: required: the TCP port(s) the application serves HTTP on, e.g. 8080 or 80,8080, or any'],
  ['ports array', { ports: [80, 8080] }, null],
  ['ports single number', { ports: 8080 }, null],
  ['ports comma string', { ports: '80, 8080' }, null],
  ['ports empty', { ports: [] }, 'invalid setting ports: at least one port is required'],
  ['ports duplicate', { ports: [80, 80] }, 'invalid setting ports: port 80 is listed twice'],
  ['ports zero', { ports: [0] }, 'invalid setting ports: each port must be 1-65535: expected an integer from 1 to 65535, got 0'],
  ['ports too big', { ports: [65536] }, 'invalid setting ports: each port must be 1-65535: expected an integer from 1 to 65535, got 65536'],
  ['ports fraction', { ports: [80.5] }, 'invalid setting ports: each port must be 1-65535: expected an integer from 1 to 65535, got 80.5'],
  ['ports word', { ports: 'http' }, 'invalid setting ports: each port must be 1-65535: expected an integer from 1 to 65535, got "http"'],
  ['ports boolean', { ports: true }, 'invalid setting ports: expected an array of ports, got true'],
  // interface
  ['interface lo', { ...P, interface: 'lo' }, null],
  ['interface any', { ...P, interface: 'any' }, null],
  ['interface empty', { ...P, interface: '' }, 'invalid setting interface: expected an interface name (1-15 characters, no \'/\', \':\' or spaces) or "any", got ""'],
  ['interface too long', { ...P, interface: 'averyveryverylongname' }, 'invalid setting interface: expected an interface name (1-15 characters, no \'/\', \':\' or spaces) or "any", got "averyveryverylongname"'],
  ['interface number', { ...P, interface: 5 }, 'invalid setting interface: expected a string, got 5'],
  // outputUrl
  ['outputUrl http', { ...P, outputUrl: 'http://collector.example/ingest' }, null],
  ['outputUrl https', { ...P, outputUrl: 'https://collector.example/ingest' }, null],
  ['outputUrl ftp', { ...P, outputUrl: 'ftp://collector.example/' }, 'invalid setting outputUrl: expected an http:// or https:// URL, got scheme "ftp"'],
  ['outputUrl not a URL', { ...P, outputUrl: 'collector' }, 'invalid setting outputUrl: expected an http:// or https:// URL'],
  ['outputUrl no host', { ...P, outputUrl: 'http:///x' }, 'invalid setting outputUrl: the URL has no host'],
  ['outputUrl number', { ...P, outputUrl: 12345 }, 'invalid setting outputUrl: expected a URL string'],
  ['allowInsecureOutputUrl true', { ...P, outputUrl: 'http://collector.example/ingest', allowInsecureOutputUrl: true }, null],
  ['allowInsecureOutputUrl false', { ...P, outputUrl: 'http://collector.example/ingest', allowInsecureOutputUrl: false }, 'invalid setting outputUrl: http://collector.example is plain http to a host that is not loopback, which sends the captured traffic and the token in clear (allowInsecureOutputUrl is false); use https://, or set allowInsecureOutputUrl=true to accept it'],
  ['allowInsecureOutputUrl string', { ...P, allowInsecureOutputUrl: 'true' }, 'invalid setting allowInsecureOutputUrl: expected a boolean, got "true"'],
  // stdoutBodies
  ['stdoutBodies true', { ...P, stdoutBodies: true }, null],
  ['stdoutBodies number', { ...P, stdoutBodies: 1 }, 'invalid setting stdoutBodies: expected a boolean, got 1'],
  // outputUrlAuthToken
  ['outputUrlAuthToken', { ...P, outputUrlAuthToken: 's3cret' }, null],
  ['outputUrlAuthToken line break', { ...P, outputUrlAuthToken: 'a\nb' }, 'invalid setting outputUrlAuthToken: must not contain line breaks'],
  ['outputUrlAuthToken number (not echoed)', { ...P, outputUrlAuthToken: 987654321 }, 'invalid setting outputUrlAuthToken: expected a string'],
  // outputStdout
  ['outputStdout true', { ...P, outputStdout: true }, null],
  ['outputStdout string', { ...P, outputStdout: 'yes' }, 'invalid setting outputStdout: expected a boolean, got "yes"'],
  // onHttpMessage (JavaScript's own check)
  ['onHttpMessage function', { ...P, onHttpMessage: () => {} }, null],
  ['onHttpMessage string', { ...P, onHttpMessage: 'log' }, 'invalid setting onHttpMessage: expected a function (message) => void, got "log"'],
  ['onHttpMessage null', { ...P, onHttpMessage: null }, 'invalid setting onHttpMessage: expected a function (message) => void, got null'],
  // sampleRate
  ['sampleRate 0.5', { ...P, sampleRate: 0.5 }, null],
  ['sampleRate 1', { ...P, sampleRate: 1 }, null],
  ['sampleRate 0', { ...P, sampleRate: 0 }, 'invalid setting sampleRate: expected a number with 0 < rate <= 1, got 0'],
  ['sampleRate 1.5', { ...P, sampleRate: 1.5 }, 'invalid setting sampleRate: expected a number with 0 < rate <= 1, got 1.5'],
  ['sampleRate string', { ...P, sampleRate: 'half' }, 'invalid setting sampleRate: expected a number, got "half"'],
  // maxBodySize
  ['maxBodySize 0', { ...P, maxBodySize: 0 }, null],
  ['maxBodySize negative', { ...P, maxBodySize: -1 }, 'invalid setting maxBodySize: expected an integer from 0 to 16777216, got -1'],
  ['maxBodySize fraction', { ...P, maxBodySize: 1.5 }, 'invalid setting maxBodySize: expected an integer from 0 to 16777216, got 1.5'],
  // maxConcurrentConnections
  ['maxConcurrentConnections 1', { ...P, maxConcurrentConnections: 1 }, null],
  ['maxConcurrentConnections 0', { ...P, maxConcurrentConnections: 0 }, 'invalid setting maxConcurrentConnections: expected an integer from 1 to 10000000, got 0'],
  // connectionIdleTimeoutMs
  ['connectionIdleTimeoutMs 1000', { ...P, connectionIdleTimeoutMs: 1000 }, null],
  ['connectionIdleTimeoutMs 999', { ...P, connectionIdleTimeoutMs: 999 }, 'invalid setting connectionIdleTimeoutMs: expected an integer >= 1000, got 999'],
  // redactHeaders
  ['redactHeaders array', { ...P, redactHeaders: ['X-Api-Key', 'cookie'] }, null],
  ['redactHeaders string', { ...P, redactHeaders: 'x-api-key, cookie' }, null],
  ['redactHeaders bad name', { ...P, redactHeaders: ['bad header'] }, 'invalid setting redactHeaders: "bad header" is not a valid header name'],
  ['redactHeaders non-string', { ...P, redactHeaders: [1] }, 'invalid setting redactHeaders: expected header names as strings, got 1'],
  ['redactHeaders number', { ...P, redactHeaders: 5 }, 'invalid setting redactHeaders: expected an array of header names, got 5'],
  ['redactHeaders none first', { ...P, redactHeaders: ['none', 'x-a'] }, null],
  ['redactHeaders none later', { ...P, redactHeaders: ['x-a', 'none'] }, 'invalid setting redactHeaders: "none" (drop the default list) must be the first entry, got it after "x-a"'],
  ['redactQueryParams array', { ...P, redactQueryParams: ['session', 'X-Sig'] }, null],
  ['redactQueryParams string', { ...P, redactQueryParams: 'none' }, null],
  ['redactQueryParams bad name', { ...P, redactQueryParams: ['a&b'] }, 'invalid setting redactQueryParams: "a&b" is not a valid query parameter name'],
  ['redactQueryParams number', { ...P, redactQueryParams: 5 }, 'invalid setting redactQueryParams: expected an array of query parameter names, got 5'],
  ['redactBodyFields array', { ...P, redactBodyFields: ['pin', 'user.ssn'] }, null],
  ['redactBodyFields non-string', { ...P, redactBodyFields: [true] }, 'invalid setting redactBodyFields: expected field names as strings, got true'],
  // captureBackend
  ['captureBackend auto', { ...P, captureBackend: 'auto' }, null],
  ['captureBackend af_packet', { ...P, captureBackend: 'af_packet' }, null],
  ['captureBackend pcap', { ...P, captureBackend: 'pcap' }, null],
  ['captureBackend other', { ...P, captureBackend: 'pf_ring' }, 'invalid setting captureBackend: expected one of "auto", "af_packet", "pcap", got "pf_ring"'],
  // workers
  ['workers 2', { ...P, workers: 2 }, null],
  ['workers 0', { ...P, workers: 0 }, 'invalid setting workers: expected an integer from 1 to 1024, got 0'],
  ['workers 2000', { ...P, workers: 2000 }, 'invalid setting workers: expected an integer from 1 to 1024, got 2000'],
  // readFile
  ['readFile path', { ...P, readFile: '/tmp/x.pcap' }, null],
  ['readFile empty', { ...P, readFile: '' }, 'invalid setting readFile: expected a path to a pcap or pcapng file'],
  // logLevel
  ['logLevel debug', { ...P, logLevel: 'debug' }, null],
  ['logLevel verbose', { ...P, logLevel: 'verbose' }, 'invalid setting logLevel: expected one of "error", "warn", "info", "debug", got "verbose"'],
  // output tuning
  ['outputBatchSize 100', { ...P, outputBatchSize: 100 }, null],
  ['outputBatchSize 0', { ...P, outputBatchSize: 0 }, 'invalid setting outputBatchSize: expected an integer from 1 to 10000, got 0'],
  ['outputBatchSize 10001', { ...P, outputBatchSize: 10001 }, 'invalid setting outputBatchSize: expected an integer from 1 to 10000, got 10001'],
  ['outputBatchWaitMs 50', { ...P, outputBatchWaitMs: 50 }, null],
  ['outputBatchWaitMs 0', { ...P, outputBatchWaitMs: 0 }, 'invalid setting outputBatchWaitMs: expected an integer from 1 to 600000, got 0'],
  ['outputConcurrency 8', { ...P, outputConcurrency: 8 }, null],
  ['outputConcurrency 257', { ...P, outputConcurrency: 257 }, 'invalid setting outputConcurrency: expected an integer from 1 to 256, got 257'],
  ['outputQueueSize 10', { ...P, outputQueueSize: 10 }, null],
  ['outputQueueSize 0', { ...P, outputQueueSize: 0 }, 'invalid setting outputQueueSize: expected an integer from 1 to 10000000, got 0'],
  ['outputDrainTimeoutMs 0', { ...P, outputDrainTimeoutMs: 0 }, null],
  ['outputDrainTimeoutMs negative', { ...P, outputDrainTimeoutMs: -1 }, 'invalid setting outputDrainTimeoutMs: expected an integer from 0 to 3600000, got -1'],
  ['outputRetryBaseMs 10', { ...P, outputRetryBaseMs: 10 }, null],
  ['outputRetryBaseMs 0', { ...P, outputRetryBaseMs: 0 }, 'invalid setting outputRetryBaseMs: expected an integer from 1 to 60000, got 0'],
  // unknown keys (a typo, an env-style name, a CLI-style name)
  ['unknown key typo', { ...P, maxBodySzie: 1 }, `invalid setting maxBodySzie: unknown setting; accepted: ${ACCEPTED}`],
  ['unknown key env name', { ...P, PORTS: '80' }, `invalid setting PORTS: unknown setting; accepted: ${ACCEPTED}`],
  ['unknown key stdout', { ...P, stdout: true }, `invalid setting stdout: unknown setting; accepted: ${ACCEPTED}`],
  // undefined means unset
  ['undefined values are unset', { ...P, interface: undefined, maxBodySize: undefined }, null],
];

for (const [name, config, expected] of cases) {
  test(`config: ${name}`, () => {
    if (expected === null) {
      const s = createSniffer(config);
      assert.equal(typeof s.start, 'function');
      return;
    }
    assert.throws(
      () => createSniffer(config),
      (err) => {
        assert.ok(err instanceof SnifferConfigError, `expected SnifferConfigError, got ${err}`);
        assert.ok(err instanceof Error);
        assert.equal(err.code, 'ERR_TCP_SNIFFER_CONFIG');
        assert.equal(err.message, expected);
        return true;
      },
    );
  });
}

test('config: not an object', () => {
  for (const bad of [undefined, null, 8080, 'ports=80', [8080]]) {
    assert.throws(() => createSniffer(bad), /^SnifferConfigError: invalid configuration: expected an object/);
  }
});

test('config: NODE_ENV=production accepts only https outside loopback', () => {
  const before = process.env.NODE_ENV;
  process.env.NODE_ENV = 'production';
  try {
    assert.throws(
      () => createSniffer({ ...P, outputUrl: 'http://collector.example/ingest' }),
      {
        message:
          'invalid setting outputUrl: http://collector.example is plain http to a host that is not loopback, which sends the captured traffic and the token in clear (NODE_ENV=production); use https://, or set allowInsecureOutputUrl=true to accept it',
      },
    );
    createSniffer({ ...P, outputUrl: 'https://collector.example/ingest' });
    createSniffer({ ...P, outputUrl: 'http://127.0.0.1:9000/ingest' });
    createSniffer({ ...P, outputUrl: 'http://localhost:9000/ingest' });
  } finally {
    if (before === undefined) delete process.env.NODE_ENV;
    else process.env.NODE_ENV = before;
  }
});

test('config: stats before start are zero, stop before start resolves', async () => {
  const s = createSniffer(P);
  assert.equal(s.stats().output.messages, 0);
  const final = await s.stop();
  assert.equal(final.capture.packets, 0);
  await assert.rejects(s.start(), /stopped/);
});

test('config: start fails clearly for a missing capture file', async () => {
  const s = createSniffer({ ...P, readFile: '/nonexistent/capture.pcap' });
  await assert.rejects(s.start(), (err) => {
    assert.match(err.message, /nonexistent\/capture\.pcap/);
    return true;
  });
});
