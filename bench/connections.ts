// Connection-flood benchmark: one address (127.0.0.50) opens connections as
// fast as it can against a daemon with FEATURE(`ratecontrol', `', `terminate')
// and `ClientRate:127.0.0.50 10`, so nearly all of them get
// "421 4.3.2 Connection rate limit exceeded." instead of the greeting. At the
// same time a well-behaved client on 127.0.0.51 sends one message per
// connection. Prints the refused connections per second and the
// well-behaved client's transactions and their latency.
//
//   npm run build && node dist/bench/connections.js [--seconds 10] [--flooders 20] [--workers 2]
//
// --workers N runs the daemon with -O Workers=N, so the ClientRate counts of
// every connection go through the primary (src/daemon/shared-counters.ts).

import * as fs from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { spawn, spawnSync } from 'node:child_process';
import { isMainThread, parentPort, Worker, workerData } from 'node:worker_threads';

interface Settings {
  seconds: number;
  flooders: number;
  workers: number;
}

function parseSettings(argv: string[]): Settings {
  const s: Settings = { seconds: 10, flooders: 20, workers: 1 };
  for (let i = 0; i < argv.length; i += 2) {
    const value = Number(argv[i + 1]);
    if (argv[i] === '--seconds') s.seconds = value;
    else if (argv[i] === '--flooders') s.flooders = value;
    else if (argv[i] === '--workers') s.workers = value;
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

/** Connects from `localAddress` and returns the first reply line, or "" if the connection failed. */
function firstLine(port: number, localAddress: string): Promise<string> {
  return new Promise((resolve) => {
    const socket = net.connect({ host: '127.0.0.1', port, localAddress });
    let text = '';
    const done = (line: string): void => {
      socket.destroy();
      resolve(line);
    };
    socket.on('data', (chunk: Buffer) => {
      text += chunk.toString('latin1');
      const end = text.indexOf('\r\n');
      if (end >= 0) done(text.slice(0, end));
    });
    socket.on('error', () => done(''));
    socket.on('close', () => done(text));
  });
}

/** Sends one message from `localAddress` and resolves with the reply code after the final dot. */
function transaction(port: number, localAddress: string, n: number): Promise<number> {
  const script = [
    'EHLO good.example',
    'MAIL FROM:<good@good.example>',
    'RCPT TO:<alice@posthorn.test>',
    'DATA',
    `Subject: well-behaved ${n}\r\n\r\nhello\r\n.`,
    'QUIT',
  ];
  return new Promise((resolve) => {
    const socket = net.connect({ host: '127.0.0.1', port, localAddress });
    let buffered = '';
    let step = 0;
    let lastCode = 0;
    socket.on('data', (chunk: Buffer) => {
      buffered += chunk.toString('latin1');
      let end: number;
      while ((end = buffered.indexOf('\r\n')) >= 0) {
        const line = buffered.slice(0, end);
        buffered = buffered.slice(end + 2);
        if (!/^\d{3} /.test(line)) continue;
        if (step === 5) lastCode = Number(line.slice(0, 3));
        if (step >= script.length) {
          socket.destroy();
          return resolve(lastCode);
        }
        socket.write(script[step++] + '\r\n');
      }
    });
    socket.on('error', () => resolve(0));
    socket.on('close', () => resolve(lastCode));
  });
}

async function main(): Promise<void> {
  const settings = parseSettings(process.argv.slice(2));
  const port = await freePort();
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'posthorn-bench-'));
  fs.mkdirSync(path.join(dir, 'mqueue'));
  fs.mkdirSync(path.join(dir, 'mail'));
  const mc = [
    `define(\`QUEUE_DIR', \`${dir}/mqueue')`,
    `define(\`confMAILBOX_DIR', \`${dir}/mail')`,
    `define(\`confLOG_FILE', \`${dir}/maillog')`,
    `define(\`confPID_FILE', \`${dir}/posthorn.pid')`,
    "define(`confDOMAIN_NAME', `mx.posthorn.test')",
    "define(`confLOG_LEVEL', `4')",
    "LOCAL_DOMAIN(`posthorn.test')",
    `DAEMON_OPTIONS(\`Port=${port}, Addr=127.0.0.1, Name=MTA, Listen=1024')`,
    `FEATURE(\`access_db', \`hash -o ${dir}/access')`,
    "FEATURE(`ratecontrol', `', `terminate')",
    "MAILER(`local')",
    "MAILER(`smtp')",
  ].join('\n');
  fs.writeFileSync(path.join(dir, 'sendmail.mc'), mc + '\n');
  const root = path.resolve(__dirname, '..', '..');
  const source = 'ClientRate:127.0.0.50\t10\nClientRate:\t0\n';
  spawnSync(process.execPath, [path.join(root, 'bin', 'makemap'), 'hash', path.join(dir, 'access')], { input: source });

  const workerArgs = settings.workers > 1 ? ['-O', `Workers=${settings.workers}`] : [];
  const daemonArgs = ['-bD', '-C', path.join(dir, 'sendmail.mc'), '-O', 'DeliveryMode=queueonly', ...workerArgs];
  const daemon = spawn(process.execPath, [path.join(root, 'bin', 'posthorn'), ...daemonArgs], {
    stdio: 'ignore',
  });
  for (let i = 0; i < 100 && !(await firstLine(port, '127.0.0.1')).startsWith('220'); i++) {
    await new Promise((r) => setTimeout(r, 100));
  }

  const deadline = Date.now() + settings.seconds * 1000;
  // The flood runs in a worker thread so that its event loop does not delay the well-behaved client's.
  const floodWorker = new Worker(__filename, { workerData: { port, deadline, flooders: settings.flooders } });
  const floodResult = new Promise<FloodCounts>((resolve) => floodWorker.once('message', resolve));
  const latencies: number[] = [];
  let good = 0;
  const wellBehaved = async (): Promise<void> => {
    for (let n = 0; Date.now() < deadline; n++) {
      const started = process.hrtime.bigint();
      const code = await transaction(port, '127.0.0.51', n);
      latencies.push(Number(process.hrtime.bigint() - started) / 1e6);
      if (code === 250) good++;
    }
  };

  const start = Date.now();
  await wellBehaved();
  const flood = await floodResult;
  const elapsed = (Date.now() - start) / 1000;
  daemon.kill('SIGTERM');

  latencies.sort((a, b) => a - b);
  const pct = (p: number): string => (latencies[Math.min(latencies.length - 1, Math.floor(latencies.length * p))] ?? 0).toFixed(1);
  console.log(`flood from 127.0.0.50 with ${settings.flooders} parallel connectors for ${elapsed.toFixed(1)} s, Workers=${settings.workers}`);
  console.log(`  refused with 421: ${flood.refused} (${(flood.refused / elapsed).toFixed(0)} per second)`);
  console.log(`  greeted: ${flood.greeted}, failed to connect: ${flood.failed}`);
  console.log(`well-behaved client on 127.0.0.51, one message per connection`);
  console.log(`  accepted: ${good} of ${latencies.length} (${(good / elapsed).toFixed(1)} per second)`);
  console.log(`  transaction latency ms: median ${pct(0.5)}, p95 ${pct(0.95)}, max ${pct(1)}`);
  console.log(`machine: ${os.cpus().length} CPUs (${os.cpus()[0]?.model ?? 'unknown'}), Node ${process.version}`);
  fs.rmSync(dir, { recursive: true, force: true });
}

interface FloodCounts {
  refused: number;
  greeted: number;
  failed: number;
}

/** Runs `flooders` loops in the worker thread that connect from 127.0.0.50 until the deadline. */
async function flood(data: { port: number; deadline: number; flooders: number }): Promise<FloodCounts> {
  const counts: FloodCounts = { refused: 0, greeted: 0, failed: 0 };
  const flooder = async (): Promise<void> => {
    while (Date.now() < data.deadline) {
      const line = await firstLine(data.port, '127.0.0.50');
      if (line.startsWith('421 4.3.2')) counts.refused++;
      else if (line.startsWith('220')) counts.greeted++;
      else counts.failed++;
    }
  };
  await Promise.all(Array.from({ length: data.flooders }, flooder));
  return counts;
}

if (isMainThread) {
  void main();
} else {
  void flood(workerData).then((counts) => parentPort?.postMessage(counts));
}
