import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import type { TestProject } from 'vitest/node';
import { hostNetworkState, type HostNetworkState } from '../helpers/host-network.js';

declare module 'vitest' {
  export interface ProvidedContext {
    /** The machine's docker0 and engine networks before any suite ran (test/integration/host-unchanged.test.ts). */
    hostNetworkBefore: HostNetworkState;
  }
}

/**
 * Runs once before all suites: the Docker engine must answer (deploy/dev/test.sh starts it)
 * and the offline demo images must exist.
 */
export default function setup(project: TestProject): void {
  try {
    execFileSync('docker', ['info', '--format', '{{.ServerVersion}}'], { stdio: 'pipe', timeout: 20_000 });
  } catch (err) {
    throw new Error(`no Docker engine answers; run the suite with deploy/dev/test.sh (${(err as Error).message})`);
  }
  const script = fileURLToPath(new URL('../../deploy/dev/demo-image.sh', import.meta.url));
  execFileSync('bash', [script], { stdio: 'inherit' });
  project.provide('hostNetworkBefore', hostNetworkState());
}
