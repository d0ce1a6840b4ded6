// sendmail's slowdown of repeated commands, as checksmtpattack() in
// srvrsmtp.c of sendmail 8.17 does it. Each session counts four classes of
// commands. The command that reaches its class's limit is logged once as a
// "possible SMTP attack". From then on the reply to every command of that
// class comes after a delay that doubles with each further command, up to 240 seconds.
// Counts last for the whole session; only STARTTLS resets the HELO/EHLO count.
// With MaxDaemonChildren above 0, the command that reaches twice the limit
// gets "421 4.7.0 <host> Too many bad commands; closing connection" after its
// delay, and the session ends.
//
// The delays await a timer, so other sessions go on meanwhile. They end early
// when the client stops sending (half-close or disconnect) or the session
// closes, and commands that are still buffered then get their replies without
// delay. sendmail sleeps in any case.

import { setTimeout as sleepMs } from 'node:timers/promises';
import { reply } from '../smtp/reply';
import type { Session } from './session';

/**
 * The counted command classes with sendmail's limits: MAXNOOPCOMMANDS (NOOP,
 * and VERB where VERB is offered), MAXHELOCOMMANDS (HELO and EHLO, valid or
 * not), MAXVRFYCOMMANDS (VRFY and EXPN together) and MAXETRNCOMMANDS.
 * RSET, HELP and QUIT are not counted. The NOOP limit is the MaxNOOPCommands
 * option (20 by default, 0 for no limit), as in sendmail 8.17.
 */
export const ATTACK_LIMITS = { noop: 20, helo: 3, vrfy: 6, etrn: 8 } as const;

export type CommandClass = keyof typeof ATTACK_LIMITS;

/** sendmail's MAXTIMEOUT: the longest delay, in seconds. */
export const MAX_DELAY_SECONDS = 240;

/** sendmail's MAXSHIFT: past the limit by more than this, the delay is MAXTIMEOUT. */
const MAX_SHIFT = 8;

/** The delay for one counted command, in whole seconds as sendmail sleeps. */
export interface Slowdown {
  /** Seconds waited before the command is handled. */
  first: number;
  /** Seconds waited after that (VRFY/EXPN wait them after the lookup). */
  rest: number;
  /** Whether the session is closed with 421 after the wait. */
  stop: boolean;
}

/**
 * Returns the delay for the `count`th command of a class with limit `limit`,
 * or undefined below the limit. At the limit the delay is 1 second, and it
 * doubles with each further command up to MAX_DELAY_SECONDS. `closeAllowed`
 * is sendmail's MaxChildren > 0 (MaxDaemonChildren).
 */
export function slowdownFor(count: number, limit: number, closeAllowed: boolean): Slowdown | undefined {
  if (limit <= 0 || count < limit) return undefined;

  const shift = count - limit;
  const total = shift > MAX_SHIFT ? MAX_DELAY_SECONDS : Math.min(2 ** shift, MAX_DELAY_SECONDS);

  // NOTE: sendmail sleeps count/limit seconds first without a cap, so after
  // hundreds of commands its delay exceeds 240 s; Posthorn caps this part too.
  const first = Math.min(Math.floor(count / limit), MAX_DELAY_SECONDS);
  let rest = total - first;
  if (rest < 0 || rest >= MAX_DELAY_SECONDS) rest = MAX_DELAY_SECONDS;
  if (first + rest > MAX_DELAY_SECONDS) rest = Math.max(MAX_DELAY_SECONDS - first, 0);

  return { first, rest, stop: closeAllowed && count >= 2 * limit };
}

/** Waits `ms` milliseconds, or less if `signal` aborts first; never rejects. */
export type Sleep = (ms: number, signal: AbortSignal) => Promise<void>;

const realSleep: Sleep = async (ms, signal) => {
  try {
    await sleepMs(ms, undefined, { signal });
  } catch {
    // Aborted: the client stopped sending or the session closed.
  }
};

let sleep: Sleep = realSleep;

/** Replaces the timer behind every delay; without an argument, restores the real one. */
export function setAttackSleep(replacement?: Sleep): void {
  sleep = replacement ?? realSleep;
}

interface AttackState {
  counts: Record<CommandClass, number>;
  /**
   * Aborted once the client stops sending or the session ends. Made at the
   * first delay, so that the sessions that never reach a limit (nearly all,
   * each with one EHLO) pay for no controller and no listeners.
   */
  ended?: AbortController;
}

const states = new WeakMap<Session, AttackState>();

function stateOf(session: Session): AttackState {
  const known = states.get(session);
  if (known) return known;

  const state: AttackState = { counts: { noop: 0, helo: 0, vrfy: 0, etrn: 0 } };
  states.set(session, state);
  return state;
}

/** Returns the signal that ends the session's delays, made on first use. */
function endedSignal(session: Session): AbortSignal {
  const state = stateOf(session);
  if (state.ended === undefined) {
    const ended = new AbortController();
    state.ended = ended;
    const end = (): void => ended.abort();
    session.listeners.end.push(end);
    session.transport.onEnd(end);
  }
  return state.ended.signal;
}

/** Returns how many commands of a class the session has sent. */
export function commandCount(session: Session, cls: CommandClass): number {
  return states.get(session)?.counts[cls] ?? 0;
}

/** Forgets the HELO/EHLO count, as sendmail does after STARTTLS. */
export function resetHeloCount(session: Session): void {
  const state = states.get(session);
  if (state) state.counts.helo = 0;
}

function noopLimit(session: Session): number {
  const value = session.ctx.config.options.get('MaxNOOPCommands');
  return typeof value === 'number' ? value : ATTACK_LIMITS.noop;
}

/**
 * Counts one command and logs the "possible SMTP attack" line when the count
 * reaches the limit. `name` is the command as logged: NOOP, HELO/EHLO,
 * VRFY, EXPN or ETRN. Returns the delay, if any.
 */
function countCommand(session: Session, cls: CommandClass, name: string): Slowdown | undefined {
  const limit = cls === 'noop' ? noopLimit(session) : ATTACK_LIMITS[cls];
  if (limit <= 0) return undefined;
  const state = stateOf(session);
  const count = ++state.counts[cls];

  if (count === limit) {
    const client = session.macros.get('_') ?? '';
    session.log.info(`${client}: possible SMTP attack: command=${name}, count=${count}`, 6);
  }
  const maxChildren = Number(session.ctx.config.options.get('MaxDaemonChildren') ?? 0);
  return slowdownFor(count, limit, maxChildren > 0);
}

/**
 * Waits `seconds`, after writing out the replies queued so far. Returns
 * whether the session is still open.
 * NOTE: Timeout.command keeps running during the wait, so a Timeout.command
 * under 240 s can close a session that sendmail would keep.
 */
export async function pause(session: Session, seconds: number): Promise<boolean> {
  if (seconds > 0 && session.state !== 'closed') {
    const ended = endedSignal(session);
    if (!ended.aborted) {
      session.flush();
      await sleep(seconds * 1000, ended);
    }
  }
  return session.state !== 'closed';
}

function closeForAttack(session: Session): false {
  session.send(reply(421, '4.7.0', `${session.hostName} Too many bad commands; closing connection`));
  session.state = 'closed';
  return false;
}

/**
 * Counts a NOOP, HELO/EHLO or ETRN and waits its whole delay, as sendmail
 * does before it handles the command. Returns false when the handler must not
 * reply: the session was closed for the attack (421 sent) or while waiting.
 */
export async function slowDown(session: Session, cls: CommandClass, name: string): Promise<boolean> {
  const delay = countCommand(session, cls, name);
  if (!delay) return true;

  if (!(await pause(session, delay.first + delay.rest))) return false;
  return delay.stop ? closeForAttack(session) : true;
}

/**
 * Counts a VRFY or EXPN and waits the first part of its delay. Returns the
 * seconds the handler waits after its lookup (sendmail skips them for the
 * PrivacyOptions replies), or false when the handler must not reply.
 */
export async function slowDownVerify(session: Session, name: 'VRFY' | 'EXPN'): Promise<number | false> {
  const delay = countCommand(session, 'vrfy', name);
  if (!delay) return 0;

  if (!(await pause(session, delay.first))) return false;
  return delay.stop ? closeForAttack(session) : delay.rest;
}
