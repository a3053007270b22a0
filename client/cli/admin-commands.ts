import type { SessionRecord } from '../../broker/store/session-record.js';
import { ClientError } from '../protocol/client-error.js';


async function call(broker: string, token: string, method: string, path: string): Promise<unknown> {
  let res: Response;
  try {
    res = await fetch(`${broker.replace(/^ws/, 'http')}${path}`, { method, headers: { authorization: `Bearer ${token}` } });
  } catch (err) {
    throw new ClientError('ENTRY_CONNECT_FAILED', `cannot reach broker ${broker}: ${(err as Error).message}`);
  }
  const body = (await res.json().catch(() => ({}))) as { error?: string; message?: string };
  if (!res.ok) throw new ClientError(body.error ?? `HTTP_${res.status}`, body.message ?? `broker answered HTTP ${res.status}`);
  return body;
}

function age(iso: string): string {
  const s = Math.max(0, Math.round((Date.now() - Date.parse(iso)) / 1000));
  return s < 60 ? `${s}s` : s < 3600 ? `${Math.floor(s / 60)}m` : `${Math.floor(s / 3600)}h${Math.floor((s % 3600) / 60)}m`;
}

function table(rows: string[][]): string {
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
  return rows.map((r) => r.map((c, i) => c.padEnd(widths[i]!)).join('  ').trimEnd()).join('\n');
}

/** `enter sessions`: every live session on every broker (admin). */
export async function listSessionsCommand(broker: string, token: string, json: boolean): Promise<void> {
  const { sessions } = (await call(broker, token, 'GET', '/api/sessions')) as { sessions: SessionRecord[] };
  if (json) {
    process.stdout.write(`${JSON.stringify(sessions, null, 2)}\n`);
    return;
  }
  if (sessions.length === 0) {
    process.stdout.write('no live sessions\n');
    return;
  }
  const rows = [['ID', 'USER', 'TARGET', 'FROM', 'AGE', 'IN', 'OUT', 'COMMAND']];
  for (const s of sessions) {
    rows.push([s.id, s.user, `${s.app}/${s.proc}/${s.instance}`, s.source, age(s.startedAt), String(s.bytesIn), String(s.bytesOut), s.command ? s.command.join(' ').slice(0, 40) : '(shell)']);
  }
  process.stdout.write(`${table(rows)}\n`);
}

/** `enter kill <id>`: ends a session wherever it runs (admin). */
export async function killSessionCommand(broker: string, token: string, id: string): Promise<void> {
  await call(broker, token, 'DELETE', `/api/sessions/${encodeURIComponent(id)}`);
  process.stderr.write(`enter: session ${id} is being ended\n`);
}
