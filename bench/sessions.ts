// Session benchmark: 20 clients open sessions that only send EHLO and QUIT,
// with no mail, against a posthorn daemon. Prints sessions per second and
// the CPU per session of the daemon and of the clients, which is the cost a
// new connection adds to each message of the relay bench.
//
//   npx tsc -p . && node dist/bench/sessions.js [--sessions 4000] [--clients 20] [--minimal]
//
// --minimal runs the same load against a few lines of Node that send the
// same three replies and nothing else: the floor for one Node process.

import * as net from 'node:net';
import { spawn } from 'node:child_process';
import { startBenchSink } from './sink';
import { startPosthornBench, treeCpuMs } from './mta';

/** A server that sends the three replies of a session and nothing else. It prints its port. */
const MINIMAL_SERVER = `
const net = require('node:net');
const server = net.createServer((socket) => {
  socket.setNoDelay(true);
  socket.on('error', () => undefined);
  socket.write('220 mx.posthorn.test ESMTP\\r\\n');
  let pending = '';
  socket.on('data', (chunk) => {
    pending += chunk.toString('latin1');
    let end;
    while ((end = pending.indexOf('\\r\\n')) >= 0) {
      const line = pending.slice(0, end).toUpperCase();
      pending = pending.slice(end + 2);
      if (line.startsWith('EHLO')) socket.write('250-mx.posthorn.test\\r\\n250-PIPELINING\\r\\n250-8BITMIME\\r\\n250 HELP\\r\\n');
      else if (line.startsWith('QUIT')) socket.end('221 2.0.0 mx.posthorn.test closing connection\\r\\n');
    }
  });
});
server.listen(0, '127.0.0.1', () => console.log(server.address().port));
`;

interface SessionTarget {
  port: number;
  pid: number;
  stop(): Promise<void>;
}

/** Starts MINIMAL_SERVER in a child process. */
async function startMinimal(): Promise<SessionTarget> {
  const child = spawn(process.execPath, ['-e', MINIMAL_SERVER], { stdio: ['ignore', 'pipe', 'inherit'] });
  const port = await new Promise<number>((resolve) => {
    child.stdout.once('data', (d: Buffer) => resolve(Number(d.toString().trim())));
  });
  const stop = (): Promise<void> =>
    new Promise((resolve) => {
      child.once('exit', () => resolve());
      child.kill();
    });
  return { port, pid: child.pid!, stop };
}

/** Starts posthorn, relaying to a sink that these sessions never use. */
async function startPosthorn(): Promise<SessionTarget> {
  const sink = await startBenchSink();
  const nodeArgs = (process.env.BENCH_NODE_ARGS ?? '').split(' ').filter((a) => a !== '');
  const mta = await startPosthornBench({ sinkPort: sink.port, nodeArgs });
  const stop = async (): Promise<void> => {
    await mta.stop();
    await sink.close();
  };
  return { port: mta.port, pid: mta.rootPid(), stop };
}

/** Runs one session: greeting, EHLO, QUIT. Resolves when the server has closed it. */
function session(port: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const socket = net.connect(port, '127.0.0.1');
    let pending = '';
    let step = 0;
    socket.on('data', (chunk) => {
      pending += chunk.toString('latin1');
      // Wait for the last line of a reply: a code followed by a space.
      const last = /(?:^|\r\n)(\d{3}) [^\r\n]*\r\n$/.exec(pending);
      if (last === null) return;
      pending = '';
      if (step === 0) socket.write('EHLO client.example\r\n');
      else if (step === 1) socket.write('QUIT\r\n');
      else socket.end();
      step++;
    });
    socket.on('close', () => (step >= 2 ? resolve() : reject(new Error(`session closed after step ${step}`))));
    socket.on('error', reject);
  });
}

/** Runs `total` sessions over `clients` concurrent loops. */
async function runSessions(port: number, clients: number, total: number): Promise<void> {
  let started = 0;
  await Promise.all(
    Array.from({ length: clients }, async () => {
      while (started < total) {
        started++;
        await session(port);
      }
    }),
  );
}

function option(argv: string[], name: string, fallback: number): number {
  const at = argv.indexOf(name);
  return at >= 0 ? Number(argv[at + 1]) : fallback;
}

async function main(): Promise<void> {
  const argv = process.argv.slice(2);
  const total = option(argv, '--sessions', 4000);
  const clients = option(argv, '--clients', 20);
  const minimal = argv.includes('--minimal');
  const target = minimal ? await startMinimal() : await startPosthorn();
  try {
    // Warm-up, so that the JIT has compiled the session code.
    await runSessions(target.port, clients, 500);
    const serverBefore = treeCpuMs(target.pid);
    const clientBefore = process.cpuUsage();
    const start = Date.now();
    await runSessions(target.port, clients, total);
    const elapsed = Date.now() - start;
    const serverCpu = treeCpuMs(target.pid) - serverBefore;
    const client = process.cpuUsage(clientBefore);
    const name = minimal ? 'minimal Node server' : 'daemon';
    console.log(`${total} sessions (EHLO, QUIT) over ${clients} clients in ${elapsed} ms = ${Math.round((total / elapsed) * 1000)}/s`);
    console.log(`${name} CPU ${(serverCpu / total).toFixed(3)} ms per session, clients ${((client.user + client.system) / 1000 / total).toFixed(3)} ms`);
  } finally {
    await target.stop();
  }
}

void main();
