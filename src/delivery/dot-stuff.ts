// Dot-stuffing for the DATA phase (RFC 5321 section 4.5.2), applied chunk by
// chunk so that a large data file never has to sit in memory as a whole.

const DOT = 0x2e;
const LF = 0x0a;
const CR = 0x0d;

export class DotStuffer {
  private atLineStart = true;
  private lastTwo: number[] = [];

  /** Returns `chunk` with a "." added before every line that starts with ".". */
  push(chunk: Buffer): Buffer {
    if (chunk.length === 0) return chunk;
    const parts: Buffer[] = [];
    let start = 0;
    if (this.atLineStart && chunk[0] === DOT) parts.push(Buffer.from('.'));

    for (let lf = chunk.indexOf(LF); lf >= 0; lf = chunk.indexOf(LF, lf + 1)) {
      if (chunk[lf + 1] === DOT) {
        parts.push(chunk.subarray(start, lf + 1), Buffer.from('.'));
        start = lf + 1;
      }
    }
    parts.push(chunk.subarray(start));

    this.atLineStart = chunk[chunk.length - 1] === LF;
    this.lastTwo = [...this.lastTwo, ...chunk.subarray(-2)].slice(-2);
    return parts.length === 1 ? chunk : Buffer.concat(parts);
  }

  /** Returns the end-of-data sequence, with a CRLF first if the text lacks one. */
  finish(): Buffer {
    const endsWithCrlf = this.lastTwo[0] === CR && this.lastTwo[1] === LF;
    const noText = this.lastTwo.length === 0;
    return Buffer.from(endsWithCrlf || noText ? '.\r\n' : '\r\n.\r\n');
  }
}
