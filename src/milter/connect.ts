// Starts the mail filters of a new SMTP session before its greeting: opens a
// MilterSession, sends the connection to the filters, and picks the greeting
// that their decision calls for.

import type { Reply } from '../smtp/reply';
import { reply } from '../smtp/reply';
import type { Session } from '../server/session';
import { closing, milterLogger, milterSessions, milterSetup, replyText } from './checkpoint';
import type { MilterSession } from './milter-session';

/**
 * Runs the connect stage of the input mail filters and starts the session
 * with the greeting they call for. A session without filters starts as before.
 */
export async function startSessionWithMilters(session: Session): Promise<void> {
  const greeting = await milterConnect(session);
  session.start(greeting);
  if (greeting?.close) session.close();
}

/** Returns the greeting that replaces the normal one, or undefined. */
export async function milterConnect(session: Session): Promise<Reply | undefined> {
  const config = session.ctx.config;
  const setup = milterSetup(config, session.options.daemonName);
  if (setup.filters.length === 0) return undefined;

  const log = milterLogger(session.log, setup);
  // Loaded on first use: a daemon without mail filters never loads the protocol code (start-up time).
  const { MilterSession: Milters } = require('./milter-session') as typeof import('./milter-session');
  const milters: MilterSession = new Milters(setup.filters, setup.macroLists, log);
  milterSessions.set(session.macros, milters);
  session.listeners.abort.push(() => void milters.abort());
  session.listeners.end.push(() => void milters.quit());

  const address = session.transport.remoteAddress;
  const hostName = session.macros.get('{client_name}') ?? `[${address}]`;
  const result = await milters.connect({ hostName, address, port: session.transport.remotePort }, session.macros);
  const where = `Milter: connect: host=${hostName}, addr=${address}`;

  switch (result.action) {
    case 'continue':
    case 'discard':
      return undefined;
    case 'tempfail':
      if (result.reply?.code === 421) return shutdown(session, where, log);
      log(4, `${where}, temp failing commands`);
      milters.tempfailed = true;
      return undefined;
    case 'reject':
      log(4, `${where}, rejecting commands`);
      session.nullServerReply = reply(550, '5.0.0', 'Command rejected');
      return reply(554, undefined, `${config.hostName} ESMTP not accepting messages`);
    case 'shutdown':
      return shutdown(session, where, log);
  }
}

function shutdown(session: Session, where: string, log: (level: number, text: string) => void): Reply {
  const r = closing(session.ctx.config, '4.7.0');
  log(4, `${where}, shutdown: ${replyText(r)}`);
  return r;
}
