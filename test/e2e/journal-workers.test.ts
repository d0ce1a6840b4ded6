// Workers=2 and kill -9 of one worker while its messages are in the commit
// journal, in flight to a next hop that never replies. The primary restarts
// the worker, and its next queue run writes the dead worker's journal out as
// df and qf and delivers it once the hop replies. Nothing is lost or sent twice.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import { quoteRe, sendToRemote, startPosthornWithDns } from '../helpers/e2e-setup';
import { journalOpenIds } from '../helpers/journal';
import { sleep, waitFor } from '../helpers/process';
import { startSilentHop } from '../helpers/silent-hop';
import { startSink } from '../helpers/sink';

const MESSAGES = 8;

for (const waitMs of [0, 6500]) test(`Workers=2: kill -9 of a worker after ${waitMs} ms in flight`, { timeout: 55_000 }, async (t) => {
  const silent = await startSilentHop(t);
  const { ph } = await startPosthornWithDns(t, { mailerPort: silent.port, args: ['-O', 'Workers=2', '-q1s'] });
  const [, a, b] = (await ph.waitForLog(/started 2 workers: (\d+) (\d+)/)).map(Number);

  const ids = await Promise.all(Array.from({ length: MESSAGES }, (_, i) => sendToRemote(ph.port, `worker ${i}`)));
  await waitFor('every delivery in flight', () => silent.sockets.size >= 2 && journalOpenIds(ph.queueDir).length === MESSAGES, 10_000).catch(() => undefined);
  await sleep(waitMs);
  const journals = fs.readdirSync(ph.queueDir).filter((n) => n.startsWith('.jr.'));
  // The worker with journal entries; a message's id ends with its worker's pid.
  const victim = ids.some((id) => id.endsWith(String(a))) ? a : b;
  const victims = ids.filter((id) => id.endsWith(String(victim)));
  assert.ok(victims.length > 0, `${ids.join(' ')} ${journals.join(' ')}`);
  process.kill(victim, 'SIGKILL');
  await ph.waitForLog(new RegExp(`worker ${victim} exited with signal SIGKILL; restarting it`));

  // The hop replies now: the live worker's deliveries are retried, the dead worker's journal is recovered.
  await silent.close();
  const sink = await startSink({ host: '127.0.0.2', port: silent.port });
  t.after(() => sink.close());
  if (waitMs < 5000) for (const id of victims) await ph.waitForLog(new RegExp(`${quoteRe(id)}: written out from commit journal`), 20_000);
  else await waitFor('the dead worker journal removed', () => !fs.readdirSync(ph.queueDir).some((n) => n.startsWith(`.jr.${victim}.`)), 10_000);
  // The live worker's messages were deferred when the hop closed; their retry is not due yet.
  const run = await ph.run(['-q']);
  assert.equal(run.code, 0, run.stderr);
  await sink.waitForMessages(MESSAGES, 20_000);
  await waitFor('the queue empty', () => ph.queueFiles().filter((n) => !n.startsWith('.')).length === 0, 15_000).catch(() => undefined);

  const got = sink.messages.map((m) => /^Subject: (.*)\r$/m.exec(m.data.toString('latin1'))?.[1]).sort();
  assert.deepEqual(got, Array.from({ length: MESSAGES }, (_, i) => `worker ${i}`).sort());
  assert.deepEqual(ph.queueFiles().filter((n) => !n.startsWith('.')), []);
  assert.deepEqual(journalOpenIds(ph.queueDir), []);
});
