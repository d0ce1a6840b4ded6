// The error texts that FEATURE arguments give in ruleset syntax, such as
// `"550 Rejected: " $&{client_addr} " listed at bl.example"`, and how an
// `$#error $@ <dsn> $: <text>` result becomes an SMTP reply.

import { reply, type Reply } from '../smtp/reply';

/** Expands `$&{name}` and `$&x` from the macros and drops the double quotes. */
export function expandRulesetText(text: string, macros: ReadonlyMap<string, string>): string {
  const expanded = text.replace(/\$&?(\{[A-Za-z0-9_]+\}|[A-Za-z])/g, (_, name: string) => macros.get(name) ?? '');
  return expanded.replace(/"/g, '').replace(/\s+/g, ' ').trim();
}

/**
 * Builds the reply for `$#error $@ <dsn> $: <text>`: a text that starts with a
 * reply code keeps it, its own enhanced code wins over <dsn>, and any other
 * text becomes `553 5.3.0 <text>`.
 */
export function errorReply(text: string, dsn: string | undefined): Reply {
  const coded = /^([245]\d\d) +(.*)$/.exec(text);
  if (!coded) return reply(553, '5.3.0', text);
  const own = /^(\d\.\d{1,3}\.\d{1,3}) +(.*)$/.exec(coded[2]);
  if (own) return reply(Number(coded[1]), own[1], own[2]);
  return reply(Number(coded[1]), dsn ?? `${coded[1][0]}.0.0`, coded[2]);
}

/** Renders a reply on one line for log lines such as "reject=550 5.7.1 Access denied". */
export function replyText(r: Reply): string {
  return [String(r.code), r.enhanced, r.lines.join(' ')].filter((p) => p !== undefined && p !== '').join(' ');
}
