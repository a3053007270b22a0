/** asciicast v2 as the broker records it: a JSON header line, then `[time, code, data]` lines. */

export type CastEvent = [time: number, code: string, data: string];

export interface Cast {
  width: number;
  height: number;
  /** Seconds since the epoch, when the header has it. */
  timestamp: number | undefined;
  events: CastEvent[];
}

/**
 * Parses a recording. A recording still being written may end in a partial line: everything
 * after the last newline is left out. Anything else that is not asciicast v2 is refused, naming
 * the first line at fault: a player that skipped it would show a screen that never was.
 */
export function parseCast(text: string): Cast {
  const lines = completeLines(text).split('\n');
  const header = jsonLine(lines[0] ?? '') as { version?: unknown; width?: unknown; height?: unknown; timestamp?: unknown } | null | undefined;
  if (typeof header !== 'object' || header === null || header.version !== 2) throw new Error('not asciicast v2 (its first line is no header)');
  const events: CastEvent[] = [];
  for (const [i, line] of lines.entries()) {
    if (i === 0 || line === '') continue;
    const e = jsonLine(line);
    if (!Array.isArray(e) || typeof e[0] !== 'number' || !Number.isFinite(e[0]) || typeof e[1] !== 'string' || typeof e[2] !== 'string') {
      throw new Error(`not asciicast v2: line ${i + 1} is not an event`);
    }
    events.push([e[0], e[1], e[2]]);
  }
  return {
    width: typeof header.width === 'number' && header.width > 0 ? header.width : 80,
    height: typeof header.height === 'number' && header.height > 0 ? header.height : 24,
    timestamp: typeof header.timestamp === 'number' ? header.timestamp : undefined,
    events,
  };
}

function jsonLine(line: string): unknown {
  try {
    return JSON.parse(line) as unknown;
  } catch {
    return undefined;
  }
}

/** The recording up to its last complete line: what a player can open while it is being written. */
export function completeLines(text: string): string {
  return text.slice(0, text.lastIndexOf('\n') + 1);
}

/** Shortens every pause longer than `limit` seconds to `limit` (asciinema's idle_time_limit). */
export function limitIdle(events: CastEvent[], limit: number | undefined): CastEvent[] {
  if (!limit || !Number.isFinite(limit)) return events;
  let last = 0;
  let shift = 0;
  return events.map(([t, code, data]) => {
    const gap = t - last;
    if (gap > limit) shift += gap - limit;
    last = t;
    return [t - shift, code, data];
  });
}

/** "1:05", "12:00", "1:02:03". */
export function clock(seconds: number): string {
  const s = Math.max(0, Math.floor(seconds));
  const hh = Math.floor(s / 3600);
  const mm = Math.floor((s % 3600) / 60);
  const ss = String(s % 60).padStart(2, '0');
  return hh ? `${hh}:${String(mm).padStart(2, '0')}:${ss}` : `${mm}:${ss}`;
}
