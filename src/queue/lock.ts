// Per-item lock files. lf<id> is created with O_EXCL and contains the pid of the
// process that owns the item, so the daemon and a separate `posthorn -q` never
// run the same item at once. A lock whose pid no longer exists is stale.
//
// NOTE: a stale lock whose pid was reused by an unrelated live process looks
// held until that process exits. sendmail's flock() locks do not have this gap.

import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';

/** A lock file without a valid pid younger than this is still being written. */
const UNWRITTEN_LOCK_GRACE_MS = 10_000;

export class LockFiles {
  private readonly held = new Set<string>();

  constructor(private readonly dir: string) {}

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
    if (this.held.has(id)) return false;

    // Marked as held while the lock file is being created, so that holds()
    // (queue recovery running beside deliveries) never sees a lock file of
    // this process that it does not know about.
    this.held.add(id);
    let locked = false;
    try {
      for (let attempt = 0; attempt < 2 && !locked; attempt++) {
        if (await this.create(id)) locked = true;
        else if (!(await this.removeIfStale(id))) break;
      }
    } finally {
      if (!locked) this.held.delete(id);
    }
    return locked;
  }

  async unlock(id: string): Promise<void> {
    if (!this.held.delete(id)) return;
    await unlinkIfExists(this.lockPath(id));
  }

  /** Tests whether any live process has the lock on `id`. */
  async isLocked(id: string): Promise<boolean> {
    const content = await readIfExists(this.lockPath(id));
    if (content === undefined) return false;
    return !(await this.isStale(this.lockPath(id), content));
  }

  /**
   * Creates lf<id> with the pid already in it: the pid is written to a private
   * temporary file that is then hard-linked to the lock name. link() fails with
   * EEXIST like O_EXCL does, and a crash can never leave an empty lock behind.
   */
  private async create(id: string): Promise<boolean> {
    const temp = path.join(this.dir, `.lf${id}.${process.pid}.${crypto.randomBytes(4).toString('hex')}`);
    await fs.promises.writeFile(temp, `${process.pid}\n`, { mode: 0o600 });
    try {
      await fs.promises.link(temp, this.lockPath(id));
      return true;
    } catch (err) {
      if (errorCode(err) === 'EEXIST') return false;
      throw err;
    } finally {
      await unlinkIfExists(temp);
    }
  }

  /**
   * Removes the lock file of `id` if it is stale and returns whether it did.
   * The file is first renamed to a private name and its content compared, so
   * that a lock another process has just taken over is put back, not deleted.
   */
  private async removeIfStale(id: string): Promise<boolean> {
    const lockPath = this.lockPath(id);
    const content = await readIfExists(lockPath);
    if (content === undefined) return true;
    if (!(await this.isStale(lockPath, content))) return false;

    const aside = path.join(this.dir, `.lf${id}.${process.pid}.${crypto.randomUUID()}`);
    try {
      await fs.promises.rename(lockPath, aside);
    } catch (err) {
      if (errorCode(err) === 'ENOENT') return true;
      throw err;
    }

    const moved = await readIfExists(aside);
    if (moved !== content) {
      await fs.promises.link(aside, lockPath).catch(() => undefined);
      await unlinkIfExists(aside);
      return false;
    }
    await unlinkIfExists(aside);
    return true;
  }

  private async isStale(lockPath: string, content: string): Promise<boolean> {
    const pid = parsePid(content);
    if (pid !== undefined) return !isProcessAlive(pid);

    const stat = await fs.promises.stat(lockPath).catch(() => undefined);
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
    return true;
  } catch (err) {
    // EPERM: the process exists but belongs to another user.
    return errorCode(err) === 'EPERM';
  }
}

export function errorCode(err: unknown): string | undefined {
  return (err as NodeJS.ErrnoException | undefined)?.code;
}

async function readIfExists(file: string): Promise<string | undefined> {
  try {
    return await fs.promises.readFile(file, 'utf8');
  } catch (err) {
    if (errorCode(err) === 'ENOENT') return undefined;
    throw err;
  }
}

export async function unlinkIfExists(file: string): Promise<void> {
  try {
    await fs.promises.unlink(file);
  } catch (err) {
    if (errorCode(err) !== 'ENOENT') throw err;
  }
}
