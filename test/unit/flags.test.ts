import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { ConfigError, parseConfig } from '../../broker/config/config.js';
import { readSettings, settingSource } from '../../broker/config/flags.js';

const dir = mkdtempSync(join(tmpdir(), 'entry-flags-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

let fileNo = 0;
function configFile(content: unknown): string {
  const path = join(dir, `config-${fileNo++}.json`);
  writeFileSync(path, typeof content === 'string' ? content : JSON.stringify(content));
  return path;
}

describe('readSettings', () => {
  it('names an unknown option, or a word that is no option, as a ConfigError', () => {
    expect(() => readSettings(['--ping-intervall', '5'], {})).toThrow(new ConfigError('--ping-intervall', 'no such option (entry-broker --help lists them)'));
    expect(() => readSettings(['--a=1', '-b'], {})).toThrow(new ConfigError('--a, -b', 'no such option (entry-broker --help lists them)'));
    expect(() => readSettings(['start'], {})).toThrow(/unexpected "start": the broker takes options only/);
    expect(() => readSettings(['-xyz'], {})).toThrow(new ConfigError('-xyz', 'no such option (entry-broker --help lists them)'));
    expect(() => readSettings(['--bogus=1', 'serve'], {})).toThrow('no such option --bogus; unexpected "serve": the broker takes options only');
    expect(() => readSettings(['--dev', '--', 'foo'], {})).toThrow(/unexpected "foo"/);
  });

  it('refuses an option with no value, a setting given twice and a switch given something else than true or false', () => {
    expect(() => readSettings(['--listen'], {})).toThrow(new ConfigError('--listen', 'needs a value'));
    expect(() => readSettings(['--listen', '--dev'], {})).toThrow(new ConfigError('--listen', 'needs a value'));
    expect(() => readSettings(['--deny-apps', '--', 'x'], {})).toThrow(new ConfigError('--deny-apps', 'needs a value'));
    expect(() => readSettings(['--ping-interval', '5', '--ping-interval=7'], {})).toThrow(new ConfigError('--ping-interval', 'given more than once ("5", "7"); give it once'));
    expect(() => readSettings(['--dev', '--no-dev'], {})).toThrow(new ConfigError('--dev', 'given more than once ("true", "false"); give it once'));
    expect(() => readSettings(['--redis-url', 'redis://:Tr0ub4dor@r:6379', '--redis-url=redis://:s3cr/et@r2:6379'], {})).toThrow(
      new ConfigError('--redis-url', 'given more than once ("redis://[credentials]@r:6379", "redis://[credentials]@r2:6379"); give it once'),
    );
    expect(() => readSettings(['--dev=maybe'], {})).toThrow(new ConfigError('--dev', 'takes no value, or true or false; got "maybe"'));
    // What stays allowed: repeated lists, switches spelled out, values after `=`.
    expect(readSettings(['--deny-apps', 'a', '--deny-apps=b', '--dev=false', '--listen=127.0.0.1:1'], {})).toMatchObject({ 'deny-apps': ['a', 'b'], dev: false, listen: '127.0.0.1:1' });
    expect(readSettings(['--no-dev'], {})['dev']).toBe(false);
  });

  it('reads flags', () => {
    const raw = readSettings(['--listen', '0.0.0.0:9000', '--jwt-public-key', '/k.pem', '--ping-interval', '500'], {});
    expect(raw['listen']).toBe('0.0.0.0:9000');
    expect(raw['jwt-public-key']).toBe('/k.pem');
    // As written: the config reads it (and refuses `0x10` or `1e3` there, as from a variable).
    expect(raw['ping-interval']).toBe('500');
    expect(parseConfig(readSettings(['--dev', '--listen', '127.0.0.1:0', '--ping-interval', '500'], {})).limits.pingIntervalMs).toBe(500);
    for (const odd of ['0x400', '1e4']) expect(() => parseConfig(readSettings(['--dev', '--listen', '127.0.0.1:0', '--ping-interval', odd], {})), odd).toThrow(/^invalid setting --ping-interval: must be a whole number/);
  });

  it('prefers a flag over its ENTRY_* variable over the config file', () => {
    const config = configFile({ 'ping-interval': 300, issuer: 'from-file', audience: 'file-aud', 'log-level': 'warn' });
    const raw = readSettings(['--config', config, '--ping-interval', '100'], {
      ENTRY_PING_INTERVAL: '200',
      ENTRY_ISSUER: 'from-env',
    });
    expect(raw['ping-interval']).toBe('100');
    expect(raw['issuer']).toBe('from-env');
    expect(raw['audience']).toBe('file-aud');
    expect(raw['log-level']).toBe('warn');
  });

  it('takes ENTRY_DOCKER_HOSTS over the config file, and DOCKER_HOST only when nothing else names an engine', () => {
    const config = configFile({ 'docker-host': ['file=unix:///file.sock'] });
    expect(readSettings(['--config', config], { ENTRY_DOCKER_HOSTS: 'env=unix:///env.sock' })['docker-host']).toBe('env=unix:///env.sock');
    expect(readSettings(['--config', config], { DOCKER_HOST: 'unix:///docker.sock' })['docker-host']).toEqual(['file=unix:///file.sock']);
    expect(readSettings([], { DOCKER_HOST: 'unix:///docker.sock' })['docker-host']).toBe('unix:///docker.sock');
    expect(readSettings(['--docker-host', 'flag=unix:///flag.sock'], { ENTRY_DOCKER_HOSTS: 'env=unix:///env.sock' })['docker-host']).toEqual(['flag=unix:///flag.sock']);
  });

  it('maps dashed option names to ENTRY_ variables with underscores', () => {
    const raw = readSettings([], { ENTRY_JWT_PUBLIC_KEY: '/env.pem', ENTRY_DENY_APPS: 'a,b', ENTRY_DEV: 'true' });
    expect(raw['jwt-public-key']).toBe('/env.pem');
    expect(raw['deny-apps']).toBe('a,b');
    expect(raw['dev']).toBe('true');
  });

  it('leaves an unset boolean flag to the environment (yargs must not default --dev to false)', () => {
    const config = parseConfig(readSettings([], { ENTRY_DEV: 'true' }));
    expect(config.dev).toBe(true);
  });

  it('reads the config file named by ENTRY_CONFIG when there is no --config flag', () => {
    const config = configFile({ 'jwks-url': 'https://idp.example/jwks' });
    expect(readSettings([], { ENTRY_CONFIG: config })['jwks-url']).toBe('https://idp.example/jwks');
  });

  it('collects repeated array flags', () => {
    const raw = readSettings(['--deny-apps', 'a', '--deny-apps', 'b', '--allowed-origin', 'https://x.example'], {});
    expect(raw['deny-apps']).toEqual(['a', 'b']);
    expect(parseConfig({ ...raw, dev: true }).auth.denyApps).toEqual(['a', 'b']);
  });

  it('falls back to DOCKER_HOST for --docker-host', () => {
    expect(readSettings([], { DOCKER_HOST: 'tcp://d:2375' })['docker-host']).toBe('tcp://d:2375');
    expect(readSettings([], { DOCKER_HOST: 'tcp://d:2375', ENTRY_DOCKER_HOST: 'unix:///x' })['docker-host']).toBe('unix:///x');
    // An empty variable is unset: DOCKER_HOST still counts, not the local socket.
    expect(readSettings([], { DOCKER_HOST: 'tcp://d:2375', ENTRY_DOCKER_HOST: '', ENTRY_DOCKER_HOSTS: '' })['docker-host']).toBe('tcp://d:2375');
    expect(() => parseConfig(readSettings([], { ENTRY_JWT_SECRET_FILE: '/s', ENTRY_DOCKER_HOSTS: ',' }))).toThrow(/^invalid setting --docker-host: "," names no engine/);
  });

  it('refuses an option given an empty value, which would quietly mean its default', () => {
    for (const argv of [['--tls-client-ca='], ['--listen', ''], ['--audience='], ['--ping-interval='], ['--docker-host', '']]) {
      const name = argv[0]!.replace(/=$/, '');
      expect(() => readSettings(argv, {}), argv.join(' ')).toThrow(new ConfigError(name, 'needs a value (leave the option out for its default)'));
    }
    // An empty variable reads as unset (a Compose file passing an unset one on): the file's value counts.
    const config = configFile({ audience: 'entry' });
    expect(readSettings(['--config', config], { ENTRY_AUDIENCE: '' })['audience']).toBe('entry');
  });

  it('names where a setting came from: its flag, its variable or the config file', () => {
    const config = configFile({ 'kill-grace': 100 });
    const raw = readSettings(['--config', config, '--listen', '127.0.0.1:1'], { ENTRY_PING_INTERVAL: 'soon' });
    expect([settingSource(raw, 'listen'), settingSource(raw, 'ping-interval'), settingSource(raw, 'kill-grace'), settingSource(raw, 'dev')]).toEqual(['--listen', 'ENTRY_PING_INTERVAL', `kill-grace (in ${config})`, undefined]);
    expect(new ConfigError('--ping-interval', 'must be a number').as('ENTRY_PING_INTERVAL').message).toBe('invalid setting ENTRY_PING_INTERVAL: must be a number');
  });

  it('refuses an unknown key in the config file, naming it', () => {
    const config = configFile({ listen: '127.0.0.1:1', 'jwt-pubic-key': '/typo.pem' });
    try {
      readSettings(['--config', config], {});
      expect.unreachable('unknown key accepted');
    } catch (err) {
      expect(err).toBeInstanceOf(ConfigError);
      expect((err as Error).message).toContain('jwt-pubic-key');
      expect((err as Error).message).toContain('unknown setting');
    }
  });

  it('refuses a config file that is not a JSON object, naming --config', () => {
    for (const content of ['[1,2]', 'null', '{not json', '"text"']) {
      const path = configFile(content);
      expect(() => readSettings(['--config', path], {})).toThrow(/^invalid setting --config: /);
    }
  });

  it('refuses a missing config file, naming --config', () => {
    expect(() => readSettings(['--config', join(dir, 'nope.json')], {})).toThrow(ConfigError);
  });

  it('feeds parseConfig so that a bad number from the environment names its flag', () => {
    const raw = readSettings([], { ENTRY_JWT_SECRET_FILE: '/s', ENTRY_PING_INTERVAL: 'soon' });
    expect(() => parseConfig(raw)).toThrow('invalid setting --ping-interval: ');
  });
});
