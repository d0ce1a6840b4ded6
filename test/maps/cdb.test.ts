// The cdb store behind compiled maps, and CompiledMap's rebuild detection.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { berkeleyDbKind, buildCdb, CdbReader, writeCdbFile } from '../../src/maps/cdb';
import { CompiledMap } from '../../src/maps/compiled';
import { openMap, parseMapSpec } from '../../src/maps/map';

function tempDir(): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), 'posthorn-maps-'));
}

const b = (s: string): Buffer => Buffer.from(s, 'latin1');

test('cdb finds every key of 5000', () => {
  const entries: [Buffer, Buffer][] = [];
  for (let i = 0; i < 5000; i++) entries.push([b(`key${i}`), b(`value ${i}`)]);
  const reader = new CdbReader(buildCdb(entries));
  for (let i = 0; i < 5000; i += 7) assert.equal(reader.get(b(`key${i}`))?.toString(), `value ${i}`);
  assert.equal(reader.get(b('key5000')), undefined);
  assert.equal(reader.get(b('')), undefined);
});

test('cdb lists entries in order', () => {
  const reader = new CdbReader(buildCdb([[b('a'), b('1')], [b('b'), b('2')]]));
  const listed = [...reader.entries()].map(([k, v]) => `${k}=${v}`);
  assert.deepEqual(listed, ['a=1', 'b=2']);
});

test('empty cdb answers nothing', () => {
  const reader = new CdbReader(buildCdb([]));
  assert.equal(reader.get(b('x')), undefined);
});

test('cdb reader rejects a short file', () => {
  assert.throws(() => new CdbReader(Buffer.alloc(100)), /shorter than the header/);
});

test('Berkeley DB files are recognised', () => {
  const hash = Buffer.alloc(64);
  hash.writeUInt32LE(0x061561, 12);
  assert.equal(berkeleyDbKind(hash), 'Berkeley DB hash');
  assert.equal(berkeleyDbKind(buildCdb([[b('a'), b('1')]])), undefined);
});

test('compiled map reads .db and notices a rebuild', () => {
  const dir = tempDir();
  const source = path.join(dir, 'access');
  fs.writeFileSync(source, 'connect:10.0.0.1 REJECT\n');
  writeCdbFile(`${source}.db`, [[b('connect:10.0.0.1'), b('OK')]]);

  const map = new CompiledMap('hash', source, false, []);
  assert.equal(map.get('Connect:10.0.0.1'), 'OK', 'the compiled file wins over the text source');

  writeCdbFile(`${source}.db`, [[b('connect:10.0.0.1'), b('RELAY')]]);
  map.refresh();
  assert.equal(map.get('connect:10.0.0.1'), 'RELAY');
  fs.rmSync(dir, { recursive: true });
});

test('compiled map falls back to the text source', () => {
  const dir = tempDir();
  const source = path.join(dir, 'access');
  fs.writeFileSync(source, 'Connect:10.0.0.2 REJECT\n');
  const map = openMap(parseMapSpec(`hash -o ${source}`), () => undefined);
  assert.equal(map.get('connect:10.0.0.2'), 'REJECT');
  fs.rmSync(dir, { recursive: true });
});

test('compiled map keeps old contents on a bad file', () => {
  const dir = tempDir();
  const source = path.join(dir, 'access');
  writeCdbFile(`${source}.db`, [[b('k'), b('v')]]);
  const errors: string[] = [];
  const map = new CompiledMap('hash', source, false, [], (m) => errors.push(m));
  fs.writeFileSync(`${source}.db`, Buffer.alloc(10));
  map.refresh();
  assert.equal(map.get('k'), 'v');
  assert.match(errors[0], /cannot read map .*access\.db/);
  fs.rmSync(dir, { recursive: true });
});

test('-N map finds keys stored with a NUL', () => {
  const dir = tempDir();
  const source = path.join(dir, 'm');
  writeCdbFile(`${source}.db`, [[b('key\0'), b('value\0')]]);
  const map = new CompiledMap('hash', source, false, ['-N']);
  assert.equal(map.get('key'), 'value');
  fs.rmSync(dir, { recursive: true });
});

test('missing map logged once', () => {
  const dir = tempDir();
  const errors: string[] = [];
  const map = new CompiledMap('hash', path.join(dir, 'absent'), false, [], (m) => errors.push(m));
  for (let i = 0; i < 5; i++) map.refresh();
  assert.equal(errors.length, 1);
  assert.match(errors[0], /cannot open map .*absent/);
  assert.equal(map.get('x'), undefined);
  fs.rmSync(dir, { recursive: true });
});
