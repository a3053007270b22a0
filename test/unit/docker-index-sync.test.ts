import { PassThrough } from 'node:stream';
import type Docker from 'dockerode';
import { describe, expect, it } from 'vitest';
import { HostContainerIndex } from '../../broker/docker/container-index.js';
import { createLogger } from '../../broker/log.js';

const LABELS = { 'entry.app': 'shop', 'entry.proc': 'web', 'entry.instance': '1' };
const TIMING = { pingIntervalMs: 60_000, requestTimeoutMs: 300, backoffInitialMs: 20, backoffMaxMs: 50 };

interface Engine {
  /** Writes one container event to every open events stream. */
  event(id: string, action: string): void;
  /** Ends every open events stream (the engine restarted). */
  endStreams(): void;
  docker: Docker;
  inspects: number;
}

/**
 * A stand-in engine for an index's connect: one labelled container `c1` in the listing (which
 * takes `listMs`), inspects answered by `inspect` (which may never answer; an aborted one
 * rejects, as a destroyed request does).
 */
function engine(o: { listMs: number; inspect: (id: string) => Promise<{ state: string }> | undefined }): Engine {
  const streams: PassThrough[] = [];
  const e: Engine = {
    inspects: 0,
    event(id, action) {
      for (const s of streams) s.write(`${JSON.stringify({ Type: 'container', Action: action, Actor: { ID: id, Attributes: { name: id, ...LABELS } }, time: 1 })}\n`);
    },
    endStreams() {
      for (const s of streams.splice(0)) s.end();
    },
    docker: {
      ping: async () => 'OK',
      getEvents: async () => {
        const s = new PassThrough();
        streams.push(s);
        return s;
      },
      listContainers: async (q: { filters: { label: string[] } }) => {
        await new Promise((r) => setTimeout(r, o.listMs));
        if (q.filters.label[0] !== 'entry.app') return [];
        return [{ Id: 'c1', Names: ['/c1'], Image: 'img', State: 'running', Labels: LABELS, Created: 1 }];
      },
      getContainer: (id: string) => ({
        inspect: (opts: { abortSignal: AbortSignal }) =>
          new Promise((resolve, reject) => {
            e.inspects++;
            opts.abortSignal.addEventListener('abort', () => reject(Object.assign(new Error('aborted'), { name: 'AbortError' })));
            void o.inspect(id)?.then((r) => resolve({ Config: { Labels: LABELS, Image: 'img' }, Name: `/${id}`, State: { Status: r.state }, Created: new Date(1000).toISOString() }));
          }),
      }),
    } as unknown as Docker,
  };
  return e;
}

/** An index whose engine answers each inspect only when the test says (`answer()` is the last one's). */
function heldReread(name: string) {
  let answer!: (r: { state: string }) => void;
  const e = engine({ listMs: 50, inspect: () => new Promise((r) => (answer = r)) });
  const index = new HostContainerIndex({ name, url: `tcp://${name}`, docker: e.docker }, createLogger('silent'), { ...TIMING, requestTimeoutMs: 5_000 });
  return { e, index, answer: () => answer };
}

const until = async (check: () => boolean, ms: number) => {
  const deadline = Date.now() + ms;
  while (!check()) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 10));
  }
};

describe("a Docker host index's connect", () => {
  it('comes up on a host whose containers send events all the time', async () => {
    const e = engine({ listMs: 100, inspect: () => new Promise((r) => setTimeout(() => r({ state: 'running' }), 20)) });
    // Health checks and a container that keeps restarting: events at every moment, before,
    // during and after the listing.
    const churn = setInterval(() => {
      for (const a of ['exec_create: sh -c check', 'exec_start: sh -c check', 'exec_die', 'health_status: healthy']) e.event('c2', a);
      e.event('c1', 'start');
    }, 5);
    const index = new HostContainerIndex({ name: 'busy', url: 'tcp://busy', docker: e.docker }, createLogger('silent'), TIMING);
    try {
      void index.start();
      await until(() => index.up, 10_000);
      expect(index.lookup({ app: 'shop', proc: 'web', instance: '1' }).map((c) => c.id)).toEqual(['c1']);
    } finally {
      clearInterval(churn);
      index.stop();
    }
  });

  it('keeps what the listing said of a container whose inspect goes unanswered, and says so', async () => {
    const e = engine({ listMs: 50, inspect: () => undefined });
    const lines: string[] = [];
    const index = new HostContainerIndex({ name: 'stuck', url: 'tcp://stuck', docker: e.docker }, createLogger('warn', (l) => lines.push(l)), TIMING);
    try {
      const started = index.start();
      // An event during the listing: the container is read again, and its engine never answers.
      setTimeout(() => e.event('c1', 'kill'), 10);
      setTimeout(() => e.event('c1', 'die'), 20);
      await started;
      await until(() => index.up, 10_000);
      expect(e.inspects).toBe(1);
      expect(index.lookup({ app: 'shop', proc: 'web', instance: '1' }).map((c) => c.state)).toEqual(['running']);
      expect(lines.some((l) => l.includes('was not inspected in time'))).toBe(true);
    } finally {
      index.stop();
    }
  });

  // A container is read again because an event raced the listing; more events come while the
  // engine's answer (read before them) is on its way. An event that can change the record wins
  // over that answer (a death); a health check's exec events change nothing, and the answer stands.
  it.each([
    ['takes an event that comes while a container is read again over the older answer', 'race', 'restart', ['die'], 'running', 'exited'],
    ["takes a reread's answer when only a health check's events came meanwhile", 'checks', 'die', ['exec_create: sh -c check', 'exec_start: sh -c check', 'exec_die', 'health_status: healthy'], 'exited', 'exited'],
  ])('%s', async (_title, name, racing, meanwhile, answered, expected) => {
    const { e, index, answer } = heldReread(name);
    try {
      void index.start();
      setTimeout(() => e.event('c1', racing), 10);
      await until(() => e.inspects === 1, 5_000);
      for (const a of meanwhile) e.event('c1', a);
      await new Promise((r) => setImmediate(r));
      answer()({ state: answered });
      await until(() => index.up, 5_000);
      expect(index.lookup({ app: 'shop', proc: 'web', instance: '1' }).map((c) => c.state)).toEqual([expected]);
    } finally {
      index.stop();
    }
  });

  it('does not put in what a direct listing found when the index was resynced while it was on its way', async () => {
    const e = engine({ listMs: 10, inspect: () => Promise.resolve({ state: 'running' }) });
    const index = new HostContainerIndex({ name: 'resync', url: 'tcp://resync', docker: e.docker }, createLogger('silent'), TIMING);
    try {
      await index.start();
      expect(index.up).toBe(true);
      const resyncs = index.resyncs;
      // A cross-check after a miss, slow to answer; meanwhile the stream drops and the index
      // resyncs, and the container it found is removed without the index hearing of it.
      let release!: () => void;
      const held = new Promise<void>((r) => (release = r));
      const gone = { id: 'c9', name: 'c9', image: 'img', state: 'running', labels: { ...LABELS, 'entry.instance': '9' }, created: 1 };
      const confirmed = index.confirm(async () => (await held, [gone]));
      e.endStreams();
      await until(() => index.resyncs > resyncs && index.up, 5_000);
      release();
      expect(await confirmed).toEqual([gone]);
      expect(index.lookup({ app: 'shop', proc: 'web', instance: '9' })).toEqual([]);
    } finally {
      index.stop();
    }
  });
});
