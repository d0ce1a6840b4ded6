// VRFY (RFC 5321 3.5.3) with sendmail 8.17's replies: a local user or alias
// gets "250 2.1.5 <full name> <user@host>", an address at another domain
// "252 2.1.5 <address>", and with PrivacyOptions=novrfy every request gets
// sendmail's "Cannot VRFY user" 252.

import { reply, type Reply } from '../smtp/reply';
import { parsePath, splitAddress } from '../smtp/address';
import { domainInClass } from '../policy/relay';
import { userByName } from '../aliases/passwd';
import { AliasDatabase } from '../aliases/database';
import type { Config } from '../config/types';
import { localUserCheckMode } from './local-user-check';

const CANNOT_VRFY = 'Cannot VRFY user; try RCPT to attempt delivery (or try finger)';

export function vrfyReply(config: Config, arg: string, novrfy: boolean): Reply {
  if (novrfy) return reply(252, '2.5.2', CANNOT_VRFY);

  const text = arg.trim();
  const parsed = parsePath(text.startsWith('<') ? text : `<${text}>`, 'rcpt');
  if (!parsed.ok) return reply(parsed.code, parsed.enhanced, parsed.text);

  const { local, domain } = splitAddress(parsed.address);
  if (domain !== '' && !domainInClass(domain, config.localDomains)) {
    return reply(252, '2.1.5', `<${parsed.address}>`);
  }

  const name = local.replace(/^"(.*)"$/, '$1');
  const address = `${name}@${config.hostName}`;
  const user = userByName(name);
  if (user) {
    return reply(250, '2.1.5', user.fullName ? `${user.fullName} <${address}>` : `<${address}>`);
  }
  if (AliasDatabase.fromConfig(config).lookup(name)) return reply(250, '2.1.5', `<${address}>`);

  if (localUserCheckMode(config) === 'passwd') return reply(550, '5.1.1', `<${address}>... User unknown`);
  // NOTE: with LocalUserCheck=any the built-in mbox mailer delivers to any safe
  // name in MailboxDirectory, so a name that is neither a user nor an alias is not refused here.
  return reply(252, '2.1.5', `<${address}>`);
}
