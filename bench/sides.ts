import { median } from './stats.js';

/**
 * The three ways a transfer figure is measured: through Entry, straight to Docker, and straight
 * to Docker through the null relay (bench/null-relay-main.ts), which prices the extra hop alone.
 */
export const SIDES = ['entry', 'direct', 'relay'] as const;
export type Side = (typeof SIDES)[number];

/** Runs every side `reps` times, rotating the order each repetition so that drift on the machine hits all sides alike. */
export async function rotate<T>(reps: number, run: Record<Side, () => Promise<T>>): Promise<Record<Side, T[]>> {
  const out: Record<Side, T[]> = { entry: [], direct: [], relay: [] };
  for (let i = 0; i < reps; i++) {
    for (let k = 0; k < SIDES.length; k++) {
      const side = SIDES[(i + k) % SIDES.length]!;
      out[side].push(await run[side]());
    }
  }
  return out;
}

/** Each run's rate, for the reader to see the spread behind a median. */
export const runList = (rates: number[]): string => rates.map((r) => r.toFixed(0)).join(' ');

/** Relay figures beside Entry's: the relay's median and how Entry and the relay compare with direct and each other. */
export function relayExtra(rates: Record<Side, number[]>): Record<string, number | string> {
  const [entry, direct, relay] = [median(rates.entry), median(rates.direct), median(rates.relay)];
  return {
    relay_MBps: relay,
    relay_ratio: relay / direct,
    entry_vs_relay: entry / relay,
    entry_runs_MBps: runList(rates.entry),
    direct_runs_MBps: runList(rates.direct),
    relay_runs_MBps: runList(rates.relay),
  };
}
