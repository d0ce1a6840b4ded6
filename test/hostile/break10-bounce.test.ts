// A next hop's rejection text ends up in the bounce (reason, transcript,
// Diagnostic-Code) and in the queue file. A long multi-line reply must not
// give the bounce a line longer than RFC 5322's 998 octets.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { baseMc, startPosthorn } from '../helpers/posthorn';
import { rawSmtp } from '../helpers/clients';
import { startHop } from './break10-hop';

function longest(text: string): number {
  return Math.max(...text.split('\n').map((l) => l.replace(/\r$/, '').length));
}

test('huge rejection text in bounce', { timeout: 60_000 }, async (t) => {
  // 100 lines of 4000 octets, the maximum the reply reader accepts.
  const lines = Array.from({ length: 100 }, (_, i) => `550${i === 99 ? ' ' : '-'}5.1.1 ${'x'.repeat(3990)}`);
  const hop = await startHop({
    command: (verb, _line, s) => {
      if (verb !== 'RCPT') return false;
      s.write(lines.join('\r\n') + '\r\n');
      return true;
    },
  });
  t.after(() => hop.close());
  const ph = await startPosthorn({
    mc: baseMc({ extra: ["define(`SMART_HOST', `[127.0.0.1]')", `define(\`RELAY_MAILER_ARGS', \`TCP $h ${hop.port}')`] }),
  });
  t.after(() => ph.stop());

  const replies = await rawSmtp(ph.port, [
    'EHLO client.posthorn.test',
    'MAIL FROM:<snd@posthorn.test>',
    'RCPT TO:<carol@remote.test>',
    'DATA',
    'Subject: huge rejection\r\n\r\nBody line.\r\n.',
    'QUIT',
  ]);
  assert.match(replies[5] ?? '', /^250 /);
  const line = (await ph.waitForLog(/to=<carol@remote\.test>.*stat=.*/, 30_000))[0];
  t.diagnostic(`to= line: ${line.length} characters`);
  const dsn = await ph.waitForMailbox('snd', 'Subject: huge rejection', 30_000);
  t.diagnostic(`longest bounce line: ${longest(dsn)}; longest log line: ${longest(ph.logs())}`);
  for (const name of fs.readdirSync(ph.queueDir).filter((f) => f.startsWith('qf'))) {
    t.diagnostic(`${name}: longest line ${longest(fs.readFileSync(path.join(ph.queueDir, name), 'latin1'))}`);
  }
  assert.ok(longest(dsn) <= 998, `the bounce has a line of ${longest(dsn)} octets`);
});

test('reply flood while cached', { timeout: 90_000 }, async (t) => {
  // After the transaction the hop sends 4 MB of unasked "250" replies into
  // the idle cached connection.
  const flood = Buffer.from('250 x\r\n'.repeat(600_000));
  const hop = await startHop({
    dot: (s) => {
      s.write('250 2.0.0 queued\r\n');
      setTimeout(() => s.socket.write(flood), 300);
    },
  });
  t.after(() => hop.close());
  const ph = await startPosthorn({
    mc: baseMc({
      extra: [
        "define(`SMART_HOST', `[127.0.0.1]')",
        `define(\`RELAY_MAILER_ARGS', \`TCP $h ${hop.port}')`,
        "define(`confMCI_CACHE_SIZE', `2')",
        "define(`confMCI_CACHE_TIMEOUT', `60s')",
      ],
    }),
  });
  t.after(() => ph.stop());
  const rss = (): number => {
    let total = 0;
    const pending = [ph.proc.pid!];
    while (pending.length > 0) {
      const pid = pending.pop()!;
      try {
        const status = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
        total += Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? 0);
        const children = fs.readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim();
        if (children !== '') pending.push(...children.split(/\s+/).map(Number));
      } catch {
        // The process exited.
      }
    }
    return total;
  };
  const before = rss();
  await rawSmtp(ph.port, [
    'EHLO client.posthorn.test',
    'MAIL FROM:<snd@posthorn.test>',
    'RCPT TO:<carol@remote.test>',
    'DATA',
    'Subject: flood\r\n\r\nBody line.\r\n.',
    'QUIT',
  ]);
  await ph.waitForLog(/to=<carol@remote\.test>.*stat=.*/, 30_000);
  await new Promise((resolve) => setTimeout(resolve, 3000));
  const after = rss();
  t.diagnostic(`RSS of the daemon and its workers: ${before} kB before, ${after} kB after 4 MB of unasked replies`);
  assert.ok(after - before < 50_000, `memory grew by ${after - before} kB`);
});
