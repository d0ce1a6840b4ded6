// sendmail's refuseconnections(): decides whether a daemon rejects a new
// connection because the load average reached RefuseLA or MaxDaemonChildren
// sessions are open, and writes the log lines that go with it. The first
// rejection is logged once. While rejection lasts, "have been rejecting connections on daemon
// <name> for <[D+]HH:MM:SS>" is logged every RejectLogInterval, and the end
// of it is logged as "accepting connections again for daemon <name>".
//
// NOTE: sendmail closes the listening socket for 15 seconds under load and
// stops accepting at MaxDaemonChildren. Node cannot stop accepting without
// closing the socket, so Posthorn accepts the connection and closes it at
// once without a greeting.

import * as os from 'node:os';
import type { Config } from '../config/types';
import type { Logger } from '../log/logger';
import { formatInterval } from './interval';
import { loadAverage } from './load-average';

export interface RefusalOptions {
  refuseLA: number;
  maxDaemonChildren: number;
  rejectLogIntervalMs: number;
  loadAverage?: () => number;
  now?: () => number;
}

export function refusalOptionsFromConfig(config: Config): RefusalOptions {
  const number = (name: string, fallback: number): number => {
    const v = config.options.get(name);
    return typeof v === 'number' ? v : fallback;
  };
  return {
    refuseLA: number('RefuseLA', 12 * Math.max(1, os.availableParallelism())),
    maxDaemonChildren: number('MaxDaemonChildren', 0),
    rejectLogIntervalMs: number('RejectLogInterval', 3 * 3600_000),
  };
}

interface RejectionState {
  since: number;
  nextLog: number;
}

export class ConnectionRefusal {
  private readonly states = new Map<string, RejectionState>();
  private readonly loadAverage: () => number;
  private readonly now: () => number;

  constructor(
    private opts: RefusalOptions,
    private readonly logger: Logger,
  ) {
    this.loadAverage = opts.loadAverage ?? loadAverage;
    this.now = opts.now ?? Date.now;
  }

  /** Takes new option values after SIGHUP; a daemon that rejects goes on rejecting until it may accept. */
  update(opts: RefusalOptions): void {
    this.opts = opts;
  }

  /** Returns true when daemon `name` must reject a connection while `sessions` are open. */
  refuse(name: string, sessions: number): boolean {
    const reason = this.reason(name, sessions);
    const state = this.states.get(name);
    if (reason === undefined) {
      if (state) {
        this.states.delete(name);
        this.logger.info(`accepting connections again for daemon ${name}`, 9);
      }
      return false;
    }

    const now = this.now();
    if (!state) {
      this.states.set(name, { since: now, nextLog: now + this.opts.rejectLogIntervalMs });
      this.logger.notice(reason, 9);
    } else if (this.opts.rejectLogIntervalMs > 0 && now >= state.nextLog) {
      // Logged whatever the LogLevel, as sendmail logs it with LOG_ERR.
      this.logger.error(`have been rejecting connections on daemon ${name} for ${formatInterval(now - state.since)}`, 0);
      state.nextLog = now + this.opts.rejectLogIntervalMs;
    }
    return true;
  }

  private reason(name: string, sessions: number): string | undefined {
    const load = this.loadAverage();
    if (this.opts.refuseLA > 0 && load >= this.opts.refuseLA) {
      return `rejecting connections on daemon ${name}: load average: ${Math.floor(load)}`;
    }
    const max = this.opts.maxDaemonChildren;
    if (max > 0 && sessions >= max) {
      return `rejecting connections on daemon ${name}: ${sessions} children, max ${max}`;
    }
    return undefined;
  }
}
