import type { Socket } from 'node:net';
import type Docker from 'dockerode';
import type { OutputHandler } from './entry-client.js';
import { sleep } from './stats.js';

export interface DirectExecOptions {
  cmd: string[];
  tty: boolean;
  /** Attach stdin (the broker always does). */
  stdin?: boolean;
  env?: string[];
}

/**
 * The baseline: a Docker exec driven straight through dockerode, the way a well-written direct
 * client does it (exec create, start with a hijacked stream, demultiplexing when not a TTY,
 * inspect for the exit code). Same exec settings as the broker uses.
 */
export class DirectExec {
  onOutput: OutputHandler = () => undefined;
  /** Resolves when the output stream has ended. */
  readonly ended: Promise<void>;
  private drainWaiter: (() => void) | undefined;

  private constructor(
    readonly exec: Docker.Exec,
    readonly socket: Socket,
    tty: boolean,
  ) {
    if (tty) {
      socket.on('data', (chunk: Buffer) => this.onOutput(chunk, 'stdout'));
    } else {
      const demux = new Demuxer((data, stream) => this.onOutput(data, stream));
      socket.on('data', (chunk: Buffer) => demux.push(chunk));
    }
    socket.on('drain', () => {
      const w = this.drainWaiter;
      this.drainWaiter = undefined;
      w?.();
    });
    this.ended = new Promise((resolve) => {
      socket.once('end', resolve);
      socket.once('close', resolve);
      socket.once('error', () => resolve());
    });
    void this.ended.then(() => this.drainWaiter?.());
  }

  static async open(docker: Docker, containerId: string, options: DirectExecOptions): Promise<DirectExec> {
    const stdin = options.stdin ?? true;
    const exec = await docker.getContainer(containerId).exec({
      Cmd: options.cmd,
      AttachStdin: stdin,
      AttachStdout: true,
      AttachStderr: true,
      Tty: options.tty,
      Env: options.env ?? (options.tty ? ['TERM=xterm-256color'] : []),
    });
    const socket = (await exec.start({ hijack: true, stdin, Tty: options.tty })) as Socket;
    socket.setNoDelay(true);
    return new DirectExec(exec, socket, options.tty);
  }

  send(data: Uint8Array): void {
    this.socket.write(data);
  }

  /** Writes stdin honouring backpressure: resolves when more may be written. */
  write(data: Uint8Array): Promise<void> | undefined {
    if (this.socket.write(data)) return undefined;
    return new Promise((resolve) => (this.drainWaiter = resolve));
  }

  /** Half-close: the process reads EOF on stdin, output keeps flowing. */
  endInput(): void {
    this.socket.end();
  }

  pause(): void {
    this.socket.pause();
  }

  resume(): void {
    this.socket.resume();
  }

  close(): void {
    this.socket.destroy();
  }

  /** Waits for the end of the stream, then for Docker to report the exit code. */
  async exitCode(): Promise<number> {
    await this.ended;
    for (let i = 0; ; i++) {
      const info = await this.exec.inspect();
      if (!info.Running && info.ExitCode !== null && info.ExitCode !== undefined) return info.ExitCode;
      if (i > 5000) throw new Error('no exit code from docker');
      await sleep(1);
    }
  }
}

/** Docker's multiplexed stream: 8-byte headers [type, 0, 0, 0, size uint32 BE], then payload. */
class Demuxer {
  private readonly header = Buffer.alloc(8);
  private headerFill = 0;
  private remaining = 0;
  private stream: 'stdout' | 'stderr' = 'stdout';

  constructor(private readonly emit: OutputHandler) {}

  push(chunk: Buffer): void {
    let pos = 0;
    while (pos < chunk.length) {
      if (this.remaining > 0) {
        const take = Math.min(this.remaining, chunk.length - pos);
        this.emit(chunk.subarray(pos, pos + take), this.stream);
        this.remaining -= take;
        pos += take;
        continue;
      }
      const take = Math.min(8 - this.headerFill, chunk.length - pos);
      chunk.copy(this.header, this.headerFill, pos, pos + take);
      this.headerFill += take;
      pos += take;
      if (this.headerFill === 8) {
        this.headerFill = 0;
        this.stream = this.header[0] === 2 ? 'stderr' : 'stdout';
        this.remaining = this.header.readUInt32BE(4);
      }
    }
  }
}
