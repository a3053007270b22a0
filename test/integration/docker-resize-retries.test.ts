import { randomUUID } from 'node:crypto';
import Docker from 'dockerode';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DockerExecProcess } from '../../broker/docker/exec-process.js';
import { ProcessReaper } from '../../broker/docker/process-reaper.js';
import { TestContainers, uniqueApp } from '../helpers/containers.js';

/**
 * Docker refuses a resize until the exec runs, so a refused resize is retried. A real engine,
 * with the first resize answered by a stand-in (the refusal, or no answer) to make the case
 * happen on demand: each retry sends the size asked for last, and an engine that did not answer
 * is not asked again (the input queued behind the resize would wait for every try).
 */
describe("a Docker exec's resize that fails at first", () => {
  const containers = new TestContainers();
  const app = uniqueApp('rr');
  let containerId = '';

  beforeAll(async () => {
    containerId = await containers.entry(app, 'web', 1);
  });
  afterAll(async () => {
    await containers.removeAll();
  });

  /** An engine client whose execs fail their first resize with `failure`, and note every size asked for. */
  const engineFailingFirstResize = (failure: Error, sizes: string[], during?: () => void) => {
    const docker = new Docker({ socketPath: process.env['DOCKER_SOCKET'] ?? '/var/run/docker.sock' });
    const getContainer = docker.getContainer.bind(docker);
    docker.getContainer = (id: string) => {
      const container = getContainer(id);
      const exec = container.exec.bind(container);
      container.exec = (async (o: Docker.ExecCreateOptions) => {
        const e = await exec(o);
        const resize = e.resize.bind(e);
        e.resize = (async (size: { h: number; w: number }) => {
          sizes.push(`${size.w}x${size.h}`);
          if (sizes.length > 1) return resize(size);
          during?.();
          throw failure;
        }) as typeof e.resize;
        return e;
      }) as typeof container.exec;
      return container;
    };
    return docker;
  };

  const run = async (docker: Docker, script: string, opened?: (p: DockerExecProcess) => void) => {
    const p = await DockerExecProcess.open(docker, new ProcessReaper(docker, 'host'), {
      containerId,
      sessionId: randomUUID(),
      cmd: ['sh', '-c', script],
      tty: true,
      env: [],
      user: '',
      workdir: '',
      size: { cols: 80, rows: 24 },
      terminateGraceMs: 300,
      openTimeoutMs: 30_000,
    });
    opened?.(p);
    let out = '';
    const ended = new Promise<unknown>((resolve) => p.start({ output: (_s, d) => (out += Buffer.from(d).toString()), drain: () => undefined, end: resolve }));
    return { p, ended, output: () => out };
  };

  it('sends the latest size on the retry after a refusal, and only that', async () => {
    const sizes: string[] = [];
    let proc: DockerExecProcess | undefined;
    const refusal = Object.assign(new Error('(HTTP code 409) container is not running'), { statusCode: 409 });
    // The terminal is resized while the first resize is refused.
    const session = await run(
      engineFailingFirstResize(refusal, sizes, () => proc!.resize(100, 40)),
      'read x; stty size',
      (p) => (proc = p),
    );
    // The retry has gone out with the latest size before the command reads it.
    await expect.poll(() => sizes.length).toBe(2);
    session.p.write(Buffer.from('go\r'));
    expect(await session.ended).toEqual({ exitCode: 0 });
    expect(session.output()).toContain('40 100');
    expect(sizes).toEqual(['80x24', '100x40']);
  });

  it('does not ask again an engine that gave no answer, and the input behind the resize goes on', async () => {
    const sizes: string[] = [];
    const noAnswer = Object.assign(new Error('The operation was aborted'), { code: 'ABORT_ERR' });
    const session = await run(engineFailingFirstResize(noAnswer, sizes), 'read x; echo got $x');
    session.p.write(Buffer.from('go\r'));
    expect(await session.ended).toEqual({ exitCode: 0 });
    expect(sizes).toEqual(['80x24']);
    expect(session.output()).toContain('got go');
  });
});
