import { get as httpGet } from 'node:http';
import { get as httpsGet } from 'node:https';
import { peerConnectOptions, type PeerTarget } from '../transport/peer-connect.js';
import type { LedgerHolder } from './session-ledger.js';

/**
 * How long a holder has to answer. A broker that runs answers /healthz from its event loop at
 * once; two seconds cover a busy one and keep a claim that meets a silent host short.
 */
export const HOLDER_PROBE_TIMEOUT_MS = 2_000;

/** A /healthz answer is a few bytes: anything longer is not a broker's. */
const MAX_ANSWER_BYTES = 4096;

/**
 * Whether the broker process `holder` names answers at its address, as itself (a broker started
 * since at the same address has another id). It is asked as a resume is handed to it: the
 * peer CA, this broker's certificate for a holder under mTLS, the peer name. Any failure counts
 * as no answer.
 */
export async function holderAnswers(holder: LedgerHolder, timeoutMs = HOLDER_PROBE_TIMEOUT_MS, tls: PeerTarget = {}): Promise<boolean> {
  let url: URL;
  try {
    url = new URL('/healthz', holder.url);
  } catch {
    return false;
  }
  url.searchParams.set('broker', holder.broker);
  const secure = url.protocol === 'https:';
  if (!secure && url.protocol !== 'http:') return false;
  // An IPv6 literal keeps its brackets in `hostname`.
  const options = { signal: AbortSignal.timeout(timeoutMs), ...(secure ? peerConnectOptions(url.hostname.replace(/^\[(.*)\]$/, '$1'), tls) : {}) };
  return new Promise<boolean>((resolve) => {
    const req = (secure ? httpsGet : httpGet)(url, options, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => {
        body += chunk;
        if (body.length > MAX_ANSWER_BYTES) req.destroy(new Error('answer too long'));
      });
      res.on('end', () => {
        if (res.statusCode !== 200) return resolve(false);
        try {
          resolve((JSON.parse(body) as { sameBroker?: unknown }).sameBroker === true);
        } catch {
          resolve(false);
        }
      });
      res.on('error', () => resolve(false));
      // Cut short (the timeout, a reset) after the head came: no answer.
      res.on('close', () => resolve(false));
    });
    // A refusal, a reset, a certificate refused, the timeout: no answer.
    req.on('error', () => resolve(false));
  });
}
