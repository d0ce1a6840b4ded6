// Splits a locally submitted message (standard input) into header fields and
// body lines. Lines end with LF; a CR right before the LF is dropped, and body
// lines are re-terminated with CRLF for the data file. Any other CR (a bare
// CR) becomes a line end in the body and a space in a header, because an SMTP
// next hop, posthorn's own server included, rejects a bare CR in DATA. A NUL
// byte in a header line is dropped, as sendmail's collect() drops it. The
// body keeps its NUL bytes, as sendmail's does.
//
// A line is kept in memory up to MAX_HELD_LINE bytes only. A longer body line
// is written in pieces as it arrives. A longer header line that exceeds
// MaxHeadersLength makes the headers too large, and the rest of it is skipped.
// A longer line that is not a header starts the body. So input without line
// ends costs no more memory than a short line.

import { parseHeaderName } from '../smtp/datareader';

const LF = 0x0a;
const CR = 0x0d;

/** The bytes of one line held in memory; a longer line is handled in pieces (see above). */
export const MAX_HELD_LINE = 64 * 1024;

export class SubmissionReader {
  readonly headers: string[] = [];
  headersTooLong = false;
  /** True once a line with a single "." ended the message. */
  ended = false;

  private partial: Buffer[] = [];
  private partialSize = 0;
  /** Part of the current body line was written already: the rest is no line of its own. */
  private continued = false;
  /** The rest of the current line is dropped. */
  private skipping = false;
  /** The line held so far is known to be a header field longer than MAX_HELD_LINE. */
  private heldIsHeader = false;
  private inHeaders = true;
  private headerBytes = 0;
  private firstLine = true;

  constructor(
    private readonly ignoreDots: boolean,
    private readonly maxHeadersLength: number,
  ) {}

  /** Consumes a chunk and returns body data ready for the data file. */
  push(chunk: Buffer): Buffer[] {
    const out: Buffer[] = [];
    let start = 0;
    while (!this.ended) {
      const lf = chunk.indexOf(LF, start);
      if (lf < 0) break;
      this.hold(chunk.subarray(start, lf));
      start = lf + 1;
      this.endOfLine(this.takeHeld(), out);
    }
    if (!this.ended && start < chunk.length) {
      this.hold(chunk.subarray(start));
      if (this.partialSize > MAX_HELD_LINE) this.longLine(out);
    }
    return out;
  }

  /** Handles a last line without LF at end of input. */
  finish(): Buffer[] {
    const out: Buffer[] = [];
    if (!this.ended && (this.partialSize > 0 || this.continued)) this.endOfLine(this.takeHeld(), out);
    return out;
  }

  /** Drops the line held so far and the rest of it up to its LF. */
  private dropHeld(): void {
    this.takeHeld();
    this.skipping = true;
  }

  private hold(bytes: Buffer): void {
    if (this.skipping || bytes.length === 0) return;
    this.partial.push(bytes);
    this.partialSize += bytes.length;
  }

  private takeHeld(): Buffer {
    const line = Buffer.concat(this.partial);
    this.partial = [];
    this.partialSize = 0;
    this.heldIsHeader = false;
    return line;
  }

  /** Handles the bytes of a line up to its LF (or the end of input). */
  private endOfLine(raw: Buffer, out: Buffer[]): void {
    if (this.skipping) {
      this.skipping = false;
      return;
    }
    if (!this.continued) {
      this.line(raw, out);
      return;
    }
    // The end of a body line whose start was written already.
    this.continued = false;
    let line = raw.length > 0 && raw[raw.length - 1] === CR ? raw.subarray(0, raw.length - 1) : raw;
    if (line.indexOf(CR) >= 0) line = replaceCr(line, '\r\n');
    out.push(Buffer.concat([line, Buffer.from('\r\n')]));
  }

  /** Handles a line that passed MAX_HELD_LINE bytes without an LF. */
  private longLine(out: Buffer[]): void {
    if (!this.heldIsHeader) {
      const start = Buffer.concat(this.partial).subarray(0, MAX_HELD_LINE).toString('latin1');
      if (!this.continued && this.firstLine) {
        this.firstLine = false;
        if (start.startsWith('From ')) {
          this.dropHeld();
          return;
        }
      }
      const continuation = (start[0] === ' ' || start[0] === '\t') && this.headers.length > 0;
      if (!this.continued && this.inHeaders && (continuation || parseHeaderName(start) !== undefined)) this.heldIsHeader = true;
      else this.inHeaders = false;
    }
    if (this.heldIsHeader) {
      // Without a limit on the headers (MaxHeadersLength=0) the field stays whole.
      if (this.maxHeadersLength > 0 && this.headerBytes + this.partialSize > this.maxHeadersLength) {
        this.headersTooLong = true;
        this.dropHeld();
      }
      return;
    }
    const held = this.takeHeld();
    // A CR at the end may start the CRLF of the line end, so it waits for the next bytes.
    const keepCr = held[held.length - 1] === CR;
    let piece = keepCr ? held.subarray(0, held.length - 1) : held;
    if (keepCr) this.hold(Buffer.from([CR]));
    if (piece.indexOf(CR) >= 0) piece = replaceCr(piece, '\r\n');
    out.push(piece);
    this.continued = true;
  }

  private line(raw: Buffer, out: Buffer[]): void {
    let line = raw.length > 0 && raw[raw.length - 1] === CR ? raw.subarray(0, raw.length - 1) : raw;
    const bareCr = line.indexOf(CR) >= 0;

    if (!this.ignoreDots && line.length === 1 && line[0] === 0x2e) {
      this.ended = true;
      return;
    }
    if (this.firstLine) {
      this.firstLine = false;
      // A leading mbox "From " line is an envelope marker, not a header.
      if (line.subarray(0, 5).toString('latin1') === 'From ') return;
    }
    if (this.inHeaders && this.header(bareCr ? replaceCr(line, ' ') : line)) return;

    if (bareCr) line = replaceCr(line, '\r\n');
    out.push(Buffer.concat([line, Buffer.from('\r\n')]));
  }

  /** Takes a header line; returns false when the header section has ended. */
  private header(line: Buffer): boolean {
    const text = line.toString('latin1').replaceAll('\0', '');
    if (text === '') {
      this.inHeaders = false;
      return true;
    }

    const continuation = (text[0] === ' ' || text[0] === '\t') && this.headers.length > 0;
    if (!continuation && parseHeaderName(text) === undefined) {
      // Not a header: the body starts here, as sendmail decides.
      this.inHeaders = false;
      return false;
    }

    this.headerBytes += text.length + 2;
    if (this.maxHeadersLength > 0 && this.headerBytes > this.maxHeadersLength) {
      this.headersTooLong = true;
      return true;
    }
    if (continuation) this.headers[this.headers.length - 1] += '\r\n' + text;
    else this.headers.push(text);
    return true;
  }
}

/** Returns `line` with each CR replaced by `by`. */
function replaceCr(line: Buffer, by: string): Buffer {
  return Buffer.from(line.toString('latin1').replaceAll('\r', by), 'latin1');
}
