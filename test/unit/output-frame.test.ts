import { describe, expect, it } from 'vitest';
import { encodeResponse, ResponseType } from '../../proto/codec.js';
import { encodeOutputFrame, jsonFraming, protobufFraming } from '../../broker/transport/framing.js';

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
});
