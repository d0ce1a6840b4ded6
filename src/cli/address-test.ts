// -bt, sendmail's address test mode, for the commands administrators use to
// check a configuration: `$=w` (a class), `$j` (a macro), `/parse address`
// (where an address goes) and `/map name key` (a map lookup). Posthorn has no
// rewriting rules, so `/parse` prints only the result line ("mailer relay,
// host [127.0.0.1], user bob@example.com") without sendmail's ruleset trace,
// and ruleset commands ("3,0 address", /try) get an error line instead.

import { AliasDatabase } from '../aliases/database';
import type { Target } from '../aliases/expand';
import type { Config } from '../config/types';
import { featureMap } from '../delivery/feature-maps';
import { isOwnName } from '../delivery/router';
import { virtuserRewrite } from '../delivery/virtusertable';
import { accessMapFromConfig } from '../policy/access';
import { VERSION } from '../version';
import { systemIdentity } from './debug-flags';
import { EX_OK } from './sysexits';
import { describeTarget } from './verify';

const BANNER = ['ADDRESS TEST MODE (ruleset 3 NOT automatically invoked)', 'Enter <ruleset> <address>'];

/** Virtusertable rewrites followed at most, as sendmail's MaxAliasRecursion bounds the same loop. */
const MAX_REWRITES = 10;

/** Returns where `address` goes, as the last line of sendmail's /parse: "mailer X, host Y, user Z". */
export function parseLine(config: Config, address: string): string {
  let current = address.trim().replace(/^<(.*)>$/, '$1');
  for (let i = 0; i < MAX_REWRITES; i++) {
    const target = classify(config, current);
    if (target.kind !== 'virtual') return describeTarget(target, config).replace(/^.*?\.\.\. deliverable: /, '');
    const rewritten = virtuserRewrite(current, config);
    if (rewritten === undefined) break;
    if (rewritten.kind === 'error') return `mailer *error*, host ${rewritten.dsn}, user ${rewritten.reply.replace(/^\d{3} (\d\.\d+\.\d+ )?/, '')}`;
    current = rewritten.address;
  }
  return describeTarget({ kind: 'remote', address: current }, config).replace(/^.*?\.\.\. deliverable: /, '');
}

function classify(config: Config, address: string): Target | { kind: 'virtual' } {
  if (address.startsWith('|')) return { kind: 'program', command: address.slice(1).trim() };
  if (address.startsWith('/')) return { kind: 'file', path: address };
  const at = address.lastIndexOf('@');
  const domain = at < 0 ? '' : address.slice(at + 1);
  const local = at < 0 ? address : address.slice(0, at);
  if (domain !== '' && virtuserRewrite(address, config) !== undefined) return { kind: 'virtual' };
  // The local mailer has no F=u, so sendmail folds the user name to lower case, as -bv does.
  if (domain === '' || isOwnName(domain, config)) return { kind: 'local', user: local.replace(/^\\/, '').toLowerCase() };
  return { kind: 'remote', address };
}

/** Looks `key` up in a map by its sendmail name, as /map prints it. */
function mapLine(config: Config, name: string, key: string): string {
  const errors: string[] = [];
  const onError = (message: string): void => void errors.push(message);
  let value: string | undefined;
  let known = true;
  switch (name) {
    case 'mailertable':
      value = featureMap(config, 'mailertable', onError)?.get(key.toLowerCase());
      break;
    case 'virtuser':
      value = featureMap(config, 'virtusertable', onError)?.get(key.toLowerCase());
      break;
    case 'generics':
      value = featureMap(config, 'genericstable', onError)?.get(key.toLowerCase());
      break;
    case 'access':
      value = accessMapFromConfig(config, onError)?.map.get(key);
      break;
    case 'aliases': {
      const match = AliasDatabase.fromConfig(config, onError).lookup(key.toLowerCase());
      value = match?.value;
      break;
    }
    default:
      known = false;
  }
  if (!known) return `Map named "${name}" not found`;
  const warnings = errors.map((e) => `WARNING: ${e} `).join('');
  return `map_lookup: ${name} (${key}) ${warnings}${value === undefined ? 'no match' : `returns ${value}`} (0)`;
}

/** The macros that sendmail defines from the host's names and its version, as the daemon's sessions set them. */
function macroValue(config: Config, name: string): string | undefined {
  const configured = config.macros.get(name);
  if (configured !== undefined) return configured;
  const names = systemIdentity(config);
  switch (name) {
    case 'w':
    case 'j':
    case 'm':
    case 'k':
      return names[name];
    case 'v':
    case 'Z':
      return VERSION;
    default:
      return undefined;
  }
}

/** Answers one line of input; returns the lines to print after the prompt. */
export function answer(config: Config, input: string): string[] {
  const line = input.trim();
  if (line === '' || line.startsWith('#')) return [];
  if (/^\$=[A-Za-z]$/.test(line) || /^\$=\{[A-Za-z0-9_]+\}$/.test(line)) {
    const name = line.slice(2).replace(/^\{(.*)\}$/, '$1');
    // Class w contains this host's own names as well as the configured ones, as in sendmail.
    if (name === 'w') return [...new Set([...(config.classes.get('w') ?? []), ...config.localDomains])];
    return [...(config.classes.get(name) ?? [])];
  }
  if (/^\$[A-Za-z]$/.test(line) || /^\$\{[A-Za-z0-9_]+\}$/.test(line)) {
    // ${j} is the same macro as $j.
    const name = line.slice(1).replace(/^\{([A-Za-z])\}$/, '$1');
    return [macroValue(config, name) ?? 'Undefined'];
  }
  const [command, ...rest] = line.split(/\s+/);
  switch (command.toLowerCase()) {
    case '/parse':
      if (rest.length === 0) return ['Usage: /parse address'];
      return ['Cracked address = $g', 'Parsing envelope recipient address', parseLine(config, rest.join(' '))];
    case '/map':
      if (rest.length < 2) return ['Usage: /map mapname key'];
      return [mapLine(config, rest[0], rest.slice(1).join(' '))];
    case '/quit':
      return [];
    default:
      return [`Posthorn has no rewriting rules: "${line.slice(0, 60)}" is not supported; use /parse, /map, $=X or $X`];
  }
}

/**
 * The maximum length of an input line, in bytes. A longer line is rejected as
 * a whole, so that input without line ends cannot fill the memory. sendmail
 * reads -bt input into a buffer of MAXLINE (2048) bytes.
 */
export const MAX_TEST_LINE = 16 * 1024;

/** Shows control characters as ^X, so that input cannot drive the terminal (sendmail's address parser drops them). */
function printable(text: string): string {
  return text.replace(/[\x00-\x08\x0b-\x1f\x7f]/g, (c) => (c === '\x7f' ? '^?' : `^${String.fromCharCode(c.charCodeAt(0) + 64)}`));
}

/**
 * Splits standard input into lines of at most MAX_TEST_LINE bytes. A longer
 * line is given as `undefined`, and its bytes are dropped as they come.
 */
async function* inputLines(input: NodeJS.ReadableStream): AsyncGenerator<string | undefined> {
  let pending: Buffer[] = [];
  let pendingSize = 0;
  let tooLong = false;
  for await (const chunk of input) {
    const bytes = typeof chunk === 'string' ? Buffer.from(chunk) : chunk;
    let start = 0;
    for (let lf = bytes.indexOf(0x0a, start); lf >= 0; lf = bytes.indexOf(0x0a, start)) {
      const part = bytes.subarray(start, lf);
      start = lf + 1;
      if (tooLong || pendingSize + part.length > MAX_TEST_LINE) yield undefined;
      else yield Buffer.concat([...pending, part]).toString('utf8').replace(/\r$/, '');
      pending = [];
      pendingSize = 0;
      tooLong = false;
    }
    const rest = bytes.subarray(start);
    if (tooLong || rest.length === 0) continue;
    if (pendingSize + rest.length > MAX_TEST_LINE) {
      tooLong = true;
      pending = [];
      pendingSize = 0;
      continue;
    }
    pending.push(rest);
    pendingSize += rest.length;
  }
  // A last line without LF counts as a line, as sendmail's fgets() returns it.
  if (tooLong) yield undefined;
  else if (pendingSize > 0) yield Buffer.concat(pending).toString('utf8').replace(/\r$/, '');
}

/** Runs address test mode on standard input until the input ends or a /quit line. */
export async function runAddressTest(config: Config, input: NodeJS.ReadableStream = process.stdin): Promise<number> {
  const out = (text: string): void => void process.stdout.write(text);
  out(`${BANNER.join('\n')}\n> `);
  for await (const line of inputLines(input)) {
    if (line === undefined) out(`Input line too long (more than ${MAX_TEST_LINE} bytes): ignored\n`);
    else for (const answered of answer(config, line)) out(`${printable(answered)}\n`);
    if (line !== undefined && line.trim().toLowerCase() === '/quit') break;
    out('> ');
  }
  return EX_OK;
}
