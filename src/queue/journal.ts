// The commit journal (CommitJournal=true, the daemon only). A small message
// accepted for immediate delivery is made durable by appending its control
// file and body to one journal file and waiting for an fdatasync() shared by
// every commit that arrived meanwhile. Writing df and qf instead costs two
// creates, two fsyncs, a folder fsync, a rename, a lock and three unlinks per
// message (docs/benchmarks.md, "Commit journal").
//
// An entry lives only while its first delivery runs. When the delivery is
// done, a D record marks the entry finished (no fsync: after a power loss the
// message may go out twice, as after a lost unlink of a qf). When anything is
// left to do (a deferred recipient, a bounce, a local delivery) the store
// writes the item out as df and qf first, then marks it finished. Recovery
// writes out the open entries of journals whose process has gone.
//
// File ".jr.<pid>.<token>.<n>" in the queue folder, where token is the time
// the journal was opened (ms). The owner keeps the file open, so a later
// process with the same pid, which does not have it open, is recognized. Records:
//
//   P <id> <control bytes> <body bytes> <crc32 hex>\n<control><body>
//   D <id>\n
//
// A record cut short by a crash ends the file: every record before it is
// whole, and the cut one was never acknowledged.

import * as fs from 'node:fs';
import * as path from 'node:path';
import * as zlib from 'node:zlib';
import type { SyncFunction } from './group-sync';
import { isProcessAlive } from './lock';

/** A journal file grows to about this size before the next one is started. */
const SEGMENT_BYTES = 4 * 1024 * 1024;
/** Entries and body bytes held at once; beyond that commits write df and qf. */
const MAX_ENTRIES = 4096;
const MAX_BODY_BYTES = 32 * 1024 * 1024;

const NAME = /^\.jr\.(\d+)\.(\d+)\.(r?)(\d+)$/;
const WRITE_NEW = fs.constants.O_WRONLY | fs.constants.O_CREAT | fs.constants.O_EXCL | fs.constants.O_NOFOLLOW;

interface Segment {
  file: string;
  fd: number;
  size: number;
  /** Entries not yet marked finished. */
  open: number;
  /** Written since its last fdatasync, or one is running. */
  syncing: boolean;
  /** A failed write could not be cut off: nothing more is appended. */
  broken: boolean;
  /** Its inode: the name still leads to it unless another process claimed the file. */
  ino: number;
}

export interface JournalEntry {
  text: string;
  body: Buffer;
  segment: Segment;
  /** When it was appended (ms since the epoch). */
  appended: number;
}

interface Waiter {
  segment: Segment;
  resolve(): void;
  reject(err: unknown): void;
}

export class CommitJournal {
  /** fdatasync() calls so far; one per batch of commits. */
  syncs = 0;
  private readonly token = Date.now();
  private counter = 0;
  private current: Segment | undefined;
  private opening: Promise<Segment> | undefined;
  private readonly entries = new Map<string, JournalEntry>();
  private bodyBytes = 0;
  private readonly dirty = new Set<Segment>();
  private waiting: Waiter[] = [];
  private running = false;
  private readonly segments = new Set<Segment>();

  constructor(
    readonly dir: string,
    private readonly sync: SyncFunction,
    /** Makes a new journal file's folder entry durable. */
    private readonly syncDir: () => Promise<void>,
    private readonly onError: (message: string) => void,
  ) {
    process.once('exit', () => this.removeFinished());
  }

  /** Tests whether an entry of `bytes` fits in the memory the journal may hold. */
  hasRoom(bytes: number): boolean {
    return this.entries.size < MAX_ENTRIES && this.bodyBytes + bytes <= MAX_BODY_BYTES;
  }

  has(id: string): boolean {
    return this.entries.has(id);
  }

  entry(id: string): JournalEntry | undefined {
    return this.entries.get(id);
  }

  /** Lists the ids of open entries appended more than `ms` ago, oldest first. */
  openLongerThan(ms: number): string[] {
    const cutoff = Date.now() - ms;
    const ids: string[] = [];
    // A Map iterates in insertion order, which is the order of appending.
    for (const [id, entry] of this.entries) {
      if (entry.appended > cutoff) break;
      ids.push(id);
    }
    return ids;
  }

  /**
   * Tells whether `name` in the queue folder is a journal file this process
   * appends to. A file its recovery took over (".r<n>") is not one of them.
   */
  isOwn(name: string): boolean {
    const m = NAME.exec(name);
    return m !== null && m[3] === '' && Number(m[1]) === process.pid && Number(m[2]) === this.token;
  }

  /**
   * Appends an entry and resolves once it is on stable storage. On failure
   * the entry counts as finished and the error keeps its errno code.
   */
  async append(id: string, text: string, body: Buffer): Promise<void> {
    const segment = await this.segment();
    const control = Buffer.from(text, 'utf8');
    const crc = zlib.crc32(body, zlib.crc32(control)).toString(16);
    const head = Buffer.from(`P ${id} ${control.length} ${body.length} ${crc}\n`, 'latin1');
    // One buffer, one pwrite(): copying a small message costs less than two more system calls.
    this.write(segment, [Buffer.concat([head, control, body])]);
    segment.open += 1;
    this.entries.set(id, { text, body, segment, appended: Date.now() });
    this.bodyBytes += body.length;
    if (segment.size >= SEGMENT_BYTES && this.current === segment) this.current = undefined;
    try {
      await this.flush(segment);
    } catch (err) {
      this.finish(id);
      throw err;
    }
  }

  /**
   * Marks an entry finished: delivered, or written out as df and qf. A
   * journal file that is no longer appended to goes when its last entry does.
   */
  finish(id: string): void {
    const entry = this.entries.get(id);
    if (entry === undefined) return;
    this.entries.delete(id);
    this.bodyBytes -= entry.body.length;
    const segment = entry.segment;
    segment.open -= 1;
    if (!segment.broken) {
      try {
        this.write(segment, [doneRecords([id])]);
      } catch (err) {
        // Recovery will write the item out again: a second delivery, not a lost one.
        this.onError(`${id}: cannot mark the commit journal entry finished: ${(err as Error).message}`);
      }
    }
    this.retire(segment);
  }

  /** Returns the journal file to append to, creating a new one (and syncing its folder entry) when needed. */
  private segment(): Promise<Segment> | Segment {
    if (this.current !== undefined) return this.current;
    this.opening ??= this.create().finally(() => {
      this.opening = undefined;
    });
    return this.opening;
  }

  private async create(): Promise<Segment> {
    this.counter += 1;
    const file = path.join(this.dir, `.jr.${process.pid}.${this.token}.${this.counter}`);
    const fd = await new Promise<number>((resolve, reject) => {
      fs.open(file, WRITE_NEW, 0o600, (err, opened) => (err ? reject(err) : resolve(opened)));
    });
    const segment: Segment = { file, fd, size: 0, open: 0, syncing: false, broken: false, ino: fs.fstatSync(fd).ino };
    this.segments.add(segment);
    try {
      await this.syncDir();
    } catch (err) {
      this.drop(segment);
      throw err;
    }
    const previous = this.current;
    this.current = segment;
    if (previous !== undefined) this.retire(previous);
    return segment;
  }

  /** Writes whole records at the end of `segment`; a failed write is cut off again. */
  private write(segment: Segment, parts: Buffer[]): void {
    const start = segment.size;
    let position = start;
    try {
      for (const part of parts) {
        let offset = 0;
        while (offset < part.length) {
          const n = fs.writeSync(segment.fd, part, offset, part.length - offset, position);
          offset += n;
          position += n;
        }
      }
    } catch (err) {
      try {
        fs.ftruncateSync(segment.fd, start);
      } catch {
        segment.broken = true;
        if (this.current === segment) this.current = undefined;
      }
      throw err;
    }
    segment.size = position;
  }

  /** Resolves once an fdatasync() of `segment` that began after this call has finished. */
  private flush(segment: Segment): Promise<void> {
    return new Promise((resolve, reject) => {
      this.dirty.add(segment);
      segment.syncing = true;
      this.waiting.push({ segment, resolve, reject });
      if (this.running) return;
      this.running = true;
      // Commits whose writes finish in this turn of the event loop share the first sync.
      setImmediate(() => void this.drain());
    });
  }

  private async drain(): Promise<void> {
    while (this.waiting.length > 0) {
      const batch = this.waiting;
      const segments = [...this.dirty];
      this.waiting = [];
      this.dirty.clear();
      try {
        await Promise.all(segments.map((s) => this.sync(s.fd, s.file)));
        this.syncs += 1;
        // A file renamed away was claimed by another process's recovery, which
        // may have read it before these records, so their commits fail.
        const lost = new Set(segments.filter((s) => !this.stillNamed(s)));
        for (const waiter of batch) {
          if (lost.has(waiter.segment)) waiter.reject(Object.assign(new Error(`commit journal ${waiter.segment.file} was taken over by another process`), { code: 'EIO' }));
          else waiter.resolve();
        }
      } catch (err) {
        for (const waiter of batch) waiter.reject(err);
        // After a failed fdatasync the kernel may report later ones as clean for
        // pages it dropped, so new records go to a new file.
        for (const failed of segments) if (this.current === failed) this.current = undefined;
      }
      for (const s of segments) {
        if (this.dirty.has(s)) continue;
        s.syncing = false;
        this.retire(s);
      }
    }
    this.running = false;
  }

  /**
   * Tells whether the journal file's name still leads to `segment`. When it
   * does not, nothing more is appended to it (a new file is started).
   */
  private stillNamed(segment: Segment): boolean {
    let ino: number | undefined;
    try {
      ino = fs.statSync(segment.file).ino;
    } catch {
      ino = undefined;
    }
    if (ino === segment.ino) return true;
    this.onError(`commit journal ${segment.file} was renamed or removed by another process; a new one is started`);
    segment.broken = true;
    if (this.current === segment) this.current = undefined;
    return false;
  }

  /** Removes a journal file that is not appended to and contains no open entry. */
  private retire(segment: Segment): void {
    if (segment === this.current || segment.open > 0 || segment.syncing) return;
    this.drop(segment);
    fs.unlink(segment.file, (err) => {
      if (err && err.code !== 'ENOENT') this.onError(`cannot remove commit journal ${segment.file}: ${err.message}`);
    });
  }

  private drop(segment: Segment): void {
    if (!this.segments.delete(segment)) return;
    try {
      fs.closeSync(segment.fd);
    } catch {
      // Its records were synced or are not needed.
    }
  }

  /** At exit: journal files without open entries are not needed by the next start. */
  private removeFinished(): void {
    for (const segment of this.segments) {
      if (segment.open > 0) continue;
      try {
        fs.unlinkSync(segment.file);
      } catch {
        // Recovery removes it.
      }
    }
  }
}

/** Returns the records that mark the entries of `ids` finished. */
export function doneRecords(ids: string[]): Buffer {
  return Buffer.from(ids.map((id) => `D ${id}\n`).join(''), 'latin1');
}

/** An entry read back from a journal file by recovery. */
export interface RecoveredEntry {
  id: string;
  control: Buffer;
  body: Buffer;
}

/**
 * Reads the entries of a journal file that were not marked finished. Reading
 * stops at the first record that is cut short or damaged (`damagedAt` then
 * gives its offset).
 */
export function readJournal(data: Buffer): { open: RecoveredEntry[]; damagedAt?: number } {
  const open = new Map<string, RecoveredEntry>();
  let at = 0;
  let damagedAt: number | undefined;
  while (at < data.length) {
    const eol = data.indexOf(10, at);
    if (eol < 0 || eol - at > 200) {
      damagedAt = at;
      break;
    }
    const line = data.toString('latin1', at, eol);
    const done = /^D (\S+)$/.exec(line);
    if (done !== null) {
      open.delete(done[1]);
      at = eol + 1;
      continue;
    }
    const put = /^P (\S+) (\d+) (\d+) ([0-9a-f]+)$/.exec(line);
    const controlEnd = put === null ? 0 : eol + 1 + Number(put[2]);
    const bodyEnd = put === null ? 0 : controlEnd + Number(put[3]);
    if (put === null || bodyEnd > data.length) {
      damagedAt = at;
      break;
    }
    const control = data.subarray(eol + 1, controlEnd);
    const body = data.subarray(controlEnd, bodyEnd);
    if (zlib.crc32(body, zlib.crc32(control)).toString(16) !== put[4]) {
      damagedAt = at;
      break;
    }
    open.set(put[1], { id: put[1], control, body });
    at = bodyEnd;
  }
  return { open: [...open.values()], damagedAt };
}

/**
 * Tells whether a journal file name belongs to a process that is gone: the
 * pid is not running, or the process with that pid does not have the file
 * open (the pid was reused).
 */
export function journalOwnerGone(name: string): boolean {
  const m = NAME.exec(name);
  if (m === null) return false;
  const pid = Number(m[1]);
  if (!isProcessAlive(pid)) return true;
  // The owner keeps its journal files open, and so does a recovery with the
  // file it claimed. Unlike the start time, this test does not depend on the clock.
  const open = holdsOpen(pid, name);
  if (open !== undefined) return !open;
  // NOTE: when /proc/<pid>/fd is not readable (another user), the start time
  // decides, and a clock stepped forward after the owner started makes a live owner look gone.
  const started = processStartMs(pid);
  return started !== undefined && started > Number(m[2]) + 1000;
}

export function isJournalName(name: string): boolean {
  return NAME.test(name);
}

/**
 * Returns the name under which this process's recovery takes over a journal
 * file: number `n` of the recovery started at `token` (ms since the epoch).
 */
export function claimedJournalName(token: number, n: number): string {
  return `.jr.${process.pid}.${token}.r${n}`;
}

/**
 * Tells whether process `pid` has the journal file `name` open, from the
 * links in /proc/<pid>/fd; undefined when they cannot be read.
 */
function holdsOpen(pid: number, name: string): boolean | undefined {
  let fds: string[];
  try {
    fds = fs.readdirSync(`/proc/${pid}/fd`);
  } catch {
    return undefined;
  }
  for (const fd of fds) {
    let target: string;
    try {
      target = fs.readlinkSync(`/proc/${pid}/fd/${fd}`);
    } catch {
      continue;
    }
    if (target.endsWith(`/${name}`)) return true;
  }
  return false;
}

/** When `pid` started (ms since the epoch), from /proc; undefined when unknown. */
function processStartMs(pid: number): number | undefined {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'latin1');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const ticks = Number(fields[19]);
    const boot = /^btime (\d+)$/m.exec(fs.readFileSync('/proc/stat', 'latin1'));
    if (!Number.isFinite(ticks) || boot === null) return undefined;
    // starttime counts USER_HZ ticks, 100 a second on x86 and ARM Linux (getconf CLK_TCK).
    return Number(boot[1]) * 1000 + ticks * 10;
  } catch {
    return undefined;
  }
}
