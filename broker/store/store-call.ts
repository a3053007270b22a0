import { EntryError } from '../errors.js';

/** Runs a store call; a store that does not answer makes the caller fail closed, with a reason. */
export async function storeCall<T>(call: () => Promise<T>): Promise<T> {
  try {
    return await call();
  } catch (err) {
    if (err instanceof EntryError) throw err;
    throw new EntryError('ENTRY_STORE_UNAVAILABLE', (err as Error).message, { cause: err });
  }
}
