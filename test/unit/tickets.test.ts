import { describe, expect, it } from 'vitest';
import type { Identity } from '../../broker/auth/identity.js';
import { TICKET_TTL_MS, Tickets } from '../../broker/auth/tickets.js';
import { MemoryStore } from '../../broker/store/memory-store.js';

const target = { app: 'shop', proc: 'web', instance: '1' };
const identity = (expiresAt: number): Identity => ({ user: 'alice', apps: ['shop'], roles: [], admin: false, tokenId: undefined, issuedAt: 0, expiresAt });

describe('tickets', () => {
  it('live their 30 s when the token outlives them', async () => {
    const before = Date.now();
    const { expiresAt } = await new Tickets(new MemoryStore()).issue(identity(before + 3_600_000), target);
    expect(expiresAt.getTime() - before).toBeGreaterThanOrEqual(TICKET_TTL_MS);
    expect(expiresAt.getTime() - Date.now()).toBeLessThanOrEqual(TICKET_TTL_MS);
  });

  it('live no longer than the token they were issued for', async () => {
    const tickets = new Tickets(new MemoryStore());
    const tokenExpires = Date.now() + 5_000;
    const issued = await tickets.issue(identity(tokenExpires), target);
    expect(issued.expiresAt.getTime()).toBe(tokenExpires);
    expect((await tickets.redeem(issued.ticket, target)).user).toBe('alice');
  });

  it('are not issued for a token already past its expiry', async () => {
    const tickets = new Tickets(new MemoryStore());
    await expect(tickets.issue(identity(Date.now() - 1_000), target)).rejects.toMatchObject({ code: 'ENTRY_TOKEN_EXPIRED' });
  });

  it('live their 30 s for a token without an expiry', async () => {
    const before = Date.now();
    const { expiresAt } = await new Tickets(new MemoryStore()).issue(identity(0), target);
    expect(expiresAt.getTime() - before).toBeGreaterThanOrEqual(TICKET_TTL_MS);
  });
});
