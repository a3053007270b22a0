import { type ChildProcess, spawn } from 'node:child_process';
import { Agent } from 'node:http';
import type { Duplex } from 'node:stream';
import { fileURLToPath } from 'node:url';
import Docker from 'dockerode';
import WebSocket, { createWebSocketStream } from 'ws';

const TCP_MAIN = fileURLToPath(new URL('./null-relay-main.js', import.meta.url));
const WS_MAIN = fileURLToPath(new URL('./ws-relay-main.js', import.meta.url));

/**
 * A relay that only moves bytes, as a child process, and a Docker client that goes through it:
 * `tcp` pipes loopback TCP to Docker's socket; `ws` carries the same bytes in WebSocket messages.
 */
export class NullRelay {
  private constructor(
    private readonly child: ChildProcess,
    readonly docker: Docker,
  ) {}

  get pid(): number {
    return this.child.pid!;
  }

  static async start(dockerSocket: string, kind: 'tcp' | 'ws' = 'tcp'): Promise<NullRelay> {
    const child = spawn(process.execPath, [kind === 'tcp' ? TCP_MAIN : WS_MAIN, dockerSocket], { stdio: ['ignore', 'pipe', 'inherit'] });
    const port = await new Promise<number>((resolve, reject) => {
      child.once('exit', (code) => reject(new Error(`null relay exited with ${code}`)));
      child.stdout!.once('data', (line: Buffer) => resolve(Number(line.toString().trim())));
    });
    const docker = kind === 'tcp' ? new Docker({ host: '127.0.0.1', port }) : new Docker({ host: '127.0.0.1', port, agent: webSocketAgent(`ws://127.0.0.1:${port}/`) } as Docker.DockerOptions);
    return new NullRelay(child, docker);
  }

  stop(): void {
    this.child.kill('SIGKILL');
  }
}

/** An HTTP agent whose connections are WebSocket streams (as docker-modem's ssh agent uses ssh channels). */
function webSocketAgent(url: string): Agent {
  const agent = new Agent();
  const connect = (_options: unknown, done: (err: Error | null, socket?: Duplex) => void): void => {
    const ws = new WebSocket(url, { perMessageDeflate: false, maxPayload: 64 * 1024 * 1024 });
    ws.once('error', (err) => done(err));
    ws.once('open', () => {
      const stream = createWebSocketStream(ws);
      // What the HTTP client and the hijacked exec stream may call on a socket.
      Object.assign(stream, { setNoDelay: () => stream, setKeepAlive: () => stream, setTimeout: () => stream, ref: () => stream, unref: () => stream });
      done(null, stream);
    });
  };
  (agent as unknown as { createConnection: typeof connect }).createConnection = connect;
  return agent;
}
