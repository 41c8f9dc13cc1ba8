// The typed API of `tcp-sniffer`: createSniffer(config) → Sniffer.
//
// Everything that decides what a packet means runs in Rust (the engine); this file turns
// the addon's raw functions into an EventEmitter with promises, a callback and an async
// iterator. Configuration is validated once, by the engine; the only check made here is
// JavaScript's own: `onHttpMessage` must be a function.
//
// Messages cross from Rust in batches: one call of `deliver(chunks, rows)` per batch, where
// each chunk is a JSON array of whole messages (at most about 48 KiB; node-addon/src/js_output.rs
// says why), parsed with one JSON.parse each. When the callback is the only output the
// messages come as rows (arrays of values, turned into objects by rows.ts: far cheaper for
// JSON.parse), else as the schema's objects.
import { EventEmitter } from 'node:events';
import { native, type NativeHandle } from './load';
import { messagesOfRows, type BatchStrings } from './rows';
import type { HttpMessage, SnifferConfig, SnifferStats, StartInfo } from './types';

export type {
  Endpoint,
  HttpHeaders,
  HttpMessage,
  HttpRequestMessage,
  HttpResponseMessage,
  Pod,
  SnifferConfig,
  SnifferStats,
  StartInfo,
} from './types';

/**
 * The stable codes of every error the library throws, rejects with or emits. They are
 * public API: a code is never renamed or reused (new ones may be added). See the README,
 * "Errors", for what to do about each.
 *
 * | code | thrown by | meaning |
 * |---|---|---|
 * | `ERR_TCP_SNIFFER_CONFIG` | `createSniffer` | invalid configuration; the message names the setting and what it accepts |
 * | `ERR_TCP_SNIFFER_ARGUMENT` | `messages()` | an invalid argument to a method (not a setting) |
 * | `ERR_TCP_SNIFFER_PERMISSION` | `start()` | live capture needs `CAP_NET_RAW` (or root) |
 * | `ERR_TCP_SNIFFER_CAPTURE` | `start()`, `'error'` | live capture could not start (no such interface, interface down) or failed while running |
 * | `ERR_TCP_SNIFFER_FILE` | `start()` | `readFile` cannot be opened, or is not a pcap/pcapng file |
 * | `ERR_TCP_SNIFFER_OUTPUT` | `start()` | an output could not be set up at start (e.g. the TLS roots of `SSL_CERT_FILE` are unusable) |
 * | `ERR_TCP_SNIFFER_STATE` | `start()` | the sniffer was stopped (also after a failed start): create a new one |
 * | `ERR_TCP_SNIFFER_SYSTEM` | `start()`, `stop()` | the operating system refused a thread (process or cgroup thread limit) |
 * | `ERR_TCP_SNIFFER_INTERNAL` | `start()`, `stop()`, `'error'` | an engine thread panicked: a bug, please report it |
 * | `ERR_TCP_SNIFFER_LOAD` | `require('tcp-sniffer')` | the native addon cannot be loaded (not Linux x64 with glibc, or libpcap missing); a plain `Error`, since nothing of the library is loaded yet |
 */
export type SnifferErrorCode =
  | 'ERR_TCP_SNIFFER_CONFIG'
  | 'ERR_TCP_SNIFFER_ARGUMENT'
  | 'ERR_TCP_SNIFFER_PERMISSION'
  | 'ERR_TCP_SNIFFER_CAPTURE'
  | 'ERR_TCP_SNIFFER_FILE'
  | 'ERR_TCP_SNIFFER_OUTPUT'
  | 'ERR_TCP_SNIFFER_STATE'
  | 'ERR_TCP_SNIFFER_SYSTEM'
  | 'ERR_TCP_SNIFFER_INTERNAL'
  | 'ERR_TCP_SNIFFER_LOAD';

/** Every {@link SnifferErrorCode}, for code that checks codes at run time. */
export const ERROR_CODES: readonly SnifferErrorCode[] = Object.freeze([
  'ERR_TCP_SNIFFER_CONFIG',
  'ERR_TCP_SNIFFER_ARGUMENT',
  'ERR_TCP_SNIFFER_PERMISSION',
  'ERR_TCP_SNIFFER_CAPTURE',
  'ERR_TCP_SNIFFER_FILE',
  'ERR_TCP_SNIFFER_OUTPUT',
  'ERR_TCP_SNIFFER_STATE',
  'ERR_TCP_SNIFFER_SYSTEM',
  'ERR_TCP_SNIFFER_INTERNAL',
  'ERR_TCP_SNIFFER_LOAD',
] as const);

/**
 * Every error of the library: a stable {@link SnifferErrorCode} in `code`, and a message
 * written for the person who reads it. A fatal error that stopped a running sniffer (the
 * `'error'` event; an iterator throws it) has code `ERR_TCP_SNIFFER_CAPTURE` or
 * `ERR_TCP_SNIFFER_INTERNAL`; either way the sniffer stops: what was already queued is
 * delivered within `outputDrainTimeoutMs`, and `stop()` resolves with the final counters.
 */
export class SnifferError extends Error {
  constructor(
    readonly code: SnifferErrorCode,
    message: string,
  ) {
    super(message);
    this.name = 'SnifferError';
  }
}

/** An invalid configuration (code `ERR_TCP_SNIFFER_CONFIG`). `message` names the setting and what it accepts. */
export class SnifferConfigError extends SnifferError {
  declare readonly code: 'ERR_TCP_SNIFFER_CONFIG';
  constructor(message: string) {
    super('ERR_TCP_SNIFFER_CONFIG', message);
    this.name = 'SnifferConfigError';
  }
}

/** An error from the addon as a {@link SnifferError}: its code when it has a known one, else `ERR_TCP_SNIFFER_INTERNAL`. */
function fromNative(e: unknown): SnifferError {
  if (e instanceof SnifferError) return e;
  const message = e instanceof Error ? e.message : String(e);
  const code = (e as { code?: unknown } | null)?.code;
  if (code === 'ERR_TCP_SNIFFER_CONFIG') return new SnifferConfigError(message);
  const known = ERROR_CODES.find((c) => c === code);
  return new SnifferError(known ?? 'ERR_TCP_SNIFFER_INTERNAL', message);
}

/** Messages an async iterator buffers before it drops (and counts) new ones. */
export const DEFAULT_ITERATOR_BUFFER = 10_000;
/** A throwing callback is logged at most once per this interval (the rest are counted). */
const CALLBACK_ERROR_LOG_INTERVAL_MS = 10_000;

type State = 'idle' | 'starting' | 'running' | 'stopping' | 'stopped';

/** Options of {@link Sniffer.messages}. */
export interface IterateOptions {
  /** Messages buffered for a slow consumer before new ones are dropped and counted (default 10000). */
  bufferSize?: number;
}

/** Events of a {@link Sniffer}. */
export interface SnifferEvents {
  message: [message: HttpMessage];
  error: [error: SnifferError];
  stats: [stats: SnifferStats];
  end: [];
}

/** A bounded queue feeding one async iterator. */
class IteratorQueue {
  readonly items: HttpMessage[] = [];
  waiting: { resolve: (r: IteratorResult<HttpMessage>) => void; reject: (e: Error) => void } | null =
    null;
  done = false;
  error: Error | null = null;
  constructor(readonly bound: number) {}
}

/**
 * A passive HTTP/1.x observer. Create it with {@link createSniffer}.
 *
 * Events: `'message'` (each message), `'error'` (a fatal capture error; the sniffer then
 * stops), `'stats'` (the final counters, once stopped), `'end'` (with `readFile`: the
 * file is fully processed, every message delivered, and the sniffer stopped).
 */
export class Sniffer extends EventEmitter {
  #handle: NativeHandle;
  #callback: ((m: HttpMessage) => void) | undefined;
  /** Replaying a file: a full iterator pauses the replay instead of dropping. */
  #replay: boolean;
  #paused = false;
  #state: State = 'idle';
  #starting: Promise<StartInfo> | null = null;
  #stopping: Promise<SnifferStats> | null = null;
  #final: SnifferStats | null = null;
  #info: StartInfo | null = null;
  #iterators = new Set<IteratorQueue>();
  #iteratorDrops = 0;
  #lastCallbackLog = 0;
  #callbackLogHeld = 0;

  /** @internal Use {@link createSniffer}. */
  constructor(
    handle: NativeHandle,
    callback: ((m: HttpMessage) => void) | undefined,
    replay = false,
  ) {
    super();
    this.#handle = handle;
    this.#callback = callback;
    this.#replay = replay;
  }

  /** What `start()` set up (backend, workers, source), once started. */
  get info(): StartInfo | null {
    return this.#info;
  }

  /**
   * Starts capturing. Resolves once capture is running (calling it again meanwhile returns
   * the same promise); rejects with a {@link SnifferError} whose code says why. Once
   * `stop()` was called (or a start failed) it rejects with `ERR_TCP_SNIFFER_STATE`: a
   * sniffer runs once; create a new one.
   */
  start(): Promise<StartInfo> {
    if (this.#stopping || this.#state === 'stopping' || this.#state === 'stopped') {
      return Promise.reject(
        new SnifferError(
          'ERR_TCP_SNIFFER_STATE',
          'the sniffer was stopped (stop() was called, or start() failed); a sniffer runs once: create a new one with createSniffer()',
        ),
      );
    }
    if (this.#starting) return this.#starting;
    this.#state = 'starting';
    this.#starting = native
      .start(
        this.#handle,
        (chunks, rows) => this.#deliver(chunks, rows),
        (kind, message, code) => this.#onEvent(kind, message, code),
      )
      .then(
        (json) => {
          this.#info = JSON.parse(json) as StartInfo;
          if (this.#state === 'starting') this.#state = 'running';
          return this.#info;
        },
        (err: unknown) => {
          this.#state = 'stopped';
          this.#final = this.stats();
          const e = fromNative(err);
          this.#endIterators(e);
          throw e;
        },
      );
    return this.#starting;
  }

  /** Stops capture, drains in-flight messages, then resolves with the final counters. */
  stop(): Promise<SnifferStats> {
    if (this.#stopping) return this.#stopping;
    this.#stopping = this.#stop();
    return this.#stopping;
  }

  async #stop(): Promise<SnifferStats> {
    if (this.#state === 'starting' && this.#starting) {
      await this.#starting.catch(() => undefined);
    }
    if (this.#state === 'stopped' && this.#final) return this.#final;
    this.#state = 'stopping';
    const json = await native.stop(this.#handle).catch((e: unknown) => {
      throw fromNative(e);
    });
    this.#state = 'stopped';
    this.#final = this.#withJsCounters(JSON.parse(json));
    this.#endIterators(null);
    this.emit('stats', this.#final);
    return this.#final;
  }

  /** The counters so far (updated about every 250 ms, during a file replay too): packets, drops, connections, messages, losses by reason. */
  stats(): SnifferStats {
    if (this.#final) return this.#final;
    return this.#withJsCounters(JSON.parse(native.stats(this.#handle)));
  }

  /**
   * The messages as an async iterator with a bounded buffer. When the consumer falls
   * behind, live capture drops new messages for it (counted as
   * `output.dropped_iterator_full`); a file replay waits for it instead. The iterator sees messages
   * delivered after it is made; it starts the sniffer if it is not started yet, and ends
   * when the sniffer stops (it throws the capture error if one stopped it).
   */
  messages(options: IterateOptions = {}): AsyncIterableIterator<HttpMessage> {
    const bound = options.bufferSize ?? DEFAULT_ITERATOR_BUFFER;
    if (!Number.isInteger(bound) || bound < 1) {
      throw new SnifferError(
        'ERR_TCP_SNIFFER_ARGUMENT',
        `messages(): bufferSize: expected an integer >= 1, got ${String(bound)}`,
      );
    }
    const q = new IteratorQueue(bound);
    if (this.#state === 'stopped') q.done = true;
    else this.#iterators.add(q);
    if (this.#state === 'idle') {
      this.start().catch((e: Error) => this.#endIterators(e));
    }
    const remove = () => {
      this.#iterators.delete(q);
      q.done = true;
      q.items.length = 0;
    };
    const it: AsyncIterableIterator<HttpMessage> = {
      next: () => {
        const item = q.items.shift();
        if (this.#paused && q.items.length <= q.bound / 2) this.#maybeResume();
        if (item !== undefined) return Promise.resolve({ value: item, done: false });
        if (q.error) {
          const e = q.error;
          q.error = null;
          return Promise.reject(e);
        }
        if (q.done) return Promise.resolve({ value: undefined, done: true });
        return new Promise((resolve, reject) => {
          q.waiting = { resolve, reject };
        });
      },
      return: () => {
        remove();
        this.#maybeResume();
        return Promise.resolve({ value: undefined, done: true });
      },
      [Symbol.asyncIterator]() {
        return it;
      },
    };
    return it;
  }

  /** `for await (const m of sniffer)`: see {@link Sniffer.messages}. */
  [Symbol.asyncIterator](): AsyncIterableIterator<HttpMessage> {
    return this.messages();
  }

  /** One batch from Rust (JSON arrays of messages or of rows, in order): returns how many callbacks threw. */
  #deliver(chunks: string[], rows: boolean): number {
    let errors = 0;
    // Rows refer to strings met earlier in their batch, in any of its chunks (rows.ts).
    const strings: BatchStrings = [];
    for (const chunk of chunks) {
      const parsed = JSON.parse(chunk) as unknown[];
      errors += this.#dispatch(rows ? messagesOfRows(parsed, strings) : (parsed as HttpMessage[]));
    }
    return errors;
  }

  /** Hands `messages` to the callback, the listeners and the iterators: returns how many callbacks threw. */
  #dispatch(messages: HttpMessage[]): number {
    const cb = this.#callback;
    const listeners = this.listenerCount('message') > 0;
    let errors = 0;
    for (const m of messages) {
      if (cb) {
        try {
          cb(m);
        } catch (e) {
          errors++;
          this.#callbackFailed(e, 'onHttpMessage', m);
        }
      }
      if (listeners) {
        try {
          this.emit('message', m);
        } catch (e) {
          errors++;
          this.#callbackFailed(e, "'message' listener", m);
        }
      }
      for (const q of this.#iterators) {
        if (q.waiting) {
          const w = q.waiting;
          q.waiting = null;
          w.resolve({ value: m, done: false });
        } else if (q.items.length < q.bound) {
          q.items.push(m);
        } else if (this.#replay) {
          // Replay: keep what is already in flight (bounded by outputQueueSize) and
          // make the replay wait until the consumer catches up.
          q.items.push(m);
          if (!this.#paused) {
            this.#paused = true;
            native.setPaused(this.#handle, true);
          }
        } else {
          this.#iteratorDrops++;
        }
      }
    }
    return errors;
  }

  #callbackFailed(e: unknown, where: string, m: HttpMessage): void {
    const now = Date.now();
    if (now - this.#lastCallbackLog < CALLBACK_ERROR_LOG_INTERVAL_MS) {
      this.#callbackLogHeld++;
      return;
    }
    const suppressed = this.#callbackLogHeld;
    this.#lastCallbackLog = now;
    this.#callbackLogHeld = 0;
    const err = e instanceof Error ? e : new Error(String(e));
    logLine('error', `${where} threw; the message is counted as a callback error and capture goes on`, {
      error: err.stack ?? err.message,
      connectionId: m.connectionId,
      sequence: m.sequence,
      messageType: m.type,
      suppressed,
    });
  }

  #onEvent(kind: 'error' | 'end', message?: string, code?: string): void {
    if (kind === 'error') {
      const err =
        code === 'ERR_TCP_SNIFFER_INTERNAL'
          ? new SnifferError(code, `internal error: ${message ?? 'unknown error'}`)
          : new SnifferError('ERR_TCP_SNIFFER_CAPTURE', `capture failed: ${message ?? 'unknown error'}`);
      this.#endIterators(err);
      // Without an 'error' listener the engine's log line is the report: an observer
      // must not crash the application it observes.
      if (this.listenerCount('error') > 0) this.emit('error', err);
      this.stop().catch(() => undefined);
    } else {
      this.stop().then(
        () => this.emit('end'),
        () => this.emit('end'),
      );
    }
  }

  /** Resumes a paused replay once every iterator has room again. */
  #maybeResume(): void {
    if (!this.#paused) return;
    for (const q of this.#iterators) if (q.items.length > q.bound / 2) return;
    this.#paused = false;
    native.setPaused(this.#handle, false);
  }

  #endIterators(err: Error | null): void {
    for (const q of this.#iterators) {
      q.done = true;
      if (q.waiting) {
        const w = q.waiting;
        q.waiting = null;
        if (err) w.reject(err);
        else w.resolve({ value: undefined, done: true });
      } else if (err) {
        q.error = err;
      }
    }
    this.#iterators.clear();
    this.#maybeResume();
  }

  #withJsCounters(s: SnifferStats): SnifferStats {
    s.output.dropped_iterator_full = this.#iteratorDrops;
    return s;
  }

  // The EventEmitter methods, typed by {@link SnifferEvents}: an event name the sniffer
  // never emits (a typo such as 'mesage') or a listener of the wrong shape does not compile.
  override on<K extends keyof SnifferEvents>(event: K, listener: (...args: SnifferEvents[K]) => void): this {
    return super.on(event, listener as (...args: unknown[]) => void);
  }
  override once<K extends keyof SnifferEvents>(event: K, listener: (...args: SnifferEvents[K]) => void): this {
    return super.once(event, listener as (...args: unknown[]) => void);
  }
  override off<K extends keyof SnifferEvents>(event: K, listener: (...args: SnifferEvents[K]) => void): this {
    return super.off(event, listener as (...args: unknown[]) => void);
  }
  override addListener<K extends keyof SnifferEvents>(event: K, listener: (...args: SnifferEvents[K]) => void): this {
    return super.addListener(event, listener as (...args: unknown[]) => void);
  }
  override removeListener<K extends keyof SnifferEvents>(event: K, listener: (...args: SnifferEvents[K]) => void): this {
    return super.removeListener(event, listener as (...args: unknown[]) => void);
  }
  override prependListener<K extends keyof SnifferEvents>(event: K, listener: (...args: SnifferEvents[K]) => void): this {
    return super.prependListener(event, listener as (...args: unknown[]) => void);
  }
  override prependOnceListener<K extends keyof SnifferEvents>(event: K, listener: (...args: SnifferEvents[K]) => void): this {
    return super.prependOnceListener(event, listener as (...args: unknown[]) => void);
  }
  override emit<K extends keyof SnifferEvents>(event: K, ...args: SnifferEvents[K]): boolean {
    return super.emit(event, ...args);
  }
  override listenerCount<K extends keyof SnifferEvents>(event: K): number {
    return super.listenerCount(event);
  }
}

/** The config as the engine takes it: everything but the callback, as JSON. */
function engineConfig(config: Record<string, unknown>): string {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(config)) {
    if (k === 'onHttpMessage' || v === undefined) continue;
    // JSON cannot carry these; show the engine something it will name in its error.
    out[k] =
      typeof v === 'function' || typeof v === 'symbol'
        ? `[${typeof v}]`
        : typeof v === 'bigint'
          ? Number(v)
          : v;
  }
  return JSON.stringify(out);
}

function describe(v: unknown): string {
  if (v === null) return 'null';
  if (typeof v === 'string') return JSON.stringify(v);
  return typeof v;
}

/**
 * Creates a sniffer. Throws a {@link SnifferConfigError} naming the key when the
 * configuration is invalid (the engine's validation: the same text as the sidecar's and
 * the command line's).
 */
export function createSniffer(config: SnifferConfig): Sniffer {
  if (config === null || typeof config !== 'object' || Array.isArray(config)) {
    throw new SnifferConfigError(
      `invalid configuration: expected an object with at least "ports", got ${describe(config)}`,
    );
  }
  const cb = (config as { onHttpMessage?: unknown }).onHttpMessage;
  if (cb !== undefined && typeof cb !== 'function') {
    throw new SnifferConfigError(
      `invalid setting onHttpMessage: expected a function (message) => void, got ${describe(cb)}`,
    );
  }
  let handle: NativeHandle;
  try {
    handle = native.create(
      engineConfig(config as unknown as Record<string, unknown>),
      'library',
      process.env.NODE_ENV === 'production',
      false,
    );
  } catch (e) {
    throw new SnifferConfigError(e instanceof Error ? e.message : String(e));
  }
  return new Sniffer(
    handle,
    cb as ((m: HttpMessage) => void) | undefined,
    typeof config.readFile === 'string' && config.readFile !== '',
  );
}

/** Writes one JSON log line on stderr (`timestamp`, `level`, `message`, fields) via the engine's logger. */
export function logLine(
  level: 'error' | 'warn' | 'info' | 'debug',
  message: string,
  fields: Record<string, unknown> = {},
): void {
  native.log(level, message, JSON.stringify(fields));
}
