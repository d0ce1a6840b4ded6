// Queue-file benchmark: the file-system work of one relayed message without
// any SMTP, as a floor for the daemon's cost per message. Each message creates
// a df of 2,300 bytes and a tf of 400 bytes and fsyncs both at the same time.
// It then renames the tf to qf and fsyncs the folder, one fsync shared by the
// commits that wait at that moment, as the queue's group sync does. Last, it
// removes the df and qf.
// 20 messages are in flight at a time, on libuv's thread pool as in the daemon.
//
//   npx tsc -p . && node dist/bench/queue-files.js [--messages 3000] [--dir DIR]
//
// DIR must be on the file system to measure (default: a new folder in the
// current directory, which is removed at the end).

import * as fs from 'node:fs';
import * as path from 'node:path';

const BODY = Buffer.alloc(2300, 'x');
const CONTROL = Buffer.alloc(400, 'q');
const IN_FLIGHT = 20;

function option(argv: string[], name: string): string | undefined {
  const at = argv.indexOf(name);
  return at >= 0 ? argv[at + 1] : undefined;
}

/** Creates `file` with `data` and fsyncs it: create and fsync on the thread pool, the write in between synchronous. */
async function writeDurably(file: string, data: Buffer): Promise<void> {
  const handle = await fs.promises.open(file, 'wx', 0o600);
  try {
    fs.writeSync(handle.fd, data, 0, data.length, 0);
    await handle.sync();
  } finally {
    await handle.close();
  }
}

/** Returns a function that fsyncs `dir` once for every caller that comes while an fsync runs, and once more for the later ones. */
function groupSync(dir: string): () => Promise<void> {
  let running: Promise<void> | undefined;
  let next: Promise<void> | undefined;
  const syncOnce = async (): Promise<void> => {
    const handle = await fs.promises.open(dir, 'r');
    try {
      await handle.sync();
    } finally {
      await handle.close();
    }
  };
  return () => {
    if (running === undefined) {
      running = syncOnce().finally(() => (running = undefined));
      return running;
    }
    next ??= running.then(() => {
      next = undefined;
      running = syncOnce().finally(() => (running = undefined));
      return running;
    });
    return next;
  };
}

async function main(): Promise<void> {
  const argv = process.argv.slice(2);
  const messages = Number(option(argv, '--messages') ?? 3000);
  const givenDir = option(argv, '--dir');
  const dir = givenDir ?? fs.mkdtempSync(path.join(process.cwd(), 'queue-files-'));
  const syncDir = groupSync(dir);
  let next = 0;

  const relayOne = async (n: number): Promise<void> => {
    const df = path.join(dir, `df${n}`);
    const tf = path.join(dir, `tf${n}`);
    const qf = path.join(dir, `qf${n}`);
    await Promise.all([writeDurably(df, BODY), writeDurably(tf, CONTROL)]);
    fs.renameSync(tf, qf);
    await syncDir();
    await Promise.all([fs.promises.unlink(qf), fs.promises.unlink(df)]);
  };

  const cpuBefore = process.cpuUsage();
  const start = Date.now();
  await Promise.all(
    Array.from({ length: IN_FLIGHT }, async () => {
      while (next < messages) await relayOne(next++);
    }),
  );
  const elapsed = Date.now() - start;
  const cpu = process.cpuUsage(cpuBefore);
  if (givenDir === undefined) fs.rmSync(dir, { recursive: true, force: true });

  const perMessage = (us: number): string => (us / 1000 / messages).toFixed(3);
  console.log(`${messages} messages in ${elapsed} ms = ${Math.round((messages / elapsed) * 1000)}/s, ${IN_FLIGHT} at a time`);
  console.log(`CPU per message: ${perMessage(cpu.user + cpu.system)} ms (user ${perMessage(cpu.user)}, system ${perMessage(cpu.system)}), all threads`);
}

void main();
