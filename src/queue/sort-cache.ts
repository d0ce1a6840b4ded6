// The sort key cache of a deep queue: `.sortkeys-qf` (or `-hf`) in the queue
// directory keeps, for every control file whose head was read, its sort keys
// and the inode number, size and modification time it had then. The next
// queue run or mailq in priority or time order takes an item's keys from the
// cache when lstat() shows the same inode, size and time, and reads the head
// only for the others. A stat needs the inode alone, not the file's data, so
// with a cold page cache it costs a small part of a read.
//
// Every rewrite of a control file goes through a rename, so it has a new
// inode; a file edited in place has a new time. The cache is only ever a
// shortcut: a missing, old or damaged cache means more heads are read, and
// nothing that delivers mail trusts it. It is written without fsync, to a
// private temporary name first and then renamed into place.

import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { isQueueId } from './id';
import { openRegularSync } from './no-follow';

const MAGIC = 'PHSORT01';
const HEADER_BYTES = 16;
/** Bytes of the id field: sendmail's ids have 14, or more with a pid above 999,999. */
const ID_BYTES = 16;
/** Per item: the id, then ino, size, mtimeMs, priority, created, lastAttempt, attempts, quarantined. */
export const CACHE_FIELDS = 8;
const RECORD_BYTES = ID_BYTES + CACHE_FIELDS * 8;
const BYTE_ORDER = os.endianness() === 'LE' ? 1 : 2;
/** Refuses a cache larger than this (about 13 million items): it is not one of ours. */
const MAX_CACHE_BYTES = 1 << 30;

/** Positions of the numbers in a record. */
export const enum CacheField {
  Ino = 0,
  Size = 1,
  Mtime = 2,
  Priority = 3,
  Created = 4,
  LastAttempt = 5,
  Attempts = 6,
  Quarantined = 7,
}

/** A cache as read from the disk. */
export interface LoadedSortCache {
  /** Record number by id. */
  index: Map<string, number>;
  /** CACHE_FIELDS numbers per record. */
  fields: Float64Array;
}

export function sortCachePath(dir: string, prefix: string): string {
  return path.join(dir, `.sortkeys-${prefix}`);
}

/** Reads the cache of `prefix`; undefined when there is none or it is damaged. */
export function loadSortCache(dir: string, prefix: string): LoadedSortCache | undefined {
  let buf: Buffer;
  let count: number;
  try {
    const fd = openRegularSync(sortCachePath(dir, prefix));
    try {
      const size = fs.fstatSync(fd).size;
      // The header says how long the file must be; anything else is not read further.
      const header = Buffer.alloc(HEADER_BYTES);
      if (size < HEADER_BYTES || fs.readSync(fd, header, 0, HEADER_BYTES, 0) !== HEADER_BYTES) return undefined;
      // The numbers are in this machine's byte order, and byte 12 records which one.
      if (header.toString('latin1', 0, 8) !== MAGIC || header[12] !== BYTE_ORDER) return undefined;
      count = header.readUInt32LE(8);
      if (size !== HEADER_BYTES + count * RECORD_BYTES || size > MAX_CACHE_BYTES) return undefined;
      // A buffer of its own, so that the numbers start on an 8-byte boundary.
      buf = Buffer.from(new ArrayBuffer(size));
      let done = 0;
      while (done < size) {
        const n = fs.readSync(fd, buf, done, size - done, done);
        if (n === 0) return undefined;
        done += n;
      }
    } finally {
      fs.closeSync(fd);
    }
  } catch {
    return undefined;
  }

  const fields = new Float64Array(count * CACHE_FIELDS);
  const index = new Map<string, number>();
  for (let r = 0; r < count; r++) {
    const at = HEADER_BYTES + r * RECORD_BYTES;
    let end = buf.indexOf(0, at);
    if (end < 0 || end > at + ID_BYTES) end = at + ID_BYTES;
    const id = buf.toString('latin1', at, end);
    if (!isQueueId(id)) return undefined;
    const numbers = new Float64Array(buf.buffer, buf.byteOffset + at + ID_BYTES, CACHE_FIELDS);
    fields.set(numbers, r * CACHE_FIELDS);
    index.set(id, r);
  }
  return { index, fields };
}

let writes = 0;

/**
 * Replaces the cache of `prefix` with the items `ids`, whose numbers are
 * `fields` (CACHE_FIELDS per id, in order). Ids longer than the id field are
 * left out. Resolves false, and leaves the old cache, when the write fails;
 * the error is worth no more than that to any caller.
 */
export async function writeSortCache(dir: string, prefix: string, ids: readonly string[], fields: Float64Array): Promise<boolean> {
  // A buffer of its own, so that the numbers start on an 8-byte boundary.
  const buf = Buffer.from(new ArrayBuffer(HEADER_BYTES + ids.length * RECORD_BYTES));
  buf.write(MAGIC, 0, 'latin1');
  buf[12] = BYTE_ORDER;
  let count = 0;
  for (let r = 0; r < ids.length; r++) {
    if (ids[r].length > ID_BYTES) continue;
    const at = HEADER_BYTES + count * RECORD_BYTES;
    buf.write(ids[r], at, 'latin1');
    new Float64Array(buf.buffer, buf.byteOffset + at + ID_BYTES, CACHE_FIELDS).set(fields.subarray(r * CACHE_FIELDS, (r + 1) * CACHE_FIELDS));
    count++;
  }
  buf.writeUInt32LE(count, 8);

  const temp = `${sortCachePath(dir, prefix)}.${process.pid}.${++writes}`;
  try {
    await fs.promises.writeFile(temp, buf.subarray(0, HEADER_BYTES + count * RECORD_BYTES), { flag: 'wx', mode: 0o600 });
    await fs.promises.rename(temp, sortCachePath(dir, prefix));
    return true;
  } catch {
    await fs.promises.unlink(temp).catch(() => undefined);
    return false;
  }
}

/** Returns the pid in the name of a cache's temporary file (".sortkeys-qf.<pid>.<n>"), else undefined. */
export function sortCacheTempPid(name: string): number | undefined {
  const match = /^\.sortkeys-(?:qf|hf)\.(\d+)\.\d+$/.exec(name);
  return match === null ? undefined : Number(match[1]);
}
