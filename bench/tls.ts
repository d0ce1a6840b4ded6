// STARTTLS benchmark: clients connect to a real posthorn daemon, send EHLO,
// run STARTTLS and the handshake, send EHLO again and QUIT. Prints handshakes
// per second. Certificates are made with openssl in a temporary folder.
//
//   node dist/bench/tls.js [--clients 10] [--sessions 200]

import * as fs from 'node:fs';
import * as path from 'node:path';
import { baseMc, startPosthorn } from '../test/helpers/posthorn';
import { makeTestCerts } from '../test/tls/certs';
import { TestSmtpClient } from '../test/tls/smtp-client';

function setting(name: string, fallback: number): number {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? Number(process.argv[i + 1]) : fallback;
}

async function session(port: number): Promise<void> {
  const c = await TestSmtpClient.connect(port);
  await c.reply();
  await c.command('EHLO bench.posthorn.test');
  const ready = await c.command('STARTTLS');
  if (!ready.startsWith('220')) throw new Error(`STARTTLS failed: ${ready}`);
  await c.startTls();
  await c.command('EHLO bench.posthorn.test');
  await c.command('QUIT');
  c.close();
}

async function main(): Promise<void> {
  const clients = setting('clients', 10);
  const sessions = setting('sessions', 200);
  const certs = await makeTestCerts();
  const access = path.join(certs.dir, 'access');
  fs.writeFileSync(access, '');
  const ph = await startPosthorn({
    mc: baseMc({
      extra: [
        `define(\`confSERVER_CERT', \`${certs.server.cert}')`,
        `define(\`confSERVER_KEY', \`${certs.server.key}')`,
        `define(\`confCACERT', \`${certs.caCert}')`,
        "define(`confREFUSE_LA', `100000')",
        "define(`confLOG_LEVEL', `5')",
      ],
    }),
  });
  try {
    let next = 0;
    const started = process.hrtime.bigint();
    await Promise.all(
      Array.from({ length: clients }, async () => {
        while (next < sessions) {
          next++;
          await session(ph.port);
        }
      }),
    );
    const seconds = Number(process.hrtime.bigint() - started) / 1e9;
    console.log(`STARTTLS handshakes: ${sessions} sessions, ${clients} clients, ${seconds.toFixed(2)} s`);
    console.log(`handshakes per second: ${(sessions / seconds).toFixed(1)}`);
  } finally {
    await ph.stop();
    certs.remove();
  }
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
