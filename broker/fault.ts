import type { Logger } from './log.js';

/** Where a fault was caught: the metric's `where` label. */
export type FaultSite = 'http' | 'upgrade' | 'socket' | 'metrics' | 'static' | 'process';

/**
 * Told of every unexpected error caught at a boundary (a bug, not a refusal): logs it once with
 * its stack and context, and counts it. Never throws.
 */
export type FaultReporter = (where: FaultSite, err: unknown, context?: Record<string, unknown>) => void;

export function createFaultReporter(log: Logger, count: (where: FaultSite) => void = () => undefined): FaultReporter {
  return (where, err, context = {}) => {
    try {
      const e = err instanceof Error ? err : new Error(String(err));
      log.error('internal fault', { where, ...context, error: e, stack: e.stack ?? String(e) });
      count(where);
    } catch {
      // A failing logger must not turn one fault into a crash.
    }
  };
}
