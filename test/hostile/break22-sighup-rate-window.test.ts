// One daemon process: SIGHUP shortens ConnectionRateWindowSize from 1h to 2s.
// The reload keeps the connection counts, and ConnectionCounters reads the
// window only when it is created, so the new value is never used. Three
// seconds after the reload, the client's rate over 2 seconds is 1, within
// ClientRate 2, yet the connection gets the rate limit reply. Per
// docs/queue-operations.md, new sessions use the new settings after a SIGHUP.
// docs/options.md names no exception for this option, as it does for
// CommitJournal. The primary's CounterServer (Workers=N) has the same gap.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { baseMc, startPosthorn } from '../helpers/posthorn';
import { rawSmtp } from '../helpers/clients';
import { sleep } from '../helpers/process';
import { makemap } from '../e2e/policy-support';

test('SIGHUP shortens ConnectionRateWindowSize', async (t) => {
  const ph = await startPosthorn({
    mc: baseMc({
      extra: [
        "FEATURE(`access_db', `hash -o @DIR@/access')",
        "FEATURE(`ratecontrol')",
        "define(`confCONNECTION_RATE_WINDOW_SIZE', `1h')",
      ],
    }),
    args: ['-O', 'DeliveryMode=queueonly'],
  });
  t.after(() => ph.stop());
  assert.equal(makemap(path.join(ph.dir, 'access'), 'ClientRate:127.0.0.11\t2\n').status, 0);
  const mail = async (): Promise<string | undefined> =>
    (await rawSmtp(ph.port, ['MAIL FROM:<a@c.example>', 'QUIT'], { localAddress: '127.0.0.11' }))[1];
  assert.match((await mail()) ?? '', /^250 /);
  assert.match((await mail()) ?? '', /^250 /);
  assert.equal(await mail(), '452 4.3.2 Connection rate limit exceeded.');

  fs.writeFileSync(ph.mcPath, fs.readFileSync(ph.mcPath, 'utf8').replace("WINDOW_SIZE', `1h'", "WINDOW_SIZE', `2s'"));
  ph.proc.kill('SIGHUP');
  await ph.waitForLog(/restarting posthorn due to signal/);
  // Longer than the new window: the three connections above are out of it.
  await sleep(3000);
  assert.match((await mail()) ?? '', /^250 /, 'one connection in the last 2 seconds, ClientRate 2');
});
