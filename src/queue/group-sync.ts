// Group commit for the queue directory: every caller that needs its renames
// on stable storage waits for one directory fsync that started after its
// rename. Callers that arrive while an fsync is running share the next one.

import * as fs from 'node:fs';

/** Flushes one open file or directory (by descriptor) to stable storage. */
export type SyncFunction = (fd: number, path: string) => Promise<void>;

/** fsync() on libuv's thread pool; the only queue call that waits for the disk. */
export const defaultSync: SyncFunction = (fd) =>
  new Promise((resolve, reject) => {
    fs.fsync(fd, (err) => (err ? reject(err) : resolve()));
  });

interface Waiter {
  resolve(): void;
  reject(err: unknown): void;
}

export class DirectorySync {
  /** Directory fsyncs done so far; one per batch of callers. */
  syncs = 0;
  private waiting: Waiter[] = [];
  private running = false;

  constructor(
    private readonly dir: string,
    private readonly sync: SyncFunction,
  ) {}

  /** Resolves once a directory fsync that began after this call has finished. */
  request(): Promise<void> {
    return new Promise((resolve, reject) => {
      this.waiting.push({ resolve, reject });
      if (this.running) return;

      this.running = true;
      // Wait for the I/O callbacks already completed in this turn of the event
      // loop, so that renames finishing together share the first fsync too.
      setImmediate(() => void this.drain());
    });
  }

  private async drain(): Promise<void> {
    while (this.waiting.length > 0) {
      const batch = this.waiting;
      this.waiting = [];
      try {
        await this.syncOnce();
        for (const waiter of batch) waiter.resolve();
      } catch (err) {
        for (const waiter of batch) waiter.reject(err);
      }
    }
    this.running = false;
  }

  private async syncOnce(): Promise<void> {
    const fd = fs.openSync(this.dir, 'r');
    try {
      await this.sync(fd, this.dir);
      this.syncs += 1;
    } finally {
      fs.closeSync(fd);
    }
  }
}
