import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

import { Deliverer, nextRetryTime } from '../../src/delivery/deliver';
import { MailResolver } from '../../src/dns/resolver';
import { QueueStore } from '../../src/queue/store';
import type { Config } from '../../src/config/types';
import type { QueueItem, QueueRecipient } from '../../src/queue/types';
import { startDnsServer, DnsServer } from '../helpers/dns-server';
import { startSink, Sink } from '../helpers/sink';
import { makeConfig, makeItem, memoryLogger, recipient, MemorySink } from './fixtures';

const root = fs.mkdtempSync(path.join(os.tmpdir(), 'posthorn-deliver-'));
let dns: DnsServer;
let primary: Sink;
let fallback: Sink;
let resolver: MailResolver;

before(async () => {
  primary = await startSink({
    host: '127.0.0.2',
    rcptReply: (a) =>
      a.startsWith('busy') ? '452 4.2.2 Mailbox full' : a.startsWith('gone') ? '550 5.1.1 <' + a + '>... User unknown' : '250 2.1.5 Ok',
  });
  fallback = await startSink({ host: '127.0.0.3', port: primary.port });
  dns = await startDnsServer({
    zones: {
      'dest.test': [{ type: 'MX', preference: 10, exchange: 'mx.dest.test' }],
      'mx.dest.test': [{ type: 'A', address: '127.0.0.2' }],
      'origin.test': [{ type: 'MX', preference: 10, exchange: 'mx.dest.test' }],
      'two.test': [
        { type: 'MX', preference: 10, exchange: 'down.two.test' },
        { type: 'MX', preference: 20, exchange: 'mx.dest.test' },
      ],
      'down.two.test': [{ type: 'A', address: '127.0.0.4' }],
      'down.test': [{ type: 'MX', preference: 10, exchange: 'down.two.test' }],
      'servfail.test': [],
      'null.test': [{ type: 'MX', preference: 0, exchange: '.' }],
    },
  });
  dns.setMode('servfail.test', 'servfail');
  resolver = new MailResolver([`${dns.address}:${dns.port}`], { timeoutMs: 300, tries: 1 });
});

after(async () => {
  await primary.close();
  await fallback.close();
  await dns.close();
  fs.rmSync(root, { recursive: true, force: true });
});

let dirCount = 0;

interface Setup {
  store: QueueStore;
  deliverer: Deliverer;
  log: MemorySink;
  config: Config;
}

async function setup(overrides: Partial<Config> = {}): Promise<Setup> {
  const queueDirectory = path.join(root, `q${dirCount}`);
  const mailboxDirectory = path.join(root, `mail${dirCount++}`);
  fs.mkdirSync(mailboxDirectory);
  const { logger, sink } = memoryLogger();
  const config = makeConfig({
    queueDirectory,
    mailboxDirectory,
    mailers: [{ name: 'esmtp', port: primary.port }],
    ...overrides,
  });
  const store = new QueueStore({ dir: queueDirectory, superSafe: 'true', logger });
  await store.init();
  return { store, deliverer: new Deliverer({ config, store, logger, resolver }), log: sink, config };
}

async function enqueue(store: QueueStore, recipients: QueueRecipient[], extra: Partial<QueueItem> = {}): Promise<QueueItem> {
  const id = store.newId();
  const writer = await store.openDataFile(id);
  await writer.write(Buffer.from('Hello there.\r\n.dot line\r\n'));
  await writer.close();
  const item = makeItem(id, recipients, { bodySize: writer.size, ...extra });
  await store.commit(item);
  return item;
}

function linesFor(log: MemorySink, id: string): string[] {
  return log.lines.filter((l) => l.startsWith(`${id}: `)).map((l) => l.slice(id.length + 2));
}

const DELAYS = /delay=\d\d:\d\d:\d\d, xdelay=\d\d:\d\d:\d\d/;

test('sent, deferred and bounced recipients; DSN queued and sent', async () => {
  const { store, deliverer, log } = await setup();
  const before = primary.messages.length;
  const item = await enqueue(store, [recipient('ok@dest.test'), recipient('busy@dest.test'), recipient('gone@dest.test')]);

  assert.equal(await deliverer.deliver(item.id), 'deferred');

  const original = primary.messages[before];
  assert.deepEqual(original.to, ['ok@dest.test']);
  assert.equal(original.from, 'alice@origin.test');
  assert.ok(original.data.toString().endsWith('\r\n\r\nHello there.\r\n.dot line\r\n'));

  const stored = await store.read(item.id);
  assert.deepEqual(
    stored.recipients.map((r) => [r.address, r.state, r.dsnCode]),
    [
      ['ok@dest.test', 'sent', '2.0.0'],
      ['busy@dest.test', 'deferred', '4.2.2'],
      ['gone@dest.test', 'bounced', '5.1.1'],
    ],
  );
  assert.equal(stored.attempts, 1);
  assert.equal(stored.priority, 30000 + 90000);
  assert.equal(stored.statusMessage, 'Deferred: 452 4.2.2 Mailbox full');

  const lines = linesFor(log, item.id).map((l) => l.replace(DELAYS, 'DELAYS'));
  assert.ok(lines.includes('to=<ok@dest.test>, DELAYS, mailer=esmtp, pri=30000, relay=mx.dest.test. [127.0.0.2], dsn=2.0.0, stat=Sent (Message accepted for delivery)'), lines.join('\n'));
  assert.ok(lines.includes('to=<busy@dest.test>, DELAYS, mailer=esmtp, pri=30000, relay=mx.dest.test. [127.0.0.2], dsn=4.2.2, stat=Deferred: 452 4.2.2 Mailbox full'));
  assert.ok(lines.includes('to=<gone@dest.test>, DELAYS, mailer=esmtp, pri=30000, relay=mx.dest.test. [127.0.0.2], dsn=5.1.1, stat=User unknown'));

  const dsnLine = lines.find((l) => /^\w+: DSN: User unknown$/.test(l));
  assert.ok(dsnLine, 'DSN log line');
  const dsn = primary.messages[before + 1];
  assert.equal(dsn.from, '');
  assert.deepEqual(dsn.to, ['alice@origin.test']);
  const text = dsn.data.toString();
  assert.ok(text.includes('Subject: Returned mail: see transcript for details'));
  assert.ok(text.includes('Final-Recipient: RFC822; gone@dest.test'));
  assert.ok(text.includes('Diagnostic-Code: SMTP; 550 5.1.1 <gone@dest.test>... User unknown'));
  assert.ok(!text.includes('busy@dest.test>\r\n    (reason'));
  assert.ok(text.includes('\r\n\r\nHello there.\r\n.dot line\r\n'));
  assert.deepEqual(await store.list(), [item.id], 'the delivered DSN is removed');
});

test('next MX after a refused connection', async () => {
  const { store, deliverer, log } = await setup();
  const before = primary.messages.length;
  const item = await enqueue(store, [recipient('a@two.test')]);
  assert.equal(await deliverer.deliver(item.id), 'done');
  assert.deepEqual(primary.messages[before].to, ['a@two.test']);
  assert.deepEqual(await store.list(), []);
  const line = linesFor(log, item.id)[0];
  assert.match(line, /relay=mx\.dest\.test\. \[127\.0\.0\.2\], dsn=2\.0\.0, stat=Sent/);
});

test('all MX hosts down defers', async () => {
  const { store, deliverer, log } = await setup();
  const item = await enqueue(store, [recipient('a@down.test')]);
  assert.equal(await deliverer.deliver(item.id), 'deferred');
  const line = linesFor(log, item.id)[0].replace(DELAYS, 'DELAYS');
  assert.equal(
    line,
    'to=<a@down.test>, DELAYS, mailer=esmtp, pri=30000, relay=down.two.test. [127.0.0.4], dsn=4.4.1, stat=Deferred: Connection refused by down.two.test.',
  );
  assert.equal((await store.read(item.id)).recipients[0].state, 'deferred');
});

test('FallBackSmartHost when all MX hosts are down', async () => {
  const { store, deliverer, log } = await setup({ fallbackSmartHost: '[127.0.0.3]' });
  const before = fallback.messages.length;
  const item = await enqueue(store, [recipient('a@down.test')]);
  assert.equal(await deliverer.deliver(item.id), 'done');
  assert.deepEqual(fallback.messages[before].to, ['a@down.test']);
  assert.match(linesFor(log, item.id)[0], /relay=\[127\.0\.0\.3\] \[127\.0\.0\.3\], dsn=2\.0\.0/);
});

test('FallBackSmartHost when DNS fails', async () => {
  const { store, deliverer } = await setup({ fallbackSmartHost: '[127.0.0.3]' });
  const before = fallback.messages.length;
  const item = await enqueue(store, [recipient('a@servfail.test')]);
  assert.equal(await deliverer.deliver(item.id), 'done');
  assert.deepEqual(fallback.messages[before].to, ['a@servfail.test']);
});

test('DNS failure without fallback defers', async () => {
  const { store, deliverer } = await setup();
  const item = await enqueue(store, [recipient('a@servfail.test')]);
  assert.equal(await deliverer.deliver(item.id), 'deferred');
  const rcpt = (await store.read(item.id)).recipients[0];
  assert.equal(rcpt.dsnCode, '4.4.3');
  assert.equal(rcpt.status, 'Deferred: Name server timeout for servfail.test');
});

test('null MX bounces at once', async () => {
  const { store, deliverer, log } = await setup();
  const before = primary.messages.length;
  const item = await enqueue(store, [recipient('a@null.test')]);
  assert.equal(await deliverer.deliver(item.id), 'done');
  assert.match(linesFor(log, item.id)[0], /mailer=esmtp, pri=30000, dsn=5\.1\.10, stat=Domain does not accept mail/);
  assert.deepEqual(primary.messages[before].to, ['alice@origin.test']);
});

test('unknown domain bounces with Host unknown', async () => {
  const { store, deliverer, log } = await setup();
  const item = await enqueue(store, [recipient('a@missing.test')]);
  assert.equal(await deliverer.deliver(item.id), 'done');
  assert.match(linesFor(log, item.id)[0], /dsn=5\.1\.2, stat=Host unknown \(Name server: missing\.test: host not found\)$/);
});

test('local recipients go to the mailbox', async () => {
  const { store, deliverer, log, config } = await setup();
  const item = await enqueue(store, [recipient('root'), recipient('Bob@posthorn.test')]);
  assert.equal(await deliverer.deliver(item.id), 'done');
  const mbox = fs.readFileSync(path.join(config.mailboxDirectory, 'bob'), 'latin1');
  assert.ok(mbox.startsWith('From alice@origin.test '));
  assert.ok(mbox.endsWith('\n\nHello there.\n.dot line\n\n'));
  assert.ok(fs.existsSync(path.join(config.mailboxDirectory, 'root')));
  const line = linesFor(log, item.id)[0].replace(DELAYS, 'DELAYS');
  assert.equal(line, 'to=<root>,<Bob@posthorn.test>, DELAYS, mailer=local, pri=30000, dsn=2.0.0, stat=Sent');
});

test('bounce of a bounce goes to the postmaster', async () => {
  const { store, deliverer, config } = await setup();
  const item = await enqueue(store, [recipient('gone@dest.test')], { sender: '' });
  assert.equal(await deliverer.deliver(item.id), 'done');
  const mbox = fs.readFileSync(path.join(config.mailboxDirectory, 'postmaster'), 'latin1');
  assert.ok(mbox.startsWith('From MAILER-DAEMON '));
  assert.ok(mbox.includes('Subject: Postmaster notify: see transcript for details'));
  assert.deepEqual(await store.list(), []);
});

test('failed double bounce is dropped', async () => {
  const options = new Map([['DoubleBounceAddress', 'pm@null.test']]);
  const { store, deliverer, log } = await setup({ options });
  const item = await enqueue(store, [recipient('gone@dest.test')], { sender: '' });
  assert.equal(await deliverer.deliver(item.id), 'done');
  assert.deepEqual(await store.list(), []);
  assert.ok(log.lines.some((l) => l.endsWith('double bounce to <pm@null.test> failed; message dropped')));
});

test('queue return timeout bounces deferred recipients', async () => {
  const { store, deliverer } = await setup();
  const before = primary.messages.length;
  const sixDaysAgo = Math.floor(Date.now() / 1000) - 6 * 86400;
  const item = await enqueue(store, [recipient('a@down.test', { state: 'deferred' })], {
    created: sixDaysAgo,
    attempts: 3,
    lastAttempt: sixDaysAgo,
  });
  assert.equal(await deliverer.deliver(item.id), 'done');
  const text = primary.messages[before].data.toString();
  assert.ok(text.includes('Cannot send message for 5 days'));
  assert.ok(text.includes('Status: 4.4.7'));
});

test('quarantined and locked items are left alone', async () => {
  const { store, deliverer } = await setup();
  const held = await enqueue(store, [recipient('a@dest.test')], { quarantine: 'suspicious' });
  await store.update(held);
  assert.equal(await deliverer.deliver(held.id), 'skipped');
  const busy = await enqueue(store, [recipient('a@dest.test')]);
  assert.equal(await store.lock(busy.id), true);
  assert.equal(await deliverer.deliver(busy.id), 'locked');
  await store.unlock(busy.id);
});

test('items not yet due are skipped unless forced', async () => {
  const { store, deliverer } = await setup();
  const now = Math.floor(Date.now() / 1000);
  const item = await enqueue(store, [recipient('a@down.test', { state: 'deferred' })], { attempts: 1, lastAttempt: now });
  assert.equal(await deliverer.deliver(item.id), 'skipped');
  assert.equal(await deliverer.deliver(item.id, { force: true }), 'deferred');
});

test('nextRetryTime backs off', () => {
  const item = makeItem('x', [], { created: 1000, attempts: 0, lastAttempt: 0 });
  assert.equal(nextRetryTime(item), 1000);
  assert.equal(nextRetryTime({ ...item, attempts: 1, lastAttempt: 5000 }), 5000 + 900);
  assert.equal(nextRetryTime({ ...item, attempts: 2, lastAttempt: 5000 }), 5000 + 1800);
  assert.equal(nextRetryTime({ ...item, attempts: 10, lastAttempt: 5000 }), 5000 + 4 * 3600);
});
