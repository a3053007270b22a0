/**
 * A small JSON-lines logger. One object per line with time, level and message; fields named
 * like secrets are replaced before writing, so a token can never reach the log by accident.
 */
import { maskArgv, maskCredentials } from './mask.js';

export type LogLevel = 'debug' | 'info' | 'warn' | 'error' | 'silent';
const ORDER: Record<LogLevel, number> = { debug: 10, info: 20, warn: 30, error: 40, silent: 100 };
const SECRET_KEYS = /token|ticket|secret|password|authorization|cookie/i;
/** Longest string value written to the log; the rest is counted, not written. */
export const MAX_LOG_STRING_CHARS = 4096;

/** Masks credentials found by shape inside a string value, and cuts it to MAX_LOG_STRING_CHARS. */
export function scrub(text: string): string {
  return fit(maskCredentials(head(text)), text.length);
}

/** A list of strings masked as an argv (`--token`, `VALUE`), each element cut as scrub cuts. */
function scrubArgv(argv: readonly string[]): string[] {
  return maskArgv(argv.map(head)).map((masked, i) => fit(masked, argv[i]!.length));
}

// Masked within a margin past what is written: a 4 MiB message costs no more than 8 KiB does.
function head(text: string): string {
  return text.length > 2 * MAX_LOG_STRING_CHARS ? text.slice(0, 2 * MAX_LOG_STRING_CHARS) : text;
}

function fit(masked: string, originalLength: number): string {
  if (masked.length <= MAX_LOG_STRING_CHARS) return masked;
  const over = masked.length - MAX_LOG_STRING_CHARS + (originalLength - Math.min(originalLength, 2 * MAX_LOG_STRING_CHARS));
  return `${masked.slice(0, MAX_LOG_STRING_CHARS)}…[${over} more characters]`;
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
    // A list of strings is an argv as often as not: `--token`, `VALUE` masked as a command line would be.
    else if (Array.isArray(v)) out[k] = v.every((x: unknown) => typeof x === 'string') ? scrubArgv(v as string[]) : v.map((x: unknown) => (typeof x === 'string' ? scrub(x) : x));
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
