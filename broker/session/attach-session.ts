import { EntryError, isEntryError } from '../errors.js';
import type { Logger } from '../log.js';
import { type LiveSession, trackedAs } from './live-session.js';
import { refusalOf, type SessionObserver } from './observer.js';
import type { SessionRegistry } from './registry.js';
import { Relay } from './relay.js';
import type { AdmittedSession, EndReason } from './types.js';

export interface AttachSessionDeps {
  log: Logger;
  /** Told of a refusal (the audit trail's session.refused, the metrics). */
  observers: SessionObserver[];
  registry: SessionRegistry;
  pingIntervalMs: number;
  idleTimeoutMs: number;
  maxSessionMs: number;
}

/**
 * /attach: the target's own stdout/stderr, read-only, as the original had. Client input is
 * ignored. A session like the others for the broker: tracked (drain, --max-sessions), counted
 * against the user's --max-user-sessions, listed for admins (and killable), bounded by
 * --idle-timeout and --max-session, relayed with backpressure, ended with a reason (the client
 * gone, the container stopped, a revocation).
 */
export async function runAttachSession(upgrade: AdmittedSession, deps: AttachSessionDeps, track: (s: LiveSession) => () => void): Promise<EndReason> {
  const { terminal, container, identity, sessionId } = upgrade;
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
  const announce = (error: EntryError) => stopping.relay?.announce(error) ?? Promise.resolve();
  const untrack = track({ ...trackedAs(upgrade), stop, announce, watch: () => undefined });
  const fields = { session: sessionId, request: upgrade.requestId, user: identity.user, container: container.id.slice(0, 12), host: container.host, backend: container.backend };
  let registered = false;
  const started = Date.now();
  try {
    let logs;
    try {
      await deps.registry.reserve(identity.user, sessionId);
      registered = true;
      if (stopping.error) throw stopping.error;
      logs = await container.attach();
      if (stopping.error) {
        await logs.terminate();
        throw stopping.error;
      }
    } catch (err) {
      const error = isEntryError(err) ? err : new EntryError('ENTRY_INTERNAL', undefined, { cause: err });
      const reason: EndReason = { kind: 'failed', error };
      await terminal.finish(reason);
      deps.log.info('attach refused', { ...fields, code: error.code, reason: error.message });
      for (const o of deps.observers) o.refused?.(refusalOf(upgrade, error));
      outcome = reason;
      return reason;
    }
    deps.log.info('attach start', fields);
    const relay = new Relay(terminal, logs, {
      pingIntervalMs: deps.pingIntervalMs,
      idleTimeoutMs: deps.idleTimeoutMs,
      maxSessionMs: deps.maxSessionMs,
      onFinishError: (err) => deps.log.warn('could not tell the client how the attach ended', { error: err as Error }),
    });
    stopping.relay = relay;
    // Listed best-effort, as an exec session is: a store hiccup must not end it.
    void deps.registry
      .add(deps.registry.recordFor(upgrade, started, { command: null, tty: false, attach: true }), () => ({ bytesIn: relay.bytesIn, bytesOut: relay.bytesOut }))
      .catch((err: unknown) => deps.log.warn('session not registered yet: the heartbeat lists it once the store answers', { ...fields, error: err as Error }));
    const reason = await relay.run();
    outcome = reason;
    deps.log.info('attach end', { ...fields, how: reason.kind, ...(reason.kind === 'failed' ? { code: reason.error.code } : {}) });
    return reason;
  } finally {
    untrack();
    settle(outcome);
    if (registered) await deps.registry.remove(identity.user, sessionId);
  }
}
