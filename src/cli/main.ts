// Entry point of the posthorn command (also run as mailq): parses sendmail's
// flags, loads the configuration, and runs the chosen mode.

// Start-up time: only what every mode needs is imported here. Each mode loads
// its own modules with import() when it runs (compiled to require()), so the
// daemon does not load the mailq, -t or newaliases code, and mailq does not
// load the daemon's (docs/benchmarks.md, "Start to listening").

import * as fs from 'node:fs';
import * as path from 'node:path';
import { parseArgs, USAGE, type CliArgs } from './args';
import { ExitError, EX_CONFIG, EX_IOERR, EX_NOHOST, EX_NOUSER, EX_OK, EX_SOFTWARE, EX_TEMPFAIL, EX_UNAVAILABLE, EX_USAGE } from './sysexits';
import type { RecipientResult } from '../delivery/smtp-client';
import { loadConfig, parseShortOption } from '../config/load';
import type { Config } from '../config/types';
import { VERSION } from '../version';
import { applyDebugFlags, openTranscript, traceSystemIdentity } from './debug-flags';
import { checkQueueDirectory } from './queue-directory';

const DEFAULT_CONFIG_FILES = ['/etc/mail/sendmail.mc', '/etc/mail/sendmail.cf'];

function findConfigFile(args: CliArgs): string | undefined {
  if (args.configFile) return args.configFile;
  return DEFAULT_CONFIG_FILES.find((f) => fs.existsSync(f));
}

function readConfig(args: CliArgs): Config {
  const overrides = [
    ...args.shortOptions.map((o) => parseShortOption(o.letter, o.value)),
    ...args.overrides,
  ];
  const file = findConfigFile(args);
  if (!file) throw new ExitError('no configuration file: give one with -C, e.g. -C /etc/mail/sendmail.mc', EX_CONFIG);
  try {
    return loadConfig({ file, overrides });
  } catch (err) {
    const e = err as Error;
    // Control bytes from a hostile file must not reach the terminal.
    if (e.name === 'ConfigError') throw new ExitError(e.message.replace(/[\x00-\x08\x0b-\x1f\x7f]/g, '?'), EX_CONFIG);
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') {
      throw new ExitError(`cannot open configuration file ${file}: not found`, EX_CONFIG);
    }
    throw new ExitError(`cannot read configuration file ${file}: ${e.message}`, EX_CONFIG);
  }
}

/** The arguments that make a child process use the same configuration. */
function configArgs(args: CliArgs): string[] {
  const out: string[] = [];
  const file = findConfigFile(args);
  if (file) out.push('-C', path.resolve(file));
  for (const o of args.shortOptions) out.push(`-o${o.letter}${o.value}`);
  for (const o of args.overrides) out.push('-O', `${o.name}=${o.value}`);
  // The background delivery of a submission adds its dialogue to the same -X file.
  if (args.transcriptFile !== undefined) out.push('-X', path.resolve(args.transcriptFile));
  return out;
}

/** Starts a detached process that delivers the given items, as sendmail forks for background delivery. */
export function deliverDetached(args: CliArgs, ids: string[]): void {
  if (ids.length === 0) return;
  const selectors = ids.map((id) => `-qI${id}`);
  const { spawn } = require('node:child_process') as typeof import('node:child_process');
  const child = spawn(process.execPath, [__filename, ...configArgs(args), ...selectors], {
    detached: true,
    stdio: 'ignore',
  });
  child.unref();
}

/**
 * -bd: runs the foreground daemon in a detached child and returns once it
 * listens, so that a daemon that cannot start (a port in use, a PidFile held by
 * another daemon) is reported with its message and exit code, not silently.
 */
async function detachDaemon(): Promise<number> {
  const rest = process.argv.slice(2).map((a) => (a === '-bd' ? '-bD' : a));
  const { spawn } = await import('node:child_process');
  const child = spawn(process.execPath, [__filename, ...rest], {
    detached: true,
    stdio: ['ignore', 'ignore', 'pipe', 'ipc'],
  });
  let stderr = '';
  child.stderr?.on('data', (chunk: Buffer) => (stderr += chunk.toString('utf8')));

  return new Promise<number>((resolve) => {
    const release = (code: number) => {
      child.stderr?.destroy();
      if (child.connected) child.disconnect();
      child.unref();
      resolve(code);
    };
    child.once('message', () => release(EX_OK));
    child.once('exit', (code) => {
      const lines = stderr.split('\n').filter((l) => /^posthorn: /.test(l));
      process.stderr.write(lines.length > 0 ? lines.join('\n') + '\n' : stderr);
      resolve(code ?? EX_UNAVAILABLE);
    });
  });
}

async function runDaemon(args: CliArgs, config: Config): Promise<number> {
  if (args.mode === 'daemon') return detachDaemon();

  const [{ createLogger, createServices }, { Daemon }, { onSighup }, { isWorker, reportWorkerReady, WorkerPool, workerCount }] =
    await Promise.all([import('../daemon/services'), import('../daemon/daemon'), import('../daemon/signals'), import('../daemon/workers')]);
  // A SIGHUP before the reload handler below is set would end the process
  // (Node's default); it is noted here and applied once the daemon runs.
  let earlySighup = false;
  const noteEarlySighup = (): void => {
    earlySighup = true;
  };
  process.on('SIGHUP', noteEarlySighup);
  const { lowerThreadPoolPriority, poolNice } = await import('../daemon/pool-priority');
  const nice = poolNice(config);
  if (nice !== undefined) await lowerThreadPoolPriority(nice);
  const logger = createLogger(config, true);
  // Workers (daemon/workers.ts): the primary keeps the PidFile, the signals and
  // the queue runs; each worker listens, runs sessions and immediate deliveries.
  const worker = isWorker();
  if (!worker) for (const notice of config.notices ?? []) logger.notice(notice);
  const workers = worker ? 1 : workerCount(config, logger);
  const role = worker ? 'worker' : workers > 1 ? 'primary' : undefined;
  const services = await createServices(config, logger, { recover: !worker, journal: true });
  const daemon = new Daemon(services, {
    queueInterval: worker ? 0 : args.queueInterval ?? 0,
    commandLine: ['posthorn', ...process.argv.slice(2)].join(' '),
    transcript: openTranscript(args),
    role,
  });
  let stop: (reason: string, code?: number) => void = () => undefined;
  const pool = role === 'primary' ? new WorkerPool(workers, logger, () => stop('no workers left', EX_UNAVAILABLE)) : undefined;
  try {
    await daemon.start();
  } catch (err) {
    throw new ExitError((err as Error).message, EX_UNAVAILABLE);
  }
  if (pool) {
    try {
      await pool.start();
    } catch (err) {
      logger.error((err as Error).message);
      await daemon.stop('workers did not start');
      throw new ExitError((err as Error).message, EX_UNAVAILABLE);
    }
  }
  if (worker) {
    reportWorkerReady();
  } else if (process.send) {
    // Started by -bd: tell the waiting parent that the listeners are up.
    process.send('listening');
    process.disconnect();
  }

  // SIGHUP: read the configuration and maps again; a broken file keeps the old one.
  const removeSighup = onSighup(async () => {
    pool?.signal('SIGHUP');
    try {
      await daemon.reload(readConfig(args));
    } catch (err) {
      logger.error(`configuration not reloaded: ${(err as Error).message}`);
    }
  });
  process.removeListener('SIGHUP', noteEarlySighup);
  if (earlySighup) process.emit('SIGHUP', 'SIGHUP');

  return new Promise<number>((resolve) => {
    let stopping = false;
    stop = (reason: string, code = EX_OK) => {
      if (stopping) return;
      stopping = true;
      removeSighup();
      const workersGone = pool ? pool.stop() : Promise.resolve();
      // This process's own deliveries (its queue runs) get their grace period while the workers stop.
      void daemon.stopDeliveries();
      void workersGone.then(() => daemon.stop(reason)).then(() => resolve(code));
    };
    process.once('SIGTERM', () => stop('SIGTERM'));
    process.once('SIGINT', () => stop('SIGINT'));
  });
}

async function runDeliver(args: CliArgs, config: Config): Promise<number> {
  // Programs that pipe mail into sendmail -t expect a silent stderr, so with
  // LogFile=stderr only errors are shown unless -v is given.
  const toStderr = config.logFile === '' || config.logFile === 'stderr';
  const level = toStderr && !args.verbose ? Math.min(config.logLevel, 3) : config.logLevel;
  const [{ Logger, openSink }, { createServices }, { submissionInputs, submissionStatus, submitMessage }] =
    await Promise.all([import('../log/logger'), import('../daemon/services'), import('./submit')]);
  const logger = new Logger([openSink(config.logFile)], level);
  const services = await createServices(config, logger, { recover: false });
  // sendmail's -v delivers at once, in the foreground, and shows the dialogue with each next hop.
  const interactive = config.deliveryMode === 'interactive' || args.verbose;
  const submitted = await submitMessage({
    config: interactive ? { ...config, deliveryMode: 'interactive' } : config,
    store: services.store,
    logger,
    ...submissionInputs(args, config),
  });
  // Without a valid recipient only the bounce about the invalid ones is queued.
  const { id, bounceIds } = submitted;

  if (interactive) {
    const verbose = args.verbose ? (await import('./verbose-output')).verboseToStdout() : undefined;
    let status = EX_OK;
    const onResult = (r: RecipientResult): void => {
      if (r.status === 'permfail') status = failureStatus(r.dsn);
    };
    if (id !== undefined) await services.deliverer.deliver(id, { force: true, locked: true, verbose, onResult });
    for (const bounceId of bounceIds) await services.deliverer.deliver(bounceId, { force: true, verbose });
    // The next hop's session ends with QUIT now, as sendmail's does, not when the process exits.
    await (await import('../delivery/connection-cache')).connectionCache.flush(verbose);
    if (config.superSafe === 'interactive' && id !== undefined) {
      // Committed without fsync (see submitMessage): what is still queued must reach the disk now.
      await services.store.syncItem(id).catch((err: Error) => {
        throw new ExitError(`cannot queue message: ${err.message}`, EX_TEMPFAIL);
      });
    }
    return submissionStatus(submitted, status);
  }
  const ids = id === undefined ? bounceIds : [id, ...bounceIds];
  if (config.deliveryMode === 'background') deliverDetached(args, ids);
  return submissionStatus(submitted);
}

/**
 * Returns the exit status of an interactive delivery (-v, -odi) in which a
 * recipient failed for good, as sendmail's: 67 for an unknown user, 68 for an
 * unknown host, 69 otherwise. The message is bounced as well.
 */
function failureStatus(dsn: string): number {
  if (dsn === '5.1.2') return EX_NOHOST;
  if (dsn.startsWith('5.1.')) return EX_NOUSER;
  return EX_UNAVAILABLE;
}


/** The exit status a shell reports for a process that SIGPIPE ended (128 + 13). */
const EXIT_BROKEN_PIPE = 141;

/**
 * Ends a listing command quietly when the reader of its output went away
 * (`mailq | head -1`). sendmail dies of SIGPIPE there; Node ignores SIGPIPE and
 * reports EPIPE as an error event on stdout instead.
 */
function exitOnBrokenPipe(): void {
  process.stdout.on('error', (err: NodeJS.ErrnoException) => {
    if (err.code === 'EPIPE') {
      // When only the final flush failed, every line was already written, so the command's own code stands.
      process.exit(exitingWith ?? EXIT_BROKEN_PIPE);
    }
    process.stderr.write(`posthorn: writing standard output failed: ${err.message}\n`);
    process.exit(EX_IOERR);
  });
}

/** The exit code once the command has finished and only its output is flushed. */
let exitingWith: number | undefined;

/** Tells whether the queue folder exists and this user may not create files in it. */
function queueNotWritable(dir: string): boolean {
  try {
    // A path that is no folder is a configuration error that checkQueueDirectory() reports.
    if (!fs.statSync(dir).isDirectory()) return false;
    fs.accessSync(dir, fs.constants.W_OK | fs.constants.X_OK);
    return false;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EACCES';
  }
}

/** Modes that read or write the queue directory. */
const QUEUE_MODES = new Set<CliArgs['mode']>(['daemon', 'daemon-foreground', 'smtp', 'print-queue', 'queue-run', 'deliver', 'export-queue']);
/** Modes that read an existing queue and do not create its folder. */
const READ_QUEUE_MODES = new Set<CliArgs['mode']>(['print-queue', 'queue-run']);

async function run(args: CliArgs): Promise<number> {
  // In daemon modes stdout is not the product, and in -bs it is the SMTP channel, which the session watches.
  if (args.mode !== 'daemon' && args.mode !== 'daemon-foreground' && args.mode !== 'smtp') exitOnBrokenPipe();
  switch (args.mode) {
    case 'help':
      process.stdout.write(USAGE);
      return EX_OK;
    case 'version':
      process.stdout.write(`Posthorn ${VERSION}\n`);
      return EX_OK;
    default:
      break;
  }

  if (args.quarantine !== undefined) (await import('./queue-commands')).checkQuarantineMode(args);
  applyDebugFlags(args, VERSION);
  const config = readConfig(args);
  traceSystemIdentity(config);
  // A submission with -Q needs the same trust: through the daemon the quarantine would be lost silently.
  if (args.quarantine !== undefined && (args.mode === 'queue-run' || args.mode === 'deliver')) {
    (await import('./queue-commands')).checkQuarantineUser(config);
  }
  // A user who may not write the queue (a web server, a cron job) submits through the daemon, as sendmail's MSP does.
  if (args.mode === 'deliver' && queueNotWritable(config.queueDirectory)) {
    return (await import('./submit-to-daemon')).submitToDaemon(args, config);
  }
  if (args.mode === 'smtp' && queueNotWritable(config.queueDirectory)) {
    return (await import('./submit-to-daemon')).relaySmtpToDaemon(config);
  }
  if (QUEUE_MODES.has(args.mode)) checkQueueDirectory(config.queueDirectory, !READ_QUEUE_MODES.has(args.mode));
  // -X records the SMTP dialogues of this process: the next hops of a submission or a queue run,
  // and with -bs the session on standard input too (the daemon opens its own).
  const transcript = args.mode === 'deliver' || args.mode === 'queue-run' || args.mode === 'smtp' ? openTranscript(args) : undefined;
  switch (args.mode) {
    case 'print-config':
      process.stdout.write((await import('../config/print')).printConfig(config));
      return EX_OK;
    case 'daemon':
    case 'daemon-foreground':
      return runDaemon(args, config);
    case 'smtp':
      return (await import('./smtp-stdio')).runSmtpOnStdio(config, (ids) => deliverDetached(args, ids), transcript);
    case 'print-queue':
      return (await import('./queue-commands')).printQueue(config, args);
    case 'queue-run':
      return (await import('./queue-commands')).runQueueCommand(config, args);
    case 'deliver':
      return runDeliver(args, config);
    case 'init-aliases':
      return (await import('./newaliases')).runNewaliases(config, { out: (l) => process.stdout.write(`${l}\n`), err: (l) => process.stderr.write(`${l}\n`) });
    case 'verify':
      return (await import('./verify')).runVerify(config, args.recipients, (l) => process.stdout.write(`${l}\n`));
    case 'test':
      return (await import('./address-test')).runAddressTest(config);
    case 'export-queue':
      return (await import('./queue-commands')).exportQueue(config);
    case 'host-status':
    case 'purge-host-status':
      // sendmail without HostStatusDirectory prints nothing here. Posthorn keeps no host status even with it.
      if (config.options.get('HostStatusDirectory') !== undefined) {
        process.stderr.write('posthorn: HostStatusDirectory is accepted but no host status is kept; nothing to show or purge\n');
      }
      return EX_OK;
  }
  return EX_USAGE;
}

export function main(argv: string[], invokedAs: string): void {
  const name = path.basename(invokedAs);
  let args: CliArgs;
  try {
    args = parseArgs(argv, name);
  } catch (err) {
    fail(err);
    return;
  }

  run(args).then(
    (code) => exitAfterOutput(code),
    (err) => fail(err),
  );
}

/** Exits once stdout and stderr have drained, so piped output is never cut off. */
function exitAfterOutput(code: number): void {
  exitingWith = code;
  let pending = 2;
  const done = () => {
    if (--pending === 0) process.exit(code);
  };
  process.stdout.write('', done);
  process.stderr.write('', done);
}

function fail(err: unknown): void {
  if (err instanceof ExitError) {
    process.stderr.write(`posthorn: ${err.message}\n`);
    exitAfterOutput(err.exitCode);
    return;
  }
  process.stderr.write(`posthorn: internal error: ${(err as Error).stack ?? err}\n`);
  exitAfterOutput(EX_SOFTWARE);
}

if (require.main === module) {
  main(process.argv.slice(2), process.argv[1] ?? 'posthorn');
}
