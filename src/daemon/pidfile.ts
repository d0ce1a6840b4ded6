// The PidFile of a daemon or persistent queue runner, as sendmail 8.13 writes
// it: the name is macro-expanded first (${daemon_info}, ${queue_interval}, $j),
// line 1 is the pid and line 2 the command line, the file stays claimed for
// the life of the process, and the process that wrote it unlinks it at exit.

import * as fs from 'node:fs';
import { expandMacros } from '../config/macros';
import { errorCode, isProcessAlive } from '../queue/lock';
import { formatInterval } from './interval';

export class PidFileInUseError extends Error {
  constructor(readonly path: string) {
    super(`unable to write pid to ${path}: file in use by another process`);
    this.name = 'PidFileInUseError';
  }
}

export interface PidFileMacros {
  /** ${daemon_info}, e.g. "SMTP+queueing@00:15:00". */
  daemonInfo: string;
  /** The queue interval in milliseconds; 0 for none. */
  queueIntervalMs: number;
  /** Other macros of the configuration, e.g. "j". */
  macros?: ReadonlyMap<string, string>;
}

/** Expands the macros of a PidFile name. */
export function expandPidFilePath(template: string, values: PidFileMacros): string {
  const lookup = (name: string): string | undefined => {
    if (name === 'daemon_info') return values.daemonInfo;
    if (name === 'queue_interval') return formatInterval(values.queueIntervalMs);
    return values.macros?.get(name) ?? values.macros?.get(`{${name}}`);
  };
  return expandMacros(template, lookup);
}

/** Reads the pid on the first line of a PidFile; undefined when there is none. */
export function readPid(path: string): number | undefined {
  let text: string;
  try {
    text = fs.readFileSync(path, 'utf8');
  } catch {
    return undefined;
  }
  const pid = Number(text.split('\n')[0]);
  return Number.isInteger(pid) && pid > 0 ? pid : undefined;
}

/**
 * A claimed PidFile. sendmail keeps the file open under an flock() lock; Node
 * has no flock(), so the claim is the exclusive creation of the file and a
 * file whose pid is still alive counts as locked.
 *
 * NOTE: a stale PidFile whose pid was reused by an unrelated live process
 * looks in use until that process exits.
 */
export class PidFile {
  private released = false;

  private constructor(readonly path: string) {}

  /**
   * Creates `path` with mode 0600 and writes the pid and `commandLine`.
   * Throws PidFileInUseError while another live process has it; takes over a
   * file left by a process that has died. Other errors (such as a missing
   * folder) are thrown with their errno code.
   */
  static claim(path: string, commandLine: string): PidFile {
    const content = `${process.pid}\n${commandLine}\n`;
    for (let attempt = 0; attempt < 3; attempt++) {
      let fd: number;
      try {
        fd = fs.openSync(path, 'wx', 0o600);
      } catch (err) {
        if (errorCode(err) !== 'EEXIST') throw err;
        const pid = readPid(path);
        if (pid !== undefined && pid !== process.pid && isProcessAlive(pid)) throw new PidFileInUseError(path);
        if (pid === undefined && attempt === 0 && recentlyCreated(path)) throw new PidFileInUseError(path);
        fs.rmSync(path, { force: true });
        continue;
      }
      try {
        fs.writeSync(fd, content);
      } finally {
        fs.closeSync(fd);
      }
      return new PidFile(path);
    }
    throw new PidFileInUseError(path);
  }

  /** Unlinks the file if it still names this process. */
  release(): void {
    if (this.released) return;
    this.released = true;
    if (readPid(this.path) !== process.pid) return;
    try {
      fs.unlinkSync(this.path);
    } catch {
      // Already gone: nothing to clean up.
    }
  }
}

/** A PidFile without a pid yet may be being written by another process right now. */
function recentlyCreated(path: string): boolean {
  try {
    return Date.now() - fs.statSync(path).mtimeMs < 2000;
  } catch {
    return false;
  }
}
