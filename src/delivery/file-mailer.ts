// The *file* mailer: appends a message to a /file target of an alias,
// :include: or .forward file, in mbox format. sendmail's rules apply: the
// target must be a regular file (or /dev/null) without any execute bit, no
// symbolic or hard link unless DontBlameSendmail allows it, and with
// SafeFileEnvironment set it must lie inside that directory.

import * as fs from 'node:fs';
import * as path from 'node:path';

import { asctime, MboxBodyWriter } from './mbox';
import type { RecipientResult } from './smtp-client';
import { openReadStreamNoFollow } from '../queue/no-follow';

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

export async function deliverToFile(address: string, target: string, msg: FileMessage, opts: FileOptions): Promise<RecipientResult> {
  if (target === '/dev/null') return { address, status: 'sent', dsn: '2.0.0', text: '' };
  const file = resolveTargetPath(target, opts.safeFileEnvironment);
  if (opts.safeFileEnvironment && path.relative(path.resolve(opts.safeFileEnvironment), file).startsWith('..')) {
    return cantCreate(address, 'outside SafeFileEnvironment');
  }

  let existing: fs.Stats | undefined;
  try {
    existing = fs.lstatSync(file);
  } catch {
    existing = undefined;
  }
  if (existing !== undefined) {
    if (existing.isSymbolicLink() && !opts.dbs.has('filedeliverytosymlink')) return cantCreate(address, 'Symbolic links not allowed');
    const st = existing.isSymbolicLink() ? fs.statSync(file) : existing;
    if (!st.isFile()) return cantCreate(address, 'Not a regular file');
    if ((st.mode & 0o111) !== 0) return cantCreate(address, 'File is executable');
    if (st.nlink > 1 && !opts.dbs.has('filedeliverytohardlink')) return cantCreate(address, 'Hard links not allowed');
  } else if (opts.safeFileEnvironment) {
    // sendmail creates no new files inside SafeFileEnvironment unless the directory allows it.
    if (!fs.existsSync(path.dirname(file))) return cantCreate(address, 'No such file or directory');
  }

  let flags = fs.constants.O_WRONLY | fs.constants.O_APPEND | fs.constants.O_CREAT;
  if (!opts.dbs.has('filedeliverytosymlink')) flags |= fs.constants.O_NOFOLLOW;
  let handle: fs.promises.FileHandle;
  try {
    handle = await fs.promises.open(file, flags, 0o600);
  } catch (err) {
    return cantCreate(address, (err as Error).message.replace(/^[A-Z]+: /, ''));
  }
  const original = (await handle.stat()).size;
  try {
    const sender = msg.sender === '' ? 'MAILER-DAEMON' : msg.sender;
    const head = [`From ${sender} ${asctime(new Date())}`, `Return-Path: <${msg.sender}>`, ...msg.headers.map((h) => h.replace(/\r\n/g, '\n')), '', ''].join('\n');
    await handle.write(Buffer.from(head, 'latin1'));
    const body = new MboxBodyWriter();
    for await (const chunk of await openReadStreamNoFollow(msg.dataPath)) {
      const out = body.push(chunk as Buffer);
      if (out.length > 0) await handle.write(out);
    }
    await handle.write(body.finish());
    await handle.sync();
    return { address, status: 'sent', dsn: '2.0.0', text: '' };
  } catch (err) {
    await handle.truncate(original).catch(() => undefined);
    return { address, status: 'tempfail', dsn: '4.3.0', text: `I/O error: ${(err as Error).message}` };
  } finally {
    await handle.close();
  }
}
