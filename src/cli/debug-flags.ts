// -d, -D and -X on the command line: set up the debug output and open the
// SMTP transcript file before the chosen mode runs.

import * as os from 'node:os';
import type { CliArgs } from './args';
import type { Config } from '../config/types';
import { DebugOutput, debugTrace, setDebugOutput } from '../log/debug';
import { setTranscriptFile, TranscriptFile } from '../log/transcript';
import { ExitError, EX_CANTCREAT } from './sysexits';

/** Installs the -d/-D debug output; `cannot open <file>` exits with EX_CANTCREAT. */
export function applyDebugFlags(args: CliArgs, version: string): void {
  if (args.debugFlags === undefined && args.debugFile === undefined) return;
  try {
    setDebugOutput(DebugOutput.create(args.debugFlags ?? [], args.debugFile));
  } catch (err) {
    throw new ExitError((err as Error).message, EX_CANTCREAT);
  }
  debugTrace(0, 1, `Version Posthorn ${version}`);
  debugTrace(0, 1, ` Compiled with: ${COMPILED_WITH}`);
}

/**
 * The compile options sendmail prints at -d0.1, limited to the ones whose
 * feature Posthorn has, for scripts that grep that line.
 */
const COMPILED_WITH = 'LOG MILTER NETINET NETINET6 PIPELINING STARTTLS';

/**
 * Writes sendmail's -d0.1 "SYSTEM IDENTITY" block once the configuration is
 * read: administrators run `sendmail -d0.1 -bv root` to see the names of the host.
 */
export function traceSystemIdentity(config: Config): void {
  const canonical = config.hostName;
  const dot = canonical.indexOf('.');
  const lines = [
    '',
    '============ SYSTEM IDENTITY (after readcf) ============',
    `      (short domain name) $w = ${dot < 0 ? canonical : canonical.slice(0, dot)}`,
    `  (canonical domain name) $j = ${canonical}`,
    `         (subdomain name) $m = ${dot < 0 ? '' : canonical.slice(dot + 1)}`,
    `              (node name) $k = ${os.hostname()}`,
    '========================================================',
    '',
  ];
  for (const line of lines) debugTrace(0, 1, line);
}

/** Opens the -X transcript file, or returns undefined without -X. */
export function openTranscript(args: CliArgs): TranscriptFile | undefined {
  if (args.transcriptFile === undefined) return undefined;
  try {
    const file = TranscriptFile.open(args.transcriptFile);
    // Outbound deliveries of this process are recorded in the same file.
    setTranscriptFile(file);
    return file;
  } catch (err) {
    throw new ExitError(`cannot open ${args.transcriptFile}: ${(err as Error).message}`, EX_CANTCREAT);
  }
}
