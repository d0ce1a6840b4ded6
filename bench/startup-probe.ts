// Preloaded into the daemon by bench/startup.ts (node -r): when the first
// listener is up, appends "<ms since the process started> <CPU ms so far>" to
// the file in POSTHORN_STARTUP_PROBE.

import * as fs from 'node:fs';
import * as net from 'node:net';
import { performance } from 'node:perf_hooks';

const out = process.env.POSTHORN_STARTUP_PROBE;
if (out) {
  const listen = net.Server.prototype.listen;
  let done = false;
  net.Server.prototype.listen = function (this: net.Server, ...args: unknown[]) {
    this.once('listening', () => {
      if (done) return;
      done = true;
      const cpu = process.cpuUsage();
      fs.appendFileSync(out, `${performance.now().toFixed(1)} ${((cpu.user + cpu.system) / 1000).toFixed(1)}\n`);
    });
    return (listen as (...a: unknown[]) => net.Server).apply(this, args);
  } as typeof net.Server.prototype.listen;
}
