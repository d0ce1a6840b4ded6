// Queue directory recovery at startup: removes what an interrupted commit or
// rewrite left behind, sets aside control files whose data file is missing, and
// keeps every complete item. It works from the directory listing alone: only
// leftovers (tf, lf, qf beside hf, qf without df) cost a file system call, so a
// deep queue is checked quickly. A control file that cannot be parsed is found
// when it is next read (mailq, a queue run) and set aside then, see
// setAsideControlFile().

import * as fs from 'node:fs';
import * as path from 'node:path';
import { Logger } from '../log/logger';
import { isQueueId } from './id';
import { errorCode, isProcessAlive, LockFiles, removeLockFile, unlinkIfExists } from './lock';
import { sortCacheTempPid } from './sort-cache';

/**
 * A tf file older than this is a leftover. A younger one may belong to a commit
 * or rewrite that another process is doing right now.
 */
export const TEMP_FILE_MAX_AGE_MS = 60 * 1000;

/** A df file without control file older than this belongs to no live session. */
export const ORPHAN_DATA_MAX_AGE_MS = 60 * 60 * 1000;

export interface RecoveryReport {
  removedTempFiles: string[];
  removedStaleLocks: string[];
  removedOrphanDataFiles: string[];
  /** Control files renamed to Qf<id>. */
  lostControlFiles: string[];
}

interface QueueFileNames {
  /** File kinds by id as bits of KIND_BITS, e.g. "ABC" -> qf | df. */
  byId: Map<string, number>;
  /** Names of the LockFiles' private files (".lf...") and of the sort key cache's temporary files. */
  lockTemps: string[];
  /** Ids with a "df<id>.milter" file: a mail filter's replacement body being written. */
  milterBodies: string[];
  /** Names of "df<id>.crlf" and "df<id>.lf" files: data files being converted (sendmail-queue.ts, export-sendmail.ts). */
  convertedBodies: string[];
}

/** One bit per kind of queue file, so that a deep queue's listing costs a number per id, not a Set. */
const KIND_BITS: Record<string, number> = { qf: 1, hf: 2, Qf: 4, df: 8, tf: 16, lf: 32 };

/** Tests whether an item is complete, with nothing to repair: a control file and its data file, nothing else. */
function isCleanItem(bits: number): boolean {
  return bits === (KIND_BITS.qf | KIND_BITS.df) || bits === (KIND_BITS.hf | KIND_BITS.df);
}

function kindSet(bits: number): Set<string> {
  const kinds = new Set<string>();
  for (const [kind, bit] of Object.entries(KIND_BITS)) if ((bits & bit) !== 0) kinds.add(kind);
  return kinds;
}

/** The lock calls of the store that runs recovery, so that an item in use is left alone. */
export interface RecoveryLocks {
  lock(id: string): Promise<boolean>;
  unlock(id: string): Promise<void>;
  /** Whether this process holds (or is taking) the lock on `id`. */
  holds(id: string): boolean;
}

export async function recoverQueue(
  dir: string,
  logger: Logger,
  now = Date.now(),
  locks?: RecoveryLocks,
): Promise<RecoveryReport> {
  const report: RecoveryReport = {
    removedTempFiles: [],
    removedStaleLocks: [],
    removedOrphanDataFiles: [],
    lostControlFiles: [],
  };
  const names = await readQueueNames(dir);
  const context: RecoveryContext = { dir, now, report, locks };

  for (const [id, bits] of names.byId) {
    if (isCleanItem(bits)) continue;
    try {
      await recoverItem(context, id, kindSet(bits), logger.child(id));
    } catch (err) {
      // Another process may remove or rename files of this item meanwhile.
      if (errorCode(err) !== 'ENOENT') throw err;
    }
  }
  // A dead process makes no new private files, so all of them were in the listing.
  await removeDeadLockTempFiles(dir, names.lockTemps, report);
  for (const id of names.milterBodies) await removeDeadMilterBody(context, id, logger.child(id));
  for (const name of names.convertedBodies) {
    const id = name.slice(2, name.lastIndexOf('.'));
    // The id may name sendmail's process, not the converting one, so only the age shows a leftover.
    if ((await fileAge(dir, name, now)) <= TEMP_FILE_MAX_AGE_MS) continue;
    await unlinkIfExists(path.join(dir, name));
    report.removedTempFiles.push(id);
    logger.child(id).notice(`removed ${name} left by an interrupted conversion of a data file`);
  }
  return report;
}

/**
 * Removes "df<id>.milter", where a mail filter's replacement body is written
 * before it is copied into df<id>, once the receiving process is gone: it was
 * killed before the message was accepted, or after the copy and before the
 * file was removed. Either way the df contains what was accepted, if anything.
 */
async function removeDeadMilterBody({ dir, now, report }: RecoveryContext, id: string, log: Logger): Promise<void> {
  const name = `df${id}.milter`;
  if (receiverAlive(id) && (await fileAge(dir, name, now)) <= ORPHAN_DATA_MAX_AGE_MS) return;
  await unlinkIfExists(path.join(dir, name));
  report.removedTempFiles.push(id);
  log.notice(`removed ${name} left by an interrupted mail filter body replacement`);
}

/**
 * Removes ".lf<id>.<pid>.<suffix>" and ".lfpid.<pid>.<n>" files, the private
 * files of LockFiles, and ".sortkeys-qf.<pid>.<n>", a sort key cache being
 * written, whose process is gone: a kill between writing one and removing or
 * renaming it leaves it behind. A live process's file is left alone. So is
 * ".lf<id>.takeover", the guard of a stale lock's takeover, while the
 * process that holds it lives.
 */
async function removeDeadLockTempFiles(dir: string, names: string[], report: RecoveryReport): Promise<void> {
  for (const name of names) {
    const cachePid = sortCacheTempPid(name);
    if (cachePid !== undefined) {
      if (!isProcessAlive(cachePid)) await removeLockFile(path.join(dir, name));
      continue;
    }
    const guard = /^\.lf([^.]+)\.takeover$/.exec(name);
    if (guard !== null) {
      // The guard of a stale lock's takeover, left by a process killed meanwhile.
      if (isQueueId(guard[1])) await new LockFiles(dir).removeStaleGuard(guard[1]);
      continue;
    }
    const match = /^\.lf([^.]+)\.(\d+)\./.exec(name);
    // ".lfpid.<pid>.<n>": the file a process's locks are hard links to.
    if (match === null || !(isQueueId(match[1]) || match[1] === 'pid') || isProcessAlive(Number(match[2]))) continue;
    await removeLockFile(path.join(dir, name));
    if (match[1] !== 'pid') report.removedTempFiles.push(match[1]);
  }
}

interface RecoveryContext {
  dir: string;
  now: number;
  report: RecoveryReport;
  locks?: RecoveryLocks;
}

async function recoverItem(
  { dir, now, report, locks }: RecoveryContext,
  id: string,
  kinds: Set<string>,
  log: Logger,
): Promise<void> {
  const age = (kind: string): Promise<number> => fileAge(dir, kind + id, now);

  if (kinds.has('tf') && ((await age('tf')) > TEMP_FILE_MAX_AGE_MS || (await abandonedCommit(dir, id, kinds)))) {
    await unlinkIfExists(path.join(dir, `tf${id}`));
    kinds.delete('tf');
    report.removedTempFiles.push(id);
    log.notice(`removed tf${id} left by an interrupted control file write`);
  }

  if (kinds.has('lf') && (await removeStaleLock(dir, id, locks))) report.removedStaleLocks.push(id);

  if (kinds.has('qf') && kinds.has('hf')) await dropOlderControlFile(dir, id, kinds, log);

  const control = kinds.has('qf') ? 'qf' : kinds.has('hf') ? 'hf' : undefined;
  if (control !== undefined) {
    // The listing may miss a df created while it was read; a stat decides.
    if (!kinds.has('df') && !(await exists(path.join(dir, `df${id}`)))) {
      if (locks !== undefined && !(await locks.lock(id))) return;
      try {
        await fs.promises.rename(path.join(dir, control + id), path.join(dir, `Qf${id}`));
      } finally {
        await locks?.unlock(id);
      }
      report.lostControlFiles.push(id);
      log.error(`data file df${id} is missing, control file renamed to Qf${id}`);
    }
    return;
  }

  if (kinds.has('df') && !kinds.has('tf') && !kinds.has('Qf')) {
    // The id ends with the pid of the process that received the message. Once
    // that process is gone, no process will finish the df (a kill -9 during DATA).
    if ((!receiverAlive(id) || (await age('df')) > ORPHAN_DATA_MAX_AGE_MS) && (await removeOrphanData(dir, id, locks))) {
      report.removedOrphanDataFiles.push(id);
      log.notice(`removed data file df${id} without control file`);
    }
  }
}

/**
 * Removes df<id> if no control file names it. The listing alone does not
 * tell: an item whose control file `-Q` renamed between qf<id> and hf<id>
 * while the folder was read can be missing from it under both names. `-Q`
 * and deliveries hold the item's lock while they rename or remove its
 * files, so the check is made under that lock.
 */
async function removeOrphanData(dir: string, id: string, locks: RecoveryLocks | undefined): Promise<boolean> {
  if (locks !== undefined && !(await locks.lock(id))) return false;
  try {
    for (const kind of ['qf', 'hf', 'tf']) if (await exists(path.join(dir, kind + id))) return false;
    // Gone already: a delivery removed the whole item while the folder was read.
    if (!(await exists(path.join(dir, `df${id}`)))) return false;
    await unlinkIfExists(path.join(dir, `df${id}`));
    return true;
  } finally {
    await locks?.unlock(id);
  }
}

/**
 * Tells whether tf<id> is the control file of a commit whose process was
 * killed. There is no qf or hf beside it, so it is no rewrite (a rewrite
 * happens only beside a control file and under the item's lock). The process
 * named in the id, which received the message and writes the first control
 * file, is gone. Such a tf and its df can go at once, because no 250 was sent
 * for them. A daemon restarted within TEMP_FILE_MAX_AGE_MS would otherwise
 * keep them until its next start.
 */
async function abandonedCommit(dir: string, id: string, kinds: Set<string>): Promise<boolean> {
  if (kinds.has('qf') || kinds.has('hf') || receiverAlive(id)) return false;
  // The listing may miss a control file renamed into place while it was read.
  if ((await exists(path.join(dir, `qf${id}`))) || (await exists(path.join(dir, `hf${id}`)))) return false;
  return !(await new LockFiles(dir).isLocked(id));
}

/** Tells whether the process named at the end of a queue id may still be receiving that message. */
function receiverAlive(id: string): boolean {
  const digits = id.slice(8);
  if (!/^\d+$/.test(digits)) return true;
  const pid = Number(digits);
  return pid === process.pid || isProcessAlive(pid);
}

async function readQueueNames(dir: string): Promise<QueueFileNames> {
  const byId = new Map<string, number>();
  const lockTemps: string[] = [];
  const milterBodies: string[] = [];
  const convertedBodies: string[] = [];
  for (const name of await fs.promises.readdir(dir)) {
    if (name.startsWith('.lf') || name.startsWith('.sortkeys-')) lockTemps.push(name);
    const partBody = /^df(.+)\.(milter|crlf|lf)$/.exec(name);
    if (partBody !== null && isQueueId(partBody[1])) {
      if (partBody[2] === 'milter') milterBodies.push(partBody[1]);
      else convertedBodies.push(name);
    }
    const kind = name.slice(0, 2);
    const bit = Object.hasOwn(KIND_BITS, kind) ? KIND_BITS[kind] : undefined;
    const id = name.slice(2);
    if (bit === undefined || !isQueueId(id)) continue;
    byId.set(id, (byId.get(id) ?? 0) | bit);
  }
  return { byId, lockTemps, milterBodies, convertedBodies };
}

/**
 * Keeps the newer of qf<id> and hf<id>. Both exist only after a crash between
 * renaming the new file into place and unlinking the old one.
 */
async function dropOlderControlFile(
  dir: string,
  id: string,
  kinds: Set<string>,
  log: Logger,
): Promise<void> {
  const qf = await fs.promises.stat(path.join(dir, `qf${id}`));
  const hf = await fs.promises.stat(path.join(dir, `hf${id}`));
  const older = qf.mtimeMs < hf.mtimeMs ? 'qf' : 'hf';

  await fs.promises.unlink(path.join(dir, older + id));
  kinds.delete(older);
  log.notice(`removed ${older}${id}, which a newer control file replaced`);
}

/**
 * Removes lf<id> when no live process has it. Another process may take a
 * stale lock over at any moment (a queue run started beside the daemon), so
 * the lock is not unlinked by name after the check. LockFiles removes it
 * under its takeover guard, after reading it again.
 */
async function removeStaleLock(dir: string, id: string, locks: RecoveryLocks | undefined): Promise<boolean> {
  if (!fs.existsSync(path.join(dir, `lf${id}`))) return false;
  // A lock with this process's pid that this process does not hold is left
  // over from an earlier process that had the same pid. Recovery may run in
  // the background while this process already holds locks of its own.
  return new LockFiles(dir).removeIfStale(id, (held) => locks?.holds(held) === true);
}

async function fileAge(dir: string, name: string, now: number): Promise<number> {
  try {
    const stat = await fs.promises.stat(path.join(dir, name));
    return now - stat.mtimeMs;
  } catch (err) {
    if (errorCode(err) === 'ENOENT') return 0;
    throw err;
  }
}

async function exists(file: string): Promise<boolean> {
  try {
    await fs.promises.stat(file);
    return true;
  } catch (err) {
    if (errorCode(err) === 'ENOENT') return false;
    throw err;
  }
}

/**
 * Sets aside a control file that cannot be parsed: renames it to Qf<id> (lost
 * items, `mailq -qL`) and logs why. Called by whoever reads it first, with the
 * item's lock held.
 */
export async function setAsideControlFile(dir: string, id: string, reason: string, logger: Logger): Promise<boolean> {
  for (const control of ['qf', 'hf']) {
    try {
      await fs.promises.rename(path.join(dir, control + id), path.join(dir, `Qf${id}`));
    } catch (err) {
      if (errorCode(err) === 'ENOENT') continue;
      throw err;
    }
    logger.child(id).error(`unparseable control file, renamed to Qf${id}: ${reason}`);
    return true;
  }
  return false;
}
