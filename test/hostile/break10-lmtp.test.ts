// A hostile LMTP server behind FEATURE(`local_lmtp', `[IPC]', `TCP ...'):
// it replies to the final dot with fewer or more replies than recipients, or
// closes after the first. Each recipient must get its own outcome once: one
// that got 250 is never delivered again.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { Posthorn } from '../helpers/posthorn';
import { daemonWithHop, submitTo, type Hop, type HopScript } from './break10-hop';

const LHLO = '250-hop.test\r\n250 PIPELINING\r\n';

function viaLmtp(t: { after(fn: () => Promise<void>): void }, script: HopScript): Promise<{ hop: Hop; ph: Posthorn }> {
  const extra = ["define(`confTO_DATAFINAL', `3s')", "define(`confTO_RCPT', `3s')"];
  return daemonWithHop(t, { ehlo: LHLO, ...script }, { lmtp: true, extra });
}

function submit(ph: Posthorn, recipients: string[]): Promise<void> {
  return submitTo(ph, recipients, 'hostile lmtp');
}

function copiesFor(hop: Hop, rcpt: string): number {
  return hop.messages.filter((m) => m.recipients.includes(rcpt)).length;
}

test('LMTP close after first reply', { timeout: 60_000 }, async (t) => {
  let transactions = 0;
  const { hop, ph } = await viaLmtp(t, {
    dot: (s, m) => {
      transactions += 1;
      // The first transaction gets a reply for its first recipient only; then the server goes away.
      if (transactions === 1) {
        s.write(`250 2.1.5 <${m.recipients[0]}> delivered\r\n`);
        s.socket.destroy();
        return;
      }
      for (const r of m.recipients) s.write(`250 2.1.5 <${r}> delivered\r\n`);
    },
  });
  await submit(ph, ['alice@posthorn.test', 'bob@posthorn.test']);
  const first = (await ph.waitForLog(/to=(?:<[^>]*>,)*<alice@posthorn\.test>.*stat=.*/))[0];

  const run = await ph.run(['-q']);
  assert.equal(run.code, 0, run.stderr);
  await ph.waitForLog(/to=(?:<[^>]*>,)*<bob@posthorn\.test>.*stat=Sent/);
  assert.equal(copiesFor(hop, 'alice'), 1, `alice was delivered again after her 250; first attempt: ${first}`);
  assert.match(first, /to=<alice@posthorn\.test>, .*stat=Sent/);
});

test('LMTP fewer replies than recipients', { timeout: 60_000 }, async (t) => {
  const { hop, ph } = await viaLmtp(t, {
    dot: (s, m) => {
      s.write(`250 2.1.5 <${m.recipients[0]}> delivered\r\n`);
      if (m.recipients.length === 1) return;
      // No reply for the second recipient: the client waits out Timeout.datafinal.
    },
  });
  await submit(ph, ['alice@posthorn.test', 'bob@posthorn.test']);
  const first = await ph.waitForLog(/to=(?:<[^>]*>,)*<alice@posthorn\.test>.*stat=.*/, 20_000);
  const second = await ph.waitForLog(/to=(?:<[^>]*>,)*<bob@posthorn\.test>.*stat=.*/, 20_000);
  t.diagnostic(first[0]);
  t.diagnostic(second[0]);
  assert.match(first[0], /stat=Sent/);
  assert.match(second[0], /stat=Deferred/);
  assert.equal(copiesFor(hop, 'alice'), 1);
});

test('LMTP mixed and extra replies', { timeout: 60_000 }, async (t) => {
  const { ph } = await viaLmtp(t, {
    dot: (s) => {
      s.write('250 2.1.5 alice ok\r\n452 4.2.2 bob full\r\n550 5.1.1 carol unknown\r\n250 2.1.5 extra\r\n250 2.1.5 extra\r\n');
    },
  });
  await submit(ph, ['alice@posthorn.test', 'bob@posthorn.test', 'carol@posthorn.test']);
  const a = (await ph.waitForLog(/to=(?:<[^>]*>,)*<alice@posthorn\.test>.*stat=.*/))[0];
  const b = (await ph.waitForLog(/to=(?:<[^>]*>,)*<bob@posthorn\.test>.*stat=.*/))[0];
  const c = (await ph.waitForLog(/to=(?:<[^>]*>,)*<carol@posthorn\.test>.*stat=.*/))[0];
  t.diagnostic([a, b, c].join('\n'));
  assert.match(a, /stat=Sent/);
  assert.match(b, /stat=Deferred/);
  assert.match(c, /stat=User unknown|stat=Service unavailable/);
});
