/**
 * The name of a new tab on `key`: the key itself, else "key (n)" with the smallest n from 2 that
 * no open tab has. (Counting the open tabs of that key gave a name still in use once an earlier
 * one had closed: two tabs, and their Close buttons, alike for the eye and a screen reader.)
 */
export function tabLabel(key: string, open: readonly string[]): string {
  const taken = new Set(open);
  if (!taken.has(key)) return key;
  // Bounded: among open.length + 1 candidates one is free.
  for (let n = 2; ; n++) {
    const label = `${key} (${n})`;
    if (!taken.has(label)) return label;
  }
}
