import net from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type BrokerProcess, startBrokerProcess } from '../helpers/broker-process.js';
import { containerProcesses, TestContainers, uniqueApp } from '../helpers/containers.js';
import { healthz, mb, summaryLine, timedEcho, timedEchoPhases } from '../helpers/hardening.js';

/**
 * Slow-loris upgrades: 200 connections that start a WebSocket upgrade and then send one header
 * byte a second, never finishing, against a broker with a 2 s handshake timeout. Each must be
 * dropped by the server after the timeout and well before anything else would drop it, and a
 * normal client must get in and run a command while they hang on, without waiting for them.
 *
 * The windows are multiples of the handshake timeout, so a loaded machine does not fail them:
 * what they rule out is far away (Node's own header timeout is 60 s), and a normal client
 * queued behind the slow ones would wait the whole handshake timeout.
 */

const HANDSHAKE_TIMEOUT_MS = 2_000;
const ATTACKERS = 200;
/** Variants beside the upgrade ones: a silent connection and a request line cut in the middle. */
const SILENT = 25;
const HALF_LINE = 25;
/** The latest a slow connection may be dropped. */
const DROP_WINDOW_MS = 3 * HANDSHAKE_TIMEOUT_MS;
/**
 * The slowest a normal client may be let in under attack: one queued behind the slow ones would
 * wait the whole handshake timeout. Its whole command is judged by the median, since one exec
 * the engine is slow to run is no queue at the front door.
 */
const NORMAL_CLIENT_LIMIT_MS = HANDSHAKE_TIMEOUT_MS;

type Kind = 'upgrade-trickle' | 'silent' | 'half-line';

interface Loris {
  kind: Kind;
  socket: net.Socket;
  openedAt: number;
  closedAfterMs: number;
  closedByServer: boolean;
  reply: string;
  /** Header bytes sent one a second after the first lines. */
  trickled: number;
}

const figures = { attempts: 0, droppedByServer: 0, maxDropMs: -1, echoMs: [] as number[], admitMs: [] as number[], baselineEchoMs: -1, rssGrowth: 0, leaked: -1, bytesLost: -1, survived: 0 };

describe('slow-loris upgrades', () => {
  const containers = new TestContainers();
  const app = uniqueApp('hl');
  const target = { app, proc: 'web', instance: 1 };
  let broker: BrokerProcess;
  let containerId: string;
  let token: string;
  let port: number;
  const lorises: Loris[] = [];

  beforeAll(async () => {
    broker = await startBrokerProcess(['--handshake-timeout', String(HANDSHAKE_TIMEOUT_MS)]);
    port = Number(new URL(broker.url).port);
    containerId = await containers.entry(app, 'web', 1);
    token = await broker.mint({ apps: [app] });
  });
  afterAll(async () => {
    for (const l of lorises) l.socket.destroy();
    await broker?.stop();
    await containers.removeAll();
    const sorted = [...figures.echoMs].sort((a, b) => a - b);
    console.log(
      summaryLine('hardening-slowloris', {
        inputs: figures.attempts,
        faults_survived: figures.survived,
        bytes_lost: figures.bytesLost,
        processes_leaked: figures.leaked,
        rss_growth_mb: mb(figures.rssGrowth),
        dropped_by_server: `${figures.droppedByServer}/${figures.attempts}`,
        max_drop_ms: figures.maxDropMs,
        echo_ms_baseline: figures.baselineEchoMs.toFixed(1),
        admit_ms_max_under_attack: figures.admitMs.length ? Math.max(...figures.admitMs).toFixed(1) : 'none',
        echo_ms_under_attack: sorted.length ? `n=${sorted.length},median=${sorted[Math.floor(sorted.length / 2)]!.toFixed(1)},max=${sorted.at(-1)!.toFixed(1)}` : 'none',
      }),
    );
  });

  function connect(kind: Kind): Promise<Loris> {
    return new Promise((resolve, reject) => {
      // Timed from before the connect: with 250 opening at once, the connect callback may run
      // well after the broker accepted the socket and started its timer.
      const openedAt = Date.now();
      const socket = net.connect(port, '127.0.0.1');
      const l: Loris = { kind, socket, openedAt, closedAfterMs: -1, closedByServer: false, reply: '', trickled: 0 };
      socket.setNoDelay(true);
      socket.on('data', (d: Buffer) => (l.reply += d.toString('latin1')));
      socket.on('error', () => undefined);
      socket.on('end', () => (l.closedByServer = true));
      socket.on('close', () => {
        if (l.closedAfterMs < 0) l.closedAfterMs = Date.now() - l.openedAt;
      });
      socket.once('connect', () => {
        const first =
          kind === 'upgrade-trickle'
            ? `GET /enter HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n`
            : kind === 'half-line'
              ? 'GET /ent'
              : '';
        if (first) socket.write(first);
        resolve(l);
      });
      socket.once('error', reject);
    });
  }

  it(`drops ${ATTACKERS} slow upgrades on the handshake timeout while normal clients get in`, async () => {
    figures.baselineEchoMs = await timedEcho(broker.wsUrl, token, target);
    const rssBefore = broker.rss();
    let rssMax = rssBefore;
    const kinds: Kind[] = [...Array<Kind>(ATTACKERS).fill('upgrade-trickle'), ...Array<Kind>(SILENT).fill('silent'), ...Array<Kind>(HALF_LINE).fill('half-line')];
    lorises.push(...(await Promise.all(kinds.map((k) => connect(k)))));
    figures.attempts = lorises.length;

    // One more header byte a second on every open upgrade, never the blank line that ends them.
    const header = 'X-Slow: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa';
    let tick = 0;
    const trickle = setInterval(() => {
      const byte = header[tick++ % header.length]!;
      for (const l of lorises) {
        if (l.kind === 'upgrade-trickle' && !l.socket.destroyed && l.closedAfterMs < 0) {
          l.socket.write(byte);
          l.trickled++;
        }
      }
    }, 1_000);

    // Meanwhile a normal client, again and again, until every slow connection is gone.
    const allGone = () => lorises.every((l) => l.closedAfterMs >= 0);
    const deadline = Date.now() + DROP_WINDOW_MS + 1_000;
    try {
      while (!allGone() && Date.now() < deadline) {
        const echo = await timedEchoPhases(broker.wsUrl, token, target);
        figures.echoMs.push(echo.totalMs);
        figures.admitMs.push(echo.admittedMs);
        rssMax = Math.max(rssMax, broker.rss());
        await new Promise((r) => setTimeout(r, 200));
      }
    } finally {
      clearInterval(trickle);
    }
    figures.rssGrowth = rssMax - rssBefore;

    const open = lorises.filter((l) => l.closedAfterMs < 0);
    expect(open.length, 'slow connections still open after the deadline').toBe(0);
    figures.droppedByServer = lorises.filter((l) => l.closedByServer).length;
    figures.maxDropMs = Math.max(...lorises.map((l) => l.closedAfterMs));
    for (const l of lorises) {
      expect(l.closedByServer, `${l.kind}: closed by the server`).toBe(true);
      expect(l.closedAfterMs, `${l.kind}: closed within ${DROP_WINDOW_MS} ms`).toBeLessThanOrEqual(DROP_WINDOW_MS);
      // Not before the timeout either: the server waited for the headers as long as it should.
      expect(l.closedAfterMs, `${l.kind}: not dropped before the timeout`).toBeGreaterThanOrEqual(HANDSHAKE_TIMEOUT_MS - 100);
      // Nothing but an HTTP 408 (or nothing) comes back: no upgrade, no session.
      expect(l.reply === '' || l.reply.startsWith('HTTP/1.1 408 '), `${l.kind}: reply ${JSON.stringify(l.reply)}`).toBe(true);
    }
    const trickled = lorises.filter((l) => l.kind === 'upgrade-trickle');
    expect(Math.min(...trickled.map((l) => l.trickled)), 'header bytes each trickled before being dropped').toBeGreaterThanOrEqual(1);

    expect(figures.echoMs.length, 'normal clients ran during the attack').toBeGreaterThanOrEqual(3);
    expect(Math.max(...figures.admitMs), 'slowest normal client let in under attack, ms').toBeLessThan(NORMAL_CLIENT_LIMIT_MS);
    const byTime = [...figures.echoMs].sort((a, b) => a - b);
    expect(byTime[Math.floor(byTime.length / 2)], 'median normal command under attack, ms').toBeLessThan(NORMAL_CLIENT_LIMIT_MS);
    // Every echo above printed exactly "ok\n" (timedEcho insists).
    figures.bytesLost = 0;

    expect(await healthz(broker.url)).toBe(200);
    figures.survived = lorises.length;
    const own = (p: string) => p.startsWith('/bin/sh -c trap') || p === 'sleep 3600';
    figures.leaked = (await containerProcesses(containerId)).filter((p) => !own(p)).length;
    expect(figures.leaked).toBe(0);
  }, 30_000);
});
