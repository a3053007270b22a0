/**
 * A small JSON-lines logger. One object per line with time, level and message; fields named
 * like secrets are replaced before writing, so a token can never reach the log by accident.
 */
export type LogLevel = 'debug' | 'info' | 'warn' | 'error' | 'silent';
const ORDER: Record<LogLevel, number> = { debug: 10, info: 20, warn: 30, error: 40, silent: 100 };
const SECRET_KEYS = /token|ticket|secret|password|authorization|cookie/i;
/**
 * Credentials that can hide in any string (an error message, a URL): JWTs and credential query
 * parameters. A JWT starts where a run of its characters starts: with `\b` instead, every `eyJ`
 * inside one long run was a start of its own, each scanning the run to its end, and a request
 * path of `eyJ-` repeated took the broker seconds (hours for a 4 MiB message) to log.
 */
const JWT = /(?<![A-Za-z0-9_-])eyJ[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]*/g;
const CREDENTIAL_PARAM = /([?&](?:ticket|access_token|token|access-token)=)[^&\s"']+/gi;
/** Longest string value written to the log; the rest is counted, not written. */
export const MAX_LOG_STRING_CHARS = 4096;

/** Masks credentials found by shape inside a string (JWTs, credential query parameters). */
export function maskCredentials(text: string): string {
  return text.replace(JWT, '[redacted-jwt]').replace(CREDENTIAL_PARAM, '$1[redacted]');
}

/** Masks credentials found by shape inside a string value, and cuts it to MAX_LOG_STRING_CHARS. */
export function scrub(text: string): string {
  const masked = maskCredentials(text);
  return masked.length > MAX_LOG_STRING_CHARS ? `${masked.slice(0, MAX_LOG_STRING_CHARS)}…[${masked.length - MAX_LOG_STRING_CHARS} more characters]` : masked;
}

export interface Logger {
  debug(msg: string, fields?: Record<string, unknown>): void;
  info(msg: string, fields?: Record<string, unknown>): void;
  warn(msg: string, fields?: Record<string, unknown>): void;
  error(msg: string, fields?: Record<string, unknown>): void;
}

export function redact(fields: Record<string, unknown>, depth = 0): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(fields)) {
    if (SECRET_KEYS.test(k)) out[k] = '[redacted]';
    else if (v instanceof Error) out[k] = { message: scrub(v.message), code: (v as { code?: unknown }).code };
    else if (typeof v === 'string') out[k] = scrub(v);
    else if (Array.isArray(v)) out[k] = v.map((x: unknown) => (typeof x === 'string' ? scrub(x) : x));
    else if (v && typeof v === 'object' && !Array.isArray(v)) out[k] = depth < 4 ? redact(v as Record<string, unknown>, depth + 1) : '[nested]';
    else out[k] = v;
  }
  return out;
}

export function createLogger(level: LogLevel, write: (line: string) => void = (l) => process.stderr.write(l)): Logger {
  const min = ORDER[level];
  const log = (lvl: LogLevel, msg: string, fields?: Record<string, unknown>) => {
    if (ORDER[lvl] < min) return;
    write(`${JSON.stringify({ time: new Date().toISOString(), level: lvl, msg: scrub(msg), ...(fields ? redact(fields) : {}) })}\n`);
  };
  return {
    debug: (m, f) => log('debug', m, f),
    info: (m, f) => log('info', m, f),
    warn: (m, f) => log('warn', m, f),
    error: (m, f) => log('error', m, f),
  };
}
