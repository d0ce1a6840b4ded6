// mailq, `posthorn -qI<id>` and SIGHUP while messages are in the commit
// journal, in flight to a next hop that never replies, and after the
// 5-second write-out. Neither command may deliver or disturb an item the
// daemon holds; a reload keeps the journal; a kill -9 after it loses nothing.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { quoteRe, sendToRemote, startPosthornWithDns } from '../helpers/e2e-setup';
import { journalOpenIds } from '../helpers/journal';
import { waitFor } from '../helpers/process';
import { startSilentHop } from '../helpers/silent-hop';
import { startSink } from '../helpers/sink';

test('mailq, -qI and SIGHUP with journal items', { timeout: 55_000 }, async (t) => {
  const silent = await startSilentHop(t);
  const { ph } = await startPosthornWithDns(t, { mailerPort: silent.port });
  const ids = [await sendToRemote(ph.port, 'held one'), await sendToRemote(ph.port, 'held two')];
  await waitFor('both in flight', () => silent.sockets.size >= 2, 10_000);
  assert.deepEqual(journalOpenIds(ph.queueDir).sort(), [...ids].sort());

  const quick = ['-O', 'Timeout.connect=1s', '-O', 'Timeout.initial=1s'];
  const early = await ph.run(['-bp']);
  assert.equal(early.code, 0, early.stderr);
  const runEarly = await ph.run(['-qI' + ids[0], ...quick]);
  assert.equal(runEarly.code, 0, runEarly.stderr);
  assert.deepEqual(journalOpenIds(ph.queueDir).sort(), [...ids].sort(), 'a -qI run changed the journal');

  ph.proc.kill('SIGHUP');
  await ph.waitForLog(/configuration and maps read again/);
  assert.deepEqual(journalOpenIds(ph.queueDir).sort(), [...ids].sort(), 'the reload changed the journal');

  // Written out after 5 s, still locked by the delivery in flight.
  for (const id of ids) await waitFor(`qf${id}`, () => fs.existsSync(path.join(ph.queueDir, `qf${id}`)), 10_000);
  await waitFor('the entries finished', () => journalOpenIds(ph.queueDir).length === 0, 5_000);
  const mailq = await ph.run(['-bp']);
  for (const id of ids) assert.match(mailq.stdout, new RegExp(`^${quoteRe(id)}\\*`, 'm'), mailq.stdout);
  const runLate = await ph.run(['-qI' + ids[0], ...quick]);
  assert.equal(runLate.code, 0, runLate.stderr);
  assert.ok(fs.existsSync(path.join(ph.queueDir, `lf${ids[0]}`)), 'the -qI run released the daemon lock');
  assert.doesNotMatch(ph.logs(), /stat=/, 'a delivery ended');

  // A third message after the reload, then kill -9: all three survive and go out once.
  const third = await sendToRemote(ph.port, 'held three');
  await waitFor('three in flight', () => silent.sockets.size >= 3, 10_000);
  await ph.kill('SIGKILL');
  await silent.close();
  const sink = await startSink({ host: '127.0.0.2', port: silent.port });
  t.after(() => sink.close());
  await ph.restart();
  const run = await ph.run(['-q']);
  assert.equal(run.code, 0, run.stderr);
  await sink.waitForMessages(3, 20_000);
  await waitFor('the queue empty', () => ph.queueFiles().filter((n) => !n.startsWith('.')).length === 0, 10_000);
  const got = sink.messages.map((m) => /^Subject: (.*)\r$/m.exec(m.data.toString('latin1'))?.[1]).sort();
  assert.deepEqual(got, ['held one', 'held three', 'held two']);
  assert.match(ph.logs(), new RegExp(`${quoteRe(third)}: written out from commit journal`));
});
