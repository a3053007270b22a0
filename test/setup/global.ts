import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

/**
 * Runs once before all suites: the Docker engine must answer (deploy/dev/test.sh starts it)
 * and the offline demo images must exist.
 */
export default function setup(): void {
  try {
    execFileSync('docker', ['info', '--format', '{{.ServerVersion}}'], { stdio: 'pipe', timeout: 20_000 });
  } catch (err) {
    throw new Error(`no Docker engine answers; run the suite with deploy/dev/test.sh (${(err as Error).message})`);
  }
  const script = fileURLToPath(new URL('../../deploy/dev/demo-image.sh', import.meta.url));
  execFileSync('bash', [script], { stdio: 'inherit' });
}
