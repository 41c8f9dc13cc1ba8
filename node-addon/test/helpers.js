'use strict';
// Shared test helpers: paths, child processes, network namespaces, root checks.
const { spawn } = require('node:child_process');
const path = require('node:path');

const pkgDir = path.resolve(__dirname, '..');
const repoDir = path.resolve(pkgDir, '..');
const demoPcap = path.join(repoDir, 'tests', 'data', 'demo.pcap');
/** Four exchanges full of credentials, each secret value containing "SECRET" (scripts/gen-secrets-pcap.py). */
const secretsPcap = path.join(repoDir, 'tests', 'data', 'secrets.pcap');
const sidecarJs = path.join(pkgDir, 'dist', 'sidecar.js');

/** The messages of tests/data/demo.pcap, in order (type, method/status, url). */
const demoExchanges = [
  ['GET', '/api/users', 200],
  ['GET', '/stream', 200],
  ['POST', '/api/users', 201],
  ['GET', '/missing', 404],
  ['HEAD', '/health', 200],
];

/**
 * Tests that need root (network namespaces, packet capture) call this first. Without
 * root it prints a loud skip notice — and fails when CI is set, since CI runs as root.
 * Returns true when the test may run.
 */
function requireRoot(t) {
  const isRoot = typeof process.getuid === 'function' && process.getuid() === 0;
  if (isRoot) return true;
  const msg = `needs root (network namespaces and packet capture): ${t.name}`;
  if (process.env.CI) {
    throw new Error(`${msg} — CI must run as root`);
  }
  process.stderr.write(`\n!!!!!!!!!! SKIPPED: ${msg} !!!!!!!!!!\n\n`);
  t.skip(`SKIPPED (not root): ${msg}`);
  return false;
}

/** Runs a command; resolves with { code, signal, stdout, stderr }. */
function run(cmd, args, opts = {}) {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'], ...opts });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    const timer = opts.timeoutMs
      ? setTimeout(() => child.kill('SIGKILL'), opts.timeoutMs)
      : null;
    child.on('error', reject);
    child.on('close', (code, signal) => {
      if (timer) clearTimeout(timer);
      resolve({ code, signal, stdout, stderr });
    });
  });
}

/**
 * Runs `node script ...args` in a fresh network namespace (`unshare -n`) with `lo` up.
 * The namespace goes away with the process: nothing to clean up.
 */
function inNetns(script, args = [], opts = {}) {
  return run(
    'unshare',
    ['-n', '--', 'sh', '-c', 'ip link set lo up && exec "$@"', 'sh', process.execPath, script, ...args],
    { timeoutMs: 120_000, ...opts },
  );
}

/** Parses JSON lines; throws naming the first line that is not JSON. */
function jsonLines(text) {
  return text
    .split('\n')
    .filter((l) => l.trim() !== '')
    .map((l) => {
      try {
        return JSON.parse(l);
      } catch {
        throw new Error(`not a JSON line: ${JSON.stringify(l)}`);
      }
    });
}

module.exports = { pkgDir, repoDir, demoPcap, secretsPcap, sidecarJs, demoExchanges, requireRoot, run, inNetns, jsonLines };
