// .forward files: ForwardPath is a colon-separated list of file names with
// sendmail macros ($z home directory, $u user, $h the +detail, $j this host).
// The first file that exists and passes the safety checks is used.

import { expandMacros } from '../config/macros';
import type { Config } from '../config/types';
import { userByName } from '../aliases/passwd';
import { supplementaryGroups } from '../aliases/groups';

export interface ForwardCandidate {
  path: string;
  /** uid the file must belong to (besides root), when the user has an account. */
  userUid?: number;
  /** The user's primary and supplementary gids, for the check that the user may read the file. */
  userGids?: number[];
}

/**
 * Returns the .forward files to try for a local user, in ForwardPath order.
 * An entry that needs $z is skipped for users without an account.
 */
export function forwardCandidates(user: string, detail: string, config: Config): ForwardCandidate[] {
  const option = config.options.get('ForwardPath');
  const spec = typeof option === 'string' ? option : '$z/.forward';
  const account = userByName(user);
  const out: ForwardCandidate[] = [];
  for (const entry of spec.split(':')) {
    if (entry.trim() === '') continue;
    if (account === undefined && /\$z|\$\{z\}/.test(entry)) continue;
    const macros: Record<string, string> = { z: account?.home ?? '', u: user, h: detail, j: config.hostName };
    const file = expandMacros(entry.trim(), (name) => macros[name] ?? config.macros.get(name));
    const userGids = account === undefined ? undefined : [account.gid, ...supplementaryGroups(account.name)];
    if (file !== '') out.push({ path: file, userUid: account?.uid, userGids });
  }
  return out;
}
