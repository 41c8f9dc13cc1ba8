#!/usr/bin/env node
// Messages/s delivered to a JavaScript callback from a pcap replay (batch crossing and
// JSON.parse included), next to the same replay written to stdout by the CLI, and whether
// issue 14's target holds: the callback gets at least half the CLI's messages/s.
//
//   node bench/callback-throughput.js FILE.pcap [--ports 80,8080] [--runs 3] [--cli PATH]
//
// Prints a Markdown table, the target line ("JS callback msg/s vs CLI msg/s: … ratio R,
// target >= 0.5: met|NOT met") and, last, one JSON line (what perf/bench.sh keeps). Run
// `npm run build` first (release addon); the CLI defaults to $CARGO_TARGET_DIR/release/tcp-sniffer,
// else ../target/release/tcp-sniffer. Each run is a fresh process; rounds interleave the three
// paths (JS, raw crossing, CLI), so a machine whose load changes during the bench moves all
// three alike; the medians are compared. Wall-clock times: an idle machine gives the
// meaningful ratio. The JS thread's own CPU time is reported too (process.threadCpuUsage,
// Node ≥ 23.9; blank before): it is what the crossing costs the application's event loop.
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
/** The target: messages/s into the callback ÷ the CLI's messages/s to stdout, at least this. */
const TARGET_RATIO = 0.5;
const ports = opt('ports', '80,8080');
const runs = Number(opt('runs', '3'));
const repo = path.resolve(__dirname, '..', '..');
const cli = opt(
  'cli',
  path.join(path.resolve(repo, process.env.CARGO_TARGET_DIR || 'target'), 'release', 'tcp-sniffer'),
);
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

// The JavaScript thread's CPU seconds so far (null where Node lacks threadCpuUsage).
const threadCpu = `
  const threadCpu = () => {
    if (typeof process.threadCpuUsage !== 'function') return null;
    const u = process.threadCpuUsage();
    return (u.user + u.system) / 1e6;
  };
`;

// One replay into the callback, in a fresh process each time (no JIT warm-up carried over).
const child = `
  ${threadCpu}
  const { createSniffer } = require(${JSON.stringify(path.resolve(__dirname, '..'))});
  let n = 0, bytes = 0;
  const t0 = process.hrtime.bigint();
  const c0 = threadCpu();
  const s = createSniffer({
    ports: ${JSON.stringify(ports)}.split(',').map(Number),
    readFile: ${JSON.stringify(path.resolve(file))},
    onHttpMessage: (m) => { n++; bytes += m.bodySize; },
  });
  s.on('end', () => {
    const secs = Number(process.hrtime.bigint() - t0) / 1e9;
    const c1 = threadCpu();
    const st = s.stats();
    console.log(JSON.stringify({ n, secs, jsThreadCpu: c0 === null ? null : c1 - c0, dropped: st.output.dropped_queue_full, messages: st.output.messages }));
  });
  s.start();
`;

// The crossing alone: the addon's raw deliver(chunks) with no JSON.parse (what the batch
// crossing costs, without turning the text into objects); messages counted by the engine.
const rawChild = `
  ${threadCpu}
  const { native } = require(${JSON.stringify(path.resolve(__dirname, '..', 'dist', 'load.js'))});
  const h = native.create(JSON.stringify({ ports: ${JSON.stringify(ports)}.split(',').map(Number), readFile: ${JSON.stringify(path.resolve(file))} }), 'library', false, false);
  let chunks = 0;
  const t0 = process.hrtime.bigint();
  const c0 = threadCpu();
  native.start(h, (c) => { chunks += c.length; return 0; }, () => {
    const secs = Number(process.hrtime.bigint() - t0) / 1e9;
    const c1 = threadCpu();
    native.stop(h).then((st) => console.log(JSON.stringify({ n: JSON.parse(st).output.delivered, chunks, secs, jsThreadCpu: c0 === null ? null : c1 - c0 })));
  });
`;

function node(script) {
  const r = spawnSync(process.execPath, ['-e', script], { encoding: 'utf8' });
  if (r.status !== 0) {
    console.error(r.stderr);
    process.exit(1);
  }
  return JSON.parse(r.stdout.trim().split('\n').pop());
}

function cliRun() {
  const t0 = process.hrtime.bigint();
  const r = spawnSync(cli, ['--read', file, '--ports', ports, '--stats'], {
    encoding: 'utf8',
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  const secs = Number(process.hrtime.bigint() - t0) / 1e9;
  if (r.error || r.status !== 0) {
    console.error(`${cli}: ${r.error ? r.error.message : r.stderr}`);
    process.exit(1);
  }
  const stats = JSON.parse(r.stderr.trim().split('\n').pop());
  return { n: stats.output.messages, secs };
}

const jsRuns = [];
const rawRuns = [];
const cliRuns = [];
for (let i = 0; i < runs; i++) {
  jsRuns.push(node(child));
  rawRuns.push(node(rawChild));
  cliRuns.push(cliRun());
}

const cpuOf = (rs) => (rs.every((r) => typeof r.jsThreadCpu === 'number') ? median(rs.map((r) => r.jsThreadCpu)) : null);
const js = { n: jsRuns[0].n, secs: median(jsRuns.map((r) => r.secs)), jsThreadCpu: cpuOf(jsRuns) };
const raw = { n: rawRuns[0].n, secs: median(rawRuns.map((r) => r.secs)), jsThreadCpu: cpuOf(rawRuns) };
const out = { n: cliRuns[0].n, secs: median(cliRuns.map((r) => r.secs)) };
if (js.n !== out.n) {
  console.error(`callback got ${js.n} messages, the CLI wrote ${out.n}: the paths disagree, the rates are not comparable`);
  process.exit(1);
}
const rate = (r) => r.n / r.secs;
const ratio = rate(js) / rate(out);
const met = ratio >= TARGET_RATIO;
const cpu = (r) => (r.jsThreadCpu === null ? '' : r.jsThreadCpu.toFixed(2));
const size = (fs.statSync(file).size / 1e6).toFixed(1);
console.log(`| path (${path.basename(file)}, ${size} MB, median of ${runs}, interleaved) | messages | seconds | messages/s | JS thread CPU s |`);
console.log('|---|---:|---:|---:|---:|');
console.log(`| JS callback (library, replay) | ${js.n} | ${js.secs.toFixed(2)} | ${Math.round(rate(js))} | ${cpu(js)} |`);
console.log(`| batch crossing only (raw chunks, no JSON.parse) | ${raw.n} | ${raw.secs.toFixed(2)} | ${Math.round(rate(raw))} | ${cpu(raw)} |`);
console.log(`| CLI --read > /dev/null (stdout) | ${out.n} | ${out.secs.toFixed(2)} | ${Math.round(rate(out))} | |`);
console.log('');
console.log(
  `JS callback msg/s vs CLI msg/s: ${Math.round(rate(js))} vs ${Math.round(rate(out))}, ratio ${ratio.toFixed(2)}, ` +
    `target >= ${TARGET_RATIO}: ${met ? 'met' : 'NOT met'}`,
);
console.log(
  JSON.stringify({
    file,
    runs,
    js: { ...js, perSec: rate(js), dropped: jsRuns.map((r) => r.dropped), runs: jsRuns },
    raw: { ...raw, perSec: rate(raw) },
    cli: { ...out, perSec: rate(out), runs: cliRuns },
    ratio,
    target: TARGET_RATIO,
    met,
  }),
);
