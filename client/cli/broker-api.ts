import type { WhoAmI } from '../../broker/http/api-types.js';
import type { BrokerRef } from '../config/store.js';
import { ClientError } from '../protocol/client-error.js';

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
  image?: string;
  name?: string;
  created?: string;
  host?: string;
}

/** The broker's HTTP base: ws(s):// is the same server as http(s)://. */
export function httpBase(url: string): string {
  return url.replace(/^ws/, 'http').replace(/\/$/, '');
}

const TIMEOUT_MS = 10_000;

/**
 * A JSON GET on the broker. Network failures become ENTRY_CONNECT_FAILED with what to check;
 * error answers become a ClientError with the broker's code and message.
 */
export async function brokerGet<T>(ref: BrokerRef, path: string, token?: string, timeoutMs = TIMEOUT_MS): Promise<T> {
  const url = `${httpBase(ref.url)}${path}`;
  let res: Response;
  try {
    res = await fetch(url, {
      headers: { accept: 'application/json', ...(token ? { authorization: `Bearer ${token}` } : {}) },
      signal: AbortSignal.timeout(timeoutMs),
    });
  } catch (err) {
    const e = err as Error & { cause?: { code?: string; message?: string } };
    const why = e.name === 'TimeoutError' ? `no answer within ${timeoutMs / 1000} s` : (e.cause?.code ?? e.cause?.message ?? e.message);
    throw new ClientError('ENTRY_CONNECT_FAILED', `cannot reach broker ${ref.url}: ${why}`);
  }
  const text = await res.text();
  let body: unknown;
  try {
    body = text ? JSON.parse(text) : undefined;
  } catch {
    body = undefined;
  }
  if (!res.ok) {
    const b = (body ?? {}) as { error?: string; message?: string };
    throw new ClientError(b.error ?? `HTTP_${res.status}`, b.message ?? `broker answered HTTP ${res.status} on ${path}`);
  }
  if (body === undefined) throw new ClientError('ENTRY_BAD_ANSWER', `broker ${ref.url} answered ${path} with something other than JSON: is this an Entry broker?`);
  return body as T;
}

/** The broker's public settings; brokers from before /api/config answer as "no OIDC". */
export async function brokerInfo(ref: BrokerRef): Promise<BrokerInfo> {
  try {
    return await brokerGet<BrokerInfo>(ref, '/api/config');
  } catch (err) {
    if (err instanceof ClientError && (err.code === 'ENTRY_NOT_FOUND' || err.code === 'HTTP_404')) return { version: 'unknown', oidc: null };
    throw err;
  }
}

export async function listContainers(ref: BrokerRef, token: string, timeoutMs?: number): Promise<ContainerEntry[]> {
  const body = await brokerGet<{ containers: ContainerEntry[] }>(ref, '/api/containers', token, timeoutMs);
  return (body.containers ?? []).map((c) => ({ ...c, instance: String(c.instance), host: c.host || 'local' }));
}
