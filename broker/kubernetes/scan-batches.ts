import type { Limiter } from '../backend/pacing.js';
import type { ExecTarget } from './exec-socket.js';

/**
 * Marks one scan takes at most. The scan's argv travels in the exec URL (`command=` once per
 * argument), and the apiserver answers 414/431 once the request line and headers pass ~8 KiB:
 *  - the path, the script and the other parameters with the longest names Kubernetes allows
 *    (namespace 63, pod 253, container 63 characters): 1,503 bytes (the script 971 of them);
 *  - the headers: 2 KiB (a bearer token of ~1 KiB, a long OIDC one up to ~1.8 KiB, and the
 *    WebSocket upgrade's own ~200 bytes);
 *  - each mark of the longest session id (64 characters): `command=ENTRY_SESSION%3D<id>&`,
 *    89 bytes.
 * (8,192 − 2,048 − 1,503) / 89 = 52; 48 leaves room for a few more lines of script.
 * test/unit/kube-scan-batches.test.ts checks the URL of a full scan against that budget.
 */
export const MAX_MARKS_PER_SCAN = 48;

/** Runs one scan for `marks` with `signal`; resolves with one count per mark, in their order. */
export type RunScan = (t: ExecTarget, signal: string, marks: readonly string[]) => Promise<number[]>;

interface Waiter {
  resolve(n: number): void;
  reject(err: unknown): void;
}

/** The callers of one scan, by mark; a batch is open to more until the scan starts. */
interface Batch {
  readonly marks: string[];
  readonly waiters: Map<string, Waiter[]>;
}

/** One container and signal: the batch still open to new marks, and the end of the last scan. */
interface Lane {
  open: Batch | undefined;
  tail: Promise<void>;
  /** Batches made and not yet settled: the lane is forgotten at 0. */
  pending: number;
}

/**
 * Coalesces the reaper's scans. Requests for the same container and the same signal wait behind
 * that container's scan under way (one at a time per container and signal: scans side by side
 * would walk the same /proc) and join the next one while it waits for its turn, up to
 * MAX_MARKS_PER_SCAN marks; `limiter` bounds the scans of the whole cluster. When many sessions
 * of a pod end together (a load balancer restart) that is one exec for all of them at each step,
 * not one each; a session ending alone is scanned at once, as before. Each caller gets the count
 * of its own mark, or the scan's failure.
 */
export class ScanBatches {
  private readonly lanes = new Map<string, Lane>();

  constructor(
    private readonly limiter: Limiter,
    private readonly runScan: RunScan,
  ) {}

  /**
   * Sends `signal` to the processes marked `mark` in `t`: how many got it. Two requests for the
   * same mark in one batch are one delivery, and both get its count (as two signals pending for a
   * process are one).
   */
  signal(t: ExecTarget, mark: string, signal: string): Promise<number> {
    const key = JSON.stringify([t.namespace, t.pod, t.container, signal]);
    let lane = this.lanes.get(key);
    if (!lane) {
      lane = { open: undefined, tail: Promise.resolve(), pending: 0 };
      this.lanes.set(key, lane);
    }
    let batch = lane.open;
    if (!batch || (batch.marks.length >= MAX_MARKS_PER_SCAN && !batch.waiters.has(mark))) {
      batch = { marks: [], waiters: new Map() };
      this.enqueue(key, lane, t, signal, batch);
    }
    const waiters = batch.waiters.get(mark);
    return new Promise<number>((resolve, reject) => {
      if (waiters) waiters.push({ resolve, reject });
      else {
        batch.marks.push(mark);
        batch.waiters.set(mark, [{ resolve, reject }]);
      }
    });
  }

  /** Scans for `batch` once the lane's scan before it is done and the cluster has a slot. */
  private enqueue(key: string, lane: Lane, t: ExecTarget, signal: string, batch: Batch): void {
    lane.open = batch;
    lane.pending++;
    lane.tail = lane.tail
      .then(() =>
        this.limiter.run(async () => {
          // Closed from here on: later requests make the next batch.
          if (lane.open === batch) lane.open = undefined;
          await this.settle(t, signal, batch);
        }),
      )
      .finally(() => {
        if (--lane.pending === 0) this.lanes.delete(key);
      });
  }

  /** Runs the batch's scan and answers each caller; never rejects (the lane goes on). */
  private async settle(t: ExecTarget, signal: string, batch: Batch): Promise<void> {
    let counts: number[];
    try {
      counts = await this.runScan(t, signal, batch.marks);
    } catch (err) {
      for (const waiters of batch.waiters.values()) for (const w of waiters) w.reject(err);
      return;
    }
    batch.marks.forEach((mark, i) => {
      for (const w of batch.waiters.get(mark)!) w.resolve(counts[i]!);
    });
  }
}
