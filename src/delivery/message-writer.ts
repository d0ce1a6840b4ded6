// Writes a message to the next hop in the DATA phase: from memory, or from
// the data file in blocks, with lines longer than the mailer's line limit
// split (line-limit.ts) and dot-stuffed, each wait bounded by
// Timeout.datablock. The session (smtp-client.ts) reads the replies.

import * as fs from 'node:fs';
import type * as net from 'node:net';

import type { DotStuffer } from './dot-stuff';
import { LineLimiter, limitHeader } from './line-limit';
import { SmtpClientError } from './reply-reader';
import type { OutboundTranscript } from '../log/transcript';
import { openRegular } from '../queue/no-follow';
import { BufferPool } from '../queue/buffer-pool';

/** Read buffers of a data file larger than this are blocks from a pool. */
const SMALL_BLOCK_MAX = 64 * 1024;
/** The smallest read buffer, should the expected size (from the qf) be too low. */
const SMALL_BLOCK_MIN = 8 * 1024;
const BODY_BLOCK = 256 * 1024;
/**
 * Blocks of a data file of BIG_BODY_FROM bytes or more. Fewer, larger reads
 * and socket writes cost the main thread less: 10 MiB messages went out
 * about 13 % faster with 1 MiB blocks than with 256 KiB (benchmarks.md).
 */
const BIG_BODY_BLOCK = 1024 * 1024;
const BIG_BODY_FROM = 2 * 1024 * 1024;
/** Read buffers of sendFile not in use, kept for the next large message (at most eight of each size). */
const spareBlocks = new BufferPool([BODY_BLOCK, BIG_BODY_BLOCK], 8);

/** Dot-stuffs the parts that LineLimiter returned, in order. */
function stuffParts(stuffer: DotStuffer, parts: Buffer[]): Buffer[] {
  if (parts.length === 1) return stuffer.pushParts(parts[0]);
  const out: Buffer[] = [];
  // Loops, not push(...): a block of short dot lines has more parts than a call takes arguments.
  for (const part of parts) for (const piece of stuffer.pushParts(part)) out.push(piece);
  return out;
}

export class MessageWriter {
  constructor(
    private readonly socket: net.Socket,
    private readonly datablockMs: number,
    private readonly trace: OutboundTranscript | undefined,
    /** Called when the final dot is about to go out, for the session's transcript. */
    private readonly onFinalDot: () => void,
    /** The mailer's L= in bytes: longer lines are split as sendmail splits them; 0 for none. */
    private readonly lineLimit = 0,
  ) {}

  /** Returns the header block, long lines split and dot-stuffed, with the blank line after it. */
  head(headers: string[], stuffer: DotStuffer): Buffer {
    return stuffer.push(limitHeader(headers, this.lineLimit));
  }

  /** Sends a body held in memory and the final dot after `head`, in one write. */
  async sendBuffer(head: Buffer, body: Buffer, stuffer: DotStuffer): Promise<void> {
    const limiter = new LineLimiter(this.lineLimit);
    const parts = [head, ...stuffParts(stuffer, limiter.push(body)), ...stuffParts(stuffer, limiter.finish())];
    this.onFinalDot();
    parts.push(stuffer.finish());
    await this.write(Buffer.concat(parts));
  }

  /**
   * Sends the data file and the final dot. The file is read in blocks into
   * two buffers in turn: blocks of 256 KiB, or 1 MiB from 2 MiB on, for a large file, or one block that
   * contains a small one whole. Each block has its long lines split
   * (LineLimiter) and is dot-stuffed without copying (DotStuffer.pushParts),
   * both returning views of the block, and is written in one corked write, the header block
   * with the first and the final dot with the last. The next block is read
   * while the socket sends the last one. A buffer is read into again only
   * after the socket has written all of it, so the memory per session stays
   * at two blocks whatever the message size.
   */
  async sendFile(dataPath: string, bodySize: number, stuffer: DotStuffer, head: Buffer): Promise<void> {
    const file = await openRegular(dataPath);
    // One byte more than the expected size, so that one read of a small file also shows its end.
    const large = bodySize + 1 > SMALL_BLOCK_MAX;
    const small = Math.max(bodySize + 1, SMALL_BLOCK_MIN);
    // A small file's second buffer is allocated only if the file turns out larger than its size.
    const blockSize = bodySize >= BIG_BODY_FROM ? BIG_BODY_BLOCK : BODY_BLOCK;
    const buffers: Buffer[] = large ? [spareBlocks.take(blockSize), spareBlocks.take(blockSize)] : [Buffer.allocUnsafe(small)];
    const sent: Array<Promise<void>> = [Promise.resolve(), Promise.resolve()];
    let reusable = false;
    const limiter = new LineLimiter(this.lineLimit);
    const readInto = (buffer: Buffer, position: number): Promise<number> => {
      const reading = file.read(buffer, 0, buffer.length, position).then((r) => r.bytesRead);
      // Handled here too, in case the socket fails before the read is awaited.
      reading.catch(() => undefined);
      return reading;
    };
    try {
      let first = [head];
      let position = 0;
      let k = 0;
      let ended = false;
      let reading = readInto(buffers[0], 0);
      while (!ended) {
        const bytesRead = await reading;
        const block = buffers[k].subarray(0, bytesRead);
        const parts = bytesRead === 0 ? [] : stuffParts(stuffer, limiter.push(block));
        // A short read of a regular file means its end.
        ended = bytesRead < buffers[k].length;
        if (ended) {
          for (const part of stuffParts(stuffer, limiter.finish())) parts.push(part);
          this.onFinalDot();
          parts.push(stuffer.finish());
        }
        sent[k] = this.writeParts(first.length > 0 ? [...first, ...parts] : parts);
        first = [];
        if (ended) break;
        position += bytesRead;
        k ^= 1;
        await this.bounded(sent[k]);
        buffers[k] ??= Buffer.allocUnsafe(small);
        reading = readInto(buffers[k], position);
        if (this.socket.writableNeedDrain) await this.bounded(this.drained());
      }
      await this.bounded(Promise.all(sent).then(() => undefined));
      reusable = large;
    } finally {
      await file.close().catch(() => undefined);
      if (reusable) for (const buffer of buffers) spareBlocks.give(buffer);
    }
  }

  /** Writes `parts` in one corked write. Resolves when the socket has written them or has closed. */
  private writeParts(parts: Buffer[]): Promise<void> {
    const socket = this.socket;
    return new Promise((resolve) => {
      const done = (): void => {
        socket.off('close', done);
        resolve();
      };
      socket.once('close', done);
      socket.cork();
      parts.forEach((part, i) => {
        this.trace?.sent(part);
        socket.write(part, i === parts.length - 1 ? done : undefined);
      });
      socket.uncork();
    });
  }

  /** Resolves at the socket's next 'drain' or 'close'. */
  private drained(): Promise<void> {
    const socket = this.socket;
    return new Promise((resolve) => {
      const done = (): void => {
        socket.off('drain', done);
        socket.off('close', done);
        resolve();
      };
      socket.once('drain', done);
      socket.once('close', done);
    });
  }

  /** Waits for `step` up to Timeout.datablock. On timeout it destroys the socket and rejects. */
  private bounded(step: Promise<unknown>): Promise<void> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.socket.destroy();
        reject(new SmtpClientError('timeout', 'timeout writing message'));
      }, this.datablockMs);
      step.then(
        () => {
          clearTimeout(timer);
          resolve();
        },
        (err: unknown) => {
          clearTimeout(timer);
          reject(err);
        },
      );
    });
  }

  /** Writes a block and waits for the socket to drain, up to Timeout.datablock. */
  write(block: Buffer): Promise<void> {
    this.trace?.sent(block);
    if (this.socket.write(block)) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.socket.destroy();
        reject(new SmtpClientError('timeout', 'timeout writing message'));
      }, this.datablockMs);
      this.socket.once('drain', () => {
        clearTimeout(timer);
        resolve();
      });
    });
  }
}
