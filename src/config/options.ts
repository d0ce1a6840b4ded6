// The option table: every option Posthorn reads, with its .cf name, m4 name,
// type and default. The readers (cf.ts, mc.ts, -O) and the reference page
// (reference.ts) all work from this one list.

import type { OptionValue } from './types';
import { OPTIONS_A_TO_L } from './options-a-l';
import { OPTIONS_M_TO_Z } from './options-m-z';
import { TIMEOUT_OPTIONS, MILTER_OPTIONS, TLS_OPTIONS } from './timeout-options';

export type OptionType =
  | 'string'
  | 'number'
  | 'duration'
  | 'boolean'
  | 'enum'
  | 'path'
  | 'list'
  | 'size';

export interface OptionDef {
  /** The .cf name, e.g. `QueueSortOrder` or `Timeout.queuereturn`. */
  name: string;
  /** The m4 variable that sets it in a .mc file, e.g. `confQUEUE_SORT_ORDER`. */
  m4?: string;
  /** The old single-character name used by `O<c>` and `-o<c>`. */
  short?: string;
  type: OptionType;
  /** Unit of a bare number, for durations (sendmail's convtime default). */
  unit?: 's' | 'm' | 'h' | 'd';
  /** A duration that may start with "-", which negates it (convtime allows it; DeliverByMin uses it). */
  signed?: boolean;
  /** Smallest and largest accepted value of a number option. Other values are a configuration error. */
  range?: { min: number; max: number };
  /** Allowed values of an enum, or known words of a list. */
  values?: string[];
  default?: OptionValue;
  description: string;
  /** 'accepted': read and validated, but no part of Posthorn acts on it yet. */
  status?: 'implemented' | 'accepted';
}

export const OPTIONS: readonly OptionDef[] = [
  ...OPTIONS_A_TO_L,
  ...OPTIONS_M_TO_Z,
  ...TLS_OPTIONS,
  ...MILTER_OPTIONS,
  ...TIMEOUT_OPTIONS,
];

const byLowerName = new Map<string, OptionDef>();
const byM4 = new Map<string, OptionDef>();
const byShort = new Map<string, OptionDef>();
for (const def of OPTIONS) {
  byLowerName.set(def.name.toLowerCase(), def);
  if (def.m4 !== undefined) {
    byM4.set(def.m4, def);
  }
  if (def.short !== undefined) {
    byShort.set(def.short, def);
  }
}

/** Find the option with exactly this name, compared without regard to case. */
export function optionByName(name: string): OptionDef | undefined {
  return byLowerName.get(name.toLowerCase());
}

/** Find the option an m4 variable sets. m4 names are case-sensitive. */
export function optionByM4(m4Name: string): OptionDef | undefined {
  return byM4.get(m4Name);
}

/** Find the option with this single-character name (case-sensitive: `x` is not `X`). */
export function optionByShort(letter: string): OptionDef | undefined {
  return byShort.get(letter);
}
