// Submission by a user who may not write the queue folder, as programs that
// run as www-data or as a cron job's user call `sendmail -t -i`. sendmail
// handles them with its mail submission program: a setgid binary with its
// own client queue that relays to the daemon on [127.0.0.1] over SMTP.
// Posthorn does the same without a client queue. The message is prepared
// as any submission (recipients from -t, Bcc: removed, Date: and
// Message-Id: added) in a private temporary folder, and sent at once to the
// daemon's listener. The command succeeds only when the daemon has taken
// every recipient, which means the message is on the daemon's stable
// storage. When the daemon is not reachable, the command fails with
// EX_TEMPFAIL and an error message, and nothing is kept.

import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import type { Config } from '../config/types';
import { runSession, type SessionOptions, type Transaction } from '../delivery/smtp-client';
import { clientTimeouts } from '../delivery/timing';
import { Logger, openSink, StreamSink } from '../log/logger';
import { QueueStore } from '../queue/store';
import type { CliArgs } from './args';
import { submitMessage } from './submit';
import { EX_NOUSER, EX_OK, EX_TEMPFAIL, EX_UNAVAILABLE } from './sysexits';
import { verboseOutputLine } from './verbose-output';

/** Returns the address and port of the daemon that a local client reaches: the first listener, on loopback. */
export function daemonTarget(config: Config): { address: string; port: number } {
  const daemon = config.daemons.find((d) => !d.modifiers.includes('s')) ?? config.daemons[0];
  if (daemon === undefined) return { address: '127.0.0.1', port: 25 };
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

/** Runs a submission through the daemon; see the top of this file. */
export async function submitToDaemon(args: CliArgs, config: Config): Promise<number> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'posthorn-submit-'));
  try {
    const logger = submissionLogger(config, args.verbose);
    const local: Config = { ...config, queueDirectory: dir, deliveryMode: 'queueonly', superSafe: 'false' };
    const store = new QueueStore({ dir, superSafe: 'false', logger });
    const id = await submitMessage({
      config: local,
      store,
      logger,
      input: process.stdin,
      recipients: args.recipients,
      readRecipients: args.readRecipients,
      ignoreDots: args.ignoreDots || config.options.get('IgnoreDots') === true,
      sender: args.sender,
      fullName: args.fullName,
      dsn: args.dsn,
      quarantine: args.quarantine,
      macros: args.macros,
    });
    const item = await store.read(id);
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
    const tx: Transaction = {
      sender: item.sender,
      recipients: item.recipients.map((r) => ({ address: r.address, notify: r.notify, orcpt: r.orcpt })),
      headers: item.headers,
      dataPath: store.dataPath(id),
      bodySize: item.bodySize,
      eightBit: item.bodyType === '8BITMIME',
      ret: item.ret,
      envid: item.envid,
    };
    const out = (line: string): void => void process.stdout.write(`${verboseOutputLine(line)}\n`);
    const rcpts = tx.recipients.map((r) => r.address).join(',');
    if (args.verbose) out(`${rcpts}... Connecting to ${hostName} port ${target.port} via submission...`);
    const result = await runSession(opts, tx);
    if (args.verbose) for (const line of result.transcript) if (line !== '>>> (message)') out(line.replace(/^<<< /, ''));

    const where = `the mail daemon at ${hostName} port ${target.port}`;
    if (result.kind === 'unreachable') {
      process.stderr.write(`posthorn: cannot submit the message to ${where}: ${result.text}; the message was not sent\n`);
      return EX_TEMPFAIL;
    }
    if (result.kind === 'rejected') {
      process.stderr.write(`posthorn: ${where} rejected the message: ${result.text}\n`);
      return result.dsn.startsWith('4') ? EX_TEMPFAIL : EX_UNAVAILABLE;
    }
    let status = EX_OK;
    for (const r of result.recipients) {
      if (args.verbose) out(`${r.address}... ${r.status === 'sent' ? 'Sent' : r.text}`);
      if (r.status === 'sent') continue;
      if (!args.verbose) process.stderr.write(`${r.address}... ${r.text}\n`);
      // A temporary failure wins: the caller may try again, while a rejected address stays rejected.
      if (r.status === 'tempfail') status = EX_TEMPFAIL;
      else if (status === EX_OK) status = r.dsn.startsWith('5.1.') ? EX_NOUSER : EX_UNAVAILABLE;
    }
    if (status === EX_OK) logger.child(id).info(`to=${rcpts}, relay=${hostName}, stat=Sent, submitted to the daemon`);
    return status;
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}
