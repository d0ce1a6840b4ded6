// Relay benchmark: several concurrent SMTP clients send small messages to a
// real posthorn daemon (SuperSafe=True), which relays them to a loopback sink.
// Prints messages per second accepted and relayed, and the daemon's peak RSS.
//
//   npm run bench -- [--clients 20] [--messages 100] [--size 2048] [--new-connections]

import * as fs from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { spawn } from 'node:child_process';
import { startBenchSink } from './sink';

interface Settings {
  clients: number;
  messages: number;
  size: number;
  newConnections: boolean;
}

function parseSettings(argv: string[]): Settings {
  const s: Settings = { clients: 20, messages: 100, size: 2048, newConnections: false };
  for (let i = 0; i < argv.length; i++) {
    const value = Number(argv[i + 1]);
    if (argv[i] === '--clients') s.clients = value;
    else if (argv[i] === '--messages') s.messages = value;
    else if (argv[i] === '--size') s.size = value;
    else if (argv[i] === '--new-connections') s.newConnections = true;
    else continue;
    if (argv[i] !== '--new-connections') i++;
  }
  return s;
}

function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const server = net.createServer();
    server.listen(0, '127.0.0.1', () => {
      const port = (server.address() as net.AddressInfo).port;
      server.close(() => resolve(port));
    });
  });
}

function message(size: number, n: number): string {
  const line = 'The quick brown fox jumps over the lazy dog. 0123456789 abcdefghij\r\n';
  let body = '';
  while (body.length < size) body += line;
  return `From: bench@example.org\r\nTo: sink@remote.example\r\nSubject: bench ${n}\r\n\r\n${body}`;
}

/** One client: sends `count` messages, pipelined, over one or many connections. */
async function runClient(port: number, count: number, settings: Settings): Promise<number> {
  let accepted = 0;
  const perConnection = settings.newConnections ? 1 : count;
  for (let sent = 0; sent < count; sent += perConnection) {
    accepted += await session(port, Math.min(perConnection, count - sent), settings.size);
  }
  return accepted;
}

function session(port: number, count: number, size: number): Promise<number> {
  return new Promise((resolve, reject) => {
    const socket = net.connect(port, '127.0.0.1');
    let buffer = '';
    let step = 0;
    let sent = 0;
    let accepted = 0;
    socket.on('error', reject);
    socket.on('data', (chunk: Buffer) => {
      buffer += chunk.toString('latin1');
      let eol: number;
      while ((eol = buffer.indexOf('\r\n')) >= 0) {
        const line = buffer.slice(0, eol);
        buffer = buffer.slice(eol + 2);
        if (line[3] === '-') continue;
        step++;
        if (step === 1) socket.write('EHLO bench.example\r\n');
        else if (step === 2 || (step - 2) % 4 === 0) {
          if (step > 2 && line.startsWith('250')) accepted++;
          if (sent === count) {
            socket.end('QUIT\r\n');
            resolve(accepted);
            return;
          }
          sent++;
          socket.write('MAIL FROM:<bench@example.org>\r\nRCPT TO:<sink@remote.example>\r\nDATA\r\n');
        } else if ((step - 2) % 4 === 3) {
          socket.write(message(size, sent) + '.\r\n');
        }
      }
    });
  });
}

async function main(): Promise<void> {
  const settings = parseSettings(process.argv.slice(2));
  const sink = await startBenchSink();
  const port = await freePort();
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'posthorn-bench-'));
  const mc = [
    `define(\`QUEUE_DIR', \`${dir}/mqueue')`,
    `define(\`confMAILBOX_DIR', \`${dir}/mail')`,
    `define(\`confLOG_FILE', \`${dir}/maillog')`,
    `define(\`confPID_FILE', \`${dir}/posthorn.pid')`,
    "define(`confDOMAIN_NAME', `mx.posthorn.test')",
    // A shared, busy machine must not make the daemon queue only or refuse
    // connections: Postfix has no such load limits.
    "define(`confQUEUE_LA', `1000')",
    // One cached next-hop connection per delivery slot; BENCH_MCI_CACHE_SIZE=0 turns reuse off.
    `define(\`confMCI_CACHE_SIZE', \`${process.env.BENCH_MCI_CACHE_SIZE ?? '20'}')`,
    "define(`confREFUSE_LA', `1000')",
    "define(`SMART_HOST', `[127.0.0.1]')",
    `define(\`RELAY_MAILER_ARGS', \`TCP $h ${sink.port}')`,
    `define(\`ESMTP_MAILER_ARGS', \`TCP $h ${sink.port}')`,
    `DAEMON_OPTIONS(\`Port=${port}, Addr=127.0.0.1, Name=MTA, Listen=1024')`,
    "MAILER(`local')",
    "MAILER(`smtp')",
  ].join('\n');
  fs.writeFileSync(path.join(dir, 'sendmail.mc'), mc + '\n');

  const bin = path.resolve(__dirname, '..', '..', 'bin', 'posthorn');
  // BENCH_NODE_ARGS passes flags to the daemon's node, e.g. "--cpu-prof".
  const nodeArgs = (process.env.BENCH_NODE_ARGS ?? '').split(' ').filter((a) => a !== '');
  // BENCH_WORKERS=N runs the daemon with -O Workers=N (worker processes).
  const workerArgs = process.env.BENCH_WORKERS ? ['-O', `Workers=${process.env.BENCH_WORKERS}`] : [];
  const daemon = spawn(process.execPath, [...nodeArgs, bin, '-bD', '-C', path.join(dir, 'sendmail.mc'), ...workerArgs], {
    stdio: 'ignore',
  });
  for (let i = 0; i < 200; i++) {
    const ok = await new Promise<boolean>((resolve) => {
      const s = net.connect(port, '127.0.0.1', () => {
        s.destroy();
        resolve(true);
      });
      s.on('error', () => resolve(false));
    });
    if (ok) break;
    await new Promise((r) => setTimeout(r, 50));
  }

  const total = settings.clients * settings.messages;
  const cpuAtStart = daemonCpuMs(daemon.pid);
  const start = process.hrtime.bigint();
  const counts = await Promise.all(
    Array.from({ length: settings.clients }, () => runClient(port, settings.messages, settings)),
  );
  const acceptedAt = process.hrtime.bigint();
  const accepted = counts.reduce((a, b) => a + b, 0);

  const deadline = Date.now() + 120_000;
  while (sink.messages < accepted && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
  const relayedAt = process.hrtime.bigint();

  const cpuMs = daemonCpuMs(daemon.pid) - cpuAtStart;
  const status = fs.readFileSync(`/proc/${daemon.pid}/status`, 'utf8');
  const peak = /VmHWM:\s+(\d+) kB/.exec(status)?.[1] ?? '?';
  daemon.kill('SIGTERM');
  await sink.close();

  const seconds = (t: bigint) => Number(t - start) / 1e9;
  const mode = settings.newConnections ? 'new connection per message' : 'reused connections';
  console.log(`clients=${settings.clients} messages=${total} size=${settings.size} (${mode}), SuperSafe=True`);
  console.log(`daemon CPU: ${cpuMs} ms = ${(cpuMs / Math.max(1, accepted)).toFixed(2)} ms per message (user + system, from /proc)`);
  console.log(`accepted: ${accepted}/${total} in ${seconds(acceptedAt).toFixed(2)} s = ${(accepted / seconds(acceptedAt)).toFixed(0)} msg/s`);
  console.log(`relayed:  ${sink.messages}/${accepted} in ${seconds(relayedAt).toFixed(2)} s = ${(sink.messages / seconds(relayedAt)).toFixed(0)} msg/s`);
  console.log(`daemon peak RSS: ${peak} kB`);
  fs.rmSync(dir, { recursive: true, force: true });
}

void main();

/** User plus system CPU time of a process in ms, from /proc/<pid>/stat (100 ticks a second). */
function daemonCpuMs(pid: number | undefined): number {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    // With BENCH_WORKERS the worker processes are children of the daemon.
    let children = 0;
    try {
      for (const child of fs.readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').split(' ')) {
        if (child.trim() !== '') children += daemonCpuMs(Number(child));
      }
    } catch {
      // No children file: count the daemon alone.
    }
    return (Number(fields[11]) + Number(fields[12])) * 10 + children;
  } catch {
    return 0;
  }
}
