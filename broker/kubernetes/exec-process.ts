import type WebSocket from 'ws';
import type { ExecSpec } from '../backend/backend.js';
import { HELD_CHUNK_COST_BYTES } from '../config/limits.js';
import { EntryError, ignoreError } from '../errors.js';
import type { OutputStream, ProcessEvents, ProcessSide } from '../session/types.js';
import { StdinEncoder, wrapCommand } from './exec-command.js';
import { PumpEndWatch, pumpEndMark } from './pump-end.js';
import { CHANNEL, channelFrame, type ExecStatus, type ExecTarget, openExecSocket, parseStatus, unanswered, V4, V5 } from './exec-socket.js';
import type { KubeClient } from './kube-client.js';
import { withOpenCleanUp } from '../backend/open-clean-up.js';
import { withTimeout } from '../backend/with-timeout.js';
import { sessionMark } from '../backend/session-mark.js';
import { SignalLane, signalName } from '../backend/signal-lane.js';
import { TtyInputEnd } from '../backend/tty-input-end.js';
import { POD_STOP_SETTLE_MS, type PodFate, settledFate } from './pod-fate.js';
import type { PodReaper } from './pod-reaper.js';
import { StdinJoin } from './stdin-join.js';

/** Stdin queued on the exec socket before the client is asked to wait, and when it may go on. */
const STDIN_HIGH_WATER_BYTES = 1024 * 1024;
const STDIN_LOW_WATER_BYTES = 256 * 1024;
/**
 * Through the stdin pump, the least time from one stdin message to the next: each message runs a
 * process in the pod (a dd, 3 ms under BusyBox's sh and 9 ms under dash with coreutils' dd on a
 * busy machine here), and small writes coming faster than that are joined (see StdinJoin) rather
 * than queued for the pod one process each. A write after a pause, or after output, goes at once.
 */
export const PUMP_MESSAGE_GAP_MS = 10;
/**
 * A resize waits while this much is queued towards the apiserver, and only the last one asked
 * for meanwhile is sent: a client can send WINCH messages far faster than the kubelet applies
 * them, and nothing else would bound what they queue. Above the stdin high water: a resize never
 * waits behind a stdin window of its own session that is merely full.
 */
const RESIZE_WAIT_BYTES = 2 * STDIN_HIGH_WATER_BYTES;
/**
 * A session ended this soon after its upgrade, its command silent so far, may end before the
 * kubelet has started the command: its clean-up looks again a moment later (see PodReaper).
 */
const LATE_START_WINDOW_MS = 5_000;
const OCI_FAILURE = 'OCI runtime exec failed';
/**
 * The exit of a command killed by SIGKILL. A container that stops (its first process exits, or it
 * is restarted) takes every process left in its PID namespace with SIGKILL, so this is the one
 * status such a command ends with; other signal deaths are the command's own unless the pod is
 * being deleted (see `result`).
 */
const KILLED_EXIT = 128 + 9;
/**
 * The most output held while it may be the runtime's failure. Docker writes that failure as one
 * line ending in CRLF, `OCI runtime exec failed: exec failed: <runc's cause chain>: exec:
 * "/bin/sh": stat /bin/sh: no such file or directory: unknown`, and nothing else: the command is
 * always the wrapper's /bin/sh, so the line is about 200 bytes. 4 KiB leaves room for a longer
 * cause chain; output past it (or past its first line) is a command's, and is passed on.
 */
const SNIFF_MAX_BYTES = 4 * 1024;
/**
 * Output shorter than the failure's first words is held at most this long: the runtime writes
 * its line at once, so pieces of it arrive within a read or two; a command's own `O` (a prompt,
 * a progress dot, a key's echo) must not wait for its next output.
 */
const SNIFF_PREFIX_WAIT_MS = 50;
/**
 * How long stderr that may be the start of the pump's end mark waits for the rest of it: the
 * wrapper writes the mark at once, so only a read that cut it waits, and the next read follows.
 */
const PUMP_MARK_WAIT_MS = 50;
/**
 * How long an exec may take to end after its command told its end through the pump (see
 * pump-end.ts) before the session ends with the status it told: the wrapper reads what stdin was
 * in flight (up to the 1 MiB high-water mark, some 16 dd runs, under a second on a busy node),
 * and only a process the command left holding its stdin unread keeps the pump, and the exec,
 * from ending; it goes with the session's other leftovers.
 */
const PUMP_END_WAIT_MS = 3_000;
/**
 * The kubelet applies a resize through the runtime (an Engine API call for dockershim) while
 * input goes straight to the terminal, so input sent right after a resize can overtake it. Input
 * is held this long after each resize, so a command typed after it sees the new size.
 */
const RESIZE_SETTLE_MS = 50;
/**
 * A resize sent before the exec runs is dropped by the runtime (docker/cli#3573). One sent before
 * the first output is sent again when output shows the process running (or after this long), and
 * input waits for that.
 */
const STARTUP_RESIZE_WAIT_MS = 1_000;

export interface KubeExecOptions extends ExecTarget {
  spec: ExecSpec;
  /** What became of the pod's container: asked when an exec ends without a status, or killed. */
  podFate(): Promise<PodFate>;
  /** Why the container does not run, as the pod's status last said; '' while it runs. */
  downReason?: string;
}

export type { PodFate } from './pod-fate.js';

/**
 * What each cluster's apiserver negotiated last, by cluster: a server known to speak v5 closes
 * stdin itself, and needs no stdin pump (see exec-command.ts).
 */
const negotiated = new WeakMap<KubeClient, string>();

/**
 * A `pods/exec` WebSocket as the relay's process side. Output is read from channels 1 and 2
 * (paused and resumed with the relay), stdin written to channel 0 (small writes joined, see
 * StdinJoin; congested past a high-water mark of what waits), resizes sent on channel 4; the
 * exit code comes from the status channel, and the process side ends only when the socket has
 * closed, after every output message has been handed on.
 */
export class KubeExecProcess implements ProcessSide {
  private events: ProcessEvents | undefined;
  private early: Buffer[] = [];
  private statusBytes: Buffer[] = [];
  private finished = false;
  /** The end of the session's processes, once begun (see terminate). */
  private ending: Promise<void> | undefined;
  private inputClosed = false;
  private inputCongested = false;
  /** Stdin messages ws has not written yet: each is a queue entry (see `queuedInput`). */
  private pendingStdin = 0;
  private appliedSize = '';
  private wantedSize: { cols: number; rows: number } | undefined;
  private readonly openedAt = performance.now();
  /** A size that waits for the queue to go down (see RESIZE_WAIT_BYTES). */
  private sizeWaiting = false;
  /** Input held while a resize settles (see RESIZE_SETTLE_MS); `endInput` waits behind it. */
  private held: Uint8Array[] | undefined;
  private heldEnd = false;
  private settleTimer: NodeJS.Timeout | undefined;
  private sawOutput = false;
  /** A resize came before any output: send it again once the process runs. */
  private resendOnOutput = false;
  private startupTimer: NodeJS.Timeout | undefined;
  /** The first output chunks, held while they may be the runtime's "cannot exec /bin/sh". */
  private sniff: { stream: OutputStream; data: Buffer }[] | undefined = [];
  private sniffBytes = 0;
  private sniffTimer: NodeJS.Timeout | undefined;
  private closedEarly: number | undefined;
  private readonly encoder: StdinEncoder | undefined;
  /** The wrapper's word that the command fed through the pump has ended (see pump-end.ts). */
  private readonly pumpEnd: PumpEndWatch | undefined;
  private pumpMarkTimer: NodeJS.Timeout | undefined;
  private pumpEndTimer: NodeJS.Timeout | undefined;
  private readonly stdin: StdinJoin;
  private readonly inputEnd = new TtyInputEnd();
  /** Whether a SIGKILL the client sent reached any of the session's processes (see stoppedWithPod). */
  private clientKill: Promise<boolean> | undefined;
  /** The client's signals: each is a pods/exec, so at most one at a time (see SignalLane). */
  private readonly signals = new SignalLane(async (sig) => {
    if (this.finished) return;
    const delivered = this.reaper.signal(this.o, this.o.spec.sessionId, sig);
    if (sig === 'KILL') this.clientKill = delivered.then((found) => found > 0, () => false);
    await delivered;
  });

  private constructor(
    private readonly client: KubeClient,
    private readonly reaper: PodReaper,
    private readonly o: KubeExecOptions,
    private readonly ws: WebSocket,
    pump: boolean,
  ) {
    this.encoder = pump ? new StdinEncoder() : undefined;
    this.pumpEnd = pump ? new PumpEndWatch(pumpEndMark(o.spec.sessionId)) : undefined;
    this.stdin = new StdinJoin({
      gapMs: pump ? PUMP_MESSAGE_GAP_MS : 0,
      busy: () => this.pendingStdin > 0,
      send: (data) => {
        this.pendingStdin++;
        this.ws.send(channelFrame(CHANNEL.stdin, data, this.encoder?.header(data.byteLength)), { binary: true }, this.afterStdin);
      },
    });
  }

  get protocol(): string {
    return this.ws.protocol;
  }

  /** Starts the exec. Rejects with an EntryError when it cannot start. */
  static async open(client: KubeClient, reaper: PodReaper, o: KubeExecOptions): Promise<KubeExecProcess> {
    const spec = o.spec;
    if (spec.user) throw new EntryError('ENTRY_BAD_REQUEST', `Kubernetes exec cannot run as another user (asked for ${JSON.stringify(spec.user)}): leave user empty`);
    const pump = !spec.tty && negotiated.get(client) !== V5;
    const command = wrapCommand({ cmd: spec.cmd, env: [...spec.env, sessionMark(spec.sessionId)], workdir: spec.workdir, stdinPump: pump, size: spec.tty ? spec.size : undefined });
    const ws = await openExecSocket(client, o, { command, tty: spec.tty, stdin: true, timeoutMs: spec.openTimeoutMs, downReason: o.downReason }).catch((err: unknown) => {
      // The kubelet may have started the command and only the upgrade's answer been lost.
      throw unanswered(err) ? withOpenCleanUp(err as EntryError, reaper.terminate(o, spec.sessionId, spec.terminateGraceMs, true)) : err;
    });
    negotiated.set(client, ws.protocol);
    const p = new KubeExecProcess(client, reaper, o, ws, pump);
    p.listen();
    // The wrapper sets the first size itself; the kubelet is told too, for its own record.
    if (spec.tty && spec.size) p.sendSize(spec.size.cols, spec.size.rows);
    return p;
  }

  /** Listens from the start: what arrives before `start` is kept for it. */
  private listen(): void {
    const ws = this.ws;
    ws.on('message', (data: Buffer) => {
      if (this.events) this.message(data);
      else this.early.push(data);
    });
    ws.on('error', ignoreError);
    ws.on('close', (code: number) => {
      if (this.events) void this.finish(code);
      else this.closedEarly = code;
    });
  }

  start(events: ProcessEvents): void {
    this.events = events;
    const early = this.early;
    this.early = [];
    for (const m of early) this.message(m);
    if (this.closedEarly !== undefined) void this.finish(this.closedEarly);
    else this.ws.resume();
  }

  private message(data: Buffer): void {
    if (data.length < 2 || this.finished) return;
    const channel = data[0];
    let body = data.subarray(1);
    if (channel === CHANNEL.stderr && this.pumpEnd) {
      const told = this.pumpEnd.exitCode !== undefined;
      body = this.pumpEnd.scan(body);
      if (!told && this.pumpEnd.exitCode !== undefined) this.commandEnded(this.pumpEnd.exitCode);
      // A wait for the rest of what may be the mark, from this chunk's tail on.
      clearTimeout(this.pumpMarkTimer);
      this.pumpMarkTimer = this.pumpEnd.holding ? setTimeout(() => this.releasePumpMark(), PUMP_MARK_WAIT_MS) : undefined;
      if (body.length === 0) return;
    }
    this.channelMessage(channel, body);
  }

  /** A message on one of the exec's channels: output, or the status. */
  private channelMessage(channel: number | undefined, body: Buffer): void {
    if (channel === CHANNEL.stdout || channel === CHANNEL.stderr) {
      const stream: OutputStream = channel === CHANNEL.stdout ? 'stdout' : 'stderr';
      this.stdin.answered();
      if (!this.sawOutput) {
        this.sawOutput = true;
        if (this.resendOnOutput) this.resendStartupSize();
      }
      if (!this.sniff) {
        this.events!.output(stream, body);
        return;
      }
      // Held while the output so far may be the runtime's own failure line (see `result`).
      this.sniff.push({ stream, data: body });
      this.sniffBytes += body.length;
      if (!this.mayBeRuntimeFailure()) this.flushSniff();
      else if (this.sniffBytes < OCI_FAILURE.length) this.sniffTimer ??= setTimeout(() => this.flushShortSniff(), SNIFF_PREFIX_WAIT_MS);
    } else if (channel === CHANNEL.status) {
      this.statusBytes.push(Buffer.from(body));
      // The status is the exec's last message: the kubelet writes it once the runtime has
      // returned, after the last output, and the apiserver passes the stream on in order. The
      // exit code goes out now rather than after the close handshake (1–2 ms more), unless the
      // status is not whole yet.
      if (wholeStatus(this.statusBytes)) {
        void this.finish(1000);
        this.ws.close(1000);
      }
    }
  }

  /**
   * The command fed through the pump has ended: what the client sends from now on has no reader.
   * Nothing more is sent but the pump's end, twice (the pump may take the first, the wrapper
   * reads to the second), so that the kubelet has read all stdin when the exec ends. An exec that
   * does not end soon after ends the session with the status the wrapper told.
   */
  private commandEnded(exitCode: number): void {
    this.pumpEndTimer = setTimeout(() => {
      void this.finish(1000, exitCode);
      this.ws.terminate();
    }, PUMP_END_WAIT_MS);
    this.inputClosed = true;
    this.stdin.close();
    this.ws.send(channelFrame(CHANNEL.stdin, Buffer.concat([this.encoder!.end(), this.encoder!.end()])), { binary: true });
    if (this.inputCongested) {
      this.inputCongested = false;
      this.events?.drain();
    }
  }

  /** Stderr that waited as a possible start of the pump's end mark, given up on: it is output. */
  private releasePumpMark(): void {
    this.pumpMarkTimer = undefined;
    const tail = this.pumpEnd?.release();
    if (tail?.length && !this.finished) this.channelMessage(CHANNEL.stderr, tail);
  }

  /**
   * Whether the output so far may still be the runtime's failure: a prefix of its text, or one
   * line starting with it (nothing after the line's end), within SNIFF_MAX_BYTES.
   */
  private mayBeRuntimeFailure(): boolean {
    if (this.sniffBytes > SNIFF_MAX_BYTES) return false;
    const held = Buffer.concat(this.sniff!.map((c) => c.data));
    if (!OCI_FAILURE.startsWith(held.toString('latin1', 0, OCI_FAILURE.length))) return false;
    const eol = held.indexOf(0x0a);
    return eol === -1 || eol === held.length - 1;
  }

  /** Passes on held output that has not grown into the failure's first words in time. */
  private flushShortSniff(): void {
    this.sniffTimer = undefined;
    if (this.sniff && !this.finished && this.sniffBytes < OCI_FAILURE.length) this.flushSniff();
  }

  private flushSniff(): void {
    clearTimeout(this.sniffTimer);
    const held = this.sniff ?? [];
    this.sniff = undefined;
    for (const c of held) this.events!.output(c.stream, c.data);
  }

  /**
   * At the end: the runtime's failure text when that is all the output was, else undefined (and
   * the output handed on). An exec that never started has not succeeded (Docker gives it 126),
   * so a command that printed such a line and exited 0 is the command's own output.
   */
  private runtimeFailure(status: ExecStatus | undefined): string | undefined {
    const text = Buffer.concat((this.sniff ?? []).map((c) => c.data)).toString('utf8');
    const succeeded = status !== undefined && 'exitCode' in status && status.exitCode === 0;
    if (text.startsWith(OCI_FAILURE) && !succeeded) {
      this.sniff = undefined;
      return text;
    }
    this.flushSniff();
    return undefined;
  }

  write(data: Uint8Array): boolean {
    if (this.finished || this.inputClosed) return true;
    this.inputEnd.wrote(data);
    if (this.held) {
      // Keep the client's order behind a settling resize; the caller waits for `drain`.
      this.held.push(data);
      return false;
    }
    return this.send(data);
  }

  private send(data: Uint8Array): boolean {
    this.stdin.write(data);
    if (this.queuedInput() < STDIN_HIGH_WATER_BYTES) return true;
    this.inputCongested = true;
    return false;
  }

  /**
   * What waits towards the apiserver, each stdin message counted with its objects: by bytes
   * alone, a client sending one byte a frame queued some 130,000 messages under the bound.
   */
  private queuedInput(): number {
    return this.ws.bufferedAmount + this.pendingStdin * HELD_CHUNK_COST_BYTES + this.stdin.heldBytes;
  }

  private readonly afterStdin = (): void => {
    this.pendingStdin--;
    this.stdin.written();
    this.afterSend();
  };

  private readonly afterSend = (): void => {
    if (this.sizeWaiting && this.ws.bufferedAmount < RESIZE_WAIT_BYTES) {
      this.sizeWaiting = false;
      const size = this.wantedSize!;
      this.sendSize(size.cols, size.rows);
    }
    if (this.inputCongested && this.queuedInput() < STDIN_LOW_WATER_BYTES) {
      this.inputCongested = false;
      this.events?.drain();
    }
  };

  endInput(): void {
    if (this.finished || this.inputClosed) return;
    if (this.held) {
      this.heldEnd = true;
      return;
    }
    this.stdin.flush();
    if (this.o.spec.tty) {
      // A terminal's end of input is EOT, which the line discipline turns into EOF; the terminal
      // stays open (as with Docker, and on v5 too: closing stdin would hang up the terminal).
      this.ws.send(channelFrame(CHANNEL.stdin, this.inputEnd.bytes()), { binary: true });
      return;
    }
    this.inputClosed = true;
    if (this.encoder) {
      // The pump's end: a chunk of length 0.
      this.ws.send(channelFrame(CHANNEL.stdin, this.encoder.end()), { binary: true });
    } else if (this.ws.protocol === V5) {
      this.ws.send(Buffer.from([CHANNEL.close, CHANNEL.stdin]), { binary: true });
    } else {
      // v4 cannot close stdin, and this exec was started without the pump: say so rather than hang.
      void this.fail(new EntryError('ENTRY_EXEC_FAILED', `cluster ${this.client.cluster} cannot close stdin of a command without a TTY (${V4}; Kubernetes 1.30+ speaks ${V5})`));
    }
  }

  resize(cols: number, rows: number): void {
    if (!this.o.spec.tty || this.finished) return;
    if (!this.sendSize(cols, rows)) return;
    if (!this.sawOutput && !this.resendOnOutput) {
      this.resendOnOutput = true;
      this.startupTimer = setTimeout(() => this.resendStartupSize(), STARTUP_RESIZE_WAIT_MS);
    }
    this.hold();
  }

  /** Sends the size unless it is the one last sent (or `force`); whether it was sent. */
  private sendSize(cols: number, rows: number, force = false): boolean {
    this.wantedSize = { cols, rows };
    const key = `${cols}x${rows}`;
    if (key === this.appliedSize && !force) return false;
    if (this.ws.bufferedAmount >= RESIZE_WAIT_BYTES) {
      // Sent by afterSend once the queue goes down, as the latest size then.
      this.sizeWaiting = true;
      return false;
    }
    this.appliedSize = key;
    // Keystrokes waiting to be joined came before this size: they go first, in the client's order.
    this.stdin.flush();
    this.ws.send(channelFrame(CHANNEL.resize, Buffer.from(JSON.stringify({ Width: cols, Height: rows }))), { binary: true }, this.afterSend);
    return true;
  }

  private resendStartupSize(): void {
    clearTimeout(this.startupTimer);
    if (!this.resendOnOutput || this.finished) return;
    this.resendOnOutput = false;
    const size = this.wantedSize;
    if (size) this.sendSize(size.cols, size.rows, true);
    this.hold();
  }

  /** Holds input for RESIZE_SETTLE_MS (until the process runs, for a resize before that). */
  private hold(): void {
    this.held ??= [];
    clearTimeout(this.settleTimer);
    this.settleTimer = setTimeout(() => this.release(), RESIZE_SETTLE_MS);
  }

  private release(): void {
    if (this.resendOnOutput) return;
    const held = this.held ?? [];
    this.held = undefined;
    if (this.finished) return;
    let ok = true;
    for (const data of held) ok = this.send(data);
    if (this.heldEnd) {
      this.heldEnd = false;
      this.endInput();
    }
    // Resume the client now, or (congested) when the socket's queue has gone down.
    if (ok) this.events?.drain();
  }

  signal(name: string): Promise<void> | undefined {
    if (this.finished) return undefined;
    return this.signals.send(signalName(name));
  }

  pauseOutput(): void {
    this.ws.pause();
  }

  resumeOutput(): void {
    if (this.events) this.ws.resume();
  }

  /** Ends the session's processes, once: the relay asks again after a failure (see fail) and waits on the same end. */
  terminate(): Promise<void> {
    this.ending ??= (async () => {
      this.finished = true;
      this.clearTimers();
      this.signals.close();
      this.stdin.close();
      this.ws.terminate();
      await this.reaper.terminate(this.o, this.o.spec.sessionId, this.o.spec.terminateGraceMs, this.mayStartLate());
    })();
    return this.ending;
  }

  /** Whether the command may not have started yet: nothing heard from it, shortly after the upgrade. */
  private mayStartLate(): boolean {
    return !this.sawOutput && performance.now() - this.openedAt < LATE_START_WINDOW_MS;
  }

  private clearTimers(): void {
    clearTimeout(this.settleTimer);
    clearTimeout(this.startupTimer);
    clearTimeout(this.sniffTimer);
    clearTimeout(this.pumpMarkTimer);
    clearTimeout(this.pumpEndTimer);
  }

  /** Ends the process side with an error, ending the session's processes first. */
  private async fail(error: EntryError): Promise<void> {
    if (this.finished) return;
    // Its failure is the relay's to report: it asks terminate() once the end is told, and gets this one.
    await this.terminate().catch(() => undefined);
    this.events?.end({ error });
  }

  /** `told`: the status the pump's end mark carried, for an exec that did not end after it (see commandEnded). */
  private async finish(closeCode: number, told?: number): Promise<void> {
    if (this.finished) return;
    clearTimeout(this.pumpMarkTimer);
    this.releasePumpMark();
    const status = parseStatus(Buffer.concat(this.statusBytes)) ?? (told === undefined ? undefined : { exitCode: told });
    const runtimeFailure = this.runtimeFailure(status);
    this.finished = true;
    this.clearTimers();
    this.signals.close();
    this.stdin.close();
    this.events!.end(await this.result(status, closeCode, runtimeFailure));
  }

  /**
   * Whether a command that died of a signal went with its pod's container. The apiserver reports
   * a container's end a second or so after it, so the pod is watched that long for it: a
   * SIGKILL (KILLED_EXIT) while it runs or is being deleted, another signal while it is being
   * deleted only. A SIGKILL the client sent that reached the session's processes explains a
   * KILLED_EXIT itself, and the pod is not watched (the status comes before the scan that sent
   * it has answered: its answer is awaited up to POD_STOP_SETTLE_MS; one that found nothing, or
   * came later, leaves the pod watched as for any other SIGKILL).
   *
   * Nor is it watched when the wrapper told the same status through the pump's end mark: the
   * wrapper outlived the command, and a container that stops takes every process in it at once
   * (its PID namespace's end, or the runtime's kill of its whole cgroup), the wrapper with the
   * command; so the command's signal (its own `kill -9 $$`, the OOM killer's pick) was its own.
   */
  private async stoppedWithPod(exitCode: number): Promise<boolean> {
    if (this.pumpEnd?.exitCode === exitCode) return false;
    if (exitCode === KILLED_EXIT && this.clientKill && (await withTimeout(this.clientKill, POD_STOP_SETTLE_MS, 'kill scan').catch(() => false))) return false;
    const waitOn = (f: PodFate) => f === 'deleting' || (f === 'running' && exitCode === KILLED_EXIT);
    return (await settledFate(this.o.podFate, waitOn)) === 'stopped';
  }

  private async result(status: ExecStatus | undefined, closeCode: number, runtimeFailure: string | undefined): Promise<{ exitCode: number } | { error: EntryError }> {
    const where = `${this.o.namespace}/${this.o.pod}`;
    if (runtimeFailure) {
      // The wrapper itself could not start: the image has no /bin/sh (or it is not executable).
      const line = runtimeFailure.trim().split('\n')[0]!.slice(0, 300);
      const noShell = /\/bin\/sh/.test(line) ? `the image of ${where} (container ${this.o.container}) has no /bin/sh, which Entry needs on Kubernetes to set the environment and working directory: ` : '';
      return { error: new EntryError('ENTRY_EXEC_FAILED', `${noShell}${line}`) };
    }
    if (status && 'exitCode' in status) {
      // A signal death when the pod's container stopped is the pod's story, not the command's.
      // A pod being deleted is not enough: its containers run on for their grace period, and the
      // kubelet signals the container's first process only, so the status is the command's own.
      if (status.exitCode > 128 && (await this.stoppedWithPod(status.exitCode))) return { error: new EntryError('ENTRY_CONTAINER_GONE', `pod ${where} stopped`) };
      return { exitCode: status.exitCode };
    }
    // No status: a pod being deleted counts as gone, the kubelet reporting its container's end
    // only after the exec's stream has ended with it; a running one is given time to say it stopped.
    const fate = await settledFate(this.o.podFate, (f) => f === 'running');
    if (fate === 'stopped' || fate === 'deleting') return { error: new EntryError('ENTRY_CONTAINER_GONE', `pod ${where} stopped`) };
    if (status) {
      if (/executable file not found|no such file or directory/i.test(status.failure) && /\/bin\/sh/.test(status.failure)) {
        return { error: new EntryError('ENTRY_EXEC_FAILED', `the image of ${where} (container ${this.o.container}) has no /bin/sh, which Entry needs on Kubernetes: ${status.failure}`) };
      }
      return { error: new EntryError('ENTRY_EXEC_FAILED', `exec in ${where}: ${status.failure}`) };
    }
    // The container runs on, or the cluster cannot say: the link broke. The relay ends the
    // session's processes (the reaper retries until the apiserver answers again).
    return { error: new EntryError('ENTRY_STREAM_LOST', `the exec stream from cluster ${this.client.cluster} ended without an exit status (close code ${closeCode})`) };
  }
}

/** Whether the status bytes so far are one JSON document (a status split over messages is not yet). */
function wholeStatus(parts: Buffer[]): boolean {
  try {
    JSON.parse(Buffer.concat(parts).toString('utf8'));
    return true;
  } catch {
    return false;
  }
}

