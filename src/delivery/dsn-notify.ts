// Success and delay notices (RFC 3461 NOTIFY=SUCCESS and NOTIFY=DELAY). A
// recipient that asked for SUCCESS gets a "Return receipt" when it is delivered
// to a mailbox here, or relayed to a next hop that does not offer DSN; a next
// hop that offers DSN takes the request over with the NOTIFY parameter. Items
// still deferred after Timeout.queuewarn get one delay warning for the
// recipients that did not exclude DELAY, and the item is flagged `w`. A
// BY=...;N time (RFC 2852) that runs out first brings the same warning.

import type { Config } from '../config/types';
import { initialPriority } from '../queue/priority';
import type { QueueItem, QueueRecipient } from '../queue/types';
import { writeDsnDataFile, type BounceContext } from './bounce';
import { buildDsn, type DsnRecipient } from './dsn';
import type { RecipientResult } from './smtp-client';
import { durationWords, queueReturnMs } from './timing';
import { classTimeout } from './queue-timeout-class';

/** Timeout.queuewarn default of the option table: 4 hours. */
const QUEUE_WARN_DEFAULT_MS = 4 * 60 * 60 * 1000;

/** The outcome of one route of a delivery attempt, as the notices need it. */
export interface RouteOutcome {
  recipients: QueueRecipient[];
  results: RecipientResult[];
  /** Delivered by the local mailer (a mailbox), not relayed. */
  local: boolean;
}

/** Checks whether a recipient asked for a success notice. */
export function wantsSuccessDsn(rcpt: QueueRecipient): boolean {
  return rcpt.notify?.includes('SUCCESS') ?? false;
}

/** Checks whether a recipient may get a delay warning: NOTIFY=DELAY, or no NOTIFY at all. */
export function wantsDelayDsn(rcpt: QueueRecipient): boolean {
  if (!rcpt.notify || rcpt.notify.length === 0) return true;
  return rcpt.notify.includes('DELAY');
}

/** Timeout.queuewarn in milliseconds; 0 turns delay warnings off. */
export function queueWarnMs(config: Config, item?: Pick<QueueItem, 'sender' | 'headers'>): number {
  return classTimeout(config, 'queuewarn', item) ?? QUEUE_WARN_DEFAULT_MS;
}

/** Lists the recipients sent in this attempt that get a success notice, with its action. */
export function successRecipients(routes: RouteOutcome[], now: Date): DsnRecipient[] {
  const out: DsnRecipient[] = [];
  for (const route of routes) {
    route.results.forEach((result, i) => {
      const rcpt = route.recipients[i];
      if (result.status !== 'sent' || !wantsSuccessDsn(rcpt)) return;
      if (!route.local && result.nextHopDsn) return;
      out.push({
        address: rcpt.address,
        orcpt: rcpt.orcpt,
        action: route.local ? 'delivered' : 'relayed',
        status: result.dsn && result.dsn.startsWith('2.') ? result.dsn : '2.0.0',
        reason: route.local ? 'Successfully delivered' : 'Relayed',
        remoteMta: undefined,
        lastAttempt: now,
      });
    });
  }
  return out;
}

/** Checks whether the BY= time of `item` has run out at `nowMs` (only a positive time runs out). */
function deliverByPassed(item: QueueItem, nowMs: number): boolean {
  const by = item.deliverBy;
  return by !== undefined && by.seconds > 0 && nowMs >= (item.created + by.seconds) * 1000;
}

/** Checks whether `item` asked for BY=...;R and that time has run out, so it is returned undelivered. */
export function deliverByReturnDue(item: QueueItem, nowMs: number): boolean {
  return item.deliverBy?.mode === 'R' && deliverByPassed(item, nowMs);
}

/**
 * Returns why `item` gets its delay warning now: Timeout.queuewarn passed, or
 * else (as in sendmail 8.17's dropenvelope()) the time of a BY=...;N ran out.
 * Returns undefined when no warning is due or one was sent already.
 */
export function delayWarningCause(item: QueueItem, config: Config, now: Date): 'queuewarn' | 'deliverby' | undefined {
  if (item.flags.includes('w')) return undefined;
  const warnAfter = queueWarnMs(config, item);
  if (warnAfter > 0 && now.getTime() - item.created * 1000 >= warnAfter) return 'queuewarn';
  if (item.deliverBy?.mode === 'N' && deliverByPassed(item, now.getTime())) return 'deliverby';
  return undefined;
}

/** Lists the deferred recipients of `item` that get a delay warning now. */
export function delayRecipients(item: QueueItem, config: Config, now: Date): QueueRecipient[] {
  if (delayWarningCause(item, config, now) === undefined) return [];
  return item.recipients.filter((r) => r.state === 'deferred' && wantsDelayDsn(r));
}

/**
 * Queues the success and delay notices due after one delivery attempt and
 * returns their queue ids. Marks `item` with the `w` flag when a warning went
 * out; the caller writes the item back. No notice goes to the null sender.
 */
export async function queueNotices(
  ctx: BounceContext,
  item: QueueItem,
  routes: RouteOutcome[],
  transcript: string[],
): Promise<string[]> {
  if (item.sender === '') return [];
  const now = new Date();
  const ids: string[] = [];

  const succeeded = successRecipients(routes, now);
  if (succeeded.length > 0) ids.push(await queueNotice(ctx, item, 'success', succeeded, [], now));

  const cause = delayWarningCause(item, ctx.config, now);
  const delayed = delayRecipients(item, ctx.config, now);
  if (delayed.length > 0) {
    const warnAfter = queueWarnMs(ctx.config, item);
    const giveUp = queueReturnMs(ctx.config, item);
    const recipients = delayed.map((r) => ({
      address: r.address,
      orcpt: r.orcpt,
      action: 'delayed' as const,
      status: r.dsnCode ?? '4.0.0',
      reason: (r.status ?? 'Deferred').replace(/^Deferred: /, ''),
      remoteMta: r.remoteHost,
      diagnostic: r.diagnostic,
      lastAttempt: now,
    }));
    ids.push(
      await queueNotice(ctx, item, 'delay', recipients, transcript, now, {
        delayedFor: durationWords(warnAfter),
        giveUpAfter: durationWords(giveUp),
        willRetryUntil: new Date(item.created * 1000 + giveUp),
        warning: cause === 'deliverby' ? `Warning: Delivery time (${item.deliverBy?.seconds}s) exceeded` : undefined,
      }),
    );
    item.flags += 'w';
  }
  return ids;
}

async function queueNotice(
  ctx: BounceContext,
  item: QueueItem,
  kind: 'success' | 'delay',
  recipients: DsnRecipient[],
  transcript: string[],
  now: Date,
  delay: { delayedFor?: string; giveUpAfter?: string; willRetryUntil?: Date; warning?: string } = {},
): Promise<string> {
  const id = ctx.store.newId();
  const dsn = buildDsn({
    kind,
    item,
    recipients,
    to: item.sender,
    hostName: ctx.config.hostName,
    messageId: `${id}@${ctx.config.hostName}`,
    now,
    transcript,
    ...delay,
  });

  const bodySize = await writeDsnDataFile(ctx, id, item, dsn);

  await ctx.store.commit({
    id,
    created: Math.floor(now.getTime() / 1000),
    lastAttempt: 0,
    attempts: 0,
    priority: initialPriority(bodySize, 1),
    bodyType: item.bodyType,
    flags: '',
    macros: new Map([['r', 'internal'], ['_', 'localhost']]),
    sender: '',
    recipients: [{ address: item.sender, state: 'pending' }],
    headers: dsn.headers,
    bodySize,
  });
  const subject = dsn.headers.find((h) => h.startsWith('Subject: '))?.slice('Subject: '.length) ?? kind;
  ctx.logger.child(item.id).info(`${id}: DSN: ${subject}`);
  return id;
}
