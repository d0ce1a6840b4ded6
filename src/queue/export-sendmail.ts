// posthorn --to-sendmail-queue: rewrites every item of the queue folder in
// sendmail's own format, for an administrator who goes back to sendmail
// with mail still queued. sendmail 8.17 sets Posthorn's control files aside
// as Qf at their first X line; after this, its queue runs deliver them.
//
// Per item, with the item's lock held: the data file is copied with LF line
// ends (sendmail's df) to df<id>.lf and fsynced, the control file is written
// to tf<id> in sendmail's format and fsynced, then tf is renamed over the
// control file and df<id>.lf over the data file, and the folder is fsynced.
// A crash between the two renames leaves sendmail's control file with the
// CRLF data file, which Posthorn reads again, and which this command
// converts again when run once more.

import * as fs from 'node:fs';
import * as path from 'node:path';
import { userByName } from '../aliases/passwd';
import type { Logger } from '../log/logger';
import { copyConverted } from './block-copy';
import { unlinkIfExists } from './lock';
import type { QueueStore } from './store';
import type { QueueItem, QueueRecipient } from './types';

const LF = 0x0a;
const CR = 0x0d;

/** Replaces line breaks in a field, which sendmail's control file keeps on one line, by spaces. */
function oneLine(text: string): string {
  return text.replace(/[\r\n]+/g, ' ');
}

/**
 * Returns sendmail's C line for a recipient from an alias expansion, or
 * undefined. sendmail runs a program or file recipient with the uid and gid
 * written there, so a user not in the password file is left out (sendmail
 * then uses DefaultUser), never written with 0.
 */
function controllingLine(rcpt: QueueRecipient): string | undefined {
  if (rcpt.parent === undefined) return undefined;
  const entry = rcpt.ctladdr === undefined ? undefined : userByName(rcpt.ctladdr);
  const user = entry === undefined || entry.uid === 0 ? '' : `${entry.name}:${entry.uid}:${entry.gid}`;
  return `C${user}:${oneLine(rcpt.parent)}`;
}

/** Returns the recipients sendmail still has to deliver; it keeps no sent or bounced ones. */
export function openRecipients(item: QueueItem): QueueRecipient[] {
  return item.recipients.filter((r) => r.state === 'pending' || r.state === 'deferred');
}

/**
 * Renders an item as sendmail 8.17 writes its control file: the same
 * letters without Posthorn's X lines and escapes, only open recipients, and
 * each alias expansion after a C line. The text is meant to be written as
 * Latin-1, one byte per character.
 */
export function sendmailControlText(item: QueueItem): string {
  const lines = ['V8', `T${item.created}`, `K${item.lastAttempt}`, `N${item.attempts}`, `P${item.priority}`];
  if (item.bodyType !== undefined) lines.push(`B${item.bodyType}`);
  if (item.quarantine !== undefined) lines.push(`q${oneLine(item.quarantine)}`);
  if (item.statusMessage !== undefined) lines.push(`M${oneLine(item.statusMessage)}`);
  let flags = item.flags.replace(/[dn]/g, '');
  if (item.ret !== undefined) flags += 'd';
  if (item.ret === 'HDRS') flags += 'n';
  if (flags !== '') lines.push(`F${flags}`);
  for (const [name, value] of item.macros) {
    const id = name.length === 1 ? name : `{${name.replace(/^\{(.*)\}$/, '$1')}}`;
    lines.push(`$${id}${oneLine(value)}`);
  }
  lines.push(`S<${oneLine(item.sender)}>`);
  if (item.envid !== undefined) lines.push(`Z${oneLine(item.envid)}`);
  if (item.auth !== undefined) lines.push(`A${oneLine(item.auth)}`);
  if (item.deliverBy !== undefined) {
    const flag = (item.deliverBy.mode === 'R' ? 0x02 : 0x01) | (item.deliverBy.trace ? 0x10 : 0);
    lines.push(`!${String.fromCharCode(flag)} ${item.deliverBy.seconds}`);
  }

  let control: string | undefined;
  for (const rcpt of openRecipients(item)) {
    if (rcpt.status !== undefined) lines.push(`M${oneLine(rcpt.status)}`);
    const next = controllingLine(rcpt);
    if (next !== control) lines.push(next ?? 'C');
    control = next;
    if (rcpt.orcpt !== undefined) lines.push(`Q${oneLine(rcpt.orcpt)}`);
    if (rcpt.finalRcpt !== undefined) lines.push(`r${oneLine(rcpt.finalRcpt)}`);
    let rflags = 'P';
    if (rcpt.notify !== undefined) {
      rflags += 'N';
      for (const [word, letter] of [['SUCCESS', 'S'], ['FAILURE', 'F'], ['DELAY', 'D']]) if (rcpt.notify.includes(word)) rflags += letter;
    }
    lines.push(`R${rflags}:${oneLine(rcpt.address)}`);
  }
  // sendmail adds this header for the mailers with the P flag when it collects a message; 0x81 is its macro byte.
  if (!item.headers.some((h) => /^return-path:/i.test(h))) lines.push('H?P?Return-Path: <\u0081g>');
  // A fold is kept as a line break before the next line's space or tab, as sendmail writes it.
  for (const header of item.headers) lines.push(`H??${header.replace(/\r\n(?=[ \t])/g, '\n').replace(/\r\n/g, ' ')}`);
  lines.push('.');
  return lines.join('\n') + '\n';
}

/**
 * Returns `chunk` with the CR of each CRLF left out. A CR at the end of a
 * chunk may start a CRLF, so it is held back: `heldCr` is true when the chunk before
 * ended with one, and the result's `heldCr` is true when this chunk does.
 */
export function lfLineEnds(chunk: Buffer, heldCr: boolean): { out: Buffer; heldCr: boolean } {
  const out = Buffer.allocUnsafe(chunk.length + 1);
  let o = 0;
  if (heldCr && chunk[0] !== LF) out[o++] = CR;
  for (let i = 0; i < chunk.length; i++) {
    if (chunk[i] === CR && (i + 1 === chunk.length || chunk[i + 1] === LF)) continue;
    out[o++] = chunk[i];
  }
  const last = chunk.length > 0 && chunk[chunk.length - 1] === CR;
  return { out: out.subarray(0, o), heldCr: last };
}

async function writeSynced(file: string, bytes: Buffer): Promise<void> {
  const handle = await fs.promises.open(file, 'w', 0o600);
  try {
    await handle.writeFile(bytes);
    await handle.sync();
  } finally {
    await handle.close();
  }
}

async function syncFolder(dir: string): Promise<void> {
  const handle = await fs.promises.open(dir, fs.constants.O_RDONLY);
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}

export interface ExportReport {
  converted: string[];
  /** Items another process was working on, left as they were. */
  locked: string[];
  /** Items that could not be read or written, with the reason. */
  failed: { id: string; reason: string }[];
}

/** Rewrites one locked item in sendmail's format. */
async function exportItem(store: QueueStore, id: string): Promise<void> {
  const item = await store.read(id);
  const kind = item.quarantine !== undefined ? 'hf' : 'qf';
  const dataTemp = `${store.dataPath(id)}.lf`;
  const controlTemp = path.join(store.dir, `tf${id}`);
  try {
    // A data file sendmail wrote has no CR before its LFs, and the copy leaves it unchanged.
    let heldCr = false;
    const toLf = {
      block: (data: Buffer): Buffer => {
        const converted = lfLineEnds(data, heldCr);
        heldCr = converted.heldCr;
        return converted.out;
      },
      end: (): Buffer => (heldCr ? Buffer.from([CR]) : Buffer.alloc(0)),
    };
    await copyConverted(store.dataPath(id), dataTemp, toLf);
    await writeSynced(controlTemp, Buffer.from(sendmailControlText(item), 'latin1'));
    await fs.promises.rename(controlTemp, store.controlPath(id, kind));
    await fs.promises.rename(dataTemp, store.dataPath(id));
    await syncFolder(store.dir);
  } catch (err) {
    await unlinkIfExists(dataTemp).catch(() => undefined);
    await unlinkIfExists(controlTemp).catch(() => undefined);
    throw err;
  }
}

/** Rewrites every qf and hf item of the queue in sendmail's format; see the top of this file. */
export async function exportQueueToSendmail(store: QueueStore, logger: Logger): Promise<ExportReport> {
  const report: ExportReport = { converted: [], locked: [], failed: [] };
  const ids = [...new Set([...(await store.list('qf')), ...(await store.list('hf'))])];
  for (const id of ids) {
    if (!(await store.lock(id))) {
      report.locked.push(id);
      continue;
    }
    try {
      await exportItem(store, id);
      report.converted.push(id);
      logger.child(id).info('control and data file rewritten in sendmail format');
    } catch (err) {
      const reason = (err as Error).message;
      report.failed.push({ id, reason });
      logger.child(id).error(`not rewritten in sendmail format: ${reason}`);
    } finally {
      await store.unlock(id);
    }
  }
  return report;
}
