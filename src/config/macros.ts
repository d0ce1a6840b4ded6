// sendmail macro expansion for option values such as SmtpGreetingMessage
// and PidFile: `$x`, `${name}`, `$$`, and `$?x yes $| no $.` conditionals.

/**
 * Expand `template`. `lookup` returns a macro's value, or undefined when the
 * macro is not defined (it then expands to nothing, and `$?` tests false).
 * Conditionals may nest. Expanded values are not expanded again.
 */
export function expandMacros(template: string, lookup: (name: string) => string | undefined): string {
  const state = { pos: 0 };
  return expandUntil(template, state, lookup, new Set()).text;
}

interface Expanded {
  text: string;
  /** The `$|` or `$.` that ended this part, or '' at the end of the template. */
  stop: string;
}

function expandUntil(
  template: string,
  state: { pos: number },
  lookup: (name: string) => string | undefined,
  stops: Set<string>,
): Expanded {
  let text = '';
  while (state.pos < template.length) {
    const ch = template[state.pos];
    if (ch !== '$' || state.pos + 1 >= template.length) {
      text += ch;
      state.pos++;
      continue;
    }

    const op = template[state.pos + 1];
    if (stops.has(op)) {
      state.pos += 2;
      return { text, stop: op };
    }
    if (op === '$') {
      text += '$';
      state.pos += 2;
    } else if (op === '?') {
      state.pos += 2;
      text += expandConditional(template, state, lookup);
    } else if (op === '|' || op === '.') {
      // A `$|` or `$.` outside a conditional stays as written.
      text += '$' + op;
      state.pos += 2;
    } else {
      state.pos += 1;
      text += lookup(readName(template, state)) ?? '';
    }
  }
  return { text, stop: '' };
}

function expandConditional(
  template: string,
  state: { pos: number },
  lookup: (name: string) => string | undefined,
): string {
  const name = readName(template, state);
  const value = lookup(name);
  const defined = value !== undefined && value !== '';

  const thenPart = expandUntil(template, state, lookup, new Set(['|', '.']));
  let elsePart = '';
  if (thenPart.stop === '|') {
    elsePart = expandUntil(template, state, lookup, new Set(['.'])).text;
  }
  return defined ? thenPart.text : elsePart;
}

// A macro name after `$` or `$?`: one character, or `{name}`.
function readName(template: string, state: { pos: number }): string {
  if (template[state.pos] === '{') {
    const close = template.indexOf('}', state.pos);
    if (close >= 0) {
      const name = template.slice(state.pos + 1, close);
      state.pos = close + 1;
      return name;
    }
  }
  const name = template[state.pos] ?? '';
  state.pos++;
  return name;
}
