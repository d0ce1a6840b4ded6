// Start-up work kept off the path to listening. The daemon does not load the
// command modules of other modes. The STARTTLS context is built once the
// daemon listens, and an unusable key is still logged at start.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { execFileSync } from 'node:child_process';
import { loadConfig } from '../../src/config/load';
import { Logger, type LogSink } from '../../src/log/logger';
import { ServerTls } from '../../src/tls/server';
import { baseMc, startPosthorn } from '../helpers/posthorn';
import { makeTestCerts } from '../tls/certs';

const DIST_SRC = path.resolve(__dirname, '..', '..', 'src');

test('entry point loads no mode modules', () => {
  const script = `require(${JSON.stringify(path.join(DIST_SRC, 'cli', 'main.js'))});` +
    'process.stdout.write(JSON.stringify(Object.keys(require.cache)))';
  const loaded: string[] = JSON.parse(execFileSync(process.execPath, ['-e', script], { encoding: 'utf8', timeout: 30_000 }));
  const rel = loaded.map((f) => path.relative(DIST_SRC, f));
  assert.ok(rel.includes(path.join('cli', 'main.js')), 'main.js itself is loaded');
  for (const lazy of ['cli/submit.js', 'cli/queue-commands.js', 'queue/mailq.js', 'cli/smtp-stdio.js', 'cli/newaliases.js',
    'cli/verify.js', 'config/print.js', 'daemon/daemon.js', 'daemon/services.js', 'daemon/workers.js']) {
    assert.ok(!rel.includes(lazy), `${lazy} is loaded at start`);
  }
});

function tempConfig(keyFile: string, certFile: string): ReturnType<typeof loadConfig> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'posthorn-startup-'));
  const file = path.join(dir, 'sendmail.mc');
  fs.writeFileSync(file, [
    `define(\`QUEUE_DIR', \`${dir}/mqueue')`,
    `define(\`confSERVER_CERT', \`${certFile}')`,
    `define(\`confSERVER_KEY', \`${keyFile}')`,
    "MAILER(`local')",
    "MAILER(`smtp')",
  ].join('\n') + '\n');
  try {
    return loadConfig({ file });
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

test('ServerTls reads files at prepare()', async (t) => {
  const certs = await makeTestCerts();
  t.after(() => certs.remove());
  const key = path.join(certs.dir, 'open.key');
  fs.copyFileSync(certs.server.key, key);
  fs.chmodSync(key, 0o644);
  const lines: string[] = [];
  const sink: LogSink = { write: (_severity, line) => lines.push(line), close: () => undefined };
  const tls = new ServerTls(tempConfig(key, certs.server.cert), new Logger([sink], 9));
  assert.deepEqual(lines, []);
  tls.prepare();
  assert.equal(lines.length, 1);
  assert.match(lines[0], /^STARTTLS=server: TLS unavailable, STARTTLS not offered until the files change: ServerKeyFile \S+ is readable by other users \(mode 644\)$/);
  assert.equal(tls.state(), 'broken');
  // Unchanged files are not logged again.
  assert.equal(lines.length, 1);

  fs.chmodSync(key, 0o600);
  assert.equal(tls.state(), 'ready');
  assert.match(lines[1], /certificate and key usable again/);
});

test('daemon logs unusable key at start', async (t) => {
  const certs = await makeTestCerts();
  t.after(() => certs.remove());
  const key = path.join(certs.dir, 'open.key');
  fs.copyFileSync(certs.server.key, key);
  fs.chmodSync(key, 0o644);
  const ph = await startPosthorn({
    mc: baseMc({
      extra: [`define(\`confSERVER_CERT', \`${certs.server.cert}')`, `define(\`confSERVER_KEY', \`${key}')`],
    }),
  });
  t.after(() => ph.stop());
  await ph.waitForLog(/STARTTLS=server: TLS unavailable, STARTTLS not offered until the files change: ServerKeyFile \S+ is readable by other users \(mode 644\)/);
});
