// The envelope verbs MAIL and RCPT (RFC 5321 4.1.1.2, 4.1.1.3) with their
// ESMTP parameters (SIZE, BODY, RET, ENVID, BY, NOTIFY, ORCPT).

import { localUserCheck } from './local-user-check';
import { reply, type Reply } from '../smtp/reply';
import { parsePath, type PathResult } from '../smtp/address';
import { checkMailParams, checkRcptParams } from '../smtp/params';
import { checkFreeBlocks } from './min-free-blocks';
import type { Session } from './session';
import type { Verdict } from './checkpoint';
import { setRecipientMacros, setSenderMacros } from './address-macros';
import type { Transaction } from './transaction';
import { milterRejectedRecipient } from '../milter/session-hooks';
import type { Config } from '../config/types';
import { localhostSenderReply } from '../policy/local-sender';

/** DeliverByMin in whole seconds; negative when DELIVERBY is turned off. */
export function deliverByMinSeconds(config: Config): number {
  const ms = config.options.get('DeliverByMin');
  return typeof ms === 'number' ? Math.trunc(ms / 1000) : 0;
}

/** Marks the transaction quarantined and sets ${quarantine}, which later checks and filters see. */
export function setQuarantine(session: Session, tx: Transaction, reason: string | undefined): void {
  tx.quarantine = reason;
  if (reason !== undefined) session.macros.set('{quarantine}', reason);
}

function rcptArgs(params: Array<{ key: string; value?: string }>): string[] {
  return params.map((p) => (p.value === undefined ? p.key : `${p.key}=${p.value}`));
}

/** Splits "FROM:<a@b> SIZE=10" into the text after the colon, or undefined. */
function afterKeyword(arg: string, keyword: string): string | undefined {
  const colon = arg.indexOf(':');
  if (colon < 0) return undefined;
  if (arg.slice(0, colon).trim().toUpperCase() !== keyword) return undefined;
  return arg.slice(colon + 1);
}

/**
 * Parses the argument of MAIL ("FROM:<path> params") or RCPT ("TO:<path>
 * params"). Sends the error reply and returns undefined when it is invalid.
 */
function parseEnvelopePath(session: Session, arg: string, kind: 'mail' | 'rcpt'): Extract<PathResult, { ok: true }> | undefined {
  const keyword = kind === 'mail' ? 'FROM' : 'TO';
  const text = afterKeyword(arg, keyword);
  if (text === undefined) {
    session.badCommand(reply(501, '5.5.2', `Syntax error in parameters scanning "${keyword.toLowerCase()}"`));
    return undefined;
  }
  const path = parsePath(text, kind);
  if (!path.ok) {
    session.send(reply(path.code, path.enhanced, path.text));
    return undefined;
  }
  return path;
}

/** Asks the checkpoint chain about a MAIL or RCPT path and its ESMTP parameters. */
function runEnvelopeCheck(session: Session, stage: 'mail' | 'rcpt', path: Extract<PathResult, { ok: true }>): Promise<Verdict> {
  return session.ctx.chain.run({
    stage,
    macros: session.macros,
    clientAddress: session.transport.remoteAddress,
    address: path.address,
    relayAllowed: session.relayAllowed,
    esmtpArgs: path.params.map((p) => (p.value === undefined ? p.key : `${p.key}=${p.value}`)),
  });
}

/** Turns a checkpoint's reject or tempfail verdict into a reply. */
export function verdictReply(verdict: Verdict, fallback: Reply): Reply {
  if (verdict.reply) return verdict.reply;
  if (verdict.action === 'tempfail') return reply(451, '4.3.2', 'Please try again later');
  return fallback;
}

/**
 * Whether a sender is acceptable without a domain. sendmail's check_mail
 * rejects "MAIL FROM:<user>" unless FEATURE(`accept_unqualified_senders') is
 * set or the daemon has the "u" modifier; local -bs sessions are exempt here.
 */
function senderQualified(session: Session, address: string): boolean {
  if (address === '' || address.includes('@')) return true;
  if (session.options.daemonName === 'stdin') return true;
  if ((session.options.daemonModifiers ?? '').includes('u')) return true;
  return session.ctx.config.features.some((f) => f.name === 'accept_unqualified_senders');
}

export async function handleMail(session: Session, arg: string): Promise<void> {
  session.didWork = true;
  const cfg = session.ctx.config;
  const privacy = cfg.privacyOptions;

  if (session.transaction) {
    session.send(reply(503, '5.5.0', 'Sender already specified'));
    return;
  }
  if (!session.heloName && (privacy.has('needmailhelo') || privacy.has('goaway'))) {
    session.send(reply(503, '5.0.0', 'Polite people say HELO first'));
    return;
  }

  const path = parseEnvelopePath(session, arg, 'mail');
  if (!path) return;

  const params = checkMailParams(path.params, {
    maxMessageSize: cfg.maxMessageSize,
    dsn: true,
    deliverByMin: deliverByMinSeconds(cfg),
  });
  if (!params.ok) {
    session.send(reply(params.code, params.enhanced, params.text));
    return;
  }
  const localhostSender = localhostSenderReply(
    cfg, path.address, session.macros.get('{client_name}'), session.options.daemonModifiers ?? '');
  if (localhostSender) {
    session.send(localhostSender);
    return;
  }
  if (!senderQualified(session, path.address)) {
    session.send(reply(553, '5.5.4', `<${path.address}>... Domain name required for sender address ${path.address}`));
    return;
  }
  const minFreeBlocks = Number(cfg.options.get('MinFreeBlocks') ?? 0);
  const shortage = await checkFreeBlocks(cfg.queueDirectory, minFreeBlocks, params.size ?? 0);
  if (shortage) {
    // NOTE: modelled on sendmail's "low on space" alert; the exact text is unconfirmed.
    session.log.warn(`low on space (${session.macros.get('_')} needs ${params.size ?? 0} bytes + ${minFreeBlocks} blocks in ${cfg.queueDirectory}), max avail: ${shortage.availableBlocks}`);
    session.send(reply(452, '4.4.5', 'Insufficient disk space; try again later'));
    return;
  }

  const id = session.ctx.store.newId();
  session.macros.set('i', id);
  session.macros.delete('{quarantine}');
  setSenderMacros(session.macros, path.address, cfg);
  const verdict = await runEnvelopeCheck(session, 'mail', path);
  if (verdict.action === 'reject' || verdict.action === 'tempfail') {
    const r = verdictReply(verdict, reply(553, '5.7.1', `<${path.address}>... Sender rejected`));
    logRejection(session, verdict, 'check_mail', path.address, r);
    session.send(r);
    return;
  }

  session.transaction = {
    id,
    sender: path.address,
    declaredSize: params.size,
    bodyType: params.body,
    ret: params.ret,
    envid: params.envid,
    deliverBy: params.deliverBy,
    recipients: [],
    quarantine: verdict.action === 'quarantine' ? verdict.reason : undefined,
    discard: verdict.action === 'discard',
  };
  if (verdict.action === 'quarantine') setQuarantine(session, session.transaction, verdict.reason);
  session.state = 'mail';
  session.send(reply(250, '2.1.0', `<${path.address}>... Sender ok`));
}

export async function handleRcpt(session: Session, arg: string): Promise<void> {
  const cfg = session.ctx.config;
  const tx = session.transaction;
  if (!tx) {
    session.send(reply(503, '5.0.0', 'Need MAIL before RCPT'));
    return;
  }

  const path = parseEnvelopePath(session, arg, 'rcpt');
  if (!path) return;
  const params = checkRcptParams(path.params, { dsn: true });
  if (!params.ok) {
    session.send(reply(params.code, params.enhanced, params.text));
    return;
  }

  const max = cfg.maxRecipientsPerMessage;
  if (max > 0 && tx.recipients.length >= max) {
    session.send(reply(452, '4.5.3', 'Too many recipients'));
    return;
  }

  setRecipientMacros(session.macros, path.address, cfg);
  const verdict = await runEnvelopeCheck(session, 'rcpt', path);
  if (verdict.action === 'reject' || verdict.action === 'tempfail') {
    const r = verdictReply(verdict, reply(550, '5.7.1', `<${path.address}>... Access denied`));
    logRejection(session, verdict, 'check_rcpt', path.address, r);
    if (verdict.source !== 'milter') await milterRejectedRecipient(session, path.address, rcptArgs(path.params), r);
    session.badCommand(r);
    return;
  }
  const unknown = localUserCheck(cfg, path.address);
  if (unknown) {
    session.log.notice(`<${path.address}>... User unknown`, 4);
    await milterRejectedRecipient(session, path.address, rcptArgs(path.params), unknown);
    session.badCommand(unknown);
    return;
  }
  if (verdict.action === 'quarantine') setQuarantine(session, tx, verdict.reason);
  if (verdict.action === 'discard') tx.discard = true;

  tx.recipients.push({ address: path.address, notify: params.notify, orcpt: params.orcpt });
  session.send(reply(250, '2.1.5', `<${path.address}>... Recipient ok`));
}

/** Logs a rejection as sendmail does: "ruleset=check_rcpt, arg1=<a>, relay=..., reject=...". */
function logRejection(session: Session, verdict: Verdict, ruleset: string, address: string, r: Reply): void {
  if (verdict.logged) return;
  const text = `${r.code} ${r.enhanced ?? ''} ${r.lines.join(' ')}`.replace(/  +/g, ' ');
  const relay = session.macros.get('_');
  session.log.notice(`ruleset=${verdict.source ?? ruleset}, arg1=<${address}>, relay=${relay}, reject=${text}`, 4);
}
