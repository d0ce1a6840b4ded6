// The writer for a data file (df<id>). It copies chunks into a 64 KiB buffer,
// so a small message is written once, at close(). A larger one goes to disk in
// batches of 256 KiB (1 MiB past the first MiB) written behind the caller:
// one batch is written while the next fills, so the socket is read while the
// disk writes and a session keeps at most two batches. Operations run one at a time, so the bytes land in the
// order they were given. The file stays open after close() so that the commit
// can fsync it without opening it again; the store closes it (release()).
// A lazy writer (the commit journal's) creates the file only when the first
// batch goes to disk or the store requests it (writeOut()): a small message
// committed to the journal never has a df.

import * as fs from 'node:fs';
import { BufferPool } from './buffer-pool';

const FIRST_BUFFER_SIZE = 64 * 1024;
const BATCH_SIZE = 256 * 1024;
/**
 * Batches once BIG_BATCH_FROM bytes are on their way to disk: a message that
 * long is likely large, and fewer, larger writes cost the main thread less
 * (10 MiB messages: about 13 % faster than with 256 KiB, benchmarks.md).
 */
const BIG_BATCH_SIZE = 1024 * 1024;
const BIG_BATCH_FROM = 1024 * 1024;

/** Batches not in use, kept for the next large message (at most four of each size). */
const spareBatches = new BufferPool([BATCH_SIZE, BIG_BATCH_SIZE], 4);

export interface DataFileWriter {
  /**
   * Appends `chunk`. The promise settles when the chunk is copied into the
   * buffer. When that fills a buffer, it also waits until the previous full
   * buffer is written, so awaiting it applies backpressure.
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
  /** Creates the file when the writer was made without a descriptor (lazy). */
  create?: () => Promise<number>;
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
  private buffer: Buffer | undefined = Buffer.allocUnsafe(FIRST_BUFFER_SIZE);
  private buffered = 0;
  /** File offset of the next buffer to be written. */
  private position = 0;
  /** The write of the previous full buffer; at most one runs at a time. */
  private inFlight: Promise<void> | undefined;
  private tail: Promise<void> = Promise.resolve();
  private closing: Promise<void> | undefined;
  private open = true;
  private descriptor: number | undefined;
  private creating: Promise<number> | undefined;

  constructor(fd: number | undefined, private readonly opts: DataFileOptions) {
    this.descriptor = fd;
  }

  /** The open file; only after close() or a written batch for a lazy writer. */
  get fd(): number {
    if (this.descriptor === undefined) throw new Error(`data file ${this.opts.path} was not created`);
    return this.descriptor;
  }

  /** True when close() kept the whole message in `contents` and created no file (lazy writer). */
  get unwritten(): boolean {
    return this.closed && this.failure === undefined && this.descriptor === undefined && this.contents !== undefined;
  }

  /** Creates the file of a lazy writer and writes the contents close() kept. */
  writeOut(): Promise<void> {
    return this.enqueue(async () => {
      if (this.descriptor !== undefined || this.contents === undefined) return;
      const fd = await this.ensureCreated();
      const data = this.contents;
      let offset = 0;
      while (offset < data.length) offset += fs.writeSync(fd, data, offset, data.length - offset, offset);
    });
  }

  private ensureCreated(): Promise<number> {
    if (this.descriptor !== undefined) return Promise.resolve(this.descriptor);
    this.creating ??= this.opts.create!().then((fd) => {
      this.descriptor = fd;
      return fd;
    });
    return this.creating;
  }

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

  /** Closes the file descriptor (once); the store calls it after the fsync. */
  release(): void {
    if (!this.open) return;
    this.open = false;
    if (this.descriptor === undefined) return;
    try {
      fs.closeSync(this.descriptor);
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
    let from = 0;
    while (from < chunk.length) {
      if (this.buffered === this.buffer!.length) await this.submit();
      const copied = chunk.copy(this.buffer!, this.buffered, from);
      this.buffered += copied;
      from += copied;
    }
  }

  /** Starts writing the full buffer, after the one before it, and goes on with a new batch. */
  private async submit(): Promise<void> {
    await this.settle();
    const full = this.buffer!;
    const length = this.buffered;
    const position = this.position;
    this.buffer = spareBatches.take(this.position + length >= BIG_BATCH_FROM ? BIG_BATCH_SIZE : BATCH_SIZE);
    this.buffered = 0;
    this.position += length;
    const write = this.ensureCreated()
      .then(() => this.writeAll(full.subarray(0, length), position))
      .then(() => spareBatches.give(full));
    // Handled here so that a failure is not reported as unhandled; settle() rethrows it.
    write.catch(() => undefined);
    this.inFlight = write;
  }

  /** Waits for the write in flight; rethrows its failure. */
  private async settle(): Promise<void> {
    const pending = this.inFlight;
    this.inFlight = undefined;
    if (pending !== undefined) await pending;
  }

  private async writeAll(data: Buffer, position: number): Promise<void> {
    let offset = 0;
    while (offset < data.length) {
      const written = await writeAt(this.fd, data, offset, data.length - offset, position + offset);
      offset += written;
    }
  }

  /**
   * Waits for the write in flight, then writes the rest of the buffer. A small
   * message, of which nothing was written yet, is written in one synchronous
   * call: it goes to the page cache, and a round trip through the thread pool
   * would cost more than the write itself.
   */
  private async finish(): Promise<void> {
    await this.settle();
    const data = this.buffer!.subarray(0, this.buffered);
    if (this.position === 0) {
      this.contents = Buffer.from(data);
      // A lazy writer leaves it to the store: to the journal, or to writeOut().
      if (this.descriptor !== undefined) {
        let offset = 0;
        while (offset < data.length) offset += fs.writeSync(this.descriptor, data, offset, data.length - offset, offset);
      }
    } else {
      await this.writeAll(data, this.position);
      spareBatches.give(this.buffer!);
    }
    this.position += data.length;
    this.buffered = 0;
    this.buffer = undefined;
    this.closed = true;
  }

  private async fail(err: unknown): Promise<void> {
    if (this.failure !== undefined) return;
    this.failure = err;
    // A write still in flight must end before the file is closed and removed.
    await this.inFlight?.catch(() => undefined);
    this.inFlight = undefined;
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
