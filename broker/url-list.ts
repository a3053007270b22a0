/**
 * The URLs of a setting that lists several side by side (Redis Cluster seeds, comma-separated).
 * A comma is a separator only before another `scheme://`: a password may hold one.
 */
export function urlList(value: string): string[] {
  return value.split(/,(?=\s*[a-z][a-z0-9+.-]*:\/\/)/i).map((u) => u.trim());
}
