// Control files as sendmail 8.17 writes them: lines Posthorn does not write
// itself (C, I, E), conditional headers and 8-bit bytes, and the conversion of
// sendmail's data file to CRLF line ends.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import { decodeControlFile, parseControlFile, QueueFileError } from '../../src/queue/qf';
import { crlfLineEnds } from '../../src/queue/sendmail-queue';
import { lfLineEnds, sendmailControlText } from '../../src/queue/export-sendmail';
import { QueueStore } from '../../src/queue/store';
import { captureLogger, makeTempDir, removeDir } from './helpers';

const ID = '6B52hpOe031163';

function sendmailFile(recipientLines: string[], headerLines: string[]): string {
  return ['V8', 'T1796438631', 'K0', 'N0', 'P30017', 'I8/3/1234567', 'Fs', '${daemon_flags}c u', 'Sroot', ...recipientLines, ...headerLines, '.', ''].join('\n');
}

test('C lines mark alias expansions', () => {
  const text = sendmailFile(
    ['C:postmaster', 'RPFD:root', 'Cbob:1000:1000:bob', 'RPFD:|/usr/bin/vacation bob', 'C', 'RPFD:carol@remote.example', 'Eerrors@example.org'],
    ['H??Subject: t'],
  );
  const item = parseControlFile(text, ID);
  assert.equal(item.fromSendmail, true);
  assert.deepEqual(
    item.recipients.map((r) => [r.address, r.parent, r.ctladdr]),
    [
      ['root', 'postmaster', undefined],
      ['|/usr/bin/vacation bob', 'bob', 'bob'],
      ['carol@remote.example', undefined, undefined],
    ],
  );
});

test('conditional headers follow mailer flags', () => {
  const text = sendmailFile(
    ['RPFD:bob@remote.example'],
    ['H?P?Return-Path: <\u0081g>', 'H?D?Date: Sat, 5 Dec 2026 06:08:16 GMT', 'H?F?From: root <root>', 'H?x?Full-Name: a', '\tlong name', 'H?${auth_type}?X-Auth: yes', 'H??Subject: t'],
  );
  const item = parseControlFile(text, ID);
  assert.deepEqual(item.headers, ['Date: Sat, 5 Dec 2026 06:08:16 GMT', 'From: root <root>', 'Subject: t']);
});

test('macro conditional header kept when set', () => {
  const text = sendmailFile(['RPFD:bob@remote.example'], ['H?${auth_type}?X-Auth: yes']).replace('Sroot', '${auth_type}PLAIN\nSroot');
  assert.deepEqual(parseControlFile(text, ID).headers, ['X-Auth: yes']);
});

test('sendmail bytes decode as Latin-1', () => {
  // The Subject: ends with the byte 0xe9 (e with an acute accent in Latin-1), which is not valid UTF-8.
  const [before, after] = sendmailFile(['RPFD:bob@remote.example'], ['H??Subject: caf#']).split('#');
  const bytes = Buffer.concat([Buffer.from(before), Buffer.from([0xe9]), Buffer.from(after)]);
  const item = parseControlFile(decodeControlFile(bytes), ID);
  assert.equal(item.headers[0], 'Subject: caf\u00e9');
});

test('own files reject sendmail-only lines', () => {
  const own = ['V8', 'T1', 'K0', 'N0', 'P0', 'Xsize=0', 'Sroot@example.org', 'C:alias', 'Xstate=pending', 'RP:bob@example.org', '.', ''].join('\n');
  assert.throws(() => parseControlFile(own, ID), QueueFileError);
});

test('crlfLineEnds adds CR where missing', () => {
  assert.equal(crlfLineEnds(Buffer.from('a\nb\r\nc\n'), false).toString(), 'a\r\nb\r\nc\r\n');
  // A CRLF split between two blocks stays one line end.
  assert.equal(crlfLineEnds(Buffer.from('\nd'), true).toString(), '\nd');
  assert.equal(crlfLineEnds(Buffer.from('\nd'), false).toString(), '\r\nd');
  // Converting twice changes nothing.
  const once = crlfLineEnds(Buffer.from('x\n\n.y\n'), false);
  assert.equal(crlfLineEnds(once, false).toString(), once.toString());
});

test('recovery removes old .crlf files', async () => {
  const dir = makeTempDir();
  const old = new Date(Date.now() - 2 * 60 * 60 * 1000);
  fs.writeFileSync(`${dir}/df${ID}.crlf`, 'half\r\n');
  fs.utimesSync(`${dir}/df${ID}.crlf`, old, old);
  const young = '6B52hpOf031163';
  fs.writeFileSync(`${dir}/df${young}.crlf`, 'in progress\r\n');
  const { logger, lines } = captureLogger();
  const store = new QueueStore({ dir, superSafe: 'true', logger });
  await store.init();
  assert.deepEqual(fs.readdirSync(dir), [`df${young}.crlf`]);
  assert.deepEqual(lines, [`${ID}: removed df${ID}.crlf left by an interrupted conversion of a data file`]);
  removeDir(dir);
});

test('sendmail format keeps open recipients', () => {
  const item = parseControlFile(sendmailFile(['RPFD:x@remote.example'], ['H??Subject: t']), ID);
  item.recipients = [
    { address: 'sent@remote.example', state: 'sent' },
    { address: 'root', state: 'pending', parent: 'postmaster' },
    { address: '|/usr/bin/vacation bob', state: 'deferred', parent: 'bob', ctladdr: 'nobody', status: 'Deferred: busy' },
    { address: '/var/log/mail-copy', state: 'pending', parent: 'bob', ctladdr: 'no-such-user' },
    { address: 'carol@remote.example', state: 'pending', notify: ['NEVER'] },
  ];
  item.headers = ['Subject: two\r\n lines'];
  const text = sendmailControlText(item);
  assert.deepEqual(text.split('\n').slice(5), [
    'Fs',
    '${daemon_flags}c u',
    'S<root>',
    'C:postmaster',
    'RP:root',
    'MDeferred: busy',
    'Cnobody:65534:65534:bob',
    'RP:|/usr/bin/vacation bob',
    // A user not in the password file is left out, so sendmail uses DefaultUser, not uid 0.
    'C:bob',
    'RP:/var/log/mail-copy',
    'C',
    'RPN:carol@remote.example',
    'H?P?Return-Path: <\u0081g>',
    'H??Subject: two',
    ' lines',
    '.',
    '',
  ]);
  // Read back, it is the same item, less the recipient already sent.
  const back = parseControlFile(text, ID);
  assert.deepEqual(back.recipients.map((r) => [r.address, r.parent, r.ctladdr]), [
    ['root', 'postmaster', undefined],
    ['|/usr/bin/vacation bob', 'bob', 'nobody'],
    ['/var/log/mail-copy', 'bob', undefined],
    ['carol@remote.example', undefined, undefined],
  ]);
  assert.deepEqual(back.headers, ['Subject: two\r\n lines']);
});

test('lfLineEnds drops the CR of CRLF', () => {
  assert.deepEqual(lfLineEnds(Buffer.from('a\r\nb\rc\r\n'), false), { out: Buffer.from('a\nb\rc\n'), heldCr: false });
  // A CR at the end of a block waits for the next block's first byte.
  assert.deepEqual(lfLineEnds(Buffer.from('d\r'), false), { out: Buffer.from('d'), heldCr: true });
  assert.deepEqual(lfLineEnds(Buffer.from('\ne'), true), { out: Buffer.from('\ne'), heldCr: false });
  assert.deepEqual(lfLineEnds(Buffer.from('f'), true), { out: Buffer.from('\rf'), heldCr: false });
});

test('store rejects unconverted sendmail items', async () => {
  const dir = makeTempDir();
  const { logger } = captureLogger();
  const store = new QueueStore({ dir, superSafe: 'false', logger });
  await store.init({ recover: false });
  const item = parseControlFile(sendmailFile(['RPFD:bob@remote.example'], ['H??Subject: t']), ID);
  await assert.rejects(store.update(item), /written by sendmail: convert it with adoptSendmailItem\(\) first/);
  assert.deepEqual(fs.readdirSync(dir).filter((n) => !n.startsWith('.')), []);
  removeDir(dir);
});
