// The access map end to end: Connect:, From:, To: entries from a map that
// bin/makemap compiles, rebuilt while the daemon runs.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { baseMc, startPosthorn, type Posthorn } from '../helpers/posthorn';
import { rawSmtp, swaks } from '../helpers/clients';
import { requirePeer } from '../helpers/peers';
import { makeMessage } from '../helpers/e2e-setup';
import { makemap } from './policy-support';

const ACCESS = [
  '# test access map',
  'Connect:127.0.0.3\tREJECT',
  'Connect:127.0.0.4\tERROR:4.7.1:421 go away',
  'Connect:127.0.0.6\tRELAY',
  'Connect:127.0.0.12\tDISCARD',
  'From:spammer@bad.example\tREJECT',
  'From:slow.example\tERROR:451 4.7.1 try later',
  'To:partner.example\tRELAY',
  'To:closed@posthorn.test\tREJECT',
  '',
].join('\n');

async function startWithAccess(t: { after(fn: () => Promise<void>): void }, extra: string[] = []): Promise<Posthorn> {
  const ph = await startPosthorn({
    mc: baseMc({
      extra: [
        "define(`confPID_FILE', `@DIR@/pid')",
        "FEATURE(`access_db', `hash -o @DIR@/access')",
        "FEATURE(`blacklist_recipients')",
        ...extra,
      ],
    }),
    args: ['-O', 'DeliveryMode=queueonly'],
  });
  t.after(() => ph.stop());
  return ph;
}

test('Connect REJECT makes a null server', async (t) => {
  const ph = await startWithAccess(t);
  assert.equal(makemap(path.join(ph.dir, 'access'), ACCESS).status, 0);
  const replies = await rawSmtp(ph.port, ['EHLO client.example', 'MAIL FROM:<a@client.example>', 'NOOP', 'QUIT'], {
    localAddress: '127.0.0.3',
  });
  assert.match(replies[0], /^220 mx\.posthorn\.test ESMTP /);
  assert.equal(replies[1], '250-mx.posthorn.test Hello [127.0.0.3], pleased to meet you\n250 ENHANCEDSTATUSCODES');
  assert.equal(replies[2], '550 5.7.1 Access denied');
  assert.equal(replies[3], '250 2.0.0 OK');
  assert.match(replies[4], /^221 /);
  await ph.waitForLog(
    /ruleset=check_relay, arg1=\[127\.0\.0\.3\], arg2=127\.0\.0\.3, relay=\[127\.0\.0\.3\], reject=550 5\.7\.1 Access denied/,
  );
});

test('Connect ERROR 421 replaces greeting', async (t) => {
  const ph = await startWithAccess(t);
  makemap(path.join(ph.dir, 'access'), ACCESS);
  const replies = await rawSmtp(ph.port, ['EHLO client.example'], { localAddress: '127.0.0.4' });
  assert.deepEqual(replies, ['421 4.7.1 go away']);
});

test('Connect RELAY and To RELAY allow relaying', async (t) => {
  const ph = await startWithAccess(t);
  makemap(path.join(ph.dir, 'access'), ACCESS);
  const fromRelayClient = await rawSmtp(
    ph.port,
    ['EHLO c.example', 'MAIL FROM:<a@c.example>', 'RCPT TO:<x@elsewhere.example>', 'QUIT'],
    { localAddress: '127.0.0.6' },
  );
  assert.match(fromRelayClient[3], /^250 2\.1\.5 <x@elsewhere\.example>/);

  const other = await rawSmtp(
    ph.port,
    ['EHLO c.example', 'MAIL FROM:<a@c.example>', 'RCPT TO:<x@partner.example>', 'RCPT TO:<x@elsewhere.example>', 'QUIT'],
    { localAddress: '127.0.0.9' },
  );
  assert.match(other[3], /^250 2\.1\.5 <x@partner\.example>/);
  assert.equal(other[4], '550 5.7.1 <x@elsewhere.example>... Relaying denied. IP name lookup failed [127.0.0.9]');
});

test('From and To entries reject', async (t) => {
  const swaksBin = requirePeer(t, 'swaks');
  if (!swaksBin) return;
  const ph = await startWithAccess(t);
  makemap(path.join(ph.dir, 'access'), ACCESS);

  const spam = await swaks(
    ['--server', `127.0.0.1:${ph.port}`, '--local-interface', '127.0.0.9', '--from', 'spammer@bad.example',
      '--to', 'alice@posthorn.test', '--quit-after', 'MAIL'],
    { bin: swaksBin },
  );
  assert.match(spam.stdout, /<\*\* 550 5\.7\.1 <spammer@bad\.example>\.\.\. Access denied/);

  const replies = await rawSmtp(
    ph.port,
    ['EHLO c.example', 'MAIL FROM:<x@slow.example>', 'MAIL FROM:<a@c.example>', 'RCPT TO:<closed@posthorn.test>', 'QUIT'],
    { localAddress: '127.0.0.9' },
  );
  assert.equal(replies[2], '451 4.7.1 try later', 'a 4xx ERROR: text gets no address prefix');
  assert.equal(replies[4], '550 5.2.1 <closed@posthorn.test>... Mailbox disabled for this recipient');
});

test('Connect DISCARD drops accepted mail', async (t) => {
  const ph = await startWithAccess(t);
  makemap(path.join(ph.dir, 'access'), ACCESS);
  const message = makeMessage({ from: 'a@c.example', to: 'alice@posthorn.test', subject: 'dropped', body: 'gone' });
  const replies = await rawSmtp(
    ph.port,
    ['EHLO c.example', 'MAIL FROM:<a@c.example>', 'RCPT TO:<alice@posthorn.test>', 'DATA', `${message}.\r\n`, 'QUIT'],
    { localAddress: '127.0.0.12' },
  );
  assert.match(replies[5], /^250 2\.0\.0 /);
  assert.deepEqual(ph.queueFiles().filter((f) => f.startsWith('qf')), []);
  await ph.waitForLog(/ruleset=check_relay, arg1=\[127\.0\.0\.12\], arg2=127\.0\.0\.12, relay=\[127\.0\.0\.12\], discard/);
});

test('map rebuilt while running', async (t) => {
  const ph = await startWithAccess(t);
  const map = path.join(ph.dir, 'access');
  makemap(map, 'Connect:127.0.0.13 OK\n');
  const before = await rawSmtp(ph.port, ['MAIL FROM:<a@c.example>', 'QUIT'], { localAddress: '127.0.0.13' });
  assert.match(before[1], /^250 /);

  assert.equal(makemap(map, 'Connect:127.0.0.13 REJECT\n').status, 0);
  const after = await rawSmtp(ph.port, ['MAIL FROM:<a@c.example>', 'QUIT'], { localAddress: '127.0.0.13' });
  assert.equal(after[1], '550 5.7.1 Access denied');

  const bad = makemap(map, 'Connect:127.0.0.13 OK\nbroken-line-without-value\n');
  assert.equal(bad.status, 65);
  assert.match(bad.stderr, /access:2: missing value for key broken-line-without-value/);
  const still = await rawSmtp(ph.port, ['MAIL FROM:<a@c.example>', 'QUIT'], { localAddress: '127.0.0.13' });
  assert.equal(still[1], '550 5.7.1 Access denied', 'the old compiled map stays in use');
});

test('text map reloads on change', async (t) => {
  const ph = await startPosthorn({
    mc: baseMc({ extra: ["define(`confPID_FILE', `@DIR@/pid')", "FEATURE(`access_db', `text @DIR@/access.txt')"] }),
    args: ['-O', 'DeliveryMode=queueonly'],
  });
  t.after(() => ph.stop());
  const file = path.join(ph.dir, 'access.txt');
  fs.writeFileSync(file, 'Connect:127.0.0.14 OK\n');
  const before = await rawSmtp(ph.port, ['MAIL FROM:<a@c.example>', 'QUIT'], { localAddress: '127.0.0.14' });
  assert.match(before[1], /^250 /);
  fs.writeFileSync(file, '# now rejected\nConnect:127.0.0.14   ERROR:5.7.0:550 not you\n');
  const after = await rawSmtp(ph.port, ['MAIL FROM:<a@c.example>', 'QUIT'], { localAddress: '127.0.0.14' });
  assert.equal(after[1], '550 5.7.0 not you');
});

test('IPv6 client Connect key', async (t) => {
  const mc = baseMc({ extra: ["define(`confPID_FILE', `@DIR@/pid')", "FEATURE(`access_db', `hash -o @DIR@/access')"] });
  const ph = await startPosthorn({
    addr: '::1',
    mc: mc.replace('Name=MTA', 'Name=MTA, Family=inet6'),
    args: ['-O', 'DeliveryMode=queueonly'],
  }).catch((err: Error) => {
    t.skip(`no IPv6 loopback: ${err.message}`);
    return undefined;
  });
  if (!ph) return;
  t.after(() => ph.stop());
  makemap(path.join(ph.dir, 'access'), 'Connect:IPv6:0:0:0:0:0:0:0:1 REJECT\nConnect:IPv6:::1 REJECT\n');
  const replies = await rawSmtp(ph.port, ['MAIL FROM:<a@c.example>', 'QUIT'], { host: '::1' });
  assert.equal(replies[1], '550 5.7.1 Access denied');
});
