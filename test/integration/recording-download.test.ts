import { readdirSync, statSync } from 'node:fs';
import { connect } from 'node:net';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestBroker, type TestBroker } from '../helpers/broker.js';
import { TestContainers, uniqueApp } from '../helpers/containers.js';
import { eventually, openCommand } from '../helpers/sessions.js';

/** GET over a raw socket, read to its close: the framing as a client or proxy would see it. */
function rawGet(url: string, path: string, token: string): Promise<{ head: string; body: Buffer }> {
  const { hostname, port } = new URL(url);
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    const s = connect(Number(port), hostname, () => s.write(`GET ${path} HTTP/1.1\r\nHost: ${hostname}\r\nAuthorization: Bearer ${token}\r\nConnection: close\r\n\r\n`));
    s.on('data', (c: Buffer) => chunks.push(c));
    s.on('error', reject);
    s.on('close', () => {
      const all = Buffer.concat(chunks);
      const split = all.indexOf('\r\n\r\n');
      resolve({ head: all.subarray(0, split).toString('latin1'), body: all.subarray(split + 4) });
    });
  });
}

describe("a live session's recording, downloaded while it grows", () => {
  const containers = new TestContainers();
  const app = uniqueApp('rd');
  let b: TestBroker;

  beforeAll(async () => {
    b = await startTestBroker({});
    await containers.entry(app, 'web', 1);
  });
  afterAll(async () => {
    await b?.stop();
    await containers.removeAll();
  });

  it('is exactly as long as it says, and whole lines only, each an event', async () => {
    const admin = await b.mint({ roles: ['entry-admin'] }, { user: 'auditor' });
    const before = new Set(readdirSync(b.recordingsDir));
    const s = await openCommand(b.wsUrl, await b.mint({ apps: [app] }), { app, proc: 'web', instance: 1 }, ['sh', '-c', 'while :; do seq 1 20000; done']);
    try {
      let cast = '';
      await eventually(async () => {
        cast = readdirSync(b.recordingsDir).find((f) => f.endsWith('.cast') && !before.has(f)) ?? '';
        return cast !== '' && statSync(join(b.recordingsDir, cast)).size > 1_000_000;
      }, 'the recording to grow past 1 MB');
      const id = cast.replace(/\.cast$/, '');
      const sizes: number[] = [];
      for (let i = 0; i < 8; i++) {
        const { head, body } = await rawGet(b.url, `/api/sessions/${id}/recording`, admin);
        expect(head).toMatch(/^HTTP\/1\.1 200 /);
        const length = Number(/\r\ncontent-length: (\d+)/i.exec(head)?.[1]);
        expect(body.length).toBe(length);
        expect(body.at(-1)).toBe(0x0a);
        const lines = body.toString('utf8').split('\n').slice(0, -1);
        expect(() => lines.forEach((l) => JSON.parse(l))).not.toThrow();
        sizes.push(length);
      }
      // It grew between the downloads: each was of a file being written.
      expect(new Set(sizes).size).toBeGreaterThan(1);
      // Each read is in the audit trail, with the admin who read it.
      const trail = await fetch(`${b.url}/api/audit?type=recording.read&session=${id}`, { headers: { authorization: `Bearer ${admin}` } });
      const { events } = (await trail.json()) as { events: Array<Record<string, unknown>> };
      expect(events).toHaveLength(8);
      expect(events[0]).toMatchObject({ sessionId: id, by: 'auditor', source: '127.0.0.1' });
    } finally {
      s.ws.close();
      await s.closed;
    }
  });
});
