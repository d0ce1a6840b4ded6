// Deferral and retry: a next hop that is down leaves the item in the queue, mailq
// shows why, and a later queue run (`posthorn -q`) delivers it.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { quoteRe, sendToRemote, startNextHopDown } from '../helpers/e2e-setup';

test('deferred item shown by -bp, delivered by -q', async (t) => {
  const hop = await startNextHopDown(t);
  const { ph } = hop;

  const qid = await sendToRemote(ph.port, 'deferred', 'Waits in the queue.');

  // The sink is not running yet, so the first attempt is deferred.
  await ph.waitForLog(new RegExp(`${quoteRe(qid)}: to=<bob@remote\\.example>, .*stat=Deferred`), 30_000);
  assert.ok(ph.queueFiles().includes(`qf${qid}`), `qf${qid} missing: ${ph.queueFiles().join(' ')}`);
  assert.ok(ph.queueFiles().includes(`df${qid}`), `df${qid} missing: ${ph.queueFiles().join(' ')}`);

  const listing = await ph.run(['-bp']);
  assert.equal(listing.code, 0, listing.stderr);
  assert.match(listing.stdout, new RegExp(`^\\t\\t${quoteRe(ph.queueDir)} \\(1 request\\)$`, 'm'));
  assert.match(listing.stdout, new RegExp(`^${quoteRe(qid)}\\s+\\d+ .*<alice@posthorn\\.test>$`, 'm'));
  assert.match(listing.stdout, /^ {4}.* {3}\(Deferred: .*\)$/m);
  assert.match(listing.stdout, /^\t{5} <bob@remote\.example>$/m);
  assert.match(listing.stdout, /^\t\tTotal requests: 1$/m);

  const sink = await hop.startSink();
  const run = await ph.run(['-q']);
  assert.equal(run.code, 0, run.stderr);

  const [message] = await sink.waitForMessages(1, 20_000);
  assert.ok(message.data.toString('utf8').includes('Waits in the queue.'));
  assert.deepEqual(message.to, ['bob@remote.example']);
  assert.deepEqual(ph.queueFiles().filter((f) => f.endsWith(qid)), []);

  const empty = await ph.run(['-bp']);
  assert.equal(empty.code, 0, empty.stderr);
  assert.match(empty.stdout, new RegExp(`${quoteRe(ph.queueDir)} is empty`));
  assert.match(ph.logs(), new RegExp(`${quoteRe(qid)}: to=<bob@remote\\.example>, .*stat=Sent`));
});
