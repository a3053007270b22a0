import type { AddressInfo } from 'node:net';
import { WebSocket, WebSocketServer, type ServerOptions } from 'ws';

/**
 * A WebSocket server on loopback and one client connected to it: the server side of the
 * connection is what a WsTerminal wraps. `serverOptions` may carry ws's `closeTimeout`, which
 * its type definitions do not list. The client offers no compression (nor does the server, by
 * default), as with the broker's own server.
 */
export async function wsPair(serverOptions: Partial<ServerOptions> & { closeTimeout?: number } = {}): Promise<{ wss: WebSocketServer; client: WebSocket; server: WebSocket }> {
  const wss = new WebSocketServer({ ...serverOptions, port: 0, host: '127.0.0.1' } as ServerOptions);
  await new Promise((r) => wss.once('listening', r));
  const accepted = new Promise<WebSocket>((r) => wss.once('connection', r));
  const client = new WebSocket(`ws://127.0.0.1:${(wss.address() as AddressInfo).port}`, { perMessageDeflate: false });
  await new Promise((r) => client.once('open', r));
  return { wss, client, server: await accepted };
}
