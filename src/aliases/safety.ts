// sendmail's file safety rules for :include: files, .forward files and alias
// files, and the DontBlameSendmail words that relax them. A file that fails
// a hard check, such as one that others can write, is not read at all. A file
// that such a DontBlameSendmail word lets through, or that lies under a
// directory others can write, is read, but its |program and /file targets
// are refused as unsafe.

import * as fs from 'node:fs';
import * as path from 'node:path';

import type { Config } from '../config/types';

/** DontBlameSendmail words in lower case; "safe" is the empty set. */
export function dontBlameSendmail(config: Config): Set<string> {
  const value = config.options.get('DontBlameSendmail');
  const words = Array.isArray(value) ? value : typeof value === 'string' ? value.split(/[\s,]+/) : [];
  return new Set(words.map((w) => String(w).trim().toLowerCase()).filter((w) => w !== '' && w !== 'safe'));
}

export interface IncludeCheck {
  /** Set when the file must not be read; the text follows "Cannot open <file>: ". */
  refused?: string;
  /** A temporary error (the file system did not answer); the address is deferred. */
  transient?: boolean;
  /** Targets in the file may not be programs or files. */
  unsafe: boolean;
  /** Why the file was marked unsafe, for the log. */
  unsafeReason?: string;
  /** Owner of the file, the controlling user of its targets. */
  ownerUid?: number;
}

const S_IWGRP = 0o020;
const S_IWOTH = 0o002;
const S_ISVTX = 0o1000;

/**
 * Finds the first directory above `file` that another user could write:
 * group or world writable, where a world-writable directory with the sticky
 * bit (such as /tmp) counts only without DontBlameSendmail=TrustStickyBit.
 */
export function unsafeDirectory(file: string, dbs: Set<string>): { dir: string; reason: string } | undefined {
  let dir = path.dirname(path.resolve(file));
  const dirs: string[] = [];
  for (;;) {
    dirs.unshift(dir);
    const parent = path.dirname(dir);
    if (parent === dir) break;
    dir = parent;
  }
  for (const d of dirs) {
    let st: fs.Stats;
    try {
      st = fs.statSync(d);
    } catch {
      return undefined;
    }
    const sticky = (st.mode & S_ISVTX) !== 0 && dbs.has('truststickybit');
    if ((st.mode & S_IWOTH) !== 0 && !sticky) return { dir: d, reason: 'World writable directory' };
    if ((st.mode & S_IWGRP) !== 0 && !sticky && !dbs.has('groupwritabledirpathsafe')) {
      return { dir: d, reason: 'Group writable directory' };
    }
  }
  return undefined;
}

/** Tests whether the mode bits give a user (uid and gids) the access `bit` (4 read, 1 search). */
function allows(st: fs.Stats, uid: number, gids: number[], bit: number): boolean {
  if (st.uid === uid) return (st.mode & (bit << 6)) !== 0;
  if (gids.includes(st.gid)) return (st.mode & (bit << 3)) !== 0;
  return (st.mode & bit) !== 0;
}

/**
 * Tests whether a user could open a file for reading: read permission on it
 * (after links) and search permission on every folder above it.
 */
function userCanOpen(file: string, st: fs.Stats, uid: number, gids: number[]): boolean {
  if (!allows(st, uid, gids, 4)) return false;
  let dir: string;
  try {
    dir = path.dirname(fs.realpathSync(file));
  } catch {
    return false;
  }
  for (;;) {
    try {
      if (!allows(fs.statSync(dir), uid, gids, 1)) return false;
    } catch {
      return false;
    }
    const parent = path.dirname(dir);
    if (parent === dir) return true;
    dir = parent;
  }
}

/**
 * Applies the checks for an :include: file (`forwarding` false) or a
 * .forward file (`forwarding` true, `userUid` the owner it must have unless
 * root owns it).
 */
export function checkIncludeFile(
  file: string,
  opts: { forwarding: boolean; dbs: Set<string>; userUid?: number; userGids?: number[] },
): IncludeCheck {
  const { forwarding, dbs } = opts;
  const kind = forwarding ? 'forward' : 'include';
  let st: fs.Stats;
  try {
    st = fs.lstatSync(file);
    if (st.isSymbolicLink()) {
      const linkOk = dbs.has(forwarding ? 'linkedforwardfileinwritabledir' : 'linkedincludefileinwritabledir');
      if (!linkOk && unsafeDirectory(file, dbs) !== undefined) {
        return { refused: 'Symbolic links not allowed', unsafe: true };
      }
      st = fs.statSync(file);
    }
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    const transient = code !== 'ENOENT' && code !== 'ENOTDIR' && code !== 'EACCES' && code !== 'ELOOP';
    return { refused: (err as Error).message.replace(/^[A-Z]+: /, '').replace(/, \w+ '.*'$/, ''), transient, unsafe: true };
  }
  if (!st.isFile()) return { refused: 'Not a regular file', unsafe: true };
  if (forwarding && opts.userUid !== undefined && st.uid !== opts.userUid && st.uid !== 0) {
    return { refused: 'File not owned by user', unsafe: true };
  }
  // sendmail reads a .forward as its user. Posthorn reads it as root, so a
  // file (or a link's target) that the user could not open is refused, or a
  // link to /etc/shadow would show its lines in EXPN replies and bounces.
  if (forwarding && opts.userUid !== undefined && opts.userUid !== 0 && !userCanOpen(file, st, opts.userUid, opts.userGids ?? [])) {
    return { refused: 'Permission denied', unsafe: true };
  }

  const result: IncludeCheck = { unsafe: false, ownerUid: st.uid };
  const badDir = unsafeDirectory(file, dbs);
  if (badDir !== undefined) {
    if (!dbs.has(`${kind}fileinunsafedirpath`)) return { refused: badDir.reason, unsafe: true };
    if (!dbs.has(`${kind}fileinunsafedirpathsafe`)) {
      result.unsafe = true;
      result.unsafeReason = 'unsafe directory path';
    }
  }
  // A file that others can write is not read at all, as in sendmail: its
  // addresses are not the user's word (anyone could send the user's mail
  // elsewhere or join a list). DontBlameSendmail=GroupWritableForwardFile,
  // WorldWritableForwardFile (...IncludeFile for :include:) let it be read, and
  // its programs and files stay unsafe unless GroupWritable...FileSafe is set
  // for a file that only its group can write.
  const word = forwarding ? 'forwardfile' : 'includefile';
  const groupSafe = dbs.has(`groupwritable${word}safe`);
  if ((st.mode & S_IWGRP) !== 0 && !dbs.has(`groupwritable${word}`)) return { refused: 'Group writable file', unsafe: true };
  if ((st.mode & S_IWOTH) !== 0 && !dbs.has(`worldwritable${word}`)) return { refused: 'World writable file', unsafe: true };
  if ((st.mode & S_IWOTH) !== 0) {
    result.unsafe = true;
    result.unsafeReason = `world writable ${forwarding ? 'forward' : ':include:'} file`;
  } else if ((st.mode & S_IWGRP) !== 0 && !groupSafe) {
    result.unsafe = true;
    result.unsafeReason = `group writable ${forwarding ? 'forward' : ':include:'} file`;
  }
  // Without root, programs cannot run as the file's owner, so they are unsafe.
  if (typeof process.geteuid === 'function' && process.geteuid() !== 0 && !dbs.has('nonrootsafeaddr')) {
    result.unsafe = true;
    result.unsafeReason = 'not running as root';
  }
  return result;
}

/**
 * Checks an alias file before it is read: a group- or world-writable file is
 * refused unless DontBlameSendmail allows it.
 */
export function aliasFileProblem(file: string, dbs: Set<string>): string | undefined {
  let st: fs.Stats;
  try {
    st = fs.statSync(file);
  } catch {
    return undefined;
  }
  if ((st.mode & S_IWOTH) !== 0 && !dbs.has('worldwritablealiasfile')) return 'World writable alias file';
  if ((st.mode & S_IWGRP) !== 0 && !dbs.has('groupwritablealiasfile')) return 'Group writable alias file';
  return undefined;
}
