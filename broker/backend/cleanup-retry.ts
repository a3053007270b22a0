import { setTimeout as sleep } from 'node:timers/promises';
import type { Logger } from '../log.js';

/**
 * How long a session's clean-up keeps trying an engine or cluster it cannot reach, in the
 * background. A link that drops (an API server restarting, a remote engine's network) ends
 * every exec stream at once, and the processes behind them keep running: nothing but this
 * clean-up will end them. Tries at 0.5, 1, 2, 4, 8 s, then every 8 s, for two minutes: a
 * restart takes seconds to tens of seconds.
 */
export const CLEANUP_RETRY_MS = 120_000;
const RETRY_FIRST_MS = 500;
const RETRY_MAX_MS = 8_000;

/**
 * Runs `attempt` again in the background while `unreachable` says its failure was the link's,
 * for CLEANUP_RETRY_MS, and logs how it ended. The timers are unref'd: a broker that stops does
 * not wait for an outage to end.
 */
export function retryCleanup(attempt: () => Promise<void>, unreachable: (err: unknown) => boolean, log: Logger, fields: Record<string, unknown>): void {
  void (async () => {
    const deadline = Date.now() + CLEANUP_RETRY_MS;
    let wait = RETRY_FIRST_MS;
    for (;;) {
      await sleep(wait, undefined, { ref: false });
      try {
        await attempt();
        log.info('session processes ended once the link was back', fields);
        return;
      } catch (err) {
        if (!unreachable(err) || Date.now() + wait > deadline) {
          log.warn('could not end the session processes', { ...fields, error: err as Error });
          return;
        }
      }
      wait = Math.min(wait * 2, RETRY_MAX_MS);
    }
  })();
}
