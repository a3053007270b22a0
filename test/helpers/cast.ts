import { readFileSync } from 'node:fs';
import xtermHeadless from '@xterm/headless';

export interface Cast {
  header: { version: number; width: number; height: number; timestamp: number; command?: string; env: Record<string, string> };
  events: Array<[number, string, string]>;
}

/** Parses an asciicast v2 file strictly: every line must be valid JSON of the right shape. */
export function parseCast(path: string): Cast {
  const lines = readFileSync(path, 'utf8').split('\n').filter(Boolean);
  const header = JSON.parse(lines[0]!) as Cast['header'];
  const events = lines.slice(1).map((l) => {
    const e = JSON.parse(l) as [number, string, string];
    if (!Array.isArray(e) || e.length !== 3 || typeof e[0] !== 'number' || typeof e[1] !== 'string' || typeof e[2] !== 'string') {
      throw new Error(`bad event line: ${l}`);
    }
    return e;
  });
  return { header, events };
}

/** Plays a recording into a headless xterm and returns the screen's visible lines. */
export async function renderCast(cast: Cast): Promise<string[]> {
  const term = new xtermHeadless.Terminal({ cols: cast.header.width, rows: cast.header.height, allowProposedApi: true });
  for (const [, code, data] of cast.events) {
    if (code === 'o') await new Promise<void>((r) => term.write(data, r));
    else if (code === 'r') {
      const [c, r] = data.split('x').map(Number);
      term.resize(c!, r!);
    }
  }
  const buf = term.buffer.active;
  const out: string[] = [];
  for (let i = 0; i < term.rows; i++) out.push(buf.getLine(buf.viewportY + i)?.translateToString(true) ?? '');
  term.dispose();
  return out;
}
