#!/usr/bin/env node
// tcp-sniffer-sidecar: the process that runs in the sidecar container.
//
// Reads the settings from the environment (validated by the engine: the same rules and
// error text as createSniffer and the CLI), logs JSON lines on stderr, writes messages
// to stdout (when no OUTPUT_URL is set) and/or POSTs them to OUTPUT_URL, logs the
// counters every STATS_INTERVAL_MS, and on SIGTERM/SIGINT stops and drains.
//
// Exit codes: 0 stopped by a signal (or the replayed file ended), 1 capture failure or
// an internal error (a panic in an engine thread), 2 invalid settings.
// TCP_SNIFFER_TEST_PANIC is a fault-injection hook for tests (see the engine's `fatal`
// module); it is not a setting.
//
// Flags (for demos and tests; the container uses none):
//   --read FILE   replay a pcap/pcapng file instead of capturing live, then exit 0
//   --help        this text
import { native } from './load';
import { logLine, type SnifferStats, type StartInfo } from './index';

const USAGE = `tcp-sniffer-sidecar: capture HTTP/1.x on the pod's network and emit JSON messages.

Settings come from the environment: PORTS (required), INTERFACE, OUTPUT_URL,
ALLOW_INSECURE_OUTPUT_URL, OUTPUT_URL_AUTH_TOKEN, OUTPUT_STDOUT, SAMPLE_RATE, MAX_BODY_SIZE,
STDOUT_BODIES, MAX_CONCURRENT_CONNECTIONS, CONNECTION_IDLE_TIMEOUT_MS, REDACT_HEADERS,
REDACT_QUERY_PARAMS, REDACT_BODY_FIELDS, CAPTURE_BACKEND, WORKERS, LOG_LEVEL,
OUTPUT_BATCH_SIZE, OUTPUT_BATCH_WAIT_MS, OUTPUT_CONCURRENCY, OUTPUT_QUEUE_SIZE,
OUTPUT_DRAIN_TIMEOUT_MS, OUTPUT_RETRY_BASE_MS, OUTPUT_FORMAT (json or otlp), METRICS_ADDR
(Prometheus /metrics, default 0.0.0.0:9464, "off" for none), STATS_INTERVAL_MS (default 60000,
>= 1000);
placement from POD_NAME, POD_NAMESPACE, NODE_NAME.

Safe defaults: messages on stdout carry no body unless STDOUT_BODIES=true; OUTPUT_URL must
be https:// (or http:// to a loopback host) unless ALLOW_INSECURE_OUTPUT_URL=true; headers,
query parameters and body fields that hold credentials are redacted (REDACT_* add to the
default lists; "none" first drops them).

Flags:
  --read FILE   replay a pcap/pcapng file instead of capturing live, then exit
  --help        this text

Exit codes: 0 stopped (SIGTERM/SIGINT, or the file ended), 1 capture failure or an
internal error (an engine thread panicked; logged as an error line naming the thread),
2 invalid settings.
`;

/** Exits with `code` after stderr has taken the last lines written through Node. */
function exit(code: number): never {
  process.exit(code);
}

function fail(code: number, message: string, fields: Record<string, unknown> = {}): never {
  logLine('error', message, fields);
  exit(code);
}

function parseArgs(argv: string[]): { readFile?: string } {
  const out: { readFile?: string } = {};
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--help' || a === '-h') {
      process.stdout.write(USAGE);
      exit(0);
    } else if (a === '--read' || a === '-r') {
      const v = argv[++i];
      if (!v) fail(2, 'invalid argument --read: expected a file path');
      out.readFile = v;
    } else if (a.startsWith('--read=')) {
      out.readFile = a.slice('--read='.length);
    } else {
      fail(2, `unexpected argument ${JSON.stringify(a)}; see tcp-sniffer-sidecar --help`);
    }
  }
  return out;
}

/** `scheme://host[:port]` of a URL: what logs may show (no credentials, path or query). */
function endpointLabel(url: string): string {
  try {
    const u = new URL(url);
    return `${u.protocol}//${u.host}`;
  } catch {
    return '(invalid URL)';
  }
}

function main(): void {
  const args = parseArgs(process.argv.slice(2));
  const env = process.env;
  const production = env.NODE_ENV === 'production';
  const settingsEnv: Record<string, string> = {};
  for (const name of native.envNames()) {
    const v = env[name];
    if (v !== undefined) settingsEnv[name] = v;
  }

  // One validation: the engine's, on the env surface (errors name the variable).
  let normalized: Record<string, unknown>;
  let handle;
  try {
    const json = JSON.stringify(settingsEnv);
    normalized = JSON.parse(native.validate(json, 'env', production)) as Record<string, unknown>;
    handle = native.create(json, 'env', production, true, args.readFile);
  } catch (e) {
    fail(2, e instanceof Error ? e.message : String(e));
  }
  native.setLogLevel(String(normalized.logLevel ?? 'info'));
  // STATS_INTERVAL_MS is a row of the settings table (sidecar only), validated above.
  const interval = Number(normalized.statsIntervalMs);

  const outputs: string[] = [];
  const url = normalized.outputUrl as string | null;
  const stdout = (normalized.outputStdout as boolean | null) ?? url === null;
  if (stdout) outputs.push('stdout');
  if (url) outputs.push(endpointLabel(url));

  let stopping = false;
  /** A fatal error (even one during a signal's drain) makes the exit code 1. */
  let failed = false;
  let timer: NodeJS.Timeout | undefined;
  const stopAndExit = (code: number, reason: Record<string, unknown>): void => {
    if (stopping) return;
    stopping = true;
    if (timer) clearInterval(timer);
    logLine('info', 'stopping: flushing connections and draining outputs', reason);
    // A signal during start: let start finish (or fail) first.
    started
      .catch(() => undefined)
      .then(() => native.stop(handle))
      .then(
      (json) => {
        const stats = JSON.parse(json) as SnifferStats;
        logLine('info', 'stopped', { stats });
        exit(failed ? 1 : code);
      },
      (e: unknown) => fail(1, `stop failed: ${String(e)}`),
    );
  };

  const onEvent = (kind: 'error' | 'end', message?: string, code?: string): void => {
    if (kind === 'error') {
      const what = code === 'ERR_TCP_SNIFFER_INTERNAL' ? 'internal error' : 'capture failed';
      logLine('error', what, { error: message ?? 'unknown error', code });
      failed = true;
      stopAndExit(1, { reason: what });
      // The engine stops every thread and drains within the drain deadline; should the
      // stop still not finish, exit anyway: a dead sniffer must not linger.
      const drainMs = Number(normalized.outputDrainTimeoutMs ?? 5000);
      setTimeout(() => {
        logLine('error', 'stop did not finish after a fatal error; exiting');
        exit(1);
      }, drainMs + 10_000).unref();
    } else {
      stopAndExit(0, { reason: 'end of file' });
    }
  };

  for (const sig of ['SIGTERM', 'SIGINT'] as const) {
    process.on(sig, () => {
      if (stopping) {
        logLine('warn', `second ${sig} while draining; exiting now`);
        exit(1);
      }
      stopAndExit(0, { signal: sig });
    });
  }

  const started = native.start(handle, undefined, onEvent);
  started.then(
    (json) => {
      const info = JSON.parse(json) as StartInfo;
      logLine('info', 'tcp-sniffer sidecar started', {
        interface: normalized.interface,
        ports: normalized.ports,
        backend: info.backend,
        workers: info.workers,
        source: info.source,
        fallbackReason: info.fallbackReason,
        pod: info.pod,
        outputs,
        outputFormat: normalized.outputFormat,
        metricsAddr: info.metricsAddr,
        sampleRate: normalized.sampleRate,
        maxBodySize: normalized.maxBodySize,
        stdoutBodies: normalized.stdoutBodies,
        statsIntervalMs: interval,
        version: version(),
      });
      if (!stopping) {
        timer = setInterval(() => {
          logLine('info', 'stats', { stats: JSON.parse(native.stats(handle)) as SnifferStats });
        }, interval);
      }
    },
    (e: unknown) => {
      const code = (e as { code?: unknown } | null)?.code;
      fail(1, `cannot start capture: ${e instanceof Error ? e.message : String(e)}`, {
        interface: normalized.interface,
        ports: normalized.ports,
        ...(typeof code === 'string' ? { code } : {}),
      });
    },
  );
}

function version(): string {
  try {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    return (require('../package.json') as { version: string }).version;
  } catch {
    return 'unknown';
  }
}

main();
