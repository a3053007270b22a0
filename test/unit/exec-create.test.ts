import { describe, expect, it } from 'vitest';
import { DETACH_KEYS, execCreateOptions, type ExecOptions } from '../../broker/docker/exec-create.js';

const base: ExecOptions = {
  containerId: 'c1',
  sessionId: 's-1',
  cmd: ['sh', '-c', 'stty size'],
  tty: true,
  env: ['TERM=xterm'],
  user: '',
  workdir: '',
  size: { cols: 101, rows: 33 },
  terminateGraceMs: 1000,
  openTimeoutMs: 30_000,
};

describe('the exec-create body', () => {
  it('asks for the terminal at the client size, height first, as ConsoleSize', () => {
    expect(execCreateOptions(base).ConsoleSize).toEqual([33, 101]);
  });

  it('leaves ConsoleSize out without a TTY or without a size', () => {
    expect(execCreateOptions({ ...base, tty: false })).not.toHaveProperty('ConsoleSize');
    expect(execCreateOptions({ ...base, size: undefined })).not.toHaveProperty('ConsoleSize');
  });

  it('marks the process with its session after the client environment, and sets the detach keys', () => {
    const o = execCreateOptions(base);
    expect(o.Env).toEqual(['TERM=xterm', 'ENTRY_SESSION=s-1']);
    expect(o.DetachKeys).toBe(DETACH_KEYS);
    expect(o).toMatchObject({ Cmd: base.cmd, Tty: true, AttachStdin: true, AttachStdout: true, AttachStderr: true });
  });

  it('names a user and a working directory only when given', () => {
    expect(execCreateOptions(base)).not.toHaveProperty('User');
    expect(execCreateOptions(base)).not.toHaveProperty('WorkingDir');
    expect(execCreateOptions({ ...base, user: 'nobody', workdir: '/tmp' })).toMatchObject({ User: 'nobody', WorkingDir: '/tmp' });
  });
});
