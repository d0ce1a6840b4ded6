// The compiled form of a map: a constant database in D. J. Bernstein's cdb
// format (https://cr.yp.to/cdb/cdb.txt). A 2048-byte header holds 256 hash
// table pointers, the records follow, then the hash tables. A lookup costs
// one hash and usually one probe, and the whole file is written once and
// then only read, which suits maps that makemap rebuilds from a text source.
//
// Files are written to a temporary name, fsync'd and renamed over the old
// one, so a reader sees either the old map or the new one, never a mix.

import * as fs from 'node:fs';
import * as path from 'node:path';

const HEADER_SIZE = 2048;
const MAX_FILE_SIZE = 0xffffffff;

/** The cdb hash: h = ((h << 5) + h) ^ byte, starting at 5381, modulo 2^32. */
export function cdbHash(key: Buffer): number {
  let h = 5381;
  for (const byte of key) h = (((h << 5) + h) ^ byte) >>> 0;
  return h;
}

/** Builds the bytes of a cdb file from key/value pairs, in insertion order. */
export function buildCdb(entries: Iterable<[Buffer, Buffer]>): Buffer {
  const records: Buffer[] = [];
  const slots: { hash: number; pos: number }[][] = Array.from({ length: 256 }, () => []);
  let pos = HEADER_SIZE;

  for (const [key, value] of entries) {
    const head = Buffer.alloc(8);
    head.writeUInt32LE(key.length, 0);
    head.writeUInt32LE(value.length, 4);
    records.push(head, key, value);
    const hash = cdbHash(key);
    slots[hash & 0xff].push({ hash, pos });
    pos += 8 + key.length + value.length;
  }

  const header = Buffer.alloc(HEADER_SIZE);
  const tables: Buffer[] = [];
  for (let i = 0; i < 256; i++) {
    const list = slots[i];
    const length = list.length * 2;
    header.writeUInt32LE(pos, i * 8);
    header.writeUInt32LE(length, i * 8 + 4);
    if (length === 0) continue;

    const table = Buffer.alloc(length * 8);
    for (const { hash, pos: recordPos } of list) {
      let slot = (hash >>> 8) % length;
      while (table.readUInt32LE(slot * 8 + 4) !== 0) slot = (slot + 1) % length;
      table.writeUInt32LE(hash, slot * 8);
      table.writeUInt32LE(recordPos, slot * 8 + 4);
    }
    tables.push(table);
    pos += table.length;
  }
  if (pos > MAX_FILE_SIZE) throw new Error(`map too large for the cdb format (${pos} bytes, maximum 4 GiB)`);
  return Buffer.concat([header, ...records, ...tables]);
}

/** Writes a cdb file atomically: temporary file, fsync, rename, directory fsync. */
export function writeCdbFile(file: string, entries: Iterable<[Buffer, Buffer]>, mode = 0o640): void {
  const data = buildCdb(entries);
  const dir = path.dirname(file);
  const temp = path.join(dir, `.${path.basename(file)}.${process.pid}.tmp`);
  const fd = fs.openSync(temp, 'w', mode);
  try {
    fs.writeSync(fd, data);
    fs.fsyncSync(fd);
  } catch (err) {
    fs.closeSync(fd);
    fs.rmSync(temp, { force: true });
    throw err;
  }
  fs.closeSync(fd);
  fs.renameSync(temp, file);
  try {
    const dirFd = fs.openSync(dir, 'r');
    fs.fsyncSync(dirFd);
    fs.closeSync(dirFd);
  } catch {
    // Some file systems cannot fsync a directory; the rename itself is atomic.
  }
}

/** A cdb file held in memory. Lookups read the buffer and never touch the disk. */
export class CdbReader {
  constructor(private readonly data: Buffer) {
    if (data.length < HEADER_SIZE) throw new Error(`not a cdb file: ${data.length} bytes, shorter than the header`);
  }

  static open(file: string): CdbReader {
    return new CdbReader(fs.readFileSync(file));
  }

  /** Returns the first value stored under `key`, or undefined. */
  get(key: Buffer): Buffer | undefined {
    const data = this.data;
    const hash = cdbHash(key);
    const tablePos = data.readUInt32LE((hash & 0xff) * 8);
    const length = data.readUInt32LE((hash & 0xff) * 8 + 4);
    if (length === 0) return undefined;
    if (tablePos + length * 8 > data.length) throw new Error('corrupt cdb file: hash table past the end');

    let slot = (hash >>> 8) % length;
    for (let probes = 0; probes < length; probes++) {
      const slotHash = data.readUInt32LE(tablePos + slot * 8);
      const recordPos = data.readUInt32LE(tablePos + slot * 8 + 4);
      if (recordPos === 0) return undefined;
      if (slotHash === hash) {
        const value = this.recordValue(recordPos, key);
        if (value) return value;
      }
      slot = (slot + 1) % length;
    }
    return undefined;
  }

  /** Every record in file order, as makemap -u prints them. */
  *entries(): Generator<[Buffer, Buffer]> {
    const end = this.data.readUInt32LE(0);
    let pos = HEADER_SIZE;
    while (pos + 8 <= end) {
      const keyLength = this.data.readUInt32LE(pos);
      const valueLength = this.data.readUInt32LE(pos + 4);
      const keyStart = pos + 8;
      const valueStart = keyStart + keyLength;
      if (valueStart + valueLength > this.data.length) throw new Error('corrupt cdb file: record past the end');
      yield [this.data.subarray(keyStart, valueStart), this.data.subarray(valueStart, valueStart + valueLength)];
      pos = valueStart + valueLength;
    }
  }

  private recordValue(pos: number, key: Buffer): Buffer | undefined {
    if (pos + 8 > this.data.length) throw new Error('corrupt cdb file: record past the end');
    const keyLength = this.data.readUInt32LE(pos);
    const valueLength = this.data.readUInt32LE(pos + 4);
    const keyStart = pos + 8;
    const valueStart = keyStart + keyLength;
    if (valueStart + valueLength > this.data.length) throw new Error('corrupt cdb file: record past the end');
    if (keyLength !== key.length || !this.data.subarray(keyStart, valueStart).equals(key)) return undefined;
    return this.data.subarray(valueStart, valueStart + valueLength);
  }
}

/**
 * Names the Berkeley DB format of a file copied from a sendmail host, or
 * returns undefined. Such files have a magic number at byte 12.
 */
export function berkeleyDbKind(data: Buffer): string | undefined {
  if (data.length < 16) return undefined;
  for (const read of [data.readUInt32LE.bind(data), data.readUInt32BE.bind(data)]) {
    const magic = read(12);
    if (magic === 0x061561) return 'Berkeley DB hash';
    if (magic === 0x053162) return 'Berkeley DB btree';
  }
  return undefined;
}
