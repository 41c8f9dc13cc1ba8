'use strict';
// Packaging: `npm pack` gives a tarball that another project installs, after which
// require('tcp-sniffer') works from that project's directory, types and bin included.
const test = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { run, pkgDir, demoPcap } = require('./helpers');

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
    const tarball = path.join(tmp, info.filename);

    const project = path.join(tmp, 'app');
    fs.mkdirSync(project);
    fs.writeFileSync(path.join(project, 'package.json'), JSON.stringify({ name: 'app', version: '1.0.0', private: true }));
    const inst = await run('npm', ['install', '--offline', '--no-audit', '--no-fund', tarball], { cwd: project });
    assert.equal(inst.code, 0, inst.stderr);

    const script = `
      const { createSniffer } = require('tcp-sniffer');
      const got = [];
      const s = createSniffer({ ports: [8080], readFile: ${JSON.stringify(demoPcap)}, onHttpMessage: (m) => got.push(m.type) });
      s.on('end', () => { console.log(JSON.stringify({ n: got.length })); });
      s.start();
    `;
    const r = await run(process.execPath, ['-e', script], { cwd: project, timeoutMs: 60_000 });
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(JSON.parse(r.stdout), { n: 10 });

    const bin = path.join(project, 'node_modules', '.bin', 'tcp-sniffer-sidecar');
    assert.ok(fs.existsSync(bin), 'the sidecar bin is installed');
    const b = await run(bin, ['--read', demoPcap], { cwd: project, env: { PATH: process.env.PATH, PORTS: '8080' }, timeoutMs: 60_000 });
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
