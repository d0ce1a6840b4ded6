// The check of QueueDirectory before a mode uses the queue, so that a path
// that is a file, or lies below one, is a configuration error with the path
// in the message, and not a stack trace or an "empty queue".

import * as fs from 'node:fs';
import * as path from 'node:path';
import { ExitError, EX_CONFIG } from './sysexits';

/**
 * Throws an ExitError with EX_CONFIG (78, as sendmail 8.17 exits when it
 * cannot chdir to the queue) when `dir` exists but is not a directory, or
 * when a part of its path is a file. A missing directory passes when
 * `create` is set, because the queue store then creates it (daemon and
 * submission modes). Printing or running the queue needs it to exist, and
 * fails with sendmail's message.
 */
export function checkQueueDirectory(dir: string, create: boolean): void {
  let stats: fs.Stats;
  try {
    stats = fs.statSync(dir);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' && create) return;
    if (code === 'ENOENT') throw new ExitError(`can not chdir(${dir}/): No such file or directory`, EX_CONFIG);
    if (code === 'ENOTDIR') {
      throw queueDirError(`QueueDirectory ${dir} is invalid because ${fileInPath(dir)} is a file, not a directory.`);
    }
    throw queueDirError(`cannot use QueueDirectory ${dir}: ${(err as Error).message}.`);
  }
  if (!stats.isDirectory()) throw queueDirError(`QueueDirectory ${dir} is a file, not a directory.`);
  // A user other than root and the queue's owner (mailq on a 0700 queue): sendmail's message and status, not a stack trace.
  if (!canAccess(dir, fs.constants.X_OK)) throw new ExitError(`can not chdir(${dir}/): Permission denied`, EX_CONFIG);
  if (!create && !canAccess(dir, fs.constants.R_OK)) throw new ExitError(`gatherq: cannot open "${dir}": Permission denied`, EX_CONFIG);
}

function canAccess(dir: string, mode: number): boolean {
  try {
    fs.accessSync(dir, mode);
    return true;
  } catch {
    return false;
  }
}

function queueDirError(problem: string): ExitError {
  return new ExitError(`${problem} Set QueueDirectory to the queue directory.`, EX_CONFIG);
}

/** Returns the nearest ancestor of `dir` that exists and is not a directory. */
function fileInPath(dir: string): string {
  let current = path.resolve(dir);
  for (;;) {
    const parent = path.dirname(current);
    if (parent === current) return dir;
    current = parent;
    try {
      if (!fs.statSync(current).isDirectory()) return current;
    } catch {
      // A missing or unreadable ancestor, so look further up.
    }
  }
}
