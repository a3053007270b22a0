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
  for (const c of chunks) demuxer.push(c);
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

  it('gives headroom exactly to payloads that follow a whole header in the same chunk', () => {
    for (let i = 0; i <= STREAM.length; i++) {
      const chunks = [STREAM.subarray(0, i), STREAM.subarray(i)];
      const headrooms: number[] = [];
      let chunk = chunks[0]!;
      const d = new DockerDemuxer((_, data, headroom) => {
        headrooms.push(headroom);
        if (headroom === 0) return;
        expect(headroom, `split at ${i}`).toBe(8);
        // The 8 bytes before the payload, in the same chunk, are its header: type, three zeros, a size that covers it.
        const at = data.byteOffset - chunk.byteOffset;
        expect(at, `split at ${i}`).toBeGreaterThanOrEqual(8);
        expect([chunk[at - 7], chunk[at - 6], chunk[at - 5]], `split at ${i}`).toEqual([0, 0, 0]);
        expect(new DataView(chunk.buffer, chunk.byteOffset + at - 4, 4).getUint32(0), `split at ${i}`).toBeGreaterThanOrEqual(data.length);
      });
      for (const c of chunks) {
        chunk = c;
        d.push(c);
      }
      // Only a payload continued from the first chunk, or behind a header split across the two, goes without.
      expect(headrooms.filter((h) => h === 0).length, `split at ${i}`).toBeLessThanOrEqual(1);
    }
  });

  it('gives no headroom behind a header split across chunks', () => {
    const one = frame(1, 'abcdef');
    const seen: number[] = [];
    const d = new DockerDemuxer((_, _data, headroom) => seen.push(headroom));
    d.push(one.subarray(0, 3));
    d.push(one.subarray(3));
    expect(seen).toEqual([0]);
  });
});
