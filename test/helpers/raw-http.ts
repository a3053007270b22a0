import net from 'node:net';

/** What came back on a raw HTTP connection. */
export interface RawAnswer {
  /** Status codes of every answer read, in order ([] when the server answered nothing). */
  statuses: number[];
  /** Everything the server sent. */
  text: string;
  /** The server closed the connection (rather than the client or the timeout). */
  closedByServer: boolean;
}

export interface RawPlan {
  /** Bytes sent at once after connecting. */
  head: string | Buffer;
  /** Further pieces, each sent `everyMs` after the previous one. */
  trickle?: Array<string | Buffer>;
  everyMs?: number;
  /** The client closes its side this long after the last piece (0: at once; undefined: never). */
  closeAfterMs?: number;
  /** Give up waiting for the server after this long. */
  timeoutMs?: number;
  /** Resolve as soon as this many answers have been read. */
  answers?: number;
}

const STATUS_LINE = /HTTP\/1\.[01] (\d{3})/g;

/** Speaks raw bytes to `port` on loopback: for requests no HTTP client would send. */
export function rawHttp(port: number, plan: RawPlan): Promise<RawAnswer> {
  return new Promise((resolve) => {
    const socket = net.connect(port, '127.0.0.1');
    const chunks: Buffer[] = [];
    let closedByServer = false;
    let done = false;
    const timers: NodeJS.Timeout[] = [];
    const finish = () => {
      if (done) return;
      done = true;
      for (const t of timers) clearTimeout(t);
      socket.destroy();
      const text = Buffer.concat(chunks).toString('latin1');
      resolve({ statuses: [...text.matchAll(STATUS_LINE)].map((m) => Number(m[1])), text, closedByServer });
    };
    socket.on('error', () => undefined);
    socket.on('data', (d: Buffer) => {
      chunks.push(d);
      if (plan.answers && [...Buffer.concat(chunks).toString('latin1').matchAll(STATUS_LINE)].length >= plan.answers) finish();
    });
    socket.on('end', () => {
      closedByServer = true;
      finish();
    });
    socket.on('close', finish);
    socket.once('connect', () => {
      socket.write(plan.head);
      const pieces = plan.trickle ?? [];
      const every = plan.everyMs ?? 0;
      pieces.forEach((p, i) => timers.push(setTimeout(() => !socket.destroyed && socket.write(p), every * (i + 1))));
      if (plan.closeAfterMs !== undefined) timers.push(setTimeout(() => socket.destroy(), every * pieces.length + plan.closeAfterMs));
      timers.push(setTimeout(finish, plan.timeoutMs ?? 10_000));
    });
  });
}
