import type { Duplex } from 'node:stream';
import { WebSocket } from 'ws';
import { FrameError, RequestType, ResponseType, parseCount, parseWinch, utf8 } from '../../proto/codec.js';
import { Utf8Boundary } from '../../proto/utf8-boundary.js';
import { DEFAULT_PEER_TIMEOUT_MS, DEFAULT_STALL_TIMEOUT_MS, HELD_CHUNK_COST_BYTES, OUTPUT_HIGH_WATER_BYTES, OUTPUT_LOW_WATER_BYTES } from '../config/limits.js';
import { EntryError } from '../errors.js';
import type { FaultReporter } from '../fault.js';
import type { EndReason, OutputStream, TerminalEvents, ClientTerminal } from '../session/types.js';
import { closeCodeOf, closeLine, closeReasonText } from './close-line.js';
import { type Framing, protobufFraming } from './framing.js';
import { sessionEnds } from './paced-queue.js';
import { type KernelTcpState, kernelTcpView, type TcpEndpoints, UNANSWERED_RECHECK_MS, UNANSWERED_TRIES_GONE } from './tcp-view.js';
import { RESUMING_CLOSE_CODE } from '../../proto/close-codes.js';

/**
 * How long `finish` waits for the client's close handshake, counted from when everything queued
 * has left the broker, before dropping the socket. A client still reading its backlog (a
 * paused reader at exit) is waited for under the same liveness rules as during the session.
 */
const CLOSE_HANDSHAKE_MS = 5_000;
/** How often `finish` looks at a client that is still reading its backlog. */
const FINISH_CHECK_MS = 1_000;
const PING_CONTENT = utf8('ping');
/**
 * What a client may send before its process starts (typed-ahead keys, a paste, the first of
 * piped stdin) is held up to the engine's own stdin queue bound, 1 MiB. Past that the socket is
 * not read until the process starts, and the rest waits in the client's buffers.
 */
export const EARLY_INPUT_HIGH_WATER_BYTES = 1024 * 1024;
/**
 * START may be this many times --max-frame (ws's maxPayload, set from it by the gateway): 4 MiB
 * by default, room for the 2 MiB of arguments and environment Linux takes (ARG_MAX with the
 * usual 8 MiB stack) and their framing.
 */
export const START_FRAME_FACTOR = 4;
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
  socket?: Duplex & TcpEndpoints & { setKeepAlive?(enable: boolean, delayMs: number): unknown };
  /** Liveness (see `checkPeer`). */
  peerTimeoutMs?: number;
  stallTimeoutMs?: number;
  /** Kernel keepalive delay on the socket; 0 or unset: left as it is. */
  tcpKeepAliveMs?: number;
  /** The kernel's view of the socket; the default reads /proc/net/tcp. */
  kernelView?: (socket: TcpEndpoints) => Promise<KernelTcpState | undefined>;
  /**
   * Told of an unexpected error in one of this socket's event handlers. The error stays with
   * this session (it ends with ENTRY_INTERNAL) instead of reaching the process.
   */
  fault?: FaultReporter;
}

type Message = { msgType: number; content: Uint8Array };

/**
 * The relay's terminal side over a WebSocket speaking message.proto. Listens from the moment
 * it is made, so nothing the client sends before the process starts is lost (a WINCH sent at
 * once, typed-ahead keys): those messages wait in `early` until `start`.
 */
export class WsTerminal implements ClientTerminal {
  private events: TerminalEvents | undefined;
  private early: Message[] = [];
  private earlyBytes = 0;
  private startWaiter: ((m: Message | EntryError) => void) | undefined;
  private heardMessage = false;
  private readonly utf8 = new Utf8Boundary();
  private outputPaused = false;
  private closed = false;
  private goneError: EntryError | undefined;
  /** The connection ended without a close frame (a broken network, a killed client). */
  private abrupt = false;
  private lostReported = false;
  /**
   * The broker dropped the connection itself (a resumed connection took its place, the close
   * handshake went unanswered with nothing left in flight, the peer was given up on): its end
   * is ordinary, not a broken link. A link that breaks while `finish` still delivers the end is
   * reported lost, so that a resumable session can deliver it again.
   */
  private dropped = false;
  /** Evidence the client reads: its last pong or message. */
  private lastHeard = Date.now();
  /** When the last ping went out, and whether the client was heard since. */
  private pingSentAt = 0;
  private heardSincePing = false;
  /** Output sent since then (it may sit unread in front of the pong). */
  private sentSinceHeard = false;
  /** Since when the client's kernel has left data or probes unanswered. */
  private unansweredSince: number | undefined;
  /** Bytes handed to ws; minus what is still queued, what the client has taken so far. */
  private sentBytes = 0;
  private mostTaken = Number.NEGATIVE_INFINITY;
  /** When the client last took anything, or had nothing queued. */
  private lastProgress = Date.now();
  private checking = false;
  /** A check due before the next ping: one after each ping, and one when a suspicion would ripen. */
  private followUp: NodeJS.Timeout | undefined;
  private readonly framing: Framing;
  private readonly pingFrame: Uint8Array;
  private corked = false;
  private readonly uncork = (): void => {
    this.corked = false;
    this.options.socket?.uncork();
  };
  private readonly heard = (): void => {
    this.lastHeard = Date.now();
    this.sentSinceHeard = false;
    this.heardSincePing = true;
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
    // A client that left before its terminal was made (while it was admitted) is gone already:
    // its 'close' was emitted to nobody.
    if (ws.readyState === WebSocket.CLOSED) this.closed = true;
    this.pingFrame = this.framing.encode(ResponseType.PING, PING_CONTENT);
    const onMessage = this.guard((data: Buffer, isBinary: boolean) => this.onMessage(data, isBinary));
    for (const [data, isBinary] of pending) onMessage(data, isBinary);
    ws.on('message', (data, isBinary) => onMessage(data as Buffer, isBinary));
    ws.on('pong', this.guard(this.heard));
    options.socket?.on('error', this.guard((err: Error & { code?: string }) => {
      // The kernel gave up on the peer (keepalive or retransmissions unanswered).
      if (err.code === 'ETIMEDOUT' || err.code === 'EHOSTUNREACH' || err.code === 'ENETUNREACH') this.gone(new EntryError('ENTRY_PEER_TIMEOUT', `the connection failed: ${err.code}`));
    }));
    if (options.tcpKeepAliveMs) options.socket?.setKeepAlive?.(true, options.tcpKeepAliveMs);
    ws.on(
      'close',
      this.guard((code: number) => {
        this.closed = true;
        // 1006: the socket ended with no close frame, which a client quitting on purpose sends.
        // RESUMING_CLOSE_CODE: a client that cannot drop a socket without one (a browser) leaving it to resume.
        this.abrupt = code === 1006 || code === RESUMING_CLOSE_CODE;
        clearTimeout(this.followUp);
        // Paced: a burst of closes (a load balancer restarting) must not stall the other sessions.
        sessionEnds.push(this.guard(() => this.gone()));
      }),
    );
    ws.on(
      'error',
      this.guard((err: Error & { code?: string }) => {
        // ws reports protocol violations (oversized frame, bad opcode) here before closing.
        this.gone(err.code === 'WS_ERR_UNSUPPORTED_MESSAGE_LENGTH' ? new EntryError('ENTRY_FRAME_TOO_LARGE') : new EntryError('ENTRY_BAD_FRAME', err.message));
      }),
    );
  }

  /**
   * A socket event handler inside the fault boundary: what it throws ends this session with
   * ENTRY_INTERNAL and is reported, and never reaches the emitter (and so the process).
   */
  private guard<A extends unknown[]>(fn: (...args: A) => void): (...args: A) => void {
    return (...args: A) => {
      try {
        fn(...args);
      } catch (err) {
        this.options.fault?.('socket', err);
        try {
          this.gone(new EntryError('ENTRY_INTERNAL'));
        } catch (again) {
          this.options.fault?.('socket', again);
          this.ws.terminate();
        }
      }
    };
  }

  /** Protocol 2: resolves with the START (or `expected`) content, or rejects (bad first frame, timeout, gone). */
  awaitStart(timeoutMs: number, expected: number = RequestType.START): Promise<Uint8Array> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new EntryError('ENTRY_START_TIMEOUT')), timeoutMs);
      this.startWaiter = (m) => {
        clearTimeout(timer);
        this.startWaiter = undefined;
        if (m instanceof EntryError) reject(m);
        else if (m.msgType !== expected) reject(new EntryError('ENTRY_BAD_FRAME', `the first message must be ${expected === RequestType.RESUME ? 'RESUME' : 'START'}`));
        else resolve(m.content);
      };
      // It may have come already: with web mode's credentials, in the same read.
      const first = this.early.shift();
      if (first) return this.startWaiter(first);
      if (this.goneError || this.closed) return this.startWaiter(this.goneError ?? new EntryError('ENTRY_BAD_FRAME', 'client went away'));
      // Web mode stops reading while the credentials are checked.
      this.ws.resume();
    });
  }

  setTty(tty: boolean): void {
    this.options = { ...this.options, tty };
  }

  start(events: TerminalEvents): void {
    this.events = events;
    // Reading stopped at the early bound, or during admission (web mode); from here the relay
    // paces input. Resumed first, so that a pause the early input causes below stands.
    this.ws.resume();
    const early = this.early;
    this.early = [];
    this.earlyBytes = 0;
    for (const m of early) this.dispatch(m);
    if (this.closed || this.goneError) this.gone(this.goneError);
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
    this.sentBytes += frame.length;
    if (queued > OUTPUT_LOW_WATER_BYTES) this.ws.send(frame, SEND_BINARY, this.onSent);
    else this.ws.send(frame, SEND_BINARY);
    this.sentSinceHeard = true;
    if (this.ws.bufferedAmount >= OUTPUT_HIGH_WATER_BYTES && !this.outputPaused) {
      this.outputPaused = true;
      // Output backing up is when a peer may have vanished under it: look within a second
      // rather than at the next ping.
      if (!this.followUp) this.checkSoon(1_000);
    }
    return !this.outputPaused;
  }

  ping(): void {
    if (this.closed) return;
    // Besides keeping old clients and proxies awake, a ping gives an idle connection bytes the
    // client's kernel must acknowledge: that is what tells a vanished peer from a quiet one.
    this.ws.send(this.pingFrame, { binary: true });
    this.sentBytes += this.pingFrame.length;
    this.ws.ping();
    this.pingSentAt = Date.now();
    this.heardSincePing = false;
    this.checkNow();
    // A healthy client has acknowledged the ping within a second: looking then, rather than at
    // the next ping, starts the clock on a vanished one up to an interval sooner.
    this.checkSoon(1_000);
  }

  private checkNow(): void {
    void this.checkPeer().then((error) => error && this.gone(error));
  }

  private checkSoon(ms: number): void {
    clearTimeout(this.followUp);
    this.followUp = setTimeout(() => {
      this.followUp = undefined;
      this.checkNow();
    }, ms);
    this.followUp.unref();
  }

  /**
   * Whether the client is gone. A client that does not read is not: it cannot answer pings
   * while its own backlog sits in front of them (`| less`, Ctrl-Z, a slow disk), yet its
   * kernel acknowledges what arrives and answers window probes. So the evidence is the
   * kernel's, where it can be read:
   *  - retransmissions or window probes unanswered for --peer-timeout, two of them by then: gone
   *    (ENTRY_PEER_TIMEOUT);
   *  - output queued (in ws or in the kernel) and not moving for --stall-timeout: ENTRY_PEER_STALLED,
   *    a cap on how long a stopped reader holds the process, whatever its kernel says.
   * Without the kernel's view (not Linux), an unanswered ping counts only when no output went
   * out since the client was last heard (it cannot be stuck behind unread output).
   */
  async checkPeer(now = Date.now()): Promise<EntryError | undefined> {
    const socket = this.options.socket;
    if (this.checking || this.closed) return undefined;
    const peerTimeout = this.options.peerTimeoutMs ?? DEFAULT_PEER_TIMEOUT_MS;
    if (this.pingSentAt > 0 && this.heardSincePing && now - this.lastHeard < peerTimeout) {
      // The last ping was answered: the client reads and the path works. Most sessions are
      // here, and cost no look at the kernel.
      this.unansweredSince = undefined;
      this.lastProgress = now;
      return undefined;
    }
    this.checking = true;
    let kernel: KernelTcpState | undefined;
    try {
      kernel = socket ? await this.lookupKernel(socket) : undefined;
    } catch {
      kernel = undefined;
    } finally {
      this.checking = false;
    }
    if (this.closed) return undefined;
    const stallTimeout = this.options.stallTimeoutMs ?? DEFAULT_STALL_TIMEOUT_MS;
    if (kernel) {
      if (kernel.unanswered > 0) {
        this.unansweredSince ??= now;
        const silent = now - this.unansweredSince;
        if (silent < peerTimeout) this.checkSoon(peerTimeout - silent + 10);
        // One try left at 1 is no proof: see UNANSWERED_TRIES_GONE. Looked at again until the
        // kernel tries once more (then 2: gone) or hears the peer (then 0).
        else if (kernel.unanswered < UNANSWERED_TRIES_GONE) this.checkSoon(UNANSWERED_RECHECK_MS);
        else return new EntryError('ENTRY_PEER_TIMEOUT', `nothing acknowledged for ${Math.round(silent / 1000)} s`);
      } else {
        this.unansweredSince = undefined;
      }
    }
    const queued = this.ws.bufferedAmount + (kernel?.txQueue ?? 0);
    // Frame headers are not counted in sentBytes, so pings queued behind a stalled backlog make
    // `taken` shrink a little, never grow: only the client reading counts as progress.
    const taken = this.sentBytes - queued;
    if (queued === 0 || taken > this.mostTaken) this.lastProgress = now;
    this.mostTaken = Math.max(this.mostTaken, taken);
    if (stallTimeout > 0 && queued > 0 && now - this.lastProgress >= stallTimeout) {
      return new EntryError('ENTRY_PEER_STALLED', `${queued} bytes queued, none read for ${Math.round((now - this.lastProgress) / 1000)} s`);
    }
    if (!kernel && queued === 0 && !this.sentSinceHeard && now - this.lastHeard >= peerTimeout) {
      return new EntryError('ENTRY_PEER_TIMEOUT', `no answer to pings for ${Math.round((now - this.lastHeard) / 1000)} s`);
    }
    return undefined;
  }

  private lookupKernel(socket: TcpEndpoints): Promise<KernelTcpState | undefined> {
    return (this.options.kernelView ?? ((s) => kernelTcpView.lookup(s)))(socket);
  }

  /** Bytes sent to the client that its kernel has not acknowledged; 0 where the kernel cannot be read. */
  private async kernelSendQueue(): Promise<number> {
    const socket = this.options.socket;
    if (!socket) return 0;
    const kernel = await this.lookupKernel(socket).catch(() => undefined);
    return kernel?.txQueue ?? 0;
  }

  pauseInput(): void {
    this.ws.pause();
  }

  resumeInput(): void {
    this.ws.resume();
  }

  /** Protocol 2: a message beside the output (RESUMABLE, INPUT_ACK). */
  sendControl(type: number, content: Uint8Array): void {
    if (this.closed) return;
    const frame = this.framing.encode(type, content);
    this.sentBytes += frame.length;
    this.ws.send(frame, SEND_BINARY);
  }

  /** Drops the connection without a word: a resumed connection took its place. */
  drop(): void {
    this.dropped = true;
    this.ws.terminate();
  }

  async finish(reason: EndReason, line?: string, unread?: () => number): Promise<void> {
    if (this.closed) return;
    if (reason.kind === 'failed' && (reason.error.code === 'ENTRY_PEER_TIMEOUT' || reason.error.code === 'ENTRY_PEER_STALLED')) {
      // The peer does not read: nothing sent now would arrive, and no close handshake will.
      this.dropped = true;
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
    // The close frame goes once the CLOSE message has left ws's own queue (at once, unless the
    // client reads slowly): ws drops a socket 30 s after `close()` whatever is still queued, and
    // a client still reading a backlog ws holds would lose its end. Until then the socket is
    // open, under the same liveness rules as the session (checkPeer, below).
    this.ws.send(this.framing.encode(ResponseType.CLOSE, utf8(line ?? closeLine(reason)), code), { binary: true }, (err) => {
      if (err || this.closed) return;
      this.ws.close(closeCodeOf(reason), closeReasonText(reason));
    });
    await new Promise<void>((resolve) => {
      let handshakeDue = 0;
      const reading = new ReadingProgress();
      const check = async () => {
        if (this.closed) return;
        const now = Date.now();
        let error = await this.checkPeer(now);
        if (this.closed) return;
        // Output still on its way counts whether ws or the kernel holds it: a backlog that fits in
        // the socket buffers (several MB on loopback) leaves ws empty while the client has not read it.
        const queued = this.ws.bufferedAmount + (error ? 0 : await this.kernelSendQueue());
        if (this.closed) return;
        // And so does what the client's kernel holds for a client that says what it has read: a
        // socket dropped under it would answer its next acknowledgement with a reset, which throws
        // away what it has not read yet.
        error ??= reading.check(unread?.() ?? 0, now);
        if (!error && (queued > 0 || reading.behind)) handshakeDue = 0;
        else if (!error && handshakeDue === 0) handshakeDue = now + CLOSE_HANDSHAKE_MS;
        if (error || (handshakeDue > 0 && now >= handshakeDue)) {
          clearInterval(timer);
          // Everything left and the close went unanswered: an ordinary end. A peer that stopped
          // acknowledging (`error`) with the end still in flight is a broken link.
          if (error?.code !== 'ENTRY_PEER_TIMEOUT') this.dropped = true;
          this.ws.terminate();
          resolve();
        }
      };
      const timer = setInterval(() => void check(), Math.min(FINISH_CHECK_MS, CLOSE_HANDSHAKE_MS));
      timer.unref();
      this.ws.once('close', () => {
        clearInterval(timer);
        resolve();
      });
      this.ws.resume();
    });
  }

  private onMessage(data: Buffer, isBinary: boolean): void {
    if (this.goneError) return;
    this.heard();
    const limit = this.options.maxFrameBytes;
    const first = !this.heardMessage;
    this.heardMessage = true;
    // START, the first message, may be larger (up to ws's maxPayload): it carries the command and
    // its environment, which Linux takes up to 2 MiB of, where the others are chunks of input.
    const over = limit !== undefined && data.length > limit;
    if (over && !(first && data.length <= limit * START_FRAME_FACTOR)) {
      this.gone(new EntryError('ENTRY_FRAME_TOO_LARGE', `${data.length} bytes, the limit is ${first ? limit * START_FRAME_FACTOR : limit}`));
      return;
    }
    let m: Message;
    try {
      m = this.framing.decode(data, isBinary);
    } catch (err) {
      this.gone(new EntryError('ENTRY_BAD_FRAME', err instanceof FrameError ? err.message : 'undecodable'));
      return;
    }
    if (over && m.msgType !== RequestType.START) {
      this.gone(new EntryError('ENTRY_FRAME_TOO_LARGE', `${data.length} bytes, the limit is ${limit}`));
      return;
    }
    if (this.startWaiter) {
      this.startWaiter(m);
      return;
    }
    if (!this.events) {
      this.early.push(m);
      // Each message costs its objects too: empty frames, counted by bytes alone, held no bound.
      this.earlyBytes += data.length + HELD_CHUNK_COST_BYTES;
      if (this.earlyBytes >= EARLY_INPUT_HIGH_WATER_BYTES) this.ws.pause();
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
      case RequestType.OUTPUT_ACK: {
        const count = parseCount(m.content);
        if (this.options.protocol2 && count !== undefined) events.outputAck?.(count);
        return;
      }
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
    // A broken connection, not a client that quit: a resumable session waits for its client.
    const broken = error ? error.code === 'ENTRY_PEER_TIMEOUT' : this.closed && this.abrupt;
    if (events.lost && broken && !this.dropped) {
      if (!this.lostReported) {
        this.lostReported = true;
        events.lost(error);
      }
      return;
    }
    if (error) events.gone(error);
    else if (this.closed) events.gone();
  }
}

/**
 * How long `finish` waits for a client that reads none of what it has received. One that has
 * stopped (Ctrl-Z, `| less` at the end) is dropped then, as before this wait existed, and a
 * resume brings it the rest; only one still reading holds its session, its place under
 * --max-sessions and a drain. 10 s: ten of the clients' acknowledgement delays (1 s), and half
 * of --drain-timeout's default.
 */
const READING_STALL_MS = 10_000;

/**
 * A client's reading of what it has received, by what it acknowledges, while `finish` waits for
 * it: `behind` while some is left to read; ENTRY_PEER_STALLED once none has been read for
 * READING_STALL_MS.
 */
class ReadingProgress {
  private last = 0;
  private movedAt = Date.now();
  behind = false;

  check(unread: number, now: number): EntryError | undefined {
    this.behind = unread > 0;
    if (unread !== this.last) {
      this.last = unread;
      this.movedAt = now;
    }
    if (!this.behind || now - this.movedAt < READING_STALL_MS) return undefined;
    return new EntryError('ENTRY_PEER_STALLED', `${unread} bytes received and not read for ${Math.round((now - this.movedAt) / 1000)} s`);
  }
}
