// The durable queue store: one directory holding df<id> (message data), qf<id>
// or hf<id> (control file of a normal or quarantined item), and short-lived
// tf<id> (control file being written) and lf<id> (lock) files.
//
// Commit protocol with SuperSafe other than False: the df is fsynced, the
// control file is written to tf<id> and fsynced, the directory is fsynced, tf is
// renamed to qf<id> (or hf<id>), and the directory is fsynced again. A qf file
// therefore only exists once its df is complete on stable storage. Directory
// fsyncs are shared between commits that run at the same time.

import * as fs from 'node:fs';
import * as path from 'node:path';
import { SuperSafe } from '../config/types';
import { Logger } from '../log/logger';
import { BufferedDataFile, DataFileWriter } from './data-file';
import { defaultSync, DirectorySync, SyncFunction } from './group-sync';
import { isQueueId, QueueIdGenerator } from './id';
import { errorCode, LockFiles, unlinkIfExists } from './lock';
import { parseControlFile, serializeControlFile } from './qf';
import { recoverQueue, RecoveryReport, setAsideControlFile } from './recovery';
import { QueueItem } from './types';

export type { DataFileWriter } from './data-file';

export interface QueueStoreOptions {
  dir: string;
  superSafe: SuperSafe;
  logger: Logger;
  /** Replaces fsync for files and the directory, e.g. to count or fail syncs. */
  sync?: SyncFunction;
  idGenerator?: QueueIdGenerator;
}

/** The first two letters of a queue file name. */
export type ControlFileKind = 'qf' | 'hf' | 'Qf';

export interface QueueStoreStats {
  /** Directory fsyncs; group commit keeps this below the number of commits. */
  dirSyncs: number;
  /** Data and control file fsyncs. */
  fileSyncs: number;
}

export class QueueStore {
  readonly dir: string;
  /** The report of the repairs init() made; undefined before init(). */
  recovery: RecoveryReport | undefined;
  private recovering: Promise<void> | undefined;
  /** True while the recovery started by init() has not finished. */
  recoveryRunning = false;
  private readonly superSafe: SuperSafe;
  private readonly logger: Logger;
  private readonly sync: SyncFunction;
  private readonly ids: QueueIdGenerator;
  private readonly dirSync: DirectorySync;
  private readonly locks: LockFiles;
  private readonly writers = new Map<string, BufferedDataFile>();
  /**
   * The qf text of items this process has just committed, with the file's inode
   * and size, so that the first read() (the immediate delivery) needs one stat()
   * instead of reading the file back. Any later rewrite (by this or another
   * process) replaces the qf by rename, which changes the inode, and then the
   * file is read as before.
   */
  private readonly freshControl = new Map<string, { text: string; ino: number; size: number }>();
  private fileSyncs = 0;

  constructor(opts: QueueStoreOptions) {
    this.dir = opts.dir;
    this.superSafe = opts.superSafe;
    this.logger = opts.logger;
    const sync = opts.sync ?? defaultSync;
    this.sync = sync;
    this.ids = opts.idGenerator ?? new QueueIdGenerator();
    this.dirSync = new DirectorySync(this.dir, sync);
    this.locks = new LockFiles(this.dir);
  }

  get stats(): QueueStoreStats {
    return { dirSyncs: this.dirSync.syncs, fileSyncs: this.fileSyncs };
  }

  /**
   * Creates the queue directory and, unless `recover` is false, repairs what
   * an interrupted process left behind (see recovery.ts). Short-lived
   * processes (-t, -bs, -bp) skip recovery and leave it to the daemon and
   * queue runs. With `background`, init() returns once the directory exists
   * and recovery goes on meanwhile; recovered() waits for it.
   */
  async init(opts: { recover?: boolean; background?: boolean } = {}): Promise<void> {
    await fs.promises.mkdir(this.dir, { recursive: true, mode: 0o700 });
    if (opts.recover === false) return;
    const locks = {
      lock: (id: string) => this.lock(id),
      unlock: (id: string) => this.unlock(id),
      holds: (id: string) => this.locks.holds(id),
    };
    this.recoveryRunning = true;
    this.recovering = recoverQueue(this.dir, this.logger, Date.now(), locks).then(
      (report) => {
        this.recovery = report;
        this.recoveryRunning = false;
      },
      (err: unknown) => {
        this.recoveryRunning = false;
        throw err;
      },
    );
    if (opts.background !== true) return this.recovering;
    this.recovering.catch((err: unknown) => this.logger.error(`queue recovery failed: ${(err as Error).message}`));
  }

  /** Resolves when the recovery started by init() has finished. */
  async recovered(): Promise<void> {
    await this.recovering?.catch(() => undefined);
  }

  /**
   * Renames the control file of `id` to Qf<id> because it cannot be parsed,
   * and logs `reason`. The caller holds the item's lock.
   */
  setAside(id: string, reason: string): Promise<boolean> {
    return setAsideControlFile(this.dir, id, reason, this.logger);
  }

  /**
   * Returns a fresh queue id. Ids carry the pid, the second and a sequence
   * number, so they repeat only if a process with the same pid reuses the same
   * second; openDataFile() creates df<id> with O_EXCL and fails in that case.
   */
  newId(): string {
    return this.ids.next();
  }

  dataPath(id: string): string {
    return path.join(this.dir, `df${id}`);
  }

  /** Tests whether df<id> exists. */
  async hasDataFile(id: string): Promise<boolean> {
    try {
      await fs.promises.stat(this.dataPath(id));
      return true;
    } catch (err) {
      if (errorCode(err) === 'ENOENT') return false;
      throw err;
    }
  }

  controlPath(id: string, kind: ControlFileKind = 'qf'): string {
    return path.join(this.dir, kind + id);
  }

  /** Creates df<id>; fails with EEXIST if it exists. */
  async openDataFile(id: string): Promise<DataFileWriter> {
    const file = this.dataPath(id);
    const handle = await fs.promises.open(file, 'wx', 0o600);

    // commit() fsyncs the df at the same time as the tf (and, for PostMilter,
    // only after every milter accepted the message), so close() only writes.
    const writer = new BufferedDataFile(handle, {
      path: file,
      syncOnClose: false,
      sync: (h, p) => this.syncFile(h, p),
      onError: () => unlinkIfExists(file),
    });
    this.writers.set(id, writer);
    return writer;
  }

  /**
   * Makes a new item durable; after this resolves, the 250 reply may be sent.
   * On failure nothing of the item remains and the error keeps its errno
   * `code` (ENOSPC, EIO, EROFS...).
   */
  async commit(item: QueueItem): Promise<void> {
    // The df and tf fsyncs overlap: one wait for the disk instead of two. The
    // rename that makes the item visible still waits for both.
    const dataSynced = this.syncDataFile(item.id).catch((err: unknown) => {
      // The session's reply names the file that failed ("error writing data file").
      if (err instanceof Error) Object.assign(err, { queueFile: 'data' });
      throw err;
    });
    dataSynced.catch(() => undefined);
    try {
      await this.writeControlFile(item, true, dataSynced);
    } catch (err) {
      // A df failure wins, as when the df was synced first.
      const dataError = await dataSynced.then(() => undefined, (e: unknown) => e);
      await this.removeFiles(item.id, ['tf', 'qf', 'hf', 'df']).catch(() => undefined);
      throw dataError ?? err;
    }
  }

  /** Reads the control file of `id` (qf, else hf); throws QueueFileError if damaged. */
  async read(id: string): Promise<QueueItem> {
    const fresh = this.freshControl.get(id);
    if (fresh !== undefined) {
      this.freshControl.delete(id);
      const stat = await fs.promises.stat(this.controlPath(id, 'qf')).catch(() => undefined);
      if (stat !== undefined && stat.ino === fresh.ino && stat.size === fresh.size) {
        return parseControlFile(fresh.text, id);
      }
    }
    let text: string;
    try {
      text = await fs.promises.readFile(this.controlPath(id, 'qf'), 'utf8');
    } catch (err) {
      if (errorCode(err) !== 'ENOENT') throw err;
      text = await fs.promises.readFile(this.controlPath(id, 'hf'), 'utf8');
    }
    return parseControlFile(text, id);
  }

  /**
   * Replaces the control file of a committed item atomically. It becomes hf<id>
   * when the item has a quarantine reason, else qf<id>, and the other is
   * removed. On failure the previous control file is left as it was.
   */
  async update(item: QueueItem): Promise<void> {
    try {
      await this.writeControlFile(item, false);
    } catch (err) {
      await unlinkIfExists(path.join(this.dir, `tf${item.id}`)).catch(() => undefined);
      throw err;
    }
  }

  /** Removes a finished item: the control file first, so a crash leaves no qf without df. */
  async remove(id: string): Promise<void> {
    this.freshControl.delete(id);
    // qf and hf at the same time (usually only one exists), then the df.
    await Promise.all([this.removeFiles(id, ['qf']), this.removeFiles(id, ['hf'])]);
    await this.removeFiles(id, ['df']);
    await this.locks.unlock(id);
  }

  /** Discards a transaction that failed before commit(). */
  async abort(id: string): Promise<void> {
    const writer = this.writers.get(id);
    this.writers.delete(id);
    if (writer !== undefined && !writer.closed) await writer.close().catch(() => undefined);
    await this.removeFiles(id, ['tf', 'df']);
  }

  /** Ids of the control files of one kind, in directory order. */
  async list(kind: ControlFileKind = 'qf'): Promise<string[]> {
    const ids: string[] = [];
    for (const name of await fs.promises.readdir(this.dir)) {
      if (name.startsWith(kind) && isQueueId(name.slice(2))) ids.push(name.slice(2));
    }
    return ids;
  }

  /** Takes the lock on `id`; false if this or another live process holds it. */
  lock(id: string): Promise<boolean> {
    return this.locks.lock(id);
  }

  unlock(id: string): Promise<void> {
    return this.locks.unlock(id);
  }

  /** Tests whether any live process has the lock on `id` (mailq's "*"). */
  isLocked(id: string): Promise<boolean> {
    return this.locks.isLocked(id);
  }

  private get safe(): boolean {
    return this.superSafe !== 'false';
  }

  private async syncFile(handle: fs.promises.FileHandle, file: string): Promise<void> {
    await this.sync(handle, file);
    this.fileSyncs += 1;
  }

  /** Closes the df writer if still open and fsyncs the df unless close() did. */
  private async syncDataFile(id: string): Promise<void> {
    const writer = this.writers.get(id);
    this.writers.delete(id);
    if (writer !== undefined && !writer.closed) await writer.close();
    if (writer?.failure !== undefined) throw writer.failure;
    if (!this.safe || writer?.synced) return;

    // NOTE: the writer closed the df after DATA, so it is opened again for the fsync (two calls per message).
    const handle = await fs.promises.open(this.dataPath(id), 'r');
    try {
      await this.syncFile(handle, this.dataPath(id));
    } finally {
      await handle.close();
    }
  }

  private async writeControlFile(item: QueueItem, isNew: boolean, dataSynced?: Promise<void>): Promise<void> {
    const text = serializeControlFile(item);
    const temp = path.join(this.dir, `tf${item.id}`);
    const kind = item.quarantine !== undefined ? 'hf' : 'qf';
    this.freshControl.delete(item.id);
    const remember = isNew && kind === 'qf';
    let written: fs.Stats | undefined;

    const handle = await fs.promises.open(temp, 'w', 0o600);
    try {
      await handle.writeFile(text, 'utf8');
      if (this.safe) await this.syncFile(handle, temp);
      if (remember) written = await handle.stat();
    } finally {
      await handle.close();
    }

    // For a new item the df (content and entry) must be durable before the qf appears.
    if (dataSynced !== undefined) await dataSynced;
    if (this.safe && isNew) await this.dirSync.request();
    await fs.promises.rename(temp, this.controlPath(item.id, kind));
    if (!isNew) await unlinkIfExists(this.controlPath(item.id, kind === 'qf' ? 'hf' : 'qf'));
    if (this.safe) await this.dirSync.request();
    if (written !== undefined) {
      // Bounded: items that are only queued (QueueLA, DeliveryMode=queue) are never read back here.
      if (this.freshControl.size >= 1024) this.freshControl.delete(this.freshControl.keys().next().value!);
      this.freshControl.set(item.id, { text, ino: written.ino, size: written.size });
    }
  }

  private async removeFiles(id: string, kinds: string[]): Promise<void> {
    for (const kind of kinds) await unlinkIfExists(path.join(this.dir, kind + id));
  }
}
