import { setImmediate as immediate } from 'node:timers/promises';

/** Resolves on the event loop's next check phase: I/O that is ready runs first. */
export const nextTurn = (): Promise<void> => immediate();

/** Spaces starts 1/rate apart: `turn` resolves at the next free slot. */
export class Pacer {
  private nextSlot = 0;
  constructor(private readonly intervalMs: number) {}
  turn(): Promise<void> {
    const at = Math.max(performance.now(), this.nextSlot);
    this.nextSlot = at + this.intervalMs;
    const wait = at - performance.now();
    return wait <= 0 ? Promise.resolve() : new Promise((r) => setTimeout(r, wait));
  }
}

/** A counting semaphore: `run` waits for one of `limit` slots. */
export class Limiter {
  private active = 0;
  private readonly waiting: (() => void)[] = [];
  constructor(private readonly limit: number) {}
  async run<T>(work: () => Promise<T>): Promise<T> {
    if (this.active >= this.limit) await new Promise<void>((r) => this.waiting.push(r));
    else this.active++;
    try {
      return await work();
    } finally {
      const next = this.waiting.shift();
      if (next) next();
      else this.active--;
    }
  }
}
