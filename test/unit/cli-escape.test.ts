import { describe, expect, it } from 'vitest';
import { EscapeFilter, escapeHelp, parseEscapeChar } from '../../client/cli/escape.js';

const TILDE = 0x7e;
const feed = (f: EscapeFilter, s: string) => {
  const r = f.feed(Buffer.from(s, 'latin1'));
  return { data: r.data.toString('latin1'), actions: r.actions };
};

describe('EscapeFilter', () => {
  it('recognises ~. as the first key and after Enter, and drops what follows it', () => {
    expect(feed(new EscapeFilter(TILDE), '~.')).toEqual({ data: '', actions: ['disconnect'] });
    expect(feed(new EscapeFilter(TILDE), 'ls\r~.rest')).toEqual({ data: 'ls\r', actions: ['disconnect'] });
    expect(feed(new EscapeFilter(TILDE), 'ls\n~.')).toEqual({ data: 'ls\n', actions: ['disconnect'] });
  });

  it('passes a ~ in the middle of a line, and ~ followed by another key, through unchanged', () => {
    expect(feed(new EscapeFilter(TILDE), 'echo a~.b\r')).toEqual({ data: 'echo a~.b\r', actions: [] });
    expect(feed(new EscapeFilter(TILDE), '~/bin\r')).toEqual({ data: '~/bin\r', actions: [] });
  });

  it('~~ sends one ~ and leaves the line start; ~? asks for help and stays at a line start', () => {
    const f = new EscapeFilter(TILDE);
    expect(feed(f, '~~.')).toEqual({ data: '~.', actions: [] });
    expect(feed(f, '\r~?~.')).toEqual({ data: '\r', actions: ['help', 'disconnect'] });
  });

  it('keeps a pending escape across chunks (keys arrive one per read)', () => {
    const f = new EscapeFilter(TILDE);
    expect(feed(f, 'x\r')).toEqual({ data: 'x\r', actions: [] });
    expect(feed(f, '~')).toEqual({ data: '', actions: [] });
    expect(feed(f, 'a')).toEqual({ data: '~a', actions: [] });
    expect(feed(f, '\r')).toEqual({ data: '\r', actions: [] });
    expect(feed(f, '~')).toEqual({ data: '', actions: [] });
    expect(feed(f, '.')).toEqual({ data: '', actions: ['disconnect'] });
  });

  it('works with another escape character', () => {
    const f = new EscapeFilter(0x1d);
    expect(feed(f, '~.')).toEqual({ data: '~.', actions: [] });
    expect(feed(f, '\r\x1d.')).toEqual({ data: '\r', actions: ['disconnect'] });
  });
});

describe('parseEscapeChar', () => {
  it('takes one character, ^X for control keys, or none', () => {
    expect(parseEscapeChar('~')).toBe(TILDE);
    expect(parseEscapeChar('%')).toBe(0x25);
    expect(parseEscapeChar('^]')).toBe(0x1d);
    expect(parseEscapeChar('^a')).toBe(0x01);
    expect(parseEscapeChar('none')).toBeNull();
    expect(() => parseEscapeChar('ab')).toThrow(/one character/);
    expect(() => parseEscapeChar('é')).toThrow(/one character/);
  });

  it('lists the escapes with the chosen character', () => {
    expect(escapeHelp(0x1d)).toContain(' ^]. ');
    expect(escapeHelp(TILDE).split('\r\n')[0]).toBe('~?');
  });

  it('keeps every line of the list within an 80-column terminal', () => {
    for (const line of escapeHelp(0x1d).split('\r\n')) expect(line.length).toBeLessThan(80);
  });
});
