// Deep-queue benchmark: how long `posthorn -bp` (mailq) takes over a queue of
// many items, and how long a queue run (`posthorn -q`) takes to make its first
// delivery, for QueueSortOrder=priority (reads every control file to sort) and
// QueueSortOrder=none (directory order, reads nothing before the first item).
//
// The queue is built through the QueueStore API in this process, not over SMTP,
// because 50,000 SMTP transactions would dominate the run time. The items are
// committed with SuperSafe=False for the same reason; the files are the same
// as the daemon writes. The tests build their queues through the daemon.
//
//   npx tsc -p . && node dist/bench/deep-queue.js [--items 100000] [--dir DIR] [--only mailq|run] [--order none|priority] [--cold]
//
// --dir DIR keeps the queue in DIR/mqueue and reuses it on the next run,
// because a queue of 100,000 items takes about a minute to build. The items a
// queue run delivered or rewrote are put back before the next measure, so
// every run starts from the same queue. --only limits the run to the mailq or the queue run
// measures, --order to one QueueSortOrder. --cold empties the page cache
// right before each timed command (sync, then 3 into /proc/sys/vm/drop_caches;
// root only). The files then come from the disk, as after a reboot.

import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { execFileSync, spawn } from 'node:child_process';
import { startBenchSink } from './sink';
import { Logger } from '../src/log/logger';
import { QueueStore } from '../src/queue/store';
import { initialPriority } from '../src/queue/priority';

const repoRoot = path.resolve(__dirname, '..', '..');

/** Set by --cold: empty the page cache before each timed command. */
let coldCache = false;

/** Writes the dirty pages out and drops the clean ones, so that the next reads go to the disk. */
function dropPageCache(): void {
  if (!coldCache) return;
  execFileSync('sync');
  fs.writeFileSync('/proc/sys/vm/drop_caches', '3\n');
}
const posthornBin = path.join(repoRoot, 'bin', 'posthorn');

function parseItems(argv: string[]): number {
  const i = argv.indexOf('--items');
  return i >= 0 ? Number(argv[i + 1]) : 100_000;
}

function argValue(argv: string[], name: string): string | undefined {
  const i = argv.indexOf(name);
  return i >= 0 ? argv[i + 1] : undefined;
}

/** Copies the files of the queue aside once, so that delivered items can be put back before the next measure. */
function snapshotQueue(queueDir: string, keepDir: string): void {
  fs.mkdirSync(keepDir, { recursive: true });
  for (const name of fs.readdirSync(queueDir)) {
    if (!/^(qf|df)/.test(name)) continue;
    fs.linkSync(path.join(queueDir, name), path.join(keepDir, name));
  }
}

/**
 * Puts back the qf and df files a queue run removed or rewrote (hard links to
 * the kept copies) and drops every other file but the sort key cache.
 */
function restoreQueue(queueDir: string, keepDir: string): void {
  const present = new Set(fs.readdirSync(queueDir));
  for (const name of present) {
    // The sort key cache stays: it is part of the queue's state after a run.
    if (!/^(qf|df|\.sortkeys-)/.test(name)) fs.rmSync(path.join(queueDir, name), { force: true });
  }
  for (const name of fs.readdirSync(keepDir)) {
    const target = path.join(queueDir, name);
    const source = path.join(keepDir, name);
    if (present.has(name)) {
      if (fs.statSync(target).ino === fs.statSync(source).ino) continue;
      fs.rmSync(target);
    }
    fs.linkSync(source, target);
  }
}

function writeMc(dir: string, sinkPort: number): string {
  const mc = [
    `define(\`QUEUE_DIR', \`${dir}/mqueue')`,
    `define(\`confMAILBOX_DIR', \`${dir}/mail')`,
    `define(\`confLOG_FILE', \`${dir}/maillog')`,
    `define(\`confPID_FILE', \`${dir}/posthorn.pid')`,
    "define(`confDOMAIN_NAME', `mx.posthorn.test')",
    "define(`confQUEUE_LA', `100000')",
    "define(`confREFUSE_LA', `100000')",
    "define(`SMART_HOST', `[127.0.0.1]')",
    `define(\`RELAY_MAILER_ARGS', \`TCP $h ${sinkPort}')`,
    `define(\`ESMTP_MAILER_ARGS', \`TCP $h ${sinkPort}')`,
    "LOCAL_DOMAIN(`posthorn.test')",
    "MAILER(`local')",
    "MAILER(`smtp')",
  ].join('\n');
  const file = path.join(dir, 'sendmail.mc');
  fs.writeFileSync(file, mc + '\n');
  return file;
}

async function buildQueue(queueDir: string, items: number): Promise<void> {
  const store = new QueueStore({ dir: queueDir, superSafe: 'false', logger: new Logger([], 0) });
  await store.init();
  const body = Buffer.from('Subject: deep queue\r\n\r\n' + 'x'.repeat(200) + '\r\n');
  const now = Math.floor(Date.now() / 1000);
  for (let i = 0; i < items; i++) {
    const id = store.newId();
    const writer = await store.openDataFile(id);
    await writer.write(body);
    await writer.close();
    await store.commit({
      id,
      created: now - (i % 3600),
      lastAttempt: 0,
      attempts: 0,
      priority: initialPriority(body.length + (i % 997) * 10, 1),
      flags: '',
      macros: new Map([['r', 'ESMTP']]),
      sender: `sender${i % 50}@posthorn.test`,
      recipients: [{ address: `rcpt${i}@remote${i % 20}.example`, state: 'pending' }],
      headers: [`From: sender${i % 50}@posthorn.test`, `To: rcpt${i}@remote${i % 20}.example`],
      bodySize: body.length,
    });
  }
}

/**
 * Runs mailq and returns the seconds until its first line, until its first
 * entry and until it ended, the number of items it listed and its peak RSS.
 */
function timeMailq(
  mcPath: string,
  order: string,
): Promise<{ firstLine: number; firstEntry: number; seconds: number; listed: number }> {
  dropPageCache();
  return new Promise((resolve, reject) => {
    const started = process.hrtime.bigint();
    const child = spawn(process.execPath, [posthornBin, '-C', mcPath, '-O', `QueueSortOrder=${order}`, '-bp'], {
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    const elapsed = (): number => Number(process.hrtime.bigint() - started) / 1e9;
    let tail = '';
    let listed = 0;
    let firstLine = 0;
    let firstEntry = 0;
    child.stdout.on('data', (chunk: Buffer) => {
      if (firstLine === 0) firstLine = elapsed();
      const text = tail + chunk.toString('latin1');
      const lines = text.split('\n');
      tail = lines.pop() ?? '';
      for (const line of lines) if (/^ *[0-9A-Za-x]{14}[ *X-]/.test(line)) listed++;
      if (listed > 0 && firstEntry === 0) firstEntry = elapsed();
    });
    child.on('error', reject);
    // 'close', not 'exit': output may still be buffered when the process exits.
    child.on('close', (code) => {
      if (code !== 0) return reject(new Error(`mailq exited with ${code}`));
      resolve({ firstLine, firstEntry, seconds: elapsed(), listed });
    });
  });
}

/** Starts `posthorn -q` and returns the seconds until the sink has the first message; then stops the run. */
async function timeFirstDelivery(
  mcPath: string,
  sortOrder: string,
  sinkMessages: () => number,
): Promise<{ seconds: number; peakKb: number; delivered: number }> {
  const before = sinkMessages();
  dropPageCache();
  const started = process.hrtime.bigint();
  const child = spawn(process.execPath, [posthornBin, '-C', mcPath, '-O', `QueueSortOrder=${sortOrder}`, '-q'], {
    stdio: 'ignore',
  });
  try {
    const deadline = Date.now() + 300_000;
    while (sinkMessages() === before) {
      if (child.exitCode !== null) throw new Error(`queue run exited with ${child.exitCode} before delivering`);
      if (Date.now() > deadline) throw new Error('no delivery within 300 s');
      await new Promise((resolve) => setTimeout(resolve, 5));
    }
    const seconds = Number(process.hrtime.bigint() - started) / 1e9;
    // Let the run go on for a moment, then take its peak memory so far.
    await new Promise((resolve) => setTimeout(resolve, 2000));
    const status = fs.readFileSync(`/proc/${child.pid}/status`, 'latin1');
    const peakKb = Number(/^VmHWM:\s+(\d+)/m.exec(status)?.[1] ?? 0);
    return { seconds, peakKb, delivered: sinkMessages() - before };
  } finally {
    child.kill('SIGKILL');
    await new Promise((resolve) => (child.exitCode !== null ? resolve(undefined) : child.once('exit', resolve)));
  }
}

async function main(): Promise<void> {
  const argv = process.argv.slice(2);
  const items = parseItems(argv);
  const keepDir = argValue(argv, '--dir');
  const only = argValue(argv, '--only');
  const orders = argValue(argv, '--order')?.split(',') ?? ['none', 'priority'];
  coldCache = argv.includes('--cold');
  const dir = keepDir ?? fs.mkdtempSync(path.join(os.tmpdir(), 'posthorn-deep-'));
  const sink = await startBenchSink();
  try {
    fs.mkdirSync(dir, { recursive: true });
    const mcPath = writeMc(dir, sink.port);
    const queueDir = path.join(dir, 'mqueue');
    const kept = path.join(dir, 'kept');

    if (keepDir !== undefined && fs.existsSync(kept)) {
      restoreQueue(queueDir, kept);
      console.log(`reusing the queue in ${queueDir}`);
    } else {
      const buildStart = Date.now();
      await buildQueue(queueDir, items);
      console.log(`built ${items} items through the QueueStore API in ${((Date.now() - buildStart) / 1000).toFixed(1)} s`);
      if (keepDir !== undefined) snapshotQueue(queueDir, kept);
    }

    for (const order of only === 'run' ? [] : orders) {
      const mailq = await timeMailq(mcPath, order);
      console.log(
        `mailq, QueueSortOrder=${order}: first line after ${mailq.firstLine.toFixed(2)} s, first entry after ` +
          `${mailq.firstEntry.toFixed(2)} s, all ${mailq.listed} entries after ${mailq.seconds.toFixed(2)} s`,
      );
    }

    for (const order of only === 'mailq' ? [] : orders) {
      const run = await timeFirstDelivery(mcPath, order, () => sink.messages);
      if (keepDir !== undefined) restoreQueue(queueDir, kept);
      console.log(
        `queue run, QueueSortOrder=${order}: first delivery after ${run.seconds.toFixed(2)} s; ` +
          `${run.delivered} delivered 2 s later, peak RSS ${run.peakKb} kB`,
      );
    }
    console.log(`machine: ${os.cpus().length} x ${os.cpus()[0]?.model ?? 'unknown CPU'}, load ${os.loadavg()[0].toFixed(1)}`);
  } finally {
    await sink.close();
    if (keepDir === undefined && !process.env.POSTHORN_KEEP_BENCH_DIRS) fs.rmSync(dir, { recursive: true, force: true });
  }
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
