// The prog mailer: runs a |program target from an alias, :include: or
// .forward file as "/bin/sh -c <command>", with the message on its standard
// input: a Unix "From " line, the header and the body, with LF line ends.
// The exit status is read as a sysexits.h code, as sendmail reads it.

import { spawn, type ChildProcess, type SpawnOptions } from 'node:child_process';
import type { Writable } from 'node:stream';

import { userByName } from '../aliases/passwd';
import { asctime } from './mbox';
import type { RecipientResult } from './smtp-client';
import { openReadStreamNoFollow } from '../queue/no-follow';
import type { RunAs } from './run-as';

export interface ProgramMessage {
  sender: string;
  headers: string[];
  dataPath: string;
}

export interface ProgramOptions {
  /** uid and gid to run as (from runAsFor); takes the place of `user`. */
  account?: RunAs;
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

/**
 * Returns the environment of a program. sendmail gives its mailers
 * AGENT=sendmail and TZ and nothing of its own environment, so no secret,
 * library path or NODE_OPTIONS of the daemon reaches a user's program.
 */
function programEnvironment(extra: NodeJS.ProcessEnv | undefined): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { AGENT: 'sendmail' };
  if (process.env.TZ !== undefined) env.TZ = process.env.TZ;
  return { ...env, ...extra };
}

/** Kills the program and everything it started in its process group. */
function killGroup(child: ChildProcess): void {
  if (child.pid === undefined) return;
  try {
    process.kill(-child.pid, 'SIGKILL');
  } catch {
    child.kill('SIGKILL');
  }
}

/** Runs `command` for the recipient `address` (written as "|command") and feeds it the message. */
export async function deliverToProgram(
  address: string,
  command: string,
  msg: ProgramMessage,
  opts: ProgramOptions = {},
): Promise<{ result: RecipientResult; output: string[] }> {
  // detached: the program leads a process group of its own, so that the
  // timeout also kills what it left running in the background.
  const spawnOptions: SpawnOptions = { stdio: ['pipe', 'pipe', 'pipe'], env: programEnvironment(opts.env), detached: true, cwd: '/' };
  const runAs = opts.account ?? legacyAccount(opts.user);
  if (runAs !== undefined) {
    spawnOptions.uid = runAs.uid;
    spawnOptions.gid = runAs.gid;
  }
  const run = opts.run ?? { file: '/bin/sh', argv: ['sh', '-c', command] };
  const child = spawn(run.file, run.argv.slice(1), { ...spawnOptions, argv0: run.argv[0] });
  let output = '';
  const collect = (chunk: Buffer): void => {
    if (output.length < 4096) output += chunk.toString('latin1');
  };
  child.stdout!.on('data', collect);
  child.stderr!.on('data', collect);
  const stdin = child.stdin!;
  stdin.on('error', () => undefined);
  const exited = new Promise<{ code: number | null; signal: string | null; error?: Error }>((resolve) => {
    child.once('error', (error) => resolve({ code: null, signal: null, error }));
    child.once('exit', (code, signal) => resolve({ code, signal }));
  });
  // 'close' comes when the program and whatever inherited its output have closed stdout and stderr.
  const closed = new Promise<void>((resolve) => {
    child.once('close', () => resolve());
    child.once('error', () => resolve());
  });
  let timer: NodeJS.Timeout | undefined;
  const timedOut = new Promise<void>((resolve) => {
    timer = setTimeout(() => {
      killGroup(child);
      resolve();
    }, opts.timeoutMs ?? DEFAULT_TIMEOUT_MS);
  });

  let readError: Error | undefined;
  const feeding = (async (): Promise<void> => {
    const sender = msg.sender === '' ? 'MAILER-DAEMON' : msg.sender;
    const head = [`From ${sender} ${asctime(new Date())}`, ...msg.headers.map((h) => h.replace(/\r\n/g, '\n')), '', ''].join('\n');
    await writeChunk(stdin, Buffer.from(head, 'latin1'));
    let chunks: AsyncIterable<unknown>;
    try {
      chunks = await openReadStreamNoFollow(msg.dataPath);
    } catch (err) {
      readError = err as Error;
      throw err;
    }
    const iterator = chunks[Symbol.asyncIterator]();
    for (;;) {
      let next: IteratorResult<unknown>;
      try {
        next = await iterator.next();
      } catch (err) {
        readError = err as Error;
        throw err;
      }
      if (next.done === true) break;
      await writeChunk(stdin, Buffer.from((next.value as Buffer).toString('latin1').replace(/\r\n/g, '\n'), 'latin1'));
    }
    stdin.end();
  })().catch(() => {
    // A program that exits without reading all of its input is judged by its
    // exit status. A data file that cannot be read must not reach it as a
    // shorter message: the program is stopped and the recipient deferred.
    if (readError !== undefined) killGroup(child);
    else stdin.destroy();
  });

  // Input that a background process still reads is written to the end, as
  // sendmail writes it. Input that no process reads waits for the timeout.
  await Promise.race([Promise.all([exited, closed, feeding]), timedOut]);
  clearTimeout(timer);
  // After the timeout, output still held open by a background process is not waited for.
  child.stdout!.destroy();
  child.stderr!.destroy();
  stdin.destroy();
  await feeding;
  const outcome = await exited;
  const lines = output.trim() === '' ? [] : output.trim().split('\n').slice(0, 20);
  if (outcome.error) {
    return { result: { address, status: 'tempfail', dsn: '4.0.0', text: `Cannot exec /bin/sh: ${outcome.error.message}` }, output: lines };
  }
  if (readError !== undefined) {
    return { result: { address, status: 'tempfail', dsn: '4.3.0', text: `Cannot read the message: ${readError.message}` }, output: lines };
  }
  return { result: exitResult(address, outcome.code, outcome.signal), output: lines };
}

/** Returns the account of the `user` option: a user other than root, when Posthorn runs as root. */
function legacyAccount(user: string | undefined): RunAs | undefined {
  if (user === undefined || typeof process.geteuid !== 'function' || process.geteuid() !== 0) return undefined;
  const account = userByName(user);
  return account !== undefined && account.uid !== 0 ? { uid: account.uid, gid: account.gid } : undefined;
}

/** Writes a chunk and waits until the pipe takes more; fails when the program closed its input. */
function writeChunk(stream: Writable, chunk: Buffer): Promise<void> {
  if (stream.destroyed) return Promise.reject(new Error('program input closed'));
  return new Promise((resolve, reject) => {
    const cleanup = (): void => {
      stream.off('drain', onDrain);
      stream.off('close', onClose);
      stream.off('error', onError);
    };
    const onDrain = (): void => {
      cleanup();
      resolve();
    };
    const onClose = (): void => {
      cleanup();
      reject(new Error('program input closed'));
    };
    const onError = (err: Error): void => {
      cleanup();
      reject(err);
    };
    if (stream.write(chunk)) {
      resolve();
      return;
    }
    stream.on('drain', onDrain);
    stream.on('close', onClose);
    stream.on('error', onError);
  });
}
