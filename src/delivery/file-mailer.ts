// The *file* mailer: appends a message to a /file target of an alias,
// :include: or .forward file, in mbox format. sendmail's rules apply: the
// target must be a regular file (or /dev/null) without any execute bit, no
// symbolic or hard link unless DontBlameSendmail allows it, and with
// SafeFileEnvironment set it must lie inside that directory.
//
// sendmail locks the file while it writes and writes it as the controlling
// user of the target. Posthorn takes a dot-lock (<file>.lock, as for
// mailboxes), so that two deliveries never mix their lines, and, when it
// runs as root and the target has a user to run as (runAsFor), leaves the
// open and the writes to a child process with that user's uid and gid
// (file-append-child.ts): the kernel then decides whether that user may write
// the file, and a .forward cannot make root append to /etc/passwd.

import { fork } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';

import { acquireLock, APPEND_FLAGS, appendMbox, mboxHead } from './mbox';
import type { RunAs } from './run-as';
import type { RecipientResult } from './smtp-client';
import { openRegular } from '../queue/no-follow';

export interface FileMessage {
  sender: string;
  headers: string[];
  dataPath: string;
}

export interface FileOptions {
  /** SafeFileEnvironment; undefined when unset. */
  safeFileEnvironment?: string;
  /** DontBlameSendmail words in lower case. */
  dbs: Set<string>;
  /** uid and gid that write the file (runAsFor); undefined writes it as Posthorn's own user. */
  runAs?: RunAs;
  /** How long to wait for another holder of the file's lock (default 30 seconds). */
  lockWaitMs?: number;
}

/** Result of the writer: sent, or the reason it failed. */
export type AppendOutcome = { status: 'sent' } | { status: 'tempfail' | 'permfail'; text: string };

/** Open rules of the writer: the DontBlameSendmail words that apply to the target. */
export interface AppendRules {
  allowSymlink: boolean;
  allowHardlink: boolean;
}

/** "EACCES: permission denied, open '/x'" becomes "Permission denied". */
function errnoText(err: Error): string {
  const text = err.message.replace(/^[A-Z]+: /, '').replace(/, \w+ '.*'$/, '');
  return text.charAt(0).toUpperCase() + text.slice(1);
}

function cantCreate(address: string, why: string): RecipientResult {
  return { address, status: 'permfail', dsn: '5.3.0', text: `Can't create output: ${why}` };
}

/**
 * Resolves the file to write. With SafeFileEnvironment, a path that starts
 * with that directory is used as it is, any other path is taken relative to
 * it (sendmail chroots into the directory; Posthorn joins the paths instead).
 */
export function resolveTargetPath(target: string, safeEnv: string | undefined): string {
  if (safeEnv === undefined || safeEnv === '' || safeEnv === '/') return target;
  const root = path.resolve(safeEnv);
  const resolved = path.resolve(target);
  if (resolved === root || resolved.startsWith(root + path.sep)) return resolved;
  return path.join(root, resolved);
}

/** Checks the opened file (after any link): a regular file, no execute bit, one link unless allowed. */
function openedFileProblem(st: fs.Stats, rules: AppendRules): string | undefined {
  if (!st.isFile()) return 'Not a regular file';
  if ((st.mode & 0o111) !== 0) return 'File is executable';
  if (st.nlink > 1 && !rules.allowHardlink) return 'Hard links not allowed';
  return undefined;
}

/**
 * Opens `file` for appending and writes `head` and the body, or truncates the
 * file back to its length before. The checks run again on the opened file,
 * so a file swapped in after the checks by name is refused too. Runs in
 * Posthorn's process or in file-append-child.ts as the target's user.
 */
export async function appendToFile(file: string, head: Buffer, body: AsyncIterable<unknown>, rules: AppendRules): Promise<AppendOutcome> {
  const flags = rules.allowSymlink ? APPEND_FLAGS & ~fs.constants.O_NOFOLLOW : APPEND_FLAGS;
  let handle: fs.promises.FileHandle;
  try {
    handle = await fs.promises.open(file, flags, 0o600);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ELOOP') return { status: 'permfail', text: 'Symbolic links not allowed' };
    if (code === 'ENXIO' || code === 'EISDIR') return { status: 'permfail', text: 'Not a regular file' };
    return { status: 'permfail', text: errnoText(err as Error) };
  }
  try {
    const st = await handle.stat();
    const problem = openedFileProblem(st, rules);
    if (problem !== undefined) return { status: 'permfail', text: problem };
    try {
      await appendMbox(handle, head, body);
      return { status: 'sent' };
    } catch (err) {
      await handle.truncate(st.size).catch(() => undefined);
      return { status: 'tempfail', text: `I/O error: ${(err as Error).message}` };
    }
  } finally {
    await handle.close().catch(() => undefined);
  }
}

/** Runs appendToFile in a child process with the uid and gid of `runAs`; the data file is its standard input. */
async function appendAsUser(file: string, head: Buffer, dataPath: string, rules: AppendRules, runAs: RunAs): Promise<AppendOutcome> {
  let data: fs.promises.FileHandle;
  try {
    data = await openRegular(dataPath);
  } catch (err) {
    return { status: 'tempfail', text: `I/O error: ${(err as Error).message}` };
  }
  try {
    const child = fork(path.join(__dirname, 'file-append-child.js'), [], {
      uid: runAs.uid,
      gid: runAs.gid,
      cwd: '/',
      env: {},
      execArgv: [],
      stdio: [data.fd, 'ignore', 'pipe', 'ipc'],
    });
    let stderr = '';
    child.stderr?.on('data', (chunk: Buffer) => {
      if (stderr.length < 1024) stderr += chunk.toString('latin1');
    });
    return await new Promise<AppendOutcome>((resolve) => {
      let answer: AppendOutcome | undefined;
      child.on('message', (m) => {
        answer = m as AppendOutcome;
      });
      child.once('error', (err) => resolve({ status: 'tempfail', text: `Cannot start the file writer: ${err.message}` }));
      child.once('exit', (code, signal) => {
        const firstLine = stderr.trim().split('\n')[0] ?? '';
        const detail = firstLine === '' ? '' : `: ${firstLine}`;
        resolve(answer ?? { status: 'tempfail', text: `File writer failed with exit ${signal ?? code}${detail}` });
      });
      child.send({ file, head: head.toString('latin1'), rules });
    });
  } finally {
    await data.close().catch(() => undefined);
  }
}

export async function deliverToFile(address: string, target: string, msg: FileMessage, opts: FileOptions): Promise<RecipientResult> {
  if (target === '/dev/null') return { address, status: 'sent', dsn: '2.0.0', text: '' };
  const file = resolveTargetPath(target, opts.safeFileEnvironment);
  if (opts.safeFileEnvironment && path.relative(path.resolve(opts.safeFileEnvironment), file).startsWith('..')) {
    return cantCreate(address, 'outside SafeFileEnvironment');
  }
  const rules: AppendRules = {
    allowSymlink: opts.dbs.has('filedeliverytosymlink'),
    allowHardlink: opts.dbs.has('filedeliverytohardlink'),
  };

  let existing: fs.Stats | undefined;
  try {
    existing = fs.lstatSync(file);
  } catch {
    existing = undefined;
  }
  if (existing !== undefined) {
    if (existing.isSymbolicLink() && !rules.allowSymlink) return cantCreate(address, 'Symbolic links not allowed');
    let st: fs.Stats;
    try {
      st = existing.isSymbolicLink() ? fs.statSync(file) : existing;
    } catch (err) {
      return cantCreate(address, errnoText(err as Error));
    }
    const problem = openedFileProblem(st, rules);
    if (problem !== undefined) return cantCreate(address, problem);
  } else if (opts.safeFileEnvironment) {
    // sendmail creates no new files inside SafeFileEnvironment unless the directory allows it.
    if (!fs.existsSync(path.dirname(file))) return cantCreate(address, 'No such file or directory');
  }

  const lockPath = `${file}.lock`;
  let locked = false;
  try {
    locked = await acquireLock(lockPath, { staleLockMs: 5 * 60 * 1000, lockWaitMs: opts.lockWaitMs ?? 30 * 1000 });
    if (!locked) return { address, status: 'tempfail', dsn: '4.2.0', text: `${file} is locked` };
  } catch (err) {
    // A folder where no lock can be made (read-only, or not Posthorn's to write)
    // gets the message without one, as sendmail's lock is on the file itself.
    // A missing folder fails below with the open() error, "Can't create output".
    const code = (err as NodeJS.ErrnoException).code;
    if (!['EACCES', 'EPERM', 'EROFS', 'ENOENT', 'ENOTDIR'].includes(code ?? '')) {
      return { address, status: 'tempfail', dsn: '4.3.0', text: `Cannot lock ${file}: ${(err as Error).message}` };
    }
  }
  try {
    const head = mboxHead(msg.sender, msg.headers, new Date());
    let outcome: AppendOutcome;
    if (opts.runAs !== undefined) {
      outcome = await appendAsUser(file, head, msg.dataPath, rules, opts.runAs);
    } else {
      const data = await openRegular(msg.dataPath).catch((err: Error) => err);
      if (data instanceof Error) return { address, status: 'tempfail', dsn: '4.3.0', text: `I/O error: ${data.message}` };
      try {
        outcome = await appendToFile(file, head, data.createReadStream({ autoClose: false }), rules);
      } finally {
        await data.close().catch(() => undefined);
      }
    }
    if (outcome.status === 'sent') return { address, status: 'sent', dsn: '2.0.0', text: '' };
    if (outcome.status === 'permfail') return cantCreate(address, outcome.text);
    return { address, status: 'tempfail', dsn: '4.3.0', text: outcome.text };
  } finally {
    if (locked) await fs.promises.unlink(lockPath).catch(() => undefined);
  }
}
