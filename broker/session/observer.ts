import type { SessionSubject } from '../store/session-record.js';
import type { EntryError } from '../errors.js';
import type { AdmittedSession, EndReason, OutputStream } from './types.js';

/** What is known about a session once its process runs. */
export interface SessionInfo extends SessionSubject {
  /** The Docker host or Kubernetes cluster. */
  host: string;
  /** The command for scripted runs; null for the interactive shell. */
  argv: string[] | null;
  tty: boolean;
  runAs: string;
  workdir: string;
  term: string;
  cols: number;
  rows: number;
  startedAt: number;
  /** Subject of the client certificate the session came with (mTLS). */
  clientCert?: string;
}

export interface SessionOutcome {
  reason: EndReason;
  durationMs: number;
  bytesIn: number;
  bytesOut: number;
}

/**
 * Something that follows sessions without taking part in them: audit, recordings, metrics.
 * The per-chunk calls sit on the hot path: they must be cheap and must not throw.
 */
export interface SessionObserver {
  /** Called when a session starts; may return per-session taps for its byte stream. */
  started(info: SessionInfo): SessionTap | undefined;
  /** Called when an upgrade or a session is refused before its process runs. */
  refused?(info: Refusal): void;
}

/** What is known of a session refused: as much of its SessionInfo as was known, and why. */
export type Refusal = Partial<SessionInfo> & { code: string; reason: string };

/** The refusal observers are told of, for a session (exec or attach) refused before it ran. */
export function refusalOf(upgrade: AdmittedSession, error: EntryError): Refusal {
  const { sessionId, identity, target, container } = upgrade;
  return { id: sessionId, user: identity.user, source: upgrade.remoteAddress, ...target, container: container.id, host: container.host, code: error.code, reason: error.message };
}

/** A client took a resumable session over after its connection broke. */
export interface SessionResume {
  /** Where the client came back from. */
  source: string;
  /** Subject of the client certificate it came back with (mTLS). */
  clientCert?: string;
  /** The broker the client reached, when it is not the one holding the session. */
  via?: string;
  /** How long the session was without a connection (0: the old one had not looked broken yet). */
  awayMs: number;
  /** Output bytes sent again: what the client had not received. */
  missedBytes: number;
}

export interface SessionTap {
  input?(data: Uint8Array): void;
  output?(stream: OutputStream, data: Uint8Array): void;
  resize?(cols: number, rows: number): void;
  resumed?(resume: SessionResume): void;
  ended?(outcome: SessionOutcome): void;
}

/** Combines several taps into one (or none when none tap). */
export function combineTaps(taps: Array<SessionTap | undefined>): SessionTap | undefined {
  const list = taps.filter((t): t is SessionTap => t !== undefined);
  if (list.length === 0) return undefined;
  if (list.length === 1) return list[0];
  const inputs = list.filter((t) => t.input);
  const outputs = list.filter((t) => t.output);
  const resizes = list.filter((t) => t.resize);
  return {
    ...(inputs.length ? { input: (d: Uint8Array) => inputs.forEach((t) => t.input!(d)) } : {}),
    ...(outputs.length ? { output: (s: OutputStream, d: Uint8Array) => outputs.forEach((t) => t.output!(s, d)) } : {}),
    ...(resizes.length ? { resize: (c: number, r: number) => resizes.forEach((t) => t.resize!(c, r)) } : {}),
    resumed: (r: SessionResume) => list.forEach((t) => t.resumed?.(r)),
    ended: (o: SessionOutcome) => list.forEach((t) => t.ended?.(o)),
  };
}
