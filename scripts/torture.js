#!/usr/bin/env node
// Crash-safety torture run with bounded counts: sends MESSAGES messages over
// CLIENTS connections while killing the daemon with SIGKILL KILLS times, then
// prints the figures and every finding. Needs a build (npx tsc -p .).
//
//   node scripts/torture.js [MESSAGES=2000] [KILLS=40] [CLIENTS=16]

const path = require('node:path');
const { runTorture } = require(path.join(__dirname, '..', 'dist', 'test', 'hostile', 'torture.js'));

async function main() {
  const [messages = 2000, kills = 40, clients = 16] = process.argv.slice(2).map(Number);
  const result = await runTorture({ messages, kills, clients, log: (line) => console.log(line) });
  console.log(`messages attempted ${result.attempted}, accepted (250) ${result.accepted}, kills ${result.kills}`);
  console.log(`delivered ${result.delivered}, duplicates ${result.duplicates}, leftover df/tf files ${result.leftoverFiles}`);
  console.log(`${result.seconds.toFixed(1)} s, ${(result.attempted / result.seconds).toFixed(1)} messages per second`);
  const findings = [
    ...result.lost.map((x) => `lost: ${x}`),
    ...result.corrupted.map((x) => `corrupted: ${x}`),
    ...result.leftInQueue.map((x) => `left in queue: ${x}`),
    ...result.damagedLog.map((x) => `log: ${x}`),
  ];
  for (const f of findings) console.log(`FINDING ${f}`);
  console.log(findings.length === 0 ? 'no findings' : `${findings.length} findings`);
  process.exitCode = findings.length === 0 ? 0 : 1;
}

main().catch((err) => {
  console.error(err);
  process.exitCode = 2;
});
