/**
 * When a resuming client takes a silent connection for broken: nothing heard (no message, no
 * ping) for this many of the broker's ping intervals, plus a margin. A network that vanished
 * without a word (a Wi-Fi change, a laptop asleep) would otherwise hold the client for minutes.
 */
export const SILENT_PINGS = 3;
export const SILENT_MARGIN_MS = 2_000;

/** How long a silence may last, and how often to look, for a given ping interval. */
export function silenceWatch(pingIntervalMs: number): { limitMs: number; periodMs: number } {
  return { limitMs: SILENT_PINGS * pingIntervalMs + SILENT_MARGIN_MS, periodMs: Math.min(1_000, pingIntervalMs) };
}

/**
 * The broker's ping interval in ms, in its answer to every upgrade: for clients without a resume
 * ticket (which carries it too) to watch for silence by. Older brokers do not send it.
 */
export const PING_INTERVAL_HEADER = 'Entry-Ping-Interval';

/**
 * How long the broker keeps a broken resumable session (its --resume-grace, ms), in its answer to
 * every upgrade: `0` tells a client that no resume ticket will come, so it need not hold input
 * back waiting for one. Older brokers do not send it.
 */
export const RESUME_GRACE_HEADER = 'Entry-Resume-Grace';

/**
 * One resume try, from asking for the connection to RESUMABLE, at most (or what is left of the
 * grace period): a network that drops packets leaves a socket connecting, or a resume waiting
 * for its answer, for as long as nobody bounds it. The same bound as the CLI's connect timeout.
 */
export const RESUME_TRY_MS = 15_000;
