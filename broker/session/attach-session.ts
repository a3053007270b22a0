import { ResponseType } from '../../proto/codec.js';
import { DockerDemuxer } from '../docker/demux.js';
import { dockerFailure } from '../docker/engine.js';
import { EntryError } from '../errors.js';
import type { Logger } from '../log.js';
import type { AdmittedUpgrade } from '../transport/gateway.js';
import { refuse } from '../transport/gateway.js';
import { OUTPUT_HIGH_WATER_BYTES, OUTPUT_LOW_WATER_BYTES } from '../config/limits.js';

/** How much history /attach replays before following, like `docker logs --tail`. */
const ATTACH_TAIL_LINES = 100;

/**
 * /attach: the container's own stdout/stderr, read-only, as the original had. Client input is
 * ignored. Ends when the client goes or the container stops.
 */
export async function runAttachSession(upgrade: AdmittedUpgrade, log: Logger): Promise<void> {
  const { ws, container, request } = upgrade;
  const docker = container.host.docker;
  let stream: NodeJS.ReadableStream & { destroy?: () => void; pause(): void; resume(): void };
  try {
    const inspect = await docker.getContainer(container.id).inspect();
    const logs = await docker.getContainer(container.id).logs({ follow: true, stdout: true, stderr: true, tail: ATTACH_TAIL_LINES });
    stream = logs as unknown as typeof stream;
    const send = (type: number) => (data: Uint8Array) => {
      ws.send(upgrade.framing.encode(type, data), { binary: true }, () => {
        if (ws.bufferedAmount < OUTPUT_LOW_WATER_BYTES) stream.resume();
      });
      if (ws.bufferedAmount > OUTPUT_HIGH_WATER_BYTES) stream.pause();
    };
    if (inspect.Config.Tty) {
      stream.on('data', send(ResponseType.STDOUT));
    } else {
      const demux = new DockerDemuxer((s, d) => send(s === 'stderr' ? ResponseType.STDERR : ResponseType.STDOUT)(d));
      stream.on('data', (c: Buffer) => demux.push(c));
    }
  } catch (err) {
    refuse(ws, dockerFailure(err, 'attaching'), request.protocol2, upgrade.framing);
    return;
  }
  log.info('attach start', { session: upgrade.sessionId, user: upgrade.identity.user, container: container.id.slice(0, 12) });
  ws.on('close', () => stream.destroy?.());
  await new Promise<void>((resolve) => {
    stream.on('end', resolve);
    stream.on('error', resolve);
    ws.on('close', resolve);
  });
  refuse(ws, new EntryError('ENTRY_CONTAINER_GONE'), request.protocol2, upgrade.framing);
  log.info('attach end', { session: upgrade.sessionId });
}
