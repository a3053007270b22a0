import { describe, expect, it } from 'vitest';
import { AuditTrail } from '../../broker/audit/audit-trail.js';
import { createLogger } from '../../broker/log.js';
import { MemoryStore } from '../../broker/store/memory-store.js';

// Shaped like a JWT; signed by nobody.
const JWT = 'eyJhbGciOiJFZERTQSJ9.eyJzdWIiOiJhbGljZSJ9.c2lnbmF0dXJlLW9mLW5vYm9keQ';

describe('the stored audit trail', () => {
  it('keeps no token a command line carries, as the log keeps none', async () => {
    const store = new MemoryStore();
    const lines: string[] = [];
    const trail = new AuditTrail(store, createLogger('info', (l) => lines.push(l)), { brokerId: 'b1', maxEvents: 100, alertRules: [] });
    const who = { sessionId: 's1', user: 'alice', source: '127.0.0.1', app: 'shop', proc: 'web', instance: '1', container: 'c1', host: 'local' };
    trail.record({ type: 'exec', ...who, argv: ['curl', '-H', `Authorization: Bearer ${JWT}`, `https://x.example/?access_token=${JWT}`], runAs: '', workdir: '', tty: false });
    trail.record({ type: 'command', ...who, line: `export T=${JWT}` });
    await new Promise((r) => setImmediate(r));
    const stored = JSON.stringify((await store.queryAudit({ limit: 10 })).events);
    expect(stored).toContain('Authorization: Bearer [redacted-jwt]');
    expect(stored).toContain('export T=[redacted-jwt]');
    expect(stored).toContain('curl');
    expect(stored).not.toContain(JWT);
    expect(lines.join('\n')).not.toContain(JWT);
  });
});
