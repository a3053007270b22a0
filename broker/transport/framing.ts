import { decodeRequest, encodeResponse, FrameError, type RequestMessage } from '../../proto/codec.js';

/**
 * How messages are put in WebSocket frames. `protobuf` is the protocol; `json` is the
 * original's `?method=web` mode: the same messages as JSON objects
 * `{"msgType": <number>, "content": "<base64>"}` (fields omitted when zero or empty, as Go's
 * encoding/json did for the original), in binary frames; text frames are read too.
 */
export interface Framing {
  readonly name: 'protobuf' | 'json';
  encode(msgType: number, content: Uint8Array, code?: string): Uint8Array;
  /** STDOUT/STDERR; `headroom` bytes before `content` in its buffer may be overwritten (see encodeOutputFrame). */
  encodeOutput(msgType: number, content: Uint8Array, headroom: number): Uint8Array;
  /** Throws FrameError on anything malformed. */
  decode(data: Buffer, isBinary: boolean): RequestMessage;
}

/**
 * The most bytes encodeOutputFrame puts before the content: the type field (2), the content
 * tag (1) and its length as a varint (5 for lengths up to 2³² − 1).
 */
export const OUTPUT_FRAME_HEAD_MAX = 8;

/**
 * STDOUT/STDERR frames on the hot path: the same bytes as encodeResponse (checked against the
 * codec by the unit tests). With `headroom` — bytes just before `content` in its buffer that
 * nobody reads any more, such as a spent Docker stream header — the frame header is written
 * there and the frame is a view over the content: no copy. Otherwise the content is copied
 * once, into a buffer that is not zero-filled first (every byte is written).
 */
export function encodeOutputFrame(msgType: number, content: Uint8Array, headroom = 0): Buffer {
  const len = content.length;
  let lenBytes = 1;
  for (let n = len; n >= 0x80; n = Math.floor(n / 128)) lenBytes++;
  const head = (msgType === 0 ? 0 : 2) + (len === 0 ? 0 : 1 + lenBytes);
  const inPlace = len > 0 && headroom >= head;
  const buf = inPlace ? Buffer.from(content.buffer, content.byteOffset - head, head + len) : Buffer.allocUnsafe(head + len);
  let pos = 0;
  if (msgType !== 0) {
    buf[pos++] = 0x08;
    buf[pos++] = msgType;
  }
  if (len > 0) {
    buf[pos++] = 0x12;
    let n = len;
    while (n >= 0x80) {
      buf[pos++] = (n & 0x7f) | 0x80;
      n = Math.floor(n / 128);
    }
    buf[pos++] = n;
    if (!inPlace) buf.set(content, pos);
  }
  return buf;
}

export const protobufFraming: Framing = {
  name: 'protobuf',
  encode: (msgType, content, code) => (!code && msgType < 0x80 ? encodeOutputFrame(msgType, content) : encodeResponse(msgType, content, code)),
  encodeOutput: encodeOutputFrame,
  decode(data, isBinary) {
    if (!isBinary) throw new FrameError('text frames are not part of the protocol');
    return decodeRequest(data);
  },
};

export const jsonFraming: Framing = {
  name: 'json',
  encode(msgType, content, code) {
    const obj: Record<string, unknown> = {};
    if (msgType !== 0) obj['msgType'] = msgType;
    if (content.length > 0) obj['content'] = Buffer.from(content.buffer, content.byteOffset, content.byteLength).toString('base64');
    if (code) obj['code'] = code;
    return Buffer.from(JSON.stringify(obj));
  },
  encodeOutput(msgType, content) {
    return this.encode(msgType, content);
  },
  decode(data) {
    let parsed: unknown;
    try {
      parsed = JSON.parse(data.toString('utf8'));
    } catch {
      throw new FrameError('not JSON');
    }
    if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) throw new FrameError('not a JSON object');
    const { msgType = 0, content = '' } = parsed as { msgType?: unknown; content?: unknown };
    if (typeof msgType !== 'number' || !Number.isInteger(msgType) || msgType < 0) throw new FrameError('msgType must be a non-negative integer');
    if (typeof content !== 'string' || !/^[A-Za-z0-9+/]*={0,2}$/.test(content)) throw new FrameError('content must be base64');
    return { msgType, content: Buffer.from(content, 'base64') };
  },
};
