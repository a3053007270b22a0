import { describe, expect, it } from 'vitest';
import { clampSizes, MAX_REPLAY_COLS, MAX_REPLAY_ROWS, parseCast } from '../../client/web/console/cast.js';

const header = JSON.stringify({ version: 2, width: 100, height: 30, timestamp: 1_700_000_000 });

describe('parseCast', () => {
  it('reads the header and every event line', () => {
    const cast = parseCast(`${header}\n[0.5,"o","hi"]\n[1,"i","x"]\n[1.25,"m","marker"]\n`);
    expect(cast).toEqual({
      width: 100,
      height: 30,
      timestamp: 1_700_000_000,
      events: [
        [0.5, 'o', 'hi'],
        [1, 'i', 'x'],
        [1.25, 'm', 'marker'],
      ],
    });
  });

  it('leaves out a last line still being written', () => {
    expect(parseCast(`${header}\n[0.5,"o","hi"]\n[0.7,"o","hal`).events).toEqual([[0.5, 'o', 'hi']]);
  });

  it('takes 80x24 for a header without a usable size', () => {
    expect(parseCast(`${JSON.stringify({ version: 2, width: 0 })}\n`)).toMatchObject({ width: 80, height: 24, timestamp: undefined });
  });

  it('refuses a first line that is no asciicast v2 header', () => {
    for (const first of ['<!doctype html>', 'null', '[0,"o","x"]', JSON.stringify({ version: 1 })]) {
      expect(() => parseCast(`${first}\n`), first).toThrow('not asciicast v2 (its first line is no header)');
    }
    expect(() => parseCast('')).toThrow('its first line is no header');
  });

  it('names the first line that is no event', () => {
    expect(() => parseCast(`${header}\n[0.5,"o","hi"]\n{"not":"an event"}\n`)).toThrow('not asciicast v2: line 3 is not an event');
    expect(() => parseCast(`${header}\n[null,"o","hi"]\n`)).toThrow('line 2 is not an event');
    expect(() => parseCast(`${header}\n[0.5,"o"]\n`)).toThrow('line 2 is not an event');
    expect(() => parseCast(`${header}\n[0.5,"o",`)).not.toThrow();
  });
});

describe('clampSizes', () => {
  it('cuts the sizes a replay would draw to MAX_REPLAY_COLS × MAX_REPLAY_ROWS, and leaves the rest of the recording as it was', () => {
    const huge = `${JSON.stringify({ version: 2, width: 10000, height: 10000, command: 'sh' })}\n[0.5,"o","hi"]\n[1,"r","10000x10000"]\n[1.5,"i","\\"r\\""]\n[2,"r","120x40"]\n`;
    const clamped = clampSizes(huge);
    const lines = clamped.split('\n');
    expect(JSON.parse(lines[0]!)).toEqual({ version: 2, width: MAX_REPLAY_COLS, height: MAX_REPLAY_ROWS, command: 'sh' });
    expect(lines.slice(1)).toEqual(['[0.5,"o","hi"]', `[1,"r","${MAX_REPLAY_COLS}x${MAX_REPLAY_ROWS}"]`, '[1.5,"i","\\"r\\""]', '[2,"r","120x40"]', '']);
    expect(parseCast(huge)).toMatchObject({ width: MAX_REPLAY_COLS, height: MAX_REPLAY_ROWS });
    const ordinary = `${header}\n[1,"r","200x50"]\n`;
    expect(clampSizes(ordinary)).toBe(ordinary);
  });
});
