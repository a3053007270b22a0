import { brokerBase, type Target } from './broker-url.js';

/** What `GET /api/whoami` answers. */
export interface WhoAmI {
  user: string;
  apps: string[];
  roles: string[];
  admin: boolean;
  expiresAt: string;
}

/** One row of `GET /api/containers`. */
export interface ContainerInfo {
  app: string;
  proc: string;
  instance: string;
  state: string;
  image: string;
  name: string;
  created: string;
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

  private async request<T>(method: string, path: string, body?: unknown): Promise<T> {
    const headers: Record<string, string> = { authorization: `Bearer ${this.token}`, accept: 'application/json' };
    if (body !== undefined) headers['content-type'] = 'application/json';
    let res: Response;
    try {
      // Credentials stay out of cookies: the bearer header is the only credential sent.
      res = await fetch(this.base + path, { method, headers, credentials: 'omit', cache: 'no-store', ...(body === undefined ? {} : { body: JSON.stringify(body) }) });
    } catch (err) {
      throw new ApiError(0, 'ENTRY_UNREACHABLE', `broker unreachable (${(err as Error).message})`);
    }
    const text = await res.text();
    let parsed: unknown;
    try {
      parsed = text ? JSON.parse(text) : undefined;
    } catch {
      parsed = undefined;
    }
    if (!res.ok) {
      const e = (parsed ?? {}) as { error?: unknown; message?: unknown };
      throw new ApiError(res.status, typeof e.error === 'string' ? e.error : `HTTP_${res.status}`, typeof e.message === 'string' ? e.message : `${res.status} ${res.statusText}`);
    }
    if (parsed === undefined) throw new ApiError(res.status, 'ENTRY_BAD_RESPONSE', `unexpected answer from ${path}`);
    return parsed as T;
  }
}

/** A ticket provider for `openTerminal`: asks the broker for a fresh ticket on every connect. */
export function ticketsFrom(token: string, broker?: string): (target: Target) => Promise<string> {
  const api = new BrokerApi(token, broker);
  return async (target) => (await api.ticket(target)).ticket;
}
