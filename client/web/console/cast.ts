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
  const [width, height] = replaySize(typeof header.width === 'number' && header.width > 0 ? header.width : 80, typeof header.height === 'number' && header.height > 0 ? header.height : 24);
  return {
    width,
    height,
    timestamp: typeof header.timestamp === 'number' ? header.timestamp : undefined,
    events,
  };
}

/**
 * The largest screen a replay draws: a 4K display in a small font is about 640 columns. The
 * broker takes sizes up to 10000×10000 from a client, and a recording keeps them; a player that
 * drew one would allocate 10⁸ cells (1.3 GB in xterm.js) for whoever opens the replay.
 */
export const MAX_REPLAY_COLS = 1000;
export const MAX_REPLAY_ROWS = 500;

/** A recorded size as a replay draws it. */
export function replaySize(cols: number, rows: number): [number, number] {
  return [Math.min(cols, MAX_REPLAY_COLS), Math.min(rows, MAX_REPLAY_ROWS)];
}

/** The recording with its header's size and its resizes ("r") cut to the largest a replay draws. */
export function clampSizes(text: string): string {
  const lines = text.split('\n');
  let changed = false;
  const header = jsonLine(lines[0] ?? '') as Record<string, unknown> | null | undefined;
  if (header && typeof header === 'object' && typeof header['width'] === 'number' && typeof header['height'] === 'number') {
    const [width, height] = replaySize(header['width'], header['height']);
    if (width !== header['width'] || height !== header['height']) {
      lines[0] = JSON.stringify({ ...header, width, height });
      changed = true;
    }
  }
  for (let i = 1; i < lines.length; i++) {
    if (!lines[i]!.includes('"r"')) continue;
    const e = jsonLine(lines[i]!);
    if (!Array.isArray(e) || e[1] !== 'r' || typeof e[2] !== 'string') continue;
    const [cols, rows] = e[2].split('x').map(Number);
    if (!cols || !rows) continue;
    const [c, r] = replaySize(cols, rows);
    if (c === cols && r === rows) continue;
    lines[i] = JSON.stringify([e[0], 'r', `${c}x${r}`]);
    changed = true;
  }
  return changed ? lines.join('\n') : text;
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
