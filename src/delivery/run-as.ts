// The user that runs a |program target or writes a /file target. A target
// from a .forward or :include: file has a controlling user (ctladdr): the
// .forward's user or the file's owner, written as a name or as a uid when the
// owner has no account. A target from the alias file has none and uses
// DefaultUser. All this applies only when Posthorn runs as root.

import type { Config } from '../config/types';
import { userByName, userByUid } from '../aliases/passwd';

export interface RunAs {
  uid: number;
  gid: number;
}

/** sendmail's uid and gid for mailers when DefaultUser names no account (DefUid, DefGid). */
const FALLBACK: RunAs = { uid: 1, gid: 1 };

/** Reads "name", "uid" or "uid:gid" (DefaultUser's forms); undefined when the name has no account. */
export function resolveUserSpec(spec: string): RunAs | undefined {
  const [user, group] = spec.split(':');
  let found: RunAs | undefined;
  if (/^\d+$/.test(user)) {
    const uid = Number(user);
    found = { uid, gid: userByUid(uid)?.gid ?? uid };
  } else {
    const account = userByName(user);
    if (account !== undefined) found = { uid: account.uid, gid: account.gid };
  }
  if (found !== undefined && group !== undefined && /^\d+$/.test(group)) found.gid = Number(group);
  return found;
}

function defaultUser(config: Config): RunAs | undefined {
  const value = config.options.get('DefaultUser');
  return typeof value === 'string' && value !== '' ? resolveUserSpec(value) : undefined;
}

function runningAsRoot(): boolean {
  return typeof process.geteuid === 'function' && process.geteuid() === 0;
}

/**
 * Returns the uid and gid to run a target as, or undefined to run it as
 * Posthorn's own user. A controlling user that is root keeps root (the file
 * belongs to root). One that names no account never gets root: it falls back
 * to DefaultUser, or to uid and gid 1 as sendmail's defaults. Without a
 * controlling user (the alias file), DefaultUser applies, or uid and gid 1
 * when it names no account; DefaultUser=root keeps root.
 */
export function runAsFor(ctladdr: string | undefined, config: Config): RunAs | undefined {
  if (!runningAsRoot()) return undefined;
  if (ctladdr !== undefined) {
    const owner = resolveUserSpec(ctladdr);
    if (owner !== undefined) return owner.uid === 0 ? undefined : owner;
    const fallback = defaultUser(config);
    return fallback !== undefined && fallback.uid !== 0 ? fallback : FALLBACK;
  }
  // As sendmail, a DefaultUser without an account (mailnull on Debian) means uid and gid 1, never root.
  const user = defaultUser(config);
  if (user === undefined) return FALLBACK;
  return user.uid !== 0 ? user : undefined;
}
