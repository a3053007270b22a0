import { PassThrough } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { applyEvent, type ContainerEvent, readEvents } from '../../broker/docker/docker-events.js';

/** Feeds `lines` through readEvents as one engine would send them; collects what comes out. */
async function feed(lines: string[]): Promise<{ events: ContainerEvent[]; skipped: number; reasons: string[] }> {
  const stream = new PassThrough();
  const events: ContainerEvent[] = [];
  const reasons: string[] = [];
  const counts = readEvents(stream, (e) => events.push(e), (why) => reasons.push(why));
  for (const l of lines) stream.write(`${l}\n`);
  stream.end();
  await new Promise((r) => stream.on('end', r));
  return { events, skipped: counts.skipped, reasons };
}

const GOOD = JSON.stringify({ Type: 'container', Action: 'start', Actor: { ID: 'abc123', Attributes: { name: 'web', 'entry.app': 'demo' } }, time: 100 });

describe('the Docker events stream reader', () => {
  it('skips every line that is not a well-formed event object, and never throws', async () => {
    const bad = [
      'null',
      '5',
      '"start"',
      'true',
      '[]',
      '{not json',
      JSON.stringify({ Action: 'start', id: 5 }),
      JSON.stringify({ Action: 'start', Actor: { ID: { x: 1 } } }),
      JSON.stringify({ Action: 7, Actor: { ID: 'abc' } }),
      JSON.stringify({ Action: 'start', Actor: null }),
      JSON.stringify({ status: 'start' }),
    ];
    const { events, skipped, reasons } = await feed([...bad, GOOD]);
    // The good line after all of them still arrives: the stream goes on.
    expect(events).toEqual([{ id: 'abc123', action: 'start', attributes: { name: 'web', 'entry.app': 'demo' }, time: 100 }]);
    expect(skipped).toBe(bad.length);
    expect(reasons).toContain('not an object');
  });

  it('keeps a usable event from odd but recognisable fields', async () => {
    const { events } = await feed([
      JSON.stringify({ Action: 'start', Actor: { ID: 'a1', Attributes: null }, time: 'soon' }),
      JSON.stringify({ Action: 'create', Actor: { ID: 'a2', Attributes: { name: 'n', bad: 5, other: null } }, time: 7 }),
      JSON.stringify({ Type: 'network', Action: 'connect', Actor: { ID: 'net' } }),
      JSON.stringify({ status: 'die', id: 'old-style', time: 9 }),
    ]);
    expect(events.map((e) => e.id)).toEqual(['a1', 'a2', 'old-style']);
    expect(events[0]!.attributes).toEqual({});
    expect(typeof events[0]!.time).toBe('number');
    expect(events[1]!.attributes).toEqual({ name: 'n' });
    // What the index then does with them works too.
    for (const e of events) expect(() => applyEvent(e, undefined)).not.toThrow();
  });
});
