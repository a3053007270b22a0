/** Named defaults for every limit; each is overridable by the option named beside it. */

/** --ping-interval: PING messages keep old clients and idle proxies (often 60 s timeouts) open. */
export const DEFAULT_PING_INTERVAL_MS = 10_000;

/**
 * --peer-timeout: a client whose kernel has acknowledged nothing for this long (retransmissions
 * or window probes unanswered) is gone. Pings give an idle connection something to acknowledge
 * every --ping-interval, so an idle vanished peer is found within interval + timeout + one
 * interval of sampling: 50 s by default. A paused reader's kernel keeps acknowledging: kept.
 */
export const DEFAULT_PEER_TIMEOUT_MS = 30_000;

/**
 * --stall-timeout: output queued to a client and nothing of it drained for this long ends the
 * session (ENTRY_PEER_STALLED), however alive the client's kernel is. A cap on what a stopped
 * reader holds, above the 10-minute pause the design promises to keep; 0 disables.
 */
export const DEFAULT_STALL_TIMEOUT_MS = 3600_000;

/**
 * --tcp-keepalive: kernel keepalive probes start after this much silence on a client's socket.
 * A backstop under the broker's own checks; 0 leaves the socket's default (off).
 */
export const DEFAULT_TCP_KEEPALIVE_MS = 30_000;

/**
 * --resume-grace: how long a resumable session is kept after its connection broke without a
 * close (Wi-Fi change, VPN reconnect, laptop sleep), its processes running; 0 turns resume off.
 */
export const DEFAULT_RESUME_GRACE_MS = 60_000;

/**
 * Output of a resumable session kept until the client acknowledges it: what a reconnecting
 * client may have missed. When this much waits, the process is paused as for a slow client, so
 * nothing is dropped; the size of the socket's high-water mark, the per-session bound.
 */
export const RESUME_BUFFER_BYTES = 1024 * 1024;

/**
 * --max-frame: the largest client message accepted. Original clients send one keystroke per
 * message; pasting and piped stdin send up to 64 KiB chunks, plus a few bytes of framing.
 */
export const DEFAULT_MAX_FRAME_BYTES = 1024 * 1024;

/** --start-timeout: how long a protocol-2 client has to send START after the upgrade. */
export const DEFAULT_START_TIMEOUT_MS = 10_000;

/**
 * --open-timeout: how long the engine or the cluster has to answer a session's start (exec
 * create and start, or the pods/exec upgrade). They answer in tens of milliseconds, seconds when
 * loaded; an engine stuck on a container's lock never answers, and the client would wait with it.
 * 30 s leaves a loaded engine its seconds many times over.
 */
export const DEFAULT_OPEN_TIMEOUT_MS = 30_000;

/**
 * Output high-water mark: Docker output is paused while this much is queued on a client's
 * socket. 1 MiB keeps a fast link busy (≈ 8 ms at 1 Gbit/s) while bounding a stalled client.
 */
export const OUTPUT_HIGH_WATER_BYTES = 1024 * 1024;
/** Output resumes when the queue drains below this. */
export const OUTPUT_LOW_WATER_BYTES = 256 * 1024;

/**
 * What one message or chunk of a client's input costs beyond its bytes while it is held (its
 * objects: a buffer view, a queue entry, a write request), charged against the byte bounds on
 * held input. Counted by bytes alone, empty or one-byte frames queue a million entries, some
 * 250 MB, under a bound of 1 MiB; with this, a bound holds what it says whatever the framing.
 */
export const HELD_CHUNK_COST_BYTES = 256;

/**
 * The docker CLI retries the initial resize ten times with a growing wait (docker/cli#3573)
 * because an exec only accepts resizes once it runs. Same here: 10 tries, 10 ms × attempt.
 */
export const RESIZE_RETRIES = 10;
export const RESIZE_RETRY_STEP_MS = 10;

/** After the output stream ends, how long to wait for Docker to report the exit code. */
export const EXIT_CODE_WAIT_MS = 5_000;

/** --idle-timeout: no input and no output for this long ends a session (kubelet's default: 4 h). 0 disables. */
export const DEFAULT_IDLE_TIMEOUT_MS = 4 * 3600_000;

/** --max-session: the longest a session may last. 0 (the default) means no limit. */
export const DEFAULT_MAX_SESSION_MS = 0;

/**
 * --max-sessions: sessions one broker holds at once. Sized for the 1,000-session target with
 * headroom; each idle session costs about 60 KB in the broker.
 */
export const DEFAULT_MAX_SESSIONS = 2000;

/**
 * --handshake-timeout: an upgrade request must have sent all its headers within this time
 * (slow-loris protection); also bounds the admission checks.
 */
export const DEFAULT_HANDSHAKE_TIMEOUT_MS = 10_000;

/**
 * --body-timeout: an API body (16 KiB at most) must arrive whole within this once its headers
 * are in; a trickled body would otherwise hold a request open (408 after it).
 */
export const DEFAULT_BODY_TIMEOUT_MS = 10_000;

/** --kill-grace: SIGHUP first, SIGKILL for what is left after this long. */
export const DEFAULT_KILL_GRACE_MS = 2_000;

/** --drain-timeout: on SIGTERM, the broker exits after this long even if sessions remain. */
export const DEFAULT_DRAIN_TIMEOUT_MS = 20_000;

/**
 * --session-ttl: how long a session's registry record lives without a heartbeat. Heartbeats
 * come every third of it, so a dead broker's sessions vanish within this time.
 */
export const DEFAULT_SESSION_TTL_MS = 15_000;

/** --max-user-sessions: concurrent sessions per user across all brokers; 0 means no cap. */
export const DEFAULT_MAX_USER_SESSIONS = 0;

/** --auth-failure-limit per --auth-failure-window, per source address. */
export const DEFAULT_AUTH_FAILURE_LIMIT = 20;
export const DEFAULT_AUTH_FAILURE_WINDOW_MS = 60_000;

/** --recording-max-bytes: a recording stops growing here and ends with a marker (100 MiB). */
export const DEFAULT_RECORDING_MAX_BYTES = 100 * 1024 * 1024;

/** --recording-retention-days: recordings older than this are deleted. 0 keeps them forever. */
export const DEFAULT_RECORDING_RETENTION_DAYS = 90;

/** --audit-max-events: events kept in the stored trail (Redis stream or memory), newest kept. */
export const DEFAULT_AUDIT_MAX_EVENTS = 100_000;

/**
 * --log-backlog: bytes of log lines that may wait for a slow stderr reader; lines beyond it
 * are dropped and counted. 4 MiB holds about a thousand audit lines of a 4 KB command.
 */
export const DEFAULT_LOG_BACKLOG_BYTES = 4 * 1024 * 1024;
