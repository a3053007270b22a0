import { type ChildProcess, spawn } from 'node:child_process';
import { BUILT_BROKER } from './repo.js';

/**
 * The built broker in dev mode with `flags` (its --dev-token-file among them: never the user's
 * own), resolved once it logs that it listens; rejected if it exits first. The caller stops it
 * (stopChild).
 */
export async function startDevBroker(flags: string[], env: NodeJS.ProcessEnv = {}): Promise<ChildProcess> {
  const child = spawn(process.execPath, [BUILT_BROKER, '--dev', '--recordings-dir', 'none', '--state-dir', 'none', ...flags], { env: { ...process.env, ...env }, stdio: ['ignore', 'ignore', 'pipe'] });
  await new Promise<void>((resolve, reject) => {
    let seen = '';
    child.stderr!.on('data', (d: Buffer) => {
      seen += d.toString();
      if (seen.includes('"msg":"listening"')) resolve();
    });
    child.once('exit', (code) => reject(new Error(`the broker exited ${code}: ${seen}`)));
  });
  return child;
}
