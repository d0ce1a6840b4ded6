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
  const names = systemIdentity(config);
  const lines = [
    '',
    '============ SYSTEM IDENTITY (after readcf) ============',
    `      (short domain name) $w = ${names.w}`,
    `  (canonical domain name) $j = ${names.j}`,
    `         (subdomain name) $m = ${names.m}`,
    `              (node name) $k = ${names.k}`,
    '========================================================',
    '',
  ];
  for (const line of lines) debugTrace(0, 1, line);
}

/** Returns the host's names as sendmail's macros $w, $j, $m and $k contain them, for -d0.1 and -bt. */
export function systemIdentity(config: Config): { w: string; j: string; m: string; k: string } {
  const canonical = config.hostName;
  const dot = canonical.indexOf('.');
  return {
    w: dot < 0 ? canonical : canonical.slice(0, dot),
    j: canonical,
    m: dot < 0 ? '' : canonical.slice(dot + 1),
    k: os.hostname(),
  };
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
