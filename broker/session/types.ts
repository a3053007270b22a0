import type { Identity } from '../auth/identity.js';
import type { ResolvedTarget, Target } from '../backend/backend.js';
import type { OutputStream } from '../backend/process-side.js';
import type { EntryError } from '../errors.js';

/** How a session ended. Exactly one per session. */
export type EndReason =
  | { kind: 'exited'; exitCode: number }
  | { kind: 'client-gone' }
  | { kind: 'failed'; error: EntryError };

// The process side belongs to the backends; the relay sees it through these names.
export type { OutputStream, ProcessEvents, ProcessSide } from '../backend/process-side.js';

/** Events from the terminal side (the client), delivered to the relay. */
export interface TerminalEvents {
  input(data: Uint8Array): void;
  resize(cols: number, rows: number): void;
  inputEnd(): void;
  signal(name: string): void;
  /** The client can take more output after `send` returned false. */
  drain(): void;
  /** The client went away, or broke the protocol (error set). */
  gone(error?: EntryError): void;
  /** Protocol 2: the client has received this many output bytes (OUTPUT_ACK). */
  outputAck?(count: number): void;
  /**
   * The connection broke without a close (no close frame, a peer that stopped acknowledging):
   * its session may be resumed. Listeners without it are told `gone` instead.
   */
  lost?(error?: EntryError): void;
}

/** The client end of a session (a WebSocket, or a test pipe): the relay's view of it. */
export interface TerminalSide {
  start(events: TerminalEvents): void;
  /** Sends output; false means the client is congested: stop until `drain`. `headroom` as in ProcessEvents.output. */
  send(stream: OutputStream, data: Uint8Array, headroom?: number): boolean;
  ping(): void;
  pauseInput(): void;
  resumeInput(): void;
  /**
   * Sends the ending (exit code, CLOSE reason, or `line` in its place) after all output, and
   * closes. `unread`, where the client acknowledges what it reads, tells how much of what it
   * received it has not read yet: the connection is kept while that is being read.
   */
  finish(reason: EndReason, line?: string, unread?: () => number): Promise<void>;
}

/** A client's terminal as the gateway hands it to a session: ready, listening, nothing lost. */
export interface ClientTerminal extends TerminalSide {
  /** Protocol 2: resolves with the START (or `expected`: RESUME) content, or rejects (bad first frame, timeout, gone). */
  awaitStart(timeoutMs: number, expected?: number): Promise<Uint8Array>;
  /** Protocol 2: a message beside the output (RESUMABLE, INPUT_ACK). */
  sendControl(type: number, content: Uint8Array): void;
  /** Drops the connection without a word (a resumed one took its place, or it was found broken). */
  drop(): void;
  /** TTY output is cut on UTF-8 boundaries; non-TTY output is raw. */
  setTty(tty: boolean): void;
}

/** A client admitted by the gateway (authenticated, allowed, its target resolved). */
export interface AdmittedSession {
  sessionId: string;
  terminal: ClientTerminal;
  /** Protocol 2 (START, EXIT, codes in CLOSE); false for original clients. */
  protocol2: boolean;
  /** The term-type header: TERM for the original protocol's shell. */
  termType: string;
  requestId: string;
  /** The session this connection resumes (`entry-resume` header, `?resume=`); unset for a new one. */
  resume?: string | undefined;
  /** The broker that handed this connection on to this one (a resume that reached it first). */
  via?: string | undefined;
  identity: Identity;
  target: Target;
  /** Where it runs; opaque apart from its display fields. */
  container: ResolvedTarget;
  remoteAddress: string;
  /** Subject of the verified client certificate (mTLS), when there is one. */
  clientCert?: string | undefined;
}

/** An admin admitted to watch a session (GET /watch?session=ID). */
export interface AdmittedWatch {
  terminal: ClientTerminal;
  identity: Identity;
  sessionId: string;
  remoteAddress: string;
}
