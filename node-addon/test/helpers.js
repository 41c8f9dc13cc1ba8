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
 * Whether this run is CI, read as every test in every language of the project reads it
 * (README, "Testing"): CI set to anything but "", "0" or "false" (any case). Under CI nothing
 * is skipped.
 */
function isCI() {
  const v = (process.env.CI ?? '').trim().toLowerCase();
  return !['', '0', 'false'].includes(v);
}

/** How long a test waits for an event before it fails: generous (the machine is shared). */
const DEADLINE_MS = 60_000;

/**
 * Polls `check` (sync or async) until it returns a truthy value, and resolves with it; rejects
 * naming `what` once `timeoutMs` has passed. The one way tests wait for an event.
 */
async function waitFor(what, check, { timeoutMs = DEADLINE_MS, everyMs = 10 } = {}) {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const v = await check();
    if (v) return v;
    if (Date.now() > end) throw new Error(`gave up after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, everyMs));
  }
}

/**
 * Tests that need root (network namespaces, packet capture) call this first. Without
 * root it prints a loud skip notice — and fails when CI is set, since CI runs as root.
 * Returns true when the test may run.
 */
function requireRoot(t) {
  const isRoot = typeof process.getuid === 'function' && process.getuid() === 0;
  if (isRoot) return true;
  const msg = `needs root (network namespaces and packet capture): ${t.name}`;
  if (isCI()) {
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
    // Whole buffers, decoded once at the end: decoding chunk by chunk would turn a multi-byte
    // UTF-8 character split between two chunks into U+FFFD.
    const out = [];
    const err = [];
    child.stdout.on('data', (d) => out.push(d));
    child.stderr.on('data', (d) => err.push(d));
    const timer = opts.timeoutMs
      ? setTimeout(() => child.kill('SIGKILL'), opts.timeoutMs)
      : null;
    child.on('error', reject);
    child.on('close', (code, signal) => {
      if (timer) clearTimeout(timer);
      const stdout = Buffer.concat(out).toString('utf8');
      const stderr = Buffer.concat(err).toString('utf8');
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

module.exports = {
  pkgDir,
  repoDir,
  demoPcap,
  secretsPcap,
  sidecarJs,
  demoExchanges,
  isCI,
  DEADLINE_MS,
  waitFor,
  requireRoot,
  run,
  inNetns,
  jsonLines,
};
