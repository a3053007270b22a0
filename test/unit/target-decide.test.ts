import { describe, expect, it } from 'vitest';
import type { ResolvedTarget } from '../../broker/backend/backend.js';
import { decide } from '../../broker/backend/target.js';
import { EntryError } from '../../broker/errors.js';

const candidate = (app: string | undefined): ResolvedTarget => ({
  ...(app !== undefined ? { app } : {}),
  backend: 'docker',
  host: 'local',
  namespace: '',
  name: 'c1',
  id: 'c1',
  image: 'img',
  state: 'running',
  open: () => Promise.reject(new Error('not here')),
  attach: () => Promise.reject(new Error('not here')),
});

describe('decide', () => {
  it('never answers with a candidate whose own labels name another app', () => {
    const answer = { host: 'local', ok: true as const, found: [candidate('entry')] };
    let error: unknown;
    try {
      decide({ app: 'deploy', proc: 'broker', instance: '1' }, [answer]);
    } catch (err) {
      error = err;
    }
    expect(error).toBeInstanceOf(EntryError);
    expect((error as EntryError).code).toBe('ENTRY_NOT_FOUND');
  });

  it('answers with a candidate of the app asked for, or of an app the backend does not say', () => {
    expect(decide({ app: 'entry', proc: 'broker', instance: '1' }, [{ host: 'local', ok: true, found: [candidate('entry')] }]).id).toBe('c1');
    expect(decide({ app: 'web', proc: 'x', instance: '1' }, [{ host: 'local', ok: true, found: [candidate(undefined)] }]).id).toBe('c1');
  });

  it("tells a target that is not running with the engine's reason, when it gives one", () => {
    const pending = { ...candidate('shop'), backend: 'kubernetes', name: 'web-0', state: 'pending', downReason: 'container main is waiting: ErrImageNeverPull: no image' };
    expect(() => decide({ app: 'shop', proc: 'web', instance: '0' }, [{ host: 'k', ok: true, found: [pending] }])).toThrow(
      expect.objectContaining({ code: 'ENTRY_NOT_RUNNING', message: 'container is not running: shop/web/0 is pending (web-0): container main is waiting: ErrImageNeverPull: no image' }),
    );
    expect(() => decide({ app: 'shop', proc: 'web', instance: '0' }, [{ host: 'k', ok: true, found: [{ ...candidate('shop'), state: 'exited' }] }])).toThrow('container is not running: shop/web/0 is exited (c1)');
  });
});
