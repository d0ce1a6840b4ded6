// User accounts from /etc/passwd, for .forward home directories and for the
// user that runs a |program target. Read again when the file changes.

import * as fs from 'node:fs';

export interface PasswdEntry {
  name: string;
  uid: number;
  gid: number;
  /** The GECOS field's first part: the user's full name. */
  fullName: string;
  home: string;
  shell: string;
}

let cache: { stamp: string; byName: Map<string, PasswdEntry>; byUid: Map<number, PasswdEntry> } | undefined;

function load(file: string): typeof cache {
  let stamp = '';
  try {
    const st = fs.statSync(file);
    stamp = `${file}:${st.mtimeMs}:${st.size}`;
  } catch {
    return { stamp: '', byName: new Map(), byUid: new Map() };
  }
  if (cache && cache.stamp === stamp) return cache;
  const byName = new Map<string, PasswdEntry>();
  const byUid = new Map<number, PasswdEntry>();
  for (const line of fs.readFileSync(file, 'utf8').split('\n')) {
    const f = line.split(':');
    if (f.length < 7 || f[0] === '' || f[0].startsWith('#')) continue;
    const entry = { name: f[0], uid: Number(f[2]), gid: Number(f[3]), fullName: f[4].split(',')[0], home: f[5], shell: f[6] };
    if (!Number.isInteger(entry.uid) || !Number.isInteger(entry.gid)) continue;
    if (!byName.has(entry.name)) byName.set(entry.name, entry);
    if (!byUid.has(entry.uid)) byUid.set(entry.uid, entry);
  }
  cache = { stamp, byName, byUid };
  return cache;
}

/** Looks a user up by login name; names are matched as written, then in lower case. */
export function userByName(name: string, file = '/etc/passwd'): PasswdEntry | undefined {
  const db = load(file)!;
  return db.byName.get(name) ?? db.byName.get(name.toLowerCase());
}

export function userByUid(uid: number, file = '/etc/passwd'): PasswdEntry | undefined {
  return load(file)!.byUid.get(uid);
}
