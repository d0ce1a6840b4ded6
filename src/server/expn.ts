// EXPN (RFC 5321 3.5.2) with sendmail 8.17's replies. The argument is an
// address list. Each member is expanded through the aliases, :include: and
// .forward files to its final addresses, and each gets one "250-2.1.5" line:
//   local user      "250-2.1.5 Full Name <user@$j>" (the passwd name field)
//   program, file   "250-2.1.5 <|/usr/bin/prog>", "250-2.1.5 </var/log/list>"
//   other domains   "250 2.1.5 <user@example.com>"
// sendmail puts the addresses on its send queue in reverse order, expands
// aliases where they stand, drops repeats and keeps the queue sorted by host
// (local addresses first). Any failure on the way makes the whole reply the
// last failure, e.g. "550 5.1.1 nosuch... User unknown".

import { reply, type Reply } from '../smtp/reply';
import { AliasExpander, type ExpandError, type Target } from '../aliases/expand';
import { splitAddressList } from '../aliases/parse';
import { userByName } from '../aliases/passwd';
import type { Config } from '../config/types';
import { localUserCheckMode } from './local-user-check';
import type { Session } from './session';
import { privacyOption, srvFeature } from './srv-features';

/** EXPN is offered unless PrivacyOptions=noexpn; a Srv_Features: X or x overrides that. */
export function expnOffered(session: Session): boolean {
  return srvFeature(session, 'x') ?? !privacyOption(session, 'noexpn');
}

/** VERB is offered with EXPN, unless PrivacyOptions=noverb; a Srv_Features: B or b overrides that. */
export function verbOffered(session: Session): boolean {
  return expnOffered(session) && (srvFeature(session, 'b') ?? !privacyOption(session, 'noverb'));
}

/** Expanders by configuration, so that the alias files are parsed once. */
const expanders = new WeakMap<Config, AliasExpander>();

export function expnReply(config: Config, arg: string): Reply {
  const text = arg.trim();
  const syntax = syntaxError(text);
  if (syntax !== undefined) return syntax;
  const members = splitAddressList(text).map((member) => member.replace(/^<+(.*?)>+$/, '$1'));
  if (members.length === 0) return reply(550, '5.1.1', `${text}... User unknown`);

  let expander = expanders.get(config);
  if (expander === undefined) {
    expander = new AliasExpander(config);
    expanders.set(config, expander);
  }
  const errors: string[] = [];
  const occurrences: Target[] = [];
  for (const member of members) {
    const expansion = expander.expand(member, true);
    if (expansion.error !== undefined) errors.push(errorLine(member, expansion.error));
    for (const nested of expansion.nested) errors.push(errorLine(member, nested));
    if (expansion.error !== undefined) continue;
    for (const target of expansion.occurrences) {
      if (target.kind === 'local' && targetLine(target, config) === undefined) errors.push(`550 5.1.1 ${target.user}... User unknown`);
    }
    for (const target of expansion.occurrences) occurrences.push(target);
  }
  // sendmail reports the failure it meets first, and it walks the list backwards.
  const last = errors.at(-1);
  if (last !== undefined) return parsedReply(last);
  const lines = sendQueueOrder(occurrences, config).map((target) => targetLine(target, config) ?? '');
  if (lines.length === 0) return reply(554, '5.5.2', 'Nothing to EXPN');
  return reply(250, '2.1.5', ...lines);
}

/** Returns sendmail's reply to an argument it cannot parse, or undefined. */
function syntaxError(text: string): Reply | undefined {
  if (/[\x00-\x1f\x7f]/.test(text)) {
    const printable = text.replace(/[\x00-\x1f\x7f]/g, '?');
    return reply(501, '5.1.3', `Syntax error in mailbox address "${printable}" (non-printable character)`);
  }
  let quoted = false;
  let depth = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (c === '\\') i++;
    else if (c === '"') quoted = !quoted;
    else if (!quoted && c === '<') depth++;
    else if (!quoted && c === '>' && --depth < 0) return reply(553, '5.0.0', `${text}... Unbalanced '>'`);
  }
  if (quoted) return reply(553, '5.0.0', `${text}... Unbalanced '"'`);
  if (depth > 0) return reply(553, '5.0.0', `${text}... Unbalanced '<'`);
  if (/:\s*;\s*$/.test(text)) return reply(553, '5.1.3', `${text}... List:; syntax illegal for recipient addresses`);
  return undefined;
}

/** "550 5.2.4 Cannot open ..." becomes "550 5.2.4 <address>... Cannot open ...". */
function errorLine(member: string, error: ExpandError): string {
  const match = /^(\d{3}) (\d\.\d{1,3}\.\d{1,3}) (.*)$/.exec(error.reply);
  if (match === null) return error.reply;
  return `${match[1]} ${match[2]} ${error.address ?? member}... ${match[3]}`;
}

function parsedReply(line: string): Reply {
  const match = /^(\d{3}) (\d\.\d{1,3}\.\d{1,3}) (.*)$/.exec(line);
  if (match === null) return reply(550, '5.1.1', line);
  return reply(Number(match[1]), match[2], match[3]);
}

/**
 * Orders the targets as sendmail's send queue keeps them: the walk reversed,
 * the first of repeated addresses kept, then a stable sort by host.
 */
function sendQueueOrder(occurrences: Target[], config: Config): Target[] {
  const seen = new Set<string>();
  const unique: Target[] = [];
  for (let i = occurrences.length - 1; i >= 0; i--) {
    const key = sameAddressKey(occurrences[i]);
    if (seen.has(key)) continue;
    seen.add(key);
    unique.push(occurrences[i]);
  }
  const hosts = unique.map((target) => hostOf(target, config));
  const order = unique.map((_, index) => index);
  order.sort((a, b) => {
    if (hosts[a] !== hosts[b]) return hosts[a] < hosts[b] ? -1 : 1;
    return a - b;
  });
  return order.map((index) => unique[index]);
}

/** Local names compare in lower case; for other domains only the domain does. */
function sameAddressKey(target: Target): string {
  switch (target.kind) {
    case 'local':
      return `local:${target.user.toLowerCase()}`;
    case 'remote': {
      const at = target.address.lastIndexOf('@');
      return `remote:${target.address.slice(0, at)}@${target.address.slice(at + 1).toLowerCase()}`;
    }
    case 'program':
      return `program:${target.command}`;
    case 'file':
      return `file:${target.path}`;
  }
}

/** Returns the host sendmail sorts by: none for local delivery, the smart host or the domain otherwise. */
function hostOf(target: Target, config: Config): string {
  if (target.kind !== 'remote') return '';
  if (config.smartHost) return config.smartHost.toLowerCase();
  return target.address.slice(target.address.lastIndexOf('@') + 1).toLowerCase();
}

/** Returns the text of one reply line, or undefined for a local user that does not exist. */
function targetLine(target: Target, config: Config): string | undefined {
  switch (target.kind) {
    case 'remote':
      return `<${target.address}>`;
    case 'program':
      return `<|${target.command}>`;
    case 'file':
      return `<${target.path}>`;
    case 'local': {
      const name = target.user;
      // The +detail goes to the mailer as $h; sendmail shows the user without it.
      const base = name.split('+')[0];
      const address = `${base}@${config.hostName}`;
      const user = /\s/.test(name) ? undefined : userByName(base);
      if (user !== undefined) return user.fullName ? `${user.fullName} <${address}>` : `<${address}>`;
      // NOTE: with LocalUserCheck=any the mbox mailer takes any safe name, so EXPN shows it as VRFY does.
      if (localUserCheckMode(config) === 'passwd' || /\s/.test(name)) return undefined;
      return `<${address}>`;
    }
  }
}
