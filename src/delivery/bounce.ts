// Turns bounced recipients into a DSN queue item from <> to the sender. A bounce
// of a message whose sender is <> goes to the DoubleBounceAddress instead, and
// a failed double bounce is dropped, so bounces never loop.

import type { Config } from '../config/types';
import type { Logger } from '../log/logger';
import { initialPriority } from '../queue/priority';
import type { QueueStore } from '../queue/store';
import type { QueueItem, QueueRecipient } from '../queue/types';
import { buildDsn, DsnRecipient } from './dsn';
import { openReadStreamNoFollow } from '../queue/no-follow';

/** Persistent macro that marks a DSN sent to the postmaster about a bounce. */
export const DOUBLE_BOUNCE_MACRO = '{double_bounce}';

export interface BounceContext {
  config: Config;
  store: QueueStore;
  logger: Logger;
}

/** Checks whether the sender requested a failure DSN for this recipient (RFC 3461 section 4.1). */
export function wantsFailureDsn(rcpt: QueueRecipient): boolean {
  if (!rcpt.notify || rcpt.notify.length === 0) return true;
  return rcpt.notify.includes('FAILURE');
}

function optionString(config: Config, name: string, fallback: string): string {
  const value = config.options.get(name);
  return typeof value === 'string' && value !== '' ? value : fallback;
}

function dsnRecipient(rcpt: QueueRecipient, now: Date): DsnRecipient {
  return {
    address: rcpt.address,
    orcpt: rcpt.orcpt,
    action: 'failed',
    status: rcpt.dsnCode ?? '5.0.0',
    reason: rcpt.status ?? 'Service unavailable',
    remoteMta: rcpt.remoteHost,
    diagnostic: rcpt.diagnostic,
    lastAttempt: now,
  };
}

/** Copies the original body into the DSN data file and ends it with CRLF. */
/**
 * Writes the data file of a DSN: its text parts around the original body (or
 * none with RET=HDRS), and returns its size. A failed write removes the
 * half-made file.
 */
export async function writeDsnDataFile(
  ctx: Pick<BounceContext, 'store'>,
  id: string,
  original: QueueItem,
  dsn: { head: string; tail: string; includeBody: boolean },
): Promise<number> {
  const writer = await ctx.store.openDataFile(id);
  try {
    await writer.write(Buffer.from(dsn.head, 'latin1'));
    if (dsn.includeBody) await copyBody(ctx.store.dataPath(original.id), (c) => writer.write(c));
    await writer.write(Buffer.from(dsn.tail, 'latin1'));
    await writer.close();
  } catch (err) {
    await ctx.store.abort(id);
    throw err;
  }
  return writer.size;
}

export async function copyBody(path: string, write: (chunk: Buffer) => Promise<void>): Promise<void> {
  let last: Buffer = Buffer.alloc(0);
  for await (const chunk of await openReadStreamNoFollow(path)) {
    const buf = chunk as Buffer;
    if (buf.length === 0) continue;
    await write(buf);
    last = Buffer.concat([last, buf]).subarray(-2);
  }
  if (last.length > 0 && last.toString('latin1') !== '\r\n') await write(Buffer.from('\r\n'));
}

/**
 * Queues a failure DSN about `bounced` recipients of `item` and returns its
 * queue id, or undefined when no report is due (a failed double bounce, or
 * no recipient requested one).
 */
/**
 * Queues the DSNs for `bounced`: recipients that came from a list with an
 * owner- alias bounce to the owner (sendmail's owner- convention), the others
 * to the message's sender. Returns the ids of the DSNs queued.
 */
export async function queueOwnerBounces(
  ctx: BounceContext,
  item: QueueItem,
  bounced: QueueRecipient[],
  transcript: string[],
): Promise<string[]> {
  const groups = new Map<string, QueueRecipient[]>();
  for (const r of bounced) {
    const to = r.owner ?? item.sender;
    groups.set(to, [...(groups.get(to) ?? []), r]);
  }
  const ids: string[] = [];
  for (const [sender, group] of groups) {
    const id = await queueBounce(ctx, sender === item.sender ? item : { ...item, sender }, group, transcript);
    if (id !== undefined) ids.push(id);
  }
  return ids;
}

export async function queueBounce(
  ctx: BounceContext,
  item: QueueItem,
  bounced: QueueRecipient[],
  transcript: string[],
): Promise<string | undefined> {
  const log = ctx.logger.child(item.id);
  const reported = bounced.filter(wantsFailureDsn);
  if (reported.length === 0) return undefined;
  if (item.sender === '' && item.macros.get(DOUBLE_BOUNCE_MACRO) === '1') {
    const to = reported.map((r) => `<${r.address}>`).join(',');
    log.error(`double bounce to ${to} failed; message dropped`);
    return undefined;
  }

  const postmasterCopy = item.sender === '';
  const to = postmasterCopy ? optionString(ctx.config, 'DoubleBounceAddress', 'postmaster') : item.sender;
  const now = new Date();
  const id = ctx.store.newId();
  const dsn = buildDsn({
    kind: 'failure',
    item,
    recipients: reported.map((r) => dsnRecipient(r, now)),
    to,
    postmasterCopy,
    hostName: ctx.config.hostName,
    messageId: `${id}@${ctx.config.hostName}`,
    now,
    transcript,
  });

  const bodySize = await writeDsnDataFile(ctx, id, item, dsn);

  const macros = new Map([['r', 'internal'], ['_', 'localhost']]);
  if (postmasterCopy) macros.set(DOUBLE_BOUNCE_MACRO, '1');
  await ctx.store.commit({
    id,
    created: Math.floor(now.getTime() / 1000),
    lastAttempt: 0,
    attempts: 0,
    priority: initialPriority(bodySize, 1),
    bodyType: item.bodyType,
    flags: '',
    macros,
    sender: '',
    recipients: [{ address: to, state: 'pending' }],
    headers: dsn.headers,
    bodySize,
  });
  log.info(`${id}: DSN: ${reported[0].status}`);
  return id;
}
