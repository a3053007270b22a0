import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it, vi } from 'vitest';
import { StringDecoder } from 'node:string_decoder';
import { AsciicastWriter, FLUSH_INTERVAL_MS } from '../../broker/recording/asciicast-writer.js';
import { MAX_ALL_IN_FLIGHT_BYTES, MAX_IN_FLIGHT_BYTES } from '../../broker/recording/pending-bytes.js';
import { allBytesInFlight } from '../../broker/recording/write-queue.js';
import { looksBinary } from '../../broker/recording/text-or-binary.js';

const dir = mkdtempSync(join(tmpdir(), 'entry-cast-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
let n = 0;

async function record(write: (w: AsciicastWriter) => void, maxBytes = 1024 * 1024): Promise<{ text: string; events: Array<[number, string, string]> }> {
  const path = join(dir, `${++n}.cast`);
  const errors: unknown[] = [];
  const w = await AsciicastWriter.create(path, { width: 80, height: 24, timestamp: 0, env: {} }, maxBytes, (e) => errors.push(e));
  write(w);
  await w.close();
  expect(errors).toEqual([]);
  const text = readFileSync(path, 'utf8');
  const events = text.trimEnd().split('\n').slice(1).map((l) => JSON.parse(l) as [number, string, string]);
  return { text, events };
}

const joined = (events: Array<[number, string, string]>, code: string) =>
  events
    .filter(([, c]) => c === code)
    .map(([, , d]) => d)
    .join('');

describe('the recording writer', () => {
  it('writes every line as JSON.stringify would, escapes included', async () => {
    // Every byte but NUL (binary), the characters that need an escape among them, and non-ASCII text.
    const ascii = Buffer.from(Array.from({ length: 127 }, (_, i) => i + 1));
    const text = `${ascii.toString('latin1')}grün ✓ 😀 "quoted" back\\slash\r\n\u001b[31mred\u001b[0m`;
    const { text: file, events } = await record((w) => w.output('stdout', Buffer.from(text)));
    expect(joined(events, 'o')).toBe(text);
    for (const line of file.trimEnd().split('\n').slice(1)) {
      const [t, code, data] = JSON.parse(line) as [number, string, string];
      expect(line).toBe(`[${t.toFixed(6)}, ${JSON.stringify(code)}, ${JSON.stringify(data)}]`);
    }
  });

  it('keeps a character that a chunk boundary cut through whole, at every cut', async () => {
    const bytes = Buffer.from('ab😀cd€ü');
    for (let cut = 1; cut < bytes.length; cut++) {
      const { events } = await record((w) => {
        w.output('stdout', bytes.subarray(0, cut));
        w.output('stdout', bytes.subarray(cut));
      });
      expect(joined(events, 'o'), `cut at ${cut}`).toBe('ab😀cd€ü');
    }
  });

  it('keeps stdout, stderr and input apart, each with its own cut character', async () => {
    const euro = Buffer.from('€');
    const { events } = await record((w) => {
      w.output('stdout', euro.subarray(0, 1));
      w.output('stderr', euro.subarray(0, 2));
      w.input(euro.subarray(0, 1));
      w.output('stderr', euro.subarray(2));
      w.output('stdout', euro.subarray(1));
      w.input(euro.subarray(1));
    });
    expect(joined(events, 'o')).toBe('€');
    expect(joined(events, 'e')).toBe('€');
    expect(joined(events, 'i')).toBe('€');
  });

  it('records a cut character that never completes as U+FFFD, as a UTF-8 decoder does', async () => {
    const { events } = await record((w) => {
      w.output('stdout', Buffer.from([0x61, 0xe2, 0x82]));
      w.output('stdout', Buffer.from('bc'));
    });
    expect(joined(events, 'o')).toBe('a\ufffdbc');
  });

  it('counts binary output in a marker and goes on with the text after it', async () => {
    const { events } = await record((w) => {
      w.output('stdout', Buffer.from('before\n'));
      w.output('stdout', Buffer.from([0x00, 0xff, 0x10, 0x00]));
      w.output('stdout', Buffer.from('after\n'));
    });
    expect(events.map(([, c, d]) => [c, d])).toEqual([
      ['o', 'before\n'],
      ['m', 'entry: 4 bytes of binary output'],
      ['o', 'after\n'],
    ]);
  });

  it('stops at the size limit with a marker, and keeps no partial line', async () => {
    const { text, events } = await record((w) => {
      for (let i = 0; i < 100; i++) w.output('stdout', Buffer.from(`line ${i} "${'x'.repeat(50)}"\n`));
    }, 2_000);
    expect(events.at(-1)?.[1]).toBe('m');
    expect(events.at(-1)?.[2]).toBe('entry: recording size limit reached');
    const kept = joined(events, 'o');
    expect(kept.length).toBeGreaterThan(0);
    expect(kept.endsWith('"\n')).toBe(true);
    expect(Buffer.byteLength(text)).toBeLessThan(2_000 + 100);
  });

  it('counts the size limit in bytes of the file, multi-byte text and escapes included', async () => {
    const maxBytes = 5_000;
    const { text, events } = await record((w) => {
      for (let i = 0; i < 100; i++) w.output('stdout', Buffer.from(`€"\u001b`.repeat(20)));
    }, maxBytes);
    const marker = text.trimEnd().split('\n').at(-1)!;
    expect(events.at(-1)?.[2]).toBe('entry: recording size limit reached');
    expect(Buffer.byteLength(text) - Buffer.byteLength(marker) - 1).toBeLessThanOrEqual(maxBytes);
    expect(Buffer.byteLength(text)).toBeGreaterThan(maxBytes - 300);
  });

  it('writes what a session records in many chunks in order, across flushes', async () => {
    const chunks = Array.from({ length: 3_000 }, (_, i) => `${i}\t"€"\r\n`);
    const { events } = await record((w) => {
      for (const c of chunks) w.output('stdout', Buffer.from(c));
    }, 10 * 1024 * 1024);
    expect(joined(events, 'o')).toBe(chunks.join(''));
    const times = events.map(([t]) => t);
    expect([...times].sort((a, b) => a - b)).toEqual(times);
  });

  it('says at the end how many events a disk too slow for them cost, when no later event did', async () => {
    // Written without a pause, the chunks outrun the disk: past MAX_IN_FLIGHT_BYTES waiting, events are dropped.
    const chunk = Buffer.alloc(64 * 1024, 0x78);
    const total = 2 * (MAX_IN_FLIGHT_BYTES / chunk.length);
    const { events } = await record((w) => {
      for (let i = 0; i < total; i++) w.output('stdout', chunk);
    }, 64 * 1024 * 1024);
    const kept = events.filter(([, c]) => c === 'o').length;
    expect(kept).toBeLessThan(total);
    expect(events.at(-1)).toEqual([expect.any(Number), 'm', `entry: ${total - kept} events skipped: the disk was too slow`]);
  });

  it('holds at most MAX_ALL_IN_FLIGHT_BYTES for the disk across every recording, each saying what it dropped', async () => {
    const chunk = Buffer.alloc(64 * 1024, 0x78);
    const writers = await Promise.all(Array.from({ length: 20 }, (_, i) => AsciicastWriter.create(join(dir, `all-${i}.cast`), { width: 80, height: 24, timestamp: 0, env: {} }, 64 * 1024 * 1024, () => undefined)));
    // Written without a pause, as twenty fast sessions on a stalled disk: nothing is written meanwhile.
    for (const w of writers) for (let i = 0; i < MAX_IN_FLIGHT_BYTES / chunk.length; i++) w.output('stdout', chunk);
    const held = allBytesInFlight();
    await Promise.all(writers.map((w) => w.close()));
    // Each writer may be one buffer and one event past the line when it is crossed.
    expect(held).toBeLessThanOrEqual(MAX_ALL_IN_FLIGHT_BYTES + writers.length * 2 * chunk.length);
    expect(allBytesInFlight()).toBe(0);
    const skipped = writers.map((_, i) => readFileSync(join(dir, `all-${i}.cast`), 'utf8')).filter((t) => /events skipped: the disk was too slow/.test(t));
    expect(skipped.length).toBeGreaterThan(0);
  });

  it('records any mix of chunks as a streaming UTF-8 decoder and JSON.stringify would, line for line', async () => {
    // Pieces that need an escape, multi-byte characters, bytes that are not UTF-8, and NUL (binary).
    const pieces = ['a', 'plain text ', '\n', '\r\n', '"', '\\', '\u001b[1m', '\u007f', 'ü', '€', '😀', [0xff], [0xc3], [0x82], [0xe2, 0x82], [0x00]].map((p) =>
      typeof p === 'string' ? Buffer.from(p) : Buffer.from(p),
    );
    let seed = 17;
    // mulberry32: every piece and size comes up, and a failure replays the same way.
    const random = (n: number) => {
      seed = (seed + 0x6d2b79f5) | 0;
      let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
      t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
      return ((t ^ (t >>> 14)) >>> 0) % n;
    };
    for (let round = 0; round < 6; round++) {
      const ops: Array<['stdout' | 'stderr' | 'input', Buffer]> = [];
      for (let i = 0; i < 300; i++) {
        const parts: Buffer[] = [];
        // Now and then a chunk of over a buffer, so lines cross buffers; under the 4 MiB in flight in all.
        // Long chunks are whole text (the first 11 pieces): one bad byte would make output binary.
        const long = random(40) === 0;
        const size = long ? 70_000 + random(30_000) : random(300);
        const kinds = long ? 11 : round % 2 === 0 ? pieces.length - 1 : pieces.length;
        for (let n = 0; n < size; ) {
          const p = pieces[random(kinds)]!;
          parts.push(p);
          n += p.length;
        }
        ops.push([(['stdout', 'stdout', 'stderr', 'input'] as const)[random(4)]!, Buffer.concat(parts)]);
      }
      const expected: Array<[string, string]> = [];
      const decoders = { stdout: new StringDecoder('utf8'), stderr: new StringDecoder('utf8'), input: new StringDecoder('utf8') };
      let binary = 0;
      for (const [source, data] of ops) {
        if (source !== 'input' && looksBinary(data)) {
          binary += data.length;
          continue;
        }
        if (source !== 'input' && binary > 0) expected.push(['m', `entry: ${binary} bytes of binary output`]), (binary = 0);
        const text = decoders[source].write(data);
        if (text) expected.push([source === 'stdout' ? 'o' : source === 'stderr' ? 'e' : 'i', text]);
      }
      if (binary > 0) expected.push(['m', `entry: ${binary} bytes of binary output`]);
      const { text: file, events } = await record((w) => {
        for (const [source, data] of ops) source === 'input' ? w.input(data) : w.output(source, data);
      }, 1024 ** 3);
      expect(events.map(([, c, d]) => [c, d]), `round ${round}`).toEqual(expected);
      // The cases that take the decoder's way, and lines longer than a buffer, did come up.
      expect(expected.some(([, d]) => d.includes('\ufffd'))).toBe(true);
      // Rounds with NUL among the pieces (odd) have binary output, the others long text.
      if (round % 2 === 1) expect(expected.some(([c]) => c === 'm')).toBe(true);
      else expect(expected.some(([, d]) => Buffer.byteLength(d) > 64 * 1024)).toBe(true);
      for (const line of file.trimEnd().split('\n').slice(1)) {
        const [t, code, data] = JSON.parse(line) as [number, string, string];
        expect(line).toBe(`[${t.toFixed(6)}, ${JSON.stringify(code)}, ${JSON.stringify(data)}]`);
      }
    }
  });

  it('hands what it records to the file the flush interval after the first event, before the end', async () => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] });
    try {
      const path = join(dir, `${++n}.cast`);
      const errors: unknown[] = [];
      const w = await AsciicastWriter.create(path, { width: 80, height: 24, timestamp: 0, env: {} }, 1024 * 1024, (e) => errors.push(e));
      await vi.waitFor(() => expect(readFileSync(path, 'utf8')).toContain('"version":2'), { timeout: 5_000 });
      w.output('stdout', Buffer.from('first'));
      vi.advanceTimersByTime(FLUSH_INTERVAL_MS / 2);
      w.output('stdout', Buffer.from('second'));
      vi.advanceTimersByTime(FLUSH_INTERVAL_MS / 2 - 1);
      // Nothing is due yet: the file holds its header alone until the interval is up.
      for (let i = 0; i < 20; i++) await new Promise((resolve) => setImmediate(resolve));
      expect(readFileSync(path, 'utf8')).not.toMatch(/first|second/);
      vi.advanceTimersByTime(1);
      await vi.waitFor(() => {
        const text = readFileSync(path, 'utf8');
        expect(text).toContain('"o", "first"]');
        expect(text).toContain('"o", "second"]');
      }, { timeout: 5_000 });
      await w.close();
      expect(errors).toEqual([]);
    } finally {
      vi.useRealTimers();
    }
  });
});
