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
  /**
   * How long a scan runs before the next batch of its container and signal may start beside it:
   * past what a full scan takes when all is well, short of the scan's own timeout.
   */
  overdueMs: number;
  /** The same string for the same container, a different one for any other. */
  keyOf(target: T): string;
  run: RunScan<T>;
}

const overran = new WeakSet<object>();

/**
 * Marks `err` as a scan that ran out of its time while running: its work grows with its marks
 * times their processes (each of those is read and signalled on its own), so fewer marks may
 * finish in time, and the batcher tries again in halves. Not for an engine or cluster that did
 * not answer: that is no faster for fewer marks.
 */
export function scanOverran<E extends object>(err: E): E {
  overran.add(err);
  return err;
}

interface Waiter {
  resolve(n: number): void;
  reject(err: unknown): void;
}

/** The callers of one scan, by mark; a batch is open to more until the scan starts. */
interface Batch {
  readonly marks: string[];
  readonly waiters: Map<string, Waiter[]>;
  /** Half of a batch whose scan overran: tried once so, not halved again. */
  readonly half: boolean;
}

/** One container and signal: the batches waiting their turn, and the scans under way. */
interface Lane<T> {
  readonly key: string;
  readonly target: T;
  readonly signal: string;
  /** Batches not yet started, oldest first. */
  readonly queue: Batch[];
  /** The batch new marks join (queued, or waiting for a slot of the limiter), if any. */
  open: Batch | undefined;
  /** Scans started (a slot asked for) and not settled. */
  running: number;
  /** Of those, the ones that have run past overdueMs. */
  overdue: number;
  /** The fewest marks of a scan of this lane that overran: halves as big would overrun too. */
  fewestOverran: number;
}

/**
 * Coalesces the reaper's scans run inside containers (Docker's exec mode, Kubernetes). Requests
 * for the same container and the same signal wait behind that container's scan under way (one
 * at a time per container and signal: scans side by side would walk the same /proc) and join
 * the next one while it waits for its turn, up to `maxMarks` marks; `limiter` bounds the scans
 * of every container. When many sessions of a container end together (a load balancer restart)
 * that is one exec for all of them at each step, not one each; a session ending alone is
 * scanned at once, as before. Each caller gets the count of its own mark, or the scan's failure.
 *
 * Sharing costs no more than scanning alone did: a scan that runs past `overdueMs` (a container
 * whose sessions have many processes, or little CPU) lets the next batch start beside it, two
 * at most a lane, rather than holding it to its timeout; and a scan that overran its time (see
 * scanOverran) is run again in two halves, once, so that a session is not failed for the
 * processes of the others it shared a scan with, unless a scan of that lane as small as a half
 * overran as well.
 */
export class ScanBatcher<T> {
  private readonly lanes = new Map<string, Lane<T>>();

  constructor(private readonly o: ScanBatcherOptions<T>) {
    if (!Number.isInteger(o.maxMarks) || o.maxMarks < 1) throw new RangeError(`a scan takes at least one mark: ${o.maxMarks}`);
    if (!(o.overdueMs > 0)) throw new RangeError(`a scan is overdue after some time: ${o.overdueMs}`);
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
      lane = { key, target, signal, queue: [], open: undefined, running: 0, overdue: 0, fewestOverran: Infinity };
      this.lanes.set(key, lane);
    }
    let batch = lane.open;
    const fresh = !batch || (batch.marks.length >= this.o.maxMarks && !batch.waiters.has(mark));
    if (fresh) {
      batch = { marks: [], waiters: new Map(), half: false };
      lane.open = batch;
      lane.queue.push(batch);
    }
    const promise = new Promise<number>((resolve, reject) => join(batch!, mark, { resolve, reject }));
    if (fresh) this.pump(lane);
    return promise;
  }

  /**
   * Starts the lane's next batches while it may: when no scan of the lane is under way, or the
   * one under way is overdue. A batch is started a microtask later, so that the requests of the
   * same turn join it.
   */
  private pump(lane: Lane<T>): void {
    while (lane.queue.length > 0 && lane.running === lane.overdue && lane.running < 2) {
      const batch = lane.queue.shift()!;
      lane.running++;
      void Promise.resolve()
        .then(() => this.o.limiter.run(() => this.scan(lane, batch)))
        .finally(() => {
          lane.running--;
          this.pump(lane);
          if (lane.running === 0 && lane.queue.length === 0) this.lanes.delete(lane.key);
        });
    }
  }

  /** The batch's scan, in a slot of the limiter: the batch is closed from here on. */
  private async scan(lane: Lane<T>, batch: Batch): Promise<void> {
    if (lane.open === batch) lane.open = undefined;
    let late = false;
    const timer = setTimeout(() => {
      late = true;
      lane.overdue++;
      this.pump(lane);
    }, this.o.overdueMs);
    try {
      await this.settle(lane, batch);
    } finally {
      clearTimeout(timer);
      if (late) lane.overdue--;
    }
  }

  /** Runs the batch's scan and answers each caller, or queues its halves; never rejects (the lane goes on). */
  private async settle(lane: Lane<T>, batch: Batch): Promise<void> {
    let counts: number[];
    try {
      counts = await this.o.run(lane.target, lane.signal, batch.marks);
      if (counts.length !== batch.marks.length) throw new Error(`the scan gave ${counts.length} counts for ${batch.marks.length} marks`);
    } catch (err) {
      if (typeof err === 'object' && err !== null && overran.has(err)) {
        lane.fewestOverran = Math.min(lane.fewestOverran, batch.marks.length);
        // Not when a scan of no more marks than a half overran too: that container's scans
        // overrun whatever their marks (a /bin/sh that never answers), and halves would only
        // hold its sessions longer.
        if (!batch.half && Math.ceil(batch.marks.length / 2) < lane.fewestOverran) {
          // Ahead of the batches that came after it: its callers have waited longest.
          lane.queue.unshift(...halves(batch));
          return;
        }
      }
      for (const waiters of batch.waiters.values()) for (const w of waiters) w.reject(err);
      return;
    }
    batch.marks.forEach((mark, i) => {
      for (const w of batch.waiters.get(mark)!) w.resolve(counts[i]!);
    });
  }
}

function join(batch: Batch, mark: string, waiter: Waiter): void {
  const waiters = batch.waiters.get(mark);
  if (waiters) waiters.push(waiter);
  else {
    batch.marks.push(mark);
    batch.waiters.set(mark, [waiter]);
  }
}

/** The batch's marks in two batches, each with its own callers. */
function halves(batch: Batch): [Batch, Batch] {
  const mid = Math.ceil(batch.marks.length / 2);
  return [batch.marks.slice(0, mid), batch.marks.slice(mid)].map((marks) => ({ marks, waiters: new Map(marks.map((m) => [m, batch.waiters.get(m)!])), half: true })) as [Batch, Batch];
}
