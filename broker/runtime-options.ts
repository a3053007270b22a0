/**
 * How the broker's Node process is started, everywhere it is: the Dockerfile, the systemd unit,
 * deploy/dev/up.sh and the bench (test/unit/runtime-options.test.ts checks that they agree).
 * Each was measured in bench/README.md:
 *  - `--max-semi-space-size=4`: a 4 MiB young generation instead of V8's 16 MiB keeps 1,000
 *    sessions under 150 MB ("Young generation");
 *  - `--no-concurrent-array-buffer-sweeping`: socket and message buffers are freed at the
 *    scavenge that finds them dead instead of late by a helper thread, which set off a major GC
 *    every 30–50 ms during uploads ("stdin: a garbage-collection storm");
 *  - `--heap-growing-percent=20`: the next major GC when the old generation has grown 20 % past
 *    what the last one kept, instead of V8's own factor (up to 4 ×): 1,000 typing sessions peaked
 *    at 127–134 MB instead of 173–192, for the same broker CPU ("Old generation");
 *  - `MALLOC_ARENA_MAX=2`: two glibc malloc arenas instead of up to 8 per core, which kept freed
 *    socket buffers resident ("Malloc arenas").
 */
export const BROKER_NODE_OPTIONS: readonly string[] = ['--max-semi-space-size=4', '--no-concurrent-array-buffer-sweeping', '--heap-growing-percent=20'];

export const BROKER_ENVIRONMENT: Readonly<Record<string, string>> = { MALLOC_ARENA_MAX: '2' };
