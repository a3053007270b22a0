import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { AccessPolicy } from '../../broker/auth/policy.js';
import type { Identity } from '../../broker/auth/identity.js';
import { defaultList } from '../../broker/config/settings.js';
import { targetOf } from '../../broker/docker/container-index.js';

const identity = (over: Partial<Identity>): Identity => ({ user: 'mallory', apps: [], roles: [], admin: false, tokenId: undefined, issuedAt: 0, expiresAt: Date.now() + 3_600_000, ...over });

/**
 * The shipped deploy/compose.yaml, run from deploy/ (project `deploy`) or any other folder: each
 * of its containers is known by one name, and that name is denied by default to everyone.
 */
describe('the shipped Compose file', () => {
  const file = parse(readFileSync(new URL('../../deploy/compose.yaml', import.meta.url), 'utf8')) as { services: Record<string, { labels?: Record<string, string> }> };
  const policy = new AccessPolicy(defaultList('deny-apps'));

  for (const project of ['deploy', 'entry', 'anything']) {
    it(`names its containers only as denied apps (project ${project})`, () => {
      for (const [service, spec] of Object.entries(file.services)) {
        const labels = { ...spec.labels, 'com.docker.compose.project': project, 'com.docker.compose.service': service, 'com.docker.compose.container-number': '1' };
        const t = targetOf(labels);
        expect(t, service).toBeDefined();
        for (const who of [identity({ apps: ['*'] }), identity({ apps: [project] }), identity({ admin: true })]) {
          expect(policy.allows(who, t!.app), `${service} as ${t!.app}/${t!.proc}/${t!.instance}`).toBe(false);
        }
      }
    });
  }
});
