// The daemon with the test milter: the commands filters receive, their
// replies as SMTP replies and "Milter:" log lines, end-of-message changes,
// and filter failures handled per F= and T=.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { baseMc, startPosthorn, type Posthorn } from '../helpers/posthorn';
import { rawSmtp } from '../helpers/clients';
import { makeMessage } from '../helpers/e2e-setup';
import { waitFor } from '../helpers/process';
import {
  DISCARD, REJECT, TEMPFAIL, TestMilter, indexedHeader, packet, replyCode, type TestMilterOptions,
} from '../milter/test-milter';

type T = { after(fn: () => Promise<void> | void): void };

async function startMilter(t: T, options: TestMilterOptions = {}): Promise<TestMilter> {
  const milter = await new TestMilter(options).listen();
  t.after(() => milter.close());
  return milter;
}

async function startWithFilters(t: T, filters: Array<[string, string]>, args: string[] = []): Promise<Posthorn> {
  const extra = filters.map(([name, equates]) => `INPUT_MAIL_FILTER(\`${name}', \`${equates}')`);
  const ph = await startPosthorn({ mc: baseMc({ extra }), args });
  t.after(() => ph.stop());
  return ph;
}

const MESSAGE = makeMessage({
  from: 'carol@client.example',
  to: 'alice@posthorn.test',
  subject: 'milter test',
  body: 'Hello through the filter.',
});

function transaction(message = MESSAGE): string[] {
  return ['EHLO client.example', 'MAIL FROM:<carol@client.example> SIZE=100', 'RCPT TO:<alice@posthorn.test>', 'DATA', message + '.\r\n', 'QUIT'];
}

test('milter sees every stage in order', async (t) => {
  const milter = await startMilter(t);
  const ph = await startWithFilters(t, [['test', `S=${milter.socketSpec}`]]);
  const replies = await rawSmtp(ph.port, transaction());
  assert.match(replies[5], /^250 2\.0\.0 \S+ Message accepted for delivery/);
  await ph.waitForMailbox('alice', 'Hello through the filter.');
  // The session's QUIT reaches the filter on its own schedule, which may be after the local delivery.
  await waitFor('the filter sent QUIT', () => milter.lastCommands().endsWith('Q'), 5_000).catch(() => undefined);

  const letters = milter.lastCommands();
  assert.match(letters, /^OCHMRTL+NBEQ$/);
  const connect = milter.packets('C')[0].data;
  assert.ok(connect.includes(Buffer.from('\x004')), 'family byte 4 after the host name');
  assert.ok(connect.toString('latin1').endsWith('127.0.0.1\0'));
  assert.deepEqual(milter.packets('M')[0].data.toString('latin1').split('\0'), ['<carol@client.example>', 'SIZE=100', '']);
  const headers = milter.packets('L').map((p) => p.data.toString('latin1').split('\0')[0]);
  assert.deepEqual(headers, ['From', 'To', 'Subject', 'Date', 'Message-ID']);
  const macrosAtMail = milter.packets('D').find((p) => p.data[0] === 'M'.charCodeAt(0));
  assert.ok(macrosAtMail?.data.toString('latin1').includes('i\0'), 'queue id macro i sent with MAIL');
  assert.equal(milter.packets('B')[0].data.toString('latin1'), 'Hello through the filter.\r\n');
});

test('milter rejects at each command stage', async (t) => {
  const milter = await startMilter(t, {
    on: {
      M: (data) => (data.toString().startsWith('<bad@') ? [REJECT] : undefined),
      R: (data) => {
        const rcpt = data.toString();
        if (rcpt.startsWith('<temp@')) return [TEMPFAIL];
        if (rcpt.startsWith('<custom@')) return [replyCode('553 5.7.0 Go away, custom')];
        if (rcpt.startsWith('<percent@')) return [replyCode('550 5.7.0 100% wrong')];
        return undefined;
      },
    },
  });
  const ph = await startWithFilters(t, [['test', `S=${milter.socketSpec}`]], ['-O', 'DeliveryMode=queueonly']);
  const replies = await rawSmtp(ph.port, [
    'EHLO client.example',
    'MAIL FROM:<bad@client.example>',
    'MAIL FROM:<good@client.example>',
    'RCPT TO:<temp@posthorn.test>',
    'RCPT TO:<custom@posthorn.test>',
    'RCPT TO:<percent@posthorn.test>',
    'QUIT',
  ]);
  assert.equal(replies[2], '550 5.7.1 Command rejected');
  assert.match(replies[3], /^250 2\.1\.0 /);
  assert.equal(replies[4], '451 4.3.2 Please try again later');
  assert.equal(replies[5], '553 5.7.0 Go away, custom');
  assert.equal(replies[6], '550 5.7.1 Command rejected');
  await ph.waitForLog(/Milter: from=<bad@client\.example>, reject=550 5\.7\.1 Command rejected/);
  await ph.waitForLog(/Milter: to=<temp@posthorn\.test>, reject=451 4\.3\.2 Please try again later/);
  // The rejected MAIL left the filter inside a message, so the next MAIL sends abort first.
  assert.match(milter.lastCommands(), /^OCHMAM/);
});

test('milter reject at end of message', async (t) => {
  const milter = await startMilter(t, { on: { E: () => [REJECT] } });
  const ph = await startWithFilters(t, [['test', `S=${milter.socketSpec}`]], ['-O', 'DeliveryMode=queueonly']);
  const replies = await rawSmtp(ph.port, transaction());
  assert.equal(replies[5], '554 5.7.1 Command rejected');
  await ph.waitForLog(/Milter: data, reject=554 5\.7\.1 Command rejected/);
  assert.deepEqual(ph.queueFiles(), []);
});

test('milter tempfail and discard at end of message', async (t) => {
  let count = 0;
  const milter = await startMilter(t, { on: { E: () => (++count === 1 ? [TEMPFAIL] : [DISCARD]) } });
  const ph = await startWithFilters(t, [['test', `S=${milter.socketSpec}`]], ['-O', 'DeliveryMode=queueonly']);
  const first = await rawSmtp(ph.port, transaction());
  assert.equal(first[5], '451 4.3.2 Please try again later');
  const second = await rawSmtp(ph.port, transaction());
  assert.match(second[5], /^250 2\.0\.0 \S+ Message accepted for delivery/);
  await ph.waitForLog(/Milter: data, discard/);
  assert.deepEqual(ph.queueFiles(), []);
});

test('milter connect and helo rejections', async (t) => {
  const milter = await startMilter(t, {
    on: {
      C: (data) => (data.toString('latin1').includes('127.0.0.9') ? [REJECT] : undefined),
      H: (data) => (data.toString().startsWith('bad.example') ? [REJECT] : undefined),
    },
  });
  const ph = await startWithFilters(t, [['test', `S=${milter.socketSpec}`]]);
  const atConnect = await rawSmtp(ph.port, ['MAIL FROM:<a@client.example>', 'QUIT'], { localAddress: '127.0.0.9' });
  assert.equal(atConnect[0], '554 mx.posthorn.test ESMTP not accepting messages');
  assert.equal(atConnect[1], '550 5.0.0 Command rejected');

  const atHelo = await rawSmtp(ph.port, ['HELO bad.example', 'MAIL FROM:<a@client.example>', 'QUIT']);
  assert.match(atHelo[1], /^250 mx\.posthorn\.test Hello /);
  assert.equal(atHelo[2], '550 5.0.0 Command rejected');
  await ph.waitForLog(/Milter: connect: host=\S+, addr=127\.0\.0\.9, rejecting commands/);
});

test('milter 421 reply closes the session', async (t) => {
  const milter = await startMilter(t, { on: { R: () => [replyCode('421 4.7.0 Filter shutting down')] } });
  const ph = await startWithFilters(t, [['test', `S=${milter.socketSpec}`]], ['-O', 'DeliveryMode=queueonly']);
  const replies = await rawSmtp(ph.port, ['EHLO client.example', 'MAIL FROM:<a@client.example>', 'RCPT TO:<alice@posthorn.test>', 'NOOP']);
  assert.equal(replies[3], '421 4.7.0 Filter shutting down');
  assert.equal(replies.length, 4, 'no reply after the 421');
});

test('milter end-of-message changes', async (t) => {
  const milter = await startMilter(t, {
    on: {
      E: () => [
        packet('h', 'X-Added', 'yes'),
        indexedHeader('i', 0, 'X-Top', 'first'),
        indexedHeader('m', 1, 'Subject', 'changed subject'),
        packet('+', '<bob@posthorn.test>'),
        packet('-', '<alice@posthorn.test>'),
        packet('2', '<dave@posthorn.test>', 'NOTIFY=NEVER'),
        packet('e', '<new-sender@client.example>'),
        packet('b', 'Replaced body.\r\n'),
        packet('a'),
      ],
    },
  });
  const ph = await startWithFilters(t, [['test', `S=${milter.socketSpec}`]]);
  const replies = await rawSmtp(ph.port, transaction());
  assert.match(replies[5], /^250 /);

  const bob = await ph.waitForMailbox('bob', 'Replaced body.');
  assert.match(bob, /^From new-sender@client\.example /);
  assert.match(bob, /^X-Top: first$/m);
  assert.match(bob, /^X-Added: yes$/m);
  assert.match(bob, /^Subject: changed subject$/m);
  assert.doesNotMatch(bob, /Hello through the filter/);
  await ph.waitForMailbox('dave', 'Replaced body.');
  assert.equal(ph.mailbox('alice'), '');
});

test('milter quarantine makes an hf file', async (t) => {
  const milter = await startMilter(t, { on: { E: () => [packet('q', 'looks odd'), packet('c')] } });
  const ph = await startWithFilters(t, [['test', `S=${milter.socketSpec}`]], ['-O', 'DeliveryMode=queueonly']);
  await rawSmtp(ph.port, transaction());
  const files = ph.queueFiles();
  assert.ok(files.some((f) => f.startsWith('hf')), files.join(' '));
  const hf = fs.readFileSync(path.join(ph.queueDir, files.find((f) => f.startsWith('hf')) as string), 'utf8');
  assert.match(hf, /^qlooks odd$/m);
  await ph.waitForLog(/milter=test, quarantine=looks odd/);
});

test('second milter sees the first one\'s header', async (t) => {
  const first = await startMilter(t, { on: { E: () => [packet('h', 'X-First', 'one'), packet('a')] } });
  const second = await startMilter(t, { inet: true });
  const ph = await startWithFilters(t, [['one', `S=${first.socketSpec}`], ['two', `S=${second.socketSpec}`]]);
  await rawSmtp(ph.port, transaction());
  await ph.waitForMailbox('alice', 'Hello through the filter.');
  const names = second.packets('L').map((p) => p.data.toString('latin1').split('\0')[0]);
  assert.equal(names[names.length - 1], 'X-First');
});

test('unavailable milter per F= flag', async (t) => {
  const missing = 'unix:/nonexistent/milter.sock';
  const ph = await startWithFilters(t, [['r', `S=${missing}, F=R`]], ['-O', 'DeliveryMode=queueonly']);
  const rejected = await rawSmtp(ph.port, ['EHLO client.example', 'MAIL FROM:<a@client.example>', 'QUIT']);
  assert.equal(rejected[0], '554 mx.posthorn.test ESMTP not accepting messages');
  assert.equal(rejected[2], '550 5.0.0 Command rejected');
  await ph.waitForLog(/Milter \(r\): error connecting to filter/);
});

test('unavailable milter with F=T tempfails and without flag is ignored', async (t) => {
  const missing = 'unix:/nonexistent/milter.sock';
  const ph = await startWithFilters(t, [['t', `S=${missing}, F=T`]], ['-O', 'DeliveryMode=queueonly']);
  const tempfailed = await rawSmtp(ph.port, ['EHLO client.example', 'MAIL FROM:<a@client.example>', 'QUIT']);
  assert.match(tempfailed[0], /^220 /);
  assert.equal(tempfailed[2], '451 4.3.2 Please try again later');

  const ignored = await startWithFilters(t, [['none', `S=${missing}`]], ['-O', 'DeliveryMode=queueonly']);
  const replies = await rawSmtp(ignored.port, transaction());
  assert.match(replies[5], /^250 2\.0\.0 /);
});

test('slow milter times out per T=R', async (t) => {
  const milter = await startMilter(t, { on: { R: () => [{ delayMs: 3000 }, packet('c')] } });
  const ph = await startWithFilters(t, [['slow', `S=${milter.socketSpec}, F=T, T=R:1s`]], ['-O', 'DeliveryMode=queueonly']);
  const replies = await rawSmtp(ph.port, transaction());
  assert.equal(replies[3], '451 4.3.2 Please try again later');
  await ph.waitForLog(/Milter \(slow\): timeout waiting for a reply/);
  await ph.waitForLog(/Milter \(slow\): to error state/);
});

test('oversized and malformed milter packets', async (t) => {
  const huge = Buffer.from([0x01, 0x00, 0x00, 0x00, 0x63]);
  const milter = await startMilter(t, {
    on: {
      M: () => [{ raw: huge }],
      E: () => [packet('Z', 'what')],
    },
  });
  const ph = await startWithFilters(t, [['bad', `S=${milter.socketSpec}, F=R`]], ['-O', 'DeliveryMode=queueonly']);
  const replies = await rawSmtp(ph.port, ['EHLO client.example', 'MAIL FROM:<a@client.example>', 'QUIT']);
  assert.equal(replies[2], '550 5.7.1 Command rejected');
  await ph.waitForLog(/Milter \(bad\): milter packet length 16777216 exceeds/);
});

test('milter closing its socket at end of message tempfails', async (t) => {
  const milter = await startMilter(t, { on: { E: () => [{ close: true }] } });
  const ph = await startWithFilters(t, [['gone', `S=${milter.socketSpec}, F=T`]], ['-O', 'DeliveryMode=queueonly']);
  const replies = await rawSmtp(ph.port, transaction());
  assert.equal(replies[5], '451 4.3.2 Please try again later');
  assert.deepEqual(ph.queueFiles(), []);
});
