// Runs Debian's sendmail (unpacked into .peers/) as a peer on loopback: as a
// daemon that queues what it receives, or as a client that delivers one
// message to a smart host. It runs in its own UTS namespace with a fully
// qualified host name (otherwise it waits about a minute at start), and keeps
// its files under .peers/run/ because it rejects folders such as /tmp that
// other users can write to.

import * as fs from 'node:fs';
import * as path from 'node:path';
import { spawn, type ChildProcess } from 'node:child_process';
import { peersDir } from './peers';
import { canConnect, runCommand, waitFor, type CommandResult } from './process';

export interface SendmailOptions {
  /** The sendmail binary, from requirePeer(t, 'sendmail'). */
  bin: string;
  /** Listen here as a daemon that queues everything it gets (DeliveryMode=queueonly). */
  listen?: { addr: string; port: number };
  /** Send all mail for other domains to this host and port. */
  smartHost?: { addr: string; port: number };
}

export interface Sendmail {
  dir: string;
  queueDir: string;
  /** Runs sendmail with this configuration, e.g. ['-odi', '-t']. */
  run(args: string[], input?: string): Promise<CommandResult>;
  /** Names of the files in its queue folder. */
  queueFiles(): string[];
  stop(): Promise<void>;
}

const HOST_NAME = 'mx.sendmail.test';

function buildMc(dir: string, opts: SendmailOptions): string {
  const cfDir = path.join(peersDir, 'usr', 'share', 'sendmail', 'cf');
  const lines = [
    `include(\`${cfDir}/m4/cf.m4')`,
    "OSTYPE(`linux')",
    "define(`confCF_VERSION', `posthorn-test')",
    `define(\`confDOMAIN_NAME', \`${HOST_NAME}')`,
    "define(`confDONT_PROBE_INTERFACES', `True')",
    `define(\`QUEUE_DIR', \`${dir}/mqueue')`,
    `define(\`confPID_FILE', \`${dir}/sendmail.pid')`,
    `define(\`STATUS_FILE', \`${dir}/statistics')`,
    "define(`ALIAS_FILE', `')",
    // A busy test machine must not make it refuse connections or only queue.
    "define(`confREFUSE_LA', `9999')",
    "define(`confQUEUE_LA', `9999')",
    "FEATURE(`nocanonify')",
    "LOCAL_DOMAIN(`sendmail.test')",
  ];
  if (opts.smartHost) {
    lines.push(
      `define(\`SMART_HOST', \`[${opts.smartHost.addr}]')`,
      `define(\`RELAY_MAILER_ARGS', \`TCP $h ${opts.smartHost.port}')`,
      `define(\`ESMTP_MAILER_ARGS', \`TCP $h ${opts.smartHost.port}')`,
    );
  }
  if (opts.listen) {
    // It queues whatever loopback clients send: the sender's domain need not
    // resolve, and every recipient domain is relayed.
    lines.push(
      "FEATURE(`accept_unresolvable_domains')",
      "FEATURE(`promiscuous_relay')",
      // Without this the cf adds an MSA daemon on port 587 of every address:
      // it would listen beyond loopback, and a second daemon, or anything else
      // on port 587, makes sendmail exit with "cannot bind".
      "FEATURE(`no_default_msa')",
      "define(`confDELIVERY_MODE', `queueonly')",
      `DAEMON_OPTIONS(\`Port=${opts.listen.port}, Addr=${opts.listen.addr}, Name=MTA')`,
    );
  }
  lines.push("MAILER(`smtp')");
  return lines.join('dnl\n') + 'dnl\n';
}

/** Arguments that run `bin ARGS` in a private UTS namespace with HOST_NAME. */
function inOwnUts(bin: string, args: string[]): [string, string[]] {
  return ['unshare', ['--uts', 'sh', '-c', `hostname ${HOST_NAME} && exec "$0" "$@"`, bin, ...args]];
}

export async function startSendmail(opts: SendmailOptions): Promise<Sendmail> {
  const runRoot = path.join(peersDir, 'run');
  fs.mkdirSync(runRoot, { recursive: true, mode: 0o755 });
  const dir = fs.mkdtempSync(path.join(runRoot, 'sendmail-'));
  fs.chmodSync(dir, 0o700);
  const queueDir = path.join(dir, 'mqueue');
  fs.mkdirSync(queueDir, { mode: 0o700 });

  const mcPath = path.join(dir, 'sendmail.mc');
  const cfPath = path.join(dir, 'sendmail.cf');
  fs.writeFileSync(mcPath, buildMc(dir, opts));
  const m4 = await runCommand('m4', [mcPath]);
  if (m4.code !== 0) throw new Error(`m4 failed: ${m4.stderr}`);
  fs.writeFileSync(cfPath, m4.stdout);

  let daemon: ChildProcess | undefined;
  if (opts.listen) {
    const [cmd, args] = inOwnUts(opts.bin, ['-C', cfPath, '-bD']);
    daemon = spawn(cmd, args, { stdio: 'ignore' });
    const listen = opts.listen;
    await waitFor(`sendmail listening on ${listen.addr}:${listen.port}`, () => canConnect(listen.addr, listen.port), 30_000);
  }

  return {
    dir,
    queueDir,
    run(args, input) {
      const [cmd, full] = inOwnUts(opts.bin, ['-C', cfPath, ...args]);
      return runCommand(cmd, full, { input, timeoutMs: 60_000 });
    },
    queueFiles: () => fs.readdirSync(queueDir).sort(),
    async stop() {
      if (daemon && daemon.exitCode === null && daemon.signalCode === null) {
        const exited = new Promise((resolve) => daemon?.once('exit', resolve));
        daemon.kill('SIGTERM');
        await exited;
      }
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}
