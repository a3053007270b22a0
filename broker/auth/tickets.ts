import { createHash, randomBytes } from 'node:crypto';
import type { Target } from '../docker/resolver.js';
import { EntryError } from '../errors.js';
import type { Identity } from './identity.js';

/** How long a ticket lives: enough for a page to open its socket, too short to be worth stealing. */
export const TICKET_TTL_MS = 30_000;
/** 32 random bytes: unguessable. */
const TICKET_BYTES = 32;
/** Bound on live tickets per store, so a client minting in a loop cannot grow memory. */
export const MAX_LIVE_TICKETS = 10_000;

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
}

/** Only a hash of each ticket is kept: the store never holds a usable credential. */
export function ticketKey(ticket: string): string {
  return createHash('sha256').update(ticket).digest('base64url');
}

export function newTicket(): string {
  return randomBytes(TICKET_BYTES).toString('base64url');
}

export function sameTarget(a: Target, b: Target): boolean {
  return a.app === b.app && a.proc === b.proc && a.instance === b.instance;
}

export class MemoryTicketStore implements TicketStore {
  private readonly tickets = new Map<string, TicketRecord>();

  constructor(private readonly ttlMs = TICKET_TTL_MS) {}

  async issue(identity: Identity, target: Target): Promise<IssuedTicket> {
    this.sweep();
    if (this.tickets.size >= MAX_LIVE_TICKETS) throw new EntryError('ENTRY_TOO_MANY_SESSIONS', 'too many live tickets');
    const ticket = newTicket();
    const expiresAt = Date.now() + this.ttlMs;
    this.tickets.set(ticketKey(ticket), { identity, target, expiresAt });
    return { ticket, expiresAt: new Date(expiresAt) };
  }

  async redeem(ticket: string, target: Target): Promise<Identity> {
    const key = ticketKey(ticket);
    const record = this.tickets.get(key);
    // Deleted before any check: a ticket is spent by its first use, right or wrong.
    this.tickets.delete(key);
    if (!record) throw new EntryError('ENTRY_BAD_TOKEN', 'unknown or already used ticket');
    if (record.expiresAt < Date.now()) throw new EntryError('ENTRY_BAD_TOKEN', 'ticket expired');
    if (!sameTarget(record.target, target)) throw new EntryError('ENTRY_BAD_TOKEN', 'ticket was issued for another target');
    return record.identity;
  }

  private sweep(): void {
    const now = Date.now();
    for (const [k, r] of this.tickets) if (r.expiresAt < now) this.tickets.delete(k);
  }
}
