import type Docker from 'dockerode';
import { EntryError } from '../errors.js';
import type { ProcessEvents, ProcessSide } from '../session/types.js';
import { DockerDemuxer } from './demux.js';
import { dockerFailure } from './engine.js';

/** How much history /attach replays before following, like `docker logs --tail`. */
const ATTACH_TAIL_LINES = 100;

type LogStream = NodeJS.ReadableStream & { destroy?: () => void };

/**
 * A container's own stdout/stderr (`docker logs --follow`) as a read-only process side: what
 * /attach relays. Input is ignored; it ends with ENTRY_CONTAINER_GONE when the container stops.
 */
export class DockerLogsProcess implements ProcessSide {
  private events: ProcessEvents | undefined;
  private ended = false;

  private constructor(
    private readonly stream: LogStream,
    private readonly tty: boolean,
  ) {}

  static async open(docker: Docker, containerId: string): Promise<DockerLogsProcess> {
    try {
      const container = docker.getContainer(containerId);
      const inspect = await container.inspect();
      const stream = (await container.logs({ follow: true, stdout: true, stderr: true, tail: ATTACH_TAIL_LINES })) as unknown as LogStream;
      stream.pause();
      return new DockerLogsProcess(stream, inspect.Config.Tty);
    } catch (err) {
      throw dockerFailure(err, 'attaching');
    }
  }

  start(events: ProcessEvents): void {
    this.events = events;
    if (this.tty) {
      this.stream.on('data', (c: Buffer) => events.output('stdout', c));
    } else {
      const demux = new DockerDemuxer((s, d) => events.output(s, d));
      this.stream.on('data', (c: Buffer) => demux.push(c));
    }
    const end = () => this.end();
    this.stream.on('end', end);
    this.stream.on('close', end);
    this.stream.on('error', end);
    this.stream.resume();
  }

  private end(): void {
    if (this.ended) return;
    this.ended = true;
    this.events?.end({ error: new EntryError('ENTRY_CONTAINER_GONE') });
  }

  write(): boolean {
    return true;
  }

  endInput(): void {}

  resize(): void {}

  signal(): void {}

  pauseOutput(): void {
    this.stream.pause();
  }

  resumeOutput(): void {
    this.stream.resume();
  }

  async terminate(): Promise<void> {
    this.ended = true;
    this.stream.destroy?.();
  }
}
