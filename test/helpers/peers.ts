// Finds the real programs that the end-to-end tests talk to. They come from
// scripts/install-peers.sh: Debian packages on PATH, and Postfix and sendmail
// unpacked into .peers/ in the repository.

import * as fs from 'node:fs';
import * as path from 'node:path';
import type { TestContext } from 'node:test';

/** The repository root, seen from dist/test/helpers/. */
export const repoRoot = path.resolve(__dirname, '..', '..', '..');

/** Where install-peers.sh unpacks packages that must not replace the system MTA. */
export const peersDir = path.join(repoRoot, '.peers');

export type PeerName =
  | 'swaks'
  | 'python3'
  | 'openssl'
  | 'opendkim'
  | 'opendkim-genkey'
  | 'dovecot'
  | 'postfix'
  | 'sendmail'
  | 'm4';

/** Paths inside .peers/ for the unpacked peers. */
const UNPACKED: Partial<Record<PeerName, string>> = {
  postfix: 'usr/sbin/postfix',
  sendmail: 'usr/libexec/sendmail/sendmail',
};

function isExecutable(file: string): boolean {
  try {
    fs.accessSync(file, fs.constants.X_OK);
    return fs.statSync(file).isFile();
  } catch {
    return false;
  }
}

/** Searches PATH and the usual sbin folders, which a non-login PATH may lack. */
function findOnPath(name: string): string | undefined {
  const dirs = (process.env.PATH ?? '').split(path.delimiter).filter(Boolean);
  dirs.push('/usr/sbin', '/sbin', '/usr/bin', '/bin');
  for (const dir of dirs) {
    const candidate = path.join(dir, name);
    if (isExecutable(candidate)) return candidate;
  }
  return undefined;
}

/** Returns the path of a peer program, or undefined when it is not installed. */
export function findPeer(name: PeerName): string | undefined {
  const unpacked = UNPACKED[name];
  if (unpacked !== undefined) {
    const file = path.join(peersDir, unpacked);
    return isExecutable(file) ? file : undefined;
  }
  return findOnPath(name);
}

/** Reports whether tests run in CI, where a missing peer is a failure. */
export function inCI(): boolean {
  const ci = process.env.CI;
  return ci !== undefined && ci !== '' && ci !== '0' && ci !== 'false';
}

/**
 * Returns the path of a peer program. When it is missing, the test fails in CI
 * (an Error is thrown) and is marked skipped elsewhere, in which case this returns
 * undefined and the caller must return at once.
 */
export function requirePeer(t: TestContext, name: PeerName): string | undefined {
  const found = findPeer(name);
  if (found !== undefined) return found;

  const reason = `${name} not installed; run scripts/install-peers.sh as root`;
  if (inCI()) throw new Error(`required peer missing in CI: ${reason}`);
  t.skip(reason);
  return undefined;
}

/** Returns the environment for the unpacked Postfix, whose shared libraries are in .peers/. */
export function postfixEnv(): NodeJS.ProcessEnv {
  const libDir = path.join(peersDir, 'usr', 'lib', 'postfix');
  const inherited = process.env.LD_LIBRARY_PATH;
  const libraryPath = inherited ? `${libDir}${path.delimiter}${inherited}` : libDir;
  return { ...process.env, LD_LIBRARY_PATH: libraryPath };
}
