import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync, chmodSync, mkdirSync } from 'node:fs';
import { homedir, tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { configDir, loadSavedConfig, normaliseBrokerUrl, saveToken } from '../../client/config/store.js';

const root = mkdtempSync(join(tmpdir(), 'entry-store-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));
let n = 0;
const freshDir = () => join(root, `cfg-${n++}`, 'entry');

describe('configDir', () => {
  it('prefers ENTRY_CONFIG_DIR, then XDG_CONFIG_HOME/entry, then ~/.config/entry', () => {
    expect(configDir({ ENTRY_CONFIG_DIR: '/a', XDG_CONFIG_HOME: '/x' })).toBe('/a');
    expect(configDir({ XDG_CONFIG_HOME: '/x' })).toBe('/x/entry');
    expect(configDir({})).toBe(join(homedir(), '.config', 'entry'));
  });
});

describe('saveToken', () => {
  it('writes config.json with mode 0600 in a new 0700 ENTRY_CONFIG_DIR', () => {
    const dir = freshDir();
    const env = { ENTRY_CONFIG_DIR: dir };
    saveToken('localhost:8022', 'tok-secret', { env });
    const file = join(dir, 'config.json');
    expect(statSync(file).mode & 0o777).toBe(0o600);
    expect(statSync(dir).mode & 0o777).toBe(0o700);
    expect(JSON.parse(readFileSync(file, 'utf8'))).toEqual({
      current: 'http://localhost:8022',
      brokers: { 'http://localhost:8022': { token: 'tok-secret' } },
    });
    expect(readdirSync(dir)).toEqual(['config.json']);
  });

  it('tightens an existing world-readable file to 0600', () => {
    const dir = freshDir();
    mkdirSync(dir, { recursive: true });
    const file = join(dir, 'config.json');
    writeFileSync(file, JSON.stringify({ brokers: {} }));
    chmodSync(file, 0o644);
    saveToken('https://b.example', 't', { env: { ENTRY_CONFIG_DIR: dir } });
    expect(statSync(file).mode & 0o777).toBe(0o600);
  });

  it('keeps the current broker unless asked to switch', () => {
    const env = { ENTRY_CONFIG_DIR: freshDir() };
    saveToken('https://one.example/', 't1', { env });
    saveToken('https://two.example', 't2', { env });
    expect(loadSavedConfig(env)).toEqual({
      current: 'https://one.example',
      brokers: { 'https://one.example': { token: 't1' }, 'https://two.example': { token: 't2' } },
    });
    saveToken('https://two.example', 't3', { env, makeCurrent: true });
    const config = loadSavedConfig(env);
    expect(config.current).toBe('https://two.example');
    expect(config.brokers['https://two.example']).toEqual({ token: 't3' });
  });

  it('loads an empty config when there is no file, and refuses a corrupt one naming the file', () => {
    const dir = freshDir();
    expect(loadSavedConfig({ ENTRY_CONFIG_DIR: dir })).toEqual({ brokers: {} });
    mkdirSync(dir, { recursive: true });
    writeFileSync(join(dir, 'config.json'), '{oops');
    expect(() => loadSavedConfig({ ENTRY_CONFIG_DIR: dir })).toThrow(join(dir, 'config.json'));
  });
});

describe('normaliseBrokerUrl', () => {
  const cases: Array<[string, string]> = [
    ['localhost:8022', 'http://localhost:8022'],
    ['localhost', 'http://localhost'],
    ['https://entry.example/', 'https://entry.example'],
    ['  wss://entry.example:443/base/  ', 'wss://entry.example/base'],
    ['HTTP://Entry.Example:8022', 'http://entry.example:8022'],
    ['ws://10.0.0.1:80', 'ws://10.0.0.1'],
  ];
  for (const [input, expected] of cases) {
    it(`normalises ${JSON.stringify(input)} to ${expected}`, () => {
      expect(normaliseBrokerUrl(input)).toBe(expected);
    });
  }

  it('refuses other schemes', () => {
    expect(() => normaliseBrokerUrl('ftp://entry.example')).toThrow(/http\(s\):\/\/ or ws\(s\):\/\//);
    expect(() => normaliseBrokerUrl('file:///etc/passwd')).toThrow();
  });

  it('refuses an address with a query, a fragment or a user name, which the API paths could not be added to', () => {
    for (const [bad, what] of [['http://127.0.0.1:8022?x=1', 'query'], ['https://entry.example/#top', 'fragment'], ['http://me:pw@entry.example', 'user name'], ['http://me@entry.example', 'user name']] as const) {
      expect(() => normaliseBrokerUrl(bad), bad).toThrow(`broker address ${JSON.stringify(bad)} has a ${what}: give the address alone, such as https://entry.example.com`);
    }
  });

  it('names an address that is no URL, and says what one looks like', () => {
    for (const bad of ['http://', 'http://exa mple', '127.0.0.1:99999', 'https://[::1']) {
      expect(() => normaliseBrokerUrl(bad), bad).toThrow(`broker address ${JSON.stringify(bad)} is not a URL: give one such as https://entry.example.com, or HOST:PORT`);
    }
  });
});
