// Group memberships from /etc/group, for the check that a user may read a
// .forward file through a supplementary group. Read again when the file changes.

import * as fs from 'node:fs';

let cache: { stamp: string; byMember: Map<string, number[]> } | undefined;

function load(file: string): Map<string, number[]> {
  let stamp = '';
  try {
    const st = fs.statSync(file);
    stamp = `${file}:${st.mtimeMs}:${st.size}`;
  } catch {
    return new Map();
  }
  if (cache && cache.stamp === stamp) return cache.byMember;
  const byMember = new Map<string, number[]>();
  for (const line of fs.readFileSync(file, 'utf8').split('\n')) {
    const f = line.split(':');
    if (f.length < 4 || f[0] === '' || f[0].startsWith('#')) continue;
    const gid = Number(f[2]);
    if (!Number.isInteger(gid)) continue;
    for (const member of f[3].split(',')) {
      const name = member.trim();
      if (name === '') continue;
      const gids = byMember.get(name) ?? [];
      gids.push(gid);
      byMember.set(name, gids);
    }
  }
  cache = { stamp, byMember };
  return byMember;
}

/** Returns the supplementary group ids of a user (the groups that list the user as a member). */
export function supplementaryGroups(user: string, file = '/etc/group'): number[] {
  return load(file).get(user) ?? [];
}
