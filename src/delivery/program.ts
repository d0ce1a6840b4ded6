// The prog mailer: runs a |program target from an alias, :include: or
// .forward file as "/bin/sh -c <command>", with the message on its standard
// input: a Unix "From " line, the header and the body, with LF line ends.
// The exit status is read as a sysexits.h code, as sendmail reads it.

import { spawn } from 'node:child_process';

import { userByName } from '../aliases/passwd';
import { asctime } from './mbox';
import type { RecipientResult } from './smtp-client';
import { openReadStreamNoFollow } from '../queue/no-follow';

export interface ProgramMessage {
  sender: string;
  headers: string[];
  dataPath: string;
}

export interface ProgramOptions {
  /** User to run as (only when Posthorn runs as root); root is never used for it. */
  user?: string;
  /** Kill the program after this long (default 10 minutes). */
  timeoutMs?: number;
  /** Extra environment, e.g. for tests. */
  env?: NodeJS.ProcessEnv;
  /** The file and argv that run the command (the Mprog line); default /bin/sh -c. */
  run?: { file: string; argv: string[] };
}

/** sendmail's status texts and DSN codes for sysexits.h exit statuses. */
const EXIT_STATUS: Record<number, { dsn: string; text: string }> = {
  64: { dsn: '5.5.4', text: 'Bad usage' },
  65: { dsn: '5.6.0', text: 'Data format error' },
  66: { dsn: '5.3.0', text: 'Cannot open input' },
  67: { dsn: '5.1.1', text: 'User unknown' },
  68: { dsn: '5.1.2', text: 'Host unknown' },
  69: { dsn: '5.0.0', text: 'Service unavailable' },
  70: { dsn: '5.3.0', text: 'Internal error' },
  71: { dsn: '4.0.0', text: 'Operating system error' },
  72: { dsn: '5.3.5', text: 'System file missing' },
  73: { dsn: '5.3.0', text: "Can't create output" },
  74: { dsn: '4.0.0', text: 'I/O error' },
  75: { dsn: '4.0.0', text: 'Deferred' },
  76: { dsn: '5.5.0', text: 'Remote protocol error' },
  77: { dsn: '5.7.1', text: 'Insufficient permission' },
  78: { dsn: '5.3.5', text: 'Local configuration error' },
};
const TEMPORARY_EXITS = new Set([71, 74, 75]);
const DEFAULT_TIMEOUT_MS = 10 * 60 * 1000;

/** Maps a program's exit status to a delivery result for `address`. */
export function exitResult(address: string, code: number | null, signal: string | null): RecipientResult {
  if (code === 0) return { address, status: 'sent', dsn: '2.0.0', text: '' };
  if (code === null) {
    return { address, status: 'tempfail', dsn: '4.0.0', text: `Program killed by signal ${signal ?? 'unknown'}` };
  }
  const known = EXIT_STATUS[code];
  if (known === undefined) return { address, status: 'permfail', dsn: '5.3.0', text: `unknown mailer error ${code}` };
  return { address, status: TEMPORARY_EXITS.has(code) ? 'tempfail' : 'permfail', dsn: known.dsn, text: known.text };
}

/** Runs `command` for the recipient `address` (written as "|command") and feeds it the message. */
export async function deliverToProgram(
  address: string,
  command: string,
  msg: ProgramMessage,
  opts: ProgramOptions = {},
): Promise<{ result: RecipientResult; output: string[] }> {
  const spawnOptions: Parameters<typeof spawn>[2] = { stdio: ['pipe', 'pipe', 'pipe'], env: { ...process.env, ...opts.env } };
  const account = opts.user !== undefined ? userByName(opts.user) : undefined;
  if (typeof process.geteuid === 'function' && process.geteuid() === 0 && account !== undefined && account.uid !== 0) {
    spawnOptions.uid = account.uid;
    spawnOptions.gid = account.gid;
    spawnOptions.cwd = '/';
  }
  const run = opts.run ?? { file: '/bin/sh', argv: ['sh', '-c', command] };
  const child = spawn(run.file, run.argv.slice(1), { ...spawnOptions, argv0: run.argv[0] });
  let output = '';
  const collect = (chunk: Buffer): void => {
    if (output.length < 4096) output += chunk.toString('latin1');
  };
  child.stdout!.on('data', collect);
  child.stderr!.on('data', collect);
  const done = new Promise<{ code: number | null; signal: string | null; error?: Error }>((resolve) => {
    child.once('error', (error) => resolve({ code: null, signal: null, error }));
    child.once('close', (code, signal) => resolve({ code, signal }));
  });
  const timer = setTimeout(() => child.kill('SIGKILL'), opts.timeoutMs ?? DEFAULT_TIMEOUT_MS);

  const stdin = child.stdin!;
  stdin.on('error', () => undefined);
  try {
    const sender = msg.sender === '' ? 'MAILER-DAEMON' : msg.sender;
    const head = [`From ${sender} ${asctime(new Date())}`, ...msg.headers.map((h) => h.replace(/\r\n/g, '\n')), '', ''].join('\n');
    await writeChunk(stdin, Buffer.from(head, 'latin1'));
    for await (const chunk of await openReadStreamNoFollow(msg.dataPath)) {
      await writeChunk(stdin, Buffer.from((chunk as Buffer).toString('latin1').replace(/\r\n/g, '\n'), 'latin1'));
    }
  } catch {
    // A program that exits without reading all of its input is judged by its exit status.
  }
  stdin.end();
  const outcome = await done;
  clearTimeout(timer);
  const lines = output.trim() === '' ? [] : output.trim().split('\n').slice(0, 20);
  if (outcome.error) {
    return { result: { address, status: 'tempfail', dsn: '4.0.0', text: `Cannot exec /bin/sh: ${outcome.error.message}` }, output: lines };
  }
  return { result: exitResult(address, outcome.code, outcome.signal), output: lines };
}

function writeChunk(stream: NodeJS.WritableStream, chunk: Buffer): Promise<void> {
  return new Promise((resolve, reject) => {
    const ok = stream.write(chunk, (err) => (err ? reject(err) : undefined));
    if (ok) resolve();
    else stream.once('drain', () => resolve());
    stream.once('error', reject);
  });
}
