import { describe, expect, it } from 'vitest';
import { EntryError } from '../../broker/errors.js';
import { describeEnd, Relay } from '../../broker/session/relay.js';
import type { EndReason, OutputStream, ProcessEvents, ProcessSide, TerminalEvents, TerminalSide } from '../../broker/session/types.js';

const bytes = (s: string) => new TextEncoder().encode(s);
const text = (b: Uint8Array) => new TextDecoder().decode(b);

/** Resolves when `predicate` holds; checks after every macrotask, gives up after `ms`. */
async function until(predicate: () => boolean, ms = 2000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!predicate()) {
    if (Date.now() > deadline) throw new Error('condition not reached in time');
    await new Promise((r) => setTimeout(r, 1));
  }
}

const tick = () => new Promise((r) => setTimeout(r, 0));

class FakeTerminal implements TerminalSide {
  events!: TerminalEvents;
  sent: Array<{ stream: OutputStream; data: string }> = [];
  sendResult = true;
  pings = 0;
  pauseInputCalls = 0;
  resumeInputCalls = 0;
  finished: EndReason[] = [];
  private pingWaiters: Array<{ n: number; resolve: () => void }> = [];

  start(events: TerminalEvents): void {
    this.events = events;
  }
  send(stream: OutputStream, data: Uint8Array): boolean {
    this.sent.push({ stream, data: text(data) });
    return this.sendResult;
  }
  ping(): void {
    this.pings++;
    this.pingWaiters = this.pingWaiters.filter((w) => {
      if (this.pings < w.n) return true;
      w.resolve();
      return false;
    });
  }
  pauseInput(): void {
    this.pauseInputCalls++;
  }
  resumeInput(): void {
    this.resumeInputCalls++;
  }
  async finish(reason: EndReason): Promise<void> {
    this.finished.push(reason);
  }
  /** Resolves once `n` pings have been sent. */
  waitForPings(n: number): Promise<void> {
    if (this.pings >= n) return Promise.resolve();
    return new Promise((resolve) => this.pingWaiters.push({ n, resolve }));
  }
}

class FakeProcess implements ProcessSide {
  events!: ProcessEvents;
  written: string[] = [];
  writeResult = true;
  inputEnded = 0;
  resizes: Array<[number, number]> = [];
  signals: string[] = [];
  pauseOutputCalls = 0;
  resumeOutputCalls = 0;
  terminateCalls = 0;
  /** What terminate returns; replace to delay or fail it. */
  terminateImpl: () => Promise<void> = async () => undefined;

  start(events: ProcessEvents): void {
    this.events = events;
  }
  write(data: Uint8Array): boolean {
    this.written.push(text(data));
    return this.writeResult;
  }
  endInput(): void {
    this.inputEnded++;
  }
  resize(cols: number, rows: number): void {
    this.resizes.push([cols, rows]);
  }
  signal(name: string): void {
    this.signals.push(name);
  }
  pauseOutput(): void {
    this.pauseOutputCalls++;
  }
  resumeOutput(): void {
    this.resumeOutputCalls++;
  }
  terminate(): Promise<void> {
    this.terminateCalls++;
    return this.terminateImpl();
  }
}

function setup(pingIntervalMs = 0) {
  const terminal = new FakeTerminal();
  const process = new FakeProcess();
  const relay = new Relay(terminal, process, { pingIntervalMs });
  const done = relay.run();
  return { terminal, process, relay, done };
}

describe('Relay moving bytes', () => {
  it('passes terminal input to the process stdin, in order', async () => {
    const { terminal, process } = setup();
    terminal.events.input(bytes('l'));
    terminal.events.input(bytes('s\n'));
    expect(process.written).toEqual(['l', 's\n']);
  });

  it('passes process output to the terminal, keeping stdout and stderr apart', () => {
    const { terminal, process } = setup();
    process.events.output('stdout', bytes('out'));
    process.events.output('stderr', bytes('err'));
    expect(terminal.sent).toEqual([
      { stream: 'stdout', data: 'out' },
      { stream: 'stderr', data: 'err' },
    ]);
  });

  it('passes resizes, signals and stdin EOF to the process', () => {
    const { terminal, process } = setup();
    terminal.events.resize(120, 40);
    terminal.events.signal('INT');
    terminal.events.inputEnd();
    expect(process.resizes).toEqual([[120, 40]]);
    expect(process.signals).toEqual(['INT']);
    expect(process.inputEnded).toBe(1);
  });

  it('tells of a signal that could not be delivered, and goes on', async () => {
    const terminal = new FakeTerminal();
    const process = new FakeProcess();
    process.signal = () => Promise.reject(new Error('no such process'));
    const failures: Array<[string, string]> = [];
    const relay = new Relay(terminal, process, { pingIntervalMs: 0, onSignalError: (name, err) => failures.push([name, (err as Error).message]) });
    void relay.run();
    terminal.events.signal('TERM');
    await until(() => failures.length > 0);
    expect(failures).toEqual([['TERM', 'no such process']]);
    terminal.events.input(bytes('x'));
    expect(process.written).toEqual(['x']);
  });
});

describe('Relay ending', () => {
  it('tells of a terminal side that failed to say the end, and still ends with its reason', async () => {
    const terminal = new FakeTerminal();
    terminal.finish = () => Promise.reject(new Error('socket in a bad state'));
    const failures: string[] = [];
    const relay = new Relay(terminal, new FakeProcess(), { pingIntervalMs: 0, onFinishError: (err) => failures.push((err as Error).message) });
    const done = relay.run();
    await relay.stop(new EntryError('ENTRY_KILLED'));
    const reason = await done;
    expect(reason.kind === 'failed' && reason.error.code).toBe('ENTRY_KILLED');
    expect(failures).toEqual(['socket in a bad state']);
  });
});

describe('Relay backpressure', () => {
  it('pauses terminal input once when the process stdin is congested, and resumes it on drain', () => {
    const { terminal, process } = setup();
    process.writeResult = false;
    terminal.events.input(bytes('a'));
    terminal.events.input(bytes('b'));
    expect(terminal.pauseInputCalls).toBe(1);
    expect(terminal.resumeInputCalls).toBe(0);
    // Nothing typed is dropped while paused.
    expect(process.written).toEqual(['a', 'b']);
    process.writeResult = true;
    process.events.drain();
    expect(terminal.resumeInputCalls).toBe(1);
    process.events.drain();
    expect(terminal.resumeInputCalls).toBe(1);
  });

  it('does not resume terminal input on a drain it did not pause for', () => {
    const { terminal, process } = setup();
    process.events.drain();
    expect(terminal.resumeInputCalls).toBe(0);
  });

  it('pauses process output once when the terminal is congested, and resumes it on terminal drain', () => {
    const { terminal, process } = setup();
    terminal.sendResult = false;
    process.events.output('stdout', bytes('1'));
    process.events.output('stdout', bytes('2'));
    expect(process.pauseOutputCalls).toBe(1);
    expect(terminal.sent.map((s) => s.data)).toEqual(['1', '2']);
    terminal.sendResult = true;
    terminal.events.drain();
    expect(process.resumeOutputCalls).toBe(1);
    terminal.events.drain();
    expect(process.resumeOutputCalls).toBe(1);
  });

  it('pauses again after a resume when the terminal congests again', () => {
    const { terminal, process } = setup();
    terminal.sendResult = false;
    process.events.output('stdout', bytes('1'));
    terminal.events.drain();
    process.events.output('stdout', bytes('2'));
    expect(process.pauseOutputCalls).toBe(2);
    expect(process.resumeOutputCalls).toBe(1);
  });
});

describe('Relay ending', () => {
  it('finishes once with the exit code when the process exits, without terminating it', async () => {
    const { terminal, process, done } = setup();
    process.events.end({ exitCode: 3 });
    const reason = await done;
    expect(reason).toEqual({ kind: 'exited', exitCode: 3 });
    expect(terminal.finished).toEqual([{ kind: 'exited', exitCode: 3 }]);
    expect(process.terminateCalls).toBe(0);
    expect(describeEnd(reason)).toBe('exited with code 3');
  });

  it('finishes with failed when the container stopped, without terminating anything', async () => {
    const { terminal, process, done } = setup();
    const error = new EntryError('ENTRY_CONTAINER_GONE');
    process.events.end({ error });
    expect(await done).toEqual({ kind: 'failed', error });
    expect(terminal.finished).toHaveLength(1);
    expect(process.terminateCalls).toBe(0);
  });

  it.each(['ENTRY_EXEC_FAILED', 'ENTRY_DOCKER_UNAVAILABLE', 'ENTRY_CLUSTER_UNAVAILABLE'] as const)(
    'terminates the processes when the process side ends without an exit status (%s: the stream was lost), then finishes with that reason',
    async (code) => {
      const { terminal, process, done } = setup();
      let release!: () => void;
      process.terminateImpl = () => new Promise<void>((r) => (release = r));
      const error = new EntryError(code, 'the stream ended without an exit status');
      process.events.end({ error });
      await tick();
      expect(process.terminateCalls).toBe(1);
      // The client hears of the end only once the processes are ended.
      expect(terminal.finished).toEqual([]);
      release();
      expect(await done).toEqual({ kind: 'failed', error });
      expect(terminal.finished).toEqual([{ kind: 'failed', error }]);
      expect(process.terminateCalls).toBe(1);
    },
  );

  it('terminates the process and finishes with client-gone when the terminal goes away', async () => {
    const { terminal, process, done } = setup();
    terminal.events.gone();
    expect(await done).toEqual({ kind: 'client-gone' });
    expect(process.terminateCalls).toBe(1);
    expect(terminal.finished).toEqual([{ kind: 'client-gone' }]);
    expect(describeEnd({ kind: 'client-gone' })).toBe('client disconnected');
  });

  it('terminates the process and finishes with failed when the terminal breaks the protocol', async () => {
    const { terminal, process, done } = setup();
    const error = new EntryError('ENTRY_BAD_FRAME', 'junk');
    terminal.events.gone(error);
    expect(await done).toEqual({ kind: 'failed', error });
    expect(process.terminateCalls).toBe(1);
  });

  it('finishes the terminal only after the process is terminated', async () => {
    const { terminal, process, done } = setup();
    let release!: () => void;
    process.terminateImpl = () => new Promise<void>((r) => (release = r));
    terminal.events.gone();
    await tick();
    expect(process.terminateCalls).toBe(1);
    expect(terminal.finished).toHaveLength(0);
    release();
    await done;
    expect(terminal.finished).toEqual([{ kind: 'client-gone' }]);
  });

  it('stop(error) terminates the process and finishes with failed', async () => {
    const { terminal, process, relay, done } = setup();
    const error = new EntryError('ENTRY_DRAINING');
    const stopped = await relay.stop(error);
    expect(stopped).toEqual({ kind: 'failed', error });
    expect(await done).toBe(stopped);
    expect(process.terminateCalls).toBe(1);
    expect(terminal.finished).toEqual([{ kind: 'failed', error }]);
    expect(describeEnd(stopped)).toBe('broker is shutting down');
  });

  it('still resolves when the terminal fails to finish', async () => {
    const { terminal, process, done } = setup();
    terminal.finish = async () => {
      throw new Error('socket already closed');
    };
    process.events.end({ exitCode: 0 });
    expect(await done).toEqual({ kind: 'exited', exitCode: 0 });
  });

  it('still finishes the terminal, without an unhandled rejection, when terminating the process fails', async () => {
    // A failing terminate (e.g. the Docker engine went away) must not crash the broker.
    const unhandled: unknown[] = [];
    const onUnhandled = (reason: unknown) => unhandled.push(reason);
    globalThis.process.on('unhandledRejection', onUnhandled);
    try {
      const { terminal, process, done } = setup();
      process.terminateImpl = async () => {
        throw new EntryError('ENTRY_DOCKER_UNAVAILABLE');
      };
      terminal.events.gone();
      expect(await done).toEqual({ kind: 'client-gone' });
      expect(terminal.finished).toEqual([{ kind: 'client-gone' }]);
      await new Promise((r) => setTimeout(r, 20));
      expect(unhandled).toEqual([]);
    } finally {
      globalThis.process.off('unhandledRejection', onUnhandled);
    }
  });

  it('ignores events after the end', async () => {
    const { terminal, process, relay, done } = setup();
    process.events.end({ exitCode: 0 });
    await done;
    terminal.events.input(bytes('late'));
    terminal.events.resize(1, 1);
    terminal.events.signal('KILL');
    terminal.events.inputEnd();
    terminal.events.gone();
    process.events.end({ exitCode: 9 });
    await relay.stop(new EntryError('ENTRY_DRAINING'));
    await tick();
    expect(process.written).toEqual([]);
    expect(process.resizes).toEqual([]);
    expect(process.signals).toEqual([]);
    expect(process.inputEnded).toBe(0);
    expect(process.terminateCalls).toBe(0);
    expect(terminal.finished).toEqual([{ kind: 'exited', exitCode: 0 }]);
  });

  it('keeps the first reason when the process exits and the client leaves at once', async () => {
    const { terminal, process, done } = setup();
    process.events.end({ exitCode: 1 });
    terminal.events.gone();
    expect(await done).toEqual({ kind: 'exited', exitCode: 1 });
    expect(terminal.finished).toHaveLength(1);
    expect(process.terminateCalls).toBe(0);
  });
});

describe('Relay pings', () => {
  it('pings the terminal on the interval', async () => {
    const { terminal, process, done } = setup(20);
    const started = Date.now();
    await terminal.waitForPings(3);
    expect(Date.now() - started).toBeGreaterThanOrEqual(50);
    process.events.end({ exitCode: 0 });
    await done;
  });

  it('stops pinging once the session ended', async () => {
    const { terminal, process, done } = setup(10);
    await terminal.waitForPings(1);
    process.events.end({ exitCode: 0 });
    await done;
    const count = terminal.pings;
    await new Promise((r) => setTimeout(r, 60));
    expect(terminal.pings).toBe(count);
  });

  it('does not ping when the interval is 0', async () => {
    const { terminal } = setup(0);
    await new Promise((r) => setTimeout(r, 40));
    expect(terminal.pings).toBe(0);
  });

  it('starts no ping timer when stopped before run (a drain during exec start)', async () => {
    // exec-session.ts calls relay.stop() before relay.run() when a stop arrived during start-up.
    const terminal = new FakeTerminal();
    const process = new FakeProcess();
    const relay = new Relay(terminal, process, { pingIntervalMs: 10 });
    const error = new EntryError('ENTRY_DRAINING');
    void relay.stop(error);
    expect(await relay.run()).toEqual({ kind: 'failed', error });
    await new Promise((r) => setTimeout(r, 60));
    expect(terminal.pings).toBe(0);
    expect(terminal.finished).toHaveLength(1);
  });
});

describe('describeEnd', () => {
  it('describes a failure by its error message', () => {
    expect(describeEnd({ kind: 'failed', error: new EntryError('ENTRY_NOT_FOUND', 'shop/web/1') })).toBe('container not found: shop/web/1');
  });
});
