// A .forward that its user could not read must be refused, and one the user
// can read must be used. sendmail reads a .forward as its user, so both the
// file's mode and search permission on every folder above it count, and so
// do the user's supplementary groups.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { baseMc, startPosthorn, type Posthorn } from '../helpers/posthorn';
import { rawSmtp } from '../helpers/clients';

async function startWithForwards(t: { after(fn: () => Promise<void>): void }): Promise<Posthorn> {
  const mc = baseMc({
    extra: [
      "define(`ALIAS_FILE', `@DIR@/aliases')",
      "define(`confFORWARD_PATH', `@DIR@/forward/$u.forward')",
      "define(`confDONT_BLAME_SENDMAIL', `TrustStickyBit')",
    ],
  });
  const ph = await startPosthorn({ mc, args: ['-O', 'DeliveryMode=queueonly'] });
  t.after(() => ph.stop());
  // Other users may pass through the test folder, as they may through /home.
  fs.chmodSync(ph.dir, 0o755);
  fs.writeFileSync(path.join(ph.dir, 'aliases'), '');
  fs.mkdirSync(path.join(ph.dir, 'forward'), { mode: 0o755 });
  return ph;
}

test('EXPN hides a .forward link into a closed folder', { timeout: 60_000 }, async (t) => {
  const ph = await startWithForwards(t);
  // A world-readable file that only root can reach, as /root/.bashrc in /root (mode 0700).
  const vault = path.join(ph.dir, 'vault');
  fs.mkdirSync(vault, { mode: 0o700 });
  fs.writeFileSync(path.join(vault, 'token'), 'hunter2token\n', { mode: 0o644 });
  fs.symlinkSync(path.join(vault, 'token'), path.join(ph.dir, 'forward', 'daemon.forward'));

  const replies = await rawSmtp(ph.port, ['EHLO client.example', 'EXPN daemon', 'QUIT']);
  // The user "daemon" cannot open vault/token, so sendmail would ignore the .forward.
  assert.doesNotMatch(replies[2], /hunter2token/);
});

/** Returns a user with a supplementary group from /etc/group, or undefined. */
function supplementaryMember(): { user: string; gid: number } | undefined {
  for (const line of fs.readFileSync('/etc/group', 'utf8').split('\n')) {
    const [, , gid, members] = line.split(':');
    const user = members?.split(',')[0];
    if (user !== undefined && user !== '' && user !== 'root') return { user, gid: Number(gid) };
  }
  return undefined;
}

test('.forward readable through a supplementary group', { timeout: 60_000 }, async (t) => {
  const member = supplementaryMember();
  if (member === undefined) {
    t.skip('no user with a supplementary group in /etc/group');
    return;
  }
  const ph = await startWithForwards(t);
  const file = path.join(ph.dir, 'forward', `${member.user}.forward`);
  fs.writeFileSync(file, 'forwarded-elsewhere\n');
  // Owned by root, readable by the group that the user is a member of.
  fs.chownSync(file, 0, member.gid);
  fs.chmodSync(file, 0o640);

  const replies = await rawSmtp(ph.port, ['EHLO client.example', `EXPN ${member.user}`, 'QUIT']);
  assert.match(replies[2], /forwarded-elsewhere/);
});
