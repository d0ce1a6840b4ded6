// A mail filter's header changes reach the next hop and its SMFIR_REPLYCODE
// text reaches the SMTP client. A line break inside them must not start a new
// header, end the header section, or split one SMTP reply into two.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { baseMc, startPosthorn } from '../helpers/posthorn';
import { rawSmtp } from '../helpers/clients';
import { startSink } from '../helpers/sink';
import { ACCEPT, indexedHeader, packet, replyCode, TestMilter, type Script } from '../milter/test-milter';

const SCRIPT = [
  'EHLO c.example',
  'MAIL FROM:<a@c.example>',
  'RCPT TO:<b@remote.test>',
  'DATA',
  'Subject: x\r\n\r\nbody\r\n.\r\n',
  'QUIT',
];

async function relayThroughFilter(t: { after(fn: () => unknown): void }, on: Partial<Record<string, Script>>) {
  const milter = await new TestMilter({ inet: true, on }).listen();
  t.after(() => milter.close());
  const sink = await startSink();
  t.after(() => sink.close());
  const ph = await startPosthorn({
    mc: baseMc({
      extra: [
        "define(`SMART_HOST', `[127.0.0.1]')",
        `define(\`RELAY_MAILER_ARGS', \`TCP $h ${sink.port}')`,
        `INPUT_MAIL_FILTER(\`hostile', \`S=${milter.socketSpec}, F=T')`,
      ],
    }),
    args: ['-O', 'DeliveryMode=queueonly'],
  });
  t.after(() => ph.stop());
  return { ph, sink };
}

/** Returns the header fields of a received message, one entry per field with its folds. */
function headerFields(data: Buffer): string[] {
  const text = data.toString('latin1');
  const end = text.indexOf('\r\n\r\n');
  return text.slice(0, end).split(/\r\n(?![ \t])/);
}

test('added header with CR LF', { timeout: 60_000 }, async (t) => {
  const { ph, sink } = await relayThroughFilter(t, {
    E: () => [packet('h', 'X-Scan', 'clean\r\nBcc: victim@remote.test\r\n\r\nInjected body'), ACCEPT],
  });
  const replies = await rawSmtp(ph.port, SCRIPT);
  assert.match(replies[5], /^250 2\.0\.0 /);
  assert.equal((await ph.run(['-qf'])).code, 0);
  const [message] = await sink.waitForMessages(1, 20_000);
  const fields = headerFields(message.data);
  assert.ok(!fields.some((f) => /^Bcc:/i.test(f)), `a new Bcc: field appeared:\n${fields.join('\n')}`);
  assert.match(message.data.toString('latin1'), /\r\n\r\nbody\r\n$/, 'the body is not the client\'s body');
});

test('changed header with LF', { timeout: 60_000 }, async (t) => {
  const { ph, sink } = await relayThroughFilter(t, {
    E: () => [indexedHeader('m', 1, 'Subject', 'new\nX-Injected: 1'), ACCEPT],
  });
  const replies = await rawSmtp(ph.port, SCRIPT);
  assert.match(replies[5], /^250 2\.0\.0 /);
  assert.equal((await ph.run(['-qf'])).code, 0);
  const [message] = await sink.waitForMessages(1, 20_000);
  const fields = headerFields(message.data);
  assert.ok(!fields.some((f) => /^X-Injected:/i.test(f)), `a new field appeared:\n${fields.join('\n')}`);
});

test('header name with CR LF', { timeout: 60_000 }, async (t) => {
  const { ph, sink } = await relayThroughFilter(t, {
    E: () => [packet('h', 'X-A: v\r\nSubject', 'forged'), ACCEPT],
  });
  const replies = await rawSmtp(ph.port, SCRIPT);
  assert.match(replies[5], /^250 2\.0\.0 /);
  assert.equal((await ph.run(['-qf'])).code, 0);
  const [message] = await sink.waitForMessages(1, 20_000);
  const subjects = headerFields(message.data).filter((f) => /^Subject:/i.test(f));
  assert.deepEqual(subjects, ['Subject: x']);
});

test('reply code with bare LF', { timeout: 60_000 }, async (t) => {
  const { ph } = await relayThroughFilter(t, { R: () => [replyCode('550 5.7.1 no\n250 2.1.5 ok')] });
  const replies = await rawSmtp(ph.port, ['EHLO c.example', 'MAIL FROM:<a@c.example>', 'RCPT TO:<b@remote.test>', 'RSET', 'QUIT']);
  // Every reply line the client reads must belong to the reply to RCPT,
  // because a second, separate reply would be read as the reply to RSET.
  assert.match(replies[3], /^550[ -]/);
  assert.ok(!replies[3].split('\n').some((l) => /^250/.test(l)), `reply to RCPT: ${JSON.stringify(replies[3])}`);
  assert.equal(replies[4], '250 2.0.0 Reset state');
});

test('reply code with bare CR', { timeout: 60_000 }, async (t) => {
  const { ph } = await relayThroughFilter(t, { R: () => [replyCode('550 5.7.1 no\r250 ok')] });
  const replies = await rawSmtp(ph.port, ['EHLO c.example', 'MAIL FROM:<a@c.example>', 'RCPT TO:<b@remote.test>', 'QUIT']);
  assert.match(replies[3], /^550 /);
  assert.ok(!replies[3].includes('\r'), `bare CR in the reply: ${JSON.stringify(replies[3])}`);
});
