import { SILENT_MARGIN_MS, silenceWatch } from './silence.js';

/** What the watchdog needs of time; tests give it their own. */
export interface WatchdogClock {
  now(): number;
  /** Calls `tick` every `ms` until the returned function is called. */
  every(ms: number, tick: () => void): () => void;
}

export const realClock: WatchdogClock = {
  now: () => Date.now(),
  every(ms, tick) {
    const timer = setInterval(tick, ms);
    // In Node a watchdog must not keep the process alive (a browser's timer is a number).
    (timer as unknown as { unref?: () => unknown }).unref?.();
    return () => clearInterval(timer);
  },
};

export interface WatchdogEvents {
  /** Whether silence counts now: a connection up, and (the CLI) a reader that is not paused. */
  active(): boolean;
  /** Nothing was heard for `silentForMs`, more than the limit: the link is taken for dead. */
  silent(silentForMs: number): void;
  /** The watchdog's own timer stopped for a while (a process stopped, a laptop asleep). */
  woke?(): void;
}

/**
 * Takes a connection for dead when nothing (no message, no ping) was heard from the broker for
 * the limit `silenceWatch` gives for its ping interval. Platform-free (Node and browsers).
 */
export class SilenceWatchdog {
  private lastHeard: number;
  private stopTimer: (() => void) | undefined;

  constructor(
    private readonly events: WatchdogEvents,
    private readonly clock: WatchdogClock = realClock,
  ) {
    this.lastHeard = clock.now();
  }

  get running(): boolean {
    return this.stopTimer !== undefined;
  }

  /** Something came from the broker. */
  heard(): void {
    this.lastHeard = this.clock.now();
  }

  /** Watches by the broker's ping interval (again, if it watched already); 0 or less: not at all. */
  start(pingIntervalMs: number): void {
    if (pingIntervalMs <= 0) return;
    this.stop();
    const { limitMs: limit, periodMs: period } = silenceWatch(pingIntervalMs);
    let lastTick = this.clock.now();
    this.stopTimer = this.clock.every(period, () => {
      const now = this.clock.now();
      const asleep = now - lastTick > 3 * period + 1_000;
      lastTick = now;
      if (!this.events.active()) return;
      if (asleep) {
        // The timer did not run for a while: what was not heard meanwhile proves nothing.
        // Judge again a ping interval from now.
        this.lastHeard = Math.max(this.lastHeard, now - limit + pingIntervalMs + SILENT_MARGIN_MS);
        this.events.woke?.();
        return;
      }
      if (now - this.lastHeard > limit) this.events.silent(now - this.lastHeard);
    });
  }

  stop(): void {
    this.stopTimer?.();
    this.stopTimer = undefined;
  }
}
