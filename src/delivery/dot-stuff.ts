// Dot-stuffing for the DATA phase (RFC 5321 section 4.5.2), applied chunk by
// chunk so that a large data file never has to sit in memory as a whole.

const DOT = 0x2e;
const LF = 0x0a;
const CR = 0x0d;

const DOT_BUFFER = Buffer.from('.');
const LF_DOT = Buffer.from('\n.');

export class DotStuffer {
  private atLineStart = true;
  /** The last two bytes pushed so far (-1 where there were none). */
  private last = -1;
  private beforeLast = -1;

  /** Returns `chunk` with a "." added before every line that starts with ".". */
  push(chunk: Buffer): Buffer {
    const parts = this.pushParts(chunk);
    return parts.length === 1 ? parts[0] : Buffer.concat(parts);
  }

  /**
   * Dot-stuffs like push() but returns the pieces unjoined: views of `chunk`
   * with a one-byte "." between them where a line starts with a dot. It
   * searches for "\n." only, so lines without a leading dot cost nothing.
   */
  pushParts(chunk: Buffer): Buffer[] {
    if (chunk.length === 0) return [chunk];
    const parts: Buffer[] = [];
    if (this.atLineStart && chunk[0] === DOT) parts.push(DOT_BUFFER);

    let start = 0;
    for (let at = chunk.indexOf(LF_DOT); at >= 0; at = chunk.indexOf(LF_DOT, at + 2)) {
      parts.push(chunk.subarray(start, at + 1), DOT_BUFFER);
      start = at + 1;
    }
    parts.push(start === 0 ? chunk : chunk.subarray(start));

    const n = chunk.length;
    this.atLineStart = chunk[n - 1] === LF;
    this.beforeLast = n >= 2 ? chunk[n - 2] : this.last;
    this.last = chunk[n - 1];
    return parts;
  }

  /** Returns the end-of-data sequence, with a CRLF first if the text lacks one. */
  finish(): Buffer {
    const endsWithCrlf = this.beforeLast === CR && this.last === LF;
    const noText = this.last === -1;
    return Buffer.from(endsWithCrlf || noText ? '.\r\n' : '\r\n.\r\n');
  }
}
