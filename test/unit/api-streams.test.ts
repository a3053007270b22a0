import type { Duplex } from 'node:stream';
import { afterEach, describe, expect, it } from 'vitest';
import type WebSocket from 'ws';
import { run, spawn } from '../../client/index.js';
import { decodeRequest, encodeResponse, MAX_TERMINAL_SIDE, RequestType, ResponseType, utf8 } from '../../proto/codec.js';
import { FakeBroker } from '../helpers/fake-broker.js';

/** spawn()'s output streams against a stand-in broker on loopback that sends more than a reader takes. */

const target = { app: 'shop', proc: 'web', instance: 1 };
/** Far past what the client holds for one stream before it stops reading. */
const OUTPUT_BYTES = 4 * 1024 * 1024;

/** A broker that, once START comes, sends OUTPUT_BYTES of stdout and then (unless told not to) the exit. */
async function flooding(opts: { exit: boolean }, onClose: (at: number) => void = () => undefined): Promise<FakeBroker> {
  const fake = new FakeBroker((_n, req, socket, head) =>
    fake.accept(req, socket, head, (ws: WebSocket) => {
      ws.once('close', () => onClose(Date.now()));
      ws.once('message', (data: Buffer) => {
        if (decodeRequest(data).msgType !== RequestType.START) return;
        const chunk = Buffer.alloc(64 * 1024, 0x61);
        for (let sent = 0; sent < OUTPUT_BYTES; sent += chunk.length) ws.send(encodeResponse(ResponseType.STDOUT, chunk));
        if (!opts.exit) return;
        ws.send(encodeResponse(ResponseType.EXIT, utf8('0')));
        ws.send(encodeResponse(ResponseType.CLOSE, utf8('exited with code 0')));
        ws.close();
      });
    }),
  );
  return fake.start();
}

describe('spawn() output a reader stops taking', () => {
  let fake: FakeBroker | undefined;
  afterEach(async () => {
    await fake?.stop();
    fake = undefined;
  });

  it('does not hold the session when the reader destroys stdout: wait() gives the exit code', async () => {
    fake = await flooding({ exit: true });
    const proc = await spawn({ broker: fake.url, token: 't', target, command: ['yes'], resume: false });
    // The first chunk, then out of the loop: the stream is destroyed with megabytes still coming.
    for await (const chunk of proc.stdout) {
      expect((chunk as Buffer).length).toBeGreaterThan(0);
      break;
    }
    expect(proc.stdout.destroyed).toBe(true);
    expect(await proc.wait()).toBe(0);
  }, 15_000);

  it('ends the session at once on close() while output sits unread, not after the close handshake times out', async () => {
    let closedAt = 0;
    fake = await flooding({ exit: false }, (at) => (closedAt = at));
    const proc = await spawn({ broker: fake.url, token: 't', target, command: ['yes'], resume: false });
    // Unread until the stream's buffer is full and the client has stopped reading the socket.
    await expect.poll(() => proc.stdout.readableLength, { timeout: 10_000 }).toBeGreaterThanOrEqual(proc.stdout.readableHighWaterMark);
    const asked = Date.now();
    proc.close();
    await expect(proc.wait()).rejects.toMatchObject({ code: 'ENTRY_CLOSED' });
    await expect.poll(() => closedAt, { timeout: 10_000 }).toBeGreaterThan(0);
    // ws gives a peer that never reads the close 30 s.
    expect(closedAt - asked).toBeLessThan(5_000);
  }, 30_000);

  it("tells a refusal by the broker's words, without the 'entry:' its original clients print", async () => {
    fake = new FakeBroker((_n, req, socket, head) =>
      fake!.accept(req, socket, head, (ws: WebSocket) => {
        ws.send(encodeResponse(ResponseType.CLOSE, utf8('entry: not permitted'), 'ENTRY_FORBIDDEN'));
        ws.close();
      }),
    );
    await fake.start();
    const proc = await spawn({ broker: fake.url, token: 't', target, command: ['true'], resume: false });
    await expect(proc.wait()).rejects.toMatchObject({ code: 'ENTRY_FORBIDDEN', message: 'not permitted' });
  });

  it('ends the session when the signal given to run() aborts, and rejects with its reason', async () => {
    let closed!: () => void;
    const sessionEnded = new Promise<void>((resolve) => (closed = resolve));
    const controller = new AbortController();
    fake = new FakeBroker((_n, req, socket, head) =>
      fake!.accept(req, socket, head, (ws: WebSocket) => {
        ws.once('close', () => closed());
        ws.once('message', (data: Buffer) => {
          if (decodeRequest(data).msgType !== RequestType.START) return;
          // Running, and never ending by itself: only the abort ends it.
          ws.send(encodeResponse(ResponseType.STDOUT, utf8('working\n')));
          controller.abort(new Error('enough'));
        });
      }),
    );
    await fake.start();
    await expect(run({ broker: fake.url, token: 't', target, command: ['sleep', 'forever'], resume: false, signal: controller.signal })).rejects.toThrow('enough');
    await sessionEnded;
    // Aborted while the connection opens: given up there, the command never started.
    const opening = new AbortController();
    let held: Duplex | undefined;
    const holding = new FakeBroker((_n, _req, socket) => {
      held = socket;
      opening.abort(new Error('not now'));
    });
    await holding.start();
    try {
      const started = Date.now();
      await expect(run({ broker: holding.url, token: 't', target, command: ['deploy'], signal: opening.signal })).rejects.toThrow('not now');
      expect(Date.now() - started).toBeLessThan(5_000);
      expect(holding.upgrades).toHaveLength(1);
    } finally {
      held?.destroy();
      await holding.stop();
    }
    // Aborted before it starts: no session at all.
    const upgrades = fake.upgrades.length;
    await expect(run({ broker: fake.url, token: 't', target, command: ['true'], signal: AbortSignal.abort() })).rejects.toMatchObject({ name: 'AbortError' });
    expect(fake.upgrades.length).toBe(upgrades);
  });

  it('ends the session when the signal given to spawn() aborts: wait() rejects with its reason, as run() does', async () => {
    let closed!: () => void;
    const sessionEnded = new Promise<void>((resolve) => (closed = resolve));
    fake = new FakeBroker((_n, req, socket, head) =>
      fake!.accept(req, socket, head, (ws: WebSocket) => {
        ws.once('close', () => closed());
        ws.once('message', (data: Buffer) => {
          // Running, and never ending by itself: only the abort ends it.
          if (decodeRequest(data).msgType === RequestType.START) ws.send(encodeResponse(ResponseType.STDOUT, utf8('working\n')));
        });
      }),
    );
    await fake.start();
    const controller = new AbortController();
    const proc = await spawn({ broker: fake.url, token: 't', target, command: ['sleep', 'forever'], resume: false, signal: controller.signal });
    await new Promise((resolve) => proc.stdout.once('data', resolve));
    controller.abort();
    await expect(proc.wait()).rejects.toMatchObject({ name: 'AbortError' });
    await sessionEnded;
    // Aborted before it starts: spawn() rejects with the reason, and nothing connects.
    const upgrades = fake.upgrades.length;
    await expect(spawn({ broker: fake.url, token: 't', target, command: ['true'], signal: AbortSignal.abort(new Error('not now')) })).rejects.toThrow('not now');
    expect(fake.upgrades.length).toBe(upgrades);
    // A command that exited before the abort keeps its exit code.
    const done = new FakeBroker((_n, req, socket, head) =>
      done.accept(req, socket, head, (ws: WebSocket) =>
        ws.once('message', () => {
          ws.send(encodeResponse(ResponseType.EXIT, utf8('3')));
          ws.close();
        }),
      ),
    );
    await done.start();
    try {
      const late = new AbortController();
      const exited = await spawn({ broker: done.url, token: 't', target, command: ['false'], resume: false, signal: late.signal });
      expect(await exited.wait()).toBe(3);
      late.abort();
      expect(await exited.wait()).toBe(3);
    } finally {
      await done.stop();
    }
  });

  it('throws on a size the broker would ignore (not whole cells from 1 to its limit), sending nothing, and sends a whole one', async () => {
    const sizes: string[] = [];
    fake = new FakeBroker((_n, req, socket, head) =>
      fake!.accept(req, socket, head, (ws: WebSocket) => {
        ws.on('message', (data: Buffer) => {
          const m = decodeRequest(data);
          if (m.msgType === RequestType.START) ws.send(encodeResponse(ResponseType.STDOUT, utf8('ready\n')));
          if (m.msgType !== RequestType.WINCH) return;
          sizes.push(Buffer.from(m.content).toString());
          ws.send(encodeResponse(ResponseType.EXIT, utf8('0')));
          ws.close();
        });
      }),
    );
    await fake.start();
    const proc = await spawn({ broker: fake.url, token: 't', target, command: ['sh'], tty: true, cols: 80, rows: 24, resume: false });
    await new Promise((resolve) => proc.stdout.once('data', resolve));
    for (const [cols, rows, side, got] of [[80.5, 24, 'cols', '80.5'], [80, 0, 'rows', '0'], [-1, 24, 'cols', '-1'], [80, MAX_TERMINAL_SIDE + 1, 'rows', String(MAX_TERMINAL_SIDE + 1)], [NaN, 24, 'cols', 'NaN']] as const) {
      expect(() => proc.resize(cols, rows), `${cols}x${rows}`).toThrow(
        expect.objectContaining({ name: 'RangeError', code: 'ERR_OUT_OF_RANGE', message: `${side} must be a whole number of cells from 1 to ${MAX_TERMINAL_SIDE}, got ${got}` }),
      );
    }
    expect(() => proc.resize('80' as unknown as number, 24)).toThrow(expect.objectContaining({ name: 'TypeError', code: 'ERR_INVALID_ARG_TYPE', message: 'cols must be a whole number of cells, got "80"' }));
    proc.resize(120, 40);
    expect(await proc.wait()).toBe(0);
    expect(sizes).toEqual(['120 40']);
  });

  it('throws on a signal name the broker would ignore, sending nothing, and sends the ones it delivers', async () => {
    const signals: string[] = [];
    fake = new FakeBroker((_n, req, socket, head) =>
      fake!.accept(req, socket, head, (ws: WebSocket) => {
        ws.on('message', (data: Buffer) => {
          const m = decodeRequest(data);
          if (m.msgType === RequestType.START) ws.send(encodeResponse(ResponseType.STDOUT, utf8('ready\n')));
          if (m.msgType !== RequestType.SIGNAL) return;
          signals.push(Buffer.from(m.content).toString());
          if (signals.length < 2) return;
          ws.send(encodeResponse(ResponseType.EXIT, utf8('143')));
          ws.close();
        });
      }),
    );
    await fake.start();
    const proc = await spawn({ broker: fake.url, token: 't', target, command: ['sleep', 'forever'], resume: false });
    await new Promise((resolve) => proc.stdout.once('data', resolve));
    expect(() => proc.signal('STOP')).toThrow(expect.objectContaining({ name: 'TypeError', code: 'ERR_UNKNOWN_SIGNAL', message: expect.stringContaining('unknown signal: STOP (the broker delivers HUP, INT') }));
    expect(() => proc.signal('9')).toThrow(TypeError);
    // child.kill(9) is how Node takes it; said as a wrong type, not as `name.toUpperCase is not a function`.
    expect(() => proc.signal(9 as unknown as string)).toThrow(expect.objectContaining({ name: 'TypeError', code: 'ERR_INVALID_ARG_TYPE', message: 'signal must be a signal name ("INT", "TERM", …), got 9' }));
    proc.signal('sigusr1');
    proc.signal('TERM');
    expect(await proc.wait()).toBe(143);
    expect(signals).toEqual(['sigusr1', 'TERM']);
  });

  it('ends the session and rejects with ENTRY_OUTPUT_TOO_LARGE once run() has collected maxBuffer bytes of a stream', async () => {
    let closedAt = 0;
    fake = await flooding({ exit: false }, (at) => (closedAt = at));
    await expect(run({ broker: fake.url, token: 't', target, command: ['yes'], resume: false, maxBuffer: 1024 * 1024 })).rejects.toMatchObject({
      code: 'ENTRY_OUTPUT_TOO_LARGE',
      message: 'stdout passed maxBuffer (1048576 bytes): the session was ended',
    });
    await expect.poll(() => closedAt, { timeout: 10_000 }).toBeGreaterThan(0);
    // All of it fits: the output whole, as without a limit.
    await fake.stop();
    fake = await flooding({ exit: true });
    const whole = await run({ broker: fake.url, token: 't', target, command: ['yes'], resume: false, maxBuffer: OUTPUT_BYTES });
    expect(whole).toMatchObject({ exitCode: 0 });
    expect(whole.stdout.length).toBe(OUTPUT_BYTES);
    await expect(run({ broker: fake.url, token: 't', target, command: ['yes'], maxBuffer: -1 })).rejects.toThrow(RangeError);
  }, 30_000);
});
