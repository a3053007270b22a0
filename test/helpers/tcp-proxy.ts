import { createServer, type Server, type Socket, connect } from 'node:net';

/**
 * A loopback TCP proxy in front of one or more brokers (or an engine's unix socket), whose
 * links a test can break: `cut` resets every open connection (TCP RST, as a dropped network or
 * a restarted load balancer does) and refuses new ones for a while; `stall` leaves new ones
 * unanswered for a while. `to` picks where the next connection goes; `tap` sees every byte the
 * clients send, `tapReply` every byte the target sends back.
 */
export class TcpProxy {
  private server: Server | undefined;
  private readonly links = new Set<Socket>();
  /** Frozen links read nothing, so they never see their end: reset at `cut` and `stop`. */
  private readonly frozen = new Set<Socket>();
  /** Links to a unix socket, which has no RST to send. */
  private readonly pipes = new WeakSet<Socket>();
  private downUntil = 0;
  private stalledUntil = 0;
  port = 0;
  /** Connections accepted so far. */
  accepted = 0;
  /**
   * Called with each chunk a client sends, before it goes on (on links already open too);
   * `hold` freezes that one link once the chunk has gone on (see `freeze`); `link` is the
   * client's end, the same object `tapReply` is given for that link's answers.
   */
  tap: ((chunk: Buffer, hold: () => void, link: Socket) => void) | undefined;
  /** Called with each chunk the target sends back, before it goes on. */
  tapReply: ((chunk: Buffer, link: Socket) => void) | undefined;

  constructor(private target: string) {}

  get url(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  /** Where new connections go from now on (a broker's http://host:port, or unix:///path). */
  to(target: string): void {
    this.target = target;
  }

  async start(): Promise<void> {
    this.server = createServer((client) => {
      if (Date.now() < this.downUntil) {
        client.resetAndDestroy();
        return;
      }
      if (Date.now() < this.stalledUntil) {
        // Accepted and never answered, as a host behind a network that drops packets.
        client.on('error', () => undefined);
        client.pause();
        this.frozen.add(client);
        return;
      }
      this.accepted++;
      const { protocol, hostname, port, pathname } = new URL(this.target);
      const upstream = protocol === 'unix:' ? connect(pathname) : connect(Number(port), hostname);
      if (protocol === 'unix:') this.pipes.add(upstream);
      client.on('data', (chunk: Buffer) => this.tap?.(chunk, () => setImmediate(() => this.hold([client, upstream])), client));
      upstream.on('data', (chunk: Buffer) => this.tapReply?.(chunk, client));
      for (const s of [client, upstream]) {
        this.links.add(s);
        s.on('error', () => undefined);
        s.on('close', () => this.links.delete(s));
      }
      client.pipe(upstream);
      upstream.pipe(client);
      client.on('close', () => upstream.destroy());
      upstream.on('close', () => client.destroy());
    });
    await new Promise<void>((resolve) => this.server!.listen(0, '127.0.0.1', resolve));
    this.port = (this.server!.address() as { port: number }).port;
  }

  /**
   * Stops moving bytes on every open link without closing anything, as a network that vanished
   * silently: neither end learns of it from the proxy. New connections go through.
   */
  freeze(): void {
    this.hold([...this.links]);
  }

  private hold(sockets: Socket[]): void {
    for (const s of sockets) {
      if (!this.links.delete(s)) continue;
      s.unpipe();
      s.pause();
      this.frozen.add(s);
    }
  }

  /** New connections for `ms` are accepted and never answered (nor closed, until `cut` or `stop`). */
  stall(ms: number): void {
    this.stalledUntil = Date.now() + ms;
  }

  /** Resets every open link, frozen ones included; new connections are reset too for `downMs`. */
  cut(downMs = 0): void {
    this.downUntil = Date.now() + downMs;
    for (const s of [...this.links, ...this.frozen]) if (this.pipes.has(s)) s.destroy();
    else s.resetAndDestroy();
    this.links.clear();
    this.frozen.clear();
  }

  async stop(): Promise<void> {
    this.cut();
    await new Promise<void>((resolve) => (this.server ? this.server.close(() => resolve()) : resolve()));
  }
}
