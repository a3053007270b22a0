import { describe, expect, it } from 'vitest';
import { SILENT_MARGIN_MS, silenceWatch } from '../../proto/silence.js';
import { SilenceWatchdog, type WatchdogClock } from '../../proto/silence-watchdog.js';

/** A clock whose time moves only when told, running the watchdog's ticks on the way. */
class TestClock implements WatchdogClock {
  time = 1_000_000;
  private timer: { ms: number; next: number; tick: () => void } | undefined;
  now(): number {
    return this.time;
  }
  every(ms: number, tick: () => void): () => void {
    const timer = { ms, next: this.time + ms, tick };
    this.timer = timer;
    return () => {
      if (this.timer === timer) this.timer = undefined;
    };
  }
  get ticking(): boolean {
    return this.timer !== undefined;
  }
  /** Moves time on by `ms`, tick by tick. */
  advance(ms: number): void {
    const end = this.time + ms;
    for (let i = 0; i < 1_000_000 && this.timer && this.timer.next <= end; i++) {
      this.time = this.timer.next;
      this.timer.next += this.timer.ms;
      this.timer.tick();
    }
    this.time = end;
  }
  /** Moves time on without a tick (a process stopped, a laptop asleep), then ticks once. */
  sleep(ms: number): void {
    this.time += ms;
    if (!this.timer) return;
    this.timer.next = this.time + this.timer.ms;
    this.timer.tick();
  }
}

const PING_MS = 1_000;
const { limitMs: LIMIT } = silenceWatch(PING_MS);

function watchdog(active = () => true) {
  const clock = new TestClock();
  const silences: number[] = [];
  let wakes = 0;
  const dog = new SilenceWatchdog({ active, silent: (ms) => silences.push(ms), woke: () => wakes++ }, clock);
  return { clock, dog, silences, wakes: () => wakes };
}

describe('the silence watchdog', () => {
  it('says the link is silent once nothing was heard for longer than the limit, and how long', () => {
    const { clock, dog, silences } = watchdog();
    dog.start(PING_MS);
    clock.advance(LIMIT);
    expect(silences).toEqual([]);
    clock.advance(PING_MS);
    expect(silences).toEqual([LIMIT + PING_MS]);
  });

  it('counts the silence from the last thing heard', () => {
    const { clock, dog, silences } = watchdog();
    dog.start(PING_MS);
    clock.advance(LIMIT - 500);
    dog.heard();
    clock.advance(LIMIT - 500);
    expect(silences).toEqual([]);
    clock.advance(1_000);
    expect(silences.length).toBe(1);
  });

  it('does not judge while the caller says silence does not count (no connection, a paused reader)', () => {
    let active = false;
    const { clock, dog, silences } = watchdog(() => active);
    dog.start(PING_MS);
    clock.advance(3 * LIMIT);
    expect(silences).toEqual([]);
    active = true;
    clock.advance(PING_MS);
    expect(silences.length).toBe(1);
  });

  it('after its timer stopped for a while, says so and judges again a ping interval later', () => {
    const { clock, dog, silences, wakes } = watchdog();
    dog.start(PING_MS);
    clock.sleep(60_000);
    expect(wakes()).toBe(1);
    expect(silences).toEqual([]);
    // Heard nothing since: the limit is reached a ping interval and the margin after waking.
    clock.advance(PING_MS + SILENT_MARGIN_MS - 1);
    expect(silences).toEqual([]);
    clock.advance(PING_MS + 1);
    expect(silences.length).toBe(1);
  });

  it('watches nothing for a ping interval of 0 (a broker that does not say it)', () => {
    const { clock, dog } = watchdog();
    dog.start(0);
    expect(dog.running).toBe(false);
    expect(clock.ticking).toBe(false);
  });

  it('stops its timer when stopped, and keeps one timer when started again', () => {
    const { clock, dog, silences } = watchdog();
    dog.start(PING_MS);
    dog.start(PING_MS * 2);
    expect(dog.running).toBe(true);
    dog.stop();
    expect(dog.running).toBe(false);
    expect(clock.ticking).toBe(false);
    clock.advance(10 * LIMIT);
    expect(silences).toEqual([]);
  });
});
