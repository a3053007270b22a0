import { fileURLToPath } from 'node:url';
import protobuf from 'protobufjs';
import { describe, expect, it } from 'vitest';
import {
  decodeExecSpec,
  decodeRequest,
  decodeResponse,
  encodeExecSpec,
  encodeRequest,
  encodeResponse,
  encodeWinch,
  FrameError,
  parseWinch,
  RequestType,
  ResponseType,
  utf8,
  type ExecSpec,
  decodeResumeRequest,
  decodeResumeTicket,
  encodeCount,
  encodeResumeRequest,
  encodeResumeTicket,
  parseCount,
  parseExitStatus,
} from '../../proto/codec.js';
import { concatBytes, mulberry32, randomBytes, randomInt } from './helpers/prng.js';

const protoPath = fileURLToPath(new URL('../../proto/message.proto', import.meta.url));
const root = protobuf.loadSync(protoPath);
const PbRequest = root.lookupType('message.RequestMessage');
const PbResponse = root.lookupType('message.ResponseMessage');
const PbExecSpec = root.lookupType('message.ExecSpec');

function pbEncode(type: protobuf.Type, fields: Record<string, unknown>): Uint8Array {
  return new Uint8Array(type.encode(type.create(fields)).finish());
}

function pbDecode(type: protobuf.Type, bytes: Uint8Array): Record<string, unknown> {
  return type.toObject(type.decode(bytes), { defaults: true, arrays: true, bytes: Array }) as Record<string, unknown>;
}

function bytesOf(...values: Array<number | string>): Uint8Array {
  const parts: number[] = [];
  for (const v of values) {
    if (typeof v === 'number') parts.push(v);
    else parts.push(...utf8(v));
  }
  return new Uint8Array(parts);
}

/** Fast byte comparison (toEqual walks a 300 kB array element by element). */
function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  return Buffer.from(a.buffer, a.byteOffset, a.byteLength).equals(Buffer.from(b.buffer, b.byteOffset, b.byteLength));
}

function filled(length: number, seed: number): Uint8Array {
  return randomBytes(mulberry32(seed), length);
}

const CONTENT_LENGTHS = [0, 1, 127, 128, 16383, 16384, 300000];
const REQUEST_TYPES = [...Object.values(RequestType), 5, 127, 128, 300];
const RESPONSE_TYPES = [...Object.values(ResponseType), 5, 127, 128, 300];
const CODES = ['', 'ENTRY_NOT_FOUND', 'ENTRY_BAD_FRAME', 'é€😀 unicode', 'x'.repeat(200)];

describe('the codec against protobufjs (the reference implementation)', () => {
  it('encodes every RequestMessage byte for byte like protobufjs', () => {
    let checked = 0;
    for (const msgType of REQUEST_TYPES) {
      for (const length of CONTENT_LENGTHS) {
        const content = filled(length, msgType * 1000 + length);
        const ours = encodeRequest(msgType, content);
        const theirs = pbEncode(PbRequest, { msgType, content });
        expect(sameBytes(ours, theirs), `msgType ${msgType}, ${length} bytes`).toBe(true);
        checked++;
      }
    }
    expect(checked).toBe(REQUEST_TYPES.length * CONTENT_LENGTHS.length);
  });

  it('encodes every ResponseMessage byte for byte like protobufjs, with and without a code', () => {
    for (const msgType of RESPONSE_TYPES) {
      for (const length of CONTENT_LENGTHS) {
        for (const code of CODES) {
          const content = filled(length, msgType * 7 + length);
          const ours = encodeResponse(msgType, content, code);
          const theirs = pbEncode(PbResponse, { msgType, content, code });
          expect(sameBytes(ours, theirs), `msgType ${msgType}, ${length} bytes, code ${code}`).toBe(true);
        }
      }
    }
  });

  it('decodes protobufjs RequestMessage bytes to the same fields', () => {
    for (const msgType of REQUEST_TYPES) {
      for (const length of CONTENT_LENGTHS) {
        const content = filled(length, length + 1);
        const decoded = decodeRequest(pbEncode(PbRequest, { msgType, content }));
        expect(decoded.msgType).toBe(msgType);
        expect(sameBytes(decoded.content, content)).toBe(true);
      }
    }
  });

  it('decodes protobufjs ResponseMessage bytes to the same fields', () => {
    for (const msgType of RESPONSE_TYPES) {
      for (const code of CODES) {
        for (const length of [0, 1, 128, 16384]) {
          const content = filled(length, length + 2);
          const decoded = decodeResponse(pbEncode(PbResponse, { msgType, content, code }));
          expect(decoded.msgType).toBe(msgType);
          expect(decoded.code).toBe(code);
          expect(sameBytes(decoded.content, content)).toBe(true);
        }
      }
    }
  });

  it('produces bytes that protobufjs decodes to the same fields', () => {
    const content = filled(300, 9);
    const response = pbDecode(PbResponse, encodeResponse(ResponseType.CLOSE, content, 'ENTRY_DRAINING'));
    expect(response['msgType']).toBe(ResponseType.CLOSE);
    expect(response['code']).toBe('ENTRY_DRAINING');
    expect(response['content']).toEqual([...content]);
    const request = pbDecode(PbRequest, encodeRequest(RequestType.SIGNAL, utf8('INT')));
    expect(request['msgType']).toBe(RequestType.SIGNAL);
    expect(request['content']).toEqual([...utf8('INT')]);
  });

  const specs: Array<Partial<ExecSpec>> = [
    {},
    { argv: [utf8('ls'), utf8('-l')] },
    { argv: [new Uint8Array(0)] },
    { argv: [utf8('printf'), new Uint8Array(0), utf8('%s'), new Uint8Array([0xff, 0xfe, 0x80]), new Uint8Array(0)] },
    { tty: true },
    { tty: true, cols: 120, rows: 40, term: 'xterm-256color' },
    { cols: 127, rows: 128 },
    { cols: 16383, rows: 16384 },
    { cols: 0xffffffff, rows: 1 },
    { user: 'root', workdir: '/srv/app' },
    { argv: [utf8('sh')], container: 'sidecar' },
    { user: '1000:1000', workdir: '/tmp/é€😀' },
    { env: ['A=1', 'B=', 'C=x=y', 'UNICODE=é€😀'] },
    { env: [''] },
    {
      argv: [utf8('sh'), utf8('-c'), utf8('echo "$A"'), filled(300, 3).map((b) => b || 1)],
      tty: true,
      user: 'nobody',
      workdir: '/',
      env: ['A=1', 'B=2'],
      cols: 80,
      rows: 24,
      term: 'vt100',
    },
  ];

  it('encodes every ExecSpec byte for byte like protobufjs', () => {
    for (const spec of specs) {
      const ours = encodeExecSpec(spec);
      const theirs = pbEncode(PbExecSpec, { ...spec });
      expect(ours, JSON.stringify(spec)).toEqual(theirs);
    }
  });

  it('decodes protobufjs ExecSpec bytes to the same fields', () => {
    for (const spec of specs) {
      const decoded = decodeExecSpec(pbEncode(PbExecSpec, { ...spec }));
      expect(decoded).toEqual({
        argv: spec.argv ?? [],
        tty: spec.tty ?? false,
        user: spec.user ?? '',
        workdir: spec.workdir ?? '',
        env: spec.env ?? [],
        cols: spec.cols ?? 0,
        rows: spec.rows ?? 0,
        term: spec.term ?? '',
        container: spec.container ?? '',
      });
    }
  });
});

describe('the codec byte layout of the original protocol', () => {
  it('encodes PLAIN "a" as 12 01 61 (msgType 0 is omitted)', () => {
    expect([...encodeRequest(RequestType.PLAIN, utf8('a'))]).toEqual([0x12, 0x01, 0x61]);
  });

  it('encodes WINCH "120 40" as 08 01 12 06 followed by the ASCII', () => {
    expect([...encodeRequest(RequestType.WINCH, encodeWinch(120, 40))]).toEqual([...bytesOf(0x08, 0x01, 0x12, 0x06, '120 40')]);
  });

  it('encodes PING "ping" as 08 03 12 04 followed by the ASCII', () => {
    expect([...encodeResponse(ResponseType.PING, utf8('ping'))]).toEqual([...bytesOf(0x08, 0x03, 0x12, 0x04, 'ping')]);
  });

  it('encodes a CLOSE without a code exactly as the original broker did', () => {
    expect([...encodeResponse(ResponseType.CLOSE, utf8('bye'))]).toEqual([...bytesOf(0x08, 0x02, 0x12, 0x03, 'bye')]);
  });

  it('encodes a CLOSE with a code as field 3', () => {
    expect([...encodeResponse(ResponseType.CLOSE, utf8('bye'), 'ENTRY_NOT_FOUND')]).toEqual([
      ...bytesOf(0x08, 0x02, 0x12, 0x03, 'bye', 0x1a, 0x0f, 'ENTRY_NOT_FOUND'),
    ]);
  });

  it('encodes an empty STDOUT and an empty PLAIN as zero bytes', () => {
    expect(encodeResponse(ResponseType.STDOUT).length).toBe(0);
    expect(encodeRequest(RequestType.PLAIN).length).toBe(0);
    expect(decodeRequest(new Uint8Array(0))).toEqual({ msgType: 0, content: new Uint8Array(0) });
    expect(decodeResponse(new Uint8Array(0))).toEqual({ msgType: 0, content: new Uint8Array(0), code: '' });
  });

  it('encodes a 128-byte STDOUT with a two-byte length', () => {
    const bytes = encodeResponse(ResponseType.STDOUT, new Uint8Array(128).fill(0x41));
    expect([...bytes.subarray(0, 3)]).toEqual([0x12, 0x80, 0x01]);
    expect(bytes.length).toBe(131);
  });

  it('decodes content as a view into the frame, not a copy', () => {
    const frame = bytesOf(0x12, 0x03, 'abc');
    const { content } = decodeRequest(frame);
    expect(content.buffer).toBe(frame.buffer);
    expect(content.byteOffset).toBe(2);
  });
});

/** Unknown fields of every wire type, including a field number that needs a two-byte tag. */
const UNKNOWN_FIELDS = concatBytes([
  bytesOf(0xa0, 0x01, 0x96, 0x01), // field 20, varint 150
  bytesOf(0x51, 1, 2, 3, 4, 5, 6, 7, 8), // field 10, fixed64
  bytesOf(0x5a, 0x03, 'xyz'), // field 11, length-delimited
  bytesOf(0x65, 1, 2, 3, 4), // field 12, fixed32
  bytesOf(0xc0, 0x3e, 0xff, 0xff, 0xff, 0xff, 0x0f), // field 1000, varint
  bytesOf(0xc2, 0x3e, 0x00), // field 1000, empty length-delimited
]);

describe('the codec skipping unknown fields', () => {
  it('skips unknown fields of wire types 0, 1, 2 and 5 in a RequestMessage', () => {
    const frame = concatBytes([UNKNOWN_FIELDS, bytesOf(0x08, 0x01), UNKNOWN_FIELDS, bytesOf(0x12, 0x05, '80 24'), UNKNOWN_FIELDS]);
    const decoded = decodeRequest(frame);
    expect(decoded.msgType).toBe(RequestType.WINCH);
    expect(Buffer.from(decoded.content).toString()).toBe('80 24');
    // protobufjs reads the same frame the same way.
    const reference = pbDecode(PbRequest, frame);
    expect(reference['msgType']).toBe(RequestType.WINCH);
    expect(reference['content']).toEqual([...utf8('80 24')]);
  });

  it('skips unknown fields of every wire type in a ResponseMessage', () => {
    const frame = concatBytes([bytesOf(0x08, 0x02), UNKNOWN_FIELDS, bytesOf(0x12, 0x02, 'ok', 0x1a, 0x01, 'C'), UNKNOWN_FIELDS]);
    expect(decodeResponse(frame)).toEqual({ msgType: 2, content: utf8('ok'), code: 'C' });
  });

  it('skips unknown fields of every wire type in an ExecSpec', () => {
    const frame = concatBytes([UNKNOWN_FIELDS, bytesOf(0x0a, 0x02, 'ls'), UNKNOWN_FIELDS, bytesOf(0x10, 0x01, 0x2a, 0x03, 'A=1', 0x30, 0x50, 0x38, 0x18)]);
    const spec = decodeExecSpec(frame);
    expect(spec.argv).toEqual([utf8('ls')]);
    expect(spec.tty).toBe(true);
    expect(spec.env).toEqual(['A=1']);
    expect(spec.cols).toBe(80);
    expect(spec.rows).toBe(24);
  });

  it('keeps the last value when a scalar field repeats, like protobufjs', () => {
    const frame = bytesOf(0x08, 0x01, 0x12, 0x01, 'a', 0x08, 0x03, 0x12, 0x01, 'b');
    const decoded = decodeRequest(frame);
    expect(decoded.msgType).toBe(3);
    expect(Buffer.from(decoded.content).toString()).toBe('b');
    expect(pbDecode(PbRequest, frame)['msgType']).toBe(3);
  });
});

const MALFORMED: Array<[string, Uint8Array]> = [
  ['a truncated varint', bytesOf(0x08)],
  ['a varint cut after a continuation byte', bytesOf(0x08, 0x80)],
  ['a truncated key', bytesOf(0x80)],
  ['a varint longer than ten bytes', bytesOf(0x08, ...new Array<number>(10).fill(0xff), 0x01)],
  ['a varint beyond 2^53', bytesOf(0x08, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f)],
  ['a length-delimited field longer than the frame', bytesOf(0x12, 0x05, 'abc')],
  ['a length larger than any buffer', bytesOf(0x12, 0xff, 0xff, 0xff, 0xff, 0x0f)],
  ['a length beyond 2^53', bytesOf(0x12, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01)],
  ['a truncated fixed64', bytesOf(0x51, 1, 2, 3)],
  ['a truncated fixed32', bytesOf(0x65, 1)],
  ['wire type 3 (start group)', bytesOf(0x4b)],
  ['wire type 4 (end group)', bytesOf(0x4c)],
  ['wire type 6', bytesOf(0x4e, 0x00)],
  ['wire type 7', bytesOf(0x4f, 0x00)],
  ['msgType sent as length-delimited', bytesOf(0x0a, 0x01, 0x01)],
  ['content sent as a varint', bytesOf(0x10, 0x01)],
];

describe('the codec refusing malformed input', () => {
  for (const [what, frame] of MALFORMED) {
    it(`decodes ${what} as a FrameError`, () => {
      expect(() => decodeRequest(frame)).toThrow(FrameError);
    });
  }

  it('gives FrameError the code ENTRY_BAD_FRAME', () => {
    try {
      decodeRequest(bytesOf(0x08));
      expect.unreachable();
    } catch (err) {
      expect(err).toBeInstanceOf(FrameError);
      expect((err as FrameError).code).toBe('ENTRY_BAD_FRAME');
    }
  });

  it('decodes a CLOSE code that is not UTF-8 as a FrameError', () => {
    expect(() => decodeResponse(bytesOf(0x08, 0x02, 0x1a, 0x02, 0xc3, 0x28))).toThrow(FrameError);
  });

  it('decodes an ExecSpec whose env, user or term is not UTF-8 as a FrameError', () => {
    expect(() => decodeExecSpec(bytesOf(0x2a, 0x01, 0xff))).toThrow(FrameError);
    expect(() => decodeExecSpec(bytesOf(0x1a, 0x01, 0xff))).toThrow(FrameError);
    expect(() => decodeExecSpec(bytesOf(0x42, 0x01, 0xff))).toThrow(FrameError);
  });

  it('decodes an ExecSpec field with the wrong wire type as a FrameError', () => {
    expect(() => decodeExecSpec(bytesOf(0x08, 0x01))).toThrow(FrameError); // argv as varint
    expect(() => decodeExecSpec(bytesOf(0x12, 0x00))).toThrow(FrameError); // tty as bytes
    expect(() => decodeExecSpec(bytesOf(0x32, 0x00))).toThrow(FrameError); // cols as bytes
  });

  it('decodes every truncation of a valid frame as a FrameError, unless it ends on a field boundary', () => {
    const frame = encodeResponse(ResponseType.CLOSE, filled(200, 4), 'ENTRY_NOT_FOUND');
    // 08 02 | 12 c8 01 <200 bytes> | 1a 0f <15 bytes>
    const boundaries = new Set([2, 2 + 3 + 200]);
    expect(frame.length).toBe(2 + 3 + 200 + 2 + 15);
    for (let cut = 1; cut < frame.length; cut++) {
      if (boundaries.has(cut)) {
        expect(decodeResponse(frame.subarray(0, cut)).msgType).toBe(ResponseType.CLOSE);
      } else {
        expect(() => decodeResponse(frame.subarray(0, cut)), `cut at ${cut}`).toThrow(FrameError);
      }
    }
  });

  it('returns or throws FrameError (never anything else, never hangs) on 20,000 random and mutated frames', () => {
    const rand = mulberry32(0x5eed);
    const seeds = [
      encodeRequest(RequestType.WINCH, utf8('120 40')),
      encodeRequest(RequestType.PLAIN, filled(40, 5)),
      encodeResponse(ResponseType.CLOSE, utf8('bye'), 'ENTRY_NOT_FOUND'),
      encodeExecSpec({ argv: [utf8('ls'), new Uint8Array(0)], tty: true, env: ['A=1'], cols: 300, rows: 50, term: 'xterm' }),
      UNKNOWN_FIELDS,
    ];
    const deadline = Date.now() + 4000;
    let runs = 0;
    let accepted = 0;
    let refused = 0;
    for (; runs < 20_000 && Date.now() < deadline; runs++) {
      let frame: Uint8Array;
      if (runs % 2 === 0) {
        frame = randomBytes(rand, randomInt(rand, 48));
      } else {
        const seed = seeds[randomInt(rand, seeds.length)]!;
        frame = seed.slice(0, randomInt(rand, seed.length + 1));
        const flips = 1 + randomInt(rand, 3);
        for (let i = 0; i < flips && frame.length > 0; i++) frame[randomInt(rand, frame.length)] = randomInt(rand, 256);
      }
      for (const decode of [decodeRequest, decodeResponse, decodeExecSpec] as Array<(b: Uint8Array) => unknown>) {
        try {
          const result = decode(frame);
          expect(result).toBeTypeOf('object');
          accepted++;
        } catch (err) {
          if (!(err instanceof FrameError)) throw new Error(`decoder threw ${String(err)} for ${Buffer.from(frame).toString('hex')}`);
          refused++;
        }
      }
      // Whenever both decoders accept a request, they agree on its content.
      let ours: ReturnType<typeof decodeRequest> | undefined;
      let theirs: Record<string, unknown> | undefined;
      try {
        ours = decodeRequest(frame);
        theirs = pbDecode(PbRequest, frame);
      } catch {
        // one of them refused: nothing to compare
      }
      if (ours && theirs) expect([...ours.content]).toEqual(theirs['content']);
    }
    expect(runs).toBeGreaterThan(1000);
    expect(accepted).toBeGreaterThan(0);
    expect(refused).toBeGreaterThan(0);
  });
});

describe('parseWinch', () => {
  it('accepts "120 40"', () => {
    expect(parseWinch(utf8('120 40'))).toEqual({ cols: 120, rows: 40 });
  });

  it('accepts surrounding and repeated spaces, as in " 80  24 "', () => {
    expect(parseWinch(utf8(' 80  24 '))).toEqual({ cols: 80, rows: 24 });
  });

  it('accepts the limits 1 and 10000', () => {
    expect(parseWinch(utf8('1 1'))).toEqual({ cols: 1, rows: 1 });
    expect(parseWinch(utf8('10000 10000'))).toEqual({ cols: 10000, rows: 10000 });
  });

  it('round-trips encodeWinch', () => {
    expect(parseWinch(encodeWinch(213, 57))).toEqual({ cols: 213, rows: 57 });
  });

  for (const bad of ['0 10', '10 0', 'abc', '99999999 1', '10001 5', '5 10001', '80', '80 24 1', '-80 24', '80x24', '8.0 24', '', ' ']) {
    it(`rejects ${JSON.stringify(bad)}`, () => {
      expect(parseWinch(utf8(bad))).toBeUndefined();
    });
  }

  it('rejects content longer than 32 bytes even when it would parse', () => {
    expect(parseWinch(utf8(`${' '.repeat(29)}1 1`))).toEqual({ cols: 1, rows: 1 });
    expect(parseWinch(utf8(`${' '.repeat(30)}1 1`))).toBeUndefined();
  });

  it('rejects content that is not UTF-8', () => {
    expect(parseWinch(new Uint8Array([0x38, 0x30, 0x20, 0xff]))).toBeUndefined();
  });
});

describe('ExecSpec round trip', () => {
  it('keeps empty-string arguments, non-UTF-8 arguments and the env list', () => {
    const spec: ExecSpec = {
      argv: [utf8('prog'), new Uint8Array(0), new Uint8Array([0xff, 0x0a, 0x0a]), new Uint8Array([0xc3]), utf8('é€😀'), new Uint8Array(0)],
      tty: false,
      user: '1000:1000',
      workdir: '/work dir',
      env: ['A=1', 'EMPTY=', 'LANG=C.UTF-8', 'X=é'],
      cols: 0,
      rows: 0,
      term: '',
      container: '',
    };
    const decoded = decodeExecSpec(encodeExecSpec(spec));
    expect(decoded).toEqual(spec);
    expect(decoded.argv).toHaveLength(6);
    expect(decoded.argv[1]).toHaveLength(0);
  });

  it('keeps tty, size and term', () => {
    const spec: ExecSpec = { argv: [], tty: true, user: '', workdir: '', env: [], cols: 300, rows: 100, term: 'screen', container: '' };
    expect(decodeExecSpec(encodeExecSpec(spec))).toEqual(spec);
  });

  it('keeps the container choice, and encodes it as protobufjs does', async () => {
    const spec: ExecSpec = { argv: [utf8('ps')], tty: false, user: '', workdir: '', env: [], cols: 0, rows: 0, term: '', container: 'sidecar' };
    const bytes = encodeExecSpec(spec);
    expect(decodeExecSpec(bytes)).toEqual(spec);
    const root = await protobuf.load(protoPath);
    const Type = root.lookupType('message.ExecSpec');
    expect(Type.decode(bytes).toJSON()).toMatchObject({ container: 'sidecar' });
  });

  it('encodes the all-default spec as zero bytes', () => {
    expect(encodeExecSpec({}).length).toBe(0);
    expect(encodeExecSpec({ argv: [], tty: false, env: [], cols: 0 }).length).toBe(0);
  });
});

describe('resume messages, against protobufjs', () => {
  const PbTicket = root.lookupType('message.ResumeTicket');
  const PbResume = root.lookupType('message.ResumeRequest');
  const token = Uint8Array.from({ length: 32 }, (_, i) => (i * 37 + 5) & 0xff);

  it('encodes a ResumeTicket byte for byte as protobufjs does, and decodes it back', () => {
    const t = { session: '5f1c7d2e-0000-4000-8000-00000000abcd', token, outputOffset: 14_888_896, inputOffset: 70_000, graceMs: 60_000, pingIntervalMs: 10_000 };
    const mine = encodeResumeTicket(t);
    expect(Buffer.from(mine)).toEqual(Buffer.from(pbEncode(PbTicket, { session: t.session, token: t.token, outputOffset: t.outputOffset, inputOffset: t.inputOffset, graceMs: t.graceMs, pingIntervalMs: t.pingIntervalMs })));
    expect(decodeResumeTicket(mine)).toEqual({ ...t, token: mine.subarray(40, 72) });
  });

  it('encodes a ResumeRequest as protobufjs does; offsets past 2^32 survive', () => {
    const r = { token, outputOffset: 2 ** 40 + 3 };
    const mine = encodeResumeRequest(r);
    expect(Buffer.from(mine)).toEqual(Buffer.from(pbEncode(PbResume, { token, outputOffset: r.outputOffset })));
    expect(decodeResumeRequest(mine).outputOffset).toBe(r.outputOffset);
    expect(Buffer.from(decodeResumeRequest(mine).token)).toEqual(Buffer.from(token));
  });

  it('ExecSpec.resumable is field 10 as protobufjs has it; byte counts are strict ASCII decimal', () => {
    expect(Buffer.from(encodeExecSpec({ resumable: true }))).toEqual(Buffer.from(pbEncode(PbExecSpec, { resumable: true })));
    expect(decodeExecSpec(encodeExecSpec({ resumable: true })).resumable).toBe(true);
    expect(parseCount(encodeCount(1_234_567))).toBe(1_234_567);
    for (const bad of ['', '-1', '1e3', ' 1', '12345678901234567']) expect(parseCount(utf8(bad)), bad).toBeUndefined();
  });

  it('an exit status is decimal digits from 0 to 255, with nothing around them', () => {
    for (const n of [0, 1, 7, 127, 255]) expect(parseExitStatus(String(n))).toBe(n);
    for (const bad of ['', '256', '-1', '007', '1.0', ' 1', '1\n', '3x', '1e2', '0x1', '\u0661']) expect(parseExitStatus(bad), JSON.stringify(bad)).toBeUndefined();
  });
});
