// The open-relay battery: the classic address tricks sent from a client that may
// not relay (127.0.0.9). Every one must be rejected at RCPT, and nothing may reach
// the next hop, a sink that the MX of remote.example and the bracketed address
// [127.0.0.2] both point to.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { rawSmtp } from '../helpers/clients';
import { sleep } from '../helpers/process';
import { makeMessage, startSinkHop } from '../helpers/e2e-setup';

/** Reverse path and forward path of each relay attempt. */
const TRICKS: Array<[from: string, to: string]> = [
  ['<x@outside.example>', '<victim@remote.example>'],
  ['<x@outside.example>', '<victim@REMOTE.EXAMPLE>'],
  ['<x@outside.example>', '<victim@remote.example.>'],
  ['<x@outside.example>', '<victim%remote.example@posthorn.test>'],
  ['<x@outside.example>', '<victim%remote.example@mx.posthorn.test>'],
  ['<x@outside.example>', '<victim%remote.example@[127.0.0.1]>'],
  ['<x@outside.example>', '<"victim@remote.example"@posthorn.test>'],
  ['<x@outside.example>', '<"victim%remote.example"@posthorn.test>'],
  ['<x@outside.example>', '<@posthorn.test:victim@remote.example>'],
  ['<x@outside.example>', '<@posthorn.test,@mx.posthorn.test:victim@remote.example>'],
  ['<x@outside.example>', '<remote.example!victim@posthorn.test>'],
  ['<x@outside.example>', '<remote.example!victim>'],
  ['<x@outside.example>', '<victim%remote.example>'],
  ['<x@outside.example>', '<victim@remote.example@posthorn.test>'],
  ['<x@outside.example>', '<victim@[127.0.0.2]>'],
  ['<x@outside.example>', '<victim@[IPv6:::2]>'],
  ['<x@outside.example>', '<victim@127.0.0.2>'],
  ['<x@outside.example>', '<"victim@[127.0.0.2]">'],
  ['<x@outside.example>', 'victim@remote.example'],
  ['<>', '<victim@remote.example>'],
  ['<postmaster@posthorn.test>', '<victim@remote.example>'],
  ['<bob@posthorn.test>', '<victim@remote.example>'],
  ['<@posthorn.test:bob@posthorn.test>', '<victim@remote.example>'],
  ['<bob@[127.0.0.1]>', '<victim@remote.example>'],
];

test('open-relay battery is rejected', async (t) => {
  // Delivery runs in the background, so anything wrongly accepted would be sent on.
  const { ph, sink } = await startSinkHop(t, { args: ['-O', 'RefuseLA=0', '-O', 'QueueLA=0'] });

  const wronglyAccepted: string[] = [];
  for (const [from, to] of TRICKS) {
    const replies = await rawSmtp(
      ph.port,
      ['EHLO outside.example', `MAIL FROM:${from}`, `RCPT TO:${to}`, 'DATA',
        makeMessage({ from: 'x@outside.example', to: 'victim@remote.example', subject: `relay ${to}`, body: 'relay test' }) + '.\r\n',
        'QUIT'],
      { localAddress: '127.0.0.9' },
    );
    const rcpt = replies[3] ?? '(closed)';
    if (!/^5\d\d /.test(rcpt)) wronglyAccepted.push(`MAIL FROM:${from} RCPT TO:${to} -> ${rcpt}`);
    // DATA without an accepted recipient must not start a message.
    if (replies[4] !== undefined) assert.match(replies[4], /^503 /, `DATA after ${to}: ${replies[4]}`);
  }
  assert.deepEqual(wronglyAccepted, []);

  // A legitimate local message shows that delivery runs; the sink must still be empty.
  await rawSmtp(
    ph.port,
    ['EHLO outside.example', 'MAIL FROM:<x@outside.example>', 'RCPT TO:<bob@posthorn.test>', 'DATA',
      makeMessage({ from: 'x@outside.example', to: 'bob@posthorn.test', subject: 'sentinel', body: 'sentinel body' }) + '.\r\n',
      'QUIT'],
    { localAddress: '127.0.0.9' },
  );
  await ph.waitForMailbox('bob', 'sentinel body\n', 15_000);
  await sleep(500);
  assert.deepEqual(sink.messages.map((m) => m.to), []);
  assert.equal(sink.commands.filter((c) => /^RCPT/i.test(c)).length, 0);
});
