// Aliases end to end: lists, :include:, |program and /file targets, a loop,
// a .forward file, owner- aliases, newaliases (-bi) with a malformed line,
// and -bv.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { baseMc, startPosthorn, type Posthorn } from '../helpers/posthorn';
import { repoRoot } from '../helpers/peers';
import { runCommand, waitFor } from '../helpers/process';
import { makeMessage, quoteRe, sendRaw } from '../helpers/e2e-setup';

const NO_LOAD_LIMITS = ["define(`confREFUSE_LA', `100000')", "define(`confQUEUE_LA', `100000')"];

const ALIASES = [
  '# test aliases',
  'staff: alice, bob, :include:@DIR@/lists/staff.txt',
  'owner-staff: listmaster',
  'archive: /@DIR@/archive.mbox',
  'pipe: "|cat > @DIR@/out/pipe.out"',
  'ping: pong',
  'pong: ping',
  'this line has no colon',
  'after-bad: carol',
  '',
].join('\n');

async function startWithAliases(t: { after(fn: () => Promise<void>): void }): Promise<Posthorn> {
  const mc = baseMc({
    extra: [
      ...NO_LOAD_LIMITS,
      "define(`ALIAS_FILE', `@DIR@/aliases')",
      "define(`confFORWARD_PATH', `@DIR@/home/$u/.forward')",
      "define(`confDONT_BLAME_SENDMAIL', `TrustStickyBit')",
      "define(`confLOG_LEVEL', `10')",
    ],
  });
  const ph = await startPosthorn({ mc });
  t.after(() => ph.stop());
  fs.writeFileSync(path.join(ph.dir, 'aliases'), ALIASES.replace(/@DIR@/g, ph.dir).replace('/' + ph.dir, ph.dir));
  fs.mkdirSync(path.join(ph.dir, 'lists'));
  // A program from the alias file runs as DefaultUser, here uid and gid 1 (mailnull has no account).
  fs.chmodSync(ph.dir, 0o755);
  fs.mkdirSync(path.join(ph.dir, 'out'), { mode: 0o777 });
  fs.chmodSync(path.join(ph.dir, 'out'), 0o777);
  fs.writeFileSync(path.join(ph.dir, 'lists', 'staff.txt'), '# included\ndave\n');
  fs.mkdirSync(path.join(ph.dir, 'home', 'erin'), { recursive: true });
  fs.writeFileSync(path.join(ph.dir, 'home', 'erin', '.forward'), `\\erin, "|cat > ${ph.dir}/erin.out"\n`);
  return ph;
}

test('aliases expand at delivery', async (t) => {
  const ph = await startWithAliases(t);
  const sent = await sendRaw({
    port: ph.port,
    from: 'sender@remote.example',
    to: ['staff@posthorn.test', 'archive@posthorn.test', 'pipe@posthorn.test', 'ping@posthorn.test', 'erin@posthorn.test', 'after-bad@posthorn.test'],
    data: makeMessage({ from: 'sender@remote.example', to: 'staff@posthorn.test', subject: 'alias test', body: 'Hello list.' }),
  });
  assert.notEqual(sent.queueId, '', sent.replies.join('\n'));
  const q = quoteRe(sent.queueId);

  await ph.waitForLog(new RegExp(`${q}: to=<ping@posthorn\\.test>, .*dsn=5\\.4\\.6, stat=aliasing/forwarding loop broken`), 30_000);
  for (const user of ['alice', 'bob', 'dave', 'erin', 'carol']) {
    await ph.waitForMailbox(user, 'Hello list.\n\n', 20_000);
  }
  // owner-staff becomes the envelope sender of the staff list's copies.
  assert.match(ph.mailbox('alice'), /^Return-Path: <listmaster@mx\.posthorn\.test>$/m);
  assert.match(ph.mailbox('carol'), /^Return-Path: <sender@remote\.example>$/m);

  await waitFor('the pipe and file targets', async () => fs.existsSync(path.join(ph.dir, 'out', 'pipe.out')) && fs.existsSync(path.join(ph.dir, 'archive.mbox')), 20_000);
  const piped = fs.readFileSync(path.join(ph.dir, 'out', 'pipe.out'), 'latin1');
  // Written by the alias program as uid 1, not as root.
  assert.equal(fs.statSync(path.join(ph.dir, 'out', 'pipe.out')).uid, process.getuid?.() === 0 ? 1 : process.getuid?.());
  assert.match(piped, /^From sender@remote\.example /);
  assert.match(piped, /^Subject: alias test$/m);
  const archived = fs.readFileSync(path.join(ph.dir, 'archive.mbox'), 'latin1');
  assert.match(archived, /^Return-Path: <sender@remote\.example>$/m);
  await waitFor('the .forward program', async () => fs.existsSync(path.join(ph.dir, 'erin.out')), 20_000);
  await ph.waitForLog(new RegExp(`${q}: to=<\\|cat > [^>]*pipe\\.out>.*, mailer=prog, .*stat=Sent`), 20_000);
  assert.match(ph.logs(), new RegExp(`${q}: to=<${quoteRe(ph.dir)}/archive\\.mbox>, .*mailer=\\*file\\*, .*stat=Sent`));
  assert.match(ph.logs(), new RegExp(`${q}: alias staff@posthorn\\.test => alice, bob, dave`));

  // The loop bounces: a DSN to the sender is queued with the loop as its reason.
  await ph.waitForLog(new RegExp(`${q}: \\w+: DSN: aliasing/forwarding loop broken`), 20_000);
});

test('direct program address refused', async (t) => {
  const ph = await startWithAliases(t);
  const sent = await sendRaw({
    port: ph.port,
    from: 'sender@remote.example',
    to: ['"|touch /tmp/posthorn-should-not-exist"@posthorn.test'],
    data: makeMessage({ from: 'sender@remote.example', to: 'x@posthorn.test', subject: 'direct', body: 'No.' }),
  });
  const q = quoteRe(sent.queueId);
  await ph.waitForLog(new RegExp(`${q}: to=<.*touch.*>, .*dsn=5\\.7\\.1, stat=Cannot mail directly to programs`), 30_000);
  assert.equal(fs.existsSync('/tmp/posthorn-should-not-exist'), false);
});

test('newaliases names the bad line', async (t) => {
  const ph = await startWithAliases(t);
  const file = path.join(ph.dir, 'aliases');
  const result = await ph.run(['-bi']);
  // sendmail 8.17 prints the bad line on standard output too, and exits 70 (EX_SOFTWARE).
  assert.equal(result.code, 70, result.stderr);
  assert.equal(result.stderr, '');
  assert.match(result.stdout, new RegExp(`^${quoteRe(file)}: line 8: missing colon\n${quoteRe(file)}: 7 aliases, longest \\d+ bytes, \\d+ bytes total\n$`));
  assert.ok(fs.existsSync(`${file}.db`), 'aliases.db not written');

  // The same program run under the name newaliases rebuilds without -bi.
  const byName = await runCommand(process.execPath, [path.join(repoRoot, 'bin', 'newaliases'), '-C', ph.mcPath], { cwd: ph.dir });
  assert.equal(byName.code, 70, byName.stderr);
  assert.match(byName.stdout, new RegExp(`^${quoteRe(file)}: line 8: missing colon$`, 'm'));
  assert.match(byName.stdout, new RegExp(`^${quoteRe(file)}: 7 aliases, `, 'm'));
});

test('verify prints deliverable targets', async (t) => {
  const ph = await startWithAliases(t);
  const result = await ph.run(['-bv', 'staff@posthorn.test', 'pipe', 'bob@remote.example', 'ping']);
  assert.equal(result.stdout, [
    'alice... deliverable: mailer local, user alice',
    'bob... deliverable: mailer local, user bob',
    'dave... deliverable: mailer local, user dave',
    `|cat > ${ph.dir}/out/pipe.out... deliverable: mailer prog, user |cat > ${ph.dir}/out/pipe.out`,
    'bob@remote.example... deliverable: mailer esmtp, host remote.example., user bob@remote.example',
    'ping... aliasing/forwarding loop broken',
    '',
  ].join('\n'));
  assert.equal(result.code, 67);
});

test('failed list member bounces alone', async (t) => {
  const ph = await startWithAliases(t);
  fs.appendFileSync(path.join(ph.dir, 'aliases'), `crew: frank, :include:${ph.dir}/lists/gone.txt\n`);
  const sent = await sendRaw({
    port: ph.port,
    from: 'gina@posthorn.test',
    to: ['crew@posthorn.test'],
    data: makeMessage({ from: 'gina@posthorn.test', to: 'crew@posthorn.test', subject: 'crew news', body: 'To the crew.' }),
  });
  assert.notEqual(sent.queueId, '', sent.replies.join('\n'));

  // frank gets the message; the sender gets a DSN for the list member that cannot be read.
  await ph.waitForMailbox('frank', 'To the crew.');
  const dsn = await ph.waitForMailbox('gina', 'Cannot open');
  assert.match(dsn, new RegExp(`Final-Recipient: RFC822; :include:${quoteRe(ph.dir)}/lists/gone\\.txt`));
  assert.match(dsn, /Original-Recipient: rfc822;\s?crew@posthorn\.test/);
  assert.match(dsn, /Status: 5\.2\.4/);
  assert.doesNotMatch(ph.mailbox('frank'), /Cannot open/);
});
