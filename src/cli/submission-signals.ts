// Removal of an unfinished submission's queue files on SIGTERM, SIGINT or
// SIGHUP, so an interrupted `sendmail -t` leaves no orphan df in the queue.

import * as os from 'node:os';

const ABORT_SIGNALS: readonly NodeJS.Signals[] = ['SIGTERM', 'SIGINT', 'SIGHUP'];

/** How long the process waits to die of the signal it sends itself before it exits. */
const SELF_KILL_GRACE_MS = 1000;

export interface SubmissionGuard {
  /**
   * Marks the start of the commit: a signal from now on waits for release().
   * Returns false when a signal came first, so the files are being removed and
   * the caller must not commit.
   */
  beginCommit(): boolean;
  /**
   * Removes the handlers. A signal that arrived during the commit ends the
   * process now: with `status` (0 unless some recipients were invalid) when
   * the message was queued (`queued`), since a caller that saw the signal's
   * status would send the message again.
   */
  release(queued?: boolean, status?: number): void;
}

/**
 * Installs handlers that run `abort` (remove the submission's files) and then
 * end the process by the same signal, so its exit status stays what it was
 * without the handlers (a shell shows 128 + the signal number). During the
 * commit the signal waits, because the message is then either queued whole or
 * removed by the commit's own error path.
 *
 * NOTE: sendmail 8.17 removes the files too but then exits 0 (checked with
 * Debian's 8.17.1.9 for all three signals).
 */
export function guardSubmission(abort: () => Promise<void>): SubmissionGuard {
  let committing = false;
  let pending: NodeJS.Signals | undefined;
  let released = false;

  const onSignal = (signal: NodeJS.Signals): void => {
    if (pending !== undefined) return;
    pending = signal;
    if (committing) return;
    void abort()
      .catch(() => undefined)
      .then(() => endBySignal(signal));
  };

  const removeHandlers = (): void => {
    for (const signal of ABORT_SIGNALS) process.removeListener(signal, onSignal);
  };
  for (const signal of ABORT_SIGNALS) process.on(signal, onSignal);

  return {
    beginCommit() {
      if (pending !== undefined) return false;
      committing = true;
      return true;
    },
    release(queued = false, status = 0) {
      if (released) return;
      released = true;
      if (committing && pending !== undefined && queued) {
        removeHandlers();
        process.exit(status);
      }
      if (committing && pending !== undefined) {
        endBySignal(pending);
        return;
      }
      // Before the commit a signal's abort is already under way and ends the process itself.
      if (pending === undefined) removeHandlers();
    },
  };

  function endBySignal(signal: NodeJS.Signals): void {
    removeHandlers();
    process.kill(process.pid, signal);
    // Another listener for the signal would keep the process alive.
    const code = 128 + (os.constants.signals[signal] ?? 0);
    setTimeout(() => process.exit(code), SELF_KILL_GRACE_MS).unref();
  }
}
