// Applies alias expansion to a queue item before it is routed. Each open
// recipient that was given in the envelope is replaced by its targets. The
// targets keep the original address as ORCPT (for DSNs) and in `parent`, so
// they are never expanded again. A recipient whose expansion fails stays in
// the item with the failure as its result, and so does a list member that
// failed for good (an :include: that cannot be read, an unsafe program).

import type { QueueItem, QueueRecipient } from '../queue/types';
import type { RecipientResult } from '../delivery/smtp-client';
import type { AliasExpander, Target } from './expand';

export interface ExpansionFailure {
  recipient: QueueRecipient;
  result: RecipientResult;
}

/** Returns the queue address of a target: "user", "|command", "/file" or "user@domain". */
export function targetAddress(target: Target): string {
  switch (target.kind) {
    case 'local':
      return target.user;
    case 'remote':
      return target.address;
    case 'program':
      return `|${target.command}`;
    case 'file':
      return target.path;
  }
}

/** Splits "550 5.7.1 Cannot mail directly to programs" into its DSN and text. */
function replyParts(reply: string): { dsn: string; text: string } {
  const m = /^\d{3} (\d\.\d{1,3}\.\d{1,3}) (.*)$/.exec(reply);
  return m ? { dsn: m[1], text: m[2] } : { dsn: '5.0.0', text: reply };
}

/**
 * Expands the open, unexpanded recipients of `item` in place. Returns the
 * recipients whose expansion failed, with their results, for the caller to
 * record like delivery results.
 */
export function expandQueueItem(item: QueueItem, expander: AliasExpander, log: (message: string) => void): ExpansionFailure[] {
  const failures: ExpansionFailure[] = [];
  const next: QueueRecipient[] = [];
  const present = new Set(item.recipients.filter((r) => r.state !== 'bounced').map((r) => r.address.toLowerCase()));

  for (const rcpt of item.recipients) {
    const open = rcpt.state === 'pending' || rcpt.state === 'deferred';
    if (!open || rcpt.parent !== undefined) {
      next.push(rcpt);
      continue;
    }
    const expansion = expander.expand(rcpt.address);
    if (expansion.error !== undefined) {
      const { dsn, text } = replyParts(expansion.error.reply);
      failures.push({ recipient: rcpt, result: { address: rcpt.address, status: expansion.error.status, dsn, text } });
      next.push(rcpt);
      continue;
    }
    if (!expansion.changed) {
      next.push(rcpt);
      continue;
    }
    const expandedList = expansion.targets.map((t) => targetAddress(t.target)).join(', ');
    log(`alias ${rcpt.address} => ${expandedList}`);
    present.delete(rcpt.address.toLowerCase());
    // As in sendmail, a list member that failed for good bounces on its own while the others get the message.
    for (const error of expansion.nested) {
      const address = error.address ?? rcpt.address;
      if (error.status !== 'permfail' || present.has(address.toLowerCase())) continue;
      present.add(address.toLowerCase());
      const member: QueueRecipient = { address, state: 'pending', parent: rcpt.address, orcpt: rcpt.orcpt ?? `rfc822;${rcpt.address}` };
      if (rcpt.notify !== undefined) member.notify = rcpt.notify;
      if (error.owner !== undefined) member.owner = error.owner;
      const { dsn, text } = replyParts(error.reply);
      failures.push({ recipient: member, result: { address, status: 'permfail', dsn, text } });
      next.push(member);
    }
    for (const { target, owner } of expansion.targets) {
      const address = targetAddress(target);
      if (present.has(address.toLowerCase())) continue;
      present.add(address.toLowerCase());
      const added: QueueRecipient = {
        address,
        state: 'pending',
        parent: rcpt.address,
        orcpt: rcpt.orcpt ?? `rfc822;${rcpt.address}`,
      };
      if (rcpt.notify !== undefined) added.notify = rcpt.notify;
      if (target.kind === 'program' || target.kind === 'file') {
        if (target.ctladdr !== undefined) added.ctladdr = target.ctladdr;
      }
      // The owner becomes the envelope sender of delivery and gets the DSNs of these recipients.
      if (owner !== undefined) added.owner = owner;
      next.push(added);
    }
  }
  item.recipients = next;
  return failures;
}
