// The Deliverer takes one committed queue item to its next hops. It locks the
// item, routes its open recipients and delivers them (local mailbox or SMTP).
// It then records each recipient's new state, logs sendmail's "to=" lines,
// queues a DSN for bounced recipients, and rewrites or removes the item.

import type { Config } from '../config/types';
import type { MailResolver } from '../dns/resolver';
import type { Logger } from '../log/logger';
import { retryPriority } from '../queue/priority';
import { QueueFileError } from '../queue/qf';
import type { QueueStore } from '../queue/store';
import { adoptSendmailItem } from '../queue/sendmail-queue';
import type { QueueItem, QueueRecipient } from '../queue/types';
import { queueOwnerBounces } from './bounce';
import { deliverByReturnDue, queueNotices } from './dsn-notify';
import { AliasExpander } from '../aliases/expand';
import { expandQueueItem } from '../aliases/queue-expand';
import { rewriteOutbound } from './genericstable';
import { deliverLocalRoute } from './local-delivery';
import { isLocalRoute, mailertableConfig, mailertableRecipient } from './mailertable';
import { deliverRemote } from './remote';
import { Route, routeRecipients } from './router';
import type { RecipientResult, Transaction } from './smtp-client';
import { durationWords, formatDelay, nextRetryTime, queueReturnMs } from './timing';

export { nextRetryTime } from './timing';

export interface DelivererContext {
  config: Config;
  store: QueueStore;
  logger: Logger;
  resolver: MailResolver;
}

export type DeliverOutcome = 'done' | 'deferred' | 'locked' | 'skipped';

export interface DeliverOptions {
  /** Whether to deliver before the item's retry time. */
  force?: boolean;
  /** Whether a quarantined item (an hf file) is delivered too. */
  quarantined?: boolean;
  /** Whether the commit took the item's lock for this delivery (see QueueStore.commit). */
  locked?: boolean;
  /** A receiver of sendmail's verbose lines (SMTP VERB): the dialogue with the next hop and each status. */
  verbose?: (line: string) => void;
  /** Called with each recipient's result of this attempt, e.g. for the exit status of sendmail -odi. */
  onResult?: (result: RecipientResult) => void;
}

interface RouteResult {
  route: Route;
  results: RecipientResult[];
  relay?: string;
  remoteMta?: string;
  transcript: string[];
}

/** Returns the sendmail status text of a result, as logged after "stat=". */
function statText(r: RecipientResult): string {
  if (r.status === 'sent') return r.text === '' ? 'Sent' : `Sent (${r.text})`;
  if (r.status === 'tempfail') return `Deferred: ${r.text}`;
  return r.text;
}

/** Mailers that deliver on this host; LMTP over a socket has a dialogue and is shown as a connection. */
const HOSTLESS_MAILERS = new Set(['local', 'prog', '*file*', '*include*']);

/**
 * Returns the lines sendmail shows in verbose mode for one route: where it
 * connects, the next hop's dialogue ("<<< " dropped from its replies), and
 * each recipient's status.
 */
function verboseLines(rr: RouteResult, port: number | undefined): string[] {
  const recipients = rr.results.map((r) => `<${r.address}>`).join(',');
  // The relay is logged as "name [address]"; an address literal needs no second copy.
  const host = (rr.relay ?? rr.route.destination).replace(/^(\[[^\]]*\]) \1$/, '$1');
  const lines: string[] = [];
  // A mailer without a network host (local, prog, file) is named alone: "Connecting to local...".
  const bare = HOSTLESS_MAILERS.has(rr.route.mailer) && rr.transcript.length === 0;
  // As in sendmail, the port is shown when the mailer's arguments name one (TCP $h 2526).
  const target = bare ? rr.route.mailer : `${host}${port === undefined ? '' : ` port ${port}`} via ${rr.route.mailer}`;
  // A session taken from the connection cache starts with its RSET (see SmtpClientSession.reset).
  const cached = !bare && rr.transcript[0] === '>>> RSET';
  if (recipients !== '') {
    lines.push(cached ? `${recipients}... Using cached ESMTP connection to ${host} via ${rr.route.mailer}...` : `${recipients}... Connecting to ${target}...`);
  }
  for (const line of rr.transcript) {
    if (line !== '>>> (message)') lines.push(line.startsWith('<<< ') ? line.slice(4) : line);
  }
  for (const r of rr.results) lines.push(`<${r.address}>... ${statText(r)}`);
  return lines;
}

/** sendmail logs successes at LogLevel 8 and up, deferrals at 9, bounces at 7. */
const LOG_LEVELS: Record<RecipientResult['status'], number> = { sent: 8, tempfail: 9, permfail: 7 };

function optionNumber(config: Config, name: string): number | undefined {
  const value = config.options.get(name);
  return typeof value === 'number' ? value : undefined;
}

/**
 * Logs sendmail's line for a recipient of a quarantined item:
 * "to=<a>, delay=..., pri=..., quarantine=<reason>, stat=quarantined".
 * NOTE: written when a delivery is attempted right after acceptance; with
 * DeliveryMode=queueonly or deferred no such line is written.
 */
function logQuarantined(logger: Logger, item: QueueItem, nowSeconds: number): void {
  const open = item.recipients.filter((r) => r.state === 'pending' || r.state === 'deferred');
  if (open.length === 0) return;
  const to = open.map((r) => `<${r.address}>`).join(',');
  logger
    .child(item.id)
    .info(`to=${to}, delay=${formatDelay(nowSeconds - item.created)}, pri=${item.priority}, quarantine=${item.quarantine}, stat=quarantined`);
}

/** Tells whether a recipient asked for success or delay notices (NOTIFY=SUCCESS or DELAY). */
function asksForNotice(item: QueueItem): boolean {
  return item.recipients.some((r) => r.notify?.some((n) => n === 'SUCCESS' || n === 'DELAY') === true);
}

export class Deliverer {
  private expander: AliasExpander | undefined;

  constructor(private readonly ctx: DelivererContext) {}

  /**
   * Makes one delivery attempt for queue item `id`. Returns 'locked' when
   * another run holds it, 'skipped' when it is quarantined or (without
   * `force`) not yet due by `nextRetryTime`, 'done' when no recipient is left
   * and the item is removed, and 'deferred' when it stays queued. A
   * quarantined item is delivered only with `quarantined` (a -qQ queue run).
   */
  async deliver(id: string, opts: DeliverOptions = {}): Promise<DeliverOutcome> {
    // `locked`: the commit took the lock for this delivery (see QueueStore.commit).
    const locked = opts.locked === true && this.ctx.store.holdsLock(id);
    if (!locked && !(await this.ctx.store.lock(id))) return 'locked';
    let removed = false;
    let bounceId: string | undefined;
    let noticeIds: string[] = [];
    let outcome: DeliverOutcome;
    try {
      const item = await this.readOrSetAside(id);
      if (item === undefined) return 'skipped';
      const nowSeconds = Math.floor(Date.now() / 1000);
      if (item.quarantine !== undefined && !opts.quarantined) {
        logQuarantined(this.ctx.logger, item, nowSeconds);
        return 'skipped';
      }
      if (!opts.force && nextRetryTime(item) > nowSeconds) return 'skipped';

      const attempt = await this.attempt(item, opts.verbose, opts.onResult);
      bounceId = attempt.bounceId;
      noticeIds = attempt.noticeIds;
      removed = attempt.removed;
      outcome = removed ? 'done' : 'deferred';
    } finally {
      if (!removed) await this.ctx.store.unlock(id);
    }
    if (bounceId !== undefined) await this.deliver(bounceId, { force: true });
    for (const noticeId of noticeIds) await this.deliver(noticeId, { force: true });
    return outcome;
  }

  /**
   * Reads the control file of a locked item. One that cannot be parsed is set
   * aside as Qf<id> (queue recovery leaves that check to the first reader).
   */
  private async readOrSetAside(id: string): Promise<QueueItem | undefined> {
    let item: QueueItem;
    try {
      item = await this.ctx.store.read(id);
    } catch (err) {
      // Another run (this process or `posthorn -q`) delivered and removed the
      // item between its queue listing and this lock: nothing is left to do.
      const code = (err as NodeJS.ErrnoException).code;
      if (code === 'ENOENT') return undefined;
      // A control file that is too large, not a regular file or a symlink will not read better next time.
      const unusable = code === 'EFBIG' || code === 'ENOTREG' || code === 'ELOOP';
      if (!(err instanceof QueueFileError) && !unusable) throw err;
      await this.ctx.store.setAside(id, (err as Error).message);
      return undefined;
    }
    // While recovery runs in the background it may not have seen this item yet.
    // An item in the commit journal has no df until it is written out.
    if (this.ctx.store.recoveryRunning && !this.ctx.store.inJournal(id) && !(await this.ctx.store.hasDataFile(id))) {
      await this.ctx.store.setAside(id, `data file df${id} is missing`);
      return undefined;
    }
    if (item.fromSendmail) {
      const hostName = this.ctx.config.macros.get('j') ?? 'localhost';
      await adoptSendmailItem(this.ctx.store, item, hostName, this.ctx.logger);
    }
    return item;
  }

  private async attempt(
    item: QueueItem,
    verbose?: (line: string) => void,
    onResult?: (result: RecipientResult) => void,
  ): Promise<{ removed: boolean; bounceId?: string; noticeIds: string[] }> {
    const started = Date.now();
    const firstAttempt = item.attempts === 0;
    // As sendmail's sendenvelope(), no delivery is tried once a BY=...;R time has run out.
    const returnDue = deliverByReturnDue(item, started);
    const results = returnDue ? [] : await this.deliverAll(item, firstAttempt);

    const newlyBounced: QueueRecipient[] = [];
    for (const rr of results) this.apply(rr, newlyBounced);
    if (returnDue) newlyBounced.push(...this.expireDeliverBy(item));
    newlyBounced.push(...this.expireDeferred(item, started));
    const open = item.recipients.filter((r) => r.state === 'pending' || r.state === 'deferred');
    // Bounces and notices copy the df, and a queued item needs its files: out
    // of the commit journal first, before the log reports the item deferred.
    if (newlyBounced.length > 0 || open.length > 0 || asksForNotice(item)) await this.ctx.store.materialize(item);
    for (const rr of results) {
      this.logRoute(item, rr, started);
      if (verbose !== undefined) {
        const port = this.ctx.config.mailers.find((m) => m.name === rr.route.mailer)?.port;
        for (const line of verboseLines(rr, port)) verbose(line);
      }
      if (onResult !== undefined) for (const r of rr.results) onResult(r);
    }

    item.attempts += 1;
    item.lastAttempt = Math.floor(started / 1000);
    item.priority = retryPriority(item.priority, { retryFactor: optionNumber(this.ctx.config, 'RetryFactor') });

    const transcript = results.flatMap((r) => r.transcript);
    if (returnDue) transcript.push(`Delivery time (${item.deliverBy?.seconds}s) expired`, 'Message will be deleted from queue');
    const [bounceId, ...ownerBounceIds] = newlyBounced.length > 0 ? await this.bounce(item, newlyBounced, transcript) : [];
    const noticeIds = [...ownerBounceIds, ...(await this.notices(item, results, transcript))];

    if (open.length === 0) {
      await this.ctx.store.remove(item.id);
      return { removed: true, bounceId, noticeIds };
    }
    item.statusMessage = open[open.length - 1].status;
    await this.ctx.store.update(item);
    return { removed: false, bounceId, noticeIds };
  }

  /** Expands aliases, routes the open recipients and delivers every route. */
  private async deliverAll(item: QueueItem, firstAttempt: boolean): Promise<RouteResult[]> {
    const expansionResults = this.expandAliases(item);
    const failed = new Set(expansionResults.flatMap((r) => r.route.recipients));
    const routes = routeRecipients(item, this.ctx.config)
      .map((route) => ({ ...route, recipients: route.recipients.filter((r) => !failed.has(r)) }))
      .filter((route) => route.recipients.length > 0);
    // Local delivery reads the df, which an item in the commit journal does not have yet.
    if (this.ctx.store.inJournal(item.id) && routes.some((route) => isLocalRoute(route, this.ctx.config))) {
      await this.ctx.store.materialize(item);
    }
    const delivered = await Promise.all(routes.map((route) => this.deliverRoute(item, route, firstAttempt)));
    return [...expansionResults, ...delivered];
  }

  /**
   * Bounces every open recipient of an item whose BY=...;R time ran out, with
   * sendmail 8.17's status 5.4.7 and text from dropenvelope().
   */
  private expireDeliverBy(item: QueueItem): QueueRecipient[] {
    const open = item.recipients.filter((r) => r.state === 'pending' || r.state === 'deferred');
    const text = `delivery time expired ${item.deliverBy?.seconds}s`;
    for (const rcpt of open) {
      rcpt.state = 'bounced';
      rcpt.diagnostic = rcpt.diagnostic ?? (rcpt.status?.replace(/^Deferred: /, '') || undefined);
      rcpt.status = text;
      rcpt.dsnCode = '5.4.7';
    }
    return open;
  }

  private async bounce(item: QueueItem, bounced: QueueRecipient[], transcript: string[]): Promise<string[]> {
    try {
      return await queueOwnerBounces(this.ctx, item, bounced, transcript);
    } catch (err) {
      // NOTE: the bounced recipients stay marked as bounced, so a DSN lost
      // here (for example on a full disk) is not retried.
      this.ctx.logger.child(item.id).error(`failed to queue DSN: ${(err as Error).message}`);
      return [];
    }
  }

  /** Queues the success and delay notices of this attempt (NOTIFY=SUCCESS, DELAY). */
  private async notices(item: QueueItem, results: RouteResult[], transcript: string[]): Promise<string[]> {
    const routes = results.map((r) => ({ recipients: r.route.recipients, results: r.results, local: r.route.mailer === 'local' }));
    try {
      return await queueNotices(this.ctx, item, routes, transcript);
    } catch (err) {
      this.ctx.logger.child(item.id).error(`failed to queue DSN: ${(err as Error).message}`);
      return [];
    }
  }

  private async deliverRoute(item: QueueItem, route: Route, firstAttempt: boolean): Promise<RouteResult> {
    if (isLocalRoute(route, this.ctx.config)) return this.deliverLocal(item, route, firstAttempt);
    const tx: Transaction = {
      sender: item.sender,
      recipients: route.recipients.map((r) => ({ address: mailertableRecipient(r.address, this.ctx.config), notify: r.notify, orcpt: r.orcpt })),
      headers: item.headers,
      dataPath: this.ctx.store.dataPath(item.id),
      body: this.ctx.store.takeBody(item.id),
      bodySize: item.bodySize,
      eightBit: item.bodyType === '8BITMIME',
      ret: item.ret,
      envid: item.envid,
      deliverBy: item.deliverBy && { ...item.deliverBy, created: item.created },
    };
    const logger = this.ctx.logger.child(item.id);
    const ctx = { config: this.ctx.config, resolver: this.ctx.resolver, firstAttempt, logger };
    const log = (m: string): void => logger.error(m);
    Object.assign(tx, rewriteOutbound(route.recipients[0]?.owner ?? item.sender, item.headers, this.ctx.config, log));
    const outcome = await deliverRemote(route.destination, tx, route.mailertable ? { ...ctx, config: mailertableConfig(ctx.config, route) } : ctx);
    return { route, results: outcome.recipients, relay: outcome.relay, remoteMta: outcome.remoteMta, transcript: outcome.transcript };
  }

  /** Local mailbox, LMTP, |program and /file delivery (see local-delivery.ts). */
  private async deliverLocal(item: QueueItem, route: Route, firstAttempt: boolean): Promise<RouteResult> {
    const ctx = { config: this.ctx.config, dataPath: this.ctx.store.dataPath(item.id), firstAttempt, logger: this.ctx.logger.child(item.id) };
    const { results, transcript } = await deliverLocalRoute(item, route.recipients, route.mailer, ctx);
    return { route, results, transcript };
  }

  /**
   * Replaces aliased recipients by their targets (aliases, :include:,
   * .forward, virtusertable). Recipients whose expansion fails come back as
   * results of a "local" route so that they are logged and bounced like
   * delivery failures.
   */
  private expandAliases(item: QueueItem): RouteResult[] {
    const log = this.ctx.logger.child(item.id);
    this.expander ??= new AliasExpander(this.ctx.config, (m) => log.info(m, 9));
    const failures = expandQueueItem(item, this.expander, (m) => log.info(m, 10));
    if (failures.length === 0) return [];
    const route: Route = { mailer: 'local', destination: this.ctx.config.hostName, recipients: failures.map((f) => f.recipient) };
    return [{ route, results: failures.map((f) => f.result), transcript: [] }];
  }

  /** Writes each result into its recipient; collects the ones that bounced now. */
  private apply(rr: RouteResult, newlyBounced: QueueRecipient[]): void {
    rr.results.forEach((result, i) => {
      const rcpt = rr.route.recipients[i];
      rcpt.dsnCode = result.dsn;
      rcpt.status = statText(result);
      rcpt.diagnostic = result.diagnostic;
      rcpt.remoteHost = result.diagnostic ? rr.remoteMta : undefined;
      if (result.status === 'sent') rcpt.state = 'sent';
      else if (result.status === 'tempfail') rcpt.state = 'deferred';
      else {
        rcpt.state = 'bounced';
        newlyBounced.push(rcpt);
      }
    });
  }

  /** Bounces recipients still deferred after Timeout.queuereturn. */
  private expireDeferred(item: QueueItem, now: number): QueueRecipient[] {
    const limit = queueReturnMs(this.ctx.config, item);
    if (now - item.created * 1000 < limit) return [];
    const expired = item.recipients.filter((r) => r.state === 'deferred');
    const text = `Cannot send message for ${durationWords(limit)}`;
    for (const rcpt of expired) {
      rcpt.state = 'bounced';
      rcpt.diagnostic = rcpt.diagnostic ?? rcpt.status;
      rcpt.status = text;
      rcpt.dsnCode = '4.4.7';
    }
    return expired;
  }

  /** Logs one "to=" line per group of recipients with the same outcome. */
  private logRoute(item: QueueItem, rr: RouteResult, started: number): void {
    const log = this.ctx.logger.child(item.id);
    const now = Date.now();
    const groups = new Map<string, { recipients: string[]; result: RecipientResult }>();
    for (const result of rr.results) {
      const key = `${result.status}\n${result.dsn}\n${statText(result)}`;
      const group = groups.get(key) ?? { recipients: [], result };
      group.recipients.push(`<${result.address}>`);
      groups.set(key, group);
    }
    for (const { recipients, result } of groups.values()) {
      const fields = [
        `to=${recipients.join(',')}`,
        `delay=${formatDelay(now / 1000 - item.created)}`,
        `xdelay=${formatDelay((now - started) / 1000)}`,
        `mailer=${rr.route.mailer}`,
        `pri=${item.priority}`,
      ];
      if (rr.relay) fields.push(`relay=${rr.relay}`);
      fields.push(`dsn=${result.dsn}`, `stat=${statText(result)}`);
      log.info(fields.join(', '), LOG_LEVELS[result.status]);
    }
  }
}
