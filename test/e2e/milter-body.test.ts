// A milter's replacement body reaches the next hop. The immediate delivery
// may send a small body from memory instead of reading the df
// (QueueStore.commit keepBody); a filter that rewrites the df must win.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { makeMessage, quoteRe, sendRaw, startSinkHop } from '../helpers/e2e-setup';
import { TestMilter, packet } from '../milter/test-milter';

test('milter replacement body reaches next hop', async (t) => {
  const milter = await new TestMilter({
    on: { E: () => [{ command: 'b', data: Buffer.from('Replaced by the filter.\r\n') }, packet('a')] },
  }).listen();
  t.after(() => milter.close());
  const { ph, sink } = await startSinkHop(t, { mc: [`INPUT_MAIL_FILTER(\`rewriter', \`S=${milter.socketSpec}')`] });

  const sent = await sendRaw({
    port: ph.port,
    from: 'alice@posthorn.test',
    to: ['bob@remote.example'],
    data: makeMessage({ from: 'alice@posthorn.test', to: 'bob@remote.example', subject: 'rewritten', body: 'Original body.' }),
  });
  assert.notEqual(sent.queueId, '');
  const [message] = await sink.waitForMessages(1, 20_000);
  const text = message.data.toString('utf8');
  assert.match(text, /^Subject: rewritten\r$/m);
  assert.match(text, /\r\n\r\nReplaced by the filter\.\r\n/);
  assert.doesNotMatch(text, /Original body/);
  await ph.waitForLog(new RegExp(`${quoteRe(sent.queueId)}: to=<bob@remote\\.example>, .*stat=Sent`), 20_000);
});

test('body sent from memory matches the df', async (t) => {
  const { ph, sink } = await startSinkHop(t);

  // Lines starting with a dot must be stuffed again on the way out.
  const lines = ['first line', '.leading dot', '..two dots', '', 'last line'];
  const sent = await sendRaw({
    port: ph.port,
    from: 'alice@posthorn.test',
    to: ['bob@remote.example'],
    data: makeMessage({ from: 'alice@posthorn.test', to: 'bob@remote.example', subject: 'from memory', body: lines.join('\n') }),
  });
  assert.notEqual(sent.queueId, '');
  const [message] = await sink.waitForMessages(1, 20_000);
  const text = message.data.toString('utf8');
  assert.ok(text.endsWith(`\r\n\r\n${lines.join('\r\n')}\r\n`), text);
});
