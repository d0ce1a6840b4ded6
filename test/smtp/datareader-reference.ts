// The byte-at-a-time DataReader as it was before the indexOf fast path, kept as
// the reference that the property tests compare the fast reader with.

import { parseHeaderName, type DataError, type DataEvent, type DataReaderOptions } from '../../src/smtp/datareader';

const CR = 0x0d;
const LF = 0x0a;
const DOT = 0x2e;
const NUL = 0x00;
const SP = 0x20;
const HT = 0x09;

/** Position of the reader in the current line. */
const enum At {
  /** At the start of a line: right after CRLF, or at the start of the data. */
  LineStart,
  /** After a dot at the start of a line. */
  Dot,
  /** After ".\r" at the start of a line: one LF more ends the data. */
  DotCr,
  /** Inside a line. */
  InLine,
  /** After a CR inside a line, not yet known to be part of a CRLF. */
  Cr,
}

export class ReferenceDataReader {
  readonly #maxMessageSize: number;
  readonly #maxHeadersLength: number;
  readonly #maxLineLength: number;

  #at: At = At.LineStart;
  #inHeaders = true;
  #done = false;

  #size = 0;
  #lineLength = 0;
  #error: DataError | undefined;
  #sawBareLf = false;
  #sawBareCr = false;
  #sawNul = false;
  #sawLongLine = false;

  /**
   * Header section bytes so far, bounded by maxHeadersLength. The first line
   * that is not a header also counts until its CRLF shows that it is body.
   */
  // NOTE: with maxHeadersLength 0 only maxMessageSize bounds this buffer, so
  // both 0 let a client grow it without limit.
  #headerBytes: number[] = [];
  /** Body bytes of the chunk being read; handed out once per push(). */
  #body: Buffer = Buffer.alloc(0);
  #bodyLength = 0;
  /** Events of the chunk being read. */
  #events: DataEvent[] = [];
  /** Body parts of this chunk that did not go through #body. */
  #bodyParts: Buffer[] = [];

  /** Whether an LF without CR before it has been seen so far. */
  get sawBareLf(): boolean {
    return this.#sawBareLf;
  }

  /** Whether a CR without LF after it has been seen so far. */
  get sawBareCr(): boolean {
    return this.#sawBareCr;
  }

  constructor(opts: DataReaderOptions) {
    this.#maxMessageSize = opts.maxMessageSize;
    this.#maxHeadersLength = opts.maxHeadersLength;
    this.#maxLineLength = opts.maxLineLength ?? 0;
  }

  /** Reads one chunk; the last event of the message is 'end'. */
  push(chunk: Buffer): DataEvent[] {
    if (this.#done) throw new Error('DataReader.push() called after the end of the data');

    const events: DataEvent[] = [];
    this.#events = events;
    // Up to two held bytes (".\r" or "\r") may be released in this chunk.
    this.#body = Buffer.allocUnsafe(chunk.length + 2);
    this.#bodyLength = 0;

    for (let i = 0; i < chunk.length; i++) {
      const c = chunk[i];
      if (c === NUL) this.#sawNul = true;

      if (this.#at === At.InLine && !this.#inHeaders && c !== CR && c !== LF) {
        i = this.#copyRun(chunk, i) - 1;
        continue;
      }

      if (this.#step(c)) {
        this.#flushBody();
        events.push(this.#endEvent(chunk.subarray(i + 1)));
        this.#done = true;
        return events;
      }
    }

    this.#flushBody();
    return events;
  }

  /** Advances the state machine by one byte; returns true at the end of data. */
  #step(c: number): boolean {
    switch (this.#at) {
      case At.LineStart:
        if (c === DOT) {
          this.#at = At.Dot;
          return false;
        }
        this.#content(c);
        return false;

      case At.Dot:
        // The first dot of a line is removed (RFC 5321 4.5.2).
        if (c === CR) {
          this.#at = At.DotCr;
          return false;
        }
        this.#content(c);
        return false;

      case At.DotCr:
        if (c === LF) {
          if (this.#inHeaders) this.#endHeaders();
          return true;
        }
        // ".\r" followed by anything but LF: the CR was a bare CR.
        this.#at = At.InLine;
        this.#bareCr();
        this.#content(c);
        return false;

      case At.InLine:
        this.#content(c);
        return false;

      case At.Cr:
        if (c === LF) {
          this.#lineEnd();
          return false;
        }
        this.#at = At.InLine;
        this.#bareCr();
        this.#content(c);
        return false;
    }
  }

  /** Handles one byte of line content (a CR only starts a possible CRLF). */
  #content(c: number): void {
    if (c === CR) {
      this.#at = At.Cr;
      return;
    }
    if (c === LF) this.#sawBareLf = true;
    this.#at = At.InLine;
    this.#lineLength++;
    this.#emit(c);
  }

  #bareCr(): void {
    this.#sawBareCr = true;
    this.#lineLength++;
    this.#emit(CR);
  }

  #lineEnd(): void {
    if (this.#maxLineLength > 0 && this.#lineLength > this.#maxLineLength) {
      this.#sawLongLine = true;
    }
    this.#lineLength = 0;
    this.#at = At.LineStart;

    if (this.#inHeaders) {
      this.#headerLineEnd();
      return;
    }
    this.#emit(CR);
    this.#emit(LF);
  }

  /** Copies body bytes up to the next CR or LF straight into the output. */
  #copyRun(chunk: Buffer, start: number): number {
    let end = start;
    while (end < chunk.length) {
      const c = chunk[end];
      if (c === CR || c === LF) break;
      if (c === NUL) this.#sawNul = true;
      end++;
    }

    const length = end - start;
    this.#lineLength += length;
    this.#countSize(length);
    if (this.#error === undefined) {
      chunk.copy(this.#body, this.#bodyLength, start, end);
      this.#bodyLength += length;
    }
    return end;
  }

  /** Adds one byte of message content to the header section or the body. */
  #emit(c: number): void {
    this.#countSize(1);
    if (this.#error !== undefined) return;

    if (this.#inHeaders) {
      this.#addHeaderBytes(c);
    } else {
      this.#body[this.#bodyLength++] = c;
    }
  }

  #addHeaderBytes(...bytes: number[]): void {
    this.#headerBytes.push(...bytes);
    const limit = this.#maxHeadersLength;
    if (limit > 0 && this.#headerBytes.length > limit) {
      this.#error = 'headers';
      this.#headerBytes = [];
    }
  }

  #countSize(length: number): void {
    this.#size += length;
    if (this.#error === undefined && this.#maxMessageSize > 0 && this.#size > this.#maxMessageSize) {
      this.#error = 'size';
      this.#headerBytes = [];
    }
  }

  /**
   * Decides at the CRLF of a header-phase line whether the header section
   * goes on. It ends at an empty line, which belongs to neither part. It also
   * ends at the first line that is neither a field nor a continuation, and
   * that line becomes the first line of the body.
   */
  #headerLineEnd(): void {
    this.#countSize(2);
    if (this.#error !== undefined) return;

    const bytes = this.#headerBytes;
    const start = lastLineStart(bytes);
    if (start === bytes.length) {
      this.#endHeaders();
      return;
    }

    const first = bytes[start];
    const continuation = (first === SP || first === HT) && start > 0;
    const line = Buffer.from(bytes.slice(start)).toString('latin1');
    if (continuation || parseHeaderName(line) !== undefined) {
      this.#addHeaderBytes(CR, LF);
      return;
    }

    // Not a header line: it and everything after it is body. Its bytes were
    // already counted in the size.
    this.#headerBytes = bytes.slice(0, start);
    this.#endHeaders();
    this.#flushScratch();
    this.#bodyParts.push(Buffer.from([...bytes.slice(start), CR, LF]));
  }

  #endHeaders(): void {
    this.#inHeaders = false;
    if (this.#error !== undefined) return;

    const text = Buffer.from(this.#headerBytes).toString('latin1');
    this.#headerBytes = [];
    const headers = text === '' ? [] : splitFields(text);
    this.#events.push({ kind: 'headers', headers });
  }

  /** Moves the bytes written to #body so far into #bodyParts. */
  #flushScratch(): void {
    if (this.#bodyLength === 0) return;
    this.#bodyParts.push(Buffer.from(this.#body.subarray(0, this.#bodyLength)));
    this.#bodyLength = 0;
  }

  #flushBody(): void {
    this.#flushScratch();
    if (this.#bodyParts.length === 0) return;

    const data = Buffer.concat(this.#bodyParts);
    this.#bodyParts = [];
    if (this.#error === undefined) this.#events.push({ kind: 'body', data });
  }

  #endEvent(rest: Buffer): DataEvent {
    return {
      kind: 'end',
      rest: Buffer.from(rest),
      size: this.#size,
      error: this.#error,
      sawBareLf: this.#sawBareLf,
      sawBareCr: this.#sawBareCr,
      sawNul: this.#sawNul,
      sawLongLine: this.#sawLongLine,
    };
  }
}

/** Index of the first byte after the last CRLF in bytes, or 0. */
function lastLineStart(bytes: number[]): number {
  for (let i = bytes.length - 1; i > 0; i--) {
    if (bytes[i] === LF && bytes[i - 1] === CR) return i + 1;
  }
  return 0;
}

/** Splits the header section (lines joined by CRLF) into folded fields. */
function splitFields(text: string): string[] {
  const fields: string[] = [];
  for (const line of text.replace(/\r\n$/, '').split('\r\n')) {
    const last = fields.length - 1;
    if ((line.startsWith(' ') || line.startsWith('\t')) && last >= 0) {
      fields[last] += '\r\n' + line;
    } else {
      fields.push(line);
    }
  }
  return fields;
}
