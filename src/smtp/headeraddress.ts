// Reads the addresses of an RFC 5322 3.4 address-list, as found in To:, Cc:
// and Bcc: for "sendmail -t": display names, angle addresses, groups,
// comments, quoted strings and domain literals.

type TokenKind = 'atom' | 'quoted' | 'literal' | 'special';

interface Token {
  kind: TokenKind;
  /** The token as written; a quoted string keeps its quotes. */
  text: string;
}

const SPECIALS = '<>,;:@.';
const ATOM_END = /[\s()<>,;:@."[\]]/;

/**
 * Returns the addr-spec of every mailbox in a header value, in order. Group
 * names and display names are dropped; an empty group yields nothing. A
 * source route inside angle brackets is dropped as well.
 */
export function parseHeaderAddresses(value: string): string[] {
  const addresses: string[] = [];
  let current: Token[] = [];
  let angle: Token[] | undefined;
  let angleAddr: Token[] | undefined;

  const flush = (): void => {
    const address = joinTokens(angleAddr ?? current);
    if (address !== '') addresses.push(address);
    current = [];
    angleAddr = undefined;
  };

  for (const token of tokenize(value)) {
    const special = token.kind === 'special' ? token.text : '';

    if (angle !== undefined) {
      if (special === '>') {
        angleAddr = dropSourceRoute(angle);
        angle = undefined;
      } else {
        angle.push(token);
      }
    } else if (special === '<') {
      angle = [];
    } else if (special === ':') {
      // The words so far were a group name.
      current = [];
    } else if (special === ',' || special === ';') {
      flush();
    } else {
      current.push(token);
    }
  }

  if (angle !== undefined) angleAddr = dropSourceRoute(angle);
  flush();
  return addresses;
}

function joinTokens(tokens: Token[]): string {
  return tokens.map((t) => t.text).join('');
}

function dropSourceRoute(tokens: Token[]): Token[] {
  if (tokens[0]?.text !== '@') return tokens;
  const colon = tokens.findIndex((t) => t.kind === 'special' && t.text === ':');
  return colon < 0 ? tokens : tokens.slice(colon + 1);
}

/** Splits a header value into tokens, dropping blanks and (comments). */
function tokenize(value: string): Token[] {
  const tokens: Token[] = [];
  let i = 0;

  while (i < value.length) {
    const ch = value[i];
    if (/\s/.test(ch)) {
      i++;
    } else if (ch === '(') {
      i = skipComment(value, i);
    } else if (ch === '"') {
      const end = closing(value, i, '"');
      tokens.push({ kind: 'quoted', text: value.slice(i, end + 1) });
      i = end + 1;
    } else if (ch === '[') {
      const end = closing(value, i, ']');
      tokens.push({ kind: 'literal', text: value.slice(i, end + 1) });
      i = end + 1;
    } else if (SPECIALS.includes(ch)) {
      tokens.push({ kind: 'special', text: ch });
      i++;
    } else {
      const end = atomEnd(value, i);
      tokens.push({ kind: 'atom', text: value.slice(i, end) });
      i = end;
    }
  }
  return tokens;
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

/** Index just after the comment at start; comments nest (RFC 5322 3.2.2). */
function skipComment(value: string, start: number): number {
  let depth = 0;
  for (let i = start; i < value.length; i++) {
    const ch = value[i];
    if (ch === '\\') i++;
    else if (ch === '(') depth++;
    else if (ch === ')' && --depth === 0) return i + 1;
  }
  return value.length;
}
