/**
 * The URLs of a `--redis-url` that lists several (Cluster seeds, comma-separated). A comma is a
 * separator only before another URL: a password may hold one.
 */
export function redisUrls(value: string): string[] {
  return value.split(/,(?=\s*rediss?:\/\/)/i).map((u) => u.trim());
}
