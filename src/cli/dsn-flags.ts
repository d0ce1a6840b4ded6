// The DSN and body flags of a command-line submission: -N (NOTIFY), -R (RET),
// -V (ENVID) and -B (BODY). They set the same queue file fields as the ESMTP
// parameters over SMTP. Invalid values get sendmail 8.17's messages and exit
// EX_USAGE (64) before any queue file is written.

import { ExitError, EX_USAGE } from './sysexits';
import { xtextDecode } from '../smtp/params';

export interface DsnFlags {
  /**
   * NOTIFY words in upper case: some of SUCCESS, FAILURE and DELAY, or
   * ["NEVER"] when -N was given without any of them.
   */
  notify?: string[];
  ret?: 'FULL' | 'HDRS';
  /** ENVID in xtext form, as over SMTP. An empty -V sets none. */
  envid?: string;
  bodyType?: '7BIT' | '8BITMIME';
}

const NOTIFY_WORDS = new Set(['SUCCESS', 'FAILURE', 'DELAY']);

/**
 * Adds one -N value. Like sendmail, "never" counts only as the whole value,
 * and several -N flags add up, so "-N never -N success" means SUCCESS.
 */
export function applyNotifyFlag(flags: DsnFlags, value: string): void {
  const words = flags.notify?.filter((word) => word !== 'NEVER') ?? [];
  if (value.toUpperCase() !== 'NEVER') {
    for (const word of value.split(',')) {
      const upper = word.toUpperCase();
      if (!NOTIFY_WORDS.has(upper)) throw new ExitError('Invalid -N argument', EX_USAGE);
      if (!words.includes(upper)) words.push(upper);
    }
  }
  flags.notify = words.length > 0 ? words : ['NEVER'];
}

export function applyRetFlag(flags: DsnFlags, value: string): void {
  if (flags.ret !== undefined) throw new ExitError('Duplicate -R flag', EX_USAGE);

  const upper = value.toUpperCase();
  if (upper !== 'FULL' && upper !== 'HDRS') throw new ExitError('Invalid -R value', EX_USAGE);
  flags.ret = upper;
}

export function applyEnvidFlag(flags: DsnFlags, value: string): void {
  if (xtextDecode(value) === undefined) throw new ExitError('Invalid syntax in -V flag', EX_USAGE);
  flags.envid = value === '' ? undefined : value;
}

export function applyBodyFlag(flags: DsnFlags, value: string): void {
  const upper = value.toUpperCase();
  if (upper !== '7BIT' && upper !== '8BITMIME') {
    // Control bytes in the value must not reach the terminal.
    throw new ExitError(`Illegal body type ${value.replace(/[^\x20-\x7e]/g, '?')}`, EX_USAGE);
  }
  flags.bodyType = upper;
}
