// The same access map and features against real sendmail (Debian's package,
// unpacked in .peers/) and against Posthorn: greet_pause, Connect: REJECT and
// ERROR:421, From: REJECT, ratecontrol with terminate and conncontrol must
// give the same replies. sendmail runs in its own UTS namespace named
// mx.posthorn.test, from a private folder on a root-owned path, because it
// rejects configuration files in world-writable folders such as /tmp.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { spawn, spawnSync } from 'node:child_process';
import { baseMc, startPosthorn } from '../helpers/posthorn';
import { peersDir, requirePeer } from '../helpers/peers';
import { canConnect, freePort, sleep, waitFor } from '../helpers/process';
import { rawSmtp } from '../helpers/clients';
import { makemap } from './policy-support';

const ACCESS = [
  'Connect:127.0.0.3\tREJECT',
  'Connect:127.0.0.4\tERROR:4.7.1:421 go away',
  'GreetPause:127.0.0.1\t0',
  'ClientRate:127.0.0.11\t2',
  'ClientConn:127.0.0.10\t1',
  'From:spammer@bad.example\tREJECT',
  '',
].join('\n');

const FEATURES = [
  "FEATURE(`greet_pause', `700')",
  "FEATURE(`ratecontrol', `', `terminate')",
  "FEATURE(`conncontrol')",
];

/** Replies with the greeting's variable text and the host name replaced. */
function normalize(replies: string[]): string[] {
  return replies.map((r) => r.replace(/^220 .*/s, '220 <greeting>').replace(/mx\.posthorn\.test/g, '<host>'));
}

/** Runs the scenarios against a server on `port` and returns the normalized replies of each. */
async function scenarios(port: number): Promise<Record<string, string[]>> {
  const out: Record<string, string[]> = {};
  const run = async (name: string, localAddress: string, script: string[], early: string[] = []): Promise<void> => {
    out[name] = normalize(await rawSmtp(port, script, { localAddress, early }));
  };
  await run('early talker', '127.0.0.2', ['MAIL FROM:<a@b.example>', 'RSET', 'QUIT'], ['EHLO early.example']);
  await run('Connect REJECT', '127.0.0.3', ['EHLO c.example', 'MAIL FROM:<a@b.example>', 'QUIT']);
  await run('Connect 421', '127.0.0.4', ['EHLO c.example']);
  await run('From REJECT', '127.0.0.9', ['HELO c.example', 'MAIL FROM:<spammer@bad.example>', 'QUIT']);
  for (let i = 1; i <= 3; i++) await run(`rate ${i}`, '127.0.0.11', ['HELO c.example', 'QUIT']);

  const held = net.connect({ host: '127.0.0.1', port, localAddress: '127.0.0.10' });
  await new Promise((resolve) => held.once('data', resolve));
  await run('second session', '127.0.0.10', ['HELO c.example', 'MAIL FROM:<a@b.example>', 'QUIT']);
  held.destroy();
  return out;
}

async function startSendmail(t: { after(fn: () => void | Promise<void>): void }, sendmail: string): Promise<number> {
  const dir = fs.mkdtempSync(path.join(os.homedir(), '.posthorn-sendmail-'));
  fs.chmodSync(dir, 0o700);
  fs.mkdirSync(path.join(dir, 'mq'), { mode: 0o700 });
  const port = await freePort();
  const cfDir = path.join(peersDir, 'usr', 'share', 'sendmail', 'cf');
  const mc = [
    'divert(-1)',
    `include(\`${cfDir}/m4/cf.m4')`,
    'divert(0)dnl',
    "OSTYPE(`linux')dnl",
    `define(\`QUEUE_DIR', \`${dir}/mq')dnl`,
    `define(\`confPID_FILE', \`${dir}/sendmail.pid')dnl`,
    "define(`confREFUSE_LA', `999')dnl",
    "define(`confQUEUE_LA', `999')dnl",
    "define(`confDELIVERY_MODE', `q')dnl",
    "define(`confDONT_PROBE_INTERFACES', `True')dnl",
    "define(`SMART_HOST', `[127.0.0.1]')dnl",
    `DAEMON_OPTIONS(\`Port=${port}, Addr=127.0.0.1, Name=MTA, Listen=1024')dnl`,
    "FEATURE(`nocanonify')dnl",
    // No MSA daemon on port 587 of every address: only the loopback MTA listens.
    "FEATURE(`no_default_msa')dnl",
    `FEATURE(\`access_db', \`hash -o ${dir}/access')dnl`,
    ...FEATURES.map((f) => `${f}dnl`),
    "MAILER(`local')dnl",
    "MAILER(`smtp')dnl",
  ].join('\n');
  fs.writeFileSync(path.join(dir, 'test.mc'), mc + '\n');
  const cf = spawnSync('m4', [path.join(dir, 'test.mc')]);
  assert.equal(cf.status, 0, cf.stderr.toString());
  fs.writeFileSync(path.join(dir, 'test.cf'), cf.stdout);
  fs.writeFileSync(path.join(dir, 'access'), ACCESS);
  const makemapBin = path.join(path.dirname(sendmail), 'makemap');
  const built = spawnSync(makemapBin, ['-C', path.join(dir, 'test.cf'), 'hash', path.join(dir, 'access')], { input: ACCESS });
  assert.equal(built.status, 0, built.stderr.toString());

  const child = spawn('unshare', ['--uts', 'sh', '-c', `hostname mx.posthorn.test && exec "$0" -C "$1" -bD`, sendmail, path.join(dir, 'test.cf')], {
    stdio: 'ignore',
  });
  t.after(async () => {
    child.kill('SIGTERM');
    await sleep(200);
    fs.rmSync(dir, { recursive: true, force: true });
  });
  await waitFor('sendmail to listen', () => canConnect('127.0.0.1', port), 20_000);
  // The readiness probe above counts as one connection from 127.0.0.1, which GreetPause exempts.
  return port;
}

test('replies match real sendmail', async (t) => {
  const sendmail = requirePeer(t, 'sendmail');
  if (!sendmail) return;
  if (!requirePeer(t, 'm4')) return;
  if (process.getuid?.() !== 0) {
    t.skip('sendmail needs root for its own UTS namespace');
    return;
  }
  const sendmailPort = await startSendmail(t, sendmail);
  const expected = await scenarios(sendmailPort);

  const ph = await startPosthorn({
    mc: baseMc({ extra: ["define(`confPID_FILE', `@DIR@/pid')", "FEATURE(`access_db', `hash -o @DIR@/access')", ...FEATURES] }),
    args: ['-O', 'DeliveryMode=queueonly'],
  });
  t.after(() => ph.stop());
  assert.equal(makemap(path.join(ph.dir, 'access'), ACCESS).status, 0);
  const actual = await scenarios(ph.port);

  for (const name of Object.keys(expected)) {
    assert.deepEqual(actual[name], expected[name], `${name}: Posthorn's replies differ from sendmail's`);
  }
  assert.deepEqual(expected['rate 3'], ['421 4.3.2 Connection rate limit exceeded.'], 'sendmail refused the third connection');
  assert.equal(expected['early talker'][0], '554 <host> ESMTP not accepting messages', 'sendmail saw the early talker');
});
