import type Docker from 'dockerode';
import type { BrokerChild } from './broker.js';
import type { BenchContainers, BenchTarget } from './containers.js';
import type { NullRelay } from './null-relay.js';
import { round } from './stats.js';

/** One line of bench/results.json. */
export interface Figure {
  name: FigureName;
  /** Median (or the percentile the name says) through Entry. */
  entry: number | null;
  /** The same through direct dockerode exec; null where there is no direct counterpart. */
  direct: number | null;
  /** entry / direct; null without a direct figure. */
  ratio: number | null;
  unit: string;
  /** Repetitions (or samples) per side. */
  runs: number;
  /** entry − direct, for times. */
  added?: number | null;
  /** The DESIGN.md target and whether this run met it (null: no target). */
  target?: string;
  met?: boolean | null;
  /** Figure-specific details (CPU, idle RSS, sample counts, …). */
  extra?: Record<string, number | string>;
  /** Why a figure is missing or smaller than asked. */
  note?: string;
  error?: string;
}

export const FIGURE_NAMES = [
  'setup_interactive',
  'setup_scripted',
  'echo_p50',
  'echo_p99',
  'throughput_tty',
  'throughput_raw',
  'stdin_raw',
  'roundtrip_raw',
  'concurrent_rss',
  'concurrent_echo_p99',
  'stall_rss_growth',
  'mass_disconnect',
  'cli_roundtrip',
  'kube_setup',
  'kube_echo_p50',
  'kube_echo_p99',
  'kube_output',
] as const;
export type FigureName = (typeof FIGURE_NAMES)[number];

/** Targets from DESIGN.md, as text and as a check on a finished figure. */
export const TARGETS: Record<FigureName, { text: string; check?: (f: Figure) => boolean }> = {
  setup_interactive: { text: '≤ direct + 10 ms', check: (f) => (f.added ?? Infinity) <= 10 },
  setup_scripted: { text: '≤ direct + 10 ms', check: (f) => (f.added ?? Infinity) <= 10 },
  echo_p50: {
    text: 'added ≤ 0.3 ms, ≤ WebSocket null relay + 0.05 ms',
    check: (f) => (f.added ?? Infinity) <= 0.3 && Number(f.extra?.['entry_minus_ws_relay_ms'] ?? Infinity) <= 0.05,
  },
  echo_p99: { text: 'added ≤ 2 ms', check: (f) => (f.added ?? Infinity) <= 2 },
  throughput_tty: { text: '≥ 0.9 × direct', check: (f) => (f.ratio ?? 0) >= 0.9 },
  throughput_raw: { text: '≥ 0.9 × direct', check: (f) => (f.ratio ?? 0) >= 0.9 },
  stdin_raw: { text: '≥ 0.95 × WebSocket null relay', check: (f) => Number(f.extra?.['entry_vs_ws_relay'] ?? 0) >= 0.95 },
  roundtrip_raw: { text: '≥ 0.95 × WebSocket null relay', check: (f) => Number(f.extra?.['entry_vs_ws_relay'] ?? 0) >= 0.95 },
  concurrent_rss: { text: '≤ 150 MB', check: (f) => (f.entry ?? Infinity) <= 150 },
  concurrent_echo_p99: { text: '≤ 20 ms', check: (f) => (f.entry ?? Infinity) <= 20 },
  stall_rss_growth: { text: '≤ 32 MB', check: (f) => (f.entry ?? Infinity) <= 32 },
  cli_roundtrip: { text: '≤ 1.5 × direct', check: (f) => (f.ratio ?? Infinity) <= 1.5 },
  // Kubernetes (issue 14): against a direct pods/exec WebSocket to the same apiserver.
  kube_setup: { text: '≤ direct + 10 ms', check: (f) => (f.added ?? Infinity) <= 10 },
  kube_echo_p50: { text: 'none (added ≤ 0.3 ms as a guide)' },
  kube_echo_p99: { text: 'none (added ≤ 2 ms as a guide)' },
  kube_output: { text: '≥ 0.9 × direct', check: (f) => (f.ratio ?? 0) >= 0.9 },
  mass_disconnect: {
    text: '≤ 10 s, typists\' echo p99 ≤ 50 ms',
    check: (f) => (f.entry ?? Infinity) <= 10 && Number(f.extra?.['processes_left']) === 0 && Number(f.extra?.['echo_p99_ms'] ?? Infinity) <= 50,
  },
};

/** Builds a figure from its two sides, with ratio, added time and the target check. */
export function figure(
  name: FigureName,
  unit: string,
  runs: number,
  entry: number | null,
  direct: number | null,
  more: Partial<Pick<Figure, 'extra' | 'note'>> & { added?: boolean } = {},
): Figure {
  const f: Figure = {
    name,
    entry: entry === null ? null : round(entry),
    direct: direct === null ? null : round(direct),
    ratio: entry !== null && direct !== null && direct !== 0 ? round(entry / direct) : null,
    unit,
    runs,
  };
  if (more.added) f.added = entry !== null && direct !== null ? round(entry - direct) : null;
  // Extras first: some targets are read from them (the relay sides, the typists' echo).
  if (more.extra) f.extra = Object.fromEntries(Object.entries(more.extra).map(([k, v]) => [k, typeof v === 'number' ? round(v) : v]));
  const target = TARGETS[name];
  f.target = target.text;
  f.met = target.check && f.entry !== null ? target.check(f) : null;
  if (more.note) f.note = more.note;
  return f;
}

/** What every measurement gets. */
export interface BenchContext {
  docker: Docker;
  /** The shared broker for the latency and throughput figures. */
  broker: BrokerChild;
  token: string;
  /** The shared container for the latency and throughput figures. */
  target: BenchTarget;
  containers: BenchContainers;
  /** Direct exec through a relay that only moves bytes: the price of the extra hop alone. */
  relay: NullRelay;
  /** The same relay carrying the bytes in WebSocket messages: the price of a WebSocket hop alone. */
  wsRelay: NullRelay;
  quick: boolean;
  log(message: string): void;
}

/** A measurement producing one or more figures. */
export interface Suite {
  names: FigureName[];
  run(ctx: BenchContext): Promise<Figure[]>;
}

/** The interactive shell the broker starts for an empty argv (broker/session/exec-spec.ts). */
export const INTERACTIVE_SHELL = ['/bin/sh', '-c', 'if command -v bash >/dev/null 2>&1; then exec bash; else exec sh; fi'];

export const utf8 = (s: string): Uint8Array => Buffer.from(s, 'utf8');
