// Start to listening: starts `posthorn -bD` N times with the configuration of
// bench/mta.ts, optionally with a STARTTLS certificate. Prints the medians of
// the time from spawn to the first accepted connection, of the time from the
// process's own start to its first 'listening' event, and of the CPU time
// (all threads) used until then.
//
//   node dist/bench/startup.js [--runs 10] [--tls]

import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { startPosthornBench } from './mta';
import { makeTestCerts, type TestCerts } from '../test/tls/certs';

function median(values: number[]): number {
  const s = [...values].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  return s.length % 2 === 1 ? s[mid] : (s[mid - 1] + s[mid]) / 2;
}

async function main(): Promise<void> {
  const i = process.argv.indexOf('--runs');
  const runs = i >= 0 ? Number(process.argv[i + 1]) : 10;
  const withTls = process.argv.includes('--tls');
  let certs: TestCerts | undefined;
  const extraMc: string[] = [];
  if (withTls) {
    certs = await makeTestCerts();
    extraMc.push(
      `define(\`confSERVER_CERT', \`${certs.server.cert}')`,
      `define(\`confSERVER_KEY', \`${certs.server.key}')`,
      `define(\`confCACERT', \`${certs.caCert}')`,
    );
  }

  const probe = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'posthorn-startup-')), 'probe');
  process.env.POSTHORN_STARTUP_PROBE = probe;
  const wall: number[] = [];
  const inner: number[] = [];
  const cpu: number[] = [];
  try {
    for (let run = 0; run < runs; run++) {
      fs.rmSync(probe, { force: true });
      const mta = await startPosthornBench({ sinkPort: 9, extraMc, nodeArgs: ['-r', path.join(__dirname, 'startup-probe.js')] });
      wall.push(mta.startupMs);
      // The probe writes once the 'listening' event ran; wait for it (bounded).
      for (let k = 0; k < 200 && !fs.existsSync(probe); k++) await new Promise((r) => setTimeout(r, 10));
      await mta.stop();
      const [t, c] = fs.readFileSync(probe, 'utf8').trim().split(' ').map(Number);
      inner.push(t);
      cpu.push(c);
    }
  } finally {
    certs?.remove();
    fs.rmSync(path.dirname(probe), { recursive: true, force: true });
  }
  console.log(`${runs} starts${withTls ? ' with STARTTLS configured' : ''}; medians:`);
  console.log(`  spawn to first accepted connection: ${median(wall).toFixed(0)} ms`);
  console.log(`  process start to listening: ${median(inner).toFixed(0)} ms`);
  console.log(`  CPU time until listening: ${median(cpu).toFixed(0)} ms`);
}

main().catch((err) => {
  console.error(err);
  process.exitCode = 1;
});
