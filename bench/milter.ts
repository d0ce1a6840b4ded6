// Message rate through the daemon with no mail filter, with one pass-through
// test milter (continue to every step, accept at end of message) and with
// opendkim signing every message. Every run relays to a loopback sink.
//
//   npx tsc -p . && node dist/bench/milter.js [--messages 200] [--clients 10]
//
// opendkim comes from Debian (/usr/sbin/opendkim); without it that row is skipped.

import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { runLoad } from './load';
import { startPosthornBench } from './mta';
import { startBenchSink } from './sink';
import { TestMilter } from '../test/milter/test-milter';

function argValue(name: string, fallback: number): number {
  const index = process.argv.indexOf(name);
  return index < 0 ? fallback : Number(process.argv[index + 1]);
}

const MESSAGES = argValue('--messages', 200);
const CLIENTS = argValue('--clients', 10);

/** Starts opendkim in sign mode for example.org (the bench messages' From domain) on a unix socket. */
async function startOpendkim(dir: string): Promise<{ socket: string; proc: ChildProcess } | undefined> {
  const bin = '/usr/sbin/opendkim';
  if (!fs.existsSync(bin)) return undefined;
  const keys = spawnSync('/usr/sbin/opendkim-genkey', ['-D', dir, '-d', 'example.org', '-s', 'bench']);
  if (keys.status !== 0) throw new Error(`opendkim-genkey failed: ${keys.stderr}`);
  const socket = path.join(dir, 'opendkim.sock');
  const conf = path.join(dir, 'opendkim.conf');
  fs.writeFileSync(conf, [
    `Socket local:${socket}`, 'Background no', 'Syslog no', 'RequireSafeKeys no', 'Mode s',
    'Domain example.org', 'Selector bench', `KeyFile ${path.join(dir, 'bench.private')}`,
    `PidFile ${path.join(dir, 'opendkim.pid')}`,
  ].join('\n') + '\n');
  const proc = spawn(bin, ['-f', '-x', conf], { stdio: 'ignore' });
  const deadline = Date.now() + 10_000;
  while (!fs.existsSync(socket)) {
    if (Date.now() > deadline || proc.exitCode !== null) throw new Error('opendkim did not create its socket');
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  return { socket, proc };
}

async function measure(label: string, filterMc: string[]): Promise<string> {
  const sink = await startBenchSink();
  const mta = await startPosthornBench({ sinkPort: sink.port, extraMc: filterMc });
  try {
    // One warm-up message per client, so that start-up costs are not counted.
    await runLoad({ port: mta.port, clients: CLIENTS, messagesPerClient: 1, size: 2048, newConnections: false });
    const result = await runLoad({
      port: mta.port, clients: CLIENTS, messagesPerClient: Math.ceil(MESSAGES / CLIENTS), size: 2048, newConnections: true, timeoutMs: 300_000,
    });
    const rate = (result.accepted / result.elapsedMs) * 1000;
    return `| ${label} | ${result.accepted} | ${result.rejected} | ${rate.toFixed(1)} |`;
  } finally {
    await mta.stop();
    await sink.close();
  }
}

async function main(): Promise<void> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'posthorn-milter-bench-'));
  const rows: string[] = [];
  const milter = await new TestMilter().listen();
  const dkim = await startOpendkim(dir);
  try {
    rows.push(await measure('no filter', []));
    rows.push(await measure('one pass-through test milter', [`INPUT_MAIL_FILTER(\`pass', \`S=${milter.socketSpec}, F=T')`]));
    if (dkim !== undefined) {
      rows.push(await measure('opendkim signing', [`INPUT_MAIL_FILTER(\`dkim', \`S=unix:${dkim.socket}, F=T')`]));
    }
  } finally {
    await milter.close();
    dkim?.proc.kill('SIGTERM');
    fs.rmSync(dir, { recursive: true, force: true });
  }
  console.log(`${MESSAGES} messages of 2 KB, ${CLIENTS} clients, one connection per message, ${os.cpus().length} CPUs, Node ${process.version}`);
  console.log('| setup | accepted | rejected | msg/s |');
  console.log('| --- | --- | --- | --- |');
  for (const row of rows) console.log(row);
}

void main();
