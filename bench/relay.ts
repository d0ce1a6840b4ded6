// Relay benchmark: several concurrent SMTP clients send small messages to a
// real posthorn daemon (SuperSafe=True), which relays them to a loopback sink.
// Prints messages per second accepted and relayed, the daemon's CPU time per
// message and its peak RSS.
//
//   npm run bench -- [--clients 20] [--messages 100] [--size 2048] [--new-connections]
//
// BENCH_NODE_ARGS passes flags to the daemon's node (e.g. "--cpu-prof"),
// BENCH_WORKERS=N runs it with -O Workers=N, and BENCH_MCI_CACHE_SIZE sets the
// next-hop connection cache (0 turns reuse off). BENCH_COUNTERS=1 turns on
// every connection counter (FEATURE conncontrol and ratecontrol without limits,
// MaxDaemonChildren and ConnectionRateThrottle far above the load), so that
// with workers each connection sends three requests to the primary.

import * as fs from 'node:fs';
import { startBenchSink } from './sink';
import { startPosthornBench, statusKb } from './mta';
import { runLoad } from './load';

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

/** Returns the user plus system CPU time of a process and its children in ms, from /proc (100 ticks a second). */
function cpuMs(pid: number): number {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    let children = 0;
    try {
      // With BENCH_WORKERS the worker processes are children of the daemon.
      for (const child of fs.readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').split(' ')) {
        if (child.trim() !== '') children += cpuMs(Number(child));
      }
    } catch {
      // No children file: count the daemon alone.
    }
    return (Number(fields[11]) + Number(fields[12])) * 10 + children;
  } catch {
    return 0;
  }
}

async function main(): Promise<void> {
  const settings = parseSettings(process.argv.slice(2));
  const sink = await startBenchSink();
  const nodeArgs = (process.env.BENCH_NODE_ARGS ?? '').split(' ').filter((a) => a !== '');
  const daemonArgs = process.env.BENCH_WORKERS ? ['-O', `Workers=${process.env.BENCH_WORKERS}`] : [];
  // More daemon arguments, e.g. BENCH_DAEMON_ARGS="-O DeliveryMode=interactive -O SuperSafe=Interactive".
  const extraArgs = (process.env.BENCH_DAEMON_ARGS ?? '').split(' ').filter((a) => a !== '');
  daemonArgs.push(...extraArgs);
  const counters = process.env.BENCH_COUNTERS === '1';
  if (counters) daemonArgs.push('-O', 'MaxDaemonChildren=100000', '-O', 'ConnectionRateThrottle=1000000');
  // The optional access map does not exist, so no client has a limit, but every connection is counted.
  const extraMc = counters
    ? ["FEATURE(`access_db', `hash -o /nonexistent/posthorn-bench-access')", "FEATURE(`conncontrol')", "FEATURE(`ratecontrol')"]
    : [];
  const mta = await startPosthornBench({ sinkPort: sink.port, nodeArgs, daemonArgs, extraMc });
  const pid = mta.rootPid();

  const total = settings.clients * settings.messages;
  const cpuAtStart = cpuMs(pid);
  const start = Date.now();
  const load = await runLoad({
    port: mta.port,
    clients: settings.clients,
    messagesPerClient: settings.messages,
    size: settings.size,
    newConnections: settings.newConnections,
  });
  const acceptedSeconds = (Date.now() - start) / 1000;

  const deadline = Date.now() + 120_000;
  while (sink.messages < load.accepted && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
  const relayedSeconds = (Date.now() - start) / 1000;

  const daemonCpu = cpuMs(pid) - cpuAtStart;
  const peak = statusKb(pid, 'VmHWM');
  await mta.stop();
  await sink.close();

  const mode = settings.newConnections ? 'new connection per message' : 'reused connections';
  const perMessage = (daemonCpu / Math.max(1, load.accepted)).toFixed(2);
  const setup = `Workers=${process.env.BENCH_WORKERS ?? 1}${counters ? ', all connection counters on' : ''}`;
  const options = extraArgs.length > 0 ? extraArgs.join(' ') : 'SuperSafe=True';
  console.log(`clients=${settings.clients} messages=${total} size=${settings.size} (${mode}), ${options}, ${setup}`);
  console.log(`daemon CPU: ${daemonCpu} ms = ${perMessage} ms per message (user + system, from /proc)`);
  console.log(`accepted: ${load.accepted}/${total} in ${acceptedSeconds.toFixed(2)} s = ${(load.accepted / acceptedSeconds).toFixed(0)} msg/s`);
  console.log(`relayed:  ${sink.messages}/${load.accepted} in ${relayedSeconds.toFixed(2)} s = ${(sink.messages / relayedSeconds).toFixed(0)} msg/s`);
  console.log(`daemon peak RSS: ${peak} kB`);
}

void main();
