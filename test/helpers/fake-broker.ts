import { createServer, type IncomingMessage, type RequestListener, type Server } from 'node:http';
import type { Duplex } from 'node:stream';
import WebSocket, { WebSocketServer } from 'ws';

export type Upgrade = (n: number, req: IncomingMessage, socket: Duplex, head: Buffer) => void;

/**
 * A stand-in broker on loopback for the CLI's tests: the test decides what each upgrade gets
 * (refused, accepted and scripted) and, with `onRequest`, what each plain HTTP call gets.
 */
export class FakeBroker {
  readonly server: Server;
  readonly wss = new WebSocketServer({ noServer: true, perMessageDeflate: false });
  readonly upgrades: IncomingMessage[] = [];

  constructor(onUpgrade: Upgrade, onRequest: RequestListener = (_req, res) => res.writeHead(404).end()) {
    this.server = createServer(onRequest);
    this.server.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => {
      this.upgrades.push(req);
      onUpgrade(this.upgrades.length, req, socket, head);
    });
  }

  async start(): Promise<this> {
    await new Promise<void>((resolve) => this.server.listen(0, '127.0.0.1', resolve));
    return this;
  }

  get url(): string {
    const addr = this.server.address() as { port: number };
    return `http://127.0.0.1:${addr.port}`;
  }

  accept(req: IncomingMessage, socket: Duplex, head: Buffer, onOpen: (ws: WebSocket) => void): void {
    this.wss.handleUpgrade(req, socket, head, onOpen);
  }

  async stop(): Promise<void> {
    for (const ws of this.wss.clients) ws.terminate();
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}
