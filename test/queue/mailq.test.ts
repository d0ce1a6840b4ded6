import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import { formatMailq, MailqEntry, printable, readMailqEntries } from '../../src/queue/mailq';
import { QueueStore } from '../../src/queue/store';
import { QueueItem } from '../../src/queue/types';
import { captureLogger, makeTempDir, removeDir } from './helpers';

// ctime() prints local time; the expected texts below are in UTC.
process.env.TZ = 'UTC';

const DIR = '/var/spool/mqueue';

function item(id: string, fields: Partial<QueueItem>): QueueItem {
  return {
    id,
    created: 0,
    lastAttempt: 0,
    attempts: 0,
    priority: 0,
    flags: '',
    macros: new Map(),
    sender: '',
    recipients: [],
    headers: [],
    bodySize: 0,
    ...fields,
  };
}

const QUARANTINED: MailqEntry = {
  id: 'k5KCE4Kb012345',
  size: 1234,
  locked: false,
  item: item('k5KCE4Kb012345', {
    created: Date.UTC(2006, 5, 20, 12, 14, 4) / 1000,
    priority: 31234,
    sender: 'alice@example.org',
    quarantine: 'suspicious attachment',
    recipients: [{ address: 'bob@example.com', state: 'pending' }],
  }),
};

const DEFERRED: MailqEntry = {
  id: 'xAIK3D9S000453',
  size: 36,
  locked: true,
  item: item('xAIK3D9S000453', {
    created: Date.UTC(2019, 10, 18, 20, 3, 13) / 1000,
    priority: 120036,
    flags: 'w',
    sender: 'emma@lab1.campus',
    statusMessage: 'Deferred: Connection refused by lab2.campus.',
    recipients: [
      {
        address: 'dave@lab2.campus',
        state: 'deferred',
        status: 'Deferred: Connection refused by lab2.campus.',
      },
    ],
  }),
};

const EIGHT_BIT: MailqEntry = {
  id: 'u9Q36LgF014458',
  size: 469,
  locked: false,
  item: item('u9Q36LgF014458', {
    created: Date.UTC(2016, 9, 6, 3, 8, 0) / 1000,
    bodyType: '8BITMIME',
    statusMessage: 'host map: lookup (163.com): deferred',
    sender: '',
    recipients: [
      { address: 'done@163.com', state: 'sent' },
      { address: 'failed@163.com', state: 'bounced' },
      { address: 'a-very-long-recipient-address@subdomain.example.com', state: 'pending' },
    ],
  }),
};

const COMPLETED: MailqEntry = { id: 'u9Q36LgF014459', size: -1, locked: false, error: 'job completed' };

test('mailq lists entries like sendmail', () => {
  const expected = [
    '\t\t/var/spool/mqueue (4 requests)',
    '-----Q-ID----- --Size-- -----Q-Time----- ------------Sender/Recipient-----------',
    'k5KCE4Kb012345     1234 Tue Jun 20 12:14 <alice@example.org>',
    '     QUARANTINE: suspicious attachment',
    '\t\t\t\t\t <bob@example.com>',
    'xAIK3D9S000453*      36 Mon Nov 18 20:03 <emma@lab1.campus>',
    '                 (Deferred: Connection refused by lab2.campus.)',
    '\t\t\t\t\t <dave@lab2.campus>',
    'u9Q36LgF014458      469 Thu Oct  6 03:08 <>',
    '      8BITMIME   (host map: lookup (163.com): deferred)',
    '\t\t\t\t\t <a-very-long-recipient-address@subdoma',
    'u9Q36LgF014459 (job completed)',
    '\t\tTotal requests: 4',
    '',
  ].join('\n');
  assert.equal(formatMailq(DIR, [QUARANTINED, DEFERRED, EIGHT_BIT, COMPLETED]), expected);
});

test('mailq verbose layout', () => {
  const expected = [
    '\t\t/var/spool/mqueue (1 request)',
    '-----Q-ID----- --Size-- -Priority- ---Q-Time--- --------Sender/Recipient--------',
    'xAIK3D9S000453*      36     120036+Nov 18 20:03 <emma@lab1.campus>',
    '                 (Deferred: Connection refused by lab2.campus.)',
    '\t\t\t\t\t\t<dave@lab2.campus>',
    '\t\t (Deferred: Connection refused by lab2.campus.)',
    '\t\tTotal requests: 1',
    '',
  ].join('\n');
  assert.equal(formatMailq(DIR, [DEFERRED], { verbose: true }), expected);
});

test('mailq of empty queue', () => {
  assert.equal(formatMailq(DIR, []), '/var/spool/mqueue is empty\n\t\tTotal requests: 0\n');
});

test('mailq limits output to MaxQueueRun', () => {
  const text = formatMailq(DIR, [QUARANTINED, DEFERRED], { maxQueueRun: 1 });
  assert.ok(text.startsWith('\t\t/var/spool/mqueue (2 requests, only 1 printed)\n'));
  assert.ok(text.includes('k5KCE4Kb012345'));
  assert.ok(!text.includes('xAIK3D9S000453'));
  assert.ok(text.endsWith('\t\tTotal requests: 2\n'));
});

test('mailq entry without control file', () => {
  const entry: MailqEntry = { id: 'k5KCE4Kb012345', size: 10, locked: true };
  assert.ok(formatMailq(DIR, [entry]).includes('\nk5KCE4Kb012345* (no control file)\n'));
});

test('printable escapes like prtstr', () => {
  assert.equal(printable('<a\\b@example.com>', 39), '<a\\\\b@example.com>');
  assert.equal(printable('caf\u00e9', 39), 'caf\\351');
  assert.equal(printable('\u20ac', 39), '\\342\\202\\254');
  assert.equal(printable('abcdef', 3), 'abc');
  assert.equal(printable('ab\u00e9', 5), 'ab', 'no room for the octal escape');
});

test('readMailqEntries reads the store', async () => {
  const dir = makeTempDir();
  const store = new QueueStore({ dir, superSafe: 'false', logger: captureLogger().logger });
  await store.init();
  const id = store.newId();
  const writer = await store.openDataFile(id);
  await writer.write(Buffer.from('12345'));
  await writer.close();
  await store.commit({ ...(QUARANTINED.item as QueueItem), id, quarantine: undefined });
  await store.lock(id);
  fs.writeFileSync(`${dir}/qfk5KCE4Kb000001`, 'V8\n');

  const entries = await readMailqEntries(store);
  const mine = entries.find((e) => e.id === id);
  const damaged = entries.find((e) => e.id === 'k5KCE4Kb000001');
  assert.equal(entries.length, 2);
  assert.equal(mine?.size, 5);
  assert.equal(mine?.locked, true);
  assert.equal(mine?.item?.sender, 'alice@example.org');
  assert.equal(damaged?.size, -1);
  assert.match(damaged?.error ?? '', /^unreadable control file: line 1: no "\." line/);
  await store.unlock(id);
  removeDir(dir);
});
