import { randomBytes } from 'node:crypto';
import type { Target } from '../backend/backend.js';
import { EntryError } from '../errors.js';
import { storeCall } from '../store/store-call.js';
import type { Store } from '../store/store.js';
import { credentialKey } from './credential-key.js';
import type { Identity } from './identity.js';

/** How long a ticket lives: enough for a page to open its socket, too short to be worth stealing. */
export const TICKET_TTL_MS = 30_000;
/** 32 random bytes: unguessable. */
const TICKET_BYTES = 32;

export interface IssuedTicket {
  ticket: string;
  expiresAt: Date;
}

interface TicketRecord {
  identity: Identity;
  target: Target;
  expiresAt: number;
}

/** One-time tickets for browsers, which cannot set upgrade headers. */
export interface TicketStore {
  issue(identity: Identity, target: Target): Promise<IssuedTicket>;
  /** Returns the identity the ticket was issued to, once; throws EntryError otherwise. */
  redeem(ticket: string, target: Target): Promise<Identity>;
  /** Spends a ticket without using it (its upgrade was refused before it was redeemed). */
  spend(ticket: string): Promise<void>;
}

export function sameTarget(a: Target, b: Target): boolean {
  return a.app === b.app && a.proc === b.proc && a.instance === b.instance;
}

/** Tickets kept in the shared store, so one minted on broker A works once on broker B. */
export class Tickets implements TicketStore {
  constructor(
    private readonly store: Store,
    private readonly ttlMs = TICKET_TTL_MS,
  ) {}

  async issue(identity: Identity, target: Target): Promise<IssuedTicket> {
    const now = Date.now();
    // A ticket lives no longer than the token it stands for. A token past its `exp` but inside
    // the verifier's clock tolerance gets none: the caller needs a new token anyway.
    const tokenExpires = identity.expiresAt > 0 ? identity.expiresAt : Infinity;
    if (tokenExpires <= now) throw new EntryError('ENTRY_TOKEN_EXPIRED');
    const expiresAt = Math.min(now + this.ttlMs, tokenExpires);
    const ticket = randomBytes(TICKET_BYTES).toString('base64url');
    const record: TicketRecord = { identity, target, expiresAt };
    await storeCall(() => this.store.putTicket(credentialKey(ticket), JSON.stringify(record), expiresAt - now));
    return { ticket, expiresAt: new Date(expiresAt) };
  }

  async spend(ticket: string): Promise<void> {
    await this.take(ticket);
  }

  async redeem(ticket: string, target: Target): Promise<Identity> {
    // Taken (deleted) before any check: a ticket is spent by its first use, right or wrong.
    const raw = await this.take(ticket);
    if (!raw) throw new EntryError('ENTRY_BAD_TOKEN', 'unknown, expired or already used ticket');
    const record = JSON.parse(raw) as TicketRecord;
    if (record.expiresAt < Date.now()) throw new EntryError('ENTRY_BAD_TOKEN', 'ticket expired');
    if (!sameTarget(record.target, target)) throw new EntryError('ENTRY_BAD_TOKEN', 'ticket was issued for another target');
    return record.identity;
  }

  /** The ticket's record, deleted as it is read; undefined when there was none. */
  private take(ticket: string): Promise<string | undefined> {
    return storeCall(() => this.store.takeTicket(credentialKey(ticket)));
  }
}
