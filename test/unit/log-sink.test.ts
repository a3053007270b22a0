import { Writable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { boundedSink } from '../../broker/log-sink.js';

/** A stream whose writes complete only when `release()` is called: a stalled log reader. */
function stalledStream() {
  const held: Array<() => void> = [];
  const written: string[] = [];
  const stream = new Writable({
    highWaterMark: 1024,
    write(chunk: Buffer, _enc, done) {
      written.push(chunk.toString());
      held.push(done);
    },
  });
  const release = () => {
    while (held.length) held.shift()!();
  };
  return { stream, written, release };
}

const line = (n: number) => `${JSON.stringify({ n, pad: 'x'.repeat(200) })}\n`;

describe('boundedSink', () => {
  it('keeps no more than the backlog waiting for a stalled stream, however many lines come', () => {
    const { stream } = stalledStream();
    const write = boundedSink(stream, 8 * 1024);
    for (let i = 0; i < 10_000; i++) write(line(i));
    expect(stream.writableLength).toBeLessThanOrEqual(8 * 1024);
    expect(stream.writableLength).toBeGreaterThan(7 * 1024);
  });

  it('writes every line when the stream keeps up', async () => {
    const got: string[] = [];
    const stream = new Writable({ highWaterMark: 1024, write: (c: Buffer, _e, done) => (got.push(c.toString()), done()) });
    const write = boundedSink(stream, 8 * 1024);
    for (let i = 0; i < 1_000; i++) write(line(i));
    // The lines of one turn leave together, at its end.
    await new Promise((r) => setImmediate(r));
    expect(got).toHaveLength(1_000);
    expect(got.join('').includes('dropped')).toBe(false);
  });

  it('says how many lines it dropped once the stream drains, then writes again', async () => {
    const { stream, written, release } = stalledStream();
    const write = boundedSink(stream, 8 * 1024, () => new Date(0));
    for (let i = 0; i < 100; i++) write(line(i));
    // Let the stream drain: each release completes what is in flight, the next write follows.
    while (stream.writableLength > 0) {
      release();
      await new Promise((r) => setImmediate(r));
    }
    const parsed = written.map((w) => JSON.parse(w) as { n?: number; msg?: string; dropped?: number; level?: string });
    const passed = parsed.filter((w) => w.n !== undefined);
    const notice = parsed.find((w) => w.msg?.startsWith('log lines dropped'));
    expect(passed.length).toBeLessThan(100);
    expect(notice?.level).toBe('warn');
    expect(notice?.dropped).toBe(100 - passed.length);
    write(line(100));
    await new Promise((r) => setImmediate(r));
    release();
    expect(written.at(-1)).toBe(line(100));
  });

  it('lets a single line longer than the backlog through when nothing waits', async () => {
    const { stream, written } = stalledStream();
    const write = boundedSink(stream, 1024);
    const long = `${'y'.repeat(5000)}\n`;
    write(long);
    await new Promise((r) => setImmediate(r));
    expect(written).toEqual([long]);
  });

  it('hands the lines of one turn of the event loop to the stream in a few writes of up to 64 KiB', async () => {
    const writes: number[] = [];
    const stream = new Writable({
      highWaterMark: 1 << 20,
      write: (_c: Buffer, _e, done) => (writes.push(1), done()),
      writev: (chunks, done) => (writes.push(chunks.length), done()),
    });
    const write = boundedSink(stream, 1 << 20);
    for (let i = 0; i < 1_000; i++) write(line(i));
    await new Promise((r) => setImmediate(r));
    // ~220 bytes a line: about 300 lines per write.
    expect(writes.reduce((a, b) => a + b, 0)).toBe(1_000);
    expect(writes.length).toBeLessThanOrEqual(4);
    const before = writes.length;
    write(line(1_000));
    expect(writes.length).toBe(before);
    await new Promise((r) => setImmediate(r));
    expect(writes.slice(before)).toEqual([1]);
  });
});
