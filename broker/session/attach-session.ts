import { EntryError, isEntryError } from '../errors.js';
import type { Logger } from '../log.js';
import type { LiveSession } from './exec-session.js';
import { Relay } from './relay.js';
import type { AdmittedSession, EndReason } from './types.js';

export interface AttachSessionDeps {
  log: Logger;
  pingIntervalMs: number;
}

/**
 * /attach: the target's own stdout/stderr, read-only, as the original had. Client input is
 * ignored. A session like the others for the broker: tracked (drain, --max-sessions), relayed
 * with backpressure, ended with a reason (the client gone, or the container stopped).
 */
export async function runAttachSession(upgrade: AdmittedSession, deps: AttachSessionDeps, track: (s: LiveSession) => () => void): Promise<EndReason> {
  const { terminal, container, identity, target, sessionId } = upgrade;
  // A stop (drain, an admin's kill) can come before the relay exists: it is kept until then.
  const stopping: { relay?: Relay; error?: EntryError } = {};
  // The stop resolves when the session has ended, whenever it came (a drain waits on it).
  let settle!: (reason: EndReason | undefined) => void;
  const settled = new Promise<EndReason | undefined>((resolve) => (settle = resolve));
  let outcome: EndReason | undefined;
  const stop = (error: EntryError) => {
    stopping.error ??= error;
    void stopping.relay?.stop(error);
    return settled;
  };
  const untrack = track({ id: sessionId, user: identity.user, ...target, credential: { issuedAt: identity.issuedAt, tokenId: identity.tokenId }, stop, watch: () => undefined });
  const fields = { session: sessionId, request: upgrade.requestId, user: identity.user, container: container.id.slice(0, 12), host: container.host, backend: container.backend };
  try {
    let logs;
    try {
      logs = await container.attach();
      if (stopping.error) {
        await logs.terminate();
        throw stopping.error;
      }
    } catch (err) {
      const reason: EndReason = { kind: 'failed', error: isEntryError(err) ? err : new EntryError('ENTRY_INTERNAL', undefined, { cause: err }) };
      await terminal.finish(reason);
      outcome = reason;
      return reason;
    }
    deps.log.info('attach start', fields);
    const relay = new Relay(terminal, logs, { pingIntervalMs: deps.pingIntervalMs });
    stopping.relay = relay;
    const reason = await relay.run();
    outcome = reason;
    deps.log.info('attach end', { ...fields, how: reason.kind, ...(reason.kind === 'failed' ? { code: reason.error.code } : {}) });
    return reason;
  } finally {
    untrack();
    settle(outcome);
  }
}
