// Loads the native addon, and only that (create-neon's split: this file finds the
// binary, index.ts offers the typed API). The binary is `index.node` at the package
// root, shipped prebuilt in the npm package (Linux x64, glibc >= 2.34, libpcap.so.0.8);
// TCP_SNIFFER_NATIVE overrides the path (tests of a different build). When it cannot be
// loaded, `require('tcp-sniffer')` throws an Error with code ERR_TCP_SNIFFER_LOAD that
// says what the machine lacks.
import * as path from 'node:path';

/** The raw functions the Rust addon exports (see node-addon/src/lib.rs). */
export interface Native {
  validate(config: string, surface: 'library' | 'env', production: boolean): string;
  create(
    config: string,
    surface: 'library' | 'env',
    production: boolean,
    sidecar: boolean,
    readFile?: string,
  ): NativeHandle;
  start(
    handle: NativeHandle,
    deliver: ((chunks: string[], rows: boolean) => number) | undefined,
    onEvent: (kind: 'error' | 'end', message?: string, code?: string) => void,
  ): Promise<string>;
  stop(handle: NativeHandle): Promise<string>;
  stats(handle: NativeHandle): string;
  log(level: string, message: string, fields?: string): void;
  setLogLevel(level: string): void;
  envNames(): string[];
  setPaused(handle: NativeHandle, paused: boolean): void;
}

/** An opaque native sniffer handle. */
export type NativeHandle = { readonly __nativeSniffer: unique symbol };

/** The addon, or an Error with code `ERR_TCP_SNIFFER_LOAD` naming the file and what is missing. */
function load(): Native {
  const file = process.env.TCP_SNIFFER_NATIVE || path.join(__dirname, '..', 'index.node');
  try {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    return require(file) as Native;
  } catch (e) {
    // The first line: Node appends the require stack, which says nothing here.
    const cause = (e instanceof Error ? e.message : String(e)).split('\n')[0];
    const hint = /libpcap/.test(cause)
      ? 'install libpcap (Debian/Ubuntu: apt-get install libpcap0.8; Fedora/RHEL: dnf install libpcap; Alpine is not supported: musl)'
      : 'the prebuilt addon runs on Linux x64 with glibc 2.34 or newer and libpcap.so.0.8; elsewhere build it from source (cargo and `npm run build` in the repository)';
    const err = new Error(`tcp-sniffer: cannot load its native addon ${file}: ${cause}; ${hint}`, {
      cause: e,
    }) as Error & { code: string };
    err.code = 'ERR_TCP_SNIFFER_LOAD';
    throw err;
  }
}

export const native: Native = load();
