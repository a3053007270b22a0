import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { AuditWriter, MAX_AUDIT_BACKLOG } from '../../broker/audit/audit-writer.js';
import type { AuditEvent } from '../../broker/audit/events.js';
import { createLogger } from '../../broker/log.js';

const event = (n: number): AuditEvent => ({ type: 'command', id: `e${n}`, time: new Date(0).toISOString(), broker: 'b1', line: `cmd ${n}` });

describe('AuditWriter', () => {
  beforeEach(() => vi.useFakeTimers());
  afterEach(() => vi.useRealTimers());

  function writer(failures: number) {
    const stored: string[] = [];
    const lines: string[] = [];
    let left = failures;
    const w = new AuditWriter(
      async (e) => {
        if (left > 0) {
          left--;
          throw new Error('Stream isn\'t writeable and enableOfflineQueue options is false');
        }
        stored.push(e.id!);
      },
      createLogger('info', (l) => lines.push(l)),
    );
    return { w, stored, lines, setFailures: (n: number) => (left = n) };
  }

  it('holds what the store refuses and stores it, in order, once the store takes events again', async () => {
    const { w, stored, lines } = writer(3);
    for (let n = 1; n <= 5; n++) w.add(event(n));
    await vi.advanceTimersByTimeAsync(0);
    expect(stored).toEqual([]);
    expect(w.backlog).toBe(5);
    // Tried again after 0.5, 1 and 2 s.
    await vi.advanceTimersByTimeAsync(3_600);
    expect(stored).toEqual(['e1', 'e2', 'e3', 'e4', 'e5']);
    expect(w.backlog).toBe(0);
    const said = lines.map((l) => (JSON.parse(l) as { msg: string }).msg);
    expect(said).toEqual(['audit events not stored: held to try again', 'audit events stored again']);
  });

  it(`holds at most MAX_AUDIT_BACKLOG events, saying so once, and goes on storing new ones after`, async () => {
    const { w, stored, lines, setFailures } = writer(Infinity);
    for (let n = 0; n < MAX_AUDIT_BACKLOG + 50; n++) w.add(event(n));
    await vi.advanceTimersByTimeAsync(0);
    expect(w.backlog).toBe(MAX_AUDIT_BACKLOG);
    expect(lines.filter((l) => l.includes('audit backlog full')).length).toBe(1);
    setFailures(0);
    await vi.advanceTimersByTimeAsync(20_000);
    expect(stored).toHaveLength(MAX_AUDIT_BACKLOG);
    expect(stored.at(-1)).toBe(`e${MAX_AUDIT_BACKLOG - 1}`);
    w.add(event(-1));
    await vi.advanceTimersByTimeAsync(0);
    expect(stored.at(-1)).toBe('e-1');
  });

  it('flushes what it holds within its bound when the broker stops, and says what is left', async () => {
    const { w, stored, lines } = writer(Infinity);
    w.add(event(1));
    await vi.advanceTimersByTimeAsync(0);
    const flushed = w.flush(1_000);
    await vi.advanceTimersByTimeAsync(1_000);
    await flushed;
    expect(stored).toEqual([]);
    expect(lines.some((l) => l.includes('audit events not stored at stop') && l.includes('"events":1'))).toBe(true);
  });
});
