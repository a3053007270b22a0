import { EntryError } from '../errors.js';
import { storeCall } from '../store/store-call.js';
import { AttemptsInFlight } from './attempts-in-flight.js';
import { failureSource } from './failure-source.js';
import type { RateDecision, Store } from '../store/store.js';
import type { Identity } from './identity.js';
import type { TokenVerifier } from './verifier.js';

/** What a caller authenticated with: a bearer token, or a one-time ticket (browsers). */
export type Credential = 'token' | 'ticket';

export interface GuardLimits {
  authFailureLimit: number;
  authFailureWindowMs: number;
}

/**
 * Sources whose over-the-limit refusal is remembered as told (see limitedAgain), at most: each
 * one first had --auth-failure-limit failures counted. 10,000 entries are about 1 MB.
 */
const MAX_LIMITED_SOURCES_TOLD = 10_000;

/**
 * Authentication with the shared rules around it: failed attempts are counted per source (an
 * IPv4 address or an IPv6 /64, see failureSource; across brokers with Redis), a source over the
 * limit is refused before its token is even looked at, and revoked tokens are refused.
 *
 * Failures are not counted per user. The user an unverified token claims is anyone's to write,
 * and even a user's own signed tokens are not only theirs to send: an expired or revoked token
 * pasted into a bug report or a log would let whoever finds it keep its user locked out. A token
 * that verifies and is not revoked is admitted whatever others sent in its user's name; each
 * refusal is counted in the metrics and in the audit trail (`auth.failure`, with the claimed
 * user), where a source over the limit has its first refusal of each wait only.
 */
export class AuthGuard {
  constructor(
    private readonly verifier: TokenVerifier,
    private readonly store: Store,
    private readonly limits: GuardLimits,
    /**
     * Told of every refused authentication, and whether a token or a ticket was refused.
     * `repeat`: a source already over its limit, refused again within the same wait (the audit
     * trail records the first of those only: a source hammering on would push everything else
     * out of the capped trail).
     */
    private readonly onFailure: (err: unknown, source: string, claimedUser: string | undefined, via: Credential, repeat: boolean) => void = () => undefined,
    /**
     * Told when a failure could not be counted (the store failed between the limit check and
     * the count). The attempt is refused all the same; what is lost is one count towards the
     * limit, which the check before the next attempt fails closed on if the store stays down.
     */
    private readonly onUncounted: (err: unknown, key: string) => void = () => undefined,
  ) {}

  async authenticate(token: string | undefined, source: string): Promise<Identity> {
    return this.counted(source, 'token', () => this.verifier.claimedUser(token), async () => {
      const identity = await this.verifier.verify(token);
      await this.refuseRevoked(identity);
      return identity;
    });
  }

  /**
   * A ticket's identity (`take` spends the ticket), under the same rules as a token: a source over
   * the limit is refused before the ticket is looked up, an unknown, expired or misdirected
   * ticket counts as a failed attempt, and the token that minted it is checked against revocations.
   */
  async redeem(take: () => Promise<Identity>, source: string): Promise<Identity> {
    let user: string | undefined;
    return this.counted(source, 'ticket', () => user, async () => {
      const identity = await take();
      user = identity.user;
      await this.refuseRevoked(identity);
      return identity;
    });
  }

  /**
   * Runs `check` unless `source` (as failureSource counts it) is over its limit; tells of a refusal
   * with the address and the user it claimed, and counts a 401 against the source.
   */
  private async counted(source: string, via: Credential, claimedUser: () => string | undefined, check: () => Promise<Identity>): Promise<Identity> {
    const unit = failureSource(source);
    const sourceKey = `authfail:ip:${unit}`;
    const d = await this.admit(unit, sourceKey);
    if (!d.allowed) {
      const err = rateLimited(d.retryAfterMs);
      this.onFailure(err, source, claimedUser(), via, this.limitedAgain(unit, d.retryAfterMs));
      throw err;
    }
    try {
      return await check();
    } catch (err) {
      this.onFailure(err, source, claimedUser(), via, false);
      if (err instanceof EntryError && err.status === 401) {
        await this.store.hit(sourceKey, this.limits.authFailureLimit, this.limits.authFailureWindowMs).catch((e: unknown) => this.onUncounted(e, sourceKey));
      }
      throw err;
    } finally {
      // After the failure is stored: the attempts waiting on this one then see it counted.
      this.inFlight.leave(unit);
    }
  }

  /**
   * Lets an attempt of `unit` go on (entered in `inFlight`, allowed) while the failures stored and
   * the attempts under way that may yet fail stay under the limit; an attempt past that waits for
   * one under way to be decided and looks again. So parallel bad tokens get at most the limit's
   * 401s from each broker, and a busy client's good tokens are held back a moment, never refused.
   */
  private async admit(unit: string, sourceKey: string): Promise<RateDecision> {
    const limit = this.limits.authFailureLimit;
    for (;;) {
      if (this.inFlight.count(unit) >= limit) {
        await this.inFlight.decided(unit);
        continue;
      }
      const others = this.inFlight.count(unit);
      this.inFlight.enter(unit);
      let d: RateDecision & { count: number };
      try {
        d = await storeCall(() => this.store.peek(sourceKey, limit));
      } catch (err) {
        this.inFlight.leave(unit);
        throw err;
      }
      // With none other under way, the store's answer stands alone.
      if (!d.allowed || others === 0 || d.count + others < limit) {
        if (!d.allowed) this.inFlight.leave(unit);
        return d;
      }
      this.inFlight.withdraw(unit);
      await this.inFlight.decided(unit);
    }
  }

  private readonly inFlight = new AttemptsInFlight();

  /** Sources refused for being over the limit, until when their refusal was told. */
  private readonly limitedTold = new Map<string, number>();

  /** Whether `source`'s refusal for being over the limit was already told within its wait. */
  private limitedAgain(source: string, retryAfterMs: number): boolean {
    // The monotonic clock: a step of the wall clock neither lengthens nor ends a wait.
    const now = performance.now();
    const until = this.limitedTold.get(source);
    if (until !== undefined && until > now) return true;
    if (this.limitedTold.size >= MAX_LIMITED_SOURCES_TOLD) {
      for (const [s, t] of this.limitedTold) if (t <= now) this.limitedTold.delete(s);
      // Still full: the oldest goes (its next refusal is told once more).
      if (this.limitedTold.size >= MAX_LIMITED_SOURCES_TOLD) this.limitedTold.delete(this.limitedTold.keys().next().value!);
    }
    this.limitedTold.delete(source);
    this.limitedTold.set(source, now + retryAfterMs);
    return false;
  }

  /**
   * Refuses an identity whose token has been revoked (by jti, or its user's tokens issued before
   * a time). Bearer tokens pass here on every call; so does the identity a ticket carries when
   * redeemed, which was copied at issue and would otherwise outlive a revocation by the ticket's life.
   */
  private async refuseRevoked(identity: Identity): Promise<void> {
    const { tokenId, user, issuedAt } = identity;
    if (!(await storeCall(() => this.store.isRevoked(tokenId, user, issuedAt)))) return;
    // A token without `iat` (taken as 0) cannot be told from those issued before its user's
    // revocation, now or ever: it stays refused (failing closed), and says why, which a bare
    // "revoked" would not tell whoever issues such tokens.
    if (issuedAt === 0 && !(await storeCall(() => this.store.isRevoked(tokenId, user, Number.MAX_SAFE_INTEGER)))) {
      throw new EntryError('ENTRY_TOKEN_REVOKED', `the token has no iat (issue time), so it cannot be told from the tokens of ${user} issued before their revocation: have the issuer set iat`);
    }
    throw new EntryError('ENTRY_TOKEN_REVOKED');
  }
}

export function rateLimited(retryAfterMs: number, what = 'this address failed to authenticate too often'): EntryError {
  return new EntryError('ENTRY_RATE_LIMITED', `${what}: retry in ${Math.ceil(retryAfterMs / 1000)} s`, { retryAfterSec: Math.max(1, Math.ceil(retryAfterMs / 1000)) });
}
