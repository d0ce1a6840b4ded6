// Collects what the .mc, .cf and -O readers find, in reading order, so that
// later settings replace earlier ones and -O overrides, applied last, win.

import type { DaemonSpec, FeatureSpec, MailerSpec, MailFilterSpec, OptionValue } from './types';
import { optionByName, type OptionDef } from './options';
import { resolveOptionName } from './resolve';
import { parseOptionValue } from './values';
import { parseDaemonSpec } from './daemon-options';
import { atLocation, ConfigError, formatPlace, type Location } from './errors';

// Timeouts that also set their per-class forms, as sendmail's settimeout() does.
const TIMEOUT_FAMILIES: Record<string, string[]> = {
  'Timeout.queuereturn': ['normal', 'urgent', 'non-urgent', 'dsn'],
  'Timeout.queuewarn': ['normal', 'urgent', 'non-urgent', 'dsn'],
  'Timeout.resolver.retrans': ['first', 'normal'],
  'Timeout.resolver.retry': ['first', 'normal'],
};

// The old `Timeout=<time>` form sets these.
const OLD_READ_TIMEOUTS = ['mail', 'rcpt', 'datainit', 'datablock', 'datafinal', 'command'];

export class ConfigBuilder {
  readonly values = new Map<string, OptionValue>();
  readonly origins = new Map<string, string>();
  readonly daemons: DaemonSpec[] = [];
  readonly classes = new Map<string, Set<string>>();
  readonly macros = new Map<string, string>();
  readonly features: FeatureSpec[] = [];
  readonly mailers: MailerSpec[] = [];
  readonly mailFilters: MailFilterSpec[] = [];
  readonly notices: string[] = [];
  /** m4 variables a .mc file defined that no option holds, e.g. LOCAL_MAILER_PATH. */
  readonly variables = new Map<string, string>();

  /** True while -O overrides are applied: their first DaemonPortOptions replaces the file's. */
  private inOverrides = false;
  private overrideReplacedDaemons = false;

  beginOverrides(): void {
    this.inOverrides = true;
  }

  /** Set an option by its .cf name, which may be abbreviated and in any case. */
  setOption(name: string, raw: string, where: Location): void {
    const resolved = atLocation(where, name, () => resolveOptionName(name));
    if (resolved.abbreviationNotice !== undefined) {
      this.notice(where, resolved.abbreviationNotice);
    }
    this.setOptionDef(resolved.def, raw, where);
  }

  /** Set an option already looked up, e.g. by its m4 name. */
  setOptionDef(def: OptionDef, raw: string, where: Location): void {
    rejectLineBreak(def.name, raw, where);
    atLocation(where, def.name, () => this.apply(def, raw, where));
  }

  /** Define a sendmail macro; `S` (the smart host) also sets SmartHost. */
  defineMacro(name: string, value: string, where: Location): void {
    rejectLineBreak(`macro ${name}`, value, where);
    this.macros.set(name, value);
    if (name === 'S') {
      this.storeValue('SmartHost', value, originOf(where));
    }
  }

  addClassWords(name: string, words: Iterable<string>): void {
    let members = this.classes.get(name);
    if (members === undefined) {
      members = new Set();
      this.classes.set(name, members);
    }
    for (const word of words) {
      if (word !== '') {
        members.add(word);
      }
    }
  }

  notice(where: Location, text: string): void {
    this.notices.push(formatPlace(where) + text);
  }

  private apply(def: OptionDef, raw: string, where: Location): void {
    switch (def.name) {
      case 'Timeout':
        this.applyOldTimeouts(raw, where);
        return;
      case 'QueueTimeout':
        this.applyQueueTimeout(raw, where);
        return;
      case 'MinFreeBlocks':
        this.applyMinFreeBlocks(def, raw, where);
        return;
      case 'DaemonPortOptions':
        this.addDaemon(raw, where);
        return;
      case 'ClientPortOptions':
        this.appendRaw(def.name, raw.trim(), where);
        return;
      case 'PrivacyOptions':
        this.addPrivacyWords(def, raw, where);
        return;
    }

    this.storeValue(def.name, parseOptionValue(def, raw), originOf(where));
    for (const sub of TIMEOUT_FAMILIES[def.name] ?? []) {
      const member = optionByName(`${def.name}.${sub}`);
      if (member !== undefined) {
        this.storeValue(member.name, parseOptionValue(member, raw), originOf(where));
      }
    }
    if (def.name === 'SmartHost') {
      this.macros.set('S', raw.trim());
    }
  }

  private storeValue(name: string, value: OptionValue, origin: string): void {
    this.values.set(name, value);
    this.origins.set(name, origin);
  }

  private appendRaw(name: string, raw: string, where: Location): void {
    const current = this.values.get(name);
    const list = Array.isArray(current) ? current : [];
    this.storeValue(name, [...list, raw], originOf(where));
  }

  private addDaemon(raw: string, where: Location): void {
    if (this.inOverrides && !this.overrideReplacedDaemons) {
      this.daemons.length = 0;
      this.values.delete('DaemonPortOptions');
      this.overrideReplacedDaemons = true;
    }
    this.daemons.push(parseDaemonSpec(raw, this.daemons.length));
    this.appendRaw('DaemonPortOptions', raw.trim(), where);
  }

  // sendmail ORs PrivacyOptions together rather than replacing them.
  private addPrivacyWords(def: OptionDef, raw: string, where: Location): void {
    const words = parseOptionValue(def, raw) as string[];
    const current = this.values.get(def.name);
    const merged = new Set(Array.isArray(current) ? current : []);
    for (const word of words) {
      merged.add(word);
    }
    this.storeValue(def.name, [...merged], originOf(where));
  }

  private applyOldTimeouts(raw: string, where: Location): void {
    for (const item of raw.split(',')) {
      const text = item.trim();
      if (text === '') {
        continue;
      }
      if (/^\d/.test(text)) {
        for (const sub of OLD_READ_TIMEOUTS) {
          this.setTimeout(sub, text, where);
        }
        continue;
      }
      const separator = text.search(/[:=]/);
      if (separator < 0) {
        throw new ConfigError(where, text, `invalid timeout setting "${text}" (use name=time)`);
      }
      this.setTimeout(text.slice(0, separator).trim(), text.slice(separator + 1), where);
    }
  }

  private setTimeout(sub: string, value: string, where: Location): void {
    const def = optionByName(`Timeout.${sub}`);
    if (def === undefined) {
      throw new ConfigError(where, sub, `invalid timeout ${sub}`);
    }
    this.apply(def, value, where);
  }

  // QueueTimeout=<return>[/<warn>]
  private applyQueueTimeout(raw: string, where: Location): void {
    const [giveUp, warn] = raw.split('/', 2);
    if (warn !== undefined) {
      this.setTimeout('queuewarn', warn, where);
    }
    this.setTimeout('queuereturn', giveUp, where);
  }

  // MinFreeBlocks=<blocks>[/<MaxMessageSize>], the old combined form.
  private applyMinFreeBlocks(def: OptionDef, raw: string, where: Location): void {
    const [blocks, size] = raw.split('/', 2);
    if (size !== undefined) {
      this.setOption('MaxMessageSize', size, where);
    }
    this.storeValue(def.name, parseOptionValue(def, blocks), originOf(where));
  }
}

export function originOf(where: Location): string {
  return where.line > 0 ? `${where.file}:${where.line}` : where.file;
}

/**
 * Rejects a value with a CR or LF. In a sendmail.cf it would end the line.
 * Here it would reach replies and headers ($j in the greeting) as a line of its own.
 */
function rejectLineBreak(label: string, value: string, where: Location): void {
  if (/[\r\n]/.test(value)) throw new ConfigError(where, label, `${label}: invalid value, it contains a line break`);
}
