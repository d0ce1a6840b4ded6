// Runs the Postfix unpacked by scripts/install-peers.sh privately on loopback:
// its own config, queue and data folders, its log in a file, chroot off. Used as
// the next hop that receives mail into a Maildir ('mailbox'), or as a sending
// client that relays everything to a given host and port ('relay').

import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { peersDir, postfixEnv } from './peers';
import { canConnect, runCommand, waitFor } from './process';

/** The uid and gid that Postfix's virtual agent writes the Maildir as (nobody on Debian). */
const MAILBOX_UID = 65534;

export interface PostfixOptions {
  /** The port smtpd listens on. */
  port: number;
  /** Listening address (default 127.0.0.1). */
  addr?: string;
  mode: 'mailbox' | 'relay';
  /** For 'relay': every message goes to this "host:port". */
  relayTo?: string;
  /** For 'mailbox': domains accepted into the Maildir (default postfix.test). */
  domains?: string[];
  /** More main.cf lines, appended last (the benchmark raises limits here). */
  extraMainCf?: string[];
}

export interface Postfix {
  port: number;
  addr: string;
  dir: string;
  /** The Maildir that 'mailbox' mode delivers every recipient into. */
  maildir: string;
  /** Postfix's own log file so far. */
  logs(): string;
  /** Every message delivered into the Maildir so far, as raw text. */
  messages(): string[];
  /** Polls until at least `count` messages are in the Maildir. */
  waitForMessages(count: number, timeoutMs?: number): Promise<string[]>;
  stop(): Promise<void>;
}

const MASTER_SERVICES = `
pickup    unix  n       -       n       60      1       pickup
cleanup   unix  n       -       n       -       0       cleanup
qmgr      unix  n       -       n       300     1       qmgr
rewrite   unix  -       -       n       -       -       trivial-rewrite
bounce    unix  -       -       n       -       0       bounce
defer     unix  -       -       n       -       0       bounce
trace     unix  -       -       n       -       0       bounce
verify    unix  -       -       n       -       1       verify
flush     unix  n       -       n       1000?   0       flush
proxymap  unix  -       -       n       -       -       proxymap
smtp      unix  -       -       n       -       -       smtp
relay     unix  -       -       n       -       -       smtp
showq     unix  n       -       n       -       -       showq
error     unix  -       -       n       -       -       error
retry     unix  -       -       n       -       -       error
discard   unix  -       -       n       -       -       discard
virtual   unix  -       n       n       -       -       virtual
anvil     unix  -       -       n       -       1       anvil
scache    unix  -       -       n       -       1       scache
postlog   unix-dgram n  -       n       -       1       postlogd
tlsmgr    unix  -       -       n       1000?   1       tlsmgr
`;

function mainCf(dir: string, opts: PostfixOptions): string {
  const lines = [
    'compatibility_level = 3.6',
    `command_directory = ${peersDir}/usr/sbin`,
    `daemon_directory = ${peersDir}/usr/lib/postfix/sbin`,
    `meta_directory = ${peersDir}/etc/postfix`,
    `shlib_directory = ${peersDir}/usr/lib/postfix`,
    `queue_directory = ${dir}/queue`,
    `data_directory = ${dir}/data`,
    'mail_owner = postfix',
    'setgid_group = postdrop',
    `maillog_file = ${dir}/maillog`,
    `maillog_file_prefixes = ${dir}`,
    'import_environment = MAIL_CONFIG MAIL_DEBUG LD_LIBRARY_PATH TZ',
    'myhostname = postfix.posthorn.test',
    'mydestination =',
    // Postfix accepts only addresses of a configured interface here, and lo has
    // just 127.0.0.1; master.cf binds smtpd to the test's own 127.0.0.x address.
    'inet_interfaces = 127.0.0.1',
    'inet_protocols = ipv4',
    'mynetworks = 127.0.0.0/8',
    'smtpd_relay_restrictions = permit_mynetworks, reject_unauth_destination',
    'alias_maps =',
    'alias_database =',
    'biff = no',
    'smtp_host_lookup = native',
    'smtp_dns_support_level = disabled',
  ];
  if (opts.mode === 'mailbox') {
    lines.push(
      `virtual_mailbox_domains = ${(opts.domains ?? ['postfix.test']).join(', ')}`,
      `virtual_mailbox_base = ${dir}/mail`,
      'virtual_mailbox_maps = static:inbox/',
      `virtual_uid_maps = static:${MAILBOX_UID}`,
      `virtual_gid_maps = static:${MAILBOX_UID}`,
    );
  } else {
    if (!opts.relayTo) throw new Error("startPostfix: mode 'relay' requires relayTo");
    const colon = opts.relayTo.lastIndexOf(':');
    const host = opts.relayTo.slice(0, colon);
    const port = opts.relayTo.slice(colon + 1);
    lines.push(`relayhost = [${host}]:${port}`);
  }
  lines.push(...(opts.extraMainCf ?? []));
  return lines.join('\n') + '\n';
}

function readDirFiles(dir: string): string[] {
  try {
    return fs
      .readdirSync(dir)
      .sort()
      .map((name) => fs.readFileSync(path.join(dir, name), 'utf8'));
  } catch {
    return [];
  }
}

function readMasterPid(dir: string): number | undefined {
  try {
    const pid = Number(fs.readFileSync(path.join(dir, 'queue', 'pid', 'master.pid'), 'utf8').trim());
    return pid > 0 ? pid : undefined;
  } catch {
    return undefined;
  }
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** Starts a private Postfix and waits until its smtpd port accepts connections. */
export async function startPostfix(opts: PostfixOptions): Promise<Postfix> {
  const addr = opts.addr ?? '127.0.0.1';
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'posthorn-postfix-'));
  // Postfix's own daemons run as the postfix user and must reach these folders.
  fs.chmodSync(dir, 0o755);
  for (const sub of ['conf', 'queue', 'data', 'mail']) fs.mkdirSync(path.join(dir, sub));
  const confDir = path.join(dir, 'conf');
  const maildir = path.join(dir, 'mail', 'inbox');

  const postfixIds = await runCommand('id', ['-u', 'postfix']);
  if (postfixIds.code !== 0) throw new Error('user postfix missing; run scripts/install-peers.sh');
  fs.chownSync(path.join(dir, 'data'), Number(postfixIds.stdout.trim()), 0);
  fs.chownSync(path.join(dir, 'mail'), MAILBOX_UID, MAILBOX_UID);

  fs.writeFileSync(path.join(confDir, 'main.cf'), mainCf(dir, opts));
  const smtpd = `${addr}:${opts.port} inet n - n - - smtpd\n`;
  fs.writeFileSync(path.join(confDir, 'master.cf'), smtpd + MASTER_SERVICES);

  const postfix = path.join(peersDir, 'usr', 'sbin', 'postfix');
  const env = postfixEnv();
  const logs = (): string => {
    try {
      return fs.readFileSync(path.join(dir, 'maillog'), 'utf8');
    } catch {
      return '';
    }
  };

  const instance: Postfix = {
    port: opts.port,
    addr,
    dir,
    maildir,
    logs,
    messages: () => readDirFiles(path.join(maildir, 'new')),
    waitForMessages: (count, timeoutMs = 15_000) =>
      waitFor(
        `${count} message(s) in Postfix's Maildir`,
        () => {
          const found = instance.messages();
          return found.length >= count ? found : undefined;
        },
        timeoutMs,
      ).catch((err: Error) => {
        throw new Error(`${err.message}\n--- postfix log ---\n${logs()}`);
      }),
    async stop() {
      const masterPid = readMasterPid(dir);
      await runCommand(postfix, ['-c', confDir, 'stop'], { env, timeoutMs: 30_000 });
      if (masterPid !== undefined) {
        await waitFor('Postfix master to exit', () => !isAlive(masterPid), 15_000);
      }
      if (!process.env.POSTHORN_KEEP_TEST_DIRS) fs.rmSync(dir, { recursive: true, force: true });
    },
  };

  const started = await runCommand(postfix, ['-c', confDir, 'start'], { env, timeoutMs: 30_000 });
  if (started.code !== 0) {
    const message = `postfix start failed (${started.code}):\n${started.stderr}${logs()}`;
    await instance.stop();
    throw new Error(message);
  }
  await waitFor(`Postfix smtpd on ${addr}:${opts.port}`, () => canConnect(addr, opts.port), 20_000);
  return instance;
}
