// Submission by a user who may not write the queue folder, as programs that
// run as www-data or as a cron job's user call `sendmail -t -i`. sendmail
// handles them with its mail submission program: a setgid binary with its
// own client queue that relays to the daemon on [127.0.0.1] over SMTP.
// Posthorn does the same without a client queue. The message is prepared
// as any submission (recipients from -t, Bcc: removed, Date: and
// Message-Id: added) in a private temporary folder, and sent at once to the
// daemon's listener. The command succeeds only when the daemon has taken
// every recipient, which means the message is on the daemon's stable
// storage. Recipients that the daemon defers with "452 Too many recipients"
// go again in a new transaction. When the daemon is not reachable, the
// command fails with EX_TEMPFAIL and an error message, and nothing is kept.

import * as fs from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import type { Config } from '../config/types';
import { runSession, type RecipientResult, type SessionOptions, type Transaction } from '../delivery/smtp-client';
import { clientTimeouts } from '../delivery/timing';
import { Logger, openSink, StreamSink } from '../log/logger';
import { QueueStore } from '../queue/store';
import type { QueueItem } from '../queue/types';
import type { CliArgs } from './args';
import { submissionInputs, submissionStatus, submitMessage } from './submit';
import { ExitError, EX_NOUSER, EX_OK, EX_TEMPFAIL, EX_UNAVAILABLE } from './sysexits';
import { verboseOutputLine } from './verbose-output';

/** Returns the address and port of the daemon that a local client reaches: the first listener, on loopback. */
export function daemonTarget(config: Config): { address: string; port: number } {
  const daemon = config.daemons.find((d) => !d.modifiers.includes('s')) ?? config.daemons[0];
  if (daemon === undefined) return { address: '127.0.0.1', port: 25 };
  return localAddress(daemon);
}

/** Returns the address and port a local client reaches for every configured listener. */
export function listenerTargets(config: Config): Array<{ address: string; port: number }> {
  if (config.daemons.length === 0) return [{ address: '127.0.0.1', port: 25 }];
  return config.daemons.map(localAddress);
}

/** Returns the loopback address for a listener on every address, else the listener's own address. */
function localAddress(daemon: Config['daemons'][number]): { address: string; port: number } {
  const wildcard = daemon.addr === '' || daemon.addr === '0.0.0.0' || daemon.addr === '::';
  const loopback = daemon.family === 'inet6' ? '::1' : '127.0.0.1';
  return { address: wildcard ? loopback : daemon.addr, port: daemon.port };
}

/**
 * Opens the configured log, or standard error for errors only when this user
 * may not open the log file: the message must not fail for want of a log.
 */
function submissionLogger(config: Config, verbose: boolean): Logger {
  try {
    const toStderr = config.logFile === '' || config.logFile === 'stderr';
    return new Logger([openSink(config.logFile)], toStderr && !verbose ? Math.min(config.logLevel, 3) : config.logLevel);
  } catch {
    return new Logger([new StreamSink(2, false)], 3);
  }
}

/** Signals that end a submission. Its private folder is removed before the process ends. */
const END_SIGNALS: readonly NodeJS.Signals[] = ['SIGTERM', 'SIGINT', 'SIGHUP'];

/**
 * Removes `dir` when a signal ends the submission, and returns the function
 * that removes the handlers. During submitMessage() its own guard
 * (submission-signals.ts) ends the process. During the SMTP session this
 * handler ends it by the same signal.
 */
function removeOnSignal(dir: string): () => void {
  const onSignal = (signal: NodeJS.Signals): void => {
    fs.rmSync(dir, { recursive: true, force: true });
    remove();
    if (process.listenerCount(signal) === 0) process.kill(process.pid, signal);
  };
  const remove = (): void => {
    for (const signal of END_SIGNALS) process.removeListener(signal, onSignal);
  };
  for (const signal of END_SIGNALS) process.on(signal, onSignal);
  return remove;
}

/**
 * Tells whether a recipient's reply is RFC 5321's "452 too many recipients"
 * (section 4.5.3.1.10): the client should send it again in a new transaction.
 */
function tooManyRecipients(r: RecipientResult): boolean {
  return r.status === 'tempfail' && /^452\b/.test(r.diagnostic ?? r.text);
}

/** Runs a submission through the daemon; see the top of this file. */
export async function submitToDaemon(args: CliArgs, config: Config): Promise<number> {
  let dir: string;
  try {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'posthorn-submit-'));
  } catch (err) {
    // A TMPDIR that this user cannot write is the caller's setting, not an internal error.
    throw new ExitError(`cannot create a temporary folder in ${os.tmpdir()} (TMPDIR): ${(err as Error).message}; the message was not sent`, EX_TEMPFAIL);
  }
  const removeHandlers = removeOnSignal(dir);
  try {
    const logger = submissionLogger(config, args.verbose);
    const local: Config = { ...config, queueDirectory: dir, deliveryMode: 'queueonly', superSafe: 'false' };
    const store = new QueueStore({ dir, superSafe: 'false', logger });
    const submitted = await submitMessage({
      config: local,
      store,
      logger,
      ...submissionInputs(args, config),
      final: false,
    });
    const target = daemonTarget(config);
    const hostName = target.address.includes(':') ? `[IPv6:${target.address}]` : `[${target.address}]`;
    const opts: SessionOptions = {
      address: target.address,
      port: target.port,
      hostName,
      heloName: config.hostName,
      timeouts: clientTimeouts(config, true),
      // The daemon greets with this host's own name, as sendmail's MSP relay mailer has F=k for.
      noLoopCheck: true,
    };
    // Without a valid recipient only the bounce about the invalid ones goes to
    // the daemon. After a temporary failure the caller sends the message again,
    // and the bounce goes with that attempt.
    const status = submitted.id === undefined ? EX_OK : await relayMessage(args, store, submitted.id, opts, logger);
    if (status !== EX_TEMPFAIL) {
      for (const bounceId of submitted.bounceIds) await relayBounce(store, bounceId, opts, logger);
    }
    return submissionStatus(submitted, status);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
    removeHandlers();
  }
}

/** Returns the transaction that sends `item` of the private store. */
function transaction(item: QueueItem, store: QueueStore): Transaction {
  return {
    sender: item.sender,
    recipients: item.recipients.map((r) => ({ address: r.address, notify: r.notify, orcpt: r.orcpt })),
    headers: item.headers,
    dataPath: store.dataPath(item.id),
    bodySize: item.bodySize,
    eightBit: item.bodyType === '8BITMIME',
    ret: item.ret,
    envid: item.envid,
  };
}

/**
 * Sends the bounce about invalid recipients to the daemon. A failure is shown
 * but changes no exit status: the invalid recipients already make it EX_USAGE,
 * and the message itself went to the daemon.
 */
async function relayBounce(store: QueueStore, id: string, opts: SessionOptions, logger: Logger): Promise<void> {
  const item = await store.read(id);
  const tx = transaction(item, store);
  const result = await runSession(opts, tx);
  let failure: string | undefined;
  if (result.kind === 'unreachable') {
    failure = result.text;
  } else if (result.kind === 'rejected') {
    failure = result.diagnostic;
  } else {
    const failed = result.recipients.find((r) => r.status !== 'sent');
    if (failed !== undefined) failure = failed.diagnostic ?? failed.text;
  }
  if (failure === undefined) {
    logger.child(id).info(`to=${tx.recipients.map((r) => r.address).join(',')}, relay=${opts.hostName}, stat=Sent, DSN submitted to the daemon`);
    return;
  }
  process.stderr.write(`posthorn: the bounce about the invalid recipients was not sent to the mail daemon at ${opts.hostName} port ${opts.port}: ${failure}\n`);
}

/** Sends the message to the daemon; see the top of this file. Returns the exit status. */
async function relayMessage(args: CliArgs, store: QueueStore, id: string, opts: SessionOptions, logger: Logger): Promise<number> {
  const item = await store.read(id);
  const { hostName, port } = opts;
  const tx = transaction(item, store);
  const out = (line: string): void => void process.stdout.write(`${verboseOutputLine(line)}\n`);
  const rcpts = tx.recipients.map((r) => r.address).join(',');
  const where = `the mail daemon at ${hostName} port ${port}`;

  // A daemon with MaxRecipientsPerMessage replies "452 Too many recipients"
  // to the recipients past its limit. They go again in a new transaction, as
  // long as each transaction takes at least one recipient, because exit 75
  // after a partial acceptance makes the caller send that part twice.
  const results: RecipientResult[] = [];
  let pending = tx.recipients;
  for (let round = 0; pending.length > 0; round++) {
    const names = pending.map((r) => r.address).join(',');
    if (args.verbose) out(`${names}... Connecting to ${hostName} port ${port} via submission...`);
    const result = await runSession(opts, { ...tx, recipients: pending });
    if (args.verbose) for (const line of result.transcript) if (line !== '>>> (message)') out(line.replace(/^<<< /, ''));
    // A later round that fails as a whole leaves its recipients without the message.
    const failRest = (status: 'tempfail' | 'permfail', text: string): void => {
      for (const r of pending) results.push({ address: r.address, status, dsn: status === 'tempfail' ? '4.0.0' : '5.0.0', text, diagnostic: text });
    };
    if (result.kind === 'unreachable') {
      if (round > 0) {
        failRest('tempfail', result.text);
        break;
      }
      process.stderr.write(`posthorn: cannot submit the message to ${where}: ${result.text}; the message was not sent\n`);
      return EX_TEMPFAIL;
    }
    if (result.kind === 'rejected') {
      if (round > 0) {
        failRest(result.dsn.startsWith('4') ? 'tempfail' : 'permfail', result.diagnostic);
        break;
      }
      process.stderr.write(`posthorn: ${where} rejected the message: ${result.diagnostic}\n`);
      return result.dsn.startsWith('4') ? EX_TEMPFAIL : EX_UNAVAILABLE;
    }
    const progress = result.recipients.some((r) => r.status === 'sent');
    const again: typeof pending = [];
    result.recipients.forEach((r, i) => {
      if (progress && tooManyRecipients(r)) again.push(pending[i]);
      else results.push(r);
    });
    pending = again;
  }

  let status = EX_OK;
  for (const r of results) {
    // The daemon's reply gives the reason, because no bounce follows a rejection here.
    const text = r.diagnostic ?? r.text;
    if (args.verbose) out(`${r.address}... ${r.status === 'sent' ? 'Sent' : text}`);
    if (r.status === 'sent') continue;
    if (!args.verbose) process.stderr.write(`${r.address}... ${text}\n`);
    // A temporary failure wins: the caller may try again, while a rejected address stays rejected.
    if (r.status === 'tempfail') status = EX_TEMPFAIL;
    else if (status === EX_OK) status = r.dsn.startsWith('5.1.') ? EX_NOUSER : EX_UNAVAILABLE;
  }
  if (status === EX_OK) logger.child(id).info(`to=${rcpts}, relay=${hostName}, stat=Sent, submitted to the daemon`);
  return status;
}

/**
 * Runs -bs for a user who may not write the queue, as mutt and other mail
 * programs call `sendmail -bs` as the user. The SMTP session on standard
 * input and output is passed through to the daemon, so the client gets the
 * daemon's replies and checks, as sendmail's submission program relays it.
 * When the daemon cannot be reached, the client gets a 421 reply and the
 * exit status is EX_TEMPFAIL.
 */
export function relaySmtpToDaemon(config: Config): Promise<number> {
  const target = daemonTarget(config);
  return new Promise((resolve) => {
    let connected = false;
    const socket = net.connect({ host: target.address, port: target.port, allowHalfOpen: true });
    // A reader of standard output that went away ends the session, not the process with an error.
    process.stdout.on('error', () => socket.destroy());
    socket.once('connect', () => {
      connected = true;
      process.stdin.pipe(socket);
      socket.pipe(process.stdout);
    });
    socket.once('error', (err) => {
      if (connected) return;
      process.stdout.write(`421 4.3.2 ${config.hostName} the mail daemon at ${target.address} port ${target.port} cannot be reached (${err.message}); try again later\r\n`);
      resolve(EX_TEMPFAIL);
    });
    socket.once('close', () => {
      if (!connected) return;
      process.stdin.unpipe(socket);
      process.stdin.destroy();
      resolve(EX_OK);
    });
  });
}
