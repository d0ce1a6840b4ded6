// conncontrol, ratecontrol and MaxDaemonChildren end to end, with clients on
// several loopback addresses.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as net from 'node:net';
import * as path from 'node:path';
import { baseMc, startPosthorn, type Posthorn } from '../helpers/posthorn';
import { rawSmtp } from '../helpers/clients';
import { waitFor } from '../helpers/process';
import { makemap } from './policy-support';

const LIMITS = [
  'ClientConn:127.0.0.10\t1',
  'ClientConn:127.0.2\t0',
  'ClientConn:\t3',
  'ClientRate:127.0.0.11\t2',
  'ClientRate:127.0.0.1\t0',
  'ClientRate:127.0.2\t0',
  'ClientRate:\t4',
  '',
].join('\n');

async function startLimits(t: { after(fn: () => Promise<void>): void }, features: string[], args: string[] = []): Promise<Posthorn> {
  const ph = await startPosthorn({
    mc: baseMc({
      extra: ["define(`confPID_FILE', `@DIR@/pid')", "FEATURE(`access_db', `hash -o @DIR@/access')", ...features],
    }),
    args: ['-O', 'DeliveryMode=queueonly', ...args],
  });
  t.after(() => ph.stop());
  assert.equal(makemap(path.join(ph.dir, 'access'), LIMITS).status, 0);
  return ph;
}

/** Opens a session and waits for its greeting; the caller ends it. */
function holdSession(port: number, localAddress: string): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const socket = net.connect({ host: '127.0.0.1', port, localAddress });
    socket.once('data', () => resolve(socket));
    socket.once('error', reject);
    socket.once('close', () => reject(new Error(`session from ${localAddress} closed before its greeting`)));
  });
}

test('ClientConn refuses the second session', async (t) => {
  const ph = await startLimits(t, ["FEATURE(`conncontrol')"]);
  const first = await holdSession(ph.port, '127.0.0.10');
  t.after(() => first.destroy());

  const second = await rawSmtp(ph.port, ['EHLO c.example', 'MAIL FROM:<a@c.example>', 'QUIT'], { localAddress: '127.0.0.10' });
  assert.match(second[0], /^220 /);
  assert.equal(second[1], '250-mx.posthorn.test Hello [127.0.0.10], pleased to meet you\n250 ENHANCEDSTATUSCODES');
  assert.equal(second[2], '452 4.3.2 Too many open connections.');

  const otherClient = await rawSmtp(ph.port, ['MAIL FROM:<a@c.example>', 'QUIT'], { localAddress: '127.0.0.15' });
  assert.match(otherClient[1], /^250 /, 'another address is not limited');

  first.destroy();
  // Both sessions log the line: the refused one and, once it has ended, the first.
  await waitFor('both sessions from 127.0.0.10 to end', () => (ph.logs().match(/127\.0\.0\.10\] did not issue MAIL/g) ?? []).length >= 2);
  const again = await rawSmtp(ph.port, ['MAIL FROM:<a@c.example>', 'QUIT'], { localAddress: '127.0.0.10' });
  assert.match(again[1], /^250 /, 'the limit frees up when the first session ends');
});

test('ClientConn default and prefix exemption', async (t) => {
  const ph = await startLimits(t, ["FEATURE(`conncontrol', `', `terminate')"]);
  const held = await Promise.all([1, 2, 3].map(() => holdSession(ph.port, '127.0.0.16')));
  const exempt = await Promise.all([1, 2, 3, 4].map(() => holdSession(ph.port, '127.0.2.1')));
  t.after(() => [...held, ...exempt].forEach((s) => s.destroy()));

  const fourth = await rawSmtp(ph.port, ['QUIT'], { localAddress: '127.0.0.16' });
  assert.deepEqual(fourth, ['421 4.3.2 Too many open connections.']);
  const fifthExempt = await rawSmtp(ph.port, ['QUIT'], { localAddress: '127.0.2.1' });
  assert.match(fifthExempt[0], /^220 /);
});

test('ClientRate refuses the third connection', async (t) => {
  const ph = await startLimits(t, ["FEATURE(`ratecontrol')"]);
  for (let i = 1; i <= 2; i++) {
    const ok = await rawSmtp(ph.port, ['MAIL FROM:<a@c.example>', 'QUIT'], { localAddress: '127.0.0.11' });
    assert.match(ok[1], /^250 /, `connection ${i} is within the limit`);
  }
  const third = await rawSmtp(ph.port, ['EHLO c.example', 'MAIL FROM:<a@c.example>', 'QUIT'], { localAddress: '127.0.0.11' });
  assert.match(third[0], /^220 /);
  assert.equal(third[2], '452 4.3.2 Connection rate limit exceeded.');
  await ph.waitForLog(/ruleset=check_relay, arg1=\[127\.0\.0\.11\], arg2=127\.0\.0\.11, relay=\[127\.0\.0\.11\], reject=452 4\.3\.2 Connection rate limit exceeded\./);
});

test('ClientRate terminate and default entry', async (t) => {
  const ph = await startLimits(t, ["FEATURE(`ratecontrol', `', `terminate')"]);
  for (let i = 1; i <= 4; i++) {
    const ok = await rawSmtp(ph.port, ['QUIT'], { localAddress: '127.0.0.17' });
    assert.match(ok[0], /^220 /, `connection ${i} is within the default limit`);
  }
  const fifth = await rawSmtp(ph.port, ['QUIT'], { localAddress: '127.0.0.17' });
  assert.deepEqual(fifth, ['421 4.3.2 Connection rate limit exceeded.']);
  for (let i = 1; i <= 6; i++) {
    const exempt = await rawSmtp(ph.port, ['QUIT'], { localAddress: '127.0.2.2' });
    assert.match(exempt[0], /^220 /, `exempt connection ${i}`);
  }
});

test('ratecontrol with delay_checks rejects RCPT', async (t) => {
  const ph = await startLimits(t, ["FEATURE(`delay_checks')", "FEATURE(`ratecontrol')"]);
  for (let i = 1; i <= 2; i++) await rawSmtp(ph.port, ['QUIT'], { localAddress: '127.0.0.11' });
  const third = await rawSmtp(
    ph.port,
    ['EHLO c.example', 'MAIL FROM:<a@c.example>', 'RCPT TO:<alice@posthorn.test>', 'QUIT'],
    { localAddress: '127.0.0.11' },
  );
  assert.match(third[2], /^250 /);
  assert.equal(third[3], '452 4.3.2 Connection rate limit exceeded.');
});

test('MaxDaemonChildren rejects connections', async (t) => {
  const ph = await startLimits(t, [], ['-O', 'MaxDaemonChildren=2', '-O', 'LogLevel=9']);
  const held = [await holdSession(ph.port, '127.0.0.18'), await holdSession(ph.port, '127.0.0.19')];
  t.after(() => held.forEach((s) => s.destroy()));
  const rejected = await rawSmtp(ph.port, ['QUIT'], { localAddress: '127.0.0.20' });
  assert.deepEqual(rejected, [], 'the connection is closed without a greeting');
  await ph.waitForLog(/rejecting connections on daemon MTA: 2 children, max 2/);

  held.forEach((s) => s.destroy());
  await ph.waitForLog(/127\.0\.0\.19\] did not issue MAIL/);
  await ph.waitForLog(/127\.0\.0\.18\] did not issue MAIL/);
  const served = await rawSmtp(ph.port, ['QUIT'], { localAddress: '127.0.0.20' });
  assert.match(served[0], /^220 /);
  await ph.waitForLog(/accepting connections again for daemon MTA/);
});
