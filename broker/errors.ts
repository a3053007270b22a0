/**
 * The one registry of Entry's error codes. Each code has a stable name, the message shown to
 * the user, the HTTP status for HTTP answers and the WebSocket close code for sockets.
 * The README's error table is checked against this registry by a test.
 */
export const ERRORS = {
  ENTRY_NO_TOKEN: { status: 401, close: 4401, message: 'no access token: send the access-token header or Authorization: Bearer' },
  ENTRY_BAD_TOKEN: { status: 401, close: 4401, message: 'invalid access token' },
  ENTRY_TOKEN_EXPIRED: { status: 401, close: 4401, message: 'access token expired: get a new one (enter login)' },
  ENTRY_FORBIDDEN: { status: 403, close: 4403, message: 'not permitted to enter this app' },
  ENTRY_APP_DENIED: { status: 403, close: 4403, message: 'this app is never enterable' },
  ENTRY_BAD_ORIGIN: { status: 403, close: 4403, message: 'origin not allowed' },
  ENTRY_BAD_REQUEST: { status: 400, close: 4400, message: 'bad request' },
  ENTRY_METHOD_NOT_ALLOWED: { status: 405, close: 4405, message: 'method not allowed' },
  ENTRY_UPGRADE_REQUIRED: { status: 426, close: 4400, message: 'this endpoint takes a WebSocket upgrade' },
  ENTRY_BODY_TOO_LARGE: { status: 413, close: 4413, message: 'request body too large' },
  ENTRY_UNSUPPORTED_MEDIA_TYPE: { status: 415, close: 4415, message: 'unsupported content type' },
  ENTRY_BODY_TIMEOUT: { status: 408, close: 4408, message: 'request body did not arrive in time' },
  ENTRY_URI_TOO_LONG: { status: 414, close: 4400, message: 'request target (URL) too long' },
  ENTRY_HEADERS_TOO_LARGE: { status: 431, close: 4400, message: 'request line or headers too large' },
  ENTRY_REQUEST_TIMEOUT: { status: 408, close: 4408, message: 'request did not arrive in time' },
  ENTRY_BAD_FRAME: { status: 400, close: 1007, message: 'malformed message' },
  ENTRY_FRAME_TOO_LARGE: { status: 413, close: 1009, message: 'message too large' },
  ENTRY_START_TIMEOUT: { status: 408, close: 4408, message: 'no START message in time' },
  ENTRY_NOT_FOUND: { status: 404, close: 4404, message: 'container not found' },
  ENTRY_NOT_RUNNING: { status: 409, close: 4409, message: 'container is not running' },
  ENTRY_AMBIGUOUS: { status: 409, close: 4409, message: 'more than one container matches' },
  ENTRY_DOCKER_UNAVAILABLE: { status: 503, close: 4503, message: 'docker engine unreachable' },
  ENTRY_CLUSTER_UNAVAILABLE: { status: 503, close: 4503, message: 'kubernetes cluster unreachable' },
  ENTRY_EXEC_FAILED: { status: 502, close: 4502, message: 'could not start the process' },
  ENTRY_CONTAINER_GONE: { status: 410, close: 4410, message: 'container stopped' },
  ENTRY_CANNOT_REAP: { status: 502, close: 4502, message: "the session's processes cannot be ended from inside the container: they end when it stops" },
  ENTRY_STREAM_LOST: { status: 502, close: 4502, message: "lost the stream to the process while it ran: the session's processes are ended" },
  ENTRY_DRAINING: { status: 503, close: 1001, message: 'broker is shutting down' },
  ENTRY_TOO_MANY_SESSIONS: { status: 503, close: 1013, message: 'too many sessions on this broker' },
  ENTRY_IDLE_TIMEOUT: { status: 408, close: 4408, message: 'session idle for too long' },
  ENTRY_MAX_DURATION: { status: 408, close: 4408, message: 'session reached its maximum duration' },
  ENTRY_PEER_TIMEOUT: { status: 408, close: 1001, message: 'client unreachable: its network stopped acknowledging' },
  ENTRY_PEER_STALLED: { status: 408, close: 4408, message: 'client read none of the queued output for too long' },
  ENTRY_KILLED: { status: 409, close: 4420, message: 'session ended by an administrator' },
  ENTRY_RATE_LIMITED: { status: 429, close: 4429, message: 'too many attempts: try again later' },
  ENTRY_USER_SESSION_LIMIT: { status: 429, close: 4429, message: 'too many open sessions for this user' },
  ENTRY_TOKEN_REVOKED: { status: 401, close: 4401, message: 'access token revoked' },
  ENTRY_AUTH_UNAVAILABLE: { status: 503, close: 4503, message: 'could not check the token in time' },
  ENTRY_STORE_UNAVAILABLE: { status: 503, close: 4503, message: 'shared state unavailable: try again shortly' },
  ENTRY_NOT_ADMIN: { status: 403, close: 4403, message: 'this needs the admin role' },
  ENTRY_NO_SUCH_SESSION: { status: 404, close: 4404, message: 'no such session' },
  ENTRY_RESUME_EXPIRED: { status: 410, close: 4412, message: 'too late to resume: the session ended or its grace period is over' },
  ENTRY_RESUME_OVERRUN: { status: 410, close: 4413, message: 'cannot resume: the output missed is no longer kept' },
  ENTRY_RESUME_DENIED: { status: 403, close: 4403, message: 'resume refused: the token, user or target does not match the session' },
  ENTRY_HANDOFF_REFUSED: { status: 502, close: 4502, message: "resume not handed on: TLS between the broker reached and the one holding the session failed (the broker reached logs why)" },
  ENTRY_INTERNAL: { status: 500, close: 1011, message: 'internal error' },
} as const satisfies Record<string, { status: number; close: number; message: string }>;

export type ErrorCode = keyof typeof ERRORS;

/** An error that can be told to a client: a code, and a detail line for humans. */
export class EntryError extends Error {
  readonly code: ErrorCode;
  readonly status: number;
  readonly closeCode: number;
  /** Seconds after which trying again may succeed (HTTP `Retry-After`), for a refusal that knows. */
  readonly retryAfterSec: number | undefined;

  constructor(code: ErrorCode, detail?: string, options?: { cause?: unknown; retryAfterSec?: number }) {
    super(detail ? `${ERRORS[code].message}: ${detail}` : ERRORS[code].message, options);
    this.name = 'EntryError';
    this.code = code;
    this.status = ERRORS[code].status;
    this.closeCode = ERRORS[code].close;
    this.retryAfterSec = options?.retryAfterSec;
  }
}

export function isEntryError(err: unknown): err is EntryError {
  return err instanceof EntryError;
}

/**
 * The listener for 'error' events that are heard elsewhere (a 'close' that follows, a caller's
 * own handling) but must have a listener, or Node ends the process. Defined once at module
 * level, it keeps nothing alive: an arrow function made in place would keep its whole scope (an
 * upgrade request, a token) for as long as the emitter lives.
 */
export function ignoreError(): void {}
