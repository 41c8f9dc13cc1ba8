// Loads the native addon, and only that (create-neon's split: this file finds the
// binary, index.ts offers the typed API). The binary is `index.node` at the package
// root; TCP_SNIFFER_NATIVE overrides the path (tests of a different build).
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
    deliver: ((lines: string) => number) | undefined,
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

// eslint-disable-next-line @typescript-eslint/no-require-imports
export const native: Native = require(
  process.env.TCP_SNIFFER_NATIVE || path.join(__dirname, '..', 'index.node'),
) as Native;
