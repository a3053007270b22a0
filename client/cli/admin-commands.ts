import type { SessionRecord } from '../../broker/store/session-record.js';
import { brokerJson, isObject } from './broker-api.js';
import { table } from './format.js';

function age(iso: string): string {
  const s = Math.max(0, Math.round((Date.now() - Date.parse(iso)) / 1000));
  return s < 60 ? `${s}s` : s < 3600 ? `${Math.floor(s / 60)}m` : `${Math.floor(s / 3600)}h${Math.floor((s % 3600) / 60)}m`;
}

/** `enter sessions`: every live session on every broker (admin). */
export async function listSessionsCommand(broker: string, token: string, json: boolean): Promise<void> {
  const { sessions } = await brokerJson<{ sessions: SessionRecord[] }>(broker, '/api/sessions', (b) => isObject(b) && Array.isArray(b['sessions']), { token });
  if (json) {
    process.stdout.write(`${JSON.stringify(sessions, null, 2)}\n`);
    return;
  }
  if (sessions.length === 0) {
    process.stdout.write('no live sessions\n');
    return;
  }
  const rows: string[][] = [];
  for (const s of sessions) {
    rows.push([s.id, s.user, `${s.app}/${s.proc}/${s.instance}`, s.source, age(s.startedAt), String(s.bytesIn), String(s.bytesOut), s.attach ? '(attach)' : s.command ? s.command.join(' ').slice(0, 40) : '(shell)']);
  }
  process.stdout.write(table(['ID', 'USER', 'TARGET', 'FROM', 'AGE', 'IN', 'OUT', 'COMMAND'], rows));
}

/** `enter kill <id>`: ends a session wherever it runs (admin). */
export async function killSessionCommand(broker: string, token: string, id: string): Promise<void> {
  // 202 {id, broker}: the broker holding it was told.
  await brokerJson(broker, `/api/sessions/${encodeURIComponent(id)}`, (b) => isObject(b) && b['id'] === id, { method: 'DELETE', token });
  process.stderr.write(`enter: session ${id} is being ended\n`);
}
