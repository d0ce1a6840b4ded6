// Queue ids in sendmail's format YMDhmsNNpppppp: six base-60 characters for the
// GMT time, two base-60 characters of sequence number, then the process id
// printed with at least six digits (sendmail 8.13.4 and later, assign_queueid()).

import * as crypto from 'node:crypto';

/** sendmail's QueueIdChars: base 60, plus "y" and "z" for leap seconds 60 and 61. */
const QUEUE_ID_CHARS = '0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz';
const BASE = 60;
const BASE_WITH_LEAP = 62;

/** Ids per base second: two base-60 digits of sequence number. */
const IDS_PER_SECOND = BASE * BASE;

export interface QueueIdGeneratorOptions {
  /** Process id written into each id; defaults to process.pid. */
  pid?: number;
  /** Start of the sequence, 0..3599; defaults to a random value as in sendmail. */
  sequenceStart?: number;
}

/**
 * Generates queue ids that are unique within one process (time and sequence
 * number) and across processes sharing a queue (the pid).
 */
export class QueueIdGenerator {
  private readonly pid: number | undefined;
  private readonly sequenceStart: number;
  /** Seconds since the epoch that the current ids encode. */
  private baseSecond = -1;
  /** Ids handed out for baseSecond. */
  private count = 0;

  constructor(opts: QueueIdGeneratorOptions = {}) {
    this.pid = opts.pid;
    this.sequenceStart = opts.sequenceStart ?? crypto.randomInt(IDS_PER_SECOND);
  }

  /** Returns the next id; `now` is the time to encode when a new second starts. */
  next(now: Date = new Date()): string {
    const nowSecond = Math.floor(now.getTime() / 1000);

    // A new second starts a new block of 3600 ids. After 3600 ids in one second,
    // or when the clock stepped back, the ids borrow the following second so the
    // time part keeps increasing.
    if (nowSecond > this.baseSecond) {
      this.baseSecond = nowSecond;
      this.count = 0;
    } else if (this.count >= IDS_PER_SECOND) {
      // NOTE: sendmail sleeps until the next second here. A synchronous wait
      // would stall every session in this process, so the id encodes a second
      // that has not come yet. Ids stay unique, but their time may run ahead.
      this.baseSecond += 1;
      this.count = 0;
    }

    const sequence = (this.sequenceStart + this.count) % IDS_PER_SECOND;
    this.count += 1;
    return formatQueueId(new Date(this.baseSecond * 1000), sequence, this.pid ?? process.pid);
  }
}

/** Formats one id from its parts; `sequence` is 0..3599. */
export function formatQueueId(time: Date, sequence: number, pid: number): string {
  const chars = [
    QUEUE_ID_CHARS[(time.getUTCFullYear() - 1900) % BASE],
    QUEUE_ID_CHARS[time.getUTCMonth()],
    QUEUE_ID_CHARS[time.getUTCDate()],
    QUEUE_ID_CHARS[time.getUTCHours()],
    QUEUE_ID_CHARS[time.getUTCMinutes() % BASE_WITH_LEAP],
    QUEUE_ID_CHARS[time.getUTCSeconds() % BASE_WITH_LEAP],
    QUEUE_ID_CHARS[Math.floor(sequence / BASE)],
    QUEUE_ID_CHARS[sequence % BASE],
  ];
  return chars.join('') + String(pid).padStart(6, '0');
}

/** Tests whether `id` has the form of a queue id, e.g. the rest of a file name. */
export function isQueueId(id: string): boolean {
  return /^[0-9A-Za-z]{8}[0-9]{6,}$/.test(id);
}

/**
 * Returns the GMT time encoded in a queue id, or undefined if `id` is not one.
 * The year is stored modulo 60, so the latest matching year that is not after
 * the year of `now` is taken.
 */
export function queueIdTime(id: string, now: Date = new Date()): Date | undefined {
  if (!isQueueId(id)) return undefined;

  const digits = [...id.slice(0, 6)].map((c) => QUEUE_ID_CHARS.indexOf(c));
  const [yearMod, month, day, hour, minute, second] = digits;
  if (yearMod >= BASE || month > 11 || day < 1 || day > 31 || hour > 23) return undefined;

  const nowYear = now.getUTCFullYear() - 1900;
  let year = nowYear - ((((nowYear - yearMod) % BASE) + BASE) % BASE);
  if (year < 0) year += BASE;

  const ms = Date.UTC(1900 + year, month, day, hour, minute, second);
  return new Date(ms);
}
