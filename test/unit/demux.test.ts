import { describe, expect, it } from 'vitest';
import { DockerDemuxer } from '../../broker/docker/demux.js';
import type { OutputStream } from '../../broker/session/types.js';
import { concatBytes, mulberry32, randomBytes } from './helpers/prng.js';

function frame(type: number, payload: Uint8Array | string): Uint8Array {
  const body = typeof payload === 'string' ? new TextEncoder().encode(payload) : payload;
  const header = new Uint8Array(8);
  header[0] = type;
  new DataView(header.buffer).setUint32(4, body.length, false);
  return concatBytes([header, body]);
}

interface Collected {
  stdout: Uint8Array;
  stderr: Uint8Array;
  /** Stream switches in order, adjacent emissions of one stream merged. */
  order: OutputStream[];
  emptyChunks: number;
}

function collect(chunks: readonly Uint8Array[]): Collected & { demuxer: DockerDemuxer } {
  const parts: Record<OutputStream, Uint8Array[]> = { stdout: [], stderr: [] };
  const order: OutputStream[] = [];
  let emptyChunks = 0;
  const demuxer = new DockerDemuxer((stream, data) => {
    if (data.length === 0) emptyChunks++;
    // Copy: payloads are views into the pushed chunk.
    parts[stream].push(data.slice());
    if (order[order.length - 1] !== stream) order.push(stream);
  });
  // push() may rearrange a chunk's bytes: each gets its own copy, as each socket read is its own buffer.
  for (const c of chunks) demuxer.push(c.slice());
  return { stdout: concatBytes(parts.stdout), stderr: concatBytes(parts.stderr), order, emptyChunks, demuxer };
}

const text = (b: Uint8Array) => Buffer.from(b).toString('latin1');

const binary = randomBytes(mulberry32(7), 300);
const STREAM = concatBytes([
  frame(1, 'hello '),
  frame(2, 'oops\n'),
  frame(1, ''),
  frame(1, binary),
  frame(2, new Uint8Array([0, 1, 2, 0xff])),
  frame(0, 'stdin-typed'),
  frame(1, 'world\n'),
]);
const EXPECTED_STDOUT = concatBytes([new TextEncoder().encode('hello '), binary, new TextEncoder().encode('stdin-typedworld\n')]);
const EXPECTED_STDERR = concatBytes([new TextEncoder().encode('oops\n'), new Uint8Array([0, 1, 2, 0xff])]);
const EXPECTED_ORDER: OutputStream[] = ['stdout', 'stderr', 'stdout', 'stderr', 'stdout'];

describe('DockerDemuxer', () => {
  it('splits a stream pushed in one chunk into stdout and stderr', () => {
    const out = collect([STREAM]);
    expect(text(out.stdout)).toBe(text(EXPECTED_STDOUT));
    expect(text(out.stderr)).toBe(text(EXPECTED_STDERR));
    expect(out.order).toEqual(EXPECTED_ORDER);
    expect(out.demuxer.truncated).toBe(false);
  });

  it('gives the same result when the stream is split at every byte position', () => {
    for (let i = 0; i <= STREAM.length; i++) {
      const out = collect([STREAM.subarray(0, i), STREAM.subarray(i)]);
      expect(text(out.stdout), `split at ${i}`).toBe(text(EXPECTED_STDOUT));
      expect(text(out.stderr), `split at ${i}`).toBe(text(EXPECTED_STDERR));
      expect(out.order).toEqual(EXPECTED_ORDER);
      expect(out.demuxer.truncated).toBe(false);
    }
  });

  it('gives the same result when fed one byte at a time', () => {
    const out = collect([...STREAM].map((b) => new Uint8Array([b])));
    expect(text(out.stdout)).toBe(text(EXPECTED_STDOUT));
    expect(text(out.stderr)).toBe(text(EXPECTED_STDERR));
    expect(out.order).toEqual(EXPECTED_ORDER);
    expect(out.demuxer.truncated).toBe(false);
  });

  it('never emits an empty payload', () => {
    for (let i = 0; i <= STREAM.length; i += 3) {
      expect(collect([STREAM.subarray(0, i), STREAM.subarray(i)]).emptyChunks).toBe(0);
    }
  });

  it('reports truncated in the middle of a header and of a payload, and not between frames', () => {
    const one = frame(1, 'abcdef');
    for (let cut = 0; cut <= one.length; cut++) {
      const out = collect([one.subarray(0, cut)]);
      expect(out.demuxer.truncated, `cut at ${cut}`).toBe(cut > 0 && cut < one.length);
    }
  });

  it('reads the size as an unsigned 32-bit big-endian number', () => {
    const header = new Uint8Array([2, 0, 0, 0, 0x80, 0x00, 0x01, 0x02]);
    const out = collect([header, new Uint8Array([0x41, 0x42])]);
    expect(text(out.stderr)).toBe('AB');
    expect(out.stdout.length).toBe(0);
    expect(out.demuxer.truncated).toBe(true);
  });

  it('emits payloads as views into the pushed chunk, without copying', () => {
    const chunk = frame(1, 'view');
    const seen: Uint8Array[] = [];
    new DockerDemuxer((_, data) => seen.push(data)).push(chunk);
    expect(seen).toHaveLength(1);
    expect(seen[0]!.buffer).toBe(chunk.buffer);
  });

  it('joins the payloads of one stream in a chunk into one view, in place, keeping the streams apart', () => {
    const chunk = concatBytes([frame(1, 'ab'), frame(1, 'cd'), frame(2, 'E'), frame(2, ''), frame(2, 'F'), frame(1, 'gh')]);
    const seen: Array<[OutputStream, string, number]> = [];
    new DockerDemuxer((stream, data, headroom) => {
      expect(data.buffer).toBe(chunk.buffer);
      seen.push([stream, text(data), headroom]);
    }).push(chunk);
    expect(seen).toEqual([
      ['stdout', 'abcd', 8],
      ['stderr', 'EF', 8],
      ['stdout', 'gh', 8],
    ]);
  });

  it('makes room before a payload continued from the previous chunk when a header follows it', () => {
    const whole = concatBytes([frame(1, 'hello'), frame(1, 'world'), frame(1, '!')]);
    const seen: Array<[string, number]> = [];
    const d = new DockerDemuxer((_, data, headroom) => seen.push([text(data), headroom]));
    d.push(whole.slice(0, 8 + 2));
    d.push(whole.slice(8 + 2));
    expect(seen).toEqual([
      ['he', 8],
      ['lloworld!', 8],
    ]);
  });

  it('leaves a continued payload with no headroom when nothing follows it in the chunk', () => {
    const one = frame(1, 'hello');
    const seen: Array<[string, number]> = [];
    const d = new DockerDemuxer((_, data, headroom) => seen.push([text(data), headroom]));
    d.push(one.slice(0, 8 + 2));
    d.push(one.slice(8 + 2));
    expect(seen).toEqual([
      ['he', 8],
      ['llo', 0],
    ]);
  });

  it('gives headroom only where 8 spent bytes lie before the data, at every split', () => {
    for (let i = 0; i <= STREAM.length; i++) {
      const headrooms: number[] = [];
      let chunk = new Uint8Array(0);
      const d = new DockerDemuxer((_, data, headroom) => {
        headrooms.push(headroom);
        if (headroom > 0) {
          expect(headroom, `split at ${i}`).toBe(8);
          expect(data.byteOffset - chunk.byteOffset, `split at ${i}`).toBeGreaterThanOrEqual(8);
        }
      });
      for (const c of [STREAM.slice(0, i), STREAM.slice(i)]) {
        chunk = c;
        d.push(c);
      }
      // Only a payload continued alone at the start of the second chunk, or behind a header split
      // across the two, goes without.
      expect(headrooms.filter((h) => h === 0).length, `split at ${i}`).toBeLessThanOrEqual(1);
    }
  });

  it('gives no headroom behind a header split across chunks when nothing follows', () => {
    const one = frame(1, 'abcdef');
    const seen: number[] = [];
    const d = new DockerDemuxer((_, _data, headroom) => seen.push(headroom));
    d.push(one.slice(0, 3));
    d.push(one.slice(3));
    expect(seen).toEqual([0]);
  });

  it('keeps every byte and the order of streams over random frames cut into random chunks', () => {
    const rand = mulberry32(42);
    for (let round = 0; round < 200; round++) {
      const frames: Array<[number, Uint8Array]> = [];
      for (let n = Math.floor(rand() * 12); n >= 0; n--) frames.push([rand() < 0.7 ? 1 : 2, randomBytes(rand, Math.floor(rand() * 70))]);
      const stream = concatBytes(frames.map(([t, p]) => frame(t, p)));
      const chunks: Uint8Array[] = [];
      for (let pos = 0; pos < stream.length; ) {
        const len = 1 + Math.floor(rand() * 90);
        chunks.push(stream.subarray(pos, pos + len));
        pos += len;
      }
      const out = collect(chunks);
      const want = (t: number) => text(concatBytes(frames.filter(([ft, p]) => ft === t && p.length > 0).map(([, p]) => p)));
      expect(text(out.stdout), `round ${round}`).toBe(want(1));
      expect(text(out.stderr), `round ${round}`).toBe(want(2));
      const order: OutputStream[] = [];
      for (const [t, p] of frames) {
        const s: OutputStream = t === 2 ? 'stderr' : 'stdout';
        if (p.length > 0 && order[order.length - 1] !== s) order.push(s);
      }
      expect(out.order, `round ${round}`).toEqual(order);
    }
  });
});

