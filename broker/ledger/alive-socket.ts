import { createHash } from 'node:crypto';
import { closeSync, openSync } from 'node:fs';
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

/** The socket file of an owner in the ledger's root: named by a hash of the owner's name (always 22 bytes). */
export function aliveSocketName(owner: string): string {
  return `${createHash('sha256').update(owner).digest('hex').slice(0, 16)}.alive`;
}

/** The socket of an owner by its full path; too long for sun_path under a deep state directory (see AliveSockets). */
export function aliveSocketPath(root: string, owner: string): string {
  return join(root, aliveSocketName(owner));
}

/**
 * Where the sockets of a ledger's root are reached: by their full path where it fits in
 * sun_path, else through a descriptor of the root held open (`/proc/self/fd/N/<name>`, under
 * 50 bytes whatever the root), which the kernel resolves to the same directory. The files are
 * the same either way, so brokers sharing a state directory find each other whatever its depth.
 */
export class AliveSockets {
  private constructor(
    private readonly root: string,
    /** The root's descriptor, when its full paths are too long. */
    private readonly fd: number | undefined,
  ) {}

  /** Throws when the root is too deep and cannot be opened (the ledger is then off, and says so). */
  static open(root: string): AliveSockets {
    if (Buffer.byteLength(aliveSocketPath(root, '')) <= MAX_SOCKET_PATH) return new AliveSockets(root, undefined);
    return new AliveSockets(root, openSync(root, 'r'));
  }

  pathOf(owner: string): string {
    return this.fd === undefined ? aliveSocketPath(this.root, owner) : `/proc/self/fd/${this.fd}/${aliveSocketName(owner)}`;
  }

  close(): void {
    if (this.fd !== undefined) closeSync(this.fd);
  }
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
