import type { IncomingMessage, ServerResponse } from 'node:http';
import { sendJson, sendMethodNotAllowed } from './respond.js';

export interface HealthDeps {
  /**
   * This broker process's id. `/healthz?broker=ID` answers whether this is that process: another
   * broker tells it from a successor at the same address, and the id (host name, PID) is not shown.
   */
  brokerId: string;
  /** Whether the backends (per kind, and per host or cluster) and the shared store answer right now. */
  ready(): Promise<{ backends: Record<string, boolean>; store: boolean; hosts: Record<string, boolean> }>;
  draining(): boolean;
}

const KIND_NAMES: Record<string, string> = { docker: 'docker engine', kubernetes: 'kubernetes cluster' };
const unreachableNames = (backends: Record<string, boolean>) =>
  Object.keys(backends)
    .map((k) => KIND_NAMES[k] ?? k)
    .join(' and ');

/**
 * `GET /healthz` (the process answers) and `GET /readyz` (it can open sessions), on the broker's
 * listener and on the metrics listener: probes inside a cluster reach the latter without the
 * client certificate the former may want. True when the request was one of them.
 */
export async function handleHealth(req: IncomingMessage, res: ServerResponse, url: URL, deps: HealthDeps): Promise<boolean> {
  const path = url.pathname;
  if (path !== '/healthz' && path !== '/readyz') return false;
  // HEAD is GET without the body (Node leaves it out): monitors and load balancers probe with it.
  if (req.method !== 'GET' && req.method !== 'HEAD') {
    sendMethodNotAllowed(res, req.method, path, 'GET, HEAD');
    return true;
  }
  if (path === '/healthz') {
    const asked = url.searchParams.get('broker');
    sendJson(res, 200, asked === null ? { status: 'ok' } : { status: 'ok', sameBroker: asked === deps.brokerId });
    return true;
  }
  if (deps.draining()) {
    sendJson(res, 503, { status: 'draining' });
    return true;
  }
  const { backends, store, hosts } = await deps.ready();
  // Ready while any backend has a reachable host: the others' targets get their own reason.
  const targets = Object.values(backends).some(Boolean);
  const status = !targets ? `${unreachableNames(backends)} unreachable` : !store ? 'shared store unreachable' : 'ready';
  sendJson(res, targets && store ? 200 : 503, { status, docker: backends['docker'] ?? false, store, hosts, backends });
  return true;
}
