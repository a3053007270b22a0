import { CLIENT_SIGNALS } from '../../proto/signals.js';

export { CLIENT_SIGNALS, signalName } from '../../proto/signals.js';

interface Waiting {
  promise: Promise<void>;
  resolve(): void;
  reject(err: unknown): void;
}

/**
 * A session's signal deliveries, bounded whatever the client sends. A delivery is costly (a
 * /proc walk or a root exec in the container on Docker, a pods/exec on Kubernetes) and a client
 * may send SIGNAL as fast as its link allows. So at most one delivery runs at a time; a signal
 * sent meanwhile waits for it, and a signal that is already waiting absorbs its repeats, the way
 * the kernel keeps a standard signal pending once (`kill -INT` ten times before the process runs
 * is one SIGINT). A session therefore holds at most one delivery in flight and one waiting per
 * name in CLIENT_SIGNALS (8); every name sent is still delivered, in the order first sent.
 */
export class SignalLane {
  private running = false;
  /** Signals waiting for the delivery in flight, in the order they were first sent. */
  private readonly waiting = new Map<string, Waiting>();
  private closed = false;

  constructor(private readonly deliver: (name: string) => Promise<unknown>) {}

  /**
   * Queues `name` (as CLIENT_SIGNALS spells it). Returns the delivery's promise (rejected when it
   * failed) to the sender that queued it, and nothing to a repeat absorbed by a waiting one: a
   * failure is reported once, not once per repeat.
   */
  send(name: string): Promise<void> | undefined {
    if (this.closed || !CLIENT_SIGNALS.has(name) || this.waiting.has(name)) return undefined;
    let resolve!: () => void;
    let reject!: (err: unknown) => void;
    const promise = new Promise<void>((res, rej) => {
      resolve = res;
      reject = rej;
    });
    this.waiting.set(name, { promise, resolve, reject });
    this.next();
    return promise;
  }

  /** The session ends: signals still waiting are dropped (its processes are being ended anyway). */
  close(): void {
    this.closed = true;
    for (const w of this.waiting.values()) w.resolve();
    this.waiting.clear();
  }

  private next(): void {
    if (this.running) return;
    const first = this.waiting.entries().next();
    if (first.done) return;
    const [name, w] = first.value;
    // Out of the waiting set as it starts: the same signal sent from now on is a new one.
    this.waiting.delete(name);
    this.running = true;
    // A deliverer that throws at once is a failed delivery like any other.
    void Promise.resolve()
      .then(() => this.deliver(name))
      .then(() => w.resolve(), (err: unknown) => w.reject(err))
      .finally(() => {
        this.running = false;
        this.next();
      });
  }
}
