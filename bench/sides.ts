import { median } from './stats.js';

/**
 * The ways a transfer figure is measured: through Entry, straight to Docker, and straight to
 * Docker through a relay that only moves bytes — over plain TCP (`relay`,
 * bench/null-relay-main.ts) and inside WebSocket messages (`ws_relay`, bench/ws-relay-main.ts).
 * The relays price the extra hop alone, and a WebSocket hop alone.
 */
export const SIDES = ['entry', 'direct', 'relay', 'ws_relay'] as const;
export type Side = (typeof SIDES)[number];

/** Runs every side `reps` times, rotating the order each repetition so that drift on the machine hits all sides alike. */
export async function rotate<T>(reps: number, run: Record<Side, () => Promise<T>>): Promise<Record<Side, T[]>> {
  const out: Record<Side, T[]> = { entry: [], direct: [], relay: [], ws_relay: [] };
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

/** Relay figures beside Entry's: each relay's median and how Entry and the relays compare with direct and each other. */
export function relayExtra(rates: Record<Side, number[]>): Record<string, number | string> {
  const [entry, direct, relay, wsRelay] = [median(rates.entry), median(rates.direct), median(rates.relay), median(rates.ws_relay)];
  const out: Record<string, number | string> = {
    relay_MBps: relay,
    relay_ratio: relay / direct,
    entry_vs_relay: entry / relay,
    ws_relay_MBps: wsRelay,
    ws_relay_ratio: wsRelay / direct,
    entry_vs_ws_relay: entry / wsRelay,
  };
  for (const side of SIDES) out[`${side}_runs_MBps`] = runList(rates[side]);
  return out;
}
