// The checkpoint chain: every stage of an inbound session asks the same ordered
// list of checks (built-in rulesets, the access map, milters) for a verdict.
// The first verdict other than "continue" decides; "accept" ends the chain early.

import type { Reply } from '../smtp/reply';
import type { QueueItem } from '../queue/types';

export type Stage = 'connect' | 'helo' | 'mail' | 'rcpt' | 'data' | 'eoh' | 'eom';

export type VerdictAction = 'continue' | 'accept' | 'reject' | 'tempfail' | 'discard' | 'quarantine';

export interface Verdict {
  action: VerdictAction;
  /** The reply for reject and tempfail; a default is used when missing. */
  reply?: Reply;
  /** Quarantine reason, or the log text for a rejection. */
  reason?: string;
  /** The check that decided, e.g. "check_rcpt"; used in log lines as ruleset=. */
  source?: string;
  /** The check has logged the decision itself (e.g. "Milter: from=<a>, reject=..."). */
  logged?: boolean;
}

/** What a check may read: the session's macros and the command's argument. */
export interface CheckContext {
  stage: Stage;
  macros: Map<string, string>;
  clientAddress: string;
  /** MAIL or RCPT address without brackets, when the stage has one. */
  address?: string;
  /** Whether the session may relay (set by earlier checks such as Connect: RELAY). */
  relayAllowed: boolean;
  /** Header lines at eoh/eom. */
  headers?: string[];
  /** ESMTP parameters of MAIL or RCPT as written, e.g. "SIZE=100", "NOTIFY=NEVER". */
  esmtpArgs?: string[];
  /** At eom: the queue item about to be committed; checks may change it (milters). */
  item?: QueueItem;
  /** At eom: the path of the item's data file. */
  dataPath?: string;
}

export interface Checkpoint {
  readonly name: string;
  readonly stages: ReadonlySet<Stage>;
  check(ctx: CheckContext): Verdict | Promise<Verdict>;
}

export const CONTINUE: Verdict = { action: 'continue' };

export class CheckpointChain {
  constructor(private readonly checks: Checkpoint[]) {}

  /** Adds a check at the end of the chain (e.g. milters after the rulesets). */
  add(check: Checkpoint): void {
    this.checks.push(check);
  }

  async run(ctx: CheckContext): Promise<Verdict> {
    for (const check of this.checks) {
      if (!check.stages.has(ctx.stage)) continue;

      const verdict = await check.check(ctx);
      if (verdict.action === 'continue') continue;
      return { ...verdict, source: verdict.source ?? check.name };
    }
    return CONTINUE;
  }
}
