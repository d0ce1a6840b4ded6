// A journal of a live daemon must not be claimed by another process's
// recovery. The owner check compared the process start time from /proc (boot
// time plus ticks, on the current clock) with the time in the journal's name.
// After the clock was stepped forward by more than a second (an NTP step at
// boot), a live daemon looked gone. Here the step is simulated by renaming the
// live journal to an earlier time.
//
// Before the fix `posthorn -q` claimed the live journal and wrote the message
// in flight out as df and qf (a second delivery). It then removed the file,
// while the daemon kept appending to it, so the next message got a 250 and
// was lost with a kill -9.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { quoteRe, sendRemoteMessage, startPosthornWithDns } from '../helpers/e2e-setup';
import { heldDurably, journalOpenIds } from '../helpers/journal';
import { waitFor } from '../helpers/process';
import { startSilentHop } from '../helpers/silent-hop';

test('queue run skips live journal', { timeout: 55_000 }, async (t) => {
  // A next hop that takes connections and never greets: deliveries stay in flight.
  const { port: mailerPort, sockets } = await startSilentHop(t);
  const { ph } = await startPosthornWithDns(t, { mailerPort });

  const first = await sendRemoteMessage(ph.port, 'in flight');
  assert.notEqual(first.queueId, '', first.accepted);
  await waitFor('a connection to the next hop', () => sockets.size > 0, 10_000);
  const journals = fs.readdirSync(ph.queueDir).filter((n) => n.startsWith('.jr.'));
  assert.equal(journals.length, 1, journals.join(' '));
  assert.deepEqual(journalOpenIds(ph.queueDir), [first.queueId]);

  // The clock stepped forward 5 s since the daemon opened its journal.
  const m = /^\.jr\.(\d+)\.(\d+)\.(\d+)$/.exec(journals[0])!;
  assert.equal(Number(m[1]), ph.proc.pid);
  fs.renameSync(path.join(ph.queueDir, journals[0]), path.join(ph.queueDir, `.jr.${m[1]}.${Number(m[2]) - 5000}.${m[3]}`));

  const run = await ph.run(['-q', '-O', 'Timeout.connect=1s', '-O', 'Timeout.initial=1s']);
  assert.equal(run.code, 0, run.stderr);
  const wroteOut = fs.existsSync(path.join(ph.queueDir, `qf${first.queueId}`));

  // A message accepted now must survive a kill -9 of the daemon.
  const second = await sendRemoteMessage(ph.port, 'after the queue run');
  await ph.kill('SIGKILL');
  if (second.queueId !== '') {
    assert.ok(heldDurably(ph.queueDir, second.queueId), `${second.queueId} got a 250 but is neither queued nor in a journal`);
  } else {
    assert.match(second.accepted, /^4\d\d /);
  }
  assert.ok(heldDurably(ph.queueDir, first.queueId));
  assert.ok(!wroteOut, 'the queue run wrote out a message the daemon is delivering');
  assert.doesNotMatch(ph.logs(), new RegExp(`${quoteRe(first.queueId)}: written out from commit journal`));
});
