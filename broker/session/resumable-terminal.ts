import { randomBytes, timingSafeEqual } from 'node:crypto';
import { AckBatcher } from '../../proto/ack-batcher.js';
import { encodeCount, encodeResumeTicket, ResponseType } from '../../proto/codec.js';
import { HELD_CHUNK_COST_BYTES } from '../config/limits.js';
import { EntryError } from '../errors.js';
import type { ClientTerminal, EndReason, OutputStream, TerminalEvents, TerminalSide } from './types.js';

type ResumableClient = Pick<ClientTerminal, keyof TerminalSide | 'sendControl' | 'drop'>;

export interface ResumeOptions {
  sessionId: string;
  /** How long a broken session waits for its client. */
  graceMs: number;
  /** Output kept until acknowledged; the process is paused when this much waits. */
  bufferBytes: number;
  /** Told to the client, which watches for silence on that basis. */
  pingIntervalMs?: number;
  /** The connection broke; the session now waits `graceMs`. */
  onLost?(error: EntryError | undefined): void;
  /** A client took the session over, `missed` bytes were sent again. */
  onResumed?(info: { outputOffset: number; inputOffset: number; missed: number; awayMs: number }): void;
}

/** Output chunks smaller than this are kept together, in rooms of KEEP_ROOM_BYTES (see `keep`). */
const KEEP_TOGETHER_BELOW_BYTES = 512;
const KEEP_ROOM_BYTES = 4096;
/** Pieces of output kept before the process is held, whatever the buffer (see `keptReaches`). */
const MIN_KEPT_PIECES = 64;
/** Input acknowledgements are batched: at most this often, or at once after INPUT_ACK_BYTES. */
const INPUT_ACK_MS = 100;
const INPUT_ACK_BYTES = 64 * 1024;
/**
 * Input held here while the process takes none. Clients keep at most 1 MiB unacknowledged, so
 * the connection is still read (its output acknowledgements must get through, or output and
 * input wait on each other: `cat` of 50 MB); only a client past twice that is paused.
 */
const MAX_HELD_INPUT = 2 * 1024 * 1024;
/**
 * Clients acknowledge output in batches of this size at most (OUTPUT_ACK_BYTES of the CLI, the
 * API and the browser, through proto/ack-batcher.ts), each before anything they send later. So
 * a client that closes having read up to the exit status leaves less than this unacknowledged;
 * a connection that closes with more broke under a client still reading its backlog.
 */
const CLIENT_ACK_BATCH_BYTES = 64 * 1024;

/**
 * The terminal side of a resumable session, for the relay: the client's connection of the
 * moment behind it. It keeps the output the client has not acknowledged, counts the input it
 * passed on, and when the connection breaks it holds the relay as a congested client would
 * (the process runs until that buffer is full, then is paused) until a client resumes with the
 * token or `graceMs` passes; then the relay ends as if the client had gone just then.
 */
export class ResumableTerminal implements TerminalSide {
  readonly token: Buffer = randomBytes(32);
  private events: TerminalEvents | undefined;
  private current: ResumableClient | undefined;
  /** Events of replaced connections are ignored: each connection gets its own generation. */
  private generation = 0;
  /**
   * Output not yet acknowledged, oldest first; `keptFrom` is the offset of its first byte. Small
   * chunks are views of a room they share with the ones around them (see `keep`).
   */
  private chunks: Array<{ stream: OutputStream; data: Uint8Array }> = [];
  /** Where small chunks are copied to (see `keep`), and how much of it is used. */
  private room: Buffer | undefined;
  private roomUsed = 0;
  private keptFrom = 0;
  private kept = 0;
  private outTotal = 0;
  private readonly inputAcks = new AckBatcher(
    (count) => this.current !== undefined && (this.current.sendControl(ResponseType.INPUT_ACK, encodeCount(count)), true),
    INPUT_ACK_BYTES,
    INPUT_ACK_MS,
  );
  /** The connection asked to stop sending (its queue is full). */
  private clientCongested = false;
  /** We told the relay to stop (client congested, or the buffer full). */
  private outputPaused = false;
  private inputPaused = false;
  private heldInput: Uint8Array[] = [];
  private heldInputBytes = 0;
  /** The connection itself is paused (a client past MAX_HELD_INPUT). */
  private readingPaused = false;
  private eofHeld = false;
  private inputEnded = false;
  private graceTimer: NodeJS.Timeout | undefined;
  private lostAt = 0;
  /** Why the connection was found broken, if the broker found it (ENTRY_PEER_TIMEOUT). */
  private lostError: EntryError | undefined;
  /** No resume from now on: the session ended, or its grace ran out. */
  private over = false;
  /** Why the session is ending, for a reason no client can undo (a kill, a drain, a timeout). */
  private refusing: string | undefined;
  /**
   * The process exited: its end (the output not yet acknowledged, then the exit status) waits
   * until a connection has delivered it, and the session stays resumable meanwhile.
   */
  private ending: { reason: EndReason; line: string | undefined; resolve: () => void } | undefined;
  /** The generation of the connection the end was handed to, whose own end settles it. */
  private carrier = 0;
  private verdictTimer: NodeJS.Timeout | undefined;

  constructor(
    first: ResumableClient,
    private readonly options: ResumeOptions,
  ) {
    this.current = first;
  }

  /** Bytes held now, for the session's memory bound. */
  get heldBytes(): number {
    return this.kept;
  }

  get detached(): boolean {
    return this.current === undefined && !this.over;
  }

  tokenMatches(candidate: Uint8Array): boolean {
    return candidate.length === this.token.length && timingSafeEqual(candidate, this.token);
  }

  start(events: TerminalEvents): void {
    this.events = events;
    const first = this.current!;
    first.sendControl(ResponseType.RESUMABLE, this.ticket(0));
    this.listen(first);
  }

  send(stream: OutputStream, data: Uint8Array, headroom?: number): boolean {
    if (this.over) return true;
    this.keep(stream, data);
    this.kept += data.length;
    this.outTotal += data.length;
    if (this.current && !this.current.send(stream, data, headroom)) this.clientCongested = true;
    this.outputPaused = this.clientCongested || this.keptReaches(1);
    return !this.outputPaused;
  }

  /**
   * Keeps a copy of `data` (the caller's buffer may be reused, and this one may outlive the
   * connection) until it is acknowledged. Small chunks are copied into one room of
   * KEEP_ROOM_BYTES after another, a chunk that follows one of its stream extending it: a
   * process printing a byte at a time to a client that does not acknowledge held an object
   * per byte, a million and some 150 MB, before RESUME_BUFFER_BYTES of them paused it.
   */
  private keep(stream: OutputStream, data: Uint8Array): void {
    if (data.length >= KEEP_TOGETHER_BELOW_BYTES) {
      this.chunks.push({ stream, data: Buffer.from(data) });
      return;
    }
    if (!this.room || this.roomUsed + data.length > this.room.length) {
      this.room = Buffer.allocUnsafeSlow(KEEP_ROOM_BYTES);
      this.roomUsed = 0;
    }
    const room = this.room;
    room.set(data, this.roomUsed);
    const last = this.chunks[this.chunks.length - 1];
    if (last && last.stream === stream && last.data.buffer === room.buffer && last.data.byteOffset + last.data.length === this.roomUsed) {
      last.data = room.subarray(last.data.byteOffset, this.roomUsed + data.length);
    } else {
      this.chunks.push({ stream, data: room.subarray(this.roomUsed, this.roomUsed + data.length) });
    }
    this.roomUsed += data.length;
  }

  /**
   * Whether the output kept is at its bound (at `part` of it): its bytes, or its pieces, each
   * counted as HELD_CHUNK_COST_BYTES (its objects: output alternating between stdout and stderr
   * a byte at a time is a piece per byte), with room for MIN_KEPT_PIECES under a tiny buffer.
   */
  private keptReaches(part: number): boolean {
    const maxPieces = Math.max(MIN_KEPT_PIECES, this.options.bufferBytes / HELD_CHUNK_COST_BYTES);
    return this.kept >= this.options.bufferBytes * part || this.chunks.length >= maxPieces * part;
  }

  ping(): void {
    this.current?.ping();
  }

  pauseInput(): void {
    this.inputPaused = true;
  }

  resumeInput(): void {
    this.inputPaused = false;
    while (!this.inputPaused && this.heldInput.length > 0) {
      const data = this.heldInput.shift()!;
      this.heldInputBytes -= data.length + HELD_CHUNK_COST_BYTES;
      this.passInput(data);
    }
    if (this.inputPaused) return;
    if (this.eofHeld) {
      this.eofHeld = false;
      this.endInput();
    }
    if (this.readingPaused) {
      this.readingPaused = false;
      this.current?.resumeInput();
    }
  }

  private passInput(data: Uint8Array): void {
    this.events!.input(data);
    this.inputAcks.received(data.length);
  }

  private endInput(): void {
    if (this.inputEnded) return;
    this.inputEnded = true;
    this.events!.inputEnd();
  }

  /** Held input came over a connection now gone: its client sends it again after the count it is told. */
  private forgetHeldInput(): void {
    this.heldInput = [];
    this.heldInputBytes = 0;
    this.eofHeld = false;
    this.readingPaused = false;
  }

  /**
   * The process exited: the end goes to the connection of the moment, or waits for a client to
   * come back. Either way it is settled only once a connection has closed having delivered it;
   * one that breaks first (a laptop asleep in `| less`, a link that broke just as the process
   * exited) leaves the session resumable for `graceMs`, and a resume gets the output not
   * acknowledged and the exit status. Anything else (kill, drain, grace over) ends now.
   */
  finish(reason: EndReason, line?: string): Promise<void> {
    this.inputAcks.cancel();
    this.forgetHeldInput();
    if (reason.kind === 'exited' && !this.over) {
      return new Promise((resolve) => {
        this.ending = { reason, line, resolve };
        if (this.current) this.handEnd(this.current);
      });
    }
    this.over = true;
    const client = this.current;
    if (client) return client.finish(reason, line, () => this.unread());
    this.end();
    return Promise.resolve();
  }

  /** Gives the end to `client`; how that connection ends (see `listen`) settles it. */
  private handEnd(client: ResumableClient): void {
    const ending = this.ending!;
    const gen = this.generation;
    this.carrier = gen;
    void client.finish(ending.reason, ending.line, () => this.unread()).then(() => {
      if (gen !== this.generation || this.ending !== ending) return;
      // A connection says how it ended (gone or lost) once it has closed; one that never does
      // is taken to have delivered the end after the grace period, so nothing is held forever.
      clearTimeout(this.verdictTimer);
      this.verdictTimer = setTimeout(() => this.settleEnd(), this.options.graceMs);
      this.verdictTimer.unref();
    });
  }

  /**
   * Ends now a session kept only for its client to come back for the end (a kick, a drain); a
   * connection delivering the end is left to finish.
   */
  abandon(): void {
    if (this.ending && !this.current) this.settleEnd();
  }

  /**
   * Refuses resumes from now on: the session is ending other than by its process's exit, and
   * its processes are being ended (up to --kill-grace) before the end is told. A client coming
   * back meanwhile would be told it resumed, then get the end; it is told the session is over.
   */
  refuseResumes(why: string): void {
    this.refusing = why;
  }

  /** The end reached the client (its connection closed normally), or nobody came for it in time. */
  private settleEnd(): void {
    const ending = this.ending;
    if (!ending) return;
    this.ending = undefined;
    this.end();
    ending.resolve();
  }

  /**
   * Takes the session over with a new connection whose client has received `outputOffset`
   * bytes. Throws ENTRY_RESUME_EXPIRED / ENTRY_RESUME_OVERRUN / ENTRY_BAD_REQUEST; the caller
   * has checked the token and the user.
   */
  resume(client: ResumableClient, outputOffset: number): void {
    if (this.refusing !== undefined) throw new EntryError('ENTRY_RESUME_EXPIRED', `the session is ending: ${this.refusing}`);
    if (this.over || !this.events) throw new EntryError('ENTRY_RESUME_EXPIRED');
    if (outputOffset > this.outTotal) throw new EntryError('ENTRY_BAD_REQUEST', `output offset ${outputOffset} is past the ${this.outTotal} bytes sent`);
    if (outputOffset < this.keptFrom) throw new EntryError('ENTRY_RESUME_OVERRUN', `received up to byte ${outputOffset}, kept from ${this.keptFrom}`);
    const awayMs = this.current ? 0 : Date.now() - this.lostAt;
    // The old connection may not look broken yet from here (a client whose network changed).
    if (this.current) this.replace();
    clearTimeout(this.graceTimer);
    this.acknowledge(outputOffset);
    const missed = this.kept;
    this.current = client;
    this.clientCongested = false;
    client.sendControl(ResponseType.RESUMABLE, this.ticket(outputOffset));
    this.inputAcks.acknowledged(this.inputAcks.count);
    for (const c of this.chunks) if (!client.send(c.stream, c.data)) this.clientCongested = true;
    this.listen(client);
    this.options.onResumed?.({ outputOffset, inputOffset: this.inputAcks.count, missed, awayMs });
    if (this.ending) {
      this.handEnd(client);
      return;
    }
    this.maybeDrain();
  }

  private ticket(outputOffset: number): Uint8Array {
    return encodeResumeTicket({ session: this.options.sessionId, token: this.token, outputOffset, inputOffset: this.inputAcks.count, graceMs: this.options.graceMs, pingIntervalMs: this.options.pingIntervalMs ?? 0 });
  }

  private listen(client: ResumableClient): void {
    const gen = ++this.generation;
    const live = () => gen === this.generation;
    const events = this.events!;
    client.start({
      input: (data) => {
        if (!live()) return;
        // The process is gone: nothing will read it, and holding it would grow without bound
        // (the connection reads on while it delivers the end).
        if (this.over || this.ending) return;
        if (!this.inputPaused && this.heldInput.length === 0) {
          this.passInput(data);
          return;
        }
        this.heldInput.push(data);
        // With its objects: one-byte frames, counted by bytes alone, held 2 million entries.
        this.heldInputBytes += data.length + HELD_CHUNK_COST_BYTES;
        if (this.heldInputBytes > MAX_HELD_INPUT && !this.readingPaused) {
          this.readingPaused = true;
          client.pauseInput();
        }
      },
      resize: (cols, rows) => live() && events.resize(cols, rows),
      inputEnd: () => {
        if (!live()) return;
        // After the input held before it; and a client re-sends EOF after a resume when it
        // cannot know it arrived: passed on once.
        if (this.inputPaused || this.heldInput.length > 0) this.eofHeld = true;
        else this.endInput();
      },
      signal: (name) => live() && events.signal(name),
      drain: () => {
        if (!live()) return;
        this.clientCongested = false;
        this.maybeDrain();
      },
      outputAck: (count) => {
        if (!live()) return;
        this.acknowledge(count);
        this.maybeDrain();
      },
      gone: (error) => {
        if (!live()) return;
        if (this.ending && this.carrier === gen) {
          // The connection carrying the end closed without breaking (a broken one reports `lost`):
          // delivered, unless the client cannot have read it all (see CLIENT_ACK_BATCH_BYTES).
          if (this.unread() >= CLIENT_ACK_BATCH_BYTES) this.detach(error);
          else this.settleEnd();
          return;
        }
        events.gone(error);
      },
      lost: (error) => {
        if (!live() || this.over) return;
        this.detach(error);
      },
    });
  }

  /**
   * Output sent that the client has not said it read. A client that has read everything says so
   * within its acknowledgement delay (a second), or reads the CLOSE behind it and closes.
   */
  private unread(): number {
    return this.outTotal - this.keptFrom;
  }

  /** Drops what the client has received. Counts outside what was sent are ignored. */
  private acknowledge(count: number): void {
    if (count <= this.keptFrom || count > this.outTotal) return;
    let drop = count - this.keptFrom;
    while (drop > 0) {
      const first = this.chunks[0]!;
      if (first.data.length <= drop) {
        this.chunks.shift();
        drop -= first.data.length;
      } else {
        first.data = first.data.subarray(drop);
        drop = 0;
      }
    }
    this.kept -= count - this.keptFrom;
    this.keptFrom = count;
  }

  private maybeDrain(): void {
    // Resume below half the buffer, so that acknowledgements do not toggle it chunk by chunk.
    if (this.outputPaused && this.current && !this.clientCongested && !this.keptReaches(1 / 2)) {
      this.outputPaused = false;
      this.events?.drain();
    }
  }

  /** Forgets the current connection; its late events are ignored. */
  private replace(): void {
    const old = this.current;
    this.current = undefined;
    this.generation++;
    this.forgetHeldInput();
    this.inputAcks.cancel();
    old?.drop();
  }

  private detach(error: EntryError | undefined): void {
    clearTimeout(this.verdictTimer);
    this.replace();
    this.clientCongested = false;
    this.lostAt = Date.now();
    this.lostError = error;
    // Output now only fills the buffer: the relay is held once it is full, not before.
    const wasPaused = this.outputPaused;
    this.outputPaused = this.keptReaches(1);
    if (wasPaused && !this.outputPaused) this.events?.drain();
    this.options.onLost?.(error);
    this.graceTimer = setTimeout(() => this.expire(), this.options.graceMs);
    this.graceTimer.unref();
  }

  private expire(): void {
    if (this.current || this.over) return;
    if (this.ending) {
      this.settleEnd();
      return;
    }
    this.over = true;
    // The relay ends the session as for a client gone now (with the reason the loss was found
    // for, if any): processes are ended, as without resume.
    this.events?.gone(this.lostError);
  }

  private end(): void {
    this.over = true;
    clearTimeout(this.graceTimer);
    clearTimeout(this.verdictTimer);
    this.chunks = [];
    this.room = undefined;
    this.kept = 0;
  }
}
