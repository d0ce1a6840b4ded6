// Session benchmark: 20 clients open sessions that only send EHLO and QUIT,
// with no mail, against a posthorn daemon. Prints sessions per second and
// the CPU per session of the daemon and of the clients, which is the cost a
// new connection adds to each message of the relay bench.
//
//   npx tsc -p . && node dist/bench/sessions.js [--sessions 4000] [--clients 20]

import * as net from 'node:net';
import { startBenchSink } from './sink';
import { startPosthornBench, treeCpuMs } from './mta';

/** Runs one session: greeting, EHLO, QUIT. Resolves when the daemon has closed it. */
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
  const sink = await startBenchSink();
  const mta = await startPosthornBench({ sinkPort: sink.port });
  try {
    // Warm-up, so that the daemon's JIT has compiled the session code.
    await runSessions(mta.port, clients, 500);
    const daemonBefore = treeCpuMs(mta.rootPid());
    const clientBefore = process.cpuUsage();
    const start = Date.now();
    await runSessions(mta.port, clients, total);
    const elapsed = Date.now() - start;
    const daemonCpu = treeCpuMs(mta.rootPid()) - daemonBefore;
    const client = process.cpuUsage(clientBefore);
    console.log(`${total} sessions (EHLO, QUIT) over ${clients} clients in ${elapsed} ms = ${Math.round((total / elapsed) * 1000)}/s`);
    console.log(`daemon CPU ${(daemonCpu / total).toFixed(3)} ms per session, clients ${((client.user + client.system) / 1000 / total).toFixed(3)} ms`);
  } finally {
    await mta.stop();
    await sink.close();
  }
}

void main();
