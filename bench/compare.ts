// Side-by-side benchmark of posthorn and Postfix on this machine. Each round
// starts one MTA, runs every workload against it, stops it, then does the same
// with the other (A B A B ...). Both relay everything to a loopback sink of our
// own. Prints the median of each figure and the ratio posthorn / Postfix.
//
//   npm run build && node dist/bench/compare.js [--rounds 3] [--quick]
//       [--idle N] [--workers N] [--large N] [--small N] [--warmup N]
//       [--only small-new,starttls,...]
//
// Both MTAs get the same RSA-2048 certificate and key and offer STARTTLS in
// every workload. --idle N above 2,000 applies to posthorn only: Postfix runs
// one smtpd process per session and is held at 2,000. --large N sets the 10 MiB
// messages per client (default 16; with 4 the workload lasted about 0.3 s and
// its ratio moved by 0.5 between runs).
//
// BENCH_NODE_ARGS passes flags to posthorn's node (e.g. "--cpu-prof"), and
// BENCH_DAEMON_ARGS options to posthorn (e.g. "-O PoolThreadNice=19").
// Postfix comes from scripts/install-peers.sh (.peers/); without it only
// posthorn runs.

import * as fs from 'node:fs';
import * as path from 'node:path';
import { holdIdleSessions, runLoad } from './load';
import { BenchMta, startPostfixBench, startPosthornBench, statusKb, treeCpuMs, treeRssKb } from './mta';
import { BenchSink, startBenchSink } from './sink';
import { runStarttlsLoad } from './tls';
import { makeTestCerts, type TestCerts } from '../test/tls/certs';

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
  { key: 'starttls', label: 'STARTTLS sessions (full handshake, RSA-2048), 20 clients', unit: 'sessions/s', higherIsBetter: true },
  { key: 'idle', label: 'idle sessions after EHLO: memory each', unit: 'KB', higherIsBetter: false },
  { key: 'startup', label: 'start to listening', unit: 'ms', higherIsBetter: false },
];

interface Scale {
  rounds: number;
  /** Messages per client (20 clients) in the two small-message workloads. */
  smallNew: number;
  smallReuse: number;
  largeMessages: number;
  /** Warm-up messages per client over new connections (twice that over reused ones). */
  warmup: number;
  idle: number;
  /** STARTTLS sessions per round (20 clients). */
  starttls: number;
  /** posthorn's Workers option (1: one process). */
  workers: number;
  /** Workload keys to run; all when empty. */
  only: Set<string>;
}

/** Postfix runs one smtpd per idle session; more than this is not asked of it. */
const POSTFIX_IDLE_MAX = 2000;

function parseArgs(argv: string[]): Scale {
  const scale: Scale = { rounds: 3, smallNew: 50, smallReuse: 100, largeMessages: 16, warmup: 50, idle: 2000, starttls: 600, workers: 1, only: new Set() };
  for (let i = 0; i < argv.length; i++) {
    if (argv[i] === '--rounds') scale.rounds = Number(argv[++i]);
    else if (argv[i] === '--quick') Object.assign(scale, { rounds: 1, smallNew: 20, smallReuse: 30, largeMessages: 2, idle: 200, starttls: 200 });
    else if (argv[i] === '--idle') scale.idle = Number(argv[++i]);
    else if (argv[i] === '--starttls') scale.starttls = Number(argv[++i]);
    else if (argv[i] === '--workers') scale.workers = Number(argv[++i]);
    else if (argv[i] === '--large') scale.largeMessages = Number(argv[++i]);
    else if (argv[i] === '--warmup') scale.warmup = Number(argv[++i]);
    else if (argv[i] === '--small') {
      // Longer small-message workloads: N per client with a new connection
      // each, 2N per client over reused connections.
      scale.smallNew = Number(argv[++i]);
      scale.smallReuse = 2 * scale.smallNew;
    }
    else if (argv[i] === '--only') scale.only = new Set(argv[++i].split(','));
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
  const want = (key: string): boolean => scale.only.size === 0 || scale.only.has(key);

  // Warm up both the MTA and the path to the sink with 3,000 small messages
  // over new and reused connections. The figures are then those of a running
  // MTA: Postfix has its processes up, and posthorn's JIT has compiled its hot
  // path. bench/sustained.ts shows posthorn's CPU per message halve over the
  // first 3,000 messages, so a warm-up of 600 (--warmup 10) measured part of
  // its start.
  await throughput(mta, sink, { clients: 20, perClient: scale.warmup, size: 2048, newConnections: true });
  await throughput(mta, sink, { clients: 20, perClient: 2 * scale.warmup, size: 2048, newConnections: false });

  if (want('small-new')) {
    const smallNew = await throughput(mta, sink, { clients: 20, perClient: scale.smallNew, size: 2048, newConnections: true });
    figures['small-new'] = smallNew.relayedPerSecond;
  }

  if (want('small-reuse')) {
    const smallReuse = await throughput(mta, sink, { clients: 20, perClient: scale.smallReuse, size: 2048, newConnections: false });
    figures['small-reuse'] = smallReuse.relayedPerSecond;
  }

  if (want('large')) {
    const rssBeforeLarge = statusKb(mta.rootPid(), 'VmHWM');
    const large = await throughput(mta, sink, { clients: 2, perClient: scale.largeMessages, size: 10 * 1024 * 1024, newConnections: false });
    figures.large = large.bytes / (1024 * 1024) / large.seconds;
    figures['peak-rss-before-large'] = rssBeforeLarge;
    figures['peak-rss-after-large'] = statusKb(mta.rootPid(), 'VmHWM');
  }

  if (want('starttls')) {
    // A short warm-up, then connect, EHLO, STARTTLS, full handshake, EHLO, QUIT.
    await runStarttlsLoad({ port: mta.port, clients: 4, sessions: 20, timeoutMs: 20_000 });
    const cpuBefore = treeCpuMs(mta.rootPid());
    const ownBefore = process.cpuUsage();
    const tls = await runStarttlsLoad({ port: mta.port, clients: 20, sessions: scale.starttls, timeoutMs: 50_000 });
    const own = process.cpuUsage(ownBefore);
    // CPU per session: the MTA's process tree, and this process (the clients).
    figures['starttls-cpu'] = (treeCpuMs(mta.rootPid()) - cpuBefore) / Math.max(1, tls.done);
    figures['starttls-client-cpu'] = (own.user + own.system) / 1000 / Math.max(1, tls.done);
    if (tls.failed > 0) console.log(`  warning: ${mta.name}: ${tls.failed} STARTTLS session(s) failed, first: ${tls.firstError}`);
    if (tls.done < scale.starttls) console.log(`  warning: ${mta.name}: only ${tls.done}/${scale.starttls} STARTTLS sessions in time`);
    figures.starttls = tls.perSecond;
  }

  if (want('idle')) {
    const count = mta.name === 'postfix' ? Math.min(scale.idle, POSTFIX_IDLE_MAX) : scale.idle;
    // Let sessions of the workloads before end, so that they do not count.
    await new Promise((r) => setTimeout(r, 500));
    const base = treeRssKb(mta.rootPid());
    const held = await holdIdleSessions(mta.port, count, { timeoutMs: 55_000 });
    // Let the MTA finish setting up what it allocates per session.
    await new Promise((r) => setTimeout(r, 500));
    const loaded = treeRssKb(mta.rootPid());
    if (held.ready < count) console.log(`  warning: ${mta.name} held only ${held.ready}/${count} sessions`);
    figures.idle = held.ready > 0 ? (loaded - base) / held.ready : NaN;
    figures['idle-held'] = held.ready;
    for (const s of held.sockets) s.destroy();
  }
  return figures;
}

function median(values: number[]): number {
  const sorted = values.filter((v) => typeof v === 'number' && !Number.isNaN(v)).sort((a, b) => a - b);
  if (sorted.length === 0) return NaN;
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
}

function fmt(n: number | undefined): string {
  if (n === undefined || Number.isNaN(n)) return '-';
  return n >= 100 ? n.toFixed(0) : n.toFixed(1);
}

async function main(): Promise<void> {
  const scale = parseArgs(process.argv.slice(2));
  const begun = Date.now();
  const nodeArgs = (process.env.BENCH_NODE_ARGS ?? '').split(' ').filter((a) => a !== '');
  const withPostfix = hasPostfix();
  if (!withPostfix) console.log('Postfix not found in .peers/ (run scripts/install-peers.sh): posthorn only.');

  // One RSA-2048 server certificate and key for both MTAs.
  const certs: TestCerts = await makeTestCerts();
  const posthornTls = [
    `define(\`confSERVER_CERT', \`${certs.server.cert}')`,
    `define(\`confSERVER_KEY', \`${certs.server.key}')`,
    `define(\`confCACERT', \`${certs.caCert}')`,
  ];
  const postfixTls = [
    `smtpd_tls_cert_file = ${certs.server.cert}`,
    `smtpd_tls_key_file = ${certs.server.key}`,
    'smtpd_tls_security_level = may',
  ];
  const daemonArgs = scale.workers > 1 ? ['-O', `Workers=${scale.workers}`] : [];
  // BENCH_DAEMON_ARGS="-O Name=value ..." passes options to posthorn, e.g. -O PoolThreadNice=19.
  daemonArgs.push(...(process.env.BENCH_DAEMON_ARGS ?? '').split(' ').filter((a) => a !== ''));
  const starters: Array<[string, (sinkPort: number) => Promise<BenchMta>]> = [
    ['posthorn', (sinkPort) => startPosthornBench({ sinkPort, nodeArgs, extraMc: posthornTls, daemonArgs })],
  ];
  if (withPostfix) starters.push(['postfix', (sinkPort) => startPostfixBench({ sinkPort, extraMainCf: postfixTls })]);

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
            WORKLOADS.filter((w) => w.key in figures).map((w) => `${w.key}=${fmt(figures[w.key])}`).join(' ') +
            ` peakRSS=${figures['peak-rss-before-large']}->${figures['peak-rss-after-large']}kB idleHeld=${figures['idle-held']}` +
            ` starttlsCpu=${fmt(figures['starttls-cpu'])}ms clientCpu=${fmt(figures['starttls-client-cpu'])}ms`,
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
    if (scale.only.size > 0 && !scale.only.has(w.key) && w.key !== 'startup') continue;
    const a = med('posthorn', w.key);
    const b = med('postfix', w.key);
    const ratio = a / b;
    const note = w.higherIsBetter ? '' : ' (lower is better)';
    console.log(`| ${w.label} | ${w.unit} | ${fmt(a)} | ${fmt(b)} | ${Number.isFinite(ratio) ? ratio.toFixed(2) : '-'}${note} |`);
  }
  const before = med('posthorn', 'peak-rss-before-large');
  const after = med('posthorn', 'peak-rss-after-large');
  console.log('');
  if (!Number.isNaN(before)) console.log(`posthorn peak RSS before the 10 MiB workload ${before} kB, after ${after} kB (growth ${after - before} kB)`);
  for (const name of results.keys()) {
    if (!Number.isNaN(med(name, 'starttls-cpu'))) {
      console.log(`${name}: CPU per STARTTLS session ${fmt(med(name, 'starttls-cpu'))} ms in the MTA, ${fmt(med(name, 'starttls-client-cpu'))} ms in the clients`);
    }
    if (!Number.isNaN(med(name, 'idle-held'))) console.log(`${name}: idle sessions held ${med(name, 'idle-held')}`);
  }
  console.log(
    `scale: ${scale.warmup * 60} small to warm up, ${scale.smallNew * 20} + ${scale.smallReuse * 20} small, ${scale.largeMessages * 2} x 10 MiB, ` +
      `${scale.starttls} STARTTLS, ${scale.idle} idle (Postfix at most ${POSTFIX_IDLE_MAX}) per round; posthorn Workers=${scale.workers}`,
  );
  certs.remove();
  console.log(`total time: ${((Date.now() - begun) / 1000).toFixed(1)} s`);
}

main().catch((err) => {
  console.error(err);
  process.exitCode = 1;
});
