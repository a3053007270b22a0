import { describe, expect, it } from 'vitest';
import { EntryError } from '../../broker/errors.js';
import { createLogger } from '../../broker/log.js';
import type { LiveSession } from '../../broker/session/exec-session.js';
import { SessionTable } from '../../broker/session/session-table.js';

/**
 * A session whose stop is honoured later (an exec still opening): `stop` resolves, and the
 * session leaves the table, only when `end` is called.
 */
function slowSession(table: SessionTable, id: string) {
  const stops: EntryError[] = [];
  let end!: () => void;
  const ended = new Promise<undefined>((resolve) => (end = () => resolve(undefined)));
  let untrack = () => undefined as void;
  const session: LiveSession = {
    id,
    user: 'alice',
    app: 'a',
    proc: 'web',
    instance: '1',
    stop: (error) => {
      stops.push(error);
      return ended;
    },
    watch: () => undefined,
  };
  untrack = table.track(session);
  return {
    stops,
    end: () => {
      untrack();
      end();
    },
  };
}

const settledWithin = async (p: Promise<unknown>, ms: number) => Promise.race([p.then(() => true), new Promise<boolean>((r) => setTimeout(() => r(false), ms))]);

describe('SessionTable drain', () => {
  const log = createLogger('error', () => undefined);

  it('waits for a session whose stop is honoured only once it has started', async () => {
    const table = new SessionTable(10, log);
    const s = slowSession(table, 's1');
    const drained = table.drain();
    expect(s.stops.map((e) => e.code)).toEqual(['ENTRY_DRAINING']);
    expect(await settledWithin(drained, 50)).toBe(false);
    s.end();
    expect(await settledWithin(drained, 1000)).toBe(true);
    expect(table.size).toBe(0);
  });

  it('stops a session admitted before the drain but tracked after it began, and waits for it', async () => {
    const table = new SessionTable(10, log);
    const first = slowSession(table, 's1');
    const drained = table.drain();
    const late = slowSession(table, 's2');
    expect(late.stops.map((e) => e.code)).toEqual(['ENTRY_DRAINING']);
    first.end();
    expect(await settledWithin(drained, 50)).toBe(false);
    late.end();
    expect(await settledWithin(drained, 1000)).toBe(true);
  });

  it('resolves at once with no sessions, and refuses new ones from then on', async () => {
    const table = new SessionTable(10, log);
    expect(await settledWithin(table.drain(), 1000)).toBe(true);
    expect(() => table.admissible()).toThrow(/shutting down/);
  });
});
