// Splits the bytes of the SMTP command phase into lines (RFC 5321 2.3.8).
// Memory stays bounded: an overlong line is dropped as it arrives and only
// reported, once, when its line end comes in.

const LF = 0x0a;
const CR = 0x0d;

export type LineResult =
  | {
      kind: 'line';
      /** The line without its line end, decoded as latin1 (one char per byte). */
      text: string;
      /** The line ended with LF alone instead of CRLF. */
      bareLf: boolean;
    }
  | {
      kind: 'toolong';
      /** Length of the whole line in bytes, without its line end. */
      length: number;
    };

/** A line that was dropped because it exceeded maxLineLength. */
interface DroppedLine {
  length: number;
}

type Segment = Buffer | DroppedLine;

export class LineReader {
  readonly #maxLineLength: number;

  /**
   * Unread input in arrival order. A Buffer that is followed by a DroppedLine
   * always ends on a line end, because the overlong tail was cut off it.
   */
  #segments: Segment[] = [];

  /** Bytes since the last LF seen in the input, none of them read yet. */
  #tailLength = 0;

  /** The overlong line being dropped right now, until its LF arrives. */
  #dropping: { length: number; lastCr: boolean } | undefined;

  /** Bytes of the first segment already searched for LF without success. */
  #scanned = 0;

  constructor(opts: { maxLineLength: number }) {
    this.#maxLineLength = opts.maxLineLength;
  }

  /** Byte count of the input buffered and not yet returned by next(). */
  get pending(): number {
    let total = 0;
    for (const segment of this.#segments) {
      if (Buffer.isBuffer(segment)) total += segment.length;
    }
    return total;
  }

  push(chunk: Buffer): void {
    if (chunk.length === 0) return;

    if (this.#dropping !== undefined) {
      const rest = this.#continueDropping(chunk);
      if (rest === undefined || rest.length === 0) return;
      chunk = rest;
    }

    this.#append(chunk);
    const lastLf = chunk.lastIndexOf(LF);
    this.#tailLength = lastLf < 0 ? this.#tailLength + chunk.length : chunk.length - lastLf - 1;

    // A line of exactly maxLineLength bytes may still be waiting for the LF
    // of its CRLF, so the tail may hold one byte more than the limit.
    if (this.#tailLength > this.#maxLineLength + 1) this.#startDropping(chunk);
  }

  /** Returns the next complete line, or undefined until more input arrives. */
  next(): LineResult | undefined {
    while (this.#segments.length > 0) {
      const first = this.#segments[0];

      if (!Buffer.isBuffer(first)) {
        this.#segments.shift();
        return { kind: 'toolong', length: first.length };
      }

      const lf = first.indexOf(LF, this.#scanned);
      if (lf >= 0) return this.#takeLine(first, lf);

      if (first.length > 0 && this.#segments.length === 1) {
        this.#scanned = first.length;
        return undefined;
      }
      this.#segments.shift();
      this.#scanned = 0;
    }
    return undefined;
  }

  /**
   * Returns and removes every buffered byte that next() has not returned, for
   * the switch to DATA or to TLS. The reader starts over empty.
   */
  takeRest(): Buffer {
    // NOTE: the bytes of an overlong line that were already dropped are lost,
    // so a client that pipelines such a line after DATA loses it from the body.
    const buffers = this.#segments.filter((s): s is Buffer => Buffer.isBuffer(s));
    this.#segments = [];
    this.#tailLength = 0;
    this.#dropping = undefined;
    this.#scanned = 0;
    return Buffer.concat(buffers);
  }

  #append(chunk: Buffer): void {
    const last = this.#segments[this.#segments.length - 1];
    if (last !== undefined && Buffer.isBuffer(last)) {
      this.#segments[this.#segments.length - 1] = Buffer.concat([last, chunk]);
    } else {
      this.#segments.push(chunk);
    }
  }

  #takeLine(first: Buffer, lf: number): LineResult {
    const crlf = lf > 0 && first[lf - 1] === CR;
    const length = crlf ? lf - 1 : lf;

    const remaining = first.subarray(lf + 1);
    if (remaining.length > 0) this.#segments[0] = remaining;
    else this.#segments.shift();
    this.#scanned = 0;

    if (length > this.#maxLineLength) return { kind: 'toolong', length };
    return { kind: 'line', text: first.toString('latin1', 0, length), bareLf: !crlf };
  }

  /** Cuts the overlong tail off the last segment and starts counting it instead. */
  #startDropping(chunk: Buffer): void {
    const index = this.#segments.length - 1;
    const last = this.#segments[index] as Buffer;
    const kept = last.subarray(0, last.length - this.#tailLength);

    this.#dropping = { length: this.#tailLength, lastCr: chunk[chunk.length - 1] === CR };
    this.#tailLength = 0;
    if (kept.length > 0) {
      this.#segments[index] = kept;
    } else {
      this.#segments.pop();
      if (index === 0) this.#scanned = 0;
    }
  }

  /** Drops bytes until the LF of the overlong line; returns what follows it. */
  #continueDropping(chunk: Buffer): Buffer | undefined {
    const dropping = this.#dropping!;
    const lf = chunk.indexOf(LF);

    if (lf < 0) {
      dropping.length += chunk.length;
      dropping.lastCr = chunk[chunk.length - 1] === CR;
      return undefined;
    }

    const crBefore = lf > 0 ? chunk[lf - 1] === CR : dropping.lastCr;
    const length = dropping.length + lf - (crBefore ? 1 : 0);
    this.#segments.push({ length });
    this.#dropping = undefined;
    return chunk.subarray(lf + 1);
  }
}
