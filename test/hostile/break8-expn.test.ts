// Hostile EXPN and alias expansion: a wide and deep alias chain, a .forward
// symlink to a file only root may read, control bytes in the EXPN argument,
// and a control file that sendmail 8.17 wrote.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as path from 'node:path';
import { baseMc, startPosthorn } from '../helpers/posthorn';
import { rawSmtp } from '../helpers/clients';
import { parseControlFile } from '../../src/queue/qf';

/** Five spellings of the next alias on each of eight levels: 5^8 paths to root. */
function wideAliases(): string {
  const lines: string[] = [];
  for (let level = 0; level < 8; level++) {
    const next = `e${level + 1}`;
    const spellings = [next, next.toUpperCase(), `"${next}"`, `${next}@posthorn.test`, `${next}@mx.posthorn.test`];
    lines.push(`e${level}: ${spellings.join(', ')}`);
  }
  lines.push('e8: root', '');
  return lines.join('\n');
}

/** Resolves with the first reply line of a new session after its NOOP, or 'none' when `other` settles first. */
function noopDuring(port: number, other: Promise<unknown>): Promise<string> {
  return new Promise((resolve) => {
    const socket = net.connect({ host: '127.0.0.1', port });
    let text = '';
    let sent = false;
    socket.on('data', (chunk: Buffer) => {
      text += chunk.toString('latin1');
      if (!sent && text.includes('\r\n')) {
        sent = true;
        socket.write('NOOP\r\n');
      } else if (sent && /\r\n.*\r\n/s.test(text)) {
        socket.destroy();
        resolve(text.split('\r\n')[1]);
      }
    });
    socket.on('error', () => resolve('error'));
    void other.then(() => {
      socket.destroy();
      resolve('none');
    });
  });
}

test('EXPN of a wide alias chain stays answerable', { timeout: 120_000 }, async (t) => {
  const mc = baseMc({ extra: ["define(`ALIAS_FILE', `@DIR@/aliases')"] });
  const ph = await startPosthorn({ mc, args: ['-O', 'DeliveryMode=queueonly'] });
  t.after(() => ph.stop());
  fs.writeFileSync(path.join(ph.dir, 'aliases'), wideAliases());

  const expn = rawSmtp(ph.port, ['EHLO client.example', 'EXPN e0', 'QUIT'], { timeoutMs: 100_000 });
  // Wait for the EXPN to be under way before the second client connects.
  await ph.waitForLog(/EXPN e0/);
  const noop = await noopDuring(ph.port, expn);
  const replies = await expn;

  // The daemon must serve other clients while one EXPN runs, unless the EXPN was over first.
  assert.ok(noop === '250 2.0.0 OK' || noop === 'none', noop);
  // sendmail drops a repeated address before it expands it again, so each alias is expanded once.
  assert.equal(replies[2], '250 2.1.5 root <root@mx.posthorn.test>');
});

test('EXPN hides a root-only .forward target', { timeout: 60_000 }, async (t) => {
  // ForwardPath points into the test folder, and the system user "daemon" is the local user.
  const mc = baseMc({
    extra: [
      "define(`ALIAS_FILE', `@DIR@/aliases')",
      "define(`confFORWARD_PATH', `@DIR@/forward/$u.forward')",
      "define(`confDONT_BLAME_SENDMAIL', `TrustStickyBit')",
    ],
  });
  const ph = await startPosthorn({ mc, args: ['-O', 'DeliveryMode=queueonly'] });
  t.after(() => ph.stop());
  fs.writeFileSync(path.join(ph.dir, 'aliases'), '');
  const secret = path.join(ph.dir, 'secret');
  fs.writeFileSync(secret, 'rootpw: hunter2\n', { mode: 0o600 });
  fs.mkdirSync(path.join(ph.dir, 'forward'), { mode: 0o755 });
  // The user may put a symlink in place of their .forward, and its target belongs to root.
  fs.symlinkSync(secret, path.join(ph.dir, 'forward', 'daemon.forward'));

  const replies = await rawSmtp(ph.port, ['EHLO client.example', 'EXPN daemon', 'QUIT']);
  // Debian's sendmail 8.17.1.9 replies "250 2.1.5 <daemon@...>" with the same files.
  assert.doesNotMatch(replies[2], /hunter2/);
});

test('EXPN echoes no control bytes', { timeout: 60_000 }, async (t) => {
  const ph = await startPosthorn({ mc: baseMc(), args: ['-O', 'DeliveryMode=queueonly'] });
  t.after(() => ph.stop());

  const replies = await rawSmtp(ph.port, ['EHLO client.example', 'EXPN ro\rot', 'EXPN ro\0ot', 'EXPN \x1b[31mred', 'QUIT']);
  const expnReplies = replies.slice(2, 5);
  for (const text of expnReplies) {
    assert.doesNotMatch(text, /[\x00-\x08\x0b-\x1f]/, JSON.stringify(text));
  }
  // The reply code appears once per line.
  assert.doesNotMatch(expnReplies[0], /^\d{3} \S+ \d{3} /);
});

test('control file from sendmail 8.17 parses', () => {
  // Written by Debian's sendmail 8.17.1.9 for
  // `sendmail -odq -f x@y.example -N success,delay -R hdrs -V 'env<id>x' root`.
  const text = [
    'V8',
    'T1796437078',
    'K0',
    'N0',
    'P30029',
    'Fdns',
    '$_root@localhost',
    '${daemon_flags}c u',
    'Sx@y.example',
    'Zenv<id>x',
    'Ax@y.example',
    'rRFC822; root@mx.sendmail.test',
    'RPNSD:root',
    'H?D?Date: Sat, 5 Dec 2026 02:17:58 GMT',
    'H?F?From: x@y.example',
    'H??Subject: from sendmail',
    '.',
    '',
  ].join('\n');
  const item = parseControlFile(text, '6B52Hwdo001179');
  assert.equal(item.sender, 'x@y.example');
  assert.equal(item.recipients.length, 1);
});
