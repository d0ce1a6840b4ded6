// Reads the addresses of an RFC 5322 3.4 address-list, as found in To:, Cc:
// and Bcc: for "sendmail -t": display names, angle addresses, groups,
// comments, quoted strings and domain literals. Also adds a domain to the
// addresses of such a list that have none, for mail leaving by SMTP.

type TokenKind = 'atom' | 'quoted' | 'literal' | 'special';

interface Token {
  kind: TokenKind;
  /** The token as written; a quoted string keeps its quotes. */
  text: string;
  /** Blanks or a comment came right before it. */
  spaced: boolean;
  /** Offset just after the token in the header value. */
  end: number;
}

/** One mailbox of an address list: its addr-spec tokens and where a missing "@domain" would go. */
interface Mailbox {
  tokens: Token[];
  /** Offset of the closing ">" of an angle address, else the end of its last token. */
  insertAt: number;
  /** The mailbox as written when a comma ended it inside "<...>" (see headerAddresses()), or a comment never closed took it. */
  unbalanced?: string;
  /** The bracket left open in an unbalanced mailbox. */
  open?: '<' | '(';
  /** The mailbox as written when the value ended inside "<...>". */
  unclosed?: string;
}

/** One address of a header's address list. */
export interface HeaderAddress {
  /** The addr-spec, or for an unbalanced mailbox the mailbox as written, display name and "<" included. */
  address: string;
  /**
   * The bracket an invalid mailbox left open, else false: '<' when a comma
   * ended it inside "<...>", '(' when a comment that is never closed took all
   * of it. sendmail reports these as "Unbalanced '<'" and "Unbalanced '('".
   */
  unbalanced: false | '<' | '(';
  /**
   * The mailbox as written when the value ended inside "<...>" ("Ann <ann@b"):
   * its addr-spec is taken, and this names it in an error.
   */
  written?: string;
}

const WORD_KINDS: readonly TokenKind[] = ['atom', 'quoted', 'literal'];

const SPECIALS = '<>,;:@.';
const ATOM_END = /[\s()<>,;:@."[\]]/;

/**
 * Returns the addr-spec of every mailbox in a header value, in order. Group
 * names and display names are dropped; an empty group yields nothing. A
 * source route inside angle brackets is dropped as well.
 *
 * A value without any of , ; < ( is an old-style list, as sendmail's
 * sendtolist() calls it: blanks separate its addresses ("alice bob" is two
 * recipients, "a@b.example c@d.example" too). Two words in a row never join
 * into one address. A mailbox that a comma ends inside "<...>" is returned
 * as written, and headerAddresses() marks such addresses.
 */
export function parseHeaderAddresses(value: string): string[] {
  return headerAddresses(value).map((a) => a.address);
}

/**
 * Returns the addresses of a header value as parseHeaderAddresses() does,
 * and marks the unbalanced ones. As in sendmail 8.17, a comma inside "<...>"
 * ends the address, except in a source route ("<@a,@b:user@c>").
 * "bad<<x@, bob@example.com" is the bad address "bad<<x@" followed by
 * bob@example.com, and one broken address does not take the rest of the
 * list with it.
 */
export function headerAddresses(value: string): HeaderAddress[] {
  const found: HeaderAddress[] = [];
  for (const mailbox of mailboxes(value)) {
    if (mailbox.unbalanced !== undefined) {
      found.push({ address: mailbox.unbalanced, unbalanced: mailbox.open ?? '<' });
      continue;
    }
    const address = joinTokens(mailbox.tokens);
    if (address === '') continue;
    found.push(mailbox.unclosed === undefined ? { address, unbalanced: false } : { address, unbalanced: false, written: mailbox.unclosed });
  }
  return found;
}

/**
 * Returns the header value with "@domain" added to every mailbox that has no
 * domain ("To: joe, Ann <ann>" becomes "To: joe@domain, Ann <ann@domain>"),
 * as sendmail qualifies header addresses of mail it relays. Names, comments,
 * groups and spacing stay as written.
 */
export function qualifyHeaderAddresses(value: string, domain: string): string {
  const inserts = mailboxes(value)
    .filter((m) => m.unbalanced === undefined && m.tokens.some((t) => t.kind !== 'special') && !m.tokens.some((t) => t.kind === 'special' && t.text === '@'))
    .map((m) => m.insertAt);
  let out = value;
  for (const at of inserts.reverse()) out = `${out.slice(0, at)}@${domain}${out.slice(at)}`;
  return out;
}

/** Splits a header value into its mailboxes, as parseHeaderAddresses() describes. */
function mailboxes(value: string): Mailbox[] {
  const oldStyle = !/[,;<(]/.test(value);
  const found: Mailbox[] = [];
  let current: Token[] = [];
  let angle: Token[] | undefined;
  let angleAddr: Mailbox | undefined;
  /** Offset where the text of the current mailbox starts. */
  let start = 0;

  const flush = (): void => {
    if (angleAddr !== undefined) found.push(angleAddr);
    else if (current.length > 0) found.push({ tokens: current, insertAt: current[current.length - 1].end });
    current = [];
    angleAddr = undefined;
  };

  const { tokens, openComment } = tokenize(value);
  for (const token of tokens) {
    const special = token.kind === 'special' ? token.text : '';

    if (angle !== undefined) {
      if (special === '>') {
        angleAddr = { tokens: dropSourceRoute(angle), insertAt: token.end - 1 };
        angle = undefined;
      } else if (special === ',' && angle[0]?.text !== '@') {
        found.push({ tokens: [], insertAt: token.end - 1, unbalanced: value.slice(start, token.end - 1).trim(), open: '<' });
        current = [];
        angle = undefined;
        angleAddr = undefined;
        start = token.end;
      } else {
        angle.push(token);
      }
    } else if (special === '<') {
      angle = [];
    } else if (special === ':') {
      // The words so far were a group name.
      current = [];
      start = token.end;
    } else if (special === ',' || special === ';') {
      flush();
      start = token.end;
    } else {
      const last = current[current.length - 1];
      if (oldStyle && token.spaced && last !== undefined && WORD_KINDS.includes(token.kind) && WORD_KINDS.includes(last.kind)) {
        flush();
      }
      current.push(token);
    }
  }

  // A comment never closed runs to the end of the value. When it takes a whole
  // mailbox after another one ("a@b, (note <c@d"), sendmail 8.17 reports that
  // mailbox as "Unbalanced '('", so it is not dropped unseen. A value that is
  // one open comment has no address, as for sendmail.
  if (openComment && angle === undefined && angleAddr === undefined && current.length === 0 && found.length > 0) {
    found.push({ tokens: [], insertAt: value.length, unbalanced: value.slice(start).trim(), open: '(' });
  }
  if (angle !== undefined) {
    const tokens = dropSourceRoute(angle);
    angleAddr = { tokens, insertAt: tokens.length > 0 ? tokens[tokens.length - 1].end : value.length, unclosed: value.slice(start).trim() };
  }
  flush();
  return found;
}

function joinTokens(tokens: Token[]): string {
  return tokens.map((t) => t.text).join('');
}

function dropSourceRoute(tokens: Token[]): Token[] {
  if (tokens[0]?.text !== '@') return tokens;
  const colon = tokens.findIndex((t) => t.kind === 'special' && t.text === ':');
  return colon < 0 ? tokens : tokens.slice(colon + 1);
}

/**
 * Splits a header value into tokens, dropping blanks and (comments). Also
 * reports whether the value ends inside a comment.
 */
function tokenize(value: string): { tokens: Token[]; openComment: boolean } {
  const tokens: Token[] = [];
  let i = 0;
  let spaced = false;
  let openComment = false;
  const push = (kind: TokenKind, text: string, end: number): void => {
    tokens.push({ kind, text, spaced, end });
    spaced = false;
  };

  while (i < value.length) {
    const ch = value[i];
    if (/\s/.test(ch)) {
      spaced = true;
      i++;
    } else if (ch === '(') {
      spaced = true;
      const end = skipComment(value, i);
      openComment = end < 0;
      i = end < 0 ? value.length : end;
    } else if (ch === '"') {
      const end = closing(value, i, '"');
      push('quoted', value.slice(i, end + 1), end + 1);
      i = end + 1;
    } else if (ch === '[' && tokens[tokens.length - 1]?.text === '@') {
      // A domain literal follows "@" only. Elsewhere "[" is an ordinary
      // character, as for sendmail 8.17, so an escape sequence such as
      // "\x1b[31m" in a local part does not swallow the addresses after it.
      const end = closing(value, i, ']');
      push('literal', value.slice(i, end + 1), end + 1);
      i = end + 1;
    } else if (ch === '[') {
      push('special', ch, i + 1);
      i++;
    } else if (SPECIALS.includes(ch)) {
      push('special', ch, i + 1);
      i++;
    } else {
      const end = atomEnd(value, i);
      push('atom', value.slice(i, end), end);
      i = end;
    }
  }
  return { tokens, openComment };
}

function atomEnd(value: string, start: number): number {
  let i = start;
  while (i < value.length && !ATOM_END.test(value[i])) i++;
  // A stray ")" or "]" is taken as part of the atom so that scanning moves on.
  return i === start ? start + 1 : i;
}

/** Index of the char that closes the quoted string or literal at start. */
function closing(value: string, start: number, close: string): number {
  for (let i = start + 1; i < value.length; i++) {
    if (value[i] === '\\') i++;
    else if (value[i] === close) return i;
  }
  return value.length - 1;
}

/** Returns the index just after the comment at start, or -1 when it is never closed. Comments nest (RFC 5322 3.2.2). */
function skipComment(value: string, start: number): number {
  let depth = 0;
  for (let i = start; i < value.length; i++) {
    const ch = value[i];
    if (ch === '\\') i++;
    else if (ch === '(') depth++;
    else if (ch === ')' && --depth === 0) return i + 1;
  }
  return -1;
}
