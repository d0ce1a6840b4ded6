// Maps of type hash, btree and cdb read from the file that makemap writes
// (`<path>.db`, in cdb format). Until makemap has run, the text source at
// <path> is read instead, so a fresh set-up works without a build step.
// Every refresh() compares the file's inode, size and modification time, so
// a map rebuilt by makemap is picked up by the running daemon.

import * as fs from 'node:fs';
import { berkeleyDbKind, CdbReader } from './cdb';
import { TextMap, type LookupMap, type MapSpec } from './map';

/** Map types whose compiled form makemap writes. */
export const COMPILED_TYPES = new Set(['hash', 'btree', 'cdb', 'dbm']);

/** The compiled file of a map path: "/etc/mail/access" becomes "/etc/mail/access.db". */
export function compiledPath(mapPath: string): string {
  return mapPath.endsWith('.db') ? mapPath : `${mapPath}.db`;
}

/** The text source of a map path: "/etc/mail/access.db" becomes "/etc/mail/access". */
export function sourcePath(mapPath: string): string {
  return mapPath.endsWith('.db') ? mapPath.slice(0, -3) : mapPath;
}

export class CompiledMap implements LookupMap {
  private reader?: CdbReader;
  private stamp = '';
  private fallback?: TextMap;
  private readonly nullTerminated: boolean;
  private readonly onError: (message: string) => void;
  private lastError = '';

  constructor(
    readonly type: string,
    readonly path: string,
    private readonly optional: boolean,
    flags: string[],
    onError: (message: string) => void = () => undefined,
  ) {
    this.nullTerminated = flags.includes('-N');
    // refresh() runs for every connection, so a problem that persists is logged once, not per connection.
    this.onError = (message) => {
      if (message === this.lastError) return;
      this.lastError = message;
      onError(message);
    };
    this.refresh();
  }

  get(key: string): string | undefined {
    if (!this.reader) return this.fallback?.get(key);

    const lower = key.toLowerCase();
    const candidates = lower === key ? [key] : [lower, key];
    for (const k of candidates) {
      const plain = this.reader.get(Buffer.from(k, 'latin1'));
      if (plain) return plain.toString('latin1');
      if (this.nullTerminated) {
        const withNul = this.reader.get(Buffer.from(`${k}\0`, 'latin1'));
        if (withNul) return withNul.toString('latin1').replace(/\0$/, '');
      }
    }
    return undefined;
  }

  refresh(): void {
    const file = compiledPath(this.path);
    let stat: fs.Stats;
    try {
      stat = fs.statSync(file);
    } catch {
      this.useTextSource();
      return;
    }
    const stamp = `${stat.ino}:${stat.size}:${stat.mtimeMs}`;
    if (stamp === this.stamp) return;

    try {
      const data = fs.readFileSync(file);
      const foreign = berkeleyDbKind(data);
      if (foreign) throw new Error(`${foreign} file; rebuild it from its source with posthorn-makemap`);
      this.reader = new CdbReader(data);
      this.stamp = stamp;
      this.fallback = undefined;
      this.lastError = '';
    } catch (err) {
      // Keep the map that was read before, as sendmail keeps an open map.
      this.onError(`cannot read map ${file}: ${(err as Error).message}`);
      this.stamp = stamp;
      if (!this.reader) this.useTextSource();
    }
  }

  private useTextSource(): void {
    this.reader = undefined;
    this.stamp = '';
    if (!this.fallback) {
      this.fallback = new TextMap(this.type, sourcePath(this.path), this.optional, this.onError);
    } else {
      this.fallback.refresh();
    }
  }
}

/** Opens a map by type: compiled types read `<path>.db`, every other type the text file. */
export function openMapBySpec(spec: MapSpec, onError: (message: string) => void): LookupMap {
  if (COMPILED_TYPES.has(spec.type)) {
    return new CompiledMap(spec.type, spec.path, spec.optional, spec.flags, onError);
  }
  return new TextMap(spec.type, spec.path, spec.optional, onError);
}
