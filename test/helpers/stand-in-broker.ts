import { readFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Page } from 'playwright-core';
import { type WebSocket, WebSocketServer } from 'ws';
import { CONSOLE_BUNDLE } from './repo.js';

/**
 * A stand-in broker for <entry-terminal> on loopback: it serves the built bundle, a one-time
 * ticket to anyone and an empty page, records each upgrade's URL, and hands each WebSocket's
 * first message to `onFirst`, which plays the broker's part.
 */
export class StandInBroker {
  readonly upgrades: string[] = [];
  private readonly server: Server;

  private constructor(onFirst: (ws: WebSocket, first: Buffer) => void) {
    const bundle = readFileSync(CONSOLE_BUNDLE);
    const wss = new WebSocketServer({ noServer: true, handleProtocols: () => 'entry.v1' });
    this.server = createServer((req, res) => {
      if (req.url === '/entry-terminal.js') res.writeHead(200, { 'content-type': 'text/javascript' }).end(bundle);
      else if (req.url === '/api/tickets') res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ ticket: 'one-time', expiresInMs: 10_000 }));
      else res.writeHead(200, { 'content-type': 'text/html' }).end('<!doctype html><title>t</title>');
    });
    this.server.on('upgrade', (req, socket, head) => {
      this.upgrades.push(req.url ?? '');
      wss.handleUpgrade(req, socket, head, (ws: WebSocket) => ws.once('message', (data: Buffer) => onFirst(ws, data)));
    });
  }

  static async start(onFirst: (ws: WebSocket, first: Buffer) => void): Promise<StandInBroker> {
    const b = new StandInBroker(onFirst);
    await new Promise<void>((resolve) => b.server.listen(0, '127.0.0.1', resolve));
    return b;
  }

  get url(): string {
    return `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
  }

  /**
   * Opens its page in `page` with one terminal (`#t`, demo/web/1, tickets from it) that records
   * its states in `window.states` and what it ended with in `window.closeInfo`.
   */
  async openTerminal(page: Page): Promise<void> {
    await page.goto(`${this.url}/`);
    await page.addScriptTag({
      type: 'module',
      content: `
        import { ticketsFrom } from '/entry-terminal.js';
        window.states = [];
        const t = document.createElement('entry-terminal');
        t.id = 't';
        t.setAttribute('app', 'demo');
        t.setAttribute('proc', 'web');
        t.setAttribute('instance', '1');
        t.style.height = '300px';
        t.addEventListener('entry-state', (e) => window.states.push(e.detail.state));
        t.addEventListener('entry-close', (e) => { window.closeInfo = e.detail; });
        t.ticketProvider = ticketsFrom('a-token');
        document.body.append(t);`,
    });
  }

  async stop(): Promise<void> {
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}
