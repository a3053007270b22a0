import { describe, expect, it } from 'vitest';
import { encodeResponse, ResponseType } from '../../proto/codec.js';
import { encodeOutputFrame, jsonFraming, OUTPUT_FRAME_HEAD_MAX, protobufFraming } from '../../broker/transport/framing.js';

describe('the hot-path output frame encoder', () => {
  it('writes exactly the bytes of the codec for every length class and type', () => {
    for (const type of [ResponseType.STDOUT, ResponseType.STDERR, ResponseType.CLOSE, ResponseType.PING, ResponseType.EXIT]) {
      for (const len of [0, 1, 127, 128, 16_383, 16_384, 2_097_151, 2_097_152]) {
        const content = new Uint8Array(len).map((_, i) => (i * 31 + type) & 0xff);
        expect(Buffer.from(encodeOutputFrame(type, content)).equals(Buffer.from(encodeResponse(type, content))), `type ${type} len ${len}`).toBe(true);
      }
    }
  });

  it('is what the protobuf framing uses, and codes still go through the codec', () => {
    const c = Buffer.from('hi');
    expect(Buffer.from(protobufFraming.encode(ResponseType.STDOUT, c)).equals(Buffer.from(encodeResponse(ResponseType.STDOUT, c)))).toBe(true);
    expect(Buffer.from(protobufFraming.encode(ResponseType.CLOSE, c, 'ENTRY_X')).equals(Buffer.from(encodeResponse(ResponseType.CLOSE, c, 'ENTRY_X')))).toBe(true);
    expect(JSON.parse(Buffer.from(jsonFraming.encode(ResponseType.CLOSE, c)).toString())).toEqual({ msgType: 2, content: 'aGk=' });
  });

  it('writes the header into spent bytes before the content and returns a view, touching nothing else', () => {
    for (const type of [ResponseType.STDOUT, ResponseType.STDERR]) {
      for (const len of [1, 127, 128, 16_383, 16_384, 40_000, 2_097_152]) {
        const backing = Buffer.alloc(16 + len + 4, 0xaa);
        const content = backing.subarray(16, 16 + len);
        for (let i = 0; i < len; i++) content[i] = (i * 7 + type) & 0xff;
        const expected = Buffer.from(encodeResponse(type, content));
        const frame = encodeOutputFrame(type, content, OUTPUT_FRAME_HEAD_MAX);
        expect(frame.equals(expected), `type ${type} len ${len}`).toBe(true);
        expect(frame.buffer).toBe(backing.buffer);
        const head = expected.length - len;
        expect(backing.subarray(0, 16 - head).every((b) => b === 0xaa)).toBe(true);
        expect(backing.subarray(16 + len).every((b) => b === 0xaa)).toBe(true);
      }
    }
  });

  it('copies when the headroom is smaller than the header, leaving the source as it was', () => {
    const backing = Buffer.alloc(4 + 300, 0xaa);
    const content = backing.subarray(4);
    content.fill(0x41);
    const before = Buffer.from(backing);
    const frame = encodeOutputFrame(ResponseType.STDERR, content, 4);
    expect(frame.equals(Buffer.from(encodeResponse(ResponseType.STDERR, content)))).toBe(true);
    expect(frame.buffer).not.toBe(backing.buffer);
    expect(backing.equals(before)).toBe(true);
  });

  it('has room for the longest header in OUTPUT_FRAME_HEAD_MAX', () => {
    const len = 2 ** 28;
    const lenBytes = Math.ceil(Math.log2(len + 1) / 7);
    expect(2 + 1 + lenBytes).toBeLessThanOrEqual(OUTPUT_FRAME_HEAD_MAX);
  });
});
