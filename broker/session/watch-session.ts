import type { WebSocket } from 'ws';
import { ResponseType, utf8 } from '../../proto/codec.js';
import type { AuditTrail } from '../audit/audit-trail.js';
import type { Identity } from '../auth/identity.js';
import { OUTPUT_HIGH_WATER_BYTES } from '../config/limits.js';
import { EntryError, isEntryError } from '../errors.js';
import type { Logger } from '../log.js';
import type { Store } from '../store/store.js';
import { refuse } from '../transport/gateway.js';
import { protobufFraming } from '../transport/framing.js';
import { FEED_END, FEED_STDERR, WATCH_LEASE_MS } from './watch-feed.js';

/** How often a watcher checks that the watched session's broker is still alive. */
const LIVENESS_CHECK_MS = 2_000;

export interface WatchDeps {
  store: Store;
  audit: AuditTrail;
  log: Logger;
}

/**
 * An admin watching a session read-only, wherever it runs: the holding broker is asked (over
 * the store's control channel) to publish the session's output, and this broker relays it.
 * The watcher's input is ignored. A slow watcher loses output rather than slowing the session.
 */
export async function runWatchSession(w: { ws: WebSocket; identity: Identity; sessionId: string; protocol2: boolean; remoteAddress: string }, deps: WatchDeps): Promise<void> {
  const { ws, identity, sessionId } = w;
  let cleanup: Array<() => unknown> = [];
  const finish = (error?: EntryError, line?: string) => {
    for (const c of cleanup.splice(0)) c();
    if (ws.readyState !== ws.OPEN) return;
    if (error) {
      refuse(ws, error, w.protocol2, protobufFraming);
      return;
    }
    ws.send(protobufFraming.encode(ResponseType.CLOSE, utf8(`\r\n[entry: the watched session ended: ${line ?? ''}]\r\n`)));
    ws.close(1000, 'session ended');
  };
  try {
    const record = await deps.store.getSession(sessionId);
    if (!record) throw new EntryError('ENTRY_NO_SUCH_SESSION', sessionId);
    let dropped = false;
    const unsubscribe = await deps.store.subscribeOutput(sessionId, (msg) => {
      const kind = msg[0];
      const payload = msg.subarray(1);
      if (kind === FEED_END) {
        finish(undefined, payload.toString());
        return;
      }
      if (ws.bufferedAmount > OUTPUT_HIGH_WATER_BYTES) {
        dropped = true;
        return;
      }
      if (dropped) {
        dropped = false;
        ws.send(protobufFraming.encode(ResponseType.STDOUT, utf8('\r\n[entry: output skipped: this watcher fell behind]\r\n')));
      }
      ws.send(protobufFraming.encode(kind === FEED_STDERR ? ResponseType.STDERR : ResponseType.STDOUT, payload));
    });
    cleanup.push(() => void unsubscribe());
    const lease = () => deps.store.publish(record.broker, { type: 'watch', sessionId, by: identity.user, until: Date.now() + WATCH_LEASE_MS }).catch(() => undefined);
    await lease();
    const leaseTimer = setInterval(() => void lease(), WATCH_LEASE_MS / 3);
    const liveTimer = setInterval(() => {
      void deps.store.getSession(sessionId).then(
        (r) => (r ? undefined : finish(undefined, 'no longer listed (its broker went away)')),
        () => undefined,
      );
    }, LIVENESS_CHECK_MS);
    cleanup.push(() => clearInterval(leaseTimer), () => clearInterval(liveTimer));
    ws.on('close', () => finish());
    ws.on('error', () => finish());
    deps.audit.record({ type: 'session.watch', sessionId, user: record.user, app: record.app, proc: record.proc, instance: record.instance, by: identity.user, source: w.remoteAddress });
    deps.log.info('watch start', { session: sessionId, by: identity.user });
  } catch (err) {
    finish(isEntryError(err) ? err : new EntryError('ENTRY_STORE_UNAVAILABLE', (err as Error).message));
  }
}
