#!/usr/bin/env node
// Runs every compiled test file (*.test.js) under dist/test/, or under the folders
// given as arguments, with Node's built-in runner, and exits with its exit code.
//
// Files are listed here rather than handing folders to `node --test`, because
// Node 20 then also runs every .js file inside a folder named "test", which would
// load the helpers in dist/test/helpers/ as test files.
'use strict';

const fs = require('node:fs');
const path = require('node:path');
const { spawn } = require('node:child_process');

const root = path.resolve(__dirname, '..');
const concurrency = 2;

function findTestFiles(dir) {
  const found = [];
  for (const entry of fs.readdirSync(dir, { withFileTypes: true })) {
    const full = path.join(dir, entry.name);
    if (entry.isDirectory()) found.push(...findTestFiles(full));
    else if (entry.isFile() && entry.name.endsWith('.test.js')) found.push(full);
  }
  return found.sort();
}

function main() {
  const args = process.argv.slice(2);
  const dirs = args.length > 0 ? args : [path.join(root, 'dist', 'test')];
  const files = [];
  for (const dir of dirs) {
    if (!fs.existsSync(dir)) {
      console.error(`run-tests: ${dir} not found; run "npx tsc -p ." first`);
      process.exit(1);
    }
    files.push(...findTestFiles(path.resolve(dir)));
  }
  if (files.length === 0) {
    console.error(`run-tests: no *.test.js files under ${dirs.join(', ')}`);
    process.exit(1);
  }

  const nodeArgs = ['--test', `--test-concurrency=${concurrency}`, ...files];
  const child = spawn(process.execPath, nodeArgs, { cwd: root, stdio: 'inherit' });
  child.on('exit', (code, signal) => {
    if (signal) {
      console.error(`run-tests: test runner killed by ${signal}`);
      process.exit(1);
    }
    process.exit(code ?? 1);
  });
}

main();
