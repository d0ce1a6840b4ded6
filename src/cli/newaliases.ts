// newaliases and -bi: reads every alias file named by AliasFile, reports each
// bad line with its file and line number, and writes the good entries to the
// compiled form beside the file (<file>.db, the cdb format Posthorn's maps
// read), as sendmail rebuilds aliases.db. Posthorn's delivery reads the text
// file itself, so the compiled form is for tools that look for aliases.db.


import { aliasSources } from '../aliases/database';
import { readListFileSync } from '../aliases/regular-file';
import { parseAliases } from '../aliases/parse';
import { aliasFileProblem, dontBlameSendmail } from '../aliases/safety';
import type { Config } from '../config/types';
import { writeCdbFile } from '../maps/cdb';
import { compiledPath } from '../maps/compiled';
import { EX_CANTCREAT, EX_OK, EX_OSFILE, EX_SOFTWARE } from './sysexits';

/** Map classes whose compiled file newaliases writes; "text" aliases are used as they are. */
const COMPILED_ALIAS_TYPES = new Set(['implicit', 'hash', 'btree', 'dbm', 'cdb']);

export interface NewaliasesOutput {
  out: (line: string) => void;
  err: (line: string) => void;
}

export function runNewaliases(config: Config, io: NewaliasesOutput): number {
  const dbs = dontBlameSendmail(config);
  let status = EX_OK;
  for (const source of aliasSources(config)) {
    let text: string;
    try {
      text = readListFileSync(source.path);
    } catch (err) {
      io.err(`newaliases: cannot open ${source.path}: ${(err as Error).message.replace(/^[A-Z]+: /, '')}`);
      status = EX_OSFILE;
      continue;
    }
    const problem = aliasFileProblem(source.path, dbs);
    if (problem !== undefined) {
      io.err(`newaliases: ${source.path}: ${problem}; set DontBlameSendmail to use it`);
      status = EX_OSFILE;
      continue;
    }
    const parsed = parseAliases(text, source.path);
    // As sendmail 8.17 prints them, each bad line goes to standard output
    // before the summary. A line that was left out makes the exit status 70
    // (EX_SOFTWARE), while a warning alone (a duplicate name) keeps 0. Control
    // bytes show as '?' because a damaged file's bytes could drive the terminal.
    for (const e of parsed.errors) {
      io.out(e.replace(/[\x00-\x08\x0b-\x1f\x7f]/g, '?'));
      if (!/\.\.\. Warning: /.test(e) && status === EX_OK) status = EX_SOFTWARE;
    }
    if (COMPILED_ALIAS_TYPES.has(source.type)) {
      const entries: Array<[Buffer, Buffer]> = [...parsed.entries].map(([k, v]) => [Buffer.from(k, 'latin1'), Buffer.from(v, 'latin1')]);
      // sendmail adds the "@" entry last so that readers know the rebuild finished.
      entries.push([Buffer.from('@'), Buffer.from('@')]);
      try {
        writeCdbFile(compiledPath(source.path), entries, 0o644);
      } catch (err) {
        io.err(`newaliases: Cannot create database for alias file ${source.path}: ${(err as Error).message}`);
        status = EX_CANTCREAT;
        continue;
      }
    }
    io.out(`${source.path}: ${parsed.count} aliases, longest ${parsed.longest} bytes, ${parsed.bytes} bytes total`);
  }
  return status;
}
