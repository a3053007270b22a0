import { describe, expect, it } from 'vitest';
import { SignalLane } from '../../broker/backend/signal-lane.js';

/** A deliverer whose deliveries finish when the test says so. */
function heldDeliveries() {
  const started: string[] = [];
  const pending: Array<{ resolve(): void; reject(err: unknown): void }> = [];
  const deliver = (name: string) =>
    new Promise<void>((resolve, reject) => {
      started.push(name);
      pending.push({ resolve, reject });
    });
  return { started, pending, deliver };
}

const settle = () => new Promise((r) => setImmediate(r));

describe('SignalLane', () => {
  it('runs one delivery at a time and absorbs repeats of a waiting signal, however many come', async () => {
    const d = heldDeliveries();
    const lane = new SignalLane(d.deliver);
    for (let i = 0; i < 10_000; i++) {
      lane.send('INT');
      lane.send('TERM');
    }
    await settle();
    expect(d.started).toEqual(['INT']);
    d.pending.shift()!.resolve();
    await settle();
    // Waiting from then on: TERM, then an INT sent after the first was on its way (a new one).
    expect(d.started).toEqual(['INT', 'TERM']);
    d.pending.shift()!.resolve();
    await settle();
    expect(d.started).toEqual(['INT', 'TERM', 'INT']);
    d.pending.shift()!.resolve();
    await settle();
    expect(d.started).toHaveLength(3);
  });

  it('keeps the order in which signals were first sent, and a signal sent after its delivery ran is delivered again', async () => {
    const d = heldDeliveries();
    const lane = new SignalLane(d.deliver);
    lane.send('HUP');
    for (const name of ['USR1', 'WINCH', 'USR1', 'QUIT', 'WINCH']) lane.send(name);
    for (let i = 0; i < 4; i++) {
      await settle();
      d.pending.shift()?.resolve();
    }
    await settle();
    expect(d.started).toEqual(['HUP', 'USR1', 'WINCH', 'QUIT']);
    lane.send('USR1');
    await settle();
    expect(d.started.at(-1)).toBe('USR1');
  });

  it('reports a failed delivery once, to the sender that queued it, and goes on with the next', async () => {
    const d = heldDeliveries();
    const lane = new SignalLane(d.deliver);
    const first = lane.send('INT');
    const queued = lane.send('TERM');
    const repeat = lane.send('TERM');
    expect(first).toBeInstanceOf(Promise);
    expect(queued).toBeInstanceOf(Promise);
    expect(repeat).toBeUndefined();
    await settle();
    d.pending.shift()!.reject(new Error('no sh in the image'));
    await expect(first).rejects.toThrow('no sh in the image');
    await settle();
    expect(d.started).toEqual(['INT', 'TERM']);
    d.pending.shift()!.resolve();
    await expect(queued).resolves.toBeUndefined();
  });

  it('ignores names outside the signals a client may send, and drops what waits once closed', async () => {
    const d = heldDeliveries();
    const lane = new SignalLane(d.deliver);
    expect(lane.send('STOP')).toBeUndefined();
    expect(lane.send('0')).toBeUndefined();
    lane.send('INT');
    const waiting = lane.send('TERM');
    lane.close();
    await expect(waiting).resolves.toBeUndefined();
    expect(lane.send('KILL')).toBeUndefined();
    d.pending.shift()?.resolve();
    await settle();
    expect(d.started).toEqual(['INT']);
  });
});
