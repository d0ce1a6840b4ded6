// LMTP (RFC 2033) delivery over a stream that is not a TCP connection to an
// MX host: a child process's stdin and stdout (FEATURE(`local_lmtp')) or an
// [IPC] mailer's socket ("FILE /path" for a unix socket, "TCP host port").
// The SMTP client's LMTP mode does the protocol: LHLO, MAIL, one RCPT per
// recipient, DATA, and one reply per accepted recipient after the dot.

import { spawn } from 'node:child_process';
import * as net from 'node:net';
import { Duplex } from 'node:stream';

import type { RecipientResult, SessionOptions, SessionResult, Transaction } from './smtp-client';
import { runSessionOn } from './smtp-client';
import type { ClientTimeouts } from './smtp-client';
import type { ClientTls } from '../tls/client';
import type { Logger } from '../log/logger';

/** Where an [IPC] mailer connects, from its A= arguments. */
export type IpcTarget = { kind: 'unix'; path: string } | { kind: 'tcp'; host: string; port: number };

/** Parses "FILE /var/run/cyrus/socket/lmtp" or "TCP $h 24" (with `host` for $h). */
export function parseIpcArgs(argv: string, host = 'localhost'): IpcTarget | undefined {
  const words = argv.trim().split(/\s+/);
  if (words[0] === 'FILE' && words[1]) return { kind: 'unix', path: words[1] };
  if ((words[0] === 'TCP' || words[0] === 'IPC') && words[1]) {
    const name = words[1] === '$h' ? host : words[1];
    const port = words[2] !== undefined && /^\d+$/.test(words[2]) ? Number(words[2]) : 24;
    return { kind: 'tcp', host: name, port };
  }
  return undefined;
}

export interface LmtpContext {
  heloName: string;
  timeouts: ClientTimeouts;
  /** Name for status texts, e.g. "localhost" or the program path. */
  hostName: string;
  /** The mailer's name ("local", "cyrusv2"), which sendmail puts in ${server_addr} for LMTP. */
  mailerName?: string;
  /** STARTTLS settings; used only for "TCP host port" targets. */
  tls?: ClientTls;
  logger?: Logger;
}

function sessionOptions(ctx: LmtpContext): SessionOptions {
  return { address: '', port: 0, hostName: ctx.hostName, heloName: ctx.heloName, timeouts: ctx.timeouts, lmtp: true };
}

/**
 * Session options for an LMTP server reached over TCP: STARTTLS is used when
 * it offers it, with the host as ${server_name} and the mailer name as ${server_addr}.
 */
function tcpSessionOptions(ctx: LmtpContext, host: string): SessionOptions {
  return { ...sessionOptions(ctx), hostName: host, address: ctx.mailerName ?? '', tls: ctx.tls, logger: ctx.logger };
}

function everyone(tx: Transaction, status: 'tempfail' | 'permfail', dsn: string, text: string): RecipientResult[] {
  return tx.recipients.map((r) => ({ address: r.address, status, dsn, text }));
}

/** Converts a session result into one result per recipient of `tx`. */
export function resultsOf(session: SessionResult, tx: Transaction): RecipientResult[] {
  if (session.kind === 'transaction') return session.recipients;
  if (session.kind === 'rejected') {
    return tx.recipients.map((r) => ({ address: r.address, status: 'permfail', dsn: session.dsn, text: session.text, diagnostic: session.diagnostic }));
  }
  return everyone(tx, 'tempfail', session.dsn ?? '4.0.0', session.text);
}

function connectIpc(target: IpcTarget, timeoutMs: number): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const socket = target.kind === 'unix' ? net.connect({ path: target.path }) : net.connect({ host: target.host, port: target.port });
    const timer = setTimeout(() => {
      socket.destroy();
      reject(Object.assign(new Error('connect timed out'), { code: 'ETIMEDOUT' }));
    }, timeoutMs);
    socket.once('connect', () => {
      clearTimeout(timer);
      socket.removeAllListeners('error');
      resolve(socket);
    });
    socket.once('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
  });
}

/** Runs one LMTP transaction against an [IPC] mailer's socket. */
export async function deliverLmtpIpc(target: IpcTarget, tx: Transaction, ctx: LmtpContext): Promise<{ results: RecipientResult[]; transcript: string[] }> {
  let socket: net.Socket;
  try {
    socket = await connectIpc(target, ctx.timeouts.connect);
  } catch (err) {
    const where = target.kind === 'unix' ? target.path : `${target.host} port ${target.port}`;
    const code = (err as NodeJS.ErrnoException).code;
    const text = code === 'ECONNREFUSED' ? `Connection refused by ${where}` : `${(err as Error).message} with ${where}`;
    return { results: everyone(tx, 'tempfail', '4.4.1', text), transcript: [] };
  }
  const options = target.kind === 'tcp' ? tcpSessionOptions(ctx, target.host) : sessionOptions(ctx);
  const session = await runSessionOn(socket, options, tx);
  return { results: resultsOf(session, tx), transcript: session.transcript };
}

/**
 * Starts `path` with `argv` (argv[0] is the name the program sees) and runs
 * one LMTP transaction over its stdin and stdout. The program is killed when
 * the session ends and it has not exited within `exitWaitMs`.
 */
export async function deliverLmtpProgram(
  path: string,
  argv: string[],
  tx: Transaction,
  ctx: LmtpContext,
  exitWaitMs = 5000,
): Promise<{ results: RecipientResult[]; transcript: string[] }> {
  const child = spawn(path, argv.slice(1), { argv0: argv[0] ?? path, stdio: ['pipe', 'pipe', 'pipe'] });
  let stderr = '';
  child.stderr.setEncoding('latin1');
  child.stderr.on('data', (chunk: string) => {
    if (stderr.length < 4096) stderr += chunk;
  });
  const exited = new Promise<number | null>((resolve) => {
    child.once('exit', (code) => resolve(code));
    child.once('error', () => resolve(null));
  });
  const spawnError = new Promise<Error | undefined>((resolve) => {
    child.once('error', (err) => resolve(err));
    child.once('spawn', () => resolve(undefined));
  });
  const failed = await spawnError;
  if (failed) {
    const text = `Cannot exec ${path}: ${failed.message.replace(/^spawn \S+ /, '')}`;
    return { results: everyone(tx, 'tempfail', '4.0.0', text), transcript: [] };
  }

  const stream = Duplex.from({ readable: child.stdout, writable: child.stdin }) as unknown as net.Socket;
  stream.on('error', () => undefined);
  const session = await runSessionOn(stream, sessionOptions(ctx), tx);

  const timer = setTimeout(() => child.kill('SIGKILL'), exitWaitMs);
  const code = await exited;
  clearTimeout(timer);
  const transcript = [...session.transcript];
  if (stderr.trim() !== '') transcript.push(...stderr.trim().split('\n').slice(0, 20).map((l) => `${path}: ${l}`));
  if (code !== 0 && code !== null && session.kind !== 'transaction') transcript.push(`${path} exited with status ${code}`);
  return { results: resultsOf(session, tx), transcript };
}
