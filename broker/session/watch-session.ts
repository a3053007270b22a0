import type { AuditTrail } from '../audit/audit-trail.js';
import { EntryError, isEntryError } from '../errors.js';
import type { Logger } from '../log.js';
import type { Store } from '../store/store.js';
import type { AdmittedWatch } from './types.js';
import { FEED_END, FEED_STDERR, WATCH_LEASE_MS } from './watch-feed.js';

/** How often a watcher checks that the watched session's broker is still alive. */
const LIVENESS_CHECK_MS = 2_000;

export interface WatchDeps {
  store: Store;
  audit: AuditTrail;
  log: Logger;
  /**
   * How long the watched session's record may be missing before its broker is taken for gone
   * (--session-ttl): a Redis that restarted lost every record, and each comes back with its
   * broker's next heartbeat, a third of this later.
   */
  sessionTtlMs: number;
}

const SKIPPED = Buffer.from('\r\n[entry: output skipped: this watcher fell behind]\r\n');

/**
 * An admin watching a session read-only, wherever it runs: the holding broker is asked (over
 * the store's control channel) to publish the session's output, and this broker relays it.
 * The watcher's input is ignored. A slow watcher loses output rather than slowing the session.
 */
export async function runWatchSession(w: AdmittedWatch, deps: WatchDeps): Promise<void> {
  const { terminal, identity, sessionId } = w;
  const cleanup: Array<() => unknown> = [];
  let finished = false;
  const finish = (error?: EntryError, line?: string) => {
    if (finished) return;
    finished = true;
    for (const c of cleanup.splice(0)) c();
    void (error ? terminal.finish({ kind: 'failed', error }) : terminal.finish({ kind: 'client-gone' }, `\r\n[entry: the watched session ended: ${line ?? ''}]\r\n`));
  };
  // Congested since a send returned false: output is dropped until the watcher drains.
  let congested = false;
  let dropped = false;
  terminal.start({
    input: () => undefined,
    resize: () => undefined,
    inputEnd: () => undefined,
    signal: () => undefined,
    drain: () => (congested = false),
    gone: (error) => finish(error),
  });
  try {
    const record = await deps.store.getSession(sessionId);
    if (!record) throw new EntryError('ENTRY_NO_SUCH_SESSION', sessionId);
    // An attach has no process of its own to watch: what it shows is the container's own output.
    if (record.attach) throw new EntryError('ENTRY_BAD_REQUEST', `session ${sessionId} is an attach to the container's own output: attach to it (GET /attach) instead of watching it`);
    if (finished) return;
    const unsubscribe = await deps.store.subscribeOutput(sessionId, (msg) => {
      const kind = msg[0];
      const payload = msg.subarray(1);
      if (kind === FEED_END) {
        finish(undefined, payload.toString());
        return;
      }
      if (finished) return;
      if (congested) {
        dropped = true;
        return;
      }
      if (dropped) {
        dropped = false;
        terminal.send('stdout', SKIPPED);
      }
      congested = !terminal.send(kind === FEED_STDERR ? 'stderr' : 'stdout', payload);
    });
    // The watcher may have left while the store answered: cleanup has already run, so each
    // await is followed by a check, and nothing started after it would ever be stopped.
    if (finished) {
      void unsubscribe();
      return;
    }
    cleanup.push(() => void unsubscribe());
    const lease = () => deps.store.publish(record.broker, { type: 'watch', sessionId, by: identity.user, until: Date.now() + WATCH_LEASE_MS });
    // The first must reach the holder, which passes the output on only while a lease runs: the
    // watch would show nothing (a failure here ends it as the store's). A renewal that fails is
    // one of three per lease: the next may reach it in time.
    await lease();
    // The holder has been asked, and tells its user of the watcher: the trail says so too.
    deps.audit.record({ type: 'session.watch', sessionId, user: record.user, app: record.app, proc: record.proc, instance: record.instance, by: identity.user, source: w.remoteAddress });
    // The one lease sent ends by itself (WATCH_LEASE_MS); without the timers nothing renews it.
    if (finished) return;
    const leaseTimer = setInterval(() => void lease().catch(() => undefined), WATCH_LEASE_MS / 3);
    let missingSince = 0;
    const liveTimer = setInterval(() => {
      void deps.store.getSession(sessionId).then(
        (r) => {
          if (r) missingSince = 0;
          else if (missingSince === 0) missingSince = Date.now();
          else if (Date.now() - missingSince >= deps.sessionTtlMs) finish(undefined, 'no longer listed (its broker went away)');
        },
        // The store not answering says nothing of the session: the next check asks again.
        () => undefined,
      );
    }, LIVENESS_CHECK_MS);
    cleanup.push(() => clearInterval(leaseTimer), () => clearInterval(liveTimer));
    deps.log.info('watch start', { session: sessionId, by: identity.user });
  } catch (err) {
    finish(isEntryError(err) ? err : new EntryError('ENTRY_STORE_UNAVAILABLE', (err as Error).message));
  }
}
