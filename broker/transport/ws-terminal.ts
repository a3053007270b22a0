import type { Duplex } from 'node:stream';
import type { WebSocket } from 'ws';
import { FrameError, RequestType, ResponseType, parseWinch, utf8 } from '../../proto/codec.js';
import { Utf8Boundary } from '../../proto/utf8-boundary.js';
import { OUTPUT_HIGH_WATER_BYTES, OUTPUT_LOW_WATER_BYTES } from '../config/limits.js';
import { EntryError } from '../errors.js';
import type { EndReason, OutputStream, TerminalEvents, TerminalSide } from '../session/types.js';
import { closeCodeOf, closeLine, closeReasonText } from './close-line.js';
import { type Framing, protobufFraming } from './framing.js';

/** How long `finish` waits for the client's close handshake before dropping the socket. */
const CLOSE_HANDSHAKE_MS = 5_000;
const PING_CONTENT = utf8('ping');
const SEND_BINARY = { binary: true } as const;

export interface WsTerminalOptions {
  /** Protocol 2: EXIT before CLOSE, error codes in CLOSE, STDIN_EOF and SIGNAL understood. */
  protocol2: boolean;
  /** TTY output is cut on UTF-8 boundaries for clients that decode each message alone. */
  tty: boolean;
  /** Protobuf frames, or JSON for the original web mode. */
  framing?: Framing;
  /** Largest message accepted (--max-frame); larger ones end the session with a reason. */
  maxFrameBytes?: number;
  /**
   * The connection under the WebSocket. Output frames sent in one turn of the event loop (all
   * the payloads of one Docker read) are held by corking it and leave in one write.
   */
  socket?: Duplex;
}

type Message = { msgType: number; content: Uint8Array };

/**
 * The relay's terminal side over a WebSocket speaking message.proto. Listens from the moment
 * it is made, so nothing the client sends before the process starts is lost (a WINCH sent at
 * once, typed-ahead keys): those messages wait in `early` until `start`.
 */
export class WsTerminal implements TerminalSide {
  private events: TerminalEvents | undefined;
  private early: Message[] = [];
  private startWaiter: ((m: Message | EntryError) => void) | undefined;
  private readonly utf8 = new Utf8Boundary();
  private outputPaused = false;
  private closed = false;
  private goneError: EntryError | undefined;
  private peerAlive = true;
  private readonly framing: Framing;
  private readonly pingFrame: Uint8Array;
  private corked = false;
  private readonly uncork = (): void => {
    this.corked = false;
    this.options.socket?.uncork();
  };
  private readonly onSent = (): void => {
    if (this.outputPaused && this.ws.bufferedAmount < OUTPUT_LOW_WATER_BYTES) {
      this.outputPaused = false;
      this.events?.drain();
    }
  };

  constructor(
    private readonly ws: WebSocket,
    private options: WsTerminalOptions,
    pending: Array<[Buffer, boolean]> = [],
  ) {
    this.framing = options.framing ?? protobufFraming;
    this.pingFrame = this.framing.encode(ResponseType.PING, PING_CONTENT);
    for (const [data, isBinary] of pending) this.onMessage(data, isBinary);
    ws.on('message', (data, isBinary) => this.onMessage(data as Buffer, isBinary));
    ws.on('pong', () => (this.peerAlive = true));
    ws.on('close', () => {
      this.closed = true;
      this.gone();
    });
    ws.on('error', (err: Error & { code?: string }) => {
      // ws reports protocol violations (oversized frame, bad opcode) here before closing.
      this.gone(err.code === 'WS_ERR_UNSUPPORTED_MESSAGE_LENGTH' ? new EntryError('ENTRY_FRAME_TOO_LARGE') : new EntryError('ENTRY_BAD_FRAME', err.message));
    });
  }

  /** Protocol 2: resolves with the START content, or rejects (bad first frame, timeout, gone). */
  awaitStart(timeoutMs: number): Promise<Uint8Array> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new EntryError('ENTRY_START_TIMEOUT')), timeoutMs);
      this.startWaiter = (m) => {
        clearTimeout(timer);
        this.startWaiter = undefined;
        if (m instanceof EntryError) reject(m);
        else if (m.msgType !== RequestType.START) reject(new EntryError('ENTRY_BAD_FRAME', 'the first message must be START'));
        else resolve(m.content);
      };
      if (this.goneError || this.closed) this.startWaiter(this.goneError ?? new EntryError('ENTRY_BAD_FRAME', 'client went away'));
    });
  }

  setTty(tty: boolean): void {
    this.options = { ...this.options, tty };
  }

  start(events: TerminalEvents): void {
    this.events = events;
    const early = this.early;
    this.early = [];
    for (const m of early) this.dispatch(m);
    if (this.closed || this.goneError) events.gone(this.goneError);
  }

  send(stream: OutputStream, data: Uint8Array, headroom = 0): boolean {
    if (this.closed) return true;
    let payload = data;
    if (this.options.tty) {
      payload = this.utf8.split(data);
      if (payload.length === 0) return !this.outputPaused;
      if (payload !== data) headroom = 0;
    }
    const frame = this.framing.encodeOutput(stream === 'stderr' ? ResponseType.STDERR : ResponseType.STDOUT, payload, headroom);
    if (!this.corked && this.options.socket) {
      this.corked = true;
      this.options.socket.cork();
      process.nextTick(this.uncork);
    }
    // The write callback is only needed to notice the queue draining once it has built up.
    const queued = this.ws.bufferedAmount + frame.length;
    if (queued > OUTPUT_LOW_WATER_BYTES) this.ws.send(frame, SEND_BINARY, this.onSent);
    else this.ws.send(frame, SEND_BINARY);
    if (this.ws.bufferedAmount >= OUTPUT_HIGH_WATER_BYTES) this.outputPaused = true;
    return !this.outputPaused;
  }

  ping(): void {
    if (this.closed) return;
    if (!this.peerAlive) {
      // No pong since the previous ping: the peer or the path to it is dead.
      this.gone(new EntryError('ENTRY_PEER_TIMEOUT'));
      return;
    }
    this.peerAlive = false;
    this.ws.send(this.pingFrame, { binary: true });
    this.ws.ping();
  }

  pauseInput(): void {
    this.ws.pause();
  }

  resumeInput(): void {
    this.ws.resume();
  }

  async finish(reason: EndReason): Promise<void> {
    if (this.closed) return;
    if (reason.kind === 'failed' && reason.error.code === 'ENTRY_PEER_TIMEOUT') {
      // The peer does not read: nothing sent now would arrive, and no close handshake will.
      this.ws.terminate();
      return;
    }
    if (this.options.tty) {
      const rest = this.utf8.flush();
      if (rest) this.ws.send(this.framing.encode(ResponseType.STDOUT, rest), { binary: true });
    }
    if (reason.kind === 'exited' && this.options.protocol2) {
      this.ws.send(this.framing.encode(ResponseType.EXIT, utf8(String(reason.exitCode))), { binary: true });
    }
    const code = reason.kind === 'failed' && this.options.protocol2 ? reason.error.code : '';
    this.ws.send(this.framing.encode(ResponseType.CLOSE, utf8(closeLine(reason)), code), { binary: true });
    // ws sends the close frame after everything queued before it: no output is lost.
    await new Promise<void>((resolve) => {
      const timer = setTimeout(() => {
        this.ws.terminate();
        resolve();
      }, CLOSE_HANDSHAKE_MS);
      timer.unref();
      this.ws.once('close', () => {
        clearTimeout(timer);
        resolve();
      });
      this.ws.resume();
      this.ws.close(closeCodeOf(reason), closeReasonText(reason));
    });
  }

  private onMessage(data: Buffer, isBinary: boolean): void {
    if (this.goneError) return;
    if (this.options.maxFrameBytes !== undefined && data.length > this.options.maxFrameBytes) {
      this.gone(new EntryError('ENTRY_FRAME_TOO_LARGE', `${data.length} bytes, the limit is ${this.options.maxFrameBytes}`));
      return;
    }
    let m: Message;
    try {
      m = this.framing.decode(data, isBinary);
    } catch (err) {
      this.gone(new EntryError('ENTRY_BAD_FRAME', err instanceof FrameError ? err.message : 'undecodable'));
      return;
    }
    if (this.startWaiter) {
      this.startWaiter(m);
      return;
    }
    if (!this.events) {
      this.early.push(m);
      return;
    }
    this.dispatch(m);
  }

  private dispatch(m: Message): void {
    const events = this.events!;
    switch (m.msgType) {
      case RequestType.PLAIN:
        if (m.content.length > 0) events.input(m.content);
        return;
      case RequestType.WINCH: {
        const size = parseWinch(m.content);
        // A malformed size is ignored, as the original did: it must not end a live shell.
        if (size) events.resize(size.cols, size.rows);
        return;
      }
      case RequestType.STDIN_EOF:
        if (this.options.protocol2) events.inputEnd();
        return;
      case RequestType.SIGNAL:
        if (this.options.protocol2) events.signal(Buffer.from(m.content).toString('latin1'));
        return;
      default:
        // Unknown request types come from newer clients: ignore, never crash.
        return;
    }
  }

  private gone(error?: EntryError): void {
    if (error && !this.goneError) this.goneError = error;
    if (this.startWaiter) {
      this.startWaiter(error ?? new EntryError('ENTRY_BAD_FRAME', 'client went away'));
      return;
    }
    if (!this.events) return;
    const events = this.events;
    if (error) events.gone(error);
    else if (this.closed) events.gone();
  }
}
