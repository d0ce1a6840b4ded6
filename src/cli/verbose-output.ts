// The verbose lines of -v (a submission) and -q -v (a queue run) on standard
// output, as sendmail -v prints them on the terminal.

/**
 * Formats one verbose line: an address shown alone has no angle brackets
 * ("bob@example.com... Sent"), and the control bytes of a next hop's reply
 * show as '?'.
 */
export function verboseOutputLine(line: string): string {
  const bare = line.replace(/^<([^<>,]*)>\.\.\. /, '$1... ');
  return bare.replace(/[\x00-\x08\x0a-\x1f\x7f]/g, '?');
}

/** Returns a receiver that writes verbose lines to standard output. */
export function verboseToStdout(): (line: string) => void {
  return (line) => process.stdout.write(`${verboseOutputLine(line)}\n`);
}
