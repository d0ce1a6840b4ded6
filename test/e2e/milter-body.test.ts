// A milter's replacement body reaches the next hop. The immediate delivery
// may send a small body from memory instead of reading the df
// (QueueStore.commit keepBody); a filter that rewrites the df must win.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { startDnsServer } from '../helpers/dns-server';
import { startSink } from '../helpers/sink';
import { baseMc, startPosthorn } from '../helpers/posthorn';
import { freePortOn } from '../helpers/process';
import { makeMessage, mxZone, quoteRe, sendRaw } from '../helpers/e2e-setup';
import { TestMilter, packet } from '../milter/test-milter';

test('milter replacement body reaches next hop', async (t) => {
  const mailerPort = await freePortOn(['127.0.0.2']);
  const sink = await startSink({ host: '127.0.0.2', port: mailerPort });
  t.after(() => sink.close());
  const dns = await startDnsServer({ zones: mxZone('remote.example', [[10, 'mx1.remote.example', '127.0.0.2']]) });
  t.after(() => dns.close());
  const milter = await new TestMilter({
    on: { E: () => [{ command: 'b', data: Buffer.from('Replaced by the filter.\r\n') }, packet('a')] },
  }).listen();
  t.after(() => milter.close());
  const mc = baseMc({ dnsPort: dns.port, mailerPort, extra: [`INPUT_MAIL_FILTER(\`rewriter', \`S=${milter.socketSpec}')`] });
  const ph = await startPosthorn({ mc });
  t.after(() => ph.stop());

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
  const mailerPort = await freePortOn(['127.0.0.2']);
  const sink = await startSink({ host: '127.0.0.2', port: mailerPort });
  t.after(() => sink.close());
  const dns = await startDnsServer({ zones: mxZone('remote.example', [[10, 'mx1.remote.example', '127.0.0.2']]) });
  t.after(() => dns.close());
  const ph = await startPosthorn({ mc: baseMc({ dnsPort: dns.port, mailerPort }) });
  t.after(() => ph.stop());

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
