// Starts the two MTAs the benchmark compares, each on its own loopback port and
// relaying everything to one sink: posthorn (SuperSafe=True, background
// delivery) and the Postfix unpacked into .peers/ by scripts/install-peers.sh,
// which fsyncs its queue file before the 250 as it always does.

import * as fs from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { spawn } from 'node:child_process';
import { startPostfix } from '../test/helpers/postfix';

export interface BenchMta {
  name: string;
  port: number;
  /** Milliseconds from the start command to the first accepted connection. */
  startupMs: number;
  /** The pids whose memory counts: the daemon and all its descendants. */
  rootPid(): number;
  stop(): Promise<void>;
}

export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.on('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const port = (server.address() as net.AddressInfo).port;
      server.close(() => resolve(port));
    });
  });
}

function canConnect(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.connect(port, '127.0.0.1', () => {
      s.destroy();
      resolve(true);
    });
    s.on('error', () => resolve(false));
  });
}

/** Polls the port every 2 ms; returns the milliseconds since `since`. */
async function waitListening(port: number, since: bigint, timeoutMs = 20_000): Promise<number> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await canConnect(port)) return Number(process.hrtime.bigint() - since) / 1e6;
    await new Promise((r) => setTimeout(r, 2));
  }
  throw new Error(`nothing listens on 127.0.0.1:${port} after ${timeoutMs} ms`);
}

export interface PosthornBenchOptions {
  sinkPort: number;
  /** Flags for the daemon's node, e.g. ['--cpu-prof']. */
  nodeArgs?: string[];
  /** More .mc lines, before the MAILER lines. */
  extraMc?: string[];
  /** More daemon arguments after `-bD -C file`, e.g. ['-O', 'Workers=2']. */
  daemonArgs?: string[];
}

export async function startPosthornBench(opts: PosthornBenchOptions): Promise<BenchMta> {
  const port = await freePort();
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'posthorn-bench-'));
  const mc = [
    `define(\`QUEUE_DIR', \`${dir}/mqueue')`,
    `define(\`confMAILBOX_DIR', \`${dir}/mail')`,
    `define(\`confLOG_FILE', \`${dir}/maillog')`,
    `define(\`confPID_FILE', \`${dir}/posthorn.pid')`,
    "define(`confDOMAIN_NAME', `mx.posthorn.test')",
    "define(`confSAFE_QUEUE', `True')",
    // A shared, busy machine must not make the daemon queue only or refuse
    // connections: Postfix has no such load limits.
    "define(`confQUEUE_LA', `1000')",
    // One cached next-hop connection per delivery slot; BENCH_MCI_CACHE_SIZE=0 turns reuse off.
    `define(\`confMCI_CACHE_SIZE', \`${process.env.BENCH_MCI_CACHE_SIZE ?? '20'}')`,
    "define(`confREFUSE_LA', `1000')",
    "define(`SMART_HOST', `[127.0.0.1]')",
    `define(\`RELAY_MAILER_ARGS', \`TCP $h ${opts.sinkPort}')`,
    `define(\`ESMTP_MAILER_ARGS', \`TCP $h ${opts.sinkPort}')`,
    `DAEMON_OPTIONS(\`Port=${port}, Addr=127.0.0.1, Name=MTA, Listen=1024')`,
    ...(opts.extraMc ?? []),
    "MAILER(`local')",
    "MAILER(`smtp')",
  ].join('\n');
  fs.writeFileSync(path.join(dir, 'sendmail.mc'), mc + '\n');

  const bin = path.resolve(__dirname, '..', '..', 'bin', 'posthorn');
  const started = process.hrtime.bigint();
  // BENCH_DAEMON_STDOUT names a file for the daemon's stdout, e.g. for
  // BENCH_NODE_ARGS=--trace-gc.
  const stdoutFile = process.env.BENCH_DAEMON_STDOUT;
  const daemon = spawn(process.execPath, [...(opts.nodeArgs ?? []), bin, '-bD', '-C', path.join(dir, 'sendmail.mc'), ...(opts.daemonArgs ?? [])], {
    stdio: stdoutFile ? ['ignore', fs.openSync(stdoutFile, 'w'), 'ignore'] : 'ignore',
    cwd: dir,
  });
  const exited = new Promise<void>((resolve) => daemon.once('exit', () => resolve()));
  const startupMs = await waitListening(port, started);
  return {
    name: 'posthorn',
    port,
    startupMs,
    rootPid: () => daemon.pid!,
    async stop() {
      daemon.kill('SIGTERM');
      const timer = setTimeout(() => daemon.kill('SIGKILL'), 10_000);
      await exited;
      clearTimeout(timer);
      if (!process.env.POSTHORN_KEEP_BENCH_DIRS) fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}

export async function startPostfixBench(opts: { sinkPort: number; extraMainCf?: string[] }): Promise<BenchMta> {
  const port = await freePort();
  const started = process.hrtime.bigint();
  const postfix = await startPostfix({
    port,
    mode: 'relay',
    relayTo: `127.0.0.1:${opts.sinkPort}`,
    extraMainCf: [
      // Room for the idle-session workload (one smtpd per session) and for
      // 10 MiB messages; everything else stays stock, including the fsync.
      'default_process_limit = 2200',
      'message_size_limit = 0',
      'mailbox_size_limit = 0',
      ...(opts.extraMainCf ?? []),
    ],
  });
  const startupMs = Number(process.hrtime.bigint() - started) / 1e6;
  const masterPid = Number(fs.readFileSync(path.join(postfix.dir, 'queue', 'pid', 'master.pid'), 'utf8').trim());
  return {
    name: 'postfix',
    port,
    startupMs,
    rootPid: () => masterPid,
    stop: () => postfix.stop(),
  };
}

/** Returns the pids of `root` and every process below it, from /proc. */
function processTree(root: number): number[] {
  const children = new Map<number, number[]>();
  for (const entry of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = fs.readFileSync(`/proc/${entry}/stat`, 'utf8');
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      const list = children.get(ppid) ?? [];
      list.push(Number(entry));
      children.set(ppid, list);
    } catch {
      // The process ended while we looked.
    }
  }
  const tree: number[] = [];
  const stack = [root];
  while (stack.length > 0) {
    const pid = stack.pop()!;
    tree.push(pid);
    stack.push(...(children.get(pid) ?? []));
  }
  return tree;
}

/** Sums VmRSS (kB) of `root` and every process below it. */
export function treeRssKb(root: number): number {
  return processTree(root).reduce((sum, pid) => sum + statusKb(pid, 'VmRSS'), 0);
}

/** One kB field of /proc/PID/status (VmRSS, VmHWM), 0 when the process is gone. */
export function statusKb(pid: number, field: string): number {
  try {
    const status = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
    return Number(new RegExp(`${field}:\\s+(\\d+) kB`).exec(status)?.[1] ?? 0);
  } catch {
    return 0;
  }
}

/** CPU time (user + system, ms) of `root` and every process below it, plus the children they reaped. */
export function treeCpuMs(root: number): number {
  const tick = 1000 / 100; // USER_HZ is 100 on Linux
  let total = 0;
  for (const pid of processTree(root)) {
    try {
      const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      // utime, stime, cutime, cstime are fields 14 to 17 of stat (11 to 14 here).
      total += (Number(fields[11]) + Number(fields[12]) + Number(fields[13]) + Number(fields[14])) * tick;
    } catch {
      // The process ended while we looked.
    }
  }
  return total;
}
