// Starts the real posthorn daemon in a private temporary folder for one test,
// and runs its command line against the same configuration.

import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { spawn, type ChildProcess } from 'node:child_process';
import { repoRoot } from './peers';
import { canConnect, freePort, runCommand, waitFor, type CommandResult } from './process';

/** The command-line entry point, which calls main() of dist/src/cli/main.js. */
export const posthornBin = path.join(repoRoot, 'bin', 'posthorn');

export interface PosthornOptions {
  /**
   * The sendmail.mc text. These placeholders are filled in: @DIR@, @QUEUE_DIR@,
   * @MAILBOX_DIR@, @LOG_FILE@, @PORT@ (the daemon's port), @ADDR@ (its address),
   * and @NAME@ for every NAME in `vars`.
   */
  mc: string;
  vars?: Record<string, string | number>;
  /** Extra daemon arguments after `-bD -C FILE`, e.g. ['-O', 'DeliveryMode=q']. */
  args?: string[];
  /** Added to the environment of the daemon and of `run()`. */
  env?: NodeJS.ProcessEnv;
  /** Listening address for @ADDR@ (default 127.0.0.1). */
  addr?: string;
  /** Bound on the wait for the daemon's port (default 20000 ms). */
  startTimeoutMs?: number;
  /**
   * Queue folder for @QUEUE_DIR@ in place of <dir>/mqueue, e.g. on a test
   * mount. It is created when missing and not removed by stop().
   */
  queueDir?: string;
  /** Called with each daemon process right after it is spawned, before it listens. */
  onSpawn?: (child: ChildProcess, dir: string) => void;
}

export interface Posthorn {
  port: number;
  addr: string;
  dir: string;
  mcPath: string;
  queueDir: string;
  mailDir: string;
  logPath: string;
  /** The running daemon, replaced by restart(). */
  proc: ChildProcess;
  /** The daemon's log file so far. */
  logs(): string;
  /** What the daemon wrote on stdout and stderr, for failure messages. */
  output(): string;
  /** Runs the command line with the same -C, e.g. run(['-bp']). */
  run(args: string[], input?: Buffer | string): Promise<CommandResult>;
  /** Sends a signal to the daemon and waits until it has exited. */
  kill(signal: NodeJS.Signals): Promise<void>;
  /** Starts the daemon again on the same port and folder after kill(). */
  restart(): Promise<void>;
  /** Stops the daemon and removes the folder. */
  stop(): Promise<void>;
  /** Polls the log file until a line matches. */
  waitForLog(re: RegExp, timeoutMs?: number): Promise<RegExpMatchArray>;
  /** The mbox file of a local user, or '' when nothing was delivered. */
  mailbox(user: string): string;
  /**
   * Polls until the mbox of `user` contains `text`, which should be the end of
   * the expected message so that a half-written file does not count.
   */
  waitForMailbox(user: string, text: string, timeoutMs?: number): Promise<string>;
  /** Names of the files in the queue folder (qf..., df...), sorted. */
  queueFiles(): string[];
}

/** Processes still running, killed when the test process exits early. */
const running = new Set<ChildProcess>();
process.on('exit', () => {
  for (const child of running) child.kill('SIGKILL');
});

/**
 * Returns the common .mc lines: queue, mailbox and log paths, the daemon socket,
 * the local domain posthorn.test, and optionally the DNS server and the port that
 * the esmtp mailer connects to. The `extra` lines go before the MAILER lines,
 * because *_MAILER_ARGS only take effect when defined before MAILER(`smtp').
 */
export function baseMc(opts: { dnsPort?: number; mailerPort?: number; extra?: string[] } = {}): string {
  const lines = [
    "define(`QUEUE_DIR', `@QUEUE_DIR@')",
    "define(`confMAILBOX_DIR', `@MAILBOX_DIR@')",
    "define(`confLOG_FILE', `@LOG_FILE@')",
    "define(`confPID_FILE', `@DIR@/sendmail.pid')",
    "define(`confDOMAIN_NAME', `mx.posthorn.test')",
    "LOCAL_DOMAIN(`posthorn.test')",
    "DAEMON_OPTIONS(`Port=@PORT@, Addr=@ADDR@, Name=MTA')",
    // A busy test machine must not make the daemon queue or refuse by load
    // average; tests of QueueLA and RefuseLA define their own values later.
    "define(`confQUEUE_LA', `1000')",
    "define(`confREFUSE_LA', `1000')",
  ];
  if (opts.dnsPort !== undefined) {
    lines.push(`define(\`confNAME_SERVERS', \`127.0.0.1:${opts.dnsPort}')`);
  }
  if (opts.mailerPort !== undefined) {
    lines.push(`define(\`ESMTP_MAILER_ARGS', \`TCP $h ${opts.mailerPort}')`);
  }
  lines.push(...(opts.extra ?? []), "MAILER(`local')", "MAILER(`smtp')");
  return lines.join('\n') + '\n';
}

function fillPlaceholders(text: string, values: Record<string, string | number>): string {
  const filled = text.replace(/@([A-Z][A-Z0-9_]*)@/g, (whole, name: string) =>
    name in values ? String(values[name]) : whole,
  );
  const left = filled.match(/@[A-Z][A-Z0-9_]*@/);
  if (left) throw new Error(`placeholder ${left[0]} in the .mc has no value`);
  return filled;
}

function readOr(file: string, fallback: string): string {
  try {
    return fs.readFileSync(file, 'utf8');
  } catch {
    return fallback;
  }
}

function exited(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => child.once('exit', () => resolve()));
}

/** Starts `posthorn -bD -C <dir>/sendmail.mc` and waits until its port accepts connections. */
export async function startPosthorn(opts: PosthornOptions): Promise<Posthorn> {
  const addr = opts.addr ?? '127.0.0.1';
  let port = await freePort(addr);
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'posthorn-e2e-'));
  const queueDir = opts.queueDir ?? path.join(dir, 'mqueue');
  const mailDir = path.join(dir, 'mail');
  const logPath = path.join(dir, 'maillog');
  const mcPath = path.join(dir, 'sendmail.mc');
  fs.mkdirSync(queueDir, { recursive: true, mode: 0o700 });
  fs.mkdirSync(mailDir, { mode: 0o755 });

  const writeMc = (): void => {
    const values = {
      ...(opts.vars ?? {}),
      DIR: dir,
      QUEUE_DIR: queueDir,
      MAILBOX_DIR: mailDir,
      LOG_FILE: logPath,
      PORT: port,
      ADDR: addr,
    };
    fs.writeFileSync(mcPath, fillPlaceholders(opts.mc, values));
  };
  writeMc();

  const env = { ...process.env, ...(opts.env ?? {}) };
  let output = '';

  const spawnDaemon = (): ChildProcess => {
    const args = [posthornBin, '-bD', '-C', mcPath, ...(opts.args ?? [])];
    const child = spawn(process.execPath, args, { cwd: dir, env, stdio: ['ignore', 'pipe', 'pipe'] });
    running.add(child);
    child.on('exit', () => running.delete(child));
    child.stdout?.on('data', (chunk: Buffer) => (output += chunk.toString('utf8')));
    child.stderr?.on('data', (chunk: Buffer) => (output += chunk.toString('utf8')));
    opts.onSpawn?.(child, dir);
    return child;
  };

  const waitUntilListening = async (child: ChildProcess): Promise<void> => {
    await waitFor(
      `posthorn to listen on ${addr}:${port}`,
      async () => {
        if (child.exitCode !== null || child.signalCode !== null) {
          const status = child.exitCode !== null ? `code ${child.exitCode}` : child.signalCode;
          const log = readOr(logPath, '');
          throw new Error(`posthorn exited with ${status} before listening:\n${output}${log}`);
        }
        return canConnect(addr, port);
      },
      opts.startTimeoutMs ?? 20_000,
    );
  };

  const instance: Posthorn = {
    port,
    addr,
    dir,
    mcPath,
    queueDir,
    mailDir,
    logPath,
    proc: spawnDaemon(),
    logs: () => readOr(logPath, ''),
    output: () => output,

    run: (args, input) =>
      runCommand(process.execPath, [posthornBin, '-C', mcPath, ...args], {
        input,
        env,
        cwd: dir,
      }),

    async kill(signal) {
      instance.proc.kill(signal);
      await exited(instance.proc);
    },

    async restart() {
      instance.proc = spawnDaemon();
      await waitUntilListening(instance.proc);
    },

    async stop() {
      const child = instance.proc;
      if (child.exitCode === null && child.signalCode === null) {
        child.kill('SIGTERM');
        const killer = setTimeout(() => child.kill('SIGKILL'), 10_000);
        await exited(child);
        clearTimeout(killer);
      }
      if (!process.env.POSTHORN_KEEP_TEST_DIRS) fs.rmSync(dir, { recursive: true, force: true });
    },

    waitForLog: (re, timeoutMs = 15_000) =>
      waitFor(`a log line matching ${re}`, () => instance.logs().match(re) ?? undefined, timeoutMs).catch(
        (err: Error) => {
          throw new Error(`${err.message}\n--- log ---\n${instance.logs()}--- output ---\n${output}`);
        },
      ),

    mailbox: (user) => readOr(path.join(mailDir, user), ''),

    waitForMailbox: (user, text, timeoutMs = 20_000) =>
      waitFor(
        `"${text}" in the mailbox of ${user}`,
        () => {
          const mbox = instance.mailbox(user);
          return mbox.includes(text) ? mbox : undefined;
        },
        timeoutMs,
      ).catch((err: Error) => {
        const mbox = instance.mailbox(user);
        throw new Error(`${err.message}\n--- mailbox ---\n${mbox}--- log ---\n${instance.logs()}`);
      }),

    queueFiles: () => {
      try {
        return fs.readdirSync(queueDir).sort();
      } catch {
        return [];
      }
    },
  };

  // Two test processes can get the same port from freePort() at the same time.
  // The daemon that binds second exits, and the other one accepts connections on its port, so
  // the start is repeated on a new port until the listener is this daemon's.
  for (let attempt = 1; ; attempt++) {
    let clash: boolean;
    try {
      await waitUntilListening(instance.proc);
      clash = !ownsListener(instance.proc.pid!, port);
    } catch (err) {
      clash = /EADDRINUSE/.test(output + instance.logs());
      if (!clash || attempt >= 3) {
        await instance.stop();
        throw err;
      }
    }
    if (!clash) return instance;
    if (attempt >= 3) {
      await instance.stop();
      throw new Error(`another process listens on port ${port} each time`);
    }
    await instance.kill('SIGKILL');
    port = await freePort(addr);
    instance.port = port;
    writeMc();
    instance.proc = spawnDaemon();
  }
}

/** Returns the inodes of the sockets listening on TCP `port`, from /proc/net/tcp and tcp6. */
function listeningInodes(port: number): Set<string> {
  const portHex = port.toString(16).toUpperCase().padStart(4, '0');
  const inodes = new Set<string>();
  for (const table of ['/proc/net/tcp', '/proc/net/tcp6']) {
    for (const line of readOr(table, '').split('\n').slice(1)) {
      const fields = line.trim().split(/\s+/);
      // Fields: sl, local address:port, remote address:port, state (0A is LISTEN), ..., inode (10th).
      if (fields.length > 9 && fields[3] === '0A' && fields[1].endsWith(`:${portHex}`)) inodes.add(fields[9]);
    }
  }
  return inodes;
}

/** Tests whether `pid` or a process below it (a worker) has a socket listening on `port`; true when /proc cannot tell. */
export function ownsListener(pid: number, port: number): boolean {
  const inodes = listeningInodes(port);
  if (inodes.size === 0) return true;
  const pending = [pid];
  while (pending.length > 0) {
    const current = pending.pop()!;
    let fds: string[];
    try {
      fds = fs.readdirSync(`/proc/${current}/fd`);
    } catch {
      continue;
    }
    for (const fd of fds) {
      try {
        const match = /^socket:\[(\d+)\]$/.exec(fs.readlinkSync(`/proc/${current}/fd/${fd}`));
        if (match !== null && inodes.has(match[1])) return true;
      } catch {
        // The descriptor closed while we looked.
      }
    }
    const children = readOr(`/proc/${current}/task/${current}/children`, '').trim();
    if (children !== '') pending.push(...children.split(/\s+/).map(Number));
  }
  return false;
}
