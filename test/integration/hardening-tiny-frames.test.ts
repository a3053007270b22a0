import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { decodeResponse, encodeExecSpec, encodeRequest, RequestType, ResponseType } from '../../proto/codec.js';
import { type BrokerProcess, startBrokerProcess } from '../helpers/broker-process.js';
import { ENGINE_SOCKET, TestContainers, uniqueApp } from '../helpers/containers.js';
import { healthz, mb, summaryLine, timedEcho } from '../helpers/hardening.js';
import { NodeInspector } from '../helpers/inspector.js';
import { eventually } from '../helpers/sessions.js';
import { TcpProxy } from '../helpers/tcp-proxy.js';

/**
 * Input the broker holds for a client is bounded in bytes (1 MiB before the process starts, 1 MiB
 * queued towards a process that reads none, 2 MiB held by a resumable session). A client may send
 * its input in frames of no bytes or one: each costs the broker its objects too, and a bound
 * counted in bytes alone held a million of them. The client here sends such frames as fast as
 * they are taken; the heap the broker holds for them (after a full collection) must stay small,
 * and the session and the broker go on.
 */

/** Heap a flood may leave held: the bounds' own megabytes and room for the collector's slack. */
const HEAP_LIMIT = 16 * 1024 * 1024;
/**
 * Frames sent at most. The broker stops reading at its bound, but the loopback's socket buffers
 * (megabytes, as the kernel tunes them) take frames on after that: the heap, not the count the
 * client got rid of, says what the broker holds. A broker that counted bytes alone held some
 * 100 MB for this many.
 */
const MAX_FRAMES = 1_200_000;
/** The client's own backlog: the broker has stopped reading once it sits this long unread. */
const STOPPED_AFTER_MS = 1_000;

const figures: Record<string, string | number> = {};
/** The CLOSE line each socket got, to say why a session ended early. */
const closes = new WeakMap<WebSocket, string>();

describe('input in empty and one-byte frames', () => {
  const containers = new TestContainers();
  const app = uniqueApp('tf');
  const target = { app, proc: 'web', instance: 1 };
  // The engine behind a proxy that can hold its answers, for the one case that needs it: on the
  // others the proxy's socket buffers would take megabytes of stdin before the broker saw any.
  const engine = new TcpProxy(`unix://${ENGINE_SOCKET}`);
  let direct: Broker;
  let proxied: Broker;

  interface Broker {
    process: BrokerProcess;
    insp: NodeInspector;
    token: string;
  }

  async function start(flags: string[]): Promise<Broker> {
    const process = await startBrokerProcess(flags, { NODE_OPTIONS: '--inspect=127.0.0.1:0' });
    const insp = await NodeInspector.attach(process.logs);
    const token = await process.mint({ apps: [app] });
    return { process, insp, token };
  }

  beforeAll(async () => {
    await engine.start();
    await containers.entry(app, 'web', 1);
    direct = await start([]);
    proxied = await start(['--docker-host', `tcp://127.0.0.1:${engine.port}`, '--open-timeout', '60000']);
    for (const b of [direct, proxied]) await timedEcho(b.process.wsUrl, b.token, target);
  });

  afterAll(async () => {
    for (const b of [direct, proxied]) {
      b?.insp.close();
      await b?.process.stop();
    }
    await containers.removeAll();
    await engine.stop();
    console.log(summaryLine('hardening-tiny-frames', figures));
  });

  async function heap(b: Broker): Promise<number> {
    await b.insp.collectGarbage();
    return b.insp.heapUsed();
  }

  async function session(b: Broker, spec: Parameters<typeof encodeExecSpec>[0]): Promise<WebSocket> {
    const ws = new WebSocket(b.process.wsUrl, { headers: { 'access-token': b.token, 'app-name': app, 'proc-name': 'web', 'instance-no': '1', 'entry-protocol': '2' }, perMessageDeflate: false });
    ws.on('error', () => undefined);
    ws.on('message', (data: Buffer) => {
      const m = decodeResponse(new Uint8Array(data));
      if (m.msgType === ResponseType.CLOSE) closes.set(ws, `${m.code} ${new TextDecoder().decode(m.content)}`);
    });
    await new Promise((resolve, reject) => {
      ws.once('open', resolve);
      ws.once('unexpected-response', (_req, res) => reject(new Error(`HTTP ${res.statusCode}`)));
    });
    ws.send(encodeRequest(RequestType.START, encodeExecSpec(spec)));
    return ws;
  }

  /**
   * Sends `frame` as fast as the broker takes it, keeping at most 1 MiB unsent here, until the
   * broker has read nothing for STOPPED_AFTER_MS or MAX_FRAMES went out.
   */
  async function flood(ws: WebSocket, frame: Uint8Array): Promise<{ sent: number; stopped: boolean }> {
    let sent = 0;
    let backlog = 0;
    let movedAt = Date.now();
    while (ws.readyState === WebSocket.OPEN && sent < MAX_FRAMES) {
      if (ws.bufferedAmount < 1024 * 1024) {
        for (let i = 0; i < 2_000; i++) ws.send(frame);
        sent += 2_000;
      }
      await new Promise((r) => setTimeout(r, ws.bufferedAmount < 1024 * 1024 ? 0 : 20));
      if (ws.bufferedAmount < backlog || backlog === 0) movedAt = Date.now();
      backlog = ws.bufferedAmount;
      if (backlog > 0 && Date.now() - movedAt >= STOPPED_AFTER_MS) return { sent, stopped: true };
    }
    return { sent, stopped: false };
  }

  async function expectBounded(b: Broker, name: string, ws: WebSocket, frame: Uint8Array): Promise<void> {
    const before = await heap(b);
    const { sent, stopped } = await flood(ws, frame);
    const held = (await heap(b)) - before;
    figures[`${name}_frames_sent`] = sent;
    figures[`${name}_reading_stopped`] = String(stopped);
    figures[`${name}_heap_mb`] = mb(held);
    expect(ws.readyState, `${name}: the session is still open (${closes.get(ws) ?? 'no CLOSE'})`).toBe(WebSocket.OPEN);
    expect(held, `${name}: heap held for ${sent} frames, MB: ${mb(held)}`).toBeLessThan(HEAP_LIMIT);
  }

  async function closeAndCheck(b: Broker, ws: WebSocket): Promise<void> {
    ws.terminate();
    expect(b.process.child.exitCode).toBeNull();
    expect(await healthz(b.process.url)).toBe(200);
  }

  it('holds little for one-byte frames to a process that reads no stdin', async () => {
    const ws = await session(direct, { argv: [Buffer.from('sleep'), Buffer.from('301')] });
    await expectBounded(direct, 'queued', ws, encodeRequest(RequestType.PLAIN, Buffer.from('x')));
    await closeAndCheck(direct, ws);
  }, 120_000);

  it('holds little for one-byte frames to a resumable session whose process reads no stdin', async () => {
    const ws = await session(direct, { argv: [Buffer.from('sleep'), Buffer.from('302')], resumable: true });
    await expectBounded(direct, 'resumable', ws, encodeRequest(RequestType.PLAIN, Buffer.from('x')));
    // Closed on purpose: the session ends rather than wait for a resume.
    ws.close();
    await closeAndCheck(direct, ws);
  }, 120_000);

  it('holds little for empty frames while an engine that does not answer holds the exec open', async () => {
    engine.tap = (chunk) => {
      if (!/^POST \/[^ ]*containers\/[0-9a-f]+\/exec /.test(chunk.toString('latin1'))) return;
      engine.tap = undefined;
      setImmediate(() => engine.freeze());
    };
    const ws = await session(proxied, { argv: [Buffer.from('true')] });
    await expectBounded(proxied, 'early', ws, new Uint8Array(0));
    await closeAndCheck(proxied, ws);
    engine.cut();
    // The engine answers again: the broker runs sessions as before.
    await eventually(async () => {
      try {
        await timedEcho(proxied.process.wsUrl, proxied.token, target);
        return true;
      } catch {
        return false;
      }
    }, 'a session after the engine answers again', 20_000);
  }, 120_000);
});
