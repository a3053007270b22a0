import type { AuditEvent } from '../../broker/audit/events.js';
import type { ContainerInfo, WhoAmI } from '../../broker/http/api-types.js';
import type { SessionRecord } from '../../broker/store/session-record.js';
import { brokerBase, type Target } from './broker-url.js';

export type { ContainerInfo, WhoAmI };

/** One live session, as `GET /api/sessions` lists it (admins): the broker's registry record. */
export type SessionInfo = SessionRecord;
/** One audit event (README, "Audit events"): `type`, `time`, `broker`, and the fields that apply. */
export type { AuditEvent };

/** Filters of `GET /api/audit`; times as ISO strings. */
export interface AuditQuery {
  user?: string;
  app?: string;
  type?: string;
  session?: string;
  q?: string;
  since?: string;
  until?: string;
  limit?: number;
  cursor?: string;
}

export interface AuditPage {
  events: AuditEvent[];
  /** Pass as `cursor` for the next (older) page; absent on the last page. */
  next?: string;
}

export interface Ticket {
  ticket: string;
  expiresAt: string;
}

/** A refusal from the broker's HTTP API: `code` is one of the README's error codes. */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
    this.name = 'ApiError';
  }
}

/** The broker's JSON API, authenticated with a bearer token. */
export class BrokerApi {
  readonly base: string;

  constructor(
    private readonly token: string,
    broker?: string,
  ) {
    this.base = brokerBase(broker);
  }

  whoami(): Promise<WhoAmI> {
    return this.request<WhoAmI>('GET', '/api/whoami');
  }

  async containers(): Promise<ContainerInfo[]> {
    const body = await this.request<{ containers: ContainerInfo[] }>('GET', '/api/containers');
    return body.containers.map((c) => ({ ...c, instance: String(c.instance) }));
  }

  /** A one-time ticket for one target, valid for a few seconds. */
  ticket(target: Target): Promise<Ticket> {
    return this.request<Ticket>('POST', '/api/tickets', { app: target.app, proc: target.proc, instance: String(target.instance) });
  }

  /** Every live session on every broker sharing the store (admins). */
  async sessions(): Promise<SessionInfo[]> {
    const body = await this.request<{ sessions: SessionInfo[] }>('GET', '/api/sessions');
    return body.sessions.map((s) => ({ ...s, instance: String(s.instance) }));
  }

  /** Ends a session wherever it runs (admins); it closes with ENTRY_KILLED. */
  killSession(id: string): Promise<{ id: string; broker: string }> {
    return this.request('DELETE', `/api/sessions/${encodeURIComponent(id)}`);
  }

  /** Audit events, newest first (admins). */
  audit(query: AuditQuery): Promise<AuditPage> {
    const params = new URLSearchParams();
    for (const [k, v] of Object.entries(query)) if (v !== undefined && v !== '') params.set(k, String(v));
    const qs = params.toString();
    return this.request<AuditPage>('GET', `/api/audit${qs ? `?${qs}` : ''}`);
  }

  /** A session's asciicast v2 recording, as text (admins). */
  async recording(id: string): Promise<string> {
    const res = await this.send('GET', `/api/sessions/${encodeURIComponent(id)}/recording`, undefined, 'application/x-asciicast');
    const text = await res.text();
    if (!res.ok) throw refusal(res, text);
    return text;
  }

  private async send(method: string, path: string, body: unknown, accept: string): Promise<Response> {
    const headers: Record<string, string> = { authorization: `Bearer ${this.token}`, accept };
    if (body !== undefined) headers['content-type'] = 'application/json';
    try {
      // Credentials stay out of cookies: the bearer header is the only credential sent.
      return await fetch(this.base + path, { method, headers, credentials: 'omit', cache: 'no-store', ...(body === undefined ? {} : { body: JSON.stringify(body) }) });
    } catch (err) {
      throw new ApiError(0, 'ENTRY_UNREACHABLE', `broker unreachable (${(err as Error).message})`);
    }
  }

  private async request<T>(method: string, path: string, body?: unknown): Promise<T> {
    const res = await this.send(method, path, body, 'application/json');
    const text = await res.text();
    if (!res.ok) throw refusal(res, text);
    let parsed: unknown;
    try {
      parsed = text ? JSON.parse(text) : undefined;
    } catch {
      parsed = undefined;
    }
    if (parsed === undefined) throw new ApiError(res.status, 'ENTRY_BAD_RESPONSE', `unexpected answer from ${path}`);
    return parsed as T;
  }
}

/** The broker's JSON refusal (`{"error", "message"}`) as an ApiError. */
function refusal(res: Response, text: string): ApiError {
  let e: { error?: unknown; message?: unknown } = {};
  try {
    e = (JSON.parse(text) ?? {}) as typeof e;
  } catch {
    // Not JSON: the status line says enough.
  }
  return new ApiError(res.status, typeof e.error === 'string' ? e.error : `HTTP_${res.status}`, typeof e.message === 'string' ? e.message : `${res.status} ${res.statusText}`);
}

/** A ticket provider for `openTerminal`: asks the broker for a fresh ticket on every connect. */
export function ticketsFrom(token: string, broker?: string): (target: Target) => Promise<string> {
  const api = new BrokerApi(token, broker);
  return async (target) => (await api.ticket(target)).ticket;
}
