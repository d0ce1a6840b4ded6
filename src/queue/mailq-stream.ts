// mailq over a deep queue: when the selectors need no control file to decide
// what to list, the header with the request count is printed from the
// directory listing at once, as sendmail's gatherq() counts without opening
// control files. When QueueSortOrder needs no control file either (none,
// filename, random, modification), the entries follow in batches, each written
// as soon as its files are read. For priority, host and time every control
// file is read first to sort, keeping only the sort keys, and read again while
// printing; memory stays bounded by the list of ids and keys.

import * as fs from 'node:fs';
import { formatEntry, formatMailqHeader, readMailqEntry, type MailqOptions } from './mailq';
import { sortKeysOf, sortNeedsControlFile, sortWork, tooYoung, type QueueSortOrder, type WorkEntry } from './sort';
import type { ControlFileKind, QueueStore } from './store';

/** Control files read at once while printing. */
const STREAM_BATCH = 64;

export interface MailqStreamOptions extends MailqOptions {
  kind: ControlFileKind;
  order: QueueSortOrder;
  /** MinQueueAge in milliseconds, for the "-" mark. */
  minQueueAgeMs: number;
  /** Drops ids before counting (the -qI selectors, which need no control file). */
  selectId?: (id: string) => boolean;
  /** Receives the text in pieces; resolves when the piece may be followed by the next. */
  write(text: string): Promise<void>;
}

async function readSortKeys(store: QueueStore, w: WorkEntry, kind: ControlFileKind, order: QueueSortOrder): Promise<void> {
  const entry = await readMailqEntry(store, w.id, kind);
  if (entry.item !== undefined) w.item = sortKeysOf(entry.item);
  if (order === 'host') w.locked = entry.locked;
}

/** Prints the listing of one queue directory and the total line; returns the count. */
export async function streamMailq(store: QueueStore, dir: string, opts: MailqStreamOptions): Promise<number> {
  const ids = fs.existsSync(store.dir) ? await store.list(opts.kind) : [];
  let work: WorkEntry[] = ids.filter((id) => opts.selectId?.(id) ?? true).map((id) => ({ id }));
  if (sortNeedsControlFile(opts.order)) {
    // The header first: the count needs only the directory listing.
    await opts.write(formatMailqHeader(dir, work.length, opts));
    for (let start = 0; start < work.length; start += STREAM_BATCH) {
      await Promise.all(work.slice(start, start + STREAM_BATCH).map((w) => readSortKeys(store, w, opts.kind, opts.order)));
    }
  } else if (opts.order === 'modification') {
    for (let start = 0; start < work.length; start += STREAM_BATCH) {
      await Promise.all(
        work.slice(start, start + STREAM_BATCH).map(async (w) => {
          w.mtimeMs = (await fs.promises.stat(store.controlPath(w.id, opts.kind)).catch(() => undefined))?.mtimeMs ?? 0;
        }),
      );
    }
  }
  work = sortWork(work, opts.order);

  const count = work.length;
  if (!sortNeedsControlFile(opts.order)) await opts.write(formatMailqHeader(dir, count, opts));
  const max = opts.maxQueueRun ?? 0;
  const shown = max > 0 ? work.slice(0, max) : work;
  const now = Date.now();
  for (let start = 0; start < shown.length; start += STREAM_BATCH) {
    const batch = shown.slice(start, start + STREAM_BATCH);
    const entries = await Promise.all(batch.map((w) => readMailqEntry(store, w.id, opts.kind)));
    let text = '';
    for (const entry of entries) {
      // NOTE: a qf that carries a q line is counted in the header but not listed,
      // as the count comes before the control files are read.
      if (opts.kind === 'qf' && entry.item?.quarantine !== undefined) continue;
      if (entry.item && tooYoung(entry.item, opts.minQueueAgeMs, now)) entry.tooYoung = true;
      text += formatEntry(entry, opts.verbose === true);
    }
    if (text !== '') await opts.write(text);
  }
  await opts.write(`\t\tTotal requests: ${count}\n`);
  return count;
}
