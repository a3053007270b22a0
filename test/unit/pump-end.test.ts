import { describe, expect, it } from 'vitest';
import { PumpEndWatch, pumpEndMark } from '../../broker/kubernetes/pump-end.js';

const mark = pumpEndMark('s1');

describe("the watch for the Kubernetes wrapper's end mark on stderr", () => {
  it('takes the mark out of the stderr around it and says the command has ended', () => {
    const w = new PumpEndWatch(mark);
    expect(w.scan(Buffer.from('before ')).toString()).toBe('before ');
    expect(w.ended).toBe(false);
    expect(w.scan(Buffer.concat([Buffer.from('last'), mark, Buffer.from('late')])).toString()).toBe('lastlate');
    expect(w.ended).toBe(true);
    // Once ended, stderr passes untouched: a background process may still write.
    expect(w.scan(Buffer.concat([mark])).equals(mark)).toBe(true);
  });

  it('finds a mark cut between two reads, holding its first bytes until the next', () => {
    for (let cut = 1; cut < mark.length; cut++) {
      const w = new PumpEndWatch(mark);
      const first = w.scan(Buffer.concat([Buffer.from('out'), mark.subarray(0, cut)]));
      expect(first.toString(), `cut at ${cut}`).toBe('out');
      expect(w.holding).toBe(true);
      expect(w.scan(Buffer.concat([mark.subarray(cut), Buffer.from('!')])).toString(), `cut at ${cut}`).toBe('!');
      expect(w.ended).toBe(true);
    }
  });

  it('gives back held bytes that turn out not to be the mark, in order, unchanged', () => {
    const w = new PumpEndWatch(mark);
    expect(w.scan(Buffer.from('a\0entry')).toString()).toBe('a');
    expect(w.scan(Buffer.from('-other\n')).toString()).toBe('\0entry-other\n');
    expect(w.ended).toBe(false);
    expect(w.scan(Buffer.from('b\0')).toString()).toBe('b');
    expect(w.release().toString()).toBe('\0');
    expect(w.holding).toBe(false);
    expect(w.release().length).toBe(0);
  });

  it("does not take another session's mark, nor hold output without a NUL", () => {
    const w = new PumpEndWatch(mark);
    const other = pumpEndMark('s2');
    expect(w.scan(other).equals(other)).toBe(true);
    expect(w.scan(Buffer.from('entry-stdin-end:s1\n')).toString()).toBe('entry-stdin-end:s1\n');
    expect(w.holding).toBe(false);
    expect(w.ended).toBe(false);
  });
});
