// Verb dispatch and the connection verbs: EHLO, HELO, NOOP, RSET, QUIT, HELP,
// VRFY, EXPN. Replies follow sendmail's texts. ETRN and VERB are in etrn.ts,
// the expansion of EXPN in expn.ts.

import { reply, type Reply } from '../smtp/reply';
import { echoableCommandLine } from '../smtp/command';
import type { Session } from './session';
import { deliverByMinSeconds, handleMail, handleRcpt } from './envelope';
import { deliverByKeyword } from '../smtp/deliver-by';
import { handleData } from './data';
import { vrfyReply } from './vrfy';
import { expnOffered, expnReply, verbOffered } from './expn';
import { handleStarttls, starttlsOffered } from './starttls';
import { milterUnknown } from '../milter/session-hooks';
import { filterEhloKeywords, privacyOption } from './srv-features';
import { etrnOffered, handleEtrn, handleVerb } from './etrn';
import { pause, slowDown, slowDownVerify } from './smtp-attack';

export interface Command {
  verb: string;
  arg: string;
}

/** A verb's handler; `line` is the whole command line as the client sent it. */
type Handler = (session: Session, arg: string, line: string) => void | Promise<void>;

/** Verbs a null server still handles normally (sendmail's srvrsmtp.c). */
const NULL_SERVER_VERBS = new Set(['QUIT', 'HELO', 'EHLO', 'NOOP', 'RSET']);

const HANDLERS: Record<string, Handler> = {
  EHLO: (s, arg) => heloWithChecks(s, arg, true),
  HELO: (s, arg) => heloWithChecks(s, arg, false),
  MAIL: handleMail,
  RCPT: handleRcpt,
  DATA: handleData,
  RSET: handleRset,
  NOOP: handleNoop,
  QUIT: handleQuit,
  HELP: handleHelp,
  VRFY: (s, arg, line) => handleVerify(s, arg, line, VRFY_COMMAND),
  EXPN: (s, arg, line) => handleVerify(s, arg, line, EXPN_COMMAND),
  STARTTLS: handleStarttls,
  ETRN: handleEtrn,
  VERB: handleVerb,
  AUTH: (s) => s.send(reply(503, '5.3.3', 'AUTH not available')),
  // sendmail recognizes the verb and never implements it (RFC 821's TURN).
  TURN: (s, _arg, line) => s.badCommand(reply(502, '5.5.1', `Command not implemented: "${echoableCommandLine(line)}"`)),
};

export async function handleCommand(session: Session, command: Command, line: string): Promise<void> {
  const handler = Object.hasOwn(HANDLERS, command.verb) ? HANDLERS[command.verb] : undefined;

  if (session.pipelinedHelo && command.verb !== 'QUIT') {
    // RFC 2920: HELO/EHLO must end a pipelined group. sendmail 8.17 replies 554
    // to the command sent behind it and rejects the rest of the session.
    session.pipelinedHelo = false;
    session.nullServerReply = reply(550, '5.0.0', 'Command rejected');
    session.log.notice(`${session.macros.get('_')}: SMTP protocol error: commands pipelined behind ${session.esmtp ? 'EHLO' : 'HELO'}`);
    session.badCommand(reply(554, '5.5.0', 'SMTP protocol error'));
    return;
  }
  // A null server replies to unknown verbs (ONEX too) as usual, as sendmail 8.17 does.
  if (session.nullServerReply && handler && !NULL_SERVER_VERBS.has(command.verb)) {
    session.badCommand(session.nullServerReply);
    return;
  }
  if (!handler) {
    const milterReply = session.nullServerReply
      ? undefined
      : await milterUnknown(session, command.arg === '' ? command.verb : `${command.verb} ${command.arg}`);
    if (milterReply !== undefined) {
      session.send(milterReply);
      return;
    }
    // sendmail echoes the whole line as the client sent it.
    session.badCommand(reply(500, '5.5.1', `Command unrecognized: "${echoableCommandLine(line)}"`));
    return;
  }
  await handler(session, command.arg, line);
}

/** Returns whether a HELO argument is a plausible domain or address literal. */
function validHeloName(name: string): boolean {
  if (name.length > 255) return false;
  if (/^\[[0-9A-Fa-f:.]+\]$/.test(name) || /^\[IPv6:[0-9A-Fa-f:.]+\]$/i.test(name)) return true;
  return /^[A-Za-z0-9_]([A-Za-z0-9_.-]*[A-Za-z0-9_])?\.?$/.test(name);
}

/**
 * HELO/EHLO, then the checkpoint chain's helo stage (the milters). The command
 * is answered as usual; a rejection makes the session a null server from the
 * next command on, and a closing reply (421) replaces the answer.
 */
async function heloWithChecks(session: Session, arg: string, extended: boolean): Promise<void> {
  // sendmail counts every HELO/EHLO, the invalid ones too.
  if (!(await slowDown(session, 'helo', 'HELO/EHLO'))) return;
  handleHelo(session, arg, extended);
  // -bs input arrives as one stream, so only network sessions are checked.
  const network = session.options.daemonName !== 'stdin';
  if (network && session.heloName === arg.trim() && session.hasPendingInput()) session.pipelinedHelo = true;
  if (session.heloName !== arg.trim() || session.nullServerReply) return;

  const verdict = await session.ctx.chain.run({
    stage: 'helo',
    macros: session.macros,
    clientAddress: session.transport.remoteAddress,
    address: session.heloName,
    relayAllowed: session.relayAllowed,
  });
  if (verdict.action !== 'reject' && verdict.action !== 'tempfail') return;
  if (verdict.reply?.close) {
    session.send(verdict.reply);
    return;
  }
  session.nullServerReply = verdict.reply ?? reply(550, '5.0.0', 'Command rejected');
}

function handleHelo(session: Session, arg: string, extended: boolean): void {
  const verb = extended ? 'EHLO' : 'HELO';
  const name = arg.trim();
  if (name === '') {
    session.send(reply(501, '5.0.0', `${verb} requires domain address`));
    return;
  }
  if (!validHeloName(name)) {
    session.send(reply(501, '5.0.0', 'Invalid domain name'));
    return;
  }

  // A new HELO/EHLO resets any transaction in progress (RFC 5321 4.1.4).
  void session.abortTransaction();
  session.heloName = name;
  session.esmtp = extended;
  session.state = 'helo';
  session.macros.set('s', name);
  // RFC 3848: ESMTPS marks an ESMTP session protected by STARTTLS.
  let protocol = 'SMTP';
  if (extended) protocol = session.tls ? 'ESMTPS' : 'ESMTP';
  session.macros.set('r', protocol);

  const greeting = `${session.hostName} Hello ${session.macros.get('_')}, pleased to meet you`;
  if (!extended) {
    session.send(reply(250, undefined, greeting));
    return;
  }
  session.send(ehloReply(session, greeting));
}

function ehloReply(session: Session, greeting: string): Reply {
  if (session.nullServerReply) return reply(250, undefined, greeting, 'ENHANCEDSTATUSCODES');

  const max = session.ctx.config.maxMessageSize;
  const lines = filterEhloKeywords(session, [greeting, 'ENHANCEDSTATUSCODES', 'PIPELINING']);
  if (expnOffered(session)) lines.push('EXPN');
  if (verbOffered(session)) lines.push('VERB');
  lines.push(...filterEhloKeywords(session, ['8BITMIME', max > 0 ? `SIZE ${max}` : 'SIZE', 'DSN']));
  // sendmail 8.17 lists ETRN after DSN and before AUTH and STARTTLS, then DELIVERBY.
  if (etrnOffered(session)) lines.push('ETRN');
  if (starttlsOffered(session)) lines.push('STARTTLS');
  const deliverBy = deliverByKeyword(deliverByMinSeconds(session.ctx.config));
  if (deliverBy !== undefined) lines.push(deliverBy);
  lines.push('HELP');
  return reply(250, undefined, ...lines);
}

async function handleNoop(session: Session): Promise<void> {
  if (!(await slowDown(session, 'noop', 'NOOP'))) return;
  session.send(reply(250, '2.0.0', 'OK'));
}

function handleRset(session: Session): void {
  void session.abortTransaction();
  if (session.state === 'mail') session.state = 'helo';
  session.send(reply(250, '2.0.0', 'Reset state'));
}

function handleQuit(session: Session): void {
  session.send(reply(221, '2.0.0', `${session.hostName} closing connection`));
  session.close();
}

function handleHelp(session: Session, arg: string): void {
  const topic = arg.trim().toUpperCase();
  const lines = [
    `This is Posthorn version ${session.ctx.version}`,
    'Topics:',
    '\tHELO\tEHLO\tMAIL\tRCPT\tDATA',
    '\tRSET\tNOOP\tQUIT\tHELP\tVRFY',
    '\tEXPN\tVERB\tETRN',
    'For more info use "HELP <topic>".',
    'End of HELP info',
  ];
  if (topic !== '' && !(topic in HANDLERS)) {
    session.send(reply(504, '5.3.0', `HELP topic "${topic.slice(0, 40)}" unknown`));
    return;
  }
  session.send(reply(214, '2.0.0', ...lines));
}


/** VRFY and EXPN go through the same steps, as in sendmail's srvrsmtp.c. */
interface VerifyCommand {
  name: 'VRFY' | 'EXPN';
  /** The reply when the command is turned off, or undefined when it is on. */
  disabledReply(session: Session, arg: string): Reply | undefined;
  /** The PrivacyOptions word that requires HELO first. */
  needHelo: string;
  answer(session: Session, arg: string): Reply;
}

const VRFY_COMMAND: VerifyCommand = {
  name: 'VRFY',
  disabledReply: (session, arg) => (privacyOption(session, 'novrfy') ? vrfyReply(session.ctx.config, arg, true) : undefined),
  needHelo: 'needvrfyhelo',
  answer: (session, arg) => vrfyReply(session.ctx.config, arg, false),
};

const EXPN_COMMAND: VerifyCommand = {
  name: 'EXPN',
  disabledReply: (session) => (expnOffered(session) ? undefined : reply(502, '5.7.0', 'Sorry, we do not allow this operation')),
  needHelo: 'needexpnhelo',
  answer: (session, arg) => expnReply(session.ctx.config, arg),
};

async function handleVerify(session: Session, arg: string, line: string, command: VerifyCommand): Promise<void> {
  session.didWork = true;
  const rest = await slowDownVerify(session, command.name);
  if (rest === false) return;

  // As in sendmail, novrfy (252) and an EXPN not offered (502) reply before the HELO and argument checks.
  const disabled = command.disabledReply(session, arg);
  if (disabled !== undefined) {
    session.send(disabled);
    logVerify(session, line, true);
    return;
  }
  if (privacyOption(session, command.needHelo) && !session.heloName) {
    session.send(reply(503, '5.0.0', 'I demand that you introduce yourself first'));
    return;
  }
  logVerify(session, line, false);
  if (arg.trim() === '') {
    if (!(await pause(session, rest))) return;
    session.send(reply(501, '5.5.2', 'Argument required'));
    return;
  }
  const answer = command.answer(session, arg);
  // sendmail waits the rest of the delay only for a looked-up address.
  if (!(await pause(session, rest))) return;
  session.send(answer);
}

/** Logs a VRFY or EXPN line as sendmail does, "[rejected]" when the command is not allowed. */
function logVerify(session: Session, line: string, rejected: boolean): void {
  const client = session.macros.get('_') ?? '';
  session.log.info(`${client}: ${echoableCommandLine(line)}${rejected ? ' [rejected]' : ''}`, 6);
}

