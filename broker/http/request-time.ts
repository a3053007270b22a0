import { EntryError } from '../errors.js';

/** The latest time a Date can hold (ECMA-262: 8.64e15 ms after the epoch). */
const MAX_TIME_MS = 8.64e15;
/**
 * Epoch numbers under this are taken for seconds given by mistake (a JWT's `iat` or `exp`, `date
 * +%s`) and refused: in milliseconds they are before March 1973, when no token was issued and no
 * event written; in seconds, after the year 5000.
 */
const SECONDS_NOT_MS_BELOW = 1e11;

/**
 * A time a request gives: an ISO string, or epoch milliseconds as a number or a string of digits.
 * Anything a Date (or a Redis PXAT) cannot hold is a mistake, not "forever", and so is a number
 * that reads as seconds.
 */
export function requestTime(v: unknown, name: string): number {
  const digits = typeof v === 'string' && /^\d+$/.test(v);
  const t = typeof v === 'number' ? v : digits ? Number(v) : typeof v === 'string' ? Date.parse(v) : NaN;
  if (!(t >= 0 && t <= MAX_TIME_MS)) throw new EntryError('ENTRY_BAD_REQUEST', `${name} must be an ISO time or epoch ms`);
  if ((typeof v === 'number' || digits) && t < SECONDS_NOT_MS_BELOW) throw new EntryError('ENTRY_BAD_REQUEST', `${name} must be epoch ms (or an ISO time); ${String(v)} looks like seconds`);
  return Math.floor(t);
}
