// Per-item lock files. lf<id> is created with O_EXCL and contains the pid of the
// process that owns the item, so the daemon and a separate `posthorn -q` never
// run the same item at once. A lock whose pid no longer exists is stale.
//
// NOTE: a stale lock whose pid was reused by an unrelated live process looks
// held until that process exits. sendmail's flock() locks do not have this gap.

import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import { readTextNoFollow } from './no-follow';
import * as path from 'node:path';

/** A lock file without a valid pid younger than this is still being written. */
const UNWRITTEN_LOCK_GRACE_MS = 10_000;

/** Per queue directory (resolved path), the ids this process holds. */
const heldInProcess = new Map<string, Set<string>>();

/** Per queue directory, the file holding this process's pid that locks link to. */
const pidFiles = new Map<string, { pid: number; file: string; locks: number }>();
let pidFileCounter = 0;
let exitHookSet = false;

/**
 * Returns ".lfpid.<pid>.<n>" in `dir`, written when the first lock is taken.
 * It is removed when the last lock is released (releasePidFile) and when the
 * process exits; queue recovery removes one whose process is gone.
 */
function ownPidFile(dir: string): string {
  const known = pidFiles.get(dir);
  // A forked worker inherits the map but has a pid of its own.
  if (known !== undefined && known.pid === process.pid) return known.file;
  if (!exitHookSet) {
    // Once per process: the map empties and fills again as locks come and go.
    exitHookSet = true;
    process.once('exit', removePidFiles);
  }
  pidFileCounter += 1;
  const file = path.join(dir, `.lfpid.${process.pid}.${pidFileCounter}`);
  try {
    fs.writeFileSync(file, `${process.pid}\n`, { mode: 0o600 });
  } catch (err) {
    // A full disk: the file was created but not written, and no lock may link to it.
    unlinkSyncIfExists(file);
    throw err;
  }
  pidFiles.set(dir, { pid: process.pid, file, locks: 0 });
  return file;
}

/** Adds `change` to the locks linked to the pid file of `dir`; removes the file when none is left. */
function countLock(dir: string, change: number): void {
  const known = pidFiles.get(dir);
  if (known === undefined || known.pid !== process.pid) return;
  known.locks += change;
  if (known.locks > 0) return;
  pidFiles.delete(dir);
  unlinkSyncIfExists(known.file);
}

function forgetPidFile(dir: string): void {
  pidFiles.delete(dir);
}

function removePidFiles(): void {
  for (const { pid, file } of pidFiles.values()) {
    if (pid !== process.pid) continue;
    try {
      fs.unlinkSync(file);
    } catch {
      // Already gone; recovery removes leftovers of dead processes anyway.
    }
  }
}

export class LockFiles {
  private readonly held = new Set<string>();
  /**
   * Ids locked by any LockFiles object of this process in `dir`. Two of them
   * must never race for one lock, because the takeover of a stale lock
   * renames it aside for a moment and a second taker could slip into that gap.
   */
  private readonly heldHere: Set<string>;

  constructor(private readonly dir: string) {
    const key = path.resolve(dir);
    let heldHere = heldInProcess.get(key);
    if (heldHere === undefined) {
      heldHere = new Set();
      heldInProcess.set(key, heldHere);
    }
    this.heldHere = heldHere;
  }

  lockPath(id: string): string {
    return path.join(this.dir, `lf${id}`);
  }

  /** Tests whether this object has the lock on `id`. */
  holds(id: string): boolean {
    return this.held.has(id);
  }

  /**
   * Takes the lock on `id`. Returns false if this process or another live
   * process holds it; takes over a stale lock.
   */
  async lock(id: string): Promise<boolean> {
    if (this.held.has(id) || this.heldHere.has(id)) return false;

    // Marked as held while the lock file is being created, so that holds()
    // (queue recovery running beside deliveries) never sees a lock file of
    // this process that it does not know about.
    this.held.add(id);
    this.heldHere.add(id);
    let locked = false;
    try {
      for (let attempt = 0; attempt < 2 && !locked; attempt++) {
        if (this.create(id)) locked = true;
        else if (!(await this.removeIfStale(id))) break;
      }
    } finally {
      if (!locked) {
        this.held.delete(id);
        this.heldHere.delete(id);
      }
    }
    return locked;
  }

  async unlock(id: string): Promise<void> {
    if (!this.held.delete(id)) return;
    this.heldHere.delete(id);
    // Through the thread pool: an unlink can wait for a journal commit of the
    // file system, which must not stall the event loop. Nothing waits on it.
    await unlinkIfExists(this.lockPath(id));
    countLock(this.dir, -1);
  }

  /** Tests whether any live process has the lock on `id`. */
  async isLocked(id: string): Promise<boolean> {
    const content = await readIfExists(this.lockPath(id));
    if (content === undefined) return false;
    return !(await this.isStale(this.lockPath(id), content));
  }

  /**
   * Creates lf<id> with the pid already in it: lf<id> is a hard link to a
   * private file of this process that contains its pid (see ownPidFile). link()
   * fails with EEXIST like O_EXCL does, a crash can never leave an empty lock
   * behind, and taking a lock is one metadata change. The call is
   * synchronous: cheaper than a round trip through the thread pool.
   */
  private create(id: string): boolean {
    return this.linkOwn(this.lockPath(id));
  }

  /** Creates `target` as a hard link to this process's pid file; false if it exists. */
  private linkOwn(target: string): boolean {
    for (let attempt = 0; ; attempt++) {
      try {
        fs.linkSync(ownPidFile(this.dir), target);
        countLock(this.dir, 1);
        return true;
      } catch (err) {
        if (errorCode(err) === 'EEXIST') {
          countLock(this.dir, 0);
          return false;
        }
        // Someone removed the pid file: write it again, once.
        if (errorCode(err) !== 'ENOENT' || attempt > 0) throw err;
        forgetPidFile(this.dir);
      }
    }
  }

  /**
   * Removes the lock file of `id` if it is stale and returns whether it did
   * (also true when there is none). With `ownHeld`, a lock naming this
   * process is stale unless `ownHeld(id)` is true or another lock() of this
   * process holds it. Queue recovery uses that for a lock left by an earlier
   * process with the same pid.
   *
   * Several processes may find the same stale lock at once (a daemon
   * restarted after a kill and the queue runners started beside it). Only the
   * one that holds the guard `.lf<id>.takeover` removes it, after reading it
   * again: a lock file is then only ever removed while it is stale, by one
   * process, or by its owner. Without the guard a process could move aside a
   * lock that another had just taken over, a third could take the free name,
   * and two processes delivered the same item.
   */
  async removeIfStale(id: string, ownHeld?: (id: string) => boolean): Promise<boolean> {
    const lockPath = this.lockPath(id);
    const stale = async (): Promise<boolean | undefined> => {
      const content = await readIfExists(lockPath);
      if (content === undefined) return undefined;
      if (ownHeld !== undefined && parsePid(content) === process.pid) return !(ownHeld(id) || this.heldHere.has(id));
      return this.isStale(lockPath, content);
    };
    const first = await stale();
    if (first === undefined) return true;
    if (!first) return false;

    if (!(await this.takeGuard(id))) return false;
    try {
      const again = await stale();
      if (again === undefined) return true;
      if (!again) return false;
      // Renamed aside first: a lock that is a folder with files in it is then out of the way too.
      return await this.removeStaleFile(id, lockPath, undefined);
    } finally {
      await unlinkIfExists(this.guardPath(id)).catch(() => undefined);
      countLock(this.dir, -1);
    }
  }

  /**
   * Removes `.lf<id>.takeover` if the process that holds it is gone (it was
   * killed while it took a stale lock over), and returns whether it did.
   */
  async removeStaleGuard(id: string): Promise<boolean> {
    const guard = this.guardPath(id);
    const content = await readIfExists(guard);
    if (content === undefined) return true;
    if (!(await this.isStale(guard, content))) return false;
    return this.removeStaleFile(id, guard, content);
  }

  private guardPath(id: string): string {
    return path.join(this.dir, `.lf${id}.takeover`);
  }

  /** Takes the guard of `id` for removeIfStale(); false while another live process has it. */
  private async takeGuard(id: string): Promise<boolean> {
    for (let attempt = 0; attempt < 2; attempt++) {
      if (this.linkOwn(this.guardPath(id))) return true;
      // A guard left by a killed process; one that a live process holds means it is busy with this lock.
      if (!(await this.removeStaleGuard(id))) return false;
    }
    return false;
  }

  /**
   * Removes `file`, a stale lock or guard of `id`, by renaming it to a private
   * name first. When `content` is given, the moved file's content is compared
   * with it, and a file that another process has just replaced is put back.
   */
  private async removeStaleFile(id: string, file: string, content: string | undefined): Promise<boolean> {
    const aside = path.join(this.dir, `.lf${id}.${process.pid}.${crypto.randomUUID()}`);
    try {
      await fs.promises.rename(file, aside);
    } catch (err) {
      if (errorCode(err) === 'ENOENT') return true;
      throw err;
    }

    const moved = content === undefined ? undefined : await readIfExists(aside);
    if (moved !== content) {
      await fs.promises.link(aside, file).catch(() => undefined);
      await removeLockFile(aside);
      return false;
    }
    await removeLockFile(aside);
    return true;
  }

  private async isStale(lockPath: string, content: string): Promise<boolean> {
    const pid = parsePid(content);
    if (pid !== undefined) return !isProcessAlive(pid);

    // lstat: a planted symlink is judged by its own age; stat() of a dangling one fails and would keep the item locked for ever.
    const stat = await fs.promises.lstat(lockPath).catch(() => undefined);
    return stat !== undefined && Date.now() - stat.mtimeMs > UNWRITTEN_LOCK_GRACE_MS;
  }
}

/** Returns the pid written in a lock file, or undefined if there is none. */
export function parsePid(content: string): number | undefined {
  if (!/^[0-9]+\n$/.test(content)) return undefined;
  const pid = Number(content.trim());
  return pid > 0 ? pid : undefined;
}

export function isProcessAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch (err) {
    // EPERM: the process exists but belongs to another user.
    if (errorCode(err) !== 'EPERM') return false;
  }
  // A zombie (killed, not yet reaped by its parent) still takes signal 0.
  return !isZombie(pid);
}

/** Tests whether `pid` has ended and waits for its parent (state Z in /proc); false when /proc is not readable. */
function isZombie(pid: number): boolean {
  let stat: string;
  try {
    stat = fs.readFileSync(`/proc/${pid}/stat`, 'latin1');
  } catch {
    return false;
  }
  // The state letter follows the command name in parentheses, which may itself contain ")".
  return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) === 'Z';
}

export function errorCode(err: unknown): string | undefined {
  return (err as NodeJS.ErrnoException | undefined)?.code;
}

/**
 * Reads a lock file; undefined when there is none. A symlink, FIFO or other
 * file that is not a regular one reads as empty, a damaged lock, and is
 * never opened in a way that could wait.
 */
async function readIfExists(file: string): Promise<string | undefined> {
  try {
    return await readTextNoFollow(file);
  } catch (err) {
    const code = errorCode(err);
    if (code === 'ENOENT') return undefined;
    if (code === 'ENOTREG' || code === 'ELOOP') return '';
    throw err;
  }
}

/**
 * Removes a lock file, or a lock's private file, that has been renamed out of
 * the way. One that is a folder (planted in the queue folder) is removed if
 * it is empty and otherwise left where it is: it no longer blocks any item.
 */
export async function removeLockFile(file: string): Promise<void> {
  try {
    await unlinkIfExists(file);
  } catch (err) {
    if (errorCode(err) !== 'EISDIR' && errorCode(err) !== 'EPERM') throw err;
    await fs.promises.rmdir(file).catch(() => undefined);
  }
}

/** unlink() that ignores a missing file; the callback API costs less than fs.promises. */
export function unlinkIfExists(file: string): Promise<void> {
  return new Promise((resolve, reject) => {
    fs.unlink(file, (err) => (err && err.code !== 'ENOENT' ? reject(err) : resolve()));
  });
}

/** unlink() that ignores a missing file, synchronous (see LockFiles.create). */
export function unlinkSyncIfExists(file: string): void {
  try {
    fs.unlinkSync(file);
  } catch (err) {
    if (errorCode(err) !== 'ENOENT') throw err;
  }
}
