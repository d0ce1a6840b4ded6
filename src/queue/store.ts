// The durable queue store: one directory holding df<id> (message data), qf<id>
// or hf<id> (control file of a normal or quarantined item), and short-lived
// tf<id> (control file being written) and lf<id> (lock) files.
//
// Commit protocol with SuperSafe other than False: the df is fsynced, the
// control file is written to tf<id> and fsynced, the directory is fsynced, tf is
// renamed to qf<id> (or hf<id>), and the directory is fsynced again. A qf file
// therefore only exists once its df is complete on stable storage. Directory
// fsyncs are shared between commits that run at the same time.
//
// With the commit journal (journal.ts) a small message accepted for immediate
// delivery skips all of that. Its control file and body are appended to the
// journal. df and qf are written only if the message is still queued after
// its first delivery (materialize()).

import * as fs from 'node:fs';
import * as path from 'node:path';
import { SuperSafe } from '../config/types';
import { Logger } from '../log/logger';
import { BufferedDataFile, DataFileWriter } from './data-file';
import { defaultSync, DirectorySync, SyncFunction } from './group-sync';
import { isQueueId, QueueIdGenerator } from './id';
import { errorCode, LockFiles, unlinkIfExists, unlinkSyncIfExists } from './lock';
import { decodeControlFile, parseControlFile, serializeControlFile } from './qf';
import { recoverQueue, RecoveryReport, setAsideControlFile } from './recovery';
import { QueueItem } from './types';
import { openRegular, READ_NO_FOLLOW, readBytesNoFollow } from './no-follow';
import { claimedJournalName, CommitJournal, doneRecords, isJournalName, journalOwnerGone, readJournal, type JournalEntry, type RecoveredEntry } from './journal';

export type { DataFileWriter } from './data-file';

export interface QueueStoreOptions {
  dir: string;
  superSafe: SuperSafe;
  logger: Logger;
  /** Replaces fsync for files and the directory, e.g. to count or fail syncs. */
  sync?: SyncFunction;
  idGenerator?: QueueIdGenerator;
  /** Commit small messages for immediate delivery to the journal (the daemon, CommitJournal=true). */
  journal?: boolean;
}

/** The first two letters of a queue file name. */
export type ControlFileKind = 'qf' | 'hf' | 'Qf';

/** Outcome of one journal recovery. */
export interface JournalRecovery {
  /** Entries it wrote out as df and qf. */
  written: number;
  /** The names in the queue folder when it looked for journals (absent if the folder was missing). */
  names?: string[];
}

export interface QueueStoreStats {
  /** Directory fsyncs; group commit keeps this below the number of commits. */
  dirSyncs: number;
  /** Data and control file fsyncs. */
  fileSyncs: number;
}

/** The parts of a committed item kept for its first read (see freshControl). */
interface FreshControl {
  text: string;
  ino: number;
  size: number;
  /** The df's content, when the message was small enough to keep. */
  body: Buffer | undefined;
  /** The lock was taken before the qf existed and has been held since. */
  lockedAtCommit: boolean;
}

/**
 * Age after which an item still in the commit journal is written out as df
 * and qf: its first delivery waits for a slow next hop or a delivery slot.
 * Then mailq shows it, and a queue run of another process finds it locked.
 */
const JOURNAL_LINGER_MS = 5000;

/**
 * Interval of the daemon's own retries of stranded items (failed write-outs).
 * A Workers=N worker runs no queue runs, and a queue run of the daemon waits
 * while deliveries are in flight, so neither would retry them soon.
 */
const STRANDED_RETRY_MS = 10_000;

/** At most this many bytes of bodies are kept in memory for immediate delivery. */
const FRESH_BODY_BYTES = 8 * 1024 * 1024;

/** Options of QueueStore.commit(). */
export interface CommitOptions {
  /**
   * Take the item's lock before its qf appears (for the delivery that starts
   * right after the 250): no queue run can pick the item up in between, and the
   * first read() needs no stat(). The caller must unlock or remove the item.
   */
  lock?: boolean;
  /**
   * Keep a small body in memory for that delivery. Only when nothing rewrote
   * the df after the writer closed it (a milter's replacement body does).
   */
  keepBody?: boolean;
  /**
   * SuperSafe=Interactive: write the files without any fsync, because the
   * client waits for the delivery attempt before it gets its reply. The
   * caller calls syncItem() before that reply unless the delivery removed
   * the item.
   */
  syncLater?: boolean;
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
  /** Bodies handed from freshControl to the delivery that read the item (see takeBody). */
  private readonly takenBodies = new Map<string, Buffer>();
  /** Items read while still held since their commit (no tf of theirs can be left over). */
  private readonly heldSinceCommit = new Set<string>();
  /**
   * The qf text of items this process has just committed, with the file's inode
   * and size, so that the first read() (the immediate delivery) needs one stat()
   * instead of reading the file back. Any later rewrite (by this or another
   * process) replaces the qf by rename, which changes the inode, and then the
   * file is read as before.
   */
  private readonly freshControl = new Map<string, FreshControl>();
  /** Bytes of message bodies kept in freshControl (bounded by FRESH_BODY_BYTES). */
  private freshBodyBytes = 0;
  private fileSyncs = 0;
  private readonly journal: CommitJournal | undefined;
  /** The journal recovery running now, if any (one at a time per process). */
  private journalRecovery: Promise<JournalRecovery> | undefined;
  /** Start time and count of this store's journal takeovers, for the names of the files it claims. */
  private readonly claimToken = Date.now();
  private claims = 0;
  /**
   * Items of this process's journal that could not be written out (a full
   * disk), which queue runs and a timer retry. The value is true when a
   * delivery still has the item, because the 5-second write-out failed while
   * it was delivered or waited for a slot. The retry then keeps the lock.
   */
  private readonly stranded = new Map<string, boolean>();
  /** When an item was last stranded or the stranded items were last tried again (ms since the epoch). */
  private strandedTried = 0;
  /** The retry of stranded items running now, if any. */
  private strandedRetry: Promise<void> | undefined;
  /** Write-outs of journal items in progress; remove(), update() and unlock() wait for them. */
  private readonly writingOut = new Map<string, Promise<void>>();

  constructor(opts: QueueStoreOptions) {
    this.dir = opts.dir;
    this.superSafe = opts.superSafe;
    this.logger = opts.logger;
    const sync = opts.sync ?? defaultSync;
    this.sync = sync;
    this.ids = opts.idGenerator ?? new QueueIdGenerator();
    this.dirSync = new DirectorySync(this.dir, sync);
    this.locks = new LockFiles(this.dir);
    if (opts.journal === true) {
      const fdatasync: SyncFunction = opts.sync ?? ((fd) => new Promise((resolve, reject) => fs.fdatasync(fd, (err) => (err ? reject(err) : resolve()))));
      this.journal = new CommitJournal(this.dir, fdatasync, () => this.dirSync.request(), (m) => this.logger.error(m));
      setInterval(() => {
        this.writeOutLingering();
        if (this.stranded.size > 0 && Date.now() - this.strandedTried >= STRANDED_RETRY_MS) {
          this.retryStranded().catch((err: unknown) => this.logger.error(`retry of commit journal write-outs failed: ${(err as Error).message}`));
        }
      }, 1000).unref();
    }
  }

  get stats(): QueueStoreStats {
    return { dirSyncs: this.dirSync.syncs, fileSyncs: this.fileSyncs };
  }

  /** fdatasync() calls of the commit journal so far, one per batch of commits. */
  get journalSyncs(): number {
    return this.journal?.syncs ?? 0;
  }

  /**
   * Creates the queue directory and, unless `recover` is false, repairs what
   * an interrupted process left behind (see recovery.ts). Short-lived
   * processes (-t, -bs, -bp) skip recovery and leave it to the daemon and
   * queue runs. With `background`, init() returns once the directory exists
   * and recovery goes on meanwhile; recovered() waits for it.
   */
  async init(opts: { recover?: boolean; background?: boolean; deferred?: boolean } = {}): Promise<void> {
    await fs.promises.mkdir(this.dir, { recursive: true, mode: 0o700 });
    if (opts.recover === false) return;
    this.recoveryRunning = true;
    if (opts.deferred === true) {
      // A queue run lists and sorts the queue first; recovery lists it again
      // and would compete for the CPUs before the first delivery.
      this.deferredRecovery = () => this.startRecovery(true);
      return;
    }
    return this.startRecovery(opts.background === true);
  }

  /**
   * Starts the recovery that init({ deferred: true }) put off; queue runs call
   * it once they have gathered their items. Does nothing otherwise.
   */
  startDeferredRecovery(): void {
    const start = this.deferredRecovery;
    this.deferredRecovery = undefined;
    start?.();
  }

  private deferredRecovery: (() => void) | undefined;

  private startRecovery(background: boolean): Promise<void> {
    const locks = {
      lock: (id: string) => this.lock(id),
      unlock: (id: string) => this.unlock(id),
      holds: (id: string) => this.locks.holds(id),
    };
    // Journals of a gone process first: their items become df and qf, which the queue recovery then finds complete.
    // A journal that cannot be written out (a full disk) is logged and kept; the queue is still repaired.
    const journals = this.recoverJournals().catch((err: unknown) => this.logger.error(`commit journal recovery failed: ${(err as Error).message}`));
    this.recovering = journals.then(() => recoverQueue(this.dir, this.logger, Date.now(), locks)).then(
      (report) => {
        this.recovery = report;
        this.recoveryRunning = false;
      },
      (err: unknown) => {
        this.recoveryRunning = false;
        throw err;
      },
    );
    if (!background) return this.recovering;
    this.recovering.catch((err: unknown) => this.logger.error(`queue recovery failed: ${(err as Error).message}`));
    return Promise.resolve();
  }

  /** Resolves when the recovery started by init() has finished (starting a deferred one). */
  async recovered(): Promise<void> {
    this.startDeferredRecovery();
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

  /**
   * Creates df<id>; fails with EEXIST if it exists. With `lazy` (and the
   * journal on) the file is created only when a batch of the body goes to
   * disk or the commit needs it: a small message that goes to the journal
   * never has one.
   */
  async openDataFile(id: string, opts: { lazy?: boolean } = {}): Promise<DataFileWriter> {
    const file = this.dataPath(id);
    if (opts.lazy === true && this.journal !== undefined) {
      // The id is reserved by the O_EXCL create only when it happens, so a failed
      // create (EEXIST) must not remove a df of another item.
      let created = false;
      const lazy = new BufferedDataFile(undefined, {
        path: file,
        onError: () => (created ? unlinkIfExists(file) : Promise.resolve()),
        create: async () => {
          const fd = await openFile(file, 'wx');
          created = true;
          return fd;
        },
      });
      this.writers.set(id, lazy);
      return lazy;
    }
    // Creates go through the thread pool: allocating an inode can cost more
    // than the round trip (ext4 without a journal scans past recently freed
    // inodes), and the event loop is the daemon's bottleneck.
    const fd = await openFile(file, 'wx');

    // commit() fsyncs the df at the same time as the tf (and, for PostMilter,
    // only after every milter accepted the message), so close() only writes.
    const writer = new BufferedDataFile(fd, {
      path: file,
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
  async commit(item: QueueItem, opts: CommitOptions = {}): Promise<void> {
    // The df and tf fsyncs overlap: one wait for the disk instead of two. The
    // rename that makes the item visible still waits for both.
    const writer = this.writers.get(item.id);
    const later = opts.syncLater === true;
    if (writer !== undefined && this.journal !== undefined && (await this.commitToJournal(item, writer, opts))) return;
    const dataSynced = this.syncDataFile(item.id, later).catch((err: unknown) => {
      // The session's reply names the file that failed ("error writing data file").
      if (err instanceof Error) Object.assign(err, { queueFile: 'data' });
      throw err;
    });
    dataSynced.catch(() => undefined);
    try {
      await this.writeControlFile(item, true, {
        dataSynced,
        lock: opts.lock === true,
        body: opts.keepBody === true ? writer?.contents : undefined,
        syncLater: later,
      });
    } catch (err) {
      // A df failure wins, as when the df was synced first.
      const dataError = await dataSynced.then(() => undefined, (e: unknown) => e);
      await this.removeFiles(item.id, ['tf', 'qf', 'hf', 'df']).catch(() => undefined);
      await this.locks.unlock(item.id).catch(() => undefined);
      throw dataError ?? err;
    }
  }

  /**
   * Returns the body of an item committed by this process if it was kept in
   * memory for the immediate delivery. Otherwise it returns undefined, and the
   * caller reads the df.
   */
  takeBody(id: string): Buffer | undefined {
    return this.takenBodies.get(id) ?? this.journal?.entry(id)?.body;
  }

  /** Tells whether `id` is held in the commit journal only, without df and qf. */
  inJournal(id: string): boolean {
    return this.journal?.has(id) === true;
  }

  /**
   * Writes an item held in the journal out as df and qf (with `item` as its
   * control file), takes its lock file and marks the journal entry finished.
   * Callers that need the df (local delivery, a bounce) or leave the item
   * queued call it. For an item that is not in the journal it does nothing.
   */
  async materialize(item: QueueItem): Promise<void> {
    const writing = this.writingOut.get(item.id);
    if (writing !== undefined) await writing.catch(() => undefined);
    const entry = this.journal?.entry(item.id);
    if (entry === undefined) return;
    const run = this.writeOutEntry(item, entry);
    this.writingOut.set(item.id, run);
    try {
      await run;
    } finally {
      if (this.writingOut.get(item.id) === run) this.writingOut.delete(item.id);
    }
  }

  private logStranded(id: string, err: unknown): void {
    this.logger.child(id).error(`failed to write the item out of the commit journal (retried every 10 s and by queue runs): ${(err as Error).message}`);
  }

  /** Writes out items held in the journal longer than JOURNAL_LINGER_MS, in the background. */
  private writeOutLingering(): void {
    for (const id of this.journal!.openLongerThan(JOURNAL_LINGER_MS)) {
      if (this.writingOut.has(id) || this.stranded.has(id)) continue;
      const entry = this.journal!.entry(id)!;
      this.materialize(parseControlFile(entry.text, id)).catch((err: unknown) => {
        this.logStranded(id, err);
        // A delivery that ended meanwhile (unlock) has already recorded it as not held.
        if (!this.stranded.has(id)) this.stranded.set(id, true);
        this.strandedTried = Date.now();
      });
    }
  }

  private async writeOutEntry(item: QueueItem, entry: JournalEntry): Promise<void> {
    if (!(await this.locks.lock(item.id))) throw new Error(`cannot lock ${item.id} to write it out of the commit journal`);
    const text = serializeControlFile(item);
    try {
      // O_EXCL: an id still in the journal has no df, unless another item has the same id.
      await this.writeItemFiles(item.id, Buffer.from(text, 'utf8'), entry.body, true);
    } catch (err) {
      // A later try writes what this delivery has done (recipients sent are not sent again).
      entry.text = text;
      await this.locks.unlock(item.id).catch(() => undefined);
      throw err;
    }
    this.stranded.delete(item.id);
    this.journal!.finish(item.id);
  }

  /**
   * Writes df and qf of an item that has neither (materialize, journal
   * recovery): df, then tf, each fsynced, the folder fsynced, tf renamed to
   * qf, the folder fsynced again. The caller holds the item's lock.
   */
  private async writeItemFiles(id: string, control: Buffer, body: Buffer, exclusive: boolean): Promise<void> {
    const temp = path.join(this.dir, `tf${id}`);
    let dataCreated = false;
    const writeFile = async (file: string, bytes: Buffer, excl: boolean): Promise<void> => {
      const flags = fs.constants.O_WRONLY | fs.constants.O_CREAT | fs.constants.O_NOFOLLOW;
      const fd = await openFile(file, flags | (excl ? fs.constants.O_EXCL : fs.constants.O_TRUNC));
      if (file === this.dataPath(id)) dataCreated = true;
      try {
        let offset = 0;
        while (offset < bytes.length) offset += fs.writeSync(fd, bytes, offset, bytes.length - offset);
        if (this.safe) await this.syncFile(fd, file);
      } finally {
        fs.closeSync(fd);
      }
    };
    try {
      await writeFile(this.dataPath(id), body, exclusive);
      await writeFile(temp, control, false);
      if (this.safe) await this.dirSync.request();
      fs.renameSync(temp, this.controlPath(id, 'qf'));
    } catch (err) {
      await unlinkIfExists(temp).catch(() => undefined);
      // A df that was there before (EEXIST) belongs to another item.
      if (dataCreated) await unlinkIfExists(this.dataPath(id)).catch(() => undefined);
      throw err;
    }
    if (this.safe) await this.dirSync.request();
  }

  /**
   * Commits to the journal when the message qualifies: held for immediate
   * delivery with its body kept, small enough that the lazy writer created no
   * df, no quarantine, SuperSafe on. Returns false when it did not; a lazy
   * writer's df is then written out for the normal commit.
   */
  private async commitToJournal(item: QueueItem, writer: BufferedDataFile, opts: CommitOptions): Promise<boolean> {
    if (!writer.closed) await writer.close().catch(() => undefined);
    const qualifies =
      writer.unwritten &&
      opts.lock === true &&
      opts.keepBody === true &&
      opts.syncLater !== true &&
      (this.superSafe === 'true' || this.superSafe === 'postmilter') &&
      item.quarantine === undefined &&
      this.journal!.hasRoom(writer.contents!.length);
    if (!qualifies) {
      if (writer.unwritten) {
        // syncDataFile() reports a failure here as a data file error.
        await writer.writeOut().catch(() => undefined);
      }
      return false;
    }
    this.writers.delete(item.id);
    writer.release();
    this.forget(item.id);
    try {
      await this.journal!.append(item.id, serializeControlFile(item), writer.contents!);
    } catch (err) {
      if (err instanceof Error) Object.assign(err, { queueFile: 'data' });
      throw err;
    }
    return true;
  }

  /**
   * Writes out the open entries of journals whose process is gone, each as
   * df and qf under its lock, then removes the journal. Runs at start and
   * before each queue run, because a worker that died leaves its journal to
   * the primary's next run. One runs at a time per process.
   */
  recoverJournals(): Promise<JournalRecovery> {
    this.journalRecovery ??= this.recoverJournalFiles().finally(() => {
      this.journalRecovery = undefined;
    });
    return this.journalRecovery;
  }

  /** Retries the write-out of this process's stranded journal items, one retry at a time. */
  private retryStranded(): Promise<void> {
    this.strandedTried = Date.now();
    this.strandedRetry ??= this.retryStrandedItems().finally(() => {
      this.strandedRetry = undefined;
    });
    return this.strandedRetry;
  }

  private async retryStrandedItems(): Promise<void> {
    for (const [id, held] of [...this.stranded]) {
      const entry = this.journal?.entry(id);
      if (entry === undefined) {
        this.stranded.delete(id);
        continue;
      }
      if (!held) {
        await this.unlock(id);
        continue;
      }
      // Its delivery is running or waits for a slot, so the lock stays. Without
      // it, another process would deliver the item a second time.
      await this.materialize(parseControlFile(entry.text, id)).catch((err: unknown) => {
        this.logStranded(id, err);
      });
    }
  }

  private async recoverJournalFiles(): Promise<JournalRecovery> {
    // Items of this process that could not be written out when their delivery ended.
    await this.retryStranded();
    const result: JournalRecovery = { written: 0 };
    try {
      result.names = await fs.promises.readdir(this.dir);
    } catch (err) {
      if (errorCode(err) === 'ENOENT') return result;
      throw err;
    }
    for (const name of result.names) {
      if (!isJournalName(name)) continue;
      if (this.journal?.isOwn(name) === true) continue;
      if (!journalOwnerGone(name)) continue;
      // The rename claims the file, so of two processes recovering at once only
      // one gets it. The file is opened first and stays open until it is
      // removed, so other processes see that a live process has it (journalOwnerGone).
      let handle: fs.promises.FileHandle;
      try {
        handle = await openRegular(path.join(this.dir, name));
      } catch (err) {
        if (errorCode(err) === 'ENOENT') continue;
        throw err;
      }
      try {
        this.claims += 1;
        const claimed = path.join(this.dir, claimedJournalName(this.claimToken, this.claims));
        try {
          await fs.promises.rename(path.join(this.dir, name), claimed);
        } catch (err) {
          if (errorCode(err) === 'ENOENT') continue;
          throw err;
        }
        await this.recoverJournalFile(claimed, name, await handle.readFile(), result);
      } finally {
        await handle.close();
      }
    }
    return result;
  }

  /** Writes out the open entries of one claimed journal, counting them in `result`. */
  private async recoverJournalFile(file: string, name: string, data: Buffer, result: JournalRecovery): Promise<void> {
    const { open, damagedAt } = readJournal(data);
    if (damagedAt !== undefined && damagedAt < data.length) {
      this.logger.notice(`commit journal ${name}: ignored ${data.length - damagedAt} bytes after offset ${damagedAt}, a record cut short by a crash`);
    }
    let left = 0;
    let failure: unknown;
    // Entries that need no write-out any more, and those written out by this recovery.
    const done: string[] = [];
    const written: string[] = [];
    // Eight at a time: each write-out waits for four syncs, which share the disk's queue.
    let next = 0;
    const writeOutNext = async (): Promise<void> => {
      while (next < open.length) {
        const entry = open[next++];
        try {
          const outcome = await this.recoverEntry(entry, name);
          if (outcome === 'locked') left += 1;
          else done.push(entry.id);
          if (outcome === 'written') written.push(entry.id);
        } catch (err) {
          failure ??= err;
          left += 1;
        }
      }
    };
    await Promise.all(Array.from({ length: Math.min(8, open.length) }, writeOutNext));
    // An entry locked by a live process, or not written (a full disk), stays; the next recovery claims the file again.
    if (left === 0) await unlinkIfExists(file);
    else if (done.length > 0) await this.markJournalDone(file, name, damagedAt ?? data.length, done, written);
    result.written += written.length;
    if (failure !== undefined) throw failure;
  }

  /**
   * Marks the written-out entries of a journal that is kept finished, so the
   * next recovery does not write out again an item that was delivered since.
   * A damaged tail is cut off first, since reading stops there. When the
   * records cannot be written (a full disk), the write-outs of this recovery
   * (`written`) are undone: those items stay in the journal only, and the next
   * recovery writes them out once. Items written out earlier keep their qf.
   */
  private async markJournalDone(file: string, name: string, end: number, ids: string[], written: string[]): Promise<void> {
    const records = doneRecords(ids);
    let handle: fs.promises.FileHandle | undefined;
    try {
      handle = await fs.promises.open(file, 'r+');
      await handle.truncate(end);
      for (let offset = 0; offset < records.length; ) {
        const { bytesWritten } = await handle.write(records, offset, records.length - offset, end + offset);
        if (bytesWritten === 0) throw new Error('write returned 0 bytes');
        offset += bytesWritten;
      }
      return;
    } catch (err) {
      this.logger.error(`commit journal ${name}: failed to mark ${ids.length} entries finished (${(err as Error).message}); undoing ${written.length} write-outs`);
      // Records cut short would read as a damaged tail.
      await handle?.truncate(end).catch(() => undefined);
    } finally {
      await handle?.close();
    }
    for (const id of written) await this.undoWriteOut(id, name);
  }

  /** Removes the df and qf that a journal recovery wrote for `id`, unless a delivery has the item locked. */
  private async undoWriteOut(id: string, name: string): Promise<void> {
    if (!(await this.lock(id))) {
      // NOTE: the next recovery writes this item out again, so if this delivery succeeds it goes out twice.
      this.logger.child(id).error(`write-out from commit journal ${name} not undone: the item is locked`);
      return;
    }
    try {
      await unlinkIfExists(this.controlPath(id, 'qf'));
      await unlinkIfExists(this.dataPath(id));
      this.logger.child(id).notice(`write-out from commit journal ${name} undone, the journal keeps the item`);
    } finally {
      await this.unlock(id);
    }
  }

  /** Writes out one open entry of a left journal, unless it is written out already or a live process holds its lock. */
  private async recoverEntry(entry: RecoveredEntry, name: string): Promise<'written' | 'existed' | 'locked'> {
    const exists = await Promise.all((['qf', 'hf', 'Qf'] as const).map((kind) => fs.promises.lstat(this.controlPath(entry.id, kind)).then(() => true, () => false)));
    // Written out before the process went, but its entry was not marked.
    if (exists.includes(true)) return 'existed';
    if (!(await this.lock(entry.id))) return 'locked';
    try {
      // A df without a qf is left by a write-out that a crash cut short.
      await this.writeItemFiles(entry.id, entry.control, entry.body, false);
      this.logger.child(entry.id).notice(`written out from commit journal ${name}`);
    } finally {
      await this.unlock(entry.id);
    }
    return 'written';
  }

  /**
   * Makes an item committed with `syncLater` durable: fsyncs its df and its
   * control file (qf or hf) at the same time, then the directory. Resolves
   * at once if the item is gone (its delivery removed it).
   */
  async syncItem(id: string): Promise<void> {
    if (!this.safe) return;
    const syncPath = async (file: string): Promise<boolean> => {
      let fd: number;
      try {
        fd = await openFile(file, READ_NO_FOLLOW);
      } catch (err) {
        if (errorCode(err) === 'ENOENT') return false;
        throw err;
      }
      try {
        await this.syncFile(fd, file);
      } finally {
        fs.closeSync(fd);
      }
      return true;
    };
    const data = syncPath(this.dataPath(id)).catch((err: unknown) => {
      if (err instanceof Error) Object.assign(err, { queueFile: 'data' });
      throw err;
    });
    data.catch(() => undefined);
    const control = (await syncPath(this.controlPath(id, 'qf'))) || (await syncPath(this.controlPath(id, 'hf')));
    if (!(await data) && !control) return;
    await this.dirSync.request();
  }

  /** Reads the control file of `id` (qf, else hf); throws QueueFileError if damaged. */
  async read(id: string): Promise<QueueItem> {
    const journaled = this.journal?.entry(id);
    if (journaled !== undefined) {
      this.heldSinceCommit.add(id);
      this.takenBodies.set(id, journaled.body);
      return parseControlFile(journaled.text, id);
    }
    const fresh = this.freshControl.get(id);
    if (fresh !== undefined) {
      this.dropFresh(id, fresh);
      // Held since before the qf existed, so no other process can have rewritten it.
      if (fresh.lockedAtCommit && this.locks.holds(id)) {
        this.heldSinceCommit.add(id);
        if (fresh.body !== undefined) this.takenBodies.set(id, fresh.body);
        return parseControlFile(fresh.text, id);
      }
      const stat = await fs.promises.stat(this.controlPath(id, 'qf')).catch(() => undefined);
      if (stat !== undefined && stat.ino === fresh.ino && stat.size === fresh.size) {
        return parseControlFile(fresh.text, id);
      }
    }
    let bytes: Buffer;
    try {
      bytes = await readBytesNoFollow(this.controlPath(id, 'qf'));
    } catch (err) {
      if (errorCode(err) !== 'ENOENT') throw err;
      bytes = await readBytesNoFollow(this.controlPath(id, 'hf'));
    }
    return parseControlFile(decodeControlFile(bytes), id);
  }

  /**
   * Replaces the control file of a committed item atomically. It becomes hf<id>
   * when the item has a quarantine reason, else qf<id>, and the other is
   * removed. On failure the previous control file is left as it was.
   */
  async update(item: QueueItem): Promise<void> {
    // Written in Posthorn's format, sendmail's LF data file and sender would pass for converted ones.
    if (item.fromSendmail) throw new Error(`control file of ${item.id} was written by sendmail: convert it with adoptSendmailItem() first`);
    // Still queued after its first delivery: it leaves the journal for df and qf.
    const writing = this.writingOut.get(item.id);
    if (writing !== undefined) await writing.catch(() => undefined);
    if (this.inJournal(item.id)) return this.materialize(item);
    try {
      await this.writeControlFile(item, false);
    } catch (err) {
      await unlinkIfExists(path.join(this.dir, `tf${item.id}`)).catch(() => undefined);
      throw err;
    }
  }

  /**
   * Puts `file` (in the queue folder, already fsynced) in place of the data
   * file of `id`, and makes the rename durable before it returns.
   */
  async replaceDataFile(id: string, file: string): Promise<void> {
    await fs.promises.rename(file, this.dataPath(id));
    if (this.safe) await this.dirSync.request();
  }

  /** Removes a finished item: the control file first, so a crash leaves no qf without df. */
  async remove(id: string): Promise<void> {
    // The unlinks go through the thread pool because no reply waits for them
    // and one can wait for the disk. Order: control files, df, lock.
    // An item held since its commit has only a qf, because writing an hf or
    // rewriting the qf (which can leave a tf) goes through writeControlFile(),
    // and that forgets the item.
    const writing = this.writingOut.get(id);
    if (writing !== undefined) await writing.catch(() => undefined);
    const clean = this.heldSinceCommit.has(id);
    this.forget(id);
    if (this.inJournal(id)) {
      this.journal!.finish(id);
      return;
    }
    const names = clean ? ['qf'] : ['qf', 'hf', 'tf'];
    await Promise.all(names.map((kind) => unlinkIfExists(path.join(this.dir, kind + id))));
    await unlinkIfExists(this.dataPath(id));
    await this.locks.unlock(id);
  }

  /** Discards a transaction that failed before commit(). */
  async abort(id: string): Promise<void> {
    const writer = this.writers.get(id);
    this.writers.delete(id);
    if (writer !== undefined && !writer.closed) await writer.close().catch(() => undefined);
    writer?.release();
    await this.removeFiles(id, ['tf', 'df']);
  }

  /**
   * Ids of the control files of one kind, in directory order. `names` is a
   * read of the folder made just before, to use instead of reading it again.
   */
  async list(kind: ControlFileKind = 'qf', names?: string[]): Promise<string[]> {
    const ids: string[] = [];
    for (const name of names ?? (await fs.promises.readdir(this.dir))) {
      if (name.startsWith(kind) && isQueueId(name.slice(2))) ids.push(name.slice(2));
    }
    return ids;
  }

  /** Takes the lock on `id`; false if this or another live process holds it. */
  lock(id: string): Promise<boolean> {
    return this.locks.lock(id);
  }

  async unlock(id: string): Promise<void> {
    const writing = this.writingOut.get(id);
    if (writing !== undefined) await writing.catch(() => undefined);
    const journaled = this.journal?.entry(id);
    if (journaled !== undefined) {
      // Left queued without a delivery (shutdown, QueueLA): other processes must see it.
      try {
        await this.materialize(parseControlFile(journaled.text, id));
      } catch (err) {
        this.logStranded(id, err);
        this.stranded.set(id, false);
        this.strandedTried = Date.now();
        return;
      }
    }
    // Another process may change the item once it is unlocked.
    this.forget(id);
    return this.locks.unlock(id);
  }

  /** Tests whether this store holds the lock on `id` (taken by lock() or commit(), or in the journal). */
  holdsLock(id: string): boolean {
    return this.locks.holds(id) || this.inJournal(id);
  }

  /** Tests whether any live process has the lock on `id` (mailq's "*"). */
  isLocked(id: string): Promise<boolean> {
    return this.locks.isLocked(id);
  }

  private get safe(): boolean {
    return this.superSafe !== 'false';
  }

  private async syncFile(fd: number, file: string): Promise<void> {
    await this.sync(fd, file);
    this.fileSyncs += 1;
  }

  /**
   * Finishes the df writer if needed and fsyncs the df through the descriptor
   * it kept open. A df written by another process (none in this store) is
   * opened for the fsync.
   */
  private async syncDataFile(id: string, later = false): Promise<void> {
    const writer = this.writers.get(id);
    this.writers.delete(id);
    if (writer === undefined) {
      if (!this.safe || later) return;
      const fd = fs.openSync(this.dataPath(id), READ_NO_FOLLOW);
      try {
        await this.syncFile(fd, this.dataPath(id));
      } finally {
        fs.closeSync(fd);
      }
      return;
    }
    try {
      if (!writer.closed) await writer.close();
      if (writer.failure !== undefined) throw writer.failure;
      if (this.safe && !later) await this.syncFile(writer.fd, this.dataPath(id));
    } finally {
      writer.release();
    }
  }

  /** Drops what commit() kept of `id`. */
  private forget(id: string): void {
    this.heldSinceCommit.delete(id);
    const fresh = this.freshControl.get(id);
    if (fresh !== undefined) this.dropFresh(id, fresh);
    this.takenBodies.delete(id);
  }

  private dropFresh(id: string, fresh: FreshControl): void {
    this.freshControl.delete(id);
    if (fresh.body !== undefined) this.freshBodyBytes -= fresh.body.length;
  }

  /**
   * Writes tf<id>, fsyncs it and renames it to qf<id> or hf<id>. The write,
   * rename and close are synchronous (short page-cache calls); the create
   * and the fsyncs run on the thread pool. `fresh` is given for a new item: the rename waits
   * for its df fsync, and the lock may be taken just before it.
   */
  private async writeControlFile(
    item: QueueItem,
    isNew: boolean,
    fresh?: { dataSynced: Promise<void>; lock: boolean; body: Buffer | undefined; syncLater: boolean },
  ): Promise<void> {
    const safe = this.safe && fresh?.syncLater !== true;
    const text = serializeControlFile(item);
    const temp = path.join(this.dir, `tf${item.id}`);
    const kind = item.quarantine !== undefined ? 'hf' : 'qf';
    this.forget(item.id);
    const remember = isNew && kind === 'qf';
    // The item is not visible yet, so its lock can be taken now. Held from
    // here on, the qf needs no stat() when it is read back.
    const locked = fresh?.lock === true && (await this.locks.lock(item.id));
    let written = { ino: 0, size: 0 };

    const fd = await openFile(temp, 'w');
    try {
      const bytes = Buffer.from(text, 'utf8');
      let offset = 0;
      while (offset < bytes.length) offset += fs.writeSync(fd, bytes, offset, bytes.length - offset);
      if (remember && !locked) written = fs.fstatSync(fd);
      if (safe) await this.syncFile(fd, temp);
    } finally {
      fs.closeSync(fd);
    }

    // For a new item the df (content and entry) must be durable before the qf appears.
    if (fresh !== undefined) await fresh.dataSynced;
    if (safe && isNew) await this.dirSync.request();
    fs.renameSync(temp, this.controlPath(item.id, kind));
    if (!isNew) unlinkSyncIfExists(this.controlPath(item.id, kind === 'qf' ? 'hf' : 'qf'));
    if (safe) await this.dirSync.request();
    if (remember) {
      // Bounded: items that are only queued (QueueLA, DeliveryMode=queue) are never read back here.
      if (this.freshControl.size >= 1024) {
        const oldest = this.freshControl.keys().next().value!;
        this.dropFresh(oldest, this.freshControl.get(oldest)!);
      }
      let body = fresh?.body;
      if (body !== undefined && this.freshBodyBytes + body.length > FRESH_BODY_BYTES) body = undefined;
      if (body !== undefined) this.freshBodyBytes += body.length;
      this.freshControl.set(item.id, { text, ino: written.ino, size: written.size, body, lockedAtCommit: locked });
    }
  }

  private async removeFiles(id: string, kinds: string[]): Promise<void> {
    for (const kind of kinds) await unlinkIfExists(path.join(this.dir, kind + id));
  }
}

/** open() with mode 0600 through the thread pool; the callback API costs less than fs.promises. */
function openFile(file: string, flags: string | number): Promise<number> {
  return new Promise((resolve, reject) => {
    fs.open(file, flags, 0o600, (err, fd) => (err ? reject(err) : resolve(fd)));
  });
}
