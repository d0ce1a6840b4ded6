// The writer for a data file (df<id>): copies small chunks into a 64 KiB buffer,
// writes whole buffers at explicit offsets, and runs one operation at a time so
// the bytes land in the order they were given. The file stays open after
// close() so that the commit can fsync it without opening it again; the store
// closes it (release()).

import * as fs from 'node:fs';

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
  /** Writes what is buffered; the commit fsyncs the file as SuperSafe requires. */
  close(): Promise<void>;
}

export interface DataFileOptions {
  path: string;
  /** Called once after a failed write, e.g. to unlink the file. */
  onError(err: unknown): Promise<void>;
}

export class BufferedDataFile implements DataFileWriter {
  size = 0;
  /** True once close() ran (or a write failed); the fd may still be open. */
  closed = false;
  /** The error of a failed write; later calls fail with it. */
  failure: unknown;
  /**
   * The whole file when it fitted in the buffer and was written by close() in
   * one piece: a copy the immediate delivery can send without reading the df.
   */
  contents: Buffer | undefined;
  private buffer: Buffer | undefined = Buffer.allocUnsafe(BUFFER_SIZE);
  private buffered = 0;
  private position = 0;
  private tail: Promise<void> = Promise.resolve();
  private closing: Promise<void> | undefined;
  private open = true;

  constructor(
    readonly fd: number,
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
    this.closing ??= this.enqueue(async () => this.finish());
    return this.closing;
  }

  /** Closes the file descriptor (once); the store calls it after the fsync. */
  release(): void {
    if (!this.open) return;
    this.open = false;
    try {
      fs.closeSync(this.fd);
    } catch {
      // Nothing is left to flush: the data was written (and fsynced) before.
    }
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
    const buffer = this.buffer!;
    if (this.buffered + chunk.length > BUFFER_SIZE) await this.flush();

    if (chunk.length >= BUFFER_SIZE) {
      await this.writeAll(chunk);
      return;
    }
    chunk.copy(buffer, this.buffered);
    this.buffered += chunk.length;
  }

  private async flush(): Promise<void> {
    if (this.buffered === 0) return;
    await this.writeAll(this.buffer!.subarray(0, this.buffered));
    this.buffered = 0;
  }

  private async writeAll(data: Buffer): Promise<void> {
    let offset = 0;
    while (offset < data.length) {
      const written = await writeAt(this.fd, data, offset, data.length - offset, this.position);
      offset += written;
      this.position += written;
    }
  }

  /**
   * Writes the rest of the buffer. A small message is written here in one
   * synchronous call: it goes to the page cache, and a round trip through the
   * thread pool would cost more than the write itself.
   */
  private finish(): void {
    if (this.buffered > 0) {
      const data = this.buffer!.subarray(0, this.buffered);
      if (this.position === 0) this.contents = Buffer.from(data);
      let offset = 0;
      while (offset < data.length) {
        const written = fs.writeSync(this.fd, data, offset, data.length - offset, this.position);
        offset += written;
        this.position += written;
      }
      this.buffered = 0;
    } else if (this.position === 0) {
      this.contents = Buffer.alloc(0);
    }
    this.buffer = undefined;
    this.closed = true;
  }

  private async fail(err: unknown): Promise<void> {
    if (this.failure !== undefined) return;
    this.failure = err;
    this.closed = true;
    this.contents = undefined;
    this.buffer = undefined;
    this.release();
    await this.opts.onError(err);
  }
}

function writeAt(fd: number, data: Buffer, offset: number, length: number, position: number): Promise<number> {
  return new Promise((resolve, reject) => {
    fs.write(fd, data, offset, length, position, (err, written) => (err ? reject(err) : resolve(written)));
  });
}
