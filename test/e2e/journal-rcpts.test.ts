// One message through the commit journal to 100 recipients on two next hops:
// one rejects some recipients with 550, the other defers some with 451. The
// bounce carries the original body, the deferred recipients stay queued, and
// no recipient gets the message twice, also after the queue run that
// delivers the deferred ones.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { makeMessage, mxZone, quoteRe, sendRaw } from '../helpers/e2e-setup';
import { startDnsServer } from '../helpers/dns-server';
import { baseMc, startPosthorn } from '../helpers/posthorn';
import { freePortOn, waitFor } from '../helpers/process';
import { startSink } from '../helpers/sink';

test('100 recipients on two hops: bounces, deferrals, no duplicates', { timeout: 55_000 }, async (t) => {
  const mailerPort = await freePortOn(['127.0.0.1', '127.0.0.2']);
  let deferring = true;
  const num = (address: string) => Number(/^r(\d+)@/.exec(address)?.[1] ?? -1);
  const rejecting = await startSink({ host: '127.0.0.2', port: mailerPort, rcptReply: (a) => (num(a) % 5 === 0 ? '550 5.1.1 No such user' : '250 2.1.5 Ok') });
  t.after(() => rejecting.close());
  const slow = await startSink({ host: '127.0.0.1', port: mailerPort, rcptReply: (a) => (deferring && num(a) % 7 === 0 ? '451 4.3.0 Later' : '250 2.1.5 Ok') });
  t.after(() => slow.close());
  const dns = await startDnsServer({
    zones: { ...mxZone('remote.example', [[10, 'mx.remote.example', '127.0.0.2']]), ...mxZone('other.example', [[10, 'mx.other.example', '127.0.0.1']]) },
  });
  t.after(() => dns.close());
  const ph = await startPosthorn({ mc: baseMc({ dnsPort: dns.port, mailerPort }) });
  t.after(() => ph.stop());

  const rcpts = Array.from({ length: 100 }, (_, i) => `r${i}@${i < 50 ? 'remote' : 'other'}.example`);
  const original = 'The original body of the many-recipient message.';
  const sent = await sendRaw({
    port: ph.port,
    from: 'alice@posthorn.test',
    to: rcpts,
    data: makeMessage({ from: 'alice@posthorn.test', to: 'undisclosed-recipients:;', subject: 'many rcpts', body: original }),
  });
  const id = sent.queueId;
  assert.notEqual(id, '', sent.replies.slice(-3).join(' | '));

  const bounced = rcpts.filter((a) => a.endsWith('remote.example') && num(a) % 5 === 0);
  const deferred = rcpts.filter((a) => a.endsWith('other.example') && num(a) % 7 === 0);
  const dsn = await ph.waitForMailbox('alice', original, 20_000);
  for (const a of bounced) assert.match(dsn, new RegExp(`<${quoteRe(a)}>`), a);
  await ph.waitForLog(new RegExp(`${quoteRe(id)}: to=.*stat=Deferred`), 10_000);
  await waitFor('the item unlocked', () => !fs.existsSync(path.join(ph.queueDir, `lf${id}`)), 10_000);
  const qf = fs.readFileSync(path.join(ph.queueDir, `qf${id}`), 'utf8');
  const open = [...qf.matchAll(/Xstate=deferred\n(?:[^R\n][^\n]*\n)*R[A-Z]*:<([^>]+)>/g)].map((m) => m[1]);
  assert.deepEqual(open.sort(), [...deferred].sort());

  deferring = false;
  const run = await ph.run(['-q']);
  assert.equal(run.code, 0, run.stderr);
  await waitFor('the item delivered', () => !ph.queueFiles().some((n) => n.endsWith(id)), 15_000);

  const got = [...rejecting.messages, ...slow.messages].flatMap((m) => m.to);
  const twice = got.filter((a, i) => got.indexOf(a) !== i);
  assert.deepEqual(twice, [], 'recipients that got the message twice');
  assert.deepEqual(got.sort(), rcpts.filter((a) => !bounced.includes(a)).sort());
  for (const m of [...rejecting.messages, ...slow.messages]) assert.ok(m.data.toString('latin1').includes(original));
  assert.equal(ph.mailbox('alice').split('\nFrom ').length, 1, 'one bounce');
});
