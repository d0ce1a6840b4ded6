// Time values used by delivery: sendmail's Timeout.* defaults, the retry
// schedule, and durations written the way sendmail writes them in bounces.

import type { Config } from '../config/types';
import type { QueueItem } from '../queue/types';
import type { ClientTimeouts } from './smtp-client';
import { classTimeout } from './queue-timeout-class';

const SECOND = 1000;
const MINUTE = 60 * SECOND;
const HOUR = 60 * MINUTE;
const DAY = 24 * HOUR;

/**
 * sendmail 8.13's defaults for the client-side Timeout.* options. Timeout.connect
 * is 0 there, meaning the kernel's connect timeout; Posthorn uses 2 minutes,
 * close to Linux's default of about 127 seconds.
 */
const CLIENT_DEFAULTS: ClientTimeouts = {
  connect: 2 * MINUTE,
  initial: 5 * MINUTE,
  helo: 5 * MINUTE,
  mail: 10 * MINUTE,
  rcpt: HOUR,
  datainit: 5 * MINUTE,
  datablock: HOUR,
  datafinal: HOUR,
  quit: 2 * MINUTE,
};

/** Timeout.queuereturn default: bounce after 5 days. */
const QUEUE_RETURN_DEFAULT = 5 * DAY;

/** First retry delay and cap of the backoff in `nextRetryTime`. */
const RETRY_BASE_MS = 15 * MINUTE;
const RETRY_MAX_MS = 4 * HOUR;

function timeout(config: Config, name: string, fallback: number): number {
  const value = config.timeouts.get(name);
  return value !== undefined && value > 0 ? value : fallback;
}

/**
 * Returns the client timeouts from the Timeout.* options. On the first attempt
 * for a message Timeout.iconnect, when set, replaces Timeout.connect.
 */
export function clientTimeouts(config: Config, firstAttempt: boolean): ClientTimeouts {
  const out = { ...CLIENT_DEFAULTS };
  for (const key of Object.keys(out) as (keyof ClientTimeouts)[]) {
    out[key] = timeout(config, key, out[key]);
  }
  if (firstAttempt) out.connect = timeout(config, 'iconnect', out.connect);
  return out;
}

/** Timeout.queuereturn in milliseconds, in the form for the item's Precedence when given. */
export function queueReturnMs(config: Config, item?: Pick<QueueItem, 'sender' | 'headers'>): number {
  const value = classTimeout(config, 'queuereturn', item);
  return value !== undefined && value > 0 ? value : QUEUE_RETURN_DEFAULT;
}

/**
 * Returns when a deferred item is next due, in seconds since the epoch: 15
 * minutes after the first attempt, doubling with each further attempt up to 4
 * hours. An item never tried is due at once. sendmail itself retries at
 * every queue run. The periodic runner uses this to skip items that have
 * failed often, and `Deliverer.deliver` ignores it when given `force`.
 */
export function nextRetryTime(item: QueueItem): number {
  if (item.attempts === 0) return item.created;
  const exponent = Math.min(item.attempts - 1, 16);
  const delayMs = Math.min(RETRY_BASE_MS * 2 ** exponent, RETRY_MAX_MS);
  return item.lastAttempt + Math.floor(delayMs / SECOND);
}

/** Formats an interval as sendmail's pintvl() does in texts: "5 days", "4 hours". */
export function durationWords(ms: number): string {
  const units: [number, string][] = [
    [7 * DAY, 'week'],
    [DAY, 'day'],
    [HOUR, 'hour'],
    [MINUTE, 'minute'],
    [SECOND, 'second'],
  ];
  const parts: string[] = [];
  let rest = Math.floor(ms / SECOND) * SECOND;
  for (const [size, name] of units) {
    const n = Math.floor(rest / size);
    if (n === 0) continue;
    parts.push(`${n} ${name}${n === 1 ? '' : 's'}`);
    rest -= n * size;
  }
  return parts.length > 0 ? parts.join(', ') : '0 seconds';
}

/** Formats seconds for the delay= and xdelay= log fields: "[D+]HH:MM:SS". */
export function formatDelay(seconds: number): string {
  const s = Math.max(0, Math.floor(seconds));
  const days = Math.floor(s / 86400);
  const pad = (n: number): string => String(n).padStart(2, '0');
  const clock = `${pad(Math.floor((s % 86400) / 3600))}:${pad(Math.floor((s % 3600) / 60))}:${pad(s % 60)}`;
  return days > 0 ? `${days}+${clock}` : clock;
}
