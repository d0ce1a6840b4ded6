// FallBackSmartHost after an MX that rejected the session. sendmail tries the
// fallback only when the last status was EX_NOHOST or EX_TEMPFAIL. A 5xx
// greeting (EX_UNAVAILABLE) or an MX whose EHLO names this host (EX_CONFIG)
// ends the delivery with that failure, so the fallback gets no mail.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { startDnsServer } from '../helpers/dns-server';
import { baseMc, startPosthorn } from '../helpers/posthorn';
import { rawSmtp } from '../helpers/clients';
import { freePortOn } from '../helpers/process';
import { startHop, type HopScript } from './break10-hop';

const MX_ADDR = '127.0.0.2';
const FALLBACK_ADDR = '127.0.0.7';

async function viaRejectingMx(t: { after(fn: () => Promise<void>): void }, mx: HopScript): Promise<{ stat: string; atFallback: number }> {
  const port = await freePortOn(['127.0.0.1', MX_ADDR, FALLBACK_ADDR]);
  const rejecting = await startHop({ ...mx, host: MX_ADDR, port });
  const fallback = await startHop({ host: FALLBACK_ADDR, port });
  t.after(async () => {
    await rejecting.close();
    await fallback.close();
  });
  const dns = await startDnsServer({
    zones: {
      'remote.test': [{ type: 'MX', preference: 10, exchange: 'mx.remote.test' }],
      'mx.remote.test': [{ type: 'A', address: MX_ADDR }],
      'fb.remote.test': [{ type: 'A', address: FALLBACK_ADDR }],
    },
  });
  t.after(() => dns.close());
  const ph = await startPosthorn({
    mc: baseMc({ dnsPort: dns.port, mailerPort: port, extra: ["define(`confFALLBACK_SMARTHOST', `fb.remote.test')"] }),
  });
  t.after(() => ph.stop());

  const replies = await rawSmtp(ph.port, [
    'EHLO client.posthorn.test',
    'MAIL FROM:<snd@posthorn.test>',
    'RCPT TO:<bob@remote.test>',
    'DATA',
    'Subject: rejected by the MX\r\n\r\nBody line.\r\n.',
    'QUIT',
  ]);
  assert.match(replies[replies.length - 2] ?? '', /^250 /, `submission replies: ${replies.join(' | ')}`);
  const stat = (await ph.waitForLog(/to=<bob@remote\.test>.*stat=.*/, 30_000))[0];
  return { stat, atFallback: fallback.messages.length };
}

test('fallback after 5xx MX greeting', { timeout: 60_000 }, async (t) => {
  const { stat, atFallback } = await viaRejectingMx(t, { greeting: '554 5.7.1 no mail from you\r\n' });
  t.diagnostic(stat);
  assert.equal(atFallback, 0, `the fallback host got mail the MX rejected: ${stat}`);
  assert.match(stat, /relay=mx\.remote\.test\. \[127\.0\.0\.2\], dsn=5\.7\.1, stat=Service unavailable/);
});

test('fallback after MX loop', { timeout: 60_000 }, async (t) => {
  // The MX names this host in its EHLO reply, so the mail would loop (sendmail's EX_CONFIG).
  const { stat, atFallback } = await viaRejectingMx(t, { ehlo: '250-mx.posthorn.test\r\n250 PIPELINING\r\n' });
  t.diagnostic(stat);
  assert.equal(atFallback, 0, `the fallback host got mail that loops: ${stat}`);
  assert.match(stat, /dsn=5\.3\.5/);
});
