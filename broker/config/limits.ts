/** Named defaults for every limit; each is overridable by the option named beside it. */

/** --ping-interval: PING messages keep old clients and idle proxies (often 60 s timeouts) open. */
export const DEFAULT_PING_INTERVAL_MS = 10_000;

/**
 * --max-frame: the largest client message accepted. Original clients send one keystroke per
 * message; pasting and piped stdin send up to 64 KiB chunks, plus a few bytes of framing.
 */
export const DEFAULT_MAX_FRAME_BYTES = 1024 * 1024;

/** --start-timeout: how long a protocol-2 client has to send START after the upgrade. */
export const DEFAULT_START_TIMEOUT_MS = 10_000;

/**
 * Output high-water mark: Docker output is paused while this much is queued on a client's
 * socket. 1 MiB keeps a fast link busy (≈ 8 ms at 1 Gbit/s) while bounding a stalled client.
 */
export const OUTPUT_HIGH_WATER_BYTES = 1024 * 1024;
/** Output resumes when the queue drains below this. */
export const OUTPUT_LOW_WATER_BYTES = 256 * 1024;

/**
 * The docker CLI retries the initial resize ten times with a growing wait (docker/cli#3573)
 * because an exec only accepts resizes once it runs. Same here: 10 tries, 10 ms × attempt.
 */
export const RESIZE_RETRIES = 10;
export const RESIZE_RETRY_STEP_MS = 10;

/** After the output stream ends, how long to wait for Docker to report the exit code. */
export const EXIT_CODE_WAIT_MS = 5_000;
