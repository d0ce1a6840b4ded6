// Commit journal states for tests. A journal left by a killed daemon:
// messages held in flight by a silent next hop, then kill -9 before the
// 5-second write-out, and a sink on the next hop's port for the next queue
// run. A stranded item: its write-out failed on a full disk.

import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { TestContext } from 'node:test';
import { makeMessage, quoteRe, sendRaw, sendToRemote, startPosthornWithDns } from './e2e-setup';
import { journalOpenIds } from './journal';
import { fillDisk } from './queue-disk';
import type { Posthorn } from './posthorn';
import { startSilentHop } from './silent-hop';
import { startSink, type Sink } from './sink';

export interface LeftJournal {
  ph: Posthorn;
  /** The sink on the next hop's port (127.0.0.2). */
  sink: Sink;
}

/** Leaves `count` messages, with subjects "left 0", "left 1", ..., in the killed daemon's journal only. */
export async function leaveJournal(t: TestContext, count: number, opts: { queueDir?: string; args?: string[] } = {}): Promise<LeftJournal> {
  const silent = await startSilentHop(t);
  const { ph } = await startPosthornWithDns(t, { mailerPort: silent.port, queueDir: opts.queueDir, args: opts.args });
  await Promise.all(Array.from({ length: count }, (_, i) => sendToRemote(ph.port, `left ${i}`)));
  await ph.kill('SIGKILL');
  assert.equal(journalOpenIds(ph.queueDir).length, count);
  await silent.close();
  const sink = await startSink({ host: '127.0.0.2', port: silent.port });
  t.after(() => sink.close());
  return { ph, sink };
}

/**
 * Strands a message in the daemon's journal: fills the queue disk mounted at
 * `mountPoint` up to 64 KiB, which holds the journal record but not df and qf
 * beside it, sends a message and waits for the failed write-out. Returns the
 * filler file, whose removal gives the space back.
 */
export async function strandInJournal(ph: Posthorn, mountPoint: string, subject: string): Promise<string> {
  const filler = path.join(mountPoint, 'filler');
  fs.truncateSync(filler, Math.max(0, fillDisk(filler) - 64 * 1024));
  const sent = await sendRaw({
    port: ph.port,
    from: 'alice@posthorn.test',
    to: ['bob@remote.example'],
    data: makeMessage({ from: 'alice@posthorn.test', to: 'bob@remote.example', subject, body: `${'y'.repeat(76)}\n`.repeat(500) }),
  });
  assert.notEqual(sent.queueId, '', sent.replies.join(' | '));
  await ph.waitForLog(new RegExp(`${quoteRe(sent.queueId)}: failed to write the item out of the commit journal`), 20_000);
  return filler;
}
