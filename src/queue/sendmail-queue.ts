// Items that sendmail left in the queue folder, for an administrator who
// replaces sendmail with Posthorn while mail is still queued. Posthorn reads
// sendmail's control files (qf.ts), but sendmail's data file has LF line ends
// where Posthorn's has CRLF, and its sender may lack a domain. Before the first
// delivery of such an item, adoptSendmailItem() converts the data file and
// rewrites the control file in Posthorn's format, so each later reader sees an
// item like any other.

import type { Logger } from '../log/logger';
import { copyConverted } from './block-copy';
import type { QueueStore } from './store';
import type { QueueItem } from './types';
import { unlinkIfExists } from './lock';

const LF = 0x0a;
const CR = 0x0d;

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
    let afterCr = false;
    const toCrlf = {
      block: (data: Buffer): Buffer => {
        const out = crlfLineEnds(data, afterCr);
        afterCr = data[data.length - 1] === CR;
        return out;
      },
      end: (): Buffer => Buffer.alloc(0),
    };
    item.bodySize = await copyConverted(store.dataPath(item.id), temp, toCrlf);
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
