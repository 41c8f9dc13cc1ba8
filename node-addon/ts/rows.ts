// Rows → messages. When the callback is the run's only output, the engine sends each message
// as a row: a JSON array of its values by position (engine/src/js_rows.rs has the layout and
// says why: JSON.parse builds arrays in about half the time it takes for keyed objects, and
// the JavaScript thread is the library's bottleneck). This file turns a row back into the
// schema v1 object, key for key and in the same order as JSON.parse of the CLI's line for the
// same message (test/parity.test.js holds the two to each other on real captures).
import type { HttpHeaders, HttpMessage, Pod } from './types';

/** Element 21 of a row: the rarer fields a message has, only those it has. */
interface RareFields {
  streamId?: number;
  trailers?: HttpHeaders;
  decodedBodySize?: number;
  tunnel?: true;
  parseError?: string;
}

/** A message as the engine sends it to the library (engine/src/js_rows.rs). */
export type Row = [
  kind: 0 | 1,
  connectionId: string,
  sequence: number,
  timestamp: string,
  endTimestamp: string,
  sourceIp: string,
  sourcePort: number,
  destinationIp: string,
  destinationPort: number,
  direction: HttpMessage['direction'],
  methodOrStatusCode: string | number,
  urlOrStatusMessage: string,
  httpVersion: HttpMessage['httpVersion'],
  headers: HttpHeaders,
  body: string,
  bodyEncoding: HttpMessage['bodyEncoding'],
  bodySize: number,
  truncated: boolean,
  incomplete: boolean,
  latencyMs: number | null,
  pod: Pod | null,
  rare?: RareFields,
];

/** Turns every row of `rows` into its message, in place; returns the same array. */
export function messagesOfRows(rows: unknown[]): HttpMessage[] {
  for (let i = 0; i < rows.length; i++) rows[i] = messageOfRow(rows[i] as Row);
  return rows as HttpMessage[];
}

/**
 * The message of one row. The common case (no rare field) is one object literal, so every
 * message gets the same few hidden classes; the schema's key order is the literal's.
 */
export function messageOfRow(r: Row): HttpMessage {
  if (r.length > 21) return withRareFields(r);
  let m: HttpMessage;
  if (r[0] === 0) {
    m = {
      type: 'request',
      connectionId: r[1],
      sequence: r[2],
      timestamp: r[3],
      endTimestamp: r[4],
      source: { ip: r[5], port: r[6] },
      destination: { ip: r[7], port: r[8] },
      direction: r[9],
      method: r[10] as string,
      url: r[11],
      httpVersion: r[12],
      headers: r[13],
      body: r[14],
      bodyEncoding: r[15],
      bodySize: r[16],
      truncated: r[17],
      incomplete: r[18],
    };
  } else {
    m = {
      type: 'response',
      connectionId: r[1],
      sequence: r[2],
      timestamp: r[3],
      endTimestamp: r[4],
      source: { ip: r[5], port: r[6] },
      destination: { ip: r[7], port: r[8] },
      direction: r[9],
      statusCode: r[10] as number,
      statusMessage: r[11],
      httpVersion: r[12],
      headers: r[13],
      body: r[14],
      bodyEncoding: r[15],
      bodySize: r[16],
      truncated: r[17],
      incomplete: r[18],
    };
    if (r[19] !== null) m.latencyMs = r[19];
  }
  if (r[20] !== null) m.pod = r[20];
  return m;
}

/** A row with rare fields: built key by key, each optional one where the schema puts it. */
function withRareFields(r: Row): HttpMessage {
  const x = r[21] ?? {};
  const m: Record<string, unknown> = {
    type: r[0] === 0 ? 'request' : 'response',
    connectionId: r[1],
    sequence: r[2],
    timestamp: r[3],
    endTimestamp: r[4],
    source: { ip: r[5], port: r[6] },
    destination: { ip: r[7], port: r[8] },
    direction: r[9],
  };
  if (r[0] === 0) {
    m.method = r[10];
    m.url = r[11];
  } else {
    m.statusCode = r[10];
    m.statusMessage = r[11];
  }
  m.httpVersion = r[12];
  if (x.streamId !== undefined) m.streamId = x.streamId;
  m.headers = r[13];
  if (x.trailers !== undefined) m.trailers = x.trailers;
  m.body = r[14];
  m.bodyEncoding = r[15];
  m.bodySize = r[16];
  if (x.decodedBodySize !== undefined) m.decodedBodySize = x.decodedBodySize;
  if (x.tunnel !== undefined) m.tunnel = x.tunnel;
  m.truncated = r[17];
  m.incomplete = r[18];
  if (x.parseError !== undefined) m.parseError = x.parseError;
  if (r[19] !== null) m.latencyMs = r[19];
  if (r[20] !== null) m.pod = r[20];
  return m as unknown as HttpMessage;
}
