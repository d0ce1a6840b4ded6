// ETRN starts a real queue run. An item deferred while its next hop was down
// is delivered once the hop is up and a client sends ETRN for its host. Only
// the items with a recipient at that host are run.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { rawSmtp } from '../helpers/clients';
import { quoteRe, sendToRemote, startNextHopDown, type DownHop } from '../helpers/e2e-setup';
import type { Sink } from '../helpers/sink';

// LogLevel 10 adds the line that ends each queue run ETRN started.
const LOG_LEVEL = ['-O', 'LogLevel=10'];

/**
 * Queues one message for bob@remote.example while the hop is down, and
 * returns its queue id once the failed attempt has released the item. The
 * Deferred line is logged before the lock is dropped, and a queue run skips
 * a locked item.
 */
async function queueDeferred(hop: DownHop, subject: string): Promise<string> {
  const id = await sendToRemote(hop.ph.port, subject);
  await hop.ph.waitForLog(new RegExp(`${quoteRe(id)}: to=<bob@remote\\.example>, .*stat=Deferred`), 30_000);
  const lock = path.join(hop.ph.queueDir, `lf${id}`);
  for (let i = 0; i < 200 && fs.existsSync(lock); i++) await new Promise((r) => setTimeout(r, 50));
  assert.equal(fs.existsSync(lock), false, `lf${id} still there 10 s after the Deferred line`);
  return id;
}

/** Sends ETRN with `parameter` in a session of its own and returns the reply to it. */
async function etrn(port: number, parameter: string): Promise<string> {
  const replies = await rawSmtp(port, ['EHLO client.posthorn.test', `ETRN ${parameter}`, 'QUIT']);
  return replies[2];
}

function subjects(sink: Sink): string[] {
  return sink.messages.map((m) => /^Subject: (.*)$/m.exec(m.data.toString('latin1'))?.[1].trim() ?? '');
}

test('ETRN delivers the deferred item', async (t) => {
  const hop = await startNextHopDown(t, { args: LOG_LEVEL });
  const id = await queueDeferred(hop, 'etrn host');
  const sink = await hop.startSink();

  assert.equal(await etrn(hop.ph.port, 'remote.example'), '250 2.0.0 Queuing for node remote.example started');
  await sink.waitForMessages(1, 30_000);
  assert.deepEqual(subjects(sink), ['etrn host']);
  assert.deepEqual(sink.messages[0].to, ['bob@remote.example']);

  await hop.ph.waitForLog(/: localhost \[127\.0\.0\.1\]: ETRN remote\.example$/m);
  await hop.ph.waitForLog(new RegExp(`${quoteRe(id)}: to=<bob@remote\\.example>, .*stat=Sent`));
  await hop.ph.waitForLog(/queue run for ETRN remote\.example ended, 1 item\(s\) scheduled/);
});

test('ETRN for another host delivers nothing', async (t) => {
  const hop = await startNextHopDown(t, { args: LOG_LEVEL });
  const id = await queueDeferred(hop, 'etrn other');
  const sink = await hop.startSink();

  assert.equal(await etrn(hop.ph.port, 'other.example'), '250 2.0.0 Queuing for node other.example started');
  await hop.ph.waitForLog(/queue run for ETRN other\.example ended, 0 item\(s\) scheduled/);
  assert.equal(sink.messages.length, 0);
  const mailq = await hop.ph.run(['-bp']);
  assert.match(mailq.stdout, new RegExp(quoteRe(id)));

  // The @domain form matches the domain without the "@", so it delivers now.
  assert.equal(await etrn(hop.ph.port, '@remote.example'), '250 2.0.0 Queuing for node @remote.example started');
  await sink.waitForMessages(1, 30_000);
  assert.deepEqual(subjects(sink), ['etrn other']);
});

test('ETRN #mqueue runs the whole queue', async (t) => {
  const hop = await startNextHopDown(t, { args: LOG_LEVEL });
  await queueDeferred(hop, 'etrn group');
  const sink = await hop.startSink();

  assert.equal(await etrn(hop.ph.port, '#mqueue'), '250 2.0.0 Queuing for queue group mqueue started');
  await sink.waitForMessages(1, 30_000);
  assert.deepEqual(subjects(sink), ['etrn group']);
});
