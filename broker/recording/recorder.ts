import { mkdirSync, readdirSync, statSync, unlinkSync } from 'node:fs';
import { join } from 'node:path';
import type { Logger } from '../log.js';
import type { SessionInfo, SessionObserver, SessionTap } from '../session/observer.js';
import { hasSessionIdShape } from '../session/session-id.js';
import { AsciicastWriter } from './asciicast-writer.js';

export interface RecorderOptions {
  dir: string;
  recordInput: boolean;
  maxBytes: number;
  retentionDays: number;
}

/** How often old recordings are swept. */
const SWEEP_INTERVAL_MS = 6 * 3600_000;

/**
 * Most a session holds for its recording while the file is being opened. Opening takes about a
 * millisecond; even output at 100 MB/s (a `cat` of a big file) fills only ~100 KiB of it then,
 * so 1 MiB leaves ten times that for a slow open. Past it (an open hung on a stalled disk) the
 * rest is dropped and the recording says it is truncated: neither the session waits nor memory
 * grows, per session.
 */
export const MAX_EARLY_BYTES = 1024 * 1024;
/** What one waiting event costs beyond its bytes (the closure, the queue slot): a resize counts too. */
const EARLY_EVENT_COST = 64;

/** Records every session as `<dir>/<session-id>.cast` (asciicast v2). */
export class Recorder implements SessionObserver {
  private readonly timer: NodeJS.Timeout;

  constructor(
    private readonly options: RecorderOptions,
    private readonly log: Logger,
  ) {
    mkdirSync(options.dir, { recursive: true, mode: 0o750 });
    this.sweep();
    this.timer = setInterval(() => this.sweep(), SWEEP_INTERVAL_MS);
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
      if (dropped > 0 || earlyBytes + cost > MAX_EARLY_BYTES) {
        if (dropped++ === 0) this.log.warn('recording truncated: its file is slow to open', { session: info.id, keptBytes: earlyBytes });
        return;
      }
      earlyBytes += cost;
      early.push(f);
    };
    const header = {
      width: info.cols,
      height: info.rows,
      timestamp: Math.floor(info.startedAt / 1000),
      ...(info.argv ? { command: info.argv.join(' ') } : {}),
      title: `${info.user}@${info.app}/${info.proc}/${info.instance}`,
      env: { TERM: info.term || 'xterm-256color', SHELL: info.argv ? '' : '/bin/bash' },
    };
    const path = this.pathOf(info.id)!;
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
          for (const f of early.splice(0)) f(w);
          earlyBytes = 0;
          if (dropped > 0) w.marker(`entry: recording truncated: ${dropped} events lost while the file was being opened`);
          return w;
        },
        (err: unknown) => {
          failed = true;
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
      ended: () => void opened.then((w) => w?.close()),
    };
  }

  /**
   * Deletes recordings older than the retention period. Never throws: it runs from a timer, where
   * a throw would end the broker. A folder that went away is made again; other failures are
   * logged and the next sweep tries again.
   */
  sweep(): void {
    if (this.options.retentionDays <= 0) return;
    try {
      this.sweepOnce();
    } catch (err) {
      const missing = (err as NodeJS.ErrnoException).code === 'ENOENT';
      this.log.warn(missing ? 'recordings folder missing: made again' : 'sweeping old recordings failed', { dir: this.options.dir, error: err as Error });
      if (!missing) return;
      try {
        mkdirSync(this.options.dir, { recursive: true, mode: 0o750 });
      } catch (mkdirError) {
        this.log.warn('recordings folder could not be made', { dir: this.options.dir, error: mkdirError as Error });
      }
    }
  }

  private sweepOnce(): void {
    const cutoff = Date.now() - this.options.retentionDays * 86_400_000;
    let removed = 0;
    for (const name of readdirSync(this.options.dir)) {
      if (!name.endsWith('.cast')) continue;
      const file = join(this.options.dir, name);
      try {
        if (statSync(file).mtimeMs < cutoff) {
          unlinkSync(file);
          removed++;
        }
      } catch {
        // Gone meanwhile.
      }
    }
    if (removed > 0) this.log.info('old recordings removed', { removed, retentionDays: this.options.retentionDays });
  }

  close(): void {
    clearInterval(this.timer);
  }
}
