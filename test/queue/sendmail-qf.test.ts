// Control files as sendmail 8.17 writes them: lines Posthorn does not write
// itself (C, I, E), conditional headers and 8-bit bytes, and the conversion of
// sendmail's data file to CRLF line ends.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import { decodeControlFile, parseControlFile, QueueFileError } from '../../src/queue/qf';
import { crlfLineEnds } from '../../src/queue/sendmail-queue';
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
    ['H?P?Return-Path: <\u00fdg>', 'H?D?Date: Sat, 5 Dec 2026 06:08:16 GMT', 'H?F?From: root <root>', 'H?x?Full-Name: a', '\tlong name', 'H?${auth_type}?X-Auth: yes', 'H??Subject: t'],
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
  assert.deepEqual(lines, [`${ID}: removed df${ID}.crlf left by an interrupted conversion of sendmail's data file`]);
  removeDir(dir);
});
