/**
 * Encoder and decoder for the messages of message.proto, written by hand because the frames
 * are tiny and on the hot path: encoding a STDOUT frame is one allocation and one copy.
 * Byte-exactness with protobufjs (the reference implementation) is checked by the tests.
 * Browser-safe: Uint8Array only, no Buffer.
 */

export const RequestType = { PLAIN: 0, WINCH: 1, STDIN_EOF: 2, START: 3, SIGNAL: 4, RESUME: 5, OUTPUT_ACK: 6 } as const;
export type RequestType = (typeof RequestType)[keyof typeof RequestType];

export const ResponseType = { STDOUT: 0, STDERR: 1, CLOSE: 2, PING: 3, EXIT: 4, RESUMABLE: 5, INPUT_ACK: 6 } as const;
export type ResponseType = (typeof ResponseType)[keyof typeof ResponseType];

export interface RequestMessage {
  msgType: number;
  content: Uint8Array;
}

export interface ResponseMessage {
  msgType: number;
  content: Uint8Array;
  code: string;
}

export interface ExecSpec {
  argv: Uint8Array[];
  tty: boolean;
  user: string;
  workdir: string;
  env: string[];
  cols: number;
  rows: number;
  term: string;
  container: string;
  /** Field 10; optional here so that specs written before it still type-check. */
  resumable?: boolean;
}

/** What a resumable session's client is told (RESUMABLE). */
export interface ResumeTicket {
  session: string;
  token: Uint8Array;
  outputOffset: number;
  inputOffset: number;
  graceMs: number;
  /** Field 6; 0 or absent: unknown. */
  pingIntervalMs?: number;
}

/** The content of RESUME. */
export interface ResumeRequest {
  token: Uint8Array;
  outputOffset: number;
}

export class FrameError extends Error {
  readonly code = 'ENTRY_BAD_FRAME';
}

const EMPTY: Uint8Array = new Uint8Array(0);
const utf8Encoder = new TextEncoder();
const utf8Decoder = new TextDecoder('utf-8', { fatal: true });

// --- encoding -------------------------------------------------------------------------------

function varintSize(n: number): number {
  let size = 1;
  while (n >= 0x80) {
    n = Math.floor(n / 128);
    size++;
  }
  return size;
}

function writeVarint(buf: Uint8Array, pos: number, n: number): number {
  while (n >= 0x80) {
    buf[pos++] = (n & 0x7f) | 0x80;
    n = Math.floor(n / 128);
  }
  buf[pos++] = n;
  return pos;
}

/** Size of one length-delimited field with a one-byte tag. */
function bytesFieldSize(len: number): number {
  return len === 0 ? 0 : 1 + varintSize(len) + len;
}

function writeBytesField(buf: Uint8Array, pos: number, tag: number, data: Uint8Array): number {
  if (data.length === 0) return pos;
  buf[pos++] = tag;
  pos = writeVarint(buf, pos, data.length);
  buf.set(data, pos);
  return pos + data.length;
}

function typeContentSize(msgType: number, content: Uint8Array, code: Uint8Array): number {
  return (msgType === 0 ? 0 : 1 + varintSize(msgType)) + bytesFieldSize(content.length) + bytesFieldSize(code.length);
}

/** Encodes a message of shape `{ msgType = 1; bytes content = 2; }` (+ optional string 3). */
function encodeTypeContent(msgType: number, content: Uint8Array, code?: Uint8Array): Uint8Array<ArrayBuffer> {
  const codeBytes = code ?? EMPTY;
  const buf = new Uint8Array(typeContentSize(msgType, content, codeBytes));
  writeTypeContent(buf, msgType, content, codeBytes);
  return buf;
}

function writeTypeContent(buf: Uint8Array, msgType: number, content: Uint8Array, codeBytes: Uint8Array): void {
  let pos = 0;
  // proto3 omits fields holding their default value; protobufjs does the same.
  if (msgType !== 0) {
    buf[pos++] = 0x08;
    pos = writeVarint(buf, pos, msgType);
  }
  pos = writeBytesField(buf, pos, 0x12, content);
  writeBytesField(buf, pos, 0x1a, codeBytes);
}

/**
 * Encodes requests into one buffer that it keeps and reuses: the frame returned is valid until
 * the next call. It is for a sender that copies the frame before `send` returns — ws's client,
 * which masks every frame into a new buffer (without permessage-deflate), and a browser's
 * WebSocket, which snapshots what it is given — so that a bulk upload allocates one buffer per
 * message instead of two: at 400 MB/s the short-lived second copy was enough external memory
 * to set off V8's garbage collector every few tens of milliseconds.
 */
export class RequestFramer {
  private buf: Uint8Array<ArrayBuffer> = new Uint8Array(0);

  frame(msgType: number, content: Uint8Array = EMPTY): Uint8Array<ArrayBuffer> {
    const size = typeContentSize(msgType, content, EMPTY);
    if (this.buf.length < size) this.buf = new Uint8Array(size);
    const frame = this.buf.subarray(0, size);
    writeTypeContent(frame, msgType, content, EMPTY);
    return frame;
  }
}

export function encodeRequest(msgType: number, content: Uint8Array = EMPTY): Uint8Array<ArrayBuffer> {
  return encodeTypeContent(msgType, content);
}

export function encodeResponse(msgType: number, content: Uint8Array = EMPTY, code = ''): Uint8Array<ArrayBuffer> {
  return encodeTypeContent(msgType, content, code ? utf8Encoder.encode(code) : undefined);
}

export function encodeExecSpec(spec: Partial<ExecSpec>): Uint8Array<ArrayBuffer> {
  const parts: Array<[number, Uint8Array | number]> = [];
  for (const arg of spec.argv ?? []) parts.push([0x0a, arg]);
  if (spec.tty) parts.push([0x10, 1]);
  if (spec.user) parts.push([0x1a, utf8Encoder.encode(spec.user)]);
  if (spec.workdir) parts.push([0x22, utf8Encoder.encode(spec.workdir)]);
  for (const kv of spec.env ?? []) parts.push([0x2a, utf8Encoder.encode(kv)]);
  if (spec.cols) parts.push([0x30, spec.cols]);
  if (spec.rows) parts.push([0x38, spec.rows]);
  if (spec.term) parts.push([0x42, utf8Encoder.encode(spec.term)]);
  if (spec.container) parts.push([0x4a, utf8Encoder.encode(spec.container)]);
  if (spec.resumable) parts.push([0x50, 1]);
  return encodeParts(parts);
}

/** Fields in the order given; bytes fields are written even when empty (repeated bytes). */
function encodeParts(parts: Array<[number, Uint8Array | number]>): Uint8Array<ArrayBuffer> {
  let size = 0;
  for (const [, v] of parts) {
    size += typeof v === 'number' ? 1 + varintSize(v) : 1 + varintSize(v.length) + v.length;
  }
  const buf = new Uint8Array(size);
  let pos = 0;
  for (const [tag, v] of parts) {
    buf[pos++] = tag;
    if (typeof v === 'number') {
      pos = writeVarint(buf, pos, v);
    } else {
      // Repeated bytes must be written even when empty: an empty argument is an argument.
      pos = writeVarint(buf, pos, v.length);
      buf.set(v, pos);
      pos += v.length;
    }
  }
  return buf;
}

export function encodeResumeTicket(t: ResumeTicket): Uint8Array<ArrayBuffer> {
  const parts: Array<[number, Uint8Array | number]> = [];
  if (t.session) parts.push([0x0a, utf8Encoder.encode(t.session)]);
  if (t.token.length) parts.push([0x12, t.token]);
  if (t.outputOffset) parts.push([0x18, t.outputOffset]);
  if (t.inputOffset) parts.push([0x20, t.inputOffset]);
  if (t.graceMs) parts.push([0x28, t.graceMs]);
  if (t.pingIntervalMs) parts.push([0x30, t.pingIntervalMs]);
  return encodeParts(parts);
}

export function encodeResumeRequest(r: ResumeRequest): Uint8Array<ArrayBuffer> {
  const parts: Array<[number, Uint8Array | number]> = [];
  if (r.token.length) parts.push([0x0a, r.token]);
  if (r.outputOffset) parts.push([0x10, r.outputOffset]);
  return encodeParts(parts);
}

// --- decoding -------------------------------------------------------------------------------

class Reader {
  pos = 0;
  constructor(readonly buf: Uint8Array) {}

  get done(): boolean {
    return this.pos >= this.buf.length;
  }

  varint(): number {
    let result = 0;
    let mul = 1;
    for (let i = 0; i < 10; i++) {
      if (this.pos >= this.buf.length) throw new FrameError('truncated varint');
      const b = this.buf[this.pos++]!;
      result += (b & 0x7f) * mul;
      if (b < 0x80) {
        if (result > Number.MAX_SAFE_INTEGER) throw new FrameError('varint too large');
        return result;
      }
      mul *= 128;
    }
    throw new FrameError('varint too long');
  }

  bytes(): Uint8Array {
    const len = this.varint();
    const end = this.pos + len;
    if (end > this.buf.length) throw new FrameError('truncated length-delimited field');
    const out = this.buf.subarray(this.pos, end);
    this.pos = end;
    return out;
  }

  skip(wireType: number): void {
    switch (wireType) {
      case 0:
        this.varint();
        return;
      case 1:
        this.advance(8);
        return;
      case 2:
        this.bytes();
        return;
      case 5:
        this.advance(4);
        return;
      default:
        throw new FrameError(`unsupported wire type ${wireType}`);
    }
  }

  private advance(n: number): void {
    if (this.pos + n > this.buf.length) throw new FrameError('truncated fixed field');
    this.pos += n;
  }
}

function expectWireType(actual: number, expected: number, field: string): void {
  if (actual !== expected) throw new FrameError(`field ${field} has wire type ${actual}, want ${expected}`);
}

function decodeString(bytes: Uint8Array, field: string): string {
  try {
    return utf8Decoder.decode(bytes);
  } catch {
    throw new FrameError(`field ${field} is not valid UTF-8`);
  }
}

/**
 * Both messages are `msgType = 1, content = 2`; a response may add `code = 3`, which a request
 * does not have (its field 3 is skipped like any unknown field). `content` is a view into `buf`.
 */
function decodeTypeContent(buf: Uint8Array, withCode: true): ResponseMessage;
function decodeTypeContent(buf: Uint8Array, withCode: false): RequestMessage;
function decodeTypeContent(buf: Uint8Array, withCode: boolean): RequestMessage | ResponseMessage {
  const r = new Reader(buf);
  let msgType = 0;
  let content: Uint8Array = EMPTY;
  let code = '';
  while (!r.done) {
    const key = r.varint();
    const field = Math.floor(key / 8);
    const wire = key & 7;
    if (field === 1) {
      expectWireType(wire, 0, 'msgType');
      msgType = r.varint();
    } else if (field === 2) {
      expectWireType(wire, 2, 'content');
      content = r.bytes();
    } else if (field === 3 && withCode) {
      expectWireType(wire, 2, 'code');
      code = decodeString(r.bytes(), 'code');
    } else {
      r.skip(wire);
    }
  }
  return withCode ? { msgType, content, code } : { msgType, content };
}

/** Decodes a RequestMessage. `content` is a view into `buf`, not a copy. Throws FrameError. */
export function decodeRequest(buf: Uint8Array): RequestMessage {
  return decodeTypeContent(buf, false);
}

export function decodeResponse(buf: Uint8Array): ResponseMessage {
  return decodeTypeContent(buf, true);
}

export function decodeExecSpec(buf: Uint8Array): ExecSpec {
  const r = new Reader(buf);
  const spec: ExecSpec = { argv: [], tty: false, user: '', workdir: '', env: [], cols: 0, rows: 0, term: '', container: '' };
  while (!r.done) {
    const key = r.varint();
    const field = Math.floor(key / 8);
    const wire = key & 7;
    switch (field) {
      case 1:
        expectWireType(wire, 2, 'argv');
        spec.argv.push(r.bytes());
        break;
      case 2:
        expectWireType(wire, 0, 'tty');
        spec.tty = r.varint() !== 0;
        break;
      case 3:
        expectWireType(wire, 2, 'user');
        spec.user = decodeString(r.bytes(), 'user');
        break;
      case 4:
        expectWireType(wire, 2, 'workdir');
        spec.workdir = decodeString(r.bytes(), 'workdir');
        break;
      case 5:
        expectWireType(wire, 2, 'env');
        spec.env.push(decodeString(r.bytes(), 'env'));
        break;
      case 6:
        expectWireType(wire, 0, 'cols');
        spec.cols = r.varint();
        break;
      case 7:
        expectWireType(wire, 0, 'rows');
        spec.rows = r.varint();
        break;
      case 8:
        expectWireType(wire, 2, 'term');
        spec.term = decodeString(r.bytes(), 'term');
        break;
      case 9:
        expectWireType(wire, 2, 'container');
        spec.container = decodeString(r.bytes(), 'container');
        break;
      case 10:
        // Another wire type here is a field of some other client's making: skipped as unknown.
        if (wire === 0) spec.resumable = r.varint() !== 0;
        else r.skip(wire);
        break;
      default:
        r.skip(wire);
    }
  }
  return spec;
}

export function decodeResumeTicket(buf: Uint8Array): ResumeTicket {
  const r = new Reader(buf);
  const t: ResumeTicket = { session: '', token: EMPTY, outputOffset: 0, inputOffset: 0, graceMs: 0 };
  while (!r.done) {
    const key = r.varint();
    const field = Math.floor(key / 8);
    const wire = key & 7;
    if (field === 1 && wire === 2) t.session = decodeString(r.bytes(), 'session');
    else if (field === 2 && wire === 2) t.token = r.bytes();
    else if (field === 3 && wire === 0) t.outputOffset = r.varint();
    else if (field === 4 && wire === 0) t.inputOffset = r.varint();
    else if (field === 5 && wire === 0) t.graceMs = r.varint();
    else if (field === 6 && wire === 0) t.pingIntervalMs = r.varint();
    else r.skip(wire);
  }
  return t;
}

export function decodeResumeRequest(buf: Uint8Array): ResumeRequest {
  const r = new Reader(buf);
  const q: ResumeRequest = { token: EMPTY, outputOffset: 0 };
  while (!r.done) {
    const key = r.varint();
    const field = Math.floor(key / 8);
    const wire = key & 7;
    if (field === 1 && wire === 2) q.token = r.bytes();
    else if (field === 2 && wire === 0) q.outputOffset = r.varint();
    else r.skip(wire);
  }
  return q;
}

/** Content of OUTPUT_ACK and INPUT_ACK: a byte count in ASCII decimal; undefined when malformed. */
export function parseCount(content: Uint8Array): number | undefined {
  if (content.length === 0 || content.length > 16) return undefined;
  let n = 0;
  for (const b of content) {
    if (b < 0x30 || b > 0x39) return undefined;
    n = n * 10 + (b - 0x30);
  }
  return n;
}

/** Content of EXIT: an exit status in decimal digits, 0 to 255 and nothing else; undefined when malformed. */
export function parseExitStatus(text: string): number | undefined {
  if (!/^(0|[1-9][0-9]{0,2})$/.test(text)) return undefined;
  const n = Number(text);
  return n <= 255 ? n : undefined;
}

export function encodeCount(n: number): Uint8Array<ArrayBuffer> {
  return utf8Encoder.encode(String(n));
}

// --- content helpers ------------------------------------------------------------------------

/** Parses WINCH content "<cols> <rows>". Returns undefined when malformed or out of range. */
export function parseWinch(content: Uint8Array): { cols: number; rows: number } | undefined {
  if (content.length > 32) return undefined;
  let text: string;
  try {
    text = utf8Decoder.decode(content);
  } catch {
    return undefined;
  }
  const m = /^\s*(\d{1,5})\s+(\d{1,5})\s*$/.exec(text);
  if (!m) return undefined;
  const cols = Number(m[1]);
  const rows = Number(m[2]);
  if (cols < 1 || rows < 1 || cols > MAX_TERMINAL_SIDE || rows > MAX_TERMINAL_SIDE) return undefined;
  return { cols, rows };
}

/**
 * The most columns or rows a terminal may have: far past any screen (a 4K display in a
 * one-pixel font is 3840 columns), and small enough that no engine is asked for a TTY of
 * billions of cells. A resize past it is refused; a START past it is held to it.
 */
export const MAX_TERMINAL_SIDE = 10000;

export function encodeWinch(cols: number, rows: number): Uint8Array<ArrayBuffer> {
  return utf8Encoder.encode(`${cols} ${rows}`);
}

export function utf8(text: string): Uint8Array<ArrayBuffer> {
  return utf8Encoder.encode(text);
}
