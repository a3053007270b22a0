import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parsePidList, readProcFile } from '../../broker/docker/proc-file.js';

describe('reading /proc files into one buffer', () => {
  it('reads a /proc file whole, as readFileSync does', () => {
    expect(Buffer.from(readProcFile('/proc/self/environ'))).toEqual(readFileSync('/proc/self/environ'));
    expect(readProcFile('/proc/self/stat').toString('latin1')).toMatch(new RegExp(`^${process.pid} `));
  });

  it('reads a file larger than its buffer whole, and the next small one from the start', () => {
    const dir = mkdtempSync(join(tmpdir(), 'entry-proc-file-'));
    try {
      const big = randomBytes(40_000);
      writeFileSync(join(dir, 'big'), big);
      writeFileSync(join(dir, 'small'), '1 2 3\n');
      expect(Buffer.from(readProcFile(join(dir, 'big')))).toEqual(big);
      expect(readProcFile(join(dir, 'small')).toString()).toBe('1 2 3\n');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('throws like readFileSync for a process that is gone', () => {
    expect(() => readProcFile('/proc/999999999/environ')).toThrow(expect.objectContaining({ code: 'ENOENT' }));
  });

  it('parses a children file into PIDs', () => {
    expect(parsePidList(Buffer.from('12 345 6 '))).toEqual([12, 345, 6]);
    expect(parsePidList(Buffer.from('7'))).toEqual([7]);
    expect(parsePidList(Buffer.alloc(0))).toEqual([]);
    const own = readFileSync(`/proc/${process.pid}/task/${process.pid}/children`, 'latin1');
    expect(parsePidList(readProcFile(`/proc/${process.pid}/task/${process.pid}/children`))).toEqual(own.split(' ').filter((s) => s.trim() !== '').map(Number));
  });
});
