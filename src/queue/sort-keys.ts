// QueueSortOrder over deep queues: the sort keys of a queue item (its T, K, N
// and P lines, and whether it has a q line) come from the head of its control
// file, the envelope lines before the S line. sendmail's gatherq() likewise
// reads a qf only until it has the lines it needs. The keys of all items are
// kept in typed arrays beside the list of ids, a few numbers per item. They
// are read with synchronous calls in a tight loop (open, read one page, close),
// which is several times faster than parsing whole files through the promise API.

import * as fs from 'node:fs';
import * as path from 'node:path';
import { Worker } from 'node:worker_threads';
import type { QueueItem } from './types';
import { emptyQueueItem } from './qf';
import { READ_NO_FOLLOW, readNoFollowSync } from './no-follow';
import { CACHE_FIELDS, CacheField, loadSortCache, sortCachePath, writeSortCache, type LoadedSortCache } from './sort-cache';
import { listInodes } from './dir-inodes';

/** Bytes read from the start of a control file; the lines before S fit in it unless macros or texts are long. */
const HEAD_BYTES = 4096;

/** Items read between two turns of the event loop, so that a daemon's sessions keep going while a run gathers. */
const YIELD_EVERY = 1024;

/** The outcome of reading the head of one control file. */
export enum HeadState {
  /** Not read (the order and filters needed no control file). */
  NotRead = 0,
  Ok = 1,
  /** Missing, or the lines before S are damaged: no sort keys. */
  Unreadable = 2,
  /** Keys taken from the sort key cache, not yet checked against the file. */
  Cached = 3,
}

/** The memory of the arrays of a SortKeys. */
export interface SortKeyBuffers {
  state: ArrayBufferLike;
  priority: ArrayBufferLike;
  created: ArrayBufferLike;
  lastAttempt: ArrayBufferLike;
  attempts: ArrayBufferLike;
  quarantined: ArrayBufferLike;
  ino: ArrayBufferLike;
  size: ArrayBufferLike;
  mtime: ArrayBufferLike;
  fromCache: ArrayBufferLike;
}

function sortKeyBuffers(n: number, shared: boolean): SortKeyBuffers {
  const make = (bytes: number): ArrayBufferLike => (shared ? new SharedArrayBuffer(bytes) : new ArrayBuffer(bytes));
  return {
    state: make(n),
    priority: make(n * 8),
    created: make(n * 8),
    lastAttempt: make(n * 8),
    attempts: make(n * 8),
    quarantined: make(n),
    ino: make(n * 8),
    size: make(n * 8),
    mtime: make(n * 8),
    fromCache: make(n),
  };
}

/** The sort keys of a list of queue items, by position in `ids`. */
export class SortKeys {
  readonly state: Uint8Array;
  readonly priority: Float64Array;
  readonly created: Float64Array;
  readonly lastAttempt: Float64Array;
  readonly attempts: Float64Array;
  readonly quarantined: Uint8Array;
  /** The control file's inode number, size and modification time (ms) when its keys were read; for the cache. */
  readonly ino: Float64Array;
  readonly size: Float64Array;
  readonly mtime: Float64Array;
  /** 1 where the keys came from the sort key cache: good for ordering, not for leaving an item out. */
  readonly fromCache: Uint8Array;

  /**
   * With `shared`, the arrays live in SharedArrayBuffers that worker threads
   * can fill (see collectSortKeys); `buffers` then rebuilds them in a worker.
   */
  constructor(
    readonly ids: readonly string[],
    opts: { shared?: boolean; buffers?: SortKeyBuffers } = {},
  ) {
    const n = ids.length;
    const b = opts.buffers ?? sortKeyBuffers(n, opts.shared === true);
    this.buffers = b;
    this.state = new Uint8Array(b.state);
    this.priority = new Float64Array(b.priority);
    this.created = new Float64Array(b.created);
    this.lastAttempt = new Float64Array(b.lastAttempt);
    this.attempts = new Float64Array(b.attempts);
    this.quarantined = new Uint8Array(b.quarantined);
    this.ino = new Float64Array(b.ino);
    this.size = new Float64Array(b.size);
    this.mtime = new Float64Array(b.mtime);
    this.fromCache = new Uint8Array(b.fromCache);
  }

  /** The memory behind the arrays, to hand to a worker thread. */
  readonly buffers: SortKeyBuffers;

  /** Builds a QueueItem with the keys of item `i` (the fields sortWork() and the filters use); undefined if unreadable. */
  item(i: number): QueueItem | undefined {
    if (this.state[i] !== HeadState.Ok) return undefined;
    return {
      ...emptyQueueItem(this.ids[i]),
      created: this.created[i],
      lastAttempt: this.lastAttempt[i],
      attempts: this.attempts[i],
      priority: this.priority[i],
      quarantine: this.quarantined[i] === 1 ? '' : undefined,
    };
  }
}

/** Result of parsing the head: true when the keys were stored, false when damaged, 'more' when the S line is not in `length` bytes. */
type HeadResult = boolean | 'more';

/**
 * Parses the lines of a control file up to its S line into slot `i` of `keys`.
 * Before S the full parser accepts V8 first, then T, K, N, P, X, B, q, M, F, $,
 * H and header continuation lines. Any other line, a bad number, a missing T
 * line or text that ends before S makes the item unreadable.
 */
export function parseQueueHead(buf: Buffer, length: number, keys: SortKeys, i: number): HeadResult {
  if (length < 3 || buf[0] !== 0x56 || buf[1] !== 0x38 || buf[2] !== 0x0a) return length < 3 ? 'more' : false;
  let created = -1;
  let lastAttempt = 0;
  let attempts = 0;
  let priority = 0;
  let quarantined = 0;
  let start = 3;
  while (start < length) {
    const end = buf.indexOf(0x0a, start);
    if (end < 0 || end >= length) return 'more';
    const key = buf[start];
    switch (key) {
      case 0x54: // T
        created = lineInteger(buf, start + 1, end, false);
        if (Number.isNaN(created)) return false;
        break;
      case 0x4b: // K
        lastAttempt = lineInteger(buf, start + 1, end, false);
        if (Number.isNaN(lastAttempt)) return false;
        break;
      case 0x4e: // N
        attempts = lineInteger(buf, start + 1, end, false);
        if (Number.isNaN(attempts)) return false;
        break;
      case 0x50: // P
        priority = lineInteger(buf, start + 1, end, true);
        if (Number.isNaN(priority)) return false;
        break;
      case 0x71: // q
        quarantined = 1;
        break;
      case 0x53: // S: the end of the envelope lines
        if (created < 0) return false;
        keys.created[i] = created;
        keys.lastAttempt[i] = lastAttempt;
        keys.attempts[i] = attempts;
        keys.priority[i] = priority;
        keys.quarantined[i] = quarantined;
        return true;
      case 0x58: // X
      case 0x42: // B
      case 0x4d: // M
      case 0x46: // F
      case 0x24: // $
      case 0x48: // H
      case 0x20: // header continuation
      case 0x09:
        break;
      default:
        return false;
    }
    start = end + 1;
  }
  return 'more';
}

/** Reads a decimal integer from buf[from, to); NaN unless it is one the full parser takes. */
function lineInteger(buf: Buffer, from: number, to: number, signed: boolean): number {
  let negative = false;
  if (signed && buf[from] === 0x2d) {
    negative = true;
    from++;
  }
  if (from >= to) return NaN;
  if (to - from > 15) {
    // Long numbers take the slow path, with the same safe integer test as the parser.
    const digits = buf.toString('latin1', from, to);
    const value = Number(digits);
    if (!/^[0-9]+$/.test(digits) || !Number.isSafeInteger(value)) return NaN;
    return negative ? -value : value;
  }
  let value = 0;
  for (let p = from; p < to; p++) {
    const d = buf[p] - 0x30;
    if (d < 0 || d > 9) return NaN;
    value = value * 10 + d;
  }
  return negative ? -value : value;
}

/**
 * Reads the head of `file` into slot `i` of `keys` with synchronous calls;
 * `buf` is scratch space of HEAD_BYTES. With `withStat` it also keeps the
 * file's inode number, size and time for the sort key cache.
 */
export function readQueueHeadSync(file: string, buf: Buffer, keys: SortKeys, i: number, withStat = false): void {
  let fd: number;
  try {
    fd = fs.openSync(file, READ_NO_FOLLOW);
  } catch {
    keys.state[i] = HeadState.Unreadable;
    return;
  }
  let result: HeadResult = false;
  try {
    if (withStat) {
      const stat = fs.fstatSync(fd);
      keys.ino[i] = stat.ino;
      keys.size[i] = stat.size;
      keys.mtime[i] = stat.mtimeMs;
    }
    const n = fs.readSync(fd, buf, 0, buf.length, 0);
    result = parseQueueHead(buf, n, keys, i);
    if (result === 'more' && n === buf.length) {
      // Long lines before S (macros, a status text): read the whole file.
      const all = readNoFollowSync(file);
      result = parseQueueHead(all, all.length, keys, i);
    }
  } catch {
    result = false;
  } finally {
    fs.closeSync(fd);
  }
  keys.state[i] = result === true ? HeadState.Ok : HeadState.Unreadable;
}

/** From this many items on, a worker thread reads the second half of the heads (both CPUs work). */
const PARALLEL_FROM = 20_000;

/** From this many items on, the keys go through the sort key cache (see sort-cache.ts). */
const CACHE_FROM = 5_000;

/**
 * Reads the sort keys of every id from the control files `<prefix><id>` in
 * `dir`. For a deep queue (`cacheFrom` items or more) an item's keys come
 * from the sort key cache when its file was not replaced. The folder's inode
 * numbers tell (dir-inodes.ts); without them, or with `folderInodes` false,
 * an lstat() of the file does. The cache is written again when many
 * heads had to be read. The event loop gets a turn every YIELD_EVERY items.
 * When `parallelFrom` items or more are left to read or check, a worker
 * thread does the second half into the same shared arrays at the same time.
 * If the worker cannot start or fails, this thread does that half too.
 */
export async function collectSortKeys(
  dir: string,
  prefix: string,
  ids: readonly string[],
  opts: { parallelFrom?: number; cacheFrom?: number; folderInodes?: boolean } = {},
): Promise<SortKeys> {
  const parallelFrom = opts.parallelFrom ?? PARALLEL_FROM;
  const keys = new SortKeys(ids, { shared: ids.length >= parallelFrom });
  const cached = ids.length >= (opts.cacheFrom ?? CACHE_FROM);
  const { cache, inodes } = cached ? await settleFromCache(dir, prefix, keys, opts.folderInodes !== false) : {};

  // A worker thread takes the second half when many heads are left to read or check.
  const parallel = keys.buffers.state instanceof SharedArrayBuffer && countUnsettled(keys) >= parallelFrom;
  const half = parallel ? Math.ceil(ids.length / 2) : ids.length;
  const helper = parallel ? readHeadsInWorker(dir, prefix, ids.slice(half), half, keys.buffers, cached) : Promise.resolve(0);
  let read = await readHeads(dir, prefix, keys, 0, half, cached);
  const helped = await helper;
  read += helped === false ? await readHeads(dir, prefix, keys, half, ids.length, cached) : helped;
  // The cache keeps the numbers the folder shows, so that the next run can compare them.
  if (inodes !== undefined) {
    for (let i = 0; i < ids.length; i++) keys.ino[i] = inodes.get(prefix + ids[i]) ?? keys.ino[i];
  }

  // Written again when a twentieth of the heads had to be read, or when the cache contains many items that are gone.
  if (cached && (cache === undefined || read * 20 >= ids.length || cache.index.size > 2 * ids.length)) {
    scheduleCacheWrite(dir, prefix, keys);
  }
  return keys;
}

/**
 * Loads the sort key cache into `keys` and, with `byInodes`, settles its
 * items from the folder's inode numbers (dir-inodes.ts). find runs in its own
 * process while this one reads the cache.
 */
async function settleFromCache(
  dir: string,
  prefix: string,
  keys: SortKeys,
  byInodes: boolean,
): Promise<{ cache?: LoadedSortCache; inodes?: Map<string, number> }> {
  const listing = byInodes && fs.existsSync(sortCachePath(dir, prefix)) ? listInodes(dir, prefix) : undefined;
  const cache = loadSortCache(dir, prefix);
  if (cache === undefined) return {};
  fillFromCache(keys, cache);
  const inodes = await listing;
  if (inodes !== undefined) checkInodes(keys, prefix, inodes);
  return { cache, inodes };
}

/** Writes the cache from `keys` after the caller has them, so that the first delivery or entry does not wait. */
function scheduleCacheWrite(dir: string, prefix: string, keys: SortKeys): void {
  const written = new Promise<void>((resolve) => {
    setImmediate(() => void writeSortCache(dir, prefix, ...cacheContents(keys)).then(() => resolve()));
  });
  cacheWrites.add(written);
  void written.then(() => cacheWrites.delete(written));
}

/** Sort key cache writes not finished yet. */
const cacheWrites = new Set<Promise<void>>();

/** Resolves when the sort key cache writes started so far are done; a command waits for it before it exits. */
export async function sortCacheWritten(): Promise<void> {
  await Promise.all(cacheWrites);
}

/**
 * Settles the Cached slots from the folder's inode numbers: the same number
 * means the control file was not replaced since the cache was written (every
 * rewrite is a rename, so it has a new inode), and its cached keys stand.
 * NOTE: a control file edited in place keeps its inode and its cached keys,
 * which then only order the run: an item is read again before it is left out.
 * Any other slot is read.
 */
function checkInodes(keys: SortKeys, prefix: string, inodes: Map<string, number>): void {
  for (let i = 0; i < keys.ids.length; i++) {
    if (keys.state[i] !== HeadState.Cached) continue;
    if (inodes.get(prefix + keys.ids[i]) === keys.ino[i]) {
      keys.state[i] = HeadState.Ok;
      keys.fromCache[i] = 1;
    } else {
      keys.priority[i] = keys.created[i] = keys.lastAttempt[i] = keys.attempts[i] = keys.quarantined[i] = 0;
      keys.state[i] = HeadState.NotRead;
    }
  }
}

/** Counts the slots still to be read or checked. */
function countUnsettled(keys: SortKeys): number {
  let n = 0;
  for (let i = 0; i < keys.ids.length; i++) if (keys.state[i] !== HeadState.Ok) n++;
  return n;
}

/** Puts the cached keys of every id that has them into `keys`, marked Cached. */
function fillFromCache(keys: SortKeys, cache: LoadedSortCache): void {
  const f = cache.fields;
  for (let i = 0; i < keys.ids.length; i++) {
    const r = cache.index.get(keys.ids[i]);
    if (r === undefined) continue;
    const at = r * CACHE_FIELDS;
    keys.ino[i] = f[at + CacheField.Ino];
    keys.size[i] = f[at + CacheField.Size];
    keys.mtime[i] = f[at + CacheField.Mtime];
    keys.priority[i] = f[at + CacheField.Priority];
    keys.created[i] = f[at + CacheField.Created];
    keys.lastAttempt[i] = f[at + CacheField.LastAttempt];
    keys.attempts[i] = f[at + CacheField.Attempts];
    keys.quarantined[i] = f[at + CacheField.Quarantined];
    keys.state[i] = HeadState.Cached;
  }
}

/** Returns the ids with good keys and their numbers, as writeSortCache() takes them. */
function cacheContents(keys: SortKeys): [string[], Float64Array] {
  const ids: string[] = [];
  const fields: number[] = [];
  for (let i = 0; i < keys.ids.length; i++) {
    if (keys.state[i] !== HeadState.Ok) continue;
    ids.push(keys.ids[i]);
    fields.push(keys.ino[i], keys.size[i], keys.mtime[i], keys.priority[i], keys.created[i], keys.lastAttempt[i], keys.attempts[i], keys.quarantined[i]);
  }
  return [ids, Float64Array.from(fields)];
}

/**
 * Fills slot `i`: leaves a settled slot as it is, keeps cached keys if
 * lstat() shows the file unchanged, else reads the head (with the file's stat
 * when `withStat`). Returns whether the head was read.
 */
export function checkOrReadHead(file: string, buf: Buffer, keys: SortKeys, i: number, withStat: boolean): boolean {
  // Already settled from the cache and the folder's inode numbers.
  if (keys.state[i] === HeadState.Ok) return false;
  if (keys.state[i] === HeadState.Cached) {
    const stat = fs.lstatSync(file, { throwIfNoEntry: false });
    if (stat !== undefined && stat.isFile() && stat.ino === keys.ino[i] && stat.size === keys.size[i] && stat.mtimeMs === keys.mtime[i]) {
      keys.state[i] = HeadState.Ok;
      keys.fromCache[i] = 1;
      return false;
    }
    // Changed or gone: nothing of the cached keys may stay, whatever the read finds.
    keys.priority[i] = keys.created[i] = keys.lastAttempt[i] = keys.attempts[i] = keys.quarantined[i] = 0;
  }
  readQueueHeadSync(file, buf, keys, i, withStat);
  return true;
}

/** Fills slots [from, to); returns how many heads were read. */
async function readHeads(dir: string, prefix: string, keys: SortKeys, from: number, to: number, withStat: boolean): Promise<number> {
  const buf = Buffer.allocUnsafe(HEAD_BYTES);
  let read = 0;
  for (let i = from; i < to; i++) {
    if (checkOrReadHead(path.join(dir, prefix + keys.ids[i]), buf, keys, i, withStat)) read++;
    if ((i + 1 - from) % YIELD_EVERY === 0) await new Promise<void>((resolve) => setImmediate(resolve));
  }
  return read;
}

/** Runs sort-keys-worker.js over `ids` (positions from `offset`); resolves the heads it read, or false if it failed. */
function readHeadsInWorker(
  dir: string,
  prefix: string,
  ids: string[],
  offset: number,
  buffers: SortKeyBuffers,
  withStat: boolean,
): Promise<number | false> {
  return new Promise((resolve) => {
    let worker: Worker;
    try {
      worker = new Worker(path.join(__dirname, 'sort-keys-worker.js'), { workerData: { dir, prefix, ids, offset, withStat, buffers } });
    } catch {
      resolve(false);
      return;
    }
    worker.once('message', (read: unknown) => resolve(typeof read === 'number' ? read : false));
    worker.once('error', () => resolve(false));
    worker.once('exit', () => resolve(false));
  });
}

/**
 * Returns the positions `selected` sorted by `key` (smaller first), equal keys
 * in their given (directory) order, as the stable sort of sortWork() does.
 */
export function sortPositions(selected: Uint32Array, key: Float64Array): Uint32Array {
  return selected.sort((a, b) => key[a] - key[b] || a - b);
}
