// The milter checkpoint: runs the input mail filters (InputMailFilters) at
// HELO, MAIL, RCPT, DATA and end of message, and turns their decisions into
// sendmail's replies and "Milter:" log lines. One MilterSession per SMTP
// session contains the filter connections; milterConnect() opens it.

import type { Config } from '../config/types';
import type { Logger } from '../log/logger';
import { reply, type Reply } from '../smtp/reply';
import { CONTINUE, type CheckContext, type Checkpoint, type Stage, type Verdict } from '../server/checkpoint';
import { headerValue } from '../server/headers';
import { inputMilters, milterMacroLists, type MacroStage, type MilterDefinition } from './definitions';
import type { MessageEditor } from './message-editor';
import type { MilterResult, MilterSession } from './milter-session';

/** MilterSessions by the macro table of their SMTP session, which lives as long as the session. */
export const milterSessions = new WeakMap<Map<string, string>, MilterSession>();

export interface MilterSetup {
  filters: MilterDefinition[];
  macroLists: Record<MacroStage, string[]>;
  /** Milter.LogLevel, or LogLevel when it is unset. */
  logLevel: number;
}

const setups = new WeakMap<Config, Map<string, MilterSetup>>();

/**
 * Reads the filter definitions of a configuration once per daemon. A daemon
 * with its own InputMailFilters= list gets those filters, others get the
 * global InputMailFilters.
 */
export function milterSetup(config: Config, daemonName?: string): MilterSetup {
  let byDaemon = setups.get(config);
  if (byDaemon === undefined) {
    byDaemon = new Map();
    setups.set(config, byDaemon);
  }
  const daemonFilters = config.daemons.find((daemon) => daemon.name === daemonName)?.inputMailFilters;
  const key = daemonFilters === undefined ? '' : `daemon:${daemonName ?? ''}`;
  let setup = byDaemon.get(key);
  if (setup === undefined) {
    const level = config.options.get('Milter.LogLevel');
    setup = {
      filters: inputMilters(config, daemonFilters),
      macroLists: milterMacroLists(config),
      logLevel: typeof level === 'number' ? level : config.logLevel,
    };
    byDaemon.set(key, setup);
  }
  return setup;
}

/** Logs a line when Milter.LogLevel is at least `level`, whatever the LogLevel option is. */
export function milterLogger(logger: Logger, setup: MilterSetup): (level: number, text: string) => void {
  return (level, text) => {
    if (level <= setup.logLevel) logger.log(0, 'info', text);
  };
}

const REJECTED = reply(550, '5.7.1', 'Command rejected');
const TEMPFAILED = reply(451, '4.3.2', 'Please try again later');

export function milterCheckpoint(config: Config, logger: Logger): Checkpoint {
  const setup = milterSetup(config);
  const stages = new Set<Stage>(['helo', 'mail', 'rcpt', 'data', 'eom']);

  return {
    name: 'milter',
    stages,
    async check(ctx: CheckContext): Promise<Verdict> {
      const session = milterSessions.get(ctx.macros);
      if (session === undefined) return CONTINUE;
      const log = milterLogger(logger.child(ctx.macros.get('i') ?? 'NOQUEUE'), setup);

      switch (ctx.stage) {
        case 'helo':
          return heloVerdict(await session.helo(ctx.address ?? '', ctx.macros), session, config);
        case 'mail': {
          if (session.tempfailed) return { action: 'tempfail', reply: TEMPFAILED, logged: true };
          const result = await session.envfrom(ctx.address ?? '', ctx.esmtpArgs ?? [], ctx.macros);
          return commandVerdict(result, `from=<${ctx.address ?? ''}>`, log);
        }
        case 'rcpt': {
          const result = await session.envrcpt(ctx.address ?? '', ctx.esmtpArgs ?? [], ctx.macros);
          return commandVerdict(result, `to=<${ctx.address ?? ''}>`, log);
        }
        case 'data':
          return commandVerdict(await session.data(ctx.macros), 'data', log);
        case 'eom':
          return endOfMessage(ctx, session, config, log);
        default:
          return CONTINUE;
      }
    },
  };
}

/** Maps the HELO result. HELO itself gets its 250 reply, and a rejection makes a null server of the session. */
function heloVerdict(result: MilterResult, session: MilterSession, config: Config): Verdict {
  switch (result.action) {
    case 'continue':
    case 'discard':
      return CONTINUE;
    case 'tempfail':
      if (result.reply === undefined) {
        session.tempfailed = true;
        return CONTINUE;
      }
      return { action: 'reject', reply: result.reply, source: 'milter', logged: true };
    case 'reject':
      return { action: 'reject', reply: result.reply ?? reply(550, '5.0.0', 'Command rejected'), source: 'milter', logged: true };
    case 'shutdown':
      return { action: 'reject', reply: closing(config, '4.7.0'), source: 'milter', logged: true };
  }
}

/** MAIL, RCPT and DATA: reject 550, tempfail 451, the filter's own reply, or discard. */
function commandVerdict(result: MilterResult, what: string, log: (level: number, text: string) => void): Verdict {
  switch (result.action) {
    case 'continue':
      return CONTINUE;
    case 'discard':
      log(4, `Milter: ${what}, discard`);
      return { action: 'discard', source: 'milter' };
    case 'shutdown': {
      const r = { ...reply(421, '4.3.0', 'closing connection'), close: true };
      log(4, `Milter: ${what}, reject=${replyText(r)}`);
      return { action: 'tempfail', reply: r, source: 'milter', logged: true };
    }
    case 'reject':
    case 'tempfail': {
      const r = result.reply ?? (result.action === 'reject' ? REJECTED : TEMPFAILED);
      log(4, `Milter: ${what}, reject=${replyText(r)}`);
      return { action: result.action, reply: r, source: 'milter', logged: true };
    }
  }
}

/** End of message: headers, body and EOM through each filter, then their changes on the queue item. */
async function endOfMessage(
  ctx: CheckContext,
  session: MilterSession,
  config: Config,
  log: (level: number, text: string) => void,
): Promise<Verdict> {
  if (ctx.item === undefined || ctx.dataPath === undefined) return CONTINUE;
  // Loaded on first use, as milter-session is (milter/connect.ts).
  const { MessageEditor: Editor } = require('./message-editor') as typeof import('./message-editor');
  const editor: MessageEditor = new Editor(ctx.item, ctx.headers ?? [], ctx.dataPath);
  const macros = new Map(ctx.macros);
  const msgId = headerValue(ctx.item.headers, 'message-id');
  if (msgId !== undefined && !macros.has('{msg_id}')) macros.set('{msg_id}', msgId.trim());

  // A replaced body is fsynced now only when commit() will not fsync the data file again.
  const syncReplacedBody = config.superSafe === 'true' || config.superSafe === 'interactive';
  let result: MilterResult;
  try {
    result = await session.endOfMessage(editor, macros, syncReplacedBody, (text) => log(4, text));
  } finally {
    session.endMessage();
  }

  switch (result.action) {
    case 'continue':
      return CONTINUE;
    case 'discard':
      log(4, 'Milter: data, discard');
      return { action: 'discard', source: 'milter' };
    case 'shutdown': {
      const r = closing(config, '4.7.0');
      log(4, `Milter: data, reject=${replyText(r)}`);
      return { action: 'tempfail', reply: r, source: 'milter', logged: true };
    }
    case 'reject':
    case 'tempfail': {
      const fallback = result.action === 'reject' ? reply(554, '5.7.1', 'Command rejected') : TEMPFAILED;
      const r = result.reply ?? fallback;
      log(4, `Milter: data, reject=${replyText(r)}`);
      return { action: result.action, reply: r, source: 'milter', logged: true };
    }
  }
}

/** "421 4.7.0 <host> closing connection", which ends the session. */
export function closing(config: Config, enhanced: string): Reply {
  return { ...reply(421, enhanced, `${config.hostName} closing connection`), close: true };
}

/** Formats a reply as one line for the log: "550 5.7.1 Command rejected". */
export function replyText(r: Reply): string {
  return [String(r.code), r.enhanced, r.lines.join(' ')].filter((part) => part !== undefined && part !== '').join(' ');
}
