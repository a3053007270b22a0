import { sameTarget } from '../auth/tickets.js';
import { EntryError, isEntryError } from '../errors.js';
import type { Logger } from '../log.js';
import { maskArgv } from '../mask.js';
import { interactivePlan, planFromStart, type ProcessPlan } from './exec-spec.js';
import { combineTaps, refusalOf, type SessionInfo, type SessionObserver } from './observer.js';
import type { SessionRegistry } from './registry.js';
import { type LiveSession, trackedAs } from './live-session.js';
import type { Store } from '../store/store.js';
import { WatchFeed } from './watch-feed.js';
import { describeEnd, Relay } from './relay.js';
import { ResumableTerminal } from './resumable-terminal.js';
import { type ResumeAttempt, type ResumeDeps, resumeExecSession } from './resume-session.js';
import type { AdmittedSession, EndReason, ProcessSide, TerminalSide } from './types.js';
import { RESUME_BUFFER_BYTES } from '../config/limits.js';
import { openCleanedUp } from '../backend/open-clean-up.js';
import type { Leftovers } from '../ledger/leftovers.js';
import type { LedgerEntry } from '../ledger/session-ledger.js';

export interface ExecSessionDeps {
  observers: SessionObserver[];
  store: Store;
  /** Tell users when an admin starts watching their session. */
  watchBanner: boolean;
  registry: SessionRegistry;
  log: Logger;
  pingIntervalMs: number;
  startTimeoutMs: number;
  terminateGraceMs: number;
  openTimeoutMs: number;
  idleTimeoutMs: number;
  maxSessionMs: number;
  /** How long a resumable session whose connection broke is kept; 0: resume off. */
  resumeGraceMs: number;
  /** The session ledger, when kept: a session is in it from before its process starts until its processes are ended. */
  leftovers: Leftovers | undefined;
}

/**
 * One /enter session: reads what to run (the shell for original clients, START for protocol
 * 2), takes the user's session slot, starts the exec, registers the session, relays until the
 * end, and logs how it ended.
 */
export async function runExecSession(upgrade: AdmittedSession, deps: ExecSessionDeps & ResumeDeps, track: (s: LiveSession) => () => void): Promise<EndReason | undefined> {
  // A protocol-2 connection naming a session takes it over; original clients never name one.
  if (upgrade.resume && upgrade.protocol2) return resumeExecSession(upgrade, deps);
  const { terminal, identity, target, container, sessionId } = upgrade;
  const started = Date.now();
  let relay: Relay | undefined;
  let relayRunning = false;
  let stopRequested: EntryError | undefined;
  // A stop (drain, kill) while the session starts: waiting for START gives up at once; an exec
  // being opened is ended as soon as it is open. Either way the stop resolves at the end.
  let abortStart: (error: EntryError) => void = () => undefined;
  const stopped = new Promise<never>((_, reject) => (abortStart = reject));
  stopped.catch(() => undefined);
  let settle!: (reason: EndReason | undefined) => void;
  const settled = new Promise<EndReason | undefined>((resolve) => (settle = resolve));
  let outcome: EndReason | undefined;
  let registered = false;
  /** In the ledger; `terminateFailed`: the processes may outlive the session, and stay there. */
  let ledgerEntry: LedgerEntry | undefined;
  let terminateFailed = false;
  /** An open that failed may have left a process: its clean-up (see open-clean-up.ts). */
  let openCleanUp: Promise<boolean> | undefined;
  let tty = false;
  /** Set once the process runs, for sessions that asked for resume. */
  let resumable: ResumableTerminal | undefined;
  let side: TerminalSide = terminal;
  let resumedFrom: ResumeAttempt | undefined;
  const feed = new WatchFeed(deps.store, sessionId);
  const live: LiveSession = {
    ...trackedAs(upgrade),
    stop: (error) => {
      if (!stopRequested) {
        stopRequested = error;
        abortStart(error);
      }
      resumable?.abandon();
      void relay?.stop(error);
      return settled;
    },
    // Before the relay runs, a stop ends the open at once and the client is told then.
    announce: (error) => relay?.announce(error) ?? Promise.resolve(),
    watch: (until, by) => {
      // The banner goes to TTY sessions only: in a scripted run it would corrupt the output.
      // Once the relay runs: before, the banner would reach the client ahead of RESUMABLE,
      // which tells a resuming client that this broker does not resume.
      if (feed.lease(until, by) && deps.watchBanner && tty && relayRunning) side.send('stdout', Buffer.from(`\r\n\x1b[33m[entry: ${by} is watching this session]\x1b[0m\r\n`));
    },
    resume: (attempt) => {
      if (!resumable || !relay) throw new EntryError('ENTRY_RESUME_EXPIRED');
      const same = attempt.user === identity.user && sameTarget(attempt.target, target);
      // Both checks always run: how long the refusal takes says nothing about the token.
      const tokenOk = resumable.tokenMatches(attempt.token);
      if (!same || !tokenOk) throw new EntryError('ENTRY_RESUME_DENIED');
      resumedFrom = attempt;
      // The new connection frames output as the first did: raw for a scripted run, whose
      // stdout and stderr must not share a UTF-8 carry.
      attempt.terminal.setTty(tty);
      resumable.resume(attempt.terminal, attempt.outputOffset);
      // Taken: the session goes on on the new connection's token, and a revocation of it ends
      // the session (a resume refused leaves the session on the token it runs on).
      live.credential = attempt.credential;
    },
  };
  const untrack = track(live);
  const fields = { session: sessionId, request: upgrade.requestId, user: identity.user, app: target.app, proc: target.proc, instance: target.instance, container: container.id.slice(0, 12), host: container.host, backend: container.backend, remote: upgrade.remoteAddress, ...(upgrade.clientCert ? { clientCert: upgrade.clientCert } : {}) };
  try {
    let plan: ProcessPlan;
    let exec: ProcessSide;
    // Pinged while the exec opens too (an engine may take its --open-timeout): a client that
    // watches for silence from the upgrade on must not take a slow open for a dead link.
    const opening = deps.pingIntervalMs > 0 ? setInterval(() => terminal.ping(), deps.pingIntervalMs) : undefined;
    opening?.unref();
    try {
      plan = upgrade.protocol2 ? planFromStart(await Promise.race([terminal.awaitStart(deps.startTimeoutMs), stopped]), upgrade.termType) : interactivePlan(upgrade.termType);
      terminal.setTty(plan.tty);
      tty = plan.tty;
      await deps.registry.reserve(identity.user, sessionId);
      registered = true;
      if (stopRequested) throw stopRequested;
      // The ledger's write runs beside the engine's exec calls rather than before them: it takes
      // 0.1 ms (2–3 ms at p99), opening an exec several engine round trips. It is awaited before
      // the session goes on, so the entry's removal at the end cannot overtake it.
      let recorded: Promise<void> | undefined;
      if (deps.leftovers) {
        ledgerEntry = {
          session: sessionId,
          user: identity.user,
          source: upgrade.remoteAddress,
          ...target,
          place: { backend: container.backend, host: container.host, namespace: container.namespace, name: container.name, id: container.id, container: plan.container },
          startedAt: new Date(started).toISOString(),
          ...(deps.registry.brokerUrl ? { holder: { broker: deps.registry.brokerId, url: deps.registry.brokerUrl } } : {}),
        };
        recorded = deps.leftovers.record(ledgerEntry);
      }
      exec = await container.open({
        container: plan.container,
        sessionId,
        cmd: plan.cmd,
        tty: plan.tty,
        env: plan.env,
        user: plan.user,
        workdir: plan.workdir,
        size: plan.size,
        terminateGraceMs: deps.terminateGraceMs,
        openTimeoutMs: deps.openTimeoutMs,
      }).finally(() => recorded);
      clearInterval(opening);
    } catch (err) {
      openCleanUp = openCleanedUp(err);
      const error = isEntryError(err) ? err : new EntryError('ENTRY_INTERNAL', undefined, { cause: err });
      const reason: EndReason = { kind: 'failed', error };
      // The slot is free once the refusal is decided, as for any end (see onEnding): neither the
      // client reading it nor the clean-up of a failed open holds it.
      if (registered) {
        registered = false;
        void deps.registry.remove(identity.user, sessionId);
      }
      clearInterval(opening);
      await terminal.finish(reason);
      deps.log.info('session refused', { ...fields, code: error.code, reason: error.message });
      for (const o of deps.observers) o.refused?.(refusalOf(upgrade, error));
      outcome = reason;
      return reason;
    }
    deps.log.info('session start', { ...fields, tty: plan.tty, argv: plan.interactive ? undefined : plan.argv, user_as: plan.user || undefined });
    const info: SessionInfo = {
      id: sessionId,
      user: identity.user,
      source: upgrade.remoteAddress,
      ...target,
      container: container.id,
      host: container.host,
      argv: plan.interactive ? null : plan.argv,
      tty: plan.tty,
      runAs: plan.user,
      workdir: plan.workdir,
      term: plan.env.find((e) => e.startsWith('TERM='))?.slice(5) ?? '',
      cols: plan.size?.cols ?? 80,
      rows: plan.size?.rows ?? 24,
      startedAt: started,
      ...(upgrade.clientCert ? { clientCert: upgrade.clientCert } : {}),
    };
    const tap = combineTaps([...deps.observers.map((o) => o.started(info)), feed.tap()]);
    // Stopped while the exec was opening: the relay below ends it at once, through the usual end.
    if (!stopRequested && upgrade.protocol2 && plan.resumable && deps.resumeGraceMs > 0) {
      resumable = new ResumableTerminal(terminal, {
        sessionId,
        graceMs: deps.resumeGraceMs,
        bufferBytes: RESUME_BUFFER_BYTES,
        pingIntervalMs: deps.pingIntervalMs,
        onLost: (error) => deps.log.info('session connection lost: kept for resume', { ...fields, graceMs: deps.resumeGraceMs, ...(error ? { code: error.code } : {}) }),
        onResumed: (r) => {
          const from = resumedFrom;
          // Who came back: the resuming connection's address and certificate, not the first one's.
          deps.log.info('session resumed', { ...fields, remote: from?.source, clientCert: from?.clientCert, ...(from?.via ? { via: from.via } : {}), awayMs: r.awayMs, missedBytes: r.missed, outputOffset: r.outputOffset, inputOffset: r.inputOffset });
          tap?.resumed?.({ source: from?.source ?? '', ...(from?.clientCert ? { clientCert: from.clientCert } : {}), ...(from?.via ? { via: from.via } : {}), awayMs: r.awayMs, missedBytes: r.missed });
        },
      });
      side = resumable;
    }
    const r: Relay = new Relay(side, exec, {
      ...(tap ? { tap } : {}),
      pingIntervalMs: deps.pingIntervalMs,
      idleTimeoutMs: deps.idleTimeoutMs,
      maxSessionMs: deps.maxSessionMs,
      onEnding: (reason) => {
        // The end is recorded and the slot freed when it is decided: neither waits for the
        // processes' clean-up nor for a client still reading its backlog before the close
        // handshake. No byte moves after this, so the counts are final.
        // Except for a resumable process that exited: until its end has reached the client (whose
        // connection may break while it reads the backlog) the session stays listed (the finally
        // below removes it) so that a resume reaching another broker still finds it.
        const awaited = reason.kind === 'exited' && resumable !== undefined;
        if (reason.kind !== 'exited') resumable?.refuseResumes(describeEnd(reason));
        if (registered && !awaited) {
          registered = false;
          void deps.registry.remove(identity.user, sessionId);
        }
        const durationMs = Date.now() - started;
        tap?.ended?.({ reason, durationMs, bytesIn: r.bytesIn, bytesOut: r.bytesOut });
        feed.end(describeEnd(reason));
        deps.log.info('session end', {
          ...fields,
          how: reason.kind,
          ...(reason.kind === 'exited' ? { exitCode: reason.exitCode } : {}),
          ...(reason.kind === 'failed' ? { code: reason.error.code } : {}),
          detail: describeEnd(reason),
          durationMs,
          bytesIn: r.bytesIn,
          bytesOut: r.bytesOut,
        });
      },
      onTerminateError: (err) => {
        terminateFailed = true;
        deps.log.warn('could not end the session processes', { ...fields, error: err as Error });
      },
      onSignalError: (signal, err) => deps.log.warn('signal not delivered', { ...fields, signal, error: err as Error }),
      onFinishError: (err) => deps.log.warn('could not tell the client how the session ended', { ...fields, error: err as Error }),
    });
    relay = r;
    // Listing is best-effort once the process runs: a store hiccup must not end a working shell.
    // A session already stopped is not listed.
    if (!stopRequested) {
      await deps.registry
        .add(deps.registry.recordFor(upgrade, started, { command: plan.interactive ? null : maskArgv(plan.argv), tty: plan.tty }), () => ({ bytesIn: r.bytesIn, bytesOut: r.bytesOut }))
        .catch((err: unknown) => deps.log.warn('session not registered yet: the heartbeat lists it once the store answers', { ...fields, error: err as Error }));
    }
    if (stopRequested) void r.stop(stopRequested);
    relayRunning = true;
    const reason = await r.run();
    outcome = reason;
    return reason;
  } finally {
    untrack();
    // Out of the ledger before the session counts as over: a broker that stops once its sessions
    // are over hands what is left in its ledger to the others. An open that failed left no process
    // (Docker and Kubernetes fail before the process runs, but for a link broken in between,
    // whose clean-up the session waits for).
    if (openCleanUp && !(await openCleanUp)) {
      terminateFailed = true;
      deps.log.warn('could not end what the failed start may have left running', { ...fields, ledger: ledgerEntry ? 'kept' : 'none' });
    }
    if (ledgerEntry) await deps.leftovers?.ended(ledgerEntry, !terminateFailed);
    settle(outcome);
    if (registered) await deps.registry.remove(identity.user, sessionId);
  }
}
