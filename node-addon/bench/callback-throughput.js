#!/usr/bin/env node
// Messages/s delivered to a JavaScript callback from a pcap replay (batch crossing and
// JSON.parse included), next to the same replay written to stdout by the CLI.
//
//   node bench/callback-throughput.js FILE.pcap [--ports 80,8080] [--runs 3] [--cli PATH]
//
// Prints a Markdown table and one JSON line. Run `npm run build` first (release addon);
// the CLI defaults to ../target/release/tcp-sniffer. Wall-clock times: run on an idle
// machine, and read the median.
'use strict';
const { spawnSync } = require('node:child_process');
const path = require('node:path');
const fs = require('node:fs');

const args = process.argv.slice(2);
const file = args.find((a) => !a.startsWith('--') && !/^\d|,/.test(a));
const opt = (name, dflt) => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? args[i + 1] : dflt;
};
if (!file || !fs.existsSync(file)) {
  console.error('usage: node bench/callback-throughput.js FILE.pcap [--ports 80,8080] [--runs 3] [--cli PATH]');
  process.exit(2);
}
const ports = opt('ports', '80,8080');
const runs = Number(opt('runs', '3'));
const cli = opt('cli', path.resolve(__dirname, '..', '..', 'target', 'release', 'tcp-sniffer'));
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

// One replay into the callback, in a fresh process each time (no JIT warm-up carried over).
const child = `
  const { createSniffer } = require(${JSON.stringify(path.resolve(__dirname, '..'))});
  let n = 0, bytes = 0;
  const t0 = process.hrtime.bigint();
  const s = createSniffer({
    ports: ${JSON.stringify(ports)}.split(',').map(Number),
    readFile: ${JSON.stringify(path.resolve(file))},
    onHttpMessage: (m) => { n++; bytes += m.bodySize; },
  });
  s.on('end', () => {
    const secs = Number(process.hrtime.bigint() - t0) / 1e9;
    const st = s.stats();
    console.log(JSON.stringify({ n, secs, dropped: st.output.dropped_queue_full, messages: st.output.messages }));
  });
  s.start();
`;

// The crossing alone: the addon's raw deliver(chunks) with no JSON.parse (what the batch
// crossing costs, without turning the text into objects); messages counted by the engine.
const rawChild = `
  const { native } = require(${JSON.stringify(path.resolve(__dirname, '..', 'dist', 'load.js'))});
  const h = native.create(JSON.stringify({ ports: ${JSON.stringify(ports)}.split(',').map(Number), readFile: ${JSON.stringify(path.resolve(file))} }), 'library', false, false);
  let chunks = 0;
  const t0 = process.hrtime.bigint();
  native.start(h, (c) => { chunks += c.length; return 0; }, () => {
    const secs = Number(process.hrtime.bigint() - t0) / 1e9;
    native.stop(h).then((st) => console.log(JSON.stringify({ n: JSON.parse(st).output.delivered, chunks, secs })));
  });
`;

const jsRuns = [];
for (let i = 0; i < runs; i++) {
  const r = spawnSync(process.execPath, ['-e', child], { encoding: 'utf8' });
  if (r.status !== 0) {
    console.error(r.stderr);
    process.exit(1);
  }
  jsRuns.push(JSON.parse(r.stdout.trim().split('\n').pop()));
}

const rawRuns = [];
for (let i = 0; i < runs; i++) {
  const r = spawnSync(process.execPath, ['-e', rawChild], { encoding: 'utf8' });
  if (r.status !== 0) {
    console.error(r.stderr);
    process.exit(1);
  }
  rawRuns.push(JSON.parse(r.stdout.trim().split('\n').pop()));
}

const cliRuns = [];
for (let i = 0; i < runs; i++) {
  const t0 = process.hrtime.bigint();
  const r = spawnSync(cli, ['--read', file, '--ports', ports, '--stats'], {
    encoding: 'utf8',
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  const secs = Number(process.hrtime.bigint() - t0) / 1e9;
  if (r.status !== 0) {
    console.error(r.stderr);
    process.exit(1);
  }
  const stats = JSON.parse(r.stderr.trim().split('\n').pop());
  cliRuns.push({ n: stats.output.messages, secs });
}

const js = { n: jsRuns[0].n, secs: median(jsRuns.map((r) => r.secs)) };
const raw = { n: rawRuns[0].n, secs: median(rawRuns.map((r) => r.secs)) };
const out = { n: cliRuns[0].n, secs: median(cliRuns.map((r) => r.secs)) };
const size = (fs.statSync(file).size / 1e6).toFixed(1);
console.log(`| path (${path.basename(file)}, ${size} MB, median of ${runs}) | messages | seconds | messages/s |`);
console.log('|---|---:|---:|---:|');
console.log(`| JS callback (library, replay) | ${js.n} | ${js.secs.toFixed(2)} | ${Math.round(js.n / js.secs)} |`);
console.log(`| batch crossing only (raw text, no JSON.parse) | ${raw.n} | ${raw.secs.toFixed(2)} | ${Math.round(raw.n / raw.secs)} |`);
console.log(`| CLI --read > /dev/null (stdout) | ${out.n} | ${out.secs.toFixed(2)} | ${Math.round(out.n / out.secs)} |`);
console.log(
  JSON.stringify({
    file,
    runs,
    js: { ...js, perSec: js.n / js.secs, dropped: jsRuns.map((r) => r.dropped) },
    raw: { ...raw, perSec: raw.n / raw.secs },
    cli: { ...out, perSec: out.n / out.secs },
  }),
);
