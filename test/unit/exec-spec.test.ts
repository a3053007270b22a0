import { describe, expect, it } from 'vitest';
import { encodeExecSpec, type ExecSpec } from '../../proto/codec.js';
import { EntryError } from '../../broker/errors.js';
import { INTERACTIVE_SHELL, interactivePlan, planFromStart, type ProcessPlan } from '../../broker/session/exec-spec.js';

const b = (s: string) => new TextEncoder().encode(s);
const plan = (spec: Partial<ExecSpec>, headerTerm = 'xterm-256color'): ProcessPlan => planFromStart(encodeExecSpec(spec), headerTerm);

function refusal(content: Uint8Array): EntryError {
  try {
    planFromStart(content, 'xterm');
  } catch (err) {
    expect(err).toBeInstanceOf(EntryError);
    return err as EntryError;
  }
  return expect.unreachable('the spec was accepted');
}

describe('interactivePlan', () => {
  it('runs the interactive shell with a TTY and the given TERM', () => {
    expect(interactivePlan('vt100')).toEqual({
      cmd: INTERACTIVE_SHELL,
      tty: true,
      env: ['TERM=vt100'],
      user: '',
      workdir: '',
      size: undefined,
      argv: [],
      interactive: true,
      container: '',
    });
  });
});

describe('planFromStart', () => {
  it('runs the interactive shell when argv is empty', () => {
    const p = plan({ tty: true });
    expect(p.interactive).toBe(true);
    expect(p.cmd).toEqual(INTERACTIVE_SHELL);
    expect(p.argv).toEqual([]);
  });

  it('runs the command when argv is given', () => {
    const p = plan({ argv: [b('ls'), b('-l'), b('')] });
    expect(p.interactive).toBe(false);
    expect(p.cmd).toEqual(['ls', '-l', '']);
    expect(p.argv).toEqual(['ls', '-l', '']);
  });

  it('wraps non-UTF-8 argv in a /bin/sh script', () => {
    const p = plan({ argv: [b('cat'), new Uint8Array([0xff])] });
    expect(p.cmd[0]).toBe('/bin/sh');
    expect(p.cmd[1]).toBe('-c');
  });

  it('adds TERM only with a TTY, from the spec first, else from the header', () => {
    expect(plan({ tty: true, term: 'screen' }, 'xterm').env).toEqual(['TERM=screen']);
    expect(plan({ tty: true }, 'xterm').env).toEqual(['TERM=xterm']);
    expect(plan({ tty: false, term: 'screen', argv: [b('env')] }).env).toEqual([]);
    expect(plan({ tty: true, env: ['A=1'] }, 'xterm').env).toEqual(['TERM=xterm', 'A=1']);
  });

  it('passes user, workdir and env through', () => {
    const p = plan({ argv: [b('id')], user: '1000:1000', workdir: '/srv', env: ['A=1', 'B=', 'C=x=y', '_X1=é'] });
    expect(p.user).toBe('1000:1000');
    expect(p.workdir).toBe('/srv');
    expect(p.env).toEqual(['A=1', 'B=', 'C=x=y', '_X1=é']);
    expect(p.tty).toBe(false);
  });

  it('sets the initial size only when both cols and rows are known, capped at 10000', () => {
    expect(plan({ tty: true, cols: 120, rows: 40 }).size).toEqual({ cols: 120, rows: 40 });
    expect(plan({ tty: true, cols: 120 }).size).toBeUndefined();
    expect(plan({ tty: true, rows: 40 }).size).toBeUndefined();
    expect(plan({ tty: true, cols: 50000, rows: 0xffffffff }).size).toEqual({ cols: 10000, rows: 10000 });
  });

  for (const bad of ['NOEQUALS', '=value', '1A=b', 'A-B=c', ' A=b', '', 'A=b\0c']) {
    it(`refuses the env entry ${JSON.stringify(bad)} with ENTRY_BAD_REQUEST`, () => {
      expect(refusal(encodeExecSpec({ argv: [b('env')], env: [bad] })).code).toBe('ENTRY_BAD_REQUEST');
    });
  }

  it('refuses to let the client set the reserved ENTRY_SESSION', () => {
    const err = refusal(encodeExecSpec({ argv: [b('env')], env: ['ENTRY_SESSION=other-session'] }));
    expect(err.code).toBe('ENTRY_BAD_REQUEST');
    expect(err.message).toContain('ENTRY_SESSION');
  });

  it('refuses a NUL in user or workdir', () => {
    expect(refusal(encodeExecSpec({ user: 'root\0' })).code).toBe('ENTRY_BAD_REQUEST');
    expect(refusal(encodeExecSpec({ workdir: '/tmp\0x' })).code).toBe('ENTRY_BAD_REQUEST');
  });

  it('refuses a NUL in an argument', () => {
    expect(refusal(encodeExecSpec({ argv: [b('echo'), new Uint8Array([0x61, 0, 0x62])] })).code).toBe('ENTRY_BAD_REQUEST');
  });

  it('refuses a malformed START message with ENTRY_BAD_FRAME', () => {
    const err = refusal(new Uint8Array([0x0a, 0x05, 0x61]));
    expect(err.code).toBe('ENTRY_BAD_FRAME');
    expect(err.message).toContain('START');
    expect(refusal(new Uint8Array([0x2a, 0x01, 0xff])).code).toBe('ENTRY_BAD_FRAME');
  });
});

describe('the container choice', () => {
  it('passes a container name on, and refuses one that is not a container name', () => {
    expect(planFromStart(encodeExecSpec({ argv: [Buffer.from('ps')], container: 'sidecar' }), 'xterm').container).toBe('sidecar');
    expect(() => planFromStart(encodeExecSpec({ argv: [Buffer.from('ps')], container: '../etc' }), 'xterm')).toThrow(/container name invalid/);
  });
});
