import { describe, expect, it } from 'vitest';
import { PacedQueue } from '../../broker/transport/paced-queue.js';

/** Resolves once every task queued so far has run: a last task of its own. */
const drained = (q: PacedQueue) => new Promise<void>((resolve) => q.push(resolve));

const busy = (ms: number) => {
  const end = performance.now() + ms;
  while (performance.now() < end);
};

describe('PacedQueue', () => {
  it('runs every task in order, none in the turn that queued it', async () => {
    const q = new PacedQueue(2);
    const ran: number[] = [];
    for (let i = 0; i < 100; i++) q.push(() => ran.push(i));
    expect(ran).toEqual([]);
    await drained(q);
    expect(ran).toEqual([...Array(100).keys()]);
    expect(q.pending).toBe(0);
  });

  it('lets other work of the event loop run between slices of its budget', async () => {
    const q = new PacedQueue(2);
    const order: string[] = [];
    for (let i = 0; i < 20; i++) q.push(() => (busy(0.5), order.push('task')));
    // Other I/O arriving meanwhile: it must not wait for all 20 tasks (10 ms of work).
    const other = new Promise<number>((resolve) => setTimeout(() => resolve(order.length), 0));
    const tasksBeforeOther = await other;
    await drained(q);
    expect(order).toHaveLength(20);
    expect(tasksBeforeOther).toBeLessThan(20);
  });

  it('keeps going after a task that throws', async () => {
    const q = new PacedQueue(2);
    const ran: number[] = [];
    const errors: unknown[] = [];
    const onError = (err: unknown) => errors.push(err);
    process.on('uncaughtException', onError);
    try {
      q.push(() => ran.push(1));
      q.push(() => {
        throw new Error('boom');
      });
      q.push(() => ran.push(3));
      await drained(q);
    } finally {
      process.off('uncaughtException', onError);
    }
    expect(ran).toEqual([1, 3]);
  });
});
