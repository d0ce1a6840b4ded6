// Escaping of control file field values. Every value is written on one line, so
// CR, LF and the escape character itself are replaced by backslash sequences.
// sendmail instead replaces newlines with spaces, which loses them.
//
//   \\  backslash        \r  CR        \n  LF
//   \uXXXX  a lone UTF-16 surrogate or a character from `extra` (4 hex digits)

const HEX4 = /^[0-9a-fA-F]{4}$/;

/** Escapes `value` for one control file line; characters in `extra` become \uXXXX. */
export function escapeField(value: string, extra = ''): string {
  let out = '';
  for (let i = 0; i < value.length; i++) {
    const c = value[i];
    const code = value.charCodeAt(i);

    if (c === '\\') out += '\\\\';
    else if (c === '\r') out += '\\r';
    else if (c === '\n') out += '\\n';
    else if (extra.includes(c)) out += unicodeEscape(code);
    else if (code >= 0xd800 && code <= 0xdbff && isLowSurrogate(value.charCodeAt(i + 1))) {
      out += c + value[i + 1];
      i++;
    } else if (code >= 0xd800 && code <= 0xdfff) out += unicodeEscape(code);
    else out += c;
  }
  return out;
}

/**
 * Reverses escapeField(). Returns undefined for a backslash that does not start
 * a known sequence, because such a line was not written by escapeField().
 */
export function unescapeField(text: string): string | undefined {
  if (!text.includes('\\')) return text;

  let out = '';
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (c !== '\\') {
      out += c;
      continue;
    }

    const next = text[i + 1];
    if (next === '\\') out += '\\';
    else if (next === 'r') out += '\r';
    else if (next === 'n') out += '\n';
    else if (next === 'u' && HEX4.test(text.slice(i + 2, i + 6))) {
      out += String.fromCharCode(parseInt(text.slice(i + 2, i + 6), 16));
      i += 4;
    } else return undefined;
    i++;
  }
  return out;
}

/**
 * Escapes a header for the H line. A fold (CRLF followed by space or tab) is
 * written as a real line break, so the continuation line starts with that
 * whitespace as in sendmail's files. Every other CR or LF is escaped.
 */
export function escapeHeader(header: string): string {
  const parts = header.split(/\r\n(?=[ \t])/);
  return parts.map((part) => escapeField(part)).join('\n');
}

function unicodeEscape(code: number): string {
  return '\\u' + code.toString(16).padStart(4, '0');
}

function isLowSurrogate(code: number): boolean {
  return code >= 0xdc00 && code <= 0xdfff;
}
