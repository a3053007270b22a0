import { describe, expect, it } from 'vitest';
import { CommandLineTracker } from '../../broker/audit/command-line.js';

const lines = (...inputs: string[]) => {
  const t = new CommandLineTracker();
  return inputs.flatMap((i) => t.push(Buffer.from(i)));
};

describe('command lines rebuilt from keystrokes', () => {
  it('reads plain lines typed one key at a time', () => {
    expect(lines(...'ls -l\r'.split(''), ...'whoami\r'.split(''))).toEqual([
      { line: 'ls -l', exact: true },
      { line: 'whoami', exact: true },
    ]);
  });

  it('applies Backspace, Ctrl-U and Ctrl-W', () => {
    expect(lines('rn\x7f\x7frm -rf /tmp/x\r')).toEqual([{ line: 'rm -rf /tmp/x', exact: true }]);
    expect(lines('echo wrong\x15echo right\r')).toEqual([{ line: 'echo right', exact: true }]);
    // Like bash's unix-word-rubout: back to the previous space.
    expect(lines('cat /etc/shadow \x17/etc/passwd\r')).toEqual([{ line: 'cat /etc/passwd', exact: true }]);
  });

  it('follows the cursor through arrows, Home/End and Delete', () => {
    expect(lines('ecoh\x1b[D\x1b[D\x1b[3~\x1b[Co hi\r')).toEqual([{ line: 'echo hi', exact: true }]);
    expect(lines('world\x1b[Hhello \x1b[F!\r')).toEqual([{ line: 'hello world!', exact: true }]);
    expect(lines('b\x01a\x05c\r')).toEqual([{ line: 'abc', exact: true }]);
  });

  it('drops a line abandoned with Ctrl-C', () => {
    expect(lines('sudo rm\x03ls\r')).toEqual([{ line: 'ls', exact: true }]);
  });

  it('marks lines from history or completion as inexact', () => {
    expect(lines('\x1b[A\r')).toEqual([]);
    expect(lines('\x1b[A -v\r')).toEqual([{ line: '-v', exact: false }]);
    expect(lines('cat /et\tpasswd\r')).toEqual([{ line: 'cat /etpasswd', exact: false }]);
  });

  it('keeps multibyte characters split across messages', () => {
    const t = new CommandLineTracker();
    const bytes = Buffer.from('echo café\r');
    const out = [...bytes].flatMap((b) => t.push(Uint8Array.of(b)));
    expect(out).toEqual([{ line: 'echo café', exact: true }]);
  });
});
