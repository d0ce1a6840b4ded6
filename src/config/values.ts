// Parsing of option values by type, following sendmail's rules (atobool,
// convtime, first-letter enums) but rejecting values sendmail would silently
// misread, such as `MaxHopCount=ten`.

import type { OptionValue } from './types';
import type { OptionDef } from './options';
import { parseDuration } from './duration';

const SIZE_SUFFIX: Record<string, number> = { k: 1024, m: 1024 * 1024, g: 1024 * 1024 * 1024 };

/** Parse `raw` as a value of `def`; throws an Error naming the value and the option. */
export function parseOptionValue(def: OptionDef, raw: string): OptionValue {
  const text = raw.trim();
  switch (def.type) {
    case 'string':
    case 'path':
      return text;
    case 'number':
      return parseNumber(def, text);
    case 'size':
      return parseSize(def, text);
    case 'duration':
      return parseDurationValue(def, text);
    case 'boolean':
      return parseBoolean(def, text);
    case 'enum':
      return parseEnum(def, text);
    case 'list':
      return parseList(def, text);
  }
}

function invalid(def: OptionDef, text: string, expected: string): Error {
  return new Error(`invalid value "${text}" for option ${def.name}: expected ${expected}`);
}

// An empty number is 0, as atoi() makes it in sendmail.
function parseNumber(def: OptionDef, text: string): number {
  if (text !== '' && (!/^-?\d+$/.test(text) || !Number.isSafeInteger(Number(text)))) {
    throw invalid(def, text, 'a whole number');
  }
  const value = Number(text);
  const range = def.range;
  if (range !== undefined && (value < range.min || value > range.max)) {
    throw invalid(def, text, `a whole number from ${range.min} to ${range.max}`);
  }
  return value;
}

/** Bytes, with an optional k, m or g suffix (powers of 1024; a Posthorn extension). */
function parseSize(def: OptionDef, text: string): number {
  if (text === '') {
    return 0;
  }
  const match = /^(\d+)\s*([kmgKMG]?)$/.exec(text);
  if (match === null) {
    throw invalid(def, text, 'a size in bytes, optionally with k, m or g');
  }
  const factor = match[2] === '' ? 1 : SIZE_SUFFIX[match[2].toLowerCase()];
  const value = Number(match[1]) * factor;
  if (!Number.isSafeInteger(value)) {
    throw invalid(def, text, 'a smaller size');
  }
  return value;
}

function parseDurationValue(def: OptionDef, text: string): number {
  try {
    const negative = def.signed === true && text.trim().startsWith('-');
    if (negative) return -parseDuration(text.trim().slice(1), def.unit ?? 's');
    return parseDuration(text, def.unit ?? 's');
  } catch (err) {
    const reason = err instanceof Error ? err.message : String(err);
    throw new Error(`invalid value "${text}" for option ${def.name}: ${reason}`);
  }
}

/**
 * sendmail's atobool(): empty or a first letter t, T, y, Y is true, and f, F,
 * n, N is false. Anything else is an error here, not a silent false.
 */
export function parseBooleanText(text: string): boolean | undefined {
  if (text === '' || /^[tTyY]/.test(text)) {
    return true;
  }
  if (/^[fFnN]/.test(text)) {
    return false;
  }
  return undefined;
}

function parseBoolean(def: OptionDef, text: string): boolean {
  const value = parseBooleanText(text);
  if (value === undefined) {
    throw invalid(def, text, 'True or False');
  }
  return value;
}

function parseEnum(def: OptionDef, text: string): string {
  const values = def.values ?? [];
  if (def.name === 'SuperSafe') {
    return parseSuperSafe(def, text);
  }
  if (def.name === 'DeliveryMode' && text === '') {
    return 'interactive';
  }

  const exact = values.find((v) => v.toLowerCase() === text.toLowerCase());
  if (exact !== undefined) {
    return exact;
  }

  // sendmail reads only the first letter of these options.
  const letter = text.charAt(0).toLowerCase();
  const byLetter = values.filter((v) => v.charAt(0) === letter);
  const firstLetterEnum = new Set(values.map((v) => v.charAt(0))).size === values.length;
  if (firstLetterEnum && text !== '' && byLetter.length === 1) {
    return byLetter[0];
  }

  if (def.name === 'QueueSortOrder') {
    throw new Error(`Invalid queue sort order "${text}"`);
  }
  throw invalid(def, text, `one of ${values.join(', ')}`);
}

// SuperSafe: i... is Interactive, p... is PostMilter, otherwise a boolean.
function parseSuperSafe(def: OptionDef, text: string): string {
  const letter = text.charAt(0).toLowerCase();
  if (letter === 'i') {
    return 'interactive';
  }
  if (letter === 'p') {
    return 'postmilter';
  }
  const value = parseBooleanText(text);
  if (value === undefined) {
    throw invalid(def, text, 'True, False, Interactive or PostMilter');
  }
  return value ? 'true' : 'false';
}

/** Words separated by commas, semicolons or white space. */
function parseList(def: OptionDef, text: string): string[] {
  const words = text.split(/[\s,;]+/).filter((w) => w !== '');
  if (def.values === undefined) {
    return words;
  }

  const known = new Set(def.values);
  return words.map((word) => {
    const lower = word.toLowerCase();
    if (!known.has(lower)) {
      throw new Error(`invalid value "${word}" for option ${def.name}: not one of ${def.values?.join(', ')}`);
    }
    return lower;
  });
}
