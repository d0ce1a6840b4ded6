// Side-by-side benchmark of posthorn and Postfix on this machine. Each round
// starts one MTA, runs every workload against it, stops it, then does the same
// with the other (A B A B ...). Both relay everything to a loopback sink of our
// own. Prints the median of each figure and the ratio posthorn / Postfix.
//
//   npm run build && node dist/bench/compare.js [--rounds 3] [--quick]
//
// BENCH_NODE_ARGS passes flags to posthorn's node (e.g. "--cpu-prof").
// Postfix comes from scripts/install-peers.sh (.peers/); without it only
// posthorn runs.

import * as fs from 'node:fs';
import * as path from 'node:path';
import { holdIdleSessions, runLoad } from './load';
import { BenchMta, startPostfixBench, startPosthornBench, statusKb, treeRssKb } from './mta';
import { BenchSink, startBenchSink } from './sink';

interface Workload {
  key: string;
  label: string;
  unit: string;
  /** Whether a bigger figure is better (for the ratio's direction note). */
  higherIsBetter: boolean;
}

const WORKLOADS: Workload[] = [
  { key: 'small-new', label: 'small (2 KB), new connection each, 20 clients', unit: 'msg/s', higherIsBetter: true },
  { key: 'small-reuse', label: 'small (2 KB), 20 reused connections', unit: 'msg/s', higherIsBetter: true },
  { key: 'large', label: '10 MiB messages, 2 clients', unit: 'MiB/s', higherIsBetter: true },
  { key: 'idle', label: 'idle sessions after EHLO: memory each', unit: 'KB', higherIsBetter: false },
  { key: 'startup', label: 'start to listening', unit: 'ms', higherIsBetter: false },
];

interface Scale {
  rounds: number;
  /** Messages per client (20 clients) in the two small-message workloads. */
  smallNew: number;
  smallReuse: number;
  largeMessages: number;
  idle: number;
}

function parseArgs(argv: string[]): Scale {
  const scale: Scale = { rounds: 3, smallNew: 25, smallReuse: 50, largeMessages: 4, idle: 2000 };
  for (let i = 0; i < argv.length; i++) {
    if (argv[i] === '--rounds') scale.rounds = Number(argv[++i]);
    else if (argv[i] === '--quick') Object.assign(scale, { rounds: 1, smallNew: 20, smallReuse: 30, largeMessages: 2, idle: 200 });
    else if (argv[i] === '--idle') scale.idle = Number(argv[++i]);
  }
  return scale;
}

function hasPostfix(): boolean {
  const file = path.resolve(__dirname, '..', '..', '.peers', 'usr', 'sbin', 'postfix');
  return fs.existsSync(file);
}

/** Waits until the sink has `count` messages or `timeoutMs` passed; returns ms since `since`. */
async function waitSink(sink: BenchSink, count: number, since: bigint, timeoutMs: number): Promise<number> {
  const deadline = Date.now() + timeoutMs;
  while (sink.messages < count && Date.now() < deadline) await new Promise((r) => setTimeout(r, 5));
  if (sink.messages < count) console.log(`  warning: only ${sink.messages}/${count} relayed`);
  return Number(process.hrtime.bigint() - since) / 1e6;
}

type Figures = Record<string, number>;

async function throughput(
  mta: BenchMta,
  sink: BenchSink,
  opts: { clients: number; perClient: number; size: number; newConnections: boolean },
): Promise<{ relayedPerSecond: number; relayed: number; bytes: number; seconds: number }> {
  const before = sink.messages;
  const bytesBefore = sink.bytes;
  const started = process.hrtime.bigint();
  const load = await runLoad({
    port: mta.port,
    clients: opts.clients,
    messagesPerClient: opts.perClient,
    size: opts.size,
    newConnections: opts.newConnections,
    timeoutMs: 180_000,
  });
  if (load.rejected > 0) console.log(`  warning: ${mta.name} did not accept ${load.rejected} message(s)`);
  const ms = await waitSink(sink, before + load.accepted, started, 120_000);
  const relayed = sink.messages - before;
  return { relayedPerSecond: relayed / (ms / 1000), relayed, bytes: sink.bytes - bytesBefore, seconds: ms / 1000 };
}

async function runRound(mta: BenchMta, sink: BenchSink, scale: Scale): Promise<Figures> {
  const figures: Figures = { startup: mta.startupMs };

  // Warm up both the MTA and the path to the sink.
  await throughput(mta, sink, { clients: 4, perClient: 5, size: 2048, newConnections: false });

  const smallNew = await throughput(mta, sink, { clients: 20, perClient: scale.smallNew, size: 2048, newConnections: true });
  figures['small-new'] = smallNew.relayedPerSecond;

  const smallReuse = await throughput(mta, sink, { clients: 20, perClient: scale.smallReuse, size: 2048, newConnections: false });
  figures['small-reuse'] = smallReuse.relayedPerSecond;

  const rssBeforeLarge = statusKb(mta.rootPid(), 'VmHWM');
  const large = await throughput(mta, sink, { clients: 2, perClient: scale.largeMessages, size: 10 * 1024 * 1024, newConnections: false });
  figures.large = large.bytes / (1024 * 1024) / large.seconds;
  figures['peak-rss-before-large'] = rssBeforeLarge;
  figures['peak-rss-after-large'] = statusKb(mta.rootPid(), 'VmHWM');

  const base = treeRssKb(mta.rootPid());
  const held = await holdIdleSessions(mta.port, scale.idle, { timeoutMs: 45_000 });
  // Let the MTA finish setting up what it allocates per session.
  await new Promise((r) => setTimeout(r, 500));
  const loaded = treeRssKb(mta.rootPid());
  if (held.ready < scale.idle) console.log(`  warning: ${mta.name} held only ${held.ready}/${scale.idle} sessions`);
  figures.idle = held.ready > 0 ? (loaded - base) / held.ready : NaN;
  figures['idle-held'] = held.ready;
  for (const s of held.sockets) s.destroy();
  return figures;
}

function median(values: number[]): number {
  const sorted = values.filter((v) => !Number.isNaN(v)).sort((a, b) => a - b);
  if (sorted.length === 0) return NaN;
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
}

function fmt(n: number): string {
  if (Number.isNaN(n)) return '-';
  return n >= 100 ? n.toFixed(0) : n.toFixed(1);
}

async function main(): Promise<void> {
  const scale = parseArgs(process.argv.slice(2));
  const begun = Date.now();
  const nodeArgs = (process.env.BENCH_NODE_ARGS ?? '').split(' ').filter((a) => a !== '');
  const withPostfix = hasPostfix();
  if (!withPostfix) console.log('Postfix not found in .peers/ (run scripts/install-peers.sh): posthorn only.');

  const starters: Array<[string, (sinkPort: number) => Promise<BenchMta>]> = [
    ['posthorn', (sinkPort) => startPosthornBench({ sinkPort, nodeArgs })],
  ];
  if (withPostfix) starters.push(['postfix', (sinkPort) => startPostfixBench({ sinkPort })]);

  const results = new Map<string, Figures[]>();
  for (let round = 1; round <= scale.rounds; round++) {
    for (const [name, start] of starters) {
      const sink = await startBenchSink();
      const mta = await start(sink.port);
      try {
        const figures = await runRound(mta, sink, scale);
        const list = results.get(name) ?? [];
        list.push(figures);
        results.set(name, list);
        console.log(
          `round ${round} ${name}: ` +
            WORKLOADS.map((w) => `${w.key}=${fmt(figures[w.key])}`).join(' ') +
            ` peakRSS=${figures['peak-rss-before-large']}->${figures['peak-rss-after-large']}kB`,
        );
      } finally {
        await mta.stop();
        await sink.close();
      }
    }
  }

  const med = (name: string, key: string): number => median((results.get(name) ?? []).map((f) => f[key]));
  console.log('');
  console.log(`medians of ${scale.rounds} round(s); ratio = posthorn / postfix`);
  console.log('| workload | unit | posthorn | postfix | ratio |');
  console.log('| --- | --- | --- | --- | --- |');
  for (const w of WORKLOADS) {
    const a = med('posthorn', w.key);
    const b = med('postfix', w.key);
    const ratio = a / b;
    const note = w.higherIsBetter ? '' : ' (lower is better)';
    console.log(`| ${w.label} | ${w.unit} | ${fmt(a)} | ${fmt(b)} | ${Number.isFinite(ratio) ? ratio.toFixed(2) : '-'}${note} |`);
  }
  const before = med('posthorn', 'peak-rss-before-large');
  const after = med('posthorn', 'peak-rss-after-large');
  console.log('');
  console.log(`posthorn peak RSS before the 10 MiB workload ${before} kB, after ${after} kB (growth ${after - before} kB)`);
  console.log(`scale: ${scale.smallNew * 20} + ${scale.smallReuse * 20} small, ${scale.largeMessages * 2} x 10 MiB, ${scale.idle} idle per round`);
  console.log(`total time: ${((Date.now() - begun) / 1000).toFixed(1)} s`);
}

main().catch((err) => {
  console.error(err);
  process.exitCode = 1;
});
