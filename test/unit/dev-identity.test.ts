import { userInfo } from 'node:os';
import { describe, expect, it } from 'vitest';
import { createDevIdentity } from '../../broker/auth/dev.js';
import { TokenVerifier } from '../../broker/auth/verifier.js';
import { parseConfig, type RawSettings } from '../../broker/config/config.js';

/** The identity dev mode's own verifier reads from the token it made, under `settings`. */
async function devIdentityUnder(settings: RawSettings) {
  const { auth } = parseConfig({ dev: true, listen: '127.0.0.1:0', ...settings });
  const dev = await createDevIdentity(auth);
  return new TokenVerifier(dev.key, auth).verify(dev.token);
}

describe("dev mode's token", () => {
  it('names the local user, lets them enter every app and makes them an admin (enter sessions, enter watch)', async () => {
    const identity = await devIdentityUnder({});
    expect(identity).toMatchObject({ user: userInfo().username, apps: ['*'], roles: ['entry-admin'], admin: true });
  });

  it('puts each claim where the claim settings say, with the admin role, issuer and audience configured', async () => {
    const identity = await devIdentityUnder({ 'user-claim': 'preferred_username', 'apps-claim': 'entry.apps', 'roles-claim': 'realm_access.roles', 'admin-role': 'ops', issuer: 'https://id.example', audience: 'entry' });
    expect(identity).toMatchObject({ user: userInfo().username, apps: ['*'], roles: ['ops'], admin: true });
  });

  it('keeps two claims that share a parent (entry.apps and entry.roles)', async () => {
    const identity = await devIdentityUnder({ 'apps-claim': 'entry.apps', 'roles-claim': 'entry.roles' });
    expect(identity).toMatchObject({ apps: ['*'], roles: ['entry-admin'], admin: true });
  });
});
