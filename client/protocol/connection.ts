import { EventEmitter } from 'node:events';
import WebSocket from 'ws';
import {
  decodeResponse,
  encodeExecSpec,
  encodeRequest,
  encodeWinch,
  type ExecSpec,
  RequestType,
  ResponseType,
  utf8,
} from '../../proto/codec.js';
import { ClientError } from './client-error.js';
import { type ClientTls, clientTlsFromEnv, tlsConnectOptions } from './tls.js';

export interface Target {
  app: string;
  proc: string;
  instance: string | number;
}

export interface ConnectOptions {
  /** Broker address: http(s)://host:port or ws(s)://host:port. */
  broker: string;
  token: string;
  target: Target;
  /** What to run; omit argv for the interactive shell. */
  spec?: Partial<ExecSpec>;
  /** Milliseconds to wait for the connection; default 15 s. */
  connectTimeoutMs?: number;
  /** A private CA and/or a client certificate for wss:// (default: ENTRY_CA_FILE, ENTRY_CERT_FILE, ENTRY_KEY_FILE). */
  tls?: ClientTls;
}

/** How a session ended, as the client saw it. */
export interface SessionEnd {
  /** Set when the process exited (protocol 2 EXIT). */
  exitCode: number | undefined;
  /** The broker's error code when it ended the session with a failure. */
  code: string;
  /** The CLOSE line, without colour codes. */
  message: string;
  /** WebSocket close code. */
  closeCode: number;
}

/** Client-side queue limit before `write` asks the caller to wait (see the broker's limits). */
const INPUT_HIGH_WATER_BYTES = 1024 * 1024;
const INPUT_LOW_WATER_BYTES = 256 * 1024;
/** Larger writes are cut into frames of this size, well below the broker's max frame. */
const MAX_CHUNK_BYTES = 256 * 1024;

export function stripAnsi(text: string): string {
  // eslint-disable-next-line no-control-regex
  return text.replace(/\x1b\[[0-9;]*m/g, '').trim();
}

export function enterUrl(broker: string): string {
  const url = new URL(broker.replace(/^http/, 'ws'));
  url.pathname = `${url.pathname.replace(/\/$/, '')}/enter`;
  return url.toString();
}

/**
 * One protocol-2 session with the broker over a WebSocket: events `stdout`, `stderr`
 * (Buffer each), `drain`, and `end` (SessionEnd). `done` resolves with the same SessionEnd.
 */
export class ExecConnection extends EventEmitter {
  readonly done: Promise<SessionEnd>;
  private exitCode: number | undefined;
  private closeMessage = '';
  private closeErrorCode = '';
  private inputPaused = false;
  private readonly onSent = (): void => {
    if (this.inputPaused && this.ws.bufferedAmount < INPUT_LOW_WATER_BYTES) {
      this.inputPaused = false;
      this.emit('drain');
    }
  };

  private constructor(private readonly ws: WebSocket) {
    super();
    this.done = new Promise((resolve) => {
      ws.on('close', (closeCode) => {
        const end: SessionEnd = { exitCode: this.exitCode, code: this.closeErrorCode, message: this.closeMessage, closeCode };
        this.emit('end', end);
        resolve(end);
      });
    });
    ws.on('message', (data: Buffer) => this.onMessage(data));
  }

  /** Connects and sends START. Rejects with ClientError when the broker cannot be reached. */
  static open(options: ConnectOptions): Promise<ExecConnection> {
    const { target } = options;
    const ws = new WebSocket(enterUrl(options.broker), {
      headers: {
        'access-token': options.token,
        'app-name': target.app,
        'proc-name': target.proc,
        'instance-no': String(target.instance),
        'entry-protocol': '2',
        ...(options.spec?.term ? { 'term-type': options.spec.term } : {}),
      },
      perMessageDeflate: false,
      ...tlsConnectOptions(options.tls ?? clientTlsFromEnv()),
      handshakeTimeout: options.connectTimeoutMs ?? 15_000,
      maxPayload: 64 * 1024 * 1024,
    });
    return new Promise((resolve, reject) => {
      const onError = (err: Error & { code?: string }) => {
        const why = err.code === 'ECONNRESET' && /^wss:|^https:/.test(options.broker) ? 'ECONNRESET (the broker may want a client certificate: --cert and --key)' : (err.code ?? err.message);
        reject(new ClientError('ENTRY_CONNECT_FAILED', `cannot reach broker ${options.broker}: ${why}`));
      };
      ws.once('error', onError);
      ws.once('unexpected-response', (_req, res) => {
        ws.off('error', onError);
        reject(new ClientError('ENTRY_CONNECT_FAILED', `broker answered HTTP ${res.statusCode} ${res.statusMessage ?? ''}`.trim()));
        ws.terminate();
      });
      ws.once('open', () => {
        ws.off('error', onError);
        ws.on('error', () => undefined);
        const conn = new ExecConnection(ws);
        ws.send(encodeRequest(RequestType.START, encodeExecSpec(options.spec ?? {})));
        resolve(conn);
      });
    });
  }

  /** Sends stdin bytes; false means wait for `drain` before writing more. */
  write(data: Uint8Array): boolean {
    if (this.ws.readyState !== WebSocket.OPEN) return true;
    for (let pos = 0; pos < data.length; pos += MAX_CHUNK_BYTES) {
      this.ws.send(encodeRequest(RequestType.PLAIN, data.subarray(pos, pos + MAX_CHUNK_BYTES)), this.onSent);
    }
    if (this.ws.bufferedAmount >= INPUT_HIGH_WATER_BYTES) this.inputPaused = true;
    return !this.inputPaused;
  }

  endInput(): void {
    if (this.ws.readyState === WebSocket.OPEN) this.ws.send(encodeRequest(RequestType.STDIN_EOF));
  }

  resize(cols: number, rows: number): void {
    if (this.ws.readyState === WebSocket.OPEN && cols > 0 && rows > 0) this.ws.send(encodeRequest(RequestType.WINCH, encodeWinch(cols, rows)));
  }

  signal(name: string): void {
    if (this.ws.readyState === WebSocket.OPEN) this.ws.send(encodeRequest(RequestType.SIGNAL, utf8(name)));
  }

  /** Stops reading output (the consumer is slow); the broker then pauses the process's output. */
  pause(): void {
    this.ws.pause();
  }

  resume(): void {
    this.ws.resume();
  }

  /** Drops the connection; the broker ends the remote processes. */
  close(): void {
    this.ws.close(1000);
  }

  private onMessage(data: Buffer): void {
    let m;
    try {
      m = decodeResponse(data);
    } catch {
      return;
    }
    switch (m.msgType) {
      case ResponseType.STDOUT:
        this.emit('stdout', Buffer.from(m.content.buffer, m.content.byteOffset, m.content.byteLength));
        return;
      case ResponseType.STDERR:
        this.emit('stderr', Buffer.from(m.content.buffer, m.content.byteOffset, m.content.byteLength));
        return;
      case ResponseType.EXIT:
        this.exitCode = Number(Buffer.from(m.content).toString('ascii'));
        return;
      case ResponseType.CLOSE:
        this.closeMessage = stripAnsi(Buffer.from(m.content).toString('utf8'));
        this.closeErrorCode = m.code;
        return;
      default:
        return;
    }
  }
}
