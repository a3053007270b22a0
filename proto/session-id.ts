/**
 * Whether `id` has the shape of a session id (a UUID, or the like: letters, digits and dashes).
 * Anything else is refused before it is used as a lookup key or in a file name.
 */
export function hasSessionIdShape(id: string): boolean {
  return /^[A-Za-z0-9-]{1,64}$/.test(id);
}
