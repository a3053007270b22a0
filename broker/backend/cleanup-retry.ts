import { setTimeout as sleep } from 'node:timers/promises';
import { EntryError } from '../errors.js';
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
 * Ends a session's processes with `attempt`. When `unreachable` says its failure was the link's
 * (it returns that failure as the EntryError to tell), this fails at once, so that an outage
 * does not hold up the session's end, and `attempt` runs again in the background for
 * CLEANUP_RETRY_MS, logging how it ended. The timers are unref'd: a broker that stops does not
 * wait for an outage to end.
 */
export async function cleanUpOrRetry(attempt: () => Promise<void>, unreachable: (err: unknown) => EntryError | undefined, log: Logger, fields: Record<string, unknown>): Promise<void> {
  try {
    await attempt();
  } catch (err) {
    const down = unreachable(err);
    if (!down) throw err;
    void retryInBackground(attempt, unreachable, log, fields);
    throw new EntryError(down.code, `${down.message}: trying again for ${CLEANUP_RETRY_MS / 1000} s`);
  }
}

async function retryInBackground(attempt: () => Promise<void>, unreachable: (err: unknown) => EntryError | undefined, log: Logger, fields: Record<string, unknown>): Promise<void> {
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
}
