// SuperSafe=PostMilter: the data file is fsynced only after the filters
// accepted, and a message rejected at end of message is never fsynced.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { loadConfig } from '../../src/config/load';
import { Logger } from '../../src/log/logger';
import { QueueStore } from '../../src/queue/store';
import { CheckpointChain } from '../../src/server/checkpoint';
import { Session } from '../../src/server/session';
import { socketTransport } from '../../src/server/transport';
import { milterCheckpoint } from '../../src/milter/checkpoint';
import { startSessionWithMilters } from '../../src/milter/connect';
import { rawSmtp } from '../helpers/clients';
import { REJECT, TestMilter } from './test-milter';

async function serve(t: { after(fn: () => unknown): void }, superSafe: string, rejectAtEom: boolean) {
  const milter = await new TestMilter({ on: rejectAtEom ? { E: () => [REJECT] } : {} }).listen();
  t.after(() => milter.close());
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'posthorn-postmilter-'));
  t.after(() => fs.rmSync(dir, { recursive: true, force: true }));
  const mc = path.join(dir, 'sendmail.mc');
  fs.writeFileSync(mc, [
    `define(\`QUEUE_DIR', \`${dir}/mqueue')`,
    `define(\`confSAFE_QUEUE', \`${superSafe}')`,
    "LOCAL_DOMAIN(`posthorn.test')",
    `INPUT_MAIL_FILTER(\`test', \`S=${milter.socketSpec}')`,
  ].join('\n') + '\n');
  const config = loadConfig({ file: mc });
  const logger = new Logger([], 0);
  const store = new QueueStore({ dir: path.join(dir, 'mqueue'), superSafe: config.superSafe, logger, sync: async () => undefined });
  await store.init();
  const ctx = {
    config, logger, store, version: 'test', onAccepted: () => undefined,
    chain: new CheckpointChain([milterCheckpoint(config, logger)]),
  };
  const server = net.createServer((socket) => {
    const session = new Session(ctx, socketTransport(socket), { daemonName: 'MTA', relayAllowed: true });
    void startSessionWithMilters(session);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.after(() => new Promise((resolve) => server.close(resolve)));
  return { store, port: (server.address() as net.AddressInfo).port };
}

const SCRIPT = ['EHLO c.example', 'MAIL FROM:<a@c.example>', 'RCPT TO:<b@posthorn.test>', 'DATA', 'Subject: x\r\n\r\nbody\r\n.\r\n', 'QUIT'];

test('postmilter rejected message is never fsynced', async (t) => {
  const { store, port } = await serve(t, 'PostMilter', true);
  const replies = await rawSmtp(port, SCRIPT);
  assert.equal(replies[5], '554 5.7.1 Command rejected');
  assert.equal(store.stats.fileSyncs, 0);
  assert.equal(store.stats.dirSyncs, 0);
});

test('postmilter accepted message is fsynced at commit', async (t) => {
  const { store, port } = await serve(t, 'PostMilter', false);
  const replies = await rawSmtp(port, SCRIPT);
  assert.match(replies[5], /^250 2\.0\.0 /);
  assert.equal(store.stats.fileSyncs, 2, 'df and tf');
});
