import { createRemoteJWKSet, errors as joseErrors, type JWTVerifyGetKey } from 'jose';
import { EntryError } from '../errors.js';

/**
 * A token naming a key the set does not hold makes the broker fetch the set again, at most once
 * in this long: a rotated key is picked up within it, and tokens with made-up key ids cannot make
 * the broker hammer the identity provider.
 */
export const JWKS_REFETCH_COOLDOWN_MS = 30_000;
/** A key set fetch slower than this fails the token's check rather than holding the upgrade. */
export const JWKS_FETCH_TIMEOUT_MS = 5_000;

/** What the token itself is to blame for; anything else the key set's fetch failed with. */
const TOKEN_FAULTS = [joseErrors.JWKSNoMatchingKey, joseErrors.JWKSMultipleMatchingKeys, joseErrors.JOSENotSupported];

/**
 * The key set at `url`, fetched when a token needs it. A key set that cannot be fetched (no
 * answer, refused, not 200, not a key set) is `ENTRY_AUTH_UNAVAILABLE` (503): the token may well
 * be good, so it is neither told it is bad nor counted as a failed authentication of its source.
 */
export function remoteKeySet(url: URL, timeoutMs = JWKS_FETCH_TIMEOUT_MS): JWTVerifyGetKey {
  const set = createRemoteJWKSet(url, { cooldownDuration: JWKS_REFETCH_COOLDOWN_MS, timeoutDuration: timeoutMs });
  return async (header, token) => {
    try {
      return await set(header, token);
    } catch (err) {
      if (TOKEN_FAULTS.some((fault) => err instanceof fault)) throw err;
      throw new EntryError('ENTRY_AUTH_UNAVAILABLE', `the key set could not be fetched: ${fetchFailure(err, timeoutMs)}`, { cause: err });
    }
  };
}

function fetchFailure(err: unknown, timeoutMs: number): string {
  if (err instanceof joseErrors.JWKSTimeout) return `no answer within ${timeoutMs} ms`;
  if (err instanceof joseErrors.JWKSInvalid) return 'the answer is not a JSON Web Key Set';
  if (err instanceof joseErrors.JOSEError) return err.message;
  // fetch's own failure ("fetch failed") says why in its cause: ECONNREFUSED, ENOTFOUND, …
  const cause = (err as { cause?: { code?: unknown } }).cause;
  return typeof cause?.code === 'string' ? cause.code : err instanceof Error ? err.message : String(err);
}
