import { execFileSync } from 'node:child_process';
import { closeSync, existsSync, mkdtempSync, openSync, readFileSync, rmSync, statSync, utimesSync } from 'node:fs';
import { open } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { createLogger } from '../../broker/log.js';
import { MAX_ALL_IN_FLIGHT_BYTES } from '../../broker/recording/pending-bytes.js';
import { MAX_EARLY_BYTES, Recorder } from '../../broker/recording/recorder.js';
import { allBytesInFlight } from '../../broker/recording/write-queue.js';
import type { SessionInfo } from '../../broker/session/observer.js';

const info = (id: string): SessionInfo => ({
  id,
  user: 'alice',
  source: '127.0.0.1',
  app: 'shop',
  proc: 'web',
  instance: '1',
  container: 'c0ffee',
  host: 'local',
  argv: null,
  tty: true,
  runAs: '',
  workdir: '',
  term: 'xterm',
  cols: 80,
  rows: 24,
  startedAt: Date.now(),
});

const until = async (check: () => boolean, what: string, ms = 10_000) => {
  const deadline = Date.now() + ms;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out: ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
};

describe('Recorder', () => {
  const dirs: string[] = [];
  const recorders: Recorder[] = [];
  const logs: string[] = [];
  afterEach(async () => {
    for (const r of recorders.splice(0)) await r.close();
    for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
    logs.length = 0;
  });

  function recorder(): { r: Recorder; dir: string } {
    const base = mkdtempSync(join(tmpdir(), 'entry-recorder-'));
    dirs.push(base);
    const dir = join(base, 'recordings');
    const r = new Recorder({ dir, recordInput: false, maxBytes: 64 * 1024 * 1024, retentionDays: 30 }, createLogger('debug', (l) => logs.push(l)));
    recorders.push(r);
    return { r, dir };
  }

  it('keeps going when its folder vanishes: the sweep logs it and makes the folder again', async () => {
    const { r, dir } = recorder();
    rmSync(dir, { recursive: true });
    // The sweep runs from a timer: a rejection there would be unhandled and end the broker.
    await expect(r.sweep()).resolves.toBeUndefined();
    expect(logs.join('\n')).toMatch(/recordings folder missing/);
    expect(existsSync(dir)).toBe(true);
    // And a session after it is recorded again.
    const tap = r.started(info('after-sweep'));
    tap.output!('stdout', Buffer.from('hello\r\n'));
    tap.ended!({ reason: 'exit', durationMs: 1, bytesIn: 0, bytesOut: 7 } as never);
    await until(() => existsSync(join(dir, 'after-sweep.cast')) && readFileSync(join(dir, 'after-sweep.cast'), 'utf8').includes('hello'), 'the recording');
  });

  it("sweeps old recordings away but never a running session's, however long it has been quiet", async () => {
    const { r, dir } = recorder();
    const longAgo = new Date(Date.now() - 40 * 86_400_000);
    const running = r.started(info('quiet-shell'));
    const ended = r.started(info('long-over'));
    await until(() => existsSync(join(dir, 'quiet-shell.cast')) && existsSync(join(dir, 'long-over.cast')), 'the files');
    ended.ended!({ reason: 'exit', durationMs: 1, bytesIn: 0, bytesOut: 0 } as never);
    await r.close();
    // Both untouched for 40 days, past the 30 days kept: only the ended one goes.
    for (const name of ['quiet-shell', 'long-over']) utimesSync(join(dir, `${name}.cast`), longAgo, longAgo);
    await r.sweep();
    expect(existsSync(join(dir, 'long-over.cast'))).toBe(false);
    expect(existsSync(join(dir, 'quiet-shell.cast'))).toBe(true);
    // Touched: a broker sharing the folder does not take it for old either.
    expect(statSync(join(dir, 'quiet-shell.cast')).mtimeMs).toBeGreaterThan(Date.now() - 60_000);
    running.ended!({ reason: 'exit', durationMs: 1, bytesIn: 0, bytesOut: 0 } as never);
  });

  it("keeps a running session's recording fresh with a retention of 0 too, for the brokers it shares the folder with", async () => {
    const base = mkdtempSync(join(tmpdir(), 'entry-recorder-'));
    dirs.push(base);
    const dir = join(base, 'recordings');
    const r = new Recorder({ dir, recordInput: false, maxBytes: 64 * 1024 * 1024, retentionDays: 0 }, createLogger('silent'));
    recorders.push(r);
    const running = r.started(info('keep-all'));
    await until(() => existsSync(join(dir, 'keep-all.cast')), 'the file');
    const longAgo = new Date(Date.now() - 40 * 86_400_000);
    utimesSync(join(dir, 'keep-all.cast'), longAgo, longAgo);
    await r.sweep();
    expect(statSync(join(dir, 'keep-all.cast')).mtimeMs).toBeGreaterThan(Date.now() - 60_000);
    running.ended!({ reason: 'exit', durationMs: 1, bytesIn: 0, bytesOut: 0 } as never);
  });

  it('writes out the recordings of ended sessions before close() resolves', async () => {
    const { r, dir } = recorder();
    const tap = r.started(info('at-stop'));
    await until(() => existsSync(join(dir, 'at-stop.cast')), 'the file');
    for (let i = 0; i < 1000; i++) tap.output!('stdout', Buffer.from(`line ${i}\r\n`));
    tap.ended!({ reason: 'exit', durationMs: 1, bytesIn: 0, bytesOut: 0 } as never);
    await r.close();
    expect(readFileSync(join(dir, 'at-stop.cast'), 'utf8')).toContain('line 999');
  });

  it('records a session even when the folder vanished before it started', async () => {
    const { r, dir } = recorder();
    rmSync(dir, { recursive: true });
    const tap = r.started(info('no-folder'));
    tap.output!('stdout', Buffer.from('still here\r\n'));
    tap.ended!({ reason: 'exit', durationMs: 1, bytesIn: 0, bytesOut: 12 } as never);
    await until(() => existsSync(join(dir, 'no-folder.cast')) && readFileSync(join(dir, 'no-folder.cast'), 'utf8').includes('still here'), 'the recording');
  });

  /**
   * A stalled disk: every thread of libuv's pool (where file opens run) waits on a FIFO that
   * nobody writes, so opening a recording waits behind them. `release` gives each FIFO a writer.
   */
  function stallDisk(fifoDir: string): { release: () => Promise<void>; cleanUp: () => void } {
    const threads = Number(process.env['UV_THREADPOOL_SIZE'] ?? 4);
    const fifos = Array.from({ length: threads }, (_, i) => join(fifoDir, `stall-${i}`));
    execFileSync('mkfifo', fifos);
    const blocked = fifos.map((f) => open(f, 'r'));
    return {
      release: async () => {
        const fds = fifos.map((f) => openSync(f, 'r+'));
        await Promise.all(blocked.map((p) => p.then((h) => h.close())));
        for (const fd of fds) closeSync(fd);
      },
      cleanUp: () => {
        for (const f of fifos) {
          try {
            closeSync(openSync(f, 'r+'));
          } catch {
            // Already released.
          }
        }
      },
    };
  }

  it('holds at most MAX_EARLY_BYTES while the file is slow to open, and marks the recording truncated', async () => {
    const { r, dir } = recorder();
    const disk = stallDisk(dirs[0]!);
    try {
      const tap = r.started(info('stalled'));
      const chunk = 'x'.repeat(4095) + '\n';
      // Eight times the cap, each chunk its own buffer (as a session's output is).
      const chunks = (8 * MAX_EARLY_BYTES) / chunk.length;
      for (let i = 0; i < chunks; i++) tap.output!('stdout', Buffer.from(chunk));
      await new Promise((res) => setTimeout(res, 200));
      expect(existsSync(join(dir, 'stalled.cast')), 'the open really is stalled').toBe(false);
      expect(logs.join('\n')).toMatch(/recording truncated/);
      // The disk comes back: each FIFO gets a writer, and the pool is free again.
      await disk.release();
      // Until the file is open, what comes is still dropped: 'after' is sent once the marker the
      // open writes shows it is (the pool's other work may finish before the open's).
      const file = join(dir, 'stalled.cast');
      await until(() => existsSync(file) && readFileSync(file, 'utf8').includes('recording truncated'), 'the file open');
      tap.output!('stdout', Buffer.from('after\r\n'));
      tap.ended!({ reason: 'exit', durationMs: 1, bytesIn: 0, bytesOut: 0 } as never);
      await until(() => readFileSync(file, 'utf8').includes('after'), 'the recording');
      const lines = readFileSync(file, 'utf8').trim().split('\n').slice(1).map((l) => JSON.parse(l) as [number, string, string]);
      const kept = lines.filter((e) => e[1] === 'o' && e[2] === chunk);
      expect(kept.length).toBeGreaterThan(0);
      expect(kept.length * chunk.length).toBeLessThanOrEqual(MAX_EARLY_BYTES);
      const marker = lines.find((e) => e[1] === 'm' && /truncated/.test(e[2]));
      expect(marker?.[2]).toMatch(new RegExp(`recording truncated: ${chunks - kept.length} events lost`));
      // The gap is where the events were lost: after the kept ones, before what came later.
      expect(lines.indexOf(marker!)).toBeGreaterThan(lines.indexOf(kept[kept.length - 1]!));
      expect(lines.findIndex((e) => e[2] === 'after\r\n')).toBeGreaterThan(lines.indexOf(marker!));
    } finally {
      disk.cleanUp();
    }
  });

  it('holds at most MAX_ALL_IN_FLIGHT_BYTES for all recordings while their files are slow to open', async () => {
    const { r, dir } = recorder();
    const disk = stallDisk(dirs[0]!);
    // Each session under its own cap, all of them together past the broker's.
    const perSession = MAX_EARLY_BYTES / 2;
    const sessions = (2 * MAX_ALL_IN_FLIGHT_BYTES) / perSession;
    const chunk = Buffer.from('x'.repeat(4095) + '\n');
    const taps = [];
    try {
      for (let s = 0; s < sessions; s++) {
        const tap = r.started(info(`stalled-${s}`));
        taps.push(tap);
        for (let i = 0; i < perSession / chunk.length - 1; i++) tap.output!('stdout', chunk);
      }
      expect(existsSync(join(dir, 'stalled-0.cast')), 'the opens really are stalled').toBe(false);
      expect(allBytesInFlight()).toBeLessThanOrEqual(MAX_ALL_IN_FLIGHT_BYTES);
      const truncated = logs.filter((l) => l.includes('recording truncated')).length;
      expect(truncated).toBeGreaterThanOrEqual(sessions / 2 - 1);
      await disk.release();
      for (const tap of taps) tap.ended!({ reason: 'exit', durationMs: 1, bytesIn: 0, bytesOut: 0 } as never);
      // Nothing stays counted once the files are open and written.
      await until(() => allBytesInFlight() === 0, 'every recording written', 30_000);
      await r.close();
      const last = readFileSync(join(dir, `stalled-${sessions - 1}.cast`), 'utf8');
      expect(last).toMatch(/recording truncated: \d+ events lost while the file was being opened/);
    } finally {
      disk.cleanUp();
    }
  });
});
