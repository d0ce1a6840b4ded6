// The text form of a sendmail aliases file, as newaliases reads it:
// "name: target, target, ..." lines, continuation lines that start with a
// space or tab, "#" comment lines and blank lines. Names are folded to lower
// case. A bad line is reported with its file and line and skipped; the rest
// of the file is still read.

export interface ParsedAliases {
  /** Alias name (lower case) to its right-hand side as written, continuations joined. */
  entries: Map<string, string>;
  /** Line of each alias name, for messages. */
  lines: Map<string, number>;
  /** One message per bad line: "/etc/mail/aliases: line 4: missing colon". */
  errors: string[];
  /** The figures newaliases prints: count, longest right-hand side, total bytes. */
  count: number;
  longest: number;
  bytes: number;
}

/** Checks whether an alias name is a bare local name (no spaces, no domain part). */
function aliasNameProblem(name: string): string | undefined {
  if (name === '' || /[\s<>()",;]/.test(name)) return `${name}... illegal alias name`;
  if (name.includes('@')) return `${name}... cannot alias non-local names`;
  return undefined;
}

export function parseAliases(text: string, file: string): ParsedAliases {
  const result: ParsedAliases = { entries: new Map(), lines: new Map(), errors: [], count: 0, longest: 0, bytes: 0 };
  const rawLines = text.split('\n');
  if (rawLines[rawLines.length - 1] === '') rawLines.pop();

  let current: { name: string; value: string; line: number } | undefined;
  // After a bad line, its continuation lines are skipped too, as sendmail does.
  let skipping = false;
  const finish = (): void => {
    if (current === undefined) return;
    const value = current.value.trim();
    // As newaliases: "name:" with nothing after it (continuations included) is an error, not an empty list.
    if (value === '') {
      result.errors.push(`${file}: line ${current.line}: ${current.name}:... missing value for alias`);
      current = undefined;
      return;
    }
    if (result.entries.has(current.name)) {
      result.errors.push(`${file}: line ${current.line}: ${current.name}... Warning: duplicate alias name ${current.name}`);
    }
    result.entries.set(current.name, value);
    result.lines.set(current.name, current.line);
    result.count += 1;
    result.bytes += current.name.length + value.length;
    result.longest = Math.max(result.longest, value.length);
    current = undefined;
  };

  rawLines.forEach((raw, index) => {
    const line = raw.replace(/\r$/, '');
    const n = index + 1;
    if (line === '' || line.startsWith('#')) {
      finish();
      skipping = false;
      return;
    }
    if (line.startsWith(' ') || line.startsWith('\t')) {
      if (current !== undefined) {
        current.value += ` ${line.trim()}`;
      } else if (!skipping) {
        result.errors.push(`${file}: line ${n}: Non-continuation line starts with space`);
        skipping = true;
      }
      return;
    }
    finish();
    skipping = false;

    const colon = line.indexOf(':');
    if (colon < 0) {
      result.errors.push(`${file}: line ${n}: missing colon`);
      skipping = true;
      return;
    }
    const name = line.slice(0, colon).trim().toLowerCase();
    const problem = aliasNameProblem(name);
    if (problem !== undefined) {
      result.errors.push(`${file}: line ${n}: ${problem}`);
      skipping = true;
      return;
    }
    current = { name, value: line.slice(colon + 1), line: n };
  });
  finish();
  return result;
}

/**
 * Splits a right-hand side into its addresses at commas that are outside
 * double quotes, angle brackets and parentheses. Quotes around a whole
 * element are removed ("|/usr/bin/vacation bob" becomes |/usr/bin/vacation
 * bob), "Name <addr>" becomes addr and comments in parentheses are dropped.
 */
export function splitAddressList(text: string): string[] {
  const parts: string[] = [];
  let current = '';
  let quoted = false;
  let angle = 0;
  let paren = 0;
  for (let i = 0; i < text.length; i++) {
    const ch = text[i];
    if (ch === '\\' && i + 1 < text.length) {
      current += ch + text[i + 1];
      i++;
      continue;
    }
    if (ch === '"' && paren === 0) quoted = !quoted;
    else if (!quoted && ch === '(') paren++;
    else if (!quoted && ch === ')' && paren > 0) {
      paren--;
      continue;
    } else if (!quoted && paren === 0 && ch === '<') angle++;
    else if (!quoted && paren === 0 && ch === '>' && angle > 0) angle--;
    else if (!quoted && paren === 0 && angle === 0 && ch === ',') {
      parts.push(current);
      current = '';
      continue;
    }
    if (paren > 0) continue;
    current += ch;
  }
  parts.push(current);
  return parts.map(cleanElement).filter((p) => p !== '');
}

function cleanElement(raw: string): string {
  let text = raw.trim();
  const angle = /<([^<>]*)>\s*$/.exec(text);
  if (angle && !text.startsWith('"|') && !text.startsWith('|')) text = angle[1].trim();
  if (text.length >= 2 && text.startsWith('"') && text.endsWith('"')) {
    text = text.slice(1, -1).replace(/\\(.)/g, '$1');
  }
  return text;
}
