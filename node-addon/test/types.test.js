'use strict';
// The published TypeScript declarations are a contract that can fail: misspelt counters,
// event names and settings must not compile, and the stats type must match, key for key,
// what the real addon returns (so a counter the engine adds or renames fails here until
// ts/types.ts says so). One tsc run checks every file (tsc is slow on a shared machine).
const test = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { run, pkgDir, demoPcap } = require('./helpers');

const tsc = path.join(pkgDir, 'node_modules', 'typescript', 'bin', 'tsc');
const typeRoots = path.join(pkgDir, 'node_modules', '@types');
const dist = path.join(pkgDir, 'dist', 'index');
const apiTs = path.join(__dirname, 'types', 'api.ts');

/** The counters of a real run (a replay of the demo capture). */
async function realStats() {
  const { createSniffer } = require('..');
  const s = createSniffer({ ports: [8080], readFile: demoPcap });
  s.on('message', () => undefined);
  const ended = new Promise((resolve) => s.once('end', resolve));
  await s.start();
  await ended;
  const stats = await s.stop();
  assert.equal(stats.http.requests, 5);
  return stats;
}

let tmp;
/** Lines of api.ts that follow a `@ts-expect-error` directive (1-based). */
const expected = [];
/** tsc's result over every file: { code, output, errors: [{ file, line, ts, text }] }. */
let result;

test.before(async () => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'tcp-sniffer-types-'));
  // api.ts without its directives: every line after one must then be an error.
  const src = fs.readFileSync(apiTs, 'utf8').replaceAll("'../../dist/index'", JSON.stringify(dist));
  const stripped = src.split('\n').map((l, i) => {
    if (!/^\s*\/\/ @ts-expect-error/.test(l)) return l;
    expected.push(i + 2);
    return '';
  });
  fs.writeFileSync(path.join(tmp, 'stripped.ts'), stripped.join('\n'));
  // The real counters as an object literal typed SnifferStats: an extra key (a counter the
  // type lacks) and a missing key (one the engine no longer has) are both errors.
  const stats = await realStats();
  const statsFile = (name, value) =>
    fs.writeFileSync(
      path.join(tmp, name),
      `import type { SnifferStats } from ${JSON.stringify(dist)};\nexport const s: SnifferStats = ${JSON.stringify(value, null, 1)};\n`,
    );
  statsFile('exact.ts', stats);
  const extra = structuredClone(stats);
  extra.http.requests_v2 = 1;
  statsFile('extra.ts', extra);
  const missing = structuredClone(stats);
  delete missing.flow.segments;
  statsFile('missing.ts', missing);

  const files = [apiTs, ...['stripped.ts', 'exact.ts', 'extra.ts', 'missing.ts'].map((f) => path.join(tmp, f))];
  const r = await run(
    process.execPath,
    [tsc, '--noEmit', '--strict', '--module', 'commonjs', '--target', 'es2022', '--typeRoots', typeRoots, '--types', 'node', ...files],
    { cwd: tmp, timeoutMs: 240_000 },
  );
  const errors = [];
  for (const l of (r.stdout + r.stderr).split('\n')) {
    const m = /^(.*)\((\d+),\d+\): error (TS\d+): (.*)$/.exec(l);
    if (m) errors.push({ file: path.basename(m[1]), line: Number(m[2]), ts: m[3], text: m[4] });
  }
  result = { code: r.code, errors, output: r.stdout + r.stderr };
});

test.after(() => {
  if (tmp) fs.rmSync(tmp, { recursive: true, force: true });
});

const errorsIn = (file) => result.errors.filter((e) => e.file === file);

test('types: the type tests compile (every @ts-expect-error in test/types/api.ts is an error)', () => {
  assert.notEqual(result.code, null, result.output);
  assert.deepEqual(errorsIn('api.ts'), [], result.output);
});

test('types: without the @ts-expect-error lines each one is a real type error, stats().http.requsts among them', () => {
  assert.ok(expected.length >= 8, `found ${expected.length} directives`);
  const errs = errorsIn('stripped.ts');
  const lines = [...new Set(errs.map((e) => e.line))].sort((a, b) => a - b);
  assert.deepEqual(lines, expected, result.output);
  const typo = errs.find((e) => e.text.includes("'requsts'"));
  assert.ok(typo, result.output);
  // TS2339 "does not exist", or TS2551 when tsc also suggests the right name.
  assert.ok(['TS2339', 'TS2551'].includes(typo.ts), result.output);
  assert.match(typo.text, /^Property 'requsts' does not exist on type 'HttpStats'/);
  assert.ok(errs.some((e) => e.text.includes('"mesage"')), result.output);
});

test('types: SnifferStats names exactly the counters the addon returns', () => {
  assert.deepEqual(errorsIn('exact.ts'), [], `ts/types.ts and the engine's counters differ:\n${result.output}`);
  // The check can fail: a counter the type does not know, and one that is missing.
  assert.ok(errorsIn('extra.ts').some((e) => e.text.includes('requests_v2')), result.output);
  assert.ok(errorsIn('missing.ts').some((e) => e.text.includes("'segments'")), result.output);
});
