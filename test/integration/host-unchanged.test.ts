import { execFileSync } from 'node:child_process';
import { describe, expect, inject, it } from 'vitest';
import { hostNetworkState } from '../helpers/host-network.js';

/**
 * Runs after every other file (vitest.config.ts orders it last): the suite starts Docker
 * engines of its own and must leave the machine's engine as it found it.
 */
describe('the machine after the suite', () => {
  const before = inject('hostNetworkBefore');

  it("still has the same docker0 and the same engine networks", () => {
    expect(hostNetworkState()).toEqual(before);
  });

  // Only where the machine had a default bridge to begin with: a machine without one was not
  // broken by the suite.
  it.runIf(before.docker0 !== null && before.networks.some((n) => n.endsWith(' bridge bridge')))(
    "can still start a container on its engine's default bridge",
    () => {
      const out = execFileSync('docker', ['run', '--rm', '--network', 'bridge', '--label', 'entry.test=1', 'entry-demo:latest', 'cat', '/sys/class/net/eth0/operstate'], {
        encoding: 'utf8',
        timeout: 60_000,
      });
      expect(out.trim()).toBe('up');
    },
  );
});
