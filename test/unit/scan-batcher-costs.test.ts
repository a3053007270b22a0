import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { Limiter } from '../../broker/backend/pacing.js';
import { ScanBatcher, scanOverran } from '../../broker/backend/scan-batcher.js';
import { sessionMark } from '../../broker/backend/session-mark.js';
import { EntryError } from '../../broker/errors.js';

/*
 * What sharing a scan may not cost a session more than scanning alone did: a scan that overran
 * its time is tried again in halves (once), and a scan that runs long lets the next batch of its
 * lane start beside it (two at most, within the limiter). The scans are held and answered by
 * the test, on real timers.
 */

interface Held {
  marks: readonly string[];
  answer(counts: number[]): void;
  fail(err: unknown): void;
}

/** Scans that wait for the test to answer them; `next()` resolves with the next one to start. */
function heldScans() {
  const runs: Held[] = [];
  const started: Array<(h: Held) => void> = [];
  const run = (_target: string, _signal: string, marks: readonly string[]) =>
    new Promise<number[]>((resolve, reject) => {
      const h = { marks, answer: resolve, fail: reject };
      runs.push(h);
      started.shift()?.(h);
    });
  /** The scan started after the `runs.length` already seen, now or when it starts. */
  const nth = (i: number) => (runs[i] ? Promise.resolve(runs[i]) : new Promise<Held>((r) => started.push(r)));
  return { runs, run, nth };
}

const marks = (n: number) => Array.from({ length: n }, () => sessionMark(`sc-${randomBytes(6).toString('hex')}`));
const outcome = (p: Promise<number>) => p.then(String, (e: EntryError) => e.code);
const overran = () => scanOverran(new EntryError('ENTRY_EXEC_FAILED', 'its /bin/sh gave no answer within 10000 ms; scan abandoned'));

describe('ScanBatcher: the costs of sharing', () => {
  it('runs a batch whose scan overran again in two halves, once: each half answers its own callers', async () => {
    const { runs, run, nth } = heldScans();
    const b = new ScanBatcher<string>({ limiter: new Limiter(8), maxMarks: 48, overdueMs: 60_000, keyOf: (id) => id, run });
    const ms = marks(5);
    const asked = ms.map((m) => outcome(b.signal('c', m, 'HUP')));
    // The same mark twice in one batch: one delivery, both answered.
    asked.push(outcome(b.signal('c', ms[4]!, 'HUP')));
    (await nth(0)).fail(overran());
    const first = await nth(1);
    expect(first.marks).toEqual(ms.slice(0, 3));
    // A half that overran again fails its own callers: no quarter is tried.
    first.fail(overran());
    const second = await nth(2);
    expect(second.marks).toEqual(ms.slice(3));
    second.answer([1, 2]);
    expect(await Promise.all(asked)).toEqual([...Array.from({ length: 3 }, () => 'ENTRY_EXEC_FAILED'), '1', '2', '2']);
    expect(runs.map((r) => r.marks.length)).toEqual([5, 3, 2]);
  });

  it('fails every caller of a scan whose failure fewer marks would not avoid, without trying again; a lone mark is not tried again either', async () => {
    const { runs, run, nth } = heldScans();
    const b = new ScanBatcher<string>({ limiter: new Limiter(8), maxMarks: 48, overdueMs: 60_000, keyOf: (id) => id, run });
    const asked = marks(4).map((m) => outcome(b.signal('c', m, 'HUP')));
    (await nth(0)).fail(new EntryError('ENTRY_CANNOT_REAP', 'no sh'));
    expect(await Promise.all(asked)).toEqual(Array.from({ length: 4 }, () => 'ENTRY_CANNOT_REAP'));
    const lone = outcome(b.signal('c', marks(1)[0]!, 'HUP'));
    (await nth(1)).fail(overran());
    expect(await lone).toBe('ENTRY_EXEC_FAILED');
    expect(runs.map((r) => r.marks.length)).toEqual([4, 1]);
  });

  it('does not halve a batch where a scan of as few marks as a half overran already: that container overruns whatever the marks', async () => {
    const { runs, run, nth } = heldScans();
    const b = new ScanBatcher<string>({ limiter: new Limiter(8), maxMarks: 48, overdueMs: 60_000, keyOf: (id) => id, run });
    const lone = outcome(b.signal('c', marks(1)[0]!, 'HUP'));
    const first = await nth(0);
    const rest = marks(6).map((m) => outcome(b.signal('c', m, 'HUP')));
    first.fail(overran());
    (await nth(1)).fail(overran());
    expect(await Promise.all([lone, ...rest])).toEqual(Array.from({ length: 7 }, () => 'ENTRY_EXEC_FAILED'));
    expect(runs.map((r) => r.marks.length)).toEqual([1, 6]);
    // Another signal is another lane, with its own record.
    const other = marks(2).map((m) => outcome(b.signal('c', m, 'KILL')));
    (await nth(2)).fail(overran());
    (await nth(3)).answer([1]);
    (await nth(4)).answer([1]);
    expect(await Promise.all(other)).toEqual(['1', '1']);
  });

  it('runs the halves ahead of the batch that came while the whole ran', async () => {
    const { runs, run, nth } = heldScans();
    const b = new ScanBatcher<string>({ limiter: new Limiter(8), maxMarks: 48, overdueMs: 60_000, keyOf: (id) => id, run });
    const early = marks(4).map((m) => outcome(b.signal('c', m, '0')));
    const whole = await nth(0);
    const late = marks(1).map((m) => outcome(b.signal('c', m, '0')));
    whole.fail(overran());
    (await nth(1)).answer([0, 0]);
    (await nth(2)).answer([0, 0]);
    (await nth(3)).answer([7]);
    expect(await Promise.all([...early, ...late])).toEqual(['0', '0', '0', '0', '7']);
    expect(runs.map((r) => r.marks.length)).toEqual([4, 2, 2, 1]);
  });

  it('lets the next batch start beside a scan that runs past overdueMs, two at most a lane', async () => {
    const { runs, run, nth } = heldScans();
    const overdueMs = 150;
    const b = new ScanBatcher<string>({ limiter: new Limiter(8), maxMarks: 48, overdueMs, keyOf: (id) => id, run });
    const t0 = performance.now();
    const a = outcome(b.signal('c', marks(1)[0]!, 'HUP'));
    const first = await nth(0);
    const next = outcome(b.signal('c', marks(1)[0]!, 'HUP'));
    const beside = await nth(1);
    const besideAt = performance.now() - t0;
    expect(besideAt).toBeGreaterThanOrEqual(overdueMs - 5);
    // Past overdueMs both run long: a third batch waits for one of them to end.
    const third = outcome(b.signal('c', marks(1)[0]!, 'HUP'));
    await new Promise((r) => setTimeout(r, 3 * overdueMs));
    expect(runs).toHaveLength(2);
    first.answer([1]);
    const last = await nth(2);
    beside.answer([2]);
    last.answer([3]);
    expect(await Promise.all([a, next, third])).toEqual(['1', '2', '3']);
    // A scan answered in time holds the next batch as before: no third scan beside it.
    const quick = outcome(b.signal('c', marks(1)[0]!, 'HUP'));
    const q = await nth(3);
    const behind = outcome(b.signal('c', marks(1)[0]!, 'HUP'));
    await new Promise((r) => setTimeout(r, overdueMs / 3));
    expect(runs).toHaveLength(4);
    q.answer([0]);
    (await nth(4)).answer([0]);
    expect(await Promise.all([quick, behind])).toEqual(['0', '0']);
  });

  it('starts a batch beside an overdue scan only in a free slot of the limiter', async () => {
    const { runs, run, nth } = heldScans();
    const overdueMs = 50;
    const b = new ScanBatcher<string>({ limiter: new Limiter(1), maxMarks: 48, overdueMs, keyOf: (id) => id, run });
    const a = outcome(b.signal('c', marks(1)[0]!, 'KILL'));
    const first = await nth(0);
    const next = outcome(b.signal('c', marks(1)[0]!, 'KILL'));
    await new Promise((r) => setTimeout(r, 4 * overdueMs));
    expect(runs).toHaveLength(1);
    first.answer([0]);
    (await nth(1)).answer([0]);
    expect(await Promise.all([a, next])).toEqual(['0', '0']);
  });

  it('refuses an overdue time that is not a positive number', () => {
    const { run } = heldScans();
    expect(() => new ScanBatcher<string>({ limiter: new Limiter(1), maxMarks: 1, overdueMs: 0, keyOf: (id) => id, run })).toThrow(RangeError);
    expect(() => new ScanBatcher<string>({ limiter: new Limiter(1), maxMarks: 1, overdueMs: Number.NaN, keyOf: (id) => id, run })).toThrow(RangeError);
  });
});
