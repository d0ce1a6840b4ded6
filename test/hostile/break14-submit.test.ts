// Reproductions for problems found by comparing the command-line submission
// path (-t, -f, header recipients) and its bounces with Debian's sendmail
// 8.17.1.9, run on the same input. Each test states sendmail's behaviour, so
// each fails while the problem is present.

import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { posthornBin } from '../helpers/posthorn';
import { runCommand, type CommandResult } from '../helpers/process';
import { startSink } from '../helpers/sink';

/** A configuration folder without a daemon: queue, mailboxes and log under one temporary folder. */
interface Setup {
  dir: string;
  run(args: string[], input: string | Buffer): Promise<CommandResult>;
  /** Returns the text of the only control file and removes the queue files. */
  takeControlFile(): string;
  mailbox(user: string): string;
}

const setups: string[] = [];
after(() => {
  for (const dir of setups) fs.rmSync(dir, { recursive: true, force: true });
});

function setup(extra: string[] = []): Setup {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'posthorn-break14-'));
  setups.push(dir);
  const queueDir = path.join(dir, 'mqueue');
  const mailDir = path.join(dir, 'mail');
  fs.mkdirSync(queueDir, { mode: 0o700 });
  fs.mkdirSync(mailDir);
  const mcPath = path.join(dir, 'sendmail.mc');
  const lines = [
    `define(\`QUEUE_DIR', \`${queueDir}')`,
    `define(\`confMAILBOX_DIR', \`${mailDir}')`,
    `define(\`confLOG_FILE', \`${path.join(dir, 'maillog')}')`,
    "define(`confDOMAIN_NAME', `mx.posthorn.test')",
    "LOCAL_DOMAIN(`posthorn.test')",
    "define(`confQUEUE_LA', `1000')",
    "define(`confREFUSE_LA', `1000')",
    ...extra,
    "MAILER(`local')",
    "MAILER(`smtp')",
  ];
  fs.writeFileSync(mcPath, lines.join('\n') + '\n');
  return {
    dir,
    run: (args, input) =>
      runCommand(process.execPath, [posthornBin, '-C', mcPath, ...args], {
        input: typeof input === 'string' ? Buffer.from(input, 'latin1') : input,
        timeoutMs: 30_000,
      }),
    takeControlFile() {
      const files = fs.readdirSync(queueDir);
      const qf = files.filter((f) => f.startsWith('qf'));
      assert.equal(qf.length, 1, `queue files: ${files.join(' ')}`);
      const text = fs.readFileSync(path.join(queueDir, qf[0]), 'latin1');
      for (const f of files) fs.rmSync(path.join(queueDir, f));
      return text;
    },
    mailbox(user) {
      try {
        return fs.readFileSync(path.join(mailDir, user), 'latin1');
      } catch {
        return '';
      }
    },
  };
}

/** Returns the recipient addresses of a control file, in order. */
function recipientsOf(qf: string): string[] {
  return [...qf.matchAll(/^R[A-Z]*:<?(.*?)>?$/gm)].map((m) => m[1]);
}

test('-t adds command-line recipients', { timeout: 60_000 }, async () => {
  // sendmail 8.17 (built without _FFR_FIX_DASHT) adds the argument recipients
  // to the header ones. Leaving them out lost this message with exit 0, and
  // "sendmail -t -i bob@..." is a common way to call it.
  const s = setup();
  const only = await s.run(['-odq', '-t', '-i', 'bob@example.org'], 'To: bob@example.org\nSubject: one\n\nHello.\n');
  assert.equal(only.code, 0, only.stderr);
  assert.doesNotMatch(only.stderr, /No recipient addresses/);
  assert.deepEqual(recipientsOf(s.takeControlFile()), ['bob@example.org']);

  const more = await s.run(['-odq', '-t', '-i', 'dave@example.org'], 'To: alice@example.org\nCc: carol@example.org\n\nHello.\n');
  assert.equal(more.code, 0, more.stderr);
  assert.deepEqual(recipientsOf(s.takeControlFile()).sort(), ['alice@example.org', 'carol@example.org', 'dave@example.org']);
});

test('-f without a domain gets $j', { timeout: 60_000 }, async () => {
  // sendmail sends "-f www-data" as MAIL FROM:<www-data@$j> and writes that
  // address into the From: it adds. Next hops reject an unqualified sender
  // (posthorn's own server replies 553 "Domain name required").
  const s = setup();
  const result = await s.run(['-odq', '-f', 'www-data', '-t', '-i'], 'To: alice@example.org\nSubject: cron\n\nHello.\n');
  assert.equal(result.code, 0, result.stderr);
  const qf = s.takeControlFile();
  assert.match(qf, /^S<www-data@mx\.posthorn\.test>$/m);
  // sendmail adds the account's full name from the password file: "From: www-data <www-data@host>".
  assert.match(qf, /^H\?\?From: www-data <www-data@mx\.posthorn\.test>$/m);
});

test('old-style header list splits on blanks', { timeout: 60_000 }, async () => {
  // A list without , ; < ( is old style for sendmail's sendtolist(): "alice
  // bob" is two recipients. Joining the words sent the mail to "alicebob", and
  // a folded Bcc: made the whole submission fail.
  const s = setup();
  const plain = await s.run(['-odq', '-t', '-i'], 'To: alice bob\nSubject: old style\n\nHello.\n');
  assert.equal(plain.code, 0, plain.stderr);
  assert.deepEqual(recipientsOf(s.takeControlFile()), ['alice', 'bob']);

  const folded = await s.run(['-odq', '-t', '-i'], 'To: carol@example.org\nBcc: secret@example.org\n\tsecret2@example.org\nSubject: x\n\nHello.\n');
  assert.equal(folded.code, 0, folded.stderr);
  const qf = s.takeControlFile();
  assert.deepEqual(recipientsOf(qf), ['carol@example.org', 'secret@example.org', 'secret2@example.org']);
  assert.doesNotMatch(qf, /^H\?\?Bcc/im);

  // New-style lists keep their dotted and spaced forms as one address.
  const spaced = await s.run(['-odq', '-t', '-i'], 'To: john . doe @ example.org, Jane Roe <jane@example.org>\n\nHello.\n');
  assert.equal(spaced.code, 0, spaced.stderr);
  assert.deepEqual(recipientsOf(s.takeControlFile()), ['john.doe@example.org', 'jane@example.org']);
});

test('bad address exits 64 with one reason', { timeout: 60_000 }, async () => {
  // sendmail: "a@example.org>... Unbalanced '>'" and, as for every address
  // error, EX_USAGE (64): "if (Errors > 0 && ExitStat == EX_OK) ExitStat = EX_USAGE".
  const s = setup();
  const header = await s.run(['-odq', '-t', '-i'], 'To: a21@example.org>\n\nHello.\n');
  assert.equal(header.code, 64, header.stderr);
  assert.equal(header.stderr.trim().split('\n').length, 1, header.stderr);
  assert.match(header.stderr, /^posthorn: a21@example\.org>\.\.\. [A-Z][^.]*$/m);
  assert.equal((header.stderr.match(/\.\.\. /g) ?? []).length, 1, header.stderr);

  const route = await s.run(['-odq', 'x@@example.org'], 'Subject: x\n\nHello.\n');
  assert.equal(route.code, 64, route.stderr);
  assert.match(route.stderr, /^posthorn: x@@example\.org\.\.\. Invalid route address$/m);
});

test('header NUL bytes dropped', { timeout: 60_000 }, async () => {
  // sendmail's collect() drops a NUL in the header, so it sent "Subject: nulhere".
  const s = setup();
  const result = await s.run(['-odq', '-t', '-i'], Buffer.from('To: alice@example.org\nSubject: nul\0here\n\nbo\0dy\n', 'latin1'));
  assert.equal(result.code, 0, result.stderr);
  const qf = s.takeControlFile();
  assert.match(qf, /^H\?\?Subject: nulhere$/m);
  assert.doesNotMatch(qf, /\0/);
});

test('LocalUserCheck=passwd bounces unknown command-line user', { timeout: 60_000 }, async () => {
  // The RCPT check does not see command-line or alias recipients. sendmail's
  // local mailer replies "User unknown" for them, -odi exits 67 (EX_NOUSER)
  // and the sender gets a DSN. Before, the message went into a mailbox file
  // that no user reads, logged as stat=Sent.
  const s = setup(["define(`confLOCAL_USER_CHECK', `passwd')"]);
  const result = await s.run(['-odi', '-f', 'root@mx.posthorn.test', 'nosuchuser42'], 'Subject: lost\n\nHello.\n');
  assert.equal(result.code, 67, result.stderr);
  assert.equal(s.mailbox('nosuchuser42'), '');

  const dsn = s.mailbox('root');
  assert.match(dsn, /^Final-Recipient: RFC822; nosuchuser42/m);
  assert.match(dsn, /^Action: failed$/m);
  assert.match(dsn, /^Status: 5\.1\.1$/m);
  // No MTA handed the message over, so sendmail writes no Received-From-MTA:
  // for a command-line submission. "root@localhost" is no DNS name either.
  assert.doesNotMatch(dsn, /^Received-From-MTA:/m);
  assert.match(fs.readFileSync(path.join(s.dir, 'maillog'), 'utf8'), /to=<nosuchuser42>, .*dsn=5\.1\.1, stat=User unknown/);
});

test('local user gets one copy', { timeout: 60_000 }, async () => {
  // sendmail's local mailer has no F=u: it folds the user name to lower case,
  // and "alice", "ALICE" and "alice@<local domain>" are one recipient, so the
  // mailbox gets one copy. "alice+x" is a recipient of its own there too.
  const s = setup();
  const input = 'To: alice, ALICE, Alice@posthorn.test\nCc: alice+x@posthorn.test\nSubject: once\n\nHello.\n';
  const result = await s.run(['-odi', '-t', '-i'], input);
  assert.equal(result.code, 0, result.stderr);
  assert.equal(s.mailbox('alice').match(/^From /gm)?.length, 2, s.mailbox('alice'));
});

test('empty Date, From, Message-Id replaced', { timeout: 60_000 }, async () => {
  // sendmail drops an empty header that its configuration has a default for
  // (H?D?Date, H?F?From, H?M?Message-Id) and adds its own, on the command line
  // and over SMTP alike. Other empty headers stay. Keeping the empty ones sent
  // a message with "From:" and "Date:" empty, which RFC 5322 does not allow.
  const s = setup();
  const input = 'To: alice@example.org\nFrom:\nDate: \nMessage-Id:\nX-Empty:\nSubject: e\n\nHello.\n';
  const cli = await s.run(['-odq', '-t', '-i'], input);
  assert.equal(cli.code, 0, cli.stderr);
  const fromCli = s.takeControlFile();
  assert.match(fromCli, /^H\?\?From: (\S+ <\S+@mx\.posthorn\.test>|\S+@mx\.posthorn\.test)$/m);
  assert.match(fromCli, /^H\?\?Date: \S.*\d{4}/m);
  assert.match(fromCli, /^H\?\?Message-Id: <[^>]+@mx\.posthorn\.test>$/m);
  assert.doesNotMatch(fromCli, /^H\?\?(From|Date|Message-Id):\s*$/im);
  assert.match(fromCli, /^H\?\?X-Empty:$/m);

  const data = input.replace(/\n/g, '\r\n');
  const script = `EHLO client.example\r\nMAIL FROM:<a@example.org>\r\nRCPT TO:<bob@posthorn.test>\r\nDATA\r\n${data}.\r\nQUIT\r\n`;
  const smtp = await s.run(['-bs', '-odq'], script);
  assert.match(smtp.stdout, /^250 2\.0\.0 /m, smtp.stdout);
  const fromSmtp = s.takeControlFile();
  assert.match(fromSmtp, /^H\?\?From: a@example\.org$/m);
  assert.doesNotMatch(fromSmtp, /^H\?\?(From|Date|Message-Id):\s*$/im);
});

test('-t takes recipients from Apparently-To:', { timeout: 60_000 }, async () => {
  // Apparently-To: is a recipient header in sendmail's table (H_RCPT), and
  // sendmail -t sent this message to app@example.org. Ignoring it printed "No
  // recipient addresses found in header" with exit 0, and the message was gone.
  const s = setup();
  const result = await s.run(['-odq', '-t', '-i'], 'Apparently-To: app@example.org\nSubject: app\n\nHello.\n');
  assert.equal(result.code, 0, result.stderr);
  assert.doesNotMatch(result.stderr, /No recipient/);
  assert.deepEqual(recipientsOf(s.takeControlFile()), ['app@example.org']);
});

test('relayed headers get the local domain', { timeout: 60_000 }, async (t) => {
  // sendmail adds @$j to header addresses without a domain when it relays:
  // it sent "To: joe@mx..., alice@example.org" and "Reply-To: helpdesk@mx...".
  // Left as "joe", a reply from alice's side goes to joe at alice's domain.
  const sink = await startSink();
  t.after(() => sink.close());
  const s = setup(["define(`SMART_HOST', `[127.0.0.1]')", `define(\`RELAY_MAILER_ARGS', \`TCP $h ${sink.port}')`]);
  const input = 'From: root (The Boss)\nTo: joe, alice@example.org\nCc: Bob <bob>, "Ann Q" <ann@example.org>\nReply-To: helpdesk\nSubject: q\n\nHello.\n';
  const result = await s.run(['-odi', '-t', '-i'], input);
  assert.equal(result.code, 0, result.stderr);

  const [relayed] = await sink.waitForMessages(1, 10_000);
  const text = relayed.data.toString('latin1');
  assert.match(text, /^From: root@mx\.posthorn\.test \(The Boss\)\r$/m);
  assert.match(text, /^To: joe@mx\.posthorn\.test, alice@example\.org\r$/m);
  assert.match(text, /^Cc: Bob <bob@mx\.posthorn\.test>, "Ann Q" <ann@example\.org>\r$/m);
  assert.match(text, /^Reply-To: helpdesk@mx\.posthorn\.test\r$/m);
  // The local copy keeps the headers as written, as sendmail's local mailer does.
  assert.match(s.mailbox('joe'), /^To: joe, alice@example\.org$/m);
});
