import { describe, expect, it } from 'vitest';
import { parseConfig } from '../../broker/config/config.js';
import { readSettings } from '../../broker/config/flags.js';

const base = { 'jwks-url': 'https://id.example/jwks' };

describe('--oidc-issuer, --oidc-client-id, --oidc-scopes', () => {
  it('are off by default', () => {
    expect(parseConfig(base).oidc).toBeNull();
  });

  it('come from flags, ENTRY_* variables, with default scopes', () => {
    const fromFlags = parseConfig(readSettings(['--jwks-url', 'https://id.example/jwks', '--oidc-issuer', 'https://id.example', '--oidc-client-id', 'entry-cli'], {}));
    expect(fromFlags.oidc).toEqual({ issuer: 'https://id.example', clientId: 'entry-cli', scopes: ['openid', 'profile', 'offline_access'] });
    const fromEnv = parseConfig(readSettings([], { ENTRY_JWKS_URL: 'https://id.example/jwks', ENTRY_OIDC_ISSUER: 'http://127.0.0.1:9000', ENTRY_OIDC_CLIENT_ID: 'c', ENTRY_OIDC_SCOPES: 'openid entry,offline_access' }));
    expect(fromEnv.oidc).toEqual({ issuer: 'http://127.0.0.1:9000', clientId: 'c', scopes: ['openid', 'entry', 'offline_access'] });
  });

  it('refuse half a configuration, plain http off loopback, and scopes without openid, naming the setting', () => {
    expect(() => parseConfig({ ...base, 'oidc-issuer': 'https://id.example' })).toThrow('invalid setting --oidc-client-id: required with --oidc-issuer');
    expect(() => parseConfig({ ...base, 'oidc-client-id': 'c' })).toThrow('invalid setting --oidc-issuer: required with --oidc-client-id');
    expect(() => parseConfig({ ...base, 'oidc-issuer': 'http://id.example', 'oidc-client-id': 'c' })).toThrow('invalid setting --oidc-issuer: must be https (plain http only on loopback)');
    expect(() => parseConfig({ ...base, 'oidc-issuer': 'not a url', 'oidc-client-id': 'c' })).toThrow('invalid setting --oidc-issuer: not a URL');
    expect(() => parseConfig({ ...base, 'oidc-issuer': 'https://id.example', 'oidc-client-id': 'c', 'oidc-scopes': 'profile' })).toThrow('invalid setting --oidc-scopes: must include openid');
  });
});
