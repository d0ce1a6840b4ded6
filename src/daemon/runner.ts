// Runs deliveries: right after a message is accepted (DeliveryMode=background),
// and as queue runs over every item (-q, -q15m). A bounded number of
// deliveries run at once; an item is never delivered by two of them.

import * as path from 'node:path';
import type { Logger } from '../log/logger';
import type { QueueStore } from '../queue/store';
import type { Deliverer } from '../delivery/deliver';
import { nextRetryTime } from '../delivery/deliver';
import type { ControlFileKind } from '../queue/store';
import { queueRunIds, type QueueRunPolicy } from '../queue/sort';
import { readQueueHeadSync, SortKeys } from '../queue/sort-keys';

/** Items a queue run goes through between two turns of the event loop. */
const ITEMS_PER_TURN = 1024;

export interface RunnerOptions {
  /** Deliveries in flight at once. */
  concurrency: number;
  /**
   * QueueSortOrder, MinQueueAge, MaxQueueRunSize and QueueFactor for queue
   * runs; a function so that a configuration reload takes effect. Without it
   * a run takes the items in directory order.
   */
  policy?: () => QueueRunPolicy;
}

export interface QueueRunOptions {
  /** Deliver even if the item's retry time has not come (an explicit -q). */
  force: boolean;
  /** Only items for which this returns true (the -qI/-qR/-qS selections). */
  select?: (id: string) => boolean | Promise<boolean>;
  /** 'hf' for -qQ: run the quarantined items, which are then delivered normally. */
  kind?: ControlFileKind;
  /**
   * Runs even while another queue run is in progress (ETRN: sendmail forks a
   * run for each). schedule() still tries each item once at a time.
   */
  overlap?: boolean;
  /** -q -v: receives the dialogue and status lines of each delivery, as sendmail -v shows them. */
  verbose?: (line: string) => void;
}

export class DeliveryRunner {
  private readonly waiting: string[] = [];
  private readonly queued = new Set<string>();
  private readonly active = new Set<string>();
  private readonly idleWaiters: Array<() => void> = [];
  /** Queue runs waiting for the items they scheduled (see settled()). */
  private readonly runWaiters = new Set<{ pending: Set<string>; resolve: () => void }>();
  private runningQueue = false;
  /** Quarantined items that a -qQ run may deliver. */
  private readonly quarantinedRun = new Set<string>();

  constructor(
    private readonly deliverer: Deliverer,
    private readonly store: QueueStore,
    private readonly logger: Logger,
    private readonly options: RunnerOptions,
  ) {}

  /** Items whose lock this process took at commit; their delivery does not lock again. */
  private readonly lockedAtCommit = new Set<string>();
  /** Scratch space for isDue(), reused for every item. */
  private readonly headBuffer = Buffer.allocUnsafe(4096);
  private readonly headKeys = new SortKeys(['']);

  /** Set by stop(): nothing new is scheduled. */
  private stopped = false;
  /** The verbose receiver of the queue run in progress (-q -v). */
  private verboseRun: ((line: string) => void) | undefined;

  /**
   * Stops for a shutdown: drops the deliveries not yet started (their items
   * stay queued for the next run, and locks taken at commit are released),
   * then waits for the running ones, at most `graceMs`. A delivery still
   * going after that is abandoned with the process. Its item stays queued,
   * and its lock names a dead process, so the next start removes the lock.
   */
  async stop(graceMs: number): Promise<void> {
    this.stopped = true;
    this.waiting.length = 0;
    this.queued.clear();
    this.settle();
    // At the same time: an item still in the commit journal is written out
    // (fsyncs), and the writes share the folder fsyncs.
    const waiting = [...this.lockedAtCommit].filter((id) => !this.active.has(id));
    await Promise.all(waiting.map((id) => this.store.unlock(id).catch(() => undefined)));
    let timer: NodeJS.Timeout | undefined;
    const grace = new Promise<void>((resolve) => {
      timer = setTimeout(resolve, graceMs);
    });
    await Promise.race([this.idle(), grace]);
    clearTimeout(timer);
  }

  /** Returns the ids of the deliveries running now. */
  runningIds(): string[] {
    return [...this.active];
  }

  /** Schedules one item for delivery as soon as a slot is free. */
  schedule(id: string, force = true, locked = false): void {
    if (this.stopped) {
      if (locked) void this.store.unlock(id).catch(() => undefined);
      return;
    }
    if (locked) this.lockedAtCommit.add(id);
    if (this.queued.has(id) || this.active.has(id)) return;
    this.queued.add(id);
    this.waiting.push(force ? id : `?${id}`);
    this.pump();
  }

  /** Runs the whole queue once; resolves when every selected item has been tried. */
  async runQueue(opts: QueueRunOptions): Promise<number> {
    const overlap = opts.overlap === true;
    if (this.runningQueue && !overlap) return 0;
    if (!overlap) this.runningQueue = true;
    if (opts.verbose) this.verboseRun = opts.verbose;
    let count = 0;
    try {
      // Journals left by a process that is gone (a worker that died) become df
      // and qf for this run. When the recovery wrote nothing out, its read of
      // the folder serves as the run's listing, so a deep queue is read once.
      const recovery = await this.store.recoverJournals().catch((err: unknown) => {
        this.logger.error(`commit journal recovery failed: ${(err as Error).message}`);
        return undefined;
      });
      const names = recovery?.written === 0 ? recovery.names : undefined;
      const policy = this.options.policy?.();
      const kind = opts.kind ?? 'qf';
      const ids = policy ? await queueRunIds(this.store, policy, { kind, names }) : await this.store.list(kind, names);
      let checked = 0;
      // -q -v delivers one item after another, each headed by sendmail's "Running" line.
      const inTurn: string[] = [];
      const scheduled: string[] = [];
      for (const id of ids) {
        // Deliveries already scheduled need turns of the event loop: awaiting
        // select() only runs microtasks, and the due check reads file heads
        // synchronously.
        if (++checked % ITEMS_PER_TURN === 0) await new Promise<void>((resolve) => setImmediate(resolve));
        if (this.stopped) break;
        if (opts.select && !(await opts.select(id))) continue;
        if (!opts.force && !this.isDue(id, kind)) continue;
        if (kind === 'hf') this.quarantinedRun.add(id);
        if (opts.verbose) inTurn.push(id);
        else {
          this.schedule(id, opts.force);
          scheduled.push(id);
        }
        count++;
      }
      for (const [i, id] of inTurn.entries()) {
        if (this.stopped) break;
        opts.verbose?.('');
        opts.verbose?.(`Running ${path.join(this.store.dir, id)} (sequence ${i + 1} of ${inTurn.length})`);
        this.schedule(id, opts.force);
        await this.settled([id]);
      }
      // Only this run's items: immediate deliveries of new mail keep the
      // daemon busy, and waiting for all of them would hold up the next runs.
      await this.settled(scheduled);
    } finally {
      if (!overlap) this.runningQueue = false;
      if (opts.verbose) this.verboseRun = undefined;
    }
    return count;
  }

  /** Resolves when none of `ids` is waiting for or in a delivery. */
  private settled(ids: string[]): Promise<void> {
    const pending = new Set(ids.filter((id) => this.queued.has(id) || this.active.has(id)));
    if (pending.size === 0) return Promise.resolve();
    return new Promise((resolve) => this.runWaiters.add({ pending, resolve }));
  }

  /** Lets the queue runs whose items are all done go on. */
  private settle(): void {
    for (const waiter of this.runWaiters) {
      for (const id of waiter.pending) {
        if (!this.queued.has(id) && !this.active.has(id)) waiter.pending.delete(id);
      }
      if (waiter.pending.size > 0) continue;
      this.runWaiters.delete(waiter);
      waiter.resolve();
    }
  }

  /** Resolves when no delivery is waiting or running. */
  idle(): Promise<void> {
    if (this.waiting.length === 0 && this.active.size === 0) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  /**
   * Tests whether an item's retry time has come, from the head of its control
   * file (the T, K and N lines, see sort-keys.ts): a periodic run over a deep
   * queue need not parse every file. An unreadable item counts as due and is
   * left to the deliverer, which sets it aside and logs why.
   */
  private isDue(id: string, kind: ControlFileKind): boolean {
    readQueueHeadSync(this.store.controlPath(id, kind), this.headBuffer, this.headKeys, 0);
    const item = this.headKeys.item(0);
    return item === undefined || nextRetryTime(item) * 1000 <= Date.now();
  }

  private pump(): void {
    while (!this.stopped && this.active.size < this.options.concurrency && this.waiting.length > 0) {
      const entry = this.waiting.shift()!;
      const force = !entry.startsWith('?');
      const id = force ? entry : entry.slice(1);
      this.queued.delete(id);
      this.active.add(id);
      void this.deliver(id, force);
    }
    if (this.waiting.length === 0 && this.active.size === 0) {
      for (const resolve of this.idleWaiters.splice(0)) resolve();
    }
  }

  private async deliver(id: string, force: boolean): Promise<void> {
    try {
      const locked = this.lockedAtCommit.delete(id);
      await this.deliverer.deliver(id, { force, quarantined: this.quarantinedRun.has(id), locked, verbose: this.verboseRun });
    } catch (err) {
      // A system error (EROFS, ENOSPC) is for the administrator to fix, and its message names it.
      // Any other error is a bug, so its stack is logged too.
      const system = (err as NodeJS.ErrnoException).code !== undefined;
      this.logger.child(id).error(`delivery failed: ${system ? (err as Error).message : ((err as Error).stack ?? err)}`);
    } finally {
      // A queue recovery put off until the first delivery is done (see QueueStore.init).
      this.store.startDeferredRecovery();
      this.quarantinedRun.delete(id);
      this.active.delete(id);
      // The commit of this item took its lock while a queue run was delivering
      // it (that attempt found it locked): deliver it now, with the lock.
      if (this.lockedAtCommit.delete(id)) this.schedule(id, true, true);
      this.pump();
      if (this.runWaiters.size > 0) this.settle();
    }
  }
}
