// Workers (Posthorn): daemon worker processes through node:cluster. With
// Workers=N above 1 the -bD process becomes a primary that keeps the PidFile,
// the signals and the periodic queue runs, and forks N workers. Each worker
// opens the DAEMON_OPTIONS listeners (cluster shares the sockets, and each
// worker accepts from them itself), runs the SMTP sessions and the immediate
// deliveries. The queue is shared: ids are unique per pid and lock files keep
// one item from being delivered by two processes.
//
// The counters of FEATURE(conncontrol), FEATURE(ratecontrol),
// MaxDaemonChildren and ConnectionRateThrottle are kept by the primary and
// shared by all workers (shared-counters.ts).

import cluster, { type Worker } from 'node:cluster';
import type { Config } from '../config/types';
import type { Logger } from '../log/logger';
import { MAX_WORKERS } from '../config/options-m-z';

/** A worker that died is restarted at most this often per RESTART_WINDOW_MS. */
export const MAX_RESTARTS = 5;
const RESTART_WINDOW_MS = 60_000;
/**
 * How long SIGTERM waits for the workers to exit before it kills them.
 * NOTE: a worker still delivering then is killed, and its items wait in the queue for the next queue run.
 */
const WORKER_STOP_MS = 30_000;

/** The message a worker sends once its listeners are open. */
const READY = 'posthorn-worker-ready';

/** True in a process forked by a Workers primary. */
export function isWorker(): boolean {
  return cluster.isWorker;
}

/**
 * Returns the number of worker processes to run, where 1 means no workers.
 * The configuration reader rejects values outside 1 to MAX_WORKERS, and a
 * Config built without it still gets at most MAX_WORKERS. The logger argument is
 * unused and kept for existing callers.
 */
export function workerCount(config: Config, _logger?: Logger): number {
  const value = config.options.get('Workers');
  if (typeof value !== 'number' || !Number.isInteger(value) || value <= 1) return 1;
  return Math.min(value, MAX_WORKERS);
}

/** Tells the primary that this worker listens. */
export function reportWorkerReady(): void {
  process.send?.(READY);
}

/**
 * The primary's side: forks `count` workers, waits until each listens (throws
 * if one exits first), and restarts a worker that dies later, at most
 * MAX_RESTARTS times a minute.
 */
export class WorkerPool {
  private readonly workers = new Set<Worker>();
  /** Workers that listen, and so have their SIGHUP handler. */
  private readonly listening = new Set<Worker>();
  /** Workers still starting when a SIGHUP came; they get it once they listen. */
  private readonly reloadPending = new Set<Worker>();
  private readonly restarts: number[] = [];
  private stopping = false;

  constructor(
    private readonly count: number,
    private readonly logger: Logger,
    /** Called when the last worker is gone and none may be restarted. */
    private readonly onEmpty: () => void,
  ) {}

  async start(): Promise<void> {
    // The workers accept connections themselves. node:cluster's default, the
    // primary accepting and passing each socket on, cost 0.1 to 0.2 ms of CPU
    // per connection in the benchmark (docs/benchmarks.md, "Tenth round").
    // NODE_CLUSTER_SCHED_POLICY=rr still selects it.
    if (process.env.NODE_CLUSTER_SCHED_POLICY === undefined) cluster.schedulingPolicy = cluster.SCHED_NONE;
    const started = [];
    for (let i = 0; i < this.count; i++) started.push(this.fork());
    try {
      await Promise.all(started);
    } catch (err) {
      await this.stop();
      throw err;
    }
    this.logger.info(`started ${this.count} workers: ${[...this.workers].map((w) => w.process.pid).join(' ')}`);
  }

  /** Sends `signal` to every worker; a SIGHUP waits until the worker listens. */
  signal(signal: NodeJS.Signals): void {
    for (const worker of this.workers) {
      // A worker still loading its modules has no SIGHUP handler yet, and
      // Node's default action would end it.
      if (signal === 'SIGHUP' && !this.listening.has(worker)) {
        this.reloadPending.add(worker);
        continue;
      }
      worker.process.kill(signal);
    }
  }

  /** Sends SIGTERM to every worker and waits until all have exited. */
  async stop(): Promise<void> {
    this.stopping = true;
    const exits = [...this.workers].map(
      (w) => new Promise<void>((resolve) => (w.isDead() ? resolve() : w.once('exit', () => resolve()))),
    );
    this.signal('SIGTERM');
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<void>((resolve) => (timer = setTimeout(resolve, WORKER_STOP_MS)));
    await Promise.race([Promise.all(exits), timeout]);
    clearTimeout(timer);
    this.signal('SIGKILL');
  }

  /** Forks one worker; resolves when it listens, rejects when it exits first. */
  private fork(): Promise<void> {
    const worker = cluster.fork();
    this.workers.add(worker);
    return new Promise<void>((resolve, reject) => {
      let ready = false;
      worker.on('message', (msg) => {
        if (msg === READY && !ready) {
          ready = true;
          this.listening.add(worker);
          if (this.reloadPending.delete(worker)) worker.process.kill('SIGHUP');
          resolve();
        }
      });
      worker.once('exit', (code, signal) => {
        this.workers.delete(worker);
        this.listening.delete(worker);
        this.reloadPending.delete(worker);
        const status = signal ? `signal ${signal}` : `code ${code}`;
        if (!ready) {
          reject(new Error(`worker ${worker.process.pid} exited with ${status} before listening`));
          return;
        }
        if (!this.stopping) this.died(worker.process.pid, status);
      });
    });
  }

  private died(pid: number | undefined, status: string): void {
    const now = Date.now();
    while (this.restarts.length > 0 && now - this.restarts[0] > RESTART_WINDOW_MS) this.restarts.shift();
    if (this.restarts.length >= MAX_RESTARTS) {
      this.logger.error(`worker ${pid} exited with ${status}; not restarted (${MAX_RESTARTS} restarts in the last minute)`);
      if (this.workers.size === 0) this.onEmpty();
      return;
    }
    this.restarts.push(now);
    this.logger.error(`worker ${pid} exited with ${status}; restarting it`);
    this.fork().then(
      () => undefined,
      (err: Error) => {
        this.logger.error(err.message);
        if (this.workers.size === 0 && !this.stopping) this.onEmpty();
      },
    );
  }
}
