'use strict';
// The objects onHttpMessage gets are the CLI's JSON lines, exactly: same messages in the same
// order, same fields in the same order, same types, same values (schema v1 is public). The
// addon hands JavaScript each batch as several JSON-array chunks (node-addon/src/js_output.rs);
// these tests hold that crossing to the CLI's output on real captures: tests/data, every
// capture of the shared corpus's zeek-http (found as the engine's corpus tests find it:
// TCP_SNIFFER_CORPUS, else ../shared/corpus; ALLOW_MISSING_CORPUS=1 skips loudly outside CI),
// and a capture written here with batches of many chunks, messages larger than a chunk and
// non-ASCII text.
//
// The CLI is TCP_SNIFFER_CLI, else $CARGO_TARGET_DIR/release/tcp-sniffer, else
// target/release/tcp-sniffer (`make build-release` builds it before `make node-test`).
const test = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { spawnSync } = require('node:child_process');
const { isDeepStrictEqual } = require('node:util');
const { createSniffer } = require('..');
const { repoDir, demoPcap, secretsPcap, isCI } = require('./helpers');

const cli =
  process.env.TCP_SNIFFER_CLI ||
  path.join(path.resolve(repoDir, process.env.CARGO_TARGET_DIR || 'target'), 'release', 'tcp-sniffer');

function requireCli() {
  if (!fs.existsSync(cli)) {
    throw new Error(
      `the tcp-sniffer CLI is not at ${cli}: build it (cargo build --release -p tcp-sniffer, or make build-release) or point TCP_SNIFFER_CLI at it`,
    );
  }
}

/** The shared corpus's directory, or null when it may be skipped (outside CI, ALLOW_MISSING_CORPUS set). */
function corpusDir(t) {
  const dir = process.env.TCP_SNIFFER_CORPUS || path.resolve(repoDir, '..', 'shared', 'corpus');
  if (fs.existsSync(dir)) return dir;
  const msg = `corpus not found at ${dir}`;
  if (isCI()) throw new Error(`${msg}, and CI is set so the corpus tests may not skip; point TCP_SNIFFER_CORPUS at it`);
  if (process.env.ALLOW_MISSING_CORPUS) {
    process.stderr.write(`\n!!!!!!!!!! SKIPPED: ${msg} (ALLOW_MISSING_CORPUS is set) !!!!!!!!!!\n\n`);
    t.skip(`SKIPPED: ${msg}`);
    return null;
  }
  throw new Error(`${msg}; point TCP_SNIFFER_CORPUS at it, or set ALLOW_MISSING_CORPUS=1 to skip (outside CI only)`);
}

/** The server ports of a zeek-http test: the id.resp_p column of its http.log, else the usual ones. */
function zeekPorts(dir) {
  const fallback = [80, 8000, 8080];
  let text;
  try {
    text = fs.readFileSync(path.join(dir, 'http.log'), 'utf8');
  } catch {
    return fallback;
  }
  const lines = text.split('\n');
  const fields = (lines.find((l) => l.startsWith('#fields')) ?? '').split('\t').slice(1);
  const col = fields.indexOf('id.resp_p');
  if (col < 0) return fallback;
  const ports = new Set();
  for (const l of lines) {
    if (l === '' || l.startsWith('#')) continue;
    const p = Number(l.split('\t')[col]);
    if (Number.isInteger(p) && p > 0 && p < 65536) ports.add(p);
  }
  return ports.size > 0 ? [...ports].sort((a, b) => a - b) : fallback;
}

/** What the CLI writes for `file` (one worker: one order), as text lines. */
async function cliLines(file, ports) {
  // Whole buffers, decoded once: decoding chunk by chunk would split UTF-8 sequences.
  const r = spawnSync(cli, ['--read', file, '--ports', ports.join(','), '--workers', '1'], {
    timeout: 120_000,
    maxBuffer: 1 << 30,
  });
  // Exit 3: the capture held no message on these ports (the library then delivers none too).
  assert.ok(r.status === 0 || r.status === 3, `${cli} --read ${file} exited ${r.status}: ${r.error ?? r.stderr}`);
  return r.stdout.toString('utf8').split('\n').filter((l) => l !== '');
}

/** What onHttpMessage gets for `file`, with the CLI's settings. */
async function libraryMessages(file, ports) {
  const got = [];
  const s = createSniffer({ ports, readFile: file, workers: 1, onHttpMessage: (m) => got.push(m) });
  const ended = new Promise((resolve) => s.once('end', resolve));
  await s.start();
  await ended;
  const st = await s.stop();
  return { got, st };
}

/** Asserts the callback's objects are the CLI's lines; returns how many messages. */
async function assertSame(file, ports) {
  const lines = await cliLines(file, ports);
  const { got, st } = await libraryMessages(file, ports);
  const where = `${path.basename(file)} (ports ${ports.join(',')})`;
  assert.equal(got.length, lines.length, `${where}: callback got ${got.length} messages, the CLI wrote ${lines.length}`);
  assert.equal(st.output.delivered, got.length, `${where}: delivered counts what the callback got`);
  for (let i = 0; i < lines.length; i++) {
    const want = JSON.parse(lines[i]);
    // Types and values (isDeepStrictEqual), then key order at every level (stringify). The
    // message names the fields that differ, not the whole (maybe 64 KiB) bodies.
    if (!isDeepStrictEqual(got[i], want) || JSON.stringify(got[i]) !== JSON.stringify(want)) {
      const keys = [...new Set([...Object.keys(got[i]), ...Object.keys(want)])];
      const differ = keys.filter((k) => !isDeepStrictEqual(got[i][k], want[k]));
      assert.fail(
        `${where}: message ${i} is not the CLI's line: ` +
          (differ.length > 0
            ? `fields ${differ.join(', ')} differ`
            : `same fields, another order: ${Object.keys(got[i]).join(',')} vs ${Object.keys(want).join(',')}`),
      );
    }
  }
  return lines.length;
}

test('parity: tests/data captures give the CLI’s messages, field for field', async () => {
  requireCli();
  assert.equal(await assertSame(demoPcap, [8080]), 10);
  assert.ok((await assertSame(secretsPcap, [80, 8080])) > 0, 'secrets.pcap has messages');
});

test('parity: every zeek-http capture of the shared corpus gives the CLI’s messages', async (t) => {
  requireCli();
  const corpus = corpusDir(t);
  if (!corpus) return;
  const zeek = path.join(corpus, 'zeek-http');
  let files = 0;
  let messages = 0;
  let nonAscii = 0;
  let overChunk = 0;
  for (const name of fs.readdirSync(zeek).sort()) {
    const dir = path.join(zeek, name);
    if (!fs.statSync(dir).isDirectory()) continue;
    for (const f of fs.readdirSync(dir).sort()) {
      if (!/\.pcap(ng)?$/.test(f)) continue;
      const file = path.join(dir, f);
      const lines = await cliLines(file, zeekPorts(dir));
      nonAscii += lines.filter((l) => /[^\x00-\x7f]/.test(l)).length;
      overChunk += lines.filter((l) => Buffer.byteLength(l) > 48 * 1024).length;
      messages += await assertSame(file, zeekPorts(dir));
      files++;
    }
  }
  assert.ok(files >= 50, `expected the corpus's ~60 captures, found ${files}`);
  assert.ok(messages >= 100, `expected at least 100 messages over the corpus, got ${messages}`);
  // What makes these captures worth comparing: text that is not ASCII, messages bigger than a chunk.
  assert.ok(nonAscii > 0, 'the corpus has a message with non-ASCII text (ctu-agent-tesla)');
  assert.ok(overChunk > 0, 'the corpus has messages over 48 KiB (concurrent-range-requests, no_crlf)');
});

// ---------------------------------------------------------------------------------------
// A capture with many messages per batch: one keep-alive connection, `n` exchanges.

/** A classic pcap (Ethernet, IPv4, TCP) of one client talking to 10.0.0.1:8080. */
function writeCapture(file, exchanges) {
  const records = [];
  let usec = 0;
  const client = [10, 1, 0, 7];
  const server = [10, 0, 0, 1];
  const [cport, sport] = [40000, 8080];
  let cseq = 1000;
  let sseq = 5000;
  const frame = (fromClient, flags, payload = Buffer.alloc(0)) => {
    const ip = Buffer.alloc(20);
    ip[0] = 0x45;
    ip.writeUInt16BE(20 + 20 + payload.length, 2);
    ip[6] = 0x40;
    ip[8] = 64;
    ip[9] = 6;
    Buffer.from(fromClient ? client : server).copy(ip, 12);
    Buffer.from(fromClient ? server : client).copy(ip, 16);
    const tcp = Buffer.alloc(20);
    tcp.writeUInt16BE(fromClient ? cport : sport, 0);
    tcp.writeUInt16BE(fromClient ? sport : cport, 2);
    tcp.writeUInt32BE((fromClient ? cseq : sseq) >>> 0, 4);
    tcp.writeUInt32BE((fromClient ? sseq : cseq) >>> 0, 8);
    tcp[12] = 5 << 4;
    tcp[13] = flags;
    tcp.writeUInt16BE(65535, 14);
    const eth = Buffer.from([0, 1, 2, 3, 4, 5, 0, 1, 2, 3, 4, 6, 0x08, 0x00]);
    const data = Buffer.concat([eth, ip, tcp, payload]);
    const hdr = Buffer.alloc(16);
    usec += 10;
    hdr.writeUInt32LE(1_700_000_000 + Math.floor(usec / 1e6), 0);
    hdr.writeUInt32LE(usec % 1e6, 4);
    hdr.writeUInt32LE(data.length, 8);
    hdr.writeUInt32LE(data.length, 12);
    records.push(hdr, data);
    const len = payload.length + (flags & 0x03 ? 1 : 0); // SYN and FIN take a sequence number
    if (fromClient) cseq += len;
    else sseq += len;
  };
  const send = (fromClient, bytes) => {
    for (let off = 0; off < bytes.length; off += 1448) frame(fromClient, 0x18, bytes.subarray(off, off + 1448));
  };
  frame(true, 0x02);
  frame(false, 0x12);
  frame(true, 0x10);
  for (const [req, res] of exchanges) {
    send(true, Buffer.from(req));
    send(false, Buffer.from(res));
  }
  frame(true, 0x11);
  frame(false, 0x11);
  frame(true, 0x10);
  const head = Buffer.alloc(24);
  head.writeUInt32LE(0xa1b2c3d4, 0);
  head.writeUInt16LE(2, 4);
  head.writeUInt16LE(4, 6);
  head.writeUInt32LE(262144, 16);
  head.writeUInt32LE(1, 20);
  fs.writeFileSync(file, Buffer.concat([head, ...records]));
}

test('parity: batches of many chunks, messages larger than a chunk, non-ASCII text', async () => {
  requireCli();
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tcp-sniffer-parity-'));
  try {
    const exchanges = [];
    for (let i = 0; i < 700; i++) {
      // Every 97th message has a body of about 58 KB (more than a chunk, under maxBodySize); some text
      // is not ASCII (two-byte strings in V8); some needs JSON escapes.
      const body =
        i % 97 === 0
          ? `{"big":"${'Grüße, 世界 '.repeat(4000).slice(0, 40000)}"}`
          : i % 5 === 0
            ? `{"n":${i},"text":"naïve café \\"quoted\\" \\u0001 tab\\t"}`
            : `{"n":${i}}`;
      const req =
        i % 3 === 0
          ? `POST /items/${i}?q=${encodeURIComponent('ä b')} HTTP/1.1\r\nHost: example.test\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`
          : `GET /items/${i} HTTP/1.1\r\nHost: example.test\r\nX-Request-Id: ${i}\r\n\r\n`;
      const res = `HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nSet-Cookie: a=${i}\r\nSet-Cookie: b=${i}\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`;
      exchanges.push([req, res]);
    }
    const file = path.join(dir, 'many.pcap');
    writeCapture(file, exchanges);
    const lines = await cliLines(file, [8080]);
    assert.equal(lines.length, 1400, 'the CLI sees every request and response of the written capture');
    assert.ok(lines.some((l) => Buffer.byteLength(l) > 48 * 1024), 'some messages are larger than a chunk');
    assert.ok(lines.some((l) => /世界/.test(l)), 'some text is not ASCII');
    assert.equal(await assertSame(file, [8080]), 1400);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

// ---------------------------------------------------------------------------------------
// The fields most messages lack. With the callback as the only output the engine sends rows
// (engine/src/js_rows.rs) and ts/rows.ts rebuilds the objects; every optional field has its own
// place in the schema's key order, so each is compared here on a capture that has it.

const perfBin = path.join(path.dirname(cli), 'sniffer-perf');

test('parity: HTTP/2 streams and gRPC trailers, a CONNECT tunnel, a pod placement', async () => {
  requireCli();
  assert.ok(fs.existsSync(perfBin), `sniffer-perf is not at ${perfBin}: make build-release builds it beside the CLI`);
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tcp-sniffer-parity-rare-'));
  const podEnv = ['POD_NAME', 'POD_NAMESPACE', 'NODE_NAME'];
  try {
    // HTTP/2 in cleartext, a third of it gRPC (streamId on every message, trailers on gRPC responses).
    const gen = spawnSync(perfBin, ['gen', '--workload', 'H', '--size-mb', '1', '--seed', '3', '--out', dir], {
      encoding: 'utf8',
    });
    assert.equal(gen.status, 0, `sniffer-perf gen: ${gen.stderr}`);
    const h2 = path.join(dir, 'H-1mb-seed3.pcap');
    const h2Lines = await cliLines(h2, [80, 8080]);
    assert.ok(h2Lines.some((l) => l.includes('"trailers":')), 'the HTTP/2 capture has trailers');
    assert.ok((await assertSame(h2, [80, 8080])) > 100);

    // A CONNECT tunnel carrying plain HTTP/1 (tunnel: true), and a head with a parse error.
    const tunnel = path.join(dir, 'tunnel.pcap');
    writeCapture(tunnel, [
      ['CONNECT api.test:80 HTTP/1.1\r\nHost: api.test:80\r\n\r\n', 'HTTP/1.1 200 Connection established\r\n\r\n'],
      [
        'GET /inner HTTP/1.1\r\nHost: api.test\r\n\r\n',
        'HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello',
      ],
    ]);
    const tunnelLines = await cliLines(tunnel, [8080]);
    assert.ok(tunnelLines.some((l) => l.includes('"tunnel":true')), `the tunnel capture has tunnelled messages: ${tunnelLines}`);
    assert.equal(await assertSame(tunnel, [8080]), 4);

    // The placement from the downward API: the library and the CLI read the same variables.
    process.env.POD_NAME = 'web-0';
    process.env.POD_NAMESPACE = 'shop';
    const podLines = await cliLines(demoPcap, [8080]);
    assert.ok(podLines.every((l) => l.includes('"pod":{"name":"web-0","namespace":"shop"}')), 'every message has the pod');
    assert.equal(await assertSame(demoPcap, [8080]), 10);
  } finally {
    for (const k of podEnv) delete process.env[k];
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

// Rows carry direction and HTTP version as indexes into tables the engine and ts/rows.ts
// each hold (engine/src/js_rows.rs). Replays are all "unknown" and HTTP/1.1, so the parity
// tests above would not see the two tables drift apart: compare them here.
test('parity: the row tables of engine/src/js_rows.rs and ts/rows.ts agree', () => {
  const rows = require('../dist/rows.js');
  const rust = fs.readFileSync(path.join(__dirname, '..', '..', 'engine', 'src', 'js_rows.rs'), 'utf8');
  const table = (name) => {
    const m = new RegExp(`pub const ${name}: \\[[^\\]]+\\] =\\s*\\[([^\\]]*)\\]`).exec(rust);
    assert.ok(m, `${name} not found in engine/src/js_rows.rs`);
    return m[1].split(',').map((x) => x.trim()).filter(Boolean);
  };
  const words = { 'Direction::Inbound': 'inbound', 'Direction::Outbound': 'outbound', 'Direction::Unknown': 'unknown' };
  assert.deepEqual(table('DIRECTIONS').map((d) => words[d]), rows.DIRECTIONS);
  assert.deepEqual(table('HTTP_VERSIONS').map((v) => JSON.parse(v)), rows.HTTP_VERSIONS);
  assert.deepEqual(rows.BODY_ENCODINGS, ['utf8', 'base64']);
});
