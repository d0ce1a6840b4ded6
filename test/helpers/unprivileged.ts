// A daemon whose configuration other users may read, and a command run as
// "nobody" against it: the set-up of the tests of submissions by users who
// may not write the queue folder.

import * as fs from 'node:fs';
import type { TestContext } from 'node:test';
import { baseMc, posthornBin, startPosthorn, type Posthorn } from './posthorn';
import { runCommand, type CommandResult } from './process';

/** The uid and gid of "nobody" on Debian. */
export const NOBODY = 65534;

/**
 * Starts a daemon (DeliveryMode=background) whose folder and configuration
 * everyone may read; the queue (0700) and the log stay root's. Returns
 * undefined, after skipping the test, when this process is not root.
 */
export async function startDaemonForOthers(t: TestContext): Promise<Posthorn | undefined> {
  if (process.getuid?.() !== 0) {
    t.skip('needs root to run the submission as another user');
    return undefined;
  }
  const ph = await startPosthorn({ mc: baseMc(), args: ['-O', 'DeliveryMode=background'] });
  t.after(() => ph.stop());
  fs.chmodSync(ph.dir, 0o755);
  fs.chmodSync(ph.mcPath, 0o644);
  return ph;
}

/** Runs posthorn as "nobody" with the daemon's configuration, in the root folder. */
export function runAsNobody(ph: Posthorn, args: string[], input: string, env: NodeJS.ProcessEnv = process.env): Promise<CommandResult> {
  return runCommand(process.execPath, [posthornBin, '-C', ph.mcPath, ...args], { input, cwd: '/', uid: NOBODY, gid: NOBODY, env });
}

