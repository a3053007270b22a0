import type { Socket } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import type Docker from 'dockerode';
import { EXIT_CODE_WAIT_MS, HELD_CHUNK_COST_BYTES, RESIZE_RETRIES, RESIZE_RETRY_STEP_MS } from '../config/limits.js';
import { EntryError } from '../errors.js';
import type { OutputStream, ProcessEvents, ProcessSide } from '../session/types.js';
import { DockerDemuxer } from './demux.js';
import { answeredWithin, answerInTime, dockerFailure, refused, unanswered } from './engine.js';
import { execCreateOptions, type ExecOptions } from './exec-create.js';
import { withOpenCleanUp } from '../backend/open-clean-up.js';
import { SignalLane, signalName } from '../backend/signal-lane.js';
import { TtyInputEnd } from '../backend/tty-input-end.js';
import { processStartTicks } from '../proc-stat.js';
import type { ProcessReaper } from './process-reaper.js';

/** Stdin queued towards Docker before the client is asked to wait, and when it may go on (see `write`). */
const STDIN_HIGH_WATER_BYTES = 1024 * 1024;
const STDIN_LOW_WATER_BYTES = 256 * 1024;
/** How long a signal death is watched for the container stopping with it (see containerStopping). */
const CONTAINER_STOP_GRACE_MS = 300;
/**
 * A session still open this long after its exec started learns its host PID then. Ending a
 * session needs it, and asking the engine at that moment made a mass disconnect (a load
 * balancer restart) 1,000 engine calls in the middle of the clean-up; a second later there is
 * time to spare, and a command that ends sooner (`enter … -- true`) never asks.
 */
const HOST_PID_LOOKUP_DELAY_MS = 1_000;
/**
 * How long a signal that found none of the session's processes is tried again while the engine
 * has not reported the exec's PID: the process is still being started.
 */
const SIGNAL_BEFORE_START_WAIT_MS = 5_000;
/**
 * How long an ended session waits for an exec process the engine had not spawned yet (the
 * client left within milliseconds of START): the engine answers the start before it spawns the
 * process, tens of milliseconds later here and seconds on a loaded engine. Past this the exec
 * is taken for one that never starts.
 */
const LATE_START_WAIT_MS = 10_000;

/** A Docker exec as the relay's process side: a hijacked stream plus the Engine API calls. */
export class DockerExecProcess implements ProcessSide {
  private socket!: Socket;
  private exec!: Docker.Exec;
  private events: ProcessEvents | undefined;
  private hostPid = 0;
  /** When the exec's process started (processStartTicks), read while the engine said it ran: '' unknown. */
  private hostStart = '';
  private desiredSize: { cols: number; rows: number } | undefined;
  private appliedSize = '';
  private resizing = false;
  /** Waiting in whenResized for the resize in flight to end. */
  private readonly resizeWaiters: Array<() => void> = [];
  private started = false;
  private held: Uint8Array[] = [];
  private sawOutput = false;
  private inputCongested = false;
  /** Stdin writes the socket has not flushed yet: each is an entry in its queue (see `queuedInput`). */
  private pendingWrites = 0;
  private runtimeFailure: string | undefined;
  private finished = false;
  private pidLookup: NodeJS.Timeout | undefined;
  private hostPidLookup: Promise<number> | undefined;
  /** An error of the stream between open() and start(). */
  private earlyFailure: Error | undefined;
  private terminating: Promise<void> | undefined;
  /** Set by the end: nothing of the exec can start any more (see endLateStart). */
  private startSettled = false;
  private readonly inputEnd = new TtyInputEnd();
  /** The client's signals, at most one delivery at a time (see SignalLane). */
  private readonly signals = new SignalLane(async (sig) => {
    // A signal sent right after START (a script's kill just after spawn) may come before the
    // engine reports the exec's process (PID 0) and before the process carries the session's
    // mark: none is found and it was dropped. Asked again until one is, for a while.
    const until = Date.now() + SIGNAL_BEFORE_START_WAIT_MS;
    for (let wait = 10; !this.finished; wait = Math.min(wait * 2, 200)) {
      const pid = await this.ensureHostPid();
      const sent = await this.reaper.signalFromClient(this.options.containerId, this.options.sessionId, `SIG${sig}` as NodeJS.Signals, pid, this.hostStart);
      if (sent > 0 || pid > 0 || Date.now() >= until) return;
      await sleep(wait);
    }
  });

  private constructor(
    private readonly docker: Docker,
    private readonly reaper: ProcessReaper,
    private readonly options: ExecOptions,
  ) {
    this.desiredSize = options.size;
  }

  /** Creates and starts the exec. Throws EntryError when Docker refuses. */
  static async open(docker: Docker, reaper: ProcessReaper, options: ExecOptions): Promise<DockerExecProcess> {
    const p = new DockerExecProcess(docker, reaper, options);
    await p.open();
    return p;
  }

  private async open(): Promise<void> {
    const o = this.options;
    // Both calls share one deadline: an engine that takes a call and never answers it must not
    // hold the client (and its slot) for good.
    await answeredWithin(o.openTimeoutMs, async (deadline) => {
      const failure = (err: unknown) =>
        deadline.aborted ? new EntryError('ENTRY_DOCKER_UNAVAILABLE', `starting exec: no answer within ${o.openTimeoutMs} ms`, { cause: err }) : dockerFailure(err, 'starting exec');
      try {
        this.exec = await this.docker.getContainer(o.containerId).exec({ ...execCreateOptions(o), abortSignal: deadline });
      } catch (err) {
        throw failure(err);
      }
      try {
        this.socket = (await this.exec.start({ hijack: true, stdin: true, Tty: o.tty, abortSignal: deadline })) as Socket;
      } catch (err) {
        // The engine may have started the process and only its answer been lost, or it may still
        // start it: one that did not answer in time may be stuck and carry the start out later.
        throw unanswered(err) ? withOpenCleanUp(failure(err), deadline.aborted ? this.endStartOutOfTime() : this.terminate()) : failure(err);
      }
    });
    // From here until start() the session awaits other work (the session store): a reset in
    // between must not be an uncaught 'error' (Node drops its own listener on the upgrade). It
    // is kept and reported by start().
    this.socket.on('error', (err: Error) => (this.earlyFailure ??= err));
    // A TCP or unix socket; over ssh:// an ssh channel, which has no Nagle to turn off.
    this.socket.setNoDelay?.(true);
    this.started = true;
  }

  start(events: ProcessEvents): void {
    this.events = events;
    const socket = this.socket;
    if (this.earlyFailure) {
      // The stream broke before the session began: it ends with the reason (on a later tick,
      // as any end), and what the exec may still run in the container is ended.
      const error = dockerFailure(this.earlyFailure, "the exec's stream failed before the session started");
      this.finished = true;
      this.signals.close();
      queueMicrotask(() => events.end({ error }));
      void this.terminate().catch(() => undefined);
      return;
    }
    const output = (stream: OutputStream, data: Uint8Array, headroom: number) => {
      if (!this.sawOutput) {
        this.sawOutput = true;
        this.runtimeFailure = runtimeFailureOf(data);
      }
      events.output(stream, data, headroom);
    };
    if (this.options.tty) {
      socket.on('data', (chunk: Buffer) => output('stdout', chunk, 0));
    } else {
      // One frame per Docker payload, framed in place (see DockerDemuxer): no copy. The
      // terminal sends the frames of one read in one write.
      const demux = new DockerDemuxer(output);
      socket.on('data', (chunk: Buffer) => demux.push(chunk));
    }
    socket.on('drain', () => {
      this.inputCongested = false;
      events.drain();
    });
    // The stream may end by `end` (orderly) or only `close` (reset): handle both, once.
    socket.on('end', () => void this.finish());
    socket.on('close', () => void this.finish());
    socket.on('error', () => void this.finish());
    void this.applySize();
    this.pidLookup = setTimeout(() => void this.reaper.limited(() => this.ensureHostPid()), HOST_PID_LOOKUP_DELAY_MS);
    this.pidLookup.unref();
  }

  write(data: Uint8Array): boolean {
    if (this.finished || this.socket.writableEnded) return true;
    this.inputEnd.wrote(data);
    if (this.resizing) {
      // Keep the client's order: input typed after a resize reaches the process after it.
      // The caller pauses on `false` and resumes on drain, so this holds at most a frame or two.
      this.held.push(data);
      return false;
    }
    // Congested only past our own mark, not the socket's 16 KiB one: stdin frames are up to
    // 256 KiB, and pausing the client after every frame would halve the throughput. The client
    // resumes at the low mark, not only when the queue is empty, so the pipe never runs dry.
    this.pendingWrites++;
    this.socket.write(data, this.afterWrite);
    if (this.queuedInput() < STDIN_HIGH_WATER_BYTES) return true;
    this.inputCongested = true;
    return false;
  }

  /**
   * Stdin queued on the socket, each write counted with its objects: by bytes alone, a client
   * sending one byte a frame to a process that reads none queued a million writes, some 280 MB.
   */
  private queuedInput(): number {
    return this.socket.writableLength + this.pendingWrites * HELD_CHUNK_COST_BYTES;
  }

  private readonly afterWrite = (): void => {
    this.pendingWrites--;
    if (this.inputCongested && this.queuedInput() < STDIN_LOW_WATER_BYTES) {
      this.inputCongested = false;
      this.events?.drain();
    }
  };

  endInput(): void {
    if (this.held.length > 0 || this.resizing) {
      void this.whenResized().then(() => this.endInput());
      return;
    }
    if (this.socket.writableEnded || this.finished) return;
    if (this.options.tty) {
      // A half-close on a TTY exec makes Docker drop the whole stream, output included. A
      // terminal signals end of input with EOT (^D), which the line discipline turns into EOF.
      this.socket.write(this.inputEnd.bytes());
      return;
    }
    // Half-close: Docker closes the process's stdin and keeps the output flowing.
    this.socket.end();
  }

  resize(cols: number, rows: number): void {
    if (!this.options.tty) return;
    this.desiredSize = { cols, rows };
    void this.applySize();
  }

  signal(name: string): Promise<void> | undefined {
    return this.signals.send(signalName(name));
  }

  pauseOutput(): void {
    this.socket.pause();
  }

  resumeOutput(): void {
    this.socket.resume();
  }

  terminate(): Promise<void> {
    // Once: a stream that failed before start ends its processes itself, and the relay may ask again.
    return (this.terminating ??= this.terminateOnce());
  }

  /**
   * Ends what a start the engine did not answer in time may have started. An engine stuck on
   * the container's lock may carry the start out later, once the wait for a late start is over:
   * then the clean-up is not done, and the session's ledger entry stays for the leftover sweep.
   */
  private async endStartOutOfTime(): Promise<void> {
    await this.terminate();
    if (!this.startSettled) throw new EntryError('ENTRY_DOCKER_UNAVAILABLE', 'the exec reported neither a process nor an exit code: it may still start');
  }

  private async terminateOnce(): Promise<void> {
    // Many sessions ending at once take turns; the PID first: once the stream is gone the exec
    // may be gone too. The engine is asked within the reaper's bounded slots.
    this.signals.close();
    await this.reaper.cleanupTurn();
    clearTimeout(this.pidLookup);
    const pid = this.hostPid || (await this.reaper.limited(() => this.ensureHostPid()));
    this.finished = true;
    // None when the start's answer was lost.
    this.socket?.destroy();
    await this.reaper.terminate(this.options.containerId, this.options.sessionId, pid, this.options.terminateGraceMs, this.hostStart);
    this.startSettled = pid > 0 || (await this.endLateStart());
  }

  /**
   * The engine reported no PID: the process may not be spawned yet, and nothing of the session
   * was there to end. Waits for the exec to report a PID (then ends the session's processes
   * again) or an exit code. True when nothing of the exec can start any more: it was ended,
   * it exited, or the engine no longer knows it; false when the engine could not tell in time.
   */
  private async endLateStart(): Promise<boolean> {
    const deadline = Date.now() + LATE_START_WAIT_MS;
    let wait = 5;
    while (Date.now() < deadline) {
      let info: Docker.ExecInspectInfo;
      try {
        info = await this.reaper.limited(() => this.exec.inspect(answerInTime()));
      } catch (err) {
        // Refused (the exec is gone with its container), or no answer.
        return refused(err);
      }
      if (info.Pid > 0) {
        await this.reaper.terminate(this.options.containerId, this.options.sessionId, info.Pid, this.options.terminateGraceMs, (info.Running && processStartTicks(info.Pid)) || '');
        return true;
      }
      if (!info.Running && info.ExitCode !== null && info.ExitCode !== undefined) return true;
      await sleep(wait);
      wait = Math.min(wait * 2, 200);
    }
    return false;
  }

  /**
   * Resizes coalesce: at most one call in flight, and when it returns the latest wanted size
   * is sent if it changed meanwhile, so the last size always wins. Until the exec runs Docker
   * refuses resizes, hence the retries (docker/cli#3573).
   */
  private async applySize(): Promise<void> {
    if (this.resizing || !this.started) return;
    this.resizing = true;
    try {
      for (;;) {
        if (!this.desiredSize || this.finished) return;
        if (sizeKey(this.desiredSize) === this.appliedSize) return;
        let applied: string | undefined;
        for (let attempt = 1; attempt <= RESIZE_RETRIES && !this.finished; attempt++) {
          // Each try sends the latest size: one asked for during the retries is not left behind.
          const want = this.desiredSize;
          try {
            await this.exec.resize({ h: want.rows, w: want.cols, ...answerInTime() });
            applied = sizeKey(want);
            break;
          } catch (err) {
            // Only a refusal is retried (the exec not running yet); an engine that does not
            // answer would hold the input queued behind the resize for every try.
            if (!refused(err)) return;
            await sleep(RESIZE_RETRY_STEP_MS * attempt);
          }
        }
        if (applied === undefined) return;
        this.appliedSize = applied;
      }
    } finally {
      this.resizing = false;
      this.releaseHeld();
      for (const resolve of this.resizeWaiters.splice(0)) resolve();
    }
  }

  private releaseHeld(): void {
    if (this.held.length === 0) return;
    const held = this.held;
    this.held = [];
    let ok = true;
    for (const data of held) if (!this.finished && !this.socket.writableEnded) ok = this.socket.write(data);
    // Resume the client now, or on the socket's own drain when it is full.
    if (ok) this.events?.drain();
  }

  /** Resolves once no resize is in flight and the input held behind it has been written. */
  private whenResized(): Promise<void> {
    if (!this.resizing && this.held.length === 0) return Promise.resolve();
    return new Promise((resolve) => this.resizeWaiters.push(resolve));
  }

  /**
   * The exec's PID on the host, read once the session has lasted HOST_PID_LOOKUP_DELAY_MS or
   * when first needed (ending or signalling it), whichever comes first; one engine call for both.
   */
  private ensureHostPid(): Promise<number> {
    if (this.hostPid > 0) return Promise.resolve(this.hostPid);
    this.hostPidLookup ??= this.exec.inspect(answerInTime()).then(
      (info) => {
        this.hostPid = info.Pid || 0;
        // Read now, while the PID is still the exec's (it runs): what tells it from a process
        // given the PID later.
        this.hostStart = (info.Running && this.hostPid > 0 && processStartTicks(this.hostPid)) || '';
        return this.hostPid;
      },
      // Gone or unreachable: the reaper falls back to asking inside the container.
      () => 0,
    ).finally(() => (this.hostPidLookup = undefined));
    return this.hostPidLookup;
  }

  private async finish(): Promise<void> {
    clearTimeout(this.pidLookup);
    if (this.finished) return;
    this.finished = true;
    this.signals.close();
    const events = this.events!;
    events.end(await this.exitResult());
  }

  /** After the stream ends Docker may report Running for a moment: wait for the real code. */
  private async exitResult(): Promise<{ exitCode: number } | { error: EntryError }> {
    const deadline = Date.now() + EXIT_CODE_WAIT_MS;
    let wait = 2;
    for (;;) {
      try {
        const info = await this.exec.inspect(answerInTime());
        if (!info.Running && info.ExitCode !== null && info.ExitCode !== undefined) {
          // An exec killed because its container stopped is the container's story, not the command's.
          if (await this.containerStopping(info.ExitCode)) return { error: new EntryError('ENTRY_CONTAINER_GONE') };
          return { exitCode: commandExitCode(info.ExitCode, this.runtimeFailure) };
        }
      } catch (err) {
        const failure = dockerFailure(err, 'reading the exit code');
        if (failure.code === 'ENTRY_DOCKER_UNAVAILABLE') return { error: failure };
        const state = await this.containerState();
        if (state === 'stopped' || failure.code === 'ENTRY_CONTAINER_GONE') return { error: new EntryError('ENTRY_CONTAINER_GONE') };
        return { error: failure };
      }
      if (Date.now() > deadline) {
        const state = await this.containerState();
        if (state === 'stopped') return { error: new EntryError('ENTRY_CONTAINER_GONE') };
        if (state === 'unknown') return { error: new EntryError('ENTRY_DOCKER_UNAVAILABLE', 'no answer about the exit code') };
        // Still running without its stream (an engine link dropped, a proxy timed out): the
        // relay ends it, as it does any process whose stream ended with no exit status.
        return { error: new EntryError('ENTRY_STREAM_LOST') };
      }
      await sleep(wait);
      wait = Math.min(wait * 2, 100);
    }
  }

  /**
   * Whether the container is stopping. Docker reports a killed exec's exit code a moment before
   * the container's own state changes, so a signal death (code > 128) gets a short look.
   */
  private async containerStopping(exitCode: number): Promise<boolean> {
    // A normal exit (≤ 128) is the command's own: no need to ask about the container.
    if (exitCode <= 128) return false;
    const deadline = Date.now() + (exitCode > 128 ? CONTAINER_STOP_GRACE_MS : 0);
    for (;;) {
      const state = await this.containerState();
      if (state === 'stopped') return true;
      if (Date.now() >= deadline) return false;
      await sleep(20);
    }
  }

  private async containerState(): Promise<'running' | 'stopped' | 'unknown'> {
    try {
      const info = await this.docker.getContainer(this.options.containerId).inspect(answerInTime());
      return info.State.Running ? 'running' : 'stopped';
    } catch (err) {
      // A container that no longer exists has stopped; an engine that does not answer says nothing.
      return (err as { statusCode?: number }).statusCode === 404 ? 'stopped' : 'unknown';
    }
  }
}

function sizeKey(size: { cols: number; rows: number }): string {
  return `${size.cols}x${size.rows}`;
}

const OCI_FAILURE = Buffer.from('OCI runtime exec failed');

/** The runtime's own error line, when the process could not even start. */
function runtimeFailureOf(data: Uint8Array): string | undefined {
  const head = Buffer.from(data.buffer, data.byteOffset, Math.min(data.byteLength, 512));
  return head.subarray(0, OCI_FAILURE.length).equals(OCI_FAILURE) ? head.toString('utf8') : undefined;
}

/**
 * Docker reports 126 for every exec that cannot start. Shells, ssh and `docker run` say 127
 * when the command does not exist and 126 when it cannot be run; so does Entry, from the
 * runtime's message (the same rule the docker CLI applies to `docker run`).
 */
export function commandExitCode(code: number, runtimeFailure: string | undefined): number {
  // The command itself, not the working directory (`chdir to cwd … no such file or directory`,
  // which docker exec reports as 126 too, a directory that cannot be entered).
  if (code === 126 && runtimeFailure && /exec: "[^"]*": (executable file not found|stat [^:]*: no such file or directory)/.test(runtimeFailure)) return 127;
  return code;
}
