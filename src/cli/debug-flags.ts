// -d, -D and -X on the command line: set up the debug output and open the
// SMTP transcript file before the chosen mode runs.

import type { CliArgs } from './args';
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
