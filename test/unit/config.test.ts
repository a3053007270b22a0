import { describe, expect, it } from 'vitest';
import { isLoopback, MAX_TIMER_MS, parseConfig, parseListen } from '../../broker/config/config.js';
import { configError } from '../helpers/config-error.js';

const KEY = { 'jwt-public-key': '/etc/entry/key.pem' };

describe('parseConfig', () => {
  it('fills in the documented defaults', () => {
    const config = parseConfig(KEY);
    expect(config.listen).toEqual({ host: '127.0.0.1', port: 8022 });
    expect(config.dev).toBe(false);
    expect(config.docker.hosts).toEqual([{ name: 'local', url: 'unix:///var/run/docker.sock' }]);
    expect(config.limits).toEqual({
      pingIntervalMs: 10_000,
      peerTimeoutMs: 30_000,
      stallTimeoutMs: 3600_000,
      tcpKeepAliveMs: 30_000,
      resumeGraceMs: 60_000,
      maxFrameBytes: 1024 * 1024,
      startTimeoutMs: 10_000,
      openTimeoutMs: 30_000,
      idleTimeoutMs: 4 * 3600_000,
      maxSessionMs: 0,
      maxSessions: 2000,
      handshakeTimeoutMs: 10_000,
      bodyTimeoutMs: 10_000,
      killGraceMs: 2000,
      drainTimeoutMs: 20_000,
      sessionTtlMs: 15_000,
      maxUserSessions: 0,
      authFailureLimit: 20,
      authFailureWindowMs: 60_000,
    });
    expect(config.redis).toEqual({ url: undefined, sentinels: [], sentinelName: undefined, cluster: false });
    expect(config.docker.reapMode).toBe('auto');
    expect(config.allowedOrigins).toEqual([]);
    expect(config.logLevel).toBe('info');
    expect(config.logBacklogBytes).toBe(4 * 1024 * 1024);
    expect(config.auth).toEqual({
      publicKeyFile: '/etc/entry/key.pem',
      jwksUrl: undefined,
      secretFile: undefined,
      issuer: undefined,
      audience: undefined,
      clockToleranceSec: 30,
      claims: { user: 'sub', apps: 'apps', roles: 'roles' },
      adminRole: 'entry-admin',
      denyApps: ['entry'],
    });
  });

  it('requires a key source, naming --jwt-public-key', () => {
    const err = configError({});
    expect(err.setting).toBe('--jwt-public-key');
    expect(err.message).toMatch(/^invalid setting --jwt-public-key: /);
  });

  it('treats empty strings as unset', () => {
    expect(configError({ 'jwt-public-key': '', 'jwks-url': '', 'jwt-secret-file': '' }).setting).toBe('--jwt-public-key');
    expect(parseConfig({ ...KEY, listen: '' }).listen).toEqual({ host: '127.0.0.1', port: 8022 });
  });

  it('accepts each key source on its own', () => {
    expect(parseConfig({ 'jwt-secret-file': '/s' }).auth.secretFile).toBe('/s');
    expect(parseConfig({ 'jwks-url': 'https://idp.example/jwks' }).auth.jwksUrl).toBe('https://idp.example/jwks');
  });

  it('refuses two key sources at once', () => {
    expect(configError({ ...KEY, 'jwt-secret-file': '/s' }).message).toContain('only one');
    expect(configError({ 'jwks-url': 'https://idp.example/jwks', 'jwt-secret-file': '/s' }).message).toContain('only one');
  });

  it('allows dev mode without a key on loopback addresses', () => {
    for (const listen of ['127.0.0.1:8022', 'localhost:1', '[::1]:9000', '127.1.2.3:80']) {
      const config = parseConfig({ dev: true, listen });
      expect(config.dev).toBe(true);
    }
    expect(parseConfig({ dev: 'true' }).dev).toBe(true);
  });

  it('refuses dev mode on a non-loopback address, naming --dev', () => {
    for (const listen of ['0.0.0.0:8022', ':8022', '10.0.0.5:80', '[::]:80', 'example.com:80']) {
      const err = configError({ dev: true, listen });
      expect(err.setting).toBe('--dev');
      expect(err.message).toMatch(/^invalid setting --dev: dev mode only listens on loopback/);
    }
  });

  it('refuses dev mode together with a key source', () => {
    expect(configError({ dev: true, ...KEY }).setting).toBe('--dev');
  });

  it('takes an advertised URL as an origin, an IPv6 address put in bare (as $(POD_IP) gives it) in brackets', () => {
    expect(parseConfig({ ...KEY, 'advertise-url': 'http://10.1.2.3:8022' }).advertiseUrl).toBe('http://10.1.2.3:8022');
    expect(parseConfig({ ...KEY, 'advertise-url': 'http://fd00::5:8022' }).advertiseUrl).toBe('http://[fd00::5]:8022');
    expect(parseConfig({ ...KEY, 'advertise-url': 'https://[fd00::5]:8022' }).advertiseUrl).toBe('https://[fd00::5]:8022');
    expect(() => parseConfig({ ...KEY, 'advertise-url': 'http://broker-1:8022/path' })).toThrow(/must be http\(s\):\/\/HOST:PORT/);
    expect(() => parseConfig({ ...KEY, 'advertise-url': 'http://fd00::zz:8022' })).toThrow(/not a URL/);
  });

  it('refuses dev mode on shared state, naming both --dev and --redis-url', () => {
    for (const redis of [{ 'redis-url': 'redis://127.0.0.1:6379' }, { 'redis-url': 'redis://s:26379', 'redis-sentinels': ['s:26379'] }, { 'redis-url': 'redis://c:7000', 'redis-cluster': true }]) {
      const err = configError({ dev: true, ...redis });
      expect(err.setting).toBe('--dev');
      expect(err.message).toMatch(/^invalid setting --dev: .*--redis-url/);
    }
    expect(parseConfig({ ...KEY, 'redis-url': 'redis://127.0.0.1:6379' }).redis.url).toBe('redis://127.0.0.1:6379');
  });

  it('names the setting when a number is bad', () => {
    expect(configError({ ...KEY, 'ping-interval': 'abc' }).message).toMatch(/^invalid setting --ping-interval: /);
    expect(configError({ ...KEY, 'ping-interval': 5 }).message).toMatch(/^invalid setting --ping-interval: must be a whole number from 10/);
    expect(configError({ ...KEY, 'ping-interval': Number.NaN }).setting).toBe('--ping-interval');
    expect(configError({ ...KEY, 'max-frame': 1.5 }).setting).toBe('--max-frame');
    expect(configError({ ...KEY, 'max-frame': 100 }).setting).toBe('--max-frame');
    expect(configError({ ...KEY, 'start-timeout': '10s' }).setting).toBe('--start-timeout');
    expect(configError({ ...KEY, 'clock-tolerance': -1 }).setting).toBe('--clock-tolerance');
    expect(configError({ ...KEY, 'clock-tolerance': 601 }).setting).toBe('--clock-tolerance');
  });

  it('refuses an allowed origin no browser would send, and says which one was meant', () => {
    expect(configError({ ...KEY, 'allowed-origin': ['*'] }).message).toMatch(/^invalid setting --allowed-origin: "\*" is not an origin as browsers send it/);
    expect(configError({ ...KEY, 'allowed-origin': ['https://c.example/'] }).message).toMatch(/did you mean https:\/\/c\.example\?$/);
    expect(configError({ ...KEY, 'allowed-origin': ['not an origin'] }).setting).toBe('--allowed-origin');
    expect(parseConfig({ ...KEY, 'allowed-origin': ['https://c.example', 'http://127.0.0.1:8080'] }).allowedOrigins).toEqual(['https://c.example', 'http://127.0.0.1:8080']);
  });

  it('names a --redis-url it cannot read without the password in it', () => {
    const err = configError({ ...KEY, 'redis-url': 'redis://default:hunter2@redis.internal:63 79' });
    expect(err.message).toBe('invalid setting --redis-url: not a URL: redis://[credentials]@redis.internal:63 79 (a password with / or @ in it is written %2F, %40)');
    // A generated password holds / or @ as often as not: the URL is then no URL at all.
    for (const url of ['redis://app:Tr0ub/4dor@10.0.0.5:6379/0', 'redis://:pa@ssW0rdX@10.0.0.5:63 79', 'redis://app:Tr0ub,4dor@10.0.0.5:63 79']) {
      const message = configError({ ...KEY, 'redis-url': url }).message;
      expect(message, url).not.toMatch(/Tr0ub|4dor|ssW0rdX/);
      expect(message, url).toContain('[credentials]@10.0.0.5');
    }
    expect(configError({ ...KEY, 'redis-url': 'redis://a:7000,redis://b:7000' }).message).toBe('invalid setting --redis-url: lists several URLs: give one, or seed nodes with --redis-cluster');
  });

  it('refuses a --kill-grace that a drain would not wait for', () => {
    expect(configError({ ...KEY, 'kill-grace': 30_000 }).message).toMatch(/^invalid setting --kill-grace: 30000 ms must be shorter than --drain-timeout \(20000 ms\)/);
    expect(parseConfig({ ...KEY, 'kill-grace': 30_000, 'drain-timeout': 60_000 }).limits.killGraceMs).toBe(30_000);
    // No drain at all: nothing to wait for.
    expect(parseConfig({ ...KEY, 'kill-grace': 30_000, 'drain-timeout': 0 }).limits.drainTimeoutMs).toBe(0);
  });

  it('refuses Redis settings that could not all be honoured, naming the one at fault', () => {
    expect(configError({ ...KEY, 'redis-url': 'redis://a:7000/2,redis://b:7000', 'redis-cluster': true }).message).toBe('invalid setting --redis-url: Redis Cluster has database 0 only');
    expect(configError({ ...KEY, 'redis-url': 'redis://a:6379/shop' }).message).toBe('invalid setting --redis-url: the path is a database number, got /shop');
    expect(configError({ ...KEY, 'redis-url': 'redis://a:7000', 'redis-cluster': true, 'redis-sentinels': ['s:26379'] }).setting).toBe('--redis-sentinels');
    expect(configError({ ...KEY, 'redis-url': 'redis://a:6379', 'redis-sentinel-name': 'shop' }).message).toBe('invalid setting --redis-sentinel-name: needs --redis-sentinels');
  });

  it('refuses a session time limit past what a timer can wait (about 24.8 days), which would end sessions at once', () => {
    for (const key of ['max-session', 'idle-timeout', 'stall-timeout']) {
      expect(configError({ ...KEY, [key]: 30 * 86_400_000 }).setting, key).toBe(`--${key}`);
      expect(() => parseConfig({ ...KEY, [key]: MAX_TIMER_MS }), key).not.toThrow();
    }
  });

  it('accepts numbers given as strings (environment variables)', () => {
    const config = parseConfig({ ...KEY, 'ping-interval': '250', 'max-frame': '2048', 'start-timeout': 100, 'clock-tolerance': '0' });
    expect(config.limits).toMatchObject({ pingIntervalMs: 250, maxFrameBytes: 2048, startTimeoutMs: 100 });
    expect(config.auth.clockToleranceSec).toBe(0);
  });

  it('reads several named Docker hosts and refuses duplicates', () => {
    const c = parseConfig({ ...KEY, 'docker-host': ['a=unix:///run/a.sock', 'tcp://10.0.0.2:2376'] });
    expect(c.docker.hosts).toEqual([
      { name: 'a', url: 'unix:///run/a.sock' },
      { name: '10.0.0.2:2376', url: 'tcp://10.0.0.2:2376' },
    ]);
    expect(configError({ ...KEY, 'docker-host': ['x=unix:///a', 'x=unix:///b'] }).setting).toBe('--docker-host');
    expect(configError({ ...KEY, 'docker-host': 'ftp://nope' }).setting).toBe('--docker-host');
    for (const noHost of ['tcp://', 'tcp://[::1', 'ssh://']) expect(configError({ ...KEY, 'docker-host': noHost }).setting, noHost).toBe('--docker-host');
  });

  it('validates the Redis settings', () => {
    expect(parseConfig({ ...KEY, 'redis-url': 'redis://127.0.0.1:6379' }).redis.url).toBe('redis://127.0.0.1:6379');
    expect(configError({ ...KEY, 'redis-url': 'http://x' }).setting).toBe('--redis-url');
    expect(configError({ ...KEY, 'redis-cluster': true }).setting).toBe('--redis-url');
    expect(configError({ ...KEY, 'redis-url': 'redis://a:1', 'redis-sentinels': ['nope'] }).setting).toBe('--redis-sentinels');
    expect(configError({ ...KEY, 'reap-mode': 'magic' }).setting).toBe('--reap-mode');
  });

  it('refuses a non-string where a string is expected', () => {
    expect(configError({ ...KEY, issuer: { nested: true } }).setting).toBe('--issuer');
  });

  it('requires https for --jwks-url except on loopback', () => {
    expect(configError({ 'jwks-url': 'http://idp.example/jwks' }).message).toMatch(/^invalid setting --jwks-url: must be https/);
    expect(configError({ 'jwks-url': 'ftp://idp.example/jwks' }).setting).toBe('--jwks-url');
    expect(configError({ 'jwks-url': 'not a url' }).message).toMatch(/^invalid setting --jwks-url: not a URL/);
    for (const url of ['http://127.0.0.1:8080/jwks', 'http://localhost/jwks', 'http://[::1]:9/jwks', 'https://idp.example/jwks']) {
      expect(parseConfig({ 'jwks-url': url }).auth.jwksUrl).toBe(url);
    }
  });

  it('refuses an unknown log level, naming --log-level', () => {
    expect(configError({ ...KEY, 'log-level': 'verbose' }).setting).toBe('--log-level');
    expect(configError({ ...KEY, 'log-level': 'DEBUG' }).message).toMatch(/got "DEBUG"$/);
    expect(parseConfig({ ...KEY, 'log-level': 'silent' }).logLevel).toBe('silent');
  });

  it('refuses a log backlog below 64 KiB, naming --log-backlog', () => {
    expect(configError({ ...KEY, 'log-backlog': 1000 }).setting).toBe('--log-backlog');
    expect(parseConfig({ ...KEY, 'log-backlog': 65536 }).logBacklogBytes).toBe(65536);
  });

  it('splits list settings on commas and drops blanks', () => {
    const config = parseConfig({ ...KEY, 'deny-apps': ['a, b', 'c', ' '], 'allowed-origin': 'https://x.example,https://y.example' });
    expect(config.auth.denyApps).toEqual(['a', 'b', 'c']);
    expect(config.allowedOrigins).toEqual(['https://x.example', 'https://y.example']);
  });

  it('takes alert rules whole, one per line in a variable: a regular expression holds commas', () => {
    expect(parseConfig({ ...KEY, 'alert-rule': ['rm -rf .{0,3}/', 'shadow'] }).audit.alertRules.map((r) => r.source)).toEqual(['rm -rf .{0,3}\\/', 'shadow']);
    expect(parseConfig({ ...KEY, 'alert-rule': 'rm -rf .{0,3}/\nshadow\n' }).audit.alertRules.map((r) => r.source)).toEqual(['rm -rf .{0,3}\\/', 'shadow']);
  });

  it('refuses a list that lists nothing rather than taking it for "none" (the default deny would go)', () => {
    for (const nothing of [' ', ',', ' , ']) expect(configError({ ...KEY, 'deny-apps': nothing }).message, JSON.stringify(nothing)).toMatch(/^invalid setting --deny-apps: .* lists nothing: leave it unset for the default$/);
  });

  it('takes an empty list setting as unset, keeping its default (a Compose file passing on an unset variable)', () => {
    expect(parseConfig({ ...KEY, 'deny-apps': '' }).auth.denyApps).toEqual(['entry']);
    expect(parseConfig({ ...KEY, 'oidc-issuer': 'https://id.example.com', 'oidc-client-id': 'c', 'oidc-scopes': '' }).oidc?.scopes).toContain('openid');
  });

  it('takes 1 and 0 for --dev and --redis-cluster, as for every other switch', () => {
    expect(parseConfig({ dev: '1', listen: '127.0.0.1:0' }).dev).toBe(true);
    expect(parseConfig({ ...KEY, 'redis-url': 'redis://127.0.0.1:7000', 'redis-cluster': '1' }).redis.cluster).toBe(true);
    expect(configError({ ...KEY, 'redis-url': 'redis://127.0.0.1:7000', 'redis-cluster': 'yes' }).setting).toBe('--redis-cluster');
  });

  it('says what a number setting got when it was not a number', () => {
    expect(configError({ ...KEY, 'ping-interval': Number.NaN }).message).toMatch(/got something that is not a number/);
    // Whole numbers in decimal, as written: not what Number() makes of anything.
    for (const odd of ['0x10', '1e3', ' ', true, '12ms']) expect(configError({ ...KEY, 'ping-interval': odd }).setting, JSON.stringify(odd)).toBe('--ping-interval');
    expect(parseConfig({ ...KEY, 'ping-interval': ' 300 ' }).limits.pingIntervalMs).toBe(300);
  });

  it('lets claim paths, admin role, issuer and audience be configured', () => {
    const config = parseConfig({
      ...KEY,
      'user-claim': 'preferred_username',
      'apps-claim': 'groups',
      'roles-claim': 'realm_access.roles',
      'admin-role': 'ops',
      issuer: 'https://idp.example',
      audience: 'entry',
      'docker-host': 'unix:///var/run/docker.sock',
    });
    expect(config.auth.claims).toEqual({ user: 'preferred_username', apps: 'groups', roles: 'realm_access.roles' });
    expect(config.auth.adminRole).toBe('ops');
    expect(config.auth.issuer).toBe('https://idp.example');
    expect(config.auth.audience).toBe('entry');
    expect(config.docker.hosts).toEqual([{ name: 'local', url: 'unix:///var/run/docker.sock' }]);
  });
});

describe('parseListen', () => {
  it('parses HOST:PORT, [IPv6]:PORT and :PORT', () => {
    expect(parseListen('0.0.0.0:80')).toEqual({ host: '0.0.0.0', port: 80 });
    expect(parseListen('example.com:8022')).toEqual({ host: 'example.com', port: 8022 });
    expect(parseListen('[::1]:8022')).toEqual({ host: '::1', port: 8022 });
    expect(parseListen(':9000')).toEqual({ host: '0.0.0.0', port: 9000 });
    expect(parseListen('127.0.0.1:0')).toEqual({ host: '127.0.0.1', port: 0 });
  });

  for (const bad of ['8022', 'host:', 'host:port', 'host:70000', 'host:123456', '::1:80', '[::1]', '']) {
    it(`refuses ${JSON.stringify(bad)}, naming --listen`, () => {
      expect(() => parseListen(bad)).toThrow(/^invalid setting --listen: /);
    });
  }
});

describe('isLoopback', () => {
  for (const host of ['localhost', '127.0.0.1', '127.255.0.9', '::1']) {
    it(`counts ${host} as loopback`, () => {
      expect(isLoopback(host)).toBe(true);
    });
  }
  for (const host of ['0.0.0.0', '::', '10.0.0.1', '192.168.1.1', 'example.com', '127.example.com', '127.0.0.1.nip.io', '128.0.0.1']) {
    it(`does not count ${host} as loopback`, () => {
      expect(isLoopback(host)).toBe(false);
    });
  }

  describe('Kubernetes', () => {
    it('is off by default, and Docker is on', () => {
      const c = parseConfig(KEY);
      expect(c.kubernetes).toBeNull();
      expect(c.docker.hosts).toHaveLength(1);
    });

    it('serves pods only when --kubeconfig comes without --docker-host', () => {
      const c = parseConfig({ ...KEY, kubeconfig: '/k/config', 'kube-namespace': ['shop', 'ops'] });
      expect(c.kubernetes).toEqual({ kubeconfig: '/k/config', context: null, namespaces: ['shop', 'ops'] });
      expect(c.docker.hosts).toEqual([]);
    });

    it('serves both when both are given, and none turns Docker off', () => {
      expect(parseConfig({ ...KEY, kubeconfig: 'in-cluster', 'docker-host': ['unix:///var/run/docker.sock'] }).docker.hosts).toHaveLength(1);
      expect(parseConfig({ ...KEY, kubeconfig: '/k', 'docker-host': ['none'] }).docker.hosts).toEqual([]);
      expect(() => parseConfig({ ...KEY, 'docker-host': ['none'] })).toThrow(/--docker-host: none leaves the broker nothing to enter/);
    });

    it('refuses Kubernetes settings without a kubeconfig, and bad namespace names', () => {
      expect(() => parseConfig({ ...KEY, 'kube-context': 'prod' })).toThrow(/--kube-context.*needs --kubeconfig/);
      expect(() => parseConfig({ ...KEY, kubeconfig: '/k', 'kube-namespace': ['Bad_NS'] })).toThrow(/--kube-namespace/);
    });
  });
});
