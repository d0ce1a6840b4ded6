// -bp (mailq) and -q: print the queue, or run it once or periodically.

import * as fs from 'node:fs';
import type { Config } from '../config/types';
import type { CliArgs } from './args';
import { Logger, openSink } from '../log/logger';
import { QueueStore } from '../queue/store';
import { formatMailq, type MailqEntry } from '../queue/mailq';
import { createServices } from '../daemon/services';
import { matchesSelectors, needsItem } from './queue-select';
import { EX_OK } from './sysexits';

export async function printQueue(config: Config, args: CliArgs): Promise<number> {
  const logger = new Logger([openSink(config.logFile)], config.logLevel);
  const store = new QueueStore({ dir: config.queueDirectory, superSafe: config.superSafe, logger });
  const ids = fs.existsSync(config.queueDirectory) ? await store.list() : [];

  const entries: MailqEntry[] = [];
  for (const id of ids) {
    let entry: MailqEntry;
    try {
      const item = await store.read(id);
      entry = { id, item, size: item.bodySize, locked: false };
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      entry = { id, size: 0, locked: false, error: code === 'ENOENT' ? 'job completed' : (err as Error).message };
    }
    if (!matchesSelectors(args.queueSelectors, id, entry.item)) continue;
    entries.push(entry);
  }

  process.stdout.write(formatMailq(config.queueDirectory, entries, { verbose: args.verbose }));
  return EX_OK;
}

export async function runQueueCommand(config: Config, args: CliArgs): Promise<number> {
  const logger = new Logger([openSink(config.logFile)], config.logLevel);
  const services = await createServices(config, logger);
  const selectors = args.queueSelectors;

  const select = async (id: string): Promise<boolean> => {
    if (selectors.length === 0) return true;
    if (!needsItem(selectors)) return matchesSelectors(selectors, id);
    const item = await services.store.read(id).catch(() => undefined);
    return item !== undefined && matchesSelectors(selectors, id, item);
  };

  const once = () => services.runner.runQueue({ force: true, select });
  await once();

  const interval = args.queueInterval ?? 0;
  if (interval <= 0) return EX_OK;

  // -q<time> without -bd: a queue runner that repeats until it is stopped.
  return new Promise<number>((resolve) => {
    const timer = setInterval(() => void once(), interval);
    const stop = () => {
      clearInterval(timer);
      void services.runner.idle().then(() => resolve(EX_OK));
    };
    process.once('SIGTERM', stop);
    process.once('SIGINT', stop);
  });
}
