// LocalUserCheck (confLOCAL_USER_CHECK): with `passwd`, a RCPT for one of our
// own names whose local part is no passwd user and no alias gets sendmail's
// "550 5.1.1 <x@local>... User unknown". With `any` (the default) the built-in
// mbox mailer accepts every safe name, as before.

import { splitAddress } from '../smtp/address';
import { reply, type Reply } from '../smtp/reply';
import { userByName } from '../aliases/passwd';
import { AliasDatabase } from '../aliases/database';
import { isOwnName } from '../delivery/router';
import { virtuserRewrite } from '../delivery/virtusertable';
import type { Config } from '../config/types';

/** The passwd file that the check reads. */
export const LOCAL_USER_PASSWD = { file: '/etc/passwd' };

export function localUserCheckMode(config: Config): 'any' | 'passwd' {
  return String(config.options.get('LocalUserCheck') ?? 'any').toLowerCase() === 'passwd' ? 'passwd' : 'any';
}

/** Checks whether a local name is known: an alias (name, user+*, user) or a passwd user (name, user). */
export function isKnownLocalName(config: Config, name: string): boolean {
  const aliases = AliasDatabase.fromConfig(config);
  const plus = name.indexOf('+');
  const base = plus > 0 ? name.slice(0, plus) : name;
  const names = plus > 0 ? [name, `${base}+*`, base] : [name];
  for (const n of names) if (aliases.lookup(n)) return true;
  return userByName(name, LOCAL_USER_PASSWD.file) !== undefined || userByName(base, LOCAL_USER_PASSWD.file) !== undefined;
}

/**
 * Returns sendmail's "User unknown" reply for an unknown local recipient, or
 * undefined when the address is accepted (the check is off, the domain is not
 * ours, or virtusertable rewrites it).
 */
export function localUserCheck(config: Config, address: string): Reply | undefined {
  if (localUserCheckMode(config) !== 'passwd') return undefined;
  const { local, domain } = splitAddress(address);
  if (domain !== '' && !isOwnName(domain, config)) return undefined;
  if (domain !== '' && virtuserRewrite(address, config) !== undefined) return undefined;
  const name = local.replace(/^"(.*)"$/, '$1');
  if (name === '' || isKnownLocalName(config, name)) return undefined;
  // NOTE: a name that only a .forward file or another mailer could serve is rejected too.
  return reply(550, '5.1.1', `<${address}>... User unknown`);
}
