// mailq over a deep queue: when the selectors need no control file to decide
// what to list, the header with the request count is printed from the
// directory listing at once, as sendmail's gatherq() counts without opening
// control files. When QueueSortOrder needs no control file either (none,
// filename, random, modification), the entries follow in batches, each written
// as soon as its files are read. For priority and time the sort keys come from
// the heads of the control files (sort-keys.ts). For host every control file is
// parsed first. The entries are then read again while printing, with
// synchronous calls too. Memory stays bounded by the list of ids and keys.

import * as fs from 'node:fs';
import { formatEntry, formatMailqHeader, readMailqEntry, readMailqEntrySync, type MailqEntry, type MailqOptions } from './mailq';
import { sortKeysOf, sortNeedsControlFile, sortWork, tooYoung, type QueueSortOrder, type WorkEntry } from './sort';
import { collectSortKeys, HeadState, sortPositions } from './sort-keys';
import type { ControlFileKind, QueueStore } from './store';

/** Control files read at once while printing; one write each. */
const STREAM_BATCH = 256;

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
  if (opts.order === 'priority' || opts.order === 'time') {
    // The header first: the count needs only the directory listing.
    await opts.write(formatMailqHeader(dir, work.length, opts));
    work = await sortByHeads(store, work, opts.kind, opts.order);
  } else if (sortNeedsControlFile(opts.order)) {
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
  if (opts.order !== 'priority' && opts.order !== 'time') work = sortWork(work, opts.order);

  const count = work.length;
  if (!sortNeedsControlFile(opts.order)) await opts.write(formatMailqHeader(dir, count, opts));
  const max = opts.maxQueueRun ?? 0;
  const shown = max > 0 ? work.slice(0, max) : work;
  const now = Date.now();
  for (let start = 0; start < shown.length; start += STREAM_BATCH) {
    const batch = shown.slice(start, start + STREAM_BATCH);
    const entries = await readEntries(store, batch, opts.kind);
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

/** Sorts by priority or time from the heads of the control files, in sortWork()'s order. */
async function sortByHeads(store: QueueStore, work: WorkEntry[], kind: ControlFileKind, order: 'priority' | 'time'): Promise<WorkEntry[]> {
  const keys = await collectSortKeys(store.dir, kind, work.map((w) => w.id));
  for (let i = 0; i < work.length; i++) {
    if (keys.state[i] === HeadState.Ok) continue;
    // An item without a readable control file goes last by priority and first by time, as in sortWork().
    keys.priority[i] = Number.MAX_SAFE_INTEGER;
    keys.created[i] = 0;
  }
  const positions = sortPositions(Uint32Array.from(work.keys()), order === 'priority' ? keys.priority : keys.created);
  return Array.from(positions, (i) => work[i]);
}

/** Reads the entries of one batch: synchronously, except for items with a lock file. */
async function readEntries(store: QueueStore, batch: WorkEntry[], kind: ControlFileKind): Promise<MailqEntry[]> {
  return Promise.all(batch.map((w) => readMailqEntrySync(store, w.id, kind) ?? readMailqEntry(store, w.id, kind)));
}
