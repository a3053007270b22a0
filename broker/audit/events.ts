/**
 * Audit events: one structured record per fact, each with a stable `type` and schema.
 * Documented in the README ("Audit events"); fields are only ever added.
 */
/** Every type of event, in the order the README's table lists them. */
export const AUDIT_TYPES = [
  'session.start',
  'exec',
  'command',
  'alert',
  'session.resumed',
  'session.end',
  'session.refused',
  'auth.failure',
  'session.kill',
  'session.watch',
  'token.revoke',
  'recording.read',
] as const;

export type AuditType = (typeof AUDIT_TYPES)[number];

export interface AuditEvent {
  type: AuditType;
  /** Unique to the event: one stored twice (a write that timed out, then tried again) is read once. */
  id?: string;
  /** ISO 8601, milliseconds. */
  time: string;
  /** The broker that wrote it. */
  broker: string;
  sessionId?: string;
  user?: string;
  source?: string;
  app?: string;
  proc?: string;
  instance?: string;
  container?: string;
  host?: string;
  /** session.end: how it ended (exited, client-gone, failed, broker-died), the code when failed. */
  how?: string;
  code?: string;
  exitCode?: number;
  durationMs?: number;
  bytesIn?: number;
  bytesOut?: number;
  /** exec: the command of a scripted run (up to 4,096 characters; `argvTruncated` when cut), and how it ran. */
  argv?: string[];
  argvTruncated?: boolean;
  runAs?: string;
  workdir?: string;
  tty?: boolean;
  /** command / alert: a command line reconstructed from the input; `exact` false when editing keys made it a guess. */
  line?: string;
  exact?: boolean;
  /** command: a line typed at a password prompt, whose text is not kept. */
  hidden?: boolean;
  rule?: string;
  /** auth.failure / session.refused: why; the user the token claimed, unverified. */
  reason?: string;
  claimedUser?: string;
  /** session.kill / session.watch / token.revoke / recording.read: the admin. */
  by?: string;
  /** token.revoke: the token revoked and until when, or (with `user`) the time before which that user's tokens were issued. */
  jti?: string;
  until?: string;
  before?: string;
  /** Under mTLS: subject of the client certificate the session started with (session.resumed: came back with). */
  clientCert?: string;
  /** session.resumed: the broker the client reached when another one held the session (`broker` is the holder). */
  via?: string;
  /** session.resumed: how long the session had no connection, and the output bytes sent again. */
  awayMs?: number;
  missedBytes?: number;
}

export interface AuditQuery {
  user?: string;
  app?: string;
  type?: string;
  sessionId?: string;
  /** Text searched in command lines and commands. */
  q?: string;
  since?: number;
  until?: number;
  limit: number;
  /** Opaque: from the previous page's `next`. */
  cursor?: string;
}

export interface AuditPage {
  events: AuditEvent[];
  next: string | undefined;
}

/**
 * An event's `time` is the clock of the broker that wrote it, its place in a Redis stream Redis'
 * clock, and the events of one broker may straddle a step of its clock. A query's `since` and
 * `until` therefore narrow where the walk starts and stops by this much more than they say; which
 * events match is decided by `matches`, exactly.
 */
export const AUDIT_CLOCK_SLACK_MS = 60_000;

export function matches(e: AuditEvent, q: AuditQuery): boolean {
  if (q.user && e.user !== q.user) return false;
  if (q.app && e.app !== q.app) return false;
  if (q.type && e.type !== q.type) return false;
  if (q.sessionId && e.sessionId !== q.sessionId) return false;
  const t = Date.parse(e.time);
  if (q.since !== undefined && t < q.since) return false;
  if (q.until !== undefined && t > q.until) return false;
  if (q.q) {
    const hay = `${e.line ?? ''} ${(e.argv ?? []).join(' ')}`.toLowerCase();
    if (!hay.includes(q.q.toLowerCase())) return false;
  }
  return true;
}
