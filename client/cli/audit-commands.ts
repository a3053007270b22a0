import WebSocket from 'ws';
import { decodeResponse, ResponseType } from '../../proto/codec.js';
import { ClientError } from '../protocol/client-error.js';
import { stripAnsi } from '../protocol/connection.js';

export interface ReplayOptions {
  /** Playback speed factor (2 = twice as fast). */
  speed: number;
  /** Longest pause kept between two events, in seconds (asciinema's idle_time_limit). */
  idleLimit: number;
}

/** `enter replay <id>`: plays a session's recording in this terminal, with its timing. */
export async function replayCommand(broker: string, token: string, id: string, o: ReplayOptions): Promise<void> {
  let res: Response;
  try {
    res = await fetch(`${broker.replace(/^ws/, 'http')}/api/sessions/${encodeURIComponent(id)}/recording`, { headers: { authorization: `Bearer ${token}` } });
  } catch (err) {
    throw new ClientError('ENTRY_CONNECT_FAILED', `cannot reach broker ${broker}: ${(err as Error).message}`);
  }
  if (!res.ok) {
    const body = (await res.json().catch(() => ({}))) as { error?: string; message?: string };
    throw new ClientError(body.error ?? `HTTP_${res.status}`, body.message ?? `broker answered HTTP ${res.status}`);
  }
  const lines = (await res.text()).split('\n').filter(Boolean);
  let last = 0;
  for (const line of lines.slice(1)) {
    const [t, code, data] = JSON.parse(line) as [number, string, string];
    const gap = Math.min(t - last, o.idleLimit) / o.speed;
    last = t;
    if (gap > 0.001) await new Promise((r) => setTimeout(r, gap * 1000));
    if (code === 'o') process.stdout.write(data);
    else if (code === 'e') process.stderr.write(data);
    else if (code === 'm') process.stderr.write(`\r\n[${data}]\r\n`);
  }
}

/** `enter watch <id>`: follows a running session read-only until it ends (admin). */
export function watchCommand(broker: string, token: string, id: string): Promise<number> {
  const url = new URL(broker.replace(/^http/, 'ws'));
  url.pathname = `${url.pathname.replace(/\/$/, '')}/watch`;
  url.searchParams.set('session', id);
  const ws = new WebSocket(url, { headers: { 'access-token': token, 'entry-protocol': '2' } });
  return new Promise((resolve, reject) => {
    let close: { text: string; code: string } | undefined;
    ws.on('message', (data: Buffer) => {
      const m = decodeResponse(data);
      if (m.msgType === ResponseType.STDOUT) process.stdout.write(m.content);
      else if (m.msgType === ResponseType.STDERR) process.stderr.write(m.content);
      else if (m.msgType === ResponseType.CLOSE) close = { text: stripAnsi(Buffer.from(m.content).toString()), code: m.code };
    });
    ws.on('error', (err) => reject(new ClientError('ENTRY_CONNECT_FAILED', `cannot reach broker ${broker}: ${err.message}`)));
    ws.on('close', () => {
      if (close?.code) reject(new ClientError(close.code, close.text.replace(/^entry: /, '')));
      else {
        if (close) process.stderr.write(`${close.text}\n`);
        resolve(0);
      }
    });
    process.once('SIGINT', () => ws.close());
  });
}
