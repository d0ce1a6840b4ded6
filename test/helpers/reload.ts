// Helpers for SIGHUP tests: a session held open after its greeting, and a
// reload of an edited .mc that waits until every process has read it.

import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as net from 'node:net';
import type { Posthorn } from './posthorn';
import { waitFor } from './process';

/** Opens a session from `localAddress` and waits for its 220 greeting. The caller closes the socket. */
export function holdGreeted(port: number, localAddress: string): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const socket = net.connect({ host: '127.0.0.1', port, localAddress });
    socket.once('data', (chunk: Buffer) => {
      const greeting = chunk.toString('latin1');
      if (greeting.startsWith('220 ')) return resolve(socket);
      socket.destroy();
      reject(new Error(`session from ${localAddress} got ${JSON.stringify(greeting)} instead of the greeting`));
    });
    socket.once('error', reject);
    socket.once('close', () => reject(new Error(`session from ${localAddress} closed before its greeting`)));
  });
}

/**
 * Rewrites the .mc with `edit`, sends SIGHUP and waits until `processes`
 * reload lines more are logged (3 for a primary with two workers).
 */
export async function reloadEdited(ph: Posthorn, edit: (mc: string) => string, processes: number): Promise<void> {
  const before = fs.readFileSync(ph.mcPath, 'utf8');
  const after = edit(before);
  assert.notEqual(after, before, 'the edit changes the .mc');
  fs.writeFileSync(ph.mcPath, after);
  const reloads = (): number => (ph.logs().match(/restarting posthorn due to signal/g) ?? []).length;
  const expected = reloads() + processes;
  ph.proc.kill('SIGHUP');
  await waitFor(`${processes} process(es) to reload`, () => reloads() >= expected);
}
