// Splits lines longer than the mailer's line limit (sendmail's L= equate) on
// the way out, byte for byte as sendmail 8.17.1.9 does (compared against it on
// loopback: test/e2e/long-lines.test.ts).
//
// sendmail's putbody() reads a body line from the data file in pieces of at
// most MAXLINE - 1 = 2047 bytes and hands each piece to putxline(). That
// sends L - 1 bytes of the piece, then "!", CRLF and a space. It goes on with
// L - 2 bytes at a time while the bytes left plus the space exceed L. The rest
// follows without a break, and the next piece continues on the same output
// line. So with L = 2040 the first output line contains 2039 bytes, and a
// later one up to 8 + 2039 bytes.

import type { Config } from '../config/types';

const LF = 0x0a;
const CR = 0x0d;

/** The largest piece of a body line that sendmail 8.17 passes to putxline(): MAXLINE (2048) - 1. */
export const BODY_PIECE = 2047;

/** The line break that putxline() inserts: "!", the mailer's CRLF, and a space. */
const BREAK = Buffer.from('!\r\n ');

/** L= of sendmail's cf/mailer/smtp.m4 mailers, with the m4 variable that sets each. */
const SMTP_MAILER_LL = { variable: 'SMTP_MAILER_LL', fallback: 990 };
const RELAY_MAILER_LL = { variable: 'RELAY_MAILER_LL', fallback: 2040 };
const MAILER_LL: Record<string, { variable: string; fallback: number }> = {
  smtp: SMTP_MAILER_LL,
  esmtp: SMTP_MAILER_LL,
  smtp8: SMTP_MAILER_LL,
  dsmtp: SMTP_MAILER_LL,
  relay: RELAY_MAILER_LL,
};
const SMART_HOST_MAILER = /^(relay|smtp|esmtp|smtp8|dsmtp):/i;

/**
 * Returns the line limit (L=) of an SMTP mailer: SMTP_MAILER_LL or
 * RELAY_MAILER_LL from the .mc file, else smtp.m4's default (990, or 2040 for
 * relay). Returns 0 (no limit) for other mailers.
 */
export function mailerLineLimit(config: Config, mailer: string): number {
  const entry = MAILER_LL[mailer.toLowerCase()];
  if (entry === undefined) return 0;
  // NOTE: an L= equate on an M line of a .cf file is not read; the default applies there.
  const value = config.mcVariables?.get(entry.variable)?.trim();
  return value !== undefined && /^\d+$/.test(value) ? Number(value) : entry.fallback;
}

/**
 * Returns the line limit of the mailer that remote delivery uses under
 * `config`: the mailer named in SmartHost ("esmtp:[host]"), relay for a bare
 * SmartHost, else esmtp. Mailertable routes reach here as a SmartHost.
 */
export function outboundLineLimit(config: Config): number {
  if (!config.smartHost) return mailerLineLimit(config, 'esmtp');
  const prefix = SMART_HOST_MAILER.exec(config.smartHost);
  return mailerLineLimit(config, prefix ? prefix[1] : 'relay');
}

/** Tells whether putxline() would ever break a line under `limit`; below 3 it never ends one. */
function breaksLines(limit: number): boolean {
  return limit >= 3;
}

/**
 * Appends putxline()'s output for one piece of a line to `out`. The piece
 * has `skip + bytes.length` bytes, and its first `skip` went out already
 * (they come before the first break).
 */
function splitPiece(out: Buffer[], bytes: Buffer, skip: number, limit: number): void {
  const total = skip + bytes.length;
  const emit = (from: number, to: number): void => {
    const start = Math.max(from, skip);
    if (to > start) out.push(bytes.subarray(start - skip, to - skip));
  };

  let at = 0;
  let slop = 0;
  while (total - at + slop > limit) {
    // sendmail 8.17 dot-stuffs each piece as if it started a line, so a later
    // piece that begins with "." gains a second one mid-line, which the
    // recipient receives. posthorn leaves that fault out, because dot-stuffing happens later.
    const next = at + limit - slop - 1;
    emit(at, next);
    out.push(BREAK);
    at = next;
    slop = 1;
  }
  emit(at, total);
}

/**
 * Splits one header line (without its CRLF) as sendmail's putheader() does:
 * the whole line is one putxline() piece, so each later output line has a
 * space and at most L - 2 bytes.
 */
export function splitHeaderLine(line: Buffer, limit: number): Buffer[] {
  if (!breaksLines(limit) || line.length <= limit) return [line];
  const out: Buffer[] = [];
  splitPiece(out, line, 0, limit);
  return out;
}

/**
 * Returns the header block (header lines, folds kept) with every physical
 * line longer than `limit` split, and the blank line that ends the header.
 */
export function limitHeader(headers: string[], limit: number): Buffer {
  const text = Buffer.from(headers.join('\r\n') + '\r\n\r\n', 'latin1');
  if (!breaksLines(limit)) return text;

  const parts: Buffer[] = [];
  let split = false;
  let start = 0;
  for (let lf = text.indexOf(LF); lf >= 0; lf = text.indexOf(LF, start)) {
    const end = lf > start && text[lf - 1] === CR ? lf - 1 : lf;
    const pieces = splitHeaderLine(text.subarray(start, end), limit);
    split ||= pieces.length > 1;
    // A loop, not push(...pieces): a header line of many megabytes has more pieces than a call takes arguments.
    for (const piece of pieces) parts.push(piece);
    parts.push(text.subarray(end, lf + 1));
    start = lf + 1;
  }
  return split ? Buffer.concat(parts) : text;
}

/**
 * Splits the long lines of a message body that arrives in blocks, as
 * sendmail's putbody() and putxline() do. push() returns views of the block
 * where nothing changes, so a body without long lines is passed on as it is.
 * A line ends at LF, and a CR before the LF belongs to the line end, as in
 * sendmail's data file, whose lines end in LF alone.
 */
export class LineLimiter {
  /** Bytes of the current line already returned, while it is no longer than limit - 1. */
  private column = 0;
  /** Set while the current line is longer than limit - 1 bytes and is being split. */
  private splitting = false;
  /** Index of the current piece of a line being split (0 for the first). */
  private piece = 0;
  /** Bytes of the current piece returned before splitting began (limit - 1 for the first piece). */
  private skip = 0;
  /** Bytes of the current piece not yet returned: a copy, as the caller reuses its blocks. */
  private pending: Buffer = Buffer.alloc(0);

  constructor(private readonly limit: number) {}

  /** Tells whether any line could be split; when false, push() returns every block as it is. */
  get active(): boolean {
    // A piece of at most BODY_PIECE bytes never exceeds a limit that large.
    return breaksLines(this.limit) && this.limit < BODY_PIECE;
  }

  /** Returns `block` with its long lines split, as views of the block and short inserted parts. */
  push(block: Buffer): Buffer[] {
    if (!this.active || block.length === 0) return [block];
    const out: Buffer[] = [];
    let start = 0;
    if (this.splitting || this.column > 0) {
      const lf = block.indexOf(LF);
      start = lf < 0 ? block.length : lf + 1;
      this.consumeLine(block.subarray(0, start), lf >= 0, out);
    }
    this.scanBlock(block, start, out);
    return out;
  }

  /** Returns the rest of a last line that has no line end. */
  finish(): Buffer[] {
    const out: Buffer[] = [];
    if (this.splitting) splitPiece(out, this.pending, this.skip, this.limit);
    this.reset();
    return out;
  }

  /**
   * Passes on the lines of `block` from `from` (a line start) that are no
   * longer than the limit, and hands the others to consumeLine(). From a line
   * start s, the last LF at or before s + limit ends a run of lines that all
   * fit. So one native search skips about `limit` bytes of ordinary text.
   */
  private scanBlock(block: Buffer, from: number, out: Buffer[]): void {
    const n = block.length;
    let passed = from;
    let s = from;
    while (s < n) {
      if (s + this.limit < n) {
        const lf = block.lastIndexOf(LF, s + this.limit);
        if (lf >= s) {
          s = lf + 1;
          continue;
        }
      } else {
        const lf = block.lastIndexOf(LF, n - 1);
        const tail = lf >= s ? lf + 1 : s;
        if (n - tail < this.limit) {
          if (n > passed) out.push(passed === 0 ? block : block.subarray(passed));
          this.column = n - tail;
          return;
        }
        s = tail;
      }

      // The line at s has more than `limit` bytes before its LF, or is a last
      // partial line of `limit` bytes: it may need splitting.
      if (s > passed) out.push(block.subarray(passed, s));
      const lf = block.indexOf(LF, s);
      const end = lf < 0 ? n : lf + 1;
      this.consumeLine(block.subarray(s, end), lf >= 0, out);
      s = end;
      passed = end;
    }
    if (n > passed) out.push(passed === 0 ? block : block.subarray(passed));
  }

  /** Takes the next bytes of the current line: up to and with its LF when `ended`, else to the block end. */
  private consumeLine(segment: Buffer, ended: boolean, out: Buffer[]): void {
    if (!this.splitting) {
      const raw = ended ? segment.length - 1 : segment.length;
      const total = this.column + raw;
      const length = ended && raw > 0 && segment[raw - 1] === CR ? total - 1 : total;
      if (ended ? length <= this.limit : total < this.limit) {
        out.push(segment);
        this.column = ended ? 0 : total;
        return;
      }
      // Whatever follows, the first limit - 1 bytes go out unchanged.
      const free = this.limit - 1 - this.column;
      if (free > 0) out.push(segment.subarray(0, free));
      segment = segment.subarray(free);
      this.splitting = true;
      this.piece = 0;
      this.skip = this.limit - 1;
      this.pending = Buffer.alloc(0);
    }
    this.consumeSplit(segment, ended, out);
  }

  private consumeSplit(segment: Buffer, ended: boolean, out: Buffer[]): void {
    const data = this.pending.length > 0 ? Buffer.concat([this.pending, segment]) : segment;
    let body = ended ? data.subarray(0, data.length - 1) : data;

    // A piece is complete once a byte follows it: only then is a CR in its
    // last place known to be text rather than part of the line end.
    while (this.skip + body.length > BODY_PIECE) {
      const take = BODY_PIECE - this.skip;
      splitPiece(out, body.subarray(0, take), this.skip, this.limit);
      body = body.subarray(take);
      this.piece++;
      this.skip = 0;
    }

    if (!ended) {
      this.pending = Buffer.from(body);
      return;
    }
    const textEnd = body.length > 0 && body[body.length - 1] === CR ? body.length - 1 : body.length;
    splitPiece(out, body.subarray(0, textEnd), this.skip, this.limit);
    // The line end as it was: CRLF, or a bare LF.
    out.push(data.subarray(data.length - 1 - (body.length - textEnd)));
    this.reset();
  }

  private reset(): void {
    this.column = 0;
    this.splitting = false;
    this.piece = 0;
    this.skip = 0;
    this.pending = Buffer.alloc(0);
  }
}
