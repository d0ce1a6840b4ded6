// The queue runs that ETRN requests, one at a time per process. sendmail
// forks a runner for each ETRN; here each would list the queue and read every
// control file at the same time, so a client repeating ETRN could make the
// daemon hold thousands of runs. Instead, requests that arrive while a run is
// going wait and are merged into the next run: one run covers every host
// asked for meanwhile, and past MAX_WAITING hosts, or after an ETRN for the
// whole queue, the next run takes the whole queue.

import type { QueueSelector } from '../cli/args';
import { matchesSelectors } from '../cli/queue-select';
import type { ServerContext } from './context';

/** Distinct hosts that may wait for the next run before it becomes a run of the whole queue. */
const MAX_WAITING = 16;

/** The requests for one run: their parameters (for the log) and selectors, or the whole queue. */
interface Batch {
  parameters: Set<string>;
  selectors: Map<string, QueueSelector[]>;
  whole: boolean;
}

function emptyBatch(): Batch {
  return { parameters: new Set(), selectors: new Map(), whole: false };
}

export class EtrnRuns {
  private waiting = emptyBatch();
  private running = false;

  constructor(private readonly ctx: ServerContext) {}

  /**
   * Asks for a run over the items `selectors` match, or the whole queue when
   * there are none. `parameter` is the ETRN argument as logged.
   */
  request(parameter: string, selectors: QueueSelector[]): void {
    const batch = this.waiting;
    // The log names at most MAX_WAITING parameters per run; the rest are covered silently.
    if (batch.parameters.size < MAX_WAITING) batch.parameters.add(parameter);
    if (selectors.length === 0 || batch.selectors.size >= MAX_WAITING) {
      batch.whole = true;
      batch.selectors.clear();
    } else if (!batch.whole) {
      batch.selectors.set(parameter.toLowerCase(), selectors);
    }
    if (!this.running) void this.drain();
  }

  private async drain(): Promise<void> {
    this.running = true;
    while (this.waiting.parameters.size > 0) {
      const batch = this.waiting;
      this.waiting = emptyBatch();
      await this.run(batch);
    }
    this.running = false;
  }

  private async run(batch: Batch): Promise<void> {
    const { store, logger, runQueue } = this.ctx;
    if (runQueue === undefined) return;
    const groups = [...batch.selectors.values()];
    const select = async (id: string): Promise<boolean> => {
      if (batch.whole) return true;
      const item = await store.read(id).catch(() => undefined);
      return item !== undefined && groups.some((selectors) => matchesSelectors(selectors, id, item));
    };
    try {
      const count = await runQueue(select);
      for (const parameter of batch.parameters) {
        logger.info(`queue run for ETRN ${parameter} ended, ${count} item(s) scheduled`, 10);
      }
    } catch (err) {
      logger.error(`queue run for ETRN failed: ${(err as Error).message}`);
    }
  }
}

const runsByContext = new WeakMap<ServerContext, EtrnRuns>();

/** Returns the ETRN runs of the process that owns `ctx`. */
export function etrnRuns(ctx: ServerContext): EtrnRuns {
  let runs = runsByContext.get(ctx);
  if (runs === undefined) {
    runs = new EtrnRuns(ctx);
    runsByContext.set(ctx, runs);
  }
  return runs;
}
