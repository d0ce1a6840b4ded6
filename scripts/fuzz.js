#!/usr/bin/env node
// Long fuzz run with bounded counts: runs every target of test/fuzz/targets.ts
// RUNS times (default 100000) and prints inputs per second and every finding
// with its shrunk counterexample. Needs a build (npx tsc -p .).
//
//   node scripts/fuzz.js [RUNS] [SEED]

const path = require('node:path');
const fc = require('fast-check');
const { TARGETS } = require(path.join(__dirname, '..', 'dist', 'test', 'fuzz', 'targets.js'));

const runs = Number(process.argv[2] ?? 100000);
const seed = Number(process.argv[3] ?? Date.now() % 2 ** 31);
let findings = 0;

console.log(`fuzz: ${runs} inputs per target, seed ${seed}`);
for (const target of TARGETS) {
  const started = process.hrtime.bigint();
  const details = fc.check(target.property, { numRuns: runs, seed });
  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  const rate = Math.round(details.numRuns / seconds);
  if (details.failed) {
    findings++;
    console.log(`FINDING ${target.name}: ${details.errorInstance ?? details.error}`);
    console.log(`  counterexample ${JSON.stringify(details.counterexample)}`);
  }
  console.log(`${target.name.padEnd(28)} ${String(details.numRuns).padStart(8)} inputs ${seconds.toFixed(1).padStart(6)} s ${String(rate).padStart(8)} inputs/s`);
}
console.log(findings === 0 ? 'no findings' : `${findings} findings`);
process.exitCode = findings === 0 ? 0 : 1;
