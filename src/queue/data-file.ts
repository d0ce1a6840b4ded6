// The writer for a data file (df<id>): copies small chunks into a 64 KiB buffer,
// writes whole buffers at explicit offsets, and runs one operation at a time so
// the bytes land in the order they were given.

import * as fs from 'node:fs';
import { SyncFunction } from './group-sync';

const BUFFER_SIZE = 64 * 1024;

export interface DataFileWriter {
  /**
   * Appends `chunk`. The promise settles when the chunk is buffered or written,
   * and waits for earlier writes, so awaiting it applies backpressure. The
   * caller must not change `chunk` before the promise settles.
   */
  write(chunk: Buffer): Promise<void>;
  /** Bytes accepted by write() so far. */
  readonly size: number;
  /** Writes what is buffered, fsyncs as SuperSafe requires, and closes the file. */
  close(): Promise<void>;
}

export interface DataFileOptions {
  path: string;
  /** Fsync in close(); false for SuperSafe=False and PostMilter. */
  syncOnClose: boolean;
  sync: SyncFunction;
  /** Called once after a failed write, fsync or close, e.g. to unlink the file. */
  onError(err: unknown): Promise<void>;
}

export class BufferedDataFile implements DataFileWriter {
  size = 0;
  closed = false;
  /** Whether close() fsynced the file. */
  synced = false;
  private readonly buffer = Buffer.allocUnsafe(BUFFER_SIZE);
  private buffered = 0;
  private position = 0;
  private tail: Promise<void> = Promise.resolve();
  /** The error of a failed write, fsync or close; later calls fail with it. */
  failure: unknown;
  private closing: Promise<void> | undefined;

  constructor(
    private readonly handle: fs.promises.FileHandle,
    private readonly opts: DataFileOptions,
  ) {}

  write(chunk: Buffer): Promise<void> {
    if (this.closing !== undefined) {
      return Promise.reject(new Error(`data file ${this.opts.path} is already closed`));
    }
    this.size += chunk.length;
    return this.enqueue(() => this.append(chunk));
  }

  close(): Promise<void> {
    this.closing ??= this.enqueue(() => this.finish());
    return this.closing;
  }

  /** Runs `step` after every earlier step; a failure fails all later ones. */
  private enqueue(step: () => Promise<void>): Promise<void> {
    const run = this.tail.then(async () => {
      if (this.failure !== undefined) throw this.failure;
      try {
        await step();
      } catch (err) {
        await this.fail(err);
        throw err;
      }
    });
    this.tail = run.catch(() => undefined);
    return run;
  }

  private async append(chunk: Buffer): Promise<void> {
    if (this.buffered + chunk.length > BUFFER_SIZE) await this.flush();

    if (chunk.length >= BUFFER_SIZE) {
      await this.writeAll(chunk);
      return;
    }
    chunk.copy(this.buffer, this.buffered);
    this.buffered += chunk.length;
  }

  private async flush(): Promise<void> {
    if (this.buffered === 0) return;
    await this.writeAll(this.buffer.subarray(0, this.buffered));
    this.buffered = 0;
  }

  private async writeAll(data: Buffer): Promise<void> {
    let offset = 0;
    while (offset < data.length) {
      const { bytesWritten } = await this.handle.write(
        data,
        offset,
        data.length - offset,
        this.position,
      );
      offset += bytesWritten;
      this.position += bytesWritten;
    }
  }

  private async finish(): Promise<void> {
    await this.flush();
    if (this.opts.syncOnClose) {
      await this.opts.sync(this.handle, this.opts.path);
      this.synced = true;
    }
    this.closed = true;
    await this.handle.close();
  }

  private async fail(err: unknown): Promise<void> {
    if (this.failure !== undefined) return;
    this.failure = err;
    this.closed = true;
    await this.handle.close().catch(() => undefined);
    await this.opts.onError(err);
  }
}
