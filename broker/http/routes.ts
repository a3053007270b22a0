import type { IncomingMessage, ServerResponse } from 'node:http';

export interface HealthDeps {
  /** Whether the Docker engine answers a ping right now. */
  dockerReady(): Promise<boolean>;
  draining(): boolean;
}

function json(res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text), 'cache-control': 'no-store' });
  res.end(text);
}

/** Plain HTTP requests: health and readiness. WebSocket upgrades never come here. */
export function createRequestHandler(deps: HealthDeps) {
  return async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const url = new URL(req.url ?? '/', 'http://entry.invalid');
    if (req.method === 'GET' && url.pathname === '/healthz') {
      json(res, 200, { status: 'ok' });
      return;
    }
    if (req.method === 'GET' && url.pathname === '/readyz') {
      if (deps.draining()) {
        json(res, 503, { status: 'draining' });
        return;
      }
      const docker = await deps.dockerReady();
      json(res, docker ? 200 : 503, { status: docker ? 'ready' : 'docker engine unreachable', docker });
      return;
    }
    if (url.pathname === '/enter' || url.pathname === '/attach') {
      json(res, 426, { error: 'ENTRY_BAD_REQUEST', message: 'this endpoint takes a WebSocket upgrade' });
      return;
    }
    json(res, 404, { error: 'not found' });
  };
}
