// MinFreeBlocks: before MAIL is accepted, the queue file system must keep
// MinFreeBlocks free blocks plus room for the size the client declared with
// SIZE=, as sendmail's enoughdiskspace() checks. Otherwise MAIL gets
// "452 4.4.5 Insufficient disk space; try again later".

import * as fs from 'node:fs';

export interface DiskSpaceShortage {
  /** Blocks needed: MinFreeBlocks plus the declared size in blocks. */
  neededBlocks: number;
  /** Blocks available to an unprivileged writer (statfs f_bavail). */
  availableBlocks: number;
}

/**
 * Returns the shortage when the file system of `dir` has fewer free blocks than
 * needed, or undefined when there is enough space. The check is off when
 * `minFreeBlocks` is 0 or less and no size is declared, and free space that
 * cannot be read counts as enough, as in sendmail.
 */
export async function checkFreeBlocks(
  dir: string,
  minFreeBlocks: number,
  declaredSize = 0,
): Promise<DiskSpaceShortage | undefined> {
  if (minFreeBlocks <= 0 && declaredSize <= 0) return undefined;

  const stats = await queueStatfs(dir);
  if (stats === undefined) return undefined;
  // sendmail rounds the message up to whole blocks, adding one.
  const sizeBlocks = declaredSize > 0 ? Math.floor(declaredSize / stats.bsize) + 1 : 0;
  const neededBlocks = sizeBlocks + Math.max(0, minFreeBlocks);
  if (stats.bavail >= neededBlocks) return undefined;
  return { neededBlocks, availableBlocks: stats.bavail };
}

/**
 * How long the result of one statfs() is reused. Concurrent MAIL commands share
 * one call, and its result also serves the MAILs of the next STATFS_REUSE_MS.
 */
const STATFS_REUSE_MS = 100;
const statfsCache = new Map<string, { at: number; stats: Promise<fs.StatsFs | undefined> }>();

function queueStatfs(dir: string): Promise<fs.StatsFs | undefined> {
  const now = Date.now();
  const cached = statfsCache.get(dir);
  if (cached !== undefined && now - cached.at < STATFS_REUSE_MS) return cached.stats;
  const stats = fs.promises.statfs(dir).catch(() => undefined);
  statfsCache.set(dir, { at: now, stats });
  return stats;
}
