import { createHash, randomBytes } from 'node:crypto';
import { execFileSync } from 'node:child_process';
import { Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ClientError, run, spawn } from '../../client/index.js';
import { TICKET_WAIT_MS } from '../../client/protocol/connection.js';
import { startTestBroker, type TestBroker } from '../helpers/broker.js';
import { TestContainers, uniqueApp } from '../helpers/containers.js';

const sha256 = (b: Buffer) => createHash('sha256').update(b).digest('hex');

describe('the TypeScript API: run() and spawn()', () => {
  const containers = new TestContainers();
  const app = uniqueApp();
  let b: TestBroker;
  let base: { broker: string; token: string; target: { app: string; proc: string; instance: number } };

  beforeAll(async () => {
    b = await startTestBroker();
    await containers.entry(app, 'web', 1);
    base = { broker: b.url, token: await b.mint({ apps: [app] }), target: { app, proc: 'web', instance: 1 } };
  });
  afterAll(async () => {
    await b.stop();
    await containers.removeAll();
  });

  // Exit codes, stdin with its EOF and stderr apart are in backend-behaviour.test.ts, for every backend.

  it('loses nothing at exit: seq 1 2000000, 20 runs', async () => {
    const expected = sha256(execFileSync('seq', ['1', '2000000'], { maxBuffer: 64 << 20 }));
    for (let i = 0; i < 20; i++) {
      const r = await run({ ...base, command: ['seq', '1', '2000000'] });
      expect(sha256(r.stdout), `run ${i + 1}`).toBe(expected);
    }
  });

  it('carries 50 MB of random bytes through cat and sha256sum', async () => {
    const data = randomBytes(50 * 1024 * 1024);
    const viaCat = await run({ ...base, command: ['cat'], stdin: data });
    expect(sha256(viaCat.stdout)).toBe(sha256(data));
    const viaSum = await run({ ...base, command: ['sha256sum'], stdin: data });
    expect(viaSum.stdout.toString().split(' ')[0]).toBe(sha256(data));
  });

  it('delivers argv exactly, including bytes that are not UTF-8', async () => {
    const args: Array<string | Uint8Array> = ['a b', '"q"', '$HOME', 'x\ny\n', 'ünï', Buffer.from([0xff, 0xfe, 0x41]), ''];
    const r = await run({ ...base, command: ['printf', '%s\\0', ...args] });
    const parts = [];
    let start = 0;
    for (let i = 0; i < r.stdout.length; i++) {
      if (r.stdout[i] === 0) {
        parts.push(r.stdout.subarray(start, i));
        start = i + 1;
      }
    }
    expect(parts.map((p) => p.toString('hex'))).toEqual(args.map((a) => Buffer.from(a).toString('hex')));
  });

  it('honours user, workdir and env', async () => {
    const r = await run({ ...base, command: ['sh', '-c', 'id -u; pwd; echo "$A-$B"'], user: '1000', workdir: '/tmp', env: { A: 'x y', B: '=' } });
    expect(r.stdout.toString()).toBe('1000\n/tmp\nx y-=\n');
  });

  it('streams: stdin from a stream, stdout to a slow consumer, nothing lost', async () => {
    const proc = await spawn({ ...base, command: ['cat'] });
    const data = randomBytes(8 * 1024 * 1024);
    const received: Buffer[] = [];
    const slow = new Writable({
      highWaterMark: 16 * 1024,
      write(chunk: Buffer, _e, cb) {
        received.push(chunk);
        setImmediate(cb);
      },
    });
    await Promise.all([pipeline(Readable.from([data.subarray(0, 4 << 20), data.subarray(4 << 20)]), proc.stdin), pipeline(proc.stdout, slow), proc.wait()]);
    expect(sha256(Buffer.concat(received))).toBe(sha256(data));
    expect(await proc.wait()).toBe(0);
  });

  it('settles a pipeline into stdin when the command ends before taking it all', async () => {
    const proc = await spawn({ ...base, command: ['sh', '-c', 'sleep 0.5; exit 2'] });
    const feeding = pipeline(Readable.from([randomBytes(5 * 1024 * 1024)]), proc.stdin).then(
      () => 'fed',
      (e: NodeJS.ErrnoException) => e.code,
    );
    expect(await proc.wait()).toBe(2);
    // The command took none of it: the pipeline ends as one into a process that exited does.
    expect(await feeding).toBe('ERR_STREAM_PREMATURE_CLOSE');
  });

  it('gives the command EOF when stdin is destroyed, as closing a child process stdin pipe does', async () => {
    const proc = await spawn({ ...base, command: ['cat'] });
    const out: Buffer[] = [];
    proc.stdout.on('data', (c: Buffer) => out.push(c));
    await new Promise<void>((resolve) => proc.stdin.write('kept\n', () => resolve()));
    proc.stdin.destroy();
    expect(await proc.wait()).toBe(0);
    expect(Buffer.concat(out).toString()).toBe('kept\n');
  }, 15_000);

  it('gives the command EOF after what came when a pipeline into stdin fails at its source', async () => {
    const proc = await spawn({ ...base, command: ['wc', '-c'] });
    const out: Buffer[] = [];
    proc.stdout.on('data', (c: Buffer) => out.push(c));
    let reads = 0;
    const failing = new Readable({
      read() {
        if (reads++ === 0) this.push('abc');
        else this.destroy(new Error('the source failed'));
      },
    });
    await expect(pipeline(failing, proc.stdin)).rejects.toThrow('the source failed');
    expect(await proc.wait()).toBe(0);
    expect(Number(Buffer.concat(out).toString())).toBe(3);
  }, 15_000);

  it('delivers a signal sent right after spawn(), before the engine has reported the process', async () => {
    // As child.kill() right after spawn(): the SIGNAL follows START at once, and was dropped
    // when it found none of the session's processes yet (the command then ran on, for minutes).
    for (const [name, code] of [['KILL', 137], ['TERM', 143], ['INT', 130], ['KILL', 137], ['TERM', 143]] as const) {
      const proc = await spawn({ ...base, command: ['sleep', '600'] });
      proc.signal(name);
      expect(await proc.wait(), name).toBe(code);
    }
  }, 30_000);

  it('rejects wait() with ENTRY_CLOSED after close(), not as a lost connection', async () => {
    const proc = await spawn({ ...base, command: ['sh', '-c', 'echo up; exec sleep 60'] });
    await new Promise((resolve) => proc.stdout.once('data', resolve));
    proc.close();
    const err = await proc.wait().then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(ClientError);
    expect(err).toMatchObject({ code: 'ENTRY_CLOSED', message: 'closed by this client' });
  });

  it('rejects run() with the error of a stdin stream that fails, and ends the command', async () => {
    const failing = new Readable({ read() {} });
    failing.push('abc');
    setTimeout(() => failing.destroy(new Error('disk read failed')), 200);
    const err = await run({ ...base, command: ['sh', '-c', 'wc -c; echo unreachable'], stdin: failing }).catch((e: unknown) => e);
    expect((err as Error).message).toBe('disk read failed');
  });

  it('rejects with a ClientError naming the reason when the target does not exist', async () => {
    const err = await run({ ...base, target: { app, proc: 'web', instance: 9 }, command: ['true'] }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ClientError);
    expect((err as ClientError).code).toBe('ENTRY_NOT_FOUND');
    expect((err as ClientError).message).toContain(`${app}/web/9`);
  });

  it('rejects with a ClientError when the broker cannot be reached', async () => {
    const err = await run({ ...base, broker: 'http://127.0.0.1:1', command: ['true'] }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ClientError);
    expect((err as ClientError).code).toBe('ENTRY_CONNECT_FAILED');
  });

  it("rejects with the broker's own code and message when it refuses the upgrade over HTTP (a wrong path)", async () => {
    const err = await run({ ...base, broker: `${b.url}/wrong`, command: ['true'] }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ClientError);
    expect(err).toMatchObject({ code: 'ENTRY_NOT_FOUND', httpStatus: 404, message: expect.stringMatching(/^not found: \/wrong\/enter \(the WebSocket endpoints are \/enter/) });
  });
});

describe('the TypeScript API against a broker that does not resume (--resume-grace 0)', () => {
  const containers = new TestContainers();
  const app = uniqueApp();
  let b: TestBroker;
  let base: { broker: string; token: string; target: { app: string; proc: string; instance: number } };

  beforeAll(async () => {
    b = await startTestBroker({ 'resume-grace': 0 });
    await containers.entry(app, 'web', 1);
    base = { broker: b.url, token: await b.mint({ apps: [app] }), target: { app, proc: 'web', instance: 1 } };
  });
  afterAll(async () => {
    await b.stop();
    await containers.removeAll();
  });

  it('sends stdin past the resume window as soon as output shows no RESUMABLE is coming, not after TICKET_WAIT_MS', async () => {
    // 3 MiB: three times the window of input kept for a resume.
    const data = randomBytes(3 * 1024 * 1024);
    const t0 = performance.now();
    const r = await run({ ...base, command: ['cat'], stdin: data });
    const tookMs = performance.now() - t0;
    expect(r.exitCode).toBe(0);
    expect(sha256(r.stdout)).toBe(sha256(data));
    // Held until the wait ran out, this took TICKET_WAIT_MS and more; it takes ~0.1 s.
    expect(tookMs).toBeLessThan(TICKET_WAIT_MS);
  });

  it('sends stdin past the resume window at once to a command that prints nothing until it has read it: the upgrade said no ticket comes', async () => {
    const data = randomBytes(3 * 1024 * 1024);
    const t0 = performance.now();
    const r = await run({ ...base, command: ['sh', '-c', 'wc -c'], stdin: data });
    const tookMs = performance.now() - t0;
    expect(r.exitCode).toBe(0);
    expect(r.stdout.toString().trim()).toBe(String(data.length));
    // Without the broker's word, input past the window waited TICKET_WAIT_MS for a ticket.
    expect(tookMs).toBeLessThan(TICKET_WAIT_MS);
  });
});

describe('the TypeScript API with a reader that pauses longer than 60 of the broker pings', () => {
  const containers = new TestContainers();
  const app = uniqueApp();
  let b: TestBroker;
  let base: { broker: string; token: string; target: { app: string; proc: string; instance: number } };

  beforeAll(async () => {
    // 60 pings in 3 s: ws's own limit of pongs waiting to be written, reached by a 4 s pause.
    b = await startTestBroker({ 'ping-interval': 50 });
    await containers.entry(app, 'web', 1);
    base = { broker: b.url, token: await b.mint({ apps: [app] }), target: { app, proc: 'web', instance: 1 } };
  });
  afterAll(async () => {
    await b.stop();
    await containers.removeAll();
  });

  it('loses nothing: the pings read at once after the pause are answered, not taken for a flood', async () => {
    const expected = sha256(execFileSync('seq', ['1', '2000000'], { maxBuffer: 64 << 20 }));
    const p = await spawn({ ...base, command: ['seq', '1', '2000000'], resume: false });
    const out: Buffer[] = [];
    // Nothing read for 4 s: the command is held by backpressure, still running, and the broker's
    // pings (80 of them) wait behind the output.
    await new Promise((r) => setTimeout(r, 4_000));
    p.stdout.on('data', (c: Buffer) => out.push(c));
    expect(await p.wait()).toBe(0);
    expect(sha256(Buffer.concat(out))).toBe(expected);
  }, 30_000);
});
