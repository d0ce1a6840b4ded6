// Alias expansion at delivery time, as sendmail's recipient(), alias(),
// include() and forward() do it: virtusertable, the alias files, :include:
// files, .forward files, |program and /file targets with their safety rules,
// owner- aliases, duplicate suppression and loop detection. The result for one
// recipient is a list of final targets or an error for the recipient.

import * as nodePath from 'node:path';
import type { Config } from '../config/types';
import { forwardCandidates } from '../delivery/forward';
import { mailertableRoute } from '../delivery/mailertable';
import { isOwnName } from '../delivery/router';
import { virtuserRewrite } from '../delivery/virtusertable';
import { AliasDatabase } from './database';
import { splitAddressList } from './parse';
import { userByName, userByUid } from './passwd';
import { checkIncludeFile, dontBlameSendmail } from './safety';
import { readListFileSync } from './regular-file';

export type Target =
  | { kind: 'local'; user: string }
  | { kind: 'remote'; address: string }
  | { kind: 'program'; command: string; ctladdr?: string }
  | { kind: 'file'; path: string; ctladdr?: string };

export interface ExpandedTarget {
  target: Target;
  /** Envelope sender from an owner- alias of a list this target came from. */
  owner?: string;
}

export interface ExpandError {
  status: 'permfail' | 'tempfail';
  dsn: string;
  /** The reply sendmail gives, e.g. "550 5.7.1 Cannot mail directly to programs". */
  reply: string;
  /** The address that failed, when it is not the recipient itself, e.g. ":include:/etc/mail/list". */
  address?: string;
  /** The envelope sender from an owner- alias of the list the failed address is in. */
  owner?: string;
  /** Set for a name on an alias loop without an account: it bounces only beside other targets. */
  loop?: boolean;
}

export interface Expansion {
  targets: ExpandedTarget[];
  /** Set when the recipient itself fails; `targets` is then empty. */
  error?: ExpandError;
  /** False when the address is delivered as it is (no alias, no .forward, no table). */
  changed: boolean;
  /** One line per step, for -bv and the log: "aliased to ...", "forwarding to ...". */
  trace: string[];
  /** Every final target as the walk met it, duplicates included; filled only for EXPN's order. */
  occurrences: Target[];
  /** Failures below the top level, in the order met. */
  nested: ExpandError[];
}

/** Source of an address: the top level (the envelope), an alias, or a file. */
interface Origin {
  /** The address whose expansion produced this one; undefined at the top level. */
  parent?: string;
  /** Targets may not be programs or files (an unsafe :include: or .forward). */
  unsafe: boolean;
  /** Controlling user for programs and files. */
  ctladdr?: string;
}

interface Walk {
  targets: ExpandedTarget[];
  seen: Set<string>;
  error?: ExpandError;
  /** Failures below the top level (a list member, an :include: file), in order. */
  nested: ExpandError[];
  /** Every target met, duplicates included, when the caller requests them (EXPN). */
  occurrences?: Target[];
  /** Local names and :include: files already expanded in this walk; each is expanded once. */
  expanded: Set<string>;
  trace: string[];
  changed: boolean;
}

const DEFAULT_MAX_RECURSION = 10;

function targetKey(t: Target): string {
  switch (t.kind) {
    case 'local':
      return `local:${t.user.toLowerCase()}`;
    case 'remote':
      return `remote:${t.address.toLowerCase()}`;
    case 'program':
      return `program:${t.command}`;
    case 'file':
      return `file:${t.path}`;
  }
}

function errnoText(err: string): string {
  return err.length > 0 ? err[0].toUpperCase() + err.slice(1) : err;
}

export class AliasExpander {
  readonly aliases: AliasDatabase;
  private readonly maxRecursion: number;
  private readonly dbs: Set<string>;

  constructor(
    private readonly config: Config,
    private readonly log: (message: string) => void = () => undefined,
    aliases?: AliasDatabase,
  ) {
    this.aliases = aliases ?? AliasDatabase.fromConfig(config, log);
    const max = config.options.get('MaxAliasRecursion');
    this.maxRecursion = typeof max === 'number' && max > 0 ? max : DEFAULT_MAX_RECURSION;
    this.dbs = dontBlameSendmail(config);
  }

  /**
   * Expands one envelope recipient. `withOccurrences` also lists every target
   * as met, repeats included, for EXPN's order; a delivery does not need it.
   */
  expand(address: string, withOccurrences = false): Expansion {
    const walk: Walk = { targets: [], seen: new Set(), nested: [], expanded: new Set(), trace: [], changed: false };
    if (withOccurrences) walk.occurrences = [];
    this.visit(address, 0, [], { unsafe: false }, walk, undefined);
    const { trace, nested } = walk;
    const occurrences = walk.occurrences ?? [];
    const failed = (error: ExpandError): Expansion => ({ targets: [], error, changed: true, trace, occurrences, nested });
    if (walk.error !== undefined) return failed(walk.error);
    // A temporary failure anywhere defers the whole recipient: delivering the
    // other members now would deliver them twice at the retry.
    const transient = nested.find((e) => e.status === 'tempfail');
    if (transient !== undefined) return failed(transient);
    // A member that fails for good while others expand is in `nested`; queue-expand.ts bounces it.
    const lasting = nested.filter((e) => e.loop !== true);
    if (walk.targets.length === 0 && lasting.length > 0) return failed(lasting[0]);
    if (walk.targets.length === 0) {
      return failed({ status: 'permfail', dsn: '5.4.6', reply: '554 5.4.6 aliasing/forwarding loop broken' });
    }
    return { targets: walk.targets, changed: walk.changed, trace, occurrences, nested };
  }

  private add(walk: Walk, target: Target, owner: string | undefined): void {
    walk.occurrences?.push(target);
    const key = targetKey(target);
    if (walk.seen.has(key)) return;
    walk.seen.add(key);
    walk.targets.push(owner === undefined ? { target } : { target, owner });
  }

  private fail(walk: Walk, origin: Origin, error: ExpandError, owner?: string): void {
    // An error below the top level is logged and the other list members are still delivered.
    if (origin.parent === undefined) walk.error ??= error;
    else {
      this.log(`${origin.parent}: ${error.reply}`);
      walk.trace.push(`${error.reply}`);
      // The list's owner gets the DSN of a member that fails, as other members' DSNs.
      walk.nested.push(owner === undefined ? error : { ...error, owner });
    }
  }

  private visit(raw: string, level: number, ancestry: string[], origin: Origin, walk: Walk, owner: string | undefined): void {
    const address = raw.trim();
    if (level > this.maxRecursion) {
      const reply = `554 5.4.6 aliasing/forwarding loop broken (${level} aliases deep; ${this.maxRecursion} max)`;
      walk.error ??= { status: 'permfail', dsn: '5.4.6', reply };
      return;
    }
    if (address.startsWith('|')) return this.program(address.slice(1).trim(), origin, walk, owner);
    if (address.startsWith('/')) return this.file(address, origin, walk, owner);
    if (/^:include:/i.test(address)) return this.include(address.slice(9).trim(), level, ancestry, origin, walk, owner);
    if (address.startsWith('\\')) {
      const user = address.slice(1).replace(/@.*$/, '');
      if (origin.parent !== undefined) walk.changed = true;
      return this.add(walk, { kind: 'local', user }, owner);
    }

    const at = address.lastIndexOf('@');
    const domain = at < 0 ? '' : address.slice(at + 1);
    const local = at < 0 ? address : address.slice(0, at);

    const virtual = domain === '' ? undefined : virtuserRewrite(address, this.config, this.log);
    if (virtual !== undefined) {
      walk.changed = true;
      if (virtual.kind === 'error') {
        return this.fail(walk, origin, { status: virtual.status, dsn: virtual.dsn, reply: virtual.reply, address }, owner);
      }
      walk.trace.push(`${address}... virtusertable ${virtual.key} => ${virtual.address}`);
      if (ancestry.includes(`virtual:${address.toLowerCase()}`)) return;
      return this.visit(virtual.address, level + 1, [...ancestry, `virtual:${address.toLowerCase()}`], { ...origin, parent: address }, walk, owner);
    }

    const unquoted = local.replace(/^"(.*)"$/, '$1');
    if ((domain === '' || isOwnName(domain, this.config)) && unquoted !== local && /^(\||\/|:include:)/i.test(unquoted)) {
      // A quoted local part such as "|/bin/sh"@host means the same as the bare target.
      return this.visit(unquoted, level, ancestry, origin, walk, owner);
    }
    if (domain !== '' && !isOwnName(domain, this.config)) {
      const table = mailertableRoute(domain, this.config, this.log);
      if (table?.kind === 'error') {
        walk.changed = true;
        return this.fail(walk, origin, { status: table.status, dsn: table.dsn, reply: table.reply, address }, owner);
      }
      if (table?.kind === 'local') {
        walk.changed = true;
        return this.local(table.user ?? local, level, ancestry, { ...origin, parent: address }, walk, owner);
      }
      if (origin.parent !== undefined) walk.changed = true;
      return this.add(walk, { kind: 'remote', address }, owner);
    }
    return this.local(local, level, ancestry, origin, walk, owner);
  }

  private local(localPart: string, level: number, ancestry: string[], origin: Origin, walk: Walk, owner: string | undefined): void {
    const name = localPart.replace(/^"(.*)"$/, '$1').toLowerCase();
    if (ancestry.includes(name)) {
      // A name that comes back in its own expansion is delivered to the mailbox of
      // the first account on the loop, as sendmail's self_reference() does.
      const loop = ancestry.slice(ancestry.indexOf(name));
      const account = loop.find((n) => userByName(n.split('+')[0]) !== undefined);
      if (account !== undefined) {
        this.add(walk, { kind: 'local', user: account }, owner);
        return;
      }

      // A loop without an account (self: self, root) has no mailbox, so sendmail bounces the name.
      const unknown: ExpandError = { status: 'permfail', dsn: '5.1.1', reply: '550 5.1.1 User unknown', address: name, loop: true };
      this.fail(walk, { ...origin, parent: origin.parent ?? name }, unknown, owner);
      return;
    }
    // As sendmail drops a repeated address before expanding it: a name reached
    // again (E1, "e1", e1@host) is not expanded again, so the work grows with
    // the number of names and not with the number of paths to them.
    if (walk.expanded.has(name)) return;
    walk.expanded.add(name);
    const plus = name.indexOf('+');
    const user = plus >= 0 ? name.slice(0, plus) : name;
    const detail = plus >= 0 ? name.slice(plus + 1) : '';
    const keys = plus >= 0 ? [name, `${user}+*`, user] : [name];
    for (const key of keys) {
      const match = this.aliases.lookup(key);
      if (match === undefined) continue;
      walk.changed = true;
      walk.trace.push(`${name}... aliased to ${match.value}`);
      const listOwner = this.ownerOf(key) ?? owner;
      const members = splitAddressList(match.value);
      const childOrigin: Origin = { parent: name, unsafe: false, ctladdr: undefined };
      for (const member of members) this.visit(member, level + 1, [...ancestry, name], childOrigin, walk, listOwner);
      return;
    }
    if (this.forward(user, detail, name, level, ancestry, origin, walk, owner)) return;
    if (origin.parent !== undefined) walk.changed = true;
    this.add(walk, { kind: 'local', user: name }, owner);
  }

  /** Returns the envelope sender for a list that has an owner- alias. */
  private ownerOf(name: string): string | undefined {
    const ownerName = name.startsWith('owner-') ? 'owner-owner' : `owner-${name}`;
    const match = this.aliases.lookup(ownerName);
    if (match === undefined) return undefined;
    const value = /[,:/|"]/.test(match.value) ? ownerName : match.value.trim();
    return value.includes('@') ? value : `${value}@${this.config.hostName}`;
  }

  private program(command: string, origin: Origin, walk: Walk, owner: string | undefined): void {
    if (origin.parent === undefined) {
      const reply = '550 5.7.1 Cannot mail directly to programs';
      return this.fail(walk, origin, { status: 'permfail', dsn: '5.7.1', reply, address: `|${command}` }, owner);
    }
    if (origin.unsafe) {
      const reply = `550 5.7.1 Address ${origin.parent} is unsafe for mailing to programs`;
      return this.fail(walk, origin, { status: 'permfail', dsn: '5.7.1', reply, address: `|${command}` }, owner);
    }
    walk.changed = true;
    this.add(walk, { kind: 'program', command, ctladdr: origin.ctladdr }, owner);
  }

  private file(path: string, origin: Origin, walk: Walk, owner: string | undefined): void {
    if (origin.parent === undefined) {
      const reply = '550 5.7.1 Cannot mail directly to files';
      return this.fail(walk, origin, { status: 'permfail', dsn: '5.7.1', reply, address: path }, owner);
    }
    if (origin.unsafe) {
      const reply = `550 5.7.1 Address ${origin.parent} is unsafe for mailing to files`;
      return this.fail(walk, origin, { status: 'permfail', dsn: '5.7.1', reply, address: path }, owner);
    }
    walk.changed = true;
    this.add(walk, { kind: 'file', path, ctladdr: origin.ctladdr }, owner);
  }

  private include(file: string, level: number, ancestry: string[], origin: Origin, walk: Walk, owner: string | undefined): void {
    if (origin.parent === undefined) {
      const reply = '550 5.7.1 Cannot mail directly to :include:s';
      return this.fail(walk, origin, { status: 'permfail', dsn: '5.7.1', reply, address: `:include:${file}` }, owner);
    }
    walk.changed = true;
    const key = `:include:${nodePath.resolve(file)}`;
    if (walk.expanded.has(key)) return;
    walk.expanded.add(key);
    const check = checkIncludeFile(file, { forwarding: false, dbs: this.dbs });
    if (check.refused !== undefined) {
      const text = errnoText(check.refused);
      const error: ExpandError = check.transient
        ? { status: 'tempfail', dsn: '4.2.4', reply: `451 4.2.4 Cannot open ${file}: ${text}`, address: `:include:${file}` }
        : { status: 'permfail', dsn: '5.2.4', reply: `550 5.2.4 Cannot open ${file}: ${text}`, address: `:include:${file}` };
      return this.fail(walk, origin, error, owner);
    }
    if (check.unsafe) this.log(`${file}: ${check.unsafeReason}, marked unsafe`);
    walk.trace.push(`including file ${file}`);
    const ctladdr = check.ownerUid === undefined ? origin.ctladdr : (userByUid(check.ownerUid)?.name ?? String(check.ownerUid));
    const childOrigin: Origin = { parent: origin.parent, unsafe: origin.unsafe || check.unsafe, ctladdr };
    this.readList(file, level, [...ancestry, `:include:${file}`], childOrigin, walk, owner);
  }

  private forward(user: string, detail: string, name: string, level: number, ancestry: string[], origin: Origin, walk: Walk, owner: string | undefined): boolean {
    for (const candidate of forwardCandidates(user, detail, this.config)) {
      const check = checkIncludeFile(candidate.path, { forwarding: true, dbs: this.dbs, userUid: candidate.userUid, userGids: candidate.userGids });
      if (check.refused !== undefined && check.transient) {
        // A .forward that may be readable later defers the mail: delivering to
        // the mailbox now would ignore where the user wants it.
        const reply = `451 4.2.4 Cannot open ${candidate.path}: ${errnoText(check.refused)}`;
        this.fail(walk, { ...origin, parent: origin.parent ?? name }, { status: 'tempfail', dsn: '4.2.4', reply }, owner);
        return true;
      }
      if (check.refused !== undefined) {
        if (!/no such file/i.test(check.refused)) this.log(`forward ${candidate.path}: ${errnoText(check.refused)}`);
        continue;
      }
      if (check.unsafe) this.log(`${candidate.path}: ${check.unsafeReason}, marked unsafe`);
      walk.changed = true;
      walk.trace.push(`forwarding to the list in ${candidate.path}`);
      // The user controls the targets; a name without an account has the file's owner instead, as an :include: file has.
      const ctladdr = userByName(user) !== undefined || check.ownerUid === undefined ? user : (userByUid(check.ownerUid)?.name ?? String(check.ownerUid));
      const childOrigin: Origin = { parent: name, unsafe: check.unsafe, ctladdr };
      const members = this.readList(candidate.path, level, [...ancestry, name], childOrigin, walk, owner);
      // An empty .forward delivers to the mailbox, as sendmail does when include() adds no address.
      if (members === 0) this.add(walk, { kind: 'local', user: name }, owner);
      return true;
    }
    return false;
  }

  /**
   * Reads an :include: or .forward file: each line is a comma-separated list,
   * "#" starts a comment line. Returns the number of members, or undefined when
   * the file could not be read.
   */
  private readList(file: string, level: number, ancestry: string[], origin: Origin, walk: Walk, owner: string | undefined): number | undefined {
    let text: string;
    try {
      text = readListFileSync(file);
    } catch (err) {
      const { code, message } = err as NodeJS.ErrnoException;
      // A FIFO or an oversized file stays so; any other read error may pass.
      if (code === 'ENOTREG' || code === 'EFBIG') {
        this.fail(walk, origin, { status: 'permfail', dsn: '5.2.4', reply: `550 5.2.4 Cannot open ${file}: ${message}` }, owner);
      } else {
        this.fail(walk, origin, { status: 'tempfail', dsn: '4.2.4', reply: `451 4.2.4 Cannot open ${file}: ${errnoText(message)}` }, owner);
      }
      return undefined;
    }
    let members = 0;
    for (const raw of text.split('\n')) {
      const line = raw.replace(/\r$/, '');
      if (line.trim() === '' || line.startsWith('#')) continue;
      for (const member of splitAddressList(line)) {
        members += 1;
        this.visit(member, level + 1, ancestry, origin, walk, owner);
      }
    }
    return members;
  }
}
