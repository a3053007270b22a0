import type { Socket } from 'node:net';
import { afterAll, beforeAll } from 'vitest';
import type { RawSettings } from '../../broker/config/config.js';
import type { ReapMode } from '../../broker/docker/process-reaper.js';
import { startTestBroker, type TestBroker } from './broker.js';
import { containerProcesses, ENGINE_SOCKET, TestContainers, uniqueApp } from './containers.js';
import { eventually } from './sessions.js';
import { TcpProxy } from './tcp-proxy.js';


/**
 * A test broker whose one engine is reached through a TcpProxy (whose links a test breaks or
 * holds), and a container of a fresh app to enter: set up before the suite, gone after it.
 */
export function brokerBehindEngineProxy(prefix: string, settings: RawSettings, opts: { reapMode?: ReapMode } = {}) {
  const containers = new TestContainers();
  const app = uniqueApp(prefix);
  const engine = new TcpProxy(`unix://${ENGINE_SOCKET}`);
  let broker: TestBroker | undefined;
  let containerId = '';

  beforeAll(async () => {
    await engine.start();
    broker = await startTestBroker({ 'docker-host': [`tcp://127.0.0.1:${engine.port}`], ...settings }, opts);
    containerId = await containers.entry(app, 'web', 1);
  });
  afterAll(async () => {
    await broker?.stop();
    await containers.removeAll();
    await engine.stop();
  });

  return {
    app,
    target: { app, proc: 'web', instance: 1 },
    engine,
    get broker(): TestBroker {
      return broker!;
    },
    /** Whether `sleep TAG` runs in the container, as the engine itself sees it. */
    running: async (tag: string) => (await containerProcesses(containerId)).some((p) => p.trim() === `sleep ${tag}`),
    /**
     * Freezes every link to the engine (see TcpProxy.freeze) once the start of the exec running
     * `cmd` has gone through; no other exec's start (a clean-up's scan, still running from a test
     * before) counts. That exec is known by its create's answer, on the link its create went.
     */
    freezeOnceStarted: (cmd: string[]) => {
      const create = JSON.stringify(cmd);
      let creating: Socket | undefined;
      let answer = '';
      let execId: string | undefined;
      engine.tapReply = (chunk, link) => {
        if (link !== creating || execId) return;
        answer += chunk.toString('latin1');
        execId = /"Id":"([0-9a-f]+)"/.exec(answer)?.[1];
      };
      engine.tap = (chunk, _hold, link) => {
        const text = chunk.toString('latin1');
        if (/^POST \/[^ ]*containers\/[0-9a-f]+\/exec /.test(text) && text.includes(create)) creating = link;
        else if (execId && new RegExp(`^POST /[^ ]*exec/${execId}/start `).test(text)) {
          engine.tap = engine.tapReply = undefined;
          setImmediate(() => engine.freeze());
        }
      };
    },
    /** Until the broker has the engine again (a cut or a hold also broke its event stream). */
    ready: () => eventually(async () => (await fetch(`${broker!.url}/readyz`)).status === 200, 'the broker ready', 20_000),
  };
}
