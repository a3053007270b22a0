import Module, { createRequire } from 'node:module';
import type DockerClass from 'dockerode';

/*
 * dockerode, loaded without what the broker does not use. As it loads, dockerode requires its
 * BuildKit session (gRPC and a .proto loader, for `buildImage` with a session, which Entry never
 * calls) and docker-modem requires its ssh transport (ssh2; Entry reaches ssh:// engines with a
 * transport of its own, ssh-transport.ts). Together they are 4 MB of heap and about a third of
 * the broker's module loading time. Each is registered as a stand-in that fails if it is ever
 * called, before dockerode loads.
 */

const require = createRequire(import.meta.url);

/** Places `exports` in the module cache as the module at `path`, so that `require(path)` returns it. */
function standIn(path: string, exports: unknown): void {
  const m = new Module(path);
  m.filename = path;
  m.exports = exports;
  m.loaded = true;
  require.cache[path] = m;
}

function resolveOrNull(from: NodeJS.Require, id: string): string | null {
  try {
    return from.resolve(id);
  } catch {
    return null;
  }
}

function registerStandIns(): void {
  const session = resolveOrNull(require, 'dockerode/lib/session.js');
  const dockerode = resolveOrNull(require, 'dockerode');
  const ssh = dockerode ? resolveOrNull(createRequire(dockerode), 'docker-modem/lib/ssh.js') : null;
  // Another dockerode layout: it loads as it is, and only costs what it did.
  if (!session || !ssh || require.cache[session] || require.cache[ssh]) return;
  standIn(session, () => {
    throw new Error('dockerode BuildKit sessions are not loaded in the Entry broker');
  });
  standIn(ssh, () => {
    throw new Error("docker-modem's ssh transport is not loaded in the Entry broker (ssh:// engines use SshDialAgent)");
  });
}

registerStandIns();

/** dockerode's client class. */
export const Docker = require('dockerode') as typeof DockerClass;
