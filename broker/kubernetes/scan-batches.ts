import type { Limiter } from '../backend/pacing.js';
import { type RunScan, ScanBatcher } from '../backend/scan-batcher.js';
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

/**
 * How long a scan runs before the next batch of its container and signal starts beside it (see
 * ScanBatcher): an exec took 0.14–1.6 s a scan in the dev cluster under load, and its timeout is
 * 30 s (execCollect); past 5 s it is a scan of many processes or of a starved container.
 */
export const SCAN_OVERDUE_MS = 5_000;

/** The reaper's scans of a cluster's pods, batched per container (see ScanBatcher). */
export class ScanBatches extends ScanBatcher<ExecTarget> {
  constructor(limiter: Limiter, run: RunScan<ExecTarget>) {
    super({ limiter, maxMarks: MAX_MARKS_PER_SCAN, overdueMs: SCAN_OVERDUE_MS, keyOf: (t) => JSON.stringify([t.namespace, t.pod, t.container]), run });
  }
}
