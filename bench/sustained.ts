// Small messages over a longer stretch. The same 20-client load runs several
// times in a row against one running MTA, and each slice's relayed rate and
// the MTA's CPU per message are printed. So a rate that changes as the run
// goes on shows. posthorn and Postfix take turns (A B A B ...), each with a
// fresh sink.
//
//   npx tsc -p . && node dist/bench/sustained.js [--slices 8] [--per-client 25]
//       [--rounds 2] [--reuse] [--workers N] [--posthorn-only]
//
// Without --reuse every message gets a new connection. BENCH_NODE_ARGS
// passes flags to posthorn's node (e.g. "--max-opt=0" to see the JIT's part). Postfix comes from
// scripts/install-peers.sh (.peers/); without it only posthorn runs.

import * as fs from 'node:fs';
import * as path from 'node:path';
import { runLoad } from './load';
import { BenchMta, startPostfixBench, startPosthornBench, treeCpuMs } from './mta';
import { BenchSink, startBenchSink } from './sink';

interface Settings {
  slices: number;
  perClient: number;
  rounds: number;
  newConnections: boolean;
  /** posthorn's Workers option (1: one process). */
  workers: number;
  /** Leave Postfix out. */
  posthornOnly: boolean;
}

function parseArgs(argv: string[]): Settings {
  const s: Settings = { slices: 8, perClient: 25, rounds: 2, newConnections: true, workers: 1, posthornOnly: false };
  for (let i = 0; i < argv.length; i++) {
    if (argv[i] === '--slices') s.slices = Number(argv[++i]);
    else if (argv[i] === '--per-client') s.perClient = Number(argv[++i]);
    else if (argv[i] === '--rounds') s.rounds = Number(argv[++i]);
    else if (argv[i] === '--reuse') s.newConnections = false;
    else if (argv[i] === '--workers') s.workers = Number(argv[++i]);
    else if (argv[i] === '--posthorn-only') s.posthornOnly = true;
  }
  return s;
}

async function untilRelayed(sink: BenchSink, count: number, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (sink.messages < count && Date.now() < deadline) await new Promise((r) => setTimeout(r, 5));
}

/** One slice: 20 clients send perClient messages each; returns msg/s and CPU ms per message. */
async function slice(mta: BenchMta, sink: BenchSink, s: Settings): Promise<{ rate: number; cpu: number }> {
  const before = sink.messages;
  const cpuBefore = treeCpuMs(mta.rootPid());
  const started = process.hrtime.bigint();
  const load = await runLoad({
    port: mta.port,
    clients: 20,
    messagesPerClient: s.perClient,
    size: 2048,
    newConnections: s.newConnections,
    timeoutMs: 120_000,
  });
  await untilRelayed(sink, before + load.accepted, 60_000);
  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  const relayed = sink.messages - before;
  const cpu = (treeCpuMs(mta.rootPid()) - cpuBefore) / Math.max(1, relayed);
  if (load.rejected > 0) console.log(`  warning: ${mta.name} did not accept ${load.rejected} message(s)`);
  return { rate: relayed / seconds, cpu };
}

async function main(): Promise<void> {
  const s = parseArgs(process.argv.slice(2));
  const begun = Date.now();
  // BENCH_NODE_ARGS passes flags to posthorn's node, as in compare.js.
  const nodeArgs = (process.env.BENCH_NODE_ARGS ?? '').split(' ').filter((a) => a !== '');
  const starters: Array<(sinkPort: number) => Promise<BenchMta>> = [(sinkPort) =>
    startPosthornBench({ sinkPort, nodeArgs, daemonArgs: s.workers > 1 ? ['-O', `Workers=${s.workers}`] : [] }),
  ];
  if (s.posthornOnly) {
    // Postfix left out on request.
  } else if (fs.existsSync(path.resolve(__dirname, '..', '..', '.peers', 'usr', 'sbin', 'postfix'))) {
    starters.push((sinkPort) => startPostfixBench({ sinkPort }));
  } else {
    console.log('Postfix not found in .peers/ (run scripts/install-peers.sh): posthorn only.');
  }
  const kind = s.newConnections ? 'a new connection each' : 'reused connections';
  console.log(`${s.slices} slices of 20 x ${s.perClient} small messages, ${kind}, after a warm-up of 600`);
  for (let round = 1; round <= s.rounds; round++) {
    for (const start of starters) {
      const sink = await startBenchSink();
      const mta = await start(sink.port);
      try {
        // 600 small messages over new and reused connections, the warm-up that
        // compare.js used before: the slices show what warming up takes after it.
        await runLoad({ port: mta.port, clients: 20, messagesPerClient: 10, size: 2048, newConnections: true });
        await runLoad({ port: mta.port, clients: 20, messagesPerClient: 20, size: 2048, newConnections: false });
        await untilRelayed(sink, 600, 30_000);
        const rates: string[] = [];
        const cpus: string[] = [];
        for (let i = 0; i < s.slices; i++) {
          const r = await slice(mta, sink, s);
          rates.push(r.rate.toFixed(0));
          cpus.push(r.cpu.toFixed(2));
        }
        console.log(`round ${round} ${mta.name}: msg/s ${rates.join(' ')}`);
        console.log(`round ${round} ${mta.name}: CPU ms per message ${cpus.join(' ')}`);
      } finally {
        await mta.stop();
        await sink.close();
      }
    }
  }
  console.log(`total time: ${((Date.now() - begun) / 1000).toFixed(1)} s`);
}

main().catch((err) => {
  console.error(err);
  process.exitCode = 1;
});
