// Mail filter definitions: the equates of an X line or INPUT_MAIL_FILTER
// (`S=inet:8891@127.0.0.1, F=T, T=C:5m;S:10s;R:10s;E:5m`), the
// InputMailFilters order, and the Milter.macros.* lists.

import type { Config, MailFilterSpec } from '../config/types';
import { parseDuration } from '../config/duration';

export type MilterSocket =
  | { kind: 'unix'; path: string }
  | { kind: 'inet'; family: 4 | 6; port: number; host: string };

export interface MilterTimeouts {
  /** C: connecting to the filter; 0 leaves it to the operating system. */
  connect: number;
  /** S: writing one packet to the filter. */
  send: number;
  /** R: waiting for each reply. */
  read: number;
  /** E: from the end of the body to the final reply. */
  eom: number;
}

/** The result of a filter failure (F=): R reject, T tempfail, 4 shutdown, else ignore the filter. */
export type FailureAction = 'reject' | 'tempfail' | 'shutdown' | 'ignore';

export interface MilterDefinition {
  name: string;
  socket?: MilterSocket;
  /** The reason the socket is unusable, so the filter always fails per `onFailure`. */
  socketError?: string;
  onFailure: FailureAction;
  timeouts: MilterTimeouts;
}

/** sendmail's defaults, T=C:5m;S:10s;R:10s;E:5m, in milliseconds. */
export const DEFAULT_TIMEOUTS: MilterTimeouts = {
  connect: 300_000,
  send: 10_000,
  read: 10_000,
  eom: 300_000,
};

/** Parses the S= value: unix:/path, local:/path, inet:port@host, inet6:port@host. */
export function parseMilterSocket(text: string): MilterSocket {
  const colon = text.indexOf(':');
  const scheme = colon < 0 ? 'unix' : text.slice(0, colon).toLowerCase();
  const rest = colon < 0 ? text : text.slice(colon + 1);

  if (scheme === 'unix' || scheme === 'local') {
    if (!rest.startsWith('/')) throw new Error(`local socket name "${rest}" must be an absolute path`);
    return { kind: 'unix', path: rest };
  }
  if (scheme === 'inet' || scheme === 'inet6') {
    const at = rest.indexOf('@');
    if (at < 0) throw new Error(`"${text}" has no @host`);
    const port = Number(rest.slice(0, at));
    if (!Number.isInteger(port) || port <= 0 || port > 65535) {
      throw new Error(`invalid port "${rest.slice(0, at)}" in "${text}"`);
    }
    let host = rest.slice(at + 1);
    if (host.startsWith('[') && host.endsWith(']')) host = host.slice(1, -1);
    if (host === '') throw new Error(`"${text}" has an empty host`);
    return { kind: 'inet', family: scheme === 'inet6' ? 6 : 4, port, host };
  }
  throw new Error(`unknown socket type "${scheme}" in "${text}"`);
}

/** Parses T=C:5m;S:10s;R:10s;E:5m; missing fields keep sendmail's defaults. */
export function parseMilterTimeouts(text: string): MilterTimeouts {
  const timeouts = { ...DEFAULT_TIMEOUTS };
  const keys: Record<string, keyof MilterTimeouts> = { C: 'connect', S: 'send', R: 'read', E: 'eom' };
  for (const field of text.split(';')) {
    const item = field.trim();
    if (item === '') continue;
    const colon = item.indexOf(':');
    const key = keys[colon < 0 ? '' : item.slice(0, colon).trim()];
    if (key === undefined) throw new Error(`unknown timeout "${item}" (use C:, S:, R: or E:)`);
    timeouts[key] = parseDuration(item.slice(colon + 1), 's');
  }
  return timeouts;
}

/**
 * Parses the equates of one filter. Field names are matched by their first
 * letter only, as sendmail does. A bad socket is kept as `socketError` so that
 * the filter's F= flag decides what its sessions see.
 */
export function parseMilterDefinition(spec: Pick<MailFilterSpec, 'name' | 'equates'>): MilterDefinition {
  const def: MilterDefinition = { name: spec.name, onFailure: 'ignore', timeouts: { ...DEFAULT_TIMEOUTS } };
  for (const part of splitEquates(spec.equates)) {
    const eq = part.indexOf('=');
    if (eq < 0) continue;
    const field = part.slice(0, eq).trim();
    const value = part.slice(eq + 1).trim();
    switch (field[0]) {
      case 'S':
        try {
          def.socket = parseMilterSocket(value);
        } catch (err) {
          def.socketError = (err as Error).message;
        }
        break;
      case 'F':
        // sendmail tests T first, then 4, then R, so T wins when several are given.
        if (value.includes('T')) def.onFailure = 'tempfail';
        else if (value.includes('4')) def.onFailure = 'shutdown';
        else if (value.includes('R')) def.onFailure = 'reject';
        break;
      case 'T':
        def.timeouts = parseMilterTimeouts(value);
        break;
    }
  }
  if (def.socket === undefined && def.socketError === undefined) def.socketError = 'missing S= socket';
  return def;
}

/** Splits at commas, which the equates use between fields (T= uses semicolons inside). */
function splitEquates(text: string): string[] {
  return text.split(',').map((part) => part.trim()).filter((part) => part !== '');
}

/**
 * Returns the filters that InputMailFilters lists, in its order. `names`
 * replaces the option, for a daemon with its own InputMailFilters= list.
 */
export function inputMilters(config: Config, names?: readonly string[]): MilterDefinition[] {
  if (names === undefined) {
    const listed = config.options.get('InputMailFilters');
    names = Array.isArray(listed) ? listed : [];
  }
  const result: MilterDefinition[] = [];
  for (const name of names) {
    const spec = config.mailFilters.find((filter) => filter.name === name);
    if (spec !== undefined) result.push(parseMilterDefinition(spec));
  }
  return result;
}

/** Stage indexes of the negotiation's macro lists, and the D command letter of each. */
export const MACRO_STAGES = ['connect', 'helo', 'envfrom', 'envrcpt', 'data', 'eom', 'eoh'] as const;
export type MacroStage = (typeof MACRO_STAGES)[number];

export const MACRO_STAGE_COMMAND: Record<MacroStage, string> = {
  connect: 'C',
  helo: 'H',
  envfrom: 'M',
  envrcpt: 'R',
  data: 'T',
  eom: 'E',
  eoh: 'N',
};

/** The lists that sendmail's m4 configuration defines when confMILTER_MACROS_* are not set. */
export const DEFAULT_MACROS: Record<MacroStage, string[]> = {
  connect: ['j', '_', '{daemon_name}', '{if_name}', '{if_addr}'],
  helo: ['{tls_version}', '{cipher}', '{cipher_bits}', '{cert_subject}', '{cert_issuer}'],
  envfrom: ['i', '{auth_type}', '{auth_authen}', '{auth_ssf}', '{auth_author}', '{mail_mailer}', '{mail_host}', '{mail_addr}'],
  envrcpt: ['{rcpt_mailer}', '{rcpt_host}', '{rcpt_addr}'],
  data: [],
  eom: ['{msg_id}'],
  eoh: [],
};

/**
 * Returns the macro names to send at each stage from Milter.macros.*. An
 * unset option keeps the m4 default, and an option set to an empty value
 * sends no macros at that stage.
 */
export function milterMacroLists(config: Config): Record<MacroStage, string[]> {
  const lists = { ...DEFAULT_MACROS };
  for (const stage of MACRO_STAGES) {
    const name = `Milter.macros.${stage}`;
    const value = config.options.get(name);
    const origin = config.origins.get(name);
    if (!Array.isArray(value) || origin === undefined || origin === 'default') continue;
    lists[stage] = value.map((macro) => normalizeMacroName(macro)).filter((macro) => macro !== '');
  }
  return lists;
}

/** "daemon_name" → "{daemon_name}"; single letters and braced names stay as they are. */
export function normalizeMacroName(name: string): string {
  const trimmed = name.trim();
  if (trimmed.length <= 1 || trimmed.startsWith('{')) return trimmed;
  return `{${trimmed}}`;
}
