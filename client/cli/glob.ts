/** An app pattern for `enter ls`: exact, or with `*` and `?` wildcards. */
export function appPattern(pattern: string): RegExp {
  const body = pattern.replace(/[.+^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '.*').replace(/\?/g, '.');
  return new RegExp(`^${body}$`);
}
