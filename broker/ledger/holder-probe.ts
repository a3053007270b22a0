import type { LedgerHolder } from './session-ledger.js';

/**
 * How long a holder has to answer. A broker that runs answers /healthz from its event loop at
 * once; two seconds cover a busy one and keep a claim that meets a silent host short.
 */
export const HOLDER_PROBE_TIMEOUT_MS = 2_000;

/**
 * Whether the broker process `holder` names answers at its address, as itself (a broker started
 * since at the same address has another id). Any failure, a TLS listener that wants a client
 * certificate among them, counts as no answer.
 */
export async function holderAnswers(holder: LedgerHolder, timeoutMs = HOLDER_PROBE_TIMEOUT_MS): Promise<boolean> {
  try {
    const url = new URL('/healthz', holder.url);
    url.searchParams.set('broker', holder.broker);
    const res = await fetch(url, { signal: AbortSignal.timeout(timeoutMs), redirect: 'error' });
    if (!res.ok) return false;
    const body = (await res.json()) as { sameBroker?: unknown };
    return body.sameBroker === true;
  } catch {
    return false;
  }
}
