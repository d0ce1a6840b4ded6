// The warning before the daemon runs out of file descriptors: libuv closes
// connections it cannot accept without telling Node, so the daemon logs when
// its sessions come near the soft limit of open files.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { spawn } from 'node:child_process';
import { DESCRIPTOR_HEADROOM, DescriptorWatch, openFileLimit } from '../../src/daemon/descriptor-limit';
import { baseMc } from '../helpers/posthorn';
import { canConnect, freePort, waitFor } from '../helpers/process';

test('openFileLimit reads the soft limit', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'posthorn-limits-'));
  const file = path.join(dir, 'limits');
  fs.writeFileSync(file, 'Limit                     Soft Limit           Hard Limit           Units\nMax open files            1024                 524288               files\n');
  assert.equal(openFileLimit(file), 1024);
  fs.writeFileSync(file, 'Max open files            unlimited            unlimited            files\n');
  assert.equal(openFileLimit(file), undefined);
  assert.equal(openFileLimit(path.join(dir, 'missing')), undefined);
  fs.rmSync(dir, { recursive: true });
  assert.equal(typeof openFileLimit(), 'number');
});

test('DescriptorWatch warns once a minute', () => {
  const warnings: string[] = [];
  const watch = new DescriptorWatch(200, (m) => warnings.push(m));
  watch.accepted(200 - DESCRIPTOR_HEADROOM - 1, 0);
  assert.deepEqual(warnings, []);
  watch.accepted(200 - DESCRIPTOR_HEADROOM, 1000);
  assert.equal(warnings.length, 1);
  assert.match(warnings[0], /^136 SMTP sessions open, near the limit of 200 open files \(ulimit -n\)/);
  watch.accepted(180, 30_000);
  assert.equal(warnings.length, 1);
  watch.accepted(180, 62_000);
  assert.equal(warnings.length, 2);
});

test('daemon logs when sessions near the limit', { timeout: 60_000 }, async (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'posthorn-fd-'));
  const port = await freePort('127.0.0.1');
  const values: Record<string, string | number> = { DIR: dir, QUEUE_DIR: path.join(dir, 'mqueue'), MAILBOX_DIR: path.join(dir, 'mail'), LOG_FILE: path.join(dir, 'maillog'), PORT: port, ADDR: '127.0.0.1' };
  const mc = baseMc().replace(/@([A-Z_]+)@/g, (whole, name: string) => String(values[name] ?? whole));
  fs.mkdirSync(path.join(dir, 'mqueue'), { mode: 0o700 });
  fs.mkdirSync(path.join(dir, 'mail'));
  fs.writeFileSync(path.join(dir, 'sendmail.mc'), mc);
  const main = path.join(__dirname, '..', '..', 'src', 'cli', 'main.js');
  // 120 descriptors: the warning comes with the 57th session (120 - 64 headroom + 1).
  const daemon = spawn('sh', ['-c', `ulimit -n 120 && exec "${process.execPath}" "${main}" -bD -C "${dir}/sendmail.mc"`], { stdio: 'ignore' });
  const clients: net.Socket[] = [];
  t.after(async () => {
    for (const c of clients) c.destroy();
    daemon.kill('SIGTERM');
    await new Promise((resolve) => daemon.once('exit', resolve));
    fs.rmSync(dir, { recursive: true, force: true });
  });
  const log = (): string => (fs.existsSync(path.join(dir, 'maillog')) ? fs.readFileSync(path.join(dir, 'maillog'), 'latin1') : '');
  await waitFor('the daemon to listen', async () => /listening on/.test(log()) || (await canConnect('127.0.0.1', port)), 20_000);
  for (let i = 0; i < 60; i++) {
    const socket = net.connect(port, '127.0.0.1');
    socket.on('error', () => undefined);
    clients.push(socket);
    await new Promise((resolve) => socket.once('connect', resolve));
  }
  await waitFor('the warning', async () => /SMTP sessions open, near the limit of 120 open files \(ulimit -n\)/.test(log()), 20_000);
  assert.equal(log().match(/near the limit of/g)?.length, 1);
});

