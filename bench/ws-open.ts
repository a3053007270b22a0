import type { WebSocket } from 'ws';

/**
 * Resolves with `ws` once it is open; rejects on a failed connection or an HTTP answer instead
 * of the upgrade (`peer` names who answered). Later errors are the caller's to see on close.
 */
export function opened(ws: WebSocket, peer: string): Promise<WebSocket> {
  return new Promise((resolve, reject) => {
    ws.once('error', reject);
    ws.once('unexpected-response', (_req, res) => {
      reject(new Error(`${peer} answered HTTP ${res.statusCode}`));
      ws.terminate();
    });
    ws.once('open', () => {
      ws.off('error', reject);
      ws.on('error', () => undefined);
      resolve(ws);
    });
  });
}
