'use strict';
// Packaging: `npm pack` gives a tarball that another project installs, after which
// require('tcp-sniffer') works from that project's directory, types and bin included.
// The tarball ships the addon prebuilt and stripped (its debug info is split off into
// index.node.debug, which stays out of the package), so the install runs no build step:
// it is done here with a PATH that holds node and npm and nothing else (no cargo, rustc,
// cc or make).
const test = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { run, pkgDir, demoPcap } = require('./helpers');

/** Section names of an ELF file (readelf, from binutils like the objcopy the build uses). */
async function sections(file) {
  const r = await run('readelf', ['-S', '-W', file]);
  assert.equal(r.code, 0, r.stderr);
  return [...r.stdout.matchAll(/^\s*\[\s*\d+\]\s+(\S+)/gm)].map((m) => m[1]);
}

/** The GNU build-id of an ELF file. */
async function buildId(file) {
  const r = await run('readelf', ['-n', file]);
  assert.equal(r.code, 0, r.stderr);
  return /Build ID: ([0-9a-f]+)/.exec(r.stdout)?.[1];
}

/** A directory whose only commands are node and npm: PATH for an install by a user without a toolchain. */
function nodeOnlyPath(dir) {
  fs.mkdirSync(dir);
  fs.symlinkSync(process.execPath, path.join(dir, 'node'));
  // npm as found on this PATH (a link to npm-cli.js), run by this node.
  const npmOnPath = (process.env.PATH ?? '')
    .split(':')
    .map((d) => path.join(d, 'npm'))
    .find((f) => fs.existsSync(f));
  assert.ok(npmOnPath, 'npm is on PATH');
  const npmCli = fs.realpathSync(npmOnPath);
  fs.writeFileSync(path.join(dir, 'npm'), `#!/bin/sh\nexec ${JSON.stringify(process.execPath)} ${JSON.stringify(npmCli)} "$@"\n`, { mode: 0o755 });
  // npm runs lifecycle scripts with sh; a script that builds would need more than this.
  fs.symlinkSync('/bin/sh', path.join(dir, 'sh'));
  return dir;
}

test('package: the packed tarball installs and works from a fresh directory', { timeout: 300_000 }, async () => {
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'tcp-sniffer-pkg-'));
  try {
    // The build has run (npm test runs after npm run build): pack what it made.
    const pack = await run('npm', ['pack', '--ignore-scripts', '--json', '--pack-destination', tmp], { cwd: pkgDir });
    assert.equal(pack.code, 0, pack.stderr);
    const info = JSON.parse(pack.stdout)[0];
    const files = info.files.map((f) => f.path).sort();
    for (const f of ['index.node', 'dist/index.js', 'dist/index.d.ts', 'dist/load.js', 'dist/types.d.ts', 'dist/sidecar.js', 'package.json']) {
      assert.ok(files.includes(f), `${f} is in the tarball: ${files.join(', ')}`);
    }
    assert.ok(!files.some((f) => f.startsWith('src/') || f.startsWith('ts/') || f.startsWith('test/')), files.join(', '));
    assert.ok(!files.some((f) => f.endsWith('.debug')), `no debug info shipped: ${files.join(', ')}`);
    const tarball = path.join(tmp, info.filename);
    console.error(`package: ${info.filename} ${info.size} bytes packed, ${info.unpackedSize} unpacked`);

    // The addon is stripped; its debug info is in index.node.debug, with the same build-id.
    const addon = path.join(pkgDir, 'index.node');
    const secs = await sections(addon);
    assert.ok(!secs.some((n) => n.startsWith('.debug_')), `index.node has no debug sections: ${secs.join(' ')}`);
    assert.ok(!secs.includes('.symtab'), `index.node has no static symbol table: ${secs.join(' ')}`);
    assert.ok(secs.includes('.gnu_debuglink'), secs.join(' '));
    const debugFile = path.join(pkgDir, 'index.node.debug');
    assert.ok((await sections(debugFile)).some((n) => n === '.debug_line'), 'index.node.debug holds the line tables');
    assert.equal(await buildId(debugFile), await buildId(addon));
    // Loaded by dlopen, the addon must not claim static TLS: glibc has only a small
    // surplus of it for libraries loaded late, and a process that loads a few such
    // libraries fails with "cannot allocate memory in static TLS block". Its allocator,
    // mimalloc, is built with local-dynamic TLS for this (engine/Cargo.toml).
    const dyn = await run('readelf', ['-d', '-W', addon]);
    assert.equal(dyn.code, 0, dyn.stderr);
    assert.doesNotMatch(dyn.stdout, /STATIC_TLS/, `index.node needs static TLS:\n${dyn.stdout}`);
    // Stripped, the addon is a few MB (it was ~18 MB with line tables).
    assert.ok(fs.statSync(addon).size < 8e6, `index.node is ${fs.statSync(addon).size} bytes`);

    // No toolchain on PATH: the install must not need one.
    const bin = nodeOnlyPath(path.join(tmp, 'bin'));
    const env = { PATH: bin, HOME: tmp, npm_config_cache: path.join(tmp, 'npm-cache'), CARGO: '/nonexistent/cargo' };
    for (const tool of ['cargo', 'rustc', 'cc', 'make']) {
      const w = await run('/bin/sh', ['-c', `command -v ${tool}`], { env });
      assert.notEqual(w.code, 0, `${tool} is not on the install's PATH: ${w.stdout}`);
    }

    const project = path.join(tmp, 'app');
    fs.mkdirSync(project);
    fs.writeFileSync(path.join(project, 'package.json'), JSON.stringify({ name: 'app', version: '1.0.0', private: true }));
    const inst = await run(path.join(bin, 'npm'), ['install', '--offline', '--no-audit', '--no-fund', '--foreground-scripts', tarball], { cwd: project, env });
    assert.equal(inst.code, 0, inst.stdout + inst.stderr);
    const installed = path.join(project, 'node_modules', 'tcp-sniffer');
    assert.ok(fs.existsSync(path.join(installed, 'index.node')));
    assert.ok(!fs.existsSync(path.join(installed, 'index.node.debug')));

    const script = `
      const { createSniffer } = require('tcp-sniffer');
      const got = [];
      const s = createSniffer({ ports: [8080], readFile: ${JSON.stringify(demoPcap)}, onHttpMessage: (m) => got.push(m.type) });
      s.on('end', () => { console.log(JSON.stringify({ n: got.length })); });
      s.start();
    `;
    const r = await run(process.execPath, ['-e', script], { cwd: project, env, timeoutMs: 60_000 });
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(JSON.parse(r.stdout), { n: 10 });

    const sidecar = path.join(project, 'node_modules', '.bin', 'tcp-sniffer-sidecar');
    assert.ok(fs.existsSync(sidecar), 'the sidecar bin is installed');
    const b = await run(sidecar, ['--read', demoPcap], { cwd: project, env: { ...env, PORTS: '8080' }, timeoutMs: 60_000 });
    assert.equal(b.code, 0, b.stderr);
    assert.equal(b.stdout.trim().split('\n').length, 10);

    // The shipped types compile in a TypeScript consumer.
    const tsc = path.join(pkgDir, 'node_modules', 'typescript', 'bin', 'tsc');
    fs.writeFileSync(
      path.join(project, 'use.ts'),
      `import { createSniffer, type HttpMessage } from 'tcp-sniffer';
       const s = createSniffer({ ports: [8080], onHttpMessage: (m: HttpMessage) => {
         if (m.type === 'request') { const u: string = m.url; void u; }
         else { const c: number = m.statusCode; void c; }
       } });
       s.on('message', (m) => { const t: 'request' | 'response' = m.type; void t; });
       void s.stop();
      `,
    );
    const types = path.join(pkgDir, 'node_modules', '@types');
    const tc = await run(process.execPath, [tsc, '--noEmit', '--strict', '--module', 'commonjs', '--target', 'es2022', '--typeRoots', types, '--types', 'node', 'use.ts'], { cwd: project });
    assert.equal(tc.code, 0, tc.stdout + tc.stderr);
  } finally {
    fs.rmSync(tmp, { recursive: true, force: true });
  }
});
