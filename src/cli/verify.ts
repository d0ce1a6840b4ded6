// -bv: verifies addresses through virtusertable, the aliases, :include: and
// .forward files and mailertable, and prints one line per final target in
// sendmail's form:
//   bob... deliverable: mailer local, user bob
//   alice@example.com... deliverable: mailer esmtp, host example.com., user alice@example.com
//   nobody@nowhere... User unknown

import { AliasExpander, type Target } from '../aliases/expand';
import type { Config } from '../config/types';
import { localMailer } from '../delivery/local-lmtp';
import { mailertableRoute } from '../delivery/mailertable';
import { ExitError, EX_NOUSER, EX_OK, EX_USAGE } from './sysexits';

function stripReply(reply: string): string {
  return reply.replace(/^\d{3} (\d\.\d{1,3}\.\d{1,3} )?/, '');
}

/** Describes where a target goes: mailer, host and user, as sendmail's -bv prints them. */
export function describeTarget(target: Target, config: Config, given?: string): string {
  switch (target.kind) {
    case 'program':
      return `|${target.command}... deliverable: mailer prog, user |${target.command}`;
    case 'file':
      return `${target.path}... deliverable: mailer *file*, user ${target.path}`;
    case 'local': {
      const mailer = localMailer(config);
      const name = mailer.kind === 'lmtp-ipc' ? mailer.name : 'local';
      return `${given ?? target.user}... deliverable: mailer ${name}, user ${target.user}`;
    }
    case 'remote': {
      const at = target.address.lastIndexOf('@');
      const domain = target.address.slice(at + 1).toLowerCase();
      const table = mailertableRoute(domain, config);
      if (table?.kind === 'mailer') {
        return `${target.address}... deliverable: mailer ${table.mailer}, host ${table.host}, user ${table.user ? `${table.user}@${table.host}` : target.address}`;
      }
      if (config.smartHost) {
        const m = /^([a-z0-9]+):(.+)$/i.exec(config.smartHost);
        const mailer = m ? m[1] : 'relay';
        const host = m ? m[2] : config.smartHost;
        return `${target.address}... deliverable: mailer ${mailer}, host ${host}, user ${target.address}`;
      }
      // A host name gets the trailing dot of a canonical name; an address literal does not.
      const host = domain.startsWith('[') ? domain : `${domain}.`;
      return `${target.address}... deliverable: mailer esmtp, host ${host}, user ${target.address}`;
    }
  }
}

export function runVerify(config: Config, addresses: string[], out: (line: string) => void): number {
  const expander = new AliasExpander(config);
  let status = EX_OK;
  const addressList = addresses.flatMap((a) => a.split(',')).map((a) => a.trim()).filter((a) => a !== '');
  // As sendmail 8.17: -bv without an address is a usage error, not a silent success.
  if (addressList.length === 0) throw new ExitError('Recipient names must be specified', EX_USAGE);
  for (const address of addressList) {
    const bare = address.replace(/^<(.*)>$/, '$1');
    const expansion = expander.expand(bare);
    if (expansion.error !== undefined) {
      out(`${bare}... ${stripReply(expansion.error.reply)}`);
      status = EX_NOUSER;
      continue;
    }
    // A list member that failed is shown first, as sendmail shows it.
    for (const error of expansion.nested) {
      out(`${error.address ?? bare}... ${stripReply(error.reply)}`);
      status = / User unknown$/.test(error.reply) ? EX_NOUSER : EX_USAGE;
    }
    // An address that no alias or table changed is shown as it was given, as sendmail shows it.
    const given = expansion.changed ? undefined : bare;
    for (const { target } of expansion.targets) out(describeTarget(target, config, given));
  }
  return status;
}
