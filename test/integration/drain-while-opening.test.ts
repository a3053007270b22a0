import { connect, createServer, type Server, type Socket } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startBrokerProcess } from '../helpers/broker-process.js';
import { containerProcesses, TestContainers, uniqueApp } from '../helpers/containers.js';
import { eventually, openCommand } from '../helpers/sessions.js';
import { WireClient } from '../helpers/wire-client.js';

/**
 * SIGTERM while a session's exec is being opened: the drain must wait for the open, end the
 * process it started and tell the client why, instead of exiting under it. The open is held
 * by a proxy in front of the engine socket that keeps back the next exec start request; a
 * request it holds reaches the engine when released even if the broker has gone meanwhile, as
 * one already sent to a slow engine does.
 */

const ENGINE_SOCKET = process.env['DOCKER_SOCKET'] ?? '/var/run/docker.sock';
const EXEC_START = /^POST \/(?:v[\d.]+\/)?exec\/[0-9a-f]+\/start HTTP\/1\.1\r\n/;

class ExecStartHolder {
  private server: Server | undefined;
  private readonly sockets = new Set<Socket>();
  private releases: Array<() => void> = [];
  private holdNext = false;
  private onHeld: () => void = () => undefined;
  port = 0;

  /** Holds the next exec start until `release`; resolves once it has arrived. */
  holdNextStart(): Promise<void> {
    this.holdNext = true;
    return new Promise((resolve) => (this.onHeld = resolve));
  }

  release(): void {
    for (const r of this.releases.splice(0)) r();
  }

  async start(): Promise<void> {
    this.server = createServer((client) => {
      const upstream = connect(ENGINE_SOCKET);
      let held: Buffer[] | undefined;
      let clientGone = false;
      for (const s of [client, upstream]) {
        this.sockets.add(s);
        s.on('error', () => undefined);
        s.on('close', () => this.sockets.delete(s));
      }
      upstream.pipe(client);
      client.on('data', (chunk: Buffer) => {
        if (held) return void held.push(chunk);
        if (this.holdNext && EXEC_START.test(chunk.toString('latin1'))) {
          this.holdNext = false;
          held = [chunk];
          this.releases.push(() => {
            for (const c of held ?? []) upstream.write(c);
            held = undefined;
            // The engine has the request; the exec outlives the link, as Docker's do.
            if (clientGone) setTimeout(() => upstream.destroy(), 1000);
          });
          this.onHeld();
          return;
        }
        upstream.write(chunk);
      });
      client.on('end', () => {
        if (!held) upstream.end();
      });
      client.on('close', () => {
        clientGone = true;
        if (!held) upstream.destroy();
      });
      upstream.on('close', () => client.destroy());
    });
    await new Promise<void>((resolve) => this.server!.listen(0, '127.0.0.1', resolve));
    this.port = (this.server!.address() as { port: number }).port;
  }

  async stop(): Promise<void> {
    for (const s of this.sockets) s.destroy();
    await new Promise<void>((resolve) => (this.server ? this.server.close(() => resolve()) : resolve()));
  }
}

describe('SIGTERM while a session is opening its exec', () => {
  const containers = new TestContainers();
  const app = uniqueApp('dw');
  const engine = new ExecStartHolder();
  let id = '';

  beforeAll(async () => {
    await engine.start();
    id = await containers.entry(app, 'web', 1);
  });
  afterAll(async () => {
    engine.release();
    await engine.stop();
    await containers.removeAll();
  });

  it('waits for the open, ends the process it started, closes the client with the drain reason and exits 0', async () => {
    const b = await startBrokerProcess(['--docker-host', `tcp://127.0.0.1:${engine.port}`, '--kill-grace', '300', '--drain-timeout', '15000']);
    try {
      await eventually(async () => (await fetch(`${b.url}/readyz`)).status === 200, 'the broker ready', 20_000);
      const token = await b.mint({ apps: [app] });
      const held = engine.holdNextStart();
      const c = await openCommand(b.wsUrl, token, { app, proc: 'web', instance: 1 }, ['sh', '-c', 'echo READY; sleep 1031']);
      await held;

      b.child.kill('SIGTERM');
      let exitedAt = 0;
      void b.exited.then(() => (exitedAt = Date.now()));
      // The broker must not leave while the exec it asked for may still start.
      await new Promise((r) => setTimeout(r, 700));
      expect(exitedAt, 'the broker exited while the exec was opening').toBe(0);
      const releasedAt = Date.now();
      engine.release();

      expect(await b.exited).toBe(0);
      expect(exitedAt).toBeGreaterThanOrEqual(releasedAt);
      const closed = await c.closed;
      expect(closed.code).toBe(1001);
      expect(c.closeMessage()?.code).toBe('ENTRY_DRAINING');
      expect(new TextDecoder().decode(c.closeMessage()!.content)).toMatch(/broker is shutting down/);
      // The exec started once released; the drain ended it. Checked on the engine's own socket.
      await eventually(async () => (await containerProcesses(id)).every((p) => p.trim() !== 'sleep 1031'), 'no leftover sleep', 10_000);
    } finally {
      engine.release();
      await b.stop(1000);
    }
  }, 60_000);

  it('still ends the process when its client left during the drain, before exiting', async () => {
    const b = await startBrokerProcess(['--docker-host', `tcp://127.0.0.1:${engine.port}`, '--kill-grace', '300', '--drain-timeout', '15000']);
    try {
      await eventually(async () => (await fetch(`${b.url}/readyz`)).status === 200, 'the broker ready', 20_000);
      const token = await b.mint({ apps: [app] });
      const held = engine.holdNextStart();
      const c = await openCommand(b.wsUrl, token, { app, proc: 'web', instance: 1 }, ['sh', '-c', 'echo READY; sleep 1032']);
      await held;

      b.child.kill('SIGTERM');
      let exitedAt = 0;
      void b.exited.then(() => (exitedAt = Date.now()));
      c.ws.terminate();
      await new Promise((r) => setTimeout(r, 700));
      expect(exitedAt, 'the broker exited while the exec was opening').toBe(0);
      engine.release();

      expect(await b.exited).toBe(0);
      await eventually(async () => (await containerProcesses(id)).some((p) => p.trim() === 'sleep 1032') === false, 'no leftover sleep', 10_000);
      // Not merely not started yet: give a late start the time to show.
      await new Promise((r) => setTimeout(r, 1500));
      expect((await containerProcesses(id)).filter((p) => p.trim() === 'sleep 1032')).toEqual([]);
    } finally {
      engine.release();
      await b.stop(1000);
    }
  }, 60_000);

  it('closes a client still to send its START with the drain reason at once', async () => {
    const b = await startBrokerProcess(['--docker-host', `tcp://127.0.0.1:${engine.port}`, '--start-timeout', '30000', '--drain-timeout', '15000']);
    try {
      await eventually(async () => (await fetch(`${b.url}/readyz`)).status === 200, 'the broker ready', 20_000);
      const token = await b.mint({ apps: [app] });
      const c = await WireClient.connect(b.wsUrl, { 'access-token': token, 'app-name': app, 'proc-name': 'web', 'instance-no': '1', 'entry-protocol': '2' });
      // Admitted and tracked: the broker counts it.
      await new Promise((r) => setTimeout(r, 200));
      const t0 = Date.now();
      b.child.kill('SIGTERM');
      const closed = await c.closed;
      expect(Date.now() - t0).toBeLessThan(5000);
      expect(closed.code).toBe(1001);
      expect(c.closeMessage()?.code).toBe('ENTRY_DRAINING');
      expect(await b.exited).toBe(0);
    } finally {
      await b.stop(1000);
    }
  }, 60_000);
});
