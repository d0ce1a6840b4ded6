// The DELIVERBY extension (RFC 2852): the EHLO keyword, the BY= parameter of
// MAIL with sendmail 8.17's replies from mail_esmtp_args() in srvrsmtp.c, and
// the BY= that goes to a next hop with the time that is left.

import type { ParamError } from './params';

/** A BY= request: deliver within `seconds` of acceptance, else return (R) or notify (N). */
export interface DeliverBy {
  /** The by-time in seconds as sent; N allows 0 and negative values. */
  seconds: number;
  mode: 'R' | 'N';
  /** The T trace modifier: the sender asked for a trace DSN. */
  trace: boolean;
}

/** sendmail rejects a by-time beyond nine digits, either way. */
const MAX_BY_SECONDS = 999_999_999;

function fail(code: number, enhanced: string, text: string): ParamError {
  return { ok: false, code, enhanced, text };
}

/** Returns the char as sendmail's PRTCHAR() echoes it: '?' unless printable ASCII. */
function printable(ch: string | undefined): string {
  return ch !== undefined && /^[\x20-\x7e]$/.test(ch) ? ch : '?';
}

/**
 * Returns the EHLO keyword for DeliverByMin in seconds: "DELIVERBY" for 0,
 * "DELIVERBY <min>" above 0, and undefined for a negative value, which turns
 * the extension off.
 */
export function deliverByKeyword(minSeconds: number): string | undefined {
  if (minSeconds < 0) return undefined;
  return minSeconds > 0 ? `DELIVERBY ${minSeconds}` : 'DELIVERBY';
}

/**
 * Parses the value of BY= ("60;R", "-5;N", "120;RT") as sendmail 8.17 does.
 * The number is read like strtol(): an optional sign and leading digits, 0
 * when there are none. Characters after the trace letter are ignored.
 */
export function parseDeliverBy(value: string | undefined, minSeconds: number): DeliverBy | ParamError {
  if (value === undefined) return fail(501, '5.5.2', 'BY= requires a value');

  const number = /^[+-]?\d+/.exec(value);
  const seconds = number === null ? 0 : Number(number[0]);
  if (Math.abs(seconds) > MAX_BY_SECONDS) {
    return fail(501, '5.5.2', `BY=${value.replace(/[^\x20-\x7e]/g, '?')} out of range`);
  }

  const rest = value.slice(number === null ? 0 : number[0].length);
  if (rest[0] !== ';') return fail(501, '5.5.2', "BY= missing ';'");

  const modeChar = rest[1];
  const mode = modeChar?.toUpperCase();
  if (mode !== 'R' && mode !== 'N') return fail(501, '5.5.2', `illegal by-mode '${printable(modeChar)}'`);
  if (mode === 'R' && seconds <= 0) return fail(501, '5.5.4', 'mode R requires BY time > 0');
  if (mode === 'R' && minSeconds > 0 && seconds < minSeconds) {
    return fail(555, '5.5.2', `time ${seconds} less than ${minSeconds}`);
  }

  const traceChar = rest[2];
  const trace = traceChar?.toUpperCase() === 'T';
  if (traceChar !== undefined && !trace) return fail(501, '5.5.2', `illegal by-trace '${printable(traceChar)}'`);
  return { seconds, mode, trace };
}

/**
 * Returns the " BY=<left>;<mode>[T]" to append to MAIL for a next hop that
 * offers DELIVERBY: the by-time less the seconds since the message was
 * accepted. When an R request has no time left, sendmail 8.17 sends the next
 * hop's minimum, or 1 when it names none, so that the next hop accepts it.
 */
export function byParameter(by: DeliverBy, secondsQueued: number, nextHopMin: number): string {
  let left = by.seconds - secondsQueued;
  if (left <= 0 && by.mode === 'R') left = nextHopMin > 0 ? nextHopMin : 1;
  // RFC 2852 allows at most nine digits. sendmail 8.17 sends a value past that
  // (BY=-999999999;N after a few seconds queued), and a next hop then refuses
  // the MAIL and the message bounces; posthorn keeps to the range instead.
  left = Math.max(-MAX_BY_TIME, Math.min(MAX_BY_TIME, left));
  return ` BY=${left};${by.mode}${by.trace ? 'T' : ''}`;
}

/** The largest by-time RFC 2852 allows: nine digits. */
const MAX_BY_TIME = 999_999_999;

/** Returns the minimum by-time a next hop names after its DELIVERBY keyword, or 0 (sendmail reads it with atol()). */
export function nextHopMinimum(keywordParams: string): number {
  const digits = /^[+-]?\d+/.exec(keywordParams.trim());
  return digits === null ? 0 : Number(digits[0]);
}

/** Returns the whole seconds from `epochSeconds` until now. */
export function secondsSince(epochSeconds: number): number {
  return Math.floor(Date.now() / 1000) - epochSeconds;
}

/**
 * Returns why an R request must not go to this next hop, as sendmail 8.17's
 * deliver() words it (status 5.4.7), or undefined when it may. It must not go
 * when the next hop does not offer DELIVERBY (`keyword` undefined) or names a
 * minimum above the time left. N requests always go, without BY= when not
 * offered.
 */
export function deliverByRefusal(by: DeliverBy, secondsQueued: number, keyword: string | undefined): string | undefined {
  if (by.mode !== 'R') return undefined;
  // NOTE: sendmail's stat= text for these failures was not confirmed against a running sendmail.
  if (keyword === undefined) return '554 5.4.7 Server does not support Deliver By';

  const left = by.seconds - secondsQueued;
  const min = nextHopMinimum(keyword);
  if (by.seconds > 0 && left < min) return `554 5.4.7 Message can't be delivered in time; ${left} < ${min}`;
  return undefined;
}
