// Milter steps that the SMTP server calls outside the checkpoint chain: a
// recipient that an earlier check rejected (SMFIP_RCPT_REJ) and a command the
// server does not know (SMFIC_UNKNOWN, 'U').

import type { Session } from '../server/session';
import { setRejectedRecipientMacros } from '../server/address-macros';
import { reply, type Reply } from '../smtp/reply';
import { milterLogger, milterSessions, milterSetup, replyText } from './checkpoint';

/**
 * Sends a rejected recipient to the filters that requested rejected
 * recipients, with ${rcpt_mailer} "error". The rejection is kept whatever
 * the filters reply.
 */
export async function milterRejectedRecipient(session: Session, address: string, args: string[], rejection: Reply): Promise<void> {
  const milters = milterSessions.get(session.macros);
  if (milters === undefined) return;
  const macros = new Map(session.macros);
  setRejectedRecipientMacros(macros, rejection);
  await milters.rejectedRecipient(address, args, macros);
}

/**
 * Sends an unknown command line to the filters. Returns the reply that a
 * filter's reject, tempfail, reply code or shutdown calls for, or undefined
 * when the server should give its own "500 5.5.1 Command unrecognized".
 */
export async function milterUnknown(session: Session, line: string): Promise<Reply | undefined> {
  const milters = milterSessions.get(session.macros);
  if (milters === undefined) return undefined;

  const result = await milters.unknown(line, session.macros);
  const setup = milterSetup(session.ctx.config, session.options.daemonName);
  const log = milterLogger(session.log, setup);
  let r: Reply;
  switch (result.action) {
    case 'continue':
    case 'discard':
      return undefined;
    case 'reject':
      r = result.reply ?? reply(550, '5.7.1', 'Command rejected');
      break;
    case 'tempfail':
      r = result.reply ?? reply(451, '4.3.2', 'Please try again later');
      break;
    case 'shutdown':
      r = { ...reply(421, '4.3.0', 'closing connection'), close: true };
      break;
  }
  // NOTE: this log format follows the other "Milter: <step>=<arg>" lines and was not checked against sendmail.
  log(4, `Milter: unknown=${line}, reject=${replyText(r)}`);
  return r;
}
