/** WebSocket close codes both ends of the wire use, besides the error registry's (broker/errors.ts). */

/** A client abandoning a connection it took for broken, to resume the session (4000–4999: the application's). */
export const RESUMING_CLOSE_CODE = 4100;

/**
 * Either end closing on a message it cannot decode (RFC 6455's 1007: data inconsistent with the
 * message's type); the registry's close code of ENTRY_BAD_FRAME.
 */
export const BAD_FRAME_CLOSE_CODE = 1007;
