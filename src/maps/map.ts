// Key-value maps as sendmail's K lines and FEATURE arguments name them:
// "hash -o /etc/mail/access", "btree /etc/mail/mailertable", "text /etc/mail/x".
// Lookups are synchronous so that a checkpoint costs no event-loop turn.

import * as fs from 'node:fs';
import { parseMapSource } from './source';
import { openMapBySpec } from './compiled';

/** A map that returns the value for a key, or undefined when the key is absent. */
export interface LookupMap {
  readonly type: string;
  readonly path: string;
  get(key: string): string | undefined;
  /** Re-reads the map if its file changed since the last read. */
  refresh(): void;
}

export interface MapSpec {
  type: string;
  path: string;
  /** "-o": a missing map is treated as empty instead of an error. */
  optional: boolean;
  /** "-N" and the other flags, kept for later use. */
  flags: string[];
}

/** Parses "hash -o /etc/mail/access" into its parts. */
export function parseMapSpec(text: string): MapSpec {
  const words = text.trim().split(/\s+/);
  const spec: MapSpec = { type: 'hash', path: '', optional: false, flags: [] };
  if (words.length > 0 && !words[0].startsWith('-') && !words[0].startsWith('/') && words.length > 1) {
    spec.type = words.shift()!.toLowerCase();
  }
  for (const w of words) {
    if (w === '-o') spec.optional = true;
    else if (w.startsWith('-')) spec.flags.push(w);
    else spec.path = w;
  }
  return spec;
}

/**
 * A map read from its text source (`key<whitespace>value` lines) and kept in
 * memory. The file is re-read when its modification time or size changes.
 */
export class TextMap implements LookupMap {
  private entries = new Map<string, string>();
  private stamp = '';

  constructor(
    readonly type: string,
    readonly path: string,
    private readonly optional: boolean,
    private readonly onError: (message: string) => void = () => undefined,
  ) {
    this.refresh();
  }

  get(key: string): string | undefined {
    return this.entries.get(key.toLowerCase());
  }

  refresh(): void {
    let stat: fs.Stats;
    try {
      stat = fs.statSync(this.path);
    } catch (err) {
      if (!this.optional) this.onError(`cannot open map ${this.path}: ${(err as Error).message}`);
      this.entries = new Map();
      this.stamp = '';
      return;
    }
    const stamp = `${stat.mtimeMs}:${stat.size}:${stat.ino}`;
    if (stamp === this.stamp) return;

    const parsed = parseMapSource(fs.readFileSync(this.path, 'latin1'), this.path);
    if (parsed.errors.length > 0) {
      // Keep the old contents, as sendmail keeps using the old compiled map.
      for (const e of parsed.errors) this.onError(e);
      if (this.stamp !== '') return;
    }
    this.entries = parsed.entries;
    this.stamp = stamp;
  }
}

export type MapOpener = (spec: MapSpec, onError: (message: string) => void) => LookupMap;

/** Opens a map by its spec; the types hash and btree read the compiled form when present. */
export let openMap: MapOpener = (spec, onError) => openMapBySpec(spec, onError);

/** Replaces the opener, e.g. with one that reads compiled maps. */
export function setMapOpener(opener: MapOpener): void {
  openMap = opener;
}
