// Reads the mail data after DATA (RFC 5321 4.1.1.4) as a byte-level state
// machine: it finds the end-of-data line, removes dot-stuffing (4.5.2), splits
// the header section off the body, and streams the body without buffering it.
//
// The body goes through a fast path (#fastBody) that jumps from line end to
// line end with Buffer.indexOf and hands out pieces of the input chunk without
// copying them. It leaves to the byte-at-a-time state machine what it cannot
// decide within the chunk: a dot or CR at the end of a chunk, ".\r" at the
// start of a line, and a bare CR or LF.
//
// Only CRLF ends a line. A bare LF or bare CR is kept as a byte of its line and
// only recorded. So "\n.\n", "\r.\r", "\n.\r\n" and "\r\n.\n" never end the
// data and never split one message into two, which is the attack of the 2023
// "SMTP smuggling" reports. The session decides whether to reject the message.

const CR = 0x0d;
const LF = 0x0a;
const DOT = 0x2e;
const NUL = 0x00;
const SP = 0x20;
const HT = 0x09;

/** Body parts of at least this size go out as events of their own, not copied. */
const LARGE_PART = 16 * 1024;

/**
 * Reason a message was read to its end but must not be accepted. No 'headers'
 * or 'body' event follows the point where the error was found. Body events
 * before it may already be out, so the session discards them.
 * - 'size': the message exceeded maxMessageSize (sendmail replies 552 5.2.3).
 * - 'headers': the header section exceeded maxHeadersLength.
 */
export type DataError = 'size' | 'headers';

export type DataEvent =
  | {
      kind: 'headers';
      /**
       * The header fields without their final CRLF and not unfolded: a folded
       * field keeps its continuation lines joined by "\r\n".
       */
      headers: string[];
    }
  | {
      kind: 'body';
      /** Body bytes after unstuffing, CRLF line ends kept. */
      data: Buffer;
    }
  | {
      kind: 'end';
      /** Bytes after the end-of-data line: commands pipelined behind the data. */
      rest: Buffer;
      /** Bytes of the message after unstuffing, without the end-of-data line. */
      size: number;
      error?: DataError;
      /** An LF without CR before it was seen. */
      sawBareLf: boolean;
      /** A CR without LF after it was seen. */
      sawBareCr: boolean;
      /** A NUL byte was seen. */
      sawNul: boolean;
      /** A line longer than maxLineLength (without CRLF) was seen. */
      sawLongLine: boolean;
    };

export interface DataReaderOptions {
  /** Maximum message size in bytes after unstuffing; 0 means unlimited. */
  maxMessageSize: number;
  /** Maximum size of the header section in bytes; 0 means unlimited. */
  maxHeadersLength: number;
  /** Line length in bytes above which sawLongLine is set; 0 or absent: never. */
  maxLineLength?: number;
}

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

const FIELD_NAME = /^([\x21-\x39\x3b-\x7e]+)[ \t]*:/;

/**
 * Returns the field name if the line starts a header field: printable ASCII
 * other than colon, then the colon. Blanks before the colon are tolerated,
 * because the obsolete syntax of RFC 5322 4.5.3 and sendmail allow them.
 * A line that starts with "--" is a MIME boundary and not a header.
 */
export function parseHeaderName(line: string): string | undefined {
  if (line.startsWith('--')) return undefined;
  const match = FIELD_NAME.exec(line);
  return match === null ? undefined : match[1];
}

export class DataReader {
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
  /**
   * Scratch space for body bytes from the byte-at-a-time path. It is copied
   * out into #bodyParts before any fast-path piece and at the end of push().
   */
  #body: Buffer = Buffer.allocUnsafe(256);
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
    this.#bodyLength = 0;
    // One scan for NUL per chunk. A NUL counts only if it comes before the end.
    const nul = this.#sawNul ? -1 : chunk.indexOf(NUL);

    const n = chunk.length;
    let i = 0;
    while (i < n) {
      if (!this.#inHeaders && (this.#at === At.LineStart || this.#at === At.InLine) && !this.#sawBareLf && !this.#sawBareCr) {
        // After a bare line end the session rejects the message, so the rest
        // of it may go byte by byte (this also keeps the scans linear).
        i = this.#fastBody(chunk, i);
        if (i >= n) break;
      }
      if (this.#step(chunk[i])) {
        if (nul >= 0 && nul <= i) this.#sawNul = true;
        this.#flushBody();
        events.push(this.#endEvent(chunk.subarray(i + 1)));
        this.#done = true;
        return events;
      }
      i++;
    }

    if (nul >= 0) this.#sawNul = true;
    this.#flushBody();
    return events;
  }

  /**
   * Reads body lines from `start` while the reader is at a line start or
   * inside a line. Returns the index of the first byte left to #step(), or
   * chunk.length. Each line costs two indexOf calls, and no byte is copied.
   */
  #fastBody(chunk: Buffer, start: number): number {
    this.#flushScratch();
    const n = chunk.length;
    const maxLine = this.#maxLineLength;
    let pos = start;
    // The bytes from `segment` to `pos` go out as one piece of the chunk.
    let segment = start;
    // The first LF and the first CR at or after `pos` (-1: none in the chunk).
    let lf = chunk.indexOf(LF, pos);
    let cr = chunk.indexOf(CR, pos);

    while (pos < n) {
      if (this.#at === At.LineStart && chunk[pos] === DOT) {
        // ".\r" may end the data, and a dot at the end of the chunk depends
        // on the next chunk. The state machine decides both.
        if (pos + 1 === n || chunk[pos + 1] === CR) break;
        // A stuffed dot (RFC 5321 4.5.2) is left out.
        this.#addPiece(chunk, segment, pos);
        segment = pos + 1;
        pos++;
      }
      this.#at = At.InLine;

      if (cr >= 0 && lf === cr + 1) {
        // A whole line ending in CRLF, without any other CR or LF.
        const length = cr - pos;
        if (maxLine > 0 && this.#lineLength + length > maxLine) this.#sawLongLine = true;
        this.#lineLength = 0;
        this.#countSize(length + 2);
        this.#at = At.LineStart;
        pos = lf + 1;
        lf = chunk.indexOf(LF, pos);
        cr = chunk.indexOf(CR, pos);
        continue;
      }

      // Either the line goes on in the next chunk, or it contains a CR or LF
      // that is not part of a CRLF. The bytes before the first CR or LF are
      // plain line content, and the state machine takes over at that byte.
      let stop = n;
      if (cr >= 0) stop = cr;
      if (lf >= 0 && lf < stop) stop = lf;
      this.#lineLength += stop - pos;
      this.#countSize(stop - pos);
      pos = stop;
      break;
    }

    this.#addPiece(chunk, segment, pos);
    return pos;
  }

  /** Hands out chunk[from, to) as body, unless an error stopped the body. */
  #addPiece(chunk: Buffer, from: number, to: number): void {
    if (to > from && this.#error === undefined) this.#bodyParts.push(chunk.subarray(from, to));
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

  /** Adds one byte of message content to the header section or the body. */
  #emit(c: number): void {
    this.#countSize(1);
    if (this.#error !== undefined) return;

    if (this.#inHeaders) {
      this.#addHeaderBytes(c);
    } else {
      if (this.#bodyLength === this.#body.length) this.#growScratch();
      this.#body[this.#bodyLength++] = c;
    }
  }

  #growScratch(): void {
    const bigger = Buffer.allocUnsafe(this.#body.length * 2);
    this.#body.copy(bigger, 0, 0, this.#bodyLength);
    this.#body = bigger;
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

  /**
   * Turns the body parts of this chunk into 'body' events. Large parts (pieces
   * of the input chunk) go out as they are. Runs of small parts, such as those
   * around stuffed dots, are joined into one event.
   */
  #flushBody(): void {
    this.#flushScratch();
    const parts = this.#bodyParts;
    if (parts.length === 0) return;
    this.#bodyParts = [];
    if (this.#error !== undefined) return;

    if (parts.length === 1) {
      this.#events.push({ kind: 'body', data: parts[0] });
      return;
    }
    let run: Buffer[] = [];
    let runBytes = 0;
    const endRun = (): void => {
      if (run.length === 0) return;
      this.#events.push({ kind: 'body', data: run.length === 1 ? run[0] : Buffer.concat(run, runBytes) });
      run = [];
      runBytes = 0;
    };
    for (const part of parts) {
      if (part.length >= LARGE_PART) {
        endRun();
        this.#events.push({ kind: 'body', data: part });
      } else {
        run.push(part);
        runBytes += part.length;
        if (runBytes >= LARGE_PART) endRun();
      }
    }
    endRun();
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
