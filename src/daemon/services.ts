// Builds the long-lived parts every mode shares: logger, queue store, resolver,
// deliverer, delivery runner and the checkpoint chain.

import * as fs from 'node:fs';
import type { Config } from '../config/types';
import { Logger, openSink } from '../log/logger';
import { QueueStore } from '../queue/store';
import { shouldQueue } from '../queue/sort';
import { MailResolver } from '../dns/resolver';
import { Deliverer } from '../delivery/deliver';
import { isOwnAddressLiteral } from '../delivery/interfaces';
import { configureConnectionCache } from '../delivery/connection-cache';
import { DeliveryRunner } from './runner';
import { queueRunPolicy } from './queue-policy';
import { CheckpointChain } from '../server/checkpoint';
import { relayCheckpoint } from '../policy/relay';
import { accessCheckpoints, delayChecksCheckpoint } from '../policy/check-mail';
import { milterCheckpoint } from '../milter/checkpoint';
import { tlsClientCheckpoint } from '../policy/tls-rulesets';
import { ServerTls } from '../tls/server';
import { tlsAccessMap } from '../tls/access';
import type { ServerContext } from '../server/context';
import { VERSION } from '../version';
import { loadAverage } from './load-average';

export interface Services {
  config: Config;
  logger: Logger;
  store: QueueStore;
  resolver: MailResolver;
  deliverer: Deliverer;
  runner: DeliveryRunner;
  chain: CheckpointChain;
}

/** Opens the log destinations that LogFile names. */
export function createLogger(config: Config, foreground: boolean): Logger {
  const dest = config.logFile;
  const sinks = [openSink(dest)];
  // A foreground daemon also shows its log on stderr, as sendmail -bD -v would.
  if (foreground && dest !== 'stderr' && dest !== '') sinks.push(openSink('stderr'));
  return new Logger(sinks, config.logLevel);
}

/**
 * `recover`: run queue recovery at start (the daemon and queue runs do). It
 * runs in the background, so that listening and the first delivery do not
 * wait for it; `store.recovered()` waits for it.
 */
export async function createServices(
  config: Config,
  logger: Logger,
  opts: { recover?: boolean; deferRecovery?: boolean; journal?: boolean } = {},
): Promise<Services> {
  // The commit journal only in the daemon: a short-lived process would leave its entries to the next recovery.
  const journal = opts.journal === true && config.options.get('CommitJournal') !== false;
  const store = new QueueStore({ dir: config.queueDirectory, superSafe: config.superSafe, logger, journal });
  // deferRecovery: a queue run starts the recovery once it has gathered its items.
  await store.init({ recover: opts.recover ?? true, background: true, deferred: opts.deferRecovery });
  ensureMailboxDirectory(config, logger);

  configureConnectionCache(config.options);
  const resolver = new MailResolver(config.nameServers);
  const deliverer = new Deliverer({ config, store, logger, resolver });
  const runner = new DeliveryRunner(deliverer, store, logger, {
    concurrency: 20,
    policy: () => queueRunPolicy(config),
  });
  const chain = createChain(config, logger);
  return { config, logger, store, resolver, deliverer, runner, chain };
}

/**
 * Builds the checkpoint chain from `config`: rulesets, access map and mail
 * filters. A SIGHUP reload builds a new one, so maps are read again.
 */
export function createChain(config: Config, logger: Logger): CheckpointChain {
  const chain = new CheckpointChain([
    tlsClientCheckpoint(() => tlsAccessMap(config, (message) => logger.error(message))),
    // The access map's From:, To: and Connect: entries, before the relay decision they can allow.
    ...accessCheckpoints(config, (message) => logger.error(message)),
    relayCheckpoint({
      localDomains: config.localDomains,
      relayDomains: config.relayDomains,
      ownLiteral: (domain) => isOwnAddressLiteral(domain, config),
      relayMessage: config.mcVariables?.get('confRELAY_MSG'),
    }),
  ]);
  // delay_checks gives the sender's and the client's rejections to each RCPT after the relay decision.
  const delayed = delayChecksCheckpoint(config, (message) => logger.error(message));
  if (delayed) chain.add(delayed);
  // The input mail filters come after the rulesets, as in sendmail.
  chain.add(milterCheckpoint(config, logger));
  return chain;
}

/** The context an SMTP session gets; accepted mail goes to the runner per DeliveryMode. */
export function serverContext(services: Services): ServerContext {
  const { config, logger, store, chain, runner } = services;
  return {
    config,
    logger,
    store,
    chain,
    version: VERSION,
    tls: new ServerTls(config, logger),
    deliversAtOnce(priority?: number): boolean {
      return (config.deliveryMode === 'background' || config.deliveryMode === 'interactive') && !queuedForLoad(config, priority);
    },
    async deliverNow(id: string, locked: boolean, verbose?: (line: string) => void): Promise<void> {
      try {
        await services.deliverer.deliver(id, { force: true, locked, verbose });
      } catch (err) {
        // Logged as the runner logs it; the item stays queued for the next run.
        const system = (err as NodeJS.ErrnoException).code !== undefined;
        logger.child(id).error(`delivery failed: ${system ? (err as Error).message : ((err as Error).stack ?? err)}`);
      } finally {
        store.startDeferredRecovery();
      }
    },
    runQueue(select: (id: string) => Promise<boolean>): Promise<number> {
      return runner.runQueue({ force: true, select, overlap: true });
    },
    onAccepted(id: string, locked = false, priority?: number): void {
      if (queuedForLoad(config, priority)) {
        logger.info(`${id}: load average at or above QueueLA, queued for the next queue run`, 9);
        if (locked) void store.unlock(id);
        return;
      }
      if (config.deliveryMode === 'background' || config.deliveryMode === 'interactive') {
        runner.schedule(id, true, locked);
      } else if (locked) {
        void store.unlock(id);
      }
    },
  };
}

/** Creates MailboxDirectory when it is missing, so a fresh set-up can deliver. */
function ensureMailboxDirectory(config: Config, logger: Logger): void {
  try {
    fs.mkdirSync(config.mailboxDirectory, { recursive: true, mode: 0o755 });
  } catch (err) {
    logger.warn(`cannot create MailboxDirectory ${config.mailboxDirectory}: ${(err as Error).message}`);
  }
}

/**
 * Tells whether a message is only queued, not delivered at once, for the
 * load, as sendmail's shouldqueue() decides. At a load average of QueueLA or
 * more that is when its priority is above QueueFactor / (load - QueueLA + 1),
 * so small, urgent mail still goes out under moderate load. The load is whole, as sendmail's getla() gives it.
 * Without a priority, every message is queued at QueueLA.
 */
export function queuedForLoad(config: Config, priority: number | undefined, load = Math.floor(loadAverage())): boolean {
  const queueLA = config.options.get('QueueLA');
  if (typeof queueLA !== 'number' || queueLA <= 0 || load < queueLA) return false;
  if (priority === undefined) return true;
  const factor = config.options.get('QueueFactor');
  return shouldQueue(priority, load, queueLA, typeof factor === 'number' ? factor : 600000);
}

