import { mkdtemp, open, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { MAX_BATCH, WriteQueue } from '../../broker/recording/write-queue.js';

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'entry-write-queue-'));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('the recording write queue', () => {
  it('writes every buffer in order, only the given length of each, and hands each back once', async () => {
    const file = await open(join(dir, 'out'), 'w');
    const back: Buffer[] = [];
    const errors: unknown[] = [];
    const q = new WriteQueue(file, (b) => back.push(b), (e) => errors.push(e));
    const bufs = Array.from({ length: 3 * MAX_BATCH + 5 }, (_, i) => Buffer.alloc(1000 + i, 0x61 + (i % 26)));
    let expected = '';
    for (const [i, b] of bufs.entries()) {
      const length = b.length - (i % 3);
      q.push(b, length);
      expected += b.toString('latin1', 0, length);
    }
    expect(q.inFlight).toBe(expected.length);
    await q.drained();
    await file.close();
    expect(await readFile(join(dir, 'out'), 'latin1')).toBe(expected);
    expect(back.length).toBe(bufs.length);
    for (const [i, b] of bufs.entries()) expect(back[i]).toBe(b);
    expect(q.inFlight).toBe(0);
    expect(errors).toEqual([]);
  });

  it('batches what queued behind a running write into fewer calls', async () => {
    const file = await open(join(dir, 'out'), 'w');
    let calls = 0;
    const writev = file.writev.bind(file);
    file.writev = (async (bufs: Buffer[]) => {
      calls++;
      return writev(bufs);
    }) as typeof file.writev;
    const q = new WriteQueue(file, () => {}, () => {});
    for (let i = 0; i < 2 * MAX_BATCH + 1; i++) q.push(Buffer.alloc(64), 64);
    await q.drained();
    await file.close();
    // The first buffer goes alone; the rest waited behind it and go MAX_BATCH at a time.
    expect(calls).toBe(3);
  });

  it('goes on after short writes, across buffers and past empty ones', async () => {
    const file = await open(join(dir, 'out'), 'w');
    const writev = file.writev.bind(file);
    let calls = 0;
    // The OS takes at most 7 bytes a call, as a full disk or a signal can make it do.
    file.writev = (async (bufs: Buffer[]) => {
      calls++;
      const take: Buffer[] = [];
      let room = 7;
      for (const b of bufs) {
        if (room === 0) break;
        take.push(b.subarray(0, Math.min(room, b.length)));
        room -= take.at(-1)!.length;
      }
      return writev(take);
    }) as typeof file.writev;
    const q = new WriteQueue(file, () => {}, (e) => {
      throw e;
    });
    const parts = ['abc', '', 'defghijklmnop', 'q', '', 'rstuvwxyz0123456789'];
    for (const p of parts) q.push(Buffer.from(p), p.length);
    await q.drained();
    await file.close();
    expect(await readFile(join(dir, 'out'), 'latin1')).toBe(parts.join(''));
    expect(calls).toBeGreaterThan(parts.join('').length / 7);
  });

  it('waits in drained() for what is pushed while it waits', async () => {
    const file = await open(join(dir, 'out'), 'w');
    const q = new WriteQueue(file, () => {}, () => {});
    q.push(Buffer.from('first '), 6);
    const drained = q.drained();
    q.push(Buffer.from('second'), 6);
    await drained;
    expect(q.inFlight).toBe(0);
    await file.close();
    expect(await readFile(join(dir, 'out'), 'latin1')).toBe('first second');
  });

  it('stops at the first failed write: reports it once and gives every buffer back', async () => {
    await (await open(join(dir, 'out'), 'w')).close();
    // Opened for reading only: every write fails with EBADF.
    const file = await open(join(dir, 'out'), 'r');
    const errors: unknown[] = [];
    const back: Buffer[] = [];
    const q = new WriteQueue(file, (b) => back.push(b), (e) => errors.push(e));
    for (const word of ['one', 'two', 'six']) q.push(Buffer.from(word), 3);
    await q.drained();
    q.push(Buffer.from('ten'), 3);
    await q.drained();
    await file.close();
    expect(errors.length).toBe(1);
    expect((errors[0] as NodeJS.ErrnoException).code).toBe('EBADF');
    expect(back.map((b) => b.toString())).toEqual(['one', 'two', 'six', 'ten']);
    expect(q.inFlight).toBe(0);
  });

  it('writes no final line into a file whose first line never made it', async () => {
    const path = join(dir, 'out');
    const file = await open(path, 'w');
    const writev = file.writev.bind(file);
    let full = true;
    file.writev = (async (bufs: Buffer[], position?: number) => {
      if (full) throw Object.assign(new Error('no space left on device'), { code: 'ENOSPC' });
      return writev(bufs, position);
    }) as typeof file.writev;
    const q = new WriteQueue(file, () => {}, () => q.finalLine(Buffer.from('["m", "stopped"]\n')));
    q.push(Buffer.from('{"version": 2}\n'), 15);
    await q.drained();
    full = false;
    await q.end();
    await file.close();
    expect(await readFile(path, 'utf8')).toBe('');
  });

  it('leaves whole lines and the final line after a disk that fills in the middle of a line', async () => {
    const path = join(dir, 'out');
    const file = await open(path, 'w');
    const writev = file.writev.bind(file);
    // A disk with room for 50 bytes: a call past it writes what fits, the next fails with ENOSPC.
    let room = 50;
    file.writev = (async (bufs: Buffer[], position?: number) => {
      if (room === 0) throw Object.assign(new Error('no space left on device'), { code: 'ENOSPC' });
      const take: Buffer[] = [];
      for (const b of bufs) {
        if (room === 0) break;
        take.push(b.subarray(0, Math.min(room, b.length)));
        room -= take.at(-1)!.length;
      }
      return writev(take, position);
    }) as typeof file.writev;
    const errors: unknown[] = [];
    const q = new WriteQueue(file, () => {}, (e) => {
      errors.push(e);
      q.finalLine(Buffer.from('["m", "stopped"]\n'));
    });
    // Lines cut across buffers, as the recorder's 64 KiB buffers cut them.
    for (const part of ['["o", "first line"]\n["o", "sec', 'ond line"]\n["o", "a third, longer line that the disk ', 'cannot hold"]\n', '["o", "fourth"]\n']) {
      q.push(Buffer.from(part), part.length);
    }
    await q.drained();
    expect((errors as NodeJS.ErrnoException[]).map((e) => e.code)).toEqual(['ENOSPC']);
    // Still full: the final line waits, and the file ends with its last whole line.
    expect(await readFile(path, 'utf8')).toBe('["o", "first line"]\n["o", "second line"]\n');
    room = 100;
    await q.end();
    await file.close();
    expect(await readFile(path, 'utf8')).toBe('["o", "first line"]\n["o", "second line"]\n["m", "stopped"]\n');
  });
});
