import { createHmac, randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import type { IncomingMessage } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { ConfigError, parseConfig } from '../../broker/config/config.js';
import { applyEvent, type IndexedContainer } from '../../broker/docker/docker-events.js';
import { knownHostsVerifier } from '../../broker/docker/ssh-known-hosts.js';
import { callName } from '../../broker/docker/call-timing.js';
import { TrustedProxies } from '../../broker/transport/client-address.js';

const labels = { 'entry.app': 'shop', 'entry.proc': 'web', 'entry.instance': '1' };
const ev = (action: string, extra: Record<string, string> = {}) => ({ id: 'c1', action, time: 100, attributes: { ...labels, name: 'shop-web-1', image: 'img', ...extra } });

describe('container events applied to the index', () => {
  const base: IndexedContainer = { id: 'c1', name: 'shop-web-1', image: 'img', state: 'created', labels, created: 50 };

  it('follows the lifecycle: create, start, pause, unpause, die, destroy', () => {
    expect(applyEvent(ev('create'), undefined)).toEqual({ update: { ...base, created: 100 } });
    expect(applyEvent(ev('start'), base)).toEqual({ update: { ...base, state: 'running' } });
    expect(applyEvent(ev('pause'), { ...base, state: 'running' })).toEqual({ update: { ...base, state: 'paused' } });
    expect(applyEvent(ev('unpause'), { ...base, state: 'paused' })).toEqual({ update: { ...base, state: 'running' } });
    expect(applyEvent(ev('die', { exitCode: '0' }), { ...base, state: 'running' })).toEqual({ update: { ...base, state: 'exited' } });
    expect(applyEvent(ev('destroy'), base)).toEqual({ remove: true });
    expect(applyEvent(ev('destroy'), undefined)).toBeUndefined();
  });

  it('takes the new name on rename and the labels from every event', () => {
    expect(applyEvent(ev('rename', { name: 'renamed', oldName: '/shop-web-1' }), base)).toEqual({ update: { ...base, name: 'renamed' } });
    const relabelled = applyEvent({ ...ev('update'), attributes: { 'entry.app': 'shop', 'entry.proc': 'worker', 'entry.instance': '2', name: 'shop-web-1' } }, base);
    expect(relabelled).toEqual({ update: { ...base, labels: { 'entry.app': 'shop', 'entry.proc': 'worker', 'entry.instance': '2' } } });
  });

  it('ignores exec and health events, and state-less events for unknown containers', () => {
    for (const action of ['exec_create: sh -c x', 'exec_start: sh', 'exec_die', 'health_status: healthy', 'kill', 'stop', 'attach', 'resize', 'top']) {
      expect(applyEvent(ev(action), { ...base, state: 'running' }), action).toBeUndefined();
    }
    expect(applyEvent(ev('rename'), undefined)).toBeUndefined();
  });
});

describe('client addresses behind trusted proxies', () => {
  const req = (peer: string, headers: Record<string, string> = {}) => ({ socket: { remoteAddress: peer }, headers }) as unknown as IncomingMessage;

  it('ignores X-Forwarded-For from untrusted peers', () => {
    const p = new TrustedProxies(['10.0.0.0/8']);
    expect(p.originOf(req('192.0.2.1', { 'x-forwarded-for': '203.0.113.9' }))).toEqual({ address: '192.0.2.1' });
    expect(new TrustedProxies([]).originOf(req('::ffff:10.1.1.1', { 'x-forwarded-for': '203.0.113.9' })).address).toBe('10.1.1.1');
  });

  it('takes the rightmost address that is not a trusted proxy', () => {
    const p = new TrustedProxies(['10.0.0.0/8', '2001:db8::/32']);
    const forwarded = { 'x-forwarded-for': '1.1.1.1, 203.0.113.9, 10.2.2.2' };
    expect(p.originOf(req('::ffff:10.1.1.1', forwarded))).toEqual({ address: '203.0.113.9' });
    expect(p.originOf(req('2001:db8::1', { 'x-forwarded-for': '2001:db8::2, 198.51.100.1' })).address).toBe('198.51.100.1');
    expect(p.originOf(req('10.1.1.1', { 'x-forwarded-for': 'junk' })).address).toBe('10.1.1.1');
  });
});

describe('fleet settings', () => {
  const dir = mkdtempSync(join(tmpdir(), 'entry-fleet-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));
  const file = (name: string) => {
    const p = join(dir, name);
    writeFileSync(p, 'x');
    return p;
  };
  const base = { dev: true };
  const fails = (raw: Record<string, unknown>, setting: string) => {
    try {
      parseConfig({ ...base, ...raw });
    } catch (err) {
      expect(err).toBeInstanceOf(ConfigError);
      expect((err as Error).message).toContain(setting);
      return;
    }
    throw new Error(`accepted ${JSON.stringify(raw)}`);
  };

  it('parses TLS, proxies, metrics and Docker client files', () => {
    const c = parseConfig({ ...base, 'tls-cert': file('c.pem'), 'tls-key': file('k.pem'), 'trusted-proxy': ['10.0.0.0/8,192.168.1.1'], 'metrics-listen': '127.0.0.1:9464', 'docker-tls-ca': file('ca.pem') });
    expect(c.tls).toEqual({ cert: join(dir, 'c.pem'), key: join(dir, 'k.pem'), clientCa: undefined });
    expect(c.trustedProxies).toEqual(['10.0.0.0/8', '192.168.1.1']);
    expect(c.metricsListen).toEqual({ host: '127.0.0.1', port: 9464 });
    expect(c.docker.client.tlsCa).toBe(join(dir, 'ca.pem'));
    expect(parseConfig(base).tls).toBeNull();
  });

  it('reads a DOCKER_CERT_PATH-style directory', () => {
    for (const f of ['ca.pem', 'cert.pem', 'key.pem']) file(f);
    const c = parseConfig({ ...base, 'docker-cert-path': dir });
    expect(c.docker.client).toMatchObject({ tlsCa: join(dir, 'ca.pem'), tlsCert: join(dir, 'cert.pem'), tlsKey: join(dir, 'key.pem') });
  });

  it('refuses half a pair, missing files and bad CIDRs, naming the setting', () => {
    fails({ 'tls-cert': file('c2.pem') }, '--tls-key');
    fails({ 'tls-client-ca': file('ca2.pem') }, '--tls-client-ca');
    fails({ 'tls-cert': join(dir, 'nope.pem'), 'tls-key': file('k2.pem') }, '--tls-cert');
    fails({ 'trusted-proxy': ['10.0.0.0/33'] }, '--trusted-proxy');
    fails({ 'trusted-proxy': ['proxy.example'] }, '--trusted-proxy');
    fails({ 'metrics-listen': 'nine' }, '--metrics-listen');
    fails({ 'docker-tls-cert': file('dc.pem') }, '--docker-tls-cert');
  });
});

describe('Docker API call names for the latency histogram', () => {
  it('names the calls the broker makes, with or without an API version prefix', () => {
    expect(callName('POST', '/containers/abc/exec?')).toBe('exec_create');
    expect(callName('POST', '/v1.41/exec/abc/start?')).toBe('exec_start');
    expect(callName('GET', '/exec/abc/json')).toBe('exec_inspect');
    expect(callName('GET', '/containers/json?all=true')).toBe('container_list');
    expect(callName('GET', '/containers/abc/json?')).toBe('container_inspect');
    expect(callName('GET', '/_ping')).toBe('ping');
    expect(callName('GET', '/events?filters=x')).toBe('events');
    expect(callName('DELETE', '/containers/abc')).toBe('other');
  });
});

describe('known_hosts for ssh:// Docker hosts', () => {
  const dir = mkdtempSync(join(tmpdir(), 'entry-kh-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));
  it('accepts the listed key for plain and hashed host names only', () => {
    const key = randomBytes(51);
    const other = randomBytes(51);
    const salt = randomBytes(20);
    const hashed = `|1|${salt.toString('base64')}|${createHmac('sha1', salt).update('[10.0.0.3]:2222').digest('base64')}`;
    const path = join(dir, 'known_hosts');
    writeFileSync(path, `# comment\ndocker-a,10.0.0.2 ssh-ed25519 ${key.toString('base64')}\n${hashed} ssh-ed25519 ${key.toString('base64')}\n`);
    const verify = knownHostsVerifier(path);
    expect(verify('docker-a', 22)(key)).toBe(true);
    expect(verify('10.0.0.2', 22)(key)).toBe(true);
    expect(verify('10.0.0.2', 22)(other)).toBe(false);
    expect(verify('10.0.0.2', 2222)(key)).toBe(false);
    expect(verify('10.0.0.3', 2222)(key)).toBe(true);
    expect(verify('10.0.0.3', 22)(key)).toBe(false);
  });
});
