import { mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import {
  addProfile,
  credentialsFor,
  forgetCredentials,
  loadSavedConfig,
  normaliseBrokerUrl,
  removeProfile,
  resolveBrokerRef,
  sendsInClear,
  storeCredentials,
  useProfile,
} from '../../client/config/store.js';
import { resolveBroker, resolveToken } from '../../client/cli/settings.js';

const root = mkdtempSync(join(tmpdir(), 'entry-profiles-unit-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));
let n = 0;
const freshEnv = () => ({ ENTRY_CONFIG_DIR: join(root, `cfg-${n++}`) });

describe('broker profiles in the saved config', () => {
  it('keeps files from before profiles as they were (no profiles key written)', () => {
    const env = freshEnv();
    mkdirSync(env.ENTRY_CONFIG_DIR, { recursive: true });
    const old = { current: 'https://a.example', brokers: { 'https://a.example': { token: 't' } } };
    writeFileSync(join(env.ENTRY_CONFIG_DIR, 'config.json'), JSON.stringify(old));
    const config = loadSavedConfig(env);
    expect(config).toEqual(old);
    const ref = resolveBrokerRef(config.current!, config);
    expect(ref).toEqual({ url: 'https://a.example' });
    expect(credentialsFor(ref, config)).toEqual({ token: 't' });
    storeCredentials(ref, { token: 't2' }, { env });
    expect(JSON.parse(readFileSync(join(env.ENTRY_CONFIG_DIR, 'config.json'), 'utf8'))).toEqual({ current: 'https://a.example', brokers: { 'https://a.example': { token: 't2' } } });
  });

  it('resolves a name to its profile and a URL to the profile that points at it', () => {
    const env = freshEnv();
    addProfile('prod', 'entry.example:8022', env);
    addProfile('stage', 'https://stage.example', env);
    const config = loadSavedConfig(env);
    expect(resolveBrokerRef('prod', config)).toEqual({ url: 'http://entry.example:8022', profile: 'prod' });
    expect(resolveBrokerRef('https://stage.example/', config)).toEqual({ url: 'https://stage.example', profile: 'stage' });
    expect(resolveBrokerRef('other.example', config)).toEqual({ url: 'http://other.example' });
    // The first profile became the default.
    expect(config.current).toBe('prod');
    expect(resolveBroker(undefined, env)).toEqual({ url: 'http://entry.example:8022', profile: 'prod' });
    expect(resolveBroker(undefined, { ...env, ENTRY_BROKER: 'stage' })).toEqual({ url: 'https://stage.example', profile: 'stage' });
    expect(resolveBroker('http://x.example', { ...env, ENTRY_BROKER: 'stage' })).toEqual({ url: 'http://x.example' });
  });

  it('moves a URL-keyed token into a new profile for that URL, and makes it the default', () => {
    const env = freshEnv();
    storeCredentials({ url: 'https://a.example' }, { token: 'legacy' }, { env, makeCurrent: true });
    expect(addProfile('a', 'https://a.example', env)).toEqual({ moved: true, replaced: false });
    const config = loadSavedConfig(env);
    expect(config).toEqual({ current: 'a', brokers: {}, profiles: { a: { url: 'https://a.example', token: 'legacy' } } });
    expect(statSync(join(env.ENTRY_CONFIG_DIR, 'config.json')).mode & 0o777).toBe(0o600);
  });

  it('re-pointing a profile drops the old broker\'s credentials', () => {
    const env = freshEnv();
    addProfile('p', 'https://one.example', env);
    storeCredentials({ url: 'https://one.example', profile: 'p' }, { token: 'one', refreshToken: 'r', expiresAt: 5, oidc: { issuer: 'https://id', clientId: 'c' } }, { env });
    expect(loadSavedConfig(env).profiles!['p']).toEqual({ url: 'https://one.example', token: 'one', refreshToken: 'r', expiresAt: 5, oidc: { issuer: 'https://id', clientId: 'c' } });
    expect(addProfile('p', 'https://one.example', env)).toEqual({ moved: false, replaced: true });
    expect(loadSavedConfig(env).profiles!['p']!.token).toBe('one');
    addProfile('p', 'https://two.example', env);
    expect(loadSavedConfig(env).profiles!['p']).toEqual({ url: 'https://two.example' });
  });

  it('use, remove, forget; bad names are refused', () => {
    const env = freshEnv();
    addProfile('a', 'https://a.example', env);
    addProfile('b', 'https://b.example', env);
    expect(useProfile('b', env).url).toBe('https://b.example');
    expect(loadSavedConfig(env).current).toBe('b');
    expect(() => useProfile('zz', env)).toThrow(/no broker profile "zz" \(known: a, b\)/);
    storeCredentials({ url: 'https://b.example', profile: 'b' }, { token: 'tb', refreshToken: 'rb' }, { env });
    expect(forgetCredentials({ url: 'https://b.example', profile: 'b' }, env)).toBe(true);
    expect(loadSavedConfig(env).profiles!['b']).toEqual({ url: 'https://b.example' });
    expect(forgetCredentials({ url: 'https://b.example', profile: 'b' }, env)).toBe(false);
    expect(removeProfile('b', env)).toBe(true);
    expect(loadSavedConfig(env).current).toBeUndefined();
    expect(() => addProfile('http://x', 'https://x.example', env)).toThrow(/profile name/);
    expect(() => addProfile('has space', 'https://x.example', env)).toThrow(/profile name/);
  });
});

describe('sendsInClear', () => {
  it('holds for http:// and ws:// past loopback, an address given without a scheme included', () => {
    for (const url of ['http://entry.example.com', 'ws://10.0.0.5:8022', normaliseBrokerUrl('entry.example.com')]) expect(sendsInClear(url), url).toBe(true);
  });

  it("fails for TLS, and for this machine's loopback", () => {
    for (const url of ['https://entry.example.com', 'wss://10.0.0.5', 'http://localhost:8022', 'http://127.0.0.1:1', 'http://127.9.8.7', 'http://[::1]:8022']) expect(sendsInClear(url), url).toBe(false);
  });
});

describe('resolveToken', () => {
  it('says when a bare name no profile has was taken as a host, and gives the -b to log in with', async () => {
    const env = freshEnv();
    addProfile('prod', 'https://prod.example', env);
    const ref = resolveBrokerRef('prdo', loadSavedConfig(env));
    expect(ref).toEqual({ url: 'http://prdo', bareName: 'prdo' });
    await expect(resolveToken(ref, env)).rejects.toThrow('not logged in to http://prdo (taken as a host name: no profile is named "prdo", see `enter broker ls`): run `enter login -b http://prdo` (or set ENTRY_TOKEN)');
    // What cannot be a profile's name is a host as typed.
    expect(resolveBrokerRef('localhost', loadSavedConfig(env))).toEqual({ url: 'http://localhost' });
    expect(resolveBrokerRef('box:8022', loadSavedConfig(env))).toEqual({ url: 'http://box:8022' });
    expect(resolveBrokerRef('entry.example.com', loadSavedConfig(env))).toEqual({ url: 'http://entry.example.com' });
  });

  it("names the profile a bare name is likely a slip for, and none for a name far from every profile's", async () => {
    const env = freshEnv();
    addProfile('prod', 'https://prod.example', env);
    addProfile('staging', 'https://staging.example', env);
    const typo = resolveBroker('prdo', env);
    expect(typo).toEqual({ url: 'http://prdo', bareName: 'prdo', closeProfile: 'prod' });
    await expect(resolveToken(typo, env)).rejects.toThrow('not logged in to http://prdo (taken as a host name: no profile is named "prdo"; did you mean -b prod? see `enter broker ls`)');
    await expect(resolveToken(typo, { ...env, ENTRY_TOKEN: 'secret-for-prod' })).rejects.toThrow('a bare word: did you mean -b prod? write it as a URL (http://prdo)');
    expect(resolveBroker('box', env)).toEqual({ url: 'http://box', bareName: 'box' });
  });

  it('never sends ENTRY_TOKEN to a host named by a bare word no profile has, but does once it is written as a URL', async () => {
    const env = freshEnv();
    addProfile('prod', 'https://prod.example', env);
    const withToken = { ...env, ENTRY_TOKEN: 'secret-for-prod' };
    const typo = resolveBroker('prdo', withToken);
    await expect(resolveToken(typo, withToken)).rejects.toThrow(
      'no profile is named "prdo", and ENTRY_TOKEN is not sent to a host named by a bare word: did you mean -b prod? write it as a URL (http://prdo) if that host is meant',
    );
    await expect(resolveToken(resolveBroker('prdo', withToken), withToken)).rejects.not.toThrow('secret-for-prod');
    expect(await resolveToken(resolveBroker('http://prdo', withToken), withToken)).toBe('secret-for-prod');
    expect(await resolveToken(resolveBroker('prod', withToken), withToken)).toBe('secret-for-prod');
    expect(await resolveToken(resolveBroker(undefined, { ...withToken, ENTRY_BROKER: 'entry:8022' }), withToken)).toBe('secret-for-prod');
  });

  it('prefers ENTRY_TOKEN, then the saved token; says how to log in when there is none or it expired', async () => {
    const env = freshEnv();
    addProfile('p', 'https://p.example', env);
    const ref = { url: 'https://p.example', profile: 'p' };
    await expect(resolveToken(ref, env)).rejects.toThrow('not logged in to p: run `enter login` (or set ENTRY_TOKEN)');
    expect(await resolveToken(ref, { ...env, ENTRY_TOKEN: 'from-env' })).toBe('from-env');
    const now = Date.now();
    storeCredentials(ref, { token: 'saved', expiresAt: Math.floor(now / 1000) + 3600 }, { env });
    expect(await resolveToken(ref, env, now)).toBe('saved');
    // Within the refresh margin but not expired, and nothing to refresh with: still usable.
    expect(await resolveToken(ref, env, now + 3590_000)).toBe('saved');
    await expect(resolveToken(ref, env, now + 3700_000)).rejects.toThrow(/your token for p expired at .*: run `enter login`/);
    await expect(resolveToken(ref, { ...env, ENTRY_BROKER: 'https://q.example' }, now + 3700_000)).rejects.toThrow(/run `enter login -b p`/);
  });
});
