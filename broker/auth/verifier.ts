import { decodeJwt, errors as joseErrors, jwtVerify, type JWTPayload } from 'jose';
import type { AuthConfig } from '../config/config.js';
import { EntryError } from '../errors.js';
import { claimAt, stringList } from './claims.js';
import type { Identity } from './identity.js';
import type { VerificationKey } from './keys.js';
import { VERIFIED_TOKEN_ENTRIES, VERIFIED_TOKEN_TTL_MS, VerifiedTokens } from './verified-tokens.js';

/** Longest token accepted; real JWTs are well under 8 KiB. Protects the verifier from junk. */
export const MAX_TOKEN_LENGTH = 16 * 1024;

export class TokenVerifier {
  private readonly verified: VerifiedTokens;

  constructor(
    private readonly key: VerificationKey,
    private readonly auth: AuthConfig,
    cache: { maxEntries: number; ttlMs: number } = { maxEntries: VERIFIED_TOKEN_ENTRIES, ttlMs: VERIFIED_TOKEN_TTL_MS },
  ) {
    this.verified = new VerifiedTokens({ ...cache, clockToleranceSec: auth.clockToleranceSec });
  }

  /** Verifies a token and returns the identity in it; throws EntryError (401; 503 when a key set cannot be fetched) otherwise. */
  async verify(token: string | undefined): Promise<Identity> {
    if (!token) throw new EntryError('ENTRY_NO_TOKEN');
    if (token.length > MAX_TOKEN_LENGTH) throw new EntryError('ENTRY_BAD_TOKEN', 'too long');
    const known = this.verified.get(token);
    if (known) return known;
    let payload: JWTPayload;
    try {
      const options = {
        algorithms: this.key.algorithms,
        requiredClaims: ['exp'],
        clockTolerance: this.auth.clockToleranceSec,
        ...(this.auth.issuer ? { issuer: this.auth.issuer } : {}),
        ...(this.auth.audience ? { audience: this.auth.audience } : {}),
      };
      const k = this.key.key;
      const result = typeof k === 'function' ? await jwtVerify(token, k, options) : await jwtVerify(token, k, options);
      payload = result.payload;
    } catch (err) {
      throw toEntryError(err);
    }
    // A token issued in the future would outlive a revocation of every token its user holds
    // (which goes by issue time): its issuer's clock is wrong, or it was made to.
    if (typeof payload.iat === 'number' && payload.iat * 1000 > Date.now() + this.auth.clockToleranceSec * 1000) {
      throw new EntryError('ENTRY_BAD_TOKEN', 'issued in the future (claim iat): check the issuer\'s clock');
    }
    const user = claimAt(payload, this.auth.claims.user);
    if (typeof user !== 'string' || user === '') {
      throw new EntryError('ENTRY_BAD_TOKEN', `claim ${this.auth.claims.user} (the user) is missing`);
    }
    const roles = stringList(claimAt(payload, this.auth.claims.roles));
    const identity: Identity = {
      user,
      apps: stringList(claimAt(payload, this.auth.claims.apps)),
      roles,
      admin: roles.includes(this.auth.adminRole),
      tokenId: typeof payload.jti === 'string' ? payload.jti : undefined,
      issuedAt: (payload.iat ?? 0) * 1000,
      expiresAt: (payload.exp ?? 0) * 1000,
    };
    this.verified.add(token, identity);
    return identity;
  }

  /** The user an unverified token claims to be (the configured claim): for logs and lookups, never trusted. */
  claimedUser(token: string | undefined): string | undefined {
    if (!token || token.length > MAX_TOKEN_LENGTH) return undefined;
    try {
      const user = claimAt(decodeJwt(token), this.auth.claims.user);
      return typeof user === 'string' && user !== '' && user.length <= 256 ? user : undefined;
    } catch {
      return undefined;
    }
  }
}

function toEntryError(err: unknown): EntryError {
  // The key set's own failure (remote-key-set.ts), already said as such.
  if (err instanceof EntryError) return err;
  if (err instanceof joseErrors.JWTExpired) return new EntryError('ENTRY_TOKEN_EXPIRED');
  if (err instanceof joseErrors.JWTClaimValidationFailed) {
    return new EntryError('ENTRY_BAD_TOKEN', `claim ${err.claim} ${err.reason === 'missing' ? 'is missing' : 'check failed'}`);
  }
  if (err instanceof joseErrors.JOSEAlgNotAllowed) return new EntryError('ENTRY_BAD_TOKEN', 'algorithm not allowed');
  if (err instanceof joseErrors.JWSSignatureVerificationFailed) return new EntryError('ENTRY_BAD_TOKEN', 'signature does not verify');
  if (err instanceof joseErrors.JWKSNoMatchingKey) return new EntryError('ENTRY_BAD_TOKEN', 'no matching key in the key set');
  if (err instanceof joseErrors.JOSEError) return new EntryError('ENTRY_BAD_TOKEN', 'malformed token');
  return new EntryError('ENTRY_BAD_TOKEN', undefined, { cause: err });
}
