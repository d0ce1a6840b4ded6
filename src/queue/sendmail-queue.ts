// Items that sendmail left in the queue folder, for an administrator who
// replaces sendmail with Posthorn while mail is still queued. Posthorn reads
// sendmail's control files (qf.ts), but sendmail's data file has LF line ends
// where Posthorn's has CRLF, and its sender may lack a domain. Before the first
// delivery of such an item, adoptSendmailItem() converts the data file and
// rewrites the control file in Posthorn's format, so each later reader sees an
// item like any other.

import * as fs from 'node:fs';
import type { Logger } from '../log/logger';
import type { QueueStore } from './store';
import type { QueueItem } from './types';
import { READ_NO_FOLLOW } from './no-follow';
import { unlinkIfExists } from './lock';

const LF = 0x0a;
const CR = 0x0d;
const BLOCK_BYTES = 1024 * 1024;

/** Returns the name of the converted data file while it is written; queue recovery removes an old one. */
export function convertedDataPath(store: QueueStore, id: string): string {
  return `${store.dataPath(id)}.crlf`;
}

/**
 * Returns `chunk` with a CR before each LF that has none. `afterCr` is true
 * when the byte before the chunk was a CR, so a CRLF split between two chunks
 * stays one line end. A data file converted once comes out unchanged.
 */
export function crlfLineEnds(chunk: Buffer, afterCr: boolean): Buffer {
  let bare = 0;
  for (let i = 0; i < chunk.length; i++) {
    if (chunk[i] === LF && (i === 0 ? !afterCr : chunk[i - 1] !== CR)) bare++;
  }
  if (bare === 0) return chunk;
  const out = Buffer.allocUnsafe(chunk.length + bare);
  let o = 0;
  for (let i = 0; i < chunk.length; i++) {
    if (chunk[i] === LF && (i === 0 ? !afterCr : chunk[i - 1] !== CR)) out[o++] = CR;
    out[o++] = chunk[i];
  }
  return out;
}

/** Writes a copy of `source` with CRLF line ends to `target`, fsyncs it and returns its size. */
async function copyWithCrlf(source: string, target: string): Promise<number> {
  const input = await fs.promises.open(source, READ_NO_FOLLOW);
  try {
    await unlinkIfExists(target);
    const output = await fs.promises.open(target, 'wx', 0o600);
    try {
      const block = Buffer.allocUnsafe(BLOCK_BYTES);
      let afterCr = false;
      let size = 0;
      for (;;) {
        const { bytesRead } = await input.read(block, 0, block.length, null);
        if (bytesRead === 0) break;
        const out = crlfLineEnds(block.subarray(0, bytesRead), afterCr);
        afterCr = block[bytesRead - 1] === CR;
        let written = 0;
        while (written < out.length) written += (await output.write(out, written, out.length - written)).bytesWritten;
        size += out.length;
      }
      await output.sync();
      return size;
    } finally {
      await output.close();
    }
  } finally {
    await input.close();
  }
}

/**
 * Converts an item read from sendmail's control file into Posthorn's form.
 * Its data file gets CRLF line ends: a copy is renamed over the df once it is
 * on disk. A sender without a domain gets `hostName`, as sendmail adds $j when
 * it sends. Then the control file is rewritten in Posthorn's format. The
 * caller holds the item's lock. A crash in between leaves sendmail's control
 * file with either data file, and the next attempt converts again.
 */
export async function adoptSendmailItem(store: QueueStore, item: QueueItem, hostName: string, logger: Logger): Promise<void> {
  const temp = convertedDataPath(store, item.id);
  try {
    item.bodySize = await copyWithCrlf(store.dataPath(item.id), temp);
    await store.replaceDataFile(item.id, temp);
  } catch (err) {
    await unlinkIfExists(temp).catch(() => undefined);
    throw err;
  }
  if (item.sender !== '' && !item.sender.includes('@')) item.sender = `${item.sender}@${hostName}`;
  delete item.fromSendmail;
  await store.update(item);
  logger.child(item.id).info(`control file written by sendmail converted, sender=<${item.sender}>, size=${item.bodySize}`);
}
