import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { toEngineCmd } from '../../broker/backend/argv.js';
import { EntryError } from '../../broker/errors.js';

const b = (s: string) => Buffer.from(s, 'utf8');
const raw = (...bytes: number[]) => new Uint8Array(bytes);
const hasSh = existsSync('/bin/sh');
const printf = ['/usr/bin/printf', '/bin/printf'].find((p) => existsSync(p));

function expectEntryError(fn: () => unknown, code: string): void {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(EntryError);
    expect((err as EntryError).code).toBe(code);
    return;
  }
  expect.unreachable(`expected EntryError ${code}`);
}

/** Runs a Docker Cmd locally, as Docker would run it in the container. */
function runLocally(cmd: string[]): { stdout: Buffer; status: number | null; stderr: string } {
  const result = spawnSync(cmd[0]!, cmd.slice(1));
  return { stdout: result.stdout, status: result.status, stderr: result.stderr.toString() };
}

describe('toEngineCmd', () => {
  it('passes UTF-8 arguments through unchanged', () => {
    expect(toEngineCmd([b('ls'), b('-l'), b('/tmp/é€😀'), b(''), b("it's $HOME")])).toEqual(['ls', '-l', '/tmp/é€😀', '', "it's $HOME"]);
  });

  it('turns argv with invalid UTF-8 into a pure-ASCII /bin/sh -c script', () => {
    const cmd = toEngineCmd([b('cat'), raw(0xff, 0x0a, 0x0a), b('é'), b("'; rm -rf / #")]);
    expect(cmd).toHaveLength(3);
    expect(cmd[0]).toBe('/bin/sh');
    expect(cmd[1]).toBe('-c');
    expect(cmd[2]).toMatch(/^[\x20-\x7e\n]+$/);
    expect(cmd[2]).not.toContain('rm -rf');
  });

  it('refuses an empty argv with ENTRY_BAD_REQUEST', () => {
    expectEntryError(() => toEngineCmd([]), 'ENTRY_BAD_REQUEST');
  });

  it('refuses a NUL byte with ENTRY_BAD_REQUEST', () => {
    expectEntryError(() => toEngineCmd([b('echo'), raw(0x61, 0x00, 0x62)]), 'ENTRY_BAD_REQUEST');
    expectEntryError(() => toEngineCmd([raw(0x00)]), 'ENTRY_BAD_REQUEST');
    expectEntryError(() => toEngineCmd([raw(0xff, 0x00)]), 'ENTRY_BAD_REQUEST');
  });

  it('refuses a NUL byte in an argument that comes after a non-UTF-8 one', () => {
    // Both arguments need checking: the NUL must not slip into the rebuild script.
    expectEntryError(() => toEngineCmd([b('echo'), raw(0xff), raw(0x61, 0x00, 0x62)]), 'ENTRY_BAD_REQUEST');
  });

  it.runIf(hasSh && printf !== undefined)('rebuilds the exact bytes, trailing newlines included, when run by sh', () => {
    const cmd = toEngineCmd([b(printf!), b('%s|'), raw(0xff, 0x0a, 0x0a), b('a b')]);
    expect(cmd[0]).toBe('/bin/sh');
    const { stdout, status, stderr } = runLocally(cmd);
    expect(stderr).toBe('');
    expect(status).toBe(0);
    expect(stdout.equals(Buffer.concat([Buffer.from([0xff, 0x0a, 0x0a]), b('|a b|')]))).toBe(true);
  });

  it.runIf(hasSh && printf !== undefined)('rebuilds every byte value 1..255, empty arguments and shell metacharacters', () => {
    const every = new Uint8Array(255).map((_, i) => i + 1);
    const args = [every, b(''), b("'\"$(echo no)`echo no`\\ %s %% *"), raw(0x0a), raw(0x80), b('x\n\n\n')];
    const cmd = toEngineCmd([b(printf!), b('%s|'), ...args]);
    expect(cmd[0]).toBe('/bin/sh');
    expect(cmd[2]).toMatch(/^[\x20-\x7e\n]+$/);
    const { stdout, status, stderr } = runLocally(cmd);
    expect(stderr).toBe('');
    expect(status).toBe(0);
    const expected = Buffer.concat(args.flatMap((a) => [Buffer.from(a), b('|')]));
    expect(stdout.toString('hex')).toBe(expected.toString('hex'));
  });

  it.runIf(hasSh)('passes the exit status of the command through the script', () => {
    const cmd = toEngineCmd([b('/bin/sh'), b('-c'), b('exit 7'), raw(0xfe)]);
    expect(runLocally(cmd).status).toBe(7);
  });
});
