import { STATUS_CODES } from 'node:http';

/**
 * An HTTP answer written straight to a connection that no response object serves (a refused
 * upgrade, a request Node's parser refused): JSON with the registry's code, and the connection
 * closed after it.
 */
export function rawAnswer(error: { status: number; code: string; message: string }, request?: string, headers: Record<string, string> = {}): string {
  const body = JSON.stringify({ error: error.code, message: error.message });
  const id = request ? `x-request-id: ${request}\r\n` : '';
  const extra = Object.entries(headers)
    .map(([k, v]) => `${k}: ${v}\r\n`)
    .join('');
  return `HTTP/1.1 ${error.status} ${STATUS_CODES[error.status] ?? 'Error'}\r\nConnection: close\r\nContent-Type: application/json; charset=utf-8\r\n${id}${extra}Content-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`;
}
