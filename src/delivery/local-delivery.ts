// Delivery of a local route: alias targets that are |programs or /files go
// to the prog and *file* mailers one by one; local users go to the local
// mailer, which is the built-in mbox mailer or an LMTP program or socket
// (see local-lmtp.ts). LMTP takes all users of the route in one transaction.

import { dontBlameSendmail } from '../aliases/safety';
import type { Config } from '../config/types';
import type { QueueItem, QueueRecipient } from '../queue/types';
import { deliverToFile } from './file-mailer';
import type { Logger } from '../log/logger';
import { clientTlsFor } from '../tls/client';
import { deliverLmtpIpc, deliverLmtpProgram, type LmtpContext } from './lmtp';
import { ipcMailer, localMailer, type LocalMailer } from './local-lmtp';
import { deliverToMailbox } from './mbox';
import { deliverToProgram } from './program';
import type { RecipientResult, Transaction } from './smtp-client';
import { clientTimeouts } from './timing';
import { progCommand } from './cf-mailer';
import { runAsFor } from './run-as';
import { isKnownLocalName, localUserCheckMode } from '../server/local-user-check';

export interface LocalRouteContext {
  config: Config;
  dataPath: string;
  firstAttempt: boolean;
  /** Logger of the queue item, for the STARTTLS=client lines of LMTP over TCP. */
  logger?: Logger;
}

/** Checks whether a recipient is a |program or /file target that alias expansion produced. */
export function isSpecialTarget(rcpt: QueueRecipient): boolean {
  return rcpt.parent !== undefined && (rcpt.address.startsWith('|') || rcpt.address.startsWith('/'));
}

/** Returns the user name the local mailer delivers to: the local part, without a leading backslash. */
export function localUser(address: string): string {
  const at = address.lastIndexOf('@');
  return (at < 0 ? address : address.slice(0, at)).replace(/^\\/, '');
}

/**
 * Delivers the recipients of a local route (mailer "local", or an LMTP
 * mailer such as cyrusv2 that mailertable chose). Returns one result per
 * recipient, in route order, and the transcript lines for DSNs.
 */
export async function deliverLocalRoute(
  item: QueueItem,
  recipients: QueueRecipient[],
  mailerName: string,
  ctx: LocalRouteContext,
): Promise<{ results: RecipientResult[]; transcript: string[] }> {
  const results: RecipientResult[] = new Array(recipients.length);
  const transcript: string[] = [];
  const users: number[] = [];
  const dbs = dontBlameSendmail(ctx.config);

  for (let i = 0; i < recipients.length; i++) {
    const rcpt = recipients[i];
    const msg = { sender: rcpt.owner ?? item.sender, headers: item.headers, dataPath: ctx.dataPath };
    if (isSpecialTarget(rcpt) && rcpt.address.startsWith('|')) {
      // A program runs as its controlling user, or as DefaultUser for the alias
      // file (runAsFor); one from a user's file never runs as root.
      const run = await deliverToProgram(rcpt.address, rcpt.address.slice(1), msg, { account: runAsFor(rcpt.ctladdr, ctx.config), run: progCommand(ctx.config, rcpt.address.slice(1)) });
      results[i] = run.result;
      transcript.push(...run.output.map((l) => `${rcpt.address}: ${l}`));
    } else if (isSpecialTarget(rcpt)) {
      const safeEnv = ctx.config.options.get('SafeFileEnvironment');
      results[i] = await deliverToFile(rcpt.address, rcpt.address, msg, {
        safeFileEnvironment: typeof safeEnv === 'string' && safeEnv !== '' ? safeEnv : undefined,
        dbs,
        // A file from a .forward or :include: file is written as its controlling user.
        runAs: rcpt.ctladdr !== undefined ? runAsFor(rcpt.ctladdr, ctx.config) : undefined,
      });
    } else {
      users.push(i);
    }
  }
  if (users.length === 0) return { results, transcript };

  const mailer: LocalMailer = ipcMailer(ctx.config, mailerName) ?? localMailer(ctx.config);
  if (mailer.kind === 'mbox') {
    // With LocalUserCheck=passwd an unknown name bounces here as sendmail's
    // local mailer does ("User unknown"), whether it came from the command
    // line or from an alias, because the RCPT check does not see those.
    // postmaster is exempt, so that a double bounce to it is not dropped.
    const checkUsers = localUserCheckMode(ctx.config) === 'passwd';
    // "alice", "ALICE" and "alice@<our name>" are one local user, who gets one
    // copy, as sendmail's local mailer (no F=u) folds the case and drops
    // duplicates. "alice+x" stays a recipient of its own, as in sendmail.
    const byUser = new Map<string, RecipientResult>();
    for (const i of users) {
      const rcpt = recipients[i];
      const name = localUser(rcpt.address).replace(/^"(.*)"$/, '$1');
      const earlier = byUser.get(name.toLowerCase());
      if (earlier !== undefined) {
        results[i] = { ...earlier, address: rcpt.address };
        continue;
      }
      if (checkUsers && name.toLowerCase() !== 'postmaster' && !isKnownLocalName(ctx.config, name)) {
        results[i] = { address: rcpt.address, status: 'permfail', dsn: '5.1.1', text: 'User unknown' };
      } else {
        const r = await deliverToMailbox(ctx.config.mailboxDirectory, localUser(rcpt.address), {
          sender: rcpt.owner ?? item.sender,
          headers: item.headers,
          dataPath: ctx.dataPath,
          date: new Date(),
        });
        results[i] = r.status === 'sent' ? { address: rcpt.address, status: 'sent', dsn: '2.0.0', text: '' } : { address: rcpt.address, ...r };
      }
      byUser.set(name.toLowerCase(), results[i]);
    }
    return { results, transcript };
  }

  // One LMTP transaction per envelope sender (owner- aliases change it).
  const bySender = new Map<string, number[]>();
  for (const i of users) {
    const sender = recipients[i].owner ?? item.sender;
    bySender.set(sender, [...(bySender.get(sender) ?? []), i]);
  }
  const lmtp: LmtpContext = {
    heloName: ctx.config.hostName,
    timeouts: clientTimeouts(ctx.config, ctx.firstAttempt),
    hostName: mailer.kind === 'lmtp-program' ? mailer.path : 'localhost',
    mailerName: mailer.kind === 'lmtp-ipc' ? mailer.name : 'local',
    tls: ctx.logger ? clientTlsFor(ctx.config, ctx.logger) : undefined,
    logger: ctx.logger,
  };
  for (const [sender, indexes] of bySender) {
    const tx: Transaction = {
      sender,
      recipients: indexes.map((i) => ({ address: localUser(recipients[i].address), notify: recipients[i].notify, orcpt: recipients[i].orcpt })),
      headers: item.headers,
      dataPath: ctx.dataPath,
      bodySize: item.bodySize,
      eightBit: item.bodyType === '8BITMIME',
      ret: item.ret,
      envid: item.envid,
    };
    const run = mailer.kind === 'lmtp-program'
      ? await deliverLmtpProgram(mailer.path, mailer.argv, tx, lmtp)
      : await deliverLmtpIpc(mailer.target, tx, lmtp);
    transcript.push(...run.transcript);
    indexes.forEach((recipientIndex, k) => {
      const r = run.results[k];
      results[recipientIndex] = { ...r, address: recipients[recipientIndex].address };
    });
  }
  return { results, transcript };
}
