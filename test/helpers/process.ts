// Small building blocks shared by the end-to-end helpers: running a command to
// completion with a bound, feeding it input in steps, polling until a condition
// holds, and picking ports.

import * as net from 'node:net';
import { spawn } from 'node:child_process';

export interface CommandResult {
  /** Exit code, or null when the process was ended by a signal. */
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

export interface CommandOptions {
  input?: Buffer | string;
  env?: NodeJS.ProcessEnv;
  cwd?: string;
  /** The process gets SIGKILL after this many milliseconds (default 60000). */
  timeoutMs?: number;
  /** Runs the program as this user and group (the test must run as root). */
  uid?: number;
  gid?: number;
}

/** Runs a program, feeds it `input` on stdin and collects its output. */
export function runCommand(
  file: string,
  args: string[],
  opts: CommandOptions = {},
): Promise<CommandResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(file, args, {
      env: opts.env ?? process.env,
      cwd: opts.cwd,
      stdio: ['pipe', 'pipe', 'pipe'],
      uid: opts.uid,
      gid: opts.gid,
    });
    const stdout: Buffer[] = [];
    const stderr: Buffer[] = [];
    child.stdout.on('data', (chunk: Buffer) => stdout.push(chunk));
    child.stderr.on('data', (chunk: Buffer) => stderr.push(chunk));

    const timeoutMs = opts.timeoutMs ?? 60_000;
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);

    child.on('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      resolve({
        code,
        signal,
        stdout: Buffer.concat(stdout).toString('utf8'),
        stderr: Buffer.concat(stderr).toString('utf8'),
      });
    });

    // A program that exits without reading its input makes the write fail.
    child.stdin.on('error', () => undefined);
    child.stdin.end(opts.input ?? '');
  });
}

/**
 * Runs a program and writes each step's input once its stdout matches the
 * previous step's pattern, so the first input is written at once. Stdin is
 * closed when the last pattern matches, and the program gets SIGKILL after 30 s.
 */
export function runStaged(
  file: string,
  args: string[],
  steps: Array<[input: string, until: RegExp]>,
  opts: Pick<CommandOptions, 'env' | 'cwd' | 'uid' | 'gid'> = {},
): Promise<{ stdout: string; stderr: string; code: number | null }> {
  return new Promise((resolve, reject) => {
    const child = spawn(file, args, { stdio: ['pipe', 'pipe', 'pipe'], env: opts.env, cwd: opts.cwd, uid: opts.uid, gid: opts.gid });
    let stdout = '';
    let stderr = '';
    let step = 0;
    const timer = setTimeout(() => child.kill('SIGKILL'), 30_000);

    const advance = (): void => {
      while (step < steps.length && (step === 0 || steps[step - 1][1].test(stdout))) {
        child.stdin.write(steps[step][0]);
        step++;
      }
      if (step === steps.length && steps[step - 1][1].test(stdout)) child.stdin.end();
    };

    child.stdout.on('data', (d: Buffer) => {
      stdout += d.toString('utf8');
      advance();
    });
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString('utf8')));
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ stdout, stderr, code });
    });
    advance();
  });
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/**
 * Polls `check` every `intervalMs` until it returns a value other than undefined
 * or false, and rejects with `description` in the message after `timeoutMs`.
 */
export async function waitFor<T>(
  description: string,
  check: () => T | undefined | false | Promise<T | undefined | false>,
  timeoutMs = 15_000,
  intervalMs = 50,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await check();
    if (value !== undefined && value !== false) return value;
    if (Date.now() >= deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${description}`);
    await sleep(intervalMs);
  }
}

/**
 * Returns a TCP port that is free on `host` right now. Another process may take
 * it before the caller binds it, which on a test machine is rare.
 */
export function freePort(host = '127.0.0.1'): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once('error', reject);
    server.listen(0, host, () => {
      const address = server.address() as net.AddressInfo;
      server.close(() => resolve(address.port));
    });
  });
}

/** Returns a port free on every one of `hosts`, for mailers that use one port for all. */
export async function freePortOn(hosts: string[]): Promise<number> {
  for (let attempt = 0; attempt < 20; attempt++) {
    const port = await freePort(hosts[0]);
    const free = await Promise.all(hosts.map((host) => isPortFree(host, port)));
    if (free.every(Boolean)) return port;
  }
  throw new Error(`no port free on all of ${hosts.join(', ')} after 20 attempts`);
}

function isPortFree(host: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const server = net.createServer();
    server.once('error', () => resolve(false));
    server.listen(port, host, () => server.close(() => resolve(true)));
  });
}

/** Resolves once a TCP connection to host:port succeeds. */
export function canConnect(host: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect({ host, port });
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}
