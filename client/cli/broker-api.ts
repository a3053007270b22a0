import type { WhoAmI } from '../../broker/http/api-types.js';
import type { BrokerRef } from '../config/store.js';
import { ClientError } from '../protocol/client-error.js';
import { refusalFromBody } from '../protocol/refusal-body.js';
import { certificateFailure } from '../protocol/tls.js';

export type { WhoAmI };

/** GET /api/config: what the broker tells clients before they have a token. */
export interface BrokerInfo {
  version: string;
  oidc: { issuer: string; clientId: string; scopes: string[] } | null;
}

/** One enterable container from GET /api/containers (`host` from brokers that know several). */
export interface ContainerEntry {
  app: string;
  proc: string;
  instance: string;
  state: string;
  /** The engine's word for why it is not running (a pod's `ErrImageNeverPull`); absent when it runs. */
  reason?: string;
  image?: string;
  name?: string;
  created?: string;
  host?: string;
}

/** The broker's HTTP base: ws(s):// is the same server as http(s)://. */
export function httpBase(url: string): string {
  return url.replace(/^ws/, 'http').replace(/\/$/, '');
}

/** How long the broker has to start answering an HTTP call. */
const TIMEOUT_MS = 10_000;

export interface BrokerCall {
  method?: string;
  token?: string | undefined;
  /** For the answer to start (its status and headers). */
  timeoutMs?: number;
  /** For the whole body once it has started (a recording may be large). */
  bodyTimeoutMs?: number;
}

/**
 * The text of the broker's answer to `path`. Network failures become ENTRY_CONNECT_FAILED with
 * what to check, an answer that does not start in time too; error answers become a ClientError
 * with the broker's code and message.
 */
export async function brokerText(url: string, path: string, o: BrokerCall = {}): Promise<string> {
  const timeoutMs = o.timeoutMs ?? TIMEOUT_MS;
  const full = `${httpBase(url)}${path}`;
  const abort = new AbortController();
  let timer = setTimeout(() => abort.abort(new ClientError('ENTRY_CONNECT_FAILED', `cannot reach broker ${url}: no answer within ${timeoutMs / 1000} s`)), timeoutMs);
  try {
    let res: Response;
    try {
      res = await fetch(full, {
        method: o.method ?? 'GET',
        headers: { accept: 'application/json', ...(o.token ? { authorization: `Bearer ${o.token}` } : {}) },
        signal: abort.signal,
      });
    } catch (err) {
      if (abort.signal.aborted) throw abort.signal.reason;
      throw new ClientError('ENTRY_CONNECT_FAILED', `cannot reach broker ${url}: ${unreachable(err, full)}`);
    }
    clearTimeout(timer);
    const bodyMs = o.bodyTimeoutMs ?? timeoutMs;
    timer = setTimeout(() => abort.abort(new ClientError('ENTRY_CONNECT_FAILED', `broker ${url} stopped sending its answer to ${path} (not whole within ${bodyMs / 1000} s)`)), bodyMs);
    let text: string;
    try {
      text = await res.text();
    } catch (err) {
      if (abort.signal.aborted) throw abort.signal.reason;
      throw new ClientError('ENTRY_CONNECT_FAILED', `broker ${url} broke off its answer to ${path}: ${(err as Error).message}`);
    }
    if (!res.ok) {
      throw refusalFromBody(text, res.status) ?? new ClientError(`HTTP_${res.status}`, `broker answered HTTP ${res.status} on ${path}`, res.status);
    }
    return text;
  } finally {
    clearTimeout(timer);
  }
}

/**
 * The broker's JSON answer to `path`, checked to have the shape the caller reads (`isShaped`):
 * anything else (an HTML page from a proxy, another server on the port) is ENTRY_BAD_ANSWER.
 */
export async function brokerJson<T>(url: string, path: string, isShaped: (body: unknown) => boolean, o: BrokerCall = {}): Promise<T> {
  const body = parseJson(await brokerText(url, path, o));
  if (body === undefined || !isShaped(body)) throw new ClientError('ENTRY_BAD_ANSWER', `broker ${url} answered ${path} with something enter does not understand: is this an Entry broker?`);
  return body as T;
}

/** Who the broker says the token is (GET /api/whoami). */
export function whoAmI(ref: BrokerRef, token: string): Promise<WhoAmI> {
  return brokerJson<WhoAmI>(ref.url, '/api/whoami', isWhoAmI, { token });
}

function isWhoAmI(b: unknown): boolean {
  return isObject(b) && typeof b['user'] === 'string' && Array.isArray(b['apps']) && Array.isArray(b['roles']) && typeof b['expiresAt'] === 'string';
}

export function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function parseJson(text: string): unknown {
  try {
    return text ? (JSON.parse(text) as unknown) : undefined;
  } catch {
    return undefined;
  }
}

/** Why fetch could not reach `url`, in the words a user can act on. */
function unreachable(err: unknown, url: string): string {
  const e = err as Error & { cause?: { code?: string; message?: string } };
  const why = certificateFailure(e.cause?.code) ?? e.cause?.code ?? e.cause?.message ?? e.message;
  if (why === 'bad port') {
    // The Fetch standard's blocked ports (10080, 6000, 6665-6669, …): browsers refuse them too.
    return `port ${new URL(url).port} is one that HTTP clients refuse to use (the Fetch standard's blocked ports, as in browsers): give the broker another port`;
  }
  return why;
}

/** The broker's public settings; brokers from before /api/config answer as "no OIDC". */
export async function brokerInfo(ref: BrokerRef): Promise<BrokerInfo> {
  try {
    return await brokerJson<BrokerInfo>(ref.url, '/api/config', (b) => isObject(b) && typeof b['version'] === 'string');
  } catch (err) {
    if (err instanceof ClientError && (err.code === 'ENTRY_NOT_FOUND' || err.code === 'HTTP_404')) return { version: 'unknown', oidc: null };
    throw err;
  }
}

export async function listContainers(ref: BrokerRef, token: string, timeoutMs?: number): Promise<ContainerEntry[]> {
  const body = await brokerJson<{ containers: ContainerEntry[] }>(ref.url, '/api/containers', (b) => isObject(b) && Array.isArray(b['containers']), { token, timeoutMs });
  return body.containers.map((c) => ({ ...c, instance: String(c.instance), host: c.host || 'local' }));
}
