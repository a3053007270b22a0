import { mkdirSync, readdirSync, statSync, unlinkSync } from 'node:fs';
import { join } from 'node:path';
import type { Logger } from '../log.js';
import type { SessionInfo, SessionObserver, SessionTap } from '../session/observer.js';
import { AsciicastWriter } from './asciicast-writer.js';

export interface RecorderOptions {
  dir: string;
  recordInput: boolean;
  maxBytes: number;
  retentionDays: number;
}

/** How often old recordings are swept. */
const SWEEP_INTERVAL_MS = 6 * 3600_000;

const SESSION_ID = /^[A-Za-z0-9-]{1,64}$/;

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
    return SESSION_ID.test(sessionId) ? join(this.options.dir, `${sessionId}.cast`) : undefined;
  }

  started(info: SessionInfo): SessionTap {
    const onError = (err: unknown) => this.log.warn('recording write failed', { session: info.id, error: err as Error });
    // Events before the file is open wait in a small queue (opening takes a millisecond).
    let writer: AsciicastWriter | undefined;
    let failed = false;
    const early: Array<(w: AsciicastWriter) => void> = [];
    const run = (f: (w: AsciicastWriter) => void) => {
      if (writer) f(writer);
      else if (!failed) early.push(f);
    };
    const opened = AsciicastWriter.create(
      this.pathOf(info.id)!,
      {
        width: info.cols,
        height: info.rows,
        timestamp: Math.floor(info.startedAt / 1000),
        ...(info.argv ? { command: info.argv.join(' ') } : {}),
        title: `${info.user}@${info.app}/${info.proc}/${info.instance}`,
        env: { TERM: info.term || 'xterm-256color', SHELL: info.argv ? '' : '/bin/bash' },
      },
      this.options.maxBytes,
      onError,
    ).then(
      (w) => {
        writer = w;
        for (const f of early.splice(0)) f(w);
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
      output: (stream, data) => (writer ? writer.output(stream, data) : run((w) => w.output(stream, data))),
      resize: (cols, rows) => run((w) => w.resize(cols, rows)),
      ...(this.options.recordInput ? { input: (data: Uint8Array) => run((w) => w.input(data)) } : {}),
      ended: () => void opened.then((w) => w?.close()),
    };
  }

  /** Deletes recordings older than the retention period. */
  sweep(): void {
    if (this.options.retentionDays <= 0) return;
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
