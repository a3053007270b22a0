import { cutText } from '../cut-text.js';

/** Longest method kept from a refused request's bytes (the longest registered method is 17). */
const MAX_METHOD = 20;
/** Longest path kept from a refused request's bytes: enough to recognise it in a log line. */
export const MAX_LOGGED_PATH = 256;

/** What a request Node's parser refused said about itself, as far as its bytes tell. */
export interface RefusedRequest {
  method?: string;
  /** The path, without the query (where a ticket may be); cut to MAX_LOGGED_PATH characters. */
  path?: string;
}

/** `path` as logged: cut to MAX_LOGGED_PATH characters, an ellipsis telling it was. */
export function loggedPath(path: string): string {
  return cutText(path, MAX_LOGGED_PATH);
}

/** A request's URL as logged: its path, without the query (where a ticket may be), cut as loggedPath. */
export function loggedUrlPath(url: string | undefined): string {
  return loggedPath((url ?? '/').split('?')[0]!);
}

const REQUEST_LINE_START = new RegExp(`^([A-Z]{1,${MAX_METHOD}}) ([\\x21-\\x7e]+)`);

/**
 * The method and path at the start of `packet`, the bytes Node's parser had in hand when it
 * refused (`err.rawPacket`), when they start with a request line; nothing otherwise.
 */
export function refusedRequest(packet: Buffer | undefined): RefusedRequest {
  if (!packet) return {};
  // Enough bytes for the method, a blank and the path to be cut: the rest is never read.
  const m = REQUEST_LINE_START.exec(packet.subarray(0, MAX_METHOD + 2 + MAX_LOGGED_PATH + 1).toString('latin1'));
  if (!m) return {};
  const path = m[2]!.split('?')[0]!;
  return { method: m[1]!, path: loggedPath(path) };
}

/**
 * Whether the request target alone is over Node's header limit, for a request refused with
 * HPE_HEADER_OVERFLOW: Node counts the target and the headers against one limit and reports both
 * alike. Told only when `packet` (`err.rawPacket`) is all the connection has sent (`readSoFar`
 * bytes): its first request, read at once, whose target is then in it from its first byte.
 * Anything else (a request after another on the connection, one sent in pieces, TLS, whose
 * `bytesRead` counts the encrypted bytes) cannot be told and is taken for headers too large.
 */
export function targetOverLimit(packet: Buffer | undefined, readSoFar: number | undefined, limit: number): boolean {
  if (!packet || readSoFar !== packet.length) return false;
  const methodEnd = packet.indexOf(0x20);
  if (methodEnd < 0) return false;
  // The target ends at the next blank or line end; a target still arriving runs to the end.
  let end = methodEnd + 1;
  while (end < packet.length && packet[end] !== 0x20 && packet[end] !== 0x0d && packet[end] !== 0x0a) end++;
  return end - (methodEnd + 1) > limit;
}
