// `sendmail -Q[reason]` on existing queue items, as sendmail 8.13's
// quarantine_queue() and quarantine_queue_item() do it: quarantine the
// selected normal items, or (with -qQ) change the reason of quarantined items
// or release them. A quarantined item's control file is hf<id> and carries a q
// line; QueueStore.update() does the rename and the fsyncs that SuperSafe asks for.

import type { Logger } from '../log/logger';
import { adoptSendmailItem } from './sendmail-queue';
import type { QueueStore } from './store';
import type { QueueItem } from './types';

export interface QuarantineRequest {
  /** The new reason; undefined releases the items (`-Q` with no reason). */
  reason?: string;
  /** -qQ given: work on quarantined items (hf files) instead of normal ones. */
  quarantinedItems: boolean;
  /** Selection by the -qI/-qR/-qS/-qQ selectors. */
  select: (id: string, item: QueueItem) => boolean;
  /** -v: print per-item and summary messages. */
  verbose: boolean;
  /** The name ($j) given to a sender without a domain in an item that sendmail queued. */
  hostName?: string;
}

export interface QuarantineResult {
  /** Lines printed to standard output, without newlines. */
  output: string[];
  /** Items whose control file changed. */
  changed: number;
}

/** 'unselected': the selectors leave the item out; 'skipped': selected, but locked or unreadable. */
type ItemChange = 'changed' | 'unchanged' | 'skipped' | 'unselected';

/** Removes what cannot go in one q line: CR and LF. */
export function sanitizeReason(reason: string): string {
  return reason.replace(/[\r\n]/g, '');
}

/**
 * Applies a -Q request to every selected item of the queue directory and
 * returns the messages sendmail prints for it.
 */
export async function quarantineQueue(
  store: QueueStore,
  logger: Logger,
  request: QuarantineRequest,
): Promise<QuarantineResult> {
  const output: string[] = [];
  const print = (line: string): void => {
    if (request.verbose) output.push(line);
  };
  const reason = request.reason === undefined ? undefined : sanitizeReason(request.reason);

  const ids = await store.list(request.quarantinedItems ? 'hf' : 'qf');
  // As sendmail, "Processing <dir>:" heads the item lines only when some item is selected.
  const itemLines: string[] = [];
  let matched = 0;
  let changed = 0;
  for (const id of ids) {
    const result = await quarantineItem(store, logger, id, reason, request, (line) => itemLines.push(line));
    if (result === 'unselected') continue;
    matched += 1;
    if (result === 'changed') changed += 1;
  }

  if (matched === 0) print(`${store.dir}: no matches`);
  else print(`Processing ${store.dir}:`);
  for (const line of itemLines) print(line);
  print(changed === 0 ? 'No changes' : `${changed} change${changed === 1 ? '' : 's'}`);
  return { output, changed };
}

async function quarantineItem(
  store: QueueStore,
  logger: Logger,
  id: string,
  reason: string | undefined,
  request: QuarantineRequest,
  print: (line: string) => void,
): Promise<ItemChange> {
  let item: QueueItem;
  try {
    item = await store.read(id);
  } catch (err) {
    print(`Skipping ${id}: ${(err as Error).message}`);
    return 'skipped';
  }
  if (!request.select(id, item)) return 'unselected';
  // A qf file may carry a q line; sendmail leaves it out of normal selections.
  if (!request.quarantinedItems && item.quarantine !== undefined) return 'unselected';

  if (!(await store.lock(id))) {
    print(`Skipping ${id}: locked`);
    return 'skipped';
  }
  try {
    // Read again under the lock: a delivery may have finished or changed the item.
    try {
      item = await store.read(id);
    } catch (err) {
      print(`Skipping ${id}: ${(err as Error).message}`);
      return 'skipped';
    }

    const old = item.quarantine;
    if (old === reason) {
      if (old !== undefined) print(`${id}: Already quarantined with "${old}"`);
      return 'unchanged';
    }

    // An item that sendmail queued is converted first, as before a delivery, because
    // otherwise its LF data file and sender without a domain would stay in Posthorn's format.
    if (item.fromSendmail) await adoptSendmailItem(store, item, request.hostName ?? 'localhost', logger);
    item.quarantine = reason;
    await store.update(item);

    const log = logger.child(id);
    if (reason === undefined) {
      print(`${id}: Removed quarantine of "${old}"`);
      log.info('unquarantine');
    } else {
      print(old === undefined ? `${id}: Quarantined with "${reason}"` : `${id}: Quarantine changed from "${old}" to "${reason}"`);
      log.info(`quarantine=${reason}`);
    }
    return 'changed';
  } catch (err) {
    print(`Skipping ${id}: ${(err as Error).message}`);
    return 'skipped';
  } finally {
    await store.unlock(id);
  }
}
