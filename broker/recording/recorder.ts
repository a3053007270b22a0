import { mkdirSync } from 'node:fs';
import { mkdir, opendir, stat, unlink, utimes } from 'node:fs/promises';
import { join } from 'node:path';
import type { Logger } from '../log.js';
import { maskCredentials } from '../mask.js';
import type { SessionInfo, SessionObserver, SessionTap } from '../session/observer.js';
import { hasSessionIdShape } from '../../proto/session-id.js';
import { AsciicastWriter } from './asciicast-writer.js';
import { MAX_ALL_IN_FLIGHT_BYTES } from './pending-bytes.js';
import { allBytesInFlight, holdForDisk } from './write-queue.js';

export interface RecorderOptions {
  dir: string;
  recordInput: boolean;
  maxBytes: number;
  retentionDays: number;
}

/** How often old recordings are swept. */
const SWEEP_INTERVAL_MS = 6 * 3600_000;
/**
 * How long a stopping broker waits for its recordings to be written out: the last half second of
 * events and what the disk has not taken yet. A disk stalled past it loses them, not the exit.
 */
export const RECORDINGS_CLOSE_WAIT_MS = 5_000;

/**
 * Most a session holds for its recording while the file is being opened. Opening takes about a
 * millisecond; even output at 100 MB/s (a `cat` of a big file) fills only ~100 KiB of it then,
 * so 1 MiB leaves ten times that for a slow open. Past it (an open hung on a stalled disk) the
 * rest is dropped and the recording says it is truncated: neither the session waits nor memory
 * grows, per session. What all sessions hold so counts with the bytes queued for the disk, against
 * MAX_ALL_IN_FLIGHT_BYTES: a stalled disk stalls every open at once.
 */
export const MAX_EARLY_BYTES = 1024 * 1024;
/** What one waiting event costs beyond its bytes (the closure, the queue slot): a resize counts too. */
const EARLY_EVENT_COST = 64;

/** Records every session as `<dir>/<session-id>.cast` (asciicast v2). */
export class Recorder implements SessionObserver {
  private readonly timer: NodeJS.Timeout;
  private sweeping: Promise<void> | undefined;
  /** Recordings of ended sessions still being written out. */
  private readonly closing = new Set<Promise<void>>();
  /** Paths of the recordings of sessions still running (see sweepOnce). */
  private readonly open = new Set<string>();

  constructor(
    private readonly options: RecorderOptions,
    private readonly log: Logger,
  ) {
    mkdirSync(options.dir, { recursive: true, mode: 0o750 });
    this.sweepInBackground();
    this.timer = setInterval(() => this.sweepInBackground(), SWEEP_INTERVAL_MS);
    this.timer.unref();
  }

  pathOf(sessionId: string): string | undefined {
    return hasSessionIdShape(sessionId) ? join(this.options.dir, `${sessionId}.cast`) : undefined;
  }

  started(info: SessionInfo): SessionTap {
    const onError = (err: unknown) => this.log.warn('recording write failed', { session: info.id, error: err as Error });
    // Events before the file is open wait in a small, bounded queue (opening takes a millisecond).
    let writer: AsciicastWriter | undefined;
    let failed = false;
    const early: Array<(w: AsciicastWriter) => void> = [];
    let earlyBytes = 0;
    let dropped = 0;
    const run = (f: (w: AsciicastWriter) => void, bytes = 0) => {
      if (writer) return f(writer);
      if (failed) return;
      const cost = bytes + EARLY_EVENT_COST;
      if (dropped > 0 || earlyBytes + cost > MAX_EARLY_BYTES || allBytesInFlight() + cost > MAX_ALL_IN_FLIGHT_BYTES) {
        if (dropped++ === 0) this.log.warn('recording truncated: its file is slow to open', { session: info.id, keptBytes: earlyBytes });
        return;
      }
      earlyBytes += cost;
      holdForDisk(cost);
      early.push(f);
    };
    const release = () => {
      holdForDisk(-earlyBytes);
      earlyBytes = 0;
    };
    const header = {
      width: info.cols,
      height: info.rows,
      timestamp: Math.floor(info.startedAt / 1000),
      // As the audit trail keeps it: a token on the command line stays out of the file.
      ...(info.argv ? { command: maskCredentials(info.argv.join(' ')) } : {}),
      title: `${info.user}@${info.app}/${info.proc}/${info.instance}`,
      env: { TERM: info.term || 'xterm-256color', SHELL: info.argv ? '' : '/bin/bash' },
    };
    const path = this.pathOf(info.id)!;
    this.open.add(path);
    const create = () => AsciicastWriter.create(path, header, this.options.maxBytes, onError);
    const opened = create()
      .catch((err: unknown) => {
        // The folder went away under the broker: make it again, once.
        if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
        mkdirSync(this.options.dir, { recursive: true, mode: 0o750 });
        return create();
      })
      .then(
        (w) => {
          writer = w;
          // Released first: the writer counts what it is handed against the same cap.
          release();
          for (const f of early.splice(0)) f(w);
          if (dropped > 0) w.marker(`entry: recording truncated: ${dropped} events lost while the file was being opened`);
          return w;
        },
        (err: unknown) => {
          failed = true;
          release();
          early.length = 0;
          onError(err);
          return undefined;
        },
      );
    return {
      // Once the file is open, output goes straight to the writer: no closure per chunk.
      output: (stream, data) => (writer ? writer.output(stream, data) : run((w) => w.output(stream, data), data.length)),
      resize: (cols, rows) => run((w) => w.resize(cols, rows)),
      ...(this.options.recordInput ? { input: (data: Uint8Array) => run((w) => w.input(data), data.length) } : {}),
      ended: () => {
        const written = opened.then((w) => w?.close()).catch(onError);
        this.closing.add(written);
        void written.finally(() => {
          this.closing.delete(written);
          this.open.delete(path);
        });
      },
    };
  }

  private sweepInBackground(): void {
    this.sweeping ??= this.sweep().finally(() => {
      this.sweeping = undefined;
    });
  }

  /**
   * Deletes recordings older than the retention period, a file at a time without holding up the
   * sessions (a folder can hold hundreds of thousands). Never rejects: it runs from a timer. A
   * folder that went away is made again; other failures are logged and the next sweep tries again.
   */
  async sweep(): Promise<void> {
    await this.touchOpen();
    if (this.options.retentionDays <= 0) return;
    try {
      await this.sweepOnce();
    } catch (err) {
      const missing = (err as NodeJS.ErrnoException).code === 'ENOENT';
      this.log.warn(missing ? 'recordings folder missing: made again' : 'sweeping old recordings failed', { dir: this.options.dir, error: err as Error });
      if (!missing) return;
      await mkdir(this.options.dir, { recursive: true, mode: 0o750 }).catch((mkdirError: unknown) => this.log.warn('recordings folder could not be made', { dir: this.options.dir, error: mkdirError as Error }));
    }
  }

  /**
   * A running session's recording may go unwritten for days (a quiet shell, one past its size
   * cap): it is touched at each sweep, kept or not here, so that no broker sharing the folder
   * (with a retention of its own) takes it for old.
   */
  private async touchOpen(): Promise<void> {
    const now = new Date();
    await Promise.all([...this.open].map((file) => utimes(file, now, now).catch(() => undefined)));
  }

  private async sweepOnce(): Promise<void> {
    const cutoff = Date.now() - this.options.retentionDays * 86_400_000;
    let removed = 0;
    for await (const entry of await opendir(this.options.dir)) {
      if (!entry.name.endsWith('.cast')) continue;
      const file = join(this.options.dir, entry.name);
      if (this.open.has(file)) continue;
      try {
        if ((await stat(file)).mtimeMs < cutoff) {
          await unlink(file);
          removed++;
        }
      } catch {
        // Gone meanwhile.
      }
    }
    if (removed > 0) this.log.info('old recordings removed', { removed, retentionDays: this.options.retentionDays });
  }

  /** Stops sweeping; resolves once the recordings of ended sessions are written out (or RECORDINGS_CLOSE_WAIT_MS pass). */
  async close(): Promise<void> {
    clearInterval(this.timer);
    let timer: NodeJS.Timeout | undefined;
    const waited = new Promise<void>((resolve) => {
      timer = setTimeout(resolve, RECORDINGS_CLOSE_WAIT_MS);
      timer.unref();
    });
    await Promise.race([Promise.all([this.sweeping, ...this.closing]), waited]);
    clearTimeout(timer);
  }
}
