import { execFileSync } from 'node:child_process';
import { chmodSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
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
 * and the offline demo images must exist. Every temporary file of the run (the suites', and
 * those of the brokers, CLIs and servers they start) goes in one folder, removed at the end:
 * a test that stops early leaves nothing in the machine's /tmp.
 */
export default function setup(project: TestProject): () => void {
  const runDir = mkdtempSync(join(tmpdir(), 'entry-test-run-'));
  // Traversable as /tmp is: nginx's unprivileged workers spool bodies in a folder below it.
  chmodSync(runDir, 0o755);
  process.env['TMPDIR'] = runDir;
  try {
    prepare(project);
  } catch (err) {
    // No teardown runs after a failed setup: the folder goes now.
    rmSync(runDir, { recursive: true, force: true });
    throw err;
  }
  return () => {
    try {
      rmSync(runDir, { recursive: true, force: true });
    } catch (err) {
      // Something still holds a file there (a mount of an engine that did not stop): say so.
      console.error(`could not remove ${runDir}: ${(err as Error).message}`);
      process.exitCode = 1;
    }
  };
}

function prepare(project: TestProject): void {
  try {
    execFileSync('docker', ['info', '--format', '{{.ServerVersion}}'], { stdio: 'pipe', timeout: 20_000 });
  } catch (err) {
    throw new Error(`no Docker engine answers; run the suite with deploy/dev/test.sh (${(err as Error).message})`);
  }
  const script = fileURLToPath(new URL('../../deploy/dev/demo-image.sh', import.meta.url));
  execFileSync('bash', [script], { stdio: 'inherit' });
  project.provide('hostNetworkBefore', hostNetworkState());
}
