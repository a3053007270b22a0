import { decodeResumeRequest, FrameError, RequestType } from '../../proto/codec.js';
import { EntryError, isEntryError } from '../errors.js';
import type { Logger } from '../log.js';
import type { Identity } from '../auth/identity.js';
import type { SessionObserver } from './observer.js';
import { hasSessionIdShape } from '../../proto/session-id.js';
import type { AdmittedSession, ClientTerminal, EndReason } from './types.js';

/** A connection that asks to take a session over (RESUME), as the holding session checks it. */
export interface ResumeAttempt {
  terminal: ClientTerminal;
  user: string;
  target: { app: string; proc: string; instance: string };
  token: Uint8Array;
  /** The token the resuming connection came with: the session's from then on (see LiveSession.credential). */
  credential: Pick<Identity, 'issuedAt' | 'tokenId'>;
  outputOffset: number;
  source: string;
  /** Subject of the client certificate the resuming connection came with (mTLS). */
  clientCert?: string | undefined;
  /** The broker the client reached, when it was forwarded here. */
  via?: string | undefined;
}

export interface ResumeDeps {
  observers: SessionObserver[];
  log: Logger;
  startTimeoutMs: number;
  /** The sessions this broker holds. */
  sessions: { get(id: string): { resume?(attempt: ResumeAttempt): void } | undefined };
}

/**
 * A connection that takes over a session kept after its connection broke: authenticated and
 * allowed like any (the gateway did that), then RESUME with the session's token and the output
 * offset the client reached. The holding session checks the rest (same user and target, token,
 * grace, what is still kept); this connection then belongs to it. A refusal tells the client
 * why and leaves the session as it was.
 */
export async function resumeExecSession(upgrade: AdmittedSession, deps: ResumeDeps): Promise<EndReason | undefined> {
  const { terminal, identity, target } = upgrade;
  const sessionId = upgrade.resume ?? '';
  const fields = { session: sessionId, request: upgrade.requestId, user: identity.user, app: target.app, proc: target.proc, instance: target.instance, remote: upgrade.remoteAddress, ...(upgrade.clientCert ? { clientCert: upgrade.clientCert } : {}) };
  try {
    if (!upgrade.protocol2) throw new EntryError('ENTRY_BAD_REQUEST', 'resume needs protocol 2');
    if (!hasSessionIdShape(sessionId)) throw new EntryError('ENTRY_BAD_REQUEST', 'entry-resume must name a session');
    const content = await terminal.awaitStart(deps.startTimeoutMs, RequestType.RESUME);
    let request;
    try {
      request = decodeResumeRequest(content);
    } catch (err) {
      throw new EntryError('ENTRY_BAD_FRAME', `RESUME: ${err instanceof FrameError ? err.message : 'undecodable'}`);
    }
    const session = deps.sessions.get(sessionId);
    if (!session?.resume) throw new EntryError('ENTRY_RESUME_EXPIRED');
    session.resume({ terminal, user: identity.user, target, token: request.token, credential: { issuedAt: identity.issuedAt, tokenId: identity.tokenId }, outputOffset: request.outputOffset, source: upgrade.remoteAddress, clientCert: upgrade.clientCert, via: upgrade.via });
    return undefined;
  } catch (err) {
    const error = isEntryError(err) ? err : new EntryError('ENTRY_INTERNAL', undefined, { cause: err });
    const reason: EndReason = { kind: 'failed', error };
    await terminal.finish(reason);
    deps.log.info('resume refused', { ...fields, code: error.code, reason: error.message });
    for (const o of deps.observers) o.refused?.({ id: sessionId, user: identity.user, source: upgrade.remoteAddress, ...target, code: error.code, reason: error.message });
    return reason;
  }
}
