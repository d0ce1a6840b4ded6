// -bp (mailq), -q and -Q: print the queue, run it once, periodically (-q15m)
// or persistently (-qp), and quarantine or release selected items (-Q).

import { verboseToStdout } from './verbose-output';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import type { Config } from '../config/types';
import type { CliArgs } from './args';
import { Logger, openSink } from '../log/logger';
import { QueueStore, type ControlFileKind } from '../queue/store';
import { formatMailq, readMailqEntries, type MailqEntry } from '../queue/mailq';
import { quarantineQueue } from '../queue/quarantine';
import { streamMailq } from '../queue/mailq-stream';
import { sortCacheWritten } from '../queue/sort-keys';
import { sortWork, tooYoung, type WorkEntry } from '../queue/sort';
import { createServices } from '../daemon/services';
import type { DeliveryRunner } from '../daemon/runner';
import { SHUTDOWN_GRACE_MS } from '../daemon/signals';
import { connectionCache } from '../delivery/connection-cache';
import { queueRunPolicy } from '../daemon/queue-policy';
import { PidFile, expandPidFilePath } from '../daemon/pidfile';
import { formatInterval } from '../daemon/interval';
import { matchesSelectors, needsItem } from './queue-select';
import { ExitError, EX_CONFIG, EX_IOERR, EX_OK, EX_TEMPFAIL, EX_UNAVAILABLE, EX_USAGE } from './sysexits';

/** The control files a command works on: hf with -qQ selectors, Qf with -qL, else qf. */
export function queueKind(args: CliArgs): ControlFileKind {
  if (args.queueLost) return 'Qf';
  return args.queueSelectors.some((s) => s.kind === 'Q') ? 'hf' : 'qf';
}

const MODE_LETTERS: Partial<Record<CliArgs['mode'], string>> = {
  daemon: 'd',
  'daemon-foreground': 'D',
  smtp: 's',
  'print-queue': 'p',
  'print-config': 'P',
  'init-aliases': 'i',
  verify: 'v',
  test: 't',
};

/** Rejects -Q outside deliver and queue-run mode, as sendmail does. */
export function checkQuarantineMode(args: CliArgs): void {
  if (args.quarantine === undefined) return;
  const letter = MODE_LETTERS[args.mode];
  if (letter !== undefined) throw new ExitError(`Can not use -Q with -b${letter}`, EX_USAGE);
  if (args.queueLost) throw new ExitError('Can not use -Q with -qL', EX_USAGE);
}

function policyOf(config: Config) {
  try {
    return queueRunPolicy(config);
  } catch (err) {
    throw new ExitError((err as Error).message, EX_CONFIG);
  }
}

export async function printQueue(config: Config, args: CliArgs): Promise<number> {
  const logger = new Logger([openSink(config.logFile)], config.logLevel);
  const store = new QueueStore({ dir: config.queueDirectory, superSafe: config.superSafe, logger });
  const kind = queueKind(args);
  const policy = policyOf(config);
  if (!needsItem(args.queueSelectors)) {
    // Deep queues: the header comes at once and entries follow as they are read.
    await streamMailq(store, config.queueDirectory, {
      kind,
      order: policy.order,
      minQueueAgeMs: policy.minQueueAgeMs,
      verbose: args.verbose,
      maxQueueRun: policy.maxRunSize,
      selectId: (id) => matchesSelectors(args.queueSelectors, id),
      write: writeStdout,
    });
    // main() calls process.exit() next; the next mailq or queue run should find the cache.
    await sortCacheWritten();
    return EX_OK;
  }
  const all = fs.existsSync(config.queueDirectory) ? await readMailqEntries(store, kind) : [];

  const now = Date.now();
  const work: Array<WorkEntry & { entry: MailqEntry }> = [];
  for (const entry of all) {
    if (!matchesSelectors(args.queueSelectors, entry.id, entry.item)) continue;
    // A qf file that carries a q line is neither run nor listed in normal mode.
    if (kind === 'qf' && entry.item?.quarantine !== undefined) continue;
    if (entry.item && tooYoung(entry.item, policy.minQueueAgeMs, now)) entry.tooYoung = true;
    work.push({ id: entry.id, item: entry.item, locked: entry.locked, mtimeMs: await mtime(store, entry.id, kind), entry });
  }
  sortWork(work, policy.order);

  const entries = work.map((w) => w.entry);
  const text = formatMailq(config.queueDirectory, entries, { verbose: args.verbose, maxQueueRun: policy.maxRunSize });
  // main() calls process.exit() next, which would cut output still queued for a pipe (mailq | less).
  await new Promise<void>((resolve) => process.stdout.write(text, () => resolve()));
  return EX_OK;
}

/** Writes to stdout and waits until the text has been handed on, so a pipe (mailq | less) gets all of it. */
function writeStdout(text: string): Promise<void> {
  return new Promise<void>((resolve, reject) => process.stdout.write(text, (err) => (err ? reject(err) : resolve())));
}

async function mtime(store: QueueStore, id: string, kind: ControlFileKind): Promise<number> {
  try {
    return (await fs.promises.stat(store.controlPath(id, kind))).mtimeMs;
  } catch {
    return 0;
  }
}

/** Returns the account name of this process's uid, or '' when it has none. */
function accountName(): string {
  try {
    return os.userInfo().username;
  } catch {
    return '';
  }
}

/** Only root, the queue directory's owner and TrustedUser may quarantine, as in sendmail. */
function checkQuarantinePermission(config: Config): void {
  const uid = process.getuid?.() ?? 0;
  if (uid === 0) return;
  const owner = fs.existsSync(config.queueDirectory) ? fs.statSync(config.queueDirectory).uid : -1;
  const trusted = config.options.get('TrustedUser');
  // The account of the uid, as sendmail looks it up: $USER and $LOGNAME are the caller's to set.
  const userName = accountName();
  if (uid === owner || (typeof trusted === 'string' && trusted !== '' && (trusted === userName || trusted === String(uid)))) {
    return;
  }
  // sendmail 8.17 exits with EX_USAGE (64) here.
  throw new ExitError('Permission denied (real uid not trusted)', EX_USAGE);
}

/**
 * Rejects -Q from a user who may not quarantine, and logs the attempt. main()
 * calls it before it checks the queue folder, so that such a user gets this
 * message, as from sendmail, and not the queue folder's permission error.
 */
export function checkQuarantineUser(config: Config): void {
  try {
    checkQuarantinePermission(config);
  } catch (err) {
    try {
      new Logger([openSink(config.logFile)], config.logLevel).error(`ALERT: user ${process.getuid?.() ?? '?'} attempted to quarantine jobs`, 1);
    } catch {
      // A log file this user may not open: the message on standard error remains.
    }
    throw err;
  }
}

/** `-Q[reason]` with -q selectors: quarantine, re-label or release the selected items. */
async function runQuarantine(config: Config, args: CliArgs): Promise<number> {
  checkQuarantineUser(config);
  const logger = new Logger([openSink(config.logFile)], config.logLevel);

  const store = new QueueStore({ dir: config.queueDirectory, superSafe: config.superSafe, logger });
  await store.init();
  const selectors = args.queueSelectors;
  const result = await quarantineQueue(store, logger, {
    reason: args.quarantine === '' ? undefined : args.quarantine,
    quarantinedItems: queueKind(args) === 'hf',
    select: (id, item) => matchesSelectors(selectors, id, item),
    hostName: config.macros.get('j'),
    verbose: args.verbose,
  });
  for (const line of result.output) process.stdout.write(line + '\n');
  return EX_OK;
}

export async function runQueueCommand(config: Config, args: CliArgs): Promise<number> {
  if (args.quarantine !== undefined) return runQuarantine(config, args);

  const logger = new Logger([openSink(config.logFile)], config.logLevel);
  const services = await createServices(config, logger, { deferRecovery: true });
  const selectors = args.queueSelectors;
  const kind = queueKind(args);
  policyOf(config);

  const select = async (id: string): Promise<boolean> => {
    if (selectors.length === 0) return true;
    if (!needsItem(selectors)) return matchesSelectors(selectors, id);
    const item = await services.store.read(id).catch(() => undefined);
    return item !== undefined && matchesSelectors(selectors, id, item);
  };

  // -v: the dialogue of each delivery on standard output, as sendmail -q -v shows it.
  const verbose = args.verbose ? verboseToStdout() : undefined;
  const once = () =>
    services.runner.runQueue({ force: true, select, kind: kind === 'hf' ? 'hf' : 'qf', verbose }).finally(() => connectionCache.flush(verbose));
  const interval = args.queueInterval ?? 0;
  if (args.queuePersistent) return runPersistent(config, args, once, interval);

  if (interval <= 0) stopRunOnSignal(services.runner, logger);
  await once();
  await services.store.recovered();
  if (interval <= 0) return EX_OK;

  // -q<time> without -bd: a queue runner that repeats until it is stopped.
  return new Promise<number>((resolve) => {
    const timer = setInterval(() => void once(), interval);
    const stop = () => {
      clearInterval(timer);
      void services.runner.idle().then(() => resolve(EX_OK));
    };
    process.once('SIGTERM', stop);
    process.once('SIGINT', stop);
  });
}

/**
 * Stops a one-time queue run on SIGTERM or SIGINT as the daemon stops: no new
 * delivery starts, and the running ones get SHUTDOWN_GRACE_MS to finish. A
 * delivery cut off after its final dot would be sent again by the next run.
 * The exit status is the one a shell shows for the signal (143 or 130).
 */
function stopRunOnSignal(runner: DeliveryRunner, logger: Logger): void {
  const stop = (signal: 'SIGTERM' | 'SIGINT') => {
    logger.info(`stopping queue run, reason=${signal}`);
    void runner.stop(SHUTDOWN_GRACE_MS).then(() => {
      // These stay queued with a stale lock; the next run may send them again.
      for (const id of runner.runningIds()) logger.info(`${id}: delivery cut off by ${signal}, left in the queue`);
      connectionCache.flush();
      process.exit(128 + os.constants.signals[signal]);
    });
  };
  process.once('SIGTERM', () => stop('SIGTERM'));
  process.once('SIGINT', () => stop('SIGINT'));
}

/**
 * -qp[time]: runs the queue again `sleepMs` after each run ends, until
 * SIGTERM or SIGINT. Like sendmail 8.13, a persistent runner writes the PidFile.
 */
async function runPersistent(
  config: Config,
  args: CliArgs,
  once: () => Promise<number>,
  sleepMs: number,
): Promise<number> {
  let pidFile: PidFile | undefined;
  if (config.pidFile) {
    const path = expandPidFilePath(config.pidFile, {
      daemonInfo: `queueing@${formatInterval(sleepMs)}`,
      queueIntervalMs: sleepMs,
      macros: config.macros,
    });
    try {
      pidFile = PidFile.claim(path, ['posthorn', ...process.argv.slice(2)].join(' '));
    } catch (err) {
      throw new ExitError((err as Error).message, EX_UNAVAILABLE);
    }
  }

  let stopping = false;
  let wake: (() => void) | undefined;
  const stop = () => {
    stopping = true;
    wake?.();
  };
  process.once('SIGTERM', stop);
  process.once('SIGINT', stop);
  try {
    while (!stopping) {
      await once();
      if (stopping) break;
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, Math.max(sleepMs, 1));
        wake = () => {
          clearTimeout(timer);
          resolve();
        };
      });
    }
  } finally {
    pidFile?.release();
  }
  return EX_OK;
}

/**
 * Rewrites the queue in sendmail's format (--to-sendmail-queue) and prints
 * what it did. Items locked by another process are left as they are, and the
 * exit status is then EX_TEMPFAIL, so the command can be run again.
 */
export async function exportQueue(config: Config): Promise<number> {
  // A daemon still running would deliver, or (sendmail) set aside, items while they change format.
  // Every configured listener is tried: a daemon may run with only some of them (MSA, a second address).
  const { listenerTargets } = await import('./submit-to-daemon');
  const targets = listenerTargets(config);
  const answering = await Promise.all(targets.map((t) => answers(t.address, t.port)));
  const target = targets.find((_, i) => answering[i]);
  if (target !== undefined) {
    process.stderr.write(
      `posthorn: a mail daemon answers at ${target.address} port ${target.port}; stop it (posthorn's or sendmail's) before the queue changes hands, then run this again\n`,
    );
    return EX_TEMPFAIL;
  }
  const logger = new Logger([openSink(config.logFile)], config.logLevel);
  const store = new QueueStore({ dir: config.queueDirectory, superSafe: config.superSafe, logger });
  await store.init();
  const { exportQueueToSendmail } = await import('../queue/export-sendmail');
  const report = await exportQueueToSendmail(store, logger);
  await writeStdout(`${report.converted.length} items rewritten in sendmail's format in ${config.queueDirectory}\n`);
  for (const id of report.locked) await writeStdout(`${id}: in use by another process, not rewritten; stop the daemon and run this again\n`);
  for (const { id, reason } of report.failed) await writeStdout(`${id}: not rewritten: ${reason}\n`);
  // The queue's recovery (store.init) set these aside, and the command reported nothing of them before.
  const lost = store.recovery?.lostControlFiles ?? [];
  for (const id of lost) await writeStdout(`${id}: not rewritten: data file df${id} is missing; control file set aside as Qf${id}\n`);
  if (report.failed.length > 0 || lost.length > 0) return EX_IOERR;
  return report.locked.length > 0 ? EX_TEMPFAIL : EX_OK;
}

/** Tells whether something accepts a TCP connection at `address` and `port` within a second. */
function answers(address: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect({ host: address, port });
    const done = (result: boolean): void => {
      socket.destroy();
      resolve(result);
    };
    socket.setTimeout(1000, () => done(false));
    socket.once('connect', () => done(true));
    socket.once('error', () => done(false));
  });
}
