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
