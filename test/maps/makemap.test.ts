// makemap with sendmail's arguments: source on stdin, <mapname>.db written,
// errors naming the line, and the old map kept on a bad source.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { spawnSync } from 'node:child_process';
import { parseMakemapArgs, runMakemap } from '../../src/cli/makemap';
import { CdbReader } from '../../src/maps/cdb';
import { repoRoot } from '../helpers/peers';

function run(argv: string[], input: string): { code: number; out: string; err: string } {
  let out = '';
  let err = '';
  const code = runMakemap(argv, { stdin: () => input, stdout: (t) => (out += t), stderr: (t) => (err += t) });
  return { code, out, err };
}

function lookup(file: string, key: string): string | undefined {
  return CdbReader.open(file).get(Buffer.from(key))?.toString('latin1');
}

test('makemap writes access.db', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'makemap-'));
  const map = path.join(dir, 'access');
  const source = '# comment\nConnect:192.0.2.1\tREJECT\nFrom:Spam@Example.COM  ERROR:550 no\n\nTo:a.example RELAY\n  continued\n';
  const r = run(['hash', map], source);
  assert.equal(r.code, 0, r.err);
  assert.equal(lookup(`${map}.db`, 'connect:192.0.2.1'), 'REJECT');
  assert.equal(lookup(`${map}.db`, 'from:spam@example.com'), 'ERROR:550 no');
  assert.equal(lookup(`${map}.db`, 'to:a.example'), 'RELAY continued');
  fs.rmSync(dir, { recursive: true });
});

test('makemap bad source keeps old map', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'makemap-'));
  const map = path.join(dir, 'access');
  assert.equal(run(['hash', map], 'Connect:10 OK\n').code, 0);
  const r = run(['hash', map], 'Connect:10 REJECT\nlonely\nConnect:10 OK\n');
  assert.equal(r.code, 65);
  assert.match(r.err, new RegExp(`${map}:2: missing value for key lonely`));
  assert.match(r.err, new RegExp(`${map}:3: duplicate key connect:10`));
  assert.equal(lookup(`${map}.db`, 'connect:10'), 'OK');
  fs.rmSync(dir, { recursive: true });
});

test('makemap -r replaces duplicates', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'makemap-'));
  const map = path.join(dir, 'm');
  assert.equal(run(['-r', 'btree', map], 'a 1\na 2\n').code, 0);
  assert.equal(lookup(`${map}.db`, 'a'), '2');
  fs.rmSync(dir, { recursive: true });
});

test('makemap -f -N -t options', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'makemap-'));
  const map = path.join(dir, 'm');
  assert.equal(run(['-f', '-N', '-t', ':', 'hash', map], 'Key:some value\n').code, 0);
  assert.equal(lookup(`${map}.db`, 'Key\0'), 'some value\0');
  fs.rmSync(dir, { recursive: true });
});

test('makemap -u prints the map', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'makemap-'));
  const map = path.join(dir, 'm');
  run(['hash', map], 'a 1\nb 2\n');
  const r = run(['-u', 'hash', map], '');
  assert.equal(r.out, 'a\t1\nb\t2\n');
  fs.rmSync(dir, { recursive: true });
});

test('makemap -o adds to the map', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'makemap-'));
  const map = path.join(dir, 'm');
  run(['hash', map], 'a 1\nb 2\n');
  assert.equal(run(['-o', 'hash', map], 'b 3\nc 4\n').code, 0);
  assert.equal(lookup(`${map}.db`, 'a'), '1');
  assert.equal(lookup(`${map}.db`, 'b'), '3');
  assert.equal(lookup(`${map}.db`, 'c'), '4');
  fs.rmSync(dir, { recursive: true });
});

test('makemap usage errors', () => {
  assert.equal(run(['hash'], '').code, 64);
  assert.match(run(['-x', 'hash', 'm'], '').err, /unknown option -x/);
  assert.match(run(['ldap', '/tmp/x'], '').err, /unknown database type ldap/);
  assert.equal(run(['-l'], '').out, 'hash\nbtree\ncdb\n');
  assert.equal(parseMakemapArgs(['-D%', 'hash', 'm']).commentChar, '%');
});

test('bin/makemap reads stdin', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'makemap-'));
  const map = path.join(dir, 'access');
  for (const bin of ['makemap', 'posthorn-makemap']) {
    const r = spawnSync(process.execPath, [path.join(repoRoot, 'bin', bin), 'hash', map], { input: `k ${bin}\n` });
    assert.equal(r.status, 0, r.stderr.toString());
    assert.equal(lookup(`${map}.db`, 'k'), bin);
  }
  fs.rmSync(dir, { recursive: true });
});
