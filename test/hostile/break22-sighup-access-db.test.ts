// One daemon process: FEATURE(`access_db') and FEATURE(`conncontrol') are
// added to the .mc and applied with SIGHUP. Per docs/queue-operations.md, a
// SIGHUP reads the maps again and new sessions use the new connect-time
// features. The reload rebuilds the connect policy, but sharedAccessMap()
// caches the map per Config object, and reload() copies the new values into
// that same object. The daemon started without an access map, so the cache
// keeps "no map" and the ClientConn entry is never looked up. sendmail runs
// itself again on SIGHUP and so opens the map.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { baseMc, startPosthorn } from '../helpers/posthorn';
import { rawSmtp } from '../helpers/clients';
import { waitFor } from '../helpers/process';
import { holdGreeted } from '../helpers/reload';
import { makemap } from '../e2e/policy-support';

test('SIGHUP adds access_db and conncontrol', async (t) => {
  const ph = await startPosthorn({ mc: baseMc(), args: ['-O', 'DeliveryMode=queueonly'] });
  t.after(() => ph.stop());
  assert.equal(makemap(path.join(ph.dir, 'access'), 'ClientConn:127.0.0.10\t1\n').status, 0);

  const mc = fs.readFileSync(ph.mcPath, 'utf8');
  const added = `FEATURE(\`access_db', \`hash -o ${ph.dir}/access')\nFEATURE(\`conncontrol')\nMAILER(\`local')`;
  fs.writeFileSync(ph.mcPath, mc.replace("MAILER(`local')", added));
  ph.proc.kill('SIGHUP');
  await waitFor('the reload', () => /restarting posthorn due to signal/.test(ph.logs()));

  const open = await holdGreeted(ph.port, '127.0.0.10');
  t.after(() => open.destroy());
  const second = await rawSmtp(ph.port, ['MAIL FROM:<a@c.example>', 'QUIT'], { localAddress: '127.0.0.10' });
  assert.match(second[0], /^220 /);
  assert.equal(second[1], '452 4.3.2 Too many open connections.', 'ClientConn:127.0.0.10 1 with one session open');
});
