import { EntryError } from '../errors.js';
import type { Limiter } from './pacing.js';
import { SCAN_MARK } from './session-mark.js';

/** Runs one scan (SCAN_SCRIPT) of `target` for `marks` with `signal`; resolves with one count per mark, in their order. */
export type RunScan<T> = (target: T, signal: string, marks: readonly string[]) => Promise<number[]>;

/** How a backend's scans are batched: what bounds them, and what tells targets apart. */
export interface ScanBatcherOptions<T> {
  /** Bounds the scans of every target the batcher serves (a host's, a cluster's). */
  limiter: Limiter;
  /** Marks one scan takes at most: each backend's transport of the argv decides it. */
  maxMarks: number;
  /** The same string for the same container, a different one for any other. */
  keyOf(target: T): string;
  run: RunScan<T>;
}

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
 * Coalesces the reaper's scans run inside containers (Docker's exec mode, Kubernetes). Requests
 * for the same container and the same signal wait behind that container's scan under way (one
 * at a time per container and signal: scans side by side would walk the same /proc) and join
 * the next one while it waits for its turn, up to `maxMarks` marks; `limiter` bounds the scans
 * of every container. When many sessions of a container end together (a load balancer restart)
 * that is one exec for all of them at each step, not one each; a session ending alone is
 * scanned at once, as before. Each caller gets the count of its own mark, or the scan's failure.
 */
export class ScanBatcher<T> {
  private readonly lanes = new Map<string, Lane>();

  constructor(private readonly o: ScanBatcherOptions<T>) {
    if (!Number.isInteger(o.maxMarks) || o.maxMarks < 1) throw new RangeError(`a scan takes at least one mark: ${o.maxMarks}`);
  }

  /**
   * Sends `signal` (a name without SIG, or a number: 0 only checks) to the processes marked
   * `mark` in `target`: how many got it. Two requests for the same mark in one batch are one
   * delivery, and both get its count (as two signals pending for a process are one). A mark or
   * signal the scan cannot take unquoted (see SCAN_SCRIPT) is refused before any scan.
   */
  signal(target: T, mark: string, signal: string): Promise<number> {
    if (!SCAN_MARK.test(mark)) return Promise.reject(new EntryError('ENTRY_BAD_REQUEST', `not a session mark the reaper's scan can take: ${JSON.stringify(mark.slice(0, 100))}`));
    if (!/^(?:[A-Z][A-Z0-9]*|\d{1,2})$/.test(signal)) return Promise.reject(new EntryError('ENTRY_BAD_REQUEST', `not a signal name or number: ${JSON.stringify(signal.slice(0, 20))}`));
    const key = JSON.stringify([this.o.keyOf(target), signal]);
    let lane = this.lanes.get(key);
    if (!lane) {
      lane = { open: undefined, tail: Promise.resolve(), pending: 0 };
      this.lanes.set(key, lane);
    }
    let batch = lane.open;
    if (!batch || (batch.marks.length >= this.o.maxMarks && !batch.waiters.has(mark))) {
      batch = { marks: [], waiters: new Map() };
      this.enqueue(key, lane, target, signal, batch);
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

  /** Scans for `batch` once the lane's scan before it is done and the limiter has a slot. */
  private enqueue(key: string, lane: Lane, target: T, signal: string, batch: Batch): void {
    lane.open = batch;
    lane.pending++;
    lane.tail = lane.tail
      .then(() =>
        this.o.limiter.run(async () => {
          // Closed from here on: later requests make the next batch.
          if (lane.open === batch) lane.open = undefined;
          await this.settle(target, signal, batch);
        }),
      )
      .finally(() => {
        if (--lane.pending === 0) this.lanes.delete(key);
      });
  }

  /** Runs the batch's scan and answers each caller; never rejects (the lane goes on). */
  private async settle(target: T, signal: string, batch: Batch): Promise<void> {
    let counts: number[];
    try {
      counts = await this.o.run(target, signal, batch.marks);
      if (counts.length !== batch.marks.length) throw new Error(`the scan gave ${counts.length} counts for ${batch.marks.length} marks`);
    } catch (err) {
      for (const waiters of batch.waiters.values()) for (const w of waiters) w.reject(err);
      return;
    }
    batch.marks.forEach((mark, i) => {
      for (const w of batch.waiters.get(mark)!) w.resolve(counts[i]!);
    });
  }
}
