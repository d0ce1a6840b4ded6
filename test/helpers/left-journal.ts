// A commit journal left by a killed daemon: messages held in flight by a
// silent next hop, then kill -9 before the 5-second write-out. A sink then
// takes the next hop's port, so the next queue run can deliver them.

import assert from 'node:assert/strict';
import type { TestContext } from 'node:test';
import { sendToRemote, startPosthornWithDns } from './e2e-setup';
import { journalOpenIds } from './journal';
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
