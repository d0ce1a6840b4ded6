// makemap: reads a map's text source on stdin and writes its compiled form,
// with sendmail's arguments: `makemap hash /etc/mail/access < /etc/mail/access`
// writes /etc/mail/access.db. The compiled file is in cdb format (see
// src/maps/cdb.ts) and replaces the old one atomically. When the source has an
// error, every error is printed with its line number and the old compiled map
// is left in place.

import * as fs from 'node:fs';
import { CdbReader, writeCdbFile } from '../maps/cdb';
import { COMPILED_TYPES, compiledPath } from '../maps/compiled';
import { EX_CANTCREAT, EX_DATAERR, EX_NOINPUT, EX_OK, EX_USAGE } from './sysexits';

export const MAKEMAP_USAGE =
  'Usage: makemap [-C cffile] [-N] [-c cachesize] [-D commentchar] [-d] [-e] [-f] [-l] [-o] [-r] [-s] [-t delimiter] [-u] [-v] type mapname';

export interface MakemapOptions {
  type: string;
  mapName: string;
  /** -N: store keys and values with a trailing NUL byte. */
  includeNul: boolean;
  /** -D: the comment character (default "#"). */
  commentChar: string;
  /** -d: allow duplicate keys (the first one wins on lookup). */
  allowDuplicates: boolean;
  /** -e: allow an empty value. */
  allowEmptyValue: boolean;
  /** -f: keep the case of keys instead of folding them to lower case. */
  keepCase: boolean;
  /** -l: list the supported types. */
  listTypes: boolean;
  /** -o: add to the existing map instead of replacing it. */
  append: boolean;
  /** -r: a later key replaces an earlier one instead of being an error. */
  replace: boolean;
  /** -t: the key/value delimiter instead of whitespace. */
  delimiter?: string;
  /** -u: print the compiled map instead of writing it. */
  unmap: boolean;
  /** -v: print each entry as it is added. */
  verbose: boolean;
}

export interface MakemapIo {
  stdin: () => string;
  stdout: (text: string) => void;
  stderr: (text: string) => void;
}

/** Parses makemap's arguments; throws an Error with the usage text when they are invalid. */
export function parseMakemapArgs(argv: string[]): MakemapOptions {
  const opts: MakemapOptions = {
    type: '',
    mapName: '',
    includeNul: false,
    commentChar: '#',
    allowDuplicates: false,
    allowEmptyValue: false,
    keepCase: false,
    listTypes: false,
    append: false,
    replace: false,
    unmap: false,
    verbose: false,
  };
  const withValue = new Set(['C', 'D', 'c', 't']);
  const rest: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    if (arg === '--') {
      rest.push(...argv.slice(i + 1));
      break;
    }
    if (!arg.startsWith('-') || arg === '-') {
      rest.push(arg);
      continue;
    }
    for (let j = 1; j < arg.length; j++) {
      const letter = arg[j];
      if (withValue.has(letter)) {
        const value = j + 1 < arg.length ? arg.slice(j + 1) : argv[++i];
        if (value === undefined) throw new Error(`option -${letter} requires a value\n${MAKEMAP_USAGE}`);
        if (letter === 'D') opts.commentChar = value[0] ?? '#';
        if (letter === 't') opts.delimiter = value[0];
        break;
      }
      switch (letter) {
        case 'N': opts.includeNul = true; break;
        case 'd': opts.allowDuplicates = true; break;
        case 'e': opts.allowEmptyValue = true; break;
        case 'f': opts.keepCase = true; break;
        case 'l': opts.listTypes = true; break;
        case 'o': opts.append = true; break;
        case 'r': opts.replace = true; break;
        case 's': break;
        case 'u': opts.unmap = true; break;
        case 'v': opts.verbose = true; break;
        default: throw new Error(`unknown option -${letter}\n${MAKEMAP_USAGE}`);
      }
    }
  }
  if (opts.listTypes) return opts;
  if (rest.length !== 2) throw new Error(MAKEMAP_USAGE);
  opts.type = rest[0].toLowerCase();
  opts.mapName = rest[1];
  return opts;
}

export interface ParsedMakemapSource {
  entries: Map<string, string[]>;
  /** One message per bad line: "<mapname>:<line>: <problem>". */
  errors: string[];
}

/** A line that starts with white space (C's isspace(): space, tab, VT, FF, CR) continues the previous value. */
const LEADING_BLANK = /^[ \t\v\f\r]/;
/** Key up to the first white space, then the value: any bytes, CR included. */
const KEY_VALUE = /^([^ \t\v\f\r]+)(?:[ \t\v\f\r]+([\s\S]*))?$/;

/**
 * Parses the text source as makemap reads it: "key<whitespace>value" (or the
 * -t delimiter), comment lines, blank lines, and lines starting with
 * whitespace that continue the previous value.
 */
export function parseMakemapSource(text: string, opts: MakemapOptions): ParsedMakemapSource {
  const entries = new Map<string, string[]>();
  const errors: string[] = [];
  let lastKey: string | undefined;
  const where = (n: number): string => `${opts.mapName}:${n}`;

  text.split('\n').forEach((raw, index) => {
    const n = index + 1;
    const line = raw.replace(/\r$/, '');
    if (line.trim() === '' || line.startsWith(opts.commentChar)) return;

    if (opts.delimiter === undefined && LEADING_BLANK.test(line)) {
      if (lastKey === undefined) {
        errors.push(`${where(n)}: continuation line without a key`);
        return;
      }
      const values = entries.get(lastKey)!;
      values[values.length - 1] = `${values[values.length - 1]} ${line.trim()}`;
      return;
    }

    let key: string;
    let value: string;
    if (opts.delimiter !== undefined) {
      const at = line.indexOf(opts.delimiter);
      key = at < 0 ? line : line.slice(0, at);
      value = at < 0 ? '' : line.slice(at + 1);
    } else {
      const m = KEY_VALUE.exec(line);
      if (m === null) {
        errors.push(`${where(n)}: malformed line`);
        return;
      }
      key = m[1];
      value = (m[2] ?? '').trim();
    }
    if (key === '') {
      errors.push(`${where(n)}: missing key`);
      return;
    }
    if (value === '' && !opts.allowEmptyValue) {
      errors.push(`${where(n)}: missing value for key ${key}`);
      return;
    }
    if (!opts.keepCase) key = key.toLowerCase();

    const existing = entries.get(key);
    if (existing && opts.replace) {
      existing.splice(0, existing.length, value);
    } else if (existing && opts.allowDuplicates) {
      existing.push(value);
    } else if (existing) {
      errors.push(`${where(n)}: duplicate key ${key} (use -r to replace it)`);
      return;
    } else {
      entries.set(key, [value]);
    }
    lastKey = key;
  });
  return { entries, errors };
}

function encode(text: string, includeNul: boolean): Buffer {
  return Buffer.from(includeNul ? `${text}\0` : text, 'latin1');
}

/** Runs makemap and returns its exit code (sysexits.h). */
export function runMakemap(argv: string[], io: MakemapIo): number {
  let opts: MakemapOptions;
  try {
    opts = parseMakemapArgs(argv);
  } catch (err) {
    io.stderr(`makemap: ${(err as Error).message}\n`);
    return EX_USAGE;
  }
  if (opts.listTypes) {
    io.stdout('hash\nbtree\ncdb\n');
    return EX_OK;
  }
  if (!COMPILED_TYPES.has(opts.type)) {
    io.stderr(`makemap: unknown database type ${opts.type}; supported types: hash, btree, cdb\n`);
    return EX_USAGE;
  }
  const file = compiledPath(opts.mapName);

  if (opts.unmap) return unmap(file, opts, io);

  const parsed = parseMakemapSource(io.stdin(), opts);
  if (parsed.errors.length > 0) {
    for (const e of parsed.errors) io.stderr(`makemap: ${e}\n`);
    io.stderr(`makemap: ${file} not changed because of ${parsed.errors.length} error(s) in the source\n`);
    return EX_DATAERR;
  }

  const records: [Buffer, Buffer][] = [];
  const seen = new Set<string>();
  for (const [key, values] of parsed.entries) {
    for (const value of values) {
      if (opts.verbose) io.stdout(`key=<${key}>, val=<${value}>\n`);
      records.push([encode(key, opts.includeNul), encode(value, opts.includeNul)]);
    }
    seen.add(key);
  }
  if (opts.append) {
    try {
      for (const [key, value] of CdbReader.open(file).entries()) {
        const text = key.toString('latin1').replace(/\0$/, '');
        if (!seen.has(text)) records.push([key, value]);
      }
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') {
        io.stderr(`makemap: cannot read ${file} to add to it: ${(err as Error).message}\n`);
        return EX_DATAERR;
      }
    }
  }

  try {
    writeCdbFile(file, records);
  } catch (err) {
    io.stderr(`makemap: cannot write ${file}: ${(err as Error).message}\n`);
    return EX_CANTCREAT;
  }
  return EX_OK;
}

function unmap(file: string, opts: MakemapOptions, io: MakemapIo): number {
  let reader: CdbReader;
  try {
    reader = CdbReader.open(file);
  } catch (err) {
    io.stderr(`makemap: cannot open ${file}: ${(err as Error).message}\n`);
    return EX_NOINPUT;
  }
  const separator = opts.delimiter ?? '\t';
  for (const [key, value] of reader.entries()) {
    const k = key.toString('latin1').replace(/\0$/, '');
    const v = value.toString('latin1').replace(/\0$/, '');
    io.stdout(`${k}${separator}${v}\n`);
  }
  return EX_OK;
}

/** Entry point of bin/makemap and bin/posthorn-makemap. */
export function main(argv: string[]): void {
  const code = runMakemap(argv, {
    stdin: () => fs.readFileSync(0, 'latin1'),
    stdout: (text) => process.stdout.write(text),
    stderr: (text) => process.stderr.write(text),
  });
  process.exitCode = code;
}
