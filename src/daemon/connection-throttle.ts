// ConnectionRateThrottle and DelayLA, the two cases of sendmail's
// refuseconnections() that slow a daemon down without refusing anyone:
//
// - ConnectionRateThrottle=N: per daemon, the connections of one clock
//   second are counted; each one past N waits one second before its session
//   starts, logged (LogLevel > 8) as
//   "deferring connections on daemon <name>: <N> per second".
// - DelayLA=L: while the load average (as a whole number) is at least L, each
//   connection waits one second, logged (LogLevel > 8) at most every 90
//   seconds as "delaying connections on daemon <name>: load average=<la> >= <L>".
//
// sendmail's accept loop sleeps, so the connections behind a delayed one wait
// too. Posthorn keeps that order: each daemon's connections pass one at a
// time, in the order they were accepted.
//
// NOTE: sendmail checks ConnectionRateThrottle before RefuseLA and
// MaxDaemonChildren; Posthorn checks those two first (refuse-connections.ts),
// when the connection is accepted, and paces what they let through.

import type { Config } from '../config/types';
import type { Logger } from '../log/logger';
import { loadAverage } from './load-average';

/** sendmail's MIN_DELAY_LOG: seconds between two "delaying connections" lines. */
const DELAY_LOG_INTERVAL_MS = 90_000;

export interface ThrottleOptions {
  connectionRateThrottle: number;
  delayLA: number;
  loadAverage?: () => number;
  now?: () => number;
  sleep?: (ms: number) => Promise<void>;
  /**
   * Counts a connection on daemon `name` and returns how many that daemon had
   * in the current clock second, this one included. Workers pass the
   * primary's count (shared-counters.ts); by default the count is local.
   */
  countConnection?: (name: string) => number | Promise<number>;
}

export function throttleOptionsFromConfig(config: Config): ThrottleOptions {
  const number = (name: string): number => {
    const v = config.options.get(name);
    return typeof v === 'number' ? v : 0;
  };
  return { connectionRateThrottle: number('ConnectionRateThrottle'), delayLA: number('DelayLA') };
}

interface DaemonCount {
  second: number;
  count: number;
}

/** Connections per daemon in the current clock second. */
export class SecondCounts {
  private readonly counts = new Map<string, DaemonCount>();

  constructor(private readonly now: () => number = Date.now) {}

  /** Counts a connection on daemon `name`; returns the count of this second, this one included. */
  add(name: string): number {
    const second = Math.floor(this.now() / 1000);
    const entry = this.counts.get(name);
    if (!entry || entry.second !== second) {
      this.counts.set(name, { second, count: 1 });
      return 1;
    }
    return ++entry.count;
  }
}

export class ConnectionThrottle {
  private readonly seconds: SecondCounts;
  private readonly countConnection: (name: string) => number | Promise<number>;
  /** The last admission of each daemon; the next one waits for it. */
  private readonly queues = new Map<string, Promise<void>>();
  private nextDelayLog = 0;
  private readonly loadAverage: () => number;
  private readonly now: () => number;
  private readonly sleep: (ms: number) => Promise<void>;

  constructor(
    private opts: ThrottleOptions,
    private readonly logger: Logger,
  ) {
    this.loadAverage = opts.loadAverage ?? loadAverage;
    this.now = opts.now ?? Date.now;
    this.sleep = opts.sleep ?? ((ms) => new Promise((resolve) => setTimeout(resolve, ms)));
    this.seconds = new SecondCounts(this.now);
    this.countConnection = opts.countConnection ?? ((name) => this.seconds.add(name));
  }

  /** New option values after SIGHUP; the counts go on. */
  update(opts: ThrottleOptions): void {
    this.opts = { ...this.opts, connectionRateThrottle: opts.connectionRateThrottle, delayLA: opts.delayLA };
  }

  /** Whether either option is on; when neither is, admit() need not be called. */
  get active(): boolean {
    return this.opts.connectionRateThrottle > 0 || this.opts.delayLA > 0;
  }

  /** Resolves when a new connection on daemon `name` may start its session. */
  admit(name: string): Promise<void> {
    const previous = this.queues.get(name) ?? Promise.resolve();
    const mine = previous.then(() => this.pace(name));
    this.queues.set(name, mine);
    void mine.finally(() => {
      if (this.queues.get(name) === mine) this.queues.delete(name);
    });
    return mine;
  }

  private async pace(name: string): Promise<void> {
    const throttle = this.opts.connectionRateThrottle;
    if (throttle > 0 && (await this.countConnection(name)) > throttle) {
      this.logger.info(`deferring connections on daemon ${name}: ${throttle} per second`, 9);
      await this.sleep(1000);
    }

    const limit = this.opts.delayLA;
    if (limit > 0) {
      const load = Math.floor(this.loadAverage());
      if (load >= limit) {
        const now = this.now();
        if (now >= this.nextDelayLog) {
          this.logger.info(`delaying connections on daemon ${name}: load average=${load} >= ${limit}`, 9);
          this.nextDelayLog = now + DELAY_LOG_INTERVAL_MS;
        }
        await this.sleep(1000);
      }
    }
  }
}
