// A next hop that replies 421 inside a pipelined transaction is shutting the
// session down (RFC 5321 section 3.8). sendmail's reply() sends QUIT on a 421
// and marks the session shut down, so the transaction ends there and its
// status is the 421 text. The message must not go on over that session.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { Posthorn } from '../helpers/posthorn';
import { daemonWithHop, submitTo, type Hop, type HopScript } from './break10-hop';

function viaHop(t: { after(fn: () => Promise<void>): void }, script: HopScript): Promise<{ hop: Hop; ph: Posthorn }> {
  const extra = ["define(`confTO_RCPT', `5s')", "define(`confTO_DATAINIT', `5s')", "define(`confTO_DATAFINAL', `5s')"];
  return daemonWithHop(t, script, { extra });
}

function submit(ph: Posthorn, recipients: string[]): Promise<void> {
  return submitTo(ph, recipients, '421 hop');
}

test('421 to MAIL then close', { timeout: 60_000 }, async (t) => {
  const { ph } = await viaHop(t, {
    command: (verb, _line, s) => {
      if (verb !== 'MAIL') return false;
      s.socket.end('421 4.3.2 shutting down for maintenance\r\n');
      return true;
    },
  });
  await submit(ph, ['carol@remote.test']);
  const line = (await ph.waitForLog(/to=<carol@remote\.test>.*stat=.*/, 30_000))[0];
  t.diagnostic(line);
  assert.match(line, /stat=Deferred: 421 4\.3\.2 shutting down for maintenance/);
});

test('421 to one RCPT', { timeout: 60_000 }, async (t) => {
  // The hop keeps the connection open after its 421.
  const { hop, ph } = await viaHop(t, {
    command: (verb, line, s) => {
      if (verb !== 'RCPT' || !line.includes('dave@')) return false;
      s.recipients.pop();
      s.write('421 4.3.2 shutting down\r\n');
      return true;
    },
  });
  await submit(ph, ['carol@remote.test', 'dave@remote.test']);
  const line = (await ph.waitForLog(/to=(?:<[^>]*>,)*<dave@remote\.test>.*stat=.*/, 30_000))[0];
  await new Promise((resolve) => setTimeout(resolve, 500));
  const stats = ph.logs().split('\n').filter((l) => /stat=/.test(l));
  t.diagnostic(stats.join('\n'));
  assert.match(line, /stat=Deferred: 421 4\.3\.2 shutting down/);
  assert.equal(hop.messages.length, 0, 'the message went on over a session the hop was shutting down');
});

test('421 to DATA after every RCPT failed', { timeout: 60_000 }, async (t) => {
  // The first transaction's only recipient is rejected, and the pipelined DATA
  // gets 421 while the hop keeps the connection open: the session is closing
  // and must not carry the next message.
  let transactions = 0;
  const { hop, ph } = await viaHop(t, {
    command: (verb, line, s) => {
      if (verb === 'MAIL') transactions += 1;
      if (transactions !== 1) return false;
      if (verb === 'RCPT') {
        s.recipients.pop();
        s.write('550 5.1.1 no such user\r\n');
        return true;
      }
      if (verb === 'DATA') {
        s.write('421 4.3.2 shutting down\r\n');
        return true;
      }
      return false;
    },
  });
  await submit(ph, ['erin@remote.test']);
  await ph.waitForLog(/to=<erin@remote\.test>.*stat=User unknown/, 30_000);
  await submit(ph, ['frank@remote.test']);
  await ph.waitForLog(/to=<frank@remote\.test>.*stat=Sent/, 30_000);
  assert.equal(hop.connections, 2, 'the second message went over the session that got 421');
});
