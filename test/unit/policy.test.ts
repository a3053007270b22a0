import { describe, expect, it } from 'vitest';
import type { Identity } from '../../broker/auth/identity.js';
import { AccessPolicy, appMatches, globToRegExp } from '../../broker/auth/policy.js';
import { EntryError } from '../../broker/errors.js';

function identity(apps: string[], admin = false): Identity {
  return { user: 'alice', apps, roles: admin ? ['entry-admin'] : [], admin, tokenId: undefined, issuedAt: 0, expiresAt: 0 };
}

function refusal(policy: AccessPolicy, who: Identity, app: string): EntryError {
  try {
    policy.check(who, app);
  } catch (err) {
    expect(err).toBeInstanceOf(EntryError);
    return err as EntryError;
  }
  return expect.unreachable(`access to ${app} was granted`);
}

describe('globToRegExp', () => {
  it('matches * against any run of characters, including none', () => {
    const re = globToRegExp('shop-*');
    expect(re.test('shop-web')).toBe(true);
    expect(re.test('shop-')).toBe(true);
    expect(re.test('shop')).toBe(false);
    expect(re.test('my-shop-web')).toBe(false);
  });

  it('matches ? against exactly one character', () => {
    const re = globToRegExp('app?');
    expect(re.test('app1')).toBe(true);
    expect(re.test('app')).toBe(false);
    expect(re.test('app12')).toBe(false);
  });

  it('treats regex metacharacters as literal', () => {
    expect(globToRegExp('a.b').test('axb')).toBe(false);
    expect(globToRegExp('a.b').test('a.b')).toBe(true);
    expect(globToRegExp('a+b*').test('aab')).toBe(false);
    expect(globToRegExp('a+b*').test('a+bc')).toBe(true);
    expect(globToRegExp('(x|y)*').test('x')).toBe(false);
    expect(globToRegExp('(x|y)*').test('(x|y)z')).toBe(true);
    expect(globToRegExp('[ab]*').test('a')).toBe(false);
    expect(globToRegExp('[ab]*').test('[ab]c')).toBe(true);
    expect(globToRegExp('$^{1}\\*').test('$^{1}\\z')).toBe(true);
  });

  it('anchors the whole name', () => {
    expect(globToRegExp('web').test('web2')).toBe(false);
    expect(globToRegExp('*web').test('myweb')).toBe(true);
    expect(globToRegExp('*web').test('web-x')).toBe(false);
  });
});

describe('appMatches', () => {
  it('matches exact names, globs and *', () => {
    expect(appMatches(['shop'], 'shop')).toBe(true);
    expect(appMatches(['shop'], 'shop2')).toBe(false);
    expect(appMatches(['blog', 'shop-*'], 'shop-api')).toBe(true);
    expect(appMatches(['*'], 'anything')).toBe(true);
    expect(appMatches([], 'shop')).toBe(false);
  });

  it('treats a dot in a plain name literally', () => {
    expect(appMatches(['a.b'], 'axb')).toBe(false);
    expect(appMatches(['a.b'], 'a.b')).toBe(true);
  });
});

describe('AccessPolicy', () => {
  const policy = new AccessPolicy(['entry', 'vault-*']);

  it('lets a user into the apps the token grants', () => {
    expect(() => policy.check(identity(['shop-*']), 'shop-web')).not.toThrow();
    expect(() => policy.check(identity(['*']), 'blog')).not.toThrow();
    expect(policy.allows(identity(['blog']), 'blog')).toBe(true);
  });

  it('refuses other apps with ENTRY_FORBIDDEN (403)', () => {
    const err = refusal(policy, identity(['shop-*']), 'blog');
    expect(err.code).toBe('ENTRY_FORBIDDEN');
    expect(err.status).toBe(403);
    expect(err.message).toContain('blog');
    expect(refusal(policy, identity([]), 'shop').code).toBe('ENTRY_FORBIDDEN');
    expect(policy.allows(identity(['shop']), 'blog')).toBe(false);
  });

  it('lets an admin into every app not on the deny list', () => {
    expect(() => policy.check(identity([], true), 'anything')).not.toThrow();
  });

  it('refuses denied apps with ENTRY_APP_DENIED even for admins and * grants', () => {
    expect(refusal(policy, identity([], true), 'entry').code).toBe('ENTRY_APP_DENIED');
    expect(refusal(policy, identity(['*'], true), 'vault-prod').code).toBe('ENTRY_APP_DENIED');
    expect(refusal(policy, identity(['entry']), 'entry').code).toBe('ENTRY_APP_DENIED');
    expect(policy.allows(identity(['*'], true), 'entry')).toBe(false);
  });

  it('does not deny apps that only look like a denied glob', () => {
    expect(() => policy.check(identity(['*']), 'vault')).not.toThrow();
    expect(() => policy.check(identity(['*']), 'entry2')).not.toThrow();
  });
});
