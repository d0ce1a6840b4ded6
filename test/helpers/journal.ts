// Reads the commit journals in a queue folder (src/queue/journal.ts): which
// items are held there, not yet delivered or written out as df and qf.

import * as fs from 'node:fs';
import * as path from 'node:path';
import { isJournalName, readJournal } from '../../src/queue/journal';

/** Ids of the open entries of every journal file in `queueDir`. */
export function journalOpenIds(queueDir: string): string[] {
  const ids: string[] = [];
  for (const name of fs.readdirSync(queueDir).filter(isJournalName)) {
    const data = fs.readFileSync(path.join(queueDir, name));
    for (const entry of readJournal(data).open) ids.push(entry.id);
  }
  return ids;
}

/** Tells whether item `id` is durable: a qf, or an open entry of a journal. */
export function heldDurably(queueDir: string, id: string): boolean {
  return fs.existsSync(path.join(queueDir, `qf${id}`)) || journalOpenIds(queueDir).includes(id);
}
