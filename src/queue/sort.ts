// QueueSortOrder: the order in which a queue run and mailq take the items of
// the queue directory, as sendmail 8.13's sortq() and workcmpf0..6 sort them.
// The filters of sendmail's gatherq() run before sorting (MinQueueAge, and
// QueueFactor under load), and MaxQueueRunSize cuts the list after it.

import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { debugTrace } from '../log/debug';
import { decodeControlFile, parseControlFile } from './qf';
import { ControlFileKind, QueueStore } from './store';
import { QueueItem } from './types';
import { collectSortKeys, HeadState, readQueueHeadSync, sortPositions } from './sort-keys';
import { readBytesNoFollow } from './no-follow';

export type QueueSortOrder = 'priority' | 'host' | 'filename' | 'time' | 'random' | 'modification' | 'none';

const ORDERS: Record<string, QueueSortOrder> = {
  p: 'priority',
  h: 'host',
  f: 'filename',
  t: 'time',
  r: 'random',
  m: 'modification',
  n: 'none',
};

/**
 * Parses a QueueSortOrder value. Like sendmail, only the first letter counts,
 * without case; anything else throws `Invalid queue sort order "<v>"`.
 */
export function parseQueueSortOrder(value: string): QueueSortOrder {
  const order = ORDERS[(value[0] ?? '').toLowerCase()];
  if (order === undefined) throw new Error(`Invalid queue sort order "${value}"`);
  return order;
}

/** Tests whether an order needs the control files; the others sort by name or mtime only. */
export function sortNeedsControlFile(order: QueueSortOrder): boolean {
  return order === 'priority' || order === 'host' || order === 'time';
}

/** One queue item with the fields the sort compares. */
export interface WorkEntry {
  id: string;
  /** The parsed control file, when the order or a filter needed it. */
  item?: QueueItem;
  /** Control file modification time in milliseconds, for the modification order. */
  mtimeMs?: number;
  /** Whether a live process holds the item's lock. */
  locked?: boolean;
}

/** Returns the first open recipient's domain, lower case and reversed as a string, the key of the host order. */
export function reversedHost(item: QueueItem | undefined): string {
  const rcpt = item?.recipients.find((r) => r.state === 'pending' || r.state === 'deferred') ?? item?.recipients[0];
  if (rcpt === undefined) return '';
  const at = rcpt.address.lastIndexOf('@');
  if (at < 0) return '';
  return [...rcpt.address.slice(at + 1).toLowerCase()].reverse().join('');
}

/** sendmail gives an item without a readable P line the worst priority. */
function priorityOf(entry: WorkEntry): number {
  return entry.item?.priority ?? Number.MAX_SAFE_INTEGER;
}

function compareNumbers(a: number, b: number): number {
  return Math.sign(a - b);
}

/** Compares by UTF-16 code units, like C's strcmp() on ASCII names. */
function compareStrings(a: string, b: string): number {
  if (a === b) return 0;
  return a < b ? -1 : 1;
}

/**
 * Sorts `entries` in place by `order` and returns them. The sort is stable, so
 * equal keys keep directory order. `random` takes a source of randomness so
 * that tests can fix it.
 */
export function sortWork(entries: WorkEntry[], order: QueueSortOrder, random: () => number = Math.random): WorkEntry[] {
  switch (order) {
    case 'none':
      return entries;
    case 'priority':
      return entries.sort((a, b) => compareNumbers(priorityOf(a), priorityOf(b)));
    case 'filename':
      return entries.sort((a, b) => compareStrings(a.id, b.id));
    case 'time':
      return entries.sort((a, b) => compareNumbers(a.item?.created ?? 0, b.item?.created ?? 0));
    case 'modification':
      return entries.sort((a, b) => compareNumbers(a.mtimeMs ?? 0, b.mtimeMs ?? 0));
    case 'random': {
      // sendmail compares the file names at one randomly chosen position per
      // run; a random key per entry gives every order the same chance.
      const keys = new Map(entries.map((e) => [e.id, random()]));
      return entries.sort((a, b) => compareNumbers(keys.get(a.id) ?? 0, keys.get(b.id) ?? 0));
    }
    case 'host':
      return sortByHost(entries);
  }
}

/**
 * The host order: reversed domain of the first recipient (items without a
 * host first), then unlocked before locked, then priority. If any item to a
 * host is locked, sendmail marks every item to that host locked and sorts
 * again, so hosts already being served go last.
 */
function sortByHost(entries: WorkEntry[]): WorkEntry[] {
  const lockedHosts = new Set<string>();
  for (const e of entries) if (e.locked) lockedHosts.add(reversedHost(e.item));

  const isLocked = (e: WorkEntry): number => (e.locked || lockedHosts.has(reversedHost(e.item)) ? 1 : 0);
  return entries.sort((a, b) => {
    const lockDiff = isLocked(a) - isLocked(b);
    if (lockDiff !== 0) return lockDiff;
    const hostDiff = compareStrings(reversedHost(a.item), reversedHost(b.item));
    if (hostDiff !== 0) return hostDiff;
    return compareNumbers(priorityOf(a), priorityOf(b));
  });
}

/** Files read at once by gatherQueue(). */
const GATHER_BATCH = 64;

export interface GatherOptions {
  kind?: ControlFileKind;
  /** A read of the queue folder made just before, to use instead of reading it again. */
  names?: string[];
  order: QueueSortOrder;
  /** Reads control files even if the order does not need them (for -qR, -qS, -qQ selectors or mailq). */
  needItems?: boolean;
  /** Drops items for which this returns false, before sorting. */
  select?: (id: string, item: QueueItem | undefined) => boolean;
  /** MinQueueAge in milliseconds: drop items tried more recently than this. */
  minQueueAgeMs?: number;
  /** The QueueFactor test; items for which it returns true are dropped from the run. */
  shouldQueue?: (item: QueueItem) => boolean;
  /** MaxQueueRunSize: keep only this many after sorting; 0 is no limit. */
  maxRunSize?: number;
  /** Time of the run in milliseconds. */
  now?: number;
  random?: () => number;
}

/**
 * Collects, filters and sorts the items of one queue directory for a queue run,
 * as sendmail's gatherq() and sortq() do. Unreadable control files are kept
 * (without `item`) so that the deliverer can set them aside and log why.
 */
export async function gatherQueue(store: QueueStore, opts: GatherOptions): Promise<WorkEntry[]> {
  const kind = opts.kind ?? 'qf';
  const needItems =
    opts.needItems === true ||
    sortNeedsControlFile(opts.order) ||
    (opts.minQueueAgeMs ?? 0) > 0 ||
    opts.shouldQueue !== undefined;
  const now = opts.now ?? Date.now();
  const work: WorkEntry[] = [];

  const gather = async (id: string): Promise<WorkEntry | undefined> => {
    const entry: WorkEntry = { id };
    if (needItems) entry.item = await readItem(store, id, kind);
    if (opts.select && !opts.select(id, entry.item)) return undefined;

    const item = entry.item;
    // sendmail skips a qf file that carries a q line in a normal run.
    if (kind === 'qf' && item?.quarantine !== undefined) return undefined;
    if (item && tooYoung(item, opts.minQueueAgeMs ?? 0, now)) return undefined;
    if (item && opts.shouldQueue?.(item)) return undefined;

    // Only the sort keys stay in memory, so that a deep queue does not hold every control file.
    if (item) entry.item = sortKeysOf(item);
    if (opts.order === 'modification') entry.mtimeMs = await mtimeOf(store.controlPath(id, kind));
    if (opts.order === 'host') entry.locked = await store.isLocked(id);
    return entry;
  };

  // Files are read in batches, because one at a time makes deep queues slow to gather.
  const ids = await store.list(kind, opts.names);
  for (let start = 0; start < ids.length; start += GATHER_BATCH) {
    const batch = await Promise.all(ids.slice(start, start + GATHER_BATCH).map(gather));
    for (const entry of batch) if (entry !== undefined) work.push(entry);
  }

  sortWork(work, opts.order, opts.random);
  const max = opts.maxRunSize ?? 0;
  return max > 0 ? work.slice(0, max) : work;
}

/** The fields of an item that sortWork() compares (priority, created, first open recipient); the rest is dropped. */
export function sortKeysOf(item: QueueItem): QueueItem {
  const open = item.recipients.find((r) => r.state === 'pending' || r.state === 'deferred') ?? item.recipients[0];
  return { ...item, recipients: open ? [open] : [], headers: [], macros: new Map() };
}

/** Tests whether an item was tried less than MinQueueAge ago; never-tried items are not too young. */
export function tooYoung(item: QueueItem, minQueueAgeMs: number, now: number): boolean {
  if (minQueueAgeMs <= 0 || item.lastAttempt === 0) return false;
  return now - item.lastAttempt * 1000 < minQueueAgeMs;
}

/**
 * sendmail's shouldqueue(): under a load average at or above QueueLA, an item
 * waits when its priority exceeds QueueFactor / (load - QueueLA + 1).
 */
export function shouldQueue(priority: number, load: number, queueLA: number, queueFactor: number): boolean {
  if (load < queueLA) return false;
  return priority > queueFactor / (load - queueLA + 1);
}

/** Returns the one-minute load average rounded down, as sendmail's getla() does. */
export function currentLoad(): number {
  return Math.floor(os.loadavg()[0]);
}

/** QueueLA's default: 8 per CPU. */
export function defaultQueueLA(): number {
  return 8 * Math.max(1, os.cpus().length);
}

async function readItem(store: QueueStore, id: string, kind: ControlFileKind): Promise<QueueItem | undefined> {
  try {
    if (kind !== 'Qf') return await store.read(id);
    return parseControlFile(decodeControlFile(await readBytesNoFollow(store.controlPath(id, 'Qf'))), id);
  } catch {
    return undefined;
  }
}

async function mtimeOf(file: string): Promise<number> {
  try {
    return (await fs.promises.stat(file)).mtimeMs;
  } catch {
    return 0;
  }
}

/** The options that shape every queue run, taken from the configuration. */
export interface QueueRunPolicy {
  order: QueueSortOrder;
  /** MinQueueAge in milliseconds. */
  minQueueAgeMs: number;
  /** MaxQueueRunSize; 0 is no limit. */
  maxRunSize: number;
  queueFactor: number;
  queueLA: number;
  /** The load average source; tests replace it. */
  load?: () => number;
}

/** Gathers the ids of one queue run under `policy`, in the order they should run. */
export async function queueRunIds(
  store: QueueStore,
  policy: QueueRunPolicy,
  opts: {
    kind?: ControlFileKind;
    select?: (id: string, item: QueueItem | undefined) => boolean;
    /** A read of the queue folder made just before, to use instead of reading it again. */
    names?: string[];
  } = {},
): Promise<string[]> {
  const load = (policy.load ?? currentLoad)();
  // QueueLA=0 turns the load check off, as for the daemon's own QueueLA test.
  const underLoad = policy.queueLA > 0 && load >= policy.queueLA;
  if (opts.select === undefined && policy.order !== 'host' && policy.order !== 'modification') {
    // Deep queues: only the heads of the control files, keys in typed arrays.
    const ids = await queueRunIdsFromHeads(store, policy, opts.kind ?? 'qf', underLoad ? load : undefined, opts.names);
    debugTrace(40, 1, `runqueue: ${ids.length} item(s) selected, QueueSortOrder=${policy.order}, load=${load}`);
    for (const id of ids) debugTrace(40, 2, `runqueue: ${id}`);
    return ids;
  }
  const work = await gatherQueue(store, {
    kind: opts.kind,
    names: opts.names,
    order: policy.order,
    select: opts.select,
    minQueueAgeMs: policy.minQueueAgeMs,
    shouldQueue: underLoad ? (item) => shouldQueue(item.priority, load, policy.queueLA, policy.queueFactor) : undefined,
    maxRunSize: policy.maxRunSize,
  });
  debugTrace(40, 1, `runqueue: ${work.length} item(s) selected, QueueSortOrder=${policy.order}, load=${load}`);
  for (const e of work) debugTrace(40, 2, `runqueue: ${e.id} priority=${e.item?.priority ?? '?'}`);
  return work.map((e) => e.id);
}

/**
 * queueRunIds() for every order but host and modification, without selectors:
 * the same filters and order as gatherQueue() and sortWork(), from the heads
 * of the control files (see sort-keys.ts). Items whose head cannot be read are
 * kept, last in priority order and first in time order, as sortWork() puts an
 * item without a control file.
 * NOTE: a file damaged only after its S line sorts by its P line here, where a
 * full parse put it last; the delivery attempt still sets it aside.
 */
async function queueRunIdsFromHeads(
  store: QueueStore,
  policy: QueueRunPolicy,
  kind: ControlFileKind,
  load: number | undefined,
  names: string[] | undefined,
): Promise<string[]> {
  const ids = await store.list(kind, names);
  const minAge = policy.minQueueAgeMs;
  const needKeys = sortNeedsControlFile(policy.order) || minAge > 0 || load !== undefined;
  let selected: Uint32Array;
  let order: Float64Array | undefined;
  if (!needKeys) {
    selected = Uint32Array.from(ids.keys());
  } else {
    const keys = await collectSortKeys(store.dir, kind, ids);
    const now = Date.now();
    const leaveOut = (i: number): boolean =>
      // sendmail skips a qf file that carries a q line in a normal run.
      (kind === 'qf' && keys.quarantined[i] === 1) ||
      (minAge > 0 && keys.lastAttempt[i] !== 0 && now - keys.lastAttempt[i] * 1000 < minAge) ||
      (load !== undefined && shouldQueue(keys.priority[i], load, policy.queueLA, policy.queueFactor));
    const head = Buffer.allocUnsafe(4096);
    const kept = new Uint32Array(ids.length);
    let n = 0;
    for (let i = 0; i < ids.length; i++) {
      // Keys from the sort key cache only order items: before one is left
      // out, its head is read again (a planted cache must not hide mail).
      if (keys.state[i] === HeadState.Ok && keys.fromCache[i] === 1 && leaveOut(i)) {
        readQueueHeadSync(path.join(store.dir, kind + ids[i]), head, keys, i);
      }
      if (keys.state[i] === HeadState.Ok) {
        if (leaveOut(i)) continue;
      } else {
        keys.priority[i] = Number.MAX_SAFE_INTEGER;
        keys.created[i] = 0;
      }
      kept[n++] = i;
    }
    selected = kept.subarray(0, n);
    if (policy.order === 'priority') order = keys.priority;
    else if (policy.order === 'time') order = keys.created;
  }

  let result: string[];
  if (order !== undefined) {
    result = Array.from(sortPositions(selected, order), (i) => ids[i]);
  } else {
    const work: WorkEntry[] = Array.from(selected, (i) => ({ id: ids[i] }));
    result = sortWork(work, policy.order).map((e) => e.id);
  }
  const max = policy.maxRunSize;
  return max > 0 ? result.slice(0, max) : result;
}
