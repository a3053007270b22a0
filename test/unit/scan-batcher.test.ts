import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { Limiter } from '../../broker/backend/pacing.js';
import { ScanBatcher } from '../../broker/backend/scan-batcher.js';
import { SCAN_SCRIPT, sessionMark } from '../../broker/backend/session-mark.js';
import type { EntryError } from '../../broker/errors.js';

/*
 * What the batcher guarantees whatever the backend (Docker's exec mode keys containers by id,
 * Kubernetes by namespace, pod and container): each scan run for real by BusyBox's sh against
 * this machine's /proc, with random marks that no process carries.
 */

function localScans(give?: (counts: number[]) => number[]) {
  const runs: Array<{ container: string; marks: readonly string[] }> = [];
  const run = (container: string, signal: string, marks: readonly string[]) =>
    new Promise<number[]>((resolve, reject) => {
      runs.push({ container, marks });
      execFile('busybox', ['sh', '-c', SCAN_SCRIPT, 'entry-reaper', signal, ...marks], (err, out) => {
        if (err) return reject(err);
        const counts = out.trim().split(' ').map(Number);
        resolve(give ? give(counts) : counts);
      });
    });
  return { runs, run };
}

const marks = (n: number) => Array.from({ length: n }, () => sessionMark(`sb-${randomBytes(6).toString('hex')}`));

describe('ScanBatcher', () => {
  it('takes at most its maxMarks a scan, one lane per key', async () => {
    const { runs, run } = localScans();
    const batcher = new ScanBatcher<string>({ limiter: new Limiter(8), maxMarks: 5, overdueMs: 5_000, keyOf: (id) => id, run });
    const asked = [...marks(12).map((m) => batcher.signal('c1', m, '0')), ...marks(2).map((m) => batcher.signal('c2', m, '0'))];
    expect(await Promise.all(asked)).toEqual(Array.from({ length: 14 }, () => 0));
    expect(runs.map((r) => `${r.container} ${r.marks.length}`).sort()).toEqual(['c1 2', 'c1 5', 'c1 5', 'c2 2']);
  });

  it('refuses a mark or a signal the scan cannot take unquoted, before any scan', async () => {
    const { runs, run } = localScans();
    const batcher = new ScanBatcher<string>({ limiter: new Limiter(8), maxMarks: 5, overdueMs: 5_000, keyOf: (id) => id, run });
    const code = (p: Promise<number>) => p.then(String, (e: EntryError) => e.code);
    expect(await code(batcher.signal('c', 'ENTRY_SESSION=a b', '0'))).toBe('ENTRY_BAD_REQUEST');
    expect(await code(batcher.signal('c', 'ENTRY_SESSION=*', '0'))).toBe('ENTRY_BAD_REQUEST');
    expect(await code(batcher.signal('c', 'OTHER=abc', '0'))).toBe('ENTRY_BAD_REQUEST');
    expect(await code(batcher.signal('c', sessionMark('abc'), 'HUP; reboot'))).toBe('ENTRY_BAD_REQUEST');
    expect(await code(batcher.signal('c', sessionMark('abc'), 'SIGHUP'.toLowerCase()))).toBe('ENTRY_BAD_REQUEST');
    expect(runs).toEqual([]);
    expect(() => new ScanBatcher<string>({ limiter: new Limiter(1), maxMarks: 0, overdueMs: 5_000, keyOf: (id) => id, run })).toThrow(RangeError);
  });

  it('fails every caller of a scan that answers with the wrong number of counts', async () => {
    const { run } = localScans((counts) => counts.slice(1));
    const batcher = new ScanBatcher<string>({ limiter: new Limiter(8), maxMarks: 5, overdueMs: 5_000, keyOf: (id) => id, run });
    const results = await Promise.all(marks(3).map((m) => batcher.signal('c', m, '0').then(String, (e: Error) => e.message)));
    expect(results).toEqual(Array.from({ length: 3 }, () => 'the scan gave 2 counts for 3 marks'));
  });
});
