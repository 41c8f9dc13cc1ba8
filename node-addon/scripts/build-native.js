#!/usr/bin/env node
// Builds the Rust addon (cargo, release) and copies it to index.node, where ts/load.ts
// looks for it. No neon CLI is needed: a Neon addon is a cdylib renamed to .node.
//
// index.node is what the npm package ships, so it is stripped: its debug information
// (the release profile keeps line tables for backtraces) is split off into
// index.node.debug first (objcopy --only-keep-debug), and index.node gets a
// .gnu_debuglink to it. Both carry the same GNU build-id, so gdb, perf or eu-stack find
// the symbols for a core from a user when pointed at the .debug file (or a debuginfod
// store keyed by build-id). index.node.debug is not in the package ("files" in
// package.json); keep it with the release that was published.
//   CARGO            cargo binary (default: cargo)
//   CARGO_TARGET_DIR the workspace's target directory (default: ../target)
//   TCP_SNIFFER_CARGO_PROFILE  release (default) or dev
//   TCP_SNIFFER_STRIP          0 keeps index.node unstripped (default: stripped)
//   OBJCOPY          objcopy binary (default: objcopy, from binutils)
'use strict';
const { spawnSync } = require('node:child_process');
const fs = require('node:fs');
const path = require('node:path');

const pkgDir = path.resolve(__dirname, '..');
const workspace = path.resolve(pkgDir, '..');
const profile = process.env.TCP_SNIFFER_CARGO_PROFILE || 'release';
const cargo = process.env.CARGO || 'cargo';
const args = ['build', '-p', 'tcp-sniffer-node'];
if (profile === 'release') args.push('--release');
else if (profile !== 'dev') args.push('--profile', profile);
if (fs.existsSync(path.join(workspace, 'Cargo.lock')) && process.env.TCP_SNIFFER_CARGO_LOCKED !== '0') {
  args.push('--locked');
}

console.error(`build-native: ${cargo} ${args.join(' ')}`);
const r = spawnSync(cargo, args, { cwd: workspace, stdio: 'inherit' });
if (r.error) {
  console.error(`build-native: cannot run ${cargo}: ${r.error.message}`);
  process.exit(1);
}
if (r.status !== 0) process.exit(r.status ?? 1);

const targetDir = process.env.CARGO_TARGET_DIR
  ? path.resolve(workspace, process.env.CARGO_TARGET_DIR)
  : path.join(workspace, 'target');
const outDir = path.join(targetDir, profile === 'dev' ? 'debug' : profile);
const lib = path.join(outDir, 'libtcp_sniffer_node.so');
const dest = path.join(pkgDir, 'index.node');
const debugDest = path.join(pkgDir, 'index.node.debug');
// Work on temporary names and rename, so a running process never sees a half-written file.
const tmp = `${dest}.${process.pid}.tmp`;
const tmpDebug = `${debugDest}.${process.pid}.tmp`;
fs.copyFileSync(lib, tmp);

/** Runs objcopy; exits with a message naming the tool when it is missing or fails. */
function objcopy(args) {
  const bin = process.env.OBJCOPY || 'objcopy';
  const r = spawnSync(bin, args, { stdio: 'inherit' });
  if (r.error || r.status !== 0) {
    fs.rmSync(tmp, { force: true });
    fs.rmSync(tmpDebug, { force: true });
    console.error(
      `build-native: ${bin} ${args.join(' ')} failed: ${r.error ? r.error.message : `exit ${r.status}`}; ` +
        'objcopy comes with binutils (apt-get install binutils, part of build-essential), ' +
        'or set TCP_SNIFFER_STRIP=0 for an unstripped development build',
    );
    process.exit(1);
  }
}

if (process.env.TCP_SNIFFER_STRIP !== '0') {
  objcopy(['--only-keep-debug', tmp, tmpDebug]);
  // --strip-unneeded keeps the dynamic symbols Node looks up (napi_register_module_v1).
  objcopy(['--strip-debug', '--strip-unneeded', tmp]);
  // The debuglink records the file's name (and CRC): link the final name.
  fs.renameSync(tmpDebug, debugDest);
  objcopy([`--add-gnu-debuglink=${debugDest}`, tmp]);
} else {
  fs.rmSync(debugDest, { force: true });
}
fs.renameSync(tmp, dest);
const mb = (f) => `${(fs.statSync(f).size / 1e6).toFixed(1)} MB`;
console.error(
  `build-native: ${path.relative(process.cwd(), lib)} -> ${path.relative(process.cwd(), dest)} (${mb(dest)})` +
    (fs.existsSync(debugDest) ? `, debug info -> ${path.relative(process.cwd(), debugDest)} (${mb(debugDest)})` : ''),
);
