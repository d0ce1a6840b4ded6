// The alias database: every file named by AliasFile, looked up in order (the
// first file that has a name wins, as in sendmail's "aliases.files" sequence).
// Each file is read from its text form and read again when it changes.

import * as fs from 'node:fs';
import { readListFileSync } from './regular-file';

import type { Config } from '../config/types';
import { parseAliases, type ParsedAliases } from './parse';
import { aliasFileProblem, dontBlameSendmail } from './safety';

export interface AliasSource {
  /** Map class as written before the colon ("hash", "text"), or "implicit". */
  type: string;
  path: string;
}

export interface AliasMatch {
  value: string;
  file: string;
  line: number;
}

/**
 * Parses the AliasFile option: a comma-separated list of files, each with an
 * optional map class prefix ("hash:/etc/mail/aliases"). Map flags before the
 * path ("hash:-o /etc/mail/aliases") are skipped.
 */
export function aliasSources(config: Config): AliasSource[] {
  const value = config.options.get('AliasFile');
  const specs = Array.isArray(value) ? value.map(String) : typeof value === 'string' ? value.split(',') : [];
  const sources: AliasSource[] = [];
  for (const raw of specs) {
    const spec = raw.trim();
    if (spec === '') continue;
    const m = /^([A-Za-z0-9_]+):(.*)$/.exec(spec);
    const type = m ? m[1].toLowerCase() : 'implicit';
    const rest = (m ? m[2] : spec).trim().split(/\s+/);
    const file = rest.filter((w) => !w.startsWith('-')).pop() ?? '';
    if (file !== '') sources.push({ type, path: file });
  }
  return sources;
}

interface LoadedFile {
  stamp: string;
  parsed: ParsedAliases;
}

export class AliasDatabase {
  private readonly files = new Map<string, LoadedFile>();

  constructor(
    readonly sources: AliasSource[],
    private readonly dbs: Set<string>,
    private readonly onError: (message: string) => void = () => undefined,
  ) {}

  static fromConfig(config: Config, onError?: (message: string) => void): AliasDatabase {
    return new AliasDatabase(aliasSources(config), dontBlameSendmail(config), onError);
  }

  /** Looks up a local name (compared in lower case); undefined when no file has it. */
  lookup(name: string): AliasMatch | undefined {
    const key = name.toLowerCase();
    for (const source of this.sources) {
      const parsed = this.load(source.path);
      const value = parsed?.entries.get(key);
      if (value !== undefined) return { value, file: source.path, line: parsed!.lines.get(key) ?? 0 };
    }
    return undefined;
  }

  private load(file: string): ParsedAliases | undefined {
    let stamp: string;
    try {
      const st = fs.statSync(file);
      stamp = `${st.mtimeMs}:${st.size}:${st.ino}`;
    } catch {
      this.files.delete(file);
      return undefined;
    }
    const loaded = this.files.get(file);
    if (loaded && loaded.stamp === stamp) return loaded.parsed;

    const problem = aliasFileProblem(file, this.dbs);
    if (problem !== undefined) {
      this.onError(`alias file ${file} not used: ${problem}`);
      this.files.delete(file);
      return undefined;
    }
    let text: string;
    try {
      text = readListFileSync(file);
    } catch (err) {
      this.onError(`alias file ${file} not used: ${(err as Error).message}`);
      this.files.delete(file);
      return undefined;
    }
    const parsed = parseAliases(text, file);
    for (const e of parsed.errors) this.onError(e);
    this.files.set(file, { stamp, parsed });
    return parsed;
  }
}
