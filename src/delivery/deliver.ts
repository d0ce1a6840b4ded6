// The Deliverer takes one committed queue item to its next hops. It locks the
// item, routes its open recipients and delivers them (local mailbox or SMTP).
// It then records each recipient's new state, logs sendmail's "to=" lines,
// queues a DSN for bounced recipients, and rewrites or removes the item.

import type { Config } from '../config/types';
import type { MailResolver } from '../dns/resolver';
import type { Logger } from '../log/logger';
import { retryPriority } from '../queue/priority';
import type { QueueStore } from '../queue/store';
import type { QueueItem, QueueRecipient } from '../queue/types';
import { queueBounce } from './bounce';
import { deliverToMailbox } from './mbox';
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

/** sendmail logs successes at LogLevel 8 and up, deferrals at 9, bounces at 7. */
const LOG_LEVELS: Record<RecipientResult['status'], number> = { sent: 8, tempfail: 9, permfail: 7 };

function optionNumber(config: Config, name: string): number | undefined {
  const value = config.options.get(name);
  return typeof value === 'number' ? value : undefined;
}

export class Deliverer {
  constructor(private readonly ctx: DelivererContext) {}

  /**
   * Makes one delivery attempt for queue item `id`. Returns 'locked' when
   * another run holds it, 'skipped' when it is quarantined or (without
   * `force`) not yet due by `nextRetryTime`, 'done' when no recipient is left
   * and the item is removed, and 'deferred' when it stays queued. A
   * quarantined item is delivered only with `quarantined` (a -qQ queue run).
   */
  async deliver(id: string, opts: { force?: boolean; quarantined?: boolean } = {}): Promise<DeliverOutcome> {
    if (!(await this.ctx.store.lock(id))) return 'locked';
    let removed = false;
    let bounceId: string | undefined;
    let outcome: DeliverOutcome;
    try {
      const item = await this.ctx.store.read(id);
      const nowSeconds = Math.floor(Date.now() / 1000);
      if (item.quarantine !== undefined && !opts.quarantined) return 'skipped';
      if (!opts.force && nextRetryTime(item) > nowSeconds) return 'skipped';

      const attempt = await this.attempt(item);
      bounceId = attempt.bounceId;
      removed = attempt.removed;
      outcome = removed ? 'done' : 'deferred';
    } finally {
      if (!removed) await this.ctx.store.unlock(id);
    }
    if (bounceId !== undefined) await this.deliver(bounceId, { force: true });
    return outcome;
  }

  private async attempt(item: QueueItem): Promise<{ removed: boolean; bounceId?: string }> {
    const started = Date.now();
    const firstAttempt = item.attempts === 0;
    const routes = routeRecipients(item, this.ctx.config);
    const results = await Promise.all(routes.map((route) => this.deliverRoute(item, route, firstAttempt)));

    const newlyBounced: QueueRecipient[] = [];
    for (const rr of results) {
      this.apply(rr, newlyBounced);
      this.logRoute(item, rr, started);
    }
    newlyBounced.push(...this.expireDeferred(item, started));

    item.attempts += 1;
    item.lastAttempt = Math.floor(started / 1000);
    item.priority = retryPriority(item.priority, { retryFactor: optionNumber(this.ctx.config, 'RetryFactor') });

    const transcript = results.flatMap((r) => r.transcript);
    const bounceId = newlyBounced.length > 0 ? await this.bounce(item, newlyBounced, transcript) : undefined;

    const open = item.recipients.filter((r) => r.state === 'pending' || r.state === 'deferred');
    if (open.length === 0) {
      await this.ctx.store.remove(item.id);
      return { removed: true, bounceId };
    }
    item.statusMessage = open[open.length - 1].status;
    await this.ctx.store.update(item);
    return { removed: false, bounceId };
  }

  private async bounce(item: QueueItem, bounced: QueueRecipient[], transcript: string[]): Promise<string | undefined> {
    try {
      return await queueBounce(this.ctx, item, bounced, transcript);
    } catch (err) {
      // NOTE: the bounced recipients stay marked as bounced, so a DSN lost
      // here (for example on a full disk) is not retried.
      this.ctx.logger.child(item.id).error(`failed to queue DSN: ${(err as Error).message}`);
      return undefined;
    }
  }

  private async deliverRoute(item: QueueItem, route: Route, firstAttempt: boolean): Promise<RouteResult> {
    if (route.mailer === 'local') return this.deliverLocal(item, route);
    const tx: Transaction = {
      sender: item.sender,
      recipients: route.recipients.map((r) => ({ address: r.address, notify: r.notify, orcpt: r.orcpt })),
      headers: item.headers,
      dataPath: this.ctx.store.dataPath(item.id),
      bodySize: item.bodySize,
      eightBit: item.bodyType === '8BITMIME',
      ret: item.ret,
      envid: item.envid,
    };
    const ctx = { config: this.ctx.config, resolver: this.ctx.resolver, firstAttempt };
    const outcome = await deliverRemote(route.destination, tx, ctx);
    return { route, results: outcome.recipients, relay: outcome.relay, remoteMta: outcome.remoteMta, transcript: outcome.transcript };
  }

  private async deliverLocal(item: QueueItem, route: Route): Promise<RouteResult> {
    const results: RecipientResult[] = [];
    for (const rcpt of route.recipients) {
      const r = await deliverToMailbox(this.ctx.config.mailboxDirectory, rcpt.address, {
        sender: item.sender,
        headers: item.headers,
        dataPath: this.ctx.store.dataPath(item.id),
        date: new Date(),
      });
      if (r.status === 'sent') results.push({ address: rcpt.address, status: 'sent', dsn: '2.0.0', text: '' });
      else results.push({ address: rcpt.address, status: r.status, dsn: r.dsn, text: r.text });
    }
    return { route, results, transcript: [] };
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
    const limit = queueReturnMs(this.ctx.config);
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
