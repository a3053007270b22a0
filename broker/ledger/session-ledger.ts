import type { LeftoverPlace } from '../backend/backend.js';

/** A session whose processes may still run, as the ledger keeps it. */
export interface LedgerEntry {
  session: string;
  user: string;
  /** The client's address. */
  source: string;
  app: string;
  proc: string;
  instance: string;
  place: LeftoverPlace;
  startedAt: string;
  /** The session's end is recorded (its broker lived on, and only its clean-up failed). */
  endRecorded?: boolean;
  /** The broker process holding the session, and where other brokers reach it (see StoreLedger). */
  holder?: LedgerHolder;
}

export interface LedgerHolder {
  broker: string;
  url: string;
}

/**
 * Sessions whose processes may still be running: each is added before its process starts and
 * removed once its processes are ended, under the broker process holding it. A broker that dies
 * without ending its sessions (`kill -9`, the OOM killer, a crash) leaves its entries behind,
 * and another broker, or the same one started again, claims them and ends those processes.
 * Kept on disk (one broker, FileLedger) or in the shared store (many, StoreLedger).
 */
export interface SessionLedger {
  readonly kind: 'file' | 'store';
  /** Records a session before its process starts. Never rejects: a session does not depend on it. */
  add(entry: LedgerEntry): Promise<void>;
  /** Forgets a session whose processes are known to be gone. Never rejects. */
  remove(session: string): Promise<void>;
  /** Takes over the entries of brokers that are gone: each is claimed by one broker only. Undefined: not looked at now. */
  claimOrphans(): Promise<LedgerEntry[] | undefined>;
  /** On a stop: what is still here is left for the next broker. */
  close(): Promise<void>;
}

/** Session ids are the broker's own UUIDs; nothing else is used as a name in a ledger. */
export function isSessionId(id: string): boolean {
  return /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/.test(id);
}

/** An entry as written, or undefined when it is not one (a write cut short by a crash). */
export function parseEntry(text: string): LedgerEntry | undefined {
  try {
    const e = JSON.parse(text) as Partial<LedgerEntry>;
    const p = e.place;
    if (typeof e.session !== 'string' || !isSessionId(e.session) || !p || typeof p.backend !== 'string' || typeof p.host !== 'string' || typeof p.id !== 'string') return undefined;
    return e as LedgerEntry;
  } catch {
    return undefined;
  }
}

/**
 * An entry's place as far as it can be read, for a claim: an entry whose other fields are wrong
 * (which parseEntry refuses) still belongs to the broker that has its host.
 */
export function entryPlace(text: string): { backend: string; host: string } | undefined {
  try {
    const p = (JSON.parse(text) as { place?: { backend?: unknown; host?: unknown } }).place;
    return p && typeof p.backend === 'string' && typeof p.host === 'string' ? { backend: p.backend, host: p.host } : undefined;
  } catch {
    return undefined;
  }
}

/**
 * A host or cluster as a claim in the store names it (see Store.claimLedgers): the backend and
 * the host's name, a line apart (neither holds a line break).
 */
export function placeKey(backend: string, host: string): string {
  return `${backend}\n${host}`;
}
