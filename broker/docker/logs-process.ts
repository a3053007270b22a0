import type Docker from 'dockerode';
import { type LogStream, LogStreamProcess } from '../backend/log-stream-process.js';
import { EntryError } from '../errors.js';
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
    // The stream also ends when the link to the engine breaks: the container says which. One
    // that stopped and started again (a restart policy, `docker restart`) stopped all the same.
    const endReason = async (): Promise<EntryError> => {
      try {
        const now = await container.inspect(answerInTime());
        return stillTheSameRun(inspect.State, now.State) ? new EntryError('ENTRY_DOCKER_UNAVAILABLE', "the container's log stream from the engine ended while the container runs") : new EntryError('ENTRY_CONTAINER_GONE');
      } catch (err) {
        return dockerFailure(err, "after the container's log stream ended");
      }
    };
    // A TTY container's log is raw: all of it stdout.
    const split: ConstructorParameters<typeof LogStreamProcess>[1] = inspect.Config.Tty
      ? undefined
      : (emit) => {
          const demux = new DockerDemuxer((s, d) => emit(s, d));
          return (c) => demux.push(c);
        };
    return new LogStreamProcess(stream, split, endReason);
  } catch (err) {
    throw dockerFailure(err, 'attaching');
  }
}

/** Whether a container seen again runs on as it did before (not stopped, nor stopped and started again since). */
export function stillTheSameRun(before: Pick<Docker.ContainerInspectInfo['State'], 'StartedAt'>, now: Pick<Docker.ContainerInspectInfo['State'], 'Running' | 'Restarting' | 'StartedAt'>): boolean {
  return now.Running && !now.Restarting && now.StartedAt === before.StartedAt;
}
