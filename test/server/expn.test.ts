// EXPN against real sendmail 8.17 (`sendmail -bs` from .peers/): the same
// aliases file, the same commands, the replies compared line by line.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { baseMc, startPosthorn } from '../helpers/posthorn';
import { rawSmtp } from '../helpers/clients';
import { requirePeer } from '../helpers/peers';
import { startSendmail } from '../helpers/sendmail';
import { stdioSmtp } from './stdio-smtp';

// Only names every Debian machine has in /etc/passwd (root, daemon, bin).
const ALIASES = [
  'postmaster: root',
  'staff: helper, bob@remote.example, root',
  'helper: helper2',
  'helper2: "|/bin/cat"',
  'filer: /tmp/expn-list',
  'l1: a1@r.example, a2@r.example, a3@r.example',
  'l3: a1@r.example, root, a2@r.example, daemon',
  'dupl: root, root, a1@r.example, A1@R.example',
  'bad: nosuch1, root, nosuch2',
  '',
].join('\n');

const EXPNS = [
  'EXPN postmaster',
  'EXPN staff',
  'EXPN <staff>',
  'EXPN Staff Members <staff>',
  'EXPN filer, helper',
  'EXPN l3, l1',
  'EXPN root, bin, a1@r.example, daemon, a2@r.example',
  'EXPN dupl',
  'EXPN x@b.example, y@a.example, v@a.example',
  'EXPN nosuch',
  'EXPN bad',
  'EXPN nosuch1, nosuch2',
  'EXPN |/bin/cat',
  'EXPN /tmp/expn-list',
  'EXPN <>',
  'EXPN <',
  'EXPN',
  'EXPN root>',
  'EXPN ro"ot',
  'EXPN <<root>>',
  'EXPN undisclosed:;',
  'EXPN daemon+foo',
  'EXPN \x1b[31mred',
];

/** Sessions of five EXPNs: from the seventh on, both servers slow down (checksmtpattack). */
const SESSIONS = Array.from({ length: Math.ceil(EXPNS.length / 5) }, (_, i) => [
  'EHLO client.example',
  ...EXPNS.slice(i * 5, i * 5 + 5),
  'QUIT',
]);

/** Returns the EXPN replies without host names. */
function normalize(replies: string[]): string[] {
  return replies.slice(2, -1).map((r) => r.replace(/mx\.(posthorn|sendmail)\.test/g, '<host>'));
}

test('EXPN replies match sendmail 8.17', { timeout: 90_000 }, async (t) => {
  const bin = requirePeer(t, 'sendmail');
  if (!bin) return;
  const sendmail = await startSendmail({ bin });
  t.after(() => sendmail.stop());
  const sendmailAliases = path.join(sendmail.dir, 'aliases');
  fs.writeFileSync(sendmailAliases, ALIASES);
  // A checkout under /tmp has a world-writable folder in the path; its sticky bit makes it safe.
  const trust = '-ODontBlameSendmail=TrustStickyBit';
  const built = await sendmail.run(['-bi', trust, `-OAliasFile=${sendmailAliases}`]);
  assert.equal(built.code, 0, built.stdout + built.stderr);

  const mc = baseMc({ extra: ["define(`ALIAS_FILE', `@DIR@/aliases')"] });
  const args = ['-O', 'DeliveryMode=queueonly', '-O', 'LocalUserCheck=passwd', '-O', 'DontBlameSendmail=TrustStickyBit'];
  const ph = await startPosthorn({ mc, args });
  t.after(() => ph.stop());
  fs.writeFileSync(path.join(ph.dir, 'aliases'), ALIASES);

  const bs = ['--uts', 'sh', '-c', 'hostname mx.sendmail.test && exec "$0" "$@"', bin,
    '-C', `${sendmail.dir}/sendmail.cf`, '-bs', trust, `-OAliasFile=${sendmailAliases}`];
  for (const commands of SESSIONS) {
    const ours = normalize(await rawSmtp(ph.port, commands));
    const theirs = normalize(await stdioSmtp('unshare', bs, commands));
    assert.equal(theirs.length, commands.length - 2);
    for (let i = 0; i < theirs.length; i++) assert.equal(ours[i], theirs[i], commands[i + 1]);
  }
});
