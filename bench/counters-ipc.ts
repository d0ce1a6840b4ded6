// Cost of the counters that Workers=N shares through the primary
// (src/daemon/shared-counters.ts), without SMTP around it: one worker makes
// the requests that one connection makes with every counter on (a session
// for MaxDaemonChildren, a second count for ConnectionRateThrottle, a client
// count for conncontrol/ratecontrol, then both releases), `--concurrency` at a
// time, for `--connections` connections. Prints the wall time per connection
// and the CPU time of the primary and of the worker per connection.
//
//   npx tsc -p . && node dist/bench/counters-ipc.js [--connections 20000] [--concurrency 20]

import cluster from 'node:cluster';
import * as os from 'node:os';
import { CounterClient, CounterServer } from '../src/daemon/shared-counters';
import { Logger } from '../src/log/logger';

interface Settings {
  connections: number;
  concurrency: number;
}

function parseSettings(argv: string[]): Settings {
  const s: Settings = { connections: 20_000, concurrency: 20 };
  for (let i = 0; i < argv.length; i += 2) {
    const value = Number(argv[i + 1]);
    if (argv[i] === '--connections') s.connections = value;
    else if (argv[i] === '--concurrency') s.concurrency = value;
  }
  return s;
}

const quiet = new Logger([], 0);

function cpuMicros(): number {
  const usage = process.cpuUsage();
  return usage.user + usage.system;
}

interface WorkerResult {
  wallMs: number;
  cpuMicros: number;
}

async function runWorker(settings: Settings): Promise<WorkerResult> {
  const client = new CounterClient(60_000, quiet);
  const store = client.connectionStore();
  const cpuStart = cpuMicros();
  const start = process.hrtime.bigint();
  let next = 0;
  const loop = async (): Promise<void> => {
    while (next < settings.connections) {
      const n = next++;
      const address = `192.0.2.${n % 200}`;
      const lease = await client.openSession('MTA', 0);
      await client.countSecond('MTA');
      await store.opened(address);
      store.closed(address);
      lease.release();
    }
  };
  await Promise.all(Array.from({ length: settings.concurrency }, loop));
  const wallMs = Number(process.hrtime.bigint() - start) / 1e6;
  client.close();
  return { wallMs, cpuMicros: cpuMicros() - cpuStart };
}

async function main(): Promise<void> {
  const settings = parseSettings(process.argv.slice(2));
  if (cluster.isWorker) {
    const result = await runWorker(settings);
    process.send?.({ result });
    return;
  }
  const server = new CounterServer(60_000, quiet);
  const worker = cluster.fork();
  const cpuStart = cpuMicros();
  const result = await new Promise<WorkerResult>((resolve) => {
    worker.on('message', (message: { result?: WorkerResult }) => {
      if (message.result) resolve(message.result);
    });
  });
  const primaryCpu = cpuMicros() - cpuStart;
  worker.kill();
  server.close();

  const n = settings.connections;
  console.log(`${n} connections, ${settings.concurrency} at a time, 3 requests and 2 releases each`);
  console.log(`wall time per connection: ${((result.wallMs * 1000) / n).toFixed(1)} us`);
  console.log(`primary CPU per connection: ${(primaryCpu / n).toFixed(1)} us`);
  console.log(`worker CPU per connection: ${(result.cpuMicros / n).toFixed(1)} us`);
  console.log(`machine: ${os.cpus().length} CPUs (${os.cpus()[0]?.model ?? 'unknown'}), load ${os.loadavg()[0].toFixed(1)}, Node ${process.version}`);
}

void main();
