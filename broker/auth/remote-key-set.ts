import { createLocalJWKSet, createRemoteJWKSet, errors as joseErrors, jwksCache, type JSONWebKeySet, type JWTVerifyGetKey } from 'jose';
import { EntryError } from '../errors.js';

/** A key set fetch slower than this fails the fetch rather than holding the upgrade. */
export const JWKS_FETCH_TIMEOUT_MS = 5_000;
/**
 * A token naming a key the set does not hold makes the broker fetch the set again, at most once
 * in this long: a rotated key is picked up within it, and tokens with made-up key ids cannot make
 * the broker hammer the identity provider. While a set fetched before stands in, a failed fetch is
 * not tried again for as long either: an identity provider that does not answer costs each login
 * nothing, not the timeout.
 */
export const JWKS_REFETCH_COOLDOWN_MS = 30_000;
/** The set is fetched again when a token needs it and it is older than this (jose's default). */
export const JWKS_CACHE_MAX_AGE_MS = 10 * 60_000;
/**
 * While fetches fail, the last set fetched is used for up to this long after it was fetched: an
 * identity provider down for a working day does not lock everyone out of their containers, and a
 * key withdrawn from the set stops being trusted at the first fetch that succeeds.
 */
export const JWKS_STALE_MAX_MS = 24 * 60 * 60_000;

export interface KeySetLimits {
  fetchTimeoutMs: number;
  refetchCooldownMs: number;
  cacheMaxAgeMs: number;
  staleMaxMs: number;
}

const DEFAULT_LIMITS: KeySetLimits = {
  fetchTimeoutMs: JWKS_FETCH_TIMEOUT_MS,
  refetchCooldownMs: JWKS_REFETCH_COOLDOWN_MS,
  cacheMaxAgeMs: JWKS_CACHE_MAX_AGE_MS,
  staleMaxMs: JWKS_STALE_MAX_MS,
};

/** What the token itself is to blame for; anything else the key set's fetch failed with. */
const TOKEN_FAULTS = [joseErrors.JWKSNoMatchingKey, joseErrors.JWKSMultipleMatchingKeys, joseErrors.JOSENotSupported];

/**
 * The key set at `url`, fetched when a token needs it. When it cannot be fetched (no answer,
 * refused, not 200, not a key set), the last set fetched stands in (see JWKS_STALE_MAX_MS);
 * without one, or for a key it does not hold, the token is refused with `ENTRY_AUTH_UNAVAILABLE`
 * (503): it may well be good, so it is neither told it is bad nor counted as a failed
 * authentication of its source.
 */
export function remoteKeySet(url: URL, limits: Partial<KeySetLimits> = {}): JWTVerifyGetKey {
  const l = { ...DEFAULT_LIMITS, ...limits };
  // jose writes each set it fetches here, with the time (`uat`).
  const fetched: { uat?: number; jwks?: JSONWebKeySet } = {};
  const set = createRemoteJWKSet(url, { timeoutDuration: l.fetchTimeoutMs, cooldownDuration: l.refetchCooldownMs, cacheMaxAge: l.cacheMaxAgeMs, [jwksCache]: fetched as Record<string, never> });
  let failed: { at: number; why: string } | undefined;
  let last: { uat: number; keys: JWTVerifyGetKey } | undefined;

  const lastFetched = (): JWTVerifyGetKey | undefined => {
    const { uat, jwks } = fetched;
    if (uat === undefined || jwks === undefined || Date.now() - uat > l.staleMaxMs) return undefined;
    if (last?.uat !== uat) last = { uat, keys: createLocalJWKSet(jwks) };
    return last.keys;
  };

  const withoutFetch: JWTVerifyGetKey = async (header, token) => {
    const why = `the key set could not be fetched: ${failed!.why}`;
    const keys = lastFetched();
    if (!keys) throw new EntryError('ENTRY_AUTH_UNAVAILABLE', why);
    try {
      return await keys(header, token);
    } catch (err) {
      if (err instanceof joseErrors.JWKSNoMatchingKey) throw new EntryError('ENTRY_AUTH_UNAVAILABLE', `${why}, and the last one fetched has no key for this token`);
      throw err;
    }
  };

  return async (header, token) => {
    // Without a set to stand in, every token asks: the provider may be back.
    if (failed && performance.now() - failed.at < l.refetchCooldownMs && lastFetched()) return withoutFetch(header, token);
    try {
      const key = await set(header, token);
      failed = undefined;
      return key;
    } catch (err) {
      if (TOKEN_FAULTS.some((fault) => err instanceof fault)) throw err;
      // The monotonic clock: a step of the wall clock neither lengthens nor ends the cooldown.
      failed = { at: performance.now(), why: fetchFailure(err, l.fetchTimeoutMs) };
      return withoutFetch(header, token);
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
