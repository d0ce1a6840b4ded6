// Large-message benchmark: 2 clients send messages of several MiB to a real
// posthorn daemon (SuperSafe=True), which relays them to a loopback sink.
// Prints the relayed MiB/s, the daemon's CPU time per message, and its peak
// RSS (VmHWM) before and after the large messages, after a warm-up of 10
// small ones.
//
//   node dist/bench/large.js [--messages 4] [--mib 10]
//
// --messages is per client. BENCH_NODE_ARGS passes flags to the daemon's node;
// BENCH_WORKERS and BENCH_DAEMON_ARGS pass options to the daemon, as for relay.js.

import * as fs from 'node:fs';
import { startBenchSink } from './sink';
import { startPosthornBench, statusKb } from './mta';
import { runLoad } from './load';

const CLIENTS = 2;

function option(argv: string[], name: string, fallback: number): number {
  const at = argv.indexOf(name);
  return at >= 0 ? Number(argv[at + 1]) : fallback;
}

/** Returns the user plus system CPU time of a process in ms, from /proc (100 ticks a second). */
function cpuMs(pid: number): number {
  const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(fields[11]) + Number(fields[12])) * 10;
}

async function waitForSink(count: () => number, target: number, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (count() < target && Date.now() < deadline) await new Promise((r) => setTimeout(r, 5));
}

async function main(): Promise<void> {
  const argv = process.argv.slice(2);
  const perClient = option(argv, '--messages', 4);
  const mib = option(argv, '--mib', 10);
  const nodeArgs = (process.env.BENCH_NODE_ARGS ?? '').split(' ').filter((a) => a !== '');

  const sink = await startBenchSink();
  // As in relay.js: BENCH_WORKERS=N and BENCH_DAEMON_ARGS="-O Name=value ..." for the daemon.
  const daemonArgs = process.env.BENCH_WORKERS ? ['-O', `Workers=${process.env.BENCH_WORKERS}`] : [];
  daemonArgs.push(...(process.env.BENCH_DAEMON_ARGS ?? '').split(' ').filter((a) => a !== ''));
  const mta = await startPosthornBench({ sinkPort: sink.port, nodeArgs, daemonArgs });
  const pid = mta.rootPid();
  try {
    await runLoad({ port: mta.port, clients: CLIENTS, messagesPerClient: 5, size: 2048, newConnections: false });
    await waitForSink(() => sink.messages, 10, 30_000);

    const peakBefore = statusKb(pid, 'VmHWM');
    const cpuBefore = cpuMs(pid);
    const relayedBefore = sink.messages;
    const start = Date.now();
    const load = await runLoad({
      port: mta.port,
      clients: CLIENTS,
      messagesPerClient: perClient,
      size: mib * 1024 * 1024,
      newConnections: false,
    });
    await waitForSink(() => sink.messages - relayedBefore, load.accepted, 120_000);
    const seconds = (Date.now() - start) / 1000;
    const relayed = sink.messages - relayedBefore;
    const cpu = cpuMs(pid) - cpuBefore;
    const peakAfter = statusKb(pid, 'VmHWM');

    console.log(`${CLIENTS} clients x ${perClient} messages of ${mib} MiB, SuperSafe=True`);
    console.log(`relayed: ${relayed}/${load.accepted} in ${seconds.toFixed(2)} s = ${((relayed * mib) / seconds).toFixed(1)} MiB/s`);
    console.log(`daemon CPU: ${(cpu / Math.max(1, relayed)).toFixed(0)} ms per message (user + system, from /proc)`);
    console.log(`daemon peak RSS: ${peakBefore} kB before, ${peakAfter} kB after (growth ${peakAfter - peakBefore} kB)`);
  } finally {
    await mta.stop();
    await sink.close();
  }
}

void main();
