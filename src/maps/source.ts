// The text source of a map, as makemap reads it: one "key<whitespace>value"
// per line, "#" comments, blank lines ignored, and lines starting with
// whitespace continuing the previous value. Keys are folded to lower case.

export interface ParsedSource {
  entries: Map<string, string>;
  /** Messages naming file and line, e.g. "/etc/mail/access:3: missing value for key foo". */
  errors: string[];
}

export function parseMapSource(text: string, file: string): ParsedSource {
  const entries = new Map<string, string>();
  const errors: string[] = [];
  let lastKey: string | undefined;

  text.split('\n').forEach((raw, index) => {
    const line = raw.replace(/\r$/, '');
    const n = index + 1;
    if (line.trim() === '' || line.trimStart().startsWith('#')) return;

    if (/^[ \t]/.test(line)) {
      if (lastKey === undefined) {
        errors.push(`${file}:${n}: continuation line without a key`);
        return;
      }
      entries.set(lastKey, `${entries.get(lastKey)} ${line.trim()}`);
      return;
    }

    const m = /^(\S+)(?:[ \t]+(.*))?$/.exec(line);
    if (!m) {
      errors.push(`${file}:${n}: cannot parse line`);
      return;
    }
    const key = m[1].toLowerCase();
    const value = (m[2] ?? '').trim();
    if (value === '') {
      errors.push(`${file}:${n}: missing value for key ${m[1]}`);
      return;
    }
    entries.set(key, value);
    lastKey = key;
  });
  return { entries, errors };
}
