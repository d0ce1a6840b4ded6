// DeliveryMode=interactive: as in sendmail (checked against 8.17 on
// loopback: its 250 to DATA came only after the next hop had replied to the
// final dot), the daemon delivers before it replies. With
// SuperSafe=Interactive a message the next hop took is never synced, and one
// that stays queued is synced before the reply.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';

import { StepClient } from '../helpers/clients';
import { startNextHopDown, startSinkHop, quoteRe } from '../helpers/e2e-setup';
import { waitFor } from '../helpers/process';

const INTERACTIVE = ['-O', 'DeliveryMode=interactive', '-O', 'RefuseLA=0', '-O', 'QueueLA=0'];

/** Sends one message step by step and returns the reply to its final dot. */
async function sendStepwise(port: number, subject: string): Promise<{ client: StepClient; accepted: string }> {
  const client = await StepClient.connect(port);
  assert.match(await client.reply(), /^220 /);
  assert.match(await client.command('EHLO client.posthorn.test'), /^250/);
  assert.match(await client.command('MAIL FROM:<alice@posthorn.test>'), /^250 /);
  assert.match(await client.command('RCPT TO:<bob@remote.example>'), /^250 /);
  assert.match(await client.command('DATA'), /^354 /);
  client.send(`Subject: ${subject}\r\n\r\n${subject}\r\n.\r\n`);
  return { client, accepted: await client.reply(30_000) };
}

for (const superSafe of ['True', 'Interactive']) {
  test(`SuperSafe=${superSafe}: the next hop has the message before the 250`, async (t) => {
    const { ph, sink } = await startSinkHop(t, { args: [...INTERACTIVE, '-O', `SuperSafe=${superSafe}`] });
    const { client, accepted } = await sendStepwise(ph.port, 'first');
    const id = /^250 2\.0\.0 (\S+) Message accepted for delivery$/.exec(accepted)?.[1];
    assert.ok(id, accepted);
    // Read at the moment the 250 arrived: the delivery was over by then.
    assert.equal(sink.messages.length, 1, 'delivered before the reply');
    assert.match(sink.messages[0].data.toString('latin1'), /^Subject: first$/m);
    assert.equal(fs.readdirSync(ph.queueDir).filter((n) => n.endsWith(id)).length, 0, 'nothing left in the queue');
    assert.match(await client.command('QUIT'), /^221 /);

    // The log has the receipt first, then the delivery, both before the reply.
    await waitFor('the delivery record', () => new RegExp(`${id}: to=<bob@remote\\.example>.*stat=Sent`).test(ph.logs()));
    const log = ph.logs();
    assert.ok(log.indexOf(`${id}: from=<alice@posthorn.test>`) < log.indexOf(`${id}: to=<bob@remote.example>`));
  });
}

test('SuperSafe=Interactive: a deferred message is queued, and mailq shows it', async (t) => {
  const hop = await startNextHopDown(t, { args: [...INTERACTIVE, '-O', 'SuperSafe=Interactive'] });
  const { client, accepted } = await sendStepwise(hop.ph.port, 'later');
  const id = /^250 2\.0\.0 (\S+) Message accepted for delivery$/.exec(accepted)?.[1];
  assert.ok(id, accepted);
  // The attempt was made and deferred before the reply.
  assert.match(hop.ph.logs(), new RegExp(`${quoteRe(id)}: to=<bob@remote\\.example>.*stat=Deferred`));
  assert.deepEqual(fs.readdirSync(hop.ph.queueDir).filter((n) => n.endsWith(id)).sort(), [`df${id}`, `qf${id}`]);
  assert.match(await client.command('QUIT'), /^221 /);

  const listing = await hop.ph.run(['-bp']);
  assert.match(listing.stdout, new RegExp(`^${quoteRe(id)}\\s`, 'm'));

  // The next queue run delivers it.
  const sink = await hop.startSink();
  const run = await hop.ph.run(['-q']);
  assert.equal(run.code, 0, run.stderr);
  const [message] = await sink.waitForMessages(1, 30_000);
  assert.match(message.data.toString('latin1'), /^Subject: later$/m);
});

test('-bs in interactive mode delivers each message before its 250', async (t) => {
  const { ph, sink } = await startSinkHop(t, { args: INTERACTIVE });
  const input = [
    'EHLO client.posthorn.test',
    'MAIL FROM:<alice@posthorn.test>',
    'RCPT TO:<bob@remote.example>',
    'DATA',
    'Subject: over stdin',
    '',
    'body',
    '.',
    'QUIT',
    '',
  ].join('\r\n');
  const result = await ph.run(['-bs', '-odi'], input);
  assert.equal(result.code, 0, result.stderr);
  assert.match(result.stdout, /^250 2\.0\.0 \S+ Message accepted for delivery\r?$/m);
  const [message] = await sink.waitForMessages(1, 30_000);
  assert.match(message.data.toString('latin1'), /^Subject: over stdin$/m);
  assert.equal(sink.messages.length, 1, 'delivered once');
});

test('-t -odi with SuperSafe=Interactive delivers and leaves nothing queued', async (t) => {
  const { ph, sink } = await startSinkHop(t, { args: ['-O', 'RefuseLA=0', '-O', 'QueueLA=0'] });
  const result = await ph.run(['-odi', '-OSuperSafe=Interactive', '-t', '-i'], 'To: bob@remote.example\nSubject: piped\n\nbody\n');
  assert.equal(result.code, 0, result.stderr);
  const [message] = await sink.waitForMessages(1, 30_000);
  assert.match(message.data.toString('latin1'), /^Subject: piped$/m);
  assert.deepEqual(fs.readdirSync(ph.queueDir).filter((n) => /^(qf|df|tf)/.test(n)), []);
});
