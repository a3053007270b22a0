import WebSocket from 'ws';
import { decodeResponse, encodeExecSpec, encodeRequest, type ExecSpec, RequestFramer, RequestType, ResponseType } from '../proto/codec.js';
import type { BenchTarget } from './containers.js';
import { opened } from './ws-open.js';

export type OutputHandler = (data: Uint8Array, stream: 'stdout' | 'stderr') => void;

/** Client-side send queue limit before `write` reports congestion (as the real client does). */
const INPUT_HIGH_WATER_BYTES = 1024 * 1024;
const INPUT_LOW_WATER_BYTES = 256 * 1024;

/**
 * A minimal protocol-2 client: upgrade headers, START, then PLAIN/STDIN_EOF in and
 * STDOUT/STDERR/EXIT/CLOSE out. Thin on purpose, so the figures show the broker and not a
 * client library; it still decodes every frame, as any client must.
 */
export class EntrySession {
  onOutput: OutputHandler = () => undefined;
  exitCode: number | undefined;
  closeCode = '';
  closeLine = '';
  /** Resolves with the exit code on EXIT; rejects if the session closes without one. */
  readonly exit: Promise<number>;
  /** Resolves when the WebSocket has closed. */
  readonly closed: Promise<void>;
  private resolveExit!: (code: number) => void;
  private drainWaiter: (() => void) | undefined;
  // As the CLI frames its input: ws copies each frame while masking it.
  private readonly framer = new RequestFramer();
  private readonly onSent = (): void => {
    if (this.drainWaiter && this.ws.bufferedAmount < INPUT_LOW_WATER_BYTES) {
      const w = this.drainWaiter;
      this.drainWaiter = undefined;
      w();
    }
  };

  private constructor(readonly ws: WebSocket) {
    let rejectExit!: (err: Error) => void;
    this.exit = new Promise<number>((resolve, reject) => {
      this.resolveExit = resolve;
      rejectExit = reject;
    });
    this.exit.catch(() => undefined);
    this.closed = new Promise((resolve) => {
      ws.on('close', (code) => {
        if (this.exitCode === undefined) rejectExit(new Error(`session closed without an exit code (${code} ${this.closeCode} ${this.closeLine})`));
        this.drainWaiter?.();
        resolve();
      });
    });
    ws.on('message', (data: Buffer) => this.onMessage(data));
  }

  /** Connects with the upgrade headers and sends START; resolves once START is sent. */
  static open(wsUrl: string, token: string, target: BenchTarget, spec: Partial<ExecSpec>): Promise<EntrySession> {
    const ws = new WebSocket(wsUrl, {
      headers: {
        'access-token': token,
        'app-name': target.app,
        'proc-name': target.proc,
        'instance-no': target.instance,
        'entry-protocol': '2',
      },
      perMessageDeflate: false,
      maxPayload: 64 * 1024 * 1024,
      handshakeTimeout: 60_000,
    });
    return opened(ws, 'broker').then(() => {
      const session = new EntrySession(ws);
      ws.send(encodeRequest(RequestType.START, encodeExecSpec(spec)));
      return session;
    });
  }

  /** Sends stdin bytes as one PLAIN frame. */
  send(data: Uint8Array): void {
    this.ws.send(this.framer.frame(RequestType.PLAIN, data));
  }

  /** Sends stdin bytes honouring backpressure: resolves when more may be written. */
  write(data: Uint8Array): Promise<void> | undefined {
    this.ws.send(this.framer.frame(RequestType.PLAIN, data), this.onSent);
    if (this.ws.bufferedAmount < INPUT_HIGH_WATER_BYTES || this.ws.readyState !== WebSocket.OPEN) return undefined;
    return new Promise((resolve) => (this.drainWaiter = resolve));
  }

  endInput(): void {
    this.ws.send(encodeRequest(RequestType.STDIN_EOF));
  }

  /** Stops reading: the socket's buffers fill and the broker must pause the process's output. */
  pause(): void {
    this.ws.pause();
  }

  resume(): void {
    this.ws.resume();
  }

  close(): void {
    this.ws.close(1000);
  }

  private onMessage(data: Buffer): void {
    const m = decodeResponse(data);
    switch (m.msgType) {
      case ResponseType.STDOUT:
        this.onOutput(m.content, 'stdout');
        return;
      case ResponseType.STDERR:
        this.onOutput(m.content, 'stderr');
        return;
      case ResponseType.EXIT:
        this.exitCode = Number(Buffer.from(m.content).toString('ascii'));
        this.resolveExit(this.exitCode);
        return;
      case ResponseType.CLOSE:
        this.closeCode = m.code;
        this.closeLine = Buffer.from(m.content).toString('utf8');
        return;
      default:
        return;
    }
  }
}
