// Splits a locally submitted message (standard input) into header fields and
// body lines. Lines end with LF; a CR right before the LF is dropped, and body
// lines are re-terminated with CRLF for the data file. Any other CR (a bare
// CR) becomes a line end in the body and a space in a header, because an SMTP
// next hop, posthorn's own server included, rejects a bare CR in DATA. A NUL
// byte in a header line is dropped, as sendmail's collect() drops it. The
// body keeps its NUL bytes, as sendmail's does.

import { parseHeaderName } from '../smtp/datareader';

const LF = 0x0a;
const CR = 0x0d;

export class SubmissionReader {
  readonly headers: string[] = [];
  headersTooLong = false;
  /** True once a line with a single "." ended the message. */
  ended = false;

  private partial: Buffer[] = [];
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
      this.partial.push(chunk.subarray(start, lf));
      start = lf + 1;
      const line = Buffer.concat(this.partial);
      this.partial = [];
      this.line(line, out);
    }
    if (!this.ended && start < chunk.length) this.partial.push(chunk.subarray(start));
    return out;
  }

  /** Handles a last line without LF at end of input. */
  finish(): Buffer[] {
    const out: Buffer[] = [];
    if (!this.ended && this.partial.length > 0) {
      const line = Buffer.concat(this.partial);
      this.partial = [];
      if (line.length > 0) this.line(line, out);
    }
    return out;
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
