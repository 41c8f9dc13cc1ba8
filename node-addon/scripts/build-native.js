#!/usr/bin/env node
// Builds the Rust addon (cargo, release) and copies it to index.node, where ts/load.ts
// looks for it. No neon CLI is needed: a Neon addon is a cdylib renamed to .node.
//   CARGO            cargo binary (default: cargo)
//   CARGO_TARGET_DIR the workspace's target directory (default: ../target)
//   TCP_SNIFFER_CARGO_PROFILE  release (default) or dev
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
// Copy to a temporary name and rename, so a running process never sees a half-written file.
const tmp = `${dest}.${process.pid}.tmp`;
fs.copyFileSync(lib, tmp);
fs.renameSync(tmp, dest);
console.error(`build-native: ${path.relative(process.cwd(), lib)} -> ${path.relative(process.cwd(), dest)}`);
