// Feeds bytes to the wire readers in chosen chunk splits, so that every test
// can run on the input whole, byte by byte and in random pieces.

import { DataReader, DataReaderOptions, DataEvent } from '../../src/smtp/datareader';

/** Cuts data at the given offsets (sorted, inside 1..length-1). */
export function splitAt(data: Buffer, cuts: number[]): Buffer[] {
  const pieces: Buffer[] = [];
  let start = 0;
  for (const cut of [...new Set(cuts)].sort((a, b) => a - b)) {
    if (cut <= start || cut >= data.length) continue;
    pieces.push(data.subarray(start, cut));
    start = cut;
  }
  pieces.push(data.subarray(start));
  return pieces;
}

export function bytewise(data: Buffer): Buffer[] {
  return [...data].map((b) => Buffer.from([b]));
}

/** What a DataReader produced for one message, gathered from its events. */
export interface DataOutcome {
  headers: string[] | undefined;
  body: Buffer;
  end: Extract<DataEvent, { kind: 'end' }> | undefined;
  /** Event kinds in order, with repeated 'body' collapsed. */
  order: string[];
}

export function readData(pieces: Buffer[], opts?: Partial<DataReaderOptions>): DataOutcome {
  const reader = new DataReader({ maxMessageSize: 0, maxHeadersLength: 0, ...opts });
  const outcome: DataOutcome = { headers: undefined, body: Buffer.alloc(0), end: undefined, order: [] };
  const body: Buffer[] = [];

  const trailing: Buffer[] = [];

  for (const piece of pieces) {
    // Bytes in pieces after the end belong to rest, as a session would see them.
    if (outcome.end !== undefined) {
      trailing.push(piece);
      continue;
    }
    for (const event of reader.push(piece)) {
      if (outcome.order[outcome.order.length - 1] !== event.kind) outcome.order.push(event.kind);
      if (event.kind === 'headers') outcome.headers = event.headers;
      else if (event.kind === 'body') body.push(event.data);
      else outcome.end = event;
    }
  }
  outcome.body = Buffer.concat(body);
  if (outcome.end !== undefined) {
    outcome.end = { ...outcome.end, rest: Buffer.concat([outcome.end.rest, ...trailing]) };
  }
  return outcome;
}

/** Dot-stuffs a message and appends the end-of-data line (RFC 5321 4.5.2). */
export function encodeData(message: Buffer): Buffer {
  const text = message.toString('latin1');
  const stuffed = text.replace(/(^|\r\n)\./g, '$1..');
  const ending = text === '' || text.endsWith('\r\n') ? '' : '\r\n';
  return Buffer.from(stuffed + ending + '.\r\n', 'latin1');
}
