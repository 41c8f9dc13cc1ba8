// Rows → messages. When the callback is the run's only output, the engine sends each message
// as a row: a JSON array of its values by position (engine/src/js_rows.rs has the layout and
// says why: JSON.parse builds arrays in about half the time it takes for keyed objects, and
// the JavaScript thread is the library's bottleneck). This file turns a row back into the
// schema v1 object, key for key and in the same order as JSON.parse of the CLI's line for the
// same message (test/parity.test.js holds the two to each other on real captures).
//
// The connection id and the two addresses (elements 1, 5 and 7) are strings the first time a
// batch has them and after that the index of that first time in the batch's table of such
// strings (`BatchStrings`): JSON.parse then makes one string per distinct value rather than
// one per message. The table is the batch's alone: `deliver` makes a new one per batch.
import type { HttpHeaders, HttpMessage, Pod } from './types';

/** Element 21 of a row: the rarer fields a message has, only those it has. */
interface RareFields {
  streamId?: number;
  trailers?: HttpHeaders;
  decodedBodySize?: number;
  tunnel?: true;
  parseError?: string;
}

/**
 * Row element 9 is an index into this table, element 12 one into HTTP_VERSIONS (or the
 * version's own string when the engine's table lacks it); element 15 is 0 for utf8, 1 for
 * base64; element 4 is 0 when endTimestamp equals timestamp. Why: JSON.parse makes a new
 * string for every string value, and these were a quarter of a row's strings. The tables
 * are engine/src/js_rows.rs's DIRECTIONS and HTTP_VERSIONS, in the same order.
 */
export const DIRECTIONS: readonly HttpMessage['direction'][] = ['inbound', 'outbound', 'unknown'];
export const HTTP_VERSIONS: readonly HttpMessage['httpVersion'][] = ['0.9', '1.0', '1.1', '2'];
export const BODY_ENCODINGS: readonly HttpMessage['bodyEncoding'][] = ['utf8', 'base64'];

const httpVersion = (v: number | HttpMessage['httpVersion']): HttpMessage['httpVersion'] =>
  typeof v === 'number' ? HTTP_VERSIONS[v] : v;

/**
 * Elements 1, 5 and 7 of a batch's rows, each as it first came (engine/src/js_rows.rs's
 * `RowStrings`): a number in one of those elements is an index here.
 */
export type BatchStrings = string[];

/**
 * Element `v` of a row: a string joins the batch's table, a number is an index into it.
 * Called for elements 1, 5 and 7 of each row in that order, rows in batch order: the
 * order in which the engine numbered them.
 */
function repeated(v: string | number, strings: BatchStrings): string {
  if (typeof v === 'number') return strings[v];
  strings.push(v);
  return v;
}

/** A message as the engine sends it to the library (engine/src/js_rows.rs). */
export type Row = [
  kind: 0 | 1,
  connectionId: string | number,
  sequence: number,
  timestamp: string,
  endTimestamp: string | 0,
  sourceIp: string | number,
  sourcePort: number,
  destinationIp: string | number,
  destinationPort: number,
  direction: number,
  methodOrStatusCode: string | number,
  urlOrStatusMessage: string,
  httpVersion: number | HttpMessage['httpVersion'],
  headers: HttpHeaders,
  body: string,
  bodyEncoding: 0 | 1,
  bodySize: number,
  truncated: boolean,
  incomplete: boolean,
  latencyMs: number | null,
  pod: Pod | null,
  rare?: RareFields,
];

/**
 * Turns every row of `rows` into its message, in place; returns the same array. `strings`
 * is the table of the batch the rows are from, shared by all its chunks (in order).
 */
export function messagesOfRows(rows: unknown[], strings: BatchStrings): HttpMessage[] {
  for (let i = 0; i < rows.length; i++) rows[i] = messageOfRow(rows[i] as Row, strings);
  return rows as HttpMessage[];
}

/**
 * The message of one row. The common case (no rare field) is one object literal, so every
 * message gets the same few hidden classes; the schema's key order is the literal's.
 */
export function messageOfRow(r: Row, strings: BatchStrings): HttpMessage {
  // In this order (see `repeated`).
  const connectionId = repeated(r[1], strings);
  const sourceIp = repeated(r[5], strings);
  const destinationIp = repeated(r[7], strings);
  if (r.length > 21) return withRareFields(r, connectionId, sourceIp, destinationIp);
  let m: HttpMessage;
  if (r[0] === 0) {
    m = {
      type: 'request',
      connectionId,
      sequence: r[2],
      timestamp: r[3],
      endTimestamp: r[4] === 0 ? r[3] : r[4],
      source: { ip: sourceIp, port: r[6] },
      destination: { ip: destinationIp, port: r[8] },
      direction: DIRECTIONS[r[9]],
      method: r[10] as string,
      url: r[11],
      httpVersion: httpVersion(r[12]),
      headers: r[13],
      body: r[14],
      bodyEncoding: BODY_ENCODINGS[r[15]],
      bodySize: r[16],
      truncated: r[17],
      incomplete: r[18],
    };
  } else {
    m = {
      type: 'response',
      connectionId,
      sequence: r[2],
      timestamp: r[3],
      endTimestamp: r[4] === 0 ? r[3] : r[4],
      source: { ip: sourceIp, port: r[6] },
      destination: { ip: destinationIp, port: r[8] },
      direction: DIRECTIONS[r[9]],
      statusCode: r[10] as number,
      statusMessage: r[11],
      httpVersion: httpVersion(r[12]),
      headers: r[13],
      body: r[14],
      bodyEncoding: BODY_ENCODINGS[r[15]],
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
function withRareFields(r: Row, connectionId: string, sourceIp: string, destinationIp: string): HttpMessage {
  const x = r[21] ?? {};
  const m: Record<string, unknown> = {
    type: r[0] === 0 ? 'request' : 'response',
    connectionId,
    sequence: r[2],
    timestamp: r[3],
    endTimestamp: r[4] === 0 ? r[3] : r[4],
    source: { ip: sourceIp, port: r[6] },
    destination: { ip: destinationIp, port: r[8] },
    direction: DIRECTIONS[r[9]],
  };
  if (r[0] === 0) {
    m.method = r[10];
    m.url = r[11];
  } else {
    m.statusCode = r[10];
    m.statusMessage = r[11];
  }
  m.httpVersion = httpVersion(r[12]);
  if (x.streamId !== undefined) m.streamId = x.streamId;
  m.headers = r[13];
  if (x.trailers !== undefined) m.trailers = x.trailers;
  m.body = r[14];
  m.bodyEncoding = BODY_ENCODINGS[r[15]];
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
