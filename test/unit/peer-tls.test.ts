import { readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { ConfigError, parseConfig } from '../../broker/config/config.js';
import type { PeerTls } from '../../broker/config/fleet-settings.js';
import { createLogger } from '../../broker/log.js';
import { HUNG_UP_AFTER_HANDSHAKE } from '../../broker/transport/forward.js';
import { PeerCredentials } from '../../broker/transport/peer-tls.js';
import { peerTlsFailure } from '../../broker/transport/peer-tls-failure.js';
import { issue, makeCa } from '../helpers/certs.js';
import { configError } from '../helpers/config-error.js';

const ca = makeCa('Entry Peer Unit CA');
afterAll(() => rmSync(ca.dir, { recursive: true, force: true }));
const server = issue(ca, 'broker', { sans: ['localhost'] });
const both = issue(ca, 'broker-both', { sans: ['localhost'], both: true });
const KEY = { 'jwt-public-key': '/etc/entry/key.pem' };
const LISTENER = { ...KEY, 'tls-cert': server.cert, 'tls-key': server.key };

describe('--peer-ca, --peer-cert, --peer-key', () => {
  it("default to the system's CAs and no certificate without TLS, and to the listener's certificate with it", () => {
    expect(parseConfig(KEY).peerTls).toEqual({ ca: undefined, identity: undefined });
    expect(parseConfig(LISTENER).peerTls).toEqual({ ca: undefined, identity: { cert: server.cert, key: server.key, setting: '--tls-cert' } });
  });

  it('trust the CA of --tls-client-ca under mTLS, unless --peer-ca names another', () => {
    expect(parseConfig({ ...LISTENER, 'tls-client-ca': ca.cert }).peerTls.ca).toEqual({ file: ca.cert, setting: '--tls-client-ca' });
    const other = makeCa('Entry Peer Unit Other CA');
    try {
      expect(parseConfig({ ...LISTENER, 'tls-client-ca': ca.cert, 'peer-ca': other.cert }).peerTls.ca).toEqual({ file: other.cert, setting: '--peer-ca' });
      // Without a listener certificate too: a plain-HTTP broker may hand resumes to TLS ones.
      expect(parseConfig({ ...KEY, 'peer-ca': other.cert }).peerTls).toEqual({ ca: { file: other.cert, setting: '--peer-ca' }, identity: undefined });
    } finally {
      rmSync(other.dir, { recursive: true, force: true });
    }
  });

  it('take --peer-cert with --peer-key over the listener pair, and refuse one without the other or a missing file', () => {
    expect(parseConfig({ ...LISTENER, 'peer-cert': both.cert, 'peer-key': both.key }).peerTls.identity).toEqual({ cert: both.cert, key: both.key, setting: '--peer-cert' });
    expect(configError({ ...LISTENER, 'peer-cert': both.cert }).setting).toBe('--peer-key');
    expect(configError({ ...LISTENER, 'peer-key': both.key }).setting).toBe('--peer-cert');
    expect(configError({ ...KEY, 'peer-ca': join(ca.dir, 'nope.pem') })).toMatchObject({ setting: '--peer-ca', message: expect.stringMatching(/no such file/) });
  });

  it('take --peer-name as a host name or an address, nothing else', () => {
    expect(parseConfig(KEY).peerTls.name).toBeUndefined();
    expect(parseConfig({ ...KEY, 'peer-name': 'entry.entry.svc' }).peerTls.name).toBe('entry.entry.svc');
    expect(parseConfig({ ...KEY, 'peer-name': '10.0.0.7' }).peerTls.name).toBe('10.0.0.7');
    for (const bad of ['https://entry.example', 'entry.example:8022', 'entry example', '-entry', 'a..b']) {
      expect(configError({ ...KEY, 'peer-name': bad }), bad).toMatchObject({ setting: '--peer-name', message: expect.stringMatching(/want a host name or an address/) });
    }
  });
});

describe('the peer credentials', () => {
  const lines: string[] = [];
  const log = createLogger('info', (l) => lines.push(l));
  const creds = (peer: PeerTls) => new PeerCredentials(peer, log);

  it('name the setting of a file that is not what it should be, at start', () => {
    const garbage = join(ca.dir, 'garbage.pem');
    writeFileSync(garbage, 'not PEM');
    const refused = (peer: PeerTls) => {
      try {
        creds(peer).check(false);
      } catch (err) {
        expect(err).toBeInstanceOf(ConfigError);
        return (err as ConfigError).setting;
      }
      return 'accepted';
    };
    expect(refused({ ca: { file: garbage, setting: '--peer-ca' }, identity: undefined })).toBe('--peer-ca');
    expect(refused({ ca: undefined, identity: { cert: garbage, key: server.key, setting: '--peer-cert' } })).toBe('--peer-cert');
    expect(refused({ ca: undefined, identity: { cert: server.cert, key: both.key, setting: '--peer-cert' } })).toBe('--peer-key');
    expect(refused({ ca: { file: ca.cert, setting: '--tls-client-ca' }, identity: { cert: both.cert, key: both.key, setting: '--tls-cert' } })).toBe('accepted');
  });

  it('warn at start of a certificate without clientAuth when the peers want one, and not otherwise', () => {
    lines.length = 0;
    const serverOnly = creds({ ca: undefined, identity: { cert: server.cert, key: server.key, setting: '--tls-cert' } });
    serverOnly.check(false);
    expect(serverOnly.lacksClientAuth).toBe(true);
    expect(serverOnly.mtls).toBe(false);
    expect(lines).toEqual([]);
    serverOnly.check(true);
    expect(serverOnly.mtls).toBe(true);
    expect(lines.length).toBe(1);
    expect(lines[0]).toMatch(/"level":"warn".*--tls-cert .*broker\.pem lacks the clientAuth extended key usage/);
    const fit = creds({ ca: undefined, identity: { cert: both.cert, key: both.key, setting: '--tls-cert' } });
    fit.check(true);
    expect(fit.lacksClientAuth).toBe(false);
    expect(lines.length).toBe(1);
  });

  it('warn at start of a certificate without --peer-name under mTLS, which the peers would take for a person\'s', () => {
    lines.length = 0;
    const named = issue(ca, 'entry.entry.svc', { sans: ['entry.entry.svc'], both: true });
    const peer = (cert: { cert: string; key: string }, name: string): PeerTls => ({ ca: undefined, identity: { cert: cert.cert, key: cert.key, setting: '--tls-cert' }, name });
    const holding = creds(peer(named, 'entry.entry.svc'));
    holding.check(true);
    expect(holding.lacksPeerName).toBe(false);
    expect(lines).toEqual([]);
    const lacking = creds(peer(both, 'entry.entry.svc'));
    lacking.check(false);
    expect(lacking.lacksPeerName).toBe(true);
    expect(lines).toEqual([]);
    lacking.check(true);
    expect(lines.length).toBe(1);
    expect(lines[0]).toMatch(/"level":"warn".*--tls-cert .*broker-both\.pem does not hold --peer-name entry\.entry\.svc: .*believes neither the client certificate nor the broker it names/);
  });

  it('are read again when a file changes; a change that cannot be used keeps those in use, said once', () => {
    const cert = join(ca.dir, 'live.pem');
    const key = join(ca.dir, 'live.key');
    writeFileSync(cert, readFileSync(server.cert));
    writeFileSync(key, readFileSync(server.key));
    const c = creds({ ca: undefined, identity: { cert, key, setting: '--peer-cert' } });
    c.check(false);
    const first = c.current();
    expect(c.current()).toBe(first);
    expect(c.lacksClientAuth).toBe(true);
    lines.length = 0;
    // A renewal as deploy tools do it: written beside, renamed over (key first, then the certificate).
    writeFileSync(`${key}.new`, readFileSync(both.key));
    renameSync(`${key}.new`, key);
    writeFileSync(`${cert}.new`, readFileSync(both.cert));
    renameSync(`${cert}.new`, cert);
    const second = c.current();
    expect(second).not.toBe(first);
    expect(c.lacksClientAuth).toBe(false);
    expect(lines.some((l) => l.includes('"msg":"peer tls files reloaded"'))).toBe(true);
    lines.length = 0;
    // Half a swap: a key that does not match.
    writeFileSync(`${key}.new`, readFileSync(server.key));
    renameSync(`${key}.new`, key);
    expect(c.current()).toBe(second);
    expect(c.current()).toBe(second);
    expect(lines.filter((l) => l.includes('"msg":"peer tls files not reloaded; keeping those in use"')).length).toBe(1);
  });
});

describe('a hand-off failure', () => {
  const mtls: PeerTls = { ca: { file: '/etc/entry/ca.pem', setting: '--tls-client-ca' }, identity: { cert: '/etc/entry/tls.crt', key: '/etc/entry/tls.key', setting: '--tls-cert' } };
  const failure = (code: string, message = 'x') => Object.assign(new Error(message), { code });

  it('is told as TLS, with what to do, when a certificate was refused on either side', () => {
    expect(peerTlsFailure(failure('UNABLE_TO_VERIFY_LEAF_SIGNATURE', 'unable to verify the first certificate'), { ca: undefined, identity: undefined }, { lacksClientAuth: false, mtls: true })).toMatch(
      /does not trust the holder's certificate \(unable to verify the first certificate\): it trusts only the system's CAs: give --peer-ca/,
    );
    expect(peerTlsFailure(failure('SELF_SIGNED_CERT_IN_CHAIN'), mtls, { lacksClientAuth: false, mtls: true })).toMatch(/trusts only the CA in \/etc\/entry\/ca\.pem \(--tls-client-ca\)/);
    expect(peerTlsFailure(failure('ERR_TLS_CERT_ALTNAME_INVALID', "Hostname/IP does not match certificate's altnames"), mtls, { lacksClientAuth: false, mtls: true })).toMatch(/refused the holder's certificate \(Hostname.*: .*give --peer-name a name/);
    expect(peerTlsFailure(failure('ERR_TLS_CERT_ALTNAME_INVALID'), { ...mtls, name: 'entry.example' }, { lacksClientAuth: false, mtls: true })).toMatch(/it must hold the name entry\.example \(--peer-name\)/);
    expect(peerTlsFailure(failure('CERT_HAS_EXPIRED', 'certificate has expired'), mtls, { lacksClientAuth: false, mtls: true })).toBe("this broker refused the holder's certificate (certificate has expired)");
    expect(peerTlsFailure(failure('ERR_SSL_TLSV13_ALERT_CERTIFICATE_REQUIRED'), { ca: undefined, identity: undefined }, { lacksClientAuth: false, mtls: true })).toMatch(/certificate required\): this broker has none to present/);
    expect(peerTlsFailure(failure('ERR_SSL_TLSV1_ALERT_UNKNOWN_CA'), mtls, { lacksClientAuth: false, mtls: true })).toMatch(/unknown ca\): the holder's --tls-client-ca did not sign \/etc\/entry\/tls\.crt/);
    expect(peerTlsFailure(failure(HUNG_UP_AFTER_HANDSHAKE), mtls, { lacksClientAuth: true, mtls: true })).toMatch(/\/etc\/entry\/tls\.crt \(--tls-cert\) lacks the clientAuth extended key usage/);
    expect(peerTlsFailure(failure('ERR_SSL_WRONG_VERSION_NUMBER', 'wrong version number'), mtls, { lacksClientAuth: false, mtls: true })).toBe('TLS with the holder failed (wrong version number)');
  });

  it('is not TLS when the holder is gone, or hung up on a broker that showed no certificate or runs without mTLS', () => {
    expect(peerTlsFailure(failure('ECONNREFUSED'), mtls, { lacksClientAuth: false, mtls: true })).toBeUndefined();
    expect(peerTlsFailure(new Error('no connection within 300 ms'), mtls, { lacksClientAuth: false, mtls: true })).toBeUndefined();
    expect(peerTlsFailure(failure(HUNG_UP_AFTER_HANDSHAKE), { ca: undefined, identity: undefined }, { lacksClientAuth: false, mtls: true })).toBeUndefined();
    // Outside mTLS a holder that hangs up after the handshake went (a restart): the client tries again.
    expect(peerTlsFailure(failure(HUNG_UP_AFTER_HANDSHAKE), mtls, { lacksClientAuth: true, mtls: false })).toBeUndefined();
  });
});
