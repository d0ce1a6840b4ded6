// A 250 after DATA is a promise: the item survives `kill -9` of the daemon and is
// delivered after a restart.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { quoteRe, sendToRemote, startNextHopDown, startSinkHop } from '../helpers/e2e-setup';
import { waitFor } from '../helpers/process';
import { heldDurably } from '../helpers/journal';

test('queued item survives kill -9 (queueonly)', async (t) => {
  const { ph, sink } = await startSinkHop(t, { args: ['-O', 'DeliveryMode=queueonly'] });

  const qid = await sendToRemote(ph.port, 'survives kill');
  await ph.kill('SIGKILL');

  assert.ok(ph.queueFiles().includes(`qf${qid}`), `qf${qid} missing: ${ph.queueFiles().join(' ')}`);
  assert.ok(ph.queueFiles().includes(`df${qid}`), `df${qid} missing: ${ph.queueFiles().join(' ')}`);
  assert.equal(sink.messages.length, 0, 'queueonly must not deliver before a queue run');

  await ph.restart();
  const run = await ph.run(['-q']);
  assert.equal(run.code, 0, run.stderr);

  const [message] = await sink.waitForMessages(1, 20_000);
  assert.match(message.data.toString('utf8'), /^Subject: survives kill\r$/m);
  assert.equal(sink.messages.length, 1);
  // The sink has the message before the queue run has read its reply, logged and removed the files.
  await ph.waitForLog(new RegExp(`${quoteRe(qid)}: to=<bob@remote\\.example>, .*stat=Sent`));
  await waitFor('the files of the delivered item removed', () => !ph.queueFiles().some((f) => f.endsWith(qid)), 20_000);
});

test('item survives kill -9 while next hop down', async (t) => {
  const hop = await startNextHopDown(t);
  const { ph } = hop;

  const qid = await sendToRemote(ph.port, 'next hop down');
  await ph.kill('SIGKILL');
  // Killed during its first delivery, the item may still be in the commit journal only.
  assert.ok(heldDurably(ph.queueDir, qid), `qf${qid} missing and not in a journal: ${ph.queueFiles().join(' ')}`);

  const sink = await hop.startSink();
  await ph.restart();

  // The restarted daemon still accepts mail while the old item waits.
  const second = await sendToRemote(ph.port, 'after restart');
  assert.notEqual(second, qid);
  await ph.waitForLog(new RegExp(`${quoteRe(second)}: to=<bob@remote\\.example>, .*stat=Sent`), 20_000);

  const run = await ph.run(['-q']);
  assert.equal(run.code, 0, run.stderr);
  const messages = await sink.waitForMessages(2, 20_000);
  const subjects = messages.map((m) => /^Subject: (.*)\r$/m.exec(m.data.toString('utf8'))?.[1]).sort();
  assert.deepEqual(subjects, ['after restart', 'next hop down']);
  assert.deepEqual(ph.queueFiles().filter((f) => f.endsWith(qid)), []);
});
