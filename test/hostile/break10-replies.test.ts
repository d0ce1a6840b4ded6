// Next hops that reply with codes the client must not take as success: a
// message is logged stat=Sent only when the next hop took its data with a
// 2xx reply after the final dot.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { Posthorn } from '../helpers/posthorn';
import { daemonWithHop, submitTo, type Hop, type HopScript } from './break10-hop';

const TIMEOUTS = [
  "define(`confTO_INITIAL', `5s')",
  "define(`confTO_HELO', `5s')",
  "define(`confTO_MAIL', `5s')",
  "define(`confTO_RCPT', `5s')",
  "define(`confTO_DATAINIT', `5s')",
  "define(`confTO_DATABLOCK', `5s')",
  "define(`confTO_DATAFINAL', `5s')",
  "define(`confTO_QUIT', `2s')",
];

function viaHop(t: { after(fn: () => Promise<void>): void }, script: HopScript): Promise<{ hop: Hop; ph: Posthorn }> {
  return daemonWithHop(t, script, { extra: TIMEOUTS });
}

function submit(ph: Posthorn, recipients: string[]): Promise<void> {
  return submitTo(ph, recipients, 'hostile hop');
}

/** Waits for the to= line of `rcpt` and returns it. */
async function statLine(ph: Posthorn, rcpt: string): Promise<string> {
  const escaped = rcpt.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
  return (await ph.waitForLog(new RegExp(`to=<${escaped}>.*stat=.*`), 30_000))[0];
}

/** Waits for carol's to= line; a Sent line must come with the body at the hop. */
async function assertSentHasBody(t: { diagnostic(text: string): void }, ph: Posthorn, hop: Hop): Promise<void> {
  const line = await statLine(ph, 'carol@remote.test');
  t.diagnostic(`${line} | hop messages: ${hop.messages.length}`);
  if (/stat=Sent/.test(line)) {
    assert.ok(hop.messages.some((m) => m.data.includes('Body line.')), `logged as sent but the next hop got no body: ${line}`);
  }
}

test('RCPT 252 is not delivery', { timeout: 60_000 }, async (t) => {
  const { hop, ph } = await viaHop(t, {
    command: (verb, _line, s) => {
      if (verb !== 'RCPT') return false;
      s.write('252 2.1.5 Cannot VRFY user, but will accept message\r\n');
      return true;
    },
  });
  await submit(ph, ['carol@remote.test']);
  await assertSentHasBody(t, ph, hop);
});

test('DATA 250 is not delivery', { timeout: 60_000 }, async (t) => {
  const { hop, ph } = await viaHop(t, {
    command: (verb, _line, s) => {
      if (verb !== 'DATA') return false;
      s.write('250 2.0.0 ok\r\n');
      return true;
    },
  });
  await submit(ph, ['carol@remote.test']);
  const line = await statLine(ph, 'carol@remote.test');
  t.diagnostic(`${line} | hop messages: ${hop.messages.length}`);
  assert.equal(hop.messages.length, 0);
  assert.doesNotMatch(line, /stat=Sent/, 'a 250 to DATA left the message undelivered');
});

test('pipelined replies out of order', { timeout: 60_000 }, async (t) => {
  // The hop replies to MAIL, RCPT and DATA only once all three are in, and puts
  // the 354 first: the client sees 354 for MAIL and 250 for DATA.
  const { hop, ph } = await viaHop(t, {
    command: (verb, _line, s) => {
      if (verb === 'MAIL' || verb === 'RCPT') return true;
      if (verb !== 'DATA') return false;
      s.write('354 go ahead\r\n250 2.1.0 sender ok\r\n250 2.1.5 recipient ok\r\n');
      s.startData();
      return true;
    },
  });
  await submit(ph, ['carol@remote.test']);
  await assertSentHasBody(t, ph, hop);
});

test('354 after the final dot', { timeout: 60_000 }, async (t) => {
  const { ph, hop } = await viaHop(t, { dot: (s) => s.write('354 more please\r\n') });
  await submit(ph, ['carol@remote.test']);
  const line = await statLine(ph, 'carol@remote.test');
  t.diagnostic(`${line} | hop messages: ${hop.messages.length}`);
  assert.doesNotMatch(line, /stat=Sent/, 'a 354 after the final dot is not an acceptance');
});

test('MAIL 251 is not delivery', { timeout: 60_000 }, async (t) => {
  const { hop, ph } = await viaHop(t, {
    command: (verb, _line, s) => {
      if (verb !== 'MAIL') return false;
      s.write('251 2.1.0 odd but positive\r\n');
      return true;
    },
  });
  await submit(ph, ['carol@remote.test']);
  await assertSentHasBody(t, ph, hop);
});
