// Runs Dovecot's LMTP service privately for one test: its own config, run and
// state folders, and Maildirs under a fresh temporary folder. It listens on a
// unix socket, or on 127.0.0.1 with STARTTLS when given a port and a
// certificate.

import type { TestContext } from 'node:test';
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { canConnect, waitFor } from './process';
import type { CertFile } from '../tls/certs';

/** The uid and gid that Dovecot delivers as (the user nobody on Debian). */
const MAILBOX_UID = 65534;

export interface DovecotOptions {
  /** TCP port to listen on at 127.0.0.1. Without it, Dovecot listens on a unix socket. */
  port?: number;
  /** Certificate and key for STARTTLS (sets ssl = yes). */
  tls?: CertFile;
}

export interface Dovecot {
  /** The LMTP unix socket, when no port was given. */
  socket?: string;
  mailRoot: string;
  /** Dovecot's log file so far. */
  log(): string;
  /** The files in the "new" folder of a user's Maildir. */
  messages(user: string): string[];
}

function configLines(dir: string, mailRoot: string, opts: DovecotOptions, socket: string): string[] {
  const ssl = opts.tls ? ['ssl = yes', `ssl_cert = <${opts.tls.cert}`, `ssl_key = <${opts.tls.key}`] : ['ssl = no'];
  const listener =
    opts.port === undefined
      ? [`  unix_listener ${socket} {`, '    mode = 0666', '  }']
      : ['  inet_listener lmtp {', '    address = 127.0.0.1', `    port = ${opts.port}`, '  }'];
  return [
    'protocols = lmtp',
    `base_dir = ${dir}/run`,
    `state_dir = ${dir}/state`,
    `log_path = ${dir}/dovecot.log`,
    ...ssl,
    'listen = 127.0.0.1',
    `mail_location = maildir:${mailRoot}/%n`,
    'passdb {', '  driver = static', '  args = nopassword=y', '}',
    'userdb {', '  driver = static', `  args = uid=${MAILBOX_UID} gid=${MAILBOX_UID} home=${mailRoot}/%n`, '}',
    'service lmtp {', ...listener, '}',
    '',
  ];
}

function readOr(file: string, fallback: string): string {
  try {
    return fs.readFileSync(file, 'utf8');
  } catch {
    return fallback;
  }
}

/** Starts `dovecot -F` from `bin`, waits until its listener is up, and stops it after the test. */
export async function startDovecot(t: TestContext, bin: string, opts: DovecotOptions = {}): Promise<Dovecot> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'dovecot-'));
  fs.chmodSync(dir, 0o755);
  const mailRoot = path.join(dir, 'mail');
  fs.mkdirSync(mailRoot);
  fs.chownSync(mailRoot, MAILBOX_UID, MAILBOX_UID);
  const socket = path.join(dir, 'lmtp.sock');
  const conf = path.join(dir, 'dovecot.conf');
  fs.writeFileSync(conf, configLines(dir, mailRoot, opts, socket).join('\n'));

  const child = spawn(bin, ['-F', '-c', conf], { stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  child.stdout.on('data', (c: Buffer) => (output += c.toString()));
  child.stderr.on('data', (c: Buffer) => (output += c.toString()));
  t.after(async () => {
    if (child.exitCode === null) {
      child.kill('SIGTERM');
      await new Promise((r) => child.once('exit', r));
    }
    fs.rmSync(dir, { recursive: true, force: true });
  });
  const log = (): string => readOr(path.join(dir, 'dovecot.log'), '');

  const port = opts.port;
  const listening = port === undefined ? `dovecot to create ${socket}` : `dovecot to listen on port ${port}`;
  await waitFor(listening, async () => {
    if (child.exitCode !== null) throw new Error(`dovecot exited with ${child.exitCode}: ${output}${log()}`);
    return port === undefined ? fs.existsSync(socket) : canConnect('127.0.0.1', port);
  }, 20_000);

  const messages = (user: string): string[] => {
    const newDir = path.join(mailRoot, user, 'new');
    try {
      return fs.readdirSync(newDir).map((f) => fs.readFileSync(path.join(newDir, f), 'latin1'));
    } catch {
      return [];
    }
  };
  return { socket: port === undefined ? socket : undefined, mailRoot, log, messages };
}
