import { describe, expect, it, vi } from 'vitest';
import { decodeResumeTicket, ResponseType } from '../../proto/codec.js';
import { ResumableTerminal } from '../../broker/session/resumable-terminal.js';
import type { EndReason, OutputStream, TerminalEvents } from '../../broker/session/types.js';
import { EntryError } from '../../broker/errors.js';

/** A client connection in memory: what it was sent, and a handle on the events it reports. */
class FakeClient {
  events!: TerminalEvents;
  out: Buffer[] = [];
  controls: Array<{ type: number; content: Uint8Array }> = [];
  dropped = false;
  finished: EndReason | undefined;
  /** What the terminal said the client has not read yet, asked when `finish` was called and asked again now. */
  unread: (() => number) | undefined;
  congested = false;
  /** How the connection reports its end once `finish` has closed it, as a WebSocket does: `gone`, or nothing (the test says). */
  closes: 'gone' | 'silently' = 'gone';
  start(events: TerminalEvents): void {
    this.events = events;
  }
  send(_stream: OutputStream, data: Uint8Array): boolean {
    this.out.push(Buffer.from(data));
    return !this.congested;
  }
  ping(): void {}
  pauseInput(): void {}
  resumeInput(): void {}
  sendControl(type: number, content: Uint8Array): void {
    this.controls.push({ type, content });
  }
  drop(): void {
    this.dropped = true;
  }
  finish(reason: EndReason, _line?: string, unread?: () => number): Promise<void> {
    this.finished = reason;
    this.unread = unread;
    if (this.closes === 'gone') setImmediate(() => this.events.gone());
    return Promise.resolve();
  }
  text(): string {
    return Buffer.concat(this.out).toString();
  }
  tickets() {
    return this.controls.filter((c) => c.type === ResponseType.RESUMABLE).map((c) => decodeResumeTicket(c.content));
  }
}

function relayEvents() {
  return { input: vi.fn(), resize: vi.fn(), inputEnd: vi.fn(), signal: vi.fn(), drain: vi.fn(), gone: vi.fn() } satisfies TerminalEvents;
}

const make = (first: FakeClient, bufferBytes = 100, graceMs = 1_000) => new ResumableTerminal(first, { sessionId: 's-1', graceMs, bufferBytes, pingIntervalMs: 10_000 });

describe('ResumableTerminal', () => {
  it('gives a ticket first, then resends exactly the bytes after the offset the client reached', () => {
    const a = new FakeClient();
    const t = make(a);
    const relay = relayEvents();
    t.start(relay);
    const [ticket] = a.tickets();
    expect(ticket).toMatchObject({ session: 's-1', outputOffset: 0, inputOffset: 0, graceMs: 1_000, pingIntervalMs: 10_000 });
    expect(ticket!.token.length).toBe(32);
    t.send('stdout', Buffer.from('hello '));
    t.send('stdout', Buffer.from('world'));
    a.events.outputAck!(3);
    a.events.lost!();
    expect(a.dropped).toBe(true);
    t.send('stdout', Buffer.from('!'));
    const b = new FakeClient();
    t.resume(b, 8);
    expect(b.tickets()[0]).toMatchObject({ outputOffset: 8, inputOffset: 0 });
    expect(b.text()).toBe('rld!');
    expect(relay.gone).not.toHaveBeenCalled();
  });

  it('keeps one-byte output in few pieces, and resends it byte for byte, streams apart, after partial acknowledgements', () => {
    class StreamClient extends FakeClient {
      sent: Array<[OutputStream, Buffer]> = [];
      override send(stream: OutputStream, data: Uint8Array): boolean {
        this.sent.push([stream, Buffer.from(data)]);
        return super.send(stream, data);
      }
    }
    const a = new StreamClient();
    const t = make(a, 1024 * 1024);
    t.start(relayEvents());
    const all: Array<[OutputStream, number]> = [];
    // 10,000 one-byte chunks, in runs of each stream, and a few larger ones between them.
    for (let i = 0; i < 10_000; i++) {
      const stream: OutputStream = Math.floor(i / 3000) % 2 === 0 ? 'stdout' : 'stderr';
      const byte = i % 251;
      t.send(stream, Uint8Array.of(byte));
      all.push([stream, byte]);
      if (i % 2500 === 1234) {
        const big = Buffer.alloc(700, i % 7);
        t.send(stream, big);
        for (const b of big) all.push([stream, b]);
      }
      if (i === 4000) a.events.outputAck!(1500);
    }
    a.events.lost!();
    const b = new StreamClient();
    t.resume(b, 2000);
    const expected = all.slice(2000);
    const got = b.sent.flatMap(([stream, data]) => [...data].map((byte) => [stream, byte] as [OutputStream, number]));
    expect(got.length).toBe(expected.length);
    expect(got).toEqual(expected);
    // Kept together: a handful of pieces, not one per byte.
    expect(b.sent.length).toBeLessThan(20);
  });

  it('holds the process once output alternating between stdout and stderr a byte at a time fills the pieces the buffer allows, and resends it all', () => {
    const a = new FakeClient();
    const t = make(a, 1024 * 1024);
    t.start(relayEvents());
    const sent: OutputStream[] = [];
    // A piece per byte: 1 MiB of buffer allows 4,096 of them (HELD_CHUNK_COST_BYTES each).
    while (sent.length < 100_000) {
      const stream: OutputStream = sent.length % 2 === 0 ? 'stdout' : 'stderr';
      sent.push(stream);
      if (!t.send(stream, Uint8Array.of(sent.length % 256))) break;
    }
    expect(sent.length).toBe(4096);
    a.events.lost!();
    const b = new FakeClient();
    t.resume(b, 0);
    expect(Buffer.concat(b.out)).toEqual(Buffer.from(sent.map((_s, i) => (i + 1) % 256)));
  });

  it('holds the process when the buffer is full while nobody is connected, drops nothing, and lets it go once acknowledged', () => {
    const a = new FakeClient();
    const t = make(a, 100);
    const relay = relayEvents();
    t.start(relay);
    a.events.lost!();
    const sent: boolean[] = [];
    for (let i = 0; i < 12; i++) sent.push(t.send('stdout', Buffer.from(`${i}`.padStart(10, '.'))));
    // Full at 100 bytes: false from then on (the relay pauses the process), yet every byte is kept.
    expect(sent.indexOf(false)).toBe(9);
    expect(t.heldBytes).toBe(120);
    const b = new FakeClient();
    t.resume(b, 0);
    expect(b.text().length).toBe(120);
    expect(relay.drain).not.toHaveBeenCalled();
    b.events.outputAck!(100);
    expect(relay.drain).toHaveBeenCalledTimes(1);
  });

  it('refuses an offset older than what is kept (ENTRY_RESUME_OVERRUN) and one past what was sent', () => {
    const a = new FakeClient();
    const t = make(a);
    t.start(relayEvents());
    t.send('stdout', Buffer.from('0123456789'));
    a.events.outputAck!(6);
    a.events.lost!();
    expect(() => t.resume(new FakeClient(), 4)).toThrow(expect.objectContaining({ code: 'ENTRY_RESUME_OVERRUN' }));
    expect(() => t.resume(new FakeClient(), 11)).toThrow(expect.objectContaining({ code: 'ENTRY_BAD_REQUEST' }));
    const c = new FakeClient();
    t.resume(c, 6);
    expect(c.text()).toBe('6789');
  });

  it('counts input passed on, acknowledges it in batches, and tells a resuming client; EOF passes once', async () => {
    vi.useFakeTimers();
    try {
      const a = new FakeClient();
      const t = make(a);
      const relay = relayEvents();
      t.start(relay);
      for (const ch of 'abc') a.events.input(Buffer.from(ch));
      expect(a.controls.filter((c) => c.type === ResponseType.INPUT_ACK)).toHaveLength(0);
      await vi.advanceTimersByTimeAsync(150);
      const acks = a.controls.filter((c) => c.type === ResponseType.INPUT_ACK).map((c) => Buffer.from(c.content).toString());
      expect(acks).toEqual(['3']);
      a.events.inputEnd();
      a.events.lost!();
      const b = new FakeClient();
      t.resume(b, 0);
      expect(b.tickets()[0]!.inputOffset).toBe(3);
      b.events.inputEnd();
      expect(relay.inputEnd).toHaveBeenCalledTimes(1);
      expect(relay.input).toHaveBeenCalledTimes(3);
    } finally {
      vi.useRealTimers();
    }
  });

  it('while the process takes no input, holds it and still reads acknowledgements; then passes it on in order, EOF last', () => {
    const a = new FakeClient();
    const paused = vi.fn();
    a.pauseInput = paused;
    const t = make(a, 10);
    const relay = relayEvents();
    t.start(relay);
    t.send('stdout', Buffer.from('0123456789ab'));
    t.pauseInput();
    a.events.input(Buffer.from('x'));
    a.events.input(Buffer.from('y'));
    a.events.inputEnd();
    expect(relay.input).not.toHaveBeenCalled();
    // The output window reopens although input waits: no deadlock between the two.
    a.events.outputAck!(12);
    expect(relay.drain).toHaveBeenCalledTimes(1);
    expect(paused).not.toHaveBeenCalled();
    t.resumeInput();
    expect(relay.input.mock.calls.map(([d]) => Buffer.from(d as Uint8Array).toString())).toEqual(['x', 'y']);
    expect(relay.inputEnd).toHaveBeenCalledTimes(1);
  });

  it('holds no input once the process has ended: what the connection reads while it delivers the end is dropped', async () => {
    const a = new FakeClient();
    a.closes = 'silently';
    const t = make(a, 1_000);
    const relay = relayEvents();
    t.start(relay);
    t.pauseInput();
    a.events.input(Buffer.from('held before the end'));
    void t.finish({ kind: 'exited', exitCode: 0 });
    // A client that goes on sending (the connection reads on while the end is delivered).
    for (let i = 0; i < 100; i++) a.events.input(Buffer.alloc(64 * 1024));
    t.resumeInput();
    expect(relay.input).not.toHaveBeenCalled();
    expect(relay.inputEnd).not.toHaveBeenCalled();
  });

  it('input held when the connection breaks is left to the client to send again: never passed twice', () => {
    const a = new FakeClient();
    const t = make(a);
    const relay = relayEvents();
    t.start(relay);
    a.events.input(Buffer.from('a'));
    t.pauseInput();
    a.events.input(Buffer.from('b'));
    a.events.lost!();
    const b = new FakeClient();
    t.resume(b, 0);
    expect(b.tickets()[0]!.inputOffset).toBe(1);
    b.events.input(Buffer.from('b'));
    t.resumeInput();
    expect(relay.input.mock.calls.map(([d]) => Buffer.from(d as Uint8Array).toString())).toEqual(['a', 'b']);
  });

  it('ends the session when the grace period passes (with the reason the loss was found for); a late resume is too late', async () => {
    vi.useFakeTimers();
    try {
      const a = new FakeClient();
      const t = make(a, 100, 2_000);
      const relay = relayEvents();
      t.start(relay);
      const why = new EntryError('ENTRY_PEER_TIMEOUT');
      a.events.lost!(why);
      await vi.advanceTimersByTimeAsync(1_999);
      expect(relay.gone).not.toHaveBeenCalled();
      await vi.advanceTimersByTimeAsync(2);
      expect(relay.gone).toHaveBeenCalledWith(why);
      await t.finish({ kind: 'failed', error: why });
      expect(() => t.resume(new FakeClient(), 0)).toThrow(expect.objectContaining({ code: 'ENTRY_RESUME_EXPIRED' }));
    } finally {
      vi.useRealTimers();
    }
  });

  it('tells the connection carrying any end how much the client has not acknowledged, as acknowledgements come', () => {
    for (const reason of [{ kind: 'exited', exitCode: 0 }, { kind: 'failed', error: new EntryError('ENTRY_KILLED') }] as const) {
      const a = new FakeClient();
      a.closes = 'silently';
      const t = make(a, 1_000);
      t.start(relayEvents());
      t.send('stdout', Buffer.alloc(300));
      a.events.outputAck!(100);
      void t.finish(reason);
      expect(a.unread?.(), reason.kind).toBe(200);
      a.events.outputAck!(300);
      expect(a.unread?.(), reason.kind).toBe(0);
    }
  });

  it('keeps the end of a process that exited while nobody was connected for the client that comes back', async () => {
    const a = new FakeClient();
    const t = make(a);
    t.start(relayEvents());
    a.events.lost!();
    t.send('stdout', Buffer.from('last words'));
    let done = false;
    const finishing = t.finish({ kind: 'exited', exitCode: 5 }).then(() => (done = true));
    await Promise.resolve();
    expect(done).toBe(false);
    const b = new FakeClient();
    t.resume(b, 0);
    await finishing;
    expect(b.text()).toBe('last words');
    expect(b.finished).toEqual({ kind: 'exited', exitCode: 5 });
  });

  it('keeps the end for a resume when the connection breaks while the client still reads the output after the exit', async () => {
    const a = new FakeClient();
    a.closes = 'silently';
    const t = make(a);
    t.start(relayEvents());
    t.send('stdout', Buffer.from('read '));
    t.send('stdout', Buffer.from('unread tail'));
    a.events.outputAck!(5);
    let done = false;
    const finishing = t.finish({ kind: 'exited', exitCode: 3 }).then(() => (done = true));
    expect(a.finished).toEqual({ kind: 'exited', exitCode: 3 });
    // The break is reported after the end was handed over (also when the socket had already
    // closed and the report was on its way when the process exited).
    a.events.lost!();
    await new Promise((r) => setImmediate(r));
    expect(done).toBe(false);
    expect(t.detached).toBe(true);
    const b = new FakeClient();
    t.resume(b, 5);
    expect(b.text()).toBe('unread tail');
    expect(b.finished).toEqual({ kind: 'exited', exitCode: 3 });
    await finishing;
    expect(() => t.resume(new FakeClient(), 16)).toThrow(expect.objectContaining({ code: 'ENTRY_RESUME_EXPIRED' }));
  });

  it('keeps the end when a connection closes with more unacknowledged than a client leaves after reading everything', async () => {
    const a = new FakeClient();
    const t = make(a, 1024 * 1024);
    t.start(relayEvents());
    const backlog = Buffer.alloc(200 * 1024, 'x');
    t.send('stdout', backlog);
    a.events.outputAck!(1024);
    let done = false;
    const finishing = t.finish({ kind: 'exited', exitCode: 0 }).then(() => (done = true));
    await new Promise((r) => setImmediate(r));
    await new Promise((r) => setImmediate(r));
    expect(done).toBe(false);
    const b = new FakeClient();
    b.closes = 'silently';
    t.resume(b, 1024);
    expect(Buffer.concat(b.out).length).toBe(backlog.length - 1024);
    expect(b.finished).toEqual({ kind: 'exited', exitCode: 0 });
    // This client reads it all, acknowledging as it goes, and closes.
    b.events.outputAck!(backlog.length);
    b.events.gone();
    await new Promise((r) => setImmediate(r));
    expect(done).toBe(true);
    await finishing;
  });

  it('settles the end once the connection carrying it closes normally; a resume after that is too late', async () => {
    const a = new FakeClient();
    const t = make(a);
    t.start(relayEvents());
    t.send('stdout', Buffer.from('all of it'));
    await t.finish({ kind: 'exited', exitCode: 0 });
    expect(a.finished).toEqual({ kind: 'exited', exitCode: 0 });
    expect(() => t.resume(new FakeClient(), 0)).toThrow(expect.objectContaining({ code: 'ENTRY_RESUME_EXPIRED' }));
  });

  it('gives up an end nobody comes back for when the grace period passes', async () => {
    vi.useFakeTimers();
    try {
      const a = new FakeClient();
      a.closes = 'silently';
      const t = make(a, 100, 2_000);
      t.start(relayEvents());
      t.send('stdout', Buffer.from('never read'));
      let done = false;
      const finishing = t.finish({ kind: 'exited', exitCode: 1 }).then(() => (done = true));
      a.events.lost!();
      await vi.advanceTimersByTimeAsync(1_999);
      expect(done).toBe(false);
      await vi.advanceTimersByTimeAsync(2);
      await finishing;
      expect(() => t.resume(new FakeClient(), 0)).toThrow(expect.objectContaining({ code: 'ENTRY_RESUME_EXPIRED' }));
    } finally {
      vi.useRealTimers();
    }
  });

  it('tells a token apart in constant time, and only its own', () => {
    const t = make(new FakeClient());
    expect(t.tokenMatches(t.token)).toBe(true);
    expect(t.tokenMatches(Buffer.alloc(32))).toBe(false);
    expect(t.tokenMatches(t.token.subarray(0, 16))).toBe(false);
  });
});
