import { credentialKey } from './credential-key.js';
import { copyIdentity, type Identity } from './identity.js';

/**
 * Tokens whose signature and claims verified, remembered for a while. Scripts run `enter` in
 * loops with the same token; checking a signature again each time cost 1–2 ms of every
 * session's setup (bench/README.md, "Setup: verified tokens remembered"). What is skipped is
 * only what cannot change: the signature and the issuer and audience. Expiry is checked at
 * every use, and revocation is not in here at all (the guard asks the store every time).
 */
export interface VerifiedTokenOptions {
  /** Entries kept at most; the oldest goes first. */
  maxEntries: number;
  /** How long an entry is believed, however far off the token's expiry is. */
  ttlMs: number;
  /** Seconds past `exp` a token is still accepted (--clock-tolerance), as the verifier does. */
  clockToleranceSec: number;
}

/**
 * 1,024 entries: a user's tokens times the users starting sessions within a minute; each entry
 * is a 43-character digest and an identity of a few hundred bytes, so well under 1 MB in all.
 */
export const VERIFIED_TOKEN_ENTRIES = 1024;
/**
 * 60 s: a key taken out of a JWKS key set stops being trusted for cached tokens within a
 * minute, well inside the key set's own cache (jose keeps a fetched set 10 minutes).
 */
export const VERIFIED_TOKEN_TTL_MS = 60_000;

interface Entry {
  identity: Identity;
  /** Epoch ms after which the entry is not used: its TTL or the token's expiry, the earlier. */
  until: number;
}

export class VerifiedTokens {
  private readonly entries = new Map<string, Entry>();

  constructor(private readonly o: VerifiedTokenOptions) {}

  /** The identity of a token verified before, or undefined. Keyed by credentialKey: no token is kept. */
  get(token: string, now = Date.now()): Identity | undefined {
    const key = credentialKey(token);
    const entry = this.entries.get(key);
    if (!entry) return undefined;
    if (now >= entry.until) {
      this.entries.delete(key);
      return undefined;
    }
    return copyIdentity(entry.identity);
  }

  /** Remembers a token that just verified. */
  add(token: string, identity: Identity, now = Date.now()): void {
    if (this.o.maxEntries <= 0) return;
    // jose refuses once now > exp + tolerance; the entry stops being used at that moment too.
    const expires = identity.expiresAt + this.o.clockToleranceSec * 1000;
    const until = Math.min(now + this.o.ttlMs, expires);
    if (until <= now) return;
    const key = credentialKey(token);
    this.entries.delete(key);
    while (this.entries.size >= this.o.maxEntries) {
      const oldest = this.entries.keys().next().value as string;
      this.entries.delete(oldest);
    }
    this.entries.set(key, { identity: copyIdentity(identity), until });
  }

  get size(): number {
    return this.entries.size;
  }
}
