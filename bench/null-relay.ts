import { type ChildProcess, spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import Docker from 'dockerode';

const MAIN = fileURLToPath(new URL('./null-relay-main.js', import.meta.url));

/** The null relay as a child process, and a Docker client that goes through it. */
export class NullRelay {
  private constructor(
    private readonly child: ChildProcess,
    readonly docker: Docker,
  ) {}

  get pid(): number {
    return this.child.pid!;
  }

  static async start(dockerSocket: string): Promise<NullRelay> {
    const child = spawn(process.execPath, [MAIN, dockerSocket], { stdio: ['ignore', 'pipe', 'inherit'] });
    const port = await new Promise<number>((resolve, reject) => {
      child.once('exit', (code) => reject(new Error(`null relay exited with ${code}`)));
      child.stdout!.once('data', (line: Buffer) => resolve(Number(line.toString().trim())));
    });
    return new NullRelay(child, new Docker({ host: '127.0.0.1', port }));
  }

  stop(): void {
    this.child.kill('SIGKILL');
  }
}
