import { createServer, type Server, type Socket } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type ExecOptions, run, spawn } from '../../client/index.js';
import { decodeExecSpec, decodeRequest, encodeResponse, type ExecSpec, MAX_TERMINAL_SIDE, RequestType, ResponseType, utf8 } from '../../proto/codec.js';
import { FakeBroker } from '../helpers/fake-broker.js';

/**
 * Options a script gets wrong (a JavaScript caller, or one past the types with `as`) are said as
 * the caller's mistake: a TypeError with Node's code, naming the option, before anything is sent.
 * Before, they came out as "not a broker address", a TypeError from inside the client, or a START
 * the broker could not read (ENTRY_BAD_FRAME), and spawn() threw some of them instead of rejecting.
 */
describe('run() and spawn() with wrong options', () => {
  let server: Server;
  let connections = 0;
  const sockets: Socket[] = [];
  let good: ExecOptions;

  beforeAll(async () => {
    server = createServer((s) => {
      connections++;
      sockets.push(s);
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const { port } = server.address() as { port: number };
    good = { broker: `http://127.0.0.1:${port}`, token: 't', target: { app: 'shop', proc: 'web', instance: 1 }, command: ['true'] };
  });
  afterAll(async () => {
    for (const s of sockets) s.destroy();
    await new Promise((r) => server.close(r));
  });

  const wrong: Array<[string, Record<string, unknown>, string, RegExp]> = [
    ['command as a string', { command: 'ls -l' }, 'ERR_INVALID_ARG_TYPE', /^command must be an array/],
    ['no command', { command: undefined }, 'ERR_INVALID_ARG_TYPE', /^command must be an array/],
    ['a number among the arguments', { command: ['sleep', 1] }, 'ERR_INVALID_ARG_TYPE', /^command\[1\] must be a string or a Uint8Array, got 1/],
    ['null among the arguments', { command: ['echo', null] }, 'ERR_INVALID_ARG_TYPE', /^command\[1\] must be/],
    ['no target', { target: undefined }, 'ERR_INVALID_ARG_TYPE', /^target must be an object/],
    ['a target without proc', { target: { app: 'shop', instance: 1 } }, 'ERR_INVALID_ARG_TYPE', /^target\.proc must be a string/],
    ['an empty app', { target: { app: '', proc: 'web', instance: 1 } }, 'ERR_INVALID_ARG_VALUE', /^target\.app must be a non-empty string/],
    ['an instance that is an object', { target: { app: 'shop', proc: 'web', instance: { n: 1 } } }, 'ERR_INVALID_ARG_TYPE', /^target\.instance must be a string or a number/],
    ['an instance that is NaN', { target: { app: 'shop', proc: 'web', instance: NaN } }, 'ERR_INVALID_ARG_VALUE', /^target\.instance must be/],
    ['no token', { token: undefined }, 'ERR_INVALID_ARG_TYPE', /^token must be a string/],
    ['no broker', { broker: undefined }, 'ERR_INVALID_ARG_TYPE', /^broker must be a string/],
    ['cols as a string', { tty: true, cols: '80', rows: 24 }, 'ERR_INVALID_ARG_TYPE', /^cols must be a whole number/],
    ['null as an env value', { env: { A: '1', B: null } }, 'ERR_INVALID_ARG_TYPE', /^env\["B"\] must be a string \(or undefined, to leave it out\), got null/],
    ['an object as an env value', { env: { C: { x: 1 } } }, 'ERR_INVALID_ARG_TYPE', /^env\["C"\] must be a string/],
    ['a number in an env list', { env: ['A=1', 2] }, 'ERR_INVALID_ARG_TYPE', /^env\[1\] must be a string \(K=V\), got 2/],
    ['env as a string', { env: 'A=1' }, 'ERR_INVALID_ARG_TYPE', /^env must be an object or an array/],
    ['a signal that is no AbortSignal', { signal: { aborted: false } }, 'ERR_INVALID_ARG_TYPE', /^signal must be an AbortSignal, got type object/],
  ];

  for (const [name, change, code, message] of wrong) {
    it(`rejects ${name} with a TypeError, sending nothing`, async () => {
      const options = { ...good, ...change } as unknown as ExecOptions;
      const before = connections;
      let spawned: Promise<unknown> | undefined;
      expect(() => (spawned = spawn(options)), 'spawn() rejects, it does not throw').not.toThrow();
      for (const call of [spawned!, run(options)]) {
        const err = (await call.then(
          () => expect.unreachable('resolved'),
          (e: unknown) => e,
        )) as Error & { code?: string };
        expect(err).toBeInstanceOf(TypeError);
        expect(err.code).toBe(code);
        expect(err.message).toMatch(message);
      }
      expect(connections).toBe(before);
    });
  }

  // A stdin run() cannot pipe used to fail only once the session was open, leaving it open
  // (the command waiting for input, the connection holding the process); now nothing is sent.
  for (const [name, stdin] of [['null', null], ['a number', 42], ['an array of buffers', [Buffer.from('a')]]] as const) {
    it(`rejects run() with ${name} as stdin with a TypeError, sending nothing`, async () => {
      const before = connections;
      const err = (await run({ ...good, stdin: stdin as unknown as string }).catch((e: unknown) => e)) as Error & { code?: string };
      expect(err).toBeInstanceOf(TypeError);
      expect(err.code).toBe('ERR_INVALID_ARG_TYPE');
      expect(err.message).toMatch(/^stdin must be a string, a Uint8Array or a Readable/);
      expect(connections).toBe(before);
    });
  }

  // The broker cut a START's side past its limit down to it, unsaid, where resize() with the same
  // size throws: spawn() and run() now refuse it as resize() does, before anything connects.
  const outOfRange: Array<[string, Record<string, unknown>, 'cols' | 'rows', string]> = [
    ['cols past the limit', { cols: MAX_TERMINAL_SIDE + 1, rows: 24 }, 'cols', String(MAX_TERMINAL_SIDE + 1)],
    ['rows past the limit', { cols: 80, rows: 50_000 }, 'rows', '50000'],
    ['negative rows', { cols: 80, rows: -1 }, 'rows', '-1'],
    ['cols in part cells', { cols: 80.5, rows: 24 }, 'cols', '80.5'],
    ['cols that are NaN', { cols: NaN, rows: 24 }, 'cols', 'NaN'],
    ['rows that are Infinity', { cols: 80, rows: Infinity }, 'rows', 'Infinity'],
  ];
  for (const [name, size, side, got] of outOfRange) {
    it(`rejects ${name} with the RangeError resize() throws, sending nothing`, async () => {
      const options = { ...good, tty: true, ...size } as ExecOptions;
      const before = connections;
      let spawned: Promise<unknown> | undefined;
      expect(() => (spawned = spawn(options)), 'spawn() rejects, it does not throw').not.toThrow();
      for (const call of [spawned!, run(options)]) {
        const err = await call.then(
          () => expect.unreachable('resolved'),
          (e: unknown) => e,
        );
        expect(err).toBeInstanceOf(RangeError);
        expect(err).toMatchObject({ code: 'ERR_OUT_OF_RANGE', message: `${side} must be a whole number of cells from 1 to ${MAX_TERMINAL_SIDE}, got ${got}` });
      }
      expect(connections).toBe(before);
    });
  }

  it('refuses a first size as resize() refuses the same size, and sends the sizes it takes as they are', async () => {
    const starts: ExecSpec[] = [];
    const fake = new FakeBroker((_n, req, socket, head) =>
      fake.accept(req, socket, head, (ws) =>
        ws.on('message', (data: Buffer) => {
          const m = decodeRequest(data);
          if (m.msgType !== RequestType.START) return;
          starts.push(decodeExecSpec(m.content));
          ws.send(encodeResponse(ResponseType.STDOUT, utf8('ready\n')));
        }),
      ),
    );
    await fake.start();
    try {
      const tty = { ...good, broker: fake.url, tty: true, resume: false };
      const proc = await spawn({ ...tty, cols: MAX_TERMINAL_SIDE, rows: 1 });
      await new Promise((resolve) => proc.stdout.once('data', resolve));
      for (const [cols, rows] of [[MAX_TERMINAL_SIDE + 1, 24], [80, -3], [0.5, 24]] as const) {
        let thrown: unknown;
        try {
          proc.resize(cols, rows);
        } catch (err) {
          thrown = err;
        }
        const rejected = await spawn({ ...tty, cols, rows }).then(
          () => expect.unreachable('resolved'),
          (e: unknown) => e,
        );
        expect(rejected).toBeInstanceOf(RangeError);
        expect({ ...(rejected as object), message: (rejected as Error).message }).toEqual({ ...(thrown as object), message: (thrown as Error).message });
      }
      proc.close();
      await proc.wait().catch(() => undefined);
      // 0 (or left out) is the broker's default size, as on the wire.
      const plain = await spawn({ ...tty, cols: 0, rows: 0 });
      await new Promise((resolve) => plain.stdout.once('data', resolve));
      plain.close();
      await plain.wait().catch(() => undefined);
      expect(starts.map((s) => [s.cols, s.rows])).toEqual([
        [MAX_TERMINAL_SIDE, 1],
        [0, 0],
      ]);
    } finally {
      await fake.stop();
    }
  });

  it('leaves out env values that are undefined and sends numbers and booleans as text, as child_process does', async () => {
    const starts: ExecSpec[] = [];
    const fake = new FakeBroker((_n, req, socket, head) =>
      fake.accept(req, socket, head, (ws) =>
        ws.once('message', (data: Buffer) => {
          starts.push(decodeExecSpec(decodeRequest(data).content));
          ws.send(encodeResponse(ResponseType.EXIT, utf8('0')));
          ws.close();
        }),
      ),
    );
    await fake.start();
    try {
      const env = { A: 'a', GONE: undefined, PORT: 8080, DEBUG: false } as unknown as Record<string, string>;
      expect((await run({ ...good, broker: fake.url, resume: false, env })).exitCode).toBe(0);
      expect(starts.map((s) => s.env)).toEqual([['A=a', 'PORT=8080', 'DEBUG=false']]);
    } finally {
      await fake.stop();
    }
  });

  it('takes an instance as a string or a number, raw bytes among the arguments, and no arguments at all', async () => {
    // Accepted: the call goes on to connect (here to a server that never answers the upgrade).
    for (const change of [{ target: { app: 'shop', proc: 'web', instance: 'api-7d4b9c-x2x9q' } }, { command: ['printf', Buffer.from([0xff])] }, { command: [] }]) {
      const before = connections;
      const err = (await run({ ...good, ...change, connectTimeoutMs: 200 }).catch((e: unknown) => e)) as Error & { code?: string };
      expect(err.code).toBe('ENTRY_CONNECT_FAILED');
      expect(connections).toBe(before + 1);
    }
  });
});
