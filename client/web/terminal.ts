import { FitAddon } from '@xterm/addon-fit';
import { Unicode11Addon } from '@xterm/addon-unicode11';
import type { ITerminalOptions, Terminal } from '@xterm/xterm';
import {
  decodeResponse,
  decodeResumeTicket,
  encodeCount,
  encodeExecSpec,
  encodeRequest,
  encodeResumeRequest,
  encodeWinch,
  parseCount,
  parseExitStatus,
  RequestType,
  ResponseType,
  type ResumeTicket,
} from '../../proto/codec.js';
import { AckBatcher } from '../../proto/ack-batcher.js';
import { BAD_FRAME_CLOSE_CODE, RESUMING_CLOSE_CODE } from '../../proto/close-codes.js';
import { InputWindow } from '../../proto/input-window.js';
import { RESUME_TRY_MS } from '../../proto/silence.js';
import { SilenceWatchdog } from '../../proto/silence-watchdog.js';
import { PASSING_REFUSALS, refusalText, resumeExpiredMessage } from '../../proto/passing-refusals.js';
import { base64url, brokerBase, enterSocketUrl, type Target, watchSocketUrl } from './broker-url.js';
import { bindClipboard, PasteCheckedTerminal } from './clipboard.js';
import { injectStyles } from './styles.js';

/** A bearer token (sent in the WebSocket subprotocol list) or a source of one-time tickets. */
/**
 * Leaves what a program may have left on: the alternate screen (1047, not 1049, which also
 * restores a saved cursor: home when none was saved, over the old output), colours, a hidden
 * cursor, application cursor keys and keypad, mouse reporting, bracketed paste.
 */
const LEAVE_MODES = '\x1b[?1047l\x1b[0m\x1b[?25h\x1b[?1l\x1b>\x1b[?1000l\x1b[?1002l\x1b[?1003l\x1b[?1006l\x1b[?2004l';

export type TerminalAuth = { token: string } | { ticketProvider: (target: Target) => Promise<string> };

/** `reconnecting`: the connection broke and the session is being resumed (an overlay says so). */
export type TerminalState = 'connecting' | 'open' | 'reconnecting' | 'closed';

/** How a session ended. */
export interface TerminalCloseInfo {
  /** The broker's error code (`ENTRY_…`); "" when the process ended normally. */
  code: string;
  /** The process's exit code, when it exited. */
  exitCode: number | undefined;
  /** The reason as plain text. */
  message: string;
  /** The WebSocket close code. */
  closeCode: number;
}

export interface TerminalOptions {
  /** The broker's address (http(s)://host[:port][/prefix]); default: this page's origin. */
  broker?: string;
  target: Target;
  auth: TerminalAuth;
  onClose?(info: TerminalCloseInfo): void;
  onStateChange?(state: TerminalState): void;
  /** Passed to xterm.js as they are (font, theme, scrollback…). */
  terminalOptions?: ITerminalOptions;
  /** Resume the session when the connection breaks (default true), showing a reconnecting overlay. */
  resume?: boolean;
}

/** An admin's read-only view of a running session (`/watch?session=ID`). */
export interface WatchOptions {
  /** The broker's address; default: this page's origin. */
  broker?: string;
  /** The session's id, as `GET /api/sessions` lists it. */
  session: string;
  /** An admin's bearer token (watching takes no tickets). */
  token: string;
  onClose?(info: TerminalCloseInfo): void;
  onStateChange?(state: TerminalState): void;
  terminalOptions?: ITerminalOptions;
}

export interface TerminalHandle {
  /** Ends the current session if any and starts a new one. */
  reconnect(): void;
  /** Ends the session; the terminal stays, showing how it ended. */
  close(): void;
  focus(): void;
  /** Ends the session and removes the terminal from the element. */
  dispose(): void;
  readonly state: TerminalState;
  /** The xterm.js terminal, for pages that want to go further. */
  readonly terminal: Terminal;
}

const TERM = 'xterm-256color';
/** Large pastes go out in frames of this size, far below the broker's max frame. */
const MAX_INPUT_FRAME = 64 * 1024;
const HINT = '\x1b[2m[press Enter to reconnect]\x1b[0m';
/** Said for a paste into an ended terminal, which is sent nowhere (see `pastedWhileClosed`). */
const PASTE_NOT_SENT = '\r\n\x1b[2m[paste not sent: the session has ended; press Enter to reconnect]\x1b[0m';
const PASTE_NOT_SENT_RECONNECTING = '\r\n\x1b[2m[paste not sent: the session had ended; reconnecting, paste again at the new prompt]\x1b[0m';
const PASTE_NOT_SENT_OPENING = '\r\n\x1b[2m[paste not sent: the new session is still opening; paste again at its prompt]\x1b[0m';
/** Resume: output acknowledged every so often; waits between tries; input kept at most. */
const OUTPUT_ACK_BYTES = 64 * 1024;
const OUTPUT_ACK_MS = 1_000;
const RETRY_FIRST_MS = 100;
const RETRY_MAX_MS = 1_000;
/** Input sent and not yet passed on by the broker, at most; more waits here (a large paste). */
const INPUT_WINDOW = 1024 * 1024;
/**
 * Output xterm may hold given and not yet drawn before acknowledgements wait for its drawing:
 * far under the 50 MB past which xterm discards writes, far over what a visible terminal ever
 * falls behind by.
 */
const XTERM_UNDRAWN_MAX = 8 * 1024 * 1024;

/**
 * Whether a ticket provider's failure may pass: no answer (offline, the API unreachable), a
 * server error, or a refusal for the moment. An error without a status or code (a provider of
 * the embedding page's own that just threw) is taken as passing too.
 */
function passingTicketFailure(err: unknown): boolean {
  const { status, code } = err as { status?: unknown; code?: unknown };
  if (typeof code === 'string' && PASSING_REFUSALS.has(code)) return true;
  if (typeof status === 'number') return status === 0 || status >= 500;
  return typeof code !== 'string' || code === 'ENTRY_UNREACHABLE';
}

const THEME: ITerminalOptions['theme'] = {
  background: '#101418',
  foreground: '#d8dee4',
  cursor: '#f0f3f6',
  selectionBackground: '#3a5a80',
};

const encoder = new TextEncoder();
const decoder = new TextDecoder();

function stripAnsi(text: string): string {
  // eslint-disable-next-line no-control-regex
  return text.replace(/\x1b\[[0-9;?]*[A-Za-z]/g, '').trim();
}

/**
 * Opens an interactive shell of `target` in `element`: an xterm.js terminal speaking protocol 2
 * to the broker over a WebSocket. The element should have a size; the terminal fills it and
 * follows its size.
 */
export function openTerminal(element: HTMLElement, options: TerminalOptions): TerminalHandle {
  const { target, auth, ...common } = options;
  return new TerminalSession(element, { ...common, source: { kind: 'enter', target, auth } });
}

/**
 * Shows a running session's output, live and read-only: nothing typed is sent (the broker
 * would ignore it anyway), no size is sent, and the session's end shows as its CLOSE line.
 */
export function openWatch(element: HTMLElement, options: WatchOptions): TerminalHandle {
  const { session, token, terminalOptions, ...common } = options;
  return new TerminalSession(element, {
    ...common,
    terminalOptions: { disableStdin: true, cursorBlink: false, ...terminalOptions },
    source: { kind: 'watch', session, token },
  });
}

/** Where a terminal's bytes come from: an interactive shell, or someone else's session. */
type Source = { kind: 'enter'; target: Target; auth: TerminalAuth } | { kind: 'watch'; session: string; token: string };

interface SessionOptions {
  broker?: string;
  source: Source;
  resume?: boolean;
  onClose?(info: TerminalCloseInfo): void;
  onStateChange?(state: TerminalState): void;
  terminalOptions?: ITerminalOptions;
}

class TerminalSession implements TerminalHandle {
  readonly terminal: PasteCheckedTerminal;
  private readonly fit = new FitAddon();
  private readonly screen: HTMLDivElement;
  private readonly resizeObserver: ResizeObserver;
  private readonly cleanups: Array<() => void> = [];
  private ws: WebSocket | undefined;
  private currentState: TerminalState = 'closed';
  private opened = false;
  /** focus() before xterm is open (no size yet) takes effect when it opens. */
  private focusOnOpen = false;
  private disposed = false;
  /** Input typed or pasted while connecting: sent after START. */
  private pending: Uint8Array[] = [];
  /** The session connecting was opened by a paste into the ended one (see pastedWhileClosed). */
  private openedByPaste = false;
  private fitFrame = 0;
  /** Bumped whenever a connection attempt is abandoned, so that late answers are ignored. */
  private generation = 0;

  /** Watching: input and size stay local, and there is no reconnect on Enter. */
  private readonly readOnly: boolean;
  /**
   * Resume state (see proto/message.proto): the broker's ticket, output received and
   * acknowledged, input sent and not yet acknowledged (sent again after a resume), and while
   * the connection is broken, since when and until when the broker keeps the session.
   */
  private ticket: ResumeTicket | undefined;
  private trackInput = false;
  private readonly outputAcks = new AckBatcher(
    (count) => {
      const ws = this.ws;
      if (!ws || ws.readyState !== WebSocket.OPEN) return false;
      sendFrame(ws, encodeRequest(RequestType.OUTPUT_ACK, encodeCount(count)));
      return true;
    },
    OUTPUT_ACK_BYTES,
    OUTPUT_ACK_MS,
  );
  /**
   * Output bytes handed to xterm (where a resume asks the broker to go on from) and drawn by it
   * (`outputAcks.count` is what may be acknowledged); and which session they count for (see
   * `received`).
   */
  private outputArrived = 0;
  private outputDrawn = 0;
  private outputEpoch = 0;
  private readonly inputWindow = new InputWindow(INPUT_WINDOW);
  private lostAt = 0;
  /** The last refusal passed over while resuming (its CLOSE line): said if the grace period ends. */
  private passedRefusal = '';
  private deadline = 0;
  private retryWait = RETRY_FIRST_MS;
  private retryTimer: ReturnType<typeof setTimeout> | undefined;
  /** The resume try under way gives up when this fires (see RESUME_TRY_MS). */
  private tryTimer: ReturnType<typeof setTimeout> | undefined;
  private overlay: HTMLDivElement | undefined;
  private overlayTimer: ReturnType<typeof setInterval> | undefined;
  private readonly watchdog = new SilenceWatchdog({
    active: () => this.ws !== undefined && this.lostAt === 0 && this.ws.readyState === WebSocket.OPEN,
    // The broker keeps the session, as if the socket had simply died.
    silent: () => {
      this.detachSocket(RESUMING_CLOSE_CODE);
      this.startResuming();
    },
  });
  private readonly onOnline = (): void => {
    // Back online: try at once rather than at the end of the current wait.
    if (this.lostAt > 0 && !this.ws) {
      clearTimeout(this.retryTimer);
      this.retryWait = RETRY_FIRST_MS;
      void this.connect(true);
    }
  };

  constructor(
    element: HTMLElement,
    private readonly options: SessionOptions,
  ) {
    this.readOnly = options.source.kind === 'watch';
    injectStyles(element.ownerDocument);
    this.screen = element.ownerDocument.createElement('div');
    this.screen.className = 'entry-terminal-screen';
    element.append(this.screen);
    this.terminal = new PasteCheckedTerminal(
      {
        fontFamily: 'ui-monospace, "DejaVu Sans Mono", Menlo, Consolas, monospace',
        fontSize: 14,
        scrollback: 5000,
        theme: THEME,
        ...options.terminalOptions,
      },
      (text) => this.pastedWhileClosed(text),
    );
    this.terminal.loadAddon(this.fit);
    useUnicode11(this.terminal);
    this.screen.style.backgroundColor = this.terminal.options.theme?.background ?? '#000';
    this.cleanups.push(
      disposable(this.terminal.onData((data) => this.input(data))),
      disposable(this.terminal.onResize(({ cols, rows }) => this.sendWinch(cols, rows))),
      bindClipboard(this.terminal, this.screen),
    );
    // xterm measures its font when opened: opening inside a hidden element would measure
    // nothing, so it opens when the element first gets a size, and fits on every change.
    this.resizeObserver = new ResizeObserver(() => this.scheduleFit());
    this.resizeObserver.observe(this.screen);
    this.scheduleFit();
    const win = element.ownerDocument.defaultView;
    win?.addEventListener('online', this.onOnline);
    this.cleanups.push(() => win?.removeEventListener('online', this.onOnline));
    void this.connect();
  }

  get state(): TerminalState {
    return this.currentState;
  }

  focus(): void {
    if (this.opened) this.terminal.focus();
    else this.focusOnOpen = true;
  }

  reconnect(): void {
    if (this.disposed) return;
    this.detachSocket(1000);
    this.stopResuming();
    // What the last session showed stays in the scrollback (its last words may be why it
    // ended); the modes it left (the alternate screen, colours, a hidden cursor, application
    // keys, mouse reporting, bracketed paste) do not.
    // (Not a soft reset, DECSTR: xterm.js homes the cursor with it, over the old output.)
    this.terminal.write(`${LEAVE_MODES}\r\n`);
    void this.connect();
  }

  close(): void {
    if (this.disposed || this.currentState === 'closed') return;
    this.detachSocket(1000);
    this.stopResuming();
    const what = this.readOnly ? 'stopped watching' : 'session closed';
    this.finish({ code: '', exitCode: undefined, message: what, closeCode: 1000 }, `\r\n\x1b[2m[${what}]\x1b[0m\r\n`);
  }

  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    this.generation++;
    this.detachSocket(1000);
    this.stopResuming();
    this.watchdog.stop();
    cancelAnimationFrame(this.fitFrame);
    this.resizeObserver.disconnect();
    for (const c of this.cleanups.splice(0)) c();
    this.terminal.dispose();
    this.screen.remove();
  }

  private setState(state: TerminalState): void {
    if (this.currentState === state) return;
    if (state !== 'connecting') this.openedByPaste = false;
    this.currentState = state;
    this.options.onStateChange?.(state);
  }

  private scheduleFit(): void {
    cancelAnimationFrame(this.fitFrame);
    this.fitFrame = requestAnimationFrame(() => this.fitNow());
  }

  private fitNow(): void {
    if (this.disposed || this.screen.clientWidth === 0 || this.screen.clientHeight === 0) return;
    if (!this.opened) {
      this.opened = true;
      this.terminal.open(this.screen);
      if (this.focusOnOpen) this.terminal.focus();
    }
    this.fit.fit();
  }

  /** Opens a connection: a new session, or (`resuming`) the one whose connection broke. */
  private async connect(resuming = false): Promise<void> {
    const generation = ++this.generation;
    const resumeOf = resuming ? this.ticket?.session : undefined;
    if (resumeOf) this.boundTry(generation);
    if (!resumeOf) {
      // Reset before the state is told: a listener may type as the terminal connects.
      this.pending = [];
      this.resetResume();
      this.setState('connecting');
      this.boundConnect(generation);
    }
    const { source } = this.options;
    let broker: string;
    try {
      broker = brokerBase(this.options.broker);
    } catch (err) {
      this.cannotConnect(err, resumeOf);
      return;
    }
    let url: string;
    let protocols: string[];
    if (source.kind === 'watch') {
      url = watchSocketUrl(broker, source.session);
      protocols = ['entry.v1', `entry.bearer.${base64url(source.token)}`];
    } else if ('token' in source.auth) {
      const { target, auth } = source;
      url = enterSocketUrl(broker, target, undefined, resumeOf);
      protocols = ['entry.v1', `entry.bearer.${base64url(auth.token)}`];
    } else {
      const { target, auth } = source;
      let ticket: string;
      try {
        ticket = await auth.ticketProvider(target);
      } catch (err) {
        if (generation !== this.generation || this.disposed) return;
        // Offline, or the API unreachable for a moment: another try, while the session is kept.
        // A lasting refusal (an expired or revoked token) is not: each try would count as a
        // failed login against the address, for everyone behind it.
        if (resumeOf && passingTicketFailure(err)) return this.retryResume();
        if (resumeOf) this.stopResuming();
        const message = `could not get a ticket: ${(err as Error).message}`;
        const code = typeof (err as { code?: unknown }).code === 'string' ? (err as { code: string }).code : 'ENTRY_TICKET_FAILED';
        this.finish({ code, exitCode: undefined, message, closeCode: 0 }, `\r\n\x1b[31mentry: ${message}\x1b[0m\r\n`);
        return;
      }
      url = enterSocketUrl(broker, target, ticket, resumeOf);
      protocols = ['entry.v1'];
    }
    // Closed while the ticket was asked for (a provider may wait for a sign-in): nothing opens.
    if (generation !== this.generation || this.disposed) return;
    let ws: WebSocket;
    try {
      ws = new WebSocket(url, protocols);
    } catch (err) {
      // A ws:// broker from an https:// page (SecurityError), an address the browser refuses.
      this.cannotConnect(err, resumeOf);
      return;
    }
    ws.binaryType = 'arraybuffer';
    this.ws = ws;
    let opened = false;
    let closeMessage: { code: string; text: string } | undefined;
    let exitCode: number | undefined;
    let passing = false;

    ws.onopen = () => {
      opened = true;
      if (this.readOnly) {
        // A watcher sends nothing: the broker starts sending the session's output by itself.
        this.terminal.write('\x1b[2m[entry: watching, read-only: output from now on]\x1b[0m\r\n');
        this.setState('open');
        return;
      }
      this.watchdog.heard();
      if (resumeOf) {
        // The session answers RESUMABLE (then the output missed), or CLOSE with the reason.
        sendFrame(ws, encodeRequest(RequestType.RESUME, encodeResumeRequest({ token: this.ticket!.token, outputOffset: this.outputArrived })));
        return;
      }
      this.fitNow();
      const { cols, rows } = this.terminal;
      const resume = this.options.resume !== false;
      this.trackInput = resume;
      sendFrame(ws, encodeRequest(RequestType.START, encodeExecSpec({ tty: true, cols, rows, term: TERM, resumable: resume })));
      this.setState('open');
      for (const chunk of this.pending.splice(0)) this.sendInput(ws, chunk);
    };
    // A message that cannot be read is output lost: said, and the session ends as Entry's failure.
    const malformed = (what = 'message') => {
      closeMessage = { code: 'ENTRY_BAD_FRAME', text: `malformed ${what} from the broker` };
      this.terminal.write(`\r\n\x1b[31mentry: ${closeMessage.text}\x1b[0m\r\n`);
      ws.close(BAD_FRAME_CLOSE_CODE);
    };
    ws.onmessage = (event: MessageEvent) => {
      if (!(event.data instanceof ArrayBuffer)) return;
      this.watchdog.heard();
      let msg: ReturnType<typeof decodeResponse>;
      try {
        msg = decodeResponse(new Uint8Array(event.data));
      } catch {
        malformed();
        return;
      }
      switch (msg.msgType) {
        case ResponseType.STDOUT:
        case ResponseType.STDERR:
          this.received(msg.content);
          break;
        case ResponseType.RESUMABLE:
          // Unread, the broker would keep output for acknowledgements that never come.
          if (!this.onResumable(ws, msg.content)) malformed();
          break;
        case ResponseType.INPUT_ACK: {
          const count = parseCount(msg.content);
          if (count !== undefined) this.acknowledgeInput(count);
          break;
        }
        case ResponseType.EXIT: {
          const text = decoder.decode(msg.content);
          exitCode = parseExitStatus(text);
          // A status made up would be worse than none: the session ends as a failure of Entry's.
          if (exitCode === undefined) malformed(`exit status ${JSON.stringify(text.slice(0, 40))}`);
          break;
        }
        case ResponseType.CLOSE:
          // A resume refused for the moment (not yet taken back: lostAt is cleared by RESUMABLE):
          // the next try follows (see onclose), nothing to show.
          if (resumeOf && this.lostAt > 0 && PASSING_REFUSALS.has(msg.code)) {
            passing = true;
            this.passedRefusal = refusalText(stripAnsi(decoder.decode(msg.content)));
            break;
          }
          // Already ANSI-coloured by the broker, and framed by CRLFs.
          this.terminal.write(msg.content);
          // The event's message is the reason alone, as a ticket's refusal is: no `entry: ` or CRLFs.
          closeMessage = { code: msg.code, text: refusalText(stripAnsi(decoder.decode(msg.content))) };
          break;
        default:
          // PING keeps proxies awake; nothing to show.
          break;
      }
    };
    ws.onclose = (event: CloseEvent) => {
      if (this.ws !== ws) return;
      this.ws = undefined;
      this.outputAcks.cancel();
      if (passing && this.lostAt > 0) {
        this.retryResume();
        return;
      }
      // Broken, not ended (no CLOSE): the broker keeps the session for its grace period. Once
      // EXIT has come, all the output came before it and the status is known: only the CLOSE is
      // missing, and there is nothing to resume for (as the CLI does).
      if (!closeMessage && exitCode === undefined && this.ticket && (opened || this.lostAt > 0)) {
        this.startResuming();
        return;
      }
      this.stopResuming();
      if (closeMessage) {
        this.finish({ code: closeMessage.code, exitCode, message: closeMessage.text, closeCode: event.code }, '');
        return;
      }
      if (exitCode !== undefined) {
        const message = `exited with code ${exitCode}`;
        this.finish({ code: '', exitCode, message, closeCode: event.code }, `\r\n${message}\r\n`);
        return;
      }
      // Browsers hide why an upgrade failed (refused origin, HTTP error): say what we know.
      const code = /^ENTRY_[A-Z_]+$/.test(event.reason) ? event.reason : opened ? 'ENTRY_CONNECTION_LOST' : 'ENTRY_UNREACHABLE';
      const message = opened ? `connection lost (${event.code}${event.reason ? ` ${event.reason}` : ''})` : 'could not connect to the broker';
      this.finish({ code, exitCode, message, closeCode: event.code }, `\r\n\x1b[31mentry: ${message}\x1b[0m\r\n`);
    };
  }

  /** The browser would not even try to connect: said in the terminal, and the end told. */
  private cannotConnect(err: unknown, resuming: string | undefined): void {
    if (resuming) this.stopResuming();
    const message = `cannot connect to the broker ${JSON.stringify(this.options.broker ?? '')}: ${(err as Error).message}`;
    this.finish({ code: 'ENTRY_UNREACHABLE', exitCode: undefined, message, closeCode: 0 }, `\r\n\x1b[31mentry: ${message}\x1b[0m\r\n`);
  }

  private resetResume(): void {
    this.ticket = undefined;
    this.trackInput = false;
    this.outputAcks.reset();
    this.outputArrived = this.outputDrawn = 0;
    this.outputEpoch++;
    this.inputWindow.forget();
    this.watchdog.stop();
  }

  /** False when the ticket cannot be read. */
  private onResumable(ws: WebSocket, content: Uint8Array): boolean {
    if (this.options.resume === false) return true;
    let ticket: ResumeTicket;
    try {
      ticket = decodeResumeTicket(content);
    } catch {
      return false;
    }
    if (!this.ticket) {
      if (!this.trackInput) return true;
      this.ticket = { ...ticket, token: ticket.token.slice() };
      this.watchdog.start(ticket.pingIntervalMs ?? 0);
      return true;
    }
    // Resumed: the output missed follows; send again the input the broker has not passed on.
    clearTimeout(this.tryTimer);
    this.lostAt = 0;
    this.passedRefusal = '';
    this.retryWait = RETRY_FIRST_MS;
    this.hideOverlay();
    // Trimmed without sending what waits: that goes after what is sent again.
    this.acknowledgeInput(ticket.inputOffset, false);
    this.outputAcks.acknowledged(ticket.outputOffset);
    this.setState('open');
    for (const chunk of this.inputWindow.unacknowledged) sendChunks(ws, chunk);
    this.sendWaiting();
    sendFrame(ws, encodeRequest(RequestType.WINCH, encodeWinch(this.terminal.cols, this.terminal.rows)));
    return true;
  }

  /**
   * Output for the screen. It is acknowledged as it arrives while xterm has drawn all but
   * XTERM_UNDRAWN_MAX of what it was given, and as xterm draws it beyond that: the broker stops
   * reading the command past 1 MiB unacknowledged, which is what keeps a fast command (`cat` of
   * a big log, a hidden tab following a build, whose timers barely run) from piling up in
   * xterm's write buffer, which throws output away past 50 MB.
   */
  private received(data: Uint8Array): void {
    if (!this.ticket) {
      this.terminal.write(data);
      // Output before RESUMABLE: this broker does not resume the session.
      if (this.trackInput) {
        this.trackInput = false;
        // What waits goes as it would have without a window.
        for (const chunk of this.inputWindow.forget()) this.sendInput(this.ws, chunk);
      }
      return;
    }
    const n = data.length;
    const epoch = this.outputEpoch;
    this.outputArrived += n;
    this.terminal.write(data, () => {
      if (epoch !== this.outputEpoch || this.disposed) return;
      this.outputDrawn += n;
      this.acknowledgeOutput();
    });
    this.acknowledgeOutput();
  }

  /** Acknowledges output up to what xterm may hold undrawn (see `received`), in order. */
  private acknowledgeOutput(): void {
    const more = Math.min(this.outputArrived, this.outputDrawn + XTERM_UNDRAWN_MAX) - this.outputAcks.count;
    if (more > 0) this.outputAcks.received(more);
  }

  private acknowledgeInput(count: number, sendMore = true): void {
    if (this.inputWindow.acknowledge(count) && sendMore) this.sendWaiting();
  }

  /** Sends typed bytes, keeping them until the broker acknowledges them when the session resumes. */
  private sendInput(ws: WebSocket | undefined, bytes: Uint8Array): void {
    // A paste is one chunk: in frame-sized pieces, the window below holds it to 1 MiB in flight.
    if (this.trackInput && bytes.length > MAX_INPUT_FRAME) {
      for (let off = 0; off < bytes.length; off += MAX_INPUT_FRAME) this.sendInput(ws, bytes.subarray(off, off + MAX_INPUT_FRAME));
      return;
    }
    if (this.trackInput) {
      this.inputWindow.push(bytes);
      this.sendWaiting();
    } else if (ws && this.lostAt === 0) sendChunks(ws, bytes);
  }

  /**
   * Sends what waits, as far as the window allows, from the start as the CLI does: a paste sent
   * whole before RESUMABLE had the broker hold more than it reads on past, and the session hung.
   * A broker that does not resume shows it by output before RESUMABLE, which lets what waits go.
   */
  private sendWaiting(): void {
    const ws = this.ws;
    if (!ws || this.lostAt > 0) return;
    for (const piece of this.inputWindow.take()) sendChunks(ws, piece);
  }

  private startResuming(): void {
    if (this.lostAt === 0) {
      this.lostAt = Date.now();
      this.deadline = this.lostAt + (this.ticket?.graceMs ?? 0);
    }
    this.setState('reconnecting');
    this.showOverlay();
    this.retryResume();
  }

  private retryResume(): void {
    if (this.disposed || this.lostAt === 0) return;
    const left = this.deadline - Date.now();
    if (left <= 0) {
      this.stopResuming();
      const message = resumeExpiredMessage(this.passedRefusal);
      this.finish({ code: 'ENTRY_RESUME_EXPIRED', exitCode: undefined, message, closeCode: 1006 }, `\r\n\x1b[31mentry: ${message}\x1b[0m\r\n`);
      return;
    }
    const wait = Math.min(this.retryWait, left);
    this.retryWait = Math.min(this.retryWait * 2, RETRY_MAX_MS);
    clearTimeout(this.retryTimer);
    this.retryTimer = setTimeout(() => {
      // Offline: the 'online' event tries at once; until then a try would only fail.
      if (typeof navigator !== 'undefined' && navigator.onLine === false) return this.retryResume();
      void this.connect(true);
    }, wait);
  }

  /**
   * Gives up the resume try of `generation` if it has not resumed within RESUME_TRY_MS (or the
   * grace left): its socket is dropped and the next try follows, until the grace period ends.
   */
  private boundTry(generation: number): void {
    clearTimeout(this.tryTimer);
    this.tryTimer = setTimeout(() => {
      if (this.disposed || this.lostAt === 0 || generation !== this.generation) return;
      this.detachSocket(RESUMING_CLOSE_CODE);
      this.retryResume();
    }, Math.max(0, Math.min(RESUME_TRY_MS, this.deadline - Date.now())));
  }

  /**
   * A new session's connection, from its ticket to the socket open, at most RESUME_TRY_MS: a
   * broker that never answers (a network dropping packets) is said to be so rather than waited
   * on for as long as the browser likes.
   */
  private boundConnect(generation: number): void {
    clearTimeout(this.tryTimer);
    this.tryTimer = setTimeout(() => {
      if (this.disposed || generation !== this.generation || this.currentState !== 'connecting') return;
      this.detachSocket(1000);
      const message = `no answer from the broker within ${RESUME_TRY_MS / 1000} s`;
      this.finish({ code: 'ENTRY_UNREACHABLE', exitCode: undefined, message, closeCode: 0 }, `\r\n\x1b[31mentry: ${message}\x1b[0m\r\n`);
    }, RESUME_TRY_MS);
  }

  private stopResuming(): void {
    this.lostAt = 0;
    clearTimeout(this.tryTimer);
    clearTimeout(this.retryTimer);
    this.hideOverlay();
  }

  private showOverlay(): void {
    if (!this.overlay) {
      const doc = this.screen.ownerDocument;
      this.overlay = doc.createElement('div');
      this.overlay.className = 'entry-terminal-overlay';
      // Said once by a screen reader; the countdown beside it is for the eyes only.
      const said = doc.createElement('span');
      said.setAttribute('role', 'status');
      const countdown = doc.createElement('span');
      countdown.setAttribute('aria-hidden', 'true');
      this.overlay.append(said, countdown);
      this.screen.append(this.overlay);
    }
    const draw = () => {
      if (!this.overlay) return;
      const left = Math.max(0, Math.ceil((this.deadline - Date.now()) / 1000));
      const offline = typeof navigator !== 'undefined' && navigator.onLine === false;
      const [said, countdown] = this.overlay.children;
      const text = `Connection lost${offline ? ' (offline)' : ''}: reconnecting…`;
      if (said && said.textContent !== text) said.textContent = text;
      if (countdown) countdown.textContent = ` ${left} s left`;
    };
    draw();
    this.overlayTimer ??= setInterval(draw, 1_000);
  }

  private hideOverlay(): void {
    clearInterval(this.overlayTimer);
    this.overlayTimer = undefined;
    this.overlay?.remove();
    this.overlay = undefined;
  }

  /** Shows how the session ended, and (unless watching) waits for Enter to reconnect. */
  private finish(info: TerminalCloseInfo, line: string): void {
    if (this.disposed) return;
    this.terminal.write(this.readOnly ? line : `${line}${HINT}`);
    this.setState('closed');
    this.options.onClose?.(info);
  }

  private detachSocket(code: number): void {
    this.generation++;
    const ws = this.ws;
    this.ws = undefined;
    if (!ws) return;
    ws.onopen = ws.onmessage = ws.onclose = null;
    if (ws.readyState === WebSocket.CONNECTING || ws.readyState === WebSocket.OPEN) ws.close(code);
  }

  /**
   * Asked before any paste reaches xterm (see PasteCheckedTerminal, bindClipboard): a paste
   * reaches onData as typing does, and a line in it would be read as Enter there.
   *
   * A paste into an ended terminal does what Enter does there: with a line in it, a new session
   * opens, as typing Enter opens one; without, nothing opens. Either way the text is sent to no
   * session, and the terminal says so: a pasted line runs as soon as a shell reads it, and the
   * new session's shell, directory and environment (its container even, an instance replaced
   * since) are not those it was copied for, nor has the user seen its prompt yet. Whether the
   * rest would be harmless cannot be told from the bytes (a shell's key bindings act on control
   * characters and escapes). Nor is one made while the session a paste opened still connects
   * (the same paste again, a key pressed twice), which would wait there and go once it opens.
   * False otherwise: the paste goes on as usual.
   */
  private pastedWhileClosed(text: string): boolean {
    if (this.readOnly || this.disposed) return false;
    if (this.currentState === 'connecting' && this.openedByPaste) {
      if (text) this.terminal.write(PASTE_NOT_SENT_OPENING);
      return true;
    }
    if (this.currentState !== 'closed') return false;
    if (/[\r\n]/.test(text)) {
      this.terminal.write(PASTE_NOT_SENT_RECONNECTING);
      // Kept while connecting (set before: a broker the browser refuses ends it at once).
      this.openedByPaste = true;
      this.reconnect();
    } else if (text) this.terminal.write(PASTE_NOT_SENT);
    return true;
  }

  private input(data: string): void {
    if (this.readOnly) return;
    if (this.currentState === 'closed') {
      // Typed: Enter opens a new session (a paste does not come here, see pastedWhileClosed).
      if (data.includes('\r')) this.reconnect();
      return;
    }
    const bytes = encoder.encode(data);
    if (this.currentState === 'reconnecting') {
      // Typed while the connection is broken: sent once the session is back.
      this.sendInput(undefined, bytes);
      return;
    }
    if (this.currentState === 'connecting') {
      // Kept whole, and sent after START within the input window: a paste made while the
      // terminal connects is not lost, whatever its size (it is in the page's memory already).
      this.pending.push(bytes);
      return;
    }
    if (this.ws) this.sendInput(this.ws, bytes);
  }

  private sendWinch(cols: number, rows: number): void {
    if (!this.readOnly && this.currentState === 'open' && this.ws) sendFrame(this.ws, encodeRequest(RequestType.WINCH, encodeWinch(cols, rows)));
  }
}

function sendChunks(ws: WebSocket, bytes: Uint8Array): void {
  for (let off = 0; off < bytes.length; off += MAX_INPUT_FRAME) sendFrame(ws, encodeRequest(RequestType.PLAIN, bytes.subarray(off, off + MAX_INPUT_FRAME)));
}

// The codec allocates plain ArrayBuffers; its signature only says ArrayBufferLike.
function sendFrame(ws: WebSocket, frame: Uint8Array): void {
  ws.send(frame as Uint8Array<ArrayBuffer>);
}

/**
 * Emoji take two cells, as the container's wcwidth (glibc, from Unicode 9 on) and other
 * terminals say: by xterm's own tables (Unicode 6) they took one, and everything after one on
 * the line was drawn a cell left of where the shell or an editor had put it. The Unicode API is
 * a proposed one of xterm's: allowed while it is set, as the page's options had it after.
 */
function useUnicode11(terminal: Terminal): void {
  const allowed = terminal.options.allowProposedApi;
  terminal.options.allowProposedApi = true;
  try {
    terminal.loadAddon(new Unicode11Addon());
    terminal.unicode.activeVersion = '11';
  } finally {
    terminal.options.allowProposedApi = allowed;
  }
}

function disposable(d: { dispose(): void }): () => void {
  return () => d.dispose();
}
