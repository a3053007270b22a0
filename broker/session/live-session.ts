import type { EntryError } from '../errors.js';
import type { ResumeAttempt } from './resume-session.js';
import type { AdmittedSession, EndReason } from './types.js';

/** A live session as the broker tracks it. */
export interface LiveSession {
  id: string;
  user: string;
  app: string;
  proc: string;
  instance: string;
  /** The token it was admitted with, or last resumed with: a revocation that covers it ends the session (see SessionTable). */
  credential: TokenCredential;
  stop(error: EntryError): Promise<EndReason | undefined>;
  /** Tells the client the session ends with `error` now, its processes not yet ended (see Relay.announce). */
  announce(error: EntryError): Promise<void>;
  /** Publishes the session's output for watchers until `until` (epoch ms). */
  watch(until: number, by: string): void;
  /** Takes the session over with a new connection; throws EntryError (ENTRY_RESUME_*) when it may not. */
  resume?(attempt: ResumeAttempt): void;
}

/** What a revocation is matched against: the token's `iat` (ms, 0 when absent) and `jti`. */
export interface TokenCredential {
  issuedAt: number;
  tokenId: string | undefined;
}

/** Who a session is and the token it came with, as every kind of session is tracked by. */
export function trackedAs(upgrade: AdmittedSession): Pick<LiveSession, 'id' | 'user' | 'app' | 'proc' | 'instance' | 'credential'> {
  const { sessionId, identity, target } = upgrade;
  return { id: sessionId, user: identity.user, ...target, credential: { issuedAt: identity.issuedAt, tokenId: identity.tokenId } };
}
