import { EventEmitter } from 'node:events';
import WebSocket from 'ws';
import {
  decodeResponse,
  decodeResumeTicket,
  encodeCount,
  encodeExecSpec,
  encodeRequest,
  encodeResumeRequest,
  encodeWinch,
  type ExecSpec,
  parseCount,
  parseExitStatus,
  RequestFramer,
  RequestType,
  ResponseType,
  type ResumeTicket,
  utf8,
} from '../../proto/codec.js';
import { AckBatcher } from '../../proto/ack-batcher.js';
import { BAD_FRAME_CLOSE_CODE } from '../../proto/close-codes.js';
import { InputWindow } from '../../proto/input-window.js';
import { PING_INTERVAL_HEADER, RESUME_GRACE_HEADER, RESUME_TRY_MS } from '../../proto/silence.js';
import { SilenceWatchdog } from '../../proto/silence-watchdog.js';
import { PASSING_REFUSALS, refusalText, resumeExpiredMessage } from '../../proto/passing-refusals.js';
import { ClientError } from './client-error.js';
import { lastingRefusal, refusalOf } from './refused-upgrade.js';
import { certificateFailure, type ClientTls, clientTlsFromEnv, tlsConnectOptions } from './tls.js';

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
  /** Aborting it while the connection opens gives up on it (no START is sent), rejecting with its reason. */
  signal?: AbortSignal | undefined;
  /** A private CA and/or a client certificate for wss:// (default: ENTRY_CA_FILE, ENTRY_CERT_FILE, ENTRY_KEY_FILE). */
  tls?: ClientTls;
  /**
   * Resume the session when the connection breaks (default false here; the CLI and the API turn
   * it on): reconnect with backoff for as long as the broker keeps the session, and carry on
   * with no output lost or repeated and no input lost or doubled. Events: `reconnecting`, `resumed`.
   */
  resume?: boolean;
}

/** Told on `reconnecting`: the connection broke, this try is under way. */
export interface ReconnectStatus {
  attempt: number;
  /** Until when the broker keeps the session (epoch ms). */
  deadline: number;
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

/** Why a session ended, in words: the broker's CLOSE line, or what the close itself says. */
export function endReason(end: SessionEnd): string {
  if (end.message) return end.message.replace(/^entry: /, '');
  return end.closeCode === 1000 ? 'the broker closed the connection' : `the connection to the broker was lost (close code ${end.closeCode})`;
}

/** Client-side queue limit before `write` asks the caller to wait (see the broker's limits). */
const INPUT_HIGH_WATER_BYTES = 1024 * 1024;
const INPUT_LOW_WATER_BYTES = 256 * 1024;
/** Larger writes are cut into frames of this size, well below the broker's max frame. */
const MAX_CHUNK_BYTES = 256 * 1024;
/** Output acknowledgements: after this much, or this long after the last unacknowledged byte. */
const OUTPUT_ACK_BYTES = 64 * 1024;
const OUTPUT_ACK_MS = 1_000;
/** Waits between reconnection tries: doubling from the first to the last. */
const RETRY_FIRST_MS = 100;
const RETRY_MAX_MS = 1_000;
/**
 * How long input is kept waiting for RESUMABLE, which a broker that resumes sends first. Output
 * before it ends the wait at once; a command without output, from a broker that does not
 * resume, waits this long.
 */
export const TICKET_WAIT_MS = 5_000;

export function stripAnsi(text: string): string {
  // eslint-disable-next-line no-control-regex
  return text.replace(/\x1b\[[0-9;]*m/g, '').trim();
}

export function enterUrl(broker: string): string {
  const url = new URL(broker.replace(/^http/, 'ws'));
  url.pathname = `${url.pathname.replace(/\/$/, '')}/enter`;
  return url.toString();
}

/** The events of an ExecConnection and what each listener is given. */
export interface ExecConnectionEvents {
  stdout: [data: Buffer];
  stderr: [data: Buffer];
  /** `write` returned false and the input queue has gone down since. */
  drain: [];
  end: [end: SessionEnd];
  /** With `resume`: the connection broke and a try to resume it begins. */
  reconnecting: [status: ReconnectStatus];
  /** With `resume`: the session is back, nothing lost. */
  resumed: [info: { awayMs: number }];
}

/**
 * One protocol-2 session with the broker over a WebSocket (see ExecConnectionEvents). `done`
 * resolves with the SessionEnd.
 */
export class ExecConnection extends EventEmitter<ExecConnectionEvents> {
  readonly done: Promise<SessionEnd>;
  private resolveDone!: (end: SessionEnd) => void;
  private ws!: WebSocket;
  private exitCode: number | undefined;
  private closeMessage = '';
  private closeErrorCode = '';
  private gotClose = false;
  /** Set when the broker sent something this client cannot use: the session ends with it. */
  private protocolError: { code: string; message: string } | undefined;
  private ended = false;
  private closedByUs = false;
  private inputPaused = false;
  private readingPaused = false;
  /** Resume state: the ticket, output received and acknowledged, input not yet acknowledged. */
  private ticket: ResumeTicket | undefined;
  private readonly outputAcks = new AckBatcher(
    (count) => this.connected && (this.ws.send(encodeRequest(RequestType.OUTPUT_ACK, encodeCount(count))), true),
    OUTPUT_ACK_BYTES,
    OUTPUT_ACK_MS,
  );
  /**
   * Input written: sent within a window of what the broker has passed on, and kept until then
   * (a resume sends it again); past the window, or while the connection is broken, it waits.
   */
  private readonly input = new InputWindow(INPUT_HIGH_WATER_BYTES);
  /** Input is kept from the start (the broker counts it from the start) until the broker shows it does not resume. */
  private trackInput: boolean;
  /** Set when input was kept from the start and the ticket came: a broken connection is resumed. */
  private canResume = false;
  private readonly brokerSaidItResumes: boolean;
  private ticketTimer: NodeJS.Timeout | undefined;
  private retryWait = RETRY_FIRST_MS;
  private eofSent = false;
  private eofDelivered = false;
  private lastSize: [number, number] | undefined;
  /** Signals sent while the connection was being resumed: delivered once it is back. */
  private signalsWaiting: string[] = [];
  /** Set while the connection is broken: when it broke, and until when the broker keeps the session. */
  private lostAt = 0;
  /** The last refusal passed over while resuming (its CLOSE line): said if the grace period ends. */
  private passedRefusal = '';
  private resumeDeadline = 0;
  /** Tries since the connection broke, counted across connections that opened and broke again. */
  private reconnectAttempts = 0;
  /** Gives up a resume try whose socket is not answered (see boundResumeTry). */
  private tryTimer: NodeJS.Timeout | undefined;
  /** A resume was asked for on the current socket and not answered yet. */
  private resuming = false;
  private readonly onSent = (): void => this.checkDrain();
  // ws copies each frame while masking it, so one buffer serves every input frame.
  private readonly framer = new RequestFramer();
  private readonly watchdog = new SilenceWatchdog({
    // A paused reader hears nothing by its own choice; a broken connection is the other case.
    active: () => this.connected && !this.readingPaused,
    // This process did not run for a while (Ctrl-Z, SIGSTOP, a laptop asleep): ask now.
    woke: () => this.ws.ping(),
    silent: (silentForMs) => {
      this.silentForMs = silentForMs;
      this.ws.terminate();
    },
  });
  /** The broker's ping interval from its upgrade answer (0: an older broker that does not say). */
  private pingIntervalMs = 0;
  /** Set when the silence watch ended the connection: how long nothing was heard. */
  private silentForMs = 0;
  private readonly heard = (): void => this.watchdog.heard();

  private constructor(
    ws: WebSocket,
    private readonly options: ConnectOptions,
  ) {
    super();
    // A broker that says it keeps no session for resume sends no ticket: input goes at once.
    const grace = earlyEvents.get(ws)?.resumeGraceMs;
    this.trackInput = options.resume === true && grace !== 0;
    // One that says it does (a grace in its upgrade answer) sends RESUMABLE once the exec is
    // open, which may take longer than TICKET_WAIT_MS (a busy engine, a cluster): waited for.
    this.brokerSaidItResumes = grace !== undefined && grace > 0;
    this.done = new Promise((resolve) => (this.resolveDone = resolve));
    this.attach(ws);
  }

  /** Connects and sends START. Rejects with ClientError when the broker cannot be reached. */
  static async open(options: ConnectOptions): Promise<ExecConnection> {
    options.signal?.throwIfAborted();
    const ws = await openSocket(options, {}, options.connectTimeoutMs ?? 15_000);
    if (options.signal?.aborted) {
      ws.terminate();
      throw options.signal.reason;
    }
    const conn = new ExecConnection(ws, options);
    ws.send(encodeRequest(RequestType.START, encodeExecSpec({ ...(options.spec ?? {}), ...(options.resume ? { resumable: true } : {}) })));
    return conn;
  }

  /** Input written and not yet handed to the socket, plus what the socket has not sent yet. */
  get queuedInput(): number {
    return this.input.waitingBytes + this.ws.bufferedAmount;
  }

  /** Sends stdin bytes; false means wait for `drain` before writing more. */
  write(data: Uint8Array): boolean {
    if (this.ended) return true;
    if (this.trackInput) {
      // A copy: the caller may reuse its buffer, and this one is kept until acknowledged.
      this.input.push(Buffer.from(data));
      // A broker that resumes sends RESUMABLE first thing; one that has not said so in its
      // upgrade answer and says nothing for this long (an older broker) does not.
      if (!this.ticket && !this.ticketTimer && !this.brokerSaidItResumes) {
        this.ticketTimer = setTimeout(() => this.stopTracking(), TICKET_WAIT_MS);
        this.ticketTimer.unref();
      }
      this.sendWaiting();
    } else if (this.connected) {
      this.sendInput(data);
    }
    if (this.ws.bufferedAmount >= INPUT_HIGH_WATER_BYTES || this.input.waitingBytes > 0) this.inputPaused = true;
    return !this.inputPaused;
  }

  /** Sends what waits, as far as the window allows; then the EOF asked for, after it. */
  private sendWaiting(): void {
    if (!this.connected) return;
    for (const piece of this.input.take()) this.sendInput(piece);
    if (this.input.waitingBytes === 0) this.deliverEof();
  }

  /** The EOF asked for, once, after everything written before it. */
  private deliverEof(): void {
    if (!this.eofSent || this.eofDelivered) return;
    this.eofDelivered = true;
    this.ws.send(encodeRequest(RequestType.STDIN_EOF));
  }

  endInput(): void {
    this.eofSent = true;
    if (this.trackInput) this.sendWaiting();
    else if (this.connected) this.ws.send(encodeRequest(RequestType.STDIN_EOF));
  }

  resize(cols: number, rows: number): void {
    // Not a size (a stream that is no terminal reports none): nothing to send.
    if (!(cols > 0 && rows > 0)) return;
    this.lastSize = [cols, rows];
    if (this.connected) this.ws.send(encodeRequest(RequestType.WINCH, encodeWinch(cols, rows)));
  }

  signal(name: string): void {
    if (this.connected) this.ws.send(encodeRequest(RequestType.SIGNAL, utf8(name)));
    // `timeout`, systemd and CI runners send TERM once: it must not vanish in a reconnect.
    else if (this.canResume && !this.ended) this.signalsWaiting.push(name);
  }

  /** Stops reading output (the consumer is slow); the broker then pauses the process's output. */
  pause(): void {
    this.readingPaused = true;
    this.ws.pause();
  }

  resume(): void {
    this.readingPaused = false;
    // Nothing could be heard while paused.
    this.watchdog.heard();
    this.ws.resume();
  }

  /** Ends the session: the broker ends the remote processes. */
  close(): void {
    this.closedByUs = true;
    // A paused reader would never read the broker's answer to the close (ws waits 30 s for it,
    // and the broker holds the process as long): read on, dropping the output (see onMessage).
    if (this.readingPaused) this.resume();
    if (this.lostAt > 0) {
      this.finish({ exitCode: this.exitCode, code: 'ENTRY_CLOSED', message: 'closed by this client while reconnecting', closeCode: 1000 });
      // A reconnect may be under way on a socket that already sent RESUME: closing it in order
      // ends the session on the broker, as any close of ours does.
      if (this.ws.readyState === WebSocket.OPEN || this.ws.readyState === WebSocket.CONNECTING) this.ws.close(1000);
    } else this.ws.close(1000);
  }

  private stopTracking(): void {
    clearTimeout(this.ticketTimer);
    this.trackInput = false;
    // No resume: what waits goes as it would have without it.
    const waiting = this.input.forget();
    if (this.connected) {
      for (const chunk of waiting) this.sendInput(chunk);
      this.deliverEof();
    }
    this.checkDrain();
  }

  private get connected(): boolean {
    return this.lostAt === 0 && this.ws.readyState === WebSocket.OPEN;
  }

  private sendInput(data: Uint8Array): void {
    for (let pos = 0; pos < data.length; pos += MAX_CHUNK_BYTES) {
      this.ws.send(this.framer.frame(RequestType.PLAIN, data.subarray(pos, pos + MAX_CHUNK_BYTES)), this.onSent);
    }
  }

  private checkDrain(): void {
    const windowOpen = this.input.waitingBytes === 0 && (!this.trackInput || this.input.unackedBytes < INPUT_LOW_WATER_BYTES);
    if (this.inputPaused && this.connected && this.ws.bufferedAmount < INPUT_LOW_WATER_BYTES && windowOpen) {
      this.inputPaused = false;
      this.emit('drain');
    }
  }

  private attach(ws: WebSocket): void {
    this.ws = ws;
    const early = earlyEvents.get(ws);
    earlyEvents.delete(ws);
    early?.stop();
    if (early?.pingIntervalMs) this.pingIntervalMs = early.pingIntervalMs;
    ws.on('message', (data: Buffer) => {
      // Nothing is told after the end (a resume that completes after close(), say).
      if (this.ws !== ws || this.ended) return;
      this.watchdog.heard();
      this.onMessage(data);
      this.watchWithoutTicket();
    });
    ws.on('ping', this.heard);
    ws.on('pong', this.heard);
    ws.on('close', (closeCode) => {
      if (this.ws === ws) this.onClose(closeCode);
    });
    if (this.readingPaused) ws.pause();
    for (const data of early?.messages ?? []) if (this.ws === ws) this.onMessage(data);
    if (early?.closeCode !== undefined && this.ws === ws) this.onClose(early.closeCode);
    // Watched from the upgrade on, not from the first message: a link that dies while the
    // broker finds the container or starts the exec would otherwise be waited on for ever.
    if (this.ws === ws && !this.resuming) this.watchWithoutTicket();
  }

  private onClose(closeCode: number): void {
    this.outputAcks.cancel();
    if (this.protocolError) {
      this.finish({ exitCode: undefined, ...this.protocolError, closeCode });
      return;
    }
    // A resume refused for the moment (the broker's key server or store did not answer): as for a
    // broker not reachable yet, the next try follows, within the grace period.
    if (this.resuming && this.gotClose && PASSING_REFUSALS.has(this.closeErrorCode) && !this.closedByUs && !this.ended) {
      this.passedRefusal = refusalText(this.closeMessage);
      this.gotClose = false;
      this.closeErrorCode = '';
      this.closeMessage = '';
      this.resuming = false;
      void this.reconnect();
      return;
    }
    // No CLOSE from the broker and no close of ours: the connection broke, the session goes on.
    // Once EXIT has come, all the output came before it: only the CLOSE is missing, and the
    // exit status is known, so there is nothing to resume for.
    if (this.canResume && this.options.resume && !this.gotClose && !this.closedByUs && !this.ended && this.exitCode === undefined) {
      void this.reconnect();
      return;
    }
    if (this.silentForMs > 0 && !this.gotClose) {
      // Ended here, not by a reset: say what was seen.
      this.finish({ exitCode: this.exitCode, code: 'ENTRY_CONNECTION_LOST', message: `nothing heard from the broker for ${Math.round(this.silentForMs / 1000)} s: the connection is taken for lost`, closeCode });
      return;
    }
    // Closed here before the broker said how the session ended: a close, not a lost connection.
    if (this.closedByUs && !this.gotClose) {
      this.finish({ exitCode: this.exitCode, code: 'ENTRY_CLOSED', message: 'closed by this client', closeCode });
      return;
    }
    // Cut by the broker's WebSocket layer for a message past its size limit, before the broker
    // could say so: the START (command and environment) is the only one this client sends that large.
    if (closeCode === 1009 && !this.gotClose) {
      this.finish({ exitCode: this.exitCode, code: 'ENTRY_FRAME_TOO_LARGE', message: "message too large: more than the broker takes (4 × its --max-frame, 4 MiB by default): the command and its environment, most likely", closeCode });
      return;
    }
    this.finish({ exitCode: this.exitCode, code: this.closeErrorCode, message: this.closeMessage, closeCode });
  }

  private finish(end: SessionEnd): void {
    if (this.ended) return;
    this.ended = true;
    this.watchdog.stop();
    clearTimeout(this.tryTimer);
    clearTimeout(this.ticketTimer);
    this.emit('end', end);
    this.resolveDone(end);
  }

  private async reconnect(): Promise<void> {
    const ticket = this.ticket!;
    if (this.lostAt === 0) {
      this.lostAt = Date.now();
      this.resumeDeadline = this.lostAt + ticket.graceMs;
    }
    while (!this.ended && !this.closedByUs) {
      // A connection that opened and broke again before the session came back waits too.
      if (this.reconnectAttempts > 0) {
        await new Promise((r) => setTimeout(r, Math.min(this.retryWait, Math.max(0, this.resumeDeadline - Date.now()))));
        this.retryWait = Math.min(this.retryWait * 2, RETRY_MAX_MS);
      }
      const left = this.resumeDeadline - Date.now();
      if (left <= 0 || this.ended || this.closedByUs) break;
      this.emit('reconnecting', { attempt: ++this.reconnectAttempts, deadline: this.resumeDeadline } satisfies ReconnectStatus);
      try {
        const ws = await openSocket(this.options, { 'entry-resume': ticket.session }, Math.min(left, this.options.connectTimeoutMs ?? 15_000));
        if (this.closedByUs) {
          // Closed by us meanwhile: take the session back only to end it, in order.
          ws.send(encodeRequest(RequestType.RESUME, encodeResumeRequest({ token: ticket.token, outputOffset: this.outputAcks.count })));
          ws.close(1000);
          return;
        }
        if (this.ended) {
          ws.terminate();
          return;
        }
        this.resuming = true;
        this.attach(ws);
        ws.send(encodeRequest(RequestType.RESUME, encodeResumeRequest({ token: ticket.token, outputOffset: this.outputAcks.count })));
        this.boundResumeTry(ws);
        // RESUMABLE (resumed), a CLOSE (refused), or a close with neither (another try) follows.
        this.retryWait = Math.min(this.retryWait * 2, RETRY_MAX_MS);
        return;
      } catch (err) {
        // Refused by the broker for good before the upgrade: ended with its words, as by its CLOSE.
        const refusal = lastingRefusal(err);
        if (refusal) {
          this.finish({ exitCode: this.exitCode, code: refusal.code, message: refusal.message, closeCode: 1006 });
          return;
        }
        // Not reachable yet, or refused for the moment: wait and try again. An HTTP refusal
        // (a proxy's, say) is said if the grace period ends.
        if (err instanceof ClientError && err.httpStatus !== undefined) this.passedRefusal = refusalText(err.message);
      }
    }
    this.finish({ exitCode: this.exitCode, code: 'ENTRY_RESUME_EXPIRED', message: resumeExpiredMessage(this.passedRefusal), closeCode: 1006 });
  }

  /**
   * A resume try's socket that opened and is not answered within RESUME_TRY_MS (or what is
   * left of the grace period) is dropped: the next try follows, or the grace period ends.
   */
  private boundResumeTry(ws: WebSocket): void {
    clearTimeout(this.tryTimer);
    this.tryTimer = setTimeout(
      () => {
        if (this.resuming && this.ws === ws && !this.ended) ws.terminate();
      },
      Math.max(0, Math.min(RESUME_TRY_MS, this.resumeDeadline - Date.now())),
    );
    this.tryTimer.unref();
  }

  /** The broker took us back: send what it has not passed on, and carry on. */
  private resumed(ticket: ResumeTicket): void {
    clearTimeout(this.tryTimer);
    this.resuming = false;
    const awayMs = Date.now() - this.lostAt;
    this.lostAt = 0;
    this.passedRefusal = '';
    this.watchdog.heard();
    this.retryWait = RETRY_FIRST_MS;
    this.reconnectAttempts = 0;
    this.resumeDeadline = 0;
    // Trimmed without sending what waits: that goes after what is sent again.
    this.acknowledgeInput(ticket.inputOffset, false);
    for (const chunk of this.input.unacknowledged) this.sendInput(chunk);
    // The EOF may not have arrived either: sent again after what waits (the broker passes it once).
    this.eofDelivered = false;
    this.sendWaiting();
    if (this.lastSize) this.ws.send(encodeRequest(RequestType.WINCH, encodeWinch(this.lastSize[0], this.lastSize[1])));
    for (const name of this.signalsWaiting.splice(0)) this.ws.send(encodeRequest(RequestType.SIGNAL, utf8(name)));
    this.outputAcks.acknowledged(ticket.outputOffset);
    this.emit('resumed', { awayMs });
    this.checkDrain();
  }

  /**
   * A session with no resume ticket (`--no-resume`, or a broker that does not resume) is watched
   * for silence too, by the interval the broker's upgrade answer gave, from the first message on:
   * the broker pings from the moment the session runs, not while it is still being opened.
   * Otherwise a link that went silent would hold it until killed. An older broker does not say
   * its interval, and such a session is not watched.
   */
  private watchWithoutTicket(): void {
    if (this.watchdog.running || this.canResume || this.pingIntervalMs <= 0 || this.ended) return;
    this.watchdog.start(this.pingIntervalMs);
  }

  private acknowledgeInput(count: number, sendMore = true): void {
    if (!this.trackInput || !this.input.acknowledge(count) || !sendMore) return;
    this.sendWaiting();
    this.checkDrain();
  }

  private received(bytes: number): void {
    if (!this.ticket) {
      // Output before RESUMABLE: this broker does not resume the session.
      if (this.trackInput) this.stopTracking();
      return;
    }
    this.outputAcks.received(bytes);
  }

  /** Ends the session as a failure of Entry's own (ENTRY_BAD_FRAME): the broker broke the protocol. */
  private failProtocol(message: string): void {
    this.protocolError = { code: 'ENTRY_BAD_FRAME', message };
    this.closedByUs = true;
    this.ws.close(BAD_FRAME_CLOSE_CODE);
  }

  private onMessage(data: Buffer): void {
    if (this.protocolError) return;
    let m;
    try {
      m = decodeResponse(data);
    } catch {
      // Output that cannot be read is output lost: say so rather than carry on without it.
      this.failProtocol('the broker sent a malformed message');
      return;
    }
    switch (m.msgType) {
      case ResponseType.STDOUT:
        this.received(m.content.length);
        // Closed by us: nobody is reading any more (see close).
        if (this.closedByUs) return;
        this.emit('stdout', Buffer.from(m.content.buffer, m.content.byteOffset, m.content.byteLength));
        return;
      case ResponseType.STDERR:
        this.received(m.content.length);
        if (this.closedByUs) return;
        this.emit('stderr', Buffer.from(m.content.buffer, m.content.byteOffset, m.content.byteLength));
        return;
      case ResponseType.EXIT: {
        const text = Buffer.from(m.content).toString('latin1');
        const status = parseExitStatus(text);
        if (status !== undefined) {
          this.exitCode = status;
          return;
        }
        // A status made up would be worse than none: end the session as a failure of Entry's.
        this.failProtocol(`the broker sent a malformed exit status: ${JSON.stringify(text)}`);
        return;
      }
      case ResponseType.CLOSE:
        this.gotClose = true;
        this.closeMessage = stripAnsi(Buffer.from(m.content).toString('utf8'));
        this.closeErrorCode = m.code;
        return;
      case ResponseType.RESUMABLE: {
        if (!this.options.resume) return;
        let ticket: ResumeTicket;
        try {
          ticket = decodeResumeTicket(m.content);
        } catch {
          // Unread, the broker would keep output for acknowledgements that never come.
          this.failProtocol('the broker sent a malformed resume ticket');
          return;
        }
        const first = !this.ticket;
        // Output is acknowledged in any case (the broker waits for it); a resume needs the input
        // kept from the start.
        this.ticket = { ...ticket, token: Buffer.from(ticket.token) };
        if (!first) {
          this.resumed(ticket);
          return;
        }
        clearTimeout(this.ticketTimer);
        this.canResume = this.trackInput;
        if (this.canResume) this.watchdog.start(ticket.pingIntervalMs ?? 0);
        this.checkDrain();
        return;
      }
      case ResponseType.INPUT_ACK: {
        const count = parseCount(m.content);
        if (count !== undefined) this.acknowledgeInput(count);
        return;
      }
      default:
        return;
    }
  }
}

interface EarlyEvents {
  messages: Buffer[];
  closeCode: number | undefined;
  /** The broker's ping interval from its upgrade answer; 0 when it did not say. */
  pingIntervalMs: number;
  /** The broker's resume grace from its upgrade answer; undefined when it did not say. */
  resumeGraceMs: number | undefined;
  stop(): void;
}
const earlyEvents = new WeakMap<WebSocket, EarlyEvents>();

/** Pongs that may wait to be written (see openSocket), a few bytes each: an hour of pause at a 100 ms ping interval. */
const MAX_PENDING_PONGS = 36_000;

/** Largest message accepted from the broker: far above its output frames, a bound on a broken one. */
export const MAX_MESSAGE_BYTES = 64 * 1024 * 1024;

/** Opens the WebSocket to /enter; rejects with ClientError when the broker cannot be reached. */
/** The secure context for a session's socket: PEMs that cannot be used are a ClientError, said so. */
function tlsOptionsOf(options: ConnectOptions): ReturnType<typeof tlsConnectOptions> {
  try {
    return tlsConnectOptions(options.tls ?? clientTlsFromEnv());
  } catch (err) {
    if (err instanceof ClientError) throw err;
    throw new ClientError('ENTRY_BAD_REQUEST', `the TLS certificate or key cannot be used: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  }
}

/** A broker's socket that failed before it opened, as the ClientError that says why. */
export function unreachable(broker: string, err: Error & { code?: string }): ClientError {
  const why = err.code === 'ECONNRESET' && /^wss:|^https:/.test(broker) ? 'ECONNRESET (the broker may want a client certificate: --cert and --key, or cert and key)' : (certificateFailure(err.code) ?? err.code ?? err.message);
  return new ClientError('ENTRY_CONNECT_FAILED', `cannot reach broker ${broker}: ${why}`);
}

/** What an HTTP header value may hold, as Node checks it: tab, visible ASCII and space, and Latin-1's upper half. */
const HEADER_VALUE = /^[\t\x20-\x7e\x80-\xff]*$/;

const HEADER_NAMES: Record<string, string> = { 'access-token': 'the access token', 'app-name': 'the app name', 'proc-name': 'the proc name', 'instance-no': 'the instance', 'term-type': 'TERM' };

function openSocket(options: ConnectOptions, extra: Record<string, string>, timeoutMs: number): Promise<WebSocket> {
  const { target } = options;
  // `maxPendingAutoPongs` (ws 8.18+) is not in @types/ws yet.
  const socketOptions: WebSocket.ClientOptions & { maxPendingAutoPongs: number } = {
    headers: {
      'access-token': options.token,
      'app-name': target.app,
      'proc-name': target.proc,
      'instance-no': String(target.instance),
      'entry-protocol': '2',
      ...(options.spec?.term ? { 'term-type': options.spec.term } : {}),
      ...extra,
    },
    perMessageDeflate: false,
    ...tlsOptionsOf(options),
    handshakeTimeout: timeoutMs,
    maxPayload: MAX_MESSAGE_BYTES,
    // ws ends a connection when more than 60 pongs wait to be written (its default). A reader
    // paused for a while reads every ping of the pause at once: 60 is 10 minutes of pause at a
    // 10 s --ping-interval, 30 s at 500 ms. A bound stays, for a broker gone wrong.
    maxPendingAutoPongs: MAX_PENDING_PONGS,
  };
  // Said by name here: ws would refuse them as an address that is no URL.
  for (const [name, value] of Object.entries(socketOptions.headers ?? {})) {
    if (!HEADER_VALUE.test(String(value))) {
      const what = HEADER_NAMES[name] ?? `the ${name} header`;
      const shown = name === 'access-token' ? '' : ` ${JSON.stringify(value)}`;
      return Promise.reject(new ClientError('ENTRY_BAD_REQUEST', `${what}${shown} has a character an HTTP header cannot carry (a line break, a control character, or one past U+00FF)`));
    }
  }
  let ws: WebSocket;
  try {
    ws = new WebSocket(enterUrl(options.broker), socketOptions);
  } catch (err) {
    // An address that is no URL, a scheme that is not http(s) or ws(s).
    return Promise.reject(new ClientError('ENTRY_BAD_REQUEST', `not a broker address: ${JSON.stringify(options.broker)} (${(err as Error).message})`));
  }
  let onAbort = () => {};
  const opened = new Promise<WebSocket>((resolve, reject) => {
    onAbort = () => {
      ws.removeAllListeners('error');
      ws.on('error', () => undefined);
      reject(options.signal!.reason);
      ws.terminate();
    };
    options.signal?.addEventListener('abort', onAbort, { once: true });
    const onError = (err: Error & { code?: string }) => reject(unreachable(options.broker, err));
    ws.once('error', onError);
    ws.once('unexpected-response', (_req, res) => {
      ws.off('error', onError);
      // Aborting the handshake makes ws emit one more error: nobody needs it, but it must be heard.
      ws.on('error', () => undefined);
      // The broker's refusal says why in its body; the socket goes once that is read.
      void refusalOf(res).then((err) => {
        reject(err);
        ws.terminate();
      });
    });
    let pingIntervalMs = 0;
    let resumeGraceMs: number | undefined;
    ws.once('upgrade', (res) => {
      const said = Number(res.headers[PING_INTERVAL_HEADER.toLowerCase()]);
      if (Number.isSafeInteger(said) && said > 0) pingIntervalMs = said;
      const grace = res.headers[RESUME_GRACE_HEADER.toLowerCase()];
      if (typeof grace === 'string' && /^\d{1,12}$/.test(grace)) resumeGraceMs = Number(grace);
    });
    ws.once('open', () => {
      ws.off('error', onError);
      ws.on('error', () => undefined);
      // What arrives before the caller listens (a refusal's CLOSE comes at once) is kept for it.
      const early: EarlyEvents = { messages: [], closeCode: undefined, pingIntervalMs, resumeGraceMs, stop: () => undefined };
      const onMessage = (data: Buffer) => early.messages.push(data);
      const onClose = (code: number) => (early.closeCode = code);
      ws.on('message', onMessage);
      ws.on('close', onClose);
      early.stop = () => {
        ws.off('message', onMessage);
        ws.off('close', onClose);
      };
      earlyEvents.set(ws, early);
      resolve(ws);
    });
  });
  return opened.finally(() => options.signal?.removeEventListener('abort', onAbort));
}
