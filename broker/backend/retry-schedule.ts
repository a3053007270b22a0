/**
 * When an engine's index connects again, for Docker hosts and Kubernetes clusters alike: the
 * first attempt once, then after each failure a wait doubling from `backoffInitialMs` up to
 * `backoffMaxMs`, ±20 % jitter so that many brokers do not reconnect in step; nothing after stop.
 */
export class RetrySchedule {
  /** Failures since the last success: 0 while connected. */
  failures = 0;
  stopped = false;
  private timer: NodeJS.Timeout | undefined;
  private first: Promise<void> | undefined;

  constructor(
    private readonly attempt: () => Promise<void>,
    private readonly timing: { backoffInitialMs: number; backoffMaxMs: number },
  ) {}

  /** The first attempt, made once. */
  start(): Promise<void> {
    this.first ??= this.attempt();
    return this.first;
  }

  /** No attempt from now on. */
  stop(): void {
    this.stopped = true;
    clearTimeout(this.timer);
  }

  succeeded(): void {
    this.failures = 0;
  }

  /** Schedules the next attempt after a failure (`immediate`: at once, not counted as one). */
  failed(immediate = false): void {
    if (this.stopped) return;
    const base = immediate ? 0 : Math.min(this.timing.backoffMaxMs, this.timing.backoffInitialMs * 2 ** this.failures);
    if (!immediate) this.failures++;
    const wait = Math.round(base * (0.8 + Math.random() * 0.4));
    clearTimeout(this.timer);
    this.timer = setTimeout(() => void this.attempt(), wait);
    this.timer.unref();
  }
}
