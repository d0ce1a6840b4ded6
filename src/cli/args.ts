// The sendmail command line: flags as sendmail 8.13 takes them, parsed into one
// object. Flags with a value take it attached (-Cfile) or as the next word.

import { ExitError, EX_SOFTWARE, EX_USAGE } from './sysexits';
import { parseDuration } from '../config/duration';
import { optionByShort } from '../config/options';
import { applyBodyFlag, applyEnvidFlag, applyNotifyFlag, applyRetFlag, type DsnFlags } from './dsn-flags';

export type Mode =
  | 'deliver' // -bm, the default: read a message from stdin
  | 'daemon' // -bd
  | 'daemon-foreground' // -bD
  | 'smtp' // -bs
  | 'print-queue' // -bp, mailq
  | 'print-config' // -bP
  | 'queue-run' // -q without -bd/-bD
  | 'init-aliases' // -bi, newaliases
  | 'verify' // -bv
  | 'test' // -bt
  | 'host-status' // -bh, hoststat
  | 'purge-host-status' // -bH, purgestat
  | 'export-queue' // --to-sendmail-queue
  | 'help'
  | 'version';

export interface QueueSelector {
  kind: 'I' | 'R' | 'S' | 'Q';
  negate: boolean;
  value: string;
}

export interface CliArgs {
  mode: Mode;
  configFile?: string;
  /** -O and -o options in order; later ones win. */
  overrides: Array<{ name: string; value: string }>;
  /** -o<c><value> single-letter options, mapped to long names by the config reader. */
  shortOptions: Array<{ letter: string; value: string }>;
  /** -t: take recipients from To:, Cc: and Bcc:. */
  readRecipients: boolean;
  /** -i / -oi: a line with a single dot does not end the message. */
  ignoreDots: boolean;
  sender?: string;
  fullName?: string;
  /** -q<time>: milliseconds between queue runs; undefined when not given. */
  queueInterval?: number;
  /** -q given in any form. */
  queueRun: boolean;
  queueSelectors: QueueSelector[];
  /** -Q[reason]: quarantine (or release with an empty reason). */
  quarantine?: string;
  /** -qL: operate on "lost" items (Qf files). */
  queueLost?: boolean;
  /** -qf: run the queue once in the foreground. */
  queueForeground?: boolean;
  /** -qp[time]: a persistent queue runner. */
  queuePersistent?: boolean;
  /** -d flags in order, e.g. ["0.1", "8.20"]. */
  debugFlags?: string[];
  /** -D logfile: debug output is appended to this file instead of stdout. */
  debugFile?: string;
  /** -X file: append an SMTP transcript to this file. */
  transcriptFile?: string;
  verbose: boolean;
  /** -M and -oM: macros for this message, e.g. "r" -> "UUCP" (-oMrUUCP) or "{client_addr}". */
  macros: Map<string, string>;
  /** -N, -R, -V and -B: the DSN and BODY values of a submission. */
  dsn: DsnFlags;
  recipients: string[];
}

/** Flags that take a value (sendmail's getopt string). */
const WITH_VALUE = new Set(['B', 'b', 'C', 'D', 'd', 'e', 'F', 'f', 'h', 'L', 'M', 'N', 'O', 'o', 'p', 'Q', 'q', 'R', 'r', 'V', 'X', 'A']);
/** Flags whose value is optional and must be attached (-q, -Q). */
const OPTIONAL_VALUE = new Set(['q', 'Q']);

const MODES: Record<string, Mode> = {
  m: 'deliver',
  d: 'daemon',
  D: 'daemon-foreground',
  s: 'smtp',
  p: 'print-queue',
  P: 'print-config',
  i: 'init-aliases',
  v: 'verify',
  t: 'test',
  h: 'host-status',
  H: 'purge-host-status',
};

/** Modes named by the program's name, as sendmail's links mailq, newaliases, hoststat and purgestat. */
const PROGRAM_MODES: Record<string, Mode> = {
  mailq: 'print-queue',
  newaliases: 'init-aliases',
  hoststat: 'host-status',
  purgestat: 'purge-host-status',
};

export function parseArgs(argv: readonly string[], invokedAs: string): CliArgs {
  const args: CliArgs = {
    mode: Object.hasOwn(PROGRAM_MODES, invokedAs) ? PROGRAM_MODES[invokedAs] : 'deliver',
    overrides: [],
    shortOptions: [],
    readRecipients: false,
    ignoreDots: false,
    queueRun: false,
    queueSelectors: [],
    verbose: false,
    macros: new Map(),
    dsn: {},
    recipients: [],
  };
  let modeGiven = false;

  let i = 0;
  for (; i < argv.length; i++) {
    const word = argv[i];
    if (word === '--') {
      i++;
      break;
    }
    if (word === '--help' || word === '-h' && argv.length === 1) {
      args.mode = 'help';
      return args;
    }
    if (word === '--version') {
      args.mode = 'version';
      return args;
    }
    if (word === '--to-sendmail-queue') {
      args.mode = 'export-queue';
      continue;
    }
    if (!word.startsWith('-') || word === '-') break;
    if (word.startsWith('--')) throw new ExitError(`unknown option ${word}; see posthorn --help`, EX_USAGE);

    const flag = word[1];
    let value: string | undefined = word.length > 2 ? word.slice(2) : undefined;
    if (WITH_VALUE.has(flag) && value === undefined && !OPTIONAL_VALUE.has(flag)) {
      value = argv[++i];
      if (value === undefined) throw new ExitError(`option -${flag} requires a value`, EX_USAGE);
    }
    if (flag === 'b') modeGiven = true;
    applyFlag(args, flag, value ?? '');
  }
  args.recipients.push(...argv.slice(i));

  if (args.queueRun && !modeGiven && args.mode === 'deliver') args.mode = 'queue-run';
  // As sendmail, -Q[reason] without -q works on the queue (every normal item).
  // Only with recipients or -t does it queue the submitted message quarantined.
  const submits = args.recipients.length > 0 || args.readRecipients;
  if (args.quarantine !== undefined && !modeGiven && args.mode === 'deliver' && !submits) args.mode = 'queue-run';
  return args;
}

function applyFlag(args: CliArgs, flag: string, value: string): void {
  switch (flag) {
    case 'b': {
      const mode = MODES[value[0] ?? ''];
      if (!mode) throw new ExitError(`invalid operation mode -b${value}; see posthorn --help`, EX_USAGE);
      args.mode = mode;
      return;
    }
    case 'C':
      args.configFile = value;
      return;
    case 'O':
      args.overrides.push(splitOption(value));
      return;
    case 'M':
      defineMacro(args, value);
      return;
    case 'o':
      if (value[0] === 'M') {
        defineMacro(args, value.slice(1));
        return;
      }
      checkShortOption(value);
      if (value[0] === 'i') args.ignoreDots = value.length === 1 || /^[tTyY]/.test(value.slice(1));
      args.shortOptions.push({ letter: value[0], value: value.slice(1) });
      return;
    case 't':
      args.readRecipients = true;
      return;
    case 'i':
      args.ignoreDots = true;
      return;
    case 'f':
    case 'r':
      args.sender = value;
      return;
    case 'F':
      args.fullName = value;
      return;
    case 'q':
      parseQueueFlag(args, value);
      return;
    case 'Q':
      args.quarantine = value;
      return;
    case 'd':
      args.debugFlags = [...(args.debugFlags ?? []), value];
      return;
    case 'D':
      if (args.debugFlags !== undefined) throw new ExitError('-D file must be before -d', EX_USAGE);
      args.debugFile = value;
      return;
    case 'X':
      args.transcriptFile = value;
      return;
    case 'v':
      args.verbose = true;
      return;
    case 'B':
      applyBodyFlag(args.dsn, value);
      return;
    case 'N':
      applyNotifyFlag(args.dsn, value);
      return;
    case 'R':
      applyRetFlag(args.dsn, value);
      return;
    case 'V':
      applyEnvidFlag(args.dsn, value);
      return;
    // Accepted for compatibility and ignored: debug flags, hop count, tag, and
    // historical flags that sendmail 8 also ignores.
    case 'h':
    case 'L':
    case 'p':
    case 'e':
    case 'A':
    case 'G':
    case 'U':
    case 'm':
    case 'n':
    case 's':
    case 'c':
    case 'I':
      return;
    default:
      throw new ExitError(`unknown option -${flag}; see posthorn --help`, EX_USAGE);
  }
}

/**
 * Takes sendmail's -Mxvalue (or -oMxvalue): the macro x, or {name} for a long
 * name, set to the rest of the word for this message.
 */
function defineMacro(args: CliArgs, word: string): void {
  const long = /^\{[A-Za-z0-9_]+\}/.exec(word);
  const name = long ? long[0] : word[0];
  if (name === undefined || (!long && !/^[A-Za-z0-9_]$/.test(name))) {
    // sendmail exits with EX_SOFTWARE here ("Name required for macro/class").
    throw new ExitError(`invalid macro name in -M${word.replace(/[^\x20-\x7e]/g, '?')}: give a letter or {name}, e.g. -MrUUCP`, EX_SOFTWARE);
  }
  const value = word.slice(name.length);
  if (/[\r\n]/.test(value)) throw new ExitError(`invalid value for macro ${name}: it contains a line break`, EX_USAGE);
  args.macros.set(name, value);
}

/**
 * Rejects -o without a letter, or with a letter that names no option. sendmail
 * 8.17 prints "readcf: unknown option name 0x21" for -o!x and exits 70
 * (EX_SOFTWARE), but the mistake is in the command line, so this exits 64.
 */
function checkShortOption(value: string): void {
  if (value === '') throw new ExitError('option -o requires a letter and a value', EX_USAGE);

  const letter = value[0];
  if (optionByShort(letter) !== undefined) return;
  const printable = /^[\x21-\x7e]$/.test(letter) ? letter : `0x${letter.charCodeAt(0).toString(16)}`;
  // NOTE: sendmail's letter g (default group) is not supported.
  const word = `-o${value}`.replace(/[^\x20-\x7e]/g, '?');
  throw new ExitError(`unknown option letter ${printable} in ${word}. Options without a letter are set with -O Name=value.`, EX_USAGE);
}

function splitOption(text: string): { name: string; value: string } {
  const eq = text.indexOf('=');
  if (eq < 0) return { name: text.trim(), value: '' };
  return { name: text.slice(0, eq).trim(), value: text.slice(eq + 1).trim() };
}

/** -q, -q15m, -qI<id>, -q!R<rcpt>, -qS<sender>, -qQ[reason], -qf, -qp[time]. */
function parseQueueFlag(args: CliArgs, value: string): void {
  args.queueRun = true;
  if (value === '') return;
  if (value === 'f') {
    args.queueForeground = true;
    return;
  }
  if (value === 'L') {
    args.queueLost = true;
    return;
  }

  let negate = false;
  let text = value;
  if (text.startsWith('!')) {
    negate = true;
    text = text.slice(1);
  }
  const kind = text[0];
  if (kind === 'I' || kind === 'R' || kind === 'S' || kind === 'Q') {
    args.queueSelectors.push({ kind, negate, value: text.slice(1) });
    return;
  }
  if (negate) throw new ExitError(`Can not use -q!${text}`, EX_USAGE);
  if (kind === 'p') {
    args.queuePersistent = true;
    text = text.slice(1) || '1s';
  }

  try {
    args.queueInterval = parseDuration(text, 'm');
  } catch {
    throw new ExitError(`invalid queue interval "${value}" for -q; use e.g. -q15m or -q1h`, EX_USAGE);
  }
}

export const USAGE = `Usage: posthorn [flags] [recipients...]

Modes:
  -bm           read a message from standard input and deliver it (default)
  -bd           run as a daemon in the background
  -bD           run as a daemon in the foreground
  -bs           speak SMTP on standard input and output
  -bp           print the queue (also when invoked as mailq)
  -bh, -bH      print or purge the host status (hoststat, purgestat): none is kept
  -bP           print the effective configuration, one option per line
  -bt           address test mode: /parse address, /map name key, $=X, $X
  --to-sendmail-queue   rewrite the queue in sendmail's format, to go back to sendmail
  -q            run the queue once; -q<time> (e.g. -q15m) every <time>
  -qI<s> -qR<s> -qS<s>   only queue ids / recipients / senders containing s
                (-q!I<s> etc. for "not containing")

Flags:
  -C <file>     read this .mc or .cf file instead of /etc/mail/sendmail.mc
  -O Name=value set an option (wins over the configuration file)
  -o<c><value>  set an option by its one-letter name, e.g. -odq
  -t            take recipients from To:, Cc: and Bcc:; Bcc: is removed
  -i, -oi       a line with a single "." does not end the message
  -f <addr>     envelope sender (also -r)
  -F <name>     full name of the sender for From:
  -N <list>     DSN NOTIFY of every recipient: never, or some of success,failure,delay
  -R full|hdrs  DSN RET: return the whole message or only its headers in a bounce
  -V <envid>    DSN ENVID, in xtext form
  -B 7BIT|8BITMIME  body type, as BODY= over SMTP
  -v            verbose: deliver at once and show the dialogue with each next hop
  -M<x><value>  set macro x (or {name}) for this message, e.g. -MrUUCP -Msuucp.example; also -oM
  -d<flags>     debug output, e.g. -d0.1 (written to stdout, or to the -D file)
  -D <file>     append debug output to <file>; must come before -d
  -X <file>     append a transcript of every SMTP session to <file>
  -Q[reason]    with -q selectors: quarantine the selected items; -Q alone releases them
  -qQ[s] -q!Q<s>  only quarantined items (whose reason contains / lacks s)
  -qf           run the queue once in the foreground; -qp[<time>] persistent runner
  --help        this text
  --version     print the version

Exit codes follow sysexits.h (64 usage, 65 data error, 75 temporary failure, 78 configuration error).
`;
