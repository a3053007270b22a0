import type { EntryError } from '../errors.js';

/**
 * An open can fail after the engine or cluster carried it out: the link broke between the
 * request and its answer, and the process runs with no session to end it. The backend then
 * ends what may have started, behind the error it throws; the session waits for that clean-up
 * before it counts as over, and keeps its ledger entry when the clean-up could not be done.
 */
const CLEAN_UPS = new WeakMap<EntryError, Promise<boolean>>();

/** `error`, with `cleanUp` (ending what the failed open may have started) running behind it. */
export function withOpenCleanUp(error: EntryError, cleanUp: Promise<void>): EntryError {
  CLEAN_UPS.set(error, cleanUp.then(
    () => true,
    () => false,
  ));
  return error;
}

/**
 * Resolves once what a failed open may have started is ended: true when it is (or there was
 * nothing to end), false when it could not be done now.
 */
export function openCleanedUp(err: unknown): Promise<boolean> {
  return CLEAN_UPS.get(err as EntryError) ?? Promise.resolve(true);
}
