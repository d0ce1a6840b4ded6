// The daemon's commit journal end to end. A relayed message leaves no queue
// files. A message with a local recipient is committed as df and qf, a bounce
// is written out as df and qf first, and so is a message whose delivery takes
// longer than 5 s. A daemon stopped with SIGTERM leaves no open entry.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { quoteRe, sendRaw, sendToRemote, makeMessage, startPosthornWithDns, startSinkHop, startNextHopDown } from '../helpers/e2e-setup';
import { journalOpenIds } from '../helpers/journal';
import { waitFor } from '../helpers/process';
import { startSilentHop } from '../helpers/silent-hop';

/** Queue files other than journals and the lock pid file. */
function itemFiles(queueDir: string): string[] {
  return fs.readdirSync(queueDir).filter((n) => !n.startsWith('.'));
}

test('relayed messages go through the journal and leave no queue files', async (t) => {
  const { ph, sink } = await startSinkHop(t);
  const ids = await Promise.all(Array.from({ length: 10 }, (_, i) => sendToRemote(ph.port, `journal ${i}`)));
  await sink.waitForMessages(10, 20_000);
  for (const id of ids) await ph.waitForLog(new RegExp(`${quoteRe(id)}: to=<bob@remote\\.example>, .*stat=Sent`));
  assert.deepEqual(itemFiles(ph.queueDir), []);
  assert.deepEqual(journalOpenIds(ph.queueDir), []);
  // The received bytes are the ones sent (the body came from the journal's memory).
  const subjects = sink.messages.map((m) => /^Subject: (.*)\r$/m.exec(m.data.toString('utf8'))?.[1]).sort();
  assert.deepEqual(subjects, Array.from({ length: 10 }, (_, i) => `journal ${i}`).sort());
});

test('a rejected recipient is bounced from the written-out df', async (t) => {
  const { ph } = await startSinkHop(t, { sink: { rcptReply: () => '550 5.1.1 No such user' } });
  const sent = await sendRaw({
    port: ph.port,
    from: 'alice@posthorn.test',
    to: ['bob@remote.example'],
    data: makeMessage({ from: 'alice@posthorn.test', to: 'bob@remote.example', subject: 'bounce me', body: 'the original body' }),
  });
  assert.ok(sent.queueId !== '', sent.accepted);
  const bounce = await ph.waitForMailbox('alice', 'the original body', 20_000);
  assert.match(bounce, /^Subject: bounce me\r?$/m);
  await waitFor('the bounced item removed', () => !itemFiles(ph.queueDir).some((f) => f.endsWith(sent.queueId)), 20_000);
  assert.deepEqual(journalOpenIds(ph.queueDir), []);
});

test('local recipient skips the journal', async (t) => {
  const { ph } = await startSinkHop(t);
  const sent = await sendRaw({
    port: ph.port,
    from: 'carol@remote.example',
    to: ['alice@posthorn.test'],
    data: makeMessage({ from: 'carol@remote.example', to: 'alice@posthorn.test', subject: 'local one', body: 'local body' }),
  });
  assert.ok(sent.queueId !== '', sent.accepted);
  await ph.waitForMailbox('alice', 'local body', 20_000);
  const record = fs.readdirSync(ph.queueDir).filter((n) => n.startsWith('.jr.')).map((n) => fs.readFileSync(path.join(ph.queueDir, n), 'latin1')).join('');
  assert.ok(!record.includes(`P ${sent.queueId} `), 'no journal record for a local recipient');
  await waitFor('the delivered item removed', () => itemFiles(ph.queueDir).length === 0, 20_000);
  assert.deepEqual(journalOpenIds(ph.queueDir), []);
});

test('deferred item queued before its log line', async (t) => {
  const hop = await startNextHopDown(t);
  const { ph } = hop;
  const id = await sendToRemote(ph.port, 'deferred');
  await ph.waitForLog(new RegExp(`${quoteRe(id)}: to=<bob@remote\\.example>, .*stat=Deferred`), 20_000);
  assert.ok(fs.existsSync(path.join(ph.queueDir, `qf${id}`)), itemFiles(ph.queueDir).join(' '));
  assert.ok(fs.existsSync(path.join(ph.queueDir, `df${id}`)));
  const mailq = await ph.run(['-bp']);
  assert.match(mailq.stdout, new RegExp(quoteRe(id)));
  await ph.kill('SIGTERM');
  assert.deepEqual(fs.readdirSync(ph.queueDir).filter((n) => n.startsWith('.jr.')), []);
});

test('a delivery in flight over 5 s shows in mailq', { timeout: 60_000 }, async (t) => {
  const { port: mailerPort, sockets } = await startSilentHop(t);
  const { ph } = await startPosthornWithDns(t, { mailerPort });

  const id = await sendToRemote(ph.port, 'slow hop');
  await waitFor('a connection to the next hop', () => sockets.size > 0, 10_000);
  await waitFor('the item written out', () => fs.existsSync(path.join(ph.queueDir, `qf${id}`)), 15_000);
  // The entry is marked finished after the folder fsync that follows the rename.
  await waitFor('the journal entry finished', () => journalOpenIds(ph.queueDir).length === 0, 5_000);
  const mailq = await ph.run(['-bp']);
  assert.match(mailq.stdout, new RegExp(`^${quoteRe(id)}\\*`, 'm'));

  // The hop goes away: the delivery ends deferred and the item stays queued, unlocked.
  for (const socket of sockets) socket.destroy();
  await ph.waitForLog(new RegExp(`${quoteRe(id)}: to=<bob@remote\\.example>, .*stat=Deferred`), 20_000);
  await waitFor('the lock released', () => !fs.existsSync(path.join(ph.queueDir, `lf${id}`)), 10_000);
  assert.ok(fs.existsSync(path.join(ph.queueDir, `df${id}`)));
});
