import { createHash } from 'node:crypto';
import { unlink } from 'node:fs/promises';
import { connect, createServer, type Server } from 'node:net';
import { join } from 'node:path';

/**
 * A broker's proof of life beside its ledger directory: a Unix socket it listens on while it
 * runs. The kernel answers a connection to it (from its backlog, even while the broker is busy)
 * for as long as the process lives, in whatever PID namespace either side is, and refuses it
 * once the process is gone, whatever /proc of the one asking shows.
 */

/** sun_path holds 108 bytes with its terminating NUL. */
const MAX_SOCKET_PATH = 107;

/** How long a connection may take before the owner counts as alive (it cannot be judged). */
const CONNECT_TIMEOUT_MS = 1_000;

/** The socket of an owner: named by a hash of the owner's name, short enough for sun_path; undefined when even that is too long. */
export function aliveSocketPath(root: string, owner: string): string | undefined {
  const path = join(root, `${createHash('sha256').update(owner).digest('hex').slice(0, 16)}.alive`);
  return Buffer.byteLength(path) <= MAX_SOCKET_PATH ? path : undefined;
}

/** Listens on `path` (a stale socket file there is replaced); the server does not keep the process running. */
export async function listenAlive(path: string): Promise<Server> {
  await unlink(path).catch(() => undefined);
  const server = createServer((socket) => socket.destroy());
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(path, () => {
      server.off('error', reject);
      resolve();
    });
  });
  server.unref();
  return server;
}

/** What a connection to an owner's socket says: alive, dead, or nothing (no socket there). */
export function probeAlive(path: string): Promise<'alive' | 'dead' | 'no-socket'> {
  return new Promise((resolve) => {
    const socket = connect(path);
    const timer = setTimeout(() => {
      socket.destroy();
      resolve('alive');
    }, CONNECT_TIMEOUT_MS);
    socket.once('connect', () => {
      clearTimeout(timer);
      socket.destroy();
      resolve('alive');
    });
    socket.once('error', (err: NodeJS.ErrnoException) => {
      clearTimeout(timer);
      // Refused: the file is there and nobody listens on it. Anything else cannot be judged.
      resolve(err.code === 'ECONNREFUSED' ? 'dead' : err.code === 'ENOENT' ? 'no-socket' : 'alive');
    });
  });
}
