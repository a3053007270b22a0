import { EventEmitter } from 'node:events';
import type { Duplex } from 'node:stream';
import { afterEach, describe, expect, it, vi } from 'vitest';
import type { WebSocket } from 'ws';
import type { KernelTcpState } from '../../broker/transport/tcp-view.js';
import { WsTerminal } from '../../broker/transport/ws-terminal.js';

/**
 * The rule that tells a paused reader from a vanished peer (WsTerminal.checkPeer), with the
 * kernel's view of the connection and the clock in the test's hands.
 */

class FakeWs extends EventEmitter {
  bufferedAmount = 0;
  pings = 0;
  send(_data: Uint8Array, _opts?: unknown, cb?: () => void): void {
    cb?.();
  }
  ping(): void {
    this.pings++;
  }
  pause(): void {}
  resume(): void {}
  close(): void {}
  terminated = 0;
  terminate(): void {
    this.terminated++;
  }
}

class FakeSocket extends EventEmitter {
  localAddress = '127.0.0.1';
  localPort = 8022;
  remoteAddress = '127.0.0.1';
  remotePort = 40000;
  cork(): void {}
  uncork(): void {}
  setKeepAlive(): void {}
}

function terminal(kernel: () => KernelTcpState | undefined, o: { peerTimeoutMs?: number; stallTimeoutMs?: number } = {}) {
  const ws = new FakeWs();
  let looks = 0;
  const t = new WsTerminal(ws as unknown as WebSocket, {
    protocol2: true,
    tty: false,
    socket: new FakeSocket() as unknown as Duplex,
    peerTimeoutMs: o.peerTimeoutMs ?? 30_000,
    stallTimeoutMs: o.stallTimeoutMs ?? 3600_000,
    kernelView: async () => {
      looks++;
      return kernel();
    },
  });
  return { t, ws, looks: () => looks };
}

const T0 = Date.now();
const at = (s: number) => T0 + s * 1000;

describe('peer liveness', () => {
  it('keeps a reader that answers no ping while its kernel acknowledges, however long', async () => {
    const { t } = terminal(() => ({ txQueue: 4_000_000, unanswered: 0 }));
    for (let s = 10; s <= 3000; s += 10) expect(await t.checkPeer(at(s))).toBeUndefined();
  });

  it('ends a peer whose kernel leaves data or probes unanswered for --peer-timeout', async () => {
    const { t } = terminal(() => ({ txQueue: 120, unanswered: 3 }));
    expect(await t.checkPeer(at(10))).toBeUndefined();
    expect(await t.checkPeer(at(39))).toBeUndefined();
    const error = await t.checkPeer(at(40));
    expect(error?.code).toBe('ENTRY_PEER_TIMEOUT');
    expect(error?.message).toMatch(/nothing acknowledged for 30 s/);
  });

  it('keeps a paused reader whose kernel shows one probe unanswered past --peer-timeout (an answered probe left counted until the next), and ends it at a second try unanswered', async () => {
    let unanswered = 1;
    const { t } = terminal(() => ({ txQueue: 4_000_000, unanswered }));
    // Probes 60 s apart, as the kernel spaces them for a window long shut.
    for (let s = 0; s < 60; s += 1) expect(await t.checkPeer(at(s))).toBeUndefined();
    unanswered = 2;
    const error = await t.checkPeer(at(60));
    expect(error?.code).toBe('ENTRY_PEER_TIMEOUT');
    expect(error?.message).toMatch(/nothing acknowledged for 60 s/);
  });

  it('starts the clock again whenever the kernel hears from the peer', async () => {
    let unanswered = 1;
    const { t } = terminal(() => ({ txQueue: 1000, unanswered }));
    for (let s = 0; s < 600; s += 20) {
      unanswered = (s / 20) % 2;
      expect(await t.checkPeer(at(s))).toBeUndefined();
    }
  });

  it('ends a session whose queued output does not move for --stall-timeout, and not one that drains', async () => {
    const stuck = terminal(() => ({ txQueue: 4_000_000, unanswered: 0 }), { stallTimeoutMs: 60_000 });
    stuck.ws.bufferedAmount = 1_048_576;
    expect(await stuck.t.checkPeer(at(1))).toBeUndefined();
    expect(await stuck.t.checkPeer(at(59))).toBeUndefined();
    expect((await stuck.t.checkPeer(at(61)))?.code).toBe('ENTRY_PEER_STALLED');

    let txQueue = 4_000_000;
    const slow = terminal(() => ({ txQueue, unanswered: 0 }), { stallTimeoutMs: 60_000 });
    slow.ws.bufferedAmount = 1_048_576;
    for (let s = 1; s < 600; s += 30) {
      txQueue -= 1000;
      expect(await slow.t.checkPeer(at(s))).toBeUndefined();
    }
  });

  it('does not count pings queued behind a stalled backlog as progress', async () => {
    const { t, ws } = terminal(() => ({ txQueue: 4_000_000, unanswered: 0 }), { stallTimeoutMs: 60_000 });
    ws.bufferedAmount = 1_048_576;
    expect(await t.checkPeer(at(1))).toBeUndefined();
    for (let s = 11; s <= 51; s += 10) {
      t.ping();
      ws.bufferedAmount += 14;
      // ping() looks at once too: let that look finish first.
      await new Promise((r) => setImmediate(r));
      expect(await t.checkPeer(at(s))).toBeUndefined();
    }
    expect((await t.checkPeer(at(61)))?.code).toBe('ENTRY_PEER_STALLED');
  });

  it('does not look at the kernel while pings are answered', async () => {
    const { t, ws, looks } = terminal(() => ({ txQueue: 0, unanswered: 0 }));
    for (let i = 0; i < 5; i++) {
      t.ping();
      ws.emit('pong');
      expect(await t.checkPeer()).toBeUndefined();
    }
    expect(ws.pings).toBe(5);
    // ping() itself looks once right away, before the pong: only those.
    await new Promise((r) => setImmediate(r));
    expect(looks()).toBeLessThanOrEqual(5);
  });

  it('without the kernel’s view, counts an unanswered ping only when no output went out since', async () => {
    const quiet = terminal(() => undefined);
    expect(await quiet.t.checkPeer(at(29))).toBeUndefined();
    expect((await quiet.t.checkPeer(at(31)))?.code).toBe('ENTRY_PEER_TIMEOUT');

    const reading = terminal(() => undefined);
    reading.t.send('stdout', Buffer.from('output the client may not have read yet'));
    expect(await reading.t.checkPeer(at(31))).toBeUndefined();
    expect(await reading.t.checkPeer(at(600))).toBeUndefined();
  });

  describe('the close handshake after the end', () => {
    afterEach(() => {
      vi.useRealTimers();
    });

    it('waits while the kernel still holds output the paused client has not read, then gives it 5 s', async () => {
      vi.useFakeTimers();
      // The whole backlog fits in the socket buffers: ws holds nothing, the kernel 3 MB.
      let txQueue = 3_000_000;
      const { t, ws } = terminal(() => ({ txQueue, unanswered: 0 }));
      const finished = t.finish({ kind: 'exited', exitCode: 0 });
      await vi.advanceTimersByTimeAsync(30_000);
      expect(ws.terminated).toBe(0);
      // The client reads it all; its close frame does not come.
      txQueue = 0;
      await vi.advanceTimersByTimeAsync(4_000);
      expect(ws.terminated).toBe(0);
      await vi.advanceTimersByTimeAsync(3_000);
      expect(ws.terminated).toBe(1);
      await finished;
    });

    it('waits while the client says it has not read what its own kernel holds, then gives it 5 s', async () => {
      vi.useFakeTimers();
      // Everything has left the broker; the client acknowledges as it reads.
      let unread = 500_000;
      const { t, ws } = terminal(() => ({ txQueue: 0, unanswered: 0 }));
      const finished = t.finish({ kind: 'exited', exitCode: 0 }, undefined, () => unread);
      for (let s = 0; s < 20; s++) {
        await vi.advanceTimersByTimeAsync(1_000);
        unread -= 20_000;
      }
      expect(ws.terminated).toBe(0);
      unread = 0;
      await vi.advanceTimersByTimeAsync(4_000);
      expect(ws.terminated).toBe(0);
      await vi.advanceTimersByTimeAsync(3_000);
      expect(ws.terminated).toBe(1);
      await finished;
    });

    it('drops a client that reads none of what it received for 10 s, whatever --stall-timeout says', async () => {
      vi.useFakeTimers();
      const { t, ws } = terminal(() => ({ txQueue: 0, unanswered: 0 }), { stallTimeoutMs: 0 });
      let unread = 300_000;
      const finished = t.finish({ kind: 'exited', exitCode: 0 }, undefined, () => unread);
      await vi.advanceTimersByTimeAsync(8_000);
      unread -= 1_000;
      await vi.advanceTimersByTimeAsync(9_000);
      expect(ws.terminated).toBe(0);
      await vi.advanceTimersByTimeAsync(3_000);
      expect(ws.terminated).toBe(1);
      await finished;
    });

    it('still drops a backlog nobody reads once --stall-timeout passes', async () => {
      vi.useFakeTimers();
      const { t, ws } = terminal(() => ({ txQueue: 3_000_000, unanswered: 0 }), { stallTimeoutMs: 20_000 });
      const finished = t.finish({ kind: 'exited', exitCode: 0 });
      await vi.advanceTimersByTimeAsync(15_000);
      expect(ws.terminated).toBe(0);
      await vi.advanceTimersByTimeAsync(10_000);
      expect(ws.terminated).toBe(1);
      await finished;
    });
  });
});
