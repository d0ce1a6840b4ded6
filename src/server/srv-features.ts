// sendmail's srv_features ruleset as the default cf builds it with
// FEATURE(`access_db'): at connect, `Srv_Features:` is looked up by the
// client's host name (and its parent domains), then its address (and shorter
// prefixes), then the bare tag. The right-hand side is a list of letters
// separated by spaces. An upper-case letter turns a feature off for this
// session, and a lower-case one turns it on:
//   S/s  offer STARTTLS          V/v  ask the client for a certificate
//   P/p  offer PIPELINING        D/d  offer DSN
//   E/e  offer ETRN (see etrn.ts)
//   X/x  offer EXPN              B/b  offer VERB (see expn.ts)
// The value `temp` (what `$#temp` becomes) makes the session a null server
// that answers 450 4.3.0.

import { reply } from '../smtp/reply';
import { GOAWAY_WORDS } from '../config/options-m-z';
import { lookupHost } from '../policy/tls-rulesets';
import { tlsAccessMap } from '../tls/access';
import type { Session } from './session';

/** Letters Posthorn accepts. A, C and L (AUTH) switch no feature here. */
const KNOWN_LETTERS = new Set(['s', 'v', 'p', 'd', 'a', 'b', 'c', 'e', 'l', 'x']);

/** The per-session switches: letter (lower case) → true for on, false for off. */
const featuresBySession = new WeakMap<Session, Map<string, boolean>>();

/** Parses a Srv_Features: value into switches; the first character of each word counts, as in sendmail. */
export function parseSrvFeatures(value: string, unknown: (word: string) => void = () => undefined): Map<string, boolean> {
  const switches = new Map<string, boolean>();
  for (const word of value.split(/[\s,]+/)) {
    if (word === '') continue;
    const letter = word[0];
    const lower = letter.toLowerCase();
    if (!KNOWN_LETTERS.has(lower)) {
      unknown(word);
      continue;
    }
    switches.set(lower, letter === lower);
  }
  return switches;
}

/**
 * Runs srv_features for a new session, before its greeting. A `temp` result
 * turns the session into a null server with sendmail's 450 reply, unless
 * check_relay already made it one.
 */
export function applySrvFeatures(session: Session): void {
  const access = tlsAccessMap(session.ctx.config, (message) => session.log.error(message));
  const hit = lookupHost(access, 'Srv_Features', session.macros.get('{client_name}') ?? '', session.transport.remoteAddress);
  if (!hit) return;
  const value = hit.value.trim();
  if (/^(\$#)?temp$/i.test(value)) {
    session.log.error(`ERROR: srv_features=tempfail, relay=${session.macros.get('_') ?? ''}, access temporarily disabled`);
    session.nullServerReply ??= reply(450, '4.3.0', 'Please try again later.');
    return;
  }
  const switches = parseSrvFeatures(value, (word) => session.log.info(`srv_features: unknown feature ${word}`, 10));
  featuresBySession.set(session, switches);
}

/** Tests whether PrivacyOptions has `word`, named or set by goaway. */
export function privacyOption(session: Session, word: string): boolean {
  const options = session.ctx.config.privacyOptions;
  return options.has(word) || (options.has('goaway') && GOAWAY_WORDS.includes(word));
}

/** The session's switch for a feature letter (any case): true on, false off, undefined when Srv_Features: did not name it. */
export function srvFeature(session: Session, letter: string): boolean | undefined {
  return featuresBySession.get(session)?.get(letter.toLowerCase());
}

/** Drops the EHLO keywords that Srv_Features: turned off (P: PIPELINING, D: DSN). */
export function filterEhloKeywords(session: Session, lines: string[]): string[] {
  return lines.filter((line) => {
    if (line === 'PIPELINING') return srvFeature(session, 'p') !== false;
    if (line === 'DSN') return srvFeature(session, 'd') !== false;
    return true;
  });
}
