import type Docker from 'dockerode';
import { type LogStream, LogStreamProcess } from '../backend/log-stream-process.js';
import { DockerDemuxer } from './demux.js';
import { answeredWithin, answerInTime, dockerFailure, ENGINE_CALL_TIMEOUT_MS } from './engine.js';

/** How much history /attach replays before following, like `docker logs --tail`. */
const ATTACH_TAIL_LINES = 100;

/**
 * A container's own stdout/stderr (`docker logs --follow`) for /attach: a TTY container's log
 * is raw, any other's multiplexed, split here into stdout and stderr.
 */
export async function openContainerLogs(docker: Docker, containerId: string): Promise<LogStreamProcess> {
  try {
    const container = docker.getContainer(containerId);
    const inspect = await container.inspect(answerInTime());
    // The engine answers at once and the stream follows for as long as the client stays.
    const stream = (await answeredWithin(ENGINE_CALL_TIMEOUT_MS, (signal) =>
      container.logs({ follow: true, stdout: true, stderr: true, tail: ATTACH_TAIL_LINES, abortSignal: signal }),
    )) as unknown as LogStream;
    if (inspect.Config.Tty) return new LogStreamProcess(stream);
    return new LogStreamProcess(stream, (emit) => {
      const demux = new DockerDemuxer((s, d) => emit(s, d));
      return (c) => demux.push(c);
    });
  } catch (err) {
    throw dockerFailure(err, 'attaching');
  }
}
