import { describe, expect, it } from 'vitest';
import { PumpEndWatch, pumpEndMark } from '../../broker/kubernetes/pump-end.js';

/** The mark as the wrapper writes it: the session's mark, the status, a newline. */
const told = (code: number, sessionId = 's1') => Buffer.concat([pumpEndMark(sessionId), Buffer.from(`${code}\n`)]);

describe("the watch for the Kubernetes wrapper's end mark on stderr", () => {
  it('takes the mark out of the stderr around it and gives the exit status it carries', () => {
    const w = new PumpEndWatch(pumpEndMark('s1'));
    expect(w.scan(Buffer.from('before ')).toString()).toBe('before ');
    expect(w.exitCode).toBeUndefined();
    expect(w.scan(Buffer.concat([Buffer.from('last'), told(137), Buffer.from('late')])).toString()).toBe('lastlate');
    expect(w.exitCode).toBe(137);
    // Once told, stderr passes untouched: a background process may still write.
    expect(w.scan(told(0)).equals(told(0))).toBe(true);
    expect(w.exitCode).toBe(137);
  });

  it('finds a mark cut anywhere between two reads, holding its first bytes until the next', () => {
    const mark = told(42);
    for (let cut = 1; cut < mark.length; cut++) {
      const w = new PumpEndWatch(pumpEndMark('s1'));
      const first = w.scan(Buffer.concat([Buffer.from('out'), mark.subarray(0, cut)]));
      expect(first.toString(), `cut at ${cut}`).toBe('out');
      expect(w.holding, `cut at ${cut}`).toBe(true);
      expect(w.scan(Buffer.concat([mark.subarray(cut), Buffer.from('!')])).toString(), `cut at ${cut}`).toBe('!');
      expect(w.exitCode, `cut at ${cut}`).toBe(42);
    }
  });

  it('gives back held bytes that turn out not to be the mark, in order, unchanged', () => {
    const w = new PumpEndWatch(pumpEndMark('s1'));
    expect(w.scan(Buffer.from('a\0entry')).toString()).toBe('a');
    expect(w.scan(Buffer.from('-other\n')).toString()).toBe('\0entry-other\n');
    expect(w.scan(Buffer.from('b\0')).toString()).toBe('b');
    expect(w.release().toString()).toBe('\0');
    expect(w.holding).toBe(false);
    expect(w.release().length).toBe(0);
    // The mark's words with no status after them are output too.
    const bare = Buffer.concat([pumpEndMark('s1'), Buffer.from('x1\n')]);
    expect(w.scan(bare).equals(bare)).toBe(true);
    expect(w.exitCode).toBeUndefined();
  });

  it("does not take another session's mark, nor hold output without a NUL", () => {
    const w = new PumpEndWatch(pumpEndMark('s1'));
    expect(w.scan(told(0, 's2')).equals(told(0, 's2'))).toBe(true);
    expect(w.scan(Buffer.from('entry-stdin-end:s1:0\n')).toString()).toBe('entry-stdin-end:s1:0\n');
    expect(w.holding).toBe(false);
    expect(w.exitCode).toBeUndefined();
  });
});
