// An LMTP server replies to the final dot with 250, then 421 for one
// recipient, then 250 for the next. RFC 2033 section 4.2 gives one reply per
// accepted recipient, so the recipient after the 421 was delivered and must
// not be delivered again.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { daemonWithHop, submitTo } from './break10-hop';

test('LMTP 421 for one recipient', { timeout: 60_000 }, async (t) => {
  const { hop, ph } = await daemonWithHop(
    t,
    {
      ehlo: '250-hop.test\r\n250 PIPELINING\r\n',
      dot: (s) => s.write('250 2.1.5 alice ok\r\n421 4.3.2 bob closing\r\n250 2.1.5 carol ok\r\n'),
    },
    { lmtp: true, extra: ["define(`confTO_DATAFINAL', `3s')", "define(`confTO_RCPT', `3s')"] },
  );
  await submitTo(ph, ['alice@posthorn.test', 'bob@posthorn.test', 'carol@posthorn.test'], 'lmtp 421');
  const carol = (await ph.waitForLog(/to=(?:<[^>]*>,)*<carol@posthorn\.test>.*stat=.*/, 30_000))[0];
  t.diagnostic(ph.logs().split('\n').filter((l) => /stat=/.test(l)).join('\n'));
  // A queue run retries what is left, and carol must not get a second copy.
  const run = await ph.run(['-q']);
  assert.equal(run.code, 0, run.stderr);
  const copies = hop.messages.filter((m) => m.recipients.some((r) => /^carol(@|$)/.test(r))).length;
  assert.equal(copies, 1, `carol was delivered ${copies} times`);
  // The server sent 250 for carol after bob's 421, so she is delivered.
  assert.match(carol, /stat=Sent/, 'carol got 250 from the LMTP server but was deferred');
});
