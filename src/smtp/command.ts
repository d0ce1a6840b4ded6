// Splits one SMTP command line into its verb and argument (RFC 5321 4.1.1).

export interface Command {
  /** The first word, upper-cased, e.g. "MAIL", "EHLO". Empty for a blank line. */
  verb: string;
  /**
   * Everything after the verb, with the spaces and tabs that separate it from
   * the verb and any trailing spaces and tabs removed. sendmail skips the same
   * leading blanks, so "MAIL  FROM:<a>" gives "FROM:<a>" in both.
   */
  arg: string;
}

const BLANKS = /^[ \t]+|[ \t]+$/g;

/** Splits a command line (without its CRLF) into verb and argument. */
export function parseCommand(line: string): Command {
  const text = line.replace(BLANKS, '');
  const match = /[ \t]/.exec(text);

  if (match === null) {
    return { verb: text.toUpperCase(), arg: '' };
  }

  const verb = text.slice(0, match.index).toUpperCase();
  const arg = text.slice(match.index).replace(BLANKS, '');
  return { verb, arg };
}

/** sendmail's MAXSHORTSTR: an echoed line of this length or more keeps only its first and last 100 bytes. */
const MAX_SHORT_STRING = 203;

/**
 * Returns a command line as sendmail echoes it in "Command unrecognized".
 * The line keeps its blanks and ends at a NUL. 8-bit bytes lose the high bit,
 * and a long line is shortened with "..." in the middle.
 */
// NOTE: sendmail echoes control bytes other than DEL unchanged. Here they
// become "?", so a reply never carries terminal escapes back to a client.
export function echoableCommandLine(line: string): string {
  const nul = line.indexOf('\0');
  let text = nul >= 0 ? line.slice(0, nul) : line;
  text = text.replace(/[^\t\x20-\x7e]/g, (c) => {
    const ascii = c.charCodeAt(0) & 0x7f;
    return ascii === 0x09 || (ascii >= 0x20 && ascii < 0x7f) ? String.fromCharCode(ascii) : '?';
  });
  if (text.length < MAX_SHORT_STRING) return text;
  const keep = (MAX_SHORT_STRING - 3) / 2;
  return `${text.slice(0, keep)}...${text.slice(text.length - keep)}`;
}
